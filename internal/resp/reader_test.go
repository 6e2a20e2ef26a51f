package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

var testLimits = Limits{MaxArgs: 8, MaxBulk: 32, MaxSkip: 100}

func readAll(t testing.TB, input string) ([][]string, error) {
	r := NewReader(strings.NewReader(input), 64, testLimits)
	var cmds [][]string
	for {
		args, err := r.ReadCommand(nil)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return cmds, err
		}
		var cmd []string
		for _, a := range args {
			cmd = append(cmd, string(a))
		}
		cmds = append(cmds, cmd)
	}
}

func TestReaderAcceptsWhatClientsSend(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  [][]string
	}{
		{"array", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [][]string{{"GET", "k"}}},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [][]string{{"PING"}, {"ECHO", ""}}},
		{"binary value", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n", [][]string{{"SET", "k", "a\r\nb"}}},
		{"inline", "SET k  v\r\nPING\n", [][]string{{"SET", "k", "v"}, {"PING"}}},
		{"empty lines and *0 are skipped", "\r\n*0\r\n*-1\r\nPING\r\n", [][]string{{"PING"}}},
		{"longest bulk", "*1\r\n$32\r\n" + strings.Repeat("x", 32) + "\r\n", [][]string{{strings.Repeat("x", 32)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.input)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if strings.Join(got[i], "|") != strings.Join(tt.want[i], "|") {
					t.Fatalf("command %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReaderRefusesMalformedInput(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"bulk above the skip limit, refused before its data", "*1\r\n$101\r\n"},
		{"huge bulk length", "*1\r\n$1099511627776\r\n"},
		{"negative bulk length", "*2\r\n$3\r\nGET\r\n$-5\r\n"},
		{"too many arguments", "*9\r\n"},
		{"huge multibulk length", "*99999999999\r\n"},
		{"not a number", "*x\r\n"},
		{"missing $", "*1\r\n:3\r\n"},
		{"bulk not terminated", "*1\r\n$2\r\nabcd\r\n"},
		{"line longer than the buffer", strings.Repeat("a", 100) + "\r\n"},
		{"inline with too many words", "a b c d e f g h i\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, tt.input)
			var perr *ProtocolError
			if !errors.As(err, &perr) {
				t.Fatalf("error %v, want a ProtocolError", err)
			}
		})
	}
}

func TestReaderSkipsAnArgumentTooLongAndStaysInStep(t *testing.T) {
	input := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$40\r\n" + strings.Repeat("v", 40) + "\r\n*1\r\n$4\r\nPING\r\n"
	r := NewReader(strings.NewReader(input), 64, testLimits)
	args, err := r.ReadCommand(nil)
	var tooLong *ArgTooLongError
	if !errors.As(err, &tooLong) || tooLong.Len != 40 {
		t.Fatalf("error %v, want ArgTooLongError of 40 bytes", err)
	}
	if len(args) != 2 {
		t.Fatalf("kept %d arguments, want the 2 short ones", len(args))
	}
	if args, err := r.ReadCommand(nil); err != nil || string(args[0]) != "PING" {
		t.Fatalf("next command %q %v, want PING", args, err)
	}
}

func TestReaderTruncatedCommandIsUnexpectedEOF(t *testing.T) {
	for _, input := range []string{"*2\r\n$3\r\nGET\r\n", "*1\r\n$3\r\nGE", "PIN"} {
		if _, err := readAll(t, input); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: error %v, want io.ErrUnexpectedEOF", input, err)
		}
	}
}

// TestArgumentsSurviveUntilReset: arguments of earlier commands stay
// intact while later ones are read (the arena may grow meanwhile).
func TestArgumentsSurviveUntilReset(t *testing.T) {
	var in bytes.Buffer
	for i := 0; i < 200; i++ {
		in.WriteString("*2\r\n$3\r\nSET\r\n$30\r\n" + strings.Repeat(string(rune('a'+i%26)), 30) + "\r\n")
	}
	r := NewReader(&in, 64, testLimits)
	var all [][][]byte
	for i := 0; i < 200; i++ {
		args, err := r.ReadCommand(nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, args)
	}
	for i, args := range all {
		if want := strings.Repeat(string(rune('a'+i%26)), 30); string(args[1]) != want {
			t.Fatalf("command %d's argument changed to %q", i, args[1])
		}
	}
}

func TestWriterEncodesReplies(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.Simple("OK")
	w.Error("ERR bad\r\nline")
	w.Int(-7)
	w.Bulk([]byte("v"))
	w.Null()
	w.NullArray()
	w.Array(2)
	w.BulkString("")
	w.Int(0)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "+OK\r\n-ERR bad  line\r\n:-7\r\n$1\r\nv\r\n$-1\r\n*-1\r\n*2\r\n$0\r\n\r\n:0\r\n"
	if out.String() != want {
		t.Fatalf("wrote %q, want %q", out.String(), want)
	}
}

// FuzzReader: any input ends in commands, io.EOF, io.ErrUnexpectedEOF or a
// ProtocolError; never a panic, never an argument above the limit, never
// more arguments than the limit.
func FuzzReader(f *testing.F) {
	for _, seed := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "*1\r\n$-1\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"*1\r\n$33\r\n", "\r\n\n*0\r\n", "*2\r\n$1\r\na\r\n:1\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 64, testLimits)
		for i := 0; i < 1000; i++ {
			args, err := r.ReadCommand(nil)
			var tooLong *ArgTooLongError
			if errors.As(err, &tooLong) {
				continue
			}
			if err != nil {
				var perr *ProtocolError
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &perr) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(args) == 0 || len(args) > testLimits.MaxArgs {
				t.Fatalf("%d arguments", len(args))
			}
			for _, a := range args {
				if len(a) > testLimits.MaxBulk && len(a) > 64 {
					t.Fatalf("argument of %d bytes", len(a))
				}
			}
			if i%3 == 0 {
				r.Reset()
			}
		}
	})
}
