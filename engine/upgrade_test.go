// Specification: Upgrade swaps a new build of the chain's programs in over
// the same maps. Every key, version, lock and open transaction survives:
// data stays readable, an open read-write transaction holding a lock still
// commits (and its lock still excludes others until then), an open
// read-only transaction keeps its snapshot, the kernel really runs the new
// build (it reports the build id in every reply), and runs in flight while
// the swap happens all complete.
package engine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// kernelBuild runs one autocommit GET and returns the build id the chain's
// entry program reported in the reply (struct bpfdb_req.build).
func kernelBuild(tb testing.TB, e *Engine) uint32 {
	tb.Helper()
	s, err := e.acquire()
	if err != nil {
		tb.Fatal(err)
	}
	defer e.release(s)
	s.encode(0, uint8(OpGet), 0, []byte("build probe"), nil)
	s.hdr.Mode = uint32(chainBpfdbModeBPFDB_MODE_AUTOCOMMIT)
	s.hdr.Nops = 1
	s.hdr.Build = 0
	if err := e.run(s); err != nil {
		tb.Fatal(err)
	}
	return s.hdr.Build
}

func TestUpgrade(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 512, TxnTimeout: -1})
	if got := kernelBuild(t, e); got != 1 || e.Build() != 1 {
		t.Fatalf("before Upgrade: kernel build %d, Build() %d; want 1", got, e.Build())
	}
	const n = 100
	for i := 0; i < n; i++ {
		specSet(t, e, specKey("k", i), specPattern(i*10, byte(i)))
	}
	specSet(t, e, []byte("locked"), []byte("before"))
	specSet(t, e, []byte("snap"), []byte("s0"))

	holder, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Abort()
	if err := holder.Set([]byte("locked"), []byte("by holder")); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Get(specKey("k", 0)); err != nil {
		t.Fatal(err)
	}
	reader, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Abort()
	if v, err := reader.Get([]byte("snap")); err != nil || string(v) != "s0" {
		t.Fatalf("reader: %q, %v", v, err)
	}
	specSet(t, e, []byte("snap"), []byte("s1"))

	if err := e.Upgrade(2); err != nil {
		t.Fatalf("Upgrade(2): %v", err)
	}
	if e.Build() != 2 {
		t.Fatalf("Build() = %d after Upgrade(2)", e.Build())
	}
	if got := kernelBuild(t, e); got != 2 {
		t.Fatalf("the kernel reports build %d after Upgrade(2)", got)
	}

	// Data survived.
	for i := 0; i < n; i++ {
		specWant(t, e, specKey("k", i), specPattern(i*10, byte(i)))
	}
	// The lock survived: others still conflict, readers see the old value.
	specIs(t, "Set of a key locked before the upgrade", e.Set([]byte("locked"), []byte("other")), ErrConflict)
	specWant(t, e, []byte("locked"), []byte("before"))
	// The snapshot survived.
	if v, err := reader.Get([]byte("snap")); err != nil || string(v) != "s0" {
		t.Fatalf("reader after the upgrade: %q, %v; want s0", v, err)
	}
	// The open transaction continues and commits.
	if v, err := holder.Get([]byte("locked")); err != nil || string(v) != "by holder" {
		t.Fatalf("holder reads its own write after the upgrade: %q, %v", v, err)
	}
	if err := holder.Set(specKey("k", 1), []byte("holder 2")); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(); err != nil {
		t.Fatalf("Commit of a transaction begun before the upgrade: %v", err)
	}
	specWant(t, e, []byte("locked"), []byte("by holder"))
	specWant(t, e, specKey("k", 1), []byte("holder 2"))
	if err := reader.Commit(); err != nil {
		t.Fatal(err)
	}
	// New writes and transactions work.
	specSet(t, e, []byte("locked"), []byte("after"))
	specSet(t, e, []byte("new"), []byte("key"))
	if err := e.Exec([]Op{{Kind: OpSet, Key: []byte("a"), Value: []byte("1")}, {Kind: OpDelete, Key: specKey("k", 2)}}); err != nil {
		t.Fatal(err)
	}
	specWant(t, e, []byte("a"), []byte("1"))
	specAbsent(t, e, specKey("k", 2))

	// Upgrading under load: every run completes on one build or the other.
	var (
		wg   sync.WaitGroup
		stop atomic.Bool
		ops  atomic.Int64
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := specKey("load", w)
			for i := 0; i < 100000 && !stop.Load(); i++ {
				v := specItoa(int64(i))
				var err error
				if w%2 == 0 {
					err = e.Set(key, v)
				} else {
					err = e.Exec([]Op{{Kind: OpSet, Key: key, Value: v}, {Kind: OpGet, Key: key}})
				}
				if err != nil {
					t.Errorf("writer %d during upgrades: %v", w, err)
					return
				}
				got, err := e.Get(key)
				if err != nil || string(got) != string(v) {
					t.Errorf("writer %d during upgrades: Get = %q, %v; want %q", w, got, err, v)
					return
				}
				ops.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	for b := uint32(3); b <= 6 && time.Now().Before(deadline); b++ {
		time.Sleep(20 * time.Millisecond)
		if err := e.Upgrade(b); err != nil {
			t.Errorf("Upgrade(%d) under load: %v", b, err)
			break
		}
		if got := kernelBuild(t, e); got != b {
			t.Errorf("kernel build %d after Upgrade(%d)", got, b)
		}
	}
	time.Sleep(20 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if ops.Load() == 0 {
		t.Fatal("no operation completed during the upgrades")
	}
	for i := 3; i < n; i++ {
		specWant(t, e, specKey("k", i), specPattern(i*10, byte(i)))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	specIs(t, "Upgrade after Close", e.Upgrade(9), ErrClosed)
	if _, err := e.Get([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatal(fmt.Errorf("Get after Close: %w", err))
	}
}
