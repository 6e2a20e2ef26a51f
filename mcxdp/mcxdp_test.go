package mcxdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/netnstest"
	"github.com/bpfdb/bpfdb/mcudp"
)

// env is a store served by the XDP front end and mcudp on the server end
// of a veth pair, and a UDP socket on the client end.
type env struct {
	db     *engine.Engine
	fe     *Frontend
	mc     *mcudp.Server
	client *net.UDPConn
	server *net.UDPAddr
	p      *netnstest.Pair
	id     uint16
}

const port = 11211

func open(t *testing.T) *env {
	t.Helper()
	p := netnstest.New(t)
	db, err := engine.Open(engine.Options{MaxKeys: 4096})
	if err != nil {
		if os.Getenv("BPFDB_REQUIRE_BPF") != "1" && errors.Is(err, engine.ErrNotPermitted) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, p: p, server: &net.UDPAddr{IP: net.ParseIP(p.ServerIP), Port: port}}
	err = netnstest.In(p.Server, func() error {
		var err error
		if e.fe, err = Attach(db, Config{Interface: p.ServerIf, Port: port}); err != nil {
			return err
		}
		e.mc, err = mcudp.Listen(db, e.server.String(), "test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.fe.Close() })
	go e.mc.Serve()
	t.Cleanup(func() { e.mc.Close() })
	netnstest.AttachPass(t, p.Client, p.ClientIf)
	err = netnstest.In(p.Client, func() (err error) {
		e.client, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(p.ClientIP)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.client.Close() })
	return e
}

// request sends one datagram of text and returns the reply's text,
// reassembled from its datagrams in sequence order.
func (e *env) request(t *testing.T, text string) string {
	t.Helper()
	e.id++
	b := mcudp.AppendHeader(nil, mcudp.Header{RequestID: e.id, Total: 1})
	if _, err := e.client.WriteToUDP(append(b, text...), e.server); err != nil {
		t.Fatal(err)
	}
	return e.receive(t, e.id)
}

func (e *env) receive(t *testing.T, id uint16) string {
	t.Helper()
	parts := map[uint16][]byte{}
	total := -1
	buf := make([]byte, 64<<10)
	for total < 0 || len(parts) < total {
		e.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := e.client.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("request %d: %d of %d datagrams, then %v", id, len(parts), total, err)
		}
		h, payload, _ := parseReply(buf[:n])
		if h.RequestID != id {
			continue // a late reply to an earlier request
		}
		total = int(h.Total)
		parts[h.Seq] = append([]byte(nil), payload...)
	}
	var out []byte
	for i := range total {
		out = append(out, parts[uint16(i)]...)
	}
	return string(out)
}

func parseReply(b []byte) (mcudp.Header, []byte, error) {
	if len(b) < mcudp.HeaderLen {
		return mcudp.Header{}, nil, mcudp.ErrShort
	}
	return mcudp.Header{RequestID: binary.BigEndian.Uint16(b), Seq: binary.BigEndian.Uint16(b[2:]),
		Total: binary.BigEndian.Uint16(b[4:])}, b[mcudp.HeaderLen:], nil
}

func (e *env) counter(t *testing.T, name string) uint64 {
	t.Helper()
	cs, err := e.fe.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

func item(key, value string, cas uint64, withCAS bool) string {
	return string(mcudp.AppendValue(nil, []byte(key), 0, []byte(value), cas, withCAS))
}

// Hits, misses and several keys are answered in XDP, exactly as memcached
// would, and the cas of gets is the version user space reports too.
func TestGet(t *testing.T) {
	e := open(t)
	if err := e.db.Set([]byte("a"), []byte("alpha")); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Set([]byte("b"), []byte("")); err != nil {
		t.Fatal(err)
	}
	ops := []engine.Op{{Kind: engine.OpGet, Key: []byte("a")}}
	if err := e.db.Exec(ops); err != nil {
		t.Fatal(err)
	}
	cas := ops[0].Version
	for _, tc := range []struct{ req, want string }{
		{"get a\r\n", item("a", "alpha", 0, false) + "END\r\n"},
		{"get nothing\r\n", "END\r\n"},
		{"get a b nothing a\r\n", item("a", "alpha", 0, false) + item("b", "", 0, false) + item("a", "alpha", 0, false) + "END\r\n"},
		{"gets a\r\n", item("a", "alpha", cas, true) + "END\r\n"},
		{"get  a   b \r\n", item("a", "alpha", 0, false) + item("b", "", 0, false) + "END\r\n"},
		{"get a\n", item("a", "alpha", 0, false) + "END\r\n"},
	} {
		before := e.counter(t, "answered")
		if got := e.request(t, tc.req); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.req, got, tc.want)
		}
		if e.counter(t, "answered") != before+1 {
			cs, _ := e.fe.Counters()
			t.Errorf("%q was not answered in XDP: %v", tc.req, cs)
		}
	}
	if h, m := e.counter(t, "hits"), e.counter(t, "misses"); h != 8 || m != 2 {
		t.Errorf("hits %d, misses %d; want 8 and 2", h, m)
	}
	// A key written through the engine a moment ago is read.
	for i := range 50 {
		v := fmt.Sprint("v", i)
		if err := e.db.Set([]byte("a"), []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, want := e.request(t, "get a\r\n"), item("a", v, 0, false)+"END\r\n"; got != want {
			t.Fatalf("after Set %s: got %q", v, got)
		}
	}
}

// What XDP cannot answer goes up to user space, which answers it: nothing
// is dropped, and each reason is counted.
func TestPassedUp(t *testing.T) {
	e := open(t)
	big := strings.Repeat("x", 1000)
	for _, k := range []string{"big1", "big2"} {
		if err := e.db.Set([]byte(k), []byte(big)); err != nil {
			t.Fatal(err)
		}
	}
	longKey := strings.Repeat("k", engine.InlineKeyLen+1) // over XDP's limit, within the engine's
	if err := e.db.Set([]byte(longKey), []byte("lv")); err != nil {
		t.Fatal(err)
	}
	many := "get" + strings.Repeat(" a", MaxKeys+1) + "\r\n"
	for _, tc := range []struct {
		req, want, counter string
	}{
		{"get big1 big2\r\n", item("big1", big, 0, false) + item("big2", big, 0, false) + "END\r\n", "passed_too_big"},
		{"get " + longKey + "\r\n", item(longKey, "lv", 0, false) + "END\r\n", "passed_long_key"},
		{many, "END\r\n", "passed_many_keys"},
		{"set k 0 0 1\r\nv\r\n", "STORED\r\n", "passed_command"},
		{"version\r\n", "VERSION bpfdb-test\r\n", "passed_command"},
		{"get a", "CLIENT_ERROR bad command line format\r\n", "passed_malformed"},
		{"get \r\n", "CLIENT_ERROR bad command line format\r\n", "passed_malformed"},
		{"get a\r\nget b\r\n", item("a", "", 0, false)[:0] + "END\r\n", "passed_malformed"},
		{"get " + strings.Repeat("a ", MaxRequest/2) + "\r\n", "", "passed_long_request"},
		// Over the MTU: IP fragments, which the program leaves to the stack.
		{"get" + strings.Repeat(" "+strings.Repeat("f", 60), 40) + "\r\n", "END\r\n", ""},
	} {
		if tc.counter == "" {
			if got := e.request(t, tc.req); got != tc.want {
				t.Errorf("%.40q: got %.200q, want %.200q", tc.req, got, tc.want)
			}
			continue
		}
		before := e.counter(t, tc.counter)
		got := e.request(t, tc.req)
		if tc.want != "" && got != tc.want {
			t.Errorf("%.40q: got %.200q, want %.200q", tc.req, got, tc.want)
		}
		if e.counter(t, tc.counter) != before+1 {
			t.Errorf("%.40q: counter %s did not count it", tc.req, tc.counter)
		}
	}
	if got := e.request(t, "get k\r\n"); got != item("k", "v", 0, false)+"END\r\n" {
		t.Errorf("the set passed up was not applied: %q", got)
	}
	if got := e.counter(t, "answered"); got != 1 {
		t.Errorf("answered %d in XDP, want 1", got)
	}
}

// Malformed and mutated requests: every one the XDP program answers gets
// exactly the reply mcudp gives the same bytes on a port XDP does not
// serve (so no stale scratch or other key's data leaks into a reply), and
// the others still reach user space.
func TestDifferential(t *testing.T) {
	e := open(t)
	var plain *mcudp.Server
	plainAddr := &net.UDPAddr{IP: net.ParseIP(e.p.ServerIP), Port: port + 1}
	if err := netnstest.In(e.p.Server, func() (err error) {
		plain, err = mcudp.Listen(e.db, plainAddr.String(), "test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go plain.Serve()
	defer plain.Close()
	keys := []string{"a", "bb", "key-3", strings.Repeat("L", engine.InlineKeyLen), "missing"}
	for i, k := range keys[:4] {
		if err := e.db.Set([]byte(k), bytes.Repeat([]byte{'0' + byte(i)}, i*40)); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	mutate := func() []byte {
		var b []byte
		b = append(b, []string{"get", "gets", "get", "gets", "ge", "getx", "GET", "get"}[rng.IntN(8)]...)
		for range 1 + rng.IntN(5) {
			b = append(b, []string{" ", "  ", " ", " ", " ", " ", " ", "\t"}[rng.IntN(8)]...)
			b = append(b, keys[rng.IntN(len(keys))]...)
		}
		b = append(b, []string{"\r\n", "\r\n", "\r\n", "\n", "\r", "", " \r\n", "\r\nx"}[rng.IntN(8)]...)
		if rng.IntN(4) == 0 { // a stray byte anywhere
			i := rng.IntN(len(b) + 1)
			b = append(b[:i], append([]byte{byte(rng.IntN(256))}, b[i:]...)...)
		}
		return b
	}
	answered := e.counter(t, "answered")
	for i := range 300 {
		req := mutate()
		got, gotOK := e.try(t, e.server, req)
		want, wantOK := e.try(t, plainAddr, req)
		if got != want || gotOK != wantOK {
			t.Fatalf("request %d %q: XDP front end answered %q (%v), user space %q (%v)", i, req, got, gotOK, want, wantOK)
		}
	}
	// Malformed frames: short, a part of several, a total of 0 (taken).
	for _, d := range [][]byte{
		{}, {0, 1}, {0, 9, 0, 0, 0, 1, 0},
		append([]byte{0, 9, 0, 1, 0, 2, 0, 0}, "get a\r\n"...),
		append([]byte{0, 9, 0, 0, 0, 0, 0, 0}, "get a\r\n"...),
		append([]byte{0, 9, 0, 0, 0, 1, 0xff, 0xff}, "get a\r\n"...),
	} {
		got, gotOK := e.tryRaw(t, e.server, d)
		want, wantOK := e.tryRaw(t, plainAddr, d)
		if got != want || gotOK != wantOK {
			t.Fatalf("datagram %q: XDP front end answered %q (%v), user space %q (%v)", d, got, gotOK, want, wantOK)
		}
	}
	if e.counter(t, "answered") == answered {
		t.Error("no mutated request was answered in XDP")
	}
	t.Logf("%d of 300 answered in XDP", e.counter(t, "answered")-answered)
}

// try sends req to addr and returns the reply's text, or false when none
// came within a short time (user space drops a datagram it cannot parse).
func (e *env) try(t *testing.T, addr *net.UDPAddr, req []byte) (string, bool) {
	t.Helper()
	e.id++
	b := mcudp.AppendHeader(nil, mcudp.Header{RequestID: e.id, Total: 1})
	return e.tryRaw(t, addr, append(b, req...))
}

// tryRaw sends the datagram d as it is; its reply is e.id's.
func (e *env) tryRaw(t *testing.T, addr *net.UDPAddr, d []byte) (string, bool) {
	t.Helper()
	if len(d) >= 2 {
		e.id = binary.BigEndian.Uint16(d)
	}
	if _, err := e.client.WriteToUDP(d, addr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var out []byte
	total := -1
	for n := 0; total < 0 || n < total; {
		e.client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		m, _, err := e.client.ReadFromUDP(buf)
		if err != nil {
			return string(out), false
		}
		h, payload, _ := parseReply(buf[:m])
		if h.RequestID != e.id {
			continue
		}
		if int(h.Seq) != n {
			t.Fatalf("datagram %d of the reply arrived as %d", n, h.Seq)
		}
		total = int(h.Total)
		out = append(out, payload...)
		n++
	}
	return string(out), true
}

// Values of growing size: every get is answered right, in XDP while the
// packet can grow to the reply, by user space after (passed_no_room).
func TestReplyGrowth(t *testing.T) {
	e := open(t)
	largest := 0
	for size := 0; size <= engine.SlotValueLen; size += 64 {
		v := strings.Repeat("g", size)
		if err := e.db.Set([]byte("grow"), []byte(v)); err != nil {
			t.Fatal(err)
		}
		before := e.counter(t, "answered")
		if got, want := e.request(t, "get grow\r\n"), item("grow", v, 0, false)+"END\r\n"; got != want {
			t.Fatalf("value of %d bytes: got %.80q", size, got)
		}
		if e.counter(t, "answered") > before {
			largest = size
		}
	}
	t.Logf("largest value answered in XDP on this veth: %d bytes (request 18 bytes, passed up: %d)", largest, e.counter(t, "passed_no_room"))
	if largest < 100 {
		t.Errorf("only values up to %d bytes were answered in XDP", largest)
	}
}
