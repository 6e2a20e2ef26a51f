package engine

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
)

// Incr is one autocommit transaction: it adds to a decimal value, refuses
// what is not one and a sum out of range with nothing applied, and
// concurrent increments lose nothing.
func TestIncr(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	mustSet := func(k, v string) {
		t.Helper()
		if err := e.Set([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	mustSet("ten", "10")
	mustSet("text", "abc")
	mustSet("max", "9223372036854775807")
	mustSet("zeros", "007")
	for _, tc := range []struct {
		key   string
		delta int64
		want  int64
		err   error
		value string // the stored value after
	}{
		{"absent", 3, 3, nil, "3"},
		{"ten", 5, 15, nil, "15"},
		{"ten", -20, -5, nil, "-5"},
		{"text", 1, 0, ErrNotInteger, "abc"},
		{"zeros", 1, 0, ErrNotInteger, "007"},
		{"max", 1, 0, ErrOverflow, "9223372036854775807"},
		{"max", math.MinInt64, -1, nil, "-1"},
	} {
		got, err := e.Incr([]byte(tc.key), tc.delta)
		if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
			t.Errorf("Incr(%s, %d) = %d, %v; want %d, %v", tc.key, tc.delta, got, err, tc.want, tc.err)
		}
		if v, _ := e.Get([]byte(tc.key)); string(v) != tc.value {
			t.Errorf("after Incr(%s, %d): %q, want %q", tc.key, tc.delta, v, tc.value)
		}
	}
	if err := e.Exec([]Op{{Kind: OpIncr, Key: []byte("ten"), Delta: 1}}); err == nil || !strings.Contains(err.Error(), "autocommit only") {
		t.Errorf("OpIncr in a transaction: %v", err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if _, err := e.Incr([]byte("shared"), 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := e.Get([]byte("shared")); string(v) != "2000" {
		t.Errorf("4 × 500 concurrent increments: %q", v)
	}
}
