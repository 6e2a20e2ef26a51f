// Package logd persists bpfdb's committed transactions in pebble with group
// commit, publishes the durable LSN, and keeps checkpoints.
//
// Invariants, and why:
//
//   - LSNs are commit timestamps, dense from 1: the kernel hands out every
//     timestamp to exactly one logged transaction. Transactions reach logd
//     in ring order, which is not LSN order (two CPUs commit at once), so
//     the durable LSN is the end of the gap-free prefix of what is
//     persisted, never just the largest LSN written. A commit acknowledged
//     at LSN n therefore implies every commit before it survives too.
//   - The log is written through a Writer, on its caller's goroutine (the
//     engine's ring reader, or a server loop through engine.SyncLog; the
//     queue is the ring): one pebble batch per Commit, committed with
//     Sync, holding every transaction that arrived while the previous
//     fsync ran, so they share the next one (group commit), as one pebble
//     key (a group: group.go explains the layout); a batch that
//     reaches writerBatchBytes is committed by Add, unless writing is
//     failing.
//   - A failed write (a full disk, an I/O error) leaves the same batch
//     pending until a retry succeeds (TryCommit makes one attempt and
//     Failing says the caller should add nothing more meanwhile, so the
//     ring fills and holds writers back); WaitDurable and Durable report
//     the failure, so nothing is acknowledged that is not on disk, and
//     nothing added is dropped. With NoSync, a written batch is kept until
//     the sync that makes it durable, so a failure can write it again.
//   - Pebble treats a failed commit as fatal (Logger.Fatalf): its commit
//     pipeline is wedged after one. logd's logger panics instead, every
//     write runs under guard, which recovers that panic and marks the
//     instance broken, and the next write abandons it and reopens the
//     directory (health.go): what pebble had on disk is replayed, and the
//     Writer writes its pending and unsynced batches again (their keys
//     are the same, so writing one twice is harmless). The failed fsync's
//     file is never trusted again (fsyncgate): the batch goes to a new WAL.
//   - A full disk should not reach pebble at all: before every write logd
//     checks the free space and refuses while it is below the batch plus
//     MinFreeBytes, which leaves pebble room for its own flushes. Health
//     reports the log unable to take writes (a failed write, less than
//     twice MinFreeBytes free, a write stalled past StallTimeout), which
//     the engine turns into refusing commits before they apply.
//   - A checkpoint at LSN c is the image of every commit <= c. Its entries
//     are written first and its manifest last, so a checkpoint without a
//     manifest (a crash while writing it) is ignored and deleted.
package logd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Key space of the pebble store (and prefixGroup, group.go: the log).
const (
	prefixCheckpoint = 'c' // 'c' lsn key      -> value
	prefixManifest   = 'C' // 'C' lsn          -> entry count
	prefixMeta       = 'm' // 'm' name         -> value (SetMeta)
)

// Options tunes a Log.
type Options struct {
	// NoSync writes batches without waiting for fsync and syncs every
	// SyncInterval instead (--durability=async). By default each batch is
	// synced before the LSNs in it count as durable (--durability=sync).
	// Either way the durable LSN only covers what has been fsynced.
	NoSync bool
	// SyncInterval bounds what a crash can lose without Sync (default 10ms).
	SyncInterval time.Duration
	// MinFreeBytes of free space are kept in the directory's volume for
	// pebble's flushes and compactions: a log write that would leave less
	// fails, and Health refuses new commits while less than twice as much
	// is free, so that what is already committed still fits. Default
	// (DefaultMinFreeBytes): a sixteenth of the volume, from 1 to 64 MiB.
	MinFreeBytes int64
	// StallTimeout: once a write has taken longer, Health reports the log
	// stalled (a slow or hung disk), so that commits are refused rather
	// than pile up behind it (default 1s).
	StallTimeout time.Duration
	// FS is the file system pebble works through (default: the operating
	// system's). Tests inject faults through it.
	FS vfs.FS
}

// Log is an open log directory.
type Log struct {
	opts Options
	dir  string

	// dbMu is held around every pebble write and around replacing db, so
	// that no write reaches an instance after it broke (health.go).
	dbMu   sync.Mutex
	db     *pebble.DB
	gen    uint64      // incremented by every reopen (under dbMu)
	broken atomic.Bool // a write failed inside pebble: reopen before the next
	// closeErr is what closing the last broken instance said.
	closeErr error

	mu       sync.Mutex
	cond     *sync.Cond
	durable  uint64   // end of the gap-free persisted prefix
	above    []uint64 // persisted LSNs above durable, sorted
	failure  error    // the last write error, nil once a write succeeds
	lowSpace error    // less than twice MinFreeBytes free at the last look
	closed   bool     // Close or Abandon: waiters get ErrClosed
	dbClosed bool     // Close closed db (under dbMu)

	writeStart atomic.Int64 // UnixNano when the write under way began; 0: none

	durableLSN atomic.Uint64
	notify     atomic.Pointer[func()] // OnChange's function
	stats      Stats
}

// Stats count what the log has done.
type Stats struct {
	Batches, Txns, Syncs, Bytes, WriteErrors atomic.Uint64
	// Reopens counts the times a failed write made the log reopen pebble.
	Reopens atomic.Uint64
}

// ErrLogFailed wraps the error of a write that has not yet succeeded.
var ErrLogFailed = errors.New("logd: log write failed; commits are not durable until it succeeds")

// ErrLogStalled is Health's error while a write has taken longer than
// StallTimeout.
var ErrLogStalled = errors.New("logd: log write stalled")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("logd: closed")

// Open opens (creating if needed) the log in dir. A directory already open
// in another process is refused by pebble's lock with a clear error.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 10 * time.Millisecond
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = time.Second
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("logd: creating %s: %w", dir, err)
	}
	if opts.MinFreeBytes <= 0 {
		du, err := opts.FS.GetDiskUsage(dir)
		if err != nil {
			return nil, fmt.Errorf("logd: the size of %s's volume: %w", dir, err)
		}
		opts.MinFreeBytes = DefaultMinFreeBytes(du.TotalBytes)
	}
	l := &Log{opts: opts, dir: dir}
	l.cond = sync.NewCond(&l.mu)
	db, err := l.openDB()
	if err != nil {
		return nil, err
	}
	l.db = db
	if err := l.migrateLegacy(); err != nil {
		db.Close()
		return nil, fmt.Errorf("logd: rewriting %s's log as groups: %w", dir, err)
	}
	return l, nil
}

// DefaultMinFreeBytes is the MinFreeBytes of a volume of total bytes: a
// sixteenth of it, at least 1 MiB and at most 64 MiB. Pebble needs room
// for a memtable flush (a few MiB) and the MANIFEST; more is wasted on a
// large disk, and a fixed 64 MiB left a small volume unable to log at all.
func DefaultMinFreeBytes(total uint64) int64 {
	return min(max(int64(total/16), 1<<20), 64<<20)
}

// openDB opens pebble in l.dir and drops incomplete checkpoints (a
// checkpoint the last instance did not finish). An instance that fails
// that is closed, so that its directory lock is released.
func (l *Log) openDB() (*pebble.DB, error) {
	db, err := pebble.Open(l.dir, &pebble.Options{Logger: panicLogger{}, FS: l.opts.FS})
	if err != nil {
		return nil, fmt.Errorf("logd: opening %s (is a server using it?): %w", l.dir, err)
	}
	if err := l.guard(func() error { return dropIncompleteCheckpoints(db) }); err != nil {
		closeDB(db)
		return nil, err
	}
	return db, nil
}

// Start sets the durable LSN recovery reached, before any Writer writes:
// the next transaction written must have LSN durable+1 or above.
func (l *Log) Start(durable uint64) {
	l.durable = durable
	l.durableLSN.Store(durable)
}

// DurableLSN is the largest LSN at and below which every transaction is on disk.
func (l *Log) DurableLSN() uint64 { return l.durableLSN.Load() }

// OnChange sets fn to be called, on the goroutine of the Writer that
// wrote, after the durable LSN advances and after a write fails (and by
// Close): a caller that polls Durable (an event loop) learns when to poll
// again without a goroutine blocked in WaitDurable. fn must not block.
// One fn at a time; nil removes it.
func (l *Log) OnChange(fn func()) {
	if fn == nil {
		l.notify.Store(nil)
		return
	}
	l.notify.Store(&fn)
}

func (l *Log) changed() {
	if fn := l.notify.Load(); fn != nil {
		(*fn)()
	}
}

// Durable reports without waiting whether lsn is durable, or the error
// that keeps it from being so: a failed write (ErrLogFailed), a write
// stalled past StallTimeout (ErrLogStalled), or ErrClosed.
func (l *Log) Durable(lsn uint64) (bool, error) {
	if l.durableLSN.Load() >= lsn {
		return true, nil
	}
	stalled := l.stalled()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.durable >= lsn:
		return true, nil
	case l.failure != nil:
		return false, l.failure
	case stalled != nil:
		return false, stalled
	case l.closed:
		return false, ErrClosed
	}
	return false, nil
}

// Stats returns the log's counters.
func (l *Log) Stats() *Stats { return &l.stats }

// WaitDurable returns once lsn is durable, or the error that keeps it
// from being so, as Durable reports it (a stall is noticed when Wake is
// called: the engine calls it when it finds the log stalled).
func (l *Log) WaitDurable(lsn uint64) error {
	for {
		done, err := l.Durable(lsn)
		if done || err != nil {
			return err
		}
		l.mu.Lock()
		if l.durable < lsn && l.failure == nil && !l.closed {
			l.cond.Wait()
		}
		l.mu.Unlock()
	}
}

// Wake wakes the waiters (WaitDurable, and OnChange's function) to look
// again: the engine calls it when it finds a write stalled.
func (l *Log) Wake() {
	l.mu.Lock()
	l.cond.Broadcast()
	l.mu.Unlock()
	l.changed()
}

// Writer is how the log is written, from its caller's goroutine: Add
// encodes a transaction into the pending pebble batch, TryCommit writes
// the batch (synced unless NoSync) and publishes what became durable.
// Whatever arrives while a write waits for the disk goes into the next
// batch: group commit, with the caller's own queue (the engine's ring) as
// the queue. A Writer is used by one goroutine at a time, after Start and
// before Close; Close it before closing the Log.
type Writer struct {
	l        *Log
	gen      uint64 // the pebble instance batch belongs to (Log.gen)
	batch    *pebble.Batch
	lsns     []uint64 // in batch
	unsynced []uint64 // NoSync: written, not yet fsynced, not yet durable
	// kept holds, with NoSync, the batches written since the last sync:
	// if the sync fails they are written again to a reopened instance.
	kept     []*pebble.Batch
	lastSync time.Time
	group    []byte // frames added since the batch's last group (group.go)
	groupMax uint64 // the largest LSN in group
	buf      []byte
	one      [1]Write
	commitAt int  // batch size at which Add commits by itself
	failing  bool // the last write of the pending batch failed
}

// writerBatchBytes is the size at which Add commits the pending batch by
// itself: it bounds a commit's latency when transactions keep arriving,
// and keeps the batch small enough that pebble copies it into its
// memtable (a batch of half a memtable would be kept as its own flushable
// memtable, referencing the buffer, and NoSync's kept copy would be gone)
// and that the buffer is reused.
const writerBatchBytes = 256 << 10

// maxKeptBatchBytes bounds a batch a NoSync Writer keeps for a rewrite:
// pebble turns a batch of half a memtable (2 MiB by default) into a
// flushable one and drops its bytes, so a larger batch is written synced.
const maxKeptBatchBytes = 1 << 20

// NewWriter returns a Writer of l.
func (l *Log) NewWriter() *Writer {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	return &Writer{l: l, gen: l.gen, batch: l.db.NewBatch(), commitAt: writerBatchBytes}
}

// Add encodes t into the pending batch; t's keys and values are copied,
// so they may alias memory reused once Add returns.
func (w *Writer) Add(t *Txn) { w.add(t.LSN, t.ID, t.Writes) }

// AddWrite is Add of a transaction of one write, without building a Txn.
func (w *Writer) AddWrite(lsn, id uint64, wr Write) {
	w.one[0] = wr
	w.add(lsn, id, w.one[:])
	w.one[0] = Write{}
}

func (w *Writer) add(lsn, id uint64, writes []Write) {
	w.group, w.buf = appendFrame(w.group, lsn, id, writes, w.buf)
	w.groupMax = max(w.groupMax, lsn)
	w.lsns = append(w.lsns, lsn)
	if w.batch.Len()+len(w.group) >= w.commitAt && w.TryCommit() != nil {
		// The batch waits for the caller's next commit; try again on
		// the way only once it has grown as much again.
		w.commitAt = w.batch.Len() + writerBatchBytes
	}
}

// stageGroup puts the frames added since the last group into the batch,
// as one pebble key. (A batch whose write failed keeps its groups, and
// what is added meanwhile becomes a group of its own.)
func (w *Writer) stageGroup() {
	if len(w.group) == 0 {
		return
	}
	w.batch.Set(groupKey(w.groupMax), w.group, nil) // copies
	w.group, w.groupMax = w.group[:0], 0
}

// Pending is the number of transactions added and not yet committed.
func (w *Writer) Pending() int { return len(w.lsns) }

// Commit writes the pending batch, retrying until it succeeds (Flush
// waits with a bound). With NoSync the batch is published as durable by
// the next sync, which Commit makes itself once SyncInterval has passed
// since the last.
func (w *Writer) Commit() {
	retryUntil(time.Time{}, w.TryCommit)
	if due, ok := w.SyncDue(); ok && due == 0 {
		w.Sync()
	}
}

// TryCommit makes one attempt to write the pending batch, synced unless
// NoSync. When the write fails the batch stays pending, for the next
// attempt, the failure is published to waiters (WaitDurable, Durable) and
// Health, and TryCommit returns it; Failing reports it until a write
// succeeds. A caller that must not block, like an event loop, leaves the
// retrying to the log's own goroutine.
func (w *Writer) TryCommit() error {
	l := w.l
	if len(w.lsns) == 0 && (len(w.kept) == 0 || w.gen == l.gen) {
		return nil // (kept batches of an abandoned instance: rewrite them)
	}
	w.stageGroup()
	size := uint64(w.batch.Len())
	synced := !l.opts.NoSync || w.batch.Len() > maxKeptBatchBytes
	var next *pebble.Batch // NoSync: the batch after this one is kept
	err := l.attempt(func(db *pebble.DB) error {
		if err := w.adopt(db); err != nil {
			return err
		}
		if err := l.checkSpace(w.batch.Len()); err != nil {
			return err
		}
		if synced {
			l.stats.Syncs.Add(1)
			return w.batch.Commit(pebble.Sync)
		}
		if err := w.batch.Commit(pebble.NoSync); err != nil {
			return err
		}
		next = db.NewBatch()
		return nil
	})
	w.failing = err != nil
	if err != nil {
		// Pebble marks a batch it failed to commit as committing for good:
		// keep its contents in a fresh batch, which later adds may grow.
		w.batch = w.rebatch(l.db, w.batch)
		return err
	}
	l.stats.Batches.Add(1)
	l.stats.Bytes.Add(size)
	w.commitAt = writerBatchBytes
	if synced {
		w.batch.Reset()
		l.publish(w.lsns)
		w.lsns = w.lsns[:0]
		return nil
	}
	w.kept = append(w.kept, w.batch)
	w.batch = next
	w.unsynced = append(w.unsynced, w.lsns...)
	w.lsns = w.lsns[:0]
	return nil
}

// adopt moves what the Writer has not made durable onto db when the log
// has been reopened since its batch was made: the pending batch, and with
// NoSync the written batches not yet synced (their LSNs become pending
// again). Called under dbMu.
func (w *Writer) adopt(db *pebble.DB) error {
	if w.gen == w.l.gen {
		return nil
	}
	w.batch = w.rebatch(db, append(w.kept, w.batch)...)
	w.kept = w.kept[:0]
	w.gen = w.l.gen
	w.lsns = append(w.lsns, w.unsynced...)
	w.unsynced = w.unsynced[:0]
	return nil
}

// rebatch returns a new batch of db holding the contents of batches, in
// order, and closes them.
func (w *Writer) rebatch(db *pebble.DB, batches ...*pebble.Batch) *pebble.Batch {
	nb := db.NewBatch()
	for _, b := range batches {
		if err := nb.Apply(b, nil); err != nil {
			// Apply fails only on a batch that is not one of pebble's.
			panic(fmt.Sprintf("logd: copying a pending batch: %v", err))
		}
		b.Close()
	}
	return nb
}

// Failing reports whether the last write of the pending batch failed: a
// caller should add nothing more to it until a write succeeds, so that a
// failing disk holds its producers back instead of growing the batch.
func (w *Writer) Failing() bool { return w.failing }

// SyncDue says, with NoSync, whether committed transactions wait for a
// sync, and in how long it is due (call TrySync then).
func (w *Writer) SyncDue() (time.Duration, bool) {
	if len(w.unsynced) == 0 {
		return 0, false
	}
	return max(w.l.opts.SyncInterval-time.Since(w.lastSync), 0), true
}

// TrySync makes one attempt to fsync pebble's log (NoSync mode) and
// publishes what it made durable. After a failure the written batches
// are kept: the next TryCommit writes them again, to a reopened instance.
func (w *Writer) TrySync() error {
	if len(w.unsynced) == 0 {
		return nil
	}
	l := w.l
	err := l.attempt(func(db *pebble.DB) error {
		if w.gen != l.gen {
			return errRewrite
		}
		if err := l.checkSpace(0); err != nil {
			return err
		}
		l.stats.Syncs.Add(1)
		return db.LogData(nil, pebble.Sync)
	})
	if err != nil {
		if errors.Is(err, errRewrite) {
			w.failing = true // the kept batches wait for TryCommit
		}
		return err
	}
	w.lastSync = time.Now()
	l.publish(w.unsynced)
	w.unsynced = w.unsynced[:0]
	for _, b := range w.kept {
		b.Close()
	}
	w.kept = w.kept[:0]
	return nil
}

// errRewrite: the log was reopened; the written batches must be written again.
var errRewrite = errors.New("logd: the log was reopened; writing its unsynced batches again")

// Sync is TrySync, retrying until it succeeds.
func (w *Writer) Sync() {
	retryUntil(time.Time{}, func() error {
		if err := w.TryCommit(); err != nil {
			return err
		}
		return w.TrySync()
	})
}

// Flush writes and syncs everything pending, retrying with backoff until
// it succeeds or until deadline (zero: no deadline). On the deadline it
// returns the last failure; DurableLSN tells what is durable.
func (w *Writer) Flush(deadline time.Time) error {
	return retryUntil(deadline, func() error {
		if err := w.TryCommit(); err != nil {
			return err
		}
		return w.TrySync()
	})
}

// Close flushes what is pending (Flush, up to deadline) and releases the
// Writer's batches; it returns Flush's error.
func (w *Writer) Close(deadline time.Time) error {
	err := w.Flush(deadline)
	for _, b := range w.kept {
		b.Close()
	}
	w.kept = nil
	w.batch.Close()
	return err
}

// retryUntil runs fn until it succeeds or deadline passes (zero: never),
// with backoff doubling from 1ms to 1s: the one retry policy of the log.
func retryUntil(deadline time.Time, fn func() error) error {
	for backoff := time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := fn()
		if err == nil {
			return nil
		}
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return err
			}
			backoff = min(backoff, left)
		}
		time.Sleep(backoff)
	}
}

// attempt runs write once, on the current pebble instance and under
// dbMu, reopening the instance first if the last write broke it. A
// failure is published to waiters until a write succeeds, and returned
// wrapped in ErrLogFailed.
func (l *Log) attempt(write func(*pebble.DB) error) error {
	l.writeStart.Store(time.Now().UnixNano())
	err := l.write(write)
	l.writeStart.Store(0)
	if err != nil {
		l.stats.WriteErrors.Add(1)
		failure := fmt.Errorf("%w: %v", ErrLogFailed, err)
		l.mu.Lock()
		l.failure = failure
		l.cond.Broadcast()
		l.mu.Unlock()
		l.changed()
		return failure
	}
	l.mu.Lock()
	l.failure = nil
	l.mu.Unlock()
	return nil
}

// publish marks lsns durable and advances the durable LSN over the
// gap-free prefix. lsns is sorted in place (ring order is nearly LSN
// order, so this is nearly free); LSNs above a gap wait, sorted, in above.
func (l *Log) publish(lsns []uint64) {
	l.stats.Txns.Add(uint64(len(lsns)))
	slices.Sort(lsns)
	l.mu.Lock()
	d := l.durable
	for _, lsn := range lsns {
		switch {
		case lsn == d+1:
			d++
			for len(l.above) > 0 && l.above[0] <= d+1 {
				if l.above[0] == d+1 {
					d++
				}
				l.above = l.above[1:]
			}
		case lsn > d:
			// Above a gap: usually the largest so far, so appended.
			i, found := slices.BinarySearch(l.above, lsn)
			if !found {
				l.above = slices.Insert(l.above, i, lsn)
			}
		}
	}
	l.durable = d
	l.durableLSN.Store(d)
	l.cond.Broadcast()
	l.mu.Unlock()
	l.changed()
}

// Close marks the log closed, so that WaitDurable and Durable report
// ErrClosed for what is not durable, wakes the waiters, and closes pebble.
// Close every Writer first.
func (l *Log) Close() error {
	l.Abandon()
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if l.dbClosed {
		return nil
	}
	l.dbClosed = true
	return closeDB(l.db)
}

// Abandon wakes every waiter with ErrClosed for what is not durable,
// without touching the disk: for a close that cannot wait for a disk that
// does not answer. Close still closes pebble, if the disk ever lets it.
func (l *Log) Abandon() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	l.changed()
}

// SetMeta stores value under name, durably (synced) before it returns:
// what a store keeps beside its data, outside any transaction (the
// server's database names, SWAPDB). Checkpoints and truncation leave it.
func (l *Log) SetMeta(name string, value []byte) error {
	if err := l.checkSpace(len(name) + len(value)); err != nil {
		return err
	}
	return l.write(func(db *pebble.DB) error {
		return db.Set(append([]byte{prefixMeta}, name...), value, pebble.Sync)
	})
}

// Meta returns the value SetMeta stored under name, or nil.
func (l *Log) Meta(name string) ([]byte, error) {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	v, closer, err := l.db.Get(append([]byte{prefixMeta}, name...))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// ReplayStats describe what a replay found.
type ReplayStats struct {
	Txns, Writes uint64
	First, Last  uint64 // LSNs replayed; 0 when none
	// Damage, when not nil, is why replay stopped early: a record that
	// failed its checksum or a gap in the LSNs. Everything before it was
	// replayed; nothing after it was.
	Damage error
}

func checkpointKey(lsn uint64, key []byte) []byte {
	k := make([]byte, 9, 9+len(key))
	k[0] = prefixCheckpoint
	binary.BigEndian.PutUint64(k[1:], lsn)
	return append(k, key...)
}

func manifestKey(lsn uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixManifest
	binary.BigEndian.PutUint64(k[1:], lsn)
	return k
}

// CheckpointWriter writes one checkpoint; see Log.NewCheckpoint. Its
// batches belong to the pebble instance it started on: if the log is
// reopened meanwhile (health.go), its writes fail and it is abandoned (the
// reopen drops what it had written).
type CheckpointWriter struct {
	l     *Log
	gen   uint64
	lsn   uint64
	batch *pebble.Batch
	n     uint64
}

// NewCheckpoint starts a checkpoint holding the image of every commit <= lsn.
func (l *Log) NewCheckpoint(lsn uint64) *CheckpointWriter {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	return &CheckpointWriter{l: l, gen: l.gen, lsn: lsn, batch: l.db.NewBatch()}
}

// checkpointBatchBytes is when a checkpoint's entries are flushed to pebble.
const checkpointBatchBytes = 4 << 20

// checkpointFormat is the format of the entries of the checkpoints
// written: 3, under the key's database (one byte) then the key,
// crc32c || uvarint deadline || type (one byte) || value, the checksum
// over database || key || deadline || type || value. Format 2 had no type
// (all strings), format 1 no database byte either (all database 0); a
// manifest of format 0 (8 bytes, no format byte) has entries of crc32c ||
// value.
const checkpointFormat = 3

// Add records key's entry e, of database db, in the checkpoint.
func (c *CheckpointWriter) Add(db int, key []byte, e Entry) error {
	if db < 0 || db >= MaxDatabases || e.Type >= MaxTypes {
		panic(fmt.Sprintf("logd: checkpoint entry of database %d, type %d", db, e.Type))
	}
	dbKey := append([]byte{byte(db)}, key...)
	v := make([]byte, 4, 4+binary.MaxVarintLen64+1+len(e.Value))
	v = binary.AppendUvarint(v, uint64(e.ExpireAt))
	v = append(v, e.Type)
	v = append(v, e.Value...)
	binary.LittleEndian.PutUint32(v, checksum(c.lsn, append(append([]byte{}, dbKey...), v[4:]...)))
	c.batch.Set(checkpointKey(c.lsn, dbKey), v, nil)
	c.n++
	if c.batch.Len() < checkpointBatchBytes {
		return nil
	}
	return c.l.writeOn(c.gen, func(db *pebble.DB) error {
		if err := c.l.checkSpace(c.batch.Len()); err != nil {
			return err
		}
		if err := c.batch.Commit(pebble.NoSync); err != nil {
			return err
		}
		c.batch.Close()
		c.batch = db.NewBatch()
		return nil
	})
}

// Finish writes the manifest that makes the checkpoint count, syncs, and
// deletes older checkpoints and the log at and below its LSN.
func (c *CheckpointWriter) Finish() error {
	var v [9]byte
	binary.LittleEndian.PutUint64(v[:], c.n)
	v[8] = checkpointFormat
	c.batch.Set(manifestKey(c.lsn), v[:], nil)
	return c.l.writeOn(c.gen, func(db *pebble.DB) error {
		if err := c.l.checkSpace(c.batch.Len()); err != nil {
			return err
		}
		if err := c.batch.Commit(pebble.Sync); err != nil {
			return err
		}
		trim := db.NewBatch()
		defer trim.Close()
		trim.DeleteRange([]byte{prefixCheckpoint}, checkpointKey(c.lsn, nil), nil)
		trim.DeleteRange([]byte{prefixManifest}, manifestKey(c.lsn), nil)
		trim.DeleteRange([]byte{prefixGroup}, groupKey(c.lsn+1), nil) // groups of LSNs <= c only
		return trim.Commit(pebble.Sync)
	})
}

// Abort discards a checkpoint that will not be finished.
func (c *CheckpointWriter) Abort() error {
	return c.l.writeOn(c.gen, func(db *pebble.DB) error {
		c.batch.Close()
		return db.DeleteRange(checkpointKey(c.lsn, nil), checkpointKey(c.lsn+1, nil), pebble.NoSync)
	})
}

// Checkpoint describes the newest complete checkpoint.
type Checkpoint struct {
	LSN     uint64
	Entries uint64
	format  byte // of its entries (checkpointFormat)
}

// LatestCheckpoint returns the newest complete checkpoint, if any.
func (l *Log) LatestCheckpoint() (Checkpoint, bool, error) { return latestCheckpoint(l.db) }

func latestCheckpoint(db *pebble.DB) (Checkpoint, bool, error) {
	iter, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixManifest}, UpperBound: []byte{prefixManifest + 1}})
	if err != nil {
		return Checkpoint{}, false, err
	}
	defer iter.Close()
	if !iter.Last() {
		return Checkpoint{}, false, iter.Error()
	}
	m := iter.Value()
	if len(m) != 8 && (len(m) != 9 || m[8] == 0 || m[8] > checkpointFormat) {
		return Checkpoint{}, false, fmt.Errorf("%w: checkpoint manifest of %d bytes", ErrCorrupt, len(m))
	}
	c := Checkpoint{LSN: binary.BigEndian.Uint64(iter.Key()[1:]), Entries: binary.LittleEndian.Uint64(m)}
	if len(m) == 9 {
		c.format = m[8]
	}
	return c, true, nil
}

// LoadCheckpoint calls fn for every entry of checkpoint c, with its
// database and key, checking each entry's checksum and the entry count.
// The entry's value aliases the iterator: valid only during the call.
func (l *Log) LoadCheckpoint(c Checkpoint, fn func(db int, key []byte, e Entry) error) error {
	iter, err := l.db.NewIter(&pebble.IterOptions{LowerBound: checkpointKey(c.LSN, nil), UpperBound: checkpointKey(c.LSN+1, nil)})
	if err != nil {
		return err
	}
	defer iter.Close()
	var n uint64
	for iter.First(); iter.Valid(); iter.Next() {
		key := iter.Key()[9:]
		v := iter.Value()
		if len(v) < 4 || checksum(c.LSN, append(append([]byte{}, key...), v[4:]...)) != binary.LittleEndian.Uint32(v) {
			return fmt.Errorf("%w: checkpoint %d entry %q fails its checksum", ErrCorrupt, c.LSN, key)
		}
		e := Entry{Value: v[4:]}
		if c.format >= 1 {
			d, n := binary.Uvarint(e.Value)
			if n <= 0 || d > 1<<63-1 {
				return fmt.Errorf("%w: checkpoint %d entry %q has a bad deadline", ErrCorrupt, c.LSN, key)
			}
			e.Value, e.ExpireAt = e.Value[n:], int64(d)
		}
		if c.format >= 3 {
			if len(e.Value) == 0 || e.Value[0] >= MaxTypes {
				return fmt.Errorf("%w: checkpoint %d entry %q has a bad type", ErrCorrupt, c.LSN, key)
			}
			e.Type, e.Value = e.Value[0], e.Value[1:]
		}
		db := 0
		if c.format >= 2 {
			if len(key) == 0 {
				return fmt.Errorf("%w: checkpoint %d entry with no database", ErrCorrupt, c.LSN)
			}
			db, key = int(key[0]), key[1:]
		}
		if err := fn(db, key, e); err != nil {
			return err
		}
		n++
	}
	if err := iter.Error(); err != nil {
		return err
	}
	if n != c.Entries {
		return fmt.Errorf("%w: checkpoint %d has %d entries, its manifest says %d", ErrCorrupt, c.LSN, n, c.Entries)
	}
	return nil
}

// dropIncompleteCheckpoints deletes checkpoint entries no manifest covers.
func dropIncompleteCheckpoints(db *pebble.DB) error {
	c, ok, err := latestCheckpoint(db)
	if err != nil {
		return err
	}
	from := checkpointKey(0, nil)
	if ok {
		from = checkpointKey(c.LSN+1, nil)
	}
	return db.DeleteRange(from, []byte{prefixCheckpoint + 1}, pebble.Sync)
}
