package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// longKeyOf returns a key of n bytes ending in tag: the keys of one
// length share everything but their last bytes, so their index keys'
// prefixes are equal and only the digest tells them apart.
func longKeyOf(n int, tag string) []byte {
	return []byte(strings.Repeat("p", n-len(tag)) + tag)
}

// longKeySet is keys at every boundary of the index key: held as
// themselves (64) and by digest (65 up to the default limit), pairs that
// differ only in their last byte.
func longKeySet() [][]byte {
	var keys [][]byte
	for _, n := range []int{InlineKeyLen, InlineKeyLen + 1, 100, 200, DefaultMaxKeyLen} {
		keys = append(keys, longKeyOf(n, "a"), longKeyOf(n, "b"))
	}
	return keys
}

// Long keys work through every path: autocommit, batches, transactions,
// INCR, DEL, scans, the log and checkpoints; keys that differ only past
// their index key's prefix stay distinct.
func TestLongKeys(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxKeys: 1024, Dir: dir}
	e := openTest(t, opts)
	keys := longKeySet()
	want := map[string][]byte{}
	for i, k := range keys[:4] {
		want[string(k)] = specPattern(10+i, byte(i))
		specSet(t, e, k, want[string(k)])
	}
	var ops []Op
	for i, k := range keys[4:8] {
		want[string(k)] = specPattern(2000*i+5, byte(i+4)) // slots and blobs
		ops = append(ops, Op{Kind: OpSet, Key: k, Value: want[string(k)]})
	}
	if err := e.Exec(ops); err != nil {
		t.Fatal(err)
	}
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[8:] {
		want[string(k)] = append([]byte("txn "), k[len(k)-1])
		if err := tx.Set(k, want[string(k)]); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := tx.Get(keys[9]); err != nil || !bytes.Equal(got, want[string(keys[9])]) {
		t.Fatalf("Get in the transaction: %q, %v", got, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	counter := longKeyOf(300, "counter")
	for range 3 {
		if _, err := e.Incr(counter, 7); err != nil {
			t.Fatal(err)
		}
	}
	want[string(counter)] = []byte("21")
	if err := e.Delete(keys[3]); err != nil {
		t.Fatal(err)
	}
	delete(want, string(keys[3]))

	check := func(e *Engine, what string) {
		t.Helper()
		for _, k := range append(keys, counter) {
			got, err := e.Get(k)
			if v, ok := want[string(k)]; ok != (err == nil) || !bytes.Equal(got, v) {
				t.Fatalf("%s: Get(%d-byte key ending %q) = %d bytes, %v; want %d bytes", what, len(k), k[len(k)-1:], len(got), err, len(v))
			}
		}
		var scanned []string
		if err := e.Scan(func(it *Item) bool {
			k, v := it.Key, it.Value
			scanned = append(scanned, string(k))
			if !bytes.Equal(v, want[string(k)]) {
				t.Errorf("%s: Scan: %d-byte key with %d bytes, want %d", what, len(k), len(v), len(want[string(k)]))
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		var all []string
		for k := range want {
			all = append(all, k)
		}
		sort.Strings(all)
		sort.Strings(scanned)
		if fmt.Sprint(all) != fmt.Sprint(scanned) {
			t.Fatalf("%s: Scan returned %d keys, want %d", what, len(scanned), len(all))
		}
	}
	check(e, "before")
	if st, err := e.Stats(); err != nil || st.LogBadRecords != 0 {
		t.Fatalf("%d bad log records, %v", st.LogBadRecords, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	check(e, "after replaying the log")
	if _, err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	check(e, "after loading the checkpoint")
}

// The engine forgets a long key once no record of it is left and the log
// has it (longkey.go, invariant 2), and not before: not while it has a
// value, nor while an open transaction holds it.
func TestLongKeysForgotten(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxKeys: 1024, Dir: dir, VacuumInterval: -1}
	e := openTest(t, opts)
	kept, gone, locked := longKeyOf(100, "kept"), longKeyOf(100, "gone"), longKeyOf(100, "locked")
	specSet(t, e, kept, []byte("k"))
	specSet(t, e, gone, []byte("g"))
	if _, err := e.Get(longKeyOf(100, "never written")); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if n := e.longKeys.count(); n != 2 {
		t.Fatalf("%d long keys held after two writes and a read, want 2", n)
	}
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Set(locked, []byte("l")); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(gone); err != nil {
		t.Fatal(err)
	}
	vacuumUntil := func(n int) {
		t.Helper()
		for range 10 {
			if err := e.Vacuum(); err != nil {
				t.Fatal(err)
			}
			if e.longKeys.count() == n {
				return
			}
		}
		t.Fatalf("%d long keys held after 10 vacuums, want %d", e.longKeys.count(), n)
	}
	vacuumUntil(2) // kept and locked
	for range 3 {
		if err := e.Vacuum(); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.longKeys.count(); n != 2 {
		t.Fatalf("%d long keys held, want 2 (one with a value, one in an open transaction)", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	expiring := longKeyOf(100, "expiring")
	if ops := []Op{{Kind: OpSet, Key: expiring, Value: []byte("e"), ExpireAt: e.Now() + 20}}; e.Batch(ops) != nil || ops[0].Err != nil {
		t.Fatal(ops[0].Err)
	}
	time.Sleep(50 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for e.longKeys.count() != 2 && time.Now().Before(deadline) {
		if err := e.Vacuum(); err != nil { // hands the expired key to the expirer
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.longKeys.count(); n != 2 {
		t.Fatalf("%d long keys held once the expiring one expired, want 2", n)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	for k, v := range map[string]string{string(kept): "k", string(locked): "l"} {
		if got, err := e.Get([]byte(k)); err != nil || string(got) != v {
			t.Fatalf("after recovery: %q, %v; want %q", got, err, v)
		}
	}
	for _, k := range [][]byte{gone, expiring} {
		if _, err := e.Get(k); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after recovery: a deleted long key: %v", err)
		}
	}
}

// Options.MaxKeyLen sets the limit, which errors name; above
// MaxKeyLenLimit Open refuses.
func TestMaxKeyLenOption(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, MaxKeyLen: 100})
	specSet(t, e, longKeyOf(100, "x"), []byte("v"))
	err := e.Set(longKeyOf(101, "x"), []byte("v"))
	if !errors.Is(err, ErrKeyTooLong) || !strings.Contains(err.Error(), "100") {
		t.Fatalf("a 101-byte key with MaxKeyLen 100: %v", err)
	}
	if _, err := Open(Options{MaxKeys: 64, MaxKeyLen: MaxKeyLenLimit + 1}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("MaxKeyLen above MaxKeyLenLimit: %v", err)
	}
	dir := t.TempDir()
	e = openTest(t, Options{MaxKeys: 64, MaxKeyLen: MaxKeyLenLimit, Dir: dir})
	huge := longKeyOf(MaxKeyLenLimit, "huge")
	specSet(t, e, huge, []byte("v"))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, Options{MaxKeys: 64, Dir: dir}) // recovery loads a key above this store's limit
	var n int
	if err := e.Scan(func(it *Item) bool { n++; return !bytes.Equal(it.Key, huge) }); err != nil || n != 1 {
		t.Fatalf("after recovery: scanned %d keys, %v; want the %d-byte key", n, err, len(huge))
	}
}
