package server

import (
	"errors"
	"sync"
	"testing"
	"time"

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
