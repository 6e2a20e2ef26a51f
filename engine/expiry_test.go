package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine/internal/apitest"
	"github.com/bpfdb/bpfdb/logd"
	"golang.org/x/sys/unix"
)

// advanceClock moves the store's clock (the kernel's and Engine.Now) d ahead.
func advanceClock(e *Engine, d time.Duration) {
	atomic.AddUint64(&e.ctl.WallOffsetNs, uint64(d))
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func setEx(e *Engine, key, value string, deadline int64) error {
	ops := []Op{{Kind: OpSet, Key: []byte(key), Value: []byte(value), ExpireAt: deadline}}
	if err := e.Batch(ops); err != nil {
		return err
	}
	return ops[0].Err
}

func getEx(e *Engine, key string) ([]byte, int64, error) {
	ops := []Op{{Kind: OpGet, Key: []byte(key)}}
	if err := e.Batch(ops); err != nil {
		return nil, 0, err
	}
	return ops[0].Value, ops[0].ExpireAt, ops[0].Err
}

// A value with a deadline reads with it until the store's clock passes
// it, then as absent, and the expirer deletes it (a logged deletion, so
// the record goes); a key re-set without one meanwhile is kept.
func TestExpiryReadsAndDeletes(t *testing.T) {
	e := openTest(t, Options{})
	now := e.Now()
	for _, size := range []int{0, 1, 24, 100, SlotValueLen - deadlineLen, SlotValueLen - deadlineLen + 1, 3 * PageSize, DefaultMaxValueLen} {
		k := fmt.Sprint("size", size)
		v := bytes.Repeat([]byte{'v'}, size)
		if err := setEx(e, k, string(v), now+60_000); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		got, deadline, err := getEx(e, k)
		if err != nil || !bytes.Equal(got, v) || deadline != now+60_000 {
			t.Fatalf("%d bytes: got %d bytes, deadline %d, %v", size, len(got), deadline, err)
		}
	}
	if err := setEx(e, "big", string(make([]byte, DefaultMaxValueLen+1)), now+1); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("a value of MaxValueLen+1 bytes with a deadline: %v", err)
	}
	if err := setEx(e, "neg", "v", -5); !errors.Is(err, ErrBadDeadline) {
		t.Fatalf("a negative deadline: %v", err)
	}
	if err := setEx(e, "soon", "v", now+1000); err != nil {
		t.Fatal(err)
	}
	if err := setEx(e, "kept", "v", now+1000); err != nil {
		t.Fatal(err)
	}
	if err := e.Set([]byte("kept"), []byte("forever")); err != nil { // no deadline now
		t.Fatal(err)
	}
	st0, _ := e.Stats()
	advanceClock(e, 2*time.Second)
	if _, _, err := getEx(e, "soon"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired key reads %v", err)
	}
	if err := e.Delete([]byte("soon")); !errors.Is(err, ErrNotFound) && err != nil {
		t.Fatalf("DEL of an expired key: %v", err)
	}
	waitFor(t, "the expirer", func() bool {
		st, _ := e.Stats()
		return st.ExpiredDeleted > st0.ExpiredDeleted && st.RecordsFreed > st0.RecordsFreed
	})
	if v, d, err := getEx(e, "kept"); err != nil || string(v) != "forever" || d != 0 {
		t.Fatalf("a key re-set without a deadline: %q %d %v", v, d, err)
	}
	// Writing an expired key starts afresh.
	if err := setEx(e, "soon", "again", e.Now()+60_000); err != nil {
		t.Fatal(err)
	}
	if v, _, err := getEx(e, "soon"); err != nil || string(v) != "again" {
		t.Fatalf("re-set after expiry: %q %v", v, err)
	}
}

// INCR keeps the deadline of the value it adds to, and starts from 0 on
// an expired one (whose deadline it drops).
func TestExpiryIncr(t *testing.T) {
	e := openTest(t, Options{VacuumInterval: -1})
	deadline := e.Now() + 1000
	if err := setEx(e, "n", "41", deadline); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Incr([]byte("n"), 1); err != nil || n != 42 {
		t.Fatalf("incr: %d %v", n, err)
	}
	if v, d, err := getEx(e, "n"); err != nil || string(v) != "42" || d != deadline {
		t.Fatalf("after incr: %q deadline %d (want %d) %v", v, d, deadline, err)
	}
	e.expiry.mu.Lock() // hold the expirer off: INCR meets the expired value itself
	advanceClock(e, 2*time.Second)
	n, err := e.Incr([]byte("n"), 5)
	e.expiry.mu.Unlock()
	if err != nil || n != 5 {
		t.Fatalf("incr of an expired value: %d %v", n, err)
	}
	if v, d, err := getEx(e, "n"); err != nil || string(v) != "5" || d != 0 {
		t.Fatalf("after incr of an expired value: %q deadline %d %v", v, d, err)
	}
}

// A snapshot reads at one instant, when it is taken (its first read): a
// key that expires while it is open is still there for it, and absent for
// a reader after; so for a transaction, from its first operation.
func TestExpirySnapshotInstant(t *testing.T) {
	e := openTest(t, Options{})
	deadline := e.Now() + 300
	if err := setEx(e, "k", "v", deadline); err != nil {
		t.Fatal(err)
	}
	snap, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Abort()
	if v, err := snap.Get([]byte("k")); err != nil || string(v) != "v" { // takes the snapshot
		t.Fatalf("snapshot read: %q %v", v, err)
	}
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	ops := []Op{{Kind: OpGet, Key: []byte("k")}}
	if err := tx.Run(ops); err != nil || string(ops[0].Value) != "v" { // takes the shared lock
		t.Fatalf("transaction read: %q %v", ops[0].Value, err)
	}
	// Real time: moving the clock's offset (advanceClock) would move the
	// transactions' begin times with it.
	time.Sleep(time.Until(time.UnixMilli(deadline)) + 20*time.Millisecond)
	for i := 0; i < 2; i++ {
		if v, err := snap.Get([]byte("k")); err != nil || string(v) != "v" {
			t.Fatalf("snapshot read %d after the deadline: %q %v", i, v, err)
		}
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "v" {
			t.Fatalf("transaction read %d after the deadline: %q %v", i, v, err)
		}
	}
	if _, err := e.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("autocommit read after the deadline: %v", err)
	}
	// The expirer cannot delete it while the transaction holds its lock.
	time.Sleep(3 * expiryTick)
	if v, err := snap.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("snapshot read after the expirer ran: %q %v", v, err)
	}
	tx.Abort()
	waitFor(t, "the expirer to delete k once the lock is free", func() bool {
		st, _ := e.Stats()
		return st.ExpiredDeleted == 1
	})
	if v, err := snap.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("snapshot read after the deletion: %q %v", v, err)
	}
}

// Deadlines are logged with their values and kept by checkpoints: after a
// restart a key keeps its deadline, and one that expired meanwhile is
// absent and then deleted.
func TestExpiryDurable(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, Options{MaxKeys: 1024, Dir: dir})
	far := e.Now() + 3_600_000
	near := e.Now() + 300
	for i := 0; i < 10; i++ {
		if err := setEx(e, fmt.Sprint("far", i), "f", far); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.CommitWith([]Op{{Kind: OpSet, Key: []byte("near"), Value: []byte("n"), ExpireAt: near},
		{Kind: OpSet, Key: []byte("logged"), Value: []byte("l"), ExpireAt: far}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.UnixMilli(near)) + 50*time.Millisecond)
	e = openTest(t, Options{MaxKeys: 1024, Dir: dir})
	for _, k := range []string{"far3", "logged"} {
		if v, d, err := getEx(e, k); err != nil || d != far || len(v) != 1 {
			t.Fatalf("%s after restart: %q deadline %d (want %d) %v", k, v, d, far, err)
		}
	}
	if _, _, err := getEx(e, "near"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a key that expired while the store was down: %v", err)
	}
	waitFor(t, "the expirer after recovery", func() bool {
		st, _ := e.Stats()
		return st.ExpiredDeleted == 1
	})
	if _, err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = openTest(t, Options{MaxKeys: 1024, Dir: dir})
	defer e.Close()
	if v, d, err := getEx(e, "far7"); err != nil || d != far || string(v) != "f" {
		t.Fatalf("after a second checkpoint and restart: %q %d %v", v, d, err)
	}
	n := 0
	e.Scan(func(*Item) bool { n++; return true })
	if n != 11 {
		t.Fatalf("scan after restart: %d keys, want 11", n)
	}
}

// The expirer deletes a million keys' worth of deadlines in bounded runs:
// 20,000 keys due at once are all gone soon after, while the others stay.
func TestExpiryMany(t *testing.T) {
	const due, kept = 20000, 5000
	e := openTest(t, Options{MaxKeys: 32768})
	soon := e.Now() + 200
	ops := make([]Op, 0, MaxBatch)
	flush := func() {
		if err := e.Batch(ops); err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if op.Err != nil {
				t.Fatal(op.Err)
			}
		}
		ops = ops[:0]
	}
	for i := 0; i < due+kept; i++ {
		d := soon
		if i >= due {
			d = soon + 3_600_000
		}
		ops = append(ops, Op{Kind: OpSet, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("value"), ExpireAt: d})
		if len(ops) == MaxBatch {
			flush()
		}
	}
	flush()
	waitFor(t, "every due key to be deleted", func() bool {
		st, _ := e.Stats()
		return st.ExpiredDeleted == due
	})
	st, _ := e.Stats()
	if st.ExpiryPending != kept {
		t.Fatalf("%d deadlines pending, want %d", st.ExpiryPending, kept)
	}
	n := 0
	e.Scan(func(*Item) bool { n++; return true })
	if n != kept {
		t.Fatalf("%d keys left, want %d", n, kept)
	}
}

// BPF programs read deadlines (bpfdb_get_deadline; bpfdb_get returns the
// value without its deadline) and write them (bpfdb_set_deadline); an
// expiring key they wrote reads as absent after its deadline to both
// sides, and the vacuum's walk hands it to the expirer, which deletes it.
// A kernel INCR keeps the deadline.
func TestExpiryKernelAPI(t *testing.T) {
	e := openTest(t, Options{VacuumInterval: -1})
	a := loadAPI(t, e)
	far := e.Now() + 3_600_000
	if err := setEx(e, "engine", "value", far); err != nil {
		t.Fatal(err)
	}
	out := a.mustCall(t, "api_get", 0, &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey("engine")}})
	if wantStatus(t, "api_get", out.Status, 0); string(out.Buf.B[:out.Len]) != "value" {
		t.Fatalf("bpfdb_get of an expiring value: %q", out.Buf.B[:out.Len])
	}
	out = a.mustCall(t, "api_get_deadline", 0, &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey("engine")}})
	if wantStatus(t, "api_get_deadline", out.Status, 0); out.Len != 5 || out.Sum != far {
		t.Fatalf("bpfdb_get_deadline: %d bytes, deadline %d, want %d", out.Len, out.Sum, far)
	}
	near := e.Now() + 300
	in := setIn("kernel", "41")
	in.Delta = near
	wantStatus(t, "api_set_deadline", a.mustCall(t, "api_set_deadline", 0, in).Status, 0)
	in = setIn("kernel", "")
	in.Delta = 1
	wantStatus(t, "api_incr", a.mustCall(t, "api_incr", 0, in).Status, 0)
	if v, d, err := getEx(e, "kernel"); err != nil || string(v) != "42" || d != near {
		t.Fatalf("engine read of a kernel-written expiring key: %q %d %v", v, d, err)
	}
	big := setIn("big", string(make([]byte, SlotValueLen-deadlineLen+1)))
	big.Delta = far
	wantStatus(t, "api_set_deadline of a long value", a.mustCall(t, "api_set_deadline", 0, big).Status, chainBpfdbStatusBPFDB_ERR_VALUE_TOO_LARGE)
	time.Sleep(time.Until(time.UnixMilli(near)) + 20*time.Millisecond)
	out = a.mustCall(t, "api_get", 0, &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey("kernel")}})
	wantStatus(t, "api_get after the deadline", out.Status, chainBpfdbStatusBPFDB_ERR_NOT_FOUND)
	if e.expiry.pending() != 1 { // only the engine's own deadline
		t.Fatalf("%d deadlines pending", e.expiry.pending())
	}
	if err := e.Vacuum(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the expirer to delete the kernel's key", func() bool {
		st, _ := e.Stats()
		return st.ExpiredDeleted == 1
	})
	if _, _, err := getEx(e, "kernel"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

// A key whose deadline is rewritten on every write (a session refreshed
// per request) holds one entry of the expirer's queue, and is deleted at
// its last deadline; one rewritten with an earlier deadline is deleted at
// that one.
func TestExpiryRewrittenDeadlines(t *testing.T) {
	e := openTest(t, Options{VacuumInterval: -1})
	start := e.Now()
	for i := 0; i < 1000; i++ {
		if err := setEx(e, "session", "s", start+300+int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := setEx(e, "shortened", "v", start+3_600_000); err != nil {
		t.Fatal(err)
	}
	if err := setEx(e, "shortened", "v", start+300); err != nil {
		t.Fatal(err)
	}
	e.expiry.mu.Lock()
	entries := len(e.expiry.due)
	e.expiry.mu.Unlock()
	if entries > 3 {
		t.Fatalf("%d queue entries for 2 keys", entries)
	}
	waitFor(t, "both keys deleted", func() bool {
		st, _ := e.Stats()
		return st.ExpiredDeleted == 2
	})
	if e.Now() < start+300+999 {
		t.Fatalf("session deleted before its last deadline")
	}
	if st, _ := e.Stats(); st.ExpiryPending != 0 {
		t.Fatalf("%d deadlines still pending", st.ExpiryPending)
	}
}

// A commit that leaves a key without a deadline (a SET without one, a
// DEL), autocommit or in a transaction, drops its queued try, so pending
// counts keys that will expire; a transaction that aborts drops nothing;
// the heap is rebuilt when stale entries pile up.
func TestExpiryDroppedTries(t *testing.T) {
	e := openTest(t, Options{VacuumInterval: -1})
	far := e.Now() + 3_600_000
	const n = 5000
	for i := 0; i < n; i++ {
		k := fmt.Sprint("k", i)
		if err := setEx(e, k, "v", far); err != nil {
			t.Fatal(err)
		}
		var err error
		switch i % 3 {
		case 0:
			err = e.Delete([]byte(k))
		case 1:
			err = e.Set([]byte(k), []byte("persisted"))
		case 2:
			tx, _ := e.Begin()
			if err = tx.Set([]byte(k), []byte("persisted")); err == nil {
				err = tx.Commit()
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := e.expiry.pending(); p != 0 {
		t.Fatalf("%d tries pending after every deadline was removed", p)
	}
	e.expiry.mu.Lock()
	entries := len(e.expiry.due)
	e.expiry.mu.Unlock()
	if entries > 2*MaxBatch {
		t.Fatalf("%d heap entries for no pending try", entries)
	}
	if err := setEx(e, "kept", "v", far); err != nil {
		t.Fatal(err)
	}
	tx, _ := e.Begin()
	if err := tx.Delete([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	if p := e.expiry.pending(); p != 1 {
		t.Fatalf("%d tries pending, want kept's", p)
	}
	// A drop by an older commit than the try's leaves the try queued.
	e.expiry.add(0, []byte("newer"), far, 100)
	e.expiry.drop(0, []byte("newer"), 99)
	if p := e.expiry.pending(); p != 2 {
		t.Fatalf("%d tries pending after a stale drop, want 2", p)
	}
}

// A key the expirer cannot decide (a transaction holds its lock) is tried
// again an expiryTick later, not in a loop, and deleted once released.
func TestExpiryHeldKeyRetriedLater(t *testing.T) {
	e := openTest(t, Options{VacuumInterval: -1})
	if err := setEx(e, "held", "v", e.Now()+50); err != nil {
		t.Fatal(err)
	}
	tx, _ := e.Begin()
	if _, err := tx.Get([]byte("held")); err != nil { // a shared lock, before the deadline
		t.Fatal(err)
	}
	before := e.expiry.scheduled.Load()
	time.Sleep(600 * time.Millisecond)
	tries := e.expiry.scheduled.Load() - before
	if tries > 10 {
		t.Fatalf("%d tries in 600 ms of a held key: the expirer spins", tries)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "held deleted once released", func() bool {
		st, _ := e.Stats()
		return st.ExpiredDeleted == 1
	})
}

// A transaction's own write with a deadline already passed at its time
// reads as absent to it, and deleting it is deleting nothing.
func TestExpiryOwnWritePastDeadline(t *testing.T) {
	e := openTest(t, Options{})
	tx, _ := e.Begin()
	ops := []Op{{Kind: OpSet, Key: []byte("gone"), Value: []byte("v"), ExpireAt: e.Now() - 1000}}
	if err := tx.Run(ops); err != nil || ops[0].Err != nil {
		t.Fatalf("set: %v %v", err, ops[0].Err)
	}
	if v, err := tx.Get([]byte("gone")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("own expired write read %q, %v", v, err)
	}
	if err := tx.Delete([]byte("gone")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of an own expired write: %v, want ErrNotFound", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get([]byte("gone")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after commit: %v", err)
	}
}

// Recovery refuses, as corrupt, a log write of a value with a deadline
// longer than MaxValueLenLimit (no engine logs one), rather than loading
// part of it.
func TestExpiryRecoverRefusesOverlongValue(t *testing.T) {
	dir := t.TempDir()
	l, err := logd.Open(dir, logd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Start(0)
	w := l.NewWriter()
	w.Add(&logd.Txn{LSN: 1, ID: 1, Writes: []logd.Write{{Key: []byte("long"), Value: make([]byte, MaxValueLenLimit+1),
		ExpireAt: time.Now().Add(time.Hour).UnixMilli()}}})
	w.Close(time.Time{})
	if err := l.WaitDurable(1); err != nil {
		t.Fatal(err)
	}
	l.Close()
	e, err := Open(Options{MaxKeys: 4096, Dir: dir})
	if errors.Is(err, ErrNotPermitted) && os.Getenv("BPFDB_REQUIRE_BPF") != "1" {
		t.Skipf("skipping: %v", err)
	}
	if err == nil {
		e.Close()
		t.Fatal("Open recovered a value above MaxValueLenLimit")
	}
	if !errors.Is(err, logd.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprint(MaxValueLenLimit)) {
		t.Fatalf("Open: %v, want logd.ErrCorrupt naming %d", err, MaxValueLenLimit)
	}
}

// TestMonotonicNanosIsKernelClock checks that monotonicNanos, which the
// runtime reads through the vDSO, is CLOCK_MONOTONIC, the clock of the
// kernel's bpf_ktime_get_ns(): read between two system-call readings, it
// falls between them.
func TestMonotonicNanosIsKernelClock(t *testing.T) {
	for range 1000 {
		var before, after unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &before); err != nil {
			t.Fatal(err)
		}
		m := monotonicNanos()
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &after); err != nil {
			t.Fatal(err)
		}
		if m < before.Nano() || m > after.Nano() {
			t.Fatalf("monotonicNanos %d, outside the CLOCK_MONOTONIC readings %d and %d around it", m, before.Nano(), after.Nano())
		}
	}
}
