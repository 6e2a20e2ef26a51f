// Package resp reads and writes the Redis protocol (RESP2) with limits.
//
// The reader refuses a declared length above its limits before it
// allocates anything for it, and every argument of a command lives in one
// arena that the caller recycles once the command has been answered, so a
// pipelined batch costs no allocation per argument. A protocol error
// cannot be recovered from (the stream has lost its framing): the caller
// answers it and closes the connection, as Redis does.
package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits bound what one command may declare.
type Limits struct {
	// MaxArgs is the most arguments of one command (the command name included).
	MaxArgs int
	// MaxBulk is the longest argument kept, in bytes.
	MaxBulk int
	// MaxSkip is the longest argument read at all: one longer than
	// MaxBulk but not than MaxSkip is read and thrown away, and the command
	// comes back with an *ArgTooLongError, the stream still in step.
	// Longer is a protocol error. Zero means MaxBulk.
	MaxSkip int
}

// ArgTooLongError is a well-framed command with an argument longer than
// Limits.MaxBulk: it was read and dropped, and the stream can go on.
type ArgTooLongError struct {
	// Len is the longest argument's length.
	Len int
}

func (e *ArgTooLongError) Error() string {
	return fmt.Sprintf("argument of %d bytes", e.Len)
}

// ProtocolError is malformed input. Its text is what Redis answers.
type ProtocolError struct{ msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.msg }

func protocolError(format string, args ...any) error {
	return &ProtocolError{fmt.Sprintf(format, args...)}
}

// Reader reads commands from a stream.
type Reader struct {
	br    *bufio.Reader
	lim   Limits
	arena []byte
}

// NewReader returns a Reader of r with a buffer of bufSize bytes, which is
// also the longest line (an inline command or a length header) it accepts.
func NewReader(r io.Reader, bufSize int, lim Limits) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, bufSize), lim: lim, arena: make([]byte, 0, 4096)}
}

// SetLimits changes the limits for the commands read from now on.
func (r *Reader) SetLimits(lim Limits) { r.lim = lim }

// Buffered is how many bytes have arrived and not been read: more than zero
// means another pipelined command (or part of one) is waiting.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// HasCommand reports whether the bytes buffered hold a whole command, or
// the start of one ReadCommand refuses, so that ReadCommand returns without
// waiting for the client. Empty lines and empty arrays, which ReadCommand
// skips, do not count.
func (r *Reader) HasCommand() bool {
	b, _ := r.br.Peek(r.br.Buffered())
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		line := bytes.TrimSuffix(b[:i], []byte("\r"))
		if len(line) == 0 {
			b = b[i+1:]
			continue
		}
		if line[0] != '*' {
			return true // an inline command, whole
		}
		if n, err := strconv.Atoi(string(line[1:])); err == nil && n <= 0 {
			b = b[i+1:]
			continue
		}
		_, _, st := Scan(b, nil, r.lim)
		return st != ScanIncomplete
	}
	return false
}

// ArenaSize is how many bytes the arguments read since the last Reset hold.
func (r *Reader) ArenaSize() int { return len(r.arena) }

// Reset recycles the arena: every argument returned so far becomes invalid.
func (r *Reader) Reset() {
	if cap(r.arena) > 1<<20 {
		r.arena = make([]byte, 0, 4096) // do not keep a huge batch's memory
	}
	r.arena = r.arena[:0]
}

// ReadCommand reads one command, either a RESP array of bulk strings or an
// inline command (words on one line). The arguments are appended to args
// and stay valid until Reset. Empty commands are skipped. A *ProtocolError
// means the stream is unusable; io.EOF a clean end between commands.
func (r *Reader) ReadCommand(args [][]byte) ([][]byte, error) {
	for {
		line, err := r.line()
		if err != nil {
			return args, err
		}
		if len(line) == 0 {
			continue
		}
		if line[0] != '*' {
			args = r.inline(line, args)
			if len(args) == 0 {
				continue
			}
			if len(args) > r.lim.MaxArgs {
				return args, protocolError("too many arguments in an inline request (limit %d)", r.lim.MaxArgs)
			}
			return args, nil
		}
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n > r.lim.MaxArgs {
			return args, protocolError("invalid multibulk length (limit %d arguments)", r.lim.MaxArgs)
		}
		if n <= 0 {
			continue // Redis ignores *0 and *-1
		}
		var tooLong *ArgTooLongError
		for i := 0; i < n; i++ {
			arg, err := r.bulk()
			var skipped *ArgTooLongError
			if errors.As(err, &skipped) {
				if tooLong == nil || skipped.Len > tooLong.Len {
					tooLong = skipped
				}
				continue
			}
			if err != nil {
				return args, err
			}
			args = append(args, arg)
		}
		if tooLong != nil {
			return args, tooLong
		}
		return args, nil
	}
}

// line reads one line without its CRLF (or LF).
func (r *Reader) line() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, protocolError("line longer than %d bytes", r.br.Size())
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// bulk reads one $-prefixed argument into the arena.
func (r *Reader) bulk() ([]byte, error) {
	line, err := r.line()
	if err != nil {
		return nil, eofInCommand(err)
	}
	if len(line) == 0 || line[0] != '$' {
		return nil, protocolError("expected '$', got '%s'", printable(line))
	}
	size, err := strconv.Atoi(string(line[1:]))
	if err != nil || size < 0 || size > max(r.lim.MaxBulk, r.lim.MaxSkip) {
		return nil, protocolError("invalid bulk length (limit %d bytes)", max(r.lim.MaxBulk, r.lim.MaxSkip))
	}
	if size > r.lim.MaxBulk {
		if _, err := r.br.Discard(size); err != nil {
			return nil, eofInCommand(err)
		}
		if crlf, err := r.line(); err != nil || len(crlf) != 0 {
			if err != nil {
				return nil, eofInCommand(err)
			}
			return nil, protocolError("bulk string not terminated by CRLF")
		}
		return nil, &ArgTooLongError{Len: size}
	}
	start := len(r.arena)
	r.arena = grow(r.arena, size+2)
	buf := r.arena[start : start+size+2]
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return nil, eofInCommand(err)
	}
	if buf[size] != '\r' || buf[size+1] != '\n' {
		return nil, protocolError("bulk string not terminated by CRLF")
	}
	r.arena = r.arena[:start+size]
	return r.arena[start : start+size : start+size], nil
}

// inline splits a line into words (Redis's inline commands), copying them
// into the arena. Quotes are not interpreted.
func (r *Reader) inline(line []byte, args [][]byte) [][]byte {
	for _, w := range bytes.Fields(line) {
		start := len(r.arena)
		r.arena = append(r.arena, w...)
		args = append(args, r.arena[start:len(r.arena):len(r.arena)])
	}
	return args
}

// grow extends b by n bytes, reallocating if needed. Arguments already
// returned keep pointing into the old array, which stays valid.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func eofInCommand(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func printable(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	q := strconv.Quote(string(b))
	return q[1 : len(q)-1]
}
