package server

// SWAPDB (swapdb.go): Redis's answers (also against redis-server), a
// WATCH across a swap, swaps racing transfers and reads that must each see
// one whole database, and swaps kept across restarts.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSwapDB(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 10*time.Second)
	c0, c1 := ts.conn(t), ts.conn(t, func(o *redis.Options) { o.DB = 1 })
	mustDo(t, c0, "OK", "SET", "sw:a", "zero")
	mustDo(t, c1, "OK", "SET", "sw:a", "one")
	mustDo(t, c1, int64(1), "HSET", "sw:h", "f", "v")
	mustDo(t, c0, "OK", "SWAPDB", "0", "1")
	mustDo(t, c0, "one", "GET", "sw:a")
	mustDo(t, c0, "v", "HGET", "sw:h", "f")
	mustDo(t, c1, "zero", "GET", "sw:a")
	mustDo(t, c0, int64(2), "DBSIZE")
	mustDo(t, c1, int64(1), "DBSIZE")
	mustDo(t, c0, "OK", "SWAPDB", "1", "1")
	mustDo(t, c0, "one", "GET", "sw:a")
	mustDo(t, c0, errPrefix("ERR invalid first DB index"), "SWAPDB", "x", "1")
	mustDo(t, c0, errPrefix("ERR invalid second DB index"), "SWAPDB", "0", "y")
	mustDo(t, c0, errPrefix("ERR DB index is out of range"), "SWAPDB", "0", "16")
	mustDo(t, c0, errPrefix("ERR DB index is out of range"), "SWAPDB", "-1", "0")
	// A WATCH across a swap fails the EXEC.
	mustDo(t, c0, "OK", "WATCH", "sw:a")
	mustDo(t, c1, "OK", "SWAPDB", "0", "1")
	_, err := c0.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "sw:a", "lost", 0)
		return nil
	})
	if err != redis.TxFailedErr {
		t.Errorf("EXEC after a WATCH across SWAPDB: %v, want a null reply", err)
	}
	mustDo(t, c0, "zero", "GET", "sw:a")
	mustDo(t, c0, "OK", "FLUSHDB")
	mustDo(t, c1, "one", "GET", "sw:a")
	mustDo(t, c0, int64(0), "DBSIZE")
	mustDo(t, c0, "OK", "SWAPDB", "0", "1") // back as it was, for redis-server's next test
	mustDo(t, c0, "OK", "FLUSHALL")
}

// Swaps race transfers inside each of two databases and reads of both
// accounts of one: every read sees one database whole (100 in database 0's
// accounts, 50 in database 1's, whichever names they have then), and
// nothing is lost.
func TestSwapDBRacesTransactions(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if ts.redis {
		t.Skip("bpfdb's concurrency")
	}
	ctx := testCtx(t, 60*time.Second)
	setup := ts.client(t)
	setup.Do(ctx, "MSET", "acct:a", "60", "acct:b", "40")
	c1 := ts.client(t, func(o *redis.Options) { o.DB = 1 })
	c1.Do(ctx, "MSET", "acct:a", "30", "acct:b", "20")
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
		stop.Store(true)
	}
	for db := range 2 {
		wg.Add(2)
		go func() { // transfers within the database the connection names
			defer wg.Done()
			c := ts.client(t, func(o *redis.Options) { o.DB = db })
			for i := 0; !stop.Load() && i < 400; i++ {
				_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.DecrBy(ctx, "acct:a", 1)
					p.IncrBy(ctx, "acct:b", 1)
					return nil
				})
				if err != nil {
					fail(fmt.Errorf("transfer in database %d: %w", db, err))
				}
			}
		}()
		go func() { // reads of both accounts at one instant
			defer wg.Done()
			c := ts.client(t, func(o *redis.Options) { o.DB = db })
			for i := 0; !stop.Load() && i < 400; i++ {
				vals, err := c.MGet(ctx, "acct:a", "acct:b").Result()
				if err != nil {
					fail(err)
					return
				}
				a, _ := strconv.Atoi(fmt.Sprint(vals[0]))
				b, _ := strconv.Atoi(fmt.Sprint(vals[1]))
				if a+b != 100 && a+b != 50 {
					fail(fmt.Errorf("database %d's accounts read %d and %d: halves of two databases", db, a, b))
				}
			}
		}()
	}
	swaps := 0
	for ; !stop.Load() && swaps < 300; swaps++ {
		if err := setup.Do(ctx, "SWAPDB", "0", "1").Err(); err != nil {
			fail(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	totals := map[int]bool{}
	for db := range 2 {
		c := ts.client(t, func(o *redis.Options) { o.DB = db })
		vals, _ := c.MGet(context.Background(), "acct:a", "acct:b").Result()
		a, _ := strconv.Atoi(fmt.Sprint(vals[0]))
		b, _ := strconv.Atoi(fmt.Sprint(vals[1]))
		totals[a+b] = true
	}
	if !totals[100] || !totals[50] {
		t.Fatalf("after %d swaps the databases hold totals %v, want 100 and 50", swaps, totals)
	}
}

// The names survive a restart (the log's directory) and a checkpoint.
func TestSwapDBDurable(t *testing.T) {
	ts := startServer(t, Config{}, true)
	if ts.redis {
		t.Skip("bpfdb's restart")
	}
	c := ts.raw(t)
	c.do(t, "SET", "k", "in 0")
	c.do(t, "SELECT", "3")
	c.do(t, "SET", "k", "in 3")
	c.do(t, "SWAPDB", "0", "3")
	check := func(ts *testServer, what string) {
		t.Helper()
		c := ts.raw(t)
		if got := c.do(t, "GET", "k"); got != "in 3" {
			t.Errorf("%s: GET k in database 0 = %#v, want the value set in 3 before the swap", what, got)
		}
		c.do(t, "SELECT", "3")
		if got := c.do(t, "GET", "k"); got != "in 0" {
			t.Errorf("%s: GET k in database 3 = %#v", what, got)
		}
	}
	check(ts, "before")
	ts = ts.restart(t)
	check(ts, "after a restart")
	ts.raw(t).do(t, "SAVE")
	ts = ts.restart(t)
	check(ts, "after a checkpoint and a restart")
}
