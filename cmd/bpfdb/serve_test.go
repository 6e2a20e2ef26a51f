package main

// End-to-end tests of `bpfdb serve` as a separate process: graceful SIGTERM
// and restart, SIGKILL in the middle of acknowledged writes and recovery,
// SHUTDOWN, the metrics endpoint and the serve flags. The process is this
// test binary re-executed (TestMain runs main() when BPFDB_SERVE_TEST_MAIN
// is set), so it is built with the same flags, -race included.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	if os.Getenv("BPFDB_SERVE_TEST_MAIN") == "1" {
		installTestFaults()
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveProc is one `bpfdb serve` process.
type serveProc struct {
	cmd     *exec.Cmd
	addr    string // RESP host:port
	metrics string // metrics host:port
	stderr  *syncBuffer
	exited  chan struct{}
	err     error // Wait's result, once exited is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct free loopback addresses: the listeners stay
// open until all are chosen, or the kernel may hand out one port twice.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

// startServe runs `bpfdb serve --dir dir --listen A --metrics B args...`
// on free loopback ports and waits until it answers PING (startServeAt).
// Without root it skips, unless BPFDB_REQUIRE_BPF=1.
func startServe(t *testing.T, dir string, args ...string) *serveProc {
	t.Helper()
	skipUnlessRoot(t)
	ports := freePorts(t, 2)
	p := startServeAt(t, dir, ports[0], append([]string{"--metrics", ports[1]}, args...)...)
	p.metrics = ports[1]
	return p
}

// pingOK says whether a RESP server at addr answers PING (NOAUTH, with
// --requirepass, counts as an answer).
func pingOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (line == "+PONG\r\n" || strings.HasPrefix(line, "-NOAUTH"))
}

// stop sends sig and waits up to d for the process to exit; it returns
// the exit code (-1 if killed by a signal).
func (p *serveProc) stop(t *testing.T, sig os.Signal, d time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	return p.wait(t, d)
}

func (p *serveProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("bpfdb serve still running %v later\n%s", d, p.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

func (p *serveProc) client(t *testing.T, mods ...func(*redis.Options)) *redis.Client {
	o := &redis.Options{Addr: p.addr, Protocol: 2, MaxRetries: -1, DialTimeout: 5 * time.Second,
		ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second}
	for _, m := range mods {
		m(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// checkKeys fails for every key of want that is not there with its value.
func checkKeys(t *testing.T, c *redis.Client, want map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	missing := 0
	for i := 0; i < len(keys); i += 500 {
		chunk := keys[i:min(i+500, len(keys))]
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range chunk {
				p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			t.Fatalf("reading back: %v", err)
		}
		for j, cmd := range cmds {
			v, err := cmd.(*redis.StringCmd).Result()
			if err != nil || v != want[chunk[j]] {
				if missing < 10 {
					t.Errorf("acknowledged %s = %q: after restart %q, %v", chunk[j], want[chunk[j]], v, err)
				}
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged keys lost or wrong", missing, len(want))
	}
}

// TestServeSIGTERMRestart: 200 acknowledged writes, SIGTERM (exit 0 within
// 30 s), a restart on the same directory has all of them. The metrics
// endpoint answers meanwhile.
func TestServeSIGTERMRestart(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir, "--durability", "sync")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client(t)
	want := map[string]string{}
	for i := 0; i < 200; i++ {
		k, v := fmt.Sprintf("key:%03d", i), fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		if err := c.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		want[k] = v
	}

	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: %s", resp.Status)
	}
	for _, m := range []string{"bpfdb_commands_total", "bpfdb_chain_runs_total", `command="set"`} {
		if !bytes.Contains(body, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	start := time.Now()
	if code := p.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("bpfdb serve exited %d on SIGTERM\n%s", code, p.stderr.String())
	}
	t.Logf("SIGTERM: exited 0 in %v", time.Since(start))
	c.Close()

	q := startServe(t, dir)
	checkKeys(t, q.client(t), want)
	if n, err := q.client(t).DBSize(ctx).Result(); err != nil || n != 200 {
		t.Errorf("DBSIZE after restart: %d, %v", n, err)
	}
	if code := q.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("second bpfdb serve exited %d on SIGTERM", code)
	}
}

// TestServeSIGKILL: several clients write unique values (SET, MSET and
// MULTI/EXEC) and the server is killed in the middle; after a restart every
// acknowledged write is there, and a write in flight is either there whole
// or not at all.
func TestServeSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir, "--durability", "sync")
	const clients = 6
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type write struct{ kv map[string]string }
	acked := make([][]write, clients)
	inflight := make([]write, clients)
	var wg sync.WaitGroup
	var total sync.WaitGroup
	total.Add(clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, MaxRetries: -1, PoolSize: 1,
				ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second})
			defer c.Close()
			counted := false
			for j := 0; j < 1_000_000; j++ {
				if j == 50 {
					total.Done()
					counted = true
				}
				w := write{kv: map[string]string{}}
				var err error
				tag := fmt.Sprintf("%d-%d-%d", i, j, time.Now().UnixNano())
				switch j % 3 {
				case 0:
					k := fmt.Sprintf("c%d:set:%d", i, j)
					w.kv[k] = tag
					inflight[i] = w
					err = c.Set(ctx, k, tag, 0).Err()
				case 1:
					k1, k2 := fmt.Sprintf("c%d:mset:%d:a", i, j), fmt.Sprintf("c%d:mset:%d:b", i, j)
					w.kv[k1], w.kv[k2] = tag+"a", tag+"b"
					inflight[i] = w
					err = c.MSet(ctx, k1, tag+"a", k2, tag+"b").Err()
				case 2:
					k1, k2 := fmt.Sprintf("c%d:tx:%d:a", i, j), fmt.Sprintf("c%d:tx:%d:b", i, j)
					w.kv[k1], w.kv[k2] = tag+"x", tag+"y"
					inflight[i] = w
					_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, k1, tag+"x", 0)
						p.Set(ctx, k2, tag+"y", 0)
						return nil
					})
				}
				if err != nil {
					break
				}
				acked[i] = append(acked[i], w)
				inflight[i] = write{}
			}
			if !counted {
				total.Done()
			}
		}(i)
	}
	total.Wait()
	time.Sleep(300 * time.Millisecond)
	if code := p.stop(t, syscall.SIGKILL, 30*time.Second); code == 0 {
		t.Errorf("exit code 0 after SIGKILL?")
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("clients still running 30s after the server was killed")
	}

	want := map[string]string{}
	n := 0
	for i := range acked {
		for _, w := range acked[i] {
			for k, v := range w.kv {
				want[k] = v
			}
			n++
		}
	}
	if n < clients*50 {
		t.Fatalf("only %d writes acknowledged before the kill", n)
	}
	q := startServe(t, dir)
	c := q.client(t)
	checkKeys(t, c, want)
	// Writes in flight at the kill: all of one or none of it.
	for i, w := range inflight {
		if len(w.kv) == 0 {
			continue
		}
		present := 0
		for k, v := range w.kv {
			got, err := c.Get(ctx, k).Result()
			switch {
			case err == redis.Nil:
			case err != nil:
				t.Fatal(err)
			case got != v:
				t.Errorf("client %d's write in flight: %s = %q, want %q or nothing", i, k, got, v)
			default:
				present++
			}
		}
		if present != 0 && present != len(w.kv) {
			t.Errorf("client %d's write in flight %v is there in part (%d of %d keys)", i, w.kv, present, len(w.kv))
		}
	}
	t.Logf("%d acknowledged writes (%d keys) all present after SIGKILL and restart", n, len(want))
	if code := q.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("bpfdb serve exited %d on SIGTERM after recovery", code)
	}
}

// TestServeShutdownCommand: SHUTDOWN from a client stops the process with
// exit code 0, keeping what was written.
func TestServeShutdownCommand(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client(t)
	if err := c.Set(ctx, "before-shutdown", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.Do(ctx, "SHUTDOWN") // the reply, if any, does not matter
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SHUTDOWN", code)
	}
	q := startServe(t, dir)
	checkKeys(t, q.client(t), map[string]string{"before-shutdown": "kept"})
	q.stop(t, syscall.SIGTERM, 30*time.Second)
}

// TestServeFlags: --unix, --requirepass, --maxclients, --durability async
// and SIGINT.
func TestServeFlags(t *testing.T) {
	dir := t.TempDir()
	sockDir, err := os.MkdirTemp("", "bpfdb-serve")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "s")
	p := startServe(t, dir, "--unix", sock, "--requirepass", "pw", "--maxclients", "3", "--durability", "async")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	noauth := p.client(t)
	if err := noauth.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("PING without the password: %v, want NOAUTH", err)
	}
	noauth.Close()
	u := p.client(t, func(o *redis.Options) { o.Network, o.Addr, o.Password, o.PoolSize = "unix", sock, "pw", 1 })
	// Wait until the server has seen the first client go.
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := u.Info(ctx, "clients").Result()
		if err != nil {
			t.Fatalf("INFO over --unix with the password: %v", err)
		}
		if strings.Contains(info, "connected_clients:1\r\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connected_clients is not 1 10s after the other client left:\n%s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := u.Set(ctx, "over-unix", "1", 0).Err(); err != nil {
		t.Fatalf("SET over --unix with the password: %v", err)
	}
	if v, err := u.ConfigGet(ctx, "maxclients").Result(); err != nil || v["maxclients"] != "3" {
		t.Errorf("CONFIG GET maxclients: %v, %v; want 3", v, err)
	}
	// u holds one connection; two more fill --maxclients 3; a fourth is refused.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("connection %d: AUTH: %q, %v", i+2, line, err)
		}
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if line != "-ERR max number of clients reached\r\n" {
		t.Errorf("4th connection with --maxclients 3: %q, %v", line, err)
	}

	if code := p.stop(t, syscall.SIGINT, 30*time.Second); code != 0 {
		t.Errorf("exit code %d on SIGINT", code)
	}
	// Async durability still keeps everything on a clean stop.
	q := startServe(t, dir, "--requirepass", "pw")
	checkKeys(t, q.client(t, func(o *redis.Options) { o.Password = "pw" }), map[string]string{"over-unix": "1"})
	q.stop(t, syscall.SIGTERM, 30*time.Second)

	// A bad flag value fails at once, non-zero.
	cmd := exec.Command(os.Args[0], "serve", "--dir", t.TempDir(), "--listen", freePort(t), "--metrics", "", "--durability", "sometimes")
	cmd.Env = append(os.Environ(), "BPFDB_SERVE_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "durability") {
		t.Errorf("serve --durability sometimes: %v\n%s", err, out)
	}
}

// --maxmemory bounds the store as Redis's maxmemory does: values of any
// size fill it, a write past it gets OOM and changes nothing, and INFO
// memory and CONFIG GET report it.
func TestServeMaxMemory(t *testing.T) {
	p := startServe(t, t.TempDir(), "--max-keys", "1000", "--maxmemory", "1mb")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client(t)
	if v, err := c.ConfigGet(ctx, "maxmemory").Result(); err != nil || v["maxmemory"] != "1048576" {
		t.Fatalf("CONFIG GET maxmemory: %v, %v; want 1048576", v, err)
	}
	value := strings.Repeat("v", 600)
	n := 0
	var err error
	for ; n < 1000; n++ {
		if err = c.Set(ctx, fmt.Sprint("k", n), value, 0).Err(); err != nil {
			break
		}
	}
	if err == nil || !strings.HasPrefix(err.Error(), "OOM ") || !strings.Contains(err.Error(), "MaxMemory") {
		t.Fatalf("SET %d of 600-byte values: %v, want OOM naming MaxMemory", n, err)
	}
	if n < 500 { // each class had a fixed share: 250 values of 600 bytes
		t.Fatalf("only %d values of 600 bytes fit 1mb", n)
	}
	if _, err := c.Get(ctx, fmt.Sprint("k", n)).Result(); err != redis.Nil {
		t.Fatalf("the refused SET left a value: %v", err)
	}
	info, err := c.Info(ctx, "memory").Result()
	if err != nil || !strings.Contains(info, "maxmemory:1048576\r\n") || !strings.Contains(info, "used_memory:") {
		t.Fatalf("INFO memory: %v\n%s", err, info)
	}
	if err := c.Del(ctx, "k0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "again", value, 0).Err(); err != nil {
		t.Fatalf("SET after a DEL freed a slot: %v", err)
	}
	t.Logf("%d values of 600 bytes in --maxmemory 1mb with --max-keys 1000", n)
}

// --max-value-len sets the longest value: 64kb takes a value of 64 KiB
// (with a TTL too) and refuses one of 65 KiB, naming the limit, on a
// connection that goes on; CONFIG GET and INFO report it. A length above
// engine.MaxValueLenLimit fails at once, naming the bound.
func TestServeMaxValueLen(t *testing.T) {
	p := startServe(t, t.TempDir(), "--max-value-len", "64kb")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client(t)
	v := strings.Repeat("v", 64<<10)
	if err := c.Set(ctx, "v64", v, 0).Err(); err != nil {
		t.Fatalf("SET of 64 KiB with --max-value-len 64kb: %v", err)
	}
	if got, err := c.Get(ctx, "v64").Result(); err != nil || got != v {
		t.Fatalf("GET of 64 KiB: %d bytes, %v", len(got), err)
	}
	if err := c.Set(ctx, "v64ttl", v, time.Minute).Err(); err != nil {
		t.Fatalf("SET EX of 64 KiB: %v", err)
	}
	for _, cmd := range []*redis.StatusCmd{
		c.Set(ctx, "v65", strings.Repeat("w", 65<<10), 0),
		c.Set(ctx, "v65", strings.Repeat("w", 65<<10), time.Minute),
	} {
		if err := cmd.Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR") || !strings.Contains(err.Error(), "65536") {
			t.Errorf("%v of 65 KiB with --max-value-len 64kb: %v, want an -ERR naming 65536", cmd.Args()[:2], err)
		}
	}
	if err := c.Append(ctx, "v64", "x").Err(); err == nil || !strings.Contains(err.Error(), "65536") {
		t.Errorf("APPEND past 64 KiB: %v, want an error naming 65536", err)
	}
	if n, err := c.Exists(ctx, "v65").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS v65 after the refused SETs: %d, %v", n, err)
	}
	if got, err := c.StrLen(ctx, "v64").Result(); err != nil || got != 64<<10 {
		t.Errorf("STRLEN v64 after the refused APPEND: %d, %v", got, err)
	}
	if cfg, err := c.ConfigGet(ctx, "proto-max-bulk-len").Result(); err != nil || cfg["proto-max-bulk-len"] != "65536" {
		t.Errorf("CONFIG GET proto-max-bulk-len: %v, %v; want 65536", cfg, err)
	}
	if info, err := c.Info(ctx, "server").Result(); err != nil || !strings.Contains(info, "max_value_bytes:65536\r\n") {
		t.Errorf("INFO server: %v; want max_value_bytes:65536\n%s", err, info)
	}
	if !strings.Contains(p.stderr.String(), "values up to 65536 bytes") {
		t.Errorf("the startup line does not give the value limit:\n%s", p.stderr.String())
	}
	if code := p.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("exit code %d on SIGTERM", code)
	}

	cmd := exec.Command(os.Args[0], "serve", "--dir", t.TempDir(), "--listen", freePort(t), "--metrics", "", "--max-value-len", "8mb")
	cmd.Env = append(os.Environ(), "BPFDB_SERVE_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--max-value-len") || !strings.Contains(string(out), fmt.Sprint(engine.MaxValueLenLimit)) {
		t.Errorf("serve --max-value-len 8mb: %v, want a failure naming the bound %d\n%s", err, engine.MaxValueLenLimit, out)
	}
}

// --max-key-len sets the longest key; keys over 64 bytes (held in the
// kernel by digest) are real keys in the log: wal dump and recover --dump
// show them whole. (Checkpoints hold them whole too: TestLongKeys.)
func TestServeMaxKeyLen(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir, "--max-key-len", "1000")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client(t)
	k600, k1000 := strings.Repeat("s", 599)+"6", strings.Repeat("s", 999)+"1"
	for k, v := range map[string]string{k600: "six hundred", k1000: "a thousand"} {
		if err := c.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatalf("SET of a %d-byte key with --max-key-len 1000: %v", len(k), err)
		}
		if got, err := c.Get(ctx, k).Result(); err != nil || got != v {
			t.Fatalf("GET of a %d-byte key: %q, %v", len(k), got, err)
		}
	}
	if err := c.Set(ctx, k1000+"x", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "1000") {
		t.Errorf("SET of a 1001-byte key: %v, want an error naming 1000", err)
	}
	if keys, err := c.Keys(ctx, "ss*").Result(); err != nil || len(keys) != 2 {
		t.Errorf("KEYS ss*: %d keys, %v; want the 2 long ones", len(keys), err)
	}
	if info, err := c.Info(ctx, "server").Result(); err != nil || !strings.Contains(info, "max_key_bytes:1000\r\n") {
		t.Errorf("INFO server: %v; want max_key_bytes:1000\n%s", err, info)
	}
	p.stop(t, syscall.SIGKILL, 30*time.Second) // no checkpoint at exit: the log holds the writes
	if out := run(t, "wal", "dump", "--dir", dir); !strings.Contains(out, fmt.Sprintf("SET %q = %q", k600, "six hundred")) {
		t.Errorf("wal dump lacks the 600-byte key:\n%s", out)
	}
	dump := filepath.Join(t.TempDir(), "dump.jsonl")
	run(t, "recover", "--dir", dir, "--dump", dump)
	data, err := os.ReadFile(dump)
	if err != nil || !bytes.Contains(data, []byte(k1000)) || !bytes.Contains(data, []byte(k600)) {
		t.Errorf("recover --dump lacks the long keys (%v):\n%.300s", err, data)
	}
}

// Hashes and SWAPDB's names in the dumps, after kill -9: `wal dump` shows
// the type, `recover --dump` the fields, in the database clients name.
func TestServeHashesSwapDBDump(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client(t)
	if err := c.HSet(ctx, "user:1", "name", "ada", "lang", "go").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SWAPDB", "0", "2").Err(); err != nil {
		t.Fatal(err)
	}
	p.stop(t, syscall.SIGKILL, 30*time.Second)
	if out := run(t, "wal", "dump", "--dir", dir); !strings.Contains(out, `SET "user:1" = hash`) {
		t.Errorf("wal dump does not show the hash:\n%s", out)
	}
	dump := filepath.Join(t.TempDir(), "dump.jsonl")
	run(t, "recover", "--dir", dir, "--dump", dump)
	data, err := os.ReadFile(dump)
	want := `{"db":2,"key":"user:1","type":"hash","hash":[["name","ada"],["lang","go"]]}`
	if err != nil || strings.TrimSpace(string(data)) != want {
		t.Errorf("recover --dump (%v):\n%s\nwant\n%s", err, data, want)
	}
}
