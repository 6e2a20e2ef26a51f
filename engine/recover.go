package engine

import (
	"fmt"
	"sync/atomic"

	"github.com/bpfdb/bpfdb/logd"
)

// Recovery describes what Open found in its directory and loaded.
type Recovery struct {
	// Checkpoint is the checkpoint loaded (LSN 0 when there was none).
	Checkpoint logd.Checkpoint
	// Replay is what replaying the log after it found, Damage included:
	// a torn or corrupt tail stops replay at the last valid transaction,
	// and the damaged records are deleted so new commits continue from it.
	Replay logd.ReplayStats
	// LSN is the last commit recovered; new commits follow it.
	LSN uint64
}

// loader installs recovered versions with BPFDB_OP_LOAD, MaxBatch per run.
type loader struct {
	e   *Engine
	ops []Op
	ts  []uint64
	n   uint64
}

// add queues a version, v or a deletion (del), at ts: the expirer is told
// of its deadline (0: none); key and value are copied (they alias
// pebble's iterator, which reuses them).
func (l *loader) add(db int, key []byte, v logd.Entry, del bool, ts uint64) error {
	value, expireAt := v.Value, v.ExpireAt
	if !del && len(value) > MaxValueLenLimit {
		// No engine logs such a value: the log is not a store's, or
		// damaged past its checksums. (A value above this store's
		// MaxValueLen, written under a larger one, is loaded.)
		return fmt.Errorf("%w: LSN %d writes a %d-byte value to key %q, above the limit of any store, %d bytes (MaxValueLenLimit)",
			logd.ErrCorrupt, ts, len(value), key, MaxValueLenLimit)
	}
	kind := OpKind(chainBpfdbOpKindBPFDB_OP_LOAD)
	if int(v.Type) >= numTypes {
		return fmt.Errorf("%w: LSN %d writes a value of type %d to key %q: there are %d", logd.ErrCorrupt, ts, v.Type, key, numTypes)
	}
	l.ops = append(l.ops, Op{Kind: kind, DB: db, Key: append([]byte(nil), key...), Value: append([]byte(nil), value...), ExpireAt: expireAt, Type: ValueType(v.Type)})
	if expireAt > 0 {
		l.e.expiry.add(db, key, expireAt, ts)
	} else {
		l.e.expiry.drop(db, key, ts)
	}
	if del {
		l.ops[len(l.ops)-1].Value = nil
		l.ts = append(l.ts, ts|deleteBit)
	} else {
		l.ts = append(l.ts, ts)
	}
	if len(l.ops) == MaxBatch {
		return l.flush()
	}
	return nil
}

// deleteBit marks a tombstone in loader.ts (timestamps stay far below it).
const deleteBit = 1 << 63

func (l *loader) flush() error {
	if len(l.ops) == 0 {
		return nil
	}
	s, err := l.e.acquire()
	if err != nil {
		return err
	}
	defer l.e.release(s)
	n := 0
	defer func() { // the blobs of a run that failed
		for i := range n {
			l.e.settleBlob(&s.ops[i])
		}
	}()
	for i := range l.ops {
		o := &s.ops[i]
		if err := l.e.encodeSet(s, i, uint8(l.ops[i].Kind), &l.ops[i], false); err != nil {
			return fmt.Errorf("bpfdb: recovery: loading %q: %w", l.ops[i].Key, err)
		}
		n++
		o.Ts = l.ts[i] &^ deleteBit
		if l.ts[i]&deleteBit != 0 {
			o.Flags = uint8(chainBpfdbBeginFlagBPFDB_LOAD_DELETE)
		}
	}
	s.hdr.Mode = uint32(chainBpfdbModeBPFDB_MODE_AUTOCOMMIT)
	s.hdr.Nops = uint32(len(l.ops))
	if err := l.e.run(s); err != nil {
		return err
	}
	for i := range l.ops {
		if err := l.e.statusError(s.ops[i].Status, s.ops[i].Detail); err != nil {
			return fmt.Errorf("bpfdb: recovery: loading %q: %w", l.ops[i].Key, err)
		}
	}
	l.n += uint64(len(l.ops))
	l.ops, l.ts = l.ops[:0], l.ts[:0]
	return nil
}

// recover loads the newest checkpoint and replays the log after it into
// the (fresh, empty) maps, then sets the clock to the last LSN recovered.
func (e *Engine) recover() (Recovery, error) {
	var rec Recovery
	cp, haveCheckpoint, err := e.log.LatestCheckpoint()
	if err != nil {
		return rec, err
	}
	last, err := e.log.LastLSN()
	if err != nil {
		return rec, err
	}
	// Every loaded version is at or below visible, and GC may reclaim what
	// each replayed transaction overwrites: no reader exists yet.
	top := max(last, cp.LSN)
	e.ctl.Clock, e.ctl.Visible = top, top
	progress := e.opts.Progress
	if progress == nil {
		progress = func(string, uint64, uint64) {}
	}
	l := &loader{e: e}
	if haveCheckpoint {
		rec.Checkpoint = cp
		err := e.log.LoadCheckpoint(cp, func(db int, k []byte, v logd.Entry) error {
			if db >= Databases {
				return fmt.Errorf("%w: checkpoint entry %q of database %d: the store has %d", logd.ErrCorrupt, k, db, Databases)
			}
			if err := l.add(db, k, v, false, cp.LSN); err != nil {
				return err
			}
			if l.n%65536 == 0 {
				progress("checkpoint", l.n, cp.Entries)
			}
			return nil
		})
		if err == nil {
			err = l.flush()
		}
		if err != nil {
			return rec, fmt.Errorf("bpfdb: loading checkpoint at LSN %d: %w", cp.LSN, err)
		}
		progress("checkpoint", cp.Entries, cp.Entries)
	}
	rec.Replay, err = e.log.Replay(cp.LSN, 0, func(t *logd.Txn) error {
		for _, w := range t.Writes {
			if w.DB >= Databases {
				return fmt.Errorf("%w: LSN %d writes key %q of database %d: the store has %d", logd.ErrCorrupt, t.LSN, w.Key, w.DB, Databases)
			}
			if err := l.add(w.DB, w.Key, logd.Entry{Value: w.Value, ExpireAt: w.ExpireAt, Type: w.Type}, w.Delete, t.LSN); err != nil {
				return err
			}
		}
		if t.LSN%65536 == 0 {
			progress("log", t.LSN-cp.LSN, top-cp.LSN)
		}
		return nil
	})
	if err == nil {
		err = l.flush()
	}
	if err != nil {
		return rec, fmt.Errorf("bpfdb: replaying the log: %w", err)
	}
	rec.LSN = max(rec.Replay.Last, cp.LSN)
	progress("log", rec.LSN-cp.LSN, rec.LSN-cp.LSN)
	// A group keyed above what replay reached (damage, or a key larger
	// than the LSNs its group holds) is rewritten before new commits can
	// land on its key.
	if rec.Replay.Damage != nil || last > rec.LSN {
		if err := e.log.TruncateAfter(rec.LSN); err != nil {
			return rec, err
		}
	}
	atomic.StoreUint64(&e.ctl.Clock, rec.LSN)
	atomic.StoreUint64(&e.ctl.Visible, rec.LSN)
	// Replay may have published a hint up to the top LSN found, past a
	// damaged tail: a hint must never exceed visible (storage/version.h).
	atomic.StoreUint64(&e.ctl.LowHint, 0)
	return rec, nil
}
