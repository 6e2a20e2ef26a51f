package engine

// Benchmarks of durability (docs/BENCHMARKS.md, "Durability (issue 3)"):
// durable commit throughput beside pebble's own synced writes, recovery
// replay rate, and checkpoint gate time with a million keys.
//
//	BPFDB_REQUIRE_BPF=1 go test -run '^$' -benchmem -benchtime 2s -count 3 \
//		-bench '^Benchmark(DurableCommit|PebbleSyncSet|AsyncCommit|DurableSets64|DurableExec62)$' .
//	BPFDB_REQUIRE_BPF=1 go test -run '^$' -benchmem -benchtime 3x -v \
//		-bench '^Benchmark(RecoveryReplay|Checkpoint1M)$' .
//
// Also BaselineProgramRun, the floor measured through cilium/ebpf's
// Program.Run, to read BaselineEmptyRun (bench_test.go) against; the
// engine command in bench_test.go runs it too.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/logd"
	"github.com/cilium/ebpf"
	"github.com/cockroachdb/pebble"
)

// BenchmarkBaselineProgramRun is BaselineEmptyRun issued through cilium/ebpf's
// Program.Run instead of Engine.runProg: the same program and 16-byte
// packet, plus the signal masking and thread locking Program.Run adds.
func BenchmarkBaselineProgramRun(b *testing.B) {
	e := openTest(b, Options{})
	s, err := e.acquire()
	if err != nil {
		b.Fatal(err)
	}
	defer e.release(s)
	opts := &ebpf.RunOptions{Data: s.packet}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ret, err := e.progs.BpfdbEmpty.Run(opts)
		if err != nil {
			b.Fatal(err)
		}
		if ret != 2 { // XDP_PASS
			b.Fatalf("bpfdb_empty returned %d", ret)
		}
	}
}

// durKeysPerWorker is how many keys each committer cycles over: its own,
// so committers never conflict, and one Batch of them is one chain run.
const durKeysPerWorker = 64

var durCommitters = []int{1, 8, 64}

// durKeys returns workers disjoint sets of durKeysPerWorker 16-byte keys.
func durKeys(workers int) [][][]byte {
	keys := make([][][]byte, workers)
	for w := range keys {
		keys[w] = make([][]byte, durKeysPerWorker)
		for i := range keys[w] {
			keys[w][i] = fmt.Appendf(nil, "w%03d-key-%06d", w, i)
		}
	}
	return keys
}

// durParallel resets the timer, then runs b.N calls of fn from workers
// goroutines (fn(w, i): worker w's i-th call) and stops the timer.
func durParallel(b *testing.B, workers int, fn func(w, i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if err := fn(w, i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
}

// durOpen opens a store with sync durability in a fresh directory and
// writes every worker's keys once.
func durOpen(b *testing.B, workers int) (*Engine, [][][]byte) {
	b.Helper()
	e := openTest(b, Options{MaxKeys: 1 << 14, Dir: b.TempDir(), Durability: Sync})
	keys := durKeys(workers)
	for w := range keys {
		benchLoad(b, e, keys[w])
	}
	return e, keys
}

// durReport reports rate per second of units and the log's transactions
// per fsync since before.
func durReport(b *testing.B, e *Engine, units int, unit string, txns0, syncs0 uint64) {
	b.ReportMetric(float64(units)/b.Elapsed().Seconds(), unit+"/s")
	st := e.log.Stats()
	if syncs := st.Syncs.Load() - syncs0; syncs > 0 {
		b.ReportMetric(float64(st.Txns.Load()-txns0)/float64(syncs), "commits/fsync")
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(syncs), "ms/fsync")
	}
}

// BenchmarkDurableCommit is autocommit Engine.Set of a 100-byte value with
// sync durability (acknowledged once its log record is fsynced; concurrent
// commits share an fsync), from 1, 8 and 64 goroutines, each on its own keys.
func BenchmarkDurableCommit(b *testing.B) {
	for _, workers := range durCommitters {
		b.Run(fmt.Sprintf("committers=%d", workers), func(b *testing.B) {
			e, keys := durOpen(b, workers)
			value := benchValue(7)
			st := e.log.Stats()
			txns0, syncs0 := st.Txns.Load(), st.Syncs.Load()
			durParallel(b, workers, func(w, i int) error {
				return e.Set(keys[w][i%durKeysPerWorker], value)
			})
			durReport(b, e, b.N, "commits", txns0, syncs0)
		})
	}
}

// BenchmarkDurableSubmit50 is the case a server with many clients is:
// 50 goroutines, each submitting one autocommit SET of a 100-byte value
// (Engine.Submit) and then waiting for it (Engine.WaitDurable), with sync
// durability. ms/fsync is the commit cycle: elapsed time per fsync.
func BenchmarkDurableSubmit50(b *testing.B) {
	const workers = 50
	e, keys := durOpen(b, workers)
	value := benchValue(7)
	ops := make([][1]Op, workers)
	st := e.log.Stats()
	txns0, syncs0 := st.Txns.Load(), st.Syncs.Load()
	durParallel(b, workers, func(w, i int) error {
		ops[w][0] = Op{Kind: OpSet, Key: keys[w][i%durKeysPerWorker], Value: value}
		lsn, err := e.Submit(ops[w][:])
		if err == nil {
			err = ops[w][0].Err
		}
		if err != nil {
			return err
		}
		return e.WaitDurable(lsn)
	})
	durReport(b, e, b.N, "commits", txns0, syncs0)
}

// BenchmarkAsyncCommit is BenchmarkDurableCommit with async durability:
// every commit is still logged (through the kernel ring to logd), but
// acknowledged without waiting for an fsync. Read against AutocommitSet
// (no log at all), it is the cost of logging; against DurableCommit, the
// cost of waiting for the disk. A Set that fails with ErrLogFull (the ring
// stayed full through Set's own retries) is counted and retried.
func BenchmarkAsyncCommit(b *testing.B) {
	for _, workers := range []int{1, 64} {
		b.Run(fmt.Sprintf("committers=%d", workers), func(b *testing.B) {
			e := openTest(b, Options{MaxKeys: 1 << 14, Dir: b.TempDir(), Durability: Async})
			keys := durKeys(workers)
			for w := range keys {
				benchLoad(b, e, keys[w])
			}
			value := benchValue(7)
			var logFull atomic.Int64
			durParallel(b, workers, func(w, i int) error {
				for {
					err := e.Set(keys[w][i%durKeysPerWorker], value)
					if !errors.Is(err, ErrLogFull) {
						return err
					}
					logFull.Add(1) // the ring stayed full through Set's retries
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(logFull.Load()), "ErrLogFull")
		})
	}
}

// BenchmarkDurableSets64 is Engine.Batch of 64 autocommit Sets (64
// transactions, one chain run, acknowledged together) with sync durability
// from 1 and 8 goroutines; commits/s counts transactions.
func BenchmarkDurableSets64(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", workers), func(b *testing.B) {
			e, keys := durOpen(b, workers)
			ops := make([][]Op, workers)
			for w := range ops {
				ops[w] = make([]Op, durKeysPerWorker)
			}
			value := benchValue(7)
			st := e.log.Stats()
			txns0, syncs0 := st.Txns.Load(), st.Syncs.Load()
			durParallel(b, workers, func(w, _ int) error {
				for j := range ops[w] {
					ops[w][j] = Op{Kind: OpSet, Key: keys[w][j], Value: value}
				}
				if err := e.Batch(ops[w]); err != nil {
					return err
				}
				for j := range ops[w] {
					if ops[w][j].Err != nil {
						return ops[w][j].Err
					}
				}
				return nil
			})
			durReport(b, e, b.N*durKeysPerWorker, "commits", txns0, syncs0)
		})
	}
}

// durExecWrites is the most writes Exec commits in one chain run.
const durExecWrites = 62

// BenchmarkDurableExec62 is Engine.Exec of 62 Sets (one transaction of 62
// writes, one chain run) with sync durability from 1 and 8 goroutines. An
// Exec that fails with ErrConflict, or with the unexported errRetry that
// Exec lets out, is counted and run again.
func BenchmarkDurableExec62(b *testing.B) {
	if MaxBatch-2 != durExecWrites {
		b.Fatalf("Exec commits %d writes in one run, not %d", MaxBatch-2, durExecWrites)
	}
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", workers), func(b *testing.B) {
			e, keys := durOpen(b, workers)
			ops := make([][]Op, workers)
			for w := range ops {
				ops[w] = make([]Op, durExecWrites)
			}
			value := benchValue(7)
			var conflicts, races atomic.Int64
			st := e.log.Stats()
			txns0, syncs0 := st.Txns.Load(), st.Syncs.Load()
			durParallel(b, workers, func(w, _ int) error {
				for {
					for j := range ops[w] {
						ops[w][j] = Op{Kind: OpSet, Key: keys[w][j], Value: value}
					}
					err := e.Exec(ops[w])
					switch {
					case errors.Is(err, ErrConflict):
						// No other writer has these keys: the background
						// vacuum held one of their locks.
						conflicts.Add(1)
					case errors.Is(err, errRetry):
						// The commit lost the clock (bpf/txn/clock.h) and
						// the transaction was aborted.
						races.Add(1)
					default:
						return err
					}
				}
			})
			durReport(b, e, b.N, "txns", txns0, syncs0)
			b.ReportMetric(float64(conflicts.Load()), "ErrConflict")
			b.ReportMetric(float64(races.Load()), "errRetry")
			b.ReportMetric(float64(b.N*durExecWrites)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// durQuietLogger drops pebble's informational messages.
type durQuietLogger struct{}

func (durQuietLogger) Infof(string, ...any) {}

func (durQuietLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// BenchmarkPebbleSyncSet is pebble alone, as logd opens it: DB.Set of the
// same keys and 100-byte values with pebble.Sync, from as many goroutines
// as BenchmarkDurableCommit has committers (pebble groups concurrent
// synced commits into one WAL fsync).
func BenchmarkPebbleSyncSet(b *testing.B) {
	for _, workers := range durCommitters {
		b.Run(fmt.Sprintf("committers=%d", workers), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: durQuietLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			keys := durKeys(workers)
			value := benchValue(7)
			durParallel(b, workers, func(w, i int) error {
				return db.Set(keys[w][i%durKeysPerWorker], value, pebble.Sync)
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
		})
	}
}

// durCopyDir copies the regular files under src into dst.
func durCopyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// durReplayRecords is the number of transactions in the replayed log.
const durReplayRecords = 500_000

// durReplayKey is the key transaction lsn writes, over keys distinct keys.
func durReplayKey(lsn, keys int) []byte {
	return fmt.Appendf(nil, "key-%012d", (lsn-1)%keys)
}

// durWriteLog writes a log of n single-write transactions (LSNs 1..n, keys
// as durReplayKey, 100-byte values) straight through a logd.Writer, waits
// until the last is durable, and closes it: a log as a crash leaves it,
// with no checkpoint.
func durWriteLog(tb testing.TB, dir string, n, keys int) {
	tb.Helper()
	l, err := logd.Open(dir, logd.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	l.Start(0)
	w := l.NewWriter()
	for lsn := 1; lsn <= n; lsn++ {
		w.AddWrite(uint64(lsn), uint64(lsn), logd.Write{Key: durReplayKey(lsn, keys), Value: benchValue(uint64(lsn))})
	}
	w.Close(time.Time{})
	if err := l.WaitDurable(uint64(n)); err != nil {
		tb.Fatal(err)
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRecoveryReplay times Open of a directory holding a log of
// 500,000 single-write transactions with 100-byte values and no checkpoint:
// Open replays all of them into the kernel maps. keys=distinct writes
// 500,000 keys; keys=65536 overwrites each of 65536 keys about 7.6 times.
// One op is one Open, of a fresh copy of the directory each time (the copy
// is in the page cache: this is replay, not a cold read from disk).
//
// Metrics:
//   - records/s: the records over the whole Open, fixed costs included;
//   - replay-records/s: the replay loop alone, timed inside Open between
//     its first and last Options.Progress report of the log (LSN 65536 to
//     the end);
//   - log-only-records/s: logd.Replay alone (pebble read and record
//     decoding, nothing loaded into the kernel);
//   - empty-open-ms: the median Open of an empty directory with the same
//     options (chain load and verification, map creation, pebble open).
func BenchmarkRecoveryReplay(b *testing.B) {
	openTest(b, Options{MaxKeys: 16}).Close() // skips without privileges
	for _, keys := range []int{durReplayRecords, 1 << 16} {
		name := fmt.Sprintf("keys=%d", keys)
		if keys == durReplayRecords {
			name = "keys=distinct"
		}
		b.Run(name, func(b *testing.B) {
			var (
				first, last         time.Time
				firstDone, lastDone uint64
				replayed            uint64
				replayTime          time.Duration
			)
			opts := Options{
				MaxKeys:            1 << 19,
				MaxMemory:          1<<19*indexBytesPerKey + 600_000*128 + 1<<20,
				Durability:         Async,
				CheckpointInterval: -1,
				CheckpointLogBytes: -1,
				Progress: func(stage string, done, _ uint64) {
					if stage != "log" {
						return
					}
					if first.IsZero() {
						first, firstDone = time.Now(), done
					}
					last, lastDone = time.Now(), done
				},
			}
			src := b.TempDir()
			durWriteLog(b, src, durReplayRecords, keys)

			// The log alone: pebble iteration and record decoding.
			dir := filepath.Join(b.TempDir(), "log-only")
			durCopyDir(b, src, dir)
			l, err := logd.Open(dir, logd.Options{})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			st, err := l.Replay(0, 0, func(*logd.Txn) error { return nil })
			logOnly := time.Since(start)
			l.Close()
			if err != nil || st.Txns != durReplayRecords || st.Damage != nil {
				b.Fatalf("log replay: %+v, %v", st, err)
			}

			var emptyOpens []time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				// Open of an empty directory: the fixed cost in every Open.
				opts.Dir = filepath.Join(b.TempDir(), fmt.Sprint("empty-", n))
				start := time.Now()
				e, err := Open(opts)
				emptyOpens = append(emptyOpens, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				e.Close()

				opts.Dir = filepath.Join(b.TempDir(), fmt.Sprint("run-", n))
				n++
				durCopyDir(b, src, opts.Dir)
				first = time.Time{}
				b.StartTimer()
				e, err = Open(opts)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				replayed += lastDone - firstDone
				replayTime += last.Sub(first)
				rec := e.Recovery()
				if rec.Replay.Txns != durReplayRecords || rec.LSN != durReplayRecords || rec.Replay.Damage != nil {
					b.Fatalf("recovered %+v", rec)
				}
				lastKey := durReplayKey(durReplayRecords, keys)
				if v, err := e.Get(lastKey); err != nil || string(v) != string(benchValue(durReplayRecords)) {
					b.Fatalf("Get(%s) after replay: %q, %v", lastKey, v, err)
				}
				e.Close()
				os.RemoveAll(opts.Dir)
				b.StartTimer()
			}
			slices.Sort(emptyOpens)
			perOpen := b.Elapsed().Seconds() / float64(n)
			b.ReportMetric(durReplayRecords/perOpen, "records/s")
			b.ReportMetric(float64(replayed)/replayTime.Seconds(), "replay-records/s")
			b.ReportMetric(durReplayRecords/logOnly.Seconds(), "log-only-records/s")
			b.ReportMetric(float64(emptyOpens[len(emptyOpens)/2].Microseconds())/1000, "empty-open-ms")
		})
	}
}

// durCheckpointKeys is the size of the store BenchmarkCheckpoint1M checkpoints.
const durCheckpointKeys = 1_000_000

// durCheckpointOpts sizes a store for durCheckpointKeys 100-byte values
// plus overwrites: 1.2M 128-byte slots, and a few pages more.
func durCheckpointOpts(dir string, d Durability) Options {
	return Options{
		MaxKeys:            1 << 20,
		MaxMemory:          1<<20*indexBytesPerKey + 1_200_000*128 + 1<<20,
		Dir:                dir,
		Durability:         d,
		CheckpointInterval: -1,
		CheckpointLogBytes: -1,
	}
}

// durCheckpoints takes a checkpoint per b.Loop iteration while writers
// goroutines run autocommit Sets on their own keys of the store (0: idle),
// and reports the median and largest GateClosed, the median Duration, and
// what the writers and the log did: their commit rate and the log's fsyncs
// during the checkpoints and, for comparison, in the second before them.
// A Set that fails with ErrQuiesced or ErrLogFull (the gate stayed closed,
// or the ring full, through Set's own retries) is counted, not fatal.
func durCheckpoints(b *testing.B, e *Engine, writers int) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var commits, quiesced, logFull atomic.Int64
	var worstSet atomic.Int64
	keys := benchKeySet(writers * durKeysPerWorker)
	value := benchValue(9)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := keys[w*durKeysPerWorker : (w+1)*durKeysPerWorker]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				err := e.Set(mine[i%len(mine)], value)
				if d := int64(time.Since(start)); d > worstSet.Load() {
					worstSet.Store(d) // racy maximum: good enough for a report
				}
				switch {
				case err == nil:
					commits.Add(1)
				case errors.Is(err, ErrQuiesced):
					quiesced.Add(1)
				case errors.Is(err, ErrLogFull):
					logFull.Add(1)
				default:
					b.Error(err)
					return
				}
			}
		}()
	}
	// The writers alone for a second: the rates checkpoints are read against.
	ls := e.log.Stats()
	time.Sleep(100 * time.Millisecond)
	c0, s0, t0 := commits.Load(), ls.Syncs.Load(), time.Now()
	if writers > 0 {
		time.Sleep(time.Second)
	}
	c1, s1, t1 := commits.Load(), ls.Syncs.Load(), time.Now()
	worstSet.Store(0)

	var gates, durations []time.Duration
	var lastKeys uint64
	for b.Loop() {
		st, err := e.Checkpoint()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("checkpoint at LSN %d: %d keys, gate closed %v, took %v", st.LSN, st.Keys, st.GateClosed, st.Duration)
		gates = append(gates, st.GateClosed)
		durations = append(durations, st.Duration)
		lastKeys = st.Keys
	}
	c2, s2, t2 := commits.Load(), ls.Syncs.Load(), time.Now()
	close(stop)
	wg.Wait()
	if lastKeys < durCheckpointKeys {
		b.Fatalf("checkpoint holds %d keys, want %d", lastKeys, durCheckpointKeys)
	}
	slices.Sort(gates)
	slices.Sort(durations)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(gates[len(gates)/2]), "gate-ms")
	b.ReportMetric(ms(gates[len(gates)-1]), "max-gate-ms")
	b.ReportMetric(durations[len(durations)/2].Seconds(), "checkpoint-s")
	b.ReportMetric(float64(lastKeys), "keys")
	if writers > 0 {
		before, during := t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds()
		b.ReportMetric(float64(c1-c0)/before, "commits/s-before")
		b.ReportMetric(float64(c2-c1)/during, "commits/s-during")
		b.ReportMetric(float64(s1-s0)/before, "fsyncs/s-before")
		b.ReportMetric(float64(s2-s1)/during, "fsyncs/s-during")
		b.ReportMetric(float64(quiesced.Load()), "ErrQuiesced")
		b.ReportMetric(float64(logFull.Load()), "ErrLogFull")
		b.ReportMetric(ms(time.Duration(worstSet.Load())), "max-set-ms-during")
	}
}

// durLoad stores a 100-byte value under every key, MaxBatch keys per run,
// like benchLoad, but runs again the Sets that failed with ErrLogFull (and
// those skipped behind one): with async durability nothing holds a loader
// back while logd catches up, so the ring can stay full through Batch's own
// retries. It returns how many Sets it ran again.
func durLoad(tb testing.TB, e *Engine, keys [][]byte) (again int) {
	tb.Helper()
	ops := make([]Op, 0, MaxBatch)
	for start := 0; start < len(keys); start += MaxBatch {
		ops = ops[:0]
		for _, k := range keys[start:min(start+MaxBatch, len(keys))] {
			ops = append(ops, Op{Kind: OpSet, Key: k, Value: benchValue(uint64(start))})
		}
		for len(ops) > 0 {
			if err := e.Batch(ops); err != nil {
				tb.Fatalf("loading: %v", err)
			}
			failed := ops[:0]
			for _, op := range ops {
				switch {
				case op.Err == nil:
				case errors.Is(op.Err, ErrLogFull), errors.Is(op.Err, ErrConflict):
					// ErrConflict: skipped behind an op that ran out of
					// retries (runAuto reports those as ErrConflict).
					failed = append(failed, Op{Kind: OpSet, Key: op.Key, Value: op.Value})
				default:
					tb.Fatalf("loading %q: %v", op.Key, op.Err)
				}
			}
			again += len(failed)
			ops = failed
		}
	}
	return again
}

// BenchmarkCheckpoint1M loads 1,000,000 keys of 100 bytes (Batch of 64
// Sets, async durability) and times Engine.Checkpoint: one op is one
// checkpoint. GateClosed is the time new writers are refused; Duration the
// whole checkpoint, copy of the image included.
//
//   - durability=async/writers=0: an idle store.
//   - durability=async/writers=2: two goroutines run autocommit Sets
//     throughout (as many as there are CPUs here).
//   - durability=sync/writers=64: the same store reopened with sync
//     durability (recovering it from the last checkpoint; recovery-keys/s
//     is that rate), with 64 committers waiting for fsyncs throughout.
func BenchmarkCheckpoint1M(b *testing.B) {
	dir := b.TempDir()
	e := openTest(b, durCheckpointOpts(dir, Async))
	keys := benchKeySet(durCheckpointKeys)
	start := time.Now()
	again := durLoad(b, e, keys)
	b.Logf("loaded %d keys in %v (%d Sets run again after ErrLogFull)", len(keys), time.Since(start), again)

	b.Run("durability=async/writers=0", func(b *testing.B) { durCheckpoints(b, e, 0) })
	b.Run("durability=async/writers=2", func(b *testing.B) { durCheckpoints(b, e, 2) })
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	e = openTest(b, durCheckpointOpts(dir, Sync))
	recovered := time.Since(start)
	rec := e.Recovery()
	b.Logf("reopened with sync durability: recovered checkpoint at LSN %d (%d keys) and %d transactions in %v",
		rec.Checkpoint.LSN, rec.Checkpoint.Entries, rec.Replay.Txns, recovered)
	b.Run("durability=sync/writers=64", func(b *testing.B) {
		durCheckpoints(b, e, 64)
		b.ReportMetric(float64(rec.Checkpoint.Entries)/recovered.Seconds(), "recovery-keys/s")
	})
}
