package resp

// ScanStatus says what Scan found at the start of a buffer.
type ScanStatus uint8

const (
	// ScanComplete: a whole command, returned.
	ScanComplete ScanStatus = iota
	// ScanIncomplete: the start of a command Scan parses; more bytes are needed.
	ScanIncomplete
	// ScanOther: anything else (an inline command, an empty array, a
	// limit exceeded, malformed input): read it with a Reader, which knows
	// every rule and error.
	ScanOther
)

// maxDigits bounds a length header: no limit needs more.
const maxDigits = 10

// Scan parses, in place and without blocking, the command at the start of
// buf if it has the shape clients send: a RESP array of 1 to lim.MaxArgs
// bulk strings of at most lim.MaxBulk bytes each, every line ending in
// CRLF. The arguments are appended to args and alias buf; n is the
// command's length in buf. For every command it returns as complete, a
// Reader returns the same arguments (FuzzScan checks it).
func Scan(buf []byte, args [][]byte, lim Limits) (_ [][]byte, n int, _ ScanStatus) {
	if len(buf) == 0 {
		return args, 0, ScanIncomplete
	}
	if buf[0] != '*' {
		return args, 0, ScanOther
	}
	count, pos, st := scanLength(buf, 1)
	if st != ScanComplete {
		return args, 0, st
	}
	if count == 0 || count > lim.MaxArgs {
		return args, 0, ScanOther
	}
	start := len(args)
	for range count {
		if pos >= len(buf) {
			return args[:start], 0, ScanIncomplete
		}
		if buf[pos] != '$' {
			return args[:start], 0, ScanOther
		}
		size, at, st := scanLength(buf, pos+1)
		if st != ScanComplete {
			return args[:start], 0, st
		}
		if size > lim.MaxBulk {
			return args[:start], 0, ScanOther
		}
		end := at + size
		if end+2 > len(buf) {
			return args[:start], 0, ScanIncomplete
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return args[:start], 0, ScanOther
		}
		args = append(args, buf[at:end:end])
		pos = end + 2
	}
	return args, pos, ScanComplete
}

// scanLength parses the decimal digits at buf[pos:] up to a CRLF and
// returns the number and the position after the CRLF.
func scanLength(buf []byte, pos int) (int, int, ScanStatus) {
	n, digits := 0, 0
	for ; pos < len(buf); pos++ {
		c := buf[pos]
		if c < '0' || c > '9' {
			break
		}
		if digits++; digits > maxDigits {
			return 0, 0, ScanOther
		}
		n = 10*n + int(c-'0')
	}
	switch {
	case pos == len(buf):
		return 0, 0, ScanIncomplete
	case digits == 0 || buf[pos] != '\r':
		return 0, 0, ScanOther
	case pos+1 == len(buf):
		return 0, 0, ScanIncomplete
	case buf[pos+1] != '\n':
		return 0, 0, ScanOther
	}
	return n, pos + 2, ScanComplete
}
