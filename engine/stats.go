package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
)

// Stats are the chain's own counters (the per-CPU stats map, summed).
type Stats struct {
	Runs, Gets, Sets, Deletes, Commits uint64
	// Aborts by reason.
	AbortsConflict, AbortsVersionsFull, AbortsStoreFull, AbortsWriteSetFull, AbortsUser, AbortsOther uint64
	// GCReclaimed counts versions reclaimed by cooperative GC and vacuum.
	GCReclaimed uint64
	// SlotsLost counts value slots and pages a free list could not take
	// back (its compare-and-swaps lost to other CPUs every time): memory
	// the store no longer uses, until restart.
	SlotsLost uint64
	// RecordsFreed counts deleted keys whose index records were removed,
	// giving their room back (at the delete, or by vacuum once no
	// snapshot needed them).
	RecordsFreed uint64
	// ExpiredDeleted counts expired keys the expirer deleted (each a logged
	// deletion); ExpiryPending, the keys with a deadline it waits for.
	ExpiredDeleted, ExpiryPending uint64
	// ExpiryPendingDB is ExpiryPending by database.
	ExpiryPendingDB [Databases]uint64
	// LongKeys is how many keys over InlineKeyLen bytes the engine holds
	// whole in its memory (longkey.go).
	LongKeys uint64
	// AbortsLogFull counts commits refused because the log ring was full;
	// Quiesced, writers refused while a checkpoint's gate was closed.
	AbortsLogFull, Quiesced uint64
	// AbortsLogRefused counts commits refused because the log could not
	// take writes (LogFault says why).
	AbortsLogRefused uint64

	// From user space, with a data directory:
	// LogRecords read from the ring; LogTxns, LogBytes, LogBatches and
	// LogSyncs written by logd; LogWriteErrors, failed writes (a full disk).
	LogRecords, LogTxns, LogBytes, LogBatches, LogSyncs, LogWriteErrors uint64
	// LogReopens counts the times a failed write made the log reopen its
	// pebble store; MinFreeBytes is the free space the log keeps.
	LogReopens   uint64
	MinFreeBytes int64
	// LogFault is why writes are refused now (Engine.LogFault), or nil.
	LogFault error
	// LogBadRecords counts ring records the drain could not use (malformed,
	// or a COMMIT whose writes did not all come): never expected, and a
	// commit dropped so leaves a gap that stops the durable LSN.
	LogBadRecords uint64
	// DurableLSN is the last commit on disk; CommitLSN the last commit.
	DurableLSN, CommitLSN uint64
	// Checkpoints taken, their total gate-closed time and duration, and
	// when the last one was.
	Checkpoints        uint64
	GateClosed         time.Duration
	CheckpointDuration time.Duration
	LastCheckpoint     time.Time

	// RunLatency counts chain runs by their duration as the kernel measures
	// it (BPF_PROG_TEST_RUN's duration): RunLatency[i] runs took at most
	// RunLatencyBounds[i], and more than the bound before; the last bucket
	// has no upper bound. RunLatencySum is their total duration.
	RunLatency    [RunLatencyBuckets]uint64
	RunLatencySum time.Duration
}

// RunLatencyBuckets is the number of buckets of Stats.RunLatency.
const RunLatencyBuckets = 20

// RunLatencyBounds are the upper bounds of the buckets of Stats.RunLatency
// but the last: 250ns doubling to 33.5ms.
var RunLatencyBounds = func() (b [RunLatencyBuckets - 1]time.Duration) {
	for i := range b {
		b[i] = 250 * time.Nanosecond << i
	}
	return b
}()

// runHistogram counts runs of one request slot by duration.
type runHistogram struct {
	count [RunLatencyBuckets]atomic.Uint64
	sum   atomic.Uint64
}

// observe counts a run of ns nanoseconds.
func (h *runHistogram) observe(ns uint32) {
	i := 0
	for i < len(RunLatencyBounds) && time.Duration(ns) > RunLatencyBounds[i] {
		i++
	}
	h.count[i].Add(1)
	h.sum.Add(uint64(ns))
}

// Stats reads the kernel-side counters.
func (e *Engine) Stats() (Stats, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return Stats{}, ErrClosed
	}
	var st Stats
	fields := map[chainBpfdbStat]*uint64{
		chainBpfdbStatBPFDB_STAT_RUNS:                  &st.Runs,
		chainBpfdbStatBPFDB_STAT_GETS:                  &st.Gets,
		chainBpfdbStatBPFDB_STAT_SETS:                  &st.Sets,
		chainBpfdbStatBPFDB_STAT_DELS:                  &st.Deletes,
		chainBpfdbStatBPFDB_STAT_COMMITS:               &st.Commits,
		chainBpfdbStatBPFDB_STAT_ABORTS_CONFLICT:       &st.AbortsConflict,
		chainBpfdbStatBPFDB_STAT_ABORTS_VERSIONS_FULL:  &st.AbortsVersionsFull,
		chainBpfdbStatBPFDB_STAT_ABORTS_STORE_FULL:     &st.AbortsStoreFull,
		chainBpfdbStatBPFDB_STAT_ABORTS_WRITE_SET_FULL: &st.AbortsWriteSetFull,
		chainBpfdbStatBPFDB_STAT_ABORTS_USER:           &st.AbortsUser,
		chainBpfdbStatBPFDB_STAT_ABORTS_OTHER:          &st.AbortsOther,
		chainBpfdbStatBPFDB_STAT_GC_RECLAIMED:          &st.GCReclaimed,
		chainBpfdbStatBPFDB_STAT_ABORTS_LOG_REFUSED:    &st.AbortsLogRefused,
		chainBpfdbStatBPFDB_STAT_RECORDS_FREED:         &st.RecordsFreed,
		chainBpfdbStatBPFDB_STAT_SLOTS_LOST:            &st.SlotsLost,
	}
	sums, err := e.statSums()
	if err != nil {
		return Stats{}, err
	}
	for stat, dst := range fields {
		*dst = sums[stat]
	}
	for _, s := range e.slots {
		for i := range st.RunLatency {
			st.RunLatency[i] += s.runs.count[i].Load()
		}
		st.RunLatencySum += time.Duration(s.runs.sum.Load())
	}
	st.CommitLSN = atomic.LoadUint64(&e.ctl.Clock)
	st.ExpiredDeleted, st.ExpiryPending = e.expiry.deleted.Load(), uint64(e.expiry.pending())
	st.ExpiryPendingDB = e.expiry.pendingByDB()
	st.LongKeys = uint64(e.longKeys.count())
	if e.log != nil {
		ls := e.log.Stats()
		st.LogRecords, st.LogBadRecords = e.logRecords.Load(), e.logBadRecords.Load()
		st.LogTxns, st.LogBytes, st.LogBatches = ls.Txns.Load(), ls.Bytes.Load(), ls.Batches.Load()
		st.LogSyncs, st.LogWriteErrors = ls.Syncs.Load(), ls.WriteErrors.Load()
		st.LogReopens, st.MinFreeBytes = ls.Reopens.Load(), e.log.MinFreeBytes()
		st.LogFault = e.LogFault()
		st.DurableLSN = e.log.DurableLSN()
		st.Checkpoints = e.checkpoints.Load()
		st.GateClosed = time.Duration(e.gateClosedNanos.Load())
		st.CheckpointDuration = time.Duration(e.checkpointNanos.Load())
		if at := e.lastCheckpoint.Load(); at != 0 {
			st.LastCheckpoint = time.Unix(at, 0)
		}
	}
	return st, nil
}

// Memory describes the kernel memory the store holds, as the kernel
// accounts it (memlock in each map's fdinfo).
type Memory struct {
	// IndexBytes is the index (records: keys, lock words, version arrays).
	IndexBytes uint64
	// ValueBytes is the value store, its pages.
	ValueBytes uint64
	// TotalBytes is every map of the chain.
	TotalBytes uint64
}

// PerKey returns the kernel bytes one key costs at full index capacity with
// one live version of a value of n bytes: its record's share of the index,
// and its slot's share of the value store.
func (m Memory) PerKey(opts Options, n int) float64 {
	opts.setDefaults()
	per := float64(m.IndexBytes) / float64(opts.MaxKeys)
	if n > 0 {
		perByte := float64(m.ValueBytes) / float64(opts.valuePages()*int64(PageSize))
		per += perByte * float64(SlabSize(slabClass(n)))
	}
	return per
}

// MemoryUse is what the data takes of the budget (Options.MaxMemory).
type MemoryUse struct {
	// Budget is Options.MaxMemory.
	Budget uint64
	// Used is the index, preallocated for Options.MaxKeys records (at
	// about indexBytesPerKey each), the value slots in use and the pages
	// of blobs (values of more than SlotValueLen bytes).
	Used uint64
	// Pages is the value store's pages; PagesUsed those handed out: carved
	// by the size classes (a carved page's free slots serve its class
	// only), held by blobs, or given back by blobs and free for either.
	Pages, PagesUsed uint64
	// BlobPages is the pages blobs hold.
	BlobPages uint64
	// SlotsUsed is the slots in use of each size class.
	SlotsUsed [SlabClasses]uint64
}

// MemoryUse reads what the data takes of the budget, from the control block.
func (e *Engine) MemoryUse() (MemoryUse, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return MemoryUse{}, ErrClosed
	}
	u := MemoryUse{Budget: uint64(e.opts.MaxMemory), Pages: atomic.LoadUint64(&e.ctl.PageCap)}
	u.PagesUsed = min(atomic.LoadUint64(&e.ctl.PageNext), u.Pages)
	u.Used = uint64(e.opts.MaxKeys) * uint64(indexBytesPerKey)
	if b := int64(atomic.LoadUint64(&e.ctl.BlobPages)); b > 0 { // a free counted first, in flight: below 0
		u.BlobPages = uint64(b)
		u.Used += u.BlobPages * uint64(PageSize)
	}
	for c := range u.SlotsUsed {
		u.SlotsUsed[c] = atomic.LoadUint64(&e.ctl.SlabUsed[c])
		if int64(u.SlotsUsed[c]) < 0 { // a free counted before its allocation, in flight
			u.SlotsUsed[c] = 0
		}
		u.Used += u.SlotsUsed[c] * uint64(SlabSize(c))
	}
	return u, nil
}

// Keys returns how many keys of each database have a value: counted by
// the chain as it installs versions (bpf/storage/version.h), so reading
// them takes no scan. A value past its deadline counts until the expirer
// deletes it, as in Redis's DBSIZE.
func (e *Engine) Keys() ([Databases]int64, error) {
	var n [Databases]int64
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return n, ErrClosed
	}
	sums, err := e.statSums()
	if err != nil {
		return n, err
	}
	for db := range n {
		// A CPU's count may be negative (the sum wraps back), and the
		// CPUs are not read at one instant: a key set on a CPU already
		// read and deleted on one not yet read would show as -1.
		n[db] = max(int64(sums[chainBpfdbStatBPFDB_STAT_LIVE_KEYS+chainBpfdbStat(db)]), 0)
	}
	return n, nil
}

// statSums reads every stat of the chain (the per-CPU stats map), summed
// over the CPUs, in one batch lookup.
func (e *Engine) statSums() ([chainBpfdbStatBPFDB_STAT_COUNT]uint64, error) {
	var sums [chainBpfdbStatBPFDB_STAT_COUNT]uint64
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return sums, err
	}
	keys := make([]uint32, len(sums))
	perCPU := make([]uint64, len(sums)*cpus)
	var cursor ebpf.MapBatchCursor
	got, err := e.maps.Stats.BatchLookup(&cursor, keys, perCPU, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return sums, fmt.Errorf("bpfdb: reading stats: %w", err)
	}
	if got != len(sums) {
		return sums, fmt.Errorf("%w: the stats map gave %d of its %d entries", ErrInternal, got, len(sums))
	}
	for i, k := range keys {
		for _, v := range perCPU[i*cpus : (i+1)*cpus] {
			sums[k] += v // wraps: a CPU's count may be negative
		}
	}
	return sums, nil
}

// Options returns the options the engine was opened with, defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Memory reads the kernel's memory accounting of the chain's maps.
func (e *Engine) Memory() (Memory, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return Memory{}, ErrClosed
	}
	var mem Memory
	for name, m := range e.MapReplacements() {
		n, err := memlock(m)
		if err != nil {
			return Memory{}, fmt.Errorf("bpfdb: reading memory of %s: %w", name, err)
		}
		mem.TotalBytes += n
		if m == e.maps.Records {
			mem.IndexBytes = n
		}
		if m == e.maps.ValuePages {
			mem.ValueBytes = n
		}
	}
	return mem, nil
}

func memlock(m *ebpf.Map) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", m.FD()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "memlock:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no memlock in fdinfo")
}
