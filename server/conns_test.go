package server

// Connection-level tests over raw sockets: many concurrent connections,
// MaxClients, malformed RESP, oversized values, inline commands, raw
// pipelining, QUIT.

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestManyConnections: 1,000 connections open at once, each doing a few
// SET/GET round trips; all of them succeed within a bounded time.
func TestManyConnections(t *testing.T) {
	ts := startServer(t, Config{}, false)
	const conns, rounds = 1000, 3
	deadline := time.Now().Add(60 * time.Second)
	cs := make([]*rawConn, conns)
	for i := range cs {
		c, err := ts.dialRaw()
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		cs[i] = c
		t.Cleanup(func() { c.Close() })
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	gate := make(chan struct{})
	for i, c := range cs {
		wg.Add(1)
		go func(i int, c *rawConn) {
			defer wg.Done()
			<-gate
			c.SetDeadline(deadline)
			for r := 0; r < rounds; r++ {
				k := fmt.Sprintf("mc:%d:%d", i, r)
				v := strconv.Itoa(i*rounds + r)
				if _, err := c.Write(append(encode("SET", k, v), encode("GET", k)...)); err != nil {
					errs <- fmt.Errorf("connection %d: write: %v", i, err)
					return
				}
				for _, want := range []any{respStatus("OK"), v} {
					got, err := c.read()
					if err != nil || got != want {
						errs <- fmt.Errorf("connection %d round %d: got %#v, %v; want %#v", i, r, got, err, want)
						return
					}
				}
			}
		}(i, c)
	}
	close(gate)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 10 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Errorf("%d of %d connections failed", n, conns)
	}
	t.Logf("%d connections x %d SET+GET in %v", conns, rounds, time.Since(start))

	// The server counts them all, and every key is there.
	c := ts.conn(t)
	ctx := testCtx(t, 20*time.Second)
	info, err := c.Info(ctx, "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := infoField(info, "connected_clients")
	if got, _ := strconv.Atoi(v); got < conns {
		t.Errorf("connected_clients is %s with %d connections open", v, conns)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != conns*rounds {
		t.Errorf("DBSIZE is %d, %v; want %d", n, err, conns*rounds)
	}
}

// TestMaxClients: with MaxClients 10, the 11th connection is told so and
// closed; once one leaves, a new one is served.
func TestMaxClients(t *testing.T) {
	ts := startServer(t, Config{MaxClients: 10}, false)
	var cs []*rawConn
	for i := 0; i < 10; i++ {
		c := ts.raw(t)
		if r := c.do(t, "PING"); r != respStatus("PONG") {
			t.Fatalf("connection %d: PING: %#v", i+1, r)
		}
		cs = append(cs, c)
	}
	extra := ts.raw(t)
	extra.SetDeadline(time.Now().Add(5 * time.Second))
	extra.Write(encode("PING"))
	r, err := extra.read()
	if err != nil || r != respError("ERR max number of clients reached") {
		t.Errorf("11th connection: got %#v, %v; want -ERR max number of clients reached", r, err)
	}
	extra.expectClosed(t, 5*time.Second)
	for i, c := range cs {
		if r := c.do(t, "PING"); r != respStatus("PONG") {
			t.Errorf("connection %d after the refusal: PING: %#v", i+1, r)
		}
	}
	if r := cs[0].do(t, "CONFIG", "GET", "maxclients"); fmt.Sprint(r) != fmt.Sprint([]any{"maxclients", "10"}) {
		t.Errorf("CONFIG GET maxclients: %#v", r)
	}

	cs[0].Close()
	var last any
	if !waitFor(5*time.Second, func() bool {
		c, err := ts.dialRaw()
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(encode("PING"))
		last, _ = c.read()
		return last == respStatus("PONG")
	}) {
		t.Errorf("after one of 10 connections closed, a new one still gets %#v", last)
	}
}

// TestMalformedRESP: the server answers a protocol error and closes the
// connection; it does not crash and its other connections keep working.
func TestMalformedRESP(t *testing.T) {
	ts := startServer(t, Config{}, false)
	bystander := ts.raw(t)
	if r := bystander.do(t, "SET", "bystander", "ok"); r != respStatus("OK") {
		t.Fatalf("SET: %#v", r)
	}
	cases := []struct {
		name    string
		payload string
		redis   bool // Redis answers this one with a protocol error too
	}{
		{"negative bulk length", "*2\r\n$3\r\nGET\r\n$-5\r\n", true},
		{"bulk length 1<<40", "*2\r\n$3\r\nGET\r\n$" + strconv.FormatInt(1<<40, 10) + "\r\n", true},
		{"bulk length 1<<40 first", "*1\r\n$1099511627776\r\n", true},
		{"multibulk count 99999999", "*99999999\r\n", false}, // Redis waits for the rest
		{"non-numeric multibulk count", "*abc\r\n", true},
		{"garbage multibulk count", "*\xff\xfe\r\n", true},
		{"garbage multibulk count with NUL", "*\xff\x00\xfe\r\n", false}, // Redis' strchr stops at the NUL and waits
		{"missing $", "*1\r\nGET\r\n", true},
		{"garbage instead of $", "*2\r\n\x01\x02\x03\xff\r\n", true},
		{"garbage with NUL instead of $", "*2\r\n\x00\x01\x02\x03\r\n", false},
		{"non-numeric bulk length", "*1\r\n$x\r\n", true},
		{"100 KB inline line", strings.Repeat("a", 100<<10) + "\r\n", true},
		{"100 KB inline line, no newline", strings.Repeat("b", 100<<10), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if ts.redis && !tc.redis {
				t.Skip("Redis does not refuse this")
			}
			c := ts.raw(t)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			// The server may close before it has read everything: write
			// in the background and ignore the error.
			go c.Write([]byte(tc.payload))
			r, err := c.read()
			if err != nil {
				t.Fatalf("no reply before the connection ended: %v", err)
			}
			e, ok := r.(respError)
			if !ok || !strings.HasPrefix(string(e), "ERR Protocol error") {
				t.Fatalf("got %#v, want -ERR Protocol error...", r)
			}
			t.Logf("%s", e)
			c.expectClosed(t, 5*time.Second)
			if r := bystander.do(t, "GET", "bystander"); r != "ok" {
				t.Fatalf("another connection after the error: GET: %#v", r)
			}
			if r := ts.raw(t).do(t, "PING"); r != respStatus("PONG") {
				t.Fatalf("a new connection after the error: PING: %#v", r)
			}
		})
	}

	// A client that goes away in the middle of a command.
	t.Run("truncated command then close", func(t *testing.T) {
		for _, p := range []string{"*3\r\n$3\r\nSET\r\n$1\r\na\r\n", "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1000\r\nxy", "*2\r\n$3", "PIN"} {
			c, err := ts.dialRaw()
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte(p))
			c.Close()
		}
		if r := bystander.do(t, "GET", "bystander"); r != "ok" {
			t.Fatalf("another connection: GET: %#v", r)
		}
		if r := ts.raw(t).do(t, "EXISTS", "a"); r != int64(0) {
			t.Errorf("a truncated SET wrote its key: EXISTS a is %#v", r)
		}
	})
}

// TestOversized: keys and values over the limits, sent as proper bulks, get
// an error and the connection stays usable; nothing is written.
func TestOversized(t *testing.T) {
	ts := startServer(t, Config{}, false)
	limit := ts.maxValue()
	for _, n := range []int{limit + 1, limit + 100_000, 3 << 20} {
		t.Run(fmt.Sprintf("value of %d bytes", n), func(t *testing.T) {
			c := ts.raw(t)
			v := strings.Repeat("x", n)
			k := fmt.Sprintf("big:%d", n)
			r := c.do(t, "SET", k, v)
			if ts.redis {
				if r != respStatus("OK") {
					t.Errorf("Redis SET of %d bytes: %#v", n, r)
				}
			} else if e, ok := r.(respError); !ok || !strings.HasPrefix(string(e), "ERR") || !strings.Contains(string(e), strconv.Itoa(limit)) {
				t.Errorf("SET of a %d-byte value: %#.200v, want an -ERR naming %d", n, r, limit)
			}
			if r := c.do(t, "PING"); r != respStatus("PONG") {
				t.Fatalf("PING after a %d-byte value: %#v", n, r)
			}
			if r := c.do(t, "GET", k); !ts.redis && r != nil {
				t.Errorf("GET after the refused SET of %d bytes: %#.100v", n, r)
			}
			// In a pipeline, with commands after it.
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go c.Write(append(append(encode("SET", "before", "1"), encode("SET", k, v)...), encode("INCR", "before")...))
			want := []any{respStatus("OK"), nil, int64(2)}
			for i, w := range want {
				r, err := c.read()
				if err != nil {
					t.Fatalf("pipeline reply %d: %v", i, err)
				}
				if i == 1 {
					if _, isErr := r.(respError); isErr == ts.redis {
						t.Errorf("pipelined SET of %d bytes: %#.100v", n, r)
					}
					continue
				}
				if r != w {
					t.Errorf("pipeline reply %d: %#v, want %#v", i, r, w)
				}
			}
			c.do(t, "DEL", "before", k)
		})
	}
	t.Run("key over the limit", func(t *testing.T) {
		c := ts.raw(t)
		k := strings.Repeat("K", ts.maxKey()+1)
		r := c.do(t, "SET", k, "v")
		if !ts.redis {
			if e, ok := r.(respError); !ok || !strings.Contains(string(e), strconv.Itoa(ts.maxKey())) {
				t.Errorf("SET with a %d-byte key: %#v, want an -ERR naming %d", len(k), r, ts.maxKey())
			}
		}
		if r := c.do(t, "PING"); r != respStatus("PONG") {
			t.Fatalf("PING after a long key: %#v", r)
		}
		c.do(t, "DEL", k)
	})
	if r := ts.raw(t).do(t, "DBSIZE"); r != int64(0) {
		t.Errorf("DBSIZE after refused writes: %#v", r)
	}
}

// TestInlineCommands: telnet-style commands.
func TestInlineCommands(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("PING\r\nSET il:a hello\r\nGET il:a\nping  there\r\nEXISTS il:a il:b\r\n"))
	for i, want := range []any{respStatus("PONG"), respStatus("OK"), "hello", "there", int64(1)} {
		r, err := c.read()
		if err != nil || r != want {
			t.Errorf("inline reply %d: %#v, %v; want %#v", i, r, err, want)
		}
	}
}

// TestRawPipeline: many commands in one write; every reply comes back in order.
func TestRawPipeline(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	const n = 500
	var buf []byte
	var want []any
	for i := 1; i <= n; i++ {
		k := fmt.Sprintf("rp:%d", i%7)
		buf = append(buf, encode("INCR", "rp:n")...)
		buf = append(buf, encode("SET", k, strconv.Itoa(i))...)
		buf = append(buf, encode("GET", k)...)
		buf = append(buf, encode("MGET", k, "rp:none")...)
		want = append(want, int64(i), respStatus("OK"), strconv.Itoa(i), []any{strconv.Itoa(i), nil})
	}
	buf = append(buf, encode("MULTI")...)
	buf = append(buf, encode("INCR", "rp:n")...)
	buf = append(buf, encode("GET", "rp:n")...)
	buf = append(buf, encode("EXEC")...)
	want = append(want, respStatus("OK"), respStatus("QUEUED"), respStatus("QUEUED"), []any{int64(n + 1), strconv.Itoa(n + 1)})
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go c.Write(buf)
	readReplies(t, c, want)
}

func TestQuit(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Commands pipelined after QUIT are not run.
	c.Write(append(append(encode("SET", "q:a", "1"), encode("QUIT")...), encode("SET", "q:b", "1")...))
	for i, want := range []any{respStatus("OK"), respStatus("OK")} {
		r, err := c.read()
		if err != nil || r != want {
			t.Errorf("reply %d: %#v, %v", i, r, err)
		}
	}
	c.expectClosed(t, 5*time.Second)
	if r := ts.raw(t).do(t, "MGET", "q:a", "q:b"); fmt.Sprint(r) != fmt.Sprint([]any{"1", nil}) {
		t.Errorf("MGET q:a q:b after QUIT: %#v", r)
	}
}
