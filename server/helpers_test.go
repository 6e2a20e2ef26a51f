package server

// Test helpers: a bpfdb server on a loopback port backed by a real engine
// (the BPF programs are loaded, so the tests need root), a go-redis client
// for it, and a raw RESP connection for what a client library will not send.
//
// With BPFDB_TEST_REDIS=1 (or the path of a redis-server binary) the same
// tests run against a real redis-server instead, to check that what they
// expect of bpfdb is what Redis does. Where bpfdb differs from Redis on
// purpose (limits, TTLs, SELECT, BGSAVE without a data directory, HELLO 3,
// metrics) the tests branch on testServer.redis.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/redis/go-redis/v9"
)

// testServer is one server a test talks to.
type testServer struct {
	addr  string // TCP host:port ("" when there is no TCP listener)
	unix  string // unix socket path, if any
	redis bool   // a real redis-server, not bpfdb
	cfg   Config

	srv   *Server        // bpfdb only
	eng   *engine.Engine // bpfdb only
	dir   string         // data directory ("" when memory only)
	serve chan error     // Serve's result

	stopOnce sync.Once
	stopErr  error // what stop found
}

// requireBPF says whether a test that cannot load BPF programs must fail
// rather than skip (CI sets BPFDB_REQUIRE_BPF=1).
func requireBPF() bool { return os.Getenv("BPFDB_REQUIRE_BPF") == "1" }

// againstRedis returns the redis-server binary to test against instead of
// bpfdb, or "".
func againstRedis() string {
	v := os.Getenv("BPFDB_TEST_REDIS")
	switch v {
	case "", "0":
		return ""
	case "1":
		return "redis-server"
	}
	return v
}

// startServer starts a server with cfg (Addr defaults to 127.0.0.1:0 unless
// only a unix socket is asked for) on a fresh memory-only engine, or on one
// with a data directory in t.TempDir() when durable. Both are shut down in
// t.Cleanup. Without root it skips, unless BPFDB_REQUIRE_BPF=1.
func startServer(t testing.TB, cfg Config, durable bool) *testServer {
	t.Helper()
	return startServerWith(t, cfg, durable, engine.Options{})
}

// startServerWith is startServer on an engine opened with opts (its Dir
// is set by durable).
func startServerWith(t testing.TB, cfg Config, durable bool, opts engine.Options) *testServer {
	t.Helper()
	if cfg.Addr == "" && cfg.Unix == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Version == "" {
		cfg.Version = "9.8.7-test"
	}
	if bin := againstRedis(); bin != "" {
		return startRedis(t, bin, cfg)
	}
	if os.Geteuid() != 0 && !requireBPF() {
		t.Skip("skipping: loading BPF programs needs root (set BPFDB_REQUIRE_BPF=1 to fail instead)")
	}
	ts := &testServer{cfg: cfg, serve: make(chan error, 1)}
	if durable {
		ts.dir = opts.Dir
		if ts.dir == "" {
			ts.dir = t.TempDir()
		}
	}
	opts.Dir = ts.dir
	e, err := engine.Open(opts)
	if errors.Is(err, engine.ErrNotPermitted) && !requireBPF() {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	ts.eng = e
	s, err := New(e, cfg)
	if err != nil {
		e.Close()
		t.Fatalf("server.New(%+v): %v", cfg, err)
	}
	ts.srv = s
	if cfg.Addr != "" {
		if s.Addr() == nil {
			t.Fatalf("server.New(%+v): Addr() is nil", cfg)
		}
		ts.addr = s.Addr().String()
	}
	ts.unix = cfg.Unix
	go func() { ts.serve <- s.Serve() }()
	t.Cleanup(func() {
		if err := ts.stop(t); err != nil {
			t.Error(err)
		}
		if err := e.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	})
	return ts
}

// restart stops ts and its engine and starts a server on a new engine
// opened on its data directory.
func (ts *testServer) restart(t *testing.T) *testServer {
	t.Helper()
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := ts.eng.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := ts.cfg
	cfg.Addr = "127.0.0.1:0"
	return startServerWith(t, cfg, true, engine.Options{Dir: ts.dir})
}

// defaultLimits is an engine's default limits, for commands' checks
// (command.check) in tests that open no engine.
type defaultLimits struct{}

func (defaultLimits) CheckKey(key []byte) error {
	if len(key) > engine.DefaultMaxKeyLen {
		return engine.ErrKeyTooLong
	}
	return nil
}

func (defaultLimits) MaxValueLen() int { return engine.DefaultMaxValueLen }

// maxKey is the longest key the server takes: its engine's MaxKeyLen (for
// Redis, bpfdb's default, as the tests' keys go).
func (ts *testServer) maxKey() int {
	if ts.eng == nil {
		return engine.DefaultMaxKeyLen
	}
	return ts.eng.MaxKeyLen()
}

// maxValue is the longest value the server takes: its engine's
// MaxValueLen (for Redis, bpfdb's default, as the tests' values go).
func (ts *testServer) maxValue() int {
	if ts.eng == nil {
		return engine.DefaultMaxValueLen
	}
	return ts.eng.MaxValueLen()
}

// stop shuts the bpfdb server down (once; later calls return the first
// result): Shutdown must succeed within 15 s and Serve return within 15 s
// of it.
func (ts *testServer) stop(t testing.TB) error {
	ts.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		start := time.Now()
		if err := ts.srv.Shutdown(ctx); err != nil {
			ts.stopErr = fmt.Errorf("Shutdown: %v (after %v)", err, time.Since(start))
			return
		}
		select {
		case err := <-ts.serve:
			if err != nil {
				t.Logf("Serve returned %v after Shutdown", err)
			}
		case <-time.After(15 * time.Second):
			ts.stopErr = fmt.Errorf("Serve did not return within 15s of Shutdown")
		}
	})
	return ts.stopErr
}

// startRedis starts a real redis-server configured like cfg.
func startRedis(t testing.TB, bin string, cfg Config) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{redis: true, cfg: cfg, dir: dir}
	port := 0
	if cfg.Addr != "" {
		port = freePort(t)
		ts.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning"}
	if cfg.RequirePass != "" {
		args = append(args, "--requirepass", cfg.RequirePass)
	}
	if cfg.MaxClients != 0 {
		args = append(args, "--maxclients", strconv.Itoa(cfg.MaxClients))
	}
	if cfg.Unix != "" {
		args = append(args, "--unixsocket", cfg.Unix)
		ts.unix = cfg.Unix
	}
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	network, addr := "tcp", ts.addr
	if addr == "" {
		network, addr = "unix", ts.unix
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not come up on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ts
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// port is the TCP port the server listens on.
func (ts *testServer) port() int {
	_, p, _ := net.SplitHostPort(ts.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// client returns a go-redis client for ts speaking RESP2 (so replies have
// the same shape from bpfdb and Redis), closed in t.Cleanup. mods adjust
// its options.
func (ts *testServer) client(t testing.TB, mods ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{
		Addr:         ts.addr,
		Protocol:     2,
		DialTimeout:  5 * time.Second,
		ReadTimeout:  20 * time.Second,
		WriteTimeout: 20 * time.Second,
		PoolSize:     16,
		MaxRetries:   -1, // a failure is a failure; nothing is resent behind the test's back
	}
	if ts.addr == "" {
		o.Network, o.Addr = "unix", ts.unix
	}
	for _, m := range mods {
		m(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// conn returns one pinned connection of a new client: the state of a
// connection (MULTI, WATCH, AUTH, CLIENT SETNAME) lives on it.
func (ts *testServer) conn(t testing.TB, mods ...func(*redis.Options)) *redis.Conn {
	t.Helper()
	c := ts.client(t, mods...).Conn()
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx is a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// --- raw RESP ---

// rawConn is a plain network connection that writes RESP (or anything) and
// reads RESP2 replies.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// respStatus is a +simple string reply; respError an -error reply;
// nullArray the *-1 reply; respPush a RESP3 > push. A $ bulk reply is a
// string, $-1 and RESP3's _ are nil, : is int64, a RESP3 % map is its
// keys and values in one []any, a ~ set an []any.
type (
	respStatus string
	respError  string
	nullArray  struct{}
	respPush   []any
)

func (ts *testServer) raw(t testing.TB) *rawConn {
	t.Helper()
	c, err := ts.dialRaw()
	if err != nil {
		t.Fatalf("dial %s: %v", ts.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (ts *testServer) dialRaw() (*rawConn, error) {
	network, addr := "tcp", ts.addr
	if addr == "" {
		network, addr = "unix", ts.unix
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, br: bufio.NewReader(c)}, nil
}

// encode returns args as a RESP array of bulk strings.
func encode(args ...string) []byte {
	b := []byte(fmt.Sprintf("*%d\r\n", len(args)))
	for _, a := range args {
		b = append(b, fmt.Sprintf("$%d\r\n", len(a))...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

// do sends one command and reads its reply, failing the test on an I/O
// error or after 10 s.
func (c *rawConn) do(t testing.TB, args ...string) any {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(encode(args...)); err != nil {
		t.Fatalf("writing %q: %v", args, err)
	}
	r, err := c.read()
	if err != nil {
		t.Fatalf("reading the reply to %q: %v", args, err)
	}
	return r
}

// read reads one RESP2 reply.
func (c *rawConn) read() (any, error) {
	return readReply(c.br)
}

func readReply(br *bufio.Reader) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(line, "\r\n") || len(line) < 3 {
		return nil, fmt.Errorf("malformed reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return respStatus(body), nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		if string(buf[n:]) != "\r\n" {
			return nil, fmt.Errorf("bulk of %d bytes not followed by CRLF", n)
		}
		return string(buf[:n]), nil
	case '_':
		return nil, nil
	case '*', '>', '%', '~':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("bad array length %q", line)
		}
		if n < 0 {
			return nullArray{}, nil
		}
		if line[0] == '%' {
			n *= 2
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = readReply(br); err != nil {
				return nil, err
			}
		}
		if line[0] == '>' {
			return respPush(a), nil
		}
		return a, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", line)
}

// expectClosed waits up to d for the peer to close c: a read that returns
// EOF or a reset, with no further reply first.
func (c *rawConn) expectClosed(t testing.TB, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, err := c.br.Read(buf)
	if n > 0 {
		t.Errorf("expected the connection to be closed, read %q", buf[:n])
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("connection still open %v later", d)
	}
}

// --- misc ---

// tempSocket returns a unix socket path short enough for sun_path.
func tempSocket(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bpfdb-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// infoField returns the value of field in an INFO reply, and whether it is there.
func infoField(info, field string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimRight(line, "\r")
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v, true
		}
	}
	return "", false
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
