package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Keys (the chain's count of live keys by database) agrees with a Scan
// after random autocommit and transactional writes, deletes of keys
// present and absent, INCR, long keys, blobs, hashes, the expirer's deletions and
// the kernel API's writes; and again after replaying the log and after
// loading a checkpoint, which rebuild it from nothing.
func TestKeysCount(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxKeys: 4096, Dir: dir}
	e := openTest(t, opts)
	r := rand.New(rand.NewPCG(7, 7))
	key := func() (int, []byte) {
		db := r.IntN(3) * 5 // databases 0, 5 and 10
		if r.IntN(8) == 0 {
			return db, longKeyOf(100+r.IntN(50), fmt.Sprint(r.IntN(40)))
		}
		return db, []byte(fmt.Sprint("k", r.IntN(300)))
	}
	value := func() []byte {
		if r.IntN(20) == 0 {
			return specPattern(3000, 1) // a blob
		}
		return []byte("v")
	}
	for round := range 60 {
		ops := make([]Op, 0, 40)
		for range 40 {
			db, k := key()
			switch r.IntN(5) {
			case 0, 1:
				ops = append(ops, Op{Kind: OpSet, DB: db, Key: k, Value: value(), Type: ValueType(r.IntN(numTypes))})
			case 2:
				ops = append(ops, Op{Kind: OpDelete, DB: db, Key: k})
			case 3:
				ops = append(ops, Op{Kind: OpIncr, DB: db, Key: []byte(fmt.Sprint("n", r.IntN(50))), Delta: 1})
			case 4:
				ops = append(ops, Op{Kind: OpSet, DB: db, Key: k, Value: []byte("soon"), ExpireAt: e.Now() + int64(r.IntN(300))})
			}
		}
		if round%3 == 0 {
			if err := runTxnOps(e, ops); err != nil {
				t.Fatal(err)
			}
		} else if err := e.Batch(ops); err != nil {
			t.Fatal(err)
		}
	}
	a := loadAPI(t, e)
	a.mustCall(t, "api_set", 0, setIn("from-bpf", "x"))
	a.mustCall(t, "api_delete", 0, setIn("k1", ""))

	agree := func(e *Engine, what string) {
		t.Helper()
		var scanned [Databases]int64
		waitFor(t, what+": Keys agreeing with a Scan", func() bool { // the expirer deletes what expired
			scanned = [Databases]int64{}
			if err := e.Scan(func(it *Item) bool { scanned[it.DB]++; return true }); err != nil {
				t.Fatal(err)
			}
			n, err := e.Keys()
			if err != nil {
				t.Fatal(err)
			}
			return n == scanned
		})
		if scanned[0]+scanned[5]+scanned[10] == 0 {
			t.Fatalf("%s: no keys at all", what)
		}
	}
	agree(e, "after the writes")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	agree(e, "after replaying the log")
	if _, err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	agree(e, "after loading the checkpoint")
}

// runTxnOps runs ops as one read-write transaction (INCR as a Get and a
// Set; no deletes), retrying conflicts.
func runTxnOps(e *Engine, ops []Op) error {
	seen := map[string]bool{}
	var writes []Op
	for _, op := range ops {
		k := fmt.Sprint(op.DB, string(op.Key))
		if seen[k] || op.Kind == OpDelete {
			continue // one write a key; deletes of absent keys are Batch's
		}
		seen[k] = true
		if op.Kind == OpIncr {
			op = Op{Kind: OpSet, DB: op.DB, Key: op.Key, Value: []byte("7")}
		}
		writes = append(writes, op)
	}
	for try := 0; ; try++ {
		tx, err := e.Begin()
		if err != nil {
			return err
		}
		err = tx.CommitWith(writes)
		if err == nil || !Retryable(err) || try > 50 {
			return err
		}
		tx.Abort()
	}
}
