package mcxdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/mcudp"
	"github.com/cilium/ebpf"
)

// Addresses of the synthetic packets (never sent: BPF_PROG_RUN only).
var (
	fuzzClientMAC = []byte{2, 0, 0, 0, 0, 2}
	fuzzServerMAC = []byte{2, 0, 0, 0, 0, 1}
	fuzzClientIP  = []byte{10, 212, 0, 2}
	fuzzServerIP  = []byte{10, 212, 0, 1}
)

const fuzzClientPort = 40000

// packet wraps a UDP payload in Ethernet, IPv4 and UDP headers to port.
func packet(payload []byte, port uint16) []byte {
	b := append([]byte(nil), fuzzServerMAC...)
	b = append(b, fuzzClientMAC...)
	b = append(b, 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip = append(append(ip, fuzzClientIP...), fuzzServerIP...)
	b = append(b, ip...)
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp, fuzzClientPort)
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	return append(append(b, udp...), payload...)
}

// checkReply checks that out is the reply packet to a request from the
// fuzz client, and returns its UDP payload.
func checkReply(t *testing.T, out []byte) []byte {
	t.Helper()
	if len(out) < 42 {
		t.Fatalf("reply of %d bytes", len(out))
	}
	ip, udp := out[14:34], out[34:42]
	switch {
	case !bytes.Equal(out[:6], fuzzClientMAC) || !bytes.Equal(out[6:12], fuzzServerMAC):
		t.Fatalf("reply MACs %x > %x", out[6:12], out[:6])
	case !bytes.Equal(ip[12:16], fuzzServerIP) || !bytes.Equal(ip[16:20], fuzzClientIP):
		t.Fatalf("reply IPs %v > %v", ip[12:16], ip[16:20])
	case int(binary.BigEndian.Uint16(ip[2:])) != len(out)-14:
		t.Fatalf("IP length %d, packet %d", binary.BigEndian.Uint16(ip[2:]), len(out)-14)
	case int(binary.BigEndian.Uint16(udp[4:])) != len(out)-34:
		t.Fatalf("UDP length %d, packet %d", binary.BigEndian.Uint16(udp[4:]), len(out)-34)
	case binary.BigEndian.Uint16(udp[2:]) != fuzzClientPort:
		t.Fatalf("reply to port %d", binary.BigEndian.Uint16(udp[2:]))
	}
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Fatalf("IP checksum wrong: %x", ip)
	}
	return out[42:]
}

// FuzzXDP runs the program on arbitrary datagrams (BPF_PROG_RUN): it never
// fails, and every request it answers (XDP_TX) gets a well-formed packet
// carrying exactly the reply user space (mcudp) gives the same datagram.
// Everything else passes, untouched.
func FuzzXDP(f *testing.F) {
	db, err := engine.Open(engine.Options{MaxKeys: 256})
	if err != nil {
		if os.Getenv("BPFDB_REQUIRE_BPF") != "1" && errors.Is(err, engine.ErrNotPermitted) {
			f.Skip(err)
		}
		f.Fatal(err)
	}
	defer db.Close()
	var objs mcxdpObjects
	if err := load(db, 11211, &objs); err != nil {
		f.Fatal(err)
	}
	defer objs.Close()
	mc, err := mcudp.Listen(db, "127.0.0.1:0", "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	defer mc.Close()
	for i, k := range []string{"a", "b", "c", "long-value"} {
		if err := db.Set([]byte(k), bytes.Repeat([]byte{'a' + byte(i)}, i*i*20)); err != nil {
			f.Fatal(err)
		}
	}
	hdr := []byte{0, 7, 0, 0, 0, 1, 0, 0}
	for _, s := range []string{"get a\r\n", "gets a b c\r\n", "get long-value long-value\r\n", "get x\n",
		"get  a \r\n", "set a 0 0 1\r\nx\r\n", "get a\r\nget b\r\n", "get \x00\r\n"} {
		f.Add(append(append([]byte(nil), hdr...), s...))
	}
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, d []byte) {
		if len(d) > 1400 {
			return
		}
		in := packet(d, 11211)
		opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+4096)}
		ret, err := objs.McxdpGet.Run(opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		switch ret {
		case 2: // XDP_PASS
			return
		case 3: // XDP_TX
		default:
			t.Fatalf("%q: XDP action %d", d, ret)
		}
		got := checkReply(t, opts.DataOut) // Run cuts DataOut to the packet
		want := mc.Answer(d)
		if len(got) < 8 || !bytes.Equal(got[:2], d[:2]) || !bytes.Equal(got[2:8], []byte{0, 0, 0, 1, 0, 0}) {
			t.Fatalf("%q: reply frame header %x", d, got[:min(8, len(got))])
		}
		if !bytes.Equal(got[8:], want) {
			t.Fatalf("%q: XDP answered %q, user space %q", d, got[8:], want)
		}
	})
}
