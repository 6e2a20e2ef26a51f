package server

// Hashes (hash.go): every command against Redis's answers (run with
// BPFDB_TEST_REDIS=1 against redis-server too), WRONGTYPE both ways,
// MULTI/EXEC, concurrent increments that lose nothing, the size limit
// refused whole, and hashes kept across restarts and checkpoints.

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestHashCommands(t *testing.T) {
	ts := startServer(t, Config{}, false)
	const wrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	wrongArgs := func(cmd string) errLike {
		return errPrefix(fmt.Sprintf("ERR wrong number of arguments for '%s' command", cmd))
	}
	steps := []step{
		{a("HSET", "h:a", "f1", "v1", "f2", "v2"), 2, nil},
		{a("HSET", "h:a", "f2", "v2b", "f3", "v3"), 1, nil},
		{a("HGET", "h:a", "f2"), "v2b", nil},
		{a("HGET", "h:a", "nope"), isNil{}, nil},
		{a("HGET", "h:none", "f"), isNil{}, nil},
		{a("HMGET", "h:a", "f1", "nope", "f3"), []any{"v1", isNil{}, "v3"}, nil},
		{a("HMGET", "h:none", "f1"), []any{isNil{}}, nil},
		{a("HGETALL", "h:a"), []any{"f1", "v1", "f2", "v2b", "f3", "v3"}, nil},
		{a("HGETALL", "h:none"), []any{}, nil},
		{a("HKEYS", "h:a"), []any{"f1", "f2", "f3"}, nil},
		{a("HVALS", "h:a"), []any{"v1", "v2b", "v3"}, nil},
		{a("HLEN", "h:a"), 3, nil},
		{a("HLEN", "h:none"), 0, nil},
		{a("HEXISTS", "h:a", "f1"), 1, nil},
		{a("HEXISTS", "h:a", "nope"), 0, nil},
		{a("HSTRLEN", "h:a", "f2"), 3, nil},
		{a("HSTRLEN", "h:a", "nope"), 0, nil},
		{a("HSETNX", "h:a", "f1", "x"), 0, nil},
		{a("HSETNX", "h:a", "f4", "v4"), 1, nil},
		{a("HMSET", "h:a", "f5", "v5", "f1", "v1b"), "OK", nil},
		{a("HGET", "h:a", "f1"), "v1b", nil},
		{a("TYPE", "h:a"), "hash", nil},
		{a("OBJECT", "ENCODING", "h:a"), "listpack", nil},
		{a("EXISTS", "h:a"), 1, nil},
		{a("HDEL", "h:a", "f1", "nope", "f2"), 2, nil},
		{a("HKEYS", "h:a"), []any{"f3", "f4", "f5"}, nil},
		// The last field gone, the key is gone.
		{a("HDEL", "h:a", "f3", "f4", "f5"), 3, nil},
		{a("EXISTS", "h:a"), 0, nil},
		{a("TYPE", "h:a"), "none", nil},
		{a("HDEL", "h:none", "f"), 0, nil},
		// Counters.
		{a("HINCRBY", "h:n", "c", "5"), 5, nil},
		{a("HINCRBY", "h:n", "c", "-7"), -2, nil},
		{a("HINCRBY", "h:n", "c", "x"), errPrefix("ERR value is not an integer or out of range"), nil},
		{a("HSET", "h:n", "s", "abc", "big", "9223372036854775807"), 2, nil},
		{a("HINCRBY", "h:n", "s", "1"), errPrefix("ERR hash value is not an integer"), nil},
		{a("HINCRBY", "h:n", "big", "1"), errPrefix("ERR increment or decrement would overflow"), nil},
		{a("HINCRBYFLOAT", "h:n", "f", "1.5"), "1.5", nil},
		{a("HINCRBYFLOAT", "h:n", "f", "2.25"), "3.75", nil},
		{a("HINCRBYFLOAT", "h:n", "c", "0.5"), "-1.5", nil},
		{a("HINCRBYFLOAT", "h:n", "s", "1"), errPrefix("ERR hash value is not a float"), nil},
		{a("HINCRBYFLOAT", "h:n", "f", "x"), errPrefix("ERR value is not a valid float"), nil},
		// HSCAN: one reply, cursor 0, as Redis answers a small hash.
		{a("HSCAN", "h:n", "0"), []any{"0", []any{"c", "-1.5", "s", "abc", "big", "9223372036854775807", "f", "3.75"}}, nil},
		{a("HSCAN", "h:n", "0", "MATCH", "b*", "COUNT", "100"), []any{"0", []any{"big", "9223372036854775807"}}, nil},
		{a("HSCAN", "h:none", "0"), []any{"0", []any{}}, nil},
		{a("HSCAN", "h:n", "x"), errPrefix("ERR invalid cursor"), nil},
		{a("HSCAN", "h:n", "0", "COUNT"), errPrefix("ERR syntax error"), nil},
		// WRONGTYPE both ways, and nothing changed by it.
		{a("SET", "h:s", "str"), "OK", nil},
		{a("HSET", "h:s", "f", "v"), errPrefix(wrongType), nil},
		{a("HGET", "h:s", "f"), errPrefix(wrongType), nil},
		{a("HGETALL", "h:s"), errPrefix(wrongType), nil},
		{a("HLEN", "h:s"), errPrefix(wrongType), nil},
		{a("HDEL", "h:s", "f"), errPrefix(wrongType), nil},
		{a("HINCRBY", "h:s", "f", "1"), errPrefix(wrongType), nil},
		{a("HSCAN", "h:s", "0"), errPrefix(wrongType), nil},
		{a("GET", "h:s"), "str", nil},
		{a("GET", "h:n"), errPrefix(wrongType), nil},
		{a("STRLEN", "h:n"), errPrefix(wrongType), nil},
		{a("INCR", "h:n"), errPrefix(wrongType), nil},
		{a("INCRBY", "h:n", "2"), errPrefix(wrongType), nil},
		{a("APPEND", "h:n", "x"), errPrefix(wrongType), nil},
		{a("GETRANGE", "h:n", "0", "1"), errPrefix(wrongType), nil},
		{a("SETRANGE", "h:n", "0", "x"), errPrefix(wrongType), nil},
		{a("INCRBYFLOAT", "h:n", "1"), errPrefix(wrongType), nil},
		{a("GETSET", "h:n", "x"), errPrefix(wrongType), nil},
		{a("GETDEL", "h:n"), errPrefix(wrongType), nil},
		{a("GETEX", "h:n"), errPrefix(wrongType), nil},
		{a("SET", "h:n", "x", "GET"), errPrefix(wrongType), nil},
		{a("MGET", "h:s", "h:n"), []any{"str", isNil{}}, nil},
		{a("HLEN", "h:n"), 4, nil},
		{a("SETNX", "h:n", "x"), 0, nil},
		// Keyspace commands carry the hash whole.
		{a("EXPIRE", "h:n", "100"), 1, nil},
		{a("TTL", "h:n"), 100, nil},
		{a("HSET", "h:n", "new", "1"), 1, nil},
		{a("TTL", "h:n"), 100, nil},
		{a("PERSIST", "h:n"), 1, nil},
		{a("TTL", "h:n"), -1, nil},
		{a("RENAME", "h:n", "h:r"), "OK", nil},
		{a("HGET", "h:r", "new"), "1", nil},
		{a("COPY", "h:r", "h:c"), 1, nil},
		{a("HSET", "h:c", "new", "2"), 0, nil},
		{a("HGET", "h:r", "new"), "1", nil},
		{a("HGET", "h:c", "new"), "2", nil},
		{a("TYPE", "h:c"), "hash", nil},
		{a("MOVE", "h:c", "3"), 1, nil},
		{a("EXISTS", "h:c"), 0, nil},
		{a("SCAN", "0", "TYPE", "hash", "MATCH", "h:*", "COUNT", "1000"), []any{"0", []any{"h:r"}}, nil},
		{a("SET", "h:r", "now a string"), "OK", nil},
		{a("TYPE", "h:r"), "string", nil},
		{a("DEL", "h:r", "h:s"), 2, nil},
		// Arity.
		{a("HSET", "h:x", "f"), wrongArgs("hset"), nil},
		{a("HSET", "h:x", "f", "v", "g"), wrongArgs("hset"), nil},
		{a("HMSET", "h:x", "f", "v", "g"), wrongArgs("hmset"), nil},
		{a("HGET", "h:x"), wrongArgs("hget"), nil},
		{a("HDEL", "h:x"), wrongArgs("hdel"), nil},
		{a("EXISTS", "h:x"), 0, nil},
	}
	runSteps(t, ts, ts.conn(t), steps)
}

// HGETALL is a map in RESP3, as Redis answers it.
func TestHashRESP3(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 10*time.Second)
	c := ts.client(t, func(o *redis.Options) { o.Protocol = 3 })
	c.HSet(ctx, "h3", "a", "1", "b", "2")
	got, err := c.Do(ctx, "HGETALL", "h3").Result()
	m, ok := got.(map[any]any)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || len(m) != 2 || m["a"] != "1" || m["b"] != "2" {
		t.Fatalf("HGETALL in RESP3: %#v, want the map {a: 1, b: 2}", got)
	}
}

// Hashes in MULTI/EXEC: each command sees the ones before it, and a
// transaction that fails (a hash over the longest value) applies nothing.
func TestHashMulti(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 30*time.Second)
	c := ts.conn(t)
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, "hm", "a", "1")
		p.HIncrBy(ctx, "hm", "a", 2)
		p.HSet(ctx, "hm", "b", "x")
		p.HDel(ctx, "hm", "b")
		p.HGetAll(ctx, "hm")
		p.Set(ctx, "hm:s", "v", 0)
		p.HGet(ctx, "hm:s", "f") // WRONGTYPE inside EXEC: this command fails, the others run
		return nil
	})
	if len(cmds) != 7 {
		t.Fatalf("EXEC: %v, %d replies", err, len(cmds))
	}
	if all := cmds[4].(*redis.MapStringStringCmd).Val(); len(all) != 1 || all["a"] != "3" {
		t.Errorf("HGETALL inside MULTI: %v, want map[a:3]", all)
	}
	if e := cmds[6].Err(); e == nil || !strings.HasPrefix(e.Error(), "WRONGTYPE") {
		t.Errorf("HGET of a string inside MULTI: %v, want WRONGTYPE", e)
	}
	if ts.redis {
		return
	}
	// A hash one byte over the longest value: refused whole, naming the limit.
	limit := ts.maxValue()
	field := strings.Repeat("v", limit/2)
	c.HSet(ctx, "hm:big", "f1", field)
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, "hm", "a", "changed")
		p.HSet(ctx, "hm:big", "f2", field)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
		t.Errorf("a hash over %d bytes: %v, want an error naming the limit", limit, err)
	}
	if v := c.HGet(ctx, "hm", "a").Val(); v != "3" {
		t.Errorf("the failed transaction's other write applied: hm.a = %q", v)
	}
	if n := c.HLen(ctx, "hm:big").Val(); n != 1 {
		t.Errorf("the hash over the limit has %d fields, want 1", n)
	}
	err = c.HSet(ctx, "hm:big", "f2", field).Err()
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
		t.Errorf("HSET past the limit: %v, want an error naming %d", err, limit)
	}
}

// Concurrent HINCRBY of one field and HSET of others lose no update: each
// is one serializable transaction of the whole hash.
func TestHashConcurrentIncr(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 60*time.Second)
	const clients, each = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.client(t)
			for j := range each {
				if err := c.HIncrBy(ctx, "hc", "n", 1).Err(); err != nil {
					errs <- err
					return
				}
				if err := c.HSet(ctx, "hc", fmt.Sprintf("c%d", i), j).Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := ts.client(t).HGetAll(ctx, "hc").Result()
	if err != nil {
		t.Fatal(err)
	}
	if all["n"] != strconv.Itoa(clients*each) || len(all) != clients+1 {
		t.Fatalf("after %d increments by %d clients: n = %q, %d fields", clients*each, clients, all["n"], len(all))
	}
	for i := range clients {
		if all[fmt.Sprintf("c%d", i)] != strconv.Itoa(each-1) {
			t.Errorf("field c%d = %q, want its client's last write %d", i, all[fmt.Sprintf("c%d", i)], each-1)
		}
	}
}

// Hashes survive a restart (the log) and a checkpoint, type and deadline
// included; a large one is kept in pages.
func TestHashDurable(t *testing.T) {
	ts := startServer(t, Config{}, true)
	if ts.redis {
		t.Skip("bpfdb's restart")
	}
	c := ts.raw(t)
	c.do(t, "HSET", "hd:small", "a", "1", "b", "2")
	c.do(t, "PEXPIRE", "hd:small", "600000")
	args := []string{"HSET", "hd:large"}
	for i := range 300 {
		args = append(args, fmt.Sprint("field", i), strings.Repeat("x", 30))
	}
	c.do(t, args...)
	c.do(t, "SELECT", "2")
	c.do(t, "HSET", "hd:db2", "f", "v")
	check := func(ts *testServer, what string) {
		t.Helper()
		c := ts.raw(t)
		if got := c.do(t, "HGET", "hd:small", "b"); got != "2" {
			t.Errorf("%s: HGET hd:small b = %#v", what, got)
		}
		if got, ok := c.do(t, "PTTL", "hd:small").(int64); !ok || got <= 0 {
			t.Errorf("%s: PTTL hd:small = %#v, want the deadline kept", what, got)
		}
		if got := c.do(t, "HLEN", "hd:large"); got != int64(300) {
			t.Errorf("%s: HLEN hd:large = %#v", what, got)
		}
		if got := c.do(t, "TYPE", "hd:large"); got != respStatus("hash") {
			t.Errorf("%s: TYPE hd:large = %#v", what, got)
		}
		c.do(t, "SELECT", "2")
		if got := c.do(t, "HGET", "hd:db2", "f"); got != "v" {
			t.Errorf("%s: HGET hd:db2 f in database 2 = %#v", what, got)
		}
	}
	ts = ts.restart(t)
	check(ts, "after a restart")
	ts.raw(t).do(t, "SAVE")
	ts = ts.restart(t)
	check(ts, "after a checkpoint and a restart")
}

// Many clients writing one hash (redis-benchmark -t hset's pattern) all
// succeed, half of them through MULTI/EXEC on goroutines beside the
// event loop's HSETs: the server's transactions on one key wait for each
// other (keylocks.go) instead of conflicting in the kernel until their
// retries run out. Each HSET rewrites the whole hash, so the test's cost
// grows with the square of its fields: 3,000 keep it well inside its
// bound under -race (10,000 took 87 s of 120).
func TestHashHotKey(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 120*time.Second)
	const clients, each = 50, 60
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.client(t)
			for j := range each {
				field := fmt.Sprintf("f%d.%d", i, j)
				var err error
				if i%2 == 0 {
					err = c.HSet(ctx, "hot", field, "v").Err()
				} else {
					// MULTI/EXEC runs on a goroutine, beside the event
					// loop's HSETs: they meet in the key locks.
					_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
						return p.HSet(ctx, "hot", field, "v").Err()
					})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("HSET of the hot hash: %v", err)
	}
	if n := ts.client(t).HLen(ctx, "hot").Val(); n != clients*each {
		t.Fatalf("the hot hash has %d fields, want %d", n, clients*each)
	}
}
