package engine

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine/internal/apitest"
)

// Deleted keys give their index records back: 100 times the index's
// capacity in distinct keys, each set and deleted in turn, never fills it,
// while a long snapshot reader keeps seeing what it saw; no deleted key
// comes back.
func TestReclaimChurn(t *testing.T) {
	const maxKeys = 1000
	e := openTest(t, Options{MaxKeys: maxKeys})
	for i := range 100 {
		if err := e.Set(fmt.Appendf(nil, "stable%d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Abort()
	// Deleted after the snapshot: the snapshot still sees them.
	for i := range 10 {
		if err := e.Delete(fmt.Appendf(nil, "stable%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	const churn = 100 * maxKeys
	for i := range churn {
		k := fmt.Appendf(nil, "churn%d", i)
		if err := e.Set(k, []byte("x")); err != nil {
			t.Fatalf("set %d of %d distinct keys, index of %d: %v", i, churn, maxKeys, err)
		}
		if err := e.Delete(k); err != nil {
			t.Fatalf("delete %s: %v", k, err)
		}
		if i%10000 == 0 {
			for j := range 10 {
				v, err := snap.Get(fmt.Appendf(nil, "stable%d", j))
				if err != nil || string(v) != fmt.Sprint("v", j) {
					t.Fatalf("the snapshot lost stable%d after %d churned keys: %q, %v", j, i, v, err)
				}
			}
		}
	}
	for i := 0; i < churn; i += 997 {
		if v, err := e.Get(fmt.Appendf(nil, "churn%d", i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted churn%d reads %q, %v", i, v, err)
		}
	}
	st, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsFreed < churn {
		t.Errorf("%d records freed for %d deleted keys", st.RecordsFreed, churn)
	}
	snap.Abort()
	// The snapshot gone, vacuum frees what it kept: the deleted stable keys.
	if err := e.Vacuum(); err != nil {
		t.Fatal(err)
	}
	if st2, _ := e.Stats(); st2.RecordsFreed < st.RecordsFreed+10 {
		t.Errorf("vacuum freed %d records after the snapshot ended, want 10", st2.RecordsFreed-st.RecordsFreed)
	}
	for i := range 100 {
		v, err := e.Get(fmt.Appendf(nil, "stable%d", i))
		if i < 10 && !errors.Is(err, ErrNotFound) || i >= 10 && (err != nil || string(v) != fmt.Sprint("v", i)) {
			t.Fatalf("stable%d = %q, %v", i, v, err)
		}
	}
}

// Increments of a key that another client deletes and recreates lose
// nothing: every increment is in the final value or in a value a deleting
// transaction read and removed.
func TestReclaimIncrDelete(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	key := []byte("counter")
	const incrs = 3000
	var wg sync.WaitGroup
	var incrErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range incrs {
			for {
				_, err := e.Incr(key, 1)
				if err == nil {
					break
				}
				if !Retryable(err) {
					incrErr = err
					return
				}
			}
		}
	}()
	var removed int64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		default:
		}
		// GETDEL as one transaction: the value read is the value removed.
		ops := []Op{{Kind: OpGet, Key: key, ForUpdate: true}, {Kind: OpDelete, Key: key}}
		err := e.Exec(ops)
		switch {
		case err == nil && errors.Is(ops[0].Err, ErrNotFound):
		case err == nil:
			n, perr := strconv.ParseInt(string(ops[0].Value), 10, 64)
			if perr != nil {
				t.Fatalf("deleted %q", ops[0].Value)
			}
			removed += n
		case errors.Is(err, ErrNotFound) || Retryable(err):
		default:
			t.Fatal(err)
		}
		// Vacuum removes the deleted record while the increments race it.
		if err := e.Vacuum(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Microsecond)
	}
	if incrErr != nil {
		t.Fatal(incrErr)
	}
	var final int64
	if v, err := e.Get(key); err == nil {
		final, _ = strconv.ParseInt(string(v), 10, 64)
	} else if !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	st, _ := e.Stats()
	if st.RecordsFreed == 0 {
		t.Error("no record was freed: the race was not run")
	}
	if removed+final != incrs {
		t.Errorf("%d increments: %d removed by deletes + %d left = %d", incrs, removed, final, removed+final)
	}
	t.Logf("%d removed, %d left, %d records freed", removed, final, st.RecordsFreed)
}

// Kernel-side writers give deleted keys' records back too: BPF programs
// set and delete ten times the index's capacity in distinct keys.
func TestReclaimKernelWriters(t *testing.T) {
	const maxKeys = 256
	db := openTest(t, Options{MaxKeys: maxKeys})
	a := loadAPI(t, db)
	for i := range 10 * maxKeys {
		k := fmt.Sprintf("kernel-churn-%d", i)
		out := a.mustCall(t, "api_set", 0, setIn(k, "v"))
		wantStatus(t, "set "+k, out.Status, chainBpfdbStatusBPFDB_OK)
		out = a.mustCall(t, "api_delete", 0, setIn(k, ""))
		wantStatus(t, "delete "+k, out.Status, chainBpfdbStatusBPFDB_OK)
	}
	specAbsent(t, db, []byte("kernel-churn-7"))
	if st, _ := db.Stats(); st.RecordsFreed < 10*maxKeys {
		t.Errorf("%d records freed for %d keys deleted", st.RecordsFreed, 10*maxKeys)
	}
}

// BenchmarkChurn sets and deletes distinct keys, b.N of them through an
// index of 1,000 (distinct), against the same pair on one key (same-key):
// what giving records back costs per deleted key.
func BenchmarkChurn(b *testing.B) {
	for _, tc := range []struct {
		name     string
		distinct bool
	}{{"distinct", true}, {"same-key", false}} {
		b.Run(tc.name, func(b *testing.B) {
			e := openTest(b, Options{MaxKeys: 1000})
			k := []byte("churn-same")
			for i := 0; i < b.N; i++ {
				if tc.distinct {
					k = fmt.Appendf(k[:0], "churn-%d", i)
				}
				if err := e.Set(k, []byte("v")); err != nil {
					b.Fatalf("set %d: %v", i, err)
				}
				if err := e.Delete(k); err != nil {
					b.Fatalf("delete %d: %v", i, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// Readers never see another key's value, while records are removed and
// their elements reused by other keys under them: every value names its
// key, and keys are deleted and written again all the time.
func TestReclaimReadersSeeOwnKey(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64})
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problem error
	fail := func(err error) {
		mu.Lock()
		if problem == nil {
			problem = err
		}
		mu.Unlock()
	}
	writer := func(prefix string, keys int) {
		defer wg.Done()
		for i := 0; time.Now().Before(deadline); i++ {
			k := fmt.Sprintf("%s%d", prefix, i%keys)
			if err := e.Set([]byte(k), fmt.Appendf(nil, "%s:%d", k, i)); err != nil && !Retryable(err) && !errors.Is(err, ErrStoreFull) {
				fail(err)
				return
			}
			if err := e.Delete([]byte(k)); err != nil && !errors.Is(err, ErrNotFound) && !Retryable(err) {
				fail(err)
				return
			}
		}
	}
	wg.Add(3)
	go writer("a", 8)
	go writer("churn", 1000)
	go writer("b", 8)
	var reads, found int
	for i := 0; time.Now().Before(deadline); i++ {
		k := fmt.Sprintf("%c%d", "ab"[i%2], i%8)
		v, err := e.Get([]byte(k))
		reads++
		switch {
		case err == nil:
			found++
			if len(v) <= len(k) || string(v[:len(k)+1]) != k+":" {
				t.Fatalf("%s read %q: another key's value", k, v)
			}
		case errors.Is(err, ErrNotFound) || Retryable(err):
		default:
			t.Fatal(err)
		}
	}
	wg.Wait()
	if problem != nil {
		t.Fatal(problem)
	}
	st, _ := e.Stats()
	t.Logf("%d reads, %d found, %d records freed", reads, found, st.RecordsFreed)
	if st.RecordsFreed < 1000 || found == 0 {
		t.Errorf("the race barely ran: %d records freed, %d reads found a value", st.RecordsFreed, found)
	}
}

// A reader stalled between finding a record and reading it (the test's
// BPFDB_TEST_AFTER_LOOKUP, about 100 µs) while the record is removed and
// its element reused by other keys: it reads its own key's value, or
// retries, never another key's. The retries show the race was run.
func TestReclaimStalledReader(t *testing.T) {
	db := openTest(t, Options{MaxKeys: 32})
	a := loadAPI(t, db)
	if err := a.coll.Maps["api_read_stall"].Update(uint32(0), uint32(1<<16), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	done := make(chan error, 1)
	go func() {
		for i := 0; time.Now().Before(deadline); i++ {
			for _, k := range []string{"victim", "other0", "other1", "other2", "other3"} {
				if err := db.Set([]byte(k), fmt.Appendf(nil, "%s:%d", k, i)); err != nil && !Retryable(err) {
					done <- err
					return
				}
				if err := db.Delete([]byte(k)); err != nil && !Retryable(err) && !errors.Is(err, ErrNotFound) {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	var reads, found, retried int
	for time.Now().Before(deadline) {
		out := a.mustCall(t, "api_get", 0, setIn("victim", ""))
		reads++
		switch apiStatus(out.Status) {
		case chainBpfdbStatusBPFDB_OK:
			found++
			if v := string(out.Buf.B[:out.Len]); len(v) < 7 || v[:7] != "victim:" {
				t.Fatalf("a stalled reader of victim read %q: another key's value", v)
			}
		case chainBpfdbStatusBPFDB_ERR_NOT_FOUND:
		case chainBpfdbStatusBPFDB_ERR_RETRY:
			retried++
		default:
			t.Fatalf("get: status %d", out.Status)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, _ := db.Stats()
	t.Logf("%d stalled reads: %d found, %d retried; %d records freed", reads, found, retried, st.RecordsFreed)
	if retried == 0 {
		t.Error("no stalled read met a reused record: the race was not run")
	}
}

// BenchmarkVacuum1M times a vacuum pass over an index of 1,000,000 keys,
// of which a snapshot kept 100,000 overwritten keys' old versions and
// 100,000 deleted keys' records: the walk's batch lookups, and the runs of
// bpfdb_collect for the keys with something to collect (longest-run-us is
// the longest of those runs). Run with -benchtime 1x: later passes find
// nothing to collect.
func BenchmarkVacuum1M(b *testing.B) {
	const n = 1_000_000
	e := openTest(b, Options{MaxKeys: n + 1024, VacuumInterval: -1})
	batch := func(kind OpKind, from, step int) {
		ops := make([]Op, 0, MaxBatch)
		for i := from; i < n; i += step {
			ops = append(ops, Op{Kind: kind, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("0123456789")})
			if len(ops) == MaxBatch || i+step >= n {
				if err := e.Batch(ops); err != nil {
					b.Fatal(err)
				}
				ops = ops[:0]
			}
		}
	}
	batch(OpSet, 0, 1)
	snap, err := e.BeginReadOnly()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := snap.Get([]byte("k0")); err != nil {
		b.Fatal(err)
	}
	batch(OpSet, 1, 10)
	batch(OpDelete, 2, 10)
	snap.Abort()
	b.ResetTimer()
	for range b.N {
		if err := e.Vacuum(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st, _ := e.Stats()
	if st.RecordsFreed < n/10 {
		b.Fatalf("%d records freed, want %d", st.RecordsFreed, n/10)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/pass")
	b.ReportMetric(float64(e.longestCollect.Load())/1e3, "longest-run-us")
}

// A record can be removed between the insert that creates it and the
// lookup that finds it: it is empty and unlocked until its creator locks
// it, so a DEL of the key (or the vacuum) may remove it first. The
// creator retries (BPFDB_ERR_RETRY); it reported BPFDB_ERR_INTERNAL, which
// a `SET k v GET` racing DELs of k met in TestHistoryLinearizable. The
// window is made wide here (api_create_stall); an autocommit write
// (auto_lock) and a transaction's lock (txn_lock) both create records.
func TestRecordRemovedAfterCreate(t *testing.T) {
	db := openTest(t, Options{MaxKeys: 32})
	a := loadAPI(t, db)
	if err := a.coll.Maps["api_create_stall"].Update(uint32(0), uint32(1<<16), 0); err != nil {
		t.Fatal(err)
	}
	victim := []byte("victim")
	for _, path := range []string{"api_set", "txn get for update"} {
		deadline := time.Now().Add(1500 * time.Millisecond)
		done := make(chan error, 1)
		go func() {
			for time.Now().Before(deadline) {
				if err := db.Delete(victim); err != nil && !Retryable(err) && !errors.Is(err, ErrNotFound) {
					done <- err
					return
				}
			}
			done <- nil
		}()
		var calls, retried int
		for time.Now().Before(deadline) {
			var out *apiSlot
			if path == "api_set" {
				out = a.mustCall(t, "api_set", 0, setIn("victim", "v"))
			} else {
				tx := a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_BEGIN, nil, "", ""))
				wantStatus(t, "begin", tx.Status, chainBpfdbStatusBPFDB_OK)
				out = a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_GET_FOR_UPDATE, tx, "victim", ""))
				if apiStatus(out.Status) == chainBpfdbStatusBPFDB_OK || apiStatus(out.Status) == chainBpfdbStatusBPFDB_ERR_NOT_FOUND {
					ab := a.mustCall(t, "api_step", 0, stepIn(apitest.ApitestApiStepKindAPI_ABORT, tx, "", ""))
					wantStatus(t, "abort", ab.Status, chainBpfdbStatusBPFDB_OK)
				}
			}
			calls++
			switch apiStatus(out.Status) {
			case chainBpfdbStatusBPFDB_OK, chainBpfdbStatusBPFDB_ERR_NOT_FOUND, chainBpfdbStatusBPFDB_ERR_CONFLICT:
			case chainBpfdbStatusBPFDB_ERR_RETRY:
				retried++
			default:
				t.Fatalf("%s of a key being deleted: status %d", path, out.Status)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d calls, %d retried", path, calls, retried)
		if retried == 0 {
			t.Errorf("%s: no call saw its record removed after creating it: the race was not run", path)
		}
	}
}
