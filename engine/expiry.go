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
	_ "unsafe" // go:linkname
)

const (
	deadlineLen = int(chainBpfdbLimitBPFDB_DEADLINE_LEN)
	lenExpires  = uint32(chainBpfdbLenFlagBPFDB_LEN_EXPIRES)
	lenMask     = uint32(chainBpfdbLenFlagBPFDB_LEN_MASK)
	lenType     = uint32(chainBpfdbLenFlagBPFDB_LEN_TYPE)
	lenTypeAt   = uint32(chainBpfdbLenFlagBPFDB_LEN_TYPE_SHIFT)
)

// expiryTick is how often the expirer looks for due deadlines when none is
// known to be sooner.
const expiryTick = 100 * time.Millisecond

// monotonicNanos is CLOCK_MONOTONIC, the clock of the kernel's
// bpf_ktime_get_ns(), read as the runtime reads it (the vDSO, no system
// call: the server reads it in every transaction).
func monotonicNanos() int64 { return runtimeNanotime() }

// runtimeNanotime is the runtime's CLOCK_MONOTONIC, which it exports for
// packages such as this one (runtime/time_nofake.go).
//
//go:linkname runtimeNanotime runtime.nanotime
func runtimeNanotime() int64

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
	return nil
}

// setDeadline appends deadline d to the n-byte value of type typ encoded
// in o, and flags its length.
func (o *chainBpfdbOp) setDeadline(n int, d int64, typ ValueType) {
	if d > 0 {
		binary.LittleEndian.PutUint64(o.Value[n:n+deadlineLen], uint64(d))
	}
	o.ValLen = storedLen(n, d, typ)
}

// storedLen is the length, flagged, of an n-byte value of type typ with
// deadline d (0: none) after it (bpf/include/bpfdb.h).
func storedLen(n int, d int64, typ ValueType) uint32 {
	l := uint32(n) | uint32(typ)<<lenTypeAt
	if d > 0 {
		l = (l + uint32(deadlineLen)) | lenExpires
	}
	return l
}

// lenValueType is the type of a value whose flagged length is valLen.
func lenValueType(valLen uint32) ValueType {
	if valLen == tombstone {
		return TypeString
	}
	return ValueType((valLen & lenType) >> lenTypeAt)
}

// splitStored returns the length of the value stored as valLen bytes of b
// (its deadline excluded) and its deadline (0: none).
func splitStored(b []byte, valLen uint32) (n int, deadline int64) {
	if valLen == tombstone {
		return len(b), 0
	}
	stored := int(valLen & lenMask)
	if valLen&lenExpires == 0 {
		return min(stored, len(b)), 0
	}
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

// queuedTry is a key's one queued try: when (0: at once), and the newest
// commit (LSN) that asked for a try of the key.
type queuedTry struct {
	at  int64
	lsn uint64
}

// expirer deletes expired keys (invariants 2 and 3). It queues one try
// per key (queued; the heap's entries that disagree with it are stale and
// skipped): a later deadline written meanwhile (a session's TTL refreshed
// on every request) queues nothing, and the try, finding the value live,
// learns its deadline from the chain and is queued again for it; an
// earlier one queues an earlier try. A commit that leaves the key without
// a deadline (a SET without one, a DEL) drops its try, unless a newer
// commit queued it: so the heap holds about one entry per key with a
// deadline, however often they are rewritten, and pending counts them.
type expirer struct {
	mu     sync.Mutex
	due    expiryHeap
	queued map[string]queuedTry
	// perDB counts queued by database (a key's first byte), kept as tries
	// come and go: Stats reads it without walking queued.
	perDB [Databases]uint64
	// some is len(queued) > 0, read without mu by commits that may drop a
	// try, so that a store without deadlines never takes mu.
	some atomic.Bool
	wake chan struct{}
	// deleted counts the expired keys deleted; scheduled the tries queued.
	deleted, scheduled atomic.Uint64
}

func newExpirer() *expirer {
	return &expirer{queued: map[string]queuedTry{}, wake: make(chan struct{}, 1)}
}

// add queues a try of key at deadline (0: at once), asked for by the
// commit lsn (0: a reader's), unless one is queued no later.
func (x *expirer) add(db int, key []byte, deadline int64, lsn uint64) {
	qk := queueKey(db, key)
	if deadline < 0 {
		panic(fmt.Sprintf("bpfdb: expirer: deadline %d", deadline)) // checkDeadline refuses them
	}
	x.mu.Lock()
	first := false
	q, ok := x.queued[qk]
	if !ok {
		x.perDB[db]++
	}
	q.lsn = max(q.lsn, lsn)
	if !ok || deadline < q.at {
		q.at = deadline
		heap.Push(&x.due, expiryEntry{deadline: deadline, key: qk})
		x.scheduled.Add(1)
		first = x.due[0].deadline == deadline
	}
	x.queued[qk] = q
	x.some.Store(true)
	x.mu.Unlock()
	if first {
		x.kick()
	}
}

// expired queues key of db, found expired by a reader, to be deleted at
// once.
func (x *expirer) expired(db int, key []byte) { x.add(db, key, 0, 0) }

// queueKey is the expirer's key of key of database db: the database's
// number, then the key.
func queueKey(db int, key []byte) string { return string(append([]byte{byte(db)}, key...)) }

// drop forgets key's try: the commit lsn left it without a deadline. A
// try queued by a newer commit (one whose expirer call came first) stays;
// the commits of one transaction share an LSN and call in order.
func (x *expirer) drop(db int, key []byte, lsn uint64) {
	if !x.some.Load() {
		return
	}
	qk := queueKey(db, key)
	x.mu.Lock()
	defer x.mu.Unlock()
	if q, ok := x.queued[qk]; ok && lsn >= q.lsn {
		delete(x.queued, qk)
		x.perDB[db]--
		x.compact()
	}
}

// compact rebuilds the heap from queued when most of its entries are
// stale, so that dropped and replaced tries do not pile up in it.
func (x *expirer) compact() {
	x.some.Store(len(x.queued) > 0)
	if len(x.due) <= 2*len(x.queued)+MaxBatch {
		return
	}
	x.due = x.due[:0]
	for k, q := range x.queued {
		x.due = append(x.due, expiryEntry{deadline: q.at, key: k})
	}
	heap.Init(&x.due)
}

func (x *expirer) kick() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// takenTry is a try takeDue took from the queue, with the newest commit
// that asked for it: queued again, it keeps it (drop).
type takenTry struct {
	db  int
	key []byte
	lsn uint64
}

// takeDue removes and returns up to MaxBatch tries due before now, and the
// next try's time left (-1: none).
func (x *expirer) takeDue(now int64, tries []takenTry) ([]takenTry, int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.compact()
	for len(x.due) > 0 && len(tries) < MaxBatch {
		top := x.due[0]
		if top.deadline >= now {
			return tries, top.deadline
		}
		heap.Pop(&x.due)
		q, ok := x.queued[top.key]
		if !ok || q.at != top.deadline {
			continue // stale: the key's try was replaced or dropped
		}
		delete(x.queued, top.key)
		x.perDB[top.key[0]]--
		tries = append(tries, takenTry{db: int(top.key[0]), key: []byte(top.key[1:]), lsn: q.lsn})
	}
	if len(x.due) > 0 {
		return tries, x.due[0].deadline
	}
	return tries, -1
}

// pendingByDB is pending by database.
func (x *expirer) pendingByDB() [Databases]uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.perDB
}

// pending is the number of keys with a try queued.
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
	tries := make([]takenTry, 0, MaxBatch)
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		case <-x.wake:
		}
		var next int64
		for {
			tries, next = x.takeDue(e.Now(), tries[:0])
			if len(tries) == 0 || !e.deleteExpired(tries) {
				break
			}
			select {
			case <-stop:
				return
			default:
			}
		}
		wait := expiryTick
		if next >= 0 {
			wait = min(wait, time.Duration(next-e.Now()+1)*time.Millisecond)
		}
		timer.Reset(max(wait, time.Millisecond))
	}
}

// deleteExpired deletes those of tries' keys whose value has expired, each a
// logged deletion, in one chain run, and reports whether every one was
// decided. A key it could not decide (a transaction holds it, the log
// refuses writes) is tried again an expiryTick later, not at once: what
// stopped it takes time to pass.
func (e *Engine) deleteExpired(tries []takenTry) bool {
	ops := make([]Op, len(tries))
	for i, t := range tries {
		ops[i] = Op{Kind: OpDelete, DB: t.db, Key: t.key, onlyExpired: true}
	}
	_, err := e.Submit(ops)
	decided := err == nil
	later := e.Now() + expiryTick.Milliseconds()
	for i := range ops {
		switch {
		case err != nil:
			e.expiry.add(ops[i].DB, ops[i].Key, later, tries[i].lsn)
		case ops[i].Err == nil:
			e.expiry.deleted.Add(1)
		case errors.Is(ops[i].Err, ErrNotFound):
			if ops[i].ExpireAt > 0 { // live, with a later deadline
				e.expiry.add(ops[i].DB, ops[i].Key, ops[i].ExpireAt, tries[i].lsn)
			}
		default:
			e.expiry.add(ops[i].DB, ops[i].Key, later, tries[i].lsn)
			decided = false
		}
	}
	return decided
}

// noteExpired tells the expirer of a key the chain found expired (o's
// detail): it is deleted on this access rather than at the next pass.
func (e *Engine) noteExpired(o *chainBpfdbOp, key []byte) {
	if o.Status == int32(chainBpfdbStatusBPFDB_ERR_NOT_FOUND) && o.Detail == uint8(chainBpfdbFullDetailBPFDB_DETAIL_EXPIRED) {
		e.expiry.expired(int(o.Key.Db), key)
	}
}

// noteWrite tells the expirer of op, a SET or DEL that committed at lsn:
// a deadline it wrote is queued, a key it left without one dropped.
func (e *Engine) noteWrite(op *Op, lsn uint64) {
	if op.Kind == OpSet && op.ExpireAt > 0 {
		e.expiry.add(op.DB, op.Key, op.ExpireAt, lsn)
	} else if op.Kind == OpSet || (op.Kind == OpDelete && !op.onlyExpired) {
		e.expiry.drop(op.DB, op.Key, lsn)
	}
}

// noteWrites keeps the writes t's ops made and, once t has committed,
// tells the expirer of each, in order (noteWrite).
func (t *Txn) noteWrites(ops []Op, committed bool, lsn uint64) {
	for i := range ops {
		// Without a deadline queued anywhere there is nothing to drop.
		if (ops[i].Kind == OpSet || ops[i].Kind == OpDelete) && ops[i].Err == nil &&
			(ops[i].ExpireAt > 0 || t.e.expiry.some.Load()) {
			key := append([]byte(nil), ops[i].Key...) // the caller may reuse it before the commit
			t.writes = append(t.writes, Op{Kind: ops[i].Kind, DB: ops[i].DB, Key: key, ExpireAt: ops[i].ExpireAt})
		}
	}
	if !committed {
		return
	}
	for i := range t.writes {
		t.e.noteWrite(&t.writes[i], lsn)
	}
	t.writes = nil
}
