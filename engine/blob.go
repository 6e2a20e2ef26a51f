package engine

// blob.go: values too large for a slot of the value store (more than
// SlotValueLen stored bytes) live in blobs, whole pages of the same
// mmapped array (bpf/storage/blob.h states the layout and invariants).
// The engine builds a blob before the run that writes it: it takes pages
// with the chain's compare-and-swaps (the page free list, then
// control.page_next), copies the value in through the mmapped array, and
// passes the blob's header in the op in place of the bytes. After the run,
// a blob the chain did not adopt is given back here (blob.h invariant 1).
//
// Reading: the chain answers a GET of a blob with its header; the engine
// copies the pages and then, for a lock-free read, checks that the version
// is still in the key's record (blob.h invariant 2): if it is not, the
// pages may have been freed and reused under the copy, and the read runs
// again.
//
// Logging: the WAL ring carries a blob's header, not its bytes. The
// engine keeps a copy of each logged blob's value by blob id (blobLog)
// from before the run until the drain takes it for the log record, or,
// for a blob that was never logged (not adopted, its transaction aborted,
// overwritten in its transaction), until the durable LSN passes the end of
// the run or transaction that made it.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bpfdb/bpfdb/logd"
)

const (
	// SlotValueLen is the largest value (deadline included) stored in a
	// slot of a size class; a larger one is a blob of whole pages. It is
	// also the largest value a BPF program reads or writes through the
	// kernel API (bpf/include/bpfdb_api.h).
	SlotValueLen = int(chainBpfdbLimitBPFDB_MAX_VALUE_LEN)
	// DefaultMaxValueLen is Options.MaxValueLen by default.
	DefaultMaxValueLen = 1 << 20
	// MaxValueLenLimit is the largest Options.MaxValueLen: a blob's head
	// page lists at most BPFDB_BLOB_MAX_PAGES data pages, and a value
	// with a deadline stores it after its bytes.
	MaxValueLenLimit = int(chainBpfdbLimitBPFDB_MAX_BLOB_LEN) - deadlineLen

	blobHead     = int(chainBpfdbLimitBPFDB_BLOB_HEAD)
	blobMaxPages = int(chainBpfdbLimitBPFDB_BLOB_MAX_PAGES)
	// blobHeadRoom is what a head page holds of the value with no data page.
	blobHeadRoom = PageSize - blobHead
)

// The log can hold the largest value: the difference must not be negative.
var _ [logd.MaxValueLen - MaxValueLenLimit]struct{}

// blobHeader mirrors struct bpfdb_blob (bpf/include/bpfdb.h).
type blobHeader struct {
	Page     uint32
	Npages   uint32
	ID       uint64
	Deadline uint64
	Len      uint32
	Adopted  uint32
}

// The header is BPFDB_BLOB_HEAD bytes: both differences must be zero.
var (
	_ [blobHead - int(unsafe.Sizeof(blobHeader{}))]struct{}
	_ [int(unsafe.Sizeof(blobHeader{})) - blobHead]struct{}
)

// isBlob reports whether a value of length valLen (flags included, not a
// tombstone) is stored as a blob.
func isBlob(valLen uint32) bool {
	return valLen != tombstone && int(valLen&lenMask) > SlotValueLen
}

// blobDataPages is how many data pages a blob of stored bytes needs; it
// mirrors blob_data_pages in bpf/storage/blob.h.
func blobDataPages(stored int) int {
	if stored <= blobHeadRoom {
		return 0
	}
	return (stored - blobHeadRoom + PageSize - 4 - 1) / (PageSize - 4)
}

// headerAt returns the blob header at the start of b (an op's value).
func headerAt(b []byte) *blobHeader {
	if len(b) < blobHead {
		panic(fmt.Sprintf("bpfdb: a blob header needs %d bytes, got %d", blobHead, len(b)))
	}
	return (*blobHeader)(unsafe.Pointer(&b[0]))
}

// pageWord is the first 4 bytes of page p: a free page's link (slab.h invariant 2).
func (e *Engine) pageWord(p uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&e.pageMem[int(p)*PageSize]))
}

func (e *Engine) pageCount() int { return len(e.pageMem) / PageSize }

// stackTagged mirrors stack_tagged (bpf/storage/slab.h).
func stackTagged(h uint64, top uint32) uint64 { return ((h>>32)+1)<<32 | uint64(top) }

// pageTake takes a page as page_take does (bpf/storage/slab.h); false when
// none is left.
func (e *Engine) pageTake() (uint32, bool) {
	for {
		h := atomic.LoadUint64(&e.ctl.PageFree)
		top := uint32(h)
		if top == 0 {
			break
		}
		next := atomic.LoadUint32(e.pageWord(top - 1))
		if atomic.CompareAndSwapUint64(&e.ctl.PageFree, h, stackTagged(h, next)) {
			return top - 1, true
		}
	}
	limit := atomic.LoadUint64(&e.ctl.PageCap)
	if atomic.LoadUint64(&e.ctl.PageNext) >= limit {
		return 0, false
	}
	next := atomic.AddUint64(&e.ctl.PageNext, 1) - 1
	return uint32(next), next < limit
}

// pagesGive links pages into a chain and pushes it on the page free list
// at once, as blob_free does.
func (e *Engine) pagesGive(pages []uint32) {
	if len(pages) == 0 {
		return
	}
	for i := 0; i+1 < len(pages); i++ {
		atomic.StoreUint32(e.pageWord(pages[i]), pages[i+1]+1)
	}
	last := e.pageWord(pages[len(pages)-1])
	for {
		h := atomic.LoadUint64(&e.ctl.PageFree)
		atomic.StoreUint32(last, uint32(h))
		if atomic.CompareAndSwapUint64(&e.ctl.PageFree, h, stackTagged(h, pages[0]+1)) {
			return
		}
	}
}

// blobSegments returns the parts of the page array that hold the bytes of
// the blob with head page head and data pages list, in order.
func (e *Engine) blobSegments(head uint32, list []uint32, stored int) [][]byte {
	segs := make([][]byte, 0, 1+len(list))
	off := int(head)*PageSize + blobHead + 4*len(list)
	n := min(stored, int(head+1)*PageSize-off)
	segs = append(segs, e.pageMem[off:off+n:off+n])
	stored -= n
	for _, p := range list {
		n := min(stored, PageSize)
		off := int(p) * PageSize
		segs = append(segs, e.pageMem[off:off+n:off+n])
		stored -= n
	}
	return segs
}

// blobBuild stores value, of type typ, followed by deadline d when d > 0,
// in a new blob, and returns its header (valLen: the stored length,
// flagged). ErrStoreFull, with nothing taken, when the pages are not there.
func (e *Engine) blobBuild(value []byte, d int64, typ ValueType) (blobHeader, error) {
	valLen := storedLen(len(value), d, typ)
	stored := int(valLen & lenMask)
	n := blobDataPages(stored)
	pages := make([]uint32, 0, 1+n)
	for len(pages) < 1+n {
		p, ok := e.pageTake()
		if !ok {
			e.pagesGive(pages)
			return blobHeader{}, fmt.Errorf("%w: no memory left for a %d-byte value: it needs %d pages of %d bytes, and the value store's %d pages are in use (Options.MaxMemory, %d bytes)",
				ErrStoreFull, len(value), 1+n, PageSize, e.valuePages(), e.opts.MaxMemory)
		}
		pages = append(pages, p)
	}
	atomic.AddUint64(&e.ctl.BlobPages, uint64(1+n))
	head, list := pages[0], pages[1:]
	hdr := blobHeader{Page: head, Npages: uint32(n), ID: e.blobIDs.Add(1), Len: valLen}
	if d > 0 {
		hdr.Deadline = uint64(d)
	}
	headMem := e.pageMem[int(head)*PageSize : int(head+1)*PageSize]
	for i, p := range list {
		binary.LittleEndian.PutUint32(headMem[blobHead+4*i:], p)
	}
	var tail [8]byte
	binary.LittleEndian.PutUint64(tail[:], hdr.Deadline)
	src := [2][]byte{value, tail[:stored-len(value)]}
	for _, seg := range e.blobSegments(head, list, stored) {
		for len(seg) > 0 {
			c := copy(seg, src[0])
			seg, src[0] = seg[c:], src[0][c:]
			if len(src[0]) == 0 {
				src[0], src[1] = src[1], nil
			}
		}
	}
	*headerAt(headMem) = hdr
	return hdr, nil
}

// blobPages returns the pages of the blob whose header is h, as its head
// page lists them, checked against the store; false if h (from a torn or
// stale read) does not describe a blob.
func (e *Engine) blobPages(h *blobHeader) ([]uint32, bool) {
	count := uint32(e.pageCount())
	stored := int(h.Len & lenMask)
	if h.Page >= count || int(h.Npages) != blobDataPages(stored) || stored > MaxValueLenLimit+deadlineLen {
		return nil, false
	}
	headMem := e.pageMem[int(h.Page)*PageSize:]
	list := make([]uint32, h.Npages)
	for i := range list {
		list[i] = binary.LittleEndian.Uint32(headMem[blobHead+4*i:])
		if list[i] >= count {
			return nil, false
		}
	}
	return list, true
}

// headAt returns the header in page, if page is in the store: what a
// lock-free reader finds there may be stale or torn, so callers compare
// it with what they expect.
func (e *Engine) headAt(page uint32) (blobHeader, bool) {
	if int(page) >= e.pageCount() {
		return blobHeader{}, false
	}
	return *headerAt(e.pageMem[int(page)*PageSize:]), true
}

// blobRead copies the stored bytes of the blob whose header is h; false
// when they cannot be (the header does not match its head page).
func (e *Engine) blobRead(h *blobHeader) ([]byte, bool) {
	if head, ok := e.headAt(h.Page); !ok || head != *h {
		return nil, false
	}
	list, ok := e.blobPages(h)
	if !ok {
		return nil, false
	}
	stored := int(h.Len & lenMask)
	out := make([]byte, 0, stored)
	for _, seg := range e.blobSegments(h.Page, list, stored) {
		out = append(out, seg...)
	}
	return out, len(out) == stored
}

// blobFree gives back the pages of a blob the chain did not adopt
// (blob.h invariant 1).
func (e *Engine) blobFree(h *blobHeader) {
	list, ok := e.blobPages(h)
	if !ok {
		panic(fmt.Sprintf("bpfdb: freeing blob %+v that this engine did not build", *h))
	}
	e.pagesGive(append([]uint32{h.Page}, list...))
	atomic.AddUint64(&e.ctl.BlobPages, ^uint64(h.Npages)) // minus Npages + 1
}

// versionStill reports whether the record of index key k still holds the
// version (commit ts, head page, length) a lock-free read copied a blob
// of: then the copy is whole (blob.h invariant 2).
func (e *Engine) versionStill(k *chainBpfdbKey, ts uint64, page, valLen uint32) bool {
	var rec chainBpfdbRecord
	if err := e.maps.Records.Lookup(k, &rec); err != nil {
		return false // removed: ebpf.ErrKeyNotExist
	}
	for _, v := range rec.V {
		if v.BeginTs == ts && v.Ref == page && v.Len == valLen {
			return true
		}
	}
	return false
}

// blobLog holds, by blob id, the values of blobs that may be logged, for
// the drain (the ring carries only their headers).
type blobLog struct {
	mu        sync.Mutex
	values    map[uint64]*loggedBlob
	lastSweep time.Time
}

type loggedBlob struct {
	value    []byte
	deadline int64
	// over: the transaction that made the blob is over; doneAt: the
	// clock after that (0: not read yet). Once the durable LSN reaches
	// doneAt, no log record will take the value.
	over   bool
	doneAt uint64
}

// add keeps a copy of value (and its deadline) for blob id.
func (l *blobLog) add(id uint64, value []byte, deadline int64) {
	v := &loggedBlob{value: bytes.Clone(value), deadline: deadline}
	l.mu.Lock()
	if l.values == nil {
		l.values = make(map[uint64]*loggedBlob)
	}
	l.values[id] = v
	l.mu.Unlock()
}

// take returns and forgets blob id's value, for its log record.
func (l *blobLog) take(id uint64) (*loggedBlob, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.values[id]
	delete(l.values, id)
	return v, ok
}

// drop forgets blob id's value: it will not be logged.
func (l *blobLog) drop(id uint64) {
	l.mu.Lock()
	delete(l.values, id)
	l.mu.Unlock()
}

// done marks blob ids as made by a transaction that is over: whatever
// of it will be logged has its LSN at or below the clock now.
func (l *blobLog) done(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	l.mu.Lock()
	for _, id := range ids {
		if v := l.values[id]; v != nil {
			v.over = true
		}
	}
	l.mu.Unlock()
}

// sweep forgets, at most every 100 ms, the values no log record will
// take: those of transactions over at a clock the durable LSN has
// reached. The clock of a transaction marked over is read here, after it
// ended: at or above any LSN it committed at.
func (l *blobLog) sweep(durable, clock uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.values) == 0 || time.Since(l.lastSweep) < 100*time.Millisecond {
		return
	}
	l.lastSweep = time.Now()
	for id, v := range l.values {
		switch {
		case v.over && v.doneAt == 0:
			v.doneAt = max(clock, 1)
		case v.doneAt != 0 && v.doneAt <= durable:
			delete(l.values, id)
		}
	}
}

// pending is how many values the log holds.
func (l *blobLog) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.values)
}

// encodeSet writes op, a SET or LOAD (kind) of its value, type and
// deadline, into op j of s: the value's bytes when they fit a slot, else
// the header of a new blob, whose value the drain will find in blobLog
// when logged. ErrStoreFull, with nothing taken, when there are not the
// pages for the blob.
func (e *Engine) encodeSet(s *reqSlot, j int, kind uint8, op *Op, logged bool) error {
	if !needsBlob(op) {
		s.encode(j, kind, op.DB, op.Key, op.Value).setDeadline(len(op.Value), op.ExpireAt, op.Type)
		return nil
	}
	h, err := e.newBlob(op, logged)
	if err != nil {
		return err
	}
	s.encode(j, kind, op.DB, op.Key, nil).setBlob(h)
	return nil
}

// newBlob is blobBuild of op's value that also keeps the value for the
// drain when the write will be logged.
func (e *Engine) newBlob(op *Op, logged bool) (blobHeader, error) {
	h, err := e.blobBuild(op.Value, op.ExpireAt, op.Type)
	if err == nil && logged && e.drain != nil {
		e.blobLog.add(h.ID, op.Value, op.ExpireAt)
	}
	return h, err
}

// needsBlob reports whether op is a SET (or LOAD) whose value, with its
// deadline, is too large for a slot.
func needsBlob(op *Op) bool {
	if op.Kind == OpGet || op.Kind == OpDelete || op.Kind == OpIncr {
		return false
	}
	n := len(op.Value)
	if op.ExpireAt > 0 {
		n += deadlineLen
	}
	return n > SlotValueLen
}

// setBlob makes o, a SET or LOAD, carry the blob whose header is h.
func (o *chainBpfdbOp) setBlob(h blobHeader) {
	h.Adopted = 0
	*headerAt(o.Value[:]) = h
	o.ValLen = h.Len
}

// settleBlob ends o's hold on the blob it carried to the chain, if any: a
// blob the chain did not adopt is given back (blob.h invariant 1). It
// returns the id of one it adopted (0: none), and clears o's length so
// that a second call does nothing.
func (e *Engine) settleBlob(o *chainBpfdbOp) uint64 {
	set := o.Kind == uint8(OpSet) || o.Kind == uint8(chainBpfdbOpKindBPFDB_OP_LOAD)
	if !set || !isBlob(o.ValLen) {
		return 0
	}
	h := headerAt(o.Value[:])
	o.ValLen = 0
	if h.Adopted == 0 {
		e.blobFree(h)
		e.blobLog.drop(h.ID)
		return 0
	}
	return h.ID
}

// errBlobMoved: a value a read-only transaction read was freed before it
// was copied, its snapshot having ended in the same run; Exec runs it again.
var errBlobMoved = fmt.Errorf("%w: a value read was replaced before it was copied", ErrConflict)

// getValue returns the value and deadline a GET answered in o, copying a
// blob's pages; locked reads it under a lock or at a registered snapshot,
// where no version it can see is freed. A lock-free read of a blob that
// was freed under the copy (blob.h invariant 2) returns false: run it
// again.
func (e *Engine) getValue(o *chainBpfdbOp, locked bool) ([]byte, int64, bool) {
	if !isBlob(o.ValLen) {
		v, d := o.value()
		return v, d, true
	}
	h := *headerAt(o.Value[:])
	b, ok := e.blobRead(&h)
	if !ok || h.Len != o.ValLen {
		return nil, 0, false
	}
	if !locked && !e.versionStill(&o.Key, o.Ts, h.Page, o.ValLen) {
		return nil, 0, false
	}
	n, d := splitStored(b, o.ValLen)
	return b[:n:n], d, true
}

// storedAt returns the stored bytes (a deadline included) of the value of
// length valLen (not a tombstone) at ref: a slot's, aliasing the store, or
// a copy of a blob's. nil when they cannot be read (a torn record copy).
// Only a reader whose version cannot be freed meanwhile (a registered
// snapshot's) gets them whole.
func (e *Engine) storedAt(ref, valLen uint32) []byte {
	if !isBlob(valLen) {
		return e.storedValue(ref, int(valLen&lenMask))
	}
	h, ok := e.headAt(ref)
	if !ok || h.Page != ref || h.Len != valLen {
		return nil
	}
	b, ok := e.blobRead(&h)
	if !ok {
		return nil
	}
	return b
}

// deadlineAt returns the deadline of the value of length valLen at ref
// (0: none, or unreadable); lock-free, so perhaps stale.
func (e *Engine) deadlineAt(ref, valLen uint32) int64 {
	if valLen == tombstone || valLen&lenExpires == 0 {
		return 0
	}
	if isBlob(valLen) {
		h, _ := e.headAt(ref)
		return int64(h.Deadline)
	}
	b := e.storedValue(ref, int(valLen&lenMask))
	if b == nil {
		return 0
	}
	_, d := splitStored(b, valLen)
	return d
}
