package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"testing"
)

// The calls a server builds on: versions for WATCH, Submit + WaitDurable for
// group commit, Txn.Run and Txn.CommitWith for transactions in two runs,
// Scan for DBSIZE and FLUSHALL, and the run-latency histogram for metrics.

func TestVersionGrowsWithEveryWrite(t *testing.T) {
	e := openTest(t, Options{})
	k := []byte("watched")
	specSet(t, e, k, []byte("a"))
	ops := []Op{{Kind: OpGet, Key: k}}
	if err := e.Batch(ops); err != nil || ops[0].Err != nil {
		t.Fatalf("Get: %v %v", err, ops[0].Err)
	}
	v1 := ops[0].Version
	if v1 == 0 {
		t.Fatal("a Get of a committed value reported Version 0")
	}
	// The same value again is still a new version.
	specSet(t, e, k, []byte("a"))
	e.Batch(ops)
	if ops[0].Version <= v1 {
		t.Fatalf("Version after a second Set = %d, want > %d", ops[0].Version, v1)
	}
	// A locked read in a transaction reports the same version as a snapshot read.
	v2 := ops[0].Version
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	read := []Op{{Kind: OpGet, Key: k}, {Kind: OpGet, Key: []byte("absent")}}
	if err := tx.Run(read); err != nil {
		t.Fatal(err)
	}
	if read[0].Version != v2 || read[1].Version != 0 || !errors.Is(read[1].Err, ErrNotFound) {
		t.Fatalf("Txn.Run reads: %+v %+v, want version %d then not found", read[0], read[1], v2)
	}
	// Its own uncommitted write reads as version 0.
	own := []Op{{Kind: OpSet, Key: k, Value: []byte("b")}, {Kind: OpGet, Key: k}}
	if err := tx.Run(own); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(own[1].Value, []byte("b")) || own[1].Version != 0 {
		t.Fatalf("own write read back as %q version %d", own[1].Value, own[1].Version)
	}
	tx.Abort()
}

func TestCommitWithAppliesAtomically(t *testing.T) {
	e := openTest(t, Options{})
	specSet(t, e, []byte("a"), []byte("10"))
	tx, _ := e.Begin()
	read := []Op{{Kind: OpGet, Key: []byte("a")}}
	if err := tx.Run(read); err != nil {
		t.Fatal(err)
	}
	if err := tx.CommitWith([]Op{
		{Kind: OpSet, Key: []byte("a"), Value: []byte("9")},
		{Kind: OpSet, Key: []byte("b"), Value: []byte("1")},
	}); err != nil {
		t.Fatal(err)
	}
	specWant(t, e, []byte("a"), []byte("9"))
	specWant(t, e, []byte("b"), []byte("1"))
	if err := tx.Commit(); !errors.Is(err, ErrTxnDone) {
		t.Fatalf("Commit after CommitWith = %v, want ErrTxnDone", err)
	}

	// A failing op aborts it all: the value too large applies nothing.
	tx, _ = e.Begin()
	err := tx.CommitWith([]Op{
		{Kind: OpSet, Key: []byte("a"), Value: []byte("0")},
		{Kind: OpSet, Key: []byte("c"), Value: make([]byte, DefaultMaxValueLen+1)},
	})
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("CommitWith with an oversized value = %v", err)
	}
	tx.Abort()
	specWant(t, e, []byte("a"), []byte("9"))
}

func TestSubmitThenWaitDurable(t *testing.T) {
	e := openTest(t, Options{Dir: t.TempDir()})
	ops := []Op{{Kind: OpSet, Key: []byte("k"), Value: []byte("v")}, {Kind: OpGet, Key: []byte("k")}}
	lsn, err := e.Submit(ops)
	if err != nil || ops[0].Err != nil || ops[1].Err != nil {
		t.Fatalf("Submit: %v %v %v", err, ops[0].Err, ops[1].Err)
	}
	if lsn == 0 {
		t.Fatal("Submit of a Set returned LSN 0")
	}
	if err := e.WaitDurable(lsn); err != nil {
		t.Fatal(err)
	}
	st, _ := e.Stats()
	if st.DurableLSN < lsn {
		t.Fatalf("after WaitDurable(%d) the durable LSN is %d", lsn, st.DurableLSN)
	}
	if lsn, _ := e.Submit([]Op{{Kind: OpGet, Key: []byte("k")}}); lsn != 0 {
		t.Fatalf("Submit of a Get returned LSN %d, want 0", lsn)
	}
}

func TestScanSeesOneSnapshot(t *testing.T) {
	e := openTest(t, Options{})
	want := map[string]string{}
	for i := range 300 {
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i)
		specSet(t, e, []byte(k), []byte(v))
		want[k] = v
	}
	e.Delete([]byte("k007"))
	delete(want, "k007")
	got := map[string]string{}
	if err := e.Scan(func(it *Item) bool { got[string(it.Key)] = string(it.Value); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Scan found %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("Scan: %s = %q, want %q", k, got[k], v)
		}
	}
	n := 0
	e.Scan(func(*Item) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("Scan stopped after %d keys, want 5", n)
	}
}

func TestRunLatencyHistogramCountsRuns(t *testing.T) {
	e := openTest(t, Options{})
	before, _ := e.Stats()
	for range 10 {
		e.Get([]byte("x"))
	}
	after, _ := e.Stats()
	var n uint64
	for i := range after.RunLatency {
		n += after.RunLatency[i] - before.RunLatency[i]
	}
	if n != 10 {
		t.Fatalf("histogram counted %d runs, want 10", n)
	}
	if after.RunLatencySum <= before.RunLatencySum {
		t.Fatal("the kernel-measured run time did not grow")
	}
	if !sort.SliceIsSorted(RunLatencyBounds[:], func(i, j int) bool { return RunLatencyBounds[i] < RunLatencyBounds[j] }) {
		t.Fatal("bounds not increasing")
	}
}

func TestGetForUpdateConflictsAtTheRead(t *testing.T) {
	e := openTest(t, Options{})
	k := []byte("counter")
	specSet(t, e, k, []byte("0"))
	a, _ := e.Begin()
	b, _ := e.Begin()
	defer a.Abort()
	defer b.Abort()
	if err := a.Run([]Op{{Kind: OpGet, Key: k, ForUpdate: true}}); err != nil {
		t.Fatal(err)
	}
	// A plain shared read by b must now conflict: a holds the exclusive lock.
	err := b.Run([]Op{{Kind: OpGet, Key: k}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("read of a key locked for update = %v, want ErrConflict", err)
	}
	if err := a.CommitWith([]Op{{Kind: OpSet, Key: k, Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	specWant(t, e, k, []byte("1"))
}

func TestVersionOfADeletedKey(t *testing.T) {
	e := openTest(t, Options{VacuumInterval: -1})
	k := []byte("created-then-deleted")
	get := func() Op {
		ops := []Op{{Kind: OpGet, Key: k}}
		if err := e.Batch(ops); err != nil {
			t.Fatal(err)
		}
		return ops[0]
	}
	if op := get(); !errors.Is(op.Err, ErrNotFound) || op.Version != 0 {
		t.Fatalf("never written: %v version %d, want not found, 0", op.Err, op.Version)
	}
	specSet(t, e, k, []byte("v"))
	if err := e.Delete(k); err != nil {
		t.Fatal(err)
	}
	op := get()
	if !errors.Is(op.Err, ErrNotFound) || op.Version == 0 {
		t.Fatalf("after Set and Delete: %v version %d, want not found with the deletion's version", op.Err, op.Version)
	}
	// A locked read in a transaction reports the same deletion.
	tx, _ := e.Begin()
	defer tx.Abort()
	read := []Op{{Kind: OpGet, Key: k}}
	if err := tx.Run(read); err != nil {
		t.Fatal(err)
	}
	if read[0].Version != op.Version {
		t.Fatalf("locked read: version %d, want %d", read[0].Version, op.Version)
	}
}
