package engine

// Benchmarks of the engine (docs/BENCHMARKS.md, "Engine (issue 2)").
//
//	go test -run '^$' -bench 'Baseline|Autocommit|Batch|Txn|Memory' -benchmem -count 5 .
//
// BaselineEmptyRun is the floor: one BPF_PROG_RUN of bpfdb_empty, issued
// exactly as Engine.runProg issues bpfdb_entry. Every other number is read
// against it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

const (
	benchKeys     = 1024 // keys preloaded for the Get/Set/Batch benchmarks
	benchValueLen = 100
	benchBatch    = 64
)

// benchKeySet returns n distinct 16-byte keys.
func benchKeySet(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%012d", i)
	}
	return keys
}

// benchValue returns a 100-byte value whose first 8 bytes are seed.
func benchValue(seed uint64) []byte {
	v := make([]byte, benchValueLen)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	binary.LittleEndian.PutUint64(v, seed)
	return v
}

// benchLoad stores a 100-byte value under every key, MaxBatch keys per run.
func benchLoad(tb testing.TB, e *Engine, keys [][]byte) {
	tb.Helper()
	ops := make([]Op, 0, MaxBatch)
	for start := 0; start < len(keys); start += MaxBatch {
		ops = ops[:0]
		for _, k := range keys[start:min(start+MaxBatch, len(keys))] {
			ops = append(ops, Op{Kind: OpSet, Key: k, Value: benchValue(uint64(start))})
		}
		if err := e.Batch(ops); err != nil {
			tb.Fatalf("loading: %v", err)
		}
		for i := range ops {
			if ops[i].Err != nil {
				tb.Fatalf("loading %q: %v", ops[i].Key, ops[i].Err)
			}
		}
	}
}

// kernelTime is the chain's own time in all runs so far
// (Stats.RunLatencySum: the kernel's measure of each run, without the
// system call around it).
func kernelTime(b *testing.B, e *Engine) time.Duration {
	st, err := e.Stats()
	if err != nil {
		b.Fatal(err)
	}
	return st.RunLatencySum
}

// reportKernelTime reports the chain's time per op since start as
// kernel-ns/op, which varies far less from run to run than ns/op: the
// system call's entry and exit are most of a run here.
func reportKernelTime(b *testing.B, e *Engine, start time.Duration) {
	b.ReportMetric(float64(kernelTime(b, e)-start)/float64(b.N), "kernel-ns/op")
}

// benchOpen opens a store for a benchmark and preloads benchKeys keys.
func benchOpen(b *testing.B) (*Engine, [][]byte) {
	b.Helper()
	e := openTest(b, Options{})
	keys := benchKeySet(benchKeys)
	benchLoad(b, e, keys)
	return e, keys
}

// BenchmarkBaselineEmptyRun is one BPF_PROG_RUN of bpfdb_empty with a request
// slot's 16-byte packet, issued by Engine.runProg exactly as every engine
// call issues its run of the chain: the floor the others are compared with.
func BenchmarkBaselineEmptyRun(b *testing.B) {
	e := openTest(b, Options{})
	s, err := e.acquire()
	if err != nil {
		b.Fatal(err)
	}
	defer e.release(s)
	if len(s.packet) != 16 {
		b.Fatalf("packet is %d bytes, want 16", len(s.packet))
	}
	b.ReportAllocs()
	kernelStart := kernelTime(b, e)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.runProg(s, e.progs.BpfdbEmpty); err != nil { // fails unless bpfdb_empty returned XDP_PASS
			b.Fatal(err)
		}
	}
	reportKernelTime(b, e, kernelStart)
}

// BenchmarkAutocommitGet is Engine.Get of an existing key with a 100-byte value.
func BenchmarkAutocommitGet(b *testing.B) {
	e, keys := benchOpen(b)
	b.ReportAllocs()
	kernelStart := kernelTime(b, e)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := e.Get(keys[i%len(keys)])
		if err != nil {
			b.Fatal(err)
		}
		if len(v) != benchValueLen {
			b.Fatalf("Get returned %d bytes", len(v))
		}
	}
	reportKernelTime(b, e, kernelStart)
}

// BenchmarkAutocommitGetParallel is AutocommitGet from GOMAXPROCS goroutines,
// each run in its own request slot.
func BenchmarkAutocommitGetParallel(b *testing.B) {
	e, keys := benchOpen(b)
	var worker atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			v, err := e.Get(keys[i%len(keys)])
			if err != nil {
				b.Error(err)
				return
			}
			if len(v) != benchValueLen {
				b.Errorf("Get returned %d bytes", len(v))
				return
			}
			i++
		}
	})
}

// BenchmarkAutocommitSet is Engine.Set of a 100-byte value, cycling over
// benchKeys existing keys (so every Set installs a new version and GC
// reclaims the previous ones).
func BenchmarkAutocommitSet(b *testing.B) {
	e, keys := benchOpen(b)
	value := benchValue(42)
	b.ReportAllocs()
	kernelStart := kernelTime(b, e)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Set(keys[i%len(keys)], value); err != nil {
			b.Fatal(err)
		}
	}
	reportKernelTime(b, e, kernelStart)
}

// benchBatchGets runs one Batch of len(ops) Gets starting at key index i.
func benchBatchGets(tb testing.TB, e *Engine, keys [][]byte, ops []Op, i int) bool {
	for j := range ops {
		ops[j] = Op{Kind: OpGet, Key: keys[(i+j)%len(keys)]}
	}
	if err := e.Batch(ops); err != nil {
		tb.Error(err)
		return false
	}
	for j := range ops {
		if ops[j].Err != nil || len(ops[j].Value) != benchValueLen {
			tb.Errorf("op %d: %d bytes, %v", j, len(ops[j].Value), ops[j].Err)
			return false
		}
	}
	return true
}

// BenchmarkBatchGet64 is one Engine.Batch of 64 Gets (one chain run) per
// iteration; ns/op-in-batch is the time per Get.
func BenchmarkBatchGet64(b *testing.B) {
	e, keys := benchOpen(b)
	ops := make([]Op, benchBatch)
	b.ReportAllocs()
	kernelStart := kernelTime(b, e)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !benchBatchGets(b, e, keys, ops, i*benchBatch) {
			b.FailNow()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/op-in-batch")
	reportKernelTime(b, e, kernelStart)
}

// BenchmarkBatchGet64Parallel is BatchGet64 from GOMAXPROCS goroutines.
func BenchmarkBatchGet64Parallel(b *testing.B) {
	e, keys := benchOpen(b)
	var worker atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ops := make([]Op, benchBatch)
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			if !benchBatchGets(b, e, keys, ops, i) {
				return
			}
			i += benchBatch
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/op-in-batch")
}

// BenchmarkTxnTransfer is an interactive read-write transaction: Begin, Get
// two keys, Set both, Commit; retried from Begin on ErrConflict. Each of
// Get, Get, Set, Set, Commit is one chain run (Begin rides on the first Get).
func BenchmarkTxnTransfer(b *testing.B) {
	e, keys := benchOpen(b)
	conflicts := 0
	move := func(from, to []byte) error {
		t, err := e.Begin()
		if err != nil {
			return err
		}
		fail := func(err error) error { t.Abort(); return err }
		a, err := t.Get(from)
		if err != nil {
			return fail(err)
		}
		c, err := t.Get(to)
		if err != nil {
			return fail(err)
		}
		na := benchValue(binary.LittleEndian.Uint64(a) - 1)
		nc := benchValue(binary.LittleEndian.Uint64(c) + 1)
		if err := t.Set(from, na); err != nil {
			return fail(err)
		}
		if err := t.Set(to, nc); err != nil {
			return fail(err)
		}
		return t.Commit()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from, to := keys[(2*i)%len(keys)], keys[(2*i+1)%len(keys)]
		for {
			err := move(from, to)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrConflict) {
				b.Fatal(err)
			}
			conflicts++
		}
	}
	b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/op")
}

// BenchmarkTxnTransferTwoRuns is a transfer as the server runs a script's
// transaction (server/txn.go): Begin with two locking reads in one chain
// run, then both writes and the commit in a second, without waiting for
// the disk. It is the least any transfer through the kernel store costs:
// compare it with BaselineEmptyRun, of which it makes two.
func BenchmarkTxnTransferTwoRuns(b *testing.B) {
	e, keys := benchOpen(b)
	reads, writes := make([]Op, 2), make([]Op, 2)
	move := func(from, to []byte) error {
		t, err := e.Begin()
		if err != nil {
			return err
		}
		reads[0] = Op{Kind: OpGet, Key: from, ForUpdate: true}
		reads[1] = Op{Kind: OpGet, Key: to, ForUpdate: true}
		if err := t.Run(reads); err != nil {
			t.Abort()
			return err
		}
		for _, op := range reads {
			if op.Err != nil {
				t.Abort()
				return op.Err
			}
		}
		writes[0] = Op{Kind: OpSet, Key: from, Value: benchValue(binary.LittleEndian.Uint64(reads[0].Value) - 1)}
		writes[1] = Op{Kind: OpSet, Key: to, Value: benchValue(binary.LittleEndian.Uint64(reads[1].Value) + 1)}
		if _, err := t.SubmitWith(writes); err != nil {
			return err
		}
		return errors.Join(writes[0].Err, writes[1].Err)
	}
	b.ReportAllocs()
	kernelStart := kernelTime(b, e)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := move(keys[(2*i)%len(keys)], keys[(2*i+1)%len(keys)]); err != nil {
			b.Fatal(err) // one goroutine: nothing to conflict with
		}
	}
	reportKernelTime(b, e, kernelStart)
}

// benchMemoryReport is the accounted and the measured memory of a store of
// 100-byte values.
type benchMemoryReport struct {
	opts Options
	mem  Memory
	keys int

	// From Memory (the kernel's memlock accounting).
	perKey      float64 // Memory.PerKey(opts, 100): index + one 128-byte slot
	indexPerKey float64 // records map bytes / MaxKeys
	slotBytes   float64 // value store bytes per 128-byte slot
	totalPerKey float64 // every map / MaxKeys (what Open reserves per key of capacity)

	// Measured by loading keys distinct keys with 100-byte values.
	records     int     // entries in the records map
	slotsLoaded uint64  // 128-byte slots in use after one Set per key
	slotsPerKey float64 // slotsLoaded / keys
	// After a second and a third Set per key: the pages carved, and the
	// slots in use per key.
	overwrite [2]struct {
		pages      uint64
		livePerKey float64
	}
}

// benchMeasureMemory opens a default-sized store (MaxKeys 65536), fills it to
// capacity with 100-byte values, then overwrites every key twice.
func benchMeasureMemory(tb testing.TB) (benchMemoryReport, *Engine) {
	tb.Helper()
	e := openTest(tb, Options{MaxKeys: 1 << 16})
	r := benchMemoryReport{opts: e.Options(), keys: e.Options().MaxKeys}
	c := slabClass(benchValueLen)
	if c != 2 {
		tb.Fatalf("100-byte values are in class %d, want 2", c)
	}
	var err error
	if r.mem, err = e.Memory(); err != nil {
		tb.Fatal(err)
	}
	r.perKey = r.mem.PerKey(r.opts, benchValueLen)
	r.indexPerKey = float64(r.mem.IndexBytes) / float64(r.opts.MaxKeys)
	r.slotBytes = float64(r.mem.ValueBytes) / float64(e.valuePages()*int64(PageSize)) * float64(SlabSize(c))
	r.totalPerKey = float64(r.mem.TotalBytes) / float64(r.opts.MaxKeys)

	use := func() MemoryUse {
		u, err := e.MemoryUse()
		if err != nil {
			tb.Fatal(err)
		}
		return u
	}
	keys := benchKeySet(r.keys)
	benchLoad(tb, e, keys)
	r.slotsLoaded = use().SlotsUsed[c]
	r.slotsPerKey = float64(r.slotsLoaded) / float64(r.keys)
	var k chainBpfdbKey
	var rec chainBpfdbRecord
	it := e.maps.Records.Iterate()
	for it.Next(&k, &rec) {
		r.records++
	}
	if err := it.Err(); err != nil {
		tb.Fatal(err)
	}

	for pass := range r.overwrite {
		benchLoad(tb, e, keys)
		u := use()
		ow := &r.overwrite[pass]
		ow.pages = u.PagesUsed
		ow.livePerKey = float64(u.SlotsUsed[c]) / float64(r.keys)
	}
	return r, e
}

func (r benchMemoryReport) log(tb testing.TB) {
	tb.Logf("MaxKeys %d, MaxMemory %d, record %d B, key %d B",
		r.opts.MaxKeys, r.opts.MaxMemory, unsafe.Sizeof(chainBpfdbRecord{}), unsafe.Sizeof(chainBpfdbKey{}))
	tb.Logf("accounted: index %d B, value store %d B, all maps %d B", r.mem.IndexBytes, r.mem.ValueBytes, r.mem.TotalBytes)
	tb.Logf("PerKey(100 B) = %.1f B = index %.1f B/key + slot %.1f B/value; all maps / MaxKeys = %.1f B",
		r.perKey, r.indexPerKey, r.slotBytes, r.totalPerKey)
	tb.Logf("loaded %d keys: %d records, %d 128-byte slots (%.3f/key)", r.keys, r.records, r.slotsLoaded, r.slotsPerKey)
	for i, ow := range r.overwrite {
		tb.Logf("after Set #%d of every key: %d pages carved, slots in use %.3f/key",
			i+2, ow.pages, ow.livePerKey)
	}
}

// TestMemoryPerKey100B logs the kernel memory per key of 100-byte values
// (go test -run MemoryPerKey -v).
func TestMemoryPerKey100B(t *testing.T) {
	r, _ := benchMeasureMemory(t)
	r.log(t)
	if r.records != r.keys || r.slotsLoaded != uint64(r.keys) {
		t.Errorf("loading %d keys made %d records and used %d slots", r.keys, r.records, r.slotsLoaded)
	}
}

// BenchmarkMemoryPerKey100B reports the same figures as metrics; its ns/op
// is the cost of one Engine.Memory call, not of a store operation.
func BenchmarkMemoryPerKey100B(b *testing.B) {
	r, e := benchMeasureMemory(b)
	r.log(b)
	for b.Loop() {
		if _, err := e.Memory(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.perKey, "B/key")
	b.ReportMetric(r.indexPerKey, "index-B/key")
	b.ReportMetric(r.slotBytes, "slot-B/value")
	b.ReportMetric(r.totalPerKey, "reserved-B/key")
	b.ReportMetric(r.slotsPerKey, "slots/key")
	b.ReportMetric(r.overwrite[1].livePerKey, "slots/key-overwritten")
}
