package engine

import (
	"errors"
	"sync/atomic"

	"github.com/cilium/ebpf"
)

// vacuumBatch is how many records one batch lookup of the vacuum's walk reads.
const vacuumBatch = 4096

// Vacuum reclaims, in every record, the versions no snapshot can see, and
// removes deleted keys' records. Writers collect the keys they write;
// Vacuum collects the rest: deleted keys' last values, old versions of
// keys no longer written. It also hands the expirer every expired key it
// passes (those BPF programs wrote, which the expirer did not see).
//
// It walks the index from user space, vacuumBatch records per batch
// lookup, and sends the keys with something to collect to bpfdb_collect,
// MaxBatch per chain run, which decides again under each key's lock: no
// run holds more than a batch's keys, one lock at a time. The engine runs
// it every Options.VacuumInterval while there are writes, and when a slab
// is full. A walk through the whole index lets the engine forget the long
// keys it met no record of (longkey.go, invariant 2).
func (e *Engine) Vacuum() error {
	e.vacuumMu.Lock()
	defer e.vacuumMu.Unlock()
	if err := e.collect(nil); err != nil { // refreshes control.low_hint
		return err
	}
	low := atomic.LoadUint64(&e.ctl.LowHint)
	now := e.Now()
	epoch := e.longKeys.beginWalk()
	keys := make([]chainBpfdbKey, vacuumBatch)
	recs := make([]chainBpfdbRecord, vacuumBatch)
	pending := make([]chainBpfdbKey, 0, MaxBatch)
	var cursor ebpf.MapBatchCursor
	for {
		got, err := e.maps.Records.BatchLookup(&cursor, keys, recs, nil)
		for i := 0; i < got; i++ {
			e.walked(&keys[i], &recs[i], epoch, now)
			if !collectable(&recs[i], low) {
				continue
			}
			if pending = append(pending, keys[i]); len(pending) == MaxBatch {
				if err := e.collect(pending); err != nil {
					return err
				}
				pending = pending[:0]
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return err
		}
	}
	e.forgetLongKeys(epoch)
	if len(pending) == 0 {
		return nil
	}
	return e.collect(pending)
}

// walked handles the record rec of index key k met by the walk of epoch:
// it notes a long key's record (longkey.go) and hands an expired value's
// key to the expirer.
func (e *Engine) walked(k *chainBpfdbKey, rec *chainBpfdbRecord, epoch uint64, now int64) {
	key, ok := k.Data[:min(int(k.Len), InlineKeyLen)], true
	if k.isLong() {
		key, ok = e.longKeys.met(k, epoch)
	}
	if ok && e.expiredAt(rec, now) {
		e.expiry.expired(int(k.Db), key)
	}
}

// forgetLongKeys ends the walk of epoch through the whole index: the long
// keys it met no record of go once the log is durable past the store's
// clock (longkey.go, invariant 2).
func (e *Engine) forgetLongKeys(epoch uint64) {
	clock := atomic.LoadUint64(&e.ctl.Clock)
	if e.log == nil {
		e.longKeys.endWalk(epoch, clock, 0, false)
		return
	}
	e.longKeys.endWalk(epoch, clock, e.log.DurableLSN(), true)
}

// collectable: rec, as copied (perhaps torn by a writer), has a version
// that no snapshot at or above low sees, or none at all. bpfdb_collect
// decides again under the record's lock.
func collectable(rec *chainBpfdbRecord, low uint64) bool {
	live := false
	for _, v := range rec.V {
		if v.BeginTs == 0 {
			continue
		}
		live = true
		ended := v.EndTs != ^uint64(0)
		if (ended && v.EndTs <= low) || (!ended && v.Len == tombstone && v.BeginTs <= low) {
			return true
		}
	}
	return !live
}

// expiredAt: rec's newest version, as copied, holds a value whose deadline
// is before now.
func (e *Engine) expiredAt(rec *chainBpfdbRecord, now int64) bool {
	for _, v := range rec.V {
		if v.BeginTs == 0 || v.EndTs != ^uint64(0) || v.Len == tombstone || v.Len&lenExpires == 0 {
			continue
		}
		deadline := e.deadlineAt(v.Ref, v.Len)
		return deadline != 0 && now > deadline
	}
	return false
}

// collect runs bpfdb_collect on the index keys keys (none: it only
// refreshes the hint). It writes nothing to log, so it holds no long key.
func (e *Engine) collect(keys []chainBpfdbKey) error {
	s, err := e.acquire()
	if err != nil {
		return err
	}
	defer e.release(s)
	for i := range keys {
		o := s.encode(i, uint8(OpDelete), 0, nil, nil)
		o.Key = keys[i]
	}
	s.hdr.Nops = uint32(len(keys))
	if err := e.runProg(s, e.progs.BpfdbCollect); err != nil {
		return err
	}
	if d := int64(s.attr.Duration); d > e.longestCollect.Load() {
		e.longestCollect.Store(d) // under vacuumMu
	}
	return nil
}
