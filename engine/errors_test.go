// Specification: every error path returns its typed error (errors.Is), a
// limit's error names the limit, and a failed operation or transaction
// applies nothing: the store reads exactly as before, and the keys the
// failed transaction touched are free for the next writer.
package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// specSnapshot records the values of keys (nil for absent) to compare later.
func specSnapshot(tb testing.TB, e *Engine, keys ...[]byte) map[string][]byte {
	tb.Helper()
	ops := make([]Op, len(keys))
	for i, k := range keys {
		ops[i] = Op{Kind: OpGet, Key: k}
	}
	if err := e.Batch(ops); err != nil {
		tb.Fatal(err)
	}
	m := map[string][]byte{}
	for i := range ops {
		switch {
		case ops[i].Err == nil:
			m[string(keys[i])] = ops[i].Value
		case errors.Is(ops[i].Err, ErrNotFound):
			m[string(keys[i])] = nil
		default:
			tb.Fatalf("Get(%q): %v", keys[i], ops[i].Err)
		}
	}
	return m
}

// specUnchanged checks the keys of before still read as they did.
func specUnchanged(tb testing.TB, e *Engine, before map[string][]byte) {
	tb.Helper()
	keys := make([][]byte, 0, len(before))
	for k := range before {
		keys = append(keys, []byte(k))
	}
	after := specSnapshot(tb, e, keys...)
	for k, v := range before {
		if w := after[k]; !bytes.Equal(v, w) || (v == nil) != (w == nil) {
			tb.Fatalf("key %q changed from %q to %q, but the failed operation must apply nothing", k, v, w)
		}
	}
}

// specMentions checks err's message names the limit.
func specMentions(tb testing.TB, err error, parts ...string) {
	tb.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			tb.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// specFree checks that a write lock on key can be taken now (a failed
// transaction released its locks).
func specFree(tb testing.TB, e *Engine, key []byte) {
	tb.Helper()
	tx, err := e.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Abort()
	if err := tx.Set(key, []byte("probe")); err != nil {
		tb.Fatalf("key %q is still locked after its transaction failed: %v", key, err)
	}
}

func TestErrKeyTooLong(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	long := bytes.Repeat([]byte("L"), DefaultMaxKeyLen+1)
	ok := bytes.Repeat([]byte("L"), DefaultMaxKeyLen)
	specSet(t, e, ok, []byte("v"))
	before := specSnapshot(t, e, ok, []byte("other"))

	check := func(what string, err error) {
		t.Helper()
		specIs(t, what, err, ErrKeyTooLong)
		specMentions(t, err, "512")
	}
	check("Set", e.Set(long, []byte("v")))
	_, err := e.Get(long)
	check("Get", err)
	check("Delete", e.Delete(long))

	// In a Batch only that op fails; the others run.
	ops := []Op{{Kind: OpSet, Key: []byte("other"), Value: []byte("1")}, {Kind: OpSet, Key: long, Value: []byte("v")}, {Kind: OpGet, Key: []byte("other")}}
	if err := e.Batch(ops); err != nil {
		t.Fatal(err)
	}
	check("Batch op", ops[1].Err)
	if ops[0].Err != nil || string(ops[2].Value) != "1" {
		t.Fatalf("Batch: the valid ops did not run: %v %v %q", ops[0].Err, ops[2].Err, ops[2].Value)
	}
	specSet(t, e, []byte("other"), nil)
	before["other"] = []byte{}

	// Exec applies nothing.
	check("Exec", e.Exec([]Op{{Kind: OpSet, Key: []byte("other"), Value: []byte("2")}, {Kind: OpSet, Key: long, Value: []byte("v")}}))
	specUnchanged(t, e, before)

	// In a transaction the bad argument is rejected and the transaction
	// stays as it was (txn.go: "a bad argument leaves the transaction as it was").
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if err := tx.Set(ok, []byte("in txn")); err != nil {
		t.Fatal(err)
	}
	check("txn Set", tx.Set(long, []byte("v")))
	_, err = tx.Get(long)
	check("txn Get", err)
	check("txn Delete", tx.Delete(long))
	specUnchanged(t, e, before)
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit after rejected arguments: %v", err)
	}
	specWant(t, e, ok, []byte("in txn"))
}

func TestErrValueTooLarge(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, MaxMemory: 8 << 20})
	k := []byte("k")
	specSet(t, e, k, []byte("small"))
	before := specSnapshot(t, e, k, []byte("new"))
	big := bytes.Repeat([]byte("V"), DefaultMaxValueLen+1)
	check := func(what string, err error) {
		t.Helper()
		specIs(t, what, err, ErrValueTooLarge)
		specMentions(t, err, "1048576")
		specMentions(t, err, "MaxValueLen")
	}
	check("Set", e.Set(k, big))
	check("Set of a new key", e.Set([]byte("new"), big))
	ops := []Op{{Kind: OpSet, Key: k, Value: big}}
	if err := e.Batch(ops); err != nil {
		t.Fatal(err)
	}
	check("Batch op", ops[0].Err)
	check("Exec", e.Exec([]Op{{Kind: OpSet, Key: []byte("new"), Value: []byte("x")}, {Kind: OpSet, Key: k, Value: big}}))
	specUnchanged(t, e, before)

	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	check("txn Set", tx.Set(k, big))
	if err := tx.Set(k, bytes.Repeat([]byte("V"), DefaultMaxValueLen)); err != nil {
		t.Fatalf("a value of exactly MaxValueLen: %v", err)
	}
	specUnchanged(t, e, before)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	specWant(t, e, k, bytes.Repeat([]byte("V"), DefaultMaxValueLen))
}

func TestErrStoreFull(t *testing.T) {
	t.Run("index", func(t *testing.T) {
		const maxKeys = 32
		e := openTest(t, Options{MaxKeys: maxKeys})
		n := 0
		var err error
		for i := 0; i < 4*maxKeys; i++ {
			if err = e.Set(specKey("k", i), specItoa(int64(i))); err != nil {
				break
			}
			n++
		}
		specIs(t, "Set past MaxKeys", err, ErrStoreFull)
		specMentions(t, err, fmt.Sprint(maxKeys), "MaxKeys")
		if n != maxKeys {
			t.Fatalf("the index took %d keys before ErrStoreFull, want MaxKeys = %d", n, maxKeys)
		}
		specAbsent(t, e, specKey("k", n))
		for i := 0; i < n; i++ {
			specWant(t, e, specKey("k", i), specItoa(int64(i)))
		}
		// A full index still takes writes to existing keys.
		specSet(t, e, specKey("k", 0), []byte("updated"))
		// A deleted key gives its room back at once (no snapshot needs it).
		if err := e.Delete(specKey("k", 1)); err != nil {
			t.Fatal(err)
		}
		specSet(t, e, []byte("in the freed room"), []byte("v"))
		// A transaction that inserts a new key fails whole.
		tx, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Abort()
		if err := tx.Set(specKey("k", 2), []byte("in txn")); err != nil {
			t.Fatal(err)
		}
		err = tx.Set([]byte("brand new"), []byte("v"))
		specIs(t, "txn Set of a new key", err, ErrStoreFull)
		specMentions(t, err, fmt.Sprint(maxKeys))
		specIs(t, "Commit after ErrStoreFull", tx.Commit(), ErrTxnDone)
		specWant(t, e, specKey("k", 2), specItoa(2))
		specAbsent(t, e, []byte("brand new"))
		specFree(t, e, specKey("k", 2))
		specIs(t, "Exec inserting a new key", e.Exec([]Op{{Kind: OpSet, Key: specKey("k", 3), Value: []byte("x")},
			{Kind: OpSet, Key: []byte("brand new 2"), Value: []byte("v")}}), ErrStoreFull)
		specWant(t, e, specKey("k", 3), specItoa(3))
	})

	t.Run("value store", func(t *testing.T) {
		e := openTest(t, smallStore(1024, MinValuePages))
		val := func(i int) []byte { return specPattern(100, byte(i)) }
		// Values of other classes, taken first, keep their pages.
		specSet(t, e, []byte("small"), specPattern(10, 1))
		specSet(t, e, []byte("large"), specPattern(1000, 1))
		specSet(t, e, []byte("empty"), nil)
		n := 0
		var err error
		for i := 0; i < int(MinValuePages)*PageSize/128+1; i++ {
			if err = e.Set(specKey("s", i), val(i)); err != nil {
				break
			}
			n++
		}
		specIs(t, "Set past the value store", err, ErrStoreFull)
		specMentions(t, err, "128", "MaxMemory", fmt.Sprint(MinValuePages))
		u, uerr := e.MemoryUse()
		if uerr != nil {
			t.Fatal(uerr)
		}
		if u.PagesUsed != u.Pages || u.SlotsUsed[2] != uint64(n) || n != int(MinValuePages-2)*PageSize/128 {
			t.Fatalf("128-byte values took %d slots (%+v) before ErrStoreFull, want every page but small's and large's", n, u)
		}
		specAbsent(t, e, specKey("s", n))
		for i := 0; i < n; i++ {
			specWant(t, e, specKey("s", i), val(i))
		}
		// Classes with free slots in their pages, and empty values, go on.
		specSet(t, e, []byte("small"), specPattern(10, 1))
		specSet(t, e, []byte("large"), specPattern(1000, 1))
		specSet(t, e, []byte("empty"), nil)
		// A transaction whose last write needs a class-2 slot fails whole,
		// and frees the slots its earlier writes took.
		before := specSnapshot(t, e, []byte("small"), []byte("large"), specKey("s", 0))
		for try := 0; try < 3; try++ {
			tx, err := e.Begin()
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Set([]byte("small"), specPattern(20, 2)); err != nil {
				t.Fatal(err)
			}
			if err := tx.Set([]byte("large"), specPattern(900, 2)); err != nil {
				t.Fatal(err)
			}
			err = tx.Set(specKey("s", 0), specPattern(120, 2))
			specIs(t, "txn Set into a full class", err, ErrStoreFull)
			specMentions(t, err, "128")
			specIs(t, "Commit", tx.Commit(), ErrTxnDone)
			specUnchanged(t, e, before)
		}
		specFree(t, e, specKey("s", 0))
		specIs(t, "Exec into a full class", e.Exec([]Op{{Kind: OpSet, Key: []byte("small"), Value: []byte("x")},
			{Kind: OpSet, Key: []byte("s-new"), Value: specPattern(70, 3)}}), ErrStoreFull)
		specUnchanged(t, e, before)
	})
}

func TestErrTxnTableFull(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 512, TxnTimeout: -1})
	specSet(t, e, []byte("k"), []byte("v"))
	txns := make([]*Txn, 0, MaxTxns)
	defer func() {
		for _, tx := range txns {
			tx.Abort()
		}
	}()
	for i := 0; i < MaxTxns; i++ {
		var tx *Txn
		var err error
		if i%2 == 0 {
			tx, err = e.Begin()
		} else {
			tx, err = e.BeginReadOnly()
		}
		if err != nil {
			t.Fatalf("Begin #%d of %d: %v", i+1, MaxTxns, err)
		}
		txns = append(txns, tx)
		if i%4 == 0 { // make some of them real in the kernel, holding locks
			if err := tx.Set(specKey("held", i), []byte("x")); err != nil {
				t.Fatal(err)
			}
		} else if i%4 == 1 {
			if _, err := tx.Get([]byte("k")); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := e.Begin()
	specIs(t, "Begin past MaxTxns", err, ErrTxnTableFull)
	specMentions(t, err, fmt.Sprint(MaxTxns))
	_, err = e.BeginReadOnly()
	specIs(t, "BeginReadOnly past MaxTxns", err, ErrTxnTableFull)
	specIs(t, "Exec with a full table", e.Exec([]Op{{Kind: OpSet, Key: []byte("k"), Value: []byte("exec")}}), ErrTxnTableFull)
	specWant(t, e, []byte("k"), []byte("v"))
	// Autocommit needs no transaction slot.
	specSet(t, e, []byte("auto"), []byte("ok"))

	// Ending any transaction frees a slot, which is then fully usable.
	if err := txns[0].Commit(); err != nil {
		t.Fatal(err)
	}
	if err := txns[1].Abort(); err != nil {
		t.Fatal(err)
	}
	if err := txns[2].Commit(); err != nil { // never ran in the kernel
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		tx, err := e.Begin()
		if err != nil {
			t.Fatalf("Begin after freeing slots: %v", err)
		}
		txns = append(txns, tx)
		if err := tx.Set(specKey("again", i), []byte("y")); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		specWant(t, e, specKey("again", i), []byte("y"))
	}
	for i := 0; i < 3; i++ { // refill the three slots
		tx, err := e.BeginReadOnly()
		if err != nil {
			t.Fatalf("Begin after freeing slots: %v", err)
		}
		txns = append(txns, tx)
	}
	_, err = e.Begin()
	specIs(t, "Begin with the table full again", err, ErrTxnTableFull)
	specWant(t, e, specKey("held", 0), []byte("x"))
	specAbsent(t, e, specKey("held", 4))
}

func TestErrWriteSetFull(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024})
	specSet(t, e, specKey("w", 0), []byte("orig"))
	keys := make([][]byte, MaxTxnKeys+1)
	for i := range keys {
		keys[i] = specKey("w", i)
	}
	before := specSnapshot(t, e, keys...)

	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	for i := 0; i < MaxTxnKeys; i++ {
		if err := tx.Set(keys[i], []byte("txn")); err != nil {
			t.Fatalf("Set of distinct key %d of %d: %v", i+1, MaxTxnKeys, err)
		}
	}
	// Re-writing a key it holds takes no new entry.
	if err := tx.Set(keys[0], []byte("txn again")); err != nil {
		t.Fatal(err)
	}
	err = tx.Set(keys[MaxTxnKeys], []byte("txn"))
	specIs(t, "Set of key MaxTxnKeys+1", err, ErrWriteSetFull)
	specMentions(t, err, fmt.Sprint(MaxTxnKeys))
	specIs(t, "Commit", tx.Commit(), ErrTxnDone)
	specUnchanged(t, e, before)
	specFree(t, e, keys[0])
	specFree(t, e, keys[MaxTxnKeys-1])

	// Reads count too: a read-write transaction locks what it reads.
	tx2, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Abort()
	for i := 0; i < MaxTxnKeys; i++ {
		if _, err := tx2.Get(keys[i]); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	specIs(t, "Get of key MaxTxnKeys+1", func() error { _, err := tx2.Get(keys[MaxTxnKeys]); return err }(), ErrWriteSetFull)

	// Exec across several runs applies nothing either.
	ops := make([]Op, 0, len(keys))
	for _, k := range keys {
		ops = append(ops, Op{Kind: OpSet, Key: k, Value: []byte("exec")})
	}
	specIs(t, "Exec of MaxTxnKeys+1 keys", e.Exec(ops), ErrWriteSetFull)
	specUnchanged(t, e, before)
	if err := e.Exec(ops[:MaxTxnKeys]); err != nil {
		t.Fatalf("Exec of MaxTxnKeys keys: %v", err)
	}
	specWant(t, e, keys[MaxTxnKeys-1], []byte("exec"))
}

func TestErrVersionsFull(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, TxnTimeout: -1})
	k, other := []byte("k"), []byte("other")
	specSet(t, e, k, []byte("v0"))
	specSet(t, e, other, []byte("o0"))
	reader, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Abort()
	if v, err := reader.Get(k); err != nil || string(v) != "v0" {
		t.Fatalf("reader Get = %q, %v", v, err)
	}
	// Pin every version slot: a reader begins after each overwrite, so
	// each sees, and keeps, a different version of k.
	last := []byte("v0")
	for i := 1; i <= 4*MaxVersions; i++ {
		v := fmt.Appendf(nil, "v%d", i)
		err := e.Set(k, v)
		if errors.Is(err, ErrVersionsFull) {
			specMentions(t, err, fmt.Sprint(MaxVersions))
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = v
		if i == 4*MaxVersions {
			t.Fatalf("%d overwrites with a reader on each version never returned ErrVersionsFull", i)
		}
		r, err := e.BeginReadOnly()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Abort()
	}
	specWant(t, e, k, last)
	before := specSnapshot(t, e, k, other)

	// A transaction that needs a new version of k fails whole.
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if err := tx.Set(other, []byte("o1")); err != nil {
		t.Fatal(err)
	}
	err = tx.Set(k, []byte("txn"))
	specIs(t, "txn Set", err, ErrVersionsFull)
	specIs(t, "Commit", tx.Commit(), ErrTxnDone)
	specUnchanged(t, e, before)
	specFree(t, e, other)
	specIs(t, "Exec", e.Exec([]Op{{Kind: OpSet, Key: other, Value: []byte("o2")}, {Kind: OpDelete, Key: k}}), ErrVersionsFull)
	specIs(t, "Delete", e.Delete(k), ErrVersionsFull)
	specUnchanged(t, e, before)
	if v, err := reader.Get(k); err != nil || string(v) != "v0" {
		t.Fatalf("reader Get after the failures = %q, %v; want v0", v, err)
	}
	if err := reader.Commit(); err != nil {
		t.Fatal(err)
	}
	specSet(t, e, k, []byte("free again"))
}

func TestErrReadOnly(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	specSet(t, e, []byte("k"), []byte("v"))
	before := specSnapshot(t, e, []byte("k"), []byte("new"))
	ro, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Abort()
	specIs(t, "Set before any read", ro.Set([]byte("k"), []byte("w")), ErrReadOnly)
	if _, err := ro.Get([]byte("k")); err != nil {
		t.Fatal(err)
	}
	specIs(t, "Set", ro.Set([]byte("k"), []byte("w")), ErrReadOnly)
	specIs(t, "Set of a new key", ro.Set([]byte("new"), []byte("w")), ErrReadOnly)
	specIs(t, "Delete", ro.Delete([]byte("k")), ErrReadOnly)
	ro.Commit()
	specUnchanged(t, e, before)
}

func TestErrTxnDone(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	specSet(t, e, []byte("k"), []byte("v"))
	ends := []struct {
		name string
		end  func(t *testing.T, tx *Txn)
	}{
		{"commit", func(t *testing.T, tx *Txn) {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}},
		{"abort", func(t *testing.T, tx *Txn) {
			if err := tx.Abort(); err != nil {
				t.Fatal(err)
			}
		}},
		{"conflict", func(t *testing.T, tx *Txn) {
			holder, err := e.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Abort()
			if err := holder.Set([]byte("held"), []byte("x")); err != nil {
				t.Fatal(err)
			}
			specIs(t, "Get of a held key", func() error { _, err := tx.Get([]byte("held")); return err }(), ErrConflict)
		}},
	}
	for _, end := range ends {
		for _, ro := range []bool{false, true} {
			if ro && end.name == "conflict" {
				continue // read-only transactions never conflict
			}
			t.Run(fmt.Sprintf("%s/readonly=%v", end.name, ro), func(t *testing.T) {
				tx, err := e.begin(ro)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Get([]byte("k")); err != nil {
					t.Fatal(err)
				}
				end.end(t, tx)
				_, err = tx.Get([]byte("k"))
				specIs(t, "Get", err, ErrTxnDone)
				specIs(t, "Commit", tx.Commit(), ErrTxnDone)
				if !ro {
					specIs(t, "Set", tx.Set([]byte("k"), []byte("late")), ErrTxnDone)
					specIs(t, "Delete", tx.Delete([]byte("k")), ErrTxnDone)
				}
				if err := tx.Abort(); err != nil {
					t.Fatalf("Abort of an ended transaction: %v, want nil", err)
				}
				specWant(t, e, []byte("k"), []byte("v"))
			})
		}
	}
}

func TestErrConflictNoWait(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, TxnTimeout: -1})
	k := []byte("k")
	specSet(t, e, k, []byte("committed"))

	t.Run("exclusive", func(t *testing.T) {
		t1, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer t1.Abort()
		if err := t1.Set(k, []byte("t1")); err != nil {
			t.Fatal(err)
		}
		for _, op := range []struct {
			name string
			do   func(t2 *Txn) error
		}{
			{"Get", func(t2 *Txn) error { _, err := t2.Get(k); return err }},
			{"Set", func(t2 *Txn) error { return t2.Set(k, []byte("t2")) }},
			{"Delete", func(t2 *Txn) error { return t2.Delete(k) }},
		} {
			t2, err := e.Begin()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = op.do(t2)
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("txn %s of a locked key took %v: no-wait must not wait", op.name, d)
			}
			specIs(t, "txn "+op.name+" of a key another txn wrote", err, ErrConflict)
			specIs(t, "its Commit", t2.Commit(), ErrTxnDone)
		}
		// Autocommit writes conflict too (after at most a brief retry).
		start := time.Now()
		specIs(t, "autocommit Set", e.Set(k, []byte("auto")), ErrConflict)
		specIs(t, "autocommit Delete", e.Delete(k), ErrConflict)
		if d := time.Since(start); d > time.Second {
			t.Errorf("autocommit writes of a locked key took %v", d)
		}
		// Reads that take no lock see the last commit, not the buffered write.
		specWant(t, e, k, []byte("committed"))
		ops := []Op{{Kind: OpGet, Key: k}}
		if err := e.Exec(ops); err != nil || string(ops[0].Value) != "committed" {
			t.Fatalf("snapshot read of a locked key = %q, %v", ops[0].Value, err)
		}
		if err := t1.Commit(); err != nil {
			t.Fatalf("the lock holder's Commit: %v", err)
		}
		specWant(t, e, k, []byte("t1"))
		specSet(t, e, k, []byte("committed"))
	})

	t.Run("shared", func(t *testing.T) {
		r1, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer r1.Abort()
		if _, err := r1.Get(k); err != nil {
			t.Fatal(err)
		}
		r2, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Abort()
		if v, err := r2.Get(k); err != nil || string(v) != "committed" {
			t.Fatalf("a second shared reader: %q, %v", v, err)
		}
		specIs(t, "autocommit Set of a key read by a txn", e.Set(k, []byte("auto")), ErrConflict)
		// Upgrading a shared lock another txn shares fails, and frees r2's lock.
		specIs(t, "upgrade with two readers", r2.Set(k, []byte("r2")), ErrConflict)
		if err := r1.Set(k, []byte("r1")); err != nil {
			t.Fatalf("upgrade by the sole reader: %v", err)
		}
		if err := r1.Commit(); err != nil {
			t.Fatal(err)
		}
		specWant(t, e, k, []byte("r1"))
	})
}

func TestErrAbortAppliesNothing(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, TxnTimeout: -1})
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
	specSet(t, e, keys[0], []byte("a0"))
	specSet(t, e, keys[1], []byte("b0"))
	specSet(t, e, keys[2], []byte("c0"))
	before := specSnapshot(t, e, keys...)

	t.Run("user abort", func(t *testing.T) {
		tx, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []error{
			tx.Set(keys[0], []byte("a1")),
			tx.Set(keys[3], []byte("d1")),
			tx.Delete(keys[1]),
			tx.Set(keys[2], specPattern(700, 1)),
		} {
			if step != nil {
				t.Fatal(step)
			}
		}
		if err := tx.Abort(); err != nil {
			t.Fatal(err)
		}
		specUnchanged(t, e, before)
		for _, k := range keys {
			specFree(t, e, k)
		}
	})

	t.Run("conflict abort", func(t *testing.T) {
		holder, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Abort()
		if err := holder.Set(keys[2], []byte("holder")); err != nil {
			t.Fatal(err)
		}
		tx, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Abort()
		if err := tx.Set(keys[0], []byte("a2")); err != nil {
			t.Fatal(err)
		}
		if err := tx.Delete(keys[1]); err != nil {
			t.Fatal(err)
		}
		if err := tx.Set(keys[3], []byte("d2")); err != nil {
			t.Fatal(err)
		}
		specIs(t, "Set of the held key", tx.Set(keys[2], []byte("c2")), ErrConflict)
		specIs(t, "Commit", tx.Commit(), ErrTxnDone)
		specUnchanged(t, e, before)
		// Its locks are gone, even while the holder still holds its own.
		specFree(t, e, keys[0])
		specFree(t, e, keys[1])
		specSet(t, e, keys[3], []byte("d3"))
		if err := holder.Commit(); err != nil {
			t.Fatal(err)
		}
		specWant(t, e, keys[2], []byte("holder"))
		specWant(t, e, keys[0], []byte("a0"))
		specWant(t, e, keys[1], []byte("b0"))
	})
}

func TestErrExecAllOrNothing(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 256, TxnTimeout: -1})
	specSet(t, e, []byte("a"), []byte("a0"))
	specSet(t, e, []byte("held"), []byte("h0"))
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("held")}
	for i := 0; i < 80; i++ {
		keys = append(keys, specKey("x", i))
	}
	before := specSnapshot(t, e, keys...)
	holder, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Abort()
	if err := holder.Set([]byte("held"), []byte("holder")); err != nil {
		t.Fatal(err)
	}

	// The failing op at the start, the middle and the end, in one run and
	// spanning several runs.
	for _, n := range []int{0, 1, 30, 61, 62, 63, 80} {
		for _, kind := range []OpKind{OpSet, OpDelete, OpGet} {
			t.Run(fmt.Sprintf("%d ops before a conflicting %v", n, kind), func(t *testing.T) {
				var ops []Op
				for i := 0; i < n; i++ {
					switch i % 3 {
					case 0:
						ops = append(ops, Op{Kind: OpSet, Key: specKey("x", i), Value: []byte("exec")})
					case 1:
						ops = append(ops, Op{Kind: OpGet, Key: []byte("a")})
					default:
						ops = append(ops, Op{Kind: OpDelete, Key: []byte("a")})
					}
				}
				ops = append(ops, Op{Kind: kind, Key: []byte("held"), Value: []byte("exec")},
					Op{Kind: OpSet, Key: []byte("b"), Value: []byte("exec")})
				err := e.Exec(ops)
				specIs(t, "Exec", err, ErrConflict)
				specIs(t, "the failing op's Err", ops[n].Err, ErrConflict)
				specUnchanged(t, e, before)
				specFree(t, e, []byte("a"))
			})
		}
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	// The same Exec now succeeds whole, and its Gets see its own writes.
	ops := []Op{
		{Kind: OpSet, Key: []byte("b"), Value: []byte("b1")},
		{Kind: OpGet, Key: []byte("b")},
		{Kind: OpDelete, Key: []byte("a")},
		{Kind: OpGet, Key: []byte("a")},
		{Kind: OpDelete, Key: []byte("never")},
		{Kind: OpSet, Key: []byte("held"), Value: []byte("h1")},
	}
	if err := e.Exec(ops); err != nil {
		t.Fatal(err)
	}
	if string(ops[1].Value) != "b1" || !errors.Is(ops[3].Err, ErrNotFound) || !errors.Is(ops[4].Err, ErrNotFound) {
		t.Fatalf("Exec results: %q, %v, %v", ops[1].Value, ops[3].Err, ops[4].Err)
	}
	specWant(t, e, []byte("b"), []byte("b1"))
	specAbsent(t, e, []byte("a"))
	specWant(t, e, []byte("held"), []byte("h1"))
}

func TestErrClosed(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	specSet(t, e, []byte("k"), []byte("v"))
	open, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := open.Set([]byte("k"), []byte("uncommitted")); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = e.Get([]byte("k"))
	specIs(t, "Get", err, ErrClosed)
	specIs(t, "Set", e.Set([]byte("k"), nil), ErrClosed)
	specIs(t, "Delete", e.Delete([]byte("k")), ErrClosed)
	specIs(t, "Batch", e.Batch([]Op{{Kind: OpGet, Key: []byte("k")}}), ErrClosed)
	specIs(t, "Exec", e.Exec([]Op{{Kind: OpGet, Key: []byte("k")}}), ErrClosed)
	_, err = e.Stats()
	specIs(t, "Stats", err, ErrClosed)
	specIs(t, "Commit of a txn open at Close", open.Commit(), ErrTxnDone)
}

// TestVerifierRejectionIsNotPermissionError: a program the verifier rejects
// (EACCES) is a bug in the chain, not missing privileges. Reporting it as
// ErrNotPermitted makes openTest skip every test instead of failing.
func TestVerifierRejectionIsNotPermissionError(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R0, asm.R5), // R5 is uninitialized: the verifier rejects this
			asm.Return(),
		},
	})
	if err == nil {
		prog.Close()
		t.Fatal("the verifier accepted a read of an uninitialized register")
	}
	if lerr := loadError(err); errors.Is(lerr, ErrNotPermitted) {
		t.Fatalf("a verifier rejection, as root, is reported as ErrNotPermitted: %v", lerr)
	}
}

// Retryable is the one definition of "nothing applied, run it again": the
// transient refusals are in it, wrapped or not; the lasting ones are not.
func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ErrNotFound, false},
		{ErrConflict, true},
		{fmt.Errorf("%w: a read raced a commit being installed", ErrConflict), true},
		{errRetry, true},
		{ErrVersionsFull, true},
		{ErrLogFull, true},
		{ErrQuiesced, true},
		{ErrTxnTableFull, true},
		{ErrTxnExpired, true},
		{ErrAborted, true},
		{ErrLogUnavailable, false},
		{fmt.Errorf("%w: disk full", ErrLogUnavailable), false},
		{ErrNotDurable, false},
		{ErrKeyTooLong, false},
		{ErrValueTooLarge, false},
		{ErrStoreFull, false},
		{ErrWriteSetFull, false},
		{ErrClosed, false},
	} {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// StatusError gives the statuses BPF programs get from bpfdb_api.h the
// engine's typed errors, naming their limits.
func TestStatusError(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	for _, tc := range []struct {
		status chainBpfdbStatus
		is     error  // nil: no error
		names  string // in the message
	}{
		{chainBpfdbStatusBPFDB_OK, nil, ""},
		{chainBpfdbStatusBPFDB_ERR_CONFLICT, ErrConflict, ""},
		{chainBpfdbStatusBPFDB_ERR_STORE_FULL, ErrStoreFull, "64 keys"},
		{chainBpfdbStatusBPFDB_ERR_LOG_FULL, ErrLogFull, "Options.LogRingBytes"},
		{chainBpfdbStatusBPFDB_ERR_LAYOUT, ErrLayout, "layout"},
		{chainBpfdbStatusBPFDB_ERR_TXN_TABLE_FULL, ErrTxnTableFull, "BPFDB_KERNEL_TXNS"},
		{chainBpfdbStatusBPFDB_ERR_NOT_INTEGER, ErrNotInteger, "not an integer"},
	} {
		err := e.StatusError(int32(tc.status))
		switch {
		case tc.is == nil && tc.names == "" && err != nil:
			t.Errorf("status %d: %v, want nil", tc.status, err)
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("status %d: %v, want %v", tc.status, err, tc.is)
		case tc.names != "" && (err == nil || !strings.Contains(err.Error(), tc.names)):
			t.Errorf("status %d: %v, want it to name %q", tc.status, err, tc.names)
		}
	}
}

// The size classes share one budget: values of any mix of sizes fill the
// value store until no page is left, whatever the class (a 1000-key store
// took 250 values of 600 bytes when each class had a fixed share).
func TestOneMemoryBudget(t *testing.T) {
	for _, sizes := range [][]int{{600}, {20, 100, 600, 1000, 1000, 1000}} {
		e := openTest(t, Options{MaxKeys: 1000})
		n, stored := 0, 0
		var err error
		for ; n < 1000; n++ {
			size := sizes[n%len(sizes)]
			if err = e.Set(specKey("v", n), specPattern(size, byte(n))); err != nil {
				break
			}
			stored += SlabSize(slabClass(size))
		}
		specIs(t, fmt.Sprintf("sizes %v: Set %d", sizes, n), err, ErrStoreFull)
		specMentions(t, err, "MaxMemory")
		u, uerr := e.MemoryUse()
		if uerr != nil {
			t.Fatal(uerr)
		}
		// Every page is carved, and what the values take is all of them
		// but the unused slots of each class's last page.
		if u.PagesUsed != u.Pages || stored < (int(u.Pages)-SlabClasses)*PageSize {
			t.Fatalf("sizes %v: %d values (%d bytes of slots) filled %d of %d pages", sizes, n, stored, u.PagesUsed, u.Pages)
		}
		t.Logf("sizes %v: %d values, %d bytes of slots, in %d pages of %d bytes (MaxMemory %d)", sizes, n, stored, u.Pages, PageSize, e.Options().MaxMemory)
	}
}
