package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// push reads c's next reply, which must be a push (or, for a RESP2
// subscriber, a message) within d; nil if none comes.
func (c *rawConn) push(t *testing.T, d time.Duration) any {
	t.Helper()
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	r, err := c.read()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err != nil {
		t.Fatalf("reading a push: %v", err)
	}
	return r
}

// resp3 is a raw connection switched to RESP3 with tracking set by args.
func resp3(t *testing.T, ts *testServer, args ...string) *rawConn {
	t.Helper()
	c := ts.raw(t)
	if _, ok := c.do(t, "HELLO", "3").([]any); !ok {
		t.Fatal("HELLO 3 did not answer a map")
	}
	if len(args) > 0 {
		if r := c.do(t, append([]string{"CLIENT", "TRACKING"}, args...)...); r != respStatus("OK") {
			t.Fatalf("CLIENT TRACKING %q: %#v", args, r)
		}
	}
	return c
}

func invalidation(keys ...string) string {
	return fmt.Sprint(respPush{"invalidate", toAny(keys)})
}

func toAny(keys []string) []any {
	a := make([]any, len(keys))
	for i, k := range keys {
		a[i] = k
	}
	return a
}

// CLIENT TRACKING: a tracking client hears of every write of a key it
// read, whoever wrote it (another client, MULTI/EXEC, the expirer), once
// per read in the default mode; BCAST by prefix; OPTIN only after CLIENT
// CACHING yes; RESP2 through REDIRECT to a subscriber.
func TestClientTracking(t *testing.T) {
	ts := startServer(t, Config{}, true)
	w := ts.raw(t) // the writer
	set := func(args ...string) {
		t.Helper()
		if r := w.do(t, args...); r != respStatus("OK") {
			t.Fatalf("%q: %#v", args, r)
		}
	}
	expect := func(c *rawConn, want string) {
		t.Helper()
		if got := fmt.Sprint(c.push(t, 5*time.Second)); got != want {
			t.Fatalf("push %s, want %s", got, want)
		}
	}
	expectNone := func(c *rawConn) {
		t.Helper()
		if got := c.push(t, 300*time.Millisecond); got != nil {
			t.Fatalf("unexpected push %v", got)
		}
	}

	t.Run("default", func(t *testing.T) {
		c := resp3(t, ts, "ON")
		if r := c.do(t, "GET", "tr:a"); r != nil {
			t.Fatalf("GET tr:a: %#v", r)
		}
		set("SET", "tr:a", "1")
		expect(c, invalidation("tr:a"))
		set("SET", "tr:a", "2") // not read since: forgotten
		expectNone(c)
		if r := c.do(t, "MGET", "tr:a", "tr:b"); fmt.Sprint(r) != "[2 <nil>]" {
			t.Fatalf("MGET: %#v", r)
		}
		set("MULTI")
		w.do(t, "SET", "tr:b", "x")
		w.do(t, "INCR", "tr:n")
		if r, ok := w.do(t, "EXEC").([]any); !ok || len(r) != 2 {
			t.Fatalf("EXEC: %#v", r)
		}
		expect(c, invalidation("tr:b"))
		set("SET", "tr:e", "v", "PX", "50")
		if r := c.do(t, "GET", "tr:e"); r != "v" {
			t.Fatalf("GET tr:e: %#v", r)
		}
		expect(c, invalidation("tr:e")) // deleted by the expirer
		set("SET", "tr:a", "3")
		expect(c, invalidation("tr:a")) // MGET read it again
	})

	t.Run("multi", func(t *testing.T) {
		// A read queued in MULTI is tracked from EXEC on: a write between
		// the QUEUED and EXEC is read by EXEC, and the next is told.
		c := resp3(t, ts, "ON")
		if r := c.do(t, "MULTI"); r != respStatus("OK") {
			t.Fatal(r)
		}
		c.do(t, "GET", "mu:a")
		set("SET", "mu:a", "1")
		expectNone(c)
		if r := c.do(t, "EXEC"); fmt.Sprint(r) != "[1]" {
			t.Fatalf("EXEC: %#v", r)
		}
		set("SET", "mu:a", "2")
		expect(c, invalidation("mu:a"))
	})

	t.Run("bcast", func(t *testing.T) {
		c := resp3(t, ts, "ON", "BCAST", "PREFIX", "bc:", "PREFIX", "bd:")
		set("SET", "other", "1")
		set("SET", "bd:1", "1")
		expect(c, invalidation("bd:1"))
		set("SET", "bc:2", "1")
		expect(c, invalidation("bc:2"))
		info, _ := c.do(t, "CLIENT", "TRACKINGINFO").([]any)
		if fmt.Sprint(info) != "[flags [on bcast] redirect 0 prefixes [bc: bd:]]" {
			t.Errorf("CLIENT TRACKINGINFO: %v", info)
		}
	})

	t.Run("optin", func(t *testing.T) {
		c := resp3(t, ts, "ON", "OPTIN")
		c.do(t, "GET", "op:a") // not tracked
		if r := c.do(t, "CLIENT", "CACHING", "yes"); r != respStatus("OK") {
			t.Fatal(r)
		}
		c.do(t, "GET", "op:b") // tracked
		c.do(t, "GET", "op:c") // not: CACHING holds for one command
		set("SET", "op:a", "1")
		set("SET", "op:c", "1")
		set("SET", "op:b", "1")
		expect(c, invalidation("op:b"))
		expectNone(c)
		if r := c.do(t, "CLIENT", "CACHING", "no"); !strings.Contains(fmt.Sprint(r), "OPTOUT") {
			t.Errorf("CLIENT CACHING no in OPTIN mode: %#v", r)
		}
	})

	t.Run("redirect", func(t *testing.T) {
		sub := ts.raw(t)
		id := sub.do(t, "CLIENT", "ID").(int64)
		if r := sub.do(t, "SUBSCRIBE", "__redis__:invalidate"); fmt.Sprint(r) != "[subscribe __redis__:invalidate 1]" {
			t.Fatalf("SUBSCRIBE: %#v", r)
		}
		c := ts.raw(t) // RESP2
		if r := c.do(t, "CLIENT", "TRACKING", "ON", "REDIRECT", strconv.FormatInt(id, 10)); r != respStatus("OK") {
			t.Fatal(r)
		}
		if r := c.do(t, "CLIENT", "GETREDIR"); r != id {
			t.Errorf("CLIENT GETREDIR: %#v, want %d", r, id)
		}
		c.do(t, "GET", "rd:a")
		set("SET", "rd:a", "1")
		if got := fmt.Sprint(sub.push(t, 5*time.Second)); got != "[message __redis__:invalidate [rd:a]]" {
			t.Fatalf("message to the subscriber: %s", got)
		}
		if r := sub.do(t, "GET", "rd:a"); !strings.Contains(fmt.Sprint(r), "only (P|S)SUBSCRIBE") {
			t.Errorf("GET while subscribed in RESP2: %#v", r)
		}
		if r := sub.do(t, "PING"); fmt.Sprint(r) != "[pong ]" {
			t.Errorf("PING while subscribed: %#v", r)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if ts.redis {
			t.Skip("bpfdb's errors (Redis has pub/sub)")
		}
		c := ts.raw(t)
		for args, want := range map[string]string{
			"CLIENT TRACKING ON OPTIN OPTOUT":   "both OPTIN and OPTOUT",
			"CLIENT TRACKING ON PREFIX x":       "requires BCAST",
			"CLIENT TRACKING ON BCAST OPTIN":    "not compatible with BCAST",
			"CLIENT TRACKING ON REDIRECT 99999": "does not exist",
			"CLIENT CACHING yes":                "OPTIN or OPTOUT",
			"SUBSCRIBE news":                    "no pub/sub",
		} {
			if r, ok := c.do(t, strings.Fields(args)...).(respError); !ok || !strings.Contains(string(r), want) {
				t.Errorf("%s: %#v, want an error with %q", args, r, want)
			}
		}
		if r := c.do(t, "CLIENT", "GETREDIR"); r != int64(-1) {
			t.Errorf("CLIENT GETREDIR without tracking: %#v", r)
		}
	})
}

// Without a log there is no stream of commits to invalidate from: CLIENT
// TRACKING ON is refused, naming why.
func TestClientTrackingNeedsLog(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if ts.redis {
		t.Skip("bpfdb only")
	}
	if r, ok := ts.raw(t).do(t, "CLIENT", "TRACKING", "ON").(respError); !ok || !strings.Contains(string(r), "--dir") {
		t.Errorf("CLIENT TRACKING ON without a log: %#v", r)
	}
}
