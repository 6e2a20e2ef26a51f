package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bpfdb/bpfdb/logd"
	"github.com/cilium/ebpf/ringbuf"
)

// Offsets in a WAL ring record (struct bpfdb_wal_write; a COMMIT or ABORT
// record is only its header, struct bpfdb_wal_hdr).
const (
	walHdrSize   = int(unsafe.Sizeof(chainBpfdbWalHdr{}))
	walKeyOffset = int(unsafe.Offsetof(chainBpfdbWalWrite{}.Key))
	walValOffset = int(unsafe.Offsetof(chainBpfdbWalWrite{}.Value))
	tombstone    = ^uint32(0)
)

// ringRecord is one decoded WAL ring record. Key and Value alias the sample.
type ringRecord struct {
	kind   chainBpfdbWalKind
	count  uint32
	txnID  uint64
	lsn    uint64
	db     int
	key    []byte
	value  []byte
	delete bool
	expire int64 // the value's deadline (expiry.go), 0: none
	typ    ValueType
	blobID uint64 // a blob's id (blob.go): its value is in blobLog, not here
	// long: key is the index key's data, of a key of longLen bytes
	// (longkey.go), which the drain looks up.
	long    bool
	longLen uint32
}

var errBadRingRecord = errors.New("bpfdb: malformed WAL ring record")

// decodeRingRecord parses a sample of wal_ring, checking every length
// against the sample and the store's limits.
func decodeRingRecord(b []byte) (ringRecord, error) {
	var r ringRecord
	if len(b) < walHdrSize {
		return r, fmt.Errorf("%w: %d bytes, shorter than a header", errBadRingRecord, len(b))
	}
	r.kind = chainBpfdbWalKind(binary.LittleEndian.Uint32(b[0:]))
	r.count = binary.LittleEndian.Uint32(b[4:])
	r.txnID = binary.LittleEndian.Uint64(b[8:])
	r.lsn = binary.LittleEndian.Uint64(b[16:])
	valLen := binary.LittleEndian.Uint32(b[24:])
	switch r.kind {
	case chainBpfdbWalKindBPFDB_WAL_COMMIT, chainBpfdbWalKindBPFDB_WAL_ABORT:
		return r, nil
	case chainBpfdbWalKindBPFDB_WAL_WRITE, chainBpfdbWalKindBPFDB_WAL_WRITE_COMMIT:
	default:
		return r, fmt.Errorf("%w: kind %d", errBadRingRecord, r.kind)
	}
	if len(b) < walValOffset {
		return r, fmt.Errorf("%w: write of %d bytes, shorter than its key", errBadRingRecord, len(b))
	}
	keyLen := int(binary.LittleEndian.Uint32(b[walKeyOffset:]))
	if keyLen > MaxKeyLenLimit {
		return r, fmt.Errorf("%w: key length %d above %d", errBadRingRecord, keyLen, MaxKeyLenLimit)
	}
	r.db = int(binary.LittleEndian.Uint32(b[walKeyOffset+4:]))
	if r.db >= Databases {
		return r, fmt.Errorf("%w: database %d, the store has %d", errBadRingRecord, r.db, Databases)
	}
	if keyLen > InlineKeyLen {
		r.long, r.longLen, keyLen = true, uint32(keyLen), InlineKeyLen
	}
	r.key = b[walKeyOffset+8 : walKeyOffset+8+keyLen]
	if valLen == tombstone {
		r.delete = true
		return r, nil
	}
	if r.typ = lenValueType(valLen); int(r.typ) >= numTypes {
		return r, fmt.Errorf("%w: value length %#x of type %d", errBadRingRecord, valLen, r.typ)
	}
	if isBlob(valLen) {
		return decodeBlobRecord(r, b, valLen)
	}
	stored := int(valLen & lenMask)
	if valLen&^(lenMask|lenExpires|lenType) != 0 || stored > SlotValueLen || walValOffset+stored > len(b) ||
		(valLen&lenExpires != 0 && stored < deadlineLen) {
		return r, fmt.Errorf("%w: value length %#x in a record of %d bytes", errBadRingRecord, valLen, len(b))
	}
	n, deadline := splitStored(b[walValOffset:walValOffset+stored], valLen)
	r.value, r.expire = b[walValOffset:walValOffset+n], deadline
	return r, nil
}

// decodeBlobRecord finishes decoding r, a write of a blob: b holds its
// header where a value's bytes would be (bpf/include/bpfdb.h).
func decodeBlobRecord(r ringRecord, b []byte, valLen uint32) (ringRecord, error) {
	if valLen&^(lenMask|lenExpires|lenType) != 0 || int(valLen&lenMask) > MaxValueLenLimit+deadlineLen || walValOffset+blobHead > len(b) {
		return r, fmt.Errorf("%w: blob length %#x in a record of %d bytes", errBadRingRecord, valLen, len(b))
	}
	var h blobHeader
	h.ID = binary.LittleEndian.Uint64(b[walValOffset+int(unsafe.Offsetof(h.ID)):])
	h.Len = binary.LittleEndian.Uint32(b[walValOffset+int(unsafe.Offsetof(h.Len)):])
	if h.Len != valLen || h.ID == 0 {
		return r, fmt.Errorf("%w: blob header of length %#x, id %d in a write of length %#x", errBadRingRecord, h.Len, h.ID, valLen)
	}
	r.blobID = h.ID
	return r, nil
}

// logDrain turns WAL ring records into logged transactions, encoded
// straight into the log's pending batch (logd.Writer): a WRITE_COMMIT
// record (an autocommit write) is encoded from the ring sample itself;
// WRITE records are copied and wait, by transaction id, for their COMMIT
// (or ABORT) record. It is used under Engine.drainMu, by drainLog's
// goroutine and by SyncLog's callers.
type logDrain struct {
	rd      *ringbuf.Reader
	rec     ringbuf.Record
	w       *logd.Writer
	pending map[uint64]*pendingTxn
	blobs   *blobLog       // the values of blobs, which the records name by id
	keys    *longKeys      // the long keys, which the records name by index key
	commits *commitFns     // told of every committed write (Engine.OnCommit)
	durable func() uint64  // the durable LSN, for blobs.sweep
	clock   func() uint64  // the store's last commit timestamp, for blobs.sweep
	records *atomic.Uint64 // read from the ring (Stats.LogRecords)
	bad     *atomic.Uint64 // malformed or inconsistent records, never expected (Stats.LogBadRecords)
	handled uint64
	flushed bool // the reader said it is closed or flushed: drainLog stops
	closed  bool // drainLog stopped and closed w
	// closing: Close flushed the ring; read it to the end even while
	// writing fails, so that the drain reaches the flush and stops.
	closing  *atomic.Bool
	closeErr error // w.Close's: what could not be made durable by Close's deadline
}

// commitRing reads the ring until it is empty and commits what it read
// with one attempt (logd.Writer.TryCommit), reporting whether it wrote a
// batch and the write's failure, if any: the batch then stays pending.
// While writing fails (a failing disk) it reads nothing more, so the ring
// fills and the chain refuses commits (ErrLogFull) rather than the batch
// growing without bound; the engine refuses them sooner (logfault.go).
func (d *logDrain) commitRing() (wrote bool, err error) {
	d.rd.SetDeadline(time.Now()) // read what is there; do not block in epoll
	for !d.flushed && (!d.w.Failing() || d.closing.Load()) {
		err := d.rd.ReadInto(&d.rec)
		if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, ringbuf.ErrFlushed) {
			d.flushed = true
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break // the ring is empty
		}
		if err != nil {
			d.bad.Add(1)
			continue
		}
		r, err := decodeRingRecord(d.rec.RawSample)
		if err != nil {
			d.bad.Add(1)
			continue
		}
		d.handle(&r)
		d.records.Add(1)
	}
	d.blobs.sweep(d.durable(), d.clock())
	if d.w.Pending() == 0 {
		return false, nil
	}
	return true, d.w.TryCommit()
}

// pendingTxn is the writes of a transaction whose COMMIT has not come yet.
type pendingTxn struct {
	writes []logd.Write
	since  time.Time
}

// orphanAge is when the writes of a transaction whose COMMIT and ABORT both
// failed to fit in the ring are dropped: no commit stays in flight that long.
const orphanAge = 30 * time.Second

// write copies r's key and value (one allocation) out of the ring sample;
// a blob's value is not in the sample, and is not copied.
func write(r *ringRecord) logd.Write {
	if r.blobID != 0 {
		return logd.Write{DB: r.db, Key: bytes.Clone(r.key), Value: r.value, ExpireAt: r.expire, Type: uint8(r.typ)}
	}
	buf := make([]byte, len(r.key)+len(r.value))
	n := copy(buf, r.key)
	copy(buf[n:], r.value)
	w := logd.Write{DB: r.db, Key: buf[:n:n], Delete: r.delete, ExpireAt: r.expire, Type: uint8(r.typ)}
	if !r.delete {
		w.Value = buf[n:]
	}
	return w
}

// blobValue puts the value of blob write r, kept in blobLog, into it:
// false (a bad record, never expected) when blobLog does not have it.
func (d *logDrain) blobValue(r *ringRecord) bool {
	if r.blobID == 0 {
		return true
	}
	v, ok := d.blobs.take(r.blobID)
	if !ok {
		d.bad.Add(1)
		return false
	}
	r.value, r.expire = v.value, v.deadline
	return true
}

// longKey puts the whole key of r, a write of a long key, into it: false
// when the engine does not hold it. For an autocommit write that is a bad
// record, never expected (longkey.go, invariant 2). A transaction's WRITE
// may be of one whose commit failed and the key forgotten since; its
// transaction, if it did commit, shows as bad at its COMMIT, whose count
// of writes it misses.
func (d *logDrain) longKey(r *ringRecord) bool {
	if !r.long {
		return true
	}
	var k chainBpfdbKey
	k.Len, k.Db = r.longLen, uint32(r.db)
	copy(k.Data[:], r.key)
	key, ok := d.keys.key(&k)
	if !ok {
		if r.kind == chainBpfdbWalKindBPFDB_WAL_WRITE_COMMIT {
			d.bad.Add(1)
		}
		return false
	}
	r.key, r.long = key, false
	return true
}

func (d *logDrain) handle(r *ringRecord) {
	if !d.blobValue(r) || !d.longKey(r) {
		return
	}
	if d.handled++; d.handled%4096 == 0 {
		for id, p := range d.pending {
			if time.Since(p.since) > orphanAge {
				delete(d.pending, id)
			}
		}
	}
	switch r.kind {
	case chainBpfdbWalKindBPFDB_WAL_WRITE:
		p := d.pending[r.txnID]
		if p == nil {
			p = &pendingTxn{since: time.Now()}
			d.pending[r.txnID] = p
		}
		p.writes = append(p.writes, write(r))
	case chainBpfdbWalKindBPFDB_WAL_WRITE_COMMIT:
		// Encoded (copied) now, before the sample is reused.
		w := logd.Write{DB: r.db, Key: r.key, Delete: r.delete, ExpireAt: r.expire, Type: uint8(r.typ)}
		if !r.delete {
			w.Value = r.value
		}
		d.w.AddWrite(r.lsn, r.txnID, w)
		d.commits.call(r.key)
	case chainBpfdbWalKindBPFDB_WAL_COMMIT:
		var writes []logd.Write
		if p := d.pending[r.txnID]; p != nil {
			writes = p.writes
		}
		delete(d.pending, r.txnID)
		if uint32(len(writes)) != r.count {
			// Cannot happen: a commit's writes precede it in the ring.
			d.bad.Add(1)
		}
		d.w.Add(&logd.Txn{LSN: r.lsn, ID: r.txnID, Writes: writes})
		for i := range writes {
			d.commits.call(writes[i].Key)
		}
	case chainBpfdbWalKindBPFDB_WAL_ABORT:
		delete(d.pending, r.txnID)
	}
}

// drainLog reads wal_ring and writes the log itself, the ring being the
// queue of group commit: it reads until the ring is empty, commits the
// batch (waiting for its fsync with Sync durability) and reads again what
// arrived meanwhile (with Async, only once asyncBatchBytes did; else at
// the next poll). It stops once the reader is flushed (Close flushes it
// once no run is in flight, so everything committed has been read), after
// writing and syncing what it read, retrying until Close's deadline. A
// failed write (a failing disk) is retried with backoff, with drainMu
// released meanwhile so that SyncLog never waits behind a sleep. After
// every attempt it brings the kernel's refusal of commits up to date
// (refreshLogGate).
//
// The chain submits records without waking the reader (BPF_RB_NO_WAKEUP,
// bpf/wal/wal.h), so the ring's poll never fires by itself: the engine
// pokes logKick after every run that logged (kickLog), and drainLog reads
// until the ring is empty, then waits for the next poke, or drainPoll at
// most (a safety net: a poke is never lost, as logKick holds one), or
// less when an async sync is due sooner.
func (e *Engine) drainLog() {
	defer close(e.drainDone)
	d := e.drain
	poll := time.NewTimer(drainPoll)
	defer poll.Stop()
	var backoff time.Duration
	for {
		e.drainMu.Lock()
		wrote, err := d.commitRing()
		if err == nil {
			// NoSync: fsync what is due, even while commits keep coming.
			// Only NoSync leaves anything unsynced, and SyncLog does not
			// take drainMu then.
			if due, ok := d.w.SyncDue(); ok && due == 0 {
				err = d.w.TrySync()
			}
		}
		if d.flushed { // everything committed has been read
			d.closeErr = d.w.Close(time.Unix(0, e.closeDeadline.Load()))
			d.closed = true
		}
		closed := d.closed
		e.drainMu.Unlock()
		e.refreshLogGate()
		if closed {
			return
		}
		if err != nil {
			backoff = min(max(2*backoff, time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if wrote && (e.opts.Durability == Sync || e.ring.AvailableBytes() >= min(asyncBatchBytes, e.opts.LogRingBytes/4)) {
			continue // read what arrived during the write
		}
		wait := drainPoll
		e.drainMu.Lock()
		if due, ok := d.w.SyncDue(); ok {
			wait = min(wait, due)
		}
		e.drainMu.Unlock()
		poll.Reset(wait)
		select {
		case <-e.logKick:
			poll.Stop()
		case <-poll.C:
		}
	}
}

// SyncLog writes the commits the log ring holds and, with Sync
// durability, returns once they are on disk. A caller about to wait for
// its own commits' durability (the server's event loop) calls it rather
// than leave them to the log's goroutine, which would first finish its
// own poll: one fsync per round, as Redis's appendfsync always does.
//
// SyncLog never waits longer than syncLogWait, whatever the disk does:
// the write runs on the engine's sync goroutine, and a caller whose write
// outlasts the wait (a slow or hung disk) gets nil and learns of its
// commits through Durable and OnDurableChange, as when a write is already
// under way (SyncLog then starts none). While the log is failing it makes
// no attempt (the log's goroutine retries with backoff) and returns the
// failure, as Durable and WaitDurable report it too. Without a data
// directory or with Async durability it does nothing.
func (e *Engine) SyncLog() error {
	if e.drain == nil || e.opts.Durability != Sync {
		return nil
	}
	if e.closingLog.Load() {
		return ErrClosed
	}
	if !e.syncBusy.CompareAndSwap(false, true) {
		return nil
	}
	done := make(chan error, 1)
	e.syncReq <- done
	timer := time.NewTimer(syncLogWait)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return nil
	}
}

// syncLogWait is the longest SyncLog waits for its write: far above an
// fsync on a healthy disk, far below what a client would notice.
const syncLogWait = 50 * time.Millisecond

// syncLogs runs SyncLog's writes, one at a time, until stop is closed. A
// write stuck on a hung disk keeps it (and nothing else) waiting.
func (e *Engine) syncLogs(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case done := <-e.syncReq:
			err := e.syncLogNow()
			e.syncBusy.Store(false)
			done <- err
		}
	}
}

// syncLogNow is one write of what the ring holds, after the log's
// goroutine finishes the write it may be doing.
func (e *Engine) syncLogNow() error {
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	if e.drain.closed {
		return ErrClosed
	}
	if e.drain.w.Failing() {
		return e.log.Health()
	}
	_, err := e.drain.commitRing()
	e.refreshLogGate()
	return err
}

// drainPoll is the longest drainLog sleeps without a poke.
const drainPoll = time.Millisecond

// asyncBatchBytes is how much the ring must hold (or a quarter of a
// smaller ring), with Async durability, for drainLog to read again at
// once after a write rather than at its next poll (drainPoll). Nobody
// waits for an async commit's write, and reading again at once wrote
// whatever few commits arrived during the last write: a batch per poll
// cost 6% less server CPU per SET and gave 5% more SETs per second
// (redis-benchmark -t set -P 16, 3 interleaved runs). Sync keeps reading
// at once: committers wait for that fsync.
const asyncBatchBytes = 256 << 10

// kickLog wakes drainLog after a run that logged commit records.
func (e *Engine) kickLog() {
	select {
	case e.logKick <- struct{}{}:
	default: // a poke is already pending
	}
}

// commitFns is the functions OnCommit registered, replaced whole (copy on
// write) so the drain reads them without a lock.
type commitFns struct {
	mu  sync.Mutex
	fns atomic.Pointer[[]*func(key []byte)]
}

// call tells every function of key, a committed write's.
func (c *commitFns) call(key []byte) {
	if fns := c.fns.Load(); fns != nil {
		for _, fn := range *fns {
			(*fn)(key)
		}
	}
}

// OnCommit registers fn to be called with the key of every committed
// write, whoever wrote it (this engine's callers, BPF programs through
// the kernel API, the expirer), as the log drain reads it from the ring:
// soon after the commit, in commit order for each key, before a Sync
// write's caller is answered. fn runs on the drain's goroutine: it must be
// quick, and copy key if it keeps it. Without a log (Options.Dir) the
// store streams no commits: OnCommit reports false and registers nothing.
func (e *Engine) OnCommit(fn func(key []byte)) (remove func(), ok bool) {
	if e.drain == nil {
		return func() {}, false
	}
	c := &e.commitFns
	c.mu.Lock()
	defer c.mu.Unlock()
	var fns []*func(key []byte)
	if old := c.fns.Load(); old != nil {
		fns = append(fns, *old...)
	}
	fns = append(fns, &fn)
	c.fns.Store(&fns)
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		keep := slices.DeleteFunc(slices.Clone(*c.fns.Load()), func(f *func(key []byte)) bool { return f == &fn })
		c.fns.Store(&keep)
	}, true
}
