package logd

// The log is kept as groups: one pebble key per batch a Writer commits,
// not one per transaction.
//
//	'g' + big-endian max LSN  ->  frame*
//	frame = uvarint LSN, uvarint body length, body (appendBody: its own
//	        crc32c covers the LSN and the rest)
//
// Why: a key per transaction cost pebble a memtable insertion and a
// flushed sstable entry per commit, a quarter of the server's CPU under
// redis-benchmark -P 16; a key per batch cost 16% less CPU per SET
// (docs/BENCHMARKS.md).
//
// Invariants:
//
//   - Every LSN is in exactly one group. A group holds whatever the Writer
//     read from the ring in one batch, which is nearly but not exactly
//     LSN order (two CPUs commit at once), so groups overlap a little:
//     the group holding LSN n may sort after one holding n+1. Keying a
//     group by its largest LSN makes that harmless where it matters: a
//     group whose key is at or below c holds only LSNs at or below c, so a
//     checkpoint at c deletes exactly the groups it covers with one range
//     deletion, and replay after c starts at the first group keyed above c.
//   - Replay puts the frames it reads in LSN order with a heap. How far
//     out of order a frame can be is bounded by what the ring holds (the
//     ring is read in the order space was reserved, and a committer takes
//     its LSN after reserving), so a frame that waits for an LSN more than
//     replayReorderLimit frames is a gap, not a late arrival.
//   - A frame is checked (its checksum) when its LSN is replayed, so damage
//     stops replay exactly after the last good LSN (a copy of an LSN is
//     skipped, a bad copy set aside while a good one may come); a group
//     that does not parse is read up to the damage, and replay goes on
//     with the groups after it as far as the LSNs stay gap-free.
//     TruncateAfter then keeps only the frames at or below that LSN, of
//     the groups that may hold any above it.

import (
	"container/heap"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"
)

const prefixGroup = 'g' // 'g' max lsn -> frames

func groupKey(maxLSN uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixGroup}, maxLSN)
}

// replayReorderLimit is how many frames replay holds while it waits for
// the next LSN before it calls the wait a gap. The ring (16 MiB by
// default, records of 48 bytes and up) bounds real reordering far below.
const replayReorderLimit = 4 << 20

// appendFrame appends one transaction's frame to a group, encoding its
// body in scratch, which it returns for reuse.
func appendFrame(dst []byte, lsn, id uint64, writes []Write, scratch []byte) ([]byte, []byte) {
	scratch = appendBody(scratch[:0], lsn, id, writes)
	return appendRawFrame(dst, lsn, scratch), scratch
}

// appendRawFrame appends the frame of an encoded body to a group.
func appendRawFrame(dst []byte, lsn uint64, body []byte) []byte {
	dst = binary.AppendUvarint(dst, lsn)
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	return append(dst, body...)
}

// frame is one transaction of a group, its body not yet checked.
type frame struct {
	lsn  uint64
	body []byte
}

// parseGroup splits a group into frames, aliasing b. A frame that does
// not parse ends it, with the error: the frames before it are returned.
func parseGroup(key, b []byte, fn func(frame)) error {
	for len(b) > 0 {
		lsn, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: group %x: bad LSN", ErrCorrupt, key)
		}
		size, m := binary.Uvarint(b[n:])
		if m <= 0 || size > uint64(len(b)-n-m) {
			return fmt.Errorf("%w: group %x: LSN %d: bad length", ErrCorrupt, key, lsn)
		}
		fn(frame{lsn: lsn, body: b[n+m : n+m+int(size)]})
		b = b[n+m+int(size):]
	}
	return nil
}

// groupError is why the group keyed maxLSN does not parse.
type groupError struct {
	maxLSN uint64
	err    error
}

// frameHeap orders frames by LSN.
type frameHeap []frame

func (h frameHeap) Len() int           { return len(h) }
func (h frameHeap) Less(i, j int) bool { return h[i].lsn < h[j].lsn }
func (h frameHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)        { *h = append(*h, x.(frame)) }
func (h *frameHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	*h = old[:len(old)-1]
	return f
}

// Replay calls fn, in LSN order, for every logged transaction with LSN in
// (after, until] (until 0 means no bound). It stops at the first damaged
// record or gap, reports it in the stats, and returns fn's error if any.
func (l *Log) Replay(after, until uint64, fn func(*Txn) error) (ReplayStats, error) {
	var st ReplayStats
	iter, err := l.db.NewIter(&pebble.IterOptions{LowerBound: groupKey(after + 1), UpperBound: []byte{prefixGroup + 1}})
	if err != nil {
		return st, err
	}
	defer iter.Close()
	var pending frameHeap
	next := after + 1
	// A copy of an LSN already replayed is skipped, and a copy that fails
	// its checksum is set aside while another copy may still come: only
	// an LSN with no good copy is damage, whatever order copies come in.
	var badNext error // why the copies of next seen so far were bad
	// deliver replays the pending frames that continue the log.
	deliver := func() error {
		for len(pending) > 0 && pending[0].lsn <= next {
			f := heap.Pop(&pending).(frame)
			if f.lsn < next {
				continue
			}
			t, err := decodeTxn(f.lsn, f.body)
			if err != nil {
				badNext = err
				continue
			}
			badNext = nil
			if err := fn(&t); err != nil {
				return err
			}
			if st.First == 0 {
				st.First = f.lsn
			}
			st.Last = f.lsn
			st.Txns++
			st.Writes += uint64(len(t.Writes))
			next++
		}
		return nil
	}
	// A group that does not parse ends there, but the LSNs it lost may
	// lie past the ones later groups continue with: its error is damage
	// only if the group's key (its largest LSN) lies past where the
	// gap-free prefix ends. (Below it, the lost bytes could hold only
	// LSNs the prefix has, from good copies: duplicates.)
	var parseErrs []groupError
	for iter.First(); iter.Valid() && st.Damage == nil; iter.Next() {
		if until != 0 && next > until {
			break
		}
		value := append([]byte(nil), iter.Value()...) // frames alias it while they wait
		err := parseGroup(iter.Key(), value, func(f frame) {
			if f.lsn > after && (until == 0 || f.lsn <= until) {
				heap.Push(&pending, f)
			}
		})
		if err != nil {
			parseErrs = append(parseErrs, groupError{binary.BigEndian.Uint64(iter.Key()[1:]), err})
		}
		if err := deliver(); err != nil {
			return st, err
		}
		if st.Damage == nil && len(pending) > replayReorderLimit {
			st.Damage = fmt.Errorf("gap in the log: LSN %d follows %d (%d later transactions found before it)", pending[0].lsn, next-1, len(pending))
		}
	}
	if err := iter.Error(); err != nil {
		return st, err
	}
	if st.Damage != nil || until != 0 && next > until {
		return st, nil
	}
	for _, ge := range parseErrs {
		if ge.maxLSN >= next {
			st.Damage = ge.err
			return st, nil
		}
	}
	switch {
	case badNext != nil:
		st.Damage = badNext
	case len(pending) > 0:
		st.Damage = fmt.Errorf("gap in the log: LSN %d follows %d", pending[0].lsn, next-1)
	}
	return st, nil
}

// LastLSN returns the largest LSN in the log, or 0.
func (l *Log) LastLSN() (uint64, error) {
	iter, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGroup}, UpperBound: []byte{prefixGroup + 1}})
	if err != nil {
		return 0, err
	}
	defer iter.Close()
	if !iter.Last() {
		return 0, iter.Error()
	}
	return binary.BigEndian.Uint64(iter.Key()[1:]), nil
}

// TruncateAfter deletes every logged transaction above lsn: the damaged
// tail recovery stopped at, which new commits must not land behind.
//
// The groups keyed at or above lsn may hold frames at or below it, and
// one of those may also sit (a duplicate) in a group keyed below lsn. So
// the region rewritten starts at the smallest LSN of a good frame that a
// group in it holds, widened until no group in it holds a smaller one (a
// group keyed below the region's start holds nothing at or past it). Its
// good frames at or below lsn, the first copy of each LSN, become one
// group; the rest of the region is deleted with one range deletion. A
// group is keyed at or above every LSN it holds, so the region is the
// tail that straggling frames reach into: a few groups.
func (l *Log) TruncateAfter(lsn uint64) error {
	from := max(lsn, 1) // the group keyed lsn may hold a bad or second copy of it
	for {
		low := from
		err := l.scanGroups(from, func(f frame) {
			if f.lsn < low && goodFrame(f) {
				low = f.lsn
			}
		})
		if err != nil {
			return err
		}
		if low == from {
			break
		}
		from = low
	}
	var kept []byte
	seen := map[uint64]bool{}
	top := uint64(0)
	err := l.scanGroups(from, func(f frame) {
		if f.lsn > lsn || seen[f.lsn] || !goodFrame(f) {
			return
		}
		seen[f.lsn] = true
		kept = appendRawFrame(kept, f.lsn, f.body)
		top = max(top, f.lsn)
	})
	if err != nil {
		return err
	}
	return l.write(func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		b.DeleteRange(groupKey(from), []byte{prefixGroup + 1}, nil)
		if top != 0 {
			b.Set(groupKey(top), kept, nil) // copies kept
		}
		return b.Commit(pebble.Sync)
	})
}

// goodFrame reports whether f passes its checksum and parses.
func goodFrame(f frame) bool {
	_, err := decodeTxn(f.lsn, f.body)
	return err == nil
}

// scanGroups calls fn for every frame of the groups keyed from and above,
// up to the damage in a group that does not parse.
func (l *Log) scanGroups(from uint64, fn func(frame)) error {
	iter, err := l.db.NewIter(&pebble.IterOptions{LowerBound: groupKey(from), UpperBound: []byte{prefixGroup + 1}})
	if err != nil {
		return err
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		parseGroup(iter.Key(), iter.Value(), fn)
	}
	return iter.Error()
}

// migrateLegacy rewrites a log written before groups existed ('w' + LSN
// -> body, one key per transaction) as groups of one transaction, in
// batches that each add the groups and delete the keys they replace, so a
// crash in the middle leaves a log that reads the same.
func (l *Log) migrateLegacy() error {
	const prefixLegacy = 'w'
	iter, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLegacy}, UpperBound: []byte{prefixLegacy + 1}})
	if err != nil {
		return err
	}
	defer iter.Close()
	b := l.db.NewBatch()
	defer func() { b.Close() }()
	var group []byte
	for iter.First(); iter.Valid(); iter.Next() {
		if len(iter.Key()) != 9 {
			return fmt.Errorf("%w: log key %x", ErrCorrupt, iter.Key())
		}
		lsn := binary.BigEndian.Uint64(iter.Key()[1:])
		group = appendRawFrame(group[:0], lsn, iter.Value())
		b.Set(groupKey(lsn), group, nil)
		b.Delete(iter.Key(), nil)
		if b.Len() >= checkpointBatchBytes {
			if err := b.Commit(pebble.Sync); err != nil {
				return err
			}
			b.Close()
			b = l.db.NewBatch()
		}
	}
	if err := iter.Error(); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}
