package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/faultfs"
	"github.com/cockroachdb/pebble/vfs"
)

// readReplies reads n replies and fails on the first that differs from want.
func readReplies(t *testing.T, c *rawConn, want []any) {
	t.Helper()
	for i, w := range want {
		r, err := c.read()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if fmt.Sprintf("%#v", r) != fmt.Sprintf("%#v", w) {
			t.Fatalf("reply %d: %#v, want %#v", i, r, w)
		}
	}
}

// Commands that arrive a few bytes at a time are answered once whole, in
// order: the loop keeps the part of a command it has read.
func TestLoopCommandsSplitAcrossReads(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	value := strings.Repeat("v", 900)
	var pipe []byte
	for _, cmd := range [][]string{{"SET", "split:a", "1"}, {"GET", "split:a"}, {"SET", "split:b", value}, {"INCR", "split:a"}, {"GET", "split:b"}, {"DEL", "split:a"}} {
		pipe = append(pipe, encode(cmd...)...)
	}
	want := []any{respStatus("OK"), "1", respStatus("OK"), int64(2), value, int64(1)}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		for i, step := 0, 1; i < len(pipe); i, step = i+step, step%7+1 {
			c.Write(pipe[i:min(i+step, len(pipe))])
			time.Sleep(100 * time.Microsecond)
		}
	}()
	readReplies(t, c, want)
}

// A value above the engine's limit (here 1 KiB, so that the reader keeps
// it) is refused with an error naming it, whether its command fits the
// loop's buffer or is longer (and streamed by a goroutine); the connection
// goes on.
func TestLoopLongCommands(t *testing.T) {
	ts := startServerWith(t, Config{}, false, engine.Options{MaxValueLen: 1024})
	if ts.redis {
		t.Skip("a value limit of 1 KiB: bpfdb only")
	}
	c := ts.raw(t)
	big := strings.Repeat("x", 50_000)
	r := c.do(t, "SET", "long:a", big)
	if e, ok := r.(respError); !ok || !strings.Contains(string(e), "1024") {
		t.Fatalf("SET of 50000 bytes = %#v, want an error naming the 1024-byte limit", r)
	}
	mset := []string{"MSET"}
	for i := range 6 { // 300 KB: more than the loop holds for one command
		mset = append(mset, fmt.Sprint("long:", i), big)
	}
	if r := c.do(t, mset...); fmt.Sprint(r) == "OK" {
		t.Fatalf("MSET of 50000-byte values = %#v, want an error", r)
	}
	if r := c.do(t, "SET", "long:a", "small"); r != respStatus("OK") {
		t.Fatalf("SET after the long commands = %#v", r)
	}
	if r := c.do(t, "GET", "long:a"); r != "small" {
		t.Fatalf("GET = %#v, want small", r)
	}
}

// A pipeline longer than the loop takes in one round (maxPipeline) is
// answered whole, in order, across rounds.
func TestLoopLongPipeline(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	const n = 3 * maxPipeline
	var pipe []byte
	var want []any
	for i := range n {
		k := fmt.Sprint("lp:", i%5)
		pipe = append(pipe, encode("SET", k, strconv.Itoa(i))...)
		pipe = append(pipe, encode("GET", k)...)
		want = append(want, respStatus("OK"), strconv.Itoa(i))
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	go c.Write(pipe)
	readReplies(t, c, want)
}

// A client that sends its commands and closes its side gets every reply,
// then the server closes: the end of input seen with the last data is
// not lost (edge-triggered epoll reports both at once).
func TestLoopHalfClose(t *testing.T) {
	ts := startServer(t, Config{}, false)
	for round := range 20 {
		c := ts.raw(t)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		pipe := append(encode("SET", "hc", strconv.Itoa(round)), encode("GET", "hc")...)
		if round%2 == 1 {
			pipe = append(pipe, encode("INCR", "hc")...) // handed over
		}
		c.Write(pipe)
		c.Conn.(*net.TCPConn).CloseWrite()
		want := []any{respStatus("OK"), strconv.Itoa(round)}
		if round%2 == 1 {
			want = append(want, int64(round+1))
		}
		readReplies(t, c, want)
		if _, err := c.read(); err != io.EOF {
			t.Fatalf("round %d: after the replies %v, want EOF", round, err)
		}
	}
}

// With sync durability a write is acknowledged only once it is on disk:
// with one client and nothing else writing, the durable LSN has reached
// the last commit whenever an OK arrives.
func TestLoopSyncReplyWaitsForDurable(t *testing.T) {
	ts := startServer(t, Config{}, true)
	c := ts.raw(t)
	for i := range 200 {
		cmd := []string{"SET", "dur:" + strconv.Itoa(i%10), strconv.Itoa(i)}
		if i%4 == 3 {
			cmd = []string{"DEL", "dur:" + strconv.Itoa((i-1)%10)} // set just before
		}
		if r := c.do(t, cmd...); r != respStatus("OK") && r != int64(1) {
			t.Fatalf("%q = %#v", cmd, r)
		}
		st, err := ts.eng.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.DurableLSN < st.CommitLSN {
			t.Fatalf("write %d acknowledged with durable LSN %d below the last commit %d", i, st.DurableLSN, st.CommitLSN)
		}
	}
}

// With sync durability the loop runs a transaction itself (a script)
// and holds its reply until the round's fsync, as it holds an op's (an
// INCR's): with one client and nothing else writing, the durable LSN has
// reached the last commit whenever a reply arrives.
func TestLoopSyncTxnReplyWaitsForDurable(t *testing.T) {
	ts := startServer(t, Config{}, true)
	c := ts.raw(t)
	script := "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[2])"
	for i := range 100 {
		cmd := []string{"INCR", "tdur:n"}
		if i%2 == 1 {
			cmd = []string{"EVAL", script, "2", "tdur:" + strconv.Itoa(i%10), "tdur:s", strconv.Itoa(i)}
		}
		if r := c.do(t, cmd...); r != int64(i/2+1) {
			t.Fatalf("%q = %#v, want %d", cmd[0], r, i/2+1)
		}
		st, err := ts.eng.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.DurableLSN < st.CommitLSN {
			t.Fatalf("transaction %d acknowledged with durable LSN %d below the last commit %d", i, st.DurableLSN, st.CommitLSN)
		}
	}
	if ts.redis {
		return
	}
	samples, _ := scrape(t, ts.srv.MetricsHandler())
	ran := sumWhere(samples, func(s sample) bool {
		return s.name == "bpfdb_loop_txns_total" && strings.Contains(s.labels, `outcome="ran"`)
	})
	if ran < 45 {
		t.Fatalf("the loop ran %v of the 50 scripts itself (bpfdb_loop_txns_total{outcome=\"ran\"}), want nearly all", ran)
	}
}

// When the round's fsync fails, the held reply of each transaction the
// loop ran that wrote becomes the error (applied, not acknowledged), and
// a read's reply between them stays in its place.
func TestLoopHeldReplyNotDurable(t *testing.T) {
	if againstRedis() != "" {
		t.Skip("a failing disk under bpfdb's log")
	}
	fs := faultfs.New(vfs.Default)
	ts := startServerWith(t, Config{}, true, engine.Options{FS: fs,
		LogStallTimeout: 200 * time.Millisecond, CheckpointInterval: -1, CheckpointLogBytes: -1})
	c := ts.raw(t)
	if r := c.do(t, "SET", "hn:b", "before"); r != respStatus("OK") {
		t.Fatalf("SET = %#v", r)
	}
	fs.Set(faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	incr := encode("EVAL", "return redis.call('INCR', KEYS[1])", "1", "hn:a")
	var pipe []byte
	pipe = append(pipe, incr...)
	pipe = append(pipe, encode("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "hn:b")...)
	pipe = append(pipe, incr...)
	c.Write(pipe)
	for i, want := range []string{"not durable", "before", "error"} {
		r, err := c.read()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		// The first script wrote before the log failed: applied, not
		// acknowledged. The last did too if it ran in the same round,
		// and was refused before it applied (MISCONF) if it did not.
		e, isErr := r.(respError)
		switch {
		case want == "not durable" && (!isErr || !strings.Contains(string(e), want)):
			t.Fatalf("reply %d to a write whose fsync failed: %#v, want the error saying %q", i, r, want)
		case want == "error" && (!isErr || !strings.Contains(string(e), "not durable") && !strings.HasPrefix(string(e), "MISCONF")):
			t.Fatalf("reply %d to a write whose fsync failed: %#v, want the error", i, r)
		case want == "before" && r != want:
			t.Fatalf("reply %d: %#v, want %q", i, r, want)
		}
	}
	samples, _ := scrape(t, ts.srv.MetricsHandler())
	if ran := sumWhere(samples, func(s sample) bool {
		return s.name == "bpfdb_loop_txns_total" && strings.Contains(s.labels, `outcome="ran"`)
	}); ran < 2 {
		t.Fatalf("the loop ran %v of the scripts itself, want at least the first two", ran)
	}
	// A transaction that writes nothing, having read a commit that is
	// not durable, is not acknowledged either: SETNX finds hn:a set by
	// the first script, whose write the disk never took.
	if r := c.do(t, "SETNX", "hn:a", "x"); !strings.Contains(fmt.Sprint(r), "not durable") {
		t.Fatalf("SETNX of a key set by a commit that is not durable = %#v, want the error", r)
	}
	// Nor does a read show it: a GET the loop answers, a read-only
	// transaction (MGET, EVAL_RO) and a MULTI/EXEC a goroutine runs. A
	// read of a durable commit answers its value.
	for _, cmd := range [][]string{
		{"GET", "hn:a"},
		{"MGET", "hn:b", "hn:a"},
		{"EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "hn:a"},
	} {
		if r := c.do(t, cmd...); !strings.Contains(fmt.Sprint(r), "not durable") {
			t.Fatalf("%q, reading a commit that is not durable = %#v, want the error", cmd, r)
		}
	}
	if r := c.do(t, "MULTI"); r != respStatus("OK") {
		t.Fatalf("MULTI = %#v", r)
	}
	if r := c.do(t, "GET", "hn:a"); r != respStatus("QUEUED") {
		t.Fatalf("GET in MULTI = %#v", r)
	}
	if r := c.do(t, "EXEC"); !strings.Contains(fmt.Sprint(r), "not durable") {
		t.Fatalf("EXEC reading a commit that is not durable = %#v, want the error", r)
	}
	if r := c.do(t, "GET", "hn:b"); r != "before" {
		t.Fatalf("GET of a durable commit while the log fails = %#v, want %q", r, "before")
	}
	// The log writes the commits once the disk answers again.
	fs.Clear()
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		r := c.do(t, "SET", "hn:after", "1")
		if r == respStatus("OK") {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("writes not taken 10 s after the fault cleared: %#v", r)
		}
	}
	if r := c.do(t, "SETNX", "hn:a", "x"); r != int64(0) {
		t.Fatalf("SETNX of a key set, once the log writes again = %#v, want 0", r)
	}
	if r, ok := c.do(t, "GET", "hn:a").(string); !ok || r == "" {
		t.Fatalf("GET of a key set, once the log writes again = %#v, want its value", r)
	}
}

// With sync durability a reply that shows another client's commit (a
// GET of its value, a DEL that finds its deletion made, a listing of the
// keys) comes only once that commit is durable, while the commit's own
// client still waits for a slow disk.
func TestLoopReadWaitsForDurable(t *testing.T) {
	if againstRedis() != "" {
		t.Skip("a slow disk under bpfdb's log")
	}
	fs := faultfs.New(vfs.Default)
	ts := startServerWith(t, Config{}, true, engine.Options{FS: fs,
		CheckpointInterval: -1, CheckpointLogBytes: -1})
	a, b := ts.raw(t), ts.raw(t)
	for _, k := range []string{"rw:d", "rw:v"} {
		if r := a.do(t, "SET", k, "1"); r != respStatus("OK") {
			t.Fatalf("SET %s = %#v", k, r)
		}
	}
	defer fs.SetSyncDelay(0)
	for _, c := range []struct {
		write []string // a's, in a MULTI/EXEC that a goroutine runs
		read  []string // b's, while a's commit waits for the disk
		want  string   // fmt.Sprint of b's reply
	}{
		{[]string{"DEL", "rw:d"}, []string{"DEL", "rw:d"}, "0"},
		{[]string{"SET", "rw:v", "2"}, []string{"GET", "rw:v"}, "2"},
		{[]string{"SET", "rw:k1", "x"}, []string{"DBSIZE"}, "2"},
		{[]string{"SET", "rw:k2", "x"}, []string{"KEYS", "rw:k2"}, "[rw:k2]"},
		{[]string{"DEL", "rw:k1"}, []string{"SCAN", "0", "MATCH", "rw:k*", "COUNT", "100"}, "[0 [rw:k2]]"},
		{[]string{"DEL", "rw:v"}, []string{"RANDOMKEY"}, "rw:k2"},
	} {
		fs.SetSyncDelay(300 * time.Millisecond)
		a.do(t, "MULTI")
		a.do(t, c.write...)
		a.SetDeadline(time.Now().Add(10 * time.Second))
		a.Write(encode("EXEC")) // a goroutine applies it, then waits for the disk
		var commit uint64
		for start := time.Now(); commit == 0; time.Sleep(100 * time.Microsecond) {
			st, err := ts.eng.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.CommitLSN > st.DurableLSN {
				commit = st.CommitLSN
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%q did not commit within 5 s", c.write)
			}
		}
		if r := b.do(t, c.read...); fmt.Sprint(r) != c.want {
			t.Fatalf("%q = %#v, want %s", c.read, r, c.want)
		}
		if st, _ := ts.eng.Stats(); st.DurableLSN < commit {
			t.Fatalf("%q answered with the durable LSN at %d, below the commit %d it shows", c.read, st.DurableLSN, commit)
		}
		fs.SetSyncDelay(0)
		if r, err := a.read(); err != nil || len(fmt.Sprint(r)) < 3 || fmt.Sprint(r)[0] != '[' {
			t.Fatalf("EXEC of %q = %#v, %v", c.write, r, err)
		}
	}
}

// A command followed by an empty line (which the loop leaves to the
// Reader, which skips it and waits for the next command) is answered at
// once, not when the next command comes.
func TestLoopReplyNotHeldBehindEmptyLine(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(append(encode("SET", "el", "1"), "\r\n"...))
	c.Write(append(encode("GET", "el"), "\r\n*0\r\n"...))
	readReplies(t, c, []any{respStatus("OK"), "1"})
}

// Two servers may share an engine: each one's connections are woken when
// their writes are durable (the engine keeps every OnDurableChange
// function), and shutting one down leaves the other's.
func TestLoopTwoServersOneEngine(t *testing.T) {
	ts := startServer(t, Config{}, true)
	if ts.redis {
		t.Skip("two servers on one engine: bpfdb only")
	}
	other, err := New(ts.eng, Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	go other.Serve()
	nc, err := net.Dial("tcp", other.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	oc := &rawConn{Conn: nc, br: bufio.NewReader(nc)}
	c := ts.raw(t)
	for i := range 20 {
		if r := c.do(t, "SET", "two", strconv.Itoa(i)); r != respStatus("OK") {
			t.Fatalf("SET on the first server = %#v", r)
		}
		if r := oc.do(t, "SET", "two", strconv.Itoa(i)); r != respStatus("OK") {
			t.Fatalf("SET on the second server = %#v", r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := other.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := c.do(t, "SET", "two", "after"); r != respStatus("OK") {
		t.Fatalf("SET on the first server after the second's shutdown = %#v", r)
	}
}

// With sync durability, clients that keep sending while their earlier
// writes wait for the log get every reply once, in order, and each
// command runs once: one streams SETs, the other INCRs (which a goroutine
// serves) between SETs.
func TestLoopSyncStreamingClients(t *testing.T) {
	ts := startServer(t, Config{}, true)
	a, b := ts.raw(t), ts.raw(t)
	const n = 3000
	send := func(c *rawConn, cmd func(i int) []byte) {
		for i := 0; i < n; i++ {
			c.Write(cmd(i))
			if i%3 == 0 {
				time.Sleep(time.Duration(i%40) * time.Microsecond) // rounds of varied size
			}
		}
	}
	go send(a, func(i int) []byte { return encode("SET", fmt.Sprintf("a:%d", i), fmt.Sprintf("v%d", i)) })
	go send(b, func(i int) []byte {
		return append(encode("INCR", "ctr"), encode("SET", fmt.Sprintf("b:%d", i), fmt.Sprintf("w%d", i))...)
	})
	errs := make(chan error, 2)
	go func() {
		a.SetDeadline(time.Now().Add(30 * time.Second))
		for i := 0; i < n; i++ {
			if r, err := a.read(); err != nil || r != respStatus("OK") {
				errs <- fmt.Errorf("a: SET reply %d: %#v %v", i, r, err)
				return
			}
		}
		errs <- nil
	}()
	go func() {
		b.SetDeadline(time.Now().Add(30 * time.Second))
		for i := 0; i < n; i++ {
			if r, err := b.read(); err != nil || r != int64(i+1) {
				errs <- fmt.Errorf("b: INCR reply %d: %#v %v", i, r, err)
				return
			}
			if r, err := b.read(); err != nil || r != respStatus("OK") {
				errs <- fmt.Errorf("b: SET reply %d: %#v %v", i, r, err)
				return
			}
		}
		errs <- nil
	}()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	g := ts.raw(t)
	for i := 0; i < n; i++ {
		if r := g.do(t, "GET", fmt.Sprintf("a:%d", i)); r != fmt.Sprintf("v%d", i) {
			t.Fatalf("GET a:%d = %#v", i, r)
		}
		if r := g.do(t, "GET", fmt.Sprintf("b:%d", i)); r != fmt.Sprintf("w%d", i) {
			t.Fatalf("GET b:%d = %#v", i, r)
		}
	}
	if st, _ := ts.eng.Stats(); st.CommitLSN != 3*n {
		t.Fatalf("%d commits for %d writes: a command ran twice or not at all", st.CommitLSN, 3*n)
	}
}

// PING and ECHO are answered by the loop itself, in their place among a
// pipeline's replies, without handing the connection to a goroutine.
func TestLoopAnswersPing(t *testing.T) {
	if againstRedis() != "" {
		t.Skip("counts bpfdb's hand-overs")
	}
	ts := startServer(t, Config{}, false)
	handovers := func() float64 {
		samples, _ := scrape(t, ts.srv.MetricsHandler())
		return sumWhere(samples, func(s sample) bool { return s.name == "bpfdb_loop_handovers_total" })
	}
	c := ts.raw(t)
	if r := c.do(t, "PING"); r != respStatus("PONG") {
		t.Fatalf("PING = %#v", r)
	}
	before := handovers()
	var pipe []byte
	for _, cmd := range [][]string{{"PING"}, {"ECHO", "e"}, {"SET", "pk", "1"}, {"PING", "x"}, {"GET", "pk"}, {"PING"}} {
		pipe = append(pipe, encode(cmd...)...)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(pipe)
	readReplies(t, c, []any{respStatus("PONG"), "e", respStatus("OK"), "x", "1", respStatus("PONG")})
	for i := range 20 {
		if r := c.do(t, "ECHO", strconv.Itoa(i)); r != strconv.Itoa(i) {
			t.Fatalf("ECHO %d = %#v", i, r)
		}
	}
	if n := handovers() - before; n != 0 {
		t.Fatalf("%v hand-overs for PING and ECHO, want none", n)
	}
	if r := c.do(t, "CLIENT", "ID"); r == nil {
		t.Fatal("CLIENT ID answered nothing")
	}
	if n := handovers() - before; n != 1 {
		t.Fatalf("%v hand-overs for an admin command, want 1: the metric counts nothing", n)
	}
}
