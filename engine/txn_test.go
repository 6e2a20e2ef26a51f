// Specification: what one transaction sees, and what concurrent ones may
// not do to each other.
//
//   - TestWriteSkew: the doctors-on-call anomaly is impossible. Both
//     transactions read x and y and, when both are on call, take the other
//     one off call; under every interleaving (scripted, then concurrent) at
//     most one of them writes and the final state is one a serial order
//     produces.
//   - TestReadYourWrites: a read-write transaction sees its own buffered
//     Sets and Deletes (Delete then Get is ErrNotFound), nobody else does
//     before Commit, and Commit makes all of them visible at once.
//   - TestValueSizes: values at every slab class boundary round-trip byte
//     for byte through autocommit, a transaction's buffer, a snapshot and
//     Exec, and a shorter value never shows a longer one's tail.
//   - TestKeyShapes: keys of length 0, 1, 63 and 64 and binary keys with
//     zero bytes are distinct keys ("a", "a\x00", "\x00", "" ...).
//   - TestSnapshotRepeatableRead: a read-only transaction keeps reading the
//     snapshot it took at its first read: later commits (overwrite, insert,
//     delete) are invisible to it and visible to a newer snapshot.
//   - TestReadOnlySnapshotTakenAtBegin: BeginReadOnly "reads the snapshot
//     of the moment it begins" (txn.go): a commit acknowledged after
//     BeginReadOnly returned and before the first Get is not seen.
//   - TestAutocommitReadsAreAtomic: autocommit operations are transactions
//     executed in order, so reads never observe half of a committed
//     transaction; snapshots see every commit whole; and a snapshot taken
//     after an autocommit Get returned sees at least what that Get saw.
package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// onCall is one doctor's transaction in TestWriteSkew: read x and y and, if
// both are on call ("1"), set other to "0". Steps run one at a time.
type onCall struct {
	tx      *Txn
	other   []byte
	read    map[string]string
	dead    bool // aborted by a conflict
	wrote   bool
	commits bool
}

func (d *onCall) step(t *testing.T, e *Engine, s string) {
	t.Helper()
	if d.dead {
		return
	}
	var err error
	switch s {
	case "rx", "ry":
		key := []byte(s[1:])
		var v []byte
		if v, err = d.tx.Get(key); err == nil {
			d.read[string(key)] = string(v)
		}
	case "w":
		if d.read["x"] == "1" && d.read["y"] == "1" {
			if err = d.tx.Set(d.other, []byte("0")); err == nil {
				d.wrote = true
			}
		}
	case "c":
		if err = d.tx.Commit(); err == nil {
			d.commits = true
		}
	}
	if err != nil {
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("step %q: %v", s, err)
		}
		d.dead = true
		d.wrote = false
		if err := d.tx.Commit(); !errors.Is(err, ErrTxnDone) {
			t.Fatalf("Commit after a conflict: %v, want ErrTxnDone", err)
		}
	}
}

// onCallTxn runs the doctor's transaction to the end, retrying conflicts.
func onCallTxn(e *Engine, other []byte) (wrote bool, err error) {
	for try := 0; try < 1000; try++ {
		wrote, err = func() (bool, error) {
			tx, err := e.Begin()
			if err != nil {
				return false, err
			}
			defer tx.Abort()
			x, err := tx.Get([]byte("x"))
			if err != nil {
				return false, err
			}
			y, err := tx.Get([]byte("y"))
			if err != nil {
				return false, err
			}
			w := string(x) == "1" && string(y) == "1"
			if w {
				if err := tx.Set(other, []byte("0")); err != nil {
					return false, err
				}
			}
			return w, tx.Commit()
		}()
		if !errors.Is(err, ErrConflict) {
			return wrote, err
		}
		time.Sleep(time.Duration(try%5) * 10 * time.Microsecond)
	}
	return false, err
}

func TestWriteSkew(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	x, y := []byte("x"), []byte("y")
	reset := func() {
		if err := e.Exec([]Op{{Kind: OpSet, Key: x, Value: []byte("1")}, {Kind: OpSet, Key: y, Value: []byte("1")}}); err != nil {
			t.Fatal(err)
		}
	}
	// serial reports whether (x, y) is a state a serial order produces.
	serial := func() (string, bool) {
		ops := []Op{{Kind: OpGet, Key: x}, {Kind: OpGet, Key: y}}
		if err := e.Exec(ops); err != nil {
			t.Fatal(err)
		}
		s := string(ops[0].Value) + string(ops[1].Value)
		return s, s == "10" || s == "01"
	}

	// Steps: "1rx" is T1.Get(x), "2w" T2's conditional Set, "1c" T1.Commit.
	// T1 takes y off call, T2 takes x off call.
	schedules := []struct {
		name     string
		steps    []string
		conflict bool // a non-serializable interleaving: someone must fail
	}{
		{"serial T1 T2", []string{"1rx", "1ry", "1w", "1c", "2rx", "2ry", "2w", "2c"}, false},
		{"serial T2 T1", []string{"2rx", "2ry", "2w", "2c", "1rx", "1ry", "1w", "1c"}, false},
		{"both read then T1 writes first", []string{"1rx", "1ry", "2rx", "2ry", "1w", "2w", "1c", "2c"}, true},
		{"both read then T2 writes first", []string{"1rx", "2rx", "1ry", "2ry", "2w", "1w", "2c", "1c"}, true},
		{"interleaved reads, commits reversed", []string{"2rx", "1rx", "2ry", "1ry", "1w", "2w", "2c", "1c"}, true},
		{"T1 writes before T2 reads y", []string{"1rx", "1ry", "2rx", "1w", "2ry", "2w", "1c", "2c"}, false},
		{"T1 commits between T2's reads", []string{"1rx", "1ry", "1w", "2rx", "1c", "2ry", "2w", "2c"}, false},
	}
	for _, sc := range schedules {
		t.Run(sc.name, func(t *testing.T) {
			reset()
			ds := [3]*onCall{}
			for i, other := range [][]byte{nil, y, x} {
				if other == nil {
					continue
				}
				tx, err := e.Begin()
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Abort()
				ds[i] = &onCall{tx: tx, other: other, read: map[string]string{}}
			}
			for _, s := range sc.steps {
				ds[s[0]-'0'].step(t, e, s[1:])
			}
			if ds[1].wrote && ds[1].commits && ds[2].wrote && ds[2].commits {
				t.Fatalf("both transactions read (1,1) and committed their writes: write skew")
			}
			if sc.conflict && !ds[1].dead && !ds[2].dead {
				t.Fatalf("non-serializable schedule ran without a conflict (T1 wrote %v, T2 wrote %v)", ds[1].wrote, ds[2].wrote)
			}
			// Re-run the aborted doctors, as a client would.
			for i, other := range [][]byte{nil, y, x} {
				if other != nil && ds[i].dead {
					if _, err := onCallTxn(e, other); err != nil {
						t.Fatalf("retrying T%d: %v", i, err)
					}
				}
			}
			if s, ok := serial(); !ok {
				t.Fatalf("final (x, y) = %q, not the outcome of a serial order (\"10\" or \"01\")", s)
			}
		})
	}

	t.Run("concurrent", func(t *testing.T) {
		budget := newSpecBudget(300, 3*time.Second)
		for round := 0; budget.ok(round); round++ {
			reset()
			var wg sync.WaitGroup
			var writes atomic.Int32
			for _, other := range [][]byte{x, y} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w, err := onCallTxn(e, other)
					if err != nil {
						t.Errorf("round %d: %v", round, err)
					}
					if w {
						writes.Add(1)
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			if writes.Load() != 1 {
				t.Fatalf("round %d: %d doctors committed a write, want exactly 1", round, writes.Load())
			}
			if s, ok := serial(); !ok {
				t.Fatalf("round %d: final (x, y) = %q, not a serial outcome", round, s)
			}
		}
	})
}

func TestReadYourWrites(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 256})
	specSet(t, e, []byte("k1"), []byte("old1"))
	specSet(t, e, []byte("k2"), []byte("old2"))
	specSet(t, e, []byte("gone"), []byte("here"))

	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	check := func(what string, key, want []byte) {
		t.Helper()
		got, err := tx.Get(key)
		if want == nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: txn Get(%q) = %q, %v; want ErrNotFound", what, key, got, err)
			}
			return
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: txn Get(%q) = %q, %v; want %q", what, key, got, err, want)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check("before writing", []byte("k1"), []byte("old1"))
	must(tx.Set([]byte("k1"), []byte("new1")))
	check("own Set", []byte("k1"), []byte("new1"))
	must(tx.Set([]byte("k1"), []byte("newer1, a longer value in another size class")))
	check("second Set of a key", []byte("k1"), []byte("newer1, a longer value in another size class"))
	must(tx.Set([]byte("k1"), []byte("n1")))
	check("third, shorter Set", []byte("k1"), []byte("n1"))
	must(tx.Set([]byte("fresh"), []byte("born")))
	check("own insert", []byte("fresh"), []byte("born"))
	must(tx.Delete([]byte("gone")))
	check("own Delete", []byte("gone"), nil)
	specIs(t, "Delete of a key deleted in the txn", tx.Delete([]byte("gone")), ErrNotFound)
	must(tx.Set([]byte("k2"), []byte("tmp")))
	must(tx.Delete([]byte("k2")))
	check("Set then Delete", []byte("k2"), nil)
	must(tx.Set([]byte("k2"), []byte("reborn")))
	check("Set, Delete, Set", []byte("k2"), []byte("reborn"))
	specIs(t, "Delete of an absent key", tx.Delete([]byte("never")), ErrNotFound)
	check("absent key", []byte("never"), nil)
	must(tx.Set([]byte("empty"), nil))
	check("own empty value", []byte("empty"), []byte{})

	// Nobody sees the buffered writes: not autocommit reads, not snapshots.
	specWant(t, e, []byte("k1"), []byte("old1"))
	specWant(t, e, []byte("k2"), []byte("old2"))
	specWant(t, e, []byte("gone"), []byte("here"))
	specAbsent(t, e, []byte("fresh"))
	specAbsent(t, e, []byte("empty"))
	snap := []Op{{Kind: OpGet, Key: []byte("k1")}, {Kind: OpGet, Key: []byte("fresh")}, {Kind: OpGet, Key: []byte("gone")}}
	if err := e.Exec(snap); err != nil {
		t.Fatal(err)
	}
	if string(snap[0].Value) != "old1" || !errors.Is(snap[1].Err, ErrNotFound) || string(snap[2].Value) != "here" {
		t.Fatalf("a snapshot saw uncommitted writes: %q %v %q", snap[0].Value, snap[1].Err, snap[2].Value)
	}

	must(tx.Commit())
	specWant(t, e, []byte("k1"), []byte("n1"))
	specWant(t, e, []byte("k2"), []byte("reborn"))
	specWant(t, e, []byte("fresh"), []byte("born"))
	specWant(t, e, []byte("empty"), []byte{})
	specAbsent(t, e, []byte("gone"))
	specAbsent(t, e, []byte("never"))

	// A txn that only deletes, and a Delete then Get inside a txn of a
	// committed key.
	tx2, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Abort()
	must(tx2.Delete([]byte("fresh")))
	if v, err := tx2.Get([]byte("fresh")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete then Get in a txn = %q, %v; want ErrNotFound", v, err)
	}
	specWant(t, e, []byte("fresh"), []byte("born"))
	must(tx2.Commit())
	specAbsent(t, e, []byte("fresh"))
}

// specSizes are the value sizes at and around every slab class boundary.
var specSizes = []int{0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024}

func TestValueSizes(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024})
	for _, n := range specSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := specPattern(n, 0x5a)
			key := specKey("size", n)

			// Overwrite a maximal value, so a stale tail would show.
			specSet(t, e, key, bytes.Repeat([]byte{0xff}, SlotValueLen))
			specSet(t, e, key, want)
			specWant(t, e, key, want)

			tx, err := e.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Abort()
			txWant := specPattern(n, 0xa5)
			if err := tx.Set(key, bytes.Repeat([]byte{0xee}, SlotValueLen)); err != nil {
				t.Fatal(err)
			}
			if err := tx.Set(key, txWant); err != nil {
				t.Fatal(err)
			}
			got, err := tx.Get(key)
			if err != nil || !bytes.Equal(got, txWant) {
				t.Fatalf("txn Get of its own %d-byte write = %d bytes %x, %v", n, len(got), got, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			specWant(t, e, key, txWant)

			ro, err := e.BeginReadOnly()
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Abort()
			if got, err := ro.Get(key); err != nil || !bytes.Equal(got, txWant) {
				t.Fatalf("snapshot Get = %d bytes, %v; want %d bytes", len(got), err, n)
			}
			if err := ro.Commit(); err != nil {
				t.Fatal(err)
			}

			ops := []Op{{Kind: OpSet, Key: key, Value: want}, {Kind: OpGet, Key: key}}
			if err := e.Exec(ops); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ops[1].Value, want) {
				t.Fatalf("Exec Get after Set = %d bytes, want %d", len(ops[1].Value), n)
			}
			if got, err := e.Get(key); err != nil || len(got) != n || (n == 0 && got == nil) {
				t.Fatalf("Get = %d bytes (nil %v), %v; want %d bytes, non-nil", len(got), got == nil, err, n)
			}
		})
	}
	// Every size at once, in one Batch, one Exec and one transaction.
	t.Run("all", func(t *testing.T) {
		var set, get []Op
		for _, n := range specSizes {
			set = append(set, Op{Kind: OpSet, Key: specKey("all", n), Value: specPattern(n, 3)})
			get = append(get, Op{Kind: OpGet, Key: specKey("all", n)})
		}
		if err := e.Batch(set); err != nil {
			t.Fatal(err)
		}
		for i := range set {
			if set[i].Err != nil {
				t.Fatalf("Batch Set of %d bytes: %v", len(set[i].Value), set[i].Err)
			}
		}
		if err := e.Exec(get); err != nil {
			t.Fatal(err)
		}
		for i := range get {
			if !bytes.Equal(get[i].Value, set[i].Value) {
				t.Fatalf("Exec Get of %q = %d bytes, want %d", get[i].Key, len(get[i].Value), len(set[i].Value))
			}
		}
	})
}

func TestKeyShapes(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 256})
	keys := [][]byte{
		{},
		[]byte("a"),
		[]byte("a\x00"),
		[]byte("a\x00\x00"),
		[]byte("\x00"),
		[]byte("\x00\x00"),
		[]byte("\x00a"),
		[]byte("A"),
		bytes.Repeat([]byte("k"), 63),
		bytes.Repeat([]byte("k"), 64),
		append(bytes.Repeat([]byte("k"), 63), 0),
		bytes.Repeat([]byte{0}, 64),
		bytes.Repeat([]byte{0xff}, 64),
		bytes.Repeat([]byte{0xff}, 63),
	}
	val := func(i int) []byte { return fmt.Appendf(nil, "value of key #%d", i) }
	for i, k := range keys {
		specAbsent(t, e, k)
		specSet(t, e, k, val(i))
	}
	for i, k := range keys {
		specWant(t, e, k, val(i))
	}
	// Deleting one key leaves every other one alone.
	if err := e.Delete([]byte("a\x00")); err != nil {
		t.Fatal(err)
	}
	specAbsent(t, e, []byte("a\x00"))
	specWant(t, e, []byte("a"), val(1))
	specWant(t, e, []byte("a\x00\x00"), val(3))
	specWant(t, e, []byte{}, val(0))

	// Inside a transaction too (its key set compares whole keys).
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	for i, k := range keys {
		if err := tx.Set(k, append(val(i), '!')); err != nil {
			t.Fatalf("txn Set(%q): %v", k, err)
		}
	}
	for i, k := range keys {
		got, err := tx.Get(k)
		if err != nil || !bytes.Equal(got, append(val(i), '!')) {
			t.Fatalf("txn Get(%q) = %q, %v", k, got, err)
		}
	}
	if err := tx.Delete([]byte{}); err != nil {
		t.Fatal(err)
	}
	if got, err := tx.Get([]byte("\x00")); err != nil || !bytes.Equal(got, append(val(4), '!')) {
		t.Fatalf("txn Get(\\x00) after deleting the empty key = %q, %v", got, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	specAbsent(t, e, []byte{})
	for i, k := range keys[1:] {
		specWant(t, e, k, append(val(i+1), '!'))
	}
}

func TestSnapshotRepeatableRead(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 256})
	specSet(t, e, []byte("a"), []byte("a0"))
	specSet(t, e, []byte("d"), []byte("d0"))

	ro, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Abort()
	roWant := func(key, want []byte) {
		t.Helper()
		got, err := ro.Get(key)
		if want == nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("snapshot Get(%q) = %q, %v; want ErrNotFound", key, got, err)
			}
			return
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("snapshot Get(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	roWant([]byte("a"), []byte("a0")) // the snapshot is taken here at the latest

	// Commits after the snapshot: an overwrite, an insert, a delete, and a
	// multi-key transaction.
	specSet(t, e, []byte("a"), []byte("a1"))
	specSet(t, e, []byte("n"), []byte("n1"))
	if err := e.Delete([]byte("d")); err != nil {
		t.Fatal(err)
	}
	if err := e.Exec([]Op{{Kind: OpSet, Key: []byte("a"), Value: []byte("a2")}, {Kind: OpSet, Key: []byte("m"), Value: []byte("m2")}}); err != nil {
		t.Fatal(err)
	}
	roWant([]byte("a"), []byte("a0"))
	roWant([]byte("n"), nil)
	roWant([]byte("d"), []byte("d0"))
	roWant([]byte("m"), nil)

	// A newer snapshot, and autocommit reads, see every commit.
	newer := []Op{{Kind: OpGet, Key: []byte("a")}, {Kind: OpGet, Key: []byte("n")}, {Kind: OpGet, Key: []byte("d")}, {Kind: OpGet, Key: []byte("m")}}
	if err := e.Exec(newer); err != nil {
		t.Fatal(err)
	}
	if string(newer[0].Value) != "a2" || string(newer[1].Value) != "n1" || !errors.Is(newer[2].Err, ErrNotFound) || string(newer[3].Value) != "m2" {
		t.Fatalf("newer snapshot: a=%q n=%q d=%v m=%q", newer[0].Value, newer[1].Value, newer[2].Err, newer[3].Value)
	}
	specWant(t, e, []byte("a"), []byte("a2"))

	// The old snapshot is unchanged, and commits.
	roWant([]byte("a"), []byte("a0"))
	if err := ro.Commit(); err != nil {
		t.Fatal(err)
	}
	specIs(t, "Get after Commit", func() error { _, err := ro.Get([]byte("a")); return err }(), ErrTxnDone)
}

func TestReadOnlySnapshotTakenAtBegin(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	specSet(t, e, []byte("k"), []byte("before"))
	ro, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Abort()
	specSet(t, e, []byte("k"), []byte("after")) // acknowledged after BeginReadOnly returned
	got, err := ro.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "before" {
		t.Fatalf("BeginReadOnly, then a commit, then Get = %q; want %q: BeginReadOnly documents "+
			"\"reads the snapshot of the moment it begins\", but the snapshot is taken at the first operation", got, "before")
	}
}

func TestAutocommitReadsAreAtomic(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024})
	x, y := []byte("x"), []byte("y")
	specSet(t, e, x, specItoa(0))
	specSet(t, e, y, specItoa(0))

	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		written atomic.Int64
		vfull   atomic.Int64
	)
	deadline := time.Now().Add(2 * time.Second)
	wg.Add(1)
	go func() { // the only writer: each commit sets x, ..., y to i, x first
		defer wg.Done()
		defer stop.Store(true)
		for i := int64(1); i <= 200000 && time.Now().Before(deadline) && !stop.Load(); i++ {
			// Keys between x and y widen the window between their installs.
			ops := []Op{{Kind: OpSet, Key: x, Value: specItoa(i)}}
			for p := 0; p < 16; p++ {
				ops = append(ops, Op{Kind: OpSet, Key: specKey("pad", p), Value: specItoa(i)})
			}
			ops = append(ops, Op{Kind: OpSet, Key: y, Value: specItoa(i)})
			err := e.Exec(ops)
			if errors.Is(err, ErrVersionsFull) || errors.Is(err, ErrConflict) {
				// The readers' snapshots may pin versions for a moment,
				// and the background vacuum locks each record it visits
				// for a moment (a no-wait conflict); nothing was applied,
				// so write i again.
				vfull.Add(1)
				i--
				continue
			}
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			written.Store(i)
		}
	}()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop.Store(true) // one anomaly is enough
			for i := 0; i < 200000 && !stop.Load(); i++ {
				ops := []Op{{Kind: OpGet, Key: x}, {Kind: OpGet, Key: y}}
				if err := e.Batch(ops); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				if ops[0].Err != nil || ops[1].Err != nil {
					t.Errorf("reader: %v %v", ops[0].Err, ops[1].Err)
					return
				}
				vx, vy := specInt(t, x, ops[0].Value), specInt(t, y, ops[1].Value)
				if vy < vx {
					t.Errorf("Batch{Get x, Get y} = %d, %d: y was read after x and is older, "+
						"so Get x saw a transaction Get y did not", vx, vy)
					return
				}
				// A snapshot begun after that Get returned sees at least as
				// much, and sees each commit whole (x == y).
				snap := []Op{{Kind: OpGet, Key: x}, {Kind: OpGet, Key: y}}
				if err := e.Exec(snap); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				sx, sy := specInt(t, x, snap[0].Value), specInt(t, y, snap[1].Value)
				if sx != sy {
					t.Errorf("snapshot read x = %d, y = %d: it saw part of a commit", sx, sy)
					return
				}
				if sx < vx {
					t.Errorf("autocommit Get x = %d, then a later snapshot read x = %d: "+
						"the Get saw a commit that was not yet visible", vx, sx)
					return
				}
			}
		}()
	}
	wg.Wait()
	if written.Load() == 0 {
		t.Fatal("nothing written")
	}
	t.Logf("%d transactions written, %d retried after ErrVersionsFull or ErrConflict", written.Load(), vfull.Load())
}
