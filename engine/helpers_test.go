package engine

import (
	"errors"
	"os"
	"testing"
)

// openTest opens a small store for a test. Without the privileges to load
// BPF programs it skips, unless BPFDB_REQUIRE_BPF=1 (as in CI), where it fails.
func openTest(tb testing.TB, opts Options) *Engine {
	tb.Helper()
	if opts.MaxKeys == 0 {
		opts.MaxKeys = 4096
	}
	e, err := Open(opts)
	if errors.Is(err, ErrNotPermitted) && os.Getenv("BPFDB_REQUIRE_BPF") != "1" {
		tb.Skipf("skipping: %v", err)
	}
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

// smallStore is the options of a store of keys keys and a value store of
// pages pages.
func smallStore(keys int, pages int64) Options {
	return Options{MaxKeys: keys, MaxMemory: int64(keys)*indexBytesPerKey + pages*int64(PageSize)}
}
