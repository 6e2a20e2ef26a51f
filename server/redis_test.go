package server

// Command-level tests through go-redis v9: every command bpfdb serves, with
// its options, error replies and the engine's limits; pipelines;
// MULTI/EXEC/DISCARD/WATCH including concurrent lost-update and
// bank-transfer checks; AUTH; HELLO; INFO; metrics; shutdown.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/redis/go-redis/v9"
)

// --- expected replies ---

// A step's want is one of: a string (bulk or status reply), an int (integer
// reply), []any (array, elements matched recursively), isNil{} (a null
// reply), anyOK{} (any reply that is not an error), errLike (an error
// reply), or a func(any) error for anything else.
type (
	isNil    struct{}
	anyOK    struct{}
	anyReply struct{}                          // anything, error or not
	errLike  struct{ prefix, contains string } // contains is matched case-insensitively
	skip     struct{}                          // as step.redis: the step is not run against Redis
)

func errPrefix(p string) errLike { return errLike{prefix: p} }

// textHas accepts a string reply holding every one of parts.
func textHas(parts ...string) func(any) error {
	return func(v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%#v is not a string", v)
		}
		for _, p := range parts {
			if !strings.Contains(s, p) {
				return fmt.Errorf("%q lacks %q", s, p)
			}
		}
		return nil
	}
}
func errHas(s string) errLike { return errLike{prefix: "ERR", contains: s} }

type step struct {
	args  []any
	want  any
	redis any // what Redis answers where bpfdb differs on purpose; nil: the same as want
}

func a(args ...any) []any { return args }

// match checks a go-redis reply (val, err) against want.
func match(val any, err error, want any) error {
	fail := func() error { return fmt.Errorf("got %s, want %s", showReply(val, err), showWant(want)) }
	switch w := want.(type) {
	case isNil:
		if err == redis.Nil || (err == nil && val == nil) {
			return nil
		}
		return fail()
	case anyOK:
		if err == nil || err == redis.Nil {
			return nil
		}
		return fail()
	case anyReply:
		return nil
	case errLike:
		if err == nil || err == redis.Nil {
			return fail()
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, w.prefix) || !strings.Contains(strings.ToLower(msg), strings.ToLower(w.contains)) {
			return fail()
		}
		return nil
	case func(any) error:
		if err != nil {
			return fail()
		}
		if e := w(val); e != nil {
			return fmt.Errorf("%s: %v", showReply(val, err), e)
		}
		return nil
	case []any:
		if err != nil {
			return fail()
		}
		g, ok := val.([]any)
		if !ok || len(g) != len(w) {
			return fail()
		}
		for i := range w {
			ev, eerr := g[i], error(nil)
			if e, ok := ev.(error); ok {
				ev, eerr = nil, e
			} else if ev == nil {
				eerr = redis.Nil
			}
			if e := match(ev, eerr, w[i]); e != nil {
				return fmt.Errorf("element %d: %v (whole reply %s)", i, e, showReply(val, err))
			}
		}
		return nil
	case int:
		if err == nil && reflect.DeepEqual(val, int64(w)) {
			return nil
		}
		return fail()
	default:
		if err == nil && reflect.DeepEqual(val, want) {
			return nil
		}
		return fail()
	}
}

func showReply(val any, err error) string {
	if err == redis.Nil {
		return "nil"
	}
	if err != nil {
		return fmt.Sprintf("error %q", err.Error())
	}
	s := fmt.Sprintf("%#v", val)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func showWant(w any) string {
	switch w := w.(type) {
	case isNil:
		return "nil"
	case anyOK:
		return "any non-error reply"
	case errLike:
		return fmt.Sprintf("an error starting %q containing %q", w.prefix, w.contains)
	case func(any) error:
		return "a reply passing a check"
	}
	s := fmt.Sprintf("%#v", w)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func argString(args []any) string {
	parts := make([]string, len(args))
	for i, x := range args {
		s := fmt.Sprint(x)
		if len(s) > 40 {
			s = fmt.Sprintf("%.20s...(%d bytes)", s, len(s))
		}
		parts[i] = strconv.Quote(s)
	}
	return strings.Join(parts, " ")
}

// runSteps runs steps in order on one connection.
func runSteps(t *testing.T, ts *testServer, c *redis.Conn, steps []step) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for i, st := range steps {
		want := st.want
		if ts.redis && st.redis != nil {
			if _, ok := st.redis.(skip); ok {
				continue
			}
			want = st.redis
		}
		cmd := c.Do(ctx, st.args...)
		if err := match(cmd.Val(), cmd.Err(), want); err != nil {
			t.Errorf("step %d: %s: %v", i, argString(st.args), err)
		}
	}
}

// isInt accepts an integer reply for which ok holds.
func isInt(what string, ok func(int64) bool) func(any) error {
	return func(v any) error {
		n, isn := v.(int64)
		if !isn || !ok(n) {
			return fmt.Errorf("want an integer %s", what)
		}
		return nil
	}
}

// pairs turns a flat RESP2 array of field, value pairs into a map.
func pairs(v any) (map[string]any, error) {
	arr, ok := v.([]any)
	if !ok || len(arr)%2 != 0 {
		return nil, fmt.Errorf("not an array of pairs: %#v", v)
	}
	m := make(map[string]any, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		k, ok := arr[i].(string)
		if !ok {
			return nil, fmt.Errorf("field %d is %#v, not a string", i, arr[i])
		}
		m[k] = arr[i+1]
	}
	return m, nil
}

// --- the command table ---

func TestCommands(t *testing.T) {
	ts := startServer(t, Config{}, false)
	k64 := strings.Repeat("k", engine.InlineKeyLen)   // the longest key the index holds as itself
	k65 := strings.Repeat("k", engine.InlineKeyLen+1) // held by its digest
	kMax := strings.Repeat("k", ts.maxKey())          // the longest key
	kOver := strings.Repeat("k", ts.maxKey()+1)       // one byte too long
	keyLimit := strconv.Itoa(ts.maxKey())             // what a refusal names
	maxVal := ts.maxValue()                           // the engine's MaxValueLen (1 MiB by default)
	vMax := strings.Repeat("v", maxVal)               // the longest value
	vOver := strings.Repeat("w", maxVal+1)            // one byte too long
	limit := strconv.Itoa(maxVal)                     // what a refusal names
	v1016 := strings.Repeat("t", 1016)                // with its 8-byte deadline, a slot's 1024 bytes
	v1017 := strings.Repeat("u", 1017)                // with its deadline, more than a slot: stored in pages
	v2000 := strings.Repeat("s", 2000)                // more than a slot, with a deadline or not
	v100k := strings.Repeat("h", 100<<10)             // many pages
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	futureMs := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	const notInt = "ERR value is not an integer or out of range"
	const overflow = "ERR increment or decrement would overflow"
	wrongArgs := func(cmd string) errLike {
		return errPrefix(fmt.Sprintf("ERR wrong number of arguments for '%s' command", cmd))
	}
	futureInt, _ := strconv.ParseInt(future, 10, 64)
	futureMsInt, _ := strconv.ParseInt(futureMs, 10, 64)
	between := func(lo, hi int64) func(any) error {
		return isInt(fmt.Sprintf("in [%d, %d]", lo, hi), func(n int64) bool { return lo <= n && n <= hi })
	}
	futureMsUp := strconv.FormatInt(futureInt*1000+500, 10)   // EXPIRETIME rounds it up
	futureMsDown := strconv.FormatInt(futureInt*1000+499, 10) // and this down

	groups := []struct {
		name  string
		steps []step
	}{
		{"ping_echo", []step{
			{a("PING"), "PONG", nil},
			{a("ping", "hello world"), "hello world", nil},
			{a("PING", "a", "b"), wrongArgs("ping"), nil},
			{a("ECHO", "hi there"), "hi there", nil},
			{a("echo", ""), "", nil},
			{a("ECHO"), wrongArgs("echo"), nil},
			{a("ECHO", "a", "b"), wrongArgs("echo"), nil},
		}},
		{"unknown_command", []step{
			{a("NOSUCHCOMMAND", "x"), errPrefix("ERR unknown command"), nil},
			{a("LPUSH", "l", "x"), errPrefix("ERR unknown command"), skip{}},
			{a("PING"), "PONG", nil},
		}},
		{"get_set", []step{
			{a("GET", "gs:a"), isNil{}, nil},
			{a("SET", "gs:a", "v1"), "OK", nil},
			{a("GET", "gs:a"), "v1", nil},
			{a("set", "gs:a", "v2"), "OK", nil},
			{a("Get", "gs:a"), "v2", nil},
			{a("SET", "gs:a", "v3", "NX"), isNil{}, nil},
			{a("GET", "gs:a"), "v2", nil},
			{a("SET", "gs:b", "v", "NX"), "OK", nil},
			{a("GET", "gs:b"), "v", nil},
			{a("SET", "gs:c", "v", "XX"), isNil{}, nil},
			{a("GET", "gs:c"), isNil{}, nil},
			{a("SET", "gs:b", "w", "XX"), "OK", nil},
			{a("GET", "gs:b"), "w", nil},
			{a("SET", "gs:b", "x", "GET"), "w", nil},
			{a("GET", "gs:b"), "x", nil},
			{a("SET", "gs:d", "x", "GET"), isNil{}, nil},
			{a("GET", "gs:d"), "x", nil},
			{a("SET", "gs:b", "y", "nx", "get"), "x", nil},
			{a("GET", "gs:b"), "x", nil},
			{a("SET", "gs:e", "y", "NX", "GET"), isNil{}, nil},
			{a("GET", "gs:e"), "y", nil},
			{a("SET", "gs:e", "z", "XX", "GET"), "y", nil},
			{a("GET", "gs:e"), "z", nil},
			{a("SET", "gs:f", "z", "XX", "GET"), isNil{}, nil},
			{a("GET", "gs:f"), isNil{}, nil},
			{a("SET", "gs:a", "v", "NX", "XX"), errPrefix("ERR syntax error"), nil},
			{a("SET", "gs:a", "v", "BOGUS"), errPrefix("ERR syntax error"), nil},
			{a("GET", "gs:a"), "v2", nil},
			{a("SET", "gs:a"), wrongArgs("set"), nil},
			{a("SET"), wrongArgs("set"), nil},
			{a("GET"), wrongArgs("get"), nil},
			{a("GET", "gs:a", "gs:b"), wrongArgs("get"), nil},
			// Empty values and keys, binary keys and values.
			{a("SET", "gs:empty", ""), "OK", nil},
			{a("GET", "gs:empty"), "", nil},
			{a("STRLEN", "gs:empty"), 0, nil},
			{a("EXISTS", "gs:empty"), 1, nil},
			{a("SET", "", "empty key"), "OK", nil},
			{a("GET", ""), "empty key", nil},
			{a("DEL", ""), 1, nil},
			{a("SET", "gs:\x00\xff\r\n*1\r\n", "v\r\n$-1\r\n\x00"), "OK", nil},
			{a("GET", "gs:\x00\xff\r\n*1\r\n"), "v\r\n$-1\r\n\x00", nil},
		}},
		{"set_ttl_options", []step{
			{a("SET", "ttl:a", "v", "EX", "100"), "OK", nil},
			{a("TTL", "ttl:a"), between(99, 100), nil},
			{a("SET", "ttl:b", "v", "PX", "100000"), "OK", nil},
			{a("PTTL", "ttl:b"), between(98000, 100000), nil},
			{a("SET", "ttl:c", "v", "EXAT", future), "OK", nil},
			{a("EXPIRETIME", "ttl:c"), futureInt, nil},
			{a("SET", "ttl:d", "v", "PXAT", futureMs), "OK", nil},
			{a("PEXPIRETIME", "ttl:d"), futureMsInt, nil},
			{a("SET", "ttl:d", "w", "KEEPTTL"), "OK", nil},
			{a("PEXPIRETIME", "ttl:d"), futureMsInt, nil},
			{a("GET", "ttl:d"), "w", nil},
			{a("SET", "ttl:d", "x"), "OK", nil},
			{a("TTL", "ttl:d"), -1, nil},
			{a("TTL", "ttl:none"), -2, nil},
			{a("PTTL", "ttl:none"), -2, nil},
			{a("EXPIRETIME", "ttl:d"), -1, nil},
			{a("SET", "ttl:f", "v", "NX", "ex", "100"), "OK", nil},
			{a("SET", "ttl:f", "w", "NX", "PX", "100"), isNil{}, nil},
			{a("SET", "ttl:f", "w", "XX", "PX", "100000", "GET"), "v", nil},
			{a("PTTL", "ttl:f"), between(98000, 100000), nil},
			{a("SET", "ttl:g", "v", "EX", "0"), errPrefix("ERR invalid expire time in 'set' command"), nil},
			{a("SET", "ttl:g", "v", "PX", "-1"), errPrefix("ERR invalid expire time in 'set' command"), nil},
			{a("SET", "ttl:g", "v", "EX", "9223372036854775807"), errPrefix("ERR invalid expire time in 'set' command"), nil},
			{a("SET", "ttl:g", "v", "PX", "9223372036854775807"), errPrefix("ERR invalid expire time in 'set' command"), nil},
			{a("SET", "ttl:g", "v", "PX", "abc"), errPrefix(notInt), nil},
			{a("SET", "ttl:g", "v", "EX", "10", "PX", "10"), errPrefix("ERR syntax error"), nil},
			{a("SET", "ttl:g", "v", "EX", "10", "KEEPTTL"), errPrefix("ERR syntax error"), nil},
			{a("SET", "ttl:g", "v", "EX"), errPrefix("ERR syntax error"), nil},
			{a("EXISTS", "ttl:g"), 0, nil},
			{a("SET", "ttl:g", "v", "EXAT", "1"), "OK", nil}, // in the past: gone at once
			{a("EXISTS", "ttl:g"), 0, nil},
			{a("SET", "ttl:big", v1017, "EX", "100"), "OK", nil},
			{a("TTL", "ttl:big"), between(99, 100), nil},
			{a("GET", "ttl:big"), v1017, nil},
			// An option may be repeated, the last time winning; NX and XX,
			// KEEPTTL and a time, or two kinds of time exclude each other.
			{a("SET", "ttl:h", "v", "EX", "10", "EX", "200"), "OK", nil},
			{a("TTL", "ttl:h"), between(199, 200), nil},
			{a("SET", "ttl:h", "v", "PX", "abc", "PX", "300000"), "OK", nil},
			{a("TTL", "ttl:h"), between(299, 300), nil},
			{a("SET", "ttl:h", "w", "KEEPTTL", "KEEPTTL", "GET", "GET"), "v", nil},
			{a("TTL", "ttl:h"), between(299, 300), nil},
			{a("SET", "ttl:h", "w", "NX", "NX"), isNil{}, nil},
			{a("SET", "ttl:h", "x", "XX", "XX", "EX", "100"), "OK", nil},
			{a("TTL", "ttl:h"), between(99, 100), nil},
			{a("SET", "ttl:h", "v", "EX", "10", "EX"), errPrefix("ERR syntax error"), nil},
			{a("SET", "ttl:h", "v", "EXAT", future, "PXAT", futureMs), errPrefix("ERR syntax error"), nil},
			{a("SET", "ttl:h", "v", "KEEPTTL", "PX", "10"), errPrefix("ERR syntax error"), nil},
			{a("SET", "ttl:h", "v", "XX", "NX"), errPrefix("ERR syntax error"), nil},
			{a("SET", "ttl:h", "v", "PERSIST"), errPrefix("ERR syntax error"), nil},
			{a("SET", "ttl:h", "v", "EXAT", "9223372036854776"), errPrefix("ERR invalid expire time in 'set' command"), nil},
			{a("SET", "ttl:h", "v", "NX", "EX", "0"), errPrefix("ERR invalid expire time in 'set' command"), nil},
			{a("GET", "ttl:h"), "x", nil},
			// The lock idiom: taken once, then refused while held.
			{a("SET", "ttl:lock", "token1", "NX", "PX", "30000"), "OK", nil},
			{a("SET", "ttl:lock", "token2", "NX", "PX", "30000"), isNil{}, nil},
			{a("GET", "ttl:lock"), "token1", nil},
			{a("PTTL", "ttl:lock"), between(29000, 30000), nil},
			// Any value may have a TTL: one that fills a slot with its
			// deadline, one byte more, 2000 bytes and 100 KiB (stored
			// in pages), whichever command gives it the deadline.
			{a("SET", "ttl:len", v1016, "PX", "100000"), "OK", nil},
			{a("STRLEN", "ttl:len"), 1016, nil},
			{a("SET", "ttl:len", v1017, "KEEPTTL"), "OK", nil},
			{a("PTTL", "ttl:len"), between(98000, 100000), nil},
			{a("GET", "ttl:len"), v1017, nil},
			{a("SET", "ttl:len", v2000, "PX", "100000"), "OK", nil},
			{a("GET", "ttl:len"), v2000, nil},
			{a("SET", "ttl:len", v1016, "KEEPTTL", "GET"), v2000, nil},
			{a("GET", "ttl:len"), v1016, nil},
			{a("PTTL", "ttl:len"), between(98000, 100000), nil},
			{a("SET", "ttl:len2", v1017), "OK", nil},
			{a("EXPIRE", "ttl:len2", "100"), 1, nil},
			{a("TTL", "ttl:len2"), between(99, 100), nil},
			{a("GET", "ttl:len2"), v1017, nil},
			{a("SET", "ttl:len3", v100k, "EX", "100"), "OK", nil},
			{a("TTL", "ttl:len3"), between(99, 100), nil},
			{a("GET", "ttl:len3"), v100k, nil},
			{a("GETEX", "ttl:len3", "PERSIST"), v100k, nil},
			{a("TTL", "ttl:len3"), -1, nil},
			{a("PEXPIRE", "ttl:len3", "100000"), 1, nil},
			{a("GETDEL", "ttl:len3"), v100k, nil},
			{a("EXISTS", "ttl:len3"), 0, nil},
			// A value over the limit is refused, with a TTL as without,
			// naming the limit (Redis takes it).
			{a("SET", "ttl:len", vOver, "EX", "100"), errHas(limit), "OK"},
			{a("GET", "ttl:len"), v1016, vOver},
			{a("PING"), "PONG", nil},
		}},
		{"setex_getex", []step{
			{a("SETEX", "sx:a", "100", "v"), "OK", nil},
			{a("TTL", "sx:a"), between(99, 100), nil},
			{a("GET", "sx:a"), "v", nil},
			{a("SETEX", "sx:a", "0", "v"), errPrefix("ERR invalid expire time in 'setex' command"), nil},
			{a("SETEX", "sx:a", "abc", "v"), errPrefix(notInt), nil},
			{a("SETEX", "sx:a", "10"), wrongArgs("setex"), nil},
			{a("PSETEX", "sx:b", "100000", "w"), "OK", nil},
			{a("PTTL", "sx:b"), between(98000, 100000), nil},
			{a("PSETEX", "sx:b", "-5", "w"), errPrefix("ERR invalid expire time in 'psetex' command"), nil},
			{a("GETEX", "sx:none"), isNil{}, nil},
			{a("GETEX", "sx:a"), "v", nil},
			{a("TTL", "sx:a"), between(99, 100), nil},
			{a("GETEX", "sx:a", "PERSIST"), "v", nil},
			{a("TTL", "sx:a"), -1, nil},
			{a("GETEX", "sx:a", "EX", "200"), "v", nil},
			{a("TTL", "sx:a"), between(199, 200), nil},
			{a("GETEX", "sx:a", "PXAT", futureMs), "v", nil},
			{a("PEXPIRETIME", "sx:a"), futureMsInt, nil},
			{a("GETEX", "sx:a", "PX", "0"), errPrefix("ERR invalid expire time in 'getex' command"), nil},
			{a("GETEX", "sx:a", "EX", "1", "PX", "1"), errPrefix("ERR syntax error"), nil},
			{a("GETEX", "sx:a", "BOGUS"), errPrefix("ERR syntax error"), nil},
			{a("GETEX", "sx:a", "EXAT", "1"), "v", nil},
			{a("EXISTS", "sx:a"), 0, nil},
			// A missing key answers nil before its time is checked.
			{a("GETEX", "sx:none", "PX", "0"), isNil{}, nil},
			{a("GETEX", "sx:none", "EX", "abc"), isNil{}, nil},
			{a("GETEX", "sx:none", "BOGUS"), errPrefix("ERR syntax error"), nil},
			{a("GETEX", "sx:none", "PERSIST", "EX", "1"), errPrefix("ERR syntax error"), nil},
			// An option may be repeated (the last time wins), not mixed.
			{a("SET", "sx:c", "v"), "OK", nil},
			{a("GETEX", "sx:c", "EX", "10", "EX", "200"), "v", nil},
			{a("TTL", "sx:c"), between(199, 200), nil},
			{a("GETEX", "sx:c", "PERSIST", "PERSIST"), "v", nil},
			{a("TTL", "sx:c"), -1, nil},
			{a("GETEX", "sx:c", "EX", "10", "PERSIST"), errPrefix("ERR syntax error"), nil},
			{a("GETEX", "sx:c", "EX", "10", "PX", "10"), errPrefix("ERR syntax error"), nil},
			{a("GETEX", "sx:c", "KEEPTTL"), errPrefix("ERR syntax error"), nil},
			{a("GETEX", "sx:c", "EX"), errPrefix("ERR syntax error"), nil},
			{a("GETEX", "sx:c", "EX", "abc"), errPrefix(notInt), nil},
			{a("GETEX", "sx:c", "EXAT", "9223372036854776"), errPrefix("ERR invalid expire time in 'getex' command"), nil},
			{a("GETEX", "sx:c", "PERSIST"), "v", nil},
			{a("TTL", "sx:c"), -1, nil},
			{a("GETEX", "sx:c", "PX", "100000"), "v", nil},
			{a("PTTL", "sx:c"), between(98000, 100000), nil},
			{a("GETEX", "sx:c", "EXAT", future), "v", nil},
			{a("EXPIRETIME", "sx:c"), futureInt, nil},
			{a("GETEX", "sx:c"), "v", nil},
			{a("EXPIRETIME", "sx:c"), futureInt, nil},
			{a("SETEX", "sx:d", "9223372036854776", "v"), errPrefix("ERR invalid expire time in 'setex' command"), nil},
			{a("PSETEX", "sx:d", "9223372036854775807", "v"), errPrefix("ERR invalid expire time in 'psetex' command"), nil},
			{a("SETEX", "sx:d", "-1", "v"), errPrefix("ERR invalid expire time in 'setex' command"), nil},
			{a("SETEX", "sx:d", "10", "v", "x"), wrongArgs("setex"), nil},
			{a("PSETEX", "sx:d", "100"), wrongArgs("psetex"), nil},
			{a("GETEX"), wrongArgs("getex"), nil},
			{a("EXISTS", "sx:d"), 0, nil},
			{a("SETEX", "sx:d", "100", "v"), "OK", nil},
			{a("SETEX", "sx:d", "200", "w"), "OK", nil},
			{a("TTL", "sx:d"), between(199, 200), nil},
			{a("GET", "sx:d"), "w", nil},
			{a("SETEX", "sx:e", "100", v1017), "OK", nil},
			{a("GET", "sx:e"), v1017, nil},
			{a("PSETEX", "sx:e", "100000", v1016), "OK", nil},
			{a("GET", "sx:e"), v1016, nil},
			{a("SETEX", "sx:f", "100", v100k), "OK", nil},
			{a("TTL", "sx:f"), between(99, 100), nil},
			{a("GET", "sx:f"), v100k, nil},
			{a("PSETEX", "sx:f", "100000", vOver), errHas(limit), "OK"},
			{a("STRLEN", "sx:f"), len(v100k), len(vOver)},
		}},
		{"expire_ttl_persist", []step{
			{a("SET", "ex:a", "v"), "OK", nil},
			{a("EXPIRE", "ex:a", "100"), 1, nil},
			{a("TTL", "ex:a"), between(99, 100), nil},
			{a("EXPIRE", "ex:a", "200", "NX"), 0, nil},
			{a("EXPIRE", "ex:a", "200", "XX"), 1, nil},
			{a("EXPIRE", "ex:a", "100", "GT"), 0, nil},
			{a("EXPIRE", "ex:a", "300", "gt"), 1, nil},
			{a("EXPIRE", "ex:a", "50", "LT"), 1, nil},
			{a("TTL", "ex:a"), between(49, 50), nil},
			{a("PERSIST", "ex:a"), 1, nil},
			{a("PERSIST", "ex:a"), 0, nil},
			{a("PERSIST", "ex:none"), 0, nil},
			{a("TTL", "ex:a"), -1, nil},
			{a("EXPIRE", "ex:a", "100", "XX"), 0, nil},
			{a("EXPIRE", "ex:a", "100", "GT"), 0, nil},
			{a("EXPIRE", "ex:a", "100", "LT"), 1, nil},
			{a("EXPIRE", "ex:none", "10"), 0, nil},
			{a("EXPIRE", "ex:a", "10", "NX", "XX"), errPrefix("ERR NX and XX, GT or LT options at the same time are not compatible"), nil},
			{a("EXPIRE", "ex:a", "10", "GT", "LT"), errPrefix("ERR GT and LT options at the same time are not compatible"), nil},
			{a("EXPIRE", "ex:a", "10", "BOGUS"), errPrefix("ERR Unsupported option BOGUS"), nil},
			{a("EXPIRE", "ex:a", "abc"), errPrefix(notInt), nil},
			{a("EXPIRE", "ex:a", "9223372036854775807"), errPrefix("ERR invalid expire time in 'expire' command"), nil},
			{a("PEXPIRE", "ex:a", "9223372036854775807"), errPrefix("ERR invalid expire time in 'pexpire' command"), nil},
			{a("EXPIRE", "ex:a"), wrongArgs("expire"), nil},
			{a("PEXPIRE", "ex:a", "100000"), 1, nil},
			{a("PTTL", "ex:a"), between(98000, 100000), nil},
			{a("EXPIREAT", "ex:a", future), 1, nil},
			{a("EXPIRETIME", "ex:a"), futureInt, nil},
			{a("PEXPIREAT", "ex:a", futureMs), 1, nil},
			{a("PEXPIRETIME", "ex:a"), futureMsInt, nil},
			{a("EXPIRE", "ex:a", "-1"), 1, nil},
			{a("EXISTS", "ex:a"), 0, nil},
			{a("GET", "ex:a"), isNil{}, nil},
			// INCR, APPEND and SETRANGE keep a deadline; SET drops it.
			{a("SET", "ex:n", "1", "EX", "100"), "OK", nil},
			{a("INCR", "ex:n"), 2, nil},
			{a("INCRBY", "ex:n", "5"), 7, nil},
			{a("TTL", "ex:n"), between(99, 100), nil},
			{a("APPEND", "ex:n", "0"), 2, nil},
			{a("TTL", "ex:n"), between(99, 100), nil},
			{a("SETRANGE", "ex:n", "0", "9"), 2, nil},
			{a("GET", "ex:n"), "90", nil},
			{a("TTL", "ex:n"), between(99, 100), nil},
			{a("RENAME", "ex:n", "ex:m"), "OK", nil},
			{a("TTL", "ex:m"), between(99, 100), nil},
			{a("GETSET", "ex:m", "1"), "90", nil},
			{a("TTL", "ex:m"), -1, nil},
			// The options are checked before the time, the time before the key.
			{a("EXPIRE", "ex:m", "abc", "BOGUS"), errPrefix("ERR Unsupported option BOGUS"), nil},
			{a("EXPIRE", "ex:m", "abc", "NX", "GT"), errPrefix("ERR NX and XX, GT or LT options at the same time are not compatible"), nil},
			{a("PEXPIRE", "ex:m", "abc", "lt", "GT"), errPrefix("ERR GT and LT options at the same time are not compatible"), nil},
			{a("EXPIRE", "ex:none", "10", "NX", "LT"), errPrefix("ERR NX and XX, GT or LT options at the same time are not compatible"), nil},
			{a("EXPIRE", "ex:none", "abc"), errPrefix(notInt), nil},
			{a("EXPIRE", "ex:none", "9223372036854776"), errPrefix("ERR invalid expire time in 'expire' command"), nil},
			{a("EXPIRE", "ex:m", "-9223372036854776"), errPrefix("ERR invalid expire time in 'expire' command"), nil},
			{a("EXPIREAT", "ex:m", "9223372036854776"), errPrefix("ERR invalid expire time in 'expireat' command"), nil},
			{a("PEXPIREAT", "ex:m", "abc"), errPrefix(notInt), nil},
			{a("EXPIRE", "ex:m", "10", "NX", "nx"), 1, nil},
			{a("EXPIRE", "ex:m", "20", "xx", "GT"), 1, nil},
			{a("EXPIRE", "ex:m", "10", "XX", "GT"), 0, nil},
			{a("EXPIRE", "ex:m", "30", "XX", "LT"), 0, nil},
			{a("TTL", "ex:m"), between(19, 20), nil},
			// EXPIRETIME rounds to the nearest second.
			{a("PEXPIREAT", "ex:m", futureMsUp), 1, nil},
			{a("EXPIRETIME", "ex:m"), futureInt + 1, nil},
			{a("PEXPIREAT", "ex:m", futureMsDown), 1, nil},
			{a("EXPIRETIME", "ex:m"), futureInt, nil},
			{a("PEXPIRETIME", "ex:m"), futureInt*1000 + 499, nil},
			// The farthest deadline there is.
			{a("PEXPIREAT", "ex:m", "9223372036854775807"), 1, nil},
			{a("PEXPIRETIME", "ex:m"), int64(9223372036854775807), nil},
			{a("EXPIRETIME", "ex:m"), int64(9223372036854776), nil},
			{a("EXISTS", "ex:m"), 1, nil},
			// A time in the past deletes: with GT, only a key that has a TTL.
			{a("PEXPIREAT", "ex:m", "1", "GT"), 0, nil},
			{a("PEXPIREAT", "ex:m", "1", "LT"), 1, nil},
			{a("EXISTS", "ex:m"), 0, nil},
			{a("SET", "ex:m", "v"), "OK", nil},
			{a("EXPIRE", "ex:m", "0", "GT"), 0, nil},
			{a("EXPIRE", "ex:m", "0", "XX"), 0, nil},
			{a("PEXPIRE", "ex:m", "-9223372036854775808"), 1, nil},
			{a("EXISTS", "ex:m"), 0, nil},
			{a("TTL"), wrongArgs("ttl"), nil},
			{a("PTTL", "a", "b"), wrongArgs("pttl"), nil},
			{a("PERSIST"), wrongArgs("persist"), nil},
			{a("EXPIRETIME", "ex:none"), -2, nil},
			{a("PEXPIRETIME", "ex:none"), -2, nil},
		}},
		{"ttl_kept_or_cleared", []step{
			// Commands that change a value keep its TTL...
			{a("SET", "tk:n", "10", "EX", "100"), "OK", nil},
			{a("DECR", "tk:n"), 9, nil},
			{a("DECRBY", "tk:n", "4"), 5, nil},
			{a("INCRBYFLOAT", "tk:n", "0.5"), "5.5", nil},
			{a("TTL", "tk:n"), between(99, 100), nil},
			{a("SET", "tk:n", "abc", "XX", "KEEPTTL"), "OK", nil},
			{a("TTL", "tk:n"), between(99, 100), nil},
			// ...APPEND and SETRANGE too, growing it past a slot and
			// into several pages...
			{a("SET", "tk:a", v1016[1:], "EX", "100"), "OK", nil},
			{a("APPEND", "tk:a", "x"), 1016, nil},
			{a("APPEND", "tk:a", "y"), 1017, nil},
			{a("TTL", "tk:a"), between(99, 100), nil},
			{a("APPEND", "tk:a", v2000), 3017, nil},
			{a("SETRANGE", "tk:a", "9999", "z"), 10000, nil},
			{a("TTL", "tk:a"), between(99, 100), nil},
			{a("GETRANGE", "tk:a", "1014", "1017"), "txys", nil},
			{a("GETRANGE", "tk:a", "9998", "9999"), "\x00z", nil},
			// ...up to the longest value: one past it is refused, naming
			// the limit (Redis takes it)...
			{a("SETRANGE", "tk:a", limit, "z"), errHas(limit), maxVal + 1},
			{a("STRLEN", "tk:a"), 10000, maxVal + 1},
			{a("SET", "tk:a", "z"), "OK", nil}, // and leaves nothing locked
			{a("TTL", "tk:a"), -1, nil},
			// ...and those that replace it drop its TTL.
			{a("SET", "tk:m", "1", "EX", "100"), "OK", nil},
			{a("MSET", "tk:m", "2", "tk:o", "3"), "OK", nil},
			{a("TTL", "tk:m"), -1, nil},
			{a("SET", "tk:m", "1", "EX", "100"), "OK", nil},
			{a("MSET", "tk:m", "2"), "OK", nil},
			{a("TTL", "tk:m"), -1, nil},
			{a("SET", "tk:m", "1", "EX", "100"), "OK", nil},
			{a("SETNX", "tk:m", "2"), 0, nil},
			{a("MSETNX", "tk:m", "2", "tk:p", "3"), 0, nil},
			{a("TTL", "tk:m"), between(99, 100), nil},
			{a("SET", "tk:m", "2", "GET"), "1", nil},
			{a("TTL", "tk:m"), -1, nil},
			{a("SETEX", "tk:m", "100", "3"), "OK", nil},
			{a("SET", "tk:m", "3", "XX"), "OK", nil},
			{a("TTL", "tk:m"), -1, nil},
			// A deleted key's TTL goes with it.
			{a("SET", "tk:d", "1", "EX", "100"), "OK", nil},
			{a("GETDEL", "tk:d"), "1", nil},
			{a("TTL", "tk:d"), -2, nil},
			{a("SET", "tk:d", "1"), "OK", nil},
			{a("TTL", "tk:d"), -1, nil},
			{a("SET", "tk:d", "1", "EX", "100"), "OK", nil},
			{a("DEL", "tk:d"), 1, nil},
			{a("SET", "tk:d", "1"), "OK", nil},
			{a("TTL", "tk:d"), -1, nil},
			{a("SET", "tk:d", "1", "EX", "100"), "OK", nil},
			{a("SET", "tk:e", "1", "EX", "100"), "OK", nil},
			{a("DEL", "tk:d", "tk:e", "tk:none"), 2, nil},
			{a("TTL", "tk:e"), -2, nil},
		}},
		{"ttl_multi_exec", []step{
			// In MULTI the expiry commands queue; their errors come at
			// EXEC, in their place, and the others apply.
			{a("MULTI"), "OK", nil},
			{a("SET", "tm:a", "1", "EX", "10", "PX", "10"), "QUEUED", nil},
			{a("SET", "tm:a", "1", "EX", "0"), "QUEUED", nil},
			{a("SET", "tm:a", "1", "NX", "PX", "100000"), "QUEUED", nil},
			{a("EXPIRE", "tm:a", "100", "BOGUS"), "QUEUED", nil},
			{a("EXPIRE", "tm:a", "abc"), "QUEUED", nil},
			{a("GETEX", "tm:a", "EX", "0"), "QUEUED", nil},
			{a("GETEX", "tm:a", "EX", "50"), "QUEUED", nil},
			{a("TTL", "tm:a"), "QUEUED", nil},
			{a("PTTL", "tm:a"), "QUEUED", nil},
			{a("EXPIRE", "tm:a", "100", "GT"), "QUEUED", nil},
			{a("SETEX", "tm:b", "0", "v"), "QUEUED", nil},
			{a("INCR", "tm:a"), "QUEUED", nil},
			{a("TTL", "tm:a"), "QUEUED", nil},
			{a("PERSIST", "tm:a"), "QUEUED", nil},
			{a("TTL", "tm:a"), "QUEUED", nil},
			{a("EXEC"), []any{
				errPrefix("ERR syntax error"),
				errPrefix("ERR invalid expire time in 'set' command"),
				"OK",
				errPrefix("ERR Unsupported option BOGUS"),
				errPrefix(notInt),
				errPrefix("ERR invalid expire time in 'getex' command"),
				"1", 50, 50000, 1,
				errPrefix("ERR invalid expire time in 'setex' command"),
				2, 100, 1, -1,
			}, nil},
			{a("TTL", "tm:a"), -1, nil},
			{a("EXISTS", "tm:b"), 0, nil},
			// One instant: a deadline set and read in one transaction.
			{a("MULTI"), "OK", nil},
			{a("PSETEX", "tm:c", "100000", "v"), "QUEUED", nil},
			{a("PTTL", "tm:c"), "QUEUED", nil},
			{a("SET", "tm:d", "w", "PXAT", futureMs), "QUEUED", nil},
			{a("PEXPIRETIME", "tm:d"), "QUEUED", nil},
			{a("SET", "tm:d", "x", "KEEPTTL", "GET"), "QUEUED", nil},
			{a("PEXPIRETIME", "tm:d"), "QUEUED", nil},
			{a("EXPIREAT", "tm:d", "1"), "QUEUED", nil},
			{a("GET", "tm:d"), "QUEUED", nil},
			{a("TTL", "tm:d"), "QUEUED", nil},
			{a("EXEC"), []any{"OK", 100000, "OK", futureMsInt, "w", futureMsInt, 1, isNil{}, -2}, nil},
			{a("PTTL", "tm:c"), between(98000, 100000), nil},
			// Values longer than a slot take a TTL in a transaction too.
			{a("MULTI"), "OK", nil},
			{a("SET", "tm:e", "v"), "QUEUED", nil},
			{a("SET", "tm:e", v1017, "EX", "100"), "QUEUED", nil},
			{a("EXEC"), []any{"OK", "OK"}, nil},
			{a("GET", "tm:e"), v1017, nil},
			{a("TTL", "tm:e"), between(99, 100), nil},
			{a("SET", "tm:f", v2000), "OK", nil},
			{a("MULTI"), "OK", nil},
			{a("SET", "tm:g", "v"), "QUEUED", nil},
			{a("EXPIRE", "tm:f", "100"), "QUEUED", nil},
			{a("APPEND", "tm:f", v1017), "QUEUED", nil},
			{a("SETEX", "tm:h", "100", v100k), "QUEUED", nil},
			{a("EXEC"), []any{"OK", 1, 3017, "OK"}, nil},
			{a("EXISTS", "tm:g"), 1, nil},
			{a("TTL", "tm:f"), between(99, 100), nil},
			{a("STRLEN", "tm:f"), 3017, nil},
			{a("TTL", "tm:h"), between(99, 100), nil},
			{a("GET", "tm:h"), v100k, nil},
			// A value over the limit is refused as it is queued (Redis
			// takes it).
			{a("MULTI"), "OK", nil},
			{a("SET", "tm:i", "v"), "QUEUED", nil},
			{a("SET", "tm:i", vOver, "EX", "100"), errHas(limit), "QUEUED"},
			{a("EXEC"), errPrefix("EXECABORT"), []any{"OK", "OK"}},
			{a("EXISTS", "tm:i"), 0, 1},
		}},
		{"setnx_getset_getdel", []step{
			{a("SETNX", "sn:a", "1"), 1, nil},
			{a("SETNX", "sn:a", "2"), 0, nil},
			{a("GET", "sn:a"), "1", nil},
			{a("SETNX", "sn:a"), wrongArgs("setnx"), nil},
			{a("GETSET", "sn:a", "3"), "1", nil},
			{a("GETSET", "sn:b", "4"), isNil{}, nil},
			{a("GET", "sn:b"), "4", nil},
			{a("GET", "sn:a"), "3", nil},
			{a("GETSET", "sn:a"), wrongArgs("getset"), nil},
			{a("GETDEL", "sn:a"), "3", nil},
			{a("GETDEL", "sn:a"), isNil{}, nil},
			{a("GET", "sn:a"), isNil{}, nil},
			{a("EXISTS", "sn:a"), 0, nil},
			{a("GETDEL"), wrongArgs("getdel"), nil},
		}},
		{"del_exists", []step{
			{a("MSET", "de:a", "1", "de:b", "2", "de:c", "3"), "OK", nil},
			{a("EXISTS", "de:a"), 1, nil},
			{a("EXISTS", "de:a", "de:b", "de:x"), 2, nil},
			{a("EXISTS", "de:a", "de:a", "de:x", "de:a"), 3, nil},
			{a("DEL", "de:a", "de:x"), 1, nil},
			{a("DEL", "de:a"), 0, nil},
			{a("EXISTS", "de:a"), 0, nil},
			{a("DEL", "de:b", "de:b"), 1, nil},
			{a("EXISTS", "de:b"), 0, nil},
			{a("GET", "de:c"), "3", nil},
			{a("DEL"), wrongArgs("del"), nil},
			{a("EXISTS"), wrongArgs("exists"), nil},
		}},
		{"mget_mset_msetnx", []step{
			{a("MSET", "mm:a", "1", "mm:b", "2"), "OK", nil},
			{a("MGET", "mm:a", "mm:x", "mm:b"), []any{"1", isNil{}, "2"}, nil},
			{a("MGET", "mm:x"), []any{isNil{}}, nil},
			{a("MGET", "mm:a", "mm:a"), []any{"1", "1"}, nil},
			{a("MSET", "mm:a", "10", "mm:a", "11"), "OK", nil},
			{a("GET", "mm:a"), "11", nil},
			{a("MSET", "mm:a"), wrongArgs("mset"), nil},
			{a("MSET", "mm:a", "1", "mm:b"), wrongArgs("mset"), nil},
			{a("MGET", "mm:a", "mm:b"), []any{"11", "2"}, nil},
			{a("MGET"), wrongArgs("mget"), nil},
			{a("MSETNX", "mm:c", "3", "mm:a", "1"), 0, nil},
			{a("MGET", "mm:c", "mm:a"), []any{isNil{}, "11"}, nil},
			{a("MSETNX", "mm:c", "3", "mm:d", "4"), 1, nil},
			{a("MGET", "mm:c", "mm:d"), []any{"3", "4"}, nil},
			{a("MSETNX", "mm:e"), wrongArgs("msetnx"), nil},
			{a("MSETNX", "mm:e", "1", "mm:f"), wrongArgs("msetnx"), nil},
			{a("EXISTS", "mm:e", "mm:f"), 0, nil},
		}},
		{"incr_decr", []step{
			{a("INCR", "id:a"), 1, nil},
			{a("INCR", "id:a"), 2, nil},
			{a("INCRBY", "id:a", "10"), 12, nil},
			{a("DECR", "id:a"), 11, nil},
			{a("DECRBY", "id:a", "20"), -9, nil},
			{a("INCRBY", "id:a", "-1"), -10, nil},
			{a("DECRBY", "id:a", "-3"), -7, nil},
			{a("GET", "id:a"), "-7", nil},
			{a("DECR", "id:b"), -1, nil},
			{a("DECRBY", "id:c", "5"), -5, nil},
			{a("INCRBY", "id:d", "0"), 0, nil},
			{a("GET", "id:d"), "0", nil},
			{a("SET", "id:n", "41"), "OK", nil},
			{a("INCR", "id:n"), 42, nil},
			{a("SET", "id:s", "abc"), "OK", nil},
			{a("INCR", "id:s"), errPrefix(notInt), nil},
			{a("GET", "id:s"), "abc", nil},
			{a("SET", "id:f", "1.5"), "OK", nil},
			{a("INCR", "id:f"), errPrefix(notInt), nil},
			{a("DECR", "id:f"), errPrefix(notInt), nil},
			{a("SET", "id:sp", " 1"), "OK", nil},
			{a("INCR", "id:sp"), errPrefix(notInt), nil},
			{a("SET", "id:e", ""), "OK", nil},
			{a("INCR", "id:e"), errPrefix(notInt), nil},
			{a("GET", "id:e"), "", nil},
			{a("INCRBY", "id:a", "abc"), errPrefix(notInt), nil},
			{a("INCRBY", "id:a", "1.5"), errPrefix(notInt), nil},
			{a("INCRBY", "id:a", ""), errPrefix(notInt), nil},
			{a("DECRBY", "id:a", "x"), errPrefix(notInt), nil},
			{a("INCRBY", "id:a", "99999999999999999999"), errPrefix(notInt), nil},
			{a("GET", "id:a"), "-7", nil},
			{a("SET", "id:max", "9223372036854775806"), "OK", nil},
			{a("INCR", "id:max"), 9223372036854775807, nil},
			{a("INCR", "id:max"), errPrefix(overflow), nil},
			{a("INCRBY", "id:max", "1"), errPrefix(overflow), nil},
			{a("GET", "id:max"), "9223372036854775807", nil},
			{a("SET", "id:min", "-9223372036854775808"), "OK", nil},
			{a("DECR", "id:min"), errPrefix(overflow), nil},
			{a("DECRBY", "id:min", "1"), errPrefix(overflow), nil},
			{a("GET", "id:min"), "-9223372036854775808", nil},
			{a("INCR"), wrongArgs("incr"), nil},
			{a("INCRBY", "id:a"), wrongArgs("incrby"), nil},
			{a("DECRBY", "id:a"), wrongArgs("decrby"), nil},
			{a("DECR", "id:a", "id:b"), wrongArgs("decr"), nil},
		}},
		{"incr_strict_integers", []step{
			// Redis' string2ll: no sign but '-', no leading zeros, no spaces.
			{a("SET", "is:plus", "+1"), "OK", nil},
			{a("INCR", "is:plus"), errPrefix(notInt), nil},
			{a("SET", "is:zero", "01"), "OK", nil},
			{a("INCR", "is:zero"), errPrefix(notInt), nil},
			{a("SET", "is:tail", "1 "), "OK", nil},
			{a("INCR", "is:tail"), errPrefix(notInt), nil},
			{a("INCRBY", "is:x", "+5"), errPrefix(notInt), nil},
			{a("INCRBY", "is:x", "05"), errPrefix(notInt), nil},
			{a("EXISTS", "is:x"), 0, nil},
		}},
		{"append_strlen", []step{
			{a("APPEND", "as:a", "hello"), 5, nil},
			{a("APPEND", "as:a", " world"), 11, nil},
			{a("GET", "as:a"), "hello world", nil},
			{a("STRLEN", "as:a"), 11, nil},
			{a("STRLEN", "as:x"), 0, nil},
			{a("APPEND", "as:b", ""), 0, nil},
			{a("EXISTS", "as:b"), 1, nil},
			{a("SET", "as:n", "10"), "OK", nil},
			{a("APPEND", "as:n", "5"), 3, nil},
			{a("INCR", "as:n"), 106, nil},
			{a("APPEND", "as:a"), wrongArgs("append"), nil},
			{a("STRLEN"), wrongArgs("strlen"), nil},
		}},
		{"limits", []step{
			{a("SET", k64, "v"), "OK", nil},
			{a("GET", k64), "v", nil},
			{a("SET", k65, "v65"), "OK", nil},
			{a("GET", k65), "v65", nil},
			{a("APPEND", k65, "x"), 4, nil},
			{a("SET", kMax, "vmax"), "OK", nil},
			{a("MGET", k64, k65, kMax), []any{"v", "v65x", "vmax"}, nil},
			{a("DEL", k65), 1, nil},
			{a("EXISTS", k65, kMax), 1, nil},
			{a("INCR", kMax[1:]), 1, nil},
			{a("SET", kOver, "v"), errHas(keyLimit), "OK"},
			{a("GET", kOver), errHas(keyLimit), "v"},
			{a("SETNX", kOver+"x", "v"), errHas(keyLimit), 1},
			{a("INCR", kOver+"y"), errHas(keyLimit), 1},
			{a("SET", "lim:vmax", vMax), "OK", nil},
			{a("GET", "lim:vmax"), vMax, nil},
			{a("STRLEN", "lim:vmax"), maxVal, nil},
			{a("SET", "lim:vover", vOver), errHas(limit), "OK"},
			{a("GET", "lim:vover"), isNil{}, vOver},
			{a("SET", "lim:vmax", vOver), errHas(limit), "OK"},
			{a("GET", "lim:vmax"), vMax, vOver},
			{a("SET", "lim:vmax", vMax), "OK", nil},
			{a("APPEND", "lim:vmax", "x"), errHas(limit), maxVal + 1},
			{a("STRLEN", "lim:vmax"), maxVal, maxVal + 1},
			{a("SET", "lim:vmax", vMax), "OK", nil},
			{a("GETSET", "lim:vmax", vOver), errHas(limit), vMax},
			{a("GET", "lim:vmax"), vMax, vOver},
			{a("SETNX", "lim:nx", vOver), errHas(limit), 1},
			{a("EXISTS", "lim:nx"), 0, 1},
			// MSET is one transaction: nothing of it is written.
			{a("MSET", "lim:m1", "a", kOver, "b"), errHas(keyLimit), "OK"},
			{a("GET", "lim:m1"), isNil{}, "a"},
			{a("MSET", "lim:m2", "a", "lim:m3", vOver), errHas(limit), "OK"},
			{a("MGET", "lim:m2", "lim:m3"), []any{isNil{}, isNil{}}, []any{"a", vOver}},
			{a("MSETNX", "lim:m4", "a", "lim:m5", vOver), errHas(limit), 1},
			{a("EXISTS", "lim:m4", "lim:m5"), 0, 2},
			{a("PING"), "PONG", nil},
		}},
		{"multi_exec", []step{
			{a("EXEC"), errPrefix("ERR EXEC without MULTI"), nil},
			{a("DISCARD"), errPrefix("ERR DISCARD without MULTI"), nil},
			{a("MULTI"), "OK", nil},
			{a("MULTI"), errPrefix("ERR MULTI calls can not be nested"), nil},
			{a("WATCH", "tx:a"), errPrefix("ERR WATCH inside MULTI is not allowed"), nil},
			{a("SET", "tx:a", "1"), "QUEUED", nil},
			{a("INCR", "tx:a"), "QUEUED", nil},
			{a("GET", "tx:a"), "QUEUED", nil},
			{a("PING"), "QUEUED", nil},
			{a("EXEC"), []any{"OK", 2, "2", "PONG"}, nil},
			{a("GET", "tx:a"), "2", nil},
			// An empty transaction.
			{a("MULTI"), "OK", nil},
			{a("EXEC"), []any{}, nil},
			// Read your own writes inside EXEC.
			{a("MULTI"), "OK", nil},
			{a("SET", "tx:g", "5"), "QUEUED", nil},
			{a("INCRBY", "tx:g", "5"), "QUEUED", nil},
			{a("GET", "tx:g"), "QUEUED", nil},
			{a("APPEND", "tx:g", "0"), "QUEUED", nil},
			{a("GET", "tx:g"), "QUEUED", nil},
			{a("STRLEN", "tx:g"), "QUEUED", nil},
			{a("DEL", "tx:g"), "QUEUED", nil},
			{a("GET", "tx:g"), "QUEUED", nil},
			{a("EXISTS", "tx:g"), "QUEUED", nil},
			{a("EXEC"), []any{"OK", 10, "10", 3, "100", 3, 1, isNil{}, 0}, nil},
			{a("MULTI"), "OK", nil},
			{a("MSET", "tx:h", "1", "tx:i", "2"), "QUEUED", nil},
			{a("MGET", "tx:h", "tx:i", "tx:j"), "QUEUED", nil},
			{a("EXISTS", "tx:h", "tx:j"), "QUEUED", nil},
			{a("SETNX", "tx:h", "9"), "QUEUED", nil},
			{a("GETSET", "tx:i", "3"), "QUEUED", nil},
			{a("GETDEL", "tx:h"), "QUEUED", nil},
			{a("SET", "tx:i", "4", "GET"), "QUEUED", nil},
			{a("SET", "tx:i", "5", "NX"), "QUEUED", nil},
			{a("MSETNX", "tx:h", "7", "tx:k", "8"), "QUEUED", nil},
			{a("DECRBY", "tx:k", "10"), "QUEUED", nil},
			{a("EXEC"), []any{"OK", []any{"1", "2", isNil{}}, 1, 0, "2", "1", "3", isNil{}, 1, -2}, nil},
			{a("MGET", "tx:h", "tx:i", "tx:k"), []any{"7", "4", "-2"}, nil},
			// A run-time error gives its slot an error; the rest is applied.
			{a("SET", "tx:s", "abc"), "OK", nil},
			{a("MULTI"), "OK", nil},
			{a("SET", "tx:b", "1"), "QUEUED", nil},
			{a("INCR", "tx:s"), "QUEUED", nil},
			{a("INCR", "tx:b"), "QUEUED", nil},
			{a("EXEC"), []any{"OK", errPrefix(notInt), 2}, nil},
			{a("MGET", "tx:b", "tx:s"), []any{"2", "abc"}, nil},
			// A queued syntax error discards the transaction at EXEC.
			{a("MULTI"), "OK", nil},
			{a("SET", "tx:c", "1"), "QUEUED", nil},
			{a("SET", "tx:c"), wrongArgs("set"), nil},
			{a("INCR", "tx:b"), "QUEUED", nil},
			{a("EXEC"), errPrefix("EXECABORT Transaction discarded because of previous errors"), nil},
			{a("MGET", "tx:c", "tx:b"), []any{isNil{}, "2"}, nil},
			{a("EXEC"), errPrefix("ERR EXEC without MULTI"), nil},
			// So does an unknown command.
			{a("MULTI"), "OK", nil},
			{a("NOSUCHCOMMAND", "tx:d"), errPrefix("ERR unknown command"), nil},
			{a("SET", "tx:d", "1"), "QUEUED", nil},
			{a("EXEC"), errPrefix("EXECABORT"), nil},
			{a("GET", "tx:d"), isNil{}, nil},
			// DISCARD drops what was queued.
			{a("MULTI"), "OK", nil},
			{a("SET", "tx:f", "1"), "QUEUED", nil},
			{a("DISCARD"), "OK", nil},
			{a("GET", "tx:f"), isNil{}, nil},
			{a("EXEC"), errPrefix("ERR EXEC without MULTI"), nil},
			{a("MULTI", "x"), wrongArgs("multi"), nil},
		}},
		{"config", []step{
			{a("CONFIG", "GET", "maxclients"), []any{"maxclients", "10000"}, nil},
			{a("config", "get", "no-such-parameter-xyz"), []any{}, nil},
			{a("CONFIG", "GET", "*"), func(v any) error {
				m, err := pairs(v)
				if err != nil {
					return err
				}
				if m["maxclients"] != "10000" {
					return fmt.Errorf("maxclients is %#v", m["maxclients"])
				}
				return nil
			}, nil},
			{a("CONFIG", "GET", "max*"), func(v any) error {
				m, err := pairs(v)
				if err != nil {
					return err
				}
				if m["maxclients"] != "10000" {
					return fmt.Errorf("the glob max* does not give maxclients 10000")
				}
				for k := range m {
					if !strings.HasPrefix(k, "max") {
						return fmt.Errorf("the glob max* gives %q", k)
					}
				}
				return nil
			}, nil},
			{a("CONFIG", "GET"), errPrefix("ERR wrong number of arguments"), nil},
		}},
		{"command", []step{
			{a("COMMAND", "COUNT"), isInt("above 30", func(n int64) bool { return n > 30 }), nil},
			{a("COMMAND", "DOCS"), anyOK{}, nil},
			{a("COMMAND", "DOCS", "get"), anyOK{}, nil},
			{a("COMMAND"), func(v any) error {
				arr, ok := v.([]any)
				if !ok {
					return fmt.Errorf("not an array")
				}
				names := map[string]bool{}
				for _, e := range arr {
					ea, ok := e.([]any)
					if !ok || len(ea) < 2 {
						return fmt.Errorf("entry %#v is not an array of name, arity, ...", e)
					}
					name, _ := ea[0].(string)
					if _, ok := ea[1].(int64); !ok {
						return fmt.Errorf("entry %q has arity %#v", name, ea[1])
					}
					names[strings.ToLower(name)] = true
				}
				var missing []string
				for _, c := range servedCommands {
					if !names[c] {
						missing = append(missing, c)
					}
				}
				if len(missing) > 0 {
					return fmt.Errorf("COMMAND does not list %v", missing)
				}
				return nil
			}, nil},
		}},
		{"client_select_auth", []step{
			{a("CLIENT", "ID"), isInt("> 0", func(n int64) bool { return n > 0 }), nil},
			{a("CLIENT", "GETNAME"), isNil{}, nil},
			{a("CLIENT", "SETNAME", "myname"), "OK", nil},
			{a("CLIENT", "GETNAME"), "myname", nil},
			{a("client", "setname", "other"), "OK", nil},
			{a("CLIENT", "GETNAME"), "other", nil},
			{a("CLIENT", "SETINFO", "LIB-NAME", "bpfdb-test"), "OK", skip{}}, // Redis 7.2+
			{a("CLIENT", "SETINFO", "LIB-VER", "1.0"), "OK", skip{}},
			{a("CLIENT"), errPrefix("ERR wrong number of arguments"), nil},
			{a("SELECT", "0"), "OK", nil},
			{a("SELECT", "abc"), errPrefix("ERR"), nil},
			{a("SELECT", "1"), "OK", nil},
			{a("SELECT", "16"), errHas("out of range"), nil},
			{a("SELECT", "0"), "OK", nil},
			{a("AUTH", "nopass"), errPrefix("ERR"), nil}, // no password is configured
			{a("PING"), "PONG", nil},
		}},
		{"client_introspection", []step{
			{a("CLIENT", "LIST"), textHas("id=", "addr=", "cmd=", "resp="), nil},
			{a("CLIENT", "INFO"), textHas("id=", "name="), nil},
			{a("CLIENT", "NO-EVICT", "on"), "OK", nil},
			{a("CLIENT", "NO-TOUCH", "off"), "OK", skip{}}, // Redis 7.2+
			{a("CLIENT", "NO-EVICT", "maybe"), errPrefix("ERR"), nil},
			{a("CLIENT", "HELP"), anyReply{}, nil},
			{a("INFO", "memory"), textHas("used_memory:", "used_memory_human:", "maxmemory:"), nil},
			{a("INFO", "replication"), textHas("role:master"), nil},
			{a("INFO", "cpu"), textHas("used_cpu_sys:", "used_cpu_user:"), nil},
			{a("INFO", "stats"), textHas("keyspace_hits:", "keyspace_misses:"), nil},
		}},
		{"hello", []step{
			{a("HELLO"), helloCheck(ts, 2), nil},
			{a("HELLO", "2"), helloCheck(ts, 2), nil},
			{a("HELLO", "2", "SETNAME", "hello-name"), helloCheck(ts, 2), nil},
			{a("CLIENT", "GETNAME"), "hello-name", nil},
			{a("HELLO", "4"), errPrefix("NOPROTO"), nil},
			{a("HELLO", "abc"), errPrefix("ERR"), nil},
			{a("PING"), "PONG", nil},
		}},
		{"keyspace_strings", []step{
			{a("SET", "ks:a", "hello world"), "OK", nil},
			{a("TYPE", "ks:a"), "string", nil},
			{a("TYPE", "ks:none"), "none", nil},
			{a("GETRANGE", "ks:a", "0", "4"), "hello", nil},
			{a("GETRANGE", "ks:a", "-5", "-1"), "world", nil},
			{a("GETRANGE", "ks:a", "6", "100"), "world", nil},
			{a("GETRANGE", "ks:a", "5", "1"), "", nil},
			{a("GETRANGE", "ks:none", "0", "-1"), "", nil},
			{a("SUBSTR", "ks:a", "0", "0"), "h", nil},
			{a("GETRANGE", "ks:a", "x", "1"), errPrefix("ERR value is not an integer"), nil},
			{a("SETRANGE", "ks:a", "6", "redis"), int64(11), nil},
			{a("GET", "ks:a"), "hello redis", nil},
			{a("SETRANGE", "ks:pad", "3", "x"), int64(4), nil},
			{a("GET", "ks:pad"), "\x00\x00\x00x", nil},
			{a("SETRANGE", "ks:a", "-1", "x"), errPrefix("ERR offset is out of range"), nil},
			{a("SETRANGE", "ks:big", "2000", "x"), int64(2001), nil},
			{a("STRLEN", "ks:big"), int64(2001), nil},
			{a("SETRANGE", "ks:big", limit, "x"), errHas(limit), int64(maxVal + 1)},
			{a("STRLEN", "ks:big"), int64(2001), int64(maxVal + 1)},
			{a("INCRBYFLOAT", "ks:f", "10.5"), "10.5", nil},
			{a("INCRBYFLOAT", "ks:f", "0.1"), "10.6", nil},
			{a("INCRBYFLOAT", "ks:f", "-5"), "5.6", nil},
			{a("INCRBYFLOAT", "ks:a", "1"), errPrefix("ERR value is not a valid float"), nil},
			{a("INCRBYFLOAT", "ks:f", "abc"), errPrefix("ERR value is not a valid float"), nil},
			{a("RENAME", "ks:f", "ks:g"), "OK", nil},
			{a("GET", "ks:g"), "5.6", nil},
			{a("EXISTS", "ks:f"), int64(0), nil},
			{a("RENAME", "ks:none", "ks:x"), errPrefix("ERR no such key"), nil},
			{a("RENAMENX", "ks:g", "ks:a"), int64(0), nil},
			{a("RENAMENX", "ks:g", "ks:h"), int64(1), nil},
			{a("COPY", "ks:h", "ks:a"), int64(0), nil},
			{a("COPY", "ks:h", "ks:a", "REPLACE"), int64(1), nil},
			{a("GET", "ks:a"), "5.6", nil},
			{a("COPY", "ks:none", "ks:y"), int64(0), nil},
			{a("TOUCH", "ks:a", "ks:h", "ks:none"), int64(2), nil},
			{a("UNLINK", "ks:a", "ks:h", "ks:none"), int64(2), nil},
			{a("EXISTS", "ks:a", "ks:h"), int64(0), nil},
			{a("TIME"), anyReply{}, nil},
			{a("SET", "ks:int", "12345"), "OK", nil},
			{a("SET", "ks:long", strings.Repeat("x", 100)), "OK", nil},
			{a("OBJECT", "ENCODING", "ks:int"), "int", nil},
			{a("OBJECT", "ENCODING", "ks:pad"), "embstr", "raw"}, // Redis: SETRANGE makes a raw string
			{a("OBJECT", "ENCODING", "ks:long"), "raw", nil},
			{a("OBJECT", "ENCODING", "ks:none"), isNil{}, nil},
			{a("MEMORY", "USAGE", "ks:long"), isInt("> 100", func(n int64) bool { return n > 100 }), nil},
			{a("MEMORY", "USAGE", "ks:none"), isNil{}, nil},
			{a("COMMAND", "GETKEYS", "MSET", "k1", "v1", "k2", "v2"), []any{"k1", "k2"}, nil},
			{a("COMMAND", "GETKEYS", "GET"), errPrefix("ERR"), nil},
			{a("COMMAND", "LIST"), anyReply{}, nil},
			{a("COMMAND", "HELP"), anyReply{}, nil},
			{a("CONFIG", "HELP"), anyReply{}, nil},
			{a("CONFIG", "SET", "maxclients", "5000"), "OK", nil},
			{a("CONFIG", "GET", "maxclients"), []any{"maxclients", "5000"}, nil},
			{a("CONFIG", "SET", "maxclients", "10000"), "OK", nil},
			{a("CONFIG", "SET", "maxclients", "-1"), errPrefix("ERR"), nil},
			{a("CONFIG", "SET", "appendonly", "no"), errHas("not supported"), "OK"},
			{a("OBJECT", "HELP"), anyReply{}, nil},
			{a("MEMORY", "HELP"), anyReply{}, nil},
		}},
		{"persistence_memory_only", []step{
			// No data directory: nothing to checkpoint to.
			{a("SAVE"), errPrefix("ERR"), "OK"},
			{a("BGSAVE"), errPrefix("ERR"), anyOK{}},
			{a("LASTSAVE"), isInt(">= 0", func(n int64) bool { return n >= 0 }), nil},
			{a("PING"), "PONG", nil},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			runSteps(t, ts, ts.conn(t), g.steps)
		})
	}

	t.Run("client_id_distinct", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		ids := map[int64]bool{}
		for i := 0; i < 5; i++ {
			id, err := ts.conn(t).ClientID(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ids[id] {
				t.Fatalf("CLIENT ID %d given to two connections", id)
			}
			ids[id] = true
		}
	})
	t.Run("command_count_matches", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := ts.conn(t)
		n, err := c.Do(ctx, "COMMAND", "COUNT").Int64()
		if err != nil {
			t.Fatal(err)
		}
		all, err := c.Do(ctx, "COMMAND").Slice()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(all)) != n {
			t.Errorf("COMMAND COUNT is %d but COMMAND lists %d", n, len(all))
		}
	})
	t.Run("txn_key_limit", func(t *testing.T) { txnKeyLimit(t, ts) })
	t.Run("multi_exec_limits", func(t *testing.T) { multiLimits(t, ts) })
}

// multiLimits: a key or value over the limit inside MULTI. Nothing of the
// transaction is applied, whether the command is refused when queued (then
// EXEC answers EXECABORT) or when run (then EXEC answers an -ERR); one of
// the two replies names the limit, and the connection is out of MULTI.
func multiLimits(t *testing.T, ts *testServer) {
	ctx := testCtx(t, 30*time.Second)
	c := ts.conn(t)
	kOver := strings.Repeat("q", ts.maxKey()+1)
	vMax := strings.Repeat("v", ts.maxValue())
	vOver := strings.Repeat("w", ts.maxValue()+1)
	cases := []struct {
		name  string
		bad   []any // nil: SET tl:d to the longest value, then APPEND one more byte
		limit int
	}{
		{"SET value", a("SET", "tl:b", vOver), ts.maxValue()},
		{"SET key", a("SET", kOver, "1"), ts.maxKey()},
		{"GET key", a("GET", kOver), ts.maxKey()},
		{"INCR key", a("INCR", kOver), ts.maxKey()},
		{"MSET value", a("MSET", "tl:e", "1", "tl:b", vOver), ts.maxValue()},
		{"APPEND past the limit", nil, ts.maxValue()},
	}
	all := []string{"tl:a", "tl:b", "tl:c", "tl:d", "tl:e"}
	for _, tc := range cases {
		mustDo(t, c, "OK", "MULTI")
		mustDo(t, c, "QUEUED", "SET", "tl:a", "1")
		bad := tc.bad
		if bad == nil {
			mustDo(t, c, "QUEUED", "SET", "tl:d", vMax)
			bad = a("APPEND", "tl:d", "x")
		}
		queued := c.Do(ctx, bad...)
		mustDo(t, c, "QUEUED", "SET", "tl:c", "1")
		exec := c.Do(ctx, "EXEC")
		if ts.redis {
			if exec.Err() != nil {
				t.Errorf("%s: Redis EXEC: %v", tc.name, exec.Err())
			}
			c.Del(ctx, all...)
			continue
		}
		if exec.Err() == nil || exec.Err() == redis.Nil {
			t.Errorf("%s: EXEC answered %s, want an error", tc.name, showReply(exec.Val(), exec.Err()))
		}
		limit := strconv.Itoa(tc.limit)
		qe, ee := fmt.Sprint(queued.Err()), fmt.Sprint(exec.Err())
		if !strings.Contains(qe, limit) && !strings.Contains(ee, limit) {
			t.Errorf("%s: queued reply %s, EXEC %s: neither names the limit %s", tc.name,
				showReply(queued.Val(), queued.Err()), showReply(exec.Val(), exec.Err()), limit)
		}
		vals, err := getAll(ctx, c, all)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := countPresent(vals); n != 0 {
			t.Errorf("%s: the failed transaction wrote %d of %v", tc.name, n, all)
		}
		mustDo(t, c, errPrefix("ERR EXEC without MULTI"), "EXEC")
		mustDo(t, c, "PONG", "PING")
	}
}

// servedCommands are the commands bpfdb serves, as COMMAND must list them.
var servedCommands = []string{"ping", "echo", "hello", "auth", "quit", "get", "set", "setnx", "getset", "getdel",
	"del", "exists", "mget", "mset", "msetnx", "incr", "decr", "incrby", "decrby", "append", "strlen",
	"dbsize", "flushall", "multi", "exec", "discard", "watch", "unwatch", "info", "config", "command",
	"client", "select", "bgsave", "save", "lastsave", "shutdown",
	"type", "unlink", "touch", "rename", "renamenx", "copy", "getrange", "substr", "setrange", "incrbyfloat",
	"keys", "scan", "randomkey", "time", "object", "memory",
	"setex", "psetex", "getex", "expire", "pexpire", "expireat", "pexpireat", "ttl", "pttl",
	"expiretime", "pexpiretime", "persist",
	"hset", "hmset", "hsetnx", "hget", "hmget", "hgetall", "hkeys", "hvals", "hdel", "hlen", "hexists",
	"hstrlen", "hincrby", "hincrbyfloat", "hscan"}

// helloCheck accepts a RESP2 HELLO reply for protocol proto: field/value
// pairs with server, version (bpfdb: Config.Version), proto and id.
func helloCheck(ts *testServer, proto int64) func(any) error {
	return func(v any) error {
		m, err := pairs(v)
		if err != nil {
			return err
		}
		for _, f := range []string{"server", "version", "proto", "id"} {
			if _, ok := m[f]; !ok {
				return fmt.Errorf("HELLO reply lacks %q", f)
			}
		}
		if m["proto"] != proto {
			return fmt.Errorf("proto is %#v, want %d", m["proto"], proto)
		}
		if !ts.redis && m["version"] != ts.cfg.Version {
			return fmt.Errorf("version is %#v, want Config.Version %q", m["version"], ts.cfg.Version)
		}
		return nil
	}
}

// txnKeyLimit: commands touching more keys than one transaction may hold
// either work whole or fail whole with an error naming the limit.
func txnKeyLimit(t *testing.T, ts *testServer) {
	ctx := testCtx(t, 30*time.Second)
	c := ts.conn(t)
	n := engine.MaxTxnKeys + 1
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("tk:%03d", i)
	}
	limit := strconv.Itoa(engine.MaxTxnKeys)

	// MSET of MaxTxnKeys+1 keys.
	var args []any
	for _, k := range keys {
		args = append(args, k, "v"+k)
	}
	err := c.MSet(ctx, args...).Err()
	vals, gerr := getAll(ctx, c, keys)
	if gerr != nil {
		t.Fatal(gerr)
	}
	present := countPresent(vals)
	switch {
	case err == nil && present != n:
		t.Errorf("MSET of %d keys answered OK but %d of them are there", n, present)
	case err != nil && (present != 0 || !strings.Contains(err.Error(), limit)):
		t.Errorf("MSET of %d keys: %v, and %d of them are there (want an error naming %s and none)", n, err, present, limit)
	}
	if err != nil {
		t.Logf("MSET of %d keys: %v", n, err)
	}

	// Make sure every key is there, in chunks a transaction can hold.
	for i := 0; i < n; i += 32 {
		var args []any
		for _, k := range keys[i:min(i+32, n)] {
			args = append(args, k, "v"+k)
		}
		if err := c.MSet(ctx, args...).Err(); err != nil {
			t.Fatalf("MSET of 32 keys: %v", err)
		}
	}

	// MGET of MaxTxnKeys+1 keys reads one snapshot.
	got, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		if !strings.Contains(err.Error(), limit) {
			t.Errorf("MGET of %d keys: %v (an error must name the limit %s)", n, err, limit)
		}
		t.Logf("MGET of %d keys: %v", n, err)
	} else {
		for i, v := range got {
			if v != "v"+keys[i] {
				t.Errorf("MGET of %d keys: %s is %#v", n, keys[i], v)
				break
			}
		}
	}

	// MULTI with MaxTxnKeys+1 SETs of distinct keys: all or nothing.
	fresh := make([]string, n)
	for i := range fresh {
		fresh[i] = fmt.Sprintf("tm:%03d", i)
	}
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range fresh {
			p.Set(ctx, k, "x", 0)
		}
		return nil
	})
	vals, gerr = getAll(ctx, c, fresh)
	if gerr != nil {
		t.Fatal(gerr)
	}
	present = countPresent(vals)
	if err == nil {
		if present != n {
			t.Errorf("MULTI of %d SETs succeeded but %d keys are there", n, present)
		}
	} else {
		t.Logf("MULTI of %d SETs: %v", n, err)
		if ts.redis {
			t.Errorf("Redis failed MULTI of %d SETs: %v", n, err)
		}
		if present != 0 {
			t.Errorf("MULTI of %d SETs failed (%v) but %d of its keys are there", n, err, present)
		}
		if !strings.Contains(err.Error(), limit) {
			t.Errorf("MULTI of %d SETs failed with %v, which does not name the limit %s", n, err, limit)
		}
	}
	_ = cmds
	if !ts.redis && err == nil {
		t.Logf("note: bpfdb ran a MULTI of %d keys as one transaction", n)
	}

	// DEL of MaxTxnKeys+1 keys: all or nothing.
	d, err := c.Del(ctx, keys...).Result()
	vals, gerr = getAll(ctx, c, keys)
	if gerr != nil {
		t.Fatal(gerr)
	}
	present = countPresent(vals)
	switch {
	case err == nil && (d != int64(n) || present != 0):
		t.Errorf("DEL of %d keys answered %d and left %d of them", n, d, present)
	case err != nil && (present != n || !strings.Contains(err.Error(), limit)):
		t.Errorf("DEL of %d keys: %v, and %d of them are left (want an error naming %s and all left)", n, err, present, limit)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after the limit tests: %v", err)
	}
}

// getAll GETs keys one at a time (not one transaction).
func getAll(ctx context.Context, c redis.Cmdable, keys []string) ([]any, error) {
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, err
	}
	out := make([]any, len(cmds))
	for i, cmd := range cmds {
		v, err := cmd.(*redis.StringCmd).Result()
		switch {
		case err == redis.Nil:
		case err != nil:
			return nil, fmt.Errorf("GET %s: %w", keys[i], err)
		default:
			out[i] = v
		}
	}
	return out, nil
}

func countPresent(vals []any) int {
	n := 0
	for _, v := range vals {
		if v != nil {
			n++
		}
	}
	return n
}

// --- pipelines and transactions through go-redis ---

func TestPipeline(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 30*time.Second)
	c := ts.client(t)

	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "pk", "1", 0)
		p.Incr(ctx, "pk")
		p.Get(ctx, "pk")
		p.Del(ctx, "pk")
		p.Get(ctx, "pk")
		p.Exists(ctx, "pk")
		p.Echo(ctx, "done")
		return nil
	})
	if err != redis.Nil {
		t.Errorf("Pipelined returned %v, want redis.Nil (from the last GET)", err)
	}
	want := []any{"OK", 2, "2", 1, isNil{}, 0, "done"}
	if len(cmds) != len(want) {
		t.Fatalf("%d results for %d commands", len(cmds), len(want))
	}
	for i, cmd := range cmds {
		if err := match(cmdVal(cmd), cmd.Err(), want[i]); err != nil {
			t.Errorf("command %d (%v): %v", i, cmd.Args(), err)
		}
	}

	// A long pipeline of mixed commands, one with an error in the middle:
	// every reply in order.
	const n = 300
	cmds, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "pl:str", "abc", 0)
		for i := 1; i <= n; i++ {
			p.Incr(ctx, "pl:n")
			p.Set(ctx, fmt.Sprintf("pl:k%d", i), i, 0)
			p.Get(ctx, "pl:n")
			if i == n/2 {
				p.Incr(ctx, "pl:str")
			}
		}
		p.MGet(ctx, "pl:k1", "pl:k2", "pl:nothing", fmt.Sprintf("pl:k%d", n))
		return nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "ERR value is not an integer") {
		t.Errorf("Pipelined returned %v, want the INCR error", err)
	}
	if len(cmds) != 3*n+3 {
		t.Fatalf("%d results, want %d", len(cmds), 3*n+3)
	}
	j := 1
	for i := 1; i <= n; i++ {
		if err := match(cmdVal(cmds[j]), cmds[j].Err(), i); err != nil {
			t.Fatalf("INCR #%d: %v", i, err)
		}
		if err := match(cmdVal(cmds[j+1]), cmds[j+1].Err(), "OK"); err != nil {
			t.Fatalf("SET #%d: %v", i, err)
		}
		if err := match(cmdVal(cmds[j+2]), cmds[j+2].Err(), strconv.Itoa(i)); err != nil {
			t.Fatalf("GET #%d: %v", i, err)
		}
		j += 3
		if i == n/2 {
			if err := match(cmdVal(cmds[j]), cmds[j].Err(), errPrefix("ERR value is not an integer")); err != nil {
				t.Fatalf("INCR of a string: %v", err)
			}
			j++
		}
	}
	if err := match(cmdVal(cmds[j]), cmds[j].Err(), []any{"1", "2", isNil{}, strconv.Itoa(n)}); err != nil {
		t.Errorf("MGET: %v", err)
	}

	// TxPipelined: MULTI ... EXEC.
	cmds, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "tp:a", "10", 0)
		p.IncrBy(ctx, "tp:a", 5)
		p.DecrBy(ctx, "tp:b", 5)
		p.MGet(ctx, "tp:a", "tp:b")
		return nil
	})
	if err != nil {
		t.Fatalf("TxPipelined: %v", err)
	}
	want = []any{"OK", 15, -5, []any{"15", "-5"}}
	for i, cmd := range cmds {
		if err := match(cmdVal(cmd), cmd.Err(), want[i]); err != nil {
			t.Errorf("TxPipelined command %d (%v): %v", i, cmd.Args(), err)
		}
	}
	// A run-time error inside EXEC: that slot fails, the others apply.
	cmds, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "tp:s", "x", 0)
		p.Incr(ctx, "tp:s")
		p.Incr(ctx, "tp:a")
		return nil
	})
	if err == nil || !strings.HasPrefix(err.Error(), "ERR value is not an integer") {
		t.Errorf("TxPipelined with a bad INCR returned %v", err)
	}
	want = []any{"OK", errPrefix("ERR value is not an integer"), 16}
	for i, cmd := range cmds {
		if err := match(cmdVal(cmd), cmd.Err(), want[i]); err != nil {
			t.Errorf("TxPipelined command %d (%v): %v", i, cmd.Args(), err)
		}
	}
	if v, _ := c.Get(ctx, "tp:a").Result(); v != "16" {
		t.Errorf("tp:a is %q, want 16", v)
	}
}

// cmdVal is a go-redis command's value as Do would return it.
func cmdVal(c redis.Cmder) any {
	switch c := c.(type) {
	case *redis.StatusCmd:
		return c.Val()
	case *redis.StringCmd:
		return c.Val()
	case *redis.IntCmd:
		return c.Val()
	case *redis.SliceCmd:
		return c.Val()
	case *redis.Cmd:
		return c.Val()
	case *redis.BoolCmd:
		return c.Val()
	}
	return fmt.Sprintf("<%T>", c)
}

// --- WATCH ---

// TestWatchCounter: N clients increment one counter M times each with
// WATCH/GET/MULTI/SET/EXEC, retrying when EXEC answers null. An update may
// never be lost: the counter ends at exactly N*M.
func TestWatchCounter(t *testing.T) {
	ts := startServer(t, Config{}, false)
	const workers, incs = 8, 25
	ctx := testCtx(t, 45*time.Second)
	c := ts.client(t, func(o *redis.Options) { o.PoolSize = workers + 2 })
	const key = "wc:counter"
	var retries atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < incs; i++ {
				for attempt := 0; ; attempt++ {
					if attempt > 5000 || ctx.Err() != nil {
						errs <- fmt.Errorf("increment gave up after %d attempts (%v)", attempt, ctx.Err())
						return
					}
					err := c.Watch(ctx, func(tx *redis.Tx) error {
						n, err := tx.Get(ctx, key).Int()
						if err != nil && err != redis.Nil {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, key, n+1, 0)
							return nil
						})
						return err
					}, key)
					if err == nil {
						break
					}
					if err != redis.TxFailedErr {
						errs <- err
						return
					}
					retries.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := c.Get(ctx, key).Int()
	if err != nil {
		t.Fatal(err)
	}
	if got != workers*incs {
		t.Errorf("counter is %d after %d WATCH increments: %d updates lost", got, workers*incs, workers*incs-got)
	}
	t.Logf("%d increments, %d EXECs aborted by WATCH", workers*incs, retries.Load())
}

// TestWatchAborts: EXEC answers null when another connection (or this one)
// wrote a watched key between WATCH and EXEC, whatever it wrote.
func TestWatchAborts(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 30*time.Second)
	other := ts.conn(t)

	cases := []struct {
		name  string
		write []any // what the other connection does between WATCH and EXEC
		own   bool  // the watching connection does it itself
		abort bool
	}{
		{"set other value", a("SET", "w:k", "other"), false, true},
		{"set same value", a("SET", "w:k", "10"), false, true},
		{"del", a("DEL", "w:k"), false, true},
		{"incr", a("INCR", "w:k"), false, true},
		{"append", a("APPEND", "w:k", "x"), false, true},
		{"append empty", a("APPEND", "w:k", ""), false, true},
		{"mset", a("MSET", "w:zz", "1", "w:k", "10"), false, true},
		{"getset", a("GETSET", "w:k", "10"), false, true},
		{"getdel", a("GETDEL", "w:k"), false, true},
		{"set xx", a("SET", "w:k", "n", "XX"), false, true},
		{"set in a transaction", nil, false, true}, // MULTI SET EXEC on the other connection
		{"own write", a("SET", "w:k", "mine"), true, true},
		{"read only", a("GET", "w:k"), false, false},
		{"other key", a("SET", "w:other", "x"), false, false},
		{"nothing", a("PING"), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := other.Set(ctx, "w:k", "10", 0).Err(); err != nil {
				t.Fatal(err)
			}
			w := ts.conn(t)
			mustDo(t, w, "OK", "WATCH", "w:k", "w:unrelated")
			mustDo(t, w, "10", "GET", "w:k")
			actor := other
			if tc.own {
				actor = w
			}
			if tc.write == nil {
				if _, err := other.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, "w:k", "10", 0)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			} else if err := actor.Do(ctx, tc.write...).Err(); err != nil && err != redis.Nil {
				t.Fatalf("%s: %v", argString(tc.write), err)
			}
			before, _ := other.Get(ctx, "w:k").Result()
			mustDo(t, w, "OK", "MULTI")
			mustDo(t, w, "QUEUED", "SET", "w:k", "from-exec")
			res := w.Do(ctx, "EXEC")
			after, _ := other.Get(ctx, "w:k").Result()
			if tc.abort {
				if err := match(res.Val(), res.Err(), isNil{}); err != nil {
					t.Errorf("EXEC after %s: %v (want a null reply: the watched key was written)", argString(tc.write), err)
				}
				if after != before {
					t.Errorf("the aborted EXEC changed w:k from %q to %q", before, after)
				}
			} else {
				if err := match(res.Val(), res.Err(), []any{"OK"}); err != nil {
					t.Errorf("EXEC after %s: %v", argString(tc.write), err)
				}
				if after != "from-exec" {
					t.Errorf("w:k is %q after EXEC, want from-exec", after)
				}
			}
			// EXEC forgets the watched keys, aborted or not.
			if err := other.Set(ctx, "w:k", "again", 0).Err(); err != nil {
				t.Fatal(err)
			}
			mustDo(t, w, "OK", "MULTI")
			mustDo(t, w, "QUEUED", "GET", "w:k")
			mustDo(t, w, []any{"again"}, "EXEC")
		})
	}

	t.Run("watch missing key then created", func(t *testing.T) {
		w := ts.conn(t)
		mustDo(t, w, "OK", "WATCH", "w:new")
		mustDo(t, w, isNil{}, "GET", "w:new")
		if err := other.Set(ctx, "w:new", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "SET", "w:new", "2")
		mustDo(t, w, isNil{}, "EXEC")
		mustDo(t, w, "1", "GET", "w:new")
	})
	t.Run("write between WATCH and the first read", func(t *testing.T) {
		w := ts.conn(t)
		if err := other.Set(ctx, "w:r", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "WATCH", "w:r")
		if err := other.Set(ctx, "w:r", "2", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "2", "GET", "w:r")
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "SET", "w:r", "3")
		mustDo(t, w, isNil{}, "EXEC")
		mustDo(t, w, "2", "GET", "w:r")
	})
	t.Run("no read at all", func(t *testing.T) {
		w := ts.conn(t)
		mustDo(t, w, "OK", "WATCH", "w:nr")
		if err := other.Set(ctx, "w:nr", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "INCR", "w:nr")
		mustDo(t, w, isNil{}, "EXEC")
		mustDo(t, w, "1", "GET", "w:nr")
	})
	t.Run("ABA", func(t *testing.T) {
		w := ts.conn(t)
		if err := other.Set(ctx, "w:aba", "A", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "WATCH", "w:aba")
		mustDo(t, w, "A", "GET", "w:aba")
		for _, cmd := range [][]any{a("SET", "w:aba", "B"), a("DEL", "w:aba"), a("SET", "w:aba", "A")} {
			if err := other.Do(ctx, cmd...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "SET", "w:aba", "C")
		mustDo(t, w, isNil{}, "EXEC")
	})
	t.Run("several watches accumulate", func(t *testing.T) {
		w := ts.conn(t)
		mustDo(t, w, "OK", "WATCH", "w:a")
		mustDo(t, w, "OK", "WATCH", "w:b")
		if err := other.Set(ctx, "w:a", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "SET", "w:b", "2")
		mustDo(t, w, isNil{}, "EXEC")
	})
	t.Run("unwatch", func(t *testing.T) {
		w := ts.conn(t)
		mustDo(t, w, "OK", "WATCH", "w:u")
		mustDo(t, w, "OK", "UNWATCH")
		if err := other.Set(ctx, "w:u", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "SET", "w:u", "2")
		mustDo(t, w, []any{"OK"}, "EXEC")
		mustDo(t, w, "2", "GET", "w:u")
	})
	t.Run("discard unwatches", func(t *testing.T) {
		w := ts.conn(t)
		mustDo(t, w, "OK", "WATCH", "w:d")
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "OK", "DISCARD")
		if err := other.Set(ctx, "w:d", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "SET", "w:d", "2")
		mustDo(t, w, []any{"OK"}, "EXEC")
	})
	t.Run("go-redis Watch", func(t *testing.T) {
		c := ts.client(t)
		err := c.Watch(ctx, func(tx *redis.Tx) error {
			if _, err := tx.Get(ctx, "w:g").Result(); err != redis.Nil {
				return fmt.Errorf("GET w:g: %v", err)
			}
			if err := other.Set(ctx, "w:g", "x", 0).Err(); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "w:g", "y", 0)
				return nil
			})
			return err
		}, "w:g")
		if err != redis.TxFailedErr {
			t.Errorf("Watch returned %v, want redis.TxFailedErr", err)
		}
	})
	t.Run("flushall", func(t *testing.T) {
		w := ts.conn(t)
		if err := other.Set(ctx, "w:f", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "WATCH", "w:f")
		if err := other.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		mustDo(t, w, "OK", "MULTI")
		mustDo(t, w, "QUEUED", "SET", "w:f", "2")
		mustDo(t, w, isNil{}, "EXEC")
	})
}

// TestWatchBank: transfers as read-check-write under WATCH of both
// accounts (GET, GET, refuse an overdraft, MULTI SET SET EXEC), retried on
// a null EXEC. With correct WATCH no account goes negative and the total is
// conserved; a lost update shows as a changed total.
func TestWatchBank(t *testing.T) {
	ts := startServer(t, Config{}, false)
	const accounts, initial, workers, transfers = 5, 100, 6, 40
	ctx := testCtx(t, 45*time.Second)
	c := ts.client(t, func(o *redis.Options) { o.PoolSize = workers + 2 })
	keys := make([]string, accounts)
	for i := range keys {
		keys[i] = fmt.Sprintf("wb:%d", i)
		if err := c.Set(ctx, keys[i], initial, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	var aborted, refused atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for i := 0; i < transfers; i++ {
				from, to := rng.Intn(accounts), rng.Intn(accounts-1)
				if to >= from {
					to++
				}
				amt := 1 + rng.Intn(60)
				for attempt := 0; ; attempt++ {
					if attempt > 5000 || ctx.Err() != nil {
						errs <- fmt.Errorf("transfer gave up after %d attempts", attempt)
						return
					}
					err := c.Watch(ctx, func(tx *redis.Tx) error {
						a, err := tx.Get(ctx, keys[from]).Int()
						if err != nil {
							return err
						}
						b, err := tx.Get(ctx, keys[to]).Int()
						if err != nil {
							return err
						}
						if a < amt {
							refused.Add(1)
							return nil
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, keys[from], a-amt, 0)
							p.Set(ctx, keys[to], b+amt, 0)
							return nil
						})
						return err
					}, keys[from], keys[to])
					if err == nil {
						break
					}
					if err != redis.TxFailedErr {
						errs <- err
						return
					}
					aborted.Add(1)
				}
			}
		}(int64(w + 100))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, v := range vals {
		n, err := strconv.Atoi(fmt.Sprint(v))
		if err != nil {
			t.Fatalf("%s is %#v", keys[i], v)
		}
		if n < 0 {
			t.Errorf("%s went negative: %d (WATCH let a stale read through)", keys[i], n)
		}
		total += n
	}
	if total != accounts*initial {
		t.Errorf("the accounts sum to %d, not %d: updates were lost (%v)", total, accounts*initial, vals)
	}
	t.Logf("%d transfers, %d EXECs aborted by WATCH, %d refused for funds", workers*transfers, aborted.Load(), refused.Load())
}

// mustDo runs a command on c and checks its reply.
func mustDo(t *testing.T, c *redis.Conn, want any, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := c.Do(ctx, args...)
	if err := match(cmd.Val(), cmd.Err(), want); err != nil {
		t.Fatalf("%s: %v", argString(args), err)
	}
}

// TestBankTransfers: several connections move money between accounts with
// MULTI DECRBY/INCRBY EXEC while others read every account with one MGET
// (and with one MULTI of GETs): every read sees the same total, and the
// total is conserved at the end.
func TestBankTransfers(t *testing.T) {
	ts := startServer(t, Config{}, false)
	const accounts, initial = 10, 1000
	const writers, readers = 4, 2
	const maxTransfers = 300 // per writer
	total := int64(accounts * initial)
	ctx := testCtx(t, 45*time.Second)
	c := ts.client(t, func(o *redis.Options) { o.PoolSize = writers + readers + 2 })
	keys := make([]string, accounts)
	var args []any
	for i := range keys {
		keys[i] = fmt.Sprintf("bank:%02d", i)
		args = append(args, keys[i], initial)
	}
	if err := c.MSet(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}

	sum := func(vals []any) (int64, error) {
		var s int64
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				return 0, fmt.Errorf("%s is %#v", keys[i], v)
			}
			n, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s is %q", keys[i], str)
			}
			s += n
		}
		return s, nil
	}

	var (
		wg        sync.WaitGroup
		done      = make(chan struct{})
		transfers atomic.Int64
		snapshots atomic.Int64
		failures  = make(chan string, 100)
	)
	report := func(format string, args ...any) {
		select {
		case failures <- fmt.Sprintf(format, args...):
		default:
		}
	}
	deadline := time.Now().Add(4 * time.Second)
	var writersWG sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		writersWG.Add(1)
		go func(seed int64) {
			defer wg.Done()
			defer writersWG.Done()
			rng := rand.New(rand.NewSource(seed))
			for i := 0; i < maxTransfers && time.Now().Before(deadline); i++ {
				from, to := rng.Intn(accounts), rng.Intn(accounts-1)
				if to >= from {
					to++
				}
				amt := int64(1 + rng.Intn(50))
				cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.DecrBy(ctx, keys[from], amt)
					p.IncrBy(ctx, keys[to], amt)
					return nil
				})
				if err != nil {
					report("transfer %d from %s to %s: %v", amt, keys[from], keys[to], err)
					return
				}
				for _, cmd := range cmds {
					if cmd.Err() != nil {
						report("transfer: %v: %v", cmd.Args(), cmd.Err())
						return
					}
				}
				transfers.Add(1)
			}
		}(int64(w + 1))
	}
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				var vals []any
				var err error
				if r == 0 || i%2 == 0 {
					vals, err = c.MGet(ctx, keys...).Result()
				} else {
					var cmds []redis.Cmder
					cmds, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
						for _, k := range keys {
							p.Get(ctx, k)
						}
						return nil
					})
					for _, cmd := range cmds {
						vals = append(vals, cmdVal(cmd))
					}
				}
				if err != nil {
					report("read: %v", err)
					return
				}
				s, err := sum(vals)
				if err != nil {
					report("read: %v", err)
					return
				}
				if s != total {
					report("a read of every account sums to %d, not %d: %v", s, total, vals)
					return
				}
				snapshots.Add(1)
			}
		}(r)
	}
	writersWG.Wait()
	close(done)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sum(vals)
	if err != nil {
		t.Fatal(err)
	}
	if s != total {
		t.Errorf("after the transfers the accounts sum to %d, not %d", s, total)
	}
	if transfers.Load() == 0 || snapshots.Load() == 0 {
		t.Errorf("%d transfers, %d reads: nothing ran", transfers.Load(), snapshots.Load())
	}
	t.Logf("%d transfers, %d consistent reads", transfers.Load(), snapshots.Load())
}

// --- AUTH, HELLO ---

func TestAuth(t *testing.T) {
	const pass = "s3cret pass"
	ts := startServer(t, Config{RequirePass: pass}, false)
	ctx := testCtx(t, 30*time.Second)
	noauth := errPrefix("NOAUTH Authentication required")
	wrongpass := errPrefix("WRONGPASS invalid username-password pair")

	t.Run("refused until AUTH", func(t *testing.T) {
		c := ts.conn(t)
		runSteps(t, ts, c, []step{
			{a("PING"), noauth, nil},
			{a("GET", "k"), noauth, nil},
			{a("SET", "k", "v"), noauth, nil},
			{a("MULTI"), noauth, nil},
			{a("INFO"), noauth, nil},
			{a("DBSIZE"), noauth, nil},
			{a("FLUSHALL"), noauth, nil},
			{a("SHUTDOWN"), noauth, nil},
			{a("AUTH", "wrong"), wrongpass, nil},
			{a("PING"), noauth, nil},
			{a("AUTH", "default", "wrong"), wrongpass, nil},
			{a("AUTH", "someone", pass), wrongpass, nil},
			{a("PING"), noauth, nil},
			{a("AUTH", pass), "OK", nil},
			{a("PING"), "PONG", nil},
			{a("SET", "k", "v"), "OK", nil},
			{a("GET", "k"), "v", nil},
		})
		if !ts.redis {
			select {
			case <-ts.srv.ShutdownRequested():
				t.Errorf("SHUTDOWN before AUTH requested a shutdown")
			default:
			}
		}
	})
	t.Run("AUTH default pass", func(t *testing.T) {
		runSteps(t, ts, ts.conn(t), []step{
			{a("AUTH", "default", pass), "OK", nil},
			{a("GET", "k"), "v", nil},
		})
	})
	t.Run("HELLO AUTH", func(t *testing.T) {
		runSteps(t, ts, ts.conn(t), []step{
			{a("HELLO", "2", "AUTH", "default", "bad"), wrongpass, nil},
			{a("GET", "k"), noauth, nil},
			{a("HELLO", "2", "AUTH", "default", pass, "SETNAME", "authed"), helloCheck(ts, 2), nil},
			{a("GET", "k"), "v", nil},
			{a("CLIENT", "GETNAME"), "authed", nil},
		})
	})
	t.Run("QUIT before AUTH", func(t *testing.T) {
		c := ts.raw(t)
		if r := c.do(t, "QUIT"); r != respStatus("OK") {
			t.Errorf("QUIT: %#v", r)
		}
		c.expectClosed(t, 5*time.Second)
	})
	t.Run("go-redis with the password", func(t *testing.T) {
		for _, proto := range []int{2, 3} {
			c := ts.client(t, func(o *redis.Options) { o.Password = pass; o.Protocol = proto })
			if err := c.Set(ctx, "gr", proto, 0).Err(); err != nil {
				t.Errorf("protocol %d: SET: %v", proto, err)
			}
			if v, err := c.Get(ctx, "gr").Result(); err != nil || v != strconv.Itoa(proto) {
				t.Errorf("protocol %d: GET: %q, %v", proto, v, err)
			}
		}
	})
	t.Run("go-redis with a wrong password", func(t *testing.T) {
		c := ts.client(t, func(o *redis.Options) { o.Password = "nope" })
		err := c.Ping(ctx).Err()
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("PING with a wrong password: %v, want WRONGPASS", err)
		}
	})
}

// KEYS, SCAN and RANDOMKEY see one snapshot of the store; SCAN's cursor
// returns every key present for the whole iteration at least once, while
// keys are written and deleted meanwhile, with MATCH and TYPE filtering.
func TestKeysScan(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 60*time.Second)
	c := ts.client(t)
	const n = 1500
	for i := 0; i < n; i++ {
		if err := c.Set(ctx, fmt.Sprintf("scan:%04d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := c.Keys(ctx, "scan:00*").Result()
	if err != nil || len(keys) != 100 {
		t.Errorf("KEYS scan:00*: %d keys, %v; want 100", len(keys), err)
	}
	if k, err := c.RandomKey(ctx).Result(); err != nil || !strings.HasPrefix(k, "scan:") {
		t.Errorf("RANDOMKEY = %q, %v", k, err)
	}
	seen := map[string]int{}
	var cursor uint64
	calls := 0
	for {
		batch, next, err := c.Scan(ctx, cursor, "scan:*", 10).Result()
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, k := range batch {
			seen[k]++
		}
		// Churn: keys come and go during the iteration.
		c.Set(ctx, fmt.Sprintf("churn:%d", calls), "x", 0)
		c.Del(ctx, fmt.Sprintf("churn:%d", calls-1))
		if next == 0 {
			break
		}
		if calls > n {
			t.Fatal("SCAN does not end")
		}
		cursor = next
	}
	for i := 0; i < n; i++ {
		if seen[fmt.Sprintf("scan:%04d", i)] == 0 {
			t.Fatalf("SCAN missed scan:%04d (%d calls)", i, calls)
		}
	}
	if len(seen) != n {
		t.Errorf("SCAN MATCH scan:* returned %d distinct keys, want %d", len(seen), n)
	}
	if keys, _, err := c.ScanType(ctx, 0, "*", 100000, "hash").Result(); err != nil || len(keys) != 0 {
		t.Errorf("SCAN TYPE hash: %v, %v; want none", keys, err)
	}
	if err := c.Do(ctx, "SCAN", "notanumber").Err(); err == nil {
		t.Errorf("SCAN with a bad cursor: no error")
	}
}

func TestHello3(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 20*time.Second)
	c := ts.conn(t)
	r := c.Do(ctx, "HELLO", "3")
	if m, ok := r.Val().(map[any]any); r.Err() != nil || !ok || m["proto"] != int64(3) {
		t.Errorf("HELLO 3: %#v, %v; want a map with proto 3", r.Val(), r.Err())
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after HELLO 3: %v", err)
	}
	// The RESP3 types, on the wire, where Redis 7 uses them: a map for
	// HELLO and CONFIG GET, null (_) for a missing value and for an EXEC
	// whose WATCH failed.
	raw := ts.raw(t)
	for _, step := range []struct {
		args []string
		want string // the reply's first line
	}{
		{[]string{"HELLO", "3"}, "%7"},
		{[]string{"GET", "h3:missing"}, "_"},
		{[]string{"CONFIG", "GET", "maxclients"}, "%1"},
		{[]string{"HELLO", "2"}, "*14"},
		{[]string{"GET", "h3:missing"}, "$-1"},
	} {
		raw.Write(encode(step.args...))
		line, err := raw.br.ReadString('\n')
		if err != nil || strings.TrimSuffix(line, "\r\n") != step.want {
			t.Errorf("%v: first line %q, %v; want %q", step.args, line, err, step.want)
		}
		if step.args[0] == "HELLO" || step.args[0] == "CONFIG" { // skip the elements
			n, _ := strconv.Atoi(strings.TrimSuffix(line, "\r\n")[1:])
			if line[0] == '%' {
				n *= 2
			}
			for i := 0; i < n; i++ {
				if _, err := readReply(raw.br); err != nil {
					t.Fatalf("%v: element %d: %v", step.args, i, err)
				}
			}
		}
	}
	// go-redis with RESP3 (its default) and with RESP2.
	for _, proto := range []int{3, 2} {
		d := ts.client(t, func(o *redis.Options) { o.Protocol = proto })
		if err := d.Set(ctx, "h3", "v", 0).Err(); err != nil {
			t.Fatalf("RESP%d: SET: %v", proto, err)
		}
		if err := d.Get(ctx, "h3:missing").Err(); err != redis.Nil {
			t.Errorf("RESP%d: GET of a missing key: %v, want redis.Nil", proto, err)
		}
		if cfg, err := d.ConfigGet(ctx, "maxclients").Result(); err != nil || cfg["maxclients"] == "" {
			t.Errorf("RESP%d: CONFIG GET: %v, %v", proto, cfg, err)
		}
	}
	d := ts.client(t, func(o *redis.Options) { o.Protocol = 0 })
	if err := d.Set(ctx, "h3", "v", 0).Err(); err != nil {
		t.Fatalf("SET with a default go-redis client: %v", err)
	}
	if v, err := d.Get(ctx, "h3").Result(); err != nil || v != "v" {
		t.Errorf("GET with a default go-redis client: %q, %v", v, err)
	}
	if vals, err := d.MGet(ctx, "h3", "nothing").Result(); err != nil || len(vals) != 2 || vals[0] != "v" || vals[1] != nil {
		t.Errorf("MGET with a default go-redis client: %#v, %v", vals, err)
	}
	cmds, err := d.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "h3:n")
		p.Incr(ctx, "h3:n")
		return nil
	})
	if err != nil || cmds[1].(*redis.IntCmd).Val() != 2 {
		t.Errorf("TxPipelined with a default go-redis client: %v", err)
	}
}

// --- INFO, DBSIZE, FLUSHALL ---

func TestInfoAndDBSize(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 30*time.Second)
	c := ts.conn(t)
	info := func(section ...any) string {
		t.Helper()
		args := append([]any{"INFO"}, section...)
		s, err := c.Do(ctx, args...).Text()
		if err != nil {
			t.Fatalf("INFO %v: %v", section, err)
		}
		return s
	}
	sections := map[string]string{"server": "# Server", "clients": "# Clients", "stats": "# Stats",
		"persistence": "# Persistence", "keyspace": "# Keyspace", "memory": "# Memory",
		"replication": "# Replication", "cpu": "# CPU"}
	all := info()
	for name, header := range sections {
		if !strings.Contains(all, header) {
			t.Errorf("INFO lacks %q", header)
		}
		s := info(name)
		if !strings.Contains(s, header) {
			t.Errorf("INFO %s lacks %q:\n%s", name, header, s)
		}
		for other, h := range sections {
			if other != name && strings.Contains(s, h) {
				t.Errorf("INFO %s has %q too", name, h)
			}
		}
	}
	if s := info("KEYSPACE"); !strings.Contains(s, "# Keyspace") {
		t.Errorf("INFO KEYSPACE (upper case):\n%s", s)
	}
	if s := info("server"); !ts.redis && !strings.Contains(s, ts.cfg.Version) {
		t.Errorf("INFO server does not show Config.Version %q:\n%s", ts.cfg.Version, s)
	}
	for _, f := range []string{"connected_clients"} {
		if _, ok := infoField(info("clients"), f); !ok {
			t.Errorf("INFO clients lacks %s", f)
		}
	}
	for _, f := range []string{"total_connections_received", "total_commands_processed"} {
		if _, ok := infoField(info("stats"), f); !ok {
			t.Errorf("INFO stats lacks %s", f)
		}
	}

	// DBSIZE and the keyspace line agree.
	keyspace := func() (int64, string) {
		t.Helper()
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		line, _ := infoField(info("keyspace"), "db0")
		return n, line
	}
	check := func(want int64) {
		t.Helper()
		n, line := keyspace()
		if n != want {
			t.Errorf("DBSIZE is %d, want %d", n, want)
		}
		if want == 0 {
			if line != "" && !strings.HasPrefix(line, "keys=0,") {
				t.Errorf("INFO keyspace with no keys has db0:%s", line)
			}
			return
		}
		if wantLine := fmt.Sprintf("keys=%d,expires=0,avg_ttl=0", want); line != wantLine {
			t.Errorf("INFO keyspace has db0:%q, want %q (DBSIZE %d)", line, wantLine, n)
		}
	}
	check(0)
	if err := c.MSet(ctx, "i:a", "1", "i:b", "2", "i:c", "3").Err(); err != nil {
		t.Fatal(err)
	}
	check(3)
	c.Set(ctx, "i:a", "again", 0)
	check(3)
	c.Del(ctx, "i:b", "i:nothing")
	check(2)
	if err := c.MSet(ctx, "i:d", "1", "i:e", "").Err(); err != nil {
		t.Fatal(err)
	}
	check(4)
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	check(0)
	if v, err := c.MGet(ctx, "i:a", "i:c", "i:d", "i:e").Result(); err != nil || countPresent(v) != 0 {
		t.Errorf("after FLUSHALL: %#v, %v", v, err)
	}
	if err := c.Set(ctx, "i:z", "1", 0).Err(); err != nil {
		t.Fatalf("SET after FLUSHALL: %v", err)
	}
	check(1)
	// A bigger FLUSHALL, more keys than one transaction holds.
	for i := 0; i < 10; i++ {
		var args []any
		for j := 0; j < 50; j++ {
			args = append(args, fmt.Sprintf("i:big:%d:%d", i, j), j)
		}
		if err := c.MSet(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	check(501)
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	check(0)

	// connected_clients follows connections; the stats counters move.
	clients := func() int {
		v, _ := infoField(info("clients"), "connected_clients")
		n, _ := strconv.Atoi(v)
		return n
	}
	stat := func(f string) int64 {
		v, _ := infoField(info("stats"), f)
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	base, conns0, cmds0 := clients(), stat("total_connections_received"), stat("total_commands_processed")
	var raws []*rawConn
	for i := 0; i < 5; i++ {
		r := ts.raw(t)
		if got := r.do(t, "PING"); got != respStatus("PONG") {
			t.Fatalf("PING: %#v", got)
		}
		raws = append(raws, r)
	}
	if n := clients(); n != base+5 {
		t.Errorf("connected_clients is %d with 5 more connections, was %d", n, base)
	}
	if n := stat("total_connections_received"); n < conns0+5 {
		t.Errorf("total_connections_received went from %d to %d after 5 connections", conns0, n)
	}
	if n := stat("total_commands_processed"); n < cmds0+5 {
		t.Errorf("total_commands_processed went from %d to %d after 5 PINGs", cmds0, n)
	}
	for _, r := range raws {
		r.Close()
	}
	if !waitFor(5*time.Second, func() bool { return clients() == base }) {
		t.Errorf("connected_clients is %d 5s after closing 5 connections, want %d", clients(), base)
	}
}

// --- SAVE, BGSAVE, LASTSAVE with a data directory ---

func TestSaveDurable(t *testing.T) {
	ts := startServer(t, Config{}, true)
	ctx := testCtx(t, 30*time.Second)
	c := ts.conn(t)
	checkpoints := func() float64 {
		if ts.redis {
			return 0
		}
		ss, _ := scrape(t, ts.srv.MetricsHandler())
		return sumWhere(ss, named("bpfdb_checkpoints_total"))
	}
	ck0 := checkpoints()
	before := time.Now().Unix()
	if err := c.Set(ctx, "sv:a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SAVE").Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	ck1 := checkpoints()
	if !ts.redis && ck1 < ck0+1 {
		t.Errorf("bpfdb_checkpoints_total went from %v to %v over SAVE", ck0, ck1)
	}
	last, err := c.Do(ctx, "LASTSAVE").Int64()
	if err != nil {
		t.Fatalf("LASTSAVE: %v", err)
	}
	if last < before || last > time.Now().Unix()+1 {
		t.Errorf("LASTSAVE is %d right after SAVE at %d", last, before)
	}
	if err := c.Set(ctx, "sv:b", "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Do(ctx, "BGSAVE").Text(); err != nil {
		t.Fatalf("BGSAVE: %v", err)
	} else {
		t.Logf("BGSAVE: %s", s)
	}
	if !waitFor(10*time.Second, func() bool {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return false
		}
		v, _ := infoField(info, "rdb_bgsave_in_progress")
		return v != "1"
	}) {
		t.Errorf("rdb_bgsave_in_progress still 1 after 10s")
	}
	if l, err := c.Do(ctx, "LASTSAVE").Int64(); err != nil || l < last {
		t.Errorf("LASTSAVE after BGSAVE: %d, %v (was %d)", l, err, last)
	}
	if !ts.redis && !waitFor(10*time.Second, func() bool { return checkpoints() >= ck1+1 }) {
		t.Errorf("bpfdb_checkpoints_total still %v 10s after BGSAVE", checkpoints())
	}
	if v, err := c.MGet(ctx, "sv:a", "sv:b").Result(); err != nil || v[0] != "1" || v[1] != "2" {
		t.Errorf("after the saves: %#v, %v", v, err)
	}
}

// --- unix socket ---

func TestUnixSocket(t *testing.T) {
	path := tempSocket(t)
	ts := startServer(t, Config{Addr: "127.0.0.1:0", Unix: path}, false)
	ctx := testCtx(t, 20*time.Second)
	u := redis.NewClient(&redis.Options{Network: "unix", Addr: path, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { u.Close() })
	if err := u.Set(ctx, "ux", "over unix", 0).Err(); err != nil {
		t.Fatalf("SET over the unix socket: %v", err)
	}
	if v, err := ts.client(t).Get(ctx, "ux").Result(); err != nil || v != "over unix" {
		t.Errorf("GET over TCP of what was set over unix: %q, %v", v, err)
	}
	cmds, err := u.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "ux:n")
		p.Get(ctx, "ux")
		return nil
	})
	if err != nil || cmds[0].(*redis.IntCmd).Val() != 1 {
		t.Errorf("MULTI over unix: %v", err)
	}
}

// --- SHUTDOWN and Shutdown ---

func TestShutdownCommand(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if ts.redis {
		t.Skip("SHUTDOWN stops redis-server; nothing to check")
	}
	select {
	case <-ts.srv.ShutdownRequested():
		t.Fatal("ShutdownRequested is closed before any SHUTDOWN")
	default:
	}
	c := ts.raw(t)
	if r := c.do(t, "PING"); r != respStatus("PONG") {
		t.Fatalf("PING: %#v", r)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(encode("SHUTDOWN"))
	select {
	case <-ts.srv.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("ShutdownRequested not closed 5s after SHUTDOWN")
	}
}

// TestShutdownInFlight: Shutdown lets commands in flight finish; every SET
// a client saw acknowledged is in the engine; afterwards the port is closed.
func TestShutdownInFlight(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if ts.redis {
		t.Skip("Shutdown is bpfdb's")
	}
	ctx := testCtx(t, 30*time.Second)
	const clients = 6
	acked := make([][]string, clients)
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		started.Add(1)
		go func(i int) {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: 2, PoolSize: 1, MaxRetries: -1,
				ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
			defer c.Close()
			for j := 0; j < 100000; j++ {
				k := fmt.Sprintf("sd:%d:%d", i, j)
				var err error
				if j%3 == 2 {
					_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, k, k, 0)
						return nil
					})
				} else {
					err = c.Set(ctx, k, k, 0).Err()
				}
				if j == 10 {
					started.Done()
				}
				if err != nil {
					if j < 10 {
						started.Done()
					}
					return
				}
				acked[i] = append(acked[i], k)
			}
		}(i)
	}
	started.Wait()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := ts.stop(t); err != nil {
		t.Error(err)
	}
	t.Logf("Shutdown took %v", time.Since(start))
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("clients still running 15s after Shutdown: connections not closed")
	}
	n := 0
	for i := range acked {
		for _, k := range acked[i] {
			v, err := ts.eng.Get([]byte(k))
			if err != nil || string(v) != k {
				t.Errorf("acknowledged SET %s: after Shutdown the engine has %q, %v", k, v, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Error("no SET was acknowledged")
	}
	t.Logf("%d acknowledged SETs all present", n)
	if c, err := ts.dialRaw(); err == nil {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(encode("PING"))
		if r, err := c.read(); err == nil {
			t.Errorf("after Shutdown a new connection was served: %#v", r)
		}
		c.Close()
	}
}

// --- metrics ---

// sample is one line of Prometheus text output.
type sample struct {
	name, labels string
	value        float64
}

func scrape(t *testing.T, h http.Handler) ([]sample, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body.String())
	}
	body := rec.Body.String()
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		var s sample
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			s.name, s.labels, rest = line[:i], line[i+1:j], strings.TrimSpace(line[j+1:])
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			s.name, rest = f[0], f[1]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out, body
}

// sumWhere adds the samples for which keep holds.
func sumWhere(ss []sample, keep func(sample) bool) float64 {
	var s float64
	for _, x := range ss {
		if keep(x) {
			s += x.value
		}
	}
	return s
}

// commandSample: bpfdb_commands_total{command="name"}.
func commandSample(name string) func(sample) bool {
	return func(s sample) bool {
		return s.name == "bpfdb_commands_total" && strings.Contains(s.labels, `command="`+name+`"`)
	}
}

// named: every sample of one series name.
func named(name string) func(sample) bool {
	return func(s sample) bool { return s.name == name }
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if ts.redis {
		t.Skip("metrics are bpfdb's")
	}
	ctx := testCtx(t, 20*time.Second)
	h := ts.srv.MetricsHandler()
	before, _ := scrape(t, h)
	c := ts.client(t)
	for i := 0; i < 7; i++ {
		if err := c.Incr(ctx, "m:n").Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		c.Get(ctx, "m:n")
	}
	c.Do(ctx, "INCR", "m:n", "extra") // a wrong-arity error
	c.Do(ctx, "NOSUCHCOMMAND")
	c.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "m:t", "1", 0); return nil })
	for i := 0; i < 2; i++ {
		if err := c.HSet(ctx, "m:h", "f", i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, body := scrape(t, h)

	if !strings.Contains(body, "bpfdb_") {
		t.Fatalf("no bpfdb_ metrics:\n%s", body)
	}
	delta := func(keep func(sample) bool) float64 { return sumWhere(after, keep) - sumWhere(before, keep) }
	for _, c := range []struct {
		what string
		keep func(sample) bool
		min  float64
	}{
		{"bpfdb_commands_total{command=incr} after 8 INCRs (one of wrong arity)", commandSample("incr"), 7},
		{"bpfdb_commands_total{command=get} after 3 GETs", commandSample("get"), 3},
		{"bpfdb_commands_total{command=multi} after a MULTI", commandSample("multi"), 1},
		{"bpfdb_commands_total{command=exec} after an EXEC", commandSample("exec"), 1},
		{"bpfdb_commands_total{command=unknown} after an unknown command", commandSample("unknown"), 1},
		{"bpfdb_exec_total after an EXEC", named("bpfdb_exec_total"), 1},
		{"bpfdb_loop_txns_total{outcome=ran} after 2 HSETs", func(s sample) bool {
			return s.name == "bpfdb_loop_txns_total" && strings.Contains(s.labels, `outcome="ran"`)
		}, 2},
		{"bpfdb_chain_runs_total after 12 commands", named("bpfdb_chain_runs_total"), 1},
		{"bpfdb_chain_run_seconds_count after 12 commands", named("bpfdb_chain_run_seconds_count"), 1},
		{"bpfdb_commits_total after 8 writes", named("bpfdb_commits_total"), 8},
		{"bpfdb_connections_total after a new client", named("bpfdb_connections_total"), 1},
	} {
		if d := delta(c.keep); d < c.min {
			t.Errorf("%s: moved by %v, want at least %v", c.what, d, c.min)
		}
	}
	if !strings.Contains(body, "bpfdb_chain_run_seconds_bucket{") {
		t.Errorf("no bpfdb_chain_run_seconds histogram buckets")
	}
	if !strings.Contains(body, "bpfdb_log_bad_records_total ") || sumWhere(after, named("bpfdb_log_bad_records_total")) != 0 {
		t.Errorf("bpfdb_log_bad_records_total missing or not 0: the ring gave the log records it could not use")
	}
	if v := sumWhere(after, named("bpfdb_connected_clients")); v < 1 {
		t.Errorf("bpfdb_connected_clients is %v with a client connected", v)
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

// CLIENT KILL closes the connections it selects: by ID, by ADDR, and in
// the old form by address alone; the killed client's next command fails.
func TestClientKill(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 20*time.Second)
	admin := ts.conn(t)
	for _, how := range []string{"ID", "ADDR", "old"} {
		victim := ts.conn(t)
		id, err := victim.ClientID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		info, err := victim.ClientInfo(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		var r *redis.Cmd
		switch how {
		case "ID":
			r = admin.Do(ctx, "CLIENT", "KILL", "ID", id)
		case "ADDR":
			r = admin.Do(ctx, "CLIENT", "KILL", "ADDR", info.Addr)
		default:
			r = admin.Do(ctx, "CLIENT", "KILL", info.Addr)
		}
		want := any(int64(1))
		if how == "old" {
			want = "OK"
		}
		if r.Err() != nil || r.Val() != want {
			t.Errorf("CLIENT KILL by %s: %v, %v; want %v", how, r.Val(), r.Err(), want)
		}
		if err := victim.Ping(ctx).Err(); err == nil {
			t.Errorf("the client killed by %s still answers", how)
		}
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "127.0.0.1:1").Err(); err == nil || !strings.Contains(err.Error(), "No such client") {
		t.Errorf("CLIENT KILL of no client: %v", err)
	}
	if err := admin.Ping(ctx).Err(); err != nil {
		t.Errorf("the admin connection: %v", err)
	}
}
