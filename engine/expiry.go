package engine

// Keys that expire (bpf/storage/expiry.h). A value may carry a deadline,
// the Unix time in milliseconds after which it reads as absent: it is
// stored after the value's bytes and flagged in its length, so it is part
// of the version (logged with the write, kept by checkpoints, seen by a
// snapshot as of its version), and a key without one costs nothing more.
//
// Invariants:
//
//  1. One clock: the kernel's bpf_ktime_get_ns() plus control.wall_offset_ns,
//     which Open sets; Engine.Now reads the same two clocks. A reader's time
//     is the moment it meets a deadline (autocommit) or its transaction's
//     begin.
//  2. An expired value stays a version until the expirer replaces it with
//     a logged deletion (BPFDB_DEL_EXPIRED: deleted only if expired when the
//     chain runs it), so recovery, replaying either, agrees with readers.
//  3. The expirer learns of every deadline this engine writes or recovers
//     (expirer.add) and of expired keys readers meet (the chain's
//     BPFDB_DETAIL_EXPIRED); it deletes at most MaxBatch keys per chain
//     run, each run short, never holding a lock between runs.

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// MaxExpiringValueLen is the longest value that can carry a deadline: its
// deadline is stored after it, within MaxValueLen.
const MaxExpiringValueLen = int(chainBpfdbLimitBPFDB_MAX_EXPIRING_LEN)

const (
	deadlineLen = int(chainBpfdbLimitBPFDB_DEADLINE_LEN)
	lenExpires  = uint32(chainBpfdbLenFlagBPFDB_LEN_EXPIRES)
	lenMask     = uint32(chainBpfdbLenFlagBPFDB_LEN_MASK)
)

// expiryTick is how often the expirer looks for due deadlines when none is
// known to be sooner.
const expiryTick = 100 * time.Millisecond

func monotonicNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("bpfdb: CLOCK_MONOTONIC: %v", err)) // never fails on Linux
	}
	return ts.Nano()
}

// setClock aligns the store's clock with the Unix time (invariant 1).
func (e *Engine) setClock() {
	atomic.StoreUint64(&e.ctl.WallOffsetNs, uint64(time.Now().UnixNano()-monotonicNanos()))
}

// Now returns the store's clock, the Unix time in milliseconds that
// deadlines (Op.ExpireAt) are compared with: a value reads as absent once
// Now is past its deadline.
func (e *Engine) Now() int64 {
	return (monotonicNanos() + int64(atomic.LoadUint64(&e.ctl.WallOffsetNs))) / int64(time.Millisecond)
}

// checkDeadline refuses a deadline the store cannot hold.
func checkDeadline(op *Op) error {
	if op.ExpireAt < 0 {
		return fmt.Errorf("%w: deadline %d is negative", ErrBadDeadline, op.ExpireAt)
	}
	if op.ExpireAt > 0 && len(op.Value) > MaxExpiringValueLen {
		return fmt.Errorf("%w: %d bytes with a deadline, above %d (MaxExpiringValueLen: the deadline is stored after the value)",
			ErrValueTooLarge, len(op.Value), MaxExpiringValueLen)
	}
	return nil
}

// setDeadline appends deadline d to the n-byte value encoded in o.
func (o *chainBpfdbOp) setDeadline(n int, d int64) {
	if d <= 0 {
		return
	}
	binary.LittleEndian.PutUint64(o.Value[n:n+deadlineLen], uint64(d))
	o.ValLen = uint32(n+deadlineLen) | lenExpires
}

// splitStored returns the length of the value stored as valLen bytes of b
// (its deadline excluded) and its deadline (0: none).
func splitStored(b []byte, valLen uint32) (n int, deadline int64) {
	if valLen == tombstone || valLen&lenExpires == 0 {
		return int(min(valLen, uint32(len(b)))), 0
	}
	stored := int(valLen & lenMask)
	if stored < deadlineLen || stored > len(b) {
		return 0, 0 // the chain refuses such lengths (value_len_ok)
	}
	n = stored - deadlineLen
	return n, int64(binary.LittleEndian.Uint64(b[n:stored]))
}

// expiryEntry is a deadline the expirer waits for.
type expiryEntry struct {
	deadline int64
	key      string
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expirer deletes expired keys (invariants 2 and 3). It queues one try
// per key: a later deadline written meanwhile (a session's TTL refreshed
// on every request) queues nothing, and the try, finding the value live,
// learns its deadline from the chain and is queued again for it; an
// earlier one queues an earlier try. So the heap holds about one entry per
// key with a deadline, however often they are rewritten. Deadline 0 is a
// key a reader found expired, tried at once.
type expirer struct {
	mu     sync.Mutex
	due    expiryHeap
	queued map[string]int64 // the deadline of each key's queued try
	wake   chan struct{}
	// deleted counts the expired keys deleted; scheduled the tries queued.
	deleted, scheduled atomic.Uint64
}

func newExpirer() *expirer {
	return &expirer{queued: map[string]int64{}, wake: make(chan struct{}, 1)}
}

// add queues a try of key at deadline unless one is queued no later.
func (x *expirer) add(key []byte, deadline int64) {
	x.mu.Lock()
	first := false
	if q, ok := x.queued[string(key)]; !ok || deadline < q {
		x.queued[string(key)] = deadline
		heap.Push(&x.due, expiryEntry{deadline: deadline, key: string(key)})
		x.scheduled.Add(1)
		first = x.due[0].deadline == deadline
	}
	x.mu.Unlock()
	if first {
		x.kick()
	}
}

// expired queues key, found expired by a reader, to be deleted at once.
func (x *expirer) expired(key []byte) {
	x.mu.Lock()
	heap.Push(&x.due, expiryEntry{deadline: 0, key: string(key)})
	x.mu.Unlock()
	x.kick()
}

func (x *expirer) kick() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// takeDue removes and returns up to MaxBatch keys whose deadline is before
// now, and the next deadline left (0: none).
func (x *expirer) takeDue(now int64, keys [][]byte) ([][]byte, int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for len(x.due) > 0 && len(keys) < MaxBatch {
		top := x.due[0]
		if top.deadline >= now {
			return keys, top.deadline
		}
		heap.Pop(&x.due)
		if top.deadline != 0 {
			if x.queued[top.key] != top.deadline {
				continue // an earlier try of the key replaced this one
			}
			delete(x.queued, top.key)
		}
		keys = append(keys, []byte(top.key))
	}
	if len(x.due) > 0 {
		return keys, x.due[0].deadline
	}
	return keys, 0
}

// pending is the number of deadlines queued.
func (x *expirer) pending() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.queued)
}

// expireLoop deletes expired keys until stop is closed: each pass takes the
// due keys MaxBatch at a time, one short chain run each.
func (e *Engine) expireLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	x := e.expiry
	timer := time.NewTimer(expiryTick)
	defer timer.Stop()
	keys := make([][]byte, 0, MaxBatch)
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		case <-x.wake:
		}
		var next int64
		for {
			keys, next = x.takeDue(e.Now(), keys[:0])
			if len(keys) == 0 || !e.deleteExpired(keys) {
				break
			}
			select {
			case <-stop:
				return
			default:
			}
		}
		wait := expiryTick
		if next > 0 {
			wait = min(wait, time.Duration(next-e.Now()+1)*time.Millisecond)
		}
		timer.Reset(max(wait, time.Millisecond))
	}
}

// deleteExpired deletes those of keys whose value has expired, each a
// logged deletion, in one chain run, and reports whether every one was
// decided. A key it could not decide (a transaction holds it, the log
// refuses writes) is queued again for the next pass.
func (e *Engine) deleteExpired(keys [][]byte) bool {
	ops := make([]Op, len(keys))
	for i, k := range keys {
		ops[i] = Op{Kind: OpDelete, Key: k, onlyExpired: true}
	}
	_, err := e.Submit(ops)
	decided := err == nil
	for i := range ops {
		switch {
		case err != nil:
			e.expiry.expired(ops[i].Key)
		case ops[i].Err == nil:
			e.expiry.deleted.Add(1)
		case errors.Is(ops[i].Err, ErrNotFound):
			if ops[i].ExpireAt > 0 { // live, with a later deadline
				e.expiry.add(ops[i].Key, ops[i].ExpireAt)
			}
		default:
			e.expiry.expired(ops[i].Key)
			decided = false
		}
	}
	return decided
}

// noteExpired tells the expirer of a key the chain found expired (o's
// detail): it is deleted on this access rather than at the next pass.
func (e *Engine) noteExpired(o *chainBpfdbOp, key []byte) {
	if o.Status == int32(chainBpfdbStatusBPFDB_ERR_NOT_FOUND) && o.Detail == uint8(chainBpfdbFullDetailBPFDB_DETAIL_EXPIRED) {
		e.expiry.expired(key)
	}
}

// noteDeadlines keeps the deadlines t's ops wrote and, once t has
// committed, queues every one it wrote.
func (t *Txn) noteDeadlines(ops []Op, committed bool) {
	for i := range ops {
		if ops[i].Kind == OpSet && ops[i].ExpireAt > 0 && ops[i].Err == nil {
			t.deadlines = append(t.deadlines, expiryEntry{deadline: ops[i].ExpireAt, key: string(ops[i].Key)})
		}
	}
	if !committed {
		return
	}
	for _, d := range t.deadlines {
		t.e.expiry.add([]byte(d.key), d.deadline)
	}
	t.deadlines = nil
}
