package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/internal/netnstest"
	"github.com/bpfdb/bpfdb/mcudp"
	"github.com/redis/go-redis/v9"
)

// xdpServe is `bpfdb serve --xdp` on the server end of a veth pair, and
// the clients that reach it from the test: RESP and HTTP on the server
// namespace's loopback, memcached UDP from the client namespace.
type xdpServe struct {
	p    *netnstest.Pair
	cmd  *exec.Cmd
	out  *syncBuffer
	rdb  *redis.Client
	http *http.Client
}

func startXDPServe(t *testing.T) *xdpServe {
	t.Helper()
	skipUnlessRoot(t)
	s := &xdpServe{p: netnstest.New(t), out: &syncBuffer{}}
	netnstest.AttachPass(t, s.p.Client, s.p.ClientIf) // XDP_TX on a veth needs it
	s.cmd = exec.Command("ip", "netns", "exec", s.p.Server, os.Args[0], "serve", "--dir", t.TempDir(),
		"--listen", "127.0.0.1:6380", "--metrics", "127.0.0.1:9380", "--xdp", s.p.ServerIf)
	s.cmd.Env = append(os.Environ(), "BPFDB_SERVE_TEST_MAIN=1")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		if t.Failed() {
			t.Logf("bpfdb serve output:\n%s", s.out)
		}
	})
	dial := netnstest.Dialer(s.p.Server)
	s.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:6380", Dialer: dial, MaxRetries: -1})
	t.Cleanup(func() { s.rdb.Close() })
	s.http = &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(45 * time.Second)
	for s.rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("bpfdb serve --xdp does not answer PING after 45s:\n%s", s.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// info returns one field of INFO's stats section.
func (s *xdpServe) info(t *testing.T, field string) uint64 {
	t.Helper()
	text, err := s.rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %q", field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s:\n%s", field, text)
	return 0
}

// memcaslap (libmemcached's memaslap) over UDP against serve --xdp: its
// gets are answered in XDP, its sets by user space, every get's data
// verified; INFO and /metrics count both halves.
func TestServeXDPMemaslap(t *testing.T) {
	bin, err := exec.LookPath("memcaslap")
	if err != nil {
		if os.Getenv("BPFDB_REQUIRE_BPF") == "1" {
			t.Fatal("memcaslap not found (libmemcached-tools)")
		}
		t.Skip("memcaslap not found (apt-get install libmemcached-tools)")
	}
	s := startXDPServe(t)
	// Values of 100 bytes: a veth's packets have little room to grow, and
	// a get whose reply cannot fit is passed up (and answered there) instead.
	out, err := netnstest.Exec(s.p.Client, bin, "-s", s.p.ServerIP+":11211", "--udp", "-T", "1", "-c", "4",
		"-x", "3000", "-X", "100", "--verify=1")
	t.Logf("memcaslap:\n%s", out)
	if err != nil {
		t.Fatalf("memcaslap: %v", err)
	}
	if !strings.Contains(string(out), "verify_failed: 0") {
		t.Error("memcaslap found wrong data")
	}
	answered, writes := s.info(t, "memcache_xdp_answered"), s.info(t, "memcache_udp_writes")
	if answered == 0 || writes == 0 {
		text, _ := s.rdb.Info(context.Background(), "stats").Result()
		t.Errorf("memcaslap's gets answered in XDP: %d, its sets in user space: %d\n%s", answered, writes, grepLines(text, "memcache"))
	}
	if e := s.info(t, "memcache_udp_errors"); e > 0 {
		t.Errorf("user space answered %d errors", e)
	}
	resp, err := s.http.Get("http://127.0.0.1:9380/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "bpfdb_memcache_xdp_answered_total "+strconv.FormatUint(s.info(t, "memcache_xdp_answered"), 10)) {
		t.Errorf("/metrics lacks the XDP counters:\n%s", grepLines(string(body), "memcache"))
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM", err)
	}
	if out, _ := netnstest.Exec(s.p.Server, "ip", "link", "show", s.p.ServerIf); strings.Contains(string(out), "prog/xdp") {
		t.Errorf("the XDP program is still attached after serve exited:\n%s", out)
	}
}

func grepLines(text, word string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// Multi-key gets answered in XDP never see half of a RESP MULTI/EXEC
// transfer: the accounts always sum to their total.
func TestServeXDPTransfers(t *testing.T) {
	s := startXDPServe(t)
	ctx := context.Background()
	const accounts, initial = 8, 100
	keys := make([]string, accounts)
	for i := range keys {
		keys[i] = "acct:" + strconv.Itoa(i)
		if err := s.rdb.Set(ctx, keys[i], initial, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var conn *net.UDPConn
	if err := netnstest.In(s.p.Client, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(s.p.ClientIP)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	server := &net.UDPAddr{IP: net.ParseIP(s.p.ServerIP), Port: 11211}
	req := []byte("get " + strings.Join(keys, " ") + "\r\n")

	var transfers atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range 400 {
			from, to := keys[i%accounts], keys[(i*3+1)%accounts]
			_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.DecrBy(ctx, from, int64(i%7+1))
				p.IncrBy(ctx, to, int64(i%7+1))
				return nil
			})
			if err != nil {
				done <- err
				return
			}
			transfers.Add(1)
		}
		done <- nil
	}()
	buf := make([]byte, 64<<10)
	reads, before := 0, s.info(t, "memcache_xdp_answered")
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		reads++
		id := uint16(reads)
		if _, err := conn.WriteToUDP(append(mcudp.AppendHeader(nil, mcudp.Header{RequestID: id, Total: 1}), req...), server); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("get %d: %v", reads, err)
		}
		h, payload, err := mcudp.ParseHeader(buf[:n])
		if err != nil || h.RequestID != id {
			t.Fatalf("get %d: reply %+v, %v", reads, h, err)
		}
		if sum := sumValues(t, payload); sum != accounts*initial {
			t.Fatalf("get %d after %d transfers: the accounts sum to %d, not %d:\n%s", reads, transfers.Load(), sum, accounts*initial, payload)
		}
	}
	answered := s.info(t, "memcache_xdp_answered") - before
	t.Logf("%d gets during %d transfers, %d answered in XDP", reads, transfers.Load(), answered)
	if answered < uint64(reads)/2 {
		t.Errorf("only %d of %d gets answered in XDP", answered, reads)
	}
}

// sumValues adds up the integer values of a get reply.
func sumValues(t *testing.T, reply []byte) int {
	t.Helper()
	lines := strings.Split(string(reply), "\r\n")
	sum := 0
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "VALUE ") {
			n, err := strconv.Atoi(lines[i+1])
			if err != nil {
				t.Fatalf("reply %q: %v", reply, err)
			}
			sum += n
			i++
		}
	}
	return sum
}
