// Specification: Batch runs independent autocommit operations in order,
// like a pipeline, however many chain runs it takes (MaxBatch per run): each
// op sees the effect of every earlier op of the batch (a Get after a Set of
// the same key sees the new value, also across a run boundary), Delete or
// Get of an absent key is ErrNotFound, and an invalid op fails alone.
// Exec runs its ops as one transaction with the same in-order semantics
// (a Get sees the transaction's earlier writes) across runs.
// Both are checked against a map model, op by op.
package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// specModel is the expected content of the store.
type specModel map[string][]byte

// apply runs op against the model and returns the value and error the
// engine must give for it.
func (m specModel) apply(op Op) ([]byte, error) {
	if len(op.Key) > DefaultMaxKeyLen {
		return nil, ErrKeyTooLong
	}
	if op.Kind == OpSet && len(op.Value) > DefaultMaxValueLen {
		return nil, ErrValueTooLarge
	}
	v, ok := m[string(op.Key)]
	switch op.Kind {
	case OpGet:
		if !ok {
			return nil, ErrNotFound
		}
		return v, nil
	case OpSet:
		m[string(op.Key)] = append([]byte{}, op.Value...)
		return nil, nil
	case OpDelete:
		if !ok {
			return nil, ErrNotFound
		}
		delete(m, string(op.Key))
		return nil, nil
	}
	panic("unknown op")
}

// specCheckOps compares each op's outcome with the model's.
func specCheckOps(tb testing.TB, what string, m specModel, ops []Op) {
	tb.Helper()
	for i, op := range ops {
		want, wantErr := m.apply(op)
		if wantErr != nil {
			if !errors.Is(op.Err, wantErr) {
				tb.Fatalf("%s: op %d (%v %q): err %v, want %v", what, i, op.Kind, op.Key, op.Err, wantErr)
			}
			continue
		}
		if op.Err != nil {
			tb.Fatalf("%s: op %d (%v %q): %v", what, i, op.Kind, op.Key, op.Err)
		}
		if op.Kind == OpGet && !bytes.Equal(op.Value, want) {
			tb.Fatalf("%s: op %d (GET %q) = %q, want %q", what, i, op.Key, op.Value, want)
		}
	}
}

// specCheckStore compares the store with the model over keys.
func specCheckStore(tb testing.TB, e *Engine, m specModel, keys [][]byte) {
	tb.Helper()
	for _, k := range keys {
		want, ok := m[string(k)]
		if !ok {
			specAbsent(tb, e, k)
		} else {
			specWant(tb, e, k, want)
		}
	}
}

// specValueLen is a random value length: mostly within a slot, one in
// eight a blob of up to a few pages (blob.go), now and then the largest.
func specValueLen(rng *rand.Rand) int {
	switch r := rng.IntN(64); {
	case r == 0:
		return DefaultMaxValueLen
	case r < 8:
		return SlotValueLen + 1 + rng.IntN(4*PageSize)
	}
	return rng.IntN(SlotValueLen + 1)
}

func specRandomOps(rng *rand.Rand, keys [][]byte, n int, invalid bool) []Op {
	ops := make([]Op, n)
	for i := range ops {
		k := keys[rng.IntN(len(keys))]
		switch r := rng.IntN(20); {
		case invalid && r == 0:
			ops[i] = Op{Kind: OpSet, Key: bytes.Repeat([]byte("x"), DefaultMaxKeyLen+1), Value: []byte("v")}
		case invalid && r == 1:
			ops[i] = Op{Kind: OpSet, Key: k, Value: make([]byte, DefaultMaxValueLen+1)}
		case r < 9:
			ops[i] = Op{Kind: OpGet, Key: k}
		case r < 16:
			ops[i] = Op{Kind: OpSet, Key: k, Value: specPattern(specValueLen(rng), byte(i))}
		default:
			ops[i] = Op{Kind: OpDelete, Key: k}
		}
	}
	return ops
}

func TestBatch(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 256, MaxMemory: 64 << 20})

	t.Run("scripted", func(t *testing.T) {
		m := specModel{}
		keys := [][]byte{[]byte("p"), []byte("q"), []byte("r"), []byte("s"), []byte("t")}
		var ops []Op
		add := func(o ...Op) { ops = append(ops, o...) }
		add(Op{Kind: OpDelete, Key: []byte("p")}, // absent: ErrNotFound
			Op{Kind: OpGet, Key: []byte("p")},
			Op{Kind: OpSet, Key: []byte("p"), Value: []byte("p1")},
			Op{Kind: OpGet, Key: []byte("p")}, // sees p1
			Op{Kind: OpSet, Key: []byte("p"), Value: []byte("p2, longer")},
			Op{Kind: OpGet, Key: []byte("p")}, // sees p2
			Op{Kind: OpDelete, Key: []byte("p")},
			Op{Kind: OpGet, Key: []byte("p")}, // ErrNotFound
			Op{Kind: OpDelete, Key: []byte("p")},
			Op{Kind: OpSet, Key: []byte("q"), Value: nil},
			Op{Kind: OpGet, Key: []byte("q")}, // empty, not absent
		)
		for len(ops) < MaxBatch-1 {
			add(Op{Kind: OpGet, Key: []byte("q")})
		}
		// Op MaxBatch-1 is the last of the first run; MaxBatch the first of the second.
		add(Op{Kind: OpSet, Key: []byte("r"), Value: []byte("across")},
			Op{Kind: OpGet, Key: []byte("r")},
			Op{Kind: OpDelete, Key: []byte("r")})
		for len(ops) < 2*MaxBatch-1 {
			add(Op{Kind: OpSet, Key: []byte("s"), Value: specItoa(int64(len(ops)))})
		}
		add(Op{Kind: OpDelete, Key: []byte("s")}, Op{Kind: OpGet, Key: []byte("s")}, Op{Kind: OpGet, Key: []byte("r")},
			Op{Kind: OpSet, Key: []byte("t"), Value: []byte("last")})
		if len(ops) <= MaxBatch {
			t.Fatal("the batch must span several runs")
		}
		if err := e.Batch(ops); err != nil {
			t.Fatal(err)
		}
		specCheckOps(t, "scripted batch", m, ops)
		specCheckStore(t, e, m, keys)
		if ops[MaxBatch].Err != nil || string(ops[MaxBatch].Value) != "across" {
			t.Fatalf("Get in the second run after a Set in the first: %q, %v", ops[MaxBatch].Value, ops[MaxBatch].Err)
		}
	})

	// Without any reader, a run may overwrite one key any number of times.
	t.Run("one key in every op", func(t *testing.T) {
		ops := make([]Op, 3*MaxBatch)
		for i := range ops {
			ops[i] = Op{Kind: OpSet, Key: []byte("same"), Value: specItoa(int64(i))}
		}
		if err := e.Batch(ops); err != nil {
			t.Fatal(err)
		}
		for i := range ops {
			if ops[i].Err != nil {
				t.Fatalf("Set %d of one key in a batch: %v", i, ops[i].Err)
			}
		}
		specWant(t, e, []byte("same"), specItoa(int64(len(ops)-1)))
	})

	t.Run("random", func(t *testing.T) {
		m := specModel{}
		keys := [][]byte{[]byte("r0"), []byte("r1"), []byte("r2"), []byte("r3"), []byte("r4"), []byte("r5"),
			longKeyOf(65, "r6"), longKeyOf(65, "r7"), longKeyOf(DefaultMaxKeyLen, "r8")} // and long keys
		rng := rand.New(rand.NewPCG(7, 7))
		for round := 0; round < 20; round++ {
			ops := specRandomOps(rng, keys, 64+rng.IntN(200), true)
			if err := e.Batch(ops); err != nil {
				t.Fatal(err)
			}
			specCheckOps(t, fmt.Sprintf("batch %d", round), m, ops)
			specCheckStore(t, e, m, keys)
		}
	})
}

func TestExecPipeline(t *testing.T) {
	// Random values are up to 1024 bytes: size the large classes for 40
	// keys with several versions each.
	e := openTest(t, Options{MaxKeys: 1024, MaxMemory: 64 << 20, TxnTimeout: -1})
	m := specModel{}
	keys := make([][]byte, 40)
	for i := range keys {
		keys[i] = specKey("e", i)
	}
	keys[38], keys[39] = longKeyOf(300, "e38"), longKeyOf(300, "e39")
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		ops := specRandomOps(rng, keys, 1+rng.IntN(200), false)
		if err := e.Exec(ops); err != nil {
			t.Fatalf("Exec %d (%d ops): %v", round, len(ops), err)
		}
		specCheckOps(t, fmt.Sprintf("Exec %d (%d ops)", round, len(ops)), m, ops)
		specCheckStore(t, e, m, keys)
	}
	// A failing Exec across runs leaves the model's state.
	holder, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Abort()
	if err := holder.Set([]byte("held"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		ops := specRandomOps(rng, keys, 50+rng.IntN(150), false)
		ops = append(ops, Op{Kind: OpSet, Key: []byte("held"), Value: []byte("y")})
		specIs(t, "Exec ending in a conflict", e.Exec(ops), ErrConflict)
		specCheckStore(t, e, m, keys)
	}
}

// TestBatchRetryKeepsOrder: an autocommit op may be retried after a brief
// conflict (ops.go), but the batch keeps its pipeline order: a Get placed
// after a Set of the same key that ends up succeeding sees the Set's value,
// never the value from before it.
func TestBatchRetryKeepsOrder(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, MaxMemory: 64 << 20, TxnTimeout: -1})
	k := []byte("k")
	conclusive := 0
	for attempt := 0; attempt < 10 && conclusive < 3; attempt++ {
		specSet(t, e, k, []byte("old"))
		holder, err := e.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Set(k, []byte("holder")); err != nil {
			t.Fatal(err)
		}
		st0, err := e.Stats()
		if err != nil {
			t.Fatal(err)
		}
		ops := []Op{{Kind: OpSet, Key: k, Value: []byte("new")}, {Kind: OpGet, Key: k}}
		done := make(chan error, 1)
		go func() { done <- e.Batch(ops) }()
		// Release the lock once the batch's Set has met it.
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			st, err := e.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.AbortsConflict > st0.AbortsConflict {
				break
			}
			time.Sleep(20 * time.Microsecond)
		}
		if err := holder.Abort(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if errors.Is(ops[0].Err, ErrConflict) {
			// The batch gave up before the lock was released (or does not
			// retry): the Set applied nothing, so the Get must see "old".
			if ops[1].Err != nil || string(ops[1].Value) != "old" {
				t.Fatalf("Batch{Set k=new (conflict), Get k}: Get = %q, %v; want \"old\"", ops[1].Value, ops[1].Err)
			}
			specWant(t, e, k, []byte("old"))
			continue
		}
		conclusive++
		if ops[0].Err != nil || ops[1].Err != nil {
			t.Fatalf("Batch{Set, Get}: %v, %v", ops[0].Err, ops[1].Err)
		}
		specWant(t, e, k, []byte("new"))
		if string(ops[1].Value) != "new" {
			t.Fatalf("Batch{Set k=new, Get k}: the Set succeeded (k is now \"new\") but the Get after it returned %q", ops[1].Value)
		}
	}
	if conclusive == 0 {
		t.Log("the batch never retried its Set past the conflict")
	}
}
