package server

// The stock Redis tools against the server: redis-cli (arguments, stdin,
// --no-raw, --pipe, -a) and redis-benchmark (plain and pipelined). They
// come from Debian's redis-tools; without them the tests skip, unless
// BPFDB_REQUIRE_BPF=1 (CI), where they fail.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tool returns the path of a redis-tools binary.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if requireBPF() {
			t.Fatalf("%s not found (apt-get install redis-tools): %v", name, err)
		}
		t.Skipf("skipping: %s not found (apt-get install redis-tools)", name)
	}
	return p
}

// run runs a tool with stdin for at most d and returns its stdout and
// stderr; a non-zero exit fails the test.
func runTool(t *testing.T, d time.Duration, stdin string, bin string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v\nstdout:\n%s\nstderr:\n%s", bin, strings.Join(args, " "), d, out.String(), errb.String())
	}
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", bin, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

func TestRedisCLI(t *testing.T) {
	cliBin := tool(t, "redis-cli")
	ts := startServer(t, Config{}, false)
	port := strconv.Itoa(ts.port())
	cli := func(stdin string, args ...string) string {
		t.Helper()
		out, _ := runTool(t, 30*time.Second, stdin, cliBin, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...)
		return out
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG\n"},
		{[]string{"SET", "foo", "bar"}, "OK\n"},
		{[]string{"GET", "foo"}, "bar\n"},
		{[]string{"GET", "nothing"}, "\n"},
		{[]string{"INCR", "n"}, "1\n"},
		{[]string{"INCR", "n"}, "2\n"},
		{[]string{"--no-raw", "GET", "foo"}, "\"bar\"\n"},
		{[]string{"--no-raw", "INCR", "n"}, "(integer) 3\n"},
		{[]string{"--no-raw", "MGET", "foo", "nothing"}, "1) \"bar\"\n2) (nil)\n"},
		{[]string{"INCR", "foo"}, "ERR value is not an integer or out of range\n\n"},
		{[]string{"DBSIZE"}, "2\n"},
	} {
		if got := cli("", c.args...); got != c.want {
			t.Errorf("redis-cli %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
	// Commands on stdin, a transaction among them.
	stdin := "MULTI\nSET m 1\nINCR m\nGET m\nEXEC\nGET m\n"
	if got, want := cli(stdin), "OK\nQUEUED\nQUEUED\nQUEUED\nOK\n2\n2\n2\n"; got != want {
		t.Errorf("redis-cli <<< %q: %q, want %q", stdin, got, want)
	}
	if got, want := cli(stdin, "--no-raw"), "OK\nQUEUED\nQUEUED\nQUEUED\n1) OK\n2) (integer) 2\n3) \"2\"\n\"2\"\n"; got != want {
		t.Errorf("redis-cli --no-raw <<< %q: %q, want %q", stdin, got, want)
	}
	if got := cli("", "INFO", "keyspace"); !strings.Contains(got, "# Keyspace") || !strings.Contains(got, "db0:keys=3,expires=0,avg_ttl=0") {
		t.Errorf("redis-cli INFO keyspace:\n%s", got)
	}
	if got := cli("", "DBSIZE"); got != "3\n" {
		t.Errorf("redis-cli DBSIZE: %q", got)
	}

	// Mass insertion: redis-cli --pipe.
	var pipe strings.Builder
	for i := 0; i < 1000; i++ {
		pipe.Write(encode("SET", fmt.Sprintf("pipe:%d", i), strconv.Itoa(i)))
	}
	if got := cli(pipe.String(), "--pipe"); !strings.Contains(got, "errors: 0, replies: 1000") {
		t.Errorf("redis-cli --pipe:\n%s", got)
	}
	if got := cli("", "GET", "pipe:999"); got != "999\n" {
		t.Errorf("GET pipe:999 after --pipe: %q", got)
	}
	if got := cli("", "DBSIZE"); got != "1003\n" {
		t.Errorf("redis-cli DBSIZE after --pipe: %q", got)
	}
}

func TestRedisCLIAuth(t *testing.T) {
	cliBin := tool(t, "redis-cli")
	ts := startServer(t, Config{RequirePass: "pw"}, false)
	port := strconv.Itoa(ts.port())
	out, _ := runTool(t, 30*time.Second, "", cliBin, "-h", "127.0.0.1", "-p", port, "GET", "x")
	if !strings.HasPrefix(out, "NOAUTH") {
		t.Errorf("redis-cli without -a: %q", out)
	}
	out, _ = runTool(t, 30*time.Second, "", cliBin, "-h", "127.0.0.1", "-p", port, "-a", "pw", "--no-auth-warning", "SET", "x", "1")
	if out != "OK\n" {
		t.Errorf("redis-cli -a pw SET: %q", out)
	}
}

var rpsRe = regexp.MustCompile(`(?m)^\s*([A-Z_]+(?: \(10 keys\))?): ([0-9.]+) requests per second`)

// benchmark runs redis-benchmark and returns its requests per second by test.
func benchmark(t *testing.T, bin string, ts *testServer, args ...string) map[string]float64 {
	t.Helper()
	args = append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(ts.port())}, args...)
	out, errOut := runTool(t, 90*time.Second, "", bin, args...)
	all := strings.ReplaceAll(out+errOut, "\r", "\n")
	if strings.Contains(all, "Could not fetch server CONFIG") || strings.Contains(all, "failed to fetch CONFIG") {
		t.Errorf("redis-benchmark %s: CONFIG GET save/appendonly failed:\n%s", strings.Join(args, " "), all)
	}
	rps := map[string]float64{}
	for _, m := range rpsRe.FindAllStringSubmatch(all, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		rps[m[1]] = v
	}
	t.Logf("redis-benchmark %s: %v", strings.Join(args, " "), rps)
	return rps
}

func TestRedisBenchmark(t *testing.T) {
	bin := tool(t, "redis-benchmark")
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 200*time.Second)
	c := ts.client(t)
	for _, extra := range [][]string{nil, {"-P", "16"}} {
		args := append([]string{"-t", "set,get", "-n", "2000", "-c", "10", "-q"}, extra...)
		rps := benchmark(t, bin, ts, args...)
		for _, test := range []string{"SET", "GET"} {
			if rps[test] <= 0 {
				t.Errorf("redis-benchmark %s: no requests per second for %s", strings.Join(args, " "), test)
			}
		}
		// redis-benchmark writes key:__rand_int__ = "VXK" (3 bytes, -d 3).
		if v, err := c.Get(ctx, "key:__rand_int__").Result(); err != nil || v != "VXK" {
			t.Errorf("after redis-benchmark %s: GET key:__rand_int__ = %q, %v", strings.Join(args, " "), v, err)
		}
		if err := c.Del(ctx, "key:__rand_int__").Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Random keys, INCR, MSET of 10 keys (one key ten times) and inline PING.
	rps := benchmark(t, bin, ts, "-t", "ping,incr,mset,set", "-n", "1000", "-c", "5", "-r", "100", "-q", "-P", "4")
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "INCR", "MSET (10 keys)", "SET"} {
		if rps[test] <= 0 {
			t.Errorf("redis-benchmark -t ping,incr,mset,set: no requests per second for %s", test)
		}
	}
	n, err := c.DBSize(ctx).Result()
	if err != nil || n < 10 || n > 301 {
		t.Errorf("DBSIZE after the random-key benchmark: %d, %v (want 10..301: counter, key and ~100 distinct keys each)", n, err)
	}
	keys := []string{}
	for i := 0; i < 100; i++ {
		keys = append(keys, fmt.Sprintf("key:%012d", i))
	}
	vals, err := getAll(ctx, c, keys)
	if err != nil {
		t.Fatal(err)
	}
	if countPresent(vals) == 0 {
		t.Errorf("no key:000000000NNN key after redis-benchmark -r 100")
	}
}
