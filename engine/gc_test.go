// Specification: multi-version garbage collection and value storage.
//
//   - TestGCLongLivedReader: a read-only transaction keeps reading its
//     snapshot while the key is overwritten; the versions it pins fill up
//     (ErrVersionsFull, nothing applied) and once it commits, GC reclaims
//     them (Stats.GCReclaimed grows) and writes succeed again. Two readers
//     at different snapshots each keep their own version.
//   - TestGCOverwritesWithoutReader: without readers, overwriting one key
//     thousands of times (every size class, deletes, multi-write and aborted
//     transactions) never fails, even in the smallest value store: the
//     cooperative GC reclaims every version it can and no slot leaks.
//   - TestCapacityIsReclaimed: capacity freed by the data is usable again:
//     deleted values free their slots, and a few hot keys never fill a
//     store that holds many more values than they have. Two more subtests,
//     deleted keys free their index entries and reads do not fill the index,
//     skip: docs/DESIGN.md documents both as known limitations.
package engine

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestGCLongLivedReader(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, TxnTimeout: -1})
	k := []byte("k")
	specSet(t, e, k, []byte("v0"))
	st0, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	readerWants := func(r *Txn, want string) {
		t.Helper()
		if v, err := r.Get(k); err != nil || string(v) != want {
			t.Fatalf("reader Get = %q, %v; want %q", v, err, want)
		}
	}
	i := 0
	set := func() (string, error) {
		i++
		v := fmt.Sprintf("v%d", i)
		return v, e.Set(k, []byte(v))
	}

	// One long reader pins only the version it sees: GC is precise, so
	// overwrites go on indefinitely around it.
	r0, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer r0.Abort()
	wantActive(t, e, 1)
	for n := 0; n < 4*MaxVersions; n++ {
		if _, err := set(); err != nil {
			t.Fatalf("overwrite %d under one reader: %v", n, err)
		}
	}
	readerWants(r0, "v0")
	st1, _ := e.Stats()
	if st1.GCReclaimed <= st0.GCReclaimed {
		t.Fatalf("GCReclaimed did not grow: %d -> %d", st0.GCReclaimed, st1.GCReclaimed)
	}

	// Readers that each see a different version pin them all: once every
	// slot is seen by someone, a write fails whole with ErrVersionsFull.
	readers := map[*Txn]string{r0: "v0"}
	last := fmt.Sprintf("v%d", i)
	for len(readers) < MaxVersions {
		r, err := e.BeginReadOnly()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Abort()
		readers[r] = last
		readerWants(r, last)
		if len(readers) == MaxVersions {
			break
		}
		if last, err = set(); err != nil {
			t.Fatalf("overwrite with %d readers: %v", len(readers), err)
		}
	}
	_, err = set()
	specIs(t, "Set with every version pinned", err, ErrVersionsFull)
	specMentions(t, err, fmt.Sprint(MaxVersions))
	specWant(t, e, k, []byte(last))
	for r, want := range readers {
		readerWants(r, want)
	}

	// The oldest reader leaves: what only it pinned can go.
	if err := r0.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := set(); err != nil {
		t.Fatalf("Set after the oldest reader committed: %v", err)
	}
	for r, want := range readers {
		if r != r0 {
			readerWants(r, want)
		}
	}
	wantActive(t, e, uint64(len(readers)-1))

	// Once no reader is left, GC takes visible as its mark without
	// scanning the snapshot slots (bpf/storage/version.h, low_water), and
	// overwrites never run out of versions.
	for r := range readers {
		if r != r0 {
			r.Abort()
		}
	}
	wantActive(t, e, 0)
	for n := 0; n < 4*MaxVersions; n++ {
		if _, err := set(); err != nil {
			t.Fatalf("overwrite %d with no reader left: %v", n, err)
		}
	}
}

// wantActive checks the count of registered snapshots that lets GC skip
// its scan of the snapshot slots (control.snap_active).
func wantActive(t *testing.T, e *Engine, n uint64) {
	t.Helper()
	if got := atomic.LoadUint64(&e.ctl.SnapActive); got != n {
		t.Fatalf("control.snap_active = %d, want %d", got, n)
	}
}

func TestGCOverwritesWithoutReader(t *testing.T) {
	e := openTest(t, smallStore(64, MinValuePages))
	k := []byte("hot")
	sizes := []int{1, 40, 100, 200, 400, 1000, 0, 32, 64, 128, 256, 512, 1024}
	st0, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	budget := newSpecBudget(3000, 8*time.Second)
	n := 0
	for ; budget.ok(n); n++ {
		size := sizes[n%len(sizes)]
		var err error
		switch {
		case n%11 == 10:
			err = e.Delete(k)
		case n%5 == 4: // a transaction that rewrites its own buffered value
			err = e.Exec([]Op{
				{Kind: OpSet, Key: k, Value: specPattern(1024, byte(n))},
				{Kind: OpSet, Key: k, Value: specPattern(size, byte(n))},
			})
		case n%7 == 6: // an aborted transaction frees what it buffered
			var tx *Txn
			if tx, err = e.Begin(); err == nil {
				err = errors.Join(tx.Set(k, specPattern(513, 1)), tx.Abort())
			}
			if err == nil {
				err = e.Set(k, specPattern(size, byte(n)))
			}
		default:
			err = e.Set(k, specPattern(size, byte(n)))
		}
		if err != nil {
			t.Fatalf("write %d (%d bytes): %v", n, size, err)
		}
		if n%11 == 10 {
			specAbsent(t, e, k)
		} else if n%97 == 0 {
			specWant(t, e, k, specPattern(size, byte(n)))
		}
	}
	st1, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st1.GCReclaimed-st0.GCReclaimed < uint64(n-2*MaxVersions) {
		t.Fatalf("%d writes of one key, but GC reclaimed only %d versions", n, st1.GCReclaimed-st0.GCReclaimed)
	}
	// What the hot key no longer needs is free: other keys take values of
	// every class (one per class fits whatever the hot key keeps).
	for c := 0; c < SlabClasses; c++ {
		specSet(t, e, specKey("other", c), specPattern(SlabSize(c), 9))
	}
	u, err := e.MemoryUse()
	if err != nil {
		t.Fatal(err)
	}
	var used uint64
	for _, s := range u.SlotsUsed {
		used += s
	}
	if used > uint64(MaxVersions+SlabClasses) {
		t.Fatalf("%d slots in use for one key's versions and %d others: slots leak", used, SlabClasses)
	}
	t.Logf("%d writes, %d versions reclaimed, %d of %d pages carved", n, st1.GCReclaimed-st0.GCReclaimed, u.PagesUsed, u.Pages)
}

// specEventually retries f on ErrStoreFull for up to a second (GC may be
// lazy), and fails the test with its last error.
func specEventually(tb testing.TB, what string, f func() error) {
	tb.Helper()
	var err error
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err = f(); err == nil || !errors.Is(err, ErrStoreFull) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

func TestCapacityIsReclaimed(t *testing.T) {
	t.Run("deleted values free their slots", func(t *testing.T) {
		const slots = int(MinValuePages) * 4096 / 128 // every page, carved by class 2
		e := openTest(t, smallStore(slots+64, MinValuePages))
		for i := 0; i < slots; i++ {
			specSet(t, e, specKey("a", i), specPattern(100, byte(i)))
		}
		for i := 0; i < slots; i++ {
			if err := e.Delete(specKey("a", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < slots; i++ {
			specEventually(t, fmt.Sprintf("store empty again: Set of new key %d of %d (class holds %d)", i+1, slots, slots),
				func() error { return e.Set(specKey("b", i), specPattern(100, byte(i))) })
		}
	})

	t.Run("deleted keys free their index entries", func(t *testing.T) {
		t.Skip("known limitation, docs/DESIGN.md (Storage): records are never deleted from the index; " +
			"index capacity is distinct keys ever touched")
		const maxKeys = 32
		e := openTest(t, Options{MaxKeys: maxKeys})
		for i := 0; i < maxKeys; i++ {
			specSet(t, e, specKey("a", i), []byte("v"))
		}
		for i := 0; i < maxKeys; i++ {
			if err := e.Delete(specKey("a", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < maxKeys; i++ {
			specEventually(t, fmt.Sprintf("store empty again: Set of new key %d of MaxKeys = %d", i+1, maxKeys),
				func() error { return e.Set(specKey("b", i), []byte("v")) })
		}
	})

	t.Run("reads do not fill the index", func(t *testing.T) {
		t.Skip("known limitation, docs/DESIGN.md (Storage): a read-write transaction that reads an " +
			"absent key creates a record to lock it, and records are never deleted")
		const maxKeys = 32
		e := openTest(t, Options{MaxKeys: maxKeys})
		for i := 0; i < 2*maxKeys; i++ {
			tx, err := e.Begin()
			if err != nil {
				t.Fatal(err)
			}
			_, err = tx.Get(specKey("absent", i))
			tx.Abort()
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("read-write txn Get of absent key %d (index empty, MaxKeys %d): %v, want ErrNotFound", i, maxKeys, err)
			}
		}
		for i := 0; i < maxKeys; i++ {
			specEventually(t, fmt.Sprintf("Set of key %d of MaxKeys = %d after reads of absent keys", i+1, maxKeys),
				func() error { return e.Set(specKey("k", i), []byte("v")) })
		}
	})

	t.Run("a few hot keys fit a larger slab", func(t *testing.T) {
		const slots, keys = int(MinValuePages) * 4096 / 32, 4
		e := openTest(t, smallStore(64, MinValuePages))
		budget := newSpecBudget(2000, 3*time.Second)
		for i := 0; budget.ok(i); i++ {
			specEventually(t, fmt.Sprintf("overwrite %d of %d keys (%d live values, class holds %d)", i, keys, keys, slots),
				func() error { return e.Set(specKey("hot", i%keys), specItoa(int64(i))) })
		}
	})
}
