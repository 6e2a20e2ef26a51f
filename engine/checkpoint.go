package engine

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bpfdb/bpfdb/logd"
	"github.com/cilium/ebpf"
)

// CheckpointStats describe one checkpoint.
type CheckpointStats struct {
	// LSN is the commit the image is of: it holds every commit at or below it.
	LSN uint64
	// Keys is the number of live keys written.
	Keys uint64
	// GateClosed is how long new writers were refused.
	GateClosed time.Duration
	// Duration is the whole checkpoint, copy included.
	Duration time.Duration
}

// ErrNoLog is returned by Checkpoint on an engine opened without a Dir.
var ErrNoLog = errors.New("bpfdb: no data directory: nothing to checkpoint to")

// drainWait bounds how long a checkpoint waits, gate closed, for open
// read-write transactions to finish before it takes its snapshot anyway.
const drainWait = 200 * time.Millisecond

// Checkpoint writes an image of the store into the data directory and
// trims the log it makes redundant.
//
// It closes the quiesce gate (new writers get ErrQuiesced, which autocommit
// operations retry), waits for runs in flight and, up to drainWait, for
// open read-write transactions, and takes a read-only snapshot; then it
// opens the gate again. The image is copied from that snapshot while
// writers run: multi-versioning keeps what the snapshot sees, so the gate
// stays closed only for the moment the snapshot is taken, not the copy.
func (e *Engine) Checkpoint() (CheckpointStats, error) {
	var st CheckpointStats
	if e.log == nil {
		return st, ErrNoLog
	}
	if fault := e.log.Health(); fault != nil {
		// The disk that refuses the log's writes would refuse the image's.
		return st, fmt.Errorf("bpfdb: no checkpoint while the log cannot write: %w", fault)
	}
	e.checkpointMu.Lock()
	defer e.checkpointMu.Unlock()
	start := time.Now()

	atomic.StoreUint64(&e.ctl.Gate, 1)
	e.mu.Lock() // every run in flight has finished; new writers are refused
	e.mu.Unlock()
	for deadline := time.Now().Add(drainWait); e.openWriters() > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	snap, err := e.BeginReadOnly()
	atomic.StoreUint64(&e.ctl.Gate, 0)
	st.GateClosed = time.Since(start)
	e.gateClosedNanos.Add(uint64(st.GateClosed))
	if err != nil {
		return st, err
	}
	defer snap.Abort()
	// Hold the snapshot for the whole copy: the reaper (TryLock) must not
	// end it, however long the copy takes, or GC would reclaim under it.
	snap.mu.Lock()
	defer snap.mu.Unlock()
	st.LSN = snap.snapTS

	cw := e.log.NewCheckpoint(st.LSN)
	if err := e.copyImage(st.LSN, cw.Add, &st.Keys, "checkpoint"); err != nil {
		cw.Abort()
		return st, fmt.Errorf("bpfdb: checkpoint at LSN %d: %w", st.LSN, err)
	}
	if err := cw.Finish(); err != nil {
		return st, fmt.Errorf("bpfdb: checkpoint at LSN %d: %w", st.LSN, err)
	}
	st.Duration = time.Since(start)
	e.checkpointNanos.Add(uint64(st.Duration))
	e.checkpoints.Add(1)
	e.lastCheckpoint.Store(time.Now().Unix())
	return st, nil
}

// openWriters counts read-write transactions that have begun in the kernel.
func (e *Engine) openWriters() int {
	n := 0
	for i := range e.txns {
		if t := e.txns[i].Load(); t != nil && !t.readOnly && t.begunFlag.Load() {
			n++
		}
	}
	return n
}

// copyBatch is how many records one batch lookup reads.
const copyBatch = 4096

// Item is a key with a value, as Scan reads it.
type Item struct {
	DB         int // the key's database
	Key, Value []byte
	Type       ValueType
	ExpireAt   int64 // the value's deadline (Op.ExpireAt), 0: none
}

// Scan calls fn for every key with a value, of every database, in no
// particular order, as one read-only snapshot sees them; it stops early
// when fn returns false. The item and its bytes are valid only during the
// call. Writers go on meanwhile: Scan takes no locks, and the snapshot
// keeps what it sees from being reclaimed.
func (e *Engine) Scan(fn func(it *Item) bool) error {
	snap, err := e.BeginReadOnly()
	if err != nil {
		return err
	}
	defer snap.Abort()
	// Hold the snapshot against the reaper for the whole scan (see Checkpoint).
	snap.mu.Lock()
	defer snap.mu.Unlock()
	var n uint64
	now := e.Now()
	var it Item
	err = e.copyImage(snap.snapTS, func(db int, k []byte, v logd.Entry) error {
		if v.ExpireAt != 0 && now > v.ExpireAt {
			return nil // expired: absent to every reader (expiry.go)
		}
		it = Item{DB: db, Key: k, Value: v.Value, Type: ValueType(v.Type), ExpireAt: v.ExpireAt}
		if !fn(&it) {
			return errStopScan
		}
		return nil
	}, &n, "")
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}

var errStopScan = errors.New("scan stopped")

// copyImage calls add for every key with a live value at snapshot snap
// (its deadline, expired or not, and its type),
// which the caller has registered (so none of those versions is reclaimed).
// Records are read with batch lookups; values straight from the mmapped
// slabs. Progress is reported under stage, unless it is empty.
func (e *Engine) copyImage(snap uint64, add func(db int, k []byte, v logd.Entry) error, n *uint64, stage string) error {
	keys := make([]chainBpfdbKey, copyBatch)
	recs := make([]chainBpfdbRecord, copyBatch)
	var cursor ebpf.MapBatchCursor
	for {
		got, err := e.maps.Records.BatchLookup(&cursor, keys, recs, nil)
		for i := 0; i < got; i++ {
			v, ok := e.valueAt(&recs[i], snap)
			if !ok {
				continue
			}
			key, ok := e.longKeys.key(&keys[i])
			if !ok {
				return fmt.Errorf("bpfdb: a record of a %d-byte key the engine does not hold (longkey.go, invariant 2)", keys[i].Len)
			}
			if err := add(int(keys[i].Db), key, v); err != nil {
				return err
			}
			*n++
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.opts.Progress != nil && stage != "" {
			e.opts.Progress(stage, *n, 0)
		}
	}
}

// valueAt returns the value rec holds at snapshot snap, if live, with its
// deadline and type. The copy of rec may be torn by a concurrent install
// or reclaim, but neither touches the version snap sees
// (storage/version.h, invariants 2 and 3).
func (e *Engine) valueAt(rec *chainBpfdbRecord, snap uint64) (logd.Entry, bool) {
	for _, v := range rec.V {
		if v.BeginTs == 0 || v.BeginTs > snap || v.EndTs <= snap {
			continue
		}
		if v.Len == tombstone {
			return logd.Entry{}, false
		}
		ent := logd.Entry{Value: []byte{}, Type: uint8(lenValueType(v.Len))}
		if v.Len&lenMask == 0 {
			return ent, true
		}
		b := e.storedAt(v.Ref, v.Len)
		if b == nil {
			return logd.Entry{}, false
		}
		n, deadline := splitStored(b, v.Len)
		ent.Value, ent.ExpireAt = b[:n:n], deadline
		return ent, true
	}
	return logd.Entry{}, false
}
