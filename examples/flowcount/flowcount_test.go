package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/internal/netnstest"
	"github.com/redis/go-redis/v9"
)

// childArgs, in the environment, makes the test binary run flowcount with
// these arguments instead of the tests: the tests start it in a network
// namespace (ip netns exec) and kill it.
const childArgs = "FLOWCOUNT_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgs); args != "" {
		if err := run(strings.Fields(args), os.Stderr, nil); err != nil {
			fmt.Fprintln(os.Stderr, "flowcount:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lockedBuffer is a child's output, written by exec and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// child is flowcount running in the pair's server namespace.
type child struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	rdb    *redis.Client
	exited chan struct{} // closed when it has exited, err its Wait's result
	err    error
}

// start runs flowcount on the server end of p with its store in dir, and
// waits until it answers PING.
func start(t *testing.T, p *netnstest.Pair, dir string) *child {
	t.Helper()
	c := &child{out: &lockedBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command("ip", "netns", "exec", p.Server, os.Args[0])
	c.cmd.Env = append(os.Environ(), childArgs+"=--iface "+p.ServerIf+" --dir "+dir+
		" --listen 127.0.0.1:6380 --report 100ms --max-keys 1024")
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
	})
	// The RESP port is on the namespace's own loopback: dial it from there.
	c.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6380", MaxRetries: -1, Dialer: netnstest.Dialer(p.Server)})
	t.Cleanup(func() { c.rdb.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for c.rdb.Ping(context.Background()).Err() != nil {
		select {
		case <-c.exited:
			t.Fatalf("flowcount exited (%v) before serving; its output:\n%s", c.err, c.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("flowcount did not answer PING within 30s; its output:\n%s", c.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// send sends n UDP datagrams from the client end of p to the server end,
// datagram i with i%100 bytes of payload, paced so that the log's ring
// never fills, and returns the bytes the server's interface receives.
func send(t *testing.T, p *netnstest.Pair, n int) int64 {
	t.Helper()
	var frames int64
	err := netnstest.In(p.Client, func() error {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(p.ClientIP)})
		if err != nil {
			return err
		}
		defer conn.Close()
		to := &net.UDPAddr{IP: net.ParseIP(p.ServerIP), Port: 9} // discard: no one listens
		payload := make([]byte, 100)
		for i := range n {
			if _, err := conn.WriteToUDP(payload[:i%100], to); err != nil {
				return err
			}
			frames += 14 + 20 + 8 + int64(i%100) // Ethernet, IPv4 and UDP headers
			if i%20 == 19 {
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// waitCounts waits until the client's counters read pkts and bytes over RESP.
func (c *child) waitCounts(t *testing.T, ip string, pkts, bytes int64) {
	t.Helper()
	c.waitCountsLess(t, ip, pkts, bytes, func() int64 { return 0 })
}

// waitCountsLess is waitCounts of pkts less what uncounted() says.
func (c *child) waitCountsLess(t *testing.T, ip string, pkts, bytes int64, uncounted func() int64) {
	t.Helper()
	ctx := context.Background()
	var got []any
	var want int64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		want = pkts - uncounted()
		vals, err := c.rdb.MGet(ctx, "pkts:"+ip, "bytes:"+ip).Result()
		if err == nil && vals[0] == strconv.FormatInt(want, 10) && vals[1] == strconv.FormatInt(bytes, 10) {
			return
		}
		got = vals
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pkts:%s, bytes:%s = %v, want %d and %d; flowcount's output:\n%s", ip, ip, got, want, bytes, c.out)
}

// failedIncrements is what the child's last report says its program could
// not count ("..., N failed (...)"), 0 before any failure.
func (c *child) failedIncrements() int64 {
	m := failedRE.FindAllStringSubmatch(c.out.String(), -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	return n
}

var failedRE = regexp.MustCompile(`increments retried, (\d+) failed`)

// The example end to end: packets from the client namespace are counted by
// the XDP program on the server's veth, read over RESP and by the embedded
// Go program's report, survive kill -9 and restart, and add up with RESP
// increments of the same keys.
func TestFlowcount(t *testing.T) {
	p := netnstest.New(t)
	dir := t.TempDir()
	ctx := context.Background()

	c := start(t, p, dir)
	const n = 300
	bytes := send(t, p, n)
	c.waitCounts(t, p.ClientIP, n, bytes)
	line := fmt.Sprintf("%-15s %10d pkts %14d bytes", p.ClientIP, n, bytes)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(c.out.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("the report never read %q; flowcount's output:\n%s", line, c.out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A synchronous SET is acknowledged once the log is on disk up to it,
	// and every increment above was logged before it.
	if err := c.rdb.Set(ctx, "fence", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited

	c = start(t, p, dir)
	c.waitCounts(t, p.ClientIP, n, bytes)
	// Kernel increments and RESP INCRBYs of the same keys lose nothing.
	var wg sync.WaitGroup
	wg.Add(1)
	var incrErr error
	go func() {
		defer wg.Done()
		for range 100 {
			if incrErr = c.rdb.IncrBy(ctx, "pkts:"+p.ClientIP, 10).Err(); incrErr != nil {
				return
			}
		}
	}()
	const m = 200
	more := send(t, p, m)
	wg.Wait()
	if incrErr != nil {
		t.Fatal(incrErr)
	}
	// A RESP INCRBY's run holds the key's lock; an XDP increment that
	// interrupts it on its own CPU cannot outwait it, and the program
	// passes that packet uncounted and reports it: every packet is counted
	// or reported. Only pkts races (bytes has no other writer).
	c.waitCountsLess(t, p.ClientIP, n+m+1000, bytes+more, c.failedIncrements)
	t.Logf("increments the program reported failed: %d", c.failedIncrements())

	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		if c.err != nil {
			t.Fatalf("flowcount exited with %v after SIGTERM; its output:\n%s", c.err, c.out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("flowcount did not exit within 20s of SIGTERM; its output:\n%s", c.out)
	}
	if out, _ := netnstest.Exec(p.Server, "ip", "link", "show", p.ServerIf); strings.Contains(string(out), "prog/xdp") {
		t.Errorf("the XDP program is still attached after flowcount exited:\n%s", out)
	}
}

// Bad command lines are refused before anything is loaded.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"--iface", "eth0"}, ""},
		{[]string{}, "--iface is required"},
		{[]string{"--iface", "eth0", "--mode", "fast"}, `--mode "fast"`},
		{[]string{"--iface", "eth0", "--report", "soon"}, "invalid value"},
	} {
		c, err := parse(tc.args)
		if err == nil {
			_, err = attachFlags(c.mode)
		}
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
