package resp

import (
	"io"
	"strconv"
)

// Writer buffers replies and writes them with one system call per Flush.
// It speaks RESP2 until SetProto(3) (HELLO 3), then RESP3's null and map
// types where Redis 7 uses them; every other reply is the same in both.
type Writer struct {
	w     io.Writer
	buf   []byte
	off   int // buf[:off] is written (Consumed)
	resp3 bool
	// OnError, if set, is called with every error reply's message (its
	// code first), for the server's error statistics.
	OnError func(msg string)
}

// SetProto sets the protocol of the replies that follow: 2 or 3.
func (w *Writer) SetProto(v int) { w.resp3 = v == 3 }

// Proto is the protocol of the replies: 2 or 3.
func (w *Writer) Proto() int {
	if w.resp3 {
		return 3
	}
	return 2
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, buf: make([]byte, 0, 4096)} }

// Buffered is how many bytes wait for Flush.
func (w *Writer) Buffered() int { return len(w.buf) - w.off }

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	if w.Buffered() == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf[w.off:])
	w.reset()
	return err
}

// Pending returns the buffered bytes, for a caller that writes them itself
// (an event loop, which cannot block in Flush).
func (w *Writer) Pending() []byte { return w.buf[w.off:] }

// Consumed drops the first n buffered bytes, written by the caller. The
// rest is not moved (a slow reader would make that quadratic).
func (w *Writer) Consumed(n int) {
	if w.off += n; w.off >= len(w.buf) {
		w.reset()
	}
}

// Truncate keeps the first n buffered bytes and drops the rest, for a
// caller that replaces replies it rendered before they were written.
func (w *Writer) Truncate(n int) {
	if n < 0 || n > w.Buffered() {
		panic("resp: Truncate beyond the buffered bytes")
	}
	w.buf = w.buf[:w.off+n]
}

// reset empties the buffer, dropping a huge one.
func (w *Writer) reset() {
	if cap(w.buf) > 1<<20 {
		w.buf = make([]byte, 0, 4096)
	}
	w.buf, w.off = w.buf[:0], 0
}

// Simple writes a simple string (+OK).
func (w *Writer) Simple(s string) {
	w.buf = append(append(append(w.buf, '+'), s...), '\r', '\n')
}

// Error writes an error reply; msg starts with its code (ERR, EXECABORT...).
// Line breaks in msg are replaced, which would break the framing.
func (w *Writer) Error(msg string) {
	if w.OnError != nil {
		w.OnError(msg)
	}
	w.buf = append(w.buf, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.buf = append(w.buf, c)
	}
	w.buf = append(w.buf, '\r', '\n')
}

// Int writes an integer reply.
func (w *Writer) Int(n int64) {
	w.buf = append(strconv.AppendInt(append(w.buf, ':'), n, 10), '\r', '\n')
}

// Bulk writes a bulk string.
func (w *Writer) Bulk(b []byte) {
	w.buf = append(strconv.AppendInt(append(w.buf, '$'), int64(len(b)), 10), '\r', '\n')
	w.buf = append(append(w.buf, b...), '\r', '\n')
}

// BulkString writes a bulk string.
func (w *Writer) BulkString(s string) {
	w.buf = append(strconv.AppendInt(append(w.buf, '$'), int64(len(s)), 10), '\r', '\n')
	w.buf = append(append(w.buf, s...), '\r', '\n')
}

// Null writes Redis's "no value": a null bulk string ($-1), or RESP3's null (_).
func (w *Writer) Null() {
	if w.resp3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "$-1\r\n"...)
}

// NullArray writes a null array (*-1), or RESP3's null: an EXEC whose
// WATCH failed.
func (w *Writer) NullArray() {
	if w.resp3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// Set writes the header of a set of n elements, which follow: a RESP3
// set (~), or in RESP2 an array.
func (w *Writer) Set(n int) {
	if w.resp3 {
		w.buf = append(strconv.AppendInt(append(w.buf, '~'), int64(n), 10), '\r', '\n')
		return
	}
	w.Array(n)
}

// Map writes the header of a map of n key-value pairs, which follow: a
// RESP3 map (%), or in RESP2 an array of 2n elements.
func (w *Writer) Map(n int) {
	if w.resp3 {
		w.buf = append(strconv.AppendInt(append(w.buf, '%'), int64(n), 10), '\r', '\n')
		return
	}
	w.Array(2 * n)
}

// Array writes the header of an array of n elements, which follow.
func (w *Writer) Array(n int) {
	w.buf = append(strconv.AppendInt(append(w.buf, '*'), int64(n), 10), '\r', '\n')
}

// Raw appends an already encoded reply.
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }
