// Helpers shared by the specification tests (bank_test.go, txn_test.go,
// errors_test.go, gc_test.go, batch_test.go, timeout_test.go,
// upgrade_test.go). They add no semantics of their own: each one wraps an
// engine call and fails the test on an unexpected outcome.
package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// specKey formats a key from a prefix and an index.
func specKey(prefix string, i int) []byte { return fmt.Appendf(nil, "%s-%04d", prefix, i) }

// specPattern returns n bytes that differ from any other (n, seed) pattern.
func specPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(n)
	}
	return b
}

func specSet(tb testing.TB, e *Engine, key, value []byte) {
	tb.Helper()
	if err := e.Set(key, value); err != nil {
		tb.Fatalf("Set(%q): %v", key, err)
	}
}

// specWant checks that an autocommit Get of key returns want.
func specWant(tb testing.TB, e *Engine, key, want []byte) {
	tb.Helper()
	got, err := e.Get(key)
	if err != nil {
		tb.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		tb.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// specAbsent checks that key has no value.
func specAbsent(tb testing.TB, e *Engine, key []byte) {
	tb.Helper()
	got, err := e.Get(key)
	if !errors.Is(err, ErrNotFound) {
		tb.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// specIs fails unless err wraps want.
func specIs(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// specInt decodes a decimal value.
func specInt(tb testing.TB, key, v []byte) int64 {
	tb.Helper()
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		tb.Fatalf("value of %q is %q, not a number", key, v)
	}
	return n
}

func specItoa(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// specBudget bounds a loop by iterations and wall time, whichever ends first.
type specBudget struct {
	n        int
	deadline time.Time
}

func newSpecBudget(n int, d time.Duration) specBudget {
	return specBudget{n: n, deadline: time.Now().Add(d)}
}

// ok reports whether iteration i may run.
func (b specBudget) ok(i int) bool { return i < b.n && time.Now().Before(b.deadline) }
