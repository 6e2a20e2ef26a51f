package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestScan(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // for ScanComplete
		n     int
		st    ScanStatus
	}{
		{"get", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", []string{"GET", "k"}, 20, ScanComplete},
		{"pipelined: only the first", "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", []string{"PING"}, 14, ScanComplete},
		{"binary value", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n", []string{"SET", "k", "a\r\nb"}, 30, ScanComplete},
		{"empty argument", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", []string{"ECHO", ""}, 20, ScanComplete},
		{"longest bulk", "*1\r\n$32\r\n" + strings.Repeat("x", 32) + "\r\n", []string{strings.Repeat("x", 32)}, 43, ScanComplete},
		{"nothing", "", nil, 0, ScanIncomplete},
		{"header cut", "*2", nil, 0, ScanIncomplete},
		{"header cut after CR", "*2\r", nil, 0, ScanIncomplete},
		{"bulk header cut", "*2\r\n$3\r\nGET\r\n$1", nil, 0, ScanIncomplete},
		{"bulk cut", "*2\r\n$3\r\nGET\r\n$1\r\nk", nil, 0, ScanIncomplete},
		{"bulk CRLF cut", "*2\r\n$3\r\nGET\r\n$1\r\nk\r", nil, 0, ScanIncomplete},
		{"inline", "PING\r\n", nil, 0, ScanOther},
		{"empty array", "*0\r\n", nil, 0, ScanOther},
		{"null array", "*-1\r\n", nil, 0, ScanOther},
		{"too many arguments", "*9\r\n", nil, 0, ScanOther},
		{"argument too long", "*1\r\n$33\r\n", nil, 0, ScanOther},
		{"not a bulk", "*2\r\n$3\r\nGET\r\n:1\r\n", nil, 0, ScanOther},
		{"bare LF", "*1\n$4\r\nPING\r\n", nil, 0, ScanOther},
		{"bulk not terminated", "*1\r\n$4\r\nPINGxx", nil, 0, ScanOther},
		{"header too long", "*00000000001\r\n", nil, 0, ScanOther},
		{"sign", "*+1\r\n", nil, 0, ScanOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, n, st := Scan([]byte(tt.input), nil, testLimits)
			if st != tt.st || n != tt.n {
				t.Fatalf("Scan = n %d status %d, want n %d status %d", n, st, tt.n, tt.st)
			}
			if st != ScanComplete {
				if len(args) != 0 {
					t.Fatalf("%d arguments returned with status %d", len(args), st)
				}
				return
			}
			if got := strings.Join(toStrings(args), "|"); got != strings.Join(tt.want, "|") {
				t.Fatalf("args %q, want %q", got, tt.want)
			}
		})
	}
}

func toStrings(args [][]byte) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}

// FuzzScan checks Scan against the Reader: a command Scan returns whole is
// the Reader's first command, of the same length; a command it finds
// incomplete is one the Reader cannot finish either.
func FuzzScan(f *testing.F) {
	for _, seed := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n",
		"*1\r\n$33\r\n", "*2\r\n$3\r\nGET\r\n$1\r\nk", "PING\r\n", "*0\r\n", "*1\r\n$0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		prefix := [][]byte{[]byte("kept")}
		args, n, st := Scan(data, prefix, testLimits)
		if len(args) > 0 && &args[0][0] != &prefix[0][0] {
			t.Fatal("the arguments passed in were not kept")
		}
		args = args[1:]
		r := NewReader(bytes.NewReader(data), 64, testLimits)
		switch st {
		case ScanComplete:
			if n <= 0 || n > len(data) || len(args) == 0 {
				t.Fatalf("complete with n %d of %d and %d arguments", n, len(data), len(args))
			}
			want, err := r.ReadCommand(nil)
			if err != nil {
				t.Fatalf("Scan found a command, the Reader %v", err)
			}
			if strings.Join(toStrings(args), "\x00") != strings.Join(toStrings(want), "\x00") {
				t.Fatalf("Scan %q, Reader %q", args, want)
			}
			if consumed := len(data) - r.Buffered(); len(data) <= 64 && consumed != n {
				t.Fatalf("Scan used %d bytes, the Reader %d", n, consumed)
			}
			for _, a := range args {
				if cap(a) != len(a) {
					t.Fatal("an argument's capacity reaches past it")
				}
			}
		case ScanIncomplete:
			if n != 0 || len(args) != 0 {
				t.Fatalf("incomplete with n %d and %d arguments", n, len(args))
			}
			_, err := r.ReadCommand(nil)
			var perr *ProtocolError
			if err == nil && len(data) <= 64 {
				t.Fatalf("Scan found %q incomplete, the Reader read a command", data)
			}
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &perr) && err != io.EOF {
				var tooLong *ArgTooLongError
				if !errors.As(err, &tooLong) {
					t.Fatalf("Reader: %v", err)
				}
			}
		case ScanOther:
			if n != 0 || len(args) != 0 {
				t.Fatalf("other with n %d and %d arguments", n, len(args))
			}
		}
	})
}

// A caller that writes the buffer itself gets what is left after partial
// writes, and more replies appended meanwhile follow it.
func TestWriterPartialWrites(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.Simple("OK")
	w.Int(42)
	if got := string(w.Pending()); got != "+OK\r\n:42\r\n" {
		t.Fatalf("Pending = %q", got)
	}
	w.Consumed(3)
	w.Null()
	if got := string(w.Pending()); got != "\r\n:42\r\n$-1\r\n" || w.Buffered() != len(got) {
		t.Fatalf("after Consumed(3): Pending %q, Buffered %d", got, w.Buffered())
	}
	w.Consumed(w.Buffered())
	if w.Buffered() != 0 || len(w.Pending()) != 0 {
		t.Fatalf("after consuming everything: Buffered %d", w.Buffered())
	}
	w.Simple("PONG")
	w.Consumed(1)
	if err := w.Flush(); err != nil || out.String() != "PONG\r\n" {
		t.Fatalf("Flush after a partial write wrote %q (%v)", out.String(), err)
	}
}

// Truncate counts from the first unsent byte, after a partial write
// too, and refuses to keep more than is buffered.
func TestWriterTruncate(t *testing.T) {
	w := NewWriter(io.Discard)
	w.Simple("OK")
	w.Consumed(3) // "\r\n" is left
	w.Int(7)
	w.Truncate(2)
	w.Simple("X")
	if got := string(w.Pending()); got != "\r\n+X\r\n" {
		t.Fatalf("after Truncate(2): Pending %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Truncate beyond the buffered bytes did not panic")
		}
	}()
	w.Truncate(w.Buffered() + 1)
}

func TestReaderHasCommand(t *testing.T) {
	tests := []struct {
		buffered string
		want     bool
	}{
		{"", false},
		{"\r\n\r\n*0\r\n*-1\r\n", false},
		{"*2\r\n$3\r\nGET\r\n$1\r\n", false},
		{"\r\n*1\r\n$4\r\nPING\r\n", true},
		{"PING", false},
		{"PING\r\n", true},
		{"*1\r\n$99\r\n", true}, // refused (too long) without waiting for it
		{"*x\r\n", true},        // a protocol error
	}
	for _, tt := range tests {
		r := NewReader(strings.NewReader(tt.buffered), 64, testLimits)
		r.br.Peek(len(tt.buffered)) // fill the buffer
		if got := r.HasCommand(); got != tt.want {
			t.Errorf("HasCommand with %q buffered = %v, want %v", tt.buffered, got, tt.want)
		}
	}
}
