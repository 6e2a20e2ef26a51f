package mcudp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
)

func startServer(t *testing.T) (*engine.Engine, *Server) {
	t.Helper()
	e, err := engine.Open(engine.Options{MaxKeys: 1 << 14})
	if errors.Is(err, engine.ErrNotPermitted) && os.Getenv("BPFDB_REQUIRE_BPF") != "1" {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen(e, "127.0.0.1:0", "test")
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
		e.Close()
	})
	return e, s
}

// ask sends one request datagram (header and payload as given) and
// returns the reply put back together from its datagrams, checking their
// headers; nil if none came within a second.
func ask(t *testing.T, addr *net.UDPAddr, id uint16, payload []byte) []byte {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(append(AppendHeader(nil, Header{RequestID: id, Total: 1}), payload...))
	parts := map[uint16][]byte{}
	total := -1
	buf := make([]byte, 2*MaxDatagram)
	for total < 0 || len(parts) < total {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err != nil {
			if total < 0 {
				return nil
			}
			t.Fatalf("%d of %d datagrams: %v", len(parts), total, err)
		}
		if n > MaxDatagram {
			t.Fatalf("a datagram of %d bytes", n)
		}
		h := Header{}
		h.RequestID, h.Seq, h.Total = be16(buf[0:]), be16(buf[2:]), be16(buf[4:])
		if h.RequestID != id {
			t.Fatalf("reply to request %d, want %d", h.RequestID, id)
		}
		total = int(h.Total)
		parts[h.Seq] = append([]byte(nil), buf[HeaderLen:n]...)
	}
	var reply []byte
	for i := 0; i < total; i++ {
		reply = append(reply, parts[uint16(i)]...)
	}
	return reply
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

// The commands a memcached UDP client uses, answered from the store:
// hits, misses, several keys in one get (one snapshot), gets with a CAS
// value, replies of several datagrams, writes visible to the engine, and
// memcached's errors for what is malformed or not supported.
func TestServer(t *testing.T) {
	e, s := startServer(t)
	addr := s.Addr()
	if err := e.Set([]byte("a"), []byte("alpha")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("v"), engine.SlotValueLen)
	var many []string
	for i := 0; i < 12; i++ {
		k := fmt.Sprintf("big%d", i)
		e.Set([]byte(k), big)
		many = append(many, k)
	}
	for i, c := range []struct{ req, want string }{
		{"get a\r\n", "VALUE a 0 5\r\nalpha\r\nEND\r\n"},
		{"get missing\r\n", "END\r\n"},
		{"get a missing a\r\n", "VALUE a 0 5\r\nalpha\r\nVALUE a 0 5\r\nalpha\r\nEND\r\n"},
		{"get " + strings.Repeat("k", 100) + "\r\n", "END\r\n"}, // over bpfdb's key limit: cannot exist
		{"set b 0 0 4\r\nbeta\r\n", "STORED\r\n"},
		{"get b\r\n", "VALUE b 0 4\r\nbeta\r\nEND\r\n"},
		{"add b 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
		{"add c 0 0 1\r\n7\r\n", "STORED\r\n"},
		{"replace nothere 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
		{"incr c 5\r\n", "12\r\n"},
		{"decr c 100\r\n", "0\r\n"},
		{"incr a 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"incr nothere 1\r\n", "NOT_FOUND\r\n"},
		{"delete b\r\n", "DELETED\r\n"},
		{"delete b\r\n", "NOT_FOUND\r\n"},
		{"set f 3 0 1\r\nx\r\n", "SERVER_ERROR bpfdb stores no flags: only 0 is accepted\r\n"},
		{"set x 0 60 1\r\nx\r\n", "SERVER_ERROR bpfdb keys do not expire: only an exptime of 0 is accepted\r\n"},
		{"append a 0 0 1\r\nx\r\n", "SERVER_ERROR append is not supported by bpfdb\r\n"},
		{"flush_all\r\n", "ERROR\r\n"},
		{"get\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"set k 0 0 10\r\nshort\r\n", "CLIENT_ERROR bad command line format: bad data chunk\r\n"},
		{"version\r\n", "VERSION bpfdb-test\r\n"},
	} {
		got := ask(t, addr, uint16(i+1), []byte(c.req))
		if string(got) != c.want {
			t.Errorf("%q: got %q, want %q", c.req, got, c.want)
		}
	}
	if v, err := e.Get([]byte("c")); err != nil || string(v) != "0" {
		t.Errorf("the engine reads c = %q, %v after incr and decr", v, err)
	}
	// A reply of several datagrams.
	got := ask(t, addr, 99, []byte("get "+strings.Join(many, " ")+"\r\n"))
	if n := bytes.Count(got, []byte("VALUE ")); n != len(many) || !bytes.HasSuffix(got, []byte("END\r\n")) {
		t.Errorf("a get of %d values of %d bytes: %d values in %d bytes", len(many), len(big), n, len(got))
	}
	// gets: the CAS value is the version (commit timestamp) of the value.
	got = ask(t, addr, 100, []byte("gets a\r\n"))
	if !bytes.HasPrefix(got, []byte("VALUE a 0 5 ")) {
		t.Errorf("gets a = %q", got)
	}
	// Malformed datagrams: too short for a header (dropped), several parts.
	if got := ask(t, addr, 101, nil); string(got) != "CLIENT_ERROR bad command line format\r\n" {
		t.Errorf("an empty request: %q", got)
	}
	c, _ := net.DialUDP("udp", nil, addr)
	c.Write([]byte{1, 2, 3})
	c.Close()
	multi := append(AppendHeader(nil, Header{RequestID: 5, Seq: 0, Total: 2}), "get a\r\n"...)
	c, _ = net.DialUDP("udp", nil, addr)
	c.Write(multi)
	buf := make([]byte, MaxDatagram)
	c.SetReadDeadline(time.Now().Add(time.Second))
	n, err := c.Read(buf)
	c.Close()
	if err != nil || string(buf[HeaderLen:n]) != "SERVER_ERROR multi-packet request not supported\r\n" {
		t.Errorf("a request of two datagrams: %q, %v", buf[HeaderLen:max(n, HeaderLen)], err)
	}
	st := s.Stats()
	if st.Hits.Load() == 0 || st.Misses.Load() == 0 || st.Errors.Load() == 0 {
		t.Errorf("stats: hits %d, misses %d, errors %d", st.Hits.Load(), st.Misses.Load(), st.Errors.Load())
	}
}

// memcaslap (libmemcached's memaslap, Debian's libmemcached-tools) over
// UDP: sets and gets with its default 64-byte keys and 1 KiB values, every
// get's data verified, and no error.
func TestMemaslapUDP(t *testing.T) {
	bin, err := exec.LookPath("memcaslap")
	if err != nil {
		if os.Getenv("BPFDB_REQUIRE_BPF") == "1" {
			t.Fatal("memcaslap not found (libmemcached-tools)")
		}
		t.Skip("memcaslap not found (apt-get install libmemcached-tools)")
	}
	_, s := startServer(t)
	out, err := exec.Command(bin, "-s", s.Addr().String(), "--udp", "-T", "1", "-c", "4", "-x", "2000", "--verify=1").CombinedOutput()
	t.Logf("memcaslap:\n%s", out)
	if err != nil {
		t.Fatalf("memcaslap: %v", err)
	}
	st := s.Stats()
	if st.Writes.Load() == 0 || st.Gets.Load() == 0 {
		t.Errorf("memcaslap reached the server with %d writes and %d gets", st.Writes.Load(), st.Gets.Load())
	}
	if !bytes.Contains(out, []byte("verify_failed: 0")) || st.Errors.Load() > 0 {
		t.Errorf("memcaslap found wrong data or the server answered %d errors", st.Errors.Load())
	}
}
