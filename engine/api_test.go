package engine

// Tests of the API for BPF programs (bpf/include/bpfdb_api.h): real BPF
// programs (bpf/test/apitest.c, engine/internal/apitest) loaded against
// an open engine's maps and run with BPF_PROG_RUN, racing the engine.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine/internal/apitest"
	"github.com/cilium/ebpf"
)

type apiSlot = apitest.ApitestApiSlot

// apiEnv is the test programs loaded against one engine.
type apiEnv struct {
	coll  *ebpf.Collection
	slots *ebpf.Map
}

// loadAPI loads the XDP programs of apitest.c against db's maps.
func loadAPI(tb testing.TB, db *Engine) *apiEnv {
	tb.Helper()
	spec, err := apitest.LoadApitest()
	if err != nil {
		tb.Fatal(err)
	}
	for name, p := range spec.Programs {
		if p.Type != ebpf.XDP {
			delete(spec.Programs, name)
		}
	}
	repl, err := db.FitSpec(spec)
	if err != nil {
		tb.Fatal(err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			tb.Fatalf("loading apitest: %s", strings.Join(ve.Log[max(0, len(ve.Log)-30):], "\n"))
		}
		tb.Fatalf("loading apitest: %v", err)
	}
	tb.Cleanup(func() { coll.Close() })
	return &apiEnv{coll: coll, slots: coll.Maps["api_slots"]}
}

func apiKey(k string) apitest.ApitestBpfdbKey {
	var key apitest.ApitestBpfdbKey
	key.Len = uint32(copy(key.Data[:], k))
	return key
}

// call runs program prog once on api slot slot with arguments in.
func (a *apiEnv) call(prog string, slot uint32, in *apiSlot) (*apiSlot, error) {
	if err := a.slots.Update(slot, in, ebpf.UpdateAny); err != nil {
		return nil, err
	}
	pkt := make([]byte, 16)
	binary.LittleEndian.PutUint32(pkt, slot)
	ret, err := a.coll.Programs[prog].Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prog, err)
	}
	if ret != 2 { // XDP_PASS
		return nil, fmt.Errorf("%s returned %d", prog, ret)
	}
	var out apiSlot
	if err := a.slots.Lookup(slot, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// mustCall is call for the test's goroutine.
func (a *apiEnv) mustCall(tb testing.TB, prog string, slot uint32, in *apiSlot) *apiSlot {
	tb.Helper()
	out, err := a.call(prog, slot, in)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func apiStatus(s int32) chainBpfdbStatus { return chainBpfdbStatus(s) }

// apiRetryable: the kernel call applied nothing and may be run again.
func apiRetryable(s int32) bool {
	switch apiStatus(s) {
	case chainBpfdbStatusBPFDB_ERR_CONFLICT, chainBpfdbStatusBPFDB_ERR_RETRY,
		chainBpfdbStatusBPFDB_ERR_VERSIONS_FULL, chainBpfdbStatusBPFDB_ERR_LOG_FULL,
		chainBpfdbStatusBPFDB_ERR_TXN_TABLE_FULL:
		return true
	}
	return false
}

// retryCall runs prog until it does not fail retryably (bounded).
func (a *apiEnv) retryCall(prog string, slot uint32, in *apiSlot) (*apiSlot, error) {
	for try := 0; try < 2000; try++ {
		out, err := a.call(prog, slot, in)
		if err != nil || !apiRetryable(out.Status) {
			return out, err
		}
		time.Sleep(time.Duration(rand.IntN(50)+1) * time.Microsecond)
	}
	return nil, fmt.Errorf("%s: still conflicting after 2000 tries", prog)
}

func setIn(key, value string) *apiSlot {
	in := &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey(key)}, ValLen: uint32(len(value))}
	copy(in.In.B[:], value)
	return in
}

func wantStatus(tb testing.TB, what string, got int32, want chainBpfdbStatus) {
	tb.Helper()
	if apiStatus(got) != want {
		tb.Fatalf("%s: status %d, want %d", what, got, want)
	}
}

// A kernel-side set, incr and delete are visible to the engine, logged,
// durable (the durable LSN BPF reads reaches them), and recovered after a
// restart.
func TestAPIWritesLoggedAndRecovered(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, Options{Dir: dir})
	a := loadAPI(t, db)

	out := a.mustCall(t, "api_durable", 0, &apiSlot{})
	wantStatus(t, "layout", out.Status, chainBpfdbStatusBPFDB_OK)

	out = a.mustCall(t, "api_set", 0, setIn("k-set", "from the kernel"))
	wantStatus(t, "set", out.Status, chainBpfdbStatusBPFDB_OK)
	if out.Lsn == 0 {
		t.Fatal("set: no LSN")
	}
	specWant(t, db, []byte("k-set"), []byte("from the kernel"))

	in := setIn("k-incr", "")
	in.Delta = 5
	for want := int64(5); want <= 10; want += 5 {
		out = a.mustCall(t, "api_incr", 0, in)
		wantStatus(t, "incr", out.Status, chainBpfdbStatusBPFDB_OK)
		if out.Sum != want {
			t.Fatalf("incr: sum %d, want %d", out.Sum, want)
		}
	}
	in.Delta = -12
	out = a.mustCall(t, "api_incr", 0, in)
	if out.Sum != -2 {
		t.Fatalf("incr by -12: sum %d, want -2", out.Sum)
	}
	specWant(t, db, []byte("k-incr"), []byte("-2"))

	// INCR of a value that is not an integer applies nothing.
	specSet(t, db, []byte("k-text"), []byte("12a"))
	out = a.mustCall(t, "api_incr", 0, setIn("k-text", ""))
	wantStatus(t, "incr of text", out.Status, chainBpfdbStatusBPFDB_ERR_NOT_INTEGER)
	specWant(t, db, []byte("k-text"), []byte("12a"))

	specSet(t, db, []byte("k-del"), []byte("doomed"))
	out = a.mustCall(t, "api_delete", 0, setIn("k-del", ""))
	wantStatus(t, "delete", out.Status, chainBpfdbStatusBPFDB_OK)
	specAbsent(t, db, []byte("k-del"))
	last := out.Lsn
	out = a.mustCall(t, "api_delete", 0, setIn("k-del", ""))
	wantStatus(t, "delete again", out.Status, chainBpfdbStatusBPFDB_ERR_NOT_FOUND)

	// The kernel's snapshot get sees the engine's writes.
	specSet(t, db, []byte("k-engine"), []byte("from Go"))
	out = a.mustCall(t, "api_get", 0, setIn("k-engine", ""))
	wantStatus(t, "get", out.Status, chainBpfdbStatusBPFDB_OK)
	if got := string(out.Buf.B[:out.Len]); got != "from Go" {
		t.Fatalf("get: %q", got)
	}

	// The durable LSN reaches the kernel writes (Sync durability: the log
	// writes what the drain reads, within a millisecond's poll).
	deadline := time.Now().Add(5 * time.Second)
	for db.DurableLSNBPF() < last && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	out = a.mustCall(t, "api_durable", 0, &apiSlot{})
	if out.Durable < last {
		t.Fatalf("durable LSN read by BPF %d, below the last kernel write's %d", out.Durable, last)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, Options{Dir: dir})
	specWant(t, db, []byte("k-set"), []byte("from the kernel"))
	specWant(t, db, []byte("k-incr"), []byte("-2"))
	specAbsent(t, db, []byte("k-del"))
	if db.Recovery().LSN < last {
		t.Fatalf("recovered to LSN %d, below the kernel's write at %d", db.Recovery().LSN, last)
	}
}

// Every call refuses a store whose control.layout is not its own.
func TestAPILayoutRefused(t *testing.T) {
	db := openTest(t, Options{})
	a := loadAPI(t, db)
	if atomic.LoadUint64(&db.ctl.Layout) != LayoutVersion {
		t.Fatalf("control.layout %#x, want %#x", db.ctl.Layout, LayoutVersion)
	}
	atomic.StoreUint64(&db.ctl.Layout, LayoutVersion+1)
	out := a.mustCall(t, "api_set", 0, setIn("k", "v"))
	wantStatus(t, "set", out.Status, chainBpfdbStatusBPFDB_ERR_LAYOUT)
	out = a.mustCall(t, "api_get", 0, setIn("k", ""))
	wantStatus(t, "get", out.Status, chainBpfdbStatusBPFDB_ERR_LAYOUT)
	atomic.StoreUint64(&db.ctl.Layout, LayoutVersion)
	specAbsent(t, db, []byte("k"))
}

// engineIncr increments key by one in a read-write transaction, retried.
func engineIncr(db *Engine, key []byte) error {
	for try := 0; try < 2000; try++ {
		tx, err := db.Begin()
		if err != nil {
			if Retryable(err) {
				continue
			}
			return err
		}
		ops := []Op{{Kind: OpGet, Key: key, ForUpdate: true}}
		err = tx.Run(ops)
		if err == nil {
			n := int64(0)
			if ops[0].Err == nil {
				if n, err = strconv.ParseInt(string(ops[0].Value), 10, 64); err != nil {
					tx.Abort()
					return err
				}
			}
			err = tx.CommitWith([]Op{{Kind: OpSet, Key: key, Value: specItoa(n + 1)}})
		}
		tx.Abort()
		if err == nil {
			return nil
		}
		if !Retryable(err) {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(50)+1) * time.Microsecond)
	}
	return errors.New("engine incr: still conflicting after 2000 tries")
}

// Kernel increments racing engine read-modify-write increments of the
// same key lose no update.
func TestAPIIncrRace(t *testing.T) {
	db := openTest(t, Options{})
	a := loadAPI(t, db)
	key := []byte("counter")
	const workers, each = 3, 150
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	deadline := time.Now().Add(30 * time.Second)
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func(slot uint32) {
			defer wg.Done()
			in := setIn(string(key), "")
			in.Delta = 1
			for i := 0; i < each && time.Now().Before(deadline); i++ {
				out, err := a.retryCall("api_incr", slot, in)
				if err == nil && out.Status != 0 {
					err = fmt.Errorf("kernel incr: status %d", out.Status)
				}
				if err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}(uint32(w))
		go func() {
			defer wg.Done()
			for i := 0; i < each && time.Now().Before(deadline); i++ {
				if err := engineIncr(db, key); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if got := specInt(t, key, v); got != done.Load() {
		t.Fatalf("counter %d after %d increments: updates lost", got, done.Load())
	}
	t.Logf("%d increments, half from BPF", done.Load())
}

// engineTransfer moves amount from one key to the other in a transaction.
func engineTransfer(db *Engine, from, to []byte, amount int64) error {
	for try := 0; try < 2000; try++ {
		tx, err := db.Begin()
		if err != nil {
			if Retryable(err) {
				continue
			}
			return err
		}
		ops := []Op{{Kind: OpGet, Key: from, ForUpdate: true}, {Kind: OpGet, Key: to, ForUpdate: true}}
		err = tx.Run(ops)
		if err == nil {
			f, _ := strconv.ParseInt(string(ops[0].Value), 10, 64)
			g, _ := strconv.ParseInt(string(ops[1].Value), 10, 64)
			err = tx.CommitWith([]Op{{Kind: OpSet, Key: from, Value: specItoa(f - amount)},
				{Kind: OpSet, Key: to, Value: specItoa(g + amount)}})
		}
		tx.Abort()
		if err == nil {
			return nil
		}
		if !Retryable(err) {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(50)+1) * time.Microsecond)
	}
	return errors.New("engine transfer: still conflicting after 2000 tries")
}

// Kernel transfer transactions racing engine transfers conserve the
// total, and kernel snapshot readers (read-only kernel transactions)
// never see half of either kind.
func TestAPITransferRace(t *testing.T) {
	db := openTest(t, Options{})
	a := loadAPI(t, db)
	ka, kb := []byte("acct-a"), []byte("acct-b")
	const total = 2000
	specSet(t, db, ka, specItoa(total/2))
	specSet(t, db, kb, specItoa(total/2))

	const each = 150
	deadline := time.Now().Add(30 * time.Second)
	var writers, readers sync.WaitGroup
	var stop atomic.Bool
	var kernelDone, engineDone, snapshots atomic.Int64
	errs := make(chan error, 16)
	for w := 0; w < 2; w++ {
		writers.Add(2)
		go func(slot uint32) {
			defer writers.Done()
			in := &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey(string(ka)), apiKey(string(kb))}}
			for i := 0; i < each && time.Now().Before(deadline); i++ {
				in.Delta = int64(rand.IntN(21) - 10)
				out, err := a.retryCall("api_transfer", slot, in)
				if err == nil && out.Status != 0 {
					err = fmt.Errorf("kernel transfer: status %d", out.Status)
				}
				if err != nil {
					errs <- err
					return
				}
				kernelDone.Add(1)
			}
		}(uint32(w))
		go func() {
			defer writers.Done()
			for i := 0; i < each && time.Now().Before(deadline); i++ {
				from, to := ka, kb
				if i%2 == 1 {
					from, to = kb, ka
				}
				if err := engineTransfer(db, from, to, int64(rand.IntN(10))); err != nil {
					errs <- err
					return
				}
				engineDone.Add(1)
			}
		}()
	}
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func(slot uint32) {
			defer readers.Done()
			in := &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey(string(ka)), apiKey(string(kb))}}
			for i := 0; i < 100000 && !stop.Load() && time.Now().Before(deadline); i++ {
				out, err := a.retryCall("api_snapshot2", slot, in)
				if err == nil && out.Status != 0 {
					err = fmt.Errorf("kernel snapshot: status %d", out.Status)
				}
				if err != nil {
					errs <- err
					return
				}
				if out.Vals[0]+out.Vals[1] != total {
					errs <- fmt.Errorf("kernel snapshot saw %d + %d = %d, want %d: half a transfer",
						out.Vals[0], out.Vals[1], out.Vals[0]+out.Vals[1], total)
					return
				}
				snapshots.Add(1)
			}
		}(uint32(10 + r))
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	va, _ := db.Get(ka)
	vb, _ := db.Get(kb)
	if sum := specInt(t, ka, va) + specInt(t, kb, vb); sum != total {
		t.Fatalf("total %d after the transfers, want %d", sum, total)
	}
	if atomic.LoadUint64(&db.ctl.KtxnClaimed) != 0 {
		t.Fatalf("kernel slots still claimed: %#x", db.ctl.KtxnClaimed)
	}
	t.Logf("%d kernel and %d engine transfers, %d kernel snapshots", kernelDone.Load(), engineDone.Load(), snapshots.Load())
}

// A kernel write whose ring reservation fails, or which the log refuses,
// applies nothing. The engine has no directory, so nothing drains the
// ring once wal_on is set: a 4 KiB ring fills.
func TestAPIRingFullAppliesNothing(t *testing.T) {
	db := openTest(t, Options{LogRingBytes: 4096})
	a := loadAPI(t, db)
	specSet(t, db, []byte("a"), []byte("100"))
	specSet(t, db, []byte("b"), []byte("100"))
	specSet(t, db, []byte("c"), []byte("keep"))
	atomic.StoreUint64(&db.ctl.WalOn, 1)
	defer atomic.StoreUint64(&db.ctl.WalOn, 0)

	full := -1
	for i := 0; i < 1000; i++ {
		out := a.mustCall(t, "api_set", 0, setIn(fmt.Sprintf("fill-%d", i), strings.Repeat("x", 100)))
		if apiStatus(out.Status) == chainBpfdbStatusBPFDB_ERR_LOG_FULL {
			full = i
			break
		}
		wantStatus(t, "set while the ring has room", out.Status, chainBpfdbStatusBPFDB_OK)
	}
	if full < 0 {
		t.Fatal("a 4 KiB ring never filled")
	}
	check := func(want chainBpfdbStatus) {
		t.Helper()
		specAbsent(t, db, []byte(fmt.Sprintf("fill-%d", full)))
		in := setIn("a", "")
		in.Delta = 1
		out := a.mustCall(t, "api_incr", 0, in)
		wantStatus(t, "incr", out.Status, want)
		out = a.mustCall(t, "api_delete", 0, setIn("c", ""))
		wantStatus(t, "delete", out.Status, want)
		out = a.mustCall(t, "api_set", 0, setIn("c", "changed"))
		wantStatus(t, "set", out.Status, want)
		in = &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey("a"), apiKey("b")}, Delta: 7}
		out = a.mustCall(t, "api_transfer", 0, in)
		wantStatus(t, "transfer", out.Status, want)
		specWant(t, db, []byte("a"), []byte("100"))
		specWant(t, db, []byte("b"), []byte("100"))
		specWant(t, db, []byte("c"), []byte("keep"))
		if atomic.LoadUint64(&db.ctl.KtxnClaimed) != 0 {
			t.Fatalf("kernel slots still claimed: %#x", db.ctl.KtxnClaimed)
		}
	}
	check(chainBpfdbStatusBPFDB_ERR_LOG_FULL)

	atomic.StoreUint64(&db.ctl.LogRefused, 1)
	defer atomic.StoreUint64(&db.ctl.LogRefused, 0)
	check(chainBpfdbStatusBPFDB_ERR_LOG_REFUSED)
}

// stepIn is the argument of one api_step call on transaction tx.
func stepIn(step apitest.ApitestApiStepKind, tx *apiSlot, key, value string) *apiSlot {
	in := setIn(key, value)
	in.Step = uint32(step)
	if tx != nil {
		in.Tx = tx.Tx
	}
	return in
}

// A conflict aborts a kernel transaction at once and releases every lock
// it held; the engine meets the kernel's locks as any transaction's.
func TestAPIConflictAbortsAndReleases(t *testing.T) {
	db := openTest(t, Options{})
	a := loadAPI(t, db)
	specSet(t, db, []byte("k1"), []byte("v1"))

	// A holds k1 exclusively.
	ta := a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
	wantStatus(t, "begin A", ta.Status, chainBpfdbStatusBPFDB_OK)
	out := a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_GET_FOR_UPDATE, ta, "k1", ""))
	wantStatus(t, "A get k1", out.Status, chainBpfdbStatusBPFDB_OK)
	if got := string(out.Buf.B[:out.Len]); got != "v1" {
		t.Fatalf("A read k1 = %q", got)
	}
	if err := db.Set([]byte("k1"), []byte("engine")); !errors.Is(err, ErrConflict) {
		t.Fatalf("engine Set of a key a kernel transaction holds: %v, want ErrConflict", err)
	}

	// B locks k2, then conflicts on k1: aborted, k2 released.
	tb := a.mustCall(t, "api_step", 1, stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
	wantStatus(t, "begin B", tb.Status, chainBpfdbStatusBPFDB_OK)
	out = a.mustCall(t, "api_step", 1, stepIn(apitest.ApitestApiStepKindAPI_SET, tb, "k2", "B"))
	wantStatus(t, "B set k2", out.Status, chainBpfdbStatusBPFDB_OK)
	out = a.mustCall(t, "api_step", 1, stepIn(apitest.ApitestApiStepKindAPI_GET_FOR_UPDATE, tb, "k1", ""))
	wantStatus(t, "B get k1", out.Status, chainBpfdbStatusBPFDB_ERR_CONFLICT)
	out = a.mustCall(t, "api_step", 1, stepIn(apitest.ApitestApiStepKindAPI_COMMIT, tb, "", ""))
	wantStatus(t, "B commit after its conflict", out.Status, chainBpfdbStatusBPFDB_ERR_TXN_INVALID)
	if err := db.Set([]byte("k2"), []byte("engine")); err != nil {
		t.Fatalf("k2 still locked after B aborted: %v", err)
	}
	specWant(t, db, []byte("k2"), []byte("engine"))

	// An engine transaction's lock conflicts a kernel transaction too.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Set([]byte("k3"), []byte("engine")); err != nil {
		t.Fatal(err)
	}
	tc := a.mustCall(t, "api_step", 2, stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
	out = a.mustCall(t, "api_step", 2, stepIn(apitest.ApitestApiStepKindAPI_SET, tc, "k3", "C"))
	wantStatus(t, "C set k3 the engine holds", out.Status, chainBpfdbStatusBPFDB_ERR_CONFLICT)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	// A commits its write.
	out = a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_SET, ta, "k1", "A"))
	wantStatus(t, "A set k1", out.Status, chainBpfdbStatusBPFDB_OK)
	specWant(t, db, []byte("k1"), []byte("v1")) // not visible before commit
	out = a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_COMMIT, ta, "", ""))
	wantStatus(t, "A commit", out.Status, chainBpfdbStatusBPFDB_OK)
	if out.Lsn == 0 {
		t.Fatal("A commit: no LSN")
	}
	db.waitVisible(out.Lsn)
	specWant(t, db, []byte("k1"), []byte("A"))
	if atomic.LoadUint64(&db.ctl.KtxnClaimed) != 0 {
		t.Fatalf("kernel slots still claimed: %#x", db.ctl.KtxnClaimed)
	}
}

// An abandoned kernel transaction is reaped after Options.TxnTimeout:
// its locks are released, its writes never applied, its handle stale.
func TestAPIAbandonedTxnReaped(t *testing.T) {
	db := openTest(t, Options{TxnTimeout: 200 * time.Millisecond})
	a := loadAPI(t, db)
	tx := a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
	wantStatus(t, "begin", tx.Status, chainBpfdbStatusBPFDB_OK)
	out := a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_SET, tx, "held", "kernel"))
	wantStatus(t, "set", out.Status, chainBpfdbStatusBPFDB_OK)
	if err := db.Set([]byte("held"), []byte("engine")); !errors.Is(err, ErrConflict) {
		t.Fatalf("Set of a key the kernel transaction holds: %v, want ErrConflict", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for db.KernelTxnsReaped() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if db.KernelTxnsReaped() != 1 {
		t.Fatalf("%d kernel transactions reaped, want 1", db.KernelTxnsReaped())
	}
	if err := db.Set([]byte("held"), []byte("engine")); err != nil {
		t.Fatalf("Set after the reaper: %v", err)
	}
	out = a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_COMMIT, tx, "", ""))
	wantStatus(t, "commit of a reaped transaction", out.Status, chainBpfdbStatusBPFDB_ERR_TXN_INVALID)
	specWant(t, db, []byte("held"), []byte("engine"))
	if atomic.LoadUint64(&db.ctl.KtxnClaimed) != 0 {
		t.Fatalf("kernel slots still claimed: %#x", db.ctl.KtxnClaimed)
	}
}

// Every kernel transaction slot can be taken, and one more is refused.
func TestAPIKernelTxnSlots(t *testing.T) {
	db := openTest(t, Options{})
	a := loadAPI(t, db)
	var held []*apiSlot
	for i := 0; i < KernelTxns; i++ {
		tx := a.mustCall(t, "api_step", uint32(i), stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
		wantStatus(t, "begin", tx.Status, chainBpfdbStatusBPFDB_OK)
		if tx.Tx.Slot < uint32(MaxTxns) {
			t.Fatalf("kernel transaction in the engine's slot %d", tx.Tx.Slot)
		}
		held = append(held, tx)
	}
	out := a.mustCall(t, "api_step", 63, stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
	wantStatus(t, "begin past the kernel slots", out.Status, chainBpfdbStatusBPFDB_ERR_TXN_TABLE_FULL)
	for i, tx := range held {
		out = a.mustCall(t, "api_step", uint32(i), stepIn(apitest.ApitestApiStepKindAPI_ABORT, tx, "", ""))
		wantStatus(t, "abort", out.Status, chainBpfdbStatusBPFDB_OK)
	}
	if atomic.LoadUint64(&db.ctl.KtxnClaimed) != 0 {
		t.Fatalf("kernel slots still claimed: %#x", db.ctl.KtxnClaimed)
	}
}

// The API's programs load, and are verified, as every program type the
// header names as supported, and each stays within the verifier budget.
func TestAPIProgramTypes(t *testing.T) {
	db := openTest(t, Options{})
	base, err := apitest.LoadApitest()
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range base.Programs {
		spec := base.Copy()
		for other := range spec.Programs {
			if other != name {
				delete(spec.Programs, other)
			}
		}
		repl, err := db.FitSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl,
			Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
		if err != nil {
			msg := err.Error()
			var ve *ebpf.VerifierError
			if errors.As(err, &ve) {
				msg = strings.Join(ve.Log[max(0, len(ve.Log)-20):], "\n")
			}
			t.Errorf("%s (%v): %s", name, p.Type, msg)
			continue
		}
		log := coll.Programs[name].VerifierLog
		var insns int
		if i := strings.Index(log, "processed"); i >= 0 {
			fmt.Sscanf(log[i:], "processed %d insns", &insns)
		}
		t.Logf("%s (%v, %s): verifier processed %d instructions", name, p.Type, p.SectionName, insns)
		if insns == 0 || insns > verifierBudget {
			t.Errorf("%s: verifier processed %d instructions, budget %d", name, insns, verifierBudget)
		}
		coll.Close()
	}
}

// A hot upgrade swaps the chain's programs and keeps the maps: a BPF
// program loaded against the store before it goes on working after it,
// on the same data, and the engine sees its writes.
func TestAPISurvivesUpgrade(t *testing.T) {
	db := openTest(t, Options{Dir: t.TempDir()})
	a := loadAPI(t, db)
	in := &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey("up")}, Delta: 5}
	wantStatus(t, "incr before the upgrade", a.mustCall(t, "api_incr", 0, in).Status, chainBpfdbStatusBPFDB_OK)
	if err := db.Upgrade(db.Build() + 1); err != nil {
		t.Fatal(err)
	}
	out := a.mustCall(t, "api_incr", 0, in)
	wantStatus(t, "incr after the upgrade", out.Status, chainBpfdbStatusBPFDB_OK)
	if out.Sum != 10 {
		t.Fatalf("after the upgrade the counter is %d, want 10", out.Sum)
	}
	specWant(t, db, []byte("up"), []byte("10"))
	specSet(t, db, []byte("up"), []byte("20")) // the new chain writes, the old program reads
	out = a.mustCall(t, "api_incr", 0, in)
	if out.Sum != 25 {
		t.Fatalf("the BPF program read %d after the new chain wrote 20, want 25", out.Sum-5)
	}
}

// OnCommit hears of every committed write: the engine's, a transaction's,
// a BPF program's through the kernel API, the expirer's; a long key whole.
func TestOnCommitSeesEveryWriter(t *testing.T) {
	if _, ok := openTest(t, Options{}).OnCommit(func([]byte) {}); ok {
		t.Fatal("OnCommit without a log: registered")
	}
	db := openTest(t, Options{Dir: t.TempDir()})
	seen := make(chan string, 64)
	remove, ok := db.OnCommit(func(key []byte) { seen <- string(key) })
	if !ok {
		t.Fatal("OnCommit with a log: not registered")
	}
	long := longKeyOf(100, "oc")
	specSet(t, db, []byte("oc-set"), []byte("v"))
	specSet(t, db, long, []byte("v"))
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Set([]byte("oc-txn"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	a := loadAPI(t, db)
	wantStatus(t, "kernel set", a.mustCall(t, "api_set", 0, setIn("oc-kernel", "v")).Status, chainBpfdbStatusBPFDB_OK)
	if ops := []Op{{Kind: OpSet, Key: []byte("oc-expiring"), Value: []byte("v"), ExpireAt: db.Now() + 20}}; db.Batch(ops) != nil || ops[0].Err != nil {
		t.Fatal(ops[0].Err)
	}
	want := map[string]int{"oc-set": 1, string(long): 1, "oc-txn": 1, "oc-kernel": 1, "oc-expiring": 2} // set, then expired
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case k := <-seen:
			if want[k]--; want[k] == 0 {
				delete(want, k)
			}
		case <-deadline:
			t.Fatalf("OnCommit did not hear of %v", want)
		}
	}
	remove()
	specSet(t, db, []byte("oc-after"), []byte("v"))
	if err := db.SyncLog(); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-seen:
		t.Fatalf("after remove: heard of %q", k)
	case <-time.After(100 * time.Millisecond):
	}
}
