// Package mcudp serves the store over memcached's UDP protocol: the
// user-space half of bpfdb's memcached front end. GETs the XDP program
// can answer never reach it (issue 15); everything else does, and is
// answered here: a reply larger than a datagram, a key over the XDP
// program's limit, and every other command.
//
// The protocol (memcached's protocol.txt, "UDP protocol"): every datagram
// starts with an 8-byte frame header (request id, sequence number, total
// datagrams, reserved 0, big-endian 16-bit each), then ASCII text. A
// request is one datagram; a reply is as many datagrams of at most
// MaxDatagram bytes as it needs, each with the request's id, its sequence
// number and the total.
package mcudp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Limits of the protocol.
const (
	// HeaderLen is the frame header's size.
	HeaderLen = 8
	// MaxDatagram is the largest reply datagram, header included
	// (memcached's UDP_MAX_PAYLOAD_SIZE).
	MaxDatagram = 1400
	// MaxKeyLen is memcached's longest key (KEY_MAX_LENGTH); the store's
	// own limit (engine.Options.MaxKeyLen) is checked when a key is used.
	MaxKeyLen = 250
	// MaxKeys is the most keys one get may ask for (memcached bounds a
	// request by its datagram; so does this, explicitly).
	MaxKeys = 256
)

// Header is a datagram's frame header.
type Header struct {
	RequestID, Seq, Total, Reserved uint16
}

// Errors of ParseHeader and ParseRequest.
var (
	ErrShort     = errors.New("mcudp: datagram shorter than its frame header")
	ErrMultiPart = errors.New("mcudp: a request of several datagrams")
	ErrBadLine   = errors.New("mcudp: bad command line format")
	ErrTooMany   = fmt.Errorf("mcudp: more than %d keys in one get", MaxKeys)
)

// ParseHeader splits a datagram into its frame header and payload. A
// request must be one datagram (memcached refuses the others too).
func ParseHeader(b []byte) (Header, []byte, error) {
	if len(b) < HeaderLen {
		return Header{}, nil, ErrShort
	}
	h := Header{
		RequestID: binary.BigEndian.Uint16(b[0:]),
		Seq:       binary.BigEndian.Uint16(b[2:]),
		Total:     binary.BigEndian.Uint16(b[4:]),
		Reserved:  binary.BigEndian.Uint16(b[6:]),
	}
	if h.Seq != 0 || h.Total > 1 {
		return h, nil, ErrMultiPart
	}
	return h, b[HeaderLen:], nil
}

// AppendHeader appends h's wire form.
func AppendHeader(dst []byte, h Header) []byte {
	dst = binary.BigEndian.AppendUint16(dst, h.RequestID)
	dst = binary.BigEndian.AppendUint16(dst, h.Seq)
	dst = binary.BigEndian.AppendUint16(dst, h.Total)
	return binary.BigEndian.AppendUint16(dst, h.Reserved)
}

// Request is one ASCII command. Keys and Data alias the datagram.
type Request struct {
	Cmd     string   // get, gets, set, add, replace, delete, incr, decr, version, ...
	Keys    [][]byte // get and gets: every key; others: the one key
	Flags   uint32   // storage commands
	Exptime int64    // storage commands (bpfdb keys do not expire: only 0 is taken)
	Delta   uint64   // incr, decr
	Data    []byte   // storage commands: the data block
	NoReply bool
}

// ParseRequest parses one command line (and, for a storage command, its
// data block) from a datagram's payload, checking every length against
// the payload before using it.
func ParseRequest(p []byte) (Request, error) {
	var r Request
	// A line ends with "\r\n" or, as memcached also takes it, "\n".
	end := bytes.IndexByte(p, '\n')
	if end < 0 {
		return r, ErrBadLine
	}
	line, rest := bytes.TrimSuffix(p[:end], []byte("\r")), p[end+1:]
	fields := tokens(line)
	if len(fields) == 0 {
		return r, ErrBadLine
	}
	r.Cmd = string(fields[0])
	args := fields[1:]
	switch r.Cmd {
	case "get", "gets":
		if len(args) == 0 {
			return r, ErrBadLine
		}
		if len(args) > MaxKeys {
			return r, ErrTooMany
		}
		r.Keys = args
	case "set", "add", "replace", "append", "prepend", "cas":
		return parseStorage(r, args, rest)
	case "delete", "touch":
		if len(args) < 1 || len(args) > 3 {
			return r, ErrBadLine
		}
		r.Keys = args[:1]
		r.NoReply = string(args[len(args)-1]) == "noreply"
	case "incr", "decr":
		if len(args) < 2 || len(args) > 3 {
			return r, ErrBadLine
		}
		d, err := strconv.ParseUint(string(args[1]), 10, 64)
		if err != nil {
			return r, fmt.Errorf("%w: invalid numeric delta argument", ErrBadLine)
		}
		r.Keys, r.Delta = args[:1], d
		r.NoReply = len(args) == 3 && string(args[2]) == "noreply"
	}
	for _, k := range r.Keys {
		if len(k) > MaxKeyLen {
			return r, fmt.Errorf("%w: a key of %d bytes, the limit is %d", ErrBadLine, len(k), MaxKeyLen)
		}
	}
	return r, nil
}

// tokens splits a command line at spaces, as memcached does: any other
// byte, a tab or a control byte included, belongs to a token.
func tokens(line []byte) [][]byte {
	var out [][]byte
	for _, f := range bytes.Split(line, []byte{' '}) {
		if len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// parseStorage parses "<cmd> <key> <flags> <exptime> <bytes> [cas] [noreply]"
// and its data block.
func parseStorage(r Request, args [][]byte, rest []byte) (Request, error) {
	want := 4
	if r.Cmd == "cas" {
		want = 5
	}
	if len(args) < want || len(args) > want+1 {
		return r, ErrBadLine
	}
	if len(args[0]) > MaxKeyLen {
		return r, fmt.Errorf("%w: a key of %d bytes, the limit is %d", ErrBadLine, len(args[0]), MaxKeyLen)
	}
	flags, err1 := strconv.ParseUint(string(args[1]), 10, 32)
	exp, err2 := strconv.ParseInt(string(args[2]), 10, 64)
	n, err3 := strconv.ParseUint(string(args[3]), 10, 31)
	if err1 != nil || err2 != nil || err3 != nil {
		return r, ErrBadLine
	}
	if uint64(len(rest)) < n+2 || !bytes.Equal(rest[n:n+2], []byte("\r\n")) {
		return r, fmt.Errorf("%w: bad data chunk", ErrBadLine)
	}
	r.Keys = args[:1]
	r.Flags, r.Exptime, r.Data = uint32(flags), exp, rest[:n]
	r.NoReply = string(args[len(args)-1]) == "noreply" && len(args) == want+1
	return r, nil
}

// AppendValue appends one "VALUE key flags bytes [cas]" item of a get reply.
func AppendValue(dst, key []byte, flags uint32, data []byte, cas uint64, withCAS bool) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if withCAS {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, cas, 10)
	}
	dst = append(dst, "\r\n"...)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// Datagrams splits reply text into datagrams of at most MaxDatagram bytes,
// each with the request's id, its sequence number and the total, and calls
// send for each (its argument is reused after send returns). A reply too
// long for 65535 datagrams is refused.
func Datagrams(id uint16, reply []byte, buf []byte, send func([]byte) error) error {
	const room = MaxDatagram - HeaderLen
	total := (len(reply) + room - 1) / room
	if total == 0 {
		total = 1
	}
	if total > 0xffff {
		return fmt.Errorf("mcudp: a reply of %d bytes needs more than 65535 datagrams", len(reply))
	}
	for seq := 0; seq < total; seq++ {
		part := reply[seq*room : min((seq+1)*room, len(reply))]
		buf = AppendHeader(buf[:0], Header{RequestID: id, Seq: uint16(seq), Total: uint16(total)})
		buf = append(buf, part...)
		if err := send(buf); err != nil {
			return err
		}
	}
	return nil
}
