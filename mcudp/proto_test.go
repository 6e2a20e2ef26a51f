package mcudp

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseHeader(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want Header
		err  error
	}{
		{[]byte{0, 7, 0, 0, 0, 1, 0, 0, 'x'}, Header{RequestID: 7, Total: 1}, nil},
		{[]byte{0, 7, 0, 0, 0, 0, 0, 0}, Header{RequestID: 7}, nil},
		{[]byte{0, 7, 0, 1, 0, 2, 0, 0}, Header{RequestID: 7, Seq: 1, Total: 2}, ErrMultiPart},
		{[]byte{0, 7, 0, 0, 0, 2, 0, 0}, Header{RequestID: 7, Total: 2}, ErrMultiPart},
		{[]byte{0, 7, 0}, Header{}, ErrShort},
		{nil, Header{}, ErrShort},
	} {
		h, _, err := ParseHeader(c.in)
		if !errors.Is(err, c.err) || (err == nil && h != c.want) {
			t.Errorf("ParseHeader(%v) = %+v, %v; want %+v, %v", c.in, h, err, c.want, c.err)
		}
	}
}

func TestParseRequest(t *testing.T) {
	long := bytes.Repeat([]byte("k"), MaxKeyLen+1)
	for _, c := range []struct {
		in   string
		cmd  string
		keys int
		err  error
	}{
		{"get a\r\n", "get", 1, nil},
		{"get \x10\x10k\tx\r\n", "get", 1, nil}, // only spaces separate, as in memcached
		{"get a b\n", "get", 2, nil},            // memcached takes a bare newline too
		{"gets a b c\r\n", "gets", 3, nil},
		{"get\r\n", "", 0, ErrBadLine},
		{"get a", "", 0, ErrBadLine},
		{"get " + string(long) + "\r\n", "", 0, ErrBadLine},
		{"set k 0 0 3\r\nabc\r\n", "set", 1, nil},
		{"set k 0 0 3 noreply\r\nabc\r\n", "set", 1, nil},
		{"set k 0 0 4\r\nabc\r\n", "", 0, ErrBadLine},
		{"set k 0 0 999999999999\r\nabc\r\n", "", 0, ErrBadLine},
		{"set k x 0 3\r\nabc\r\n", "", 0, ErrBadLine},
		{"delete k\r\n", "delete", 1, nil},
		{"incr k 5\r\n", "incr", 1, nil},
		{"incr k -5\r\n", "", 0, ErrBadLine},
		{"version\r\n", "version", 0, nil},
		{"flush_all\r\n", "flush_all", 0, nil},
		{"\r\n", "", 0, ErrBadLine},
	} {
		r, err := ParseRequest([]byte(c.in))
		if !errors.Is(err, c.err) {
			t.Errorf("ParseRequest(%q) error %v, want %v", c.in, err, c.err)
			continue
		}
		if err == nil && (r.Cmd != c.cmd || len(r.Keys) != c.keys) {
			t.Errorf("ParseRequest(%q) = %s with %d keys, want %s with %d", c.in, r.Cmd, len(r.Keys), c.cmd, c.keys)
		}
	}
	many := []byte("get")
	for i := 0; i <= MaxKeys; i++ {
		many = append(many, " k"...)
	}
	if _, err := ParseRequest(append(many, "\r\n"...)); !errors.Is(err, ErrTooMany) {
		t.Errorf("a get of %d keys: %v, want ErrTooMany", MaxKeys+1, err)
	}
	r, _ := ParseRequest([]byte("set k 0 0 3 noreply\r\nabc\r\n"))
	if !r.NoReply || string(r.Data) != "abc" {
		t.Errorf("set noreply: %+v", r)
	}
}

// Datagrams splits a reply into numbered datagrams of at most MaxDatagram
// bytes that put back together give the reply.
func TestDatagrams(t *testing.T) {
	for _, n := range []int{0, 1, MaxDatagram - HeaderLen, MaxDatagram - HeaderLen + 1, 10000} {
		reply := bytes.Repeat([]byte{'x'}, n)
		var got []byte
		var seqs []uint16
		err := Datagrams(9, reply, nil, func(b []byte) error {
			if len(b) > MaxDatagram {
				t.Errorf("a datagram of %d bytes", len(b))
			}
			h := Header{RequestID: uint16(b[0])<<8 | uint16(b[1]), Seq: uint16(b[2])<<8 | uint16(b[3]), Total: uint16(b[4])<<8 | uint16(b[5])}
			if h.RequestID != 9 || int(h.Seq) != len(seqs) {
				t.Errorf("datagram header %+v", h)
			}
			seqs = append(seqs, h.Total)
			got = append(got, b[HeaderLen:]...)
			return nil
		})
		if err != nil || !bytes.Equal(got, reply) {
			t.Errorf("Datagrams of %d bytes: %v, %d bytes back", n, err, len(got))
		}
		for _, total := range seqs {
			if int(total) != len(seqs) {
				t.Errorf("%d datagrams, each says %d", len(seqs), total)
			}
		}
	}
}

// The decoders never panic and never hand out slices past their input.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"get a b\r\n", "set k 0 0 3\r\nabc\r\n", "incr k 1\r\n", "cas k 0 0 1 5\r\nx\r\n", "gets \r\n"} {
		f.Add(append([]byte{0, 1, 0, 0, 0, 1, 0, 0}, s...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, p, err := ParseHeader(b)
		if err != nil {
			return
		}
		r, err := ParseRequest(p)
		if err != nil {
			return
		}
		for _, k := range r.Keys {
			if len(k) > MaxKeyLen || !bytes.Contains(p, k) {
				t.Fatalf("key %q", k)
			}
		}
		if len(r.Data) > len(p) {
			t.Fatalf("data of %d bytes from %d", len(r.Data), len(p))
		}
	})
}
