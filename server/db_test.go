package server

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sixteen databases, as Redis has: SELECT, go-redis's DB option, MULTI
// with a SELECT inside, WATCH, MOVE, COPY ... DB, FLUSHDB, the keyspace
// commands and INFO keyspace each see one. (Also against redis-server:
// BPFDB_TEST_REDIS=1.)
func TestDatabasesSelect(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 30*time.Second)
	c := ts.raw(t)
	do := func(want any, args ...string) {
		t.Helper()
		if got := c.do(t, args...); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%q: %#v, want %#v", args, got, want)
		}
	}
	do(respStatus("OK"), "FLUSHALL")
	do(respStatus("OK"), "SET", "k", "zero")
	do(respStatus("OK"), "SELECT", "1")
	do(nil, "GET", "k")
	do(respStatus("OK"), "SET", "k", "one")
	do("one", "GET", "k")
	do(int64(1), "DBSIZE")
	do(respError("ERR DB index is out of range"), "SELECT", "16")
	do(respError("ERR value is not an integer or out of range"), "SELECT", "x")

	// go-redis's DB option selects at connect.
	db2 := ts.client(t, func(o *redis.Options) { o.DB = 2 })
	if err := db2.Set(ctx, "k", "two", 0).Err(); err != nil {
		t.Fatalf("go-redis with DB: 2: %v", err)
	}
	for db, want := range []string{"zero", "one", "two"} {
		got, err := ts.client(t, func(o *redis.Options) { o.DB = db }).Get(ctx, "k").Result()
		if err != nil || got != want {
			t.Fatalf("GET k in database %d: %q, %v; want %q", db, got, err, want)
		}
	}

	// MULTI: the commands after a queued SELECT run in its database.
	do(respStatus("OK"), "SELECT", "0")
	do(respStatus("OK"), "MULTI")
	do(respStatus("QUEUED"), "SET", "m", "in0")
	do(respStatus("QUEUED"), "SELECT", "5")
	do(respStatus("QUEUED"), "SET", "m", "in5")
	do(respStatus("QUEUED"), "INCR", "n")
	do([]any{respStatus("OK"), respStatus("OK"), respStatus("OK"), int64(1)}, "EXEC")
	do("in5", "GET", "m") // the SELECT stays after EXEC
	do(respStatus("OK"), "SELECT", "0")
	do("in0", "GET", "m")
	do(nil, "GET", "n")

	// WATCH is of a key of the database it was given in.
	w := ts.raw(t)
	w.do(t, "SELECT", "3")
	w.do(t, "WATCH", "wk")
	do(respStatus("OK"), "SET", "wk", "in db 0: not the watched key")
	w.do(t, "MULTI")
	w.do(t, "SET", "wk", "mine")
	if r := w.do(t, "EXEC"); fmt.Sprint(r) != "[OK]" {
		t.Fatalf("EXEC after a write of the same name in another database: %#v", r)
	}
	do(respStatus("OK"), "SELECT", "3")
	do(respStatus("OK"), "SET", "wk", "theirs")
	w.do(t, "WATCH", "wk")
	do(respStatus("OK"), "SET", "wk", "changed")
	w.do(t, "MULTI")
	w.do(t, "SET", "wk", "mine")
	if r := w.do(t, "EXEC"); r != (nullArray{}) {
		t.Fatalf("EXEC after the watched key changed: %#v", r)
	}

	// MOVE and COPY ... DB.
	do(respStatus("OK"), "SELECT", "0")
	do(respStatus("OK"), "SET", "mv", "v", "EX", "100")
	do(int64(1), "MOVE", "mv", "7")
	do(int64(0), "EXISTS", "mv")
	do(int64(0), "MOVE", "nothing", "7")
	do(respError("ERR source and destination objects are the same"), "MOVE", "k", "0")
	do(respError("ERR DB index is out of range"), "MOVE", "k", "99")
	do(respStatus("OK"), "SET", "mv", "again")
	do(int64(0), "MOVE", "mv", "7") // 7 holds mv already
	do(int64(1), "COPY", "k", "k", "DB", "8")
	do(int64(0), "COPY", "k", "k", "DB", "8")
	do(int64(1), "COPY", "k", "k", "DB", "8", "REPLACE")
	do(respStatus("OK"), "SELECT", "7")
	do("v", "GET", "mv")
	if ttl, ok := c.do(t, "TTL", "mv").(int64); !ok || ttl <= 0 || ttl > 100 {
		t.Fatalf("TTL of a moved key: %#v", ttl)
	}
	do(respStatus("OK"), "SELECT", "8")
	do("zero", "GET", "k")

	// The keyspace commands and FLUSHDB see one database.
	do(respStatus("OK"), "SELECT", "9")
	do(respStatus("OK"), "MSET", "a", "1", "b", "2")
	keys, _ := c.do(t, "KEYS", "*").([]any)
	sort.Slice(keys, func(i, j int) bool { return keys[i].(string) < keys[j].(string) })
	if fmt.Sprint(keys) != "[a b]" {
		t.Fatalf("KEYS * in database 9: %v", keys)
	}
	if r, _ := c.do(t, "SCAN", "0", "COUNT", "1000").([]any); fmt.Sprint(r[1]) != "[a b]" && fmt.Sprint(r[1]) != "[b a]" {
		t.Fatalf("SCAN in database 9: %v", r)
	}
	if r := c.do(t, "RANDOMKEY"); r != "a" && r != "b" {
		t.Fatalf("RANDOMKEY in database 9: %#v", r)
	}
	info, _ := c.do(t, "INFO", "keyspace").(string)
	for _, want := range []string{"db0:keys=4,", "db1:keys=1,", "db2:keys=1,", "db3:keys=1,", "db5:keys=2,", "db7:keys=1,expires=1,", "db8:keys=1,", "db9:keys=2,"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO keyspace lacks %q:\n%s", want, info)
		}
	}
	do(respStatus("OK"), "FLUSHDB")
	do(int64(0), "DBSIZE")
	do(respStatus("OK"), "SELECT", "0")
	do(int64(4), "DBSIZE") // k, m, wk, mv
	do(respStatus("OK"), "SWAPDB", "0", "1")
	do(int64(1), "DBSIZE")
	do("one", "GET", "k")
	do(respStatus("OK"), "SWAPDB", "1", "0")
	do(int64(4), "DBSIZE")
	if !ts.redis {
		if r, _ := c.do(t, "CONFIG", "GET", "databases").([]any); fmt.Sprint(r) != "[databases 16]" {
			t.Errorf("CONFIG GET databases: %v", r)
		}
	}
	do(respStatus("OK"), "FLUSHALL")
	do(respStatus("OK"), "SELECT", "7")
	do(int64(0), "DBSIZE")
}

// Keys of every database survive a restart, from the log and from a
// checkpoint.
func TestDatabasesDurable(t *testing.T) {
	ts := startServer(t, Config{}, true)
	if ts.redis {
		t.Skip("bpfdb's restart")
	}
	c := ts.raw(t)
	for db := range 16 {
		c.do(t, "SELECT", fmt.Sprint(db))
		c.do(t, "SET", "k", fmt.Sprint("v", db))
	}
	check := func(ts *testServer, what string) {
		t.Helper()
		c := ts.raw(t)
		for db := range 16 {
			c.do(t, "SELECT", fmt.Sprint(db))
			if got := c.do(t, "GET", "k"); got != fmt.Sprint("v", db) {
				t.Fatalf("%s: database %d: %#v", what, db, got)
			}
		}
	}
	ts = ts.restart(t)
	check(ts, "after a restart")
	ts.raw(t).do(t, "SAVE")
	ts = ts.restart(t)
	check(ts, "after a checkpoint and a restart")
}
