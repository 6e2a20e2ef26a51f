package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// The commands of a transaction over a value the kernel read as live at
// BEGIN whose deadline passed by the transaction's clock (now): each sees
// it absent, with no deadline, and the writes committed replace or delete
// the value the store still holds. A value at its deadline is still live.
func TestTxnViewCommandsPastDeadline(t *testing.T) {
	const deadline = 2000
	read := func() []engine.Op {
		return []engine.Op{
			{Kind: engine.OpGet, Key: []byte("k"), Value: []byte("10"), ExpireAt: deadline, Version: 5},
			{Kind: engine.OpGet, Key: []byte("other"), Err: engine.ErrNotFound, Version: 3},
		}
	}
	type step struct {
		args  []string
		reply string
	}
	s := func(reply string, args ...string) step { return step{args, reply} }
	for _, c := range []struct {
		name   string
		now    int64
		steps  []step
		writes string // the ops committed
	}{
		{"GET TTL EXISTS", deadline + 1, []step{
			s("nil", "GET", "k"), s("-2", "TTL", "k"), s("-2", "PTTL", "k"), s("-2", "PEXPIRETIME", "k"),
			s("0", "EXISTS", "k"), s("0", "STRLEN", "k"), s("[nil nil]", "MGET", "k", "other"),
		}, ""},
		{"INCR starts from 0 without a deadline", deadline + 1, []step{
			s("1", "INCR", "k"), s("-1", "PTTL", "k"), s("1", "GET", "k"),
		}, "SET k 1 0"},
		{"INCRBY DECR", deadline + 1, []step{s("5", "INCRBY", "k", "5"), s("4", "DECR", "k")}, "SET k 4 0"},
		{"APPEND", deadline + 1, []step{s("1", "APPEND", "k", "x"), s("-1", "TTL", "k")}, "SET k x 0"},
		{"SET KEEPTTL keeps no deadline", deadline + 1, []step{
			s("OK", "SET", "k", "v", "KEEPTTL"), s("-1", "PTTL", "k"),
		}, "SET k v 0"},
		{"SET XX", deadline + 1, []step{s("nil", "SET", "k", "v", "XX")}, ""},
		{"SET NX GET", deadline + 1, []step{s("nil", "SET", "k", "v", "NX", "GET"), s("v", "GET", "k")}, "SET k v 0"},
		{"SETNX", deadline + 1, []step{s("1", "SETNX", "k", "v")}, "SET k v 0"},
		{"MSETNX", deadline + 1, []step{s("1", "MSETNX", "k", "v", "other", "w")}, "SET k v 0, SET other w 0"},
		{"GETSET", deadline + 1, []step{s("nil", "GETSET", "k", "v")}, "SET k v 0"},
		{"EXPIRE", deadline + 1, []step{
			s("0", "EXPIRE", "k", "100"), s("0", "PEXPIRE", "k", "100", "XX"), s("0", "PEXPIRE", "k", "100", "NX"),
			s("0", "PEXPIRE", "k", "100", "GT"), s("0", "PEXPIREAT", "k", "1", "LT"), s("0", "PERSIST", "k"),
		}, ""},
		{"GETEX", deadline + 1, []step{s("nil", "GETEX", "k", "PX", "100"), s("nil", "GETEX", "k", "PERSIST")}, ""},
		{"DEL deletes what the store holds", deadline + 1, []step{
			s("0", "DEL", "k", "other"), s("nil", "GETDEL", "k"),
		}, "DEL k"},
		{"SET then DEL", deadline + 1, []step{s("OK", "SET", "k", "v", "PX", "100"), s("1", "DEL", "k")}, "DEL k"},
		// At its deadline the value is live, as to the kernel (now > deadline).
		{"at its deadline", deadline, []step{
			s("10", "GET", "k"), s("0", "PTTL", "k"), s("1", "EXISTS", "k"), s("11", "INCR", "k"), s("0", "PTTL", "k"),
		}, "SET k 11 2000"},
		{"SET KEEPTTL at its deadline", deadline, []step{
			s("OK", "SET", "k", "v", "KEEPTTL"), s("v", "GET", "k"), s("2000", "PEXPIRETIME", "k"),
		}, "SET k v 2000"},
		{"live", deadline - 500, []step{
			s("500", "PTTL", "k"), s("1", "TTL", "k"), s("1", "PEXPIRE", "k", "100", "LT"), s("100", "PTTL", "k"),
		}, "SET k 10 1600"},
	} {
		reads := read()
		v, err := newView([]string{dbKey(0, []byte("k")), dbKey(0, []byte("other"))}, reads, c.now, engine.DefaultMaxValueLen)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range c.steps {
			args := make([][]byte, len(st.args))
			for i, a := range st.args {
				args[i] = []byte(a)
			}
			cmd := lookup(args[0])
			if cmd.check != nil {
				if err := cmd.check(args, defaultLimits{}); err != nil {
					t.Fatalf("%s: %v: %v", c.name, st.args, err)
				}
			}
			if got := replyText(cmd.eval(v, args)); got != st.reply {
				t.Errorf("%s: %v = %s, want %s", c.name, st.args, got, st.reply)
			}
		}
		if v.failed != nil {
			t.Errorf("%s: failed: %v", c.name, v.failed)
		}
		var writes []string
		for _, w := range v.writes() {
			if w.Kind == engine.OpDelete {
				writes = append(writes, "DEL "+string(w.Key))
			} else {
				writes = append(writes, fmt.Sprintf("SET %s %s %d", w.Key, w.Value, w.ExpireAt))
			}
		}
		if got := strings.Join(writes, ", "); got != c.writes {
			t.Errorf("%s: writes %q, want %q", c.name, got, c.writes)
		}
	}
	// A read that failed otherwise than absent fails the attempt.
	if _, err := newView([]string{"k"}, []engine.Op{{Err: engine.ErrConflict}}, 1, engine.DefaultMaxValueLen); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("newView of a failed read: %v", err)
	}
}

// replyText is a reply as TestTxnViewCommandsPastDeadline writes it.
func replyText(r reply) string {
	switch r.kind {
	case kindSimple:
		return r.str
	case kindError:
		return "error " + r.str
	case kindInt:
		return strconv.FormatInt(r.n, 10)
	case kindBulk:
		return string(r.bulk)
	case kindNull:
		return "nil"
	}
	elems := make([]string, len(r.elems))
	for i, e := range r.elems {
		elems[i] = replyText(e)
	}
	return "[" + strings.Join(elems, " ") + "]"
}

// Keys of 1 to 5 ms read and written in MULTI/EXEC as they expire: the
// replies of one EXEC agree on whether the key is there (one instant, as
// Redis's), an INCR of a key gone starts from 0 and leaves it without a
// deadline, and an INCR of a live one keeps its deadline. Also against
// redis-server with BPFDB_TEST_REDIS=1.
func TestExpiryShortKeysInMulti(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.conn(t)
	ctx := testCtx(t, 30*time.Second)
	start := time.Now()
	gone, live := 0, 0
	for i := 0; i < 400 && time.Since(start) < 8*time.Second; i++ {
		k := "short:" + strconv.Itoa(i)
		px := 1 + i%5
		if err := c.Do(ctx, "SET", k, "10", "PX", px).Err(); err != nil {
			t.Fatal(err)
		}
		if d := time.Duration(i%7) * time.Millisecond / 2; d > 0 {
			time.Sleep(d)
		}
		var get1, pttl1, incr, pttl2, get2, exists *redis.Cmd
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			get1 = p.Do(ctx, "GET", k)
			pttl1 = p.Do(ctx, "PTTL", k)
			exists = p.Do(ctx, "EXISTS", k)
			incr = p.Do(ctx, "INCR", k)
			pttl2 = p.Do(ctx, "PTTL", k)
			get2 = p.Do(ctx, "GET", k)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("%s: EXEC: %v", k, err)
		}
		text := func(cmd *redis.Cmd) string {
			v, err := cmd.Text()
			if errors.Is(err, redis.Nil) {
				return "nil"
			}
			if err != nil {
				t.Fatalf("%s: %v: %v", k, cmd.Args(), err)
			}
			return v
		}
		integer := func(cmd *redis.Cmd) int64 {
			n, err := cmd.Int64()
			if err != nil {
				t.Fatalf("%s: %v: %v", k, cmd.Args(), err)
			}
			return n
		}
		g1, p1, ex, n, p2, g2 := text(get1), integer(pttl1), integer(exists), integer(incr), integer(pttl2), text(get2)
		got := fmt.Sprintf("GET %s, PTTL %d, EXISTS %d, INCR %d, PTTL %d, GET %s (%d replies)", g1, p1, ex, n, p2, g2, len(cmds))
		switch g1 {
		case "nil": // gone: every reply says so, and INCR starts anew without a deadline
			gone++
			if p1 != -2 || ex != 0 || n != 1 || p2 != -1 || g2 != "1" {
				t.Fatalf("%s (PX %d), gone: %s", k, px, got)
			}
			if d, err := c.Do(ctx, "PTTL", k).Int64(); err != nil || d != -1 {
				t.Fatalf("%s: PTTL after an INCR that started anew: %d %v, want -1", k, d, err)
			}
		case "10": // live: INCR continues it and keeps its deadline
			live++
			if p1 < 0 || p1 > int64(px) || ex != 1 || n != 11 || p2 < 0 || p2 > p1 || g2 != "11" {
				t.Fatalf("%s (PX %d), live: %s", k, px, got)
			}
		default:
			t.Fatalf("%s (PX %d): %s", k, px, got)
		}
		// A read-only EXEC (a snapshot here) agrees with itself too.
		var g, p, e *redis.Cmd
		if _, err := c.TxPipelined(ctx, func(pp redis.Pipeliner) error {
			g, p, e = pp.Do(ctx, "GET", k), pp.Do(ctx, "PTTL", k), pp.Do(ctx, "EXISTS", k)
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("%s: read-only EXEC: %v", k, err)
		}
		switch gv, pv, ev := text(g), integer(p), integer(e); {
		case gv == "nil" && pv == -2 && ev == 0:
		case gv == "1" && pv == -1 && ev == 1:
		case gv == "11" && pv >= 0 && pv <= int64(px) && ev == 1:
		default:
			t.Fatalf("%s (PX %d): read-only EXEC: GET %s, PTTL %d, EXISTS %d", k, px, gv, pv, ev)
		}
	}
	t.Logf("%d EXECs found the key gone, %d live", gone, live)
}
