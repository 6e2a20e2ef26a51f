// Specification: interactive read-write transactions are serializable under
// concurrency (strict MV2PL, no-wait) and read-only transactions read
// consistent snapshots.
//
//   - TestBankTransfers: concurrent transfers (Begin, Get both, Set both,
//     Commit, retried on ErrConflict) conserve the total, every committed
//     transfer is applied exactly once (per-worker ledgers of committed
//     deltas), and every snapshot taken meanwhile (BeginReadOnly, a
//     read-only Exec in one run or across runs, a locking read-write
//     transaction) sums to the invariant total.
//   - TestLostUpdate: concurrent read-modify-write increments of one counter
//     lose no update: the final value is the number of successful commits.
package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	bankAccounts = 50
	bankInitial  = 1000
	bankWorkers  = 8
	bankPerWork  = 250
	bankBudget   = 5 * time.Second
)

func bankKey(i int) []byte { return specKey("acct", i) }

// transfer moves amt from account a to account b in one interactive
// transaction. It reports whether the transaction committed; err is
// ErrConflict when it was aborted by a lock conflict and may be retried.
func transfer(e *Engine, a, b int, amt int64) (bool, error) {
	tx, err := e.Begin()
	if err != nil {
		return false, err
	}
	defer tx.Abort()
	va, err := tx.Get(bankKey(a))
	if err != nil {
		return false, err
	}
	vb, err := tx.Get(bankKey(b))
	if err != nil {
		return false, err
	}
	na, err1 := parseBalance(va)
	nb, err2 := parseBalance(vb)
	if err := errors.Join(err1, err2); err != nil {
		return false, err
	}
	if err := tx.Set(bankKey(a), specItoa(na-amt)); err != nil {
		return false, err
	}
	if err := tx.Set(bankKey(b), specItoa(nb+amt)); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return true, nil
}

func parseBalance(v []byte) (int64, error) {
	var n int64
	neg := false
	if len(v) > 0 && v[0] == '-' {
		neg, v = true, v[1:]
	}
	if len(v) == 0 {
		return 0, errors.New("empty balance")
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("balance %q is not a number", v)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// bankSum sums balances read by ops (Gets of bank keys, in order).
func bankSum(ops []Op) (int64, error) {
	var sum int64
	for i := range ops {
		if ops[i].Err != nil {
			return 0, ops[i].Err
		}
		n, err := parseBalance(ops[i].Value)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

func bankGets(passes int) []Op {
	ops := make([]Op, 0, passes*bankAccounts)
	for p := 0; p < passes; p++ {
		for i := 0; i < bankAccounts; i++ {
			ops = append(ops, Op{Kind: OpGet, Key: bankKey(i)})
		}
	}
	return ops
}

func TestBankTransfers(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024})
	init := make([]Op, bankAccounts)
	for i := range init {
		init[i] = Op{Kind: OpSet, Key: bankKey(i), Value: specItoa(bankInitial)}
	}
	if err := e.Exec(init); err != nil {
		t.Fatalf("loading accounts: %v", err)
	}
	const total = bankAccounts * bankInitial

	var (
		ledgers   [bankWorkers][bankAccounts]int64
		committed atomic.Int64
		conflicts atomic.Int64
		vfull     atomic.Int64
		workers   sync.WaitGroup
		readers   sync.WaitGroup
		done      = make(chan struct{})
		snapshots [4]atomic.Int64
	)
	for w := 0; w < bankWorkers; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			budget := newSpecBudget(bankPerWork, bankBudget)
			for i := 0; budget.ok(i); i++ {
				a := rng.IntN(bankAccounts)
				b := (a + 1 + rng.IntN(bankAccounts-1)) % bankAccounts
				amt := int64(1 + rng.IntN(50))
				for try := 0; try < 1000 && time.Now().Before(budget.deadline); try++ {
					ok, err := transfer(e, a, b, amt)
					if ok {
						ledgers[w][a] -= amt
						ledgers[w][b] += amt
						committed.Add(1)
						break
					}
					switch {
					case errors.Is(err, ErrConflict):
						conflicts.Add(1)
					case errors.Is(err, ErrVersionsFull):
						// The snapshot readers pin old versions; the
						// transaction was aborted and may be retried.
						vfull.Add(1)
					default:
						t.Errorf("worker %d: transfer %d->%d: %v", w, a, b, err)
						return
					}
					if try > 2 {
						time.Sleep(time.Duration(rng.IntN(50)) * time.Microsecond)
					}
				}
			}
		}()
	}

	// Readers run until the workers finish (or their own bound), each at
	// least once: the workers may finish before a reader starts.
	reader := func(kind int, read func() error) {
		defer readers.Done()
		budget := newSpecBudget(100000, bankBudget+time.Second)
		for i := 0; budget.ok(i); i++ {
			if i > 0 {
				select {
				case <-done:
					return
				default:
				}
			}
			if err := read(); err != nil {
				t.Errorf("snapshot reader %d: %v", kind, err)
				return
			}
			snapshots[kind].Add(1)
		}
	}
	readers.Add(4)
	// 0: BeginReadOnly, Get every account, re-read the first, Commit.
	go reader(0, func() error {
		tx, err := e.BeginReadOnly()
		if err != nil {
			return err
		}
		defer tx.Abort()
		var sum int64
		var first []byte
		for i := 0; i < bankAccounts; i++ {
			v, err := tx.Get(bankKey(i))
			if err != nil {
				return err
			}
			if i == 0 {
				first = v
			}
			n, err := parseBalance(v)
			if err != nil {
				return err
			}
			sum += n
		}
		if sum != total {
			return fmt.Errorf("read-only txn: sum %d, want %d", sum, total)
		}
		again, err := tx.Get(bankKey(0))
		if err != nil {
			return err
		}
		if string(again) != string(first) {
			return fmt.Errorf("read-only txn: non-repeatable read of account 0: %s then %s", first, again)
		}
		return tx.Commit()
	})
	// 1: a read-only Exec of every account (one chain run).
	go reader(1, func() error {
		ops := bankGets(1)
		if err := e.Exec(ops); err != nil {
			return err
		}
		sum, err := bankSum(ops)
		if err != nil {
			return err
		}
		if sum != total {
			return fmt.Errorf("read-only Exec: sum %d, want %d", sum, total)
		}
		return nil
	})
	// 2: a read-only Exec reading every account twice (two chain runs): both
	// passes must see the same snapshot.
	go reader(2, func() error {
		ops := bankGets(2)
		if err := e.Exec(ops); err != nil {
			return err
		}
		sum, err := bankSum(ops)
		if err != nil {
			return err
		}
		if sum != 2*total {
			return fmt.Errorf("two-run read-only Exec: sum %d, want %d", sum, 2*total)
		}
		for i := 0; i < bankAccounts; i++ {
			if string(ops[i].Value) != string(ops[bankAccounts+i].Value) {
				return fmt.Errorf("two-run read-only Exec: account %d read %s then %s", i, ops[i].Value, ops[bankAccounts+i].Value)
			}
		}
		return nil
	})
	// 3: a read-write transaction reading every account under shared locks.
	go reader(3, func() error {
		defer time.Sleep(time.Millisecond) // leave the writers room
		for try := 0; try < 1000; try++ {
			tx, err := e.Begin()
			if err != nil {
				return err
			}
			var sum int64
			for i := 0; i < bankAccounts && err == nil; i++ {
				var v []byte
				if v, err = tx.Get(bankKey(i)); err == nil {
					var n int64
					n, err = parseBalance(v)
					sum += n
				}
			}
			if err == nil {
				err = tx.Commit()
			}
			tx.Abort()
			if errors.Is(err, ErrConflict) {
				continue
			}
			if err != nil {
				return err
			}
			if sum != total {
				return fmt.Errorf("locking read-write txn: sum %d, want %d", sum, total)
			}
			return nil
		}
		return nil
	})

	workers.Wait()
	close(done)
	readers.Wait()
	if t.Failed() {
		return
	}

	final := bankGets(1)
	if err := e.Exec(final); err != nil {
		t.Fatalf("final read: %v", err)
	}
	var sum int64
	for i := 0; i < bankAccounts; i++ {
		got := specInt(t, final[i].Key, final[i].Value)
		want := int64(bankInitial)
		for w := range ledgers {
			want += ledgers[w][i]
		}
		if got != want {
			t.Errorf("account %d: balance %d, want %d (initial + committed deltas)", i, got, want)
		}
		sum += got
	}
	if sum != total {
		t.Errorf("total %d, want %d", sum, total)
	}
	if committed.Load() == 0 {
		t.Fatalf("no transfer committed")
	}
	for k := range snapshots {
		if snapshots[k].Load() == 0 {
			t.Errorf("snapshot reader %d completed no snapshot", k)
		}
	}
	st, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Commits < uint64(committed.Load()) {
		t.Errorf("Stats.Commits = %d < %d committed transfers", st.Commits, committed.Load())
	}
	t.Logf("committed %d transfers, %d conflicts, %d versions-full aborts; snapshots: ro-txn %d, exec %d, exec-2-runs %d, locking %d; stats %+v",
		committed.Load(), conflicts.Load(), vfull.Load(), snapshots[0].Load(), snapshots[1].Load(), snapshots[2].Load(), snapshots[3].Load(), st)
}

func TestLostUpdate(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	key := []byte("counter")
	specSet(t, e, key, []byte("0"))

	const workers, perWorker = 8, 200
	var (
		commits   atomic.Int64
		conflicts atomic.Int64
		wg        sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			budget := newSpecBudget(perWorker, 4*time.Second)
			for i := 0; budget.ok(i); i++ {
				err := func() error {
					tx, err := e.Begin()
					if err != nil {
						return err
					}
					defer tx.Abort()
					v, err := tx.Get(key)
					if err != nil {
						return err
					}
					n, err := parseBalance(v)
					if err != nil {
						return err
					}
					if err := tx.Set(key, specItoa(n+1)); err != nil {
						return err
					}
					return tx.Commit()
				}()
				switch {
				case err == nil:
					commits.Add(1)
				case errors.Is(err, ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	v, err := e.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if got := specInt(t, key, v); got != commits.Load() {
		t.Fatalf("counter = %d after %d successful increments (%d conflicts): updates lost or invented",
			got, commits.Load(), conflicts.Load())
	}
	if commits.Load() == 0 {
		t.Fatal("no increment committed")
	}
	t.Logf("%d increments committed, %d conflicts", commits.Load(), conflicts.Load())
}
