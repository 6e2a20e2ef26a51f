package server

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// field is infoField's value, "" when absent.
func field(info, name string) string {
	v, _ := infoField(info, name)
	return v
}

// INFO commandstats and errorstats count calls, failures and refusals as
// Redis does, for commands run on their own and those the loop gathers;
// CONFIG RESETSTAT zeroes them. (Also against redis-server: BPFDB_TEST_REDIS=1.)
func TestCommandStats(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	mustStatus := func(args ...string) {
		t.Helper()
		if r := c.do(t, args...); r != respStatus("OK") {
			t.Fatalf("%q: %#v", args, r)
		}
	}
	mustStatus("CONFIG", "RESETSTAT")
	c.do(t, "GET", "cs:k")                // fast path, a miss
	mustStatus("SET", "cs:k", "v")        // fast path
	c.do(t, "GET", "cs:k")                // a hit
	c.do(t, "INCR", "cs:k")               // fast path: not an integer, failed
	c.do(t, "APPEND", "cs:k", "w")        // on its own
	c.do(t, "GETRANGE", "cs:k", "x", "1") // on its own: not an integer, failed
	c.do(t, "GET")                        // wrong arity: rejected
	c.do(t, "NOSUCHCOMMAND")              // unknown
	info, ok := c.do(t, "INFO", "commandstats").(string)
	if !ok {
		t.Fatalf("INFO commandstats: %#v", info)
	}
	for name, want := range map[string]string{
		"cmdstat_get":      `^calls=2,usec=\d+,usec_per_call=[\d.]+,rejected_calls=1,failed_calls=0$`,
		"cmdstat_set":      `^calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=0$`,
		"cmdstat_incr":     `^calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=1$`,
		"cmdstat_append":   `^calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=0$`,
		"cmdstat_getrange": `^calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=1$`,
	} {
		if got := field(info, name); !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("INFO commandstats %s: %q, want %s\n%s", name, got, want, info)
		}
	}
	info, _ = c.do(t, "INFO", "errorstats").(string)
	if got := field(info, "errorstat_ERR"); got != "count=4" {
		t.Errorf("errorstat_ERR: %q, want count=4 (INCR, GETRANGE, arity, unknown)\n%s", got, info)
	}
	info, _ = c.do(t, "INFO", "stats").(string)
	if got := field(info, "total_error_replies"); got != "4" {
		t.Errorf("total_error_replies: %q, want 4", got)
	}
	if got := field(info, "keyspace_hits") + "/" + field(info, "keyspace_misses"); got != "1/1" {
		t.Errorf("keyspace hits/misses: %s, want 1/1", got)
	}
	if info, _ = c.do(t, "INFO").(string); strings.Contains(info, "cmdstat_") || !strings.Contains(info, "errorstat_ERR") {
		t.Errorf("INFO with no section: commandstats are for INFO all, errorstats are in the default\n%s", info)
	}
	mustStatus("CONFIG", "RESETSTAT")
	info, _ = c.do(t, "INFO", "commandstats", "errorstats").(string)
	if strings.Contains(info, "cmdstat_get:") || strings.Contains(info, "errorstat_") {
		t.Errorf("after CONFIG RESETSTAT:\n%s", info)
	}
}

// SLOWLOG keeps the commands slower than slowlog-log-slower-than, newest
// first, up to slowlog-max-len, with their arguments, client and name.
func TestSlowlog(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	c.do(t, "CLIENT", "SETNAME", "slowpoke")
	for _, args := range [][]string{
		{"CONFIG", "SET", "slowlog-log-slower-than", "0"}, // every command
		{"CONFIG", "SET", "slowlog-max-len", "3"},
		{"SLOWLOG", "RESET"},
	} {
		if r := c.do(t, args...); r != respStatus("OK") {
			t.Fatalf("%q: %#v", args, r)
		}
	}
	long := strings.Repeat("x", 200)
	c.do(t, "APPEND", "sl:k", long)
	c.do(t, "STRLEN", "sl:k") // in a chain run: not timed on its own (Redis logs it)
	c.do(t, "ECHO", "hi")
	if n := c.do(t, "SLOWLOG", "LEN"); n != int64(3) {
		t.Fatalf("SLOWLOG LEN with slowlog-max-len 3: %#v", n)
	}
	got, ok := c.do(t, "SLOWLOG", "GET", "-1").([]any)
	if !ok || len(got) != 3 {
		t.Fatalf("SLOWLOG GET -1: %#v", got)
	}
	newest := got[0].([]any)
	if args := newest[3].([]any); len(args) != 2 || args[0] != "SLOWLOG" || newest[5] != "slowpoke" {
		t.Errorf("newest entry: %#v, want SLOWLOG LEN from client slowpoke", newest)
	}
	if !ts.redis {
		appended := got[2].([]any)[3].([]any)
		if len(appended) != 3 || appended[0] != "APPEND" || appended[2] != long[:128]+"... (72 more bytes)" {
			t.Errorf("APPEND's entry: %#v", got[2])
		}
	}
	if r := c.do(t, "SLOWLOG", "RESET"); r != respStatus("OK") {
		t.Fatal(r)
	}
	if help, ok := c.do(t, "SLOWLOG", "HELP").([]any); !ok || len(help) < 4 {
		t.Errorf("SLOWLOG HELP: %#v", help)
	}
}

// LATENCY reports events at or above latency-monitor-threshold; CONFIG SET
// changes what may, and refuses what may not, change at run time.
func TestLatencyAndConfigSet(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	if r := c.do(t, "CONFIG", "SET", "latency-monitor-threshold", "1"); r != respStatus("OK") {
		t.Fatal(r)
	}
	if !ts.redis {
		ts.srv.latency.observe("command", 25*time.Millisecond, 1) // as a slow command would
		latest, ok := c.do(t, "LATENCY", "LATEST").([]any)
		if !ok || len(latest) != 1 {
			t.Fatalf("LATENCY LATEST: %#v", latest)
		}
		if ev := latest[0].([]any); ev[0] != "command" || ev[2] != int64(25) || ev[3] != int64(25) {
			t.Errorf("LATENCY LATEST: %#v", ev)
		}
		if h, ok := c.do(t, "LATENCY", "HISTORY", "command").([]any); !ok || len(h) != 1 {
			t.Errorf("LATENCY HISTORY command: %#v", h)
		}
		if n := c.do(t, "LATENCY", "RESET"); n != int64(1) {
			t.Errorf("LATENCY RESET: %#v", n)
		}
		if r := c.do(t, "CONFIG", "SET", "maxmemory", "1gb"); !strings.Contains(string(r.(respError)), "latency-monitor-threshold") {
			t.Errorf("CONFIG SET maxmemory: %#v, want an error naming what may change", r)
		}
	}
	if r := c.do(t, "CONFIG", "SET", "slowlog-max-len", "-5"); func() bool { _, ok := r.(respError); return !ok }() {
		t.Errorf("CONFIG SET slowlog-max-len -5: %#v", r)
	}
	if r := c.do(t, "CONFIG", "SET", "slowlog-max-len", "7", "latency-monitor-threshold", "0"); r != respStatus("OK") {
		t.Fatal(r)
	}
	got, _ := c.do(t, "CONFIG", "GET", "slowlog-max-len").([]any)
	if len(got) != 2 || got[1] != "7" {
		t.Errorf("CONFIG GET slowlog-max-len: %#v", got)
	}
	if latest, ok := c.do(t, "LATENCY", "LATEST").([]any); !ok || len(latest) != 0 {
		t.Errorf("LATENCY LATEST after RESET: %#v", latest)
	}
}

// COMMAND INFO gives key specs that cluster clients route by; go-redis
// parses the whole COMMAND reply.
func TestCommandKeySpecs(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmds, err := ts.client(t).Command(ctx).Result()
	if err != nil {
		t.Fatalf("COMMAND through go-redis: %v", err)
	}
	for name, want := range map[string][3]int8{"get": {1, 1, 1}, "mset": {1, -1, 2}, "rename": {1, 2, 1}} {
		ci := cmds[name]
		if ci == nil || ci.FirstKeyPos != want[0] || ci.LastKeyPos != want[1] || ci.StepCount != want[2] {
			t.Errorf("COMMAND %s: %+v, want keys %v", name, ci, want)
		}
	}
	info, _ := ts.raw(t).do(t, "COMMAND", "INFO", "mset").([]any)
	specs := info[0].([]any)[8].([]any)
	if got := fmt.Sprint(specs); len(specs) != 1 || !strings.Contains(got, "begin_search [type index spec [index 1]]") ||
		!strings.Contains(got, "lastkey -1 keystep 2 limit 0") {
		t.Errorf("COMMAND INFO mset key specs: %s", got)
	}
}
