package bench

import (
	"fmt"
	"strconv"
)

// RecordKey is the key of YCSB record i: "user" and 12 digits.
func RecordKey(i int) []byte { return fmt.Appendf(nil, "user%012d", i) }

// AccountKey is the key of transfer account i: "acct" and 12 digits.
func AccountKey(i int) []byte { return fmt.Appendf(nil, "acct%012d", i) }

// FormatBalance encodes a balance as its decimal digits, the form every
// target stores (so redis-cli and psql show it plainly).
func FormatBalance(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// ParseBalance decodes a balance written by FormatBalance.
func ParseBalance(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("balance %q is not a number", b)
	}
	return n, nil
}
