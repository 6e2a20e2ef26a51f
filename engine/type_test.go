package engine

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/bpfdb/bpfdb/engine/internal/apitest"
)

// A value's type (Op.Type) is kept with it: read back by Get ops in
// autocommit, transactions and snapshots, in slots and blobs, with and
// without a deadline; seen by Scan; logged, replayed and checkpointed. The
// string-only calls refuse another type with ErrWrongType, and INCR of one
// changes nothing.
func TestValueTypes(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxKeys: 1024, Dir: dir}
	e := openTest(t, opts)
	type kept struct {
		value    []byte
		typ      ValueType
		expireAt int64
	}
	later := e.Now() + 3_600_000
	want := map[string]kept{}
	var ops []Op
	for i, n := range []int{0, 10, 1000, 1016, 5000} {
		for _, d := range []int64{0, later} {
			k := fmt.Sprintf("hash-%d-%d", n, d)
			want[k] = kept{specPattern(n, byte(i)), TypeHash, d}
			ops = append(ops, Op{Kind: OpSet, Key: []byte(k), Value: want[k].value, Type: TypeHash, ExpireAt: d})
		}
	}
	if err := e.Batch(ops); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.Err != nil {
			t.Fatalf("Set %s: %v", op.Key, op.Err)
		}
	}
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.CommitWith([]Op{{Kind: OpSet, Key: []byte("txn-hash"), Value: []byte("in a txn"), Type: TypeHash}}); err != nil {
		t.Fatal(err)
	}
	want["txn-hash"] = kept{[]byte("in a txn"), TypeHash, 0}
	specSet(t, e, []byte("string"), []byte("plain"))
	want["string"] = kept{[]byte("plain"), TypeString, 0}

	if _, err := e.Get([]byte("txn-hash")); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Get of a hash: %v, want ErrWrongType", err)
	}
	if _, err := e.Incr([]byte("txn-hash"), 1); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Incr of a hash: %v, want ErrWrongType", err)
	}
	bad := []Op{{Kind: OpSet, Key: []byte("bad"), Value: []byte("x"), Type: ValueType(numTypes)}}
	if e.Batch(bad); bad[0].Err == nil {
		t.Fatalf("Set of type %d: no error", numTypes)
	}

	check := func(e *Engine, what string) {
		t.Helper()
		var reads []Op
		for k := range want {
			reads = append(reads, Op{Kind: OpGet, Key: []byte(k)})
		}
		for _, run := range []struct {
			name string
			do   func([]Op) error
		}{{"Batch", e.Batch}, {"Exec", e.Exec}} {
			ops := append([]Op(nil), reads...)
			if err := run.do(ops); err != nil {
				t.Fatalf("%s: %s: %v", what, run.name, err)
			}
			for _, op := range ops {
				w := want[string(op.Key)]
				if op.Err != nil || op.Type != w.typ || op.ExpireAt != w.expireAt || !bytes.Equal(op.Value, w.value) {
					t.Fatalf("%s: %s of %s: %v, type %v, deadline %d, %d bytes; want %v, %d, %d bytes",
						what, run.name, op.Key, op.Err, op.Type, op.ExpireAt, len(op.Value), w.typ, w.expireAt, len(w.value))
				}
			}
		}
		n := 0
		if err := e.Scan(func(it *Item) bool {
			w := want[string(it.Key)]
			if it.Type != w.typ || it.ExpireAt != w.expireAt || !bytes.Equal(it.Value, w.value) {
				t.Errorf("%s: Scan: %s is type %v, deadline %d, %d bytes", what, it.Key, it.Type, it.ExpireAt, len(it.Value))
			}
			n++
			return true
		}); err != nil || n != len(want) {
			t.Fatalf("%s: Scan found %d keys, %v; want %d", what, n, err, len(want))
		}
	}
	check(e, "before")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	check(e, "after replaying the log")
	// A string written over a hash is a string again.
	specSet(t, e, []byte("hash-10-0"), []byte("now a string"))
	want["hash-10-0"] = kept{[]byte("now a string"), TypeString, 0}
	if _, err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	check(e, "after loading the checkpoint")
}

// BPF programs read only strings (bpfdb_api.h): a hash reads as
// BPFDB_ERR_WRONG_TYPE, alone or in a transaction, INCR of it is
// BPFDB_ERR_NOT_INTEGER with nothing applied, and a SET replaces it with a
// string.
func TestAPIValueTypes(t *testing.T) {
	db := openTest(t, Options{})
	a := loadAPI(t, db)
	ops := []Op{{Kind: OpSet, Key: []byte("h"), Value: []byte("a hash"), Type: TypeHash},
		{Kind: OpSet, Key: []byte("n"), Value: []byte("1")}}
	if err := db.Batch(ops); err != nil || ops[0].Err != nil || ops[1].Err != nil {
		t.Fatal(err, ops[0].Err, ops[1].Err)
	}
	out := a.mustCall(t, "api_get", 0, setIn("h", ""))
	wantStatus(t, "get of a hash", out.Status, chainBpfdbStatusBPFDB_ERR_WRONG_TYPE)
	in := setIn("h", "")
	in.Delta = 1
	out = a.mustCall(t, "api_incr", 0, in)
	wantStatus(t, "incr of a hash", out.Status, chainBpfdbStatusBPFDB_ERR_NOT_INTEGER)
	in = &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey("n"), apiKey("h")}}
	out = a.mustCall(t, "api_snapshot2", 0, in)
	wantStatus(t, "snapshot read of a hash", out.Status, chainBpfdbStatusBPFDB_ERR_WRONG_TYPE)
	get := []Op{{Kind: OpGet, Key: []byte("h")}}
	if err := db.Exec(get); err != nil || get[0].Type != TypeHash || string(get[0].Value) != "a hash" {
		t.Fatalf("after the kernel's calls: %v, type %v, %q", err, get[0].Type, get[0].Value)
	}
	out = a.mustCall(t, "api_set", 0, setIn("h", "a string"))
	wantStatus(t, "set over a hash", out.Status, chainBpfdbStatusBPFDB_OK)
	specWant(t, db, []byte("h"), []byte("a string"))
}
