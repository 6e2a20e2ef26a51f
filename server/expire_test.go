package server

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/redis/go-redis/v9"
)

// Keys that expire, as go-redis users write them: Set with an expiration,
// the SET NX PX lock idiom, EXPIRE in MULTI/EXEC, and a key gone (to GET,
// EXISTS, MGET and DBSIZE) once its time has passed. Also against
// redis-server with BPFDB_TEST_REDIS=1.
func TestExpiry(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.client(t)
	ctx := testCtx(t, 30*time.Second)

	if err := c.Set(ctx, "session", "data", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := c.TTL(ctx, "session").Result(); err != nil || d < 9*time.Second || d > 10*time.Second {
		t.Fatalf("TTL after Set with 10s: %v %v", d, err)
	}
	if d, err := c.PTTL(ctx, "session").Result(); err != nil || d < 9*time.Second || d > 10*time.Second {
		t.Fatalf("PTTL after Set with 10s: %v %v", d, err)
	}

	// A lock: SET NX PX, held by one of many contenders until it expires.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ok, err := c.SetNX(ctx, "lock", i, 200*time.Millisecond).Result()
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d contenders took the lock", won)
	}
	if ok, _ := c.SetNX(ctx, "lock", "late", 200*time.Millisecond).Result(); ok {
		t.Fatal("the lock was taken twice while held")
	}

	// Short-lived keys disappear on time, for every reader.
	for _, k := range []string{"a", "b"} {
		if err := c.Set(ctx, "short:"+k, "v", 100*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set(ctx, "long", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := c.Get(ctx, "short:a").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET of an expired key: %v", err)
	}
	if n, _ := c.Exists(ctx, "short:a", "short:b", "long").Result(); n != 1 {
		t.Fatalf("EXISTS counts %d keys, want 1", n)
	}
	if v, _ := c.MGet(ctx, "short:b", "long").Result(); len(v) != 2 || v[0] != nil || v[1] != "v" {
		t.Fatalf("MGET: %#v", v)
	}
	if ok, err := c.SetNX(ctx, "lock", "next", time.Second).Result(); err != nil || !ok {
		t.Fatalf("the lock after it expired: %v %v", ok, err)
	}
	if n, _ := c.TTL(ctx, "short:a").Result(); n != -2*time.Nanosecond && n != -2*time.Second {
		t.Fatalf("TTL of an expired key: %v", n)
	}

	// EXPIRE and TTL inside MULTI/EXEC, with a write of the same key.
	pipe := c.TxPipeline()
	pipe.Set(ctx, "m", "1", 0)
	pipe.Expire(ctx, "m", 100*time.Second)
	incr := pipe.Incr(ctx, "m")
	ttl := pipe.TTL(ctx, "m")
	persist := pipe.Persist(ctx, "m")
	after := pipe.TTL(ctx, "m")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if incr.Val() != 2 || ttl.Val() != 100*time.Second || !persist.Val() || after.Val() != -1*time.Nanosecond && after.Val() != -1*time.Second {
		t.Fatalf("MULTI: incr %d, ttl %v, persist %v, ttl after %v", incr.Val(), ttl.Val(), persist.Val(), after.Val())
	}
	if ts.redis {
		return
	}
	// The expirer deletes what expired: DBSIZE, which counts the index,
	// comes down to the live keys.
	if !waitFor(5*time.Second, func() bool { n, _ := c.DBSize(ctx).Result(); return n == 4 }) {
		n, _ := c.DBSize(ctx).Result()
		t.Fatalf("DBSIZE %d, want 4 (session, lock, long, m)", n)
	}
}

// A TTL counts down, and a key set with PX 100 is gone 150 ms later: to
// GET, EXISTS, TTL, GETEX and EXPIRE, while keys with no or a longer TTL
// stay.
func TestExpiryCountsDown(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.conn(t)
	ctx := testCtx(t, 10*time.Second)

	if err := c.Do(ctx, "SET", "cd:stay", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SETEX", "cd:slow", "10", "v").Err(); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	if err := c.Do(ctx, "SET", "cd:k", "v", "PX", "100").Err(); err != nil {
		t.Fatal(err)
	}
	first, err := c.Do(ctx, "PTTL", "cd:slow").Int64()
	if err != nil || first <= 9000 || first > 10000 {
		t.Fatalf("PTTL just after SETEX 10: %d %v", first, err)
	}
	v, err := c.Do(ctx, "GET", "cd:k").Text()
	if time.Since(set) < 80*time.Millisecond && (err != nil || v != "v") {
		t.Fatalf("GET before the deadline: %q %v", v, err)
	}
	time.Sleep(30 * time.Millisecond)
	if second, err := c.Do(ctx, "PTTL", "cd:slow").Int64(); err != nil || second > first-30 {
		t.Fatalf("PTTL 30 ms later: %d (was %d) %v", second, first, err)
	}

	time.Sleep(150*time.Millisecond - time.Since(set)) // 150 ms after the SET
	if _, err := c.Do(ctx, "GET", "cd:k").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET of a key 50 ms past its deadline: %v", err)
	}
	if n, err := c.Do(ctx, "EXISTS", "cd:k", "cd:stay").Int64(); err != nil || n != 1 {
		t.Fatalf("EXISTS of an expired key and a live one: %d %v", n, err)
	}
	for _, cmd := range []string{"TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"} {
		if n, err := c.Do(ctx, cmd, "cd:k").Int64(); err != nil || n != -2 {
			t.Fatalf("%s of an expired key: %d %v", cmd, n, err)
		}
	}
	if _, err := c.Do(ctx, "GETEX", "cd:k", "PERSIST").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GETEX of an expired key: %v", err)
	}
	if n, err := c.Do(ctx, "EXPIRE", "cd:k", "100").Int64(); err != nil || n != 0 {
		t.Fatalf("EXPIRE of an expired key: %d %v", n, err)
	}
	if n, err := c.Do(ctx, "TTL", "cd:slow").Int64(); err != nil || n < 9 || n > 10 {
		t.Fatalf("TTL of SETEX 10, 150 ms later: %d %v", n, err)
	}
	if n, err := c.Do(ctx, "TTL", "cd:stay").Int64(); err != nil || n != -1 {
		t.Fatalf("TTL of a key without one: %d %v", n, err)
	}
	// SET NX takes an expired key's place.
	if v, err := c.Do(ctx, "SET", "cd:k", "w", "NX", "PX", "100000").Text(); err != nil || v != "OK" {
		t.Fatalf("SET NX of an expired key: %q %v", v, err)
	}
}

// SET k v, SET k v EX n and SET k v PX n are single autocommit writes (no
// read of the key, as a transaction makes); SET's other forms read it.
func TestExpirySetFastPath(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if ts.redis {
		t.Skip("bpfdb's engine counters")
	}
	c := ts.conn(t)
	ctx := testCtx(t, 10*time.Second)
	gets := func() uint64 {
		t.Helper()
		st, err := ts.eng.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Gets
	}
	before := gets()
	for i, args := range [][]any{
		{"SET", "fp:a", "v"},
		{"SET", "fp:a", "v", "EX", "100"},
		{"SET", "fp:a", "v", "px", "100000"},
		{"SET", "fp:b", "v", "Ex", "100"},
	} {
		if v, err := c.Do(ctx, args...).Text(); err != nil || v != "OK" {
			t.Fatalf("%d: %v: %q %v", i, args, v, err)
		}
	}
	if n := gets() - before; n != 0 {
		t.Fatalf("plain SET and SET EX|PX read keys %d times: not single writes", n)
	}
	if n, err := c.Do(ctx, "TTL", "fp:a").Int64(); err != nil || n < 99 || n > 100 {
		t.Fatalf("TTL after the fast SET PX 100000: %d %v", n, err)
	}
	before = gets()
	if v, err := c.Do(ctx, "SET", "fp:c", "v", "NX", "PX", "100000").Text(); err != nil || v != "OK" {
		t.Fatalf("SET NX PX: %q %v", v, err)
	}
	if gets() == before {
		t.Fatal("SET NX PX read nothing: the counter does not tell the paths apart")
	}
	// A time the fast path cannot take goes the long way, to Redis's error.
	if err := c.Do(ctx, "SET", "fp:a", "v", "EX", "0").Err(); err == nil || err.Error() != "ERR invalid expire time in 'set' command" {
		t.Fatalf("SET EX 0: %v", err)
	}
	if err := c.Do(ctx, "SET", "fp:a", "v", "PX", "x").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Fatalf("SET PX x: %v", err)
	}
	if n, err := c.Do(ctx, "TTL", "fp:a").Int64(); err != nil || n < 99 || n > 100 {
		t.Fatalf("TTL after refused SETs: %d %v", n, err)
	}
}

// A value read in a transaction whose deadline passed between the kernel's
// BEGIN and the transaction's clock read is absent to its commands, with
// no deadline (INCR starts from 0, TTL is -2), but a write still replaces
// it in the store.
func TestTxnViewExpiredBetweenBeginAndNow(t *testing.T) {
	for _, c := range []struct {
		name            string
		read            engine.Op
		now             int64
		exists, existed bool
		expireAt        int64
	}{
		{"live", engine.Op{Value: []byte("v"), ExpireAt: 2000}, 1999, true, true, 2000},
		{"at its deadline", engine.Op{Value: []byte("v"), ExpireAt: 2000}, 2000, true, true, 2000},
		{"past its deadline", engine.Op{Value: []byte("v"), ExpireAt: 2000}, 2001, false, true, 0},
		{"no deadline", engine.Op{Value: []byte("v")}, 5000, true, true, 0},
		{"absent", engine.Op{Err: engine.ErrNotFound, Version: 7}, 5000, false, false, 0},
	} {
		e := viewEntry(&c.read, c.now)
		if e.exists != c.exists || e.existed != c.existed || e.expireAt != c.expireAt || e.version != c.read.Version {
			t.Errorf("%s: %+v", c.name, e)
		}
		if !e.exists && e.val != nil {
			t.Errorf("%s: an absent entry holds %q", c.name, e.val)
		}
	}
}
