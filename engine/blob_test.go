package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine/internal/apitest"
)

// blobSizes cross every boundary of the blob layout: a slot's largest,
// a blob in its head page alone, the first data page, a full page, a few
// pages, and the default limit.
var blobSizes = []int{SlotValueLen, SlotValueLen + 1, blobHeadRoom, blobHeadRoom + 1, PageSize,
	10 << 10, 64 << 10, DefaultMaxValueLen}

// blobPagesHeld is the pages blobs hold, from the control block.
func blobPagesHeld(t *testing.T, e *Engine) int64 {
	t.Helper()
	return int64(atomic.LoadUint64(&e.ctl.BlobPages))
}

// waitBlobPages waits until blobs hold want pages: a version's pages go
// back when GC or the vacuum reclaims it.
func waitBlobPages(t *testing.T, e *Engine, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for blobPagesHeld(t, e) != want && time.Now().Before(deadline) {
		e.Vacuum()
		time.Sleep(10 * time.Millisecond)
	}
	if got := blobPagesHeld(t, e); got != want {
		t.Fatalf("blobs hold %d pages, want %d", got, want)
	}
}

// Values of every size up to the limit read back whole, autocommit, in
// batches and in transactions, and their pages go back when they are
// overwritten, deleted or aborted.
func TestBlobValues(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20})
	for i, n := range blobSizes {
		k := specKey("blob", i)
		v := specPattern(n, byte(i))
		specSet(t, e, k, v)
		specWant(t, e, k, v)
		ops := []Op{{Kind: OpGet, Key: k}, {Kind: OpSet, Key: k, Value: specPattern(n, byte(i+100))}, {Kind: OpGet, Key: k}}
		if err := e.Batch(ops); err != nil || ops[0].Err != nil || ops[1].Err != nil || ops[2].Err != nil {
			t.Fatalf("%d bytes: batch %v %v %v %v", n, err, ops[0].Err, ops[1].Err, ops[2].Err)
		}
		if !bytes.Equal(ops[0].Value, v) || !bytes.Equal(ops[2].Value, specPattern(n, byte(i+100))) {
			t.Fatalf("%d bytes: a batch's GET, SET, GET read %d and %d bytes, not the values", n, len(ops[0].Value), len(ops[2].Value))
		}
	}
	// A transaction reads its own blob, and an abort gives its pages back.
	held := blobPagesHeld(t, e)
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	big := specPattern(300<<10, 9)
	if err := tx.Set([]byte("txn"), big); err != nil {
		t.Fatal(err)
	}
	if err := tx.Set([]byte("txn"), specPattern(200<<10, 8)); err != nil { // the first blob goes back
		t.Fatal(err)
	}
	if got, err := tx.Get([]byte("txn")); err != nil || !bytes.Equal(got, specPattern(200<<10, 8)) {
		t.Fatalf("a transaction's read of its own blob: %d bytes, %v", len(got), err)
	}
	if err := tx.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := blobPagesHeld(t, e); got != held {
		t.Fatalf("blobs hold %d pages after an abort, %d before", got, held)
	}
	specAbsent(t, e, []byte("txn"))
	if err := e.Exec([]Op{{Kind: OpSet, Key: []byte("txn"), Value: big}, {Kind: OpSet, Key: []byte("small"), Value: []byte("s")}}); err != nil {
		t.Fatal(err)
	}
	specWant(t, e, []byte("txn"), big)
	// Deleting or shrinking every value gives every page back.
	for i := range blobSizes {
		specSet(t, e, specKey("blob", i), []byte("small now"))
	}
	if err := e.Delete([]byte("txn")); err != nil {
		t.Fatal(err)
	}
	waitBlobPages(t, e, 0)
	u, err := e.MemoryUse()
	if err != nil || u.BlobPages != 0 {
		t.Fatalf("MemoryUse: %+v, %v", u, err)
	}
}

// A Get of a blob and a later write of its key in the same batch: the Get
// answers the value it read, not the write's (the write runs after the
// Get's run, readThenWrite), however the batch is built.
func TestBlobGetThenWriteInOneBatch(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20})
	v := specPattern(50<<10, 1)
	for round := range 20 {
		k := specKey("k", round)
		specSet(t, e, k, v)
		ops := []Op{{Kind: OpGet, Key: k}, {Kind: OpDelete, Key: k}, {Kind: OpGet, Key: k},
			{Kind: OpSet, Key: k, Value: specPattern(60<<10, 2)}, {Kind: OpGet, Key: k}}
		if err := e.Batch(ops); err != nil {
			t.Fatal(err)
		}
		if ops[0].Err != nil || !bytes.Equal(ops[0].Value, v) {
			t.Fatalf("GET before DEL: %d bytes, %v", len(ops[0].Value), ops[0].Err)
		}
		if ops[1].Err != nil || !errors.Is(ops[2].Err, ErrNotFound) || ops[3].Err != nil {
			t.Fatalf("DEL, GET, SET: %v, %v, %v", ops[1].Err, ops[2].Err, ops[3].Err)
		}
		if ops[4].Err != nil || !bytes.Equal(ops[4].Value, specPattern(60<<10, 2)) {
			t.Fatalf("GET after SET: %d bytes, %v", len(ops[4].Value), ops[4].Err)
		}
	}
	get := func(k string) Op { return Op{Kind: OpGet, Key: []byte(k)} }
	set := func(k string) Op { return Op{Kind: OpSet, Key: []byte(k)} }
	for _, c := range []struct {
		ops  []Op
		want int
	}{
		{[]Op{set("a"), get("a"), get("b"), set("c"), {Kind: OpDelete, Key: []byte("b")}}, 4}, // the DEL of b after its GET
		{[]Op{get("a")}, 1},
		{[]Op{set("a"), set("a"), get("a"), get("a")}, 4},           // no write after a GET
		{[]Op{get("a"), set("b"), get("b"), set("a")}, 3},           // a's write
		{[]Op{get("a"), {Kind: OpSet, DB: 1, Key: []byte("a")}}, 2}, // another database's a
		{nil, 0},
	} {
		if got := readThenWrite(c.ops); got != c.want {
			t.Errorf("readThenWrite(%v) = %d, want %d", c.ops, got, c.want)
		}
	}
}

// blobValue is a value of n bytes that says what it is in every 8 bytes
// (its writer and sequence), so a torn read (parts of two writes, or of
// reused pages) shows.
func blobValue(n int, writer, seq uint32) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint32(b[i:], writer)
		binary.LittleEndian.PutUint32(b[i+4:], seq)
	}
	return b
}

func checkBlobValue(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("%d bytes", len(b))
	}
	for i := 8; i+8 <= len(b); i += 8 {
		if !bytes.Equal(b[i:i+8], b[:8]) {
			return fmt.Errorf("bytes %d..%d are %x, bytes 0..8 %x: a torn read", i, i+8, b[i:i+8], b[:8])
		}
	}
	return nil
}

// Lock-free readers of blobs that writers keep replacing (so GC frees and
// reuses their pages) never see a torn value: the engine checks after its
// copy that the version is still there (blob.h invariant 2).
func TestBlobReadsAreWhole(t *testing.T) {
	e := openTest(t, smallStore(1024, 2048)) // 8 MiB of pages: reused quickly
	keys := [][]byte{[]byte("hot0"), []byte("hot1")}
	for _, k := range keys {
		specSet(t, e, k, blobValue(40<<10, 0, 0))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var writes, reads atomic.Int64
	errs := make(chan error, 4)
	for w := uint32(1); w <= 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint32(1); !stop.Load(); seq++ {
				n := (8 + int(seq%40)) << 10
				if err := e.Set(keys[seq%2], blobValue(n, w, seq)); err != nil && !errors.Is(err, ErrConflict) {
					errs <- err
					return
				}
				writes.Add(1)
			}
		}()
	}
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				v, err := e.Get(keys[i%2])
				if err == nil {
					err = checkBlobValue(v)
				}
				if err != nil && !errors.Is(err, ErrConflict) {
					errs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d writes, %d reads of blobs of 8..48 KiB", writes.Load(), reads.Load())
	if writes.Load() < 100 || reads.Load() < 100 {
		t.Fatalf("only %d writes and %d reads", writes.Load(), reads.Load())
	}
}

// The budget holds blobs and slots alike: blobs fill it, a write past it
// fails with ErrStoreFull naming MaxMemory and leaves nothing behind, and
// freed pages serve both blobs and slots.
func TestBlobBudget(t *testing.T) {
	e := openTest(t, smallStore(256, 64))
	n := 0
	var err error
	for ; n < 100; n++ {
		if err = e.Set(specKey("b", n), specPattern(10<<10, byte(n))); err != nil {
			break
		}
	}
	specIs(t, fmt.Sprintf("Set %d of 10 KiB", n), err, ErrStoreFull)
	specMentions(t, err, "MaxMemory")
	specAbsent(t, e, specKey("b", n))
	if n < 64/3-1 {
		t.Fatalf("64 pages took only %d values of 10 KiB (3 pages each)", n)
	}
	u, _ := e.MemoryUse()
	if u.BlobPages != uint64(3*n) {
		t.Fatalf("blobs hold %d pages, want %d", u.BlobPages, 3*n)
	}
	// A transaction whose blob does not fit applies nothing.
	err = e.Exec([]Op{{Kind: OpSet, Key: []byte("t1"), Value: []byte("x")}, {Kind: OpSet, Key: []byte("t2"), Value: specPattern(10<<10, 1)}})
	specIs(t, "Exec", err, ErrStoreFull)
	specAbsent(t, e, []byte("t1"))
	for i := 0; i < n; i++ {
		if err := e.Delete(specKey("b", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitBlobPages(t, e, 0)
	// The pages given back serve small values too.
	for i := 0; i < 2000; i++ {
		if err := e.Set(specKey("s", i%250), specPattern(100, byte(i))); err != nil {
			t.Fatalf("small Set %d after the blobs went: %v", i, err)
		}
	}
}

// Blobs survive a restart: from the log (autocommit, transactions, with
// deadlines) and from a checkpoint.
func TestBlobDurable(t *testing.T) {
	dir := t.TempDir()
	want := map[string][]byte{}
	e := openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20, Dir: dir})
	for i, n := range blobSizes {
		k := specKey("auto", i)
		want[string(k)] = specPattern(n, byte(i))
		specSet(t, e, k, want[string(k)])
	}
	ops := []Op{}
	for i := range 3 {
		k := specKey("txn", i)
		want[string(k)] = specPattern(20<<10*(i+1), byte(i))
		ops = append(ops, Op{Kind: OpSet, Key: k, Value: want[string(k)]})
	}
	if err := e.Exec(ops); err != nil {
		t.Fatal(err)
	}
	expiring := specPattern(5000, 7)
	at := e.Now() + 3600_000
	if ops := []Op{{Kind: OpSet, Key: []byte("exp"), Value: expiring, ExpireAt: at}}; e.Batch(ops) != nil || ops[0].Err != nil {
		t.Fatal(ops[0].Err)
	}
	check := func(e *Engine, what string) {
		t.Helper()
		for k, v := range want {
			got, err := e.Get([]byte(k))
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("%s: %q: %d bytes, %v; want %d bytes", what, k, len(got), err, len(v))
			}
		}
		ops := []Op{{Kind: OpGet, Key: []byte("exp")}}
		if err := e.Batch(ops); err != nil || ops[0].Err != nil || !bytes.Equal(ops[0].Value, expiring) || ops[0].ExpireAt != at {
			t.Fatalf("%s: expiring blob: %d bytes, deadline %d, %v %v", what, len(ops[0].Value), ops[0].ExpireAt, err, ops[0].Err)
		}
	}
	check(e, "before")
	if st, err := e.Stats(); err != nil || st.LogBadRecords != 0 {
		t.Fatalf("%d bad log records, %v", st.LogBadRecords, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20, Dir: dir})
	check(e, "after replaying the log")
	if _, err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20, Dir: dir})
	check(e, "after loading the checkpoint")
	if n := e.blobLog.pending(); n > 0 {
		t.Fatalf("%d blob values kept for the log after recovery", n)
	}
}

// The values kept for the log go once logged, or once the run or
// transaction that made them is over and durable: none stays behind.
func TestBlobLogForgets(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20, Dir: t.TempDir()})
	v := specPattern(8<<10, 1)
	specSet(t, e, []byte("a"), v)
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.Set([]byte("b"), v)
	tx.Set([]byte("b"), v) // the first blob is freed unlogged
	tx.Set([]byte("c"), v)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, _ = e.Begin()
	tx.Set([]byte("d"), v)
	tx.Abort()
	specSet(t, e, []byte("e"), []byte("a later commit, made durable"))
	deadline := time.Now().Add(5 * time.Second)
	for e.blobLog.pending() > 0 && time.Now().Before(deadline) {
		specSet(t, e, []byte("e"), []byte("x"))
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.blobLog.pending(); n > 0 {
		t.Fatalf("%d blob values still kept for the log", n)
	}
}

// Options.MaxValueLen bounds values, up to MaxValueLenLimit.
func TestMaxValueLenOption(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, MaxValueLen: 2000})
	specSet(t, e, []byte("k"), make([]byte, 2000))
	err := e.Set([]byte("k"), make([]byte, 2001))
	specIs(t, "Set of 2001 bytes", err, ErrValueTooLarge)
	specMentions(t, err, "2000")
	if _, err := Open(Options{MaxKeys: 64, MaxValueLen: MaxValueLenLimit + 1}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("Open with MaxValueLen above MaxValueLenLimit: %v", err)
	}
	e2 := openTest(t, Options{MaxKeys: 64, MaxMemory: 32 << 20, MaxValueLen: MaxValueLenLimit})
	v := specPattern(MaxValueLenLimit, 3)
	ops := []Op{{Kind: OpSet, Key: []byte("max"), Value: v, ExpireAt: e2.Now() + 60_000}}
	if err := e2.Batch(ops); err != nil || ops[0].Err != nil {
		t.Fatal(err, ops[0].Err)
	}
	specWant(t, e2, []byte("max"), v)
}

// A BPF program's read of a blob (a value larger than its buffer) is
// BPFDB_ERR_VALUE_TOO_LARGE with the length, autocommit and in a
// transaction, which stays usable; a value that fits reads as before.
func TestBlobKernelAPI(t *testing.T) {
	db := openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20})
	a := loadAPI(t, db)
	specSet(t, db, []byte("big"), specPattern(5000, 1))
	specSet(t, db, []byte("small"), []byte("fits"))
	out := a.mustCall(t, "api_get", 0, setIn("big", ""))
	wantStatus(t, "get of a blob", out.Status, chainBpfdbStatusBPFDB_ERR_VALUE_TOO_LARGE)
	if out.Len != 5000 {
		t.Fatalf("get of a blob: len %d, want 5000", out.Len)
	}
	tx := a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
	out = a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_GET, tx, "big", ""))
	wantStatus(t, "txn get of a blob", out.Status, chainBpfdbStatusBPFDB_ERR_VALUE_TOO_LARGE)
	out = a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_GET, tx, "small", ""))
	wantStatus(t, "txn get after it", out.Status, chainBpfdbStatusBPFDB_OK)
	if string(out.Buf.B[:out.Len]) != "fits" {
		t.Fatalf("txn get: %q", out.Buf.B[:out.Len])
	}
	out = a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_COMMIT, tx, "", ""))
	wantStatus(t, "commit", out.Status, chainBpfdbStatusBPFDB_OK)
	// A kernel overwrite of a blob with a small value frees its pages.
	out = a.mustCall(t, "api_set", 0, setIn("big", "small now"))
	wantStatus(t, "set over a blob", out.Status, chainBpfdbStatusBPFDB_OK)
	specWant(t, db, []byte("big"), []byte("small now"))
	waitBlobPages(t, db, 0)
}
