package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Txn is an interactive transaction: strict two-phase locking with no-wait
// for read-write transactions, a snapshot at Begin for read-only ones.
// Every call runs the chain once; Begin costs no run of its own (it rides on
// the first operation). A Txn is safe for concurrent use, but its calls
// are serialized.
//
// Once an operation fails with anything but ErrNotFound the transaction is
// aborted, its locks released, and later calls return ErrTxnDone.
type Txn struct {
	e        *Engine
	mu       sync.Mutex
	slot     uint32
	gen      uint32
	readOnly bool
	begun    bool  // the kernel has seen BEGIN
	ended    error // nil while open; why it ended otherwise
	// writes are its SETs and DELs, told to the expirer when it commits
	// (noteWrites).
	writes []Op
	// blobIDs are the blobs of its writes the chain adopted (blob.go).
	blobIDs  []uint64
	lastUsed atomic.Int64
	// begunFlag mirrors begun for the checkpoint, which counts open writers
	// without taking t.mu.
	begunFlag atomic.Bool
	// snapTS is a read-only transaction's snapshot timestamp.
	snapTS uint64
	// noWait: a checkpoint's gate refuses its BEGIN with ErrQuiesced at
	// once (TryBegin) instead of being waited for.
	noWait bool
	// commitLSN is its commit's LSN once it committed (0: it wrote
	// nothing), for Commit and CommitWith to wait for after the run: do
	// does not wait for the disk.
	commitLSN uint64
}

// Begin starts a read-write transaction.
func (e *Engine) Begin() (*Txn, error) { return e.begin(false) }

// TryBegin starts a read-write transaction for a caller that must not
// wait, such as an event loop: where Begin's first run waits for a
// checkpoint's closed gate (up to about 12 ms, then ErrQuiesced), it
// fails with ErrQuiesced at once, nothing done.
func (e *Engine) TryBegin() (*Txn, error) {
	t, err := e.begin(false)
	if err == nil {
		t.noWait = true
	}
	return t, err
}

// BeginReadOnly starts a read-only transaction that reads the snapshot of
// the moment it begins, takes no locks and never conflicts. Unlike Begin it
// runs the chain at once, to take that snapshot.
func (e *Engine) BeginReadOnly() (*Txn, error) {
	t, err := e.begin(true)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.do(nil, 0); err != nil {
		t.abortIfOpen()
		return nil, err
	}
	return t, nil
}

func (e *Engine) begin(readOnly bool) (*Txn, error) {
	var slot uint32
	select {
	case slot = <-e.txnSlots:
	default:
		return nil, fmt.Errorf("%w: %d transactions are open (BPFDB_MAX_TXNS)", ErrTxnTableFull, MaxTxns)
	}
	e.txnGen[slot]++
	t := &Txn{e: e, slot: slot, gen: e.txnGen[slot], readOnly: readOnly}
	t.lastUsed.Store(time.Now().UnixNano())
	e.txns[slot].Store(t)
	return t, nil
}

// Get returns key's value (of database 0: Run with Op.DB for another) as this
// transaction sees it, or ErrNotFound; ErrWrongType when it is not a
// string.
func (t *Txn) Get(key []byte) ([]byte, error) {
	ops := [1]Op{{Kind: OpGet, Key: key}}
	if err := t.single(ops[:]); err != nil {
		return nil, err
	}
	return ops[0].stringValue()
}

// Set buffers a write of value under key (of database 0); it becomes visible
// at Commit.
func (t *Txn) Set(key, value []byte) error {
	return t.single([]Op{{Kind: OpSet, Key: key, Value: value}})
}

// Delete buffers a deletion of key (of database 0); ErrNotFound if it has no
// value.
func (t *Txn) Delete(key []byte) error {
	ops := [1]Op{{Kind: OpDelete, Key: key}}
	if err := t.single(ops[:]); err != nil {
		return err
	}
	return ops[0].Err
}

// Run executes ops in t in as few chain runs as it can (one when
// len(ops) <= MaxBatch-2), in order; each op's outcome is in its Err, a
// Get's result in its Value and Version. Like Get, Set and Delete one by
// one, but without a run each. An op failing with anything but ErrNotFound
// aborts t, and Run returns that error.
func (t *Txn) Run(ops []Op) error { return t.runOps(ops, false) }

// CommitWith executes ops in t as Run does and commits, in one chain run
// when len(ops) <= MaxBatch-2. It fails, and applies nothing, if any op
// fails with anything but ErrNotFound. With Sync durability it returns
// once the commit is on disk: it is SubmitWith followed by WaitDurable.
func (t *Txn) CommitWith(ops []Op) error {
	lsn, err := t.SubmitWith(ops)
	if err != nil {
		return err
	}
	return t.e.WaitDurable(lsn)
}

// SubmitWith is CommitWith without the wait for the disk: the commit is
// applied and visible, and lsn is its LSN (0: it wrote nothing), to pass
// to WaitDurable or Durable before acknowledging it. For a caller that
// must not wait, such as an event loop that answers once its round's
// commits are on disk.
func (t *Txn) SubmitWith(ops []Op) (lsn uint64, err error) {
	if err := t.runOps(ops, true); err != nil {
		return 0, err
	}
	return t.commitLSN, nil
}

func (t *Txn) runOps(ops []Op, commit bool) error {
	for i := range ops {
		op := &ops[i]
		if err := t.e.checkOp(op); err != nil {
			return err // a bad argument leaves the transaction as it was
		}
		if op.Kind != OpGet && t.readOnly {
			return ErrReadOnly
		}
		if op.Kind == OpIncr {
			return errIncrInTxn
		}
		if op.Kind != OpGet && op.Kind != OpSet && op.Kind != OpDelete {
			return fmt.Errorf("bpfdb: unknown operation %v", op.Kind)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(ops) > MaxBatch-2 {
		if err := t.do(ops[:MaxBatch-2], 0); err != nil {
			return err
		}
		ops = ops[MaxBatch-2:]
	}
	var end uint8
	if commit {
		end = uint8(chainBpfdbOpKindBPFDB_OP_COMMIT)
	}
	if err := t.do(ops, end); err != nil {
		return err
	}
	for i := range ops {
		if ops[i].Err != nil && !errors.Is(ops[i].Err, ErrNotFound) {
			return ops[i].Err
		}
	}
	return nil
}

func (t *Txn) single(ops []Op) error {
	op := &ops[0]
	if err := t.e.checkOp(op); err != nil {
		return err // a bad argument leaves the transaction as it was
	}
	if op.Kind != OpGet && t.readOnly {
		return ErrReadOnly
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.do(ops, 0); err != nil {
		return err
	}
	if op.Err != nil && !errors.Is(op.Err, ErrNotFound) {
		return op.Err
	}
	return nil
}

// Commit makes the transaction's writes visible atomically, at one commit
// timestamp. It fails, and applies nothing, if the transaction had aborted.
func (t *Txn) Commit() error { return t.CommitWith(nil) }

// Abort discards the transaction's writes and releases its locks. Aborting
// an ended transaction does nothing.
func (t *Txn) Abort() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended != nil {
		return nil
	}
	return t.do(nil, uint8(chainBpfdbOpKindBPFDB_OP_ABORT))
}

// abortIfOpen aborts t after a failure that left it open (the chain could
// not run). t.mu is held.
func (t *Txn) abortIfOpen() {
	if t.ended == nil {
		t.do(nil, uint8(chainBpfdbOpKindBPFDB_OP_ABORT))
	}
}

// finish marks t ended and gives its slot back. t.mu is held.
func (t *Txn) finish(why error) {
	// Its blobs' values are logged, or never will be, once what is
	// committed now is durable.
	t.e.blobLog.done(t.blobIDs)
	t.blobIDs = nil
	t.ended = why
	t.e.txns[t.slot].Store(nil)
	t.e.txnSlots <- t.slot
}

var errEnded = errors.New("ended")

// do runs ops in t, then ends t with end (a COMMIT or ABORT op kind) unless
// end is 0. Per-op outcomes land in ops[i].Err; the error returned is the
// transaction's. t.mu is held.
func (t *Txn) do(ops []Op, end uint8) error {
	if t.ended != nil {
		if errors.Is(t.ended, ErrTxnExpired) {
			return t.ended
		}
		return ErrTxnDone
	}
	t.lastUsed.Store(time.Now().UnixNano())
	// A blob a Get is answered with is copied after the run: no later op
	// of the run may free it, as a write of the same key does (its
	// buffered blob) and a COMMIT does (it releases the lock; a
	// read-only transaction's snapshot is checked instead, readValue).
	if k := readThenWrite(ops); k < len(ops) {
		if err := t.do(ops[:k], 0); err != nil {
			return err
		}
		return t.do(ops[k:], end)
	}
	if end == uint8(chainBpfdbOpKindBPFDB_OP_COMMIT) && !t.readOnly && slices.ContainsFunc(ops, func(op Op) bool { return op.Kind == OpGet }) {
		if err := t.do(ops, 0); err != nil {
			return err
		}
		return t.do(nil, end)
	}
	if !t.begun && len(ops) == 0 && end != 0 {
		// Nothing reached the kernel: there is nothing to commit or undo.
		t.finish(errEnded)
		return nil
	}
	e := t.e
	s, err := e.acquire()
	if err != nil {
		return err
	}
	// The slot is released before Commit waits for the disk: a checkpoint
	// waiting for in-flight runs must not wait for fsyncs too.
	defer e.release(s)

	n := 0
	if !t.begun {
		s.encode(0, uint8(chainBpfdbOpKindBPFDB_OP_BEGIN), 0, nil, nil)
		if t.readOnly {
			s.ops[0].Flags = uint8(chainBpfdbBeginFlagBPFDB_BEGIN_READ_ONLY)
		}
		n++
	}
	first := n
	// Blobs the chain did not adopt, and those of a request that did not
	// run, go back (blob.go); those it did are the transaction's.
	defer func() {
		for j := first; j < n; j++ {
			if id := e.settleBlob(&s.ops[j]); id != 0 {
				t.blobIDs = append(t.blobIDs, id)
			}
		}
	}()
	for i := range ops {
		if ops[i].Kind == OpSet {
			if err := e.encodeSet(s, n, uint8(OpSet), &ops[i], true); err != nil {
				ops[i].Err = err
				return err // nothing ran: the transaction is as it was
			}
		} else {
			s.encode(n, uint8(ops[i].Kind), ops[i].DB, ops[i].Key, ops[i].Value)
		}
		if ops[i].ForUpdate && ops[i].Kind == OpGet {
			s.ops[n].Flags = uint8(chainBpfdbBeginFlagBPFDB_GET_FOR_UPDATE)
		}
		n++
	}
	if end != 0 {
		s.encode(n, end, 0, nil, nil)
		n++
	}
	s.hdr.Mode = uint32(chainBpfdbModeBPFDB_MODE_TXN)
	s.hdr.Nops = uint32(n)
	s.hdr.TxnSlot = t.slot
	s.hdr.TxnGen = t.gen
	for try := 0; ; try++ {
		if err := e.run(s); err != nil {
			return err
		}
		// A checkpoint's gate refused BEGIN: nothing has happened yet, so
		// wait for the gate to open and send the same request again.
		refused := !t.begun && s.hdr.Status == int32(chainBpfdbStatusBPFDB_ERR_QUIESCED)
		if !refused || try >= autocommitRetries || t.noWait {
			break
		}
		backoff(try + 2)
		for j := 0; j < n; j++ {
			s.ops[j].Status = 0
		}
	}
	if !t.begun && t.readOnly {
		t.snapTS = s.hdr.Visible
	}
	t.begun = true
	t.begunFlag.Store(true)

	var failed error
	for i := range ops {
		o := &s.ops[first+i]
		ops[i].Err = e.statusError(o.Status, o.Detail)
		if ops[i].Err == errRetry {
			// A read raced an installer: nothing was applied; the caller
			// retries the transaction as after a conflict.
			ops[i].Err = fmt.Errorf("%w: a read raced a commit being installed", ErrConflict)
		}
		ops[i].Version = 0
		if ops[i].Kind == OpGet {
			ops[i].ExpireAt, ops[i].Type = 0, TypeString
			e.noteExpired(o, ops[i].Key)
		}
		if ops[i].Kind == OpGet && errors.Is(ops[i].Err, ErrNotFound) {
			ops[i].Version = o.Ts // the deletion's
		}
		if ops[i].Err == nil && ops[i].Kind == OpGet {
			// Under a lock or at a registered snapshot a blob read is
			// whole (blob.go); a read-only transaction that ended in
			// this run checks it, and Exec runs again if it moved.
			var ok bool
			locked := !t.readOnly || end == 0
			if ops[i].Value, ops[i].ExpireAt, ok = e.getValue(o, locked); !ok && locked {
				ops[i].Err = fmt.Errorf("%w: key %q: a blob that does not match its head page", ErrInternal, ops[i].Key)
			} else if !ok {
				ops[i].Err = errBlobMoved
			}
			ops[i].Version, ops[i].Type = o.Ts, lenValueType(o.ValLen)
		}
		if failed == nil && ops[i].Err != nil && !errors.Is(ops[i].Err, ErrNotFound) {
			failed = ops[i].Err
		}
	}
	if s.hdr.Status != 0 {
		// The chain aborted the transaction and released its locks.
		err := e.statusError(s.hdr.Status, 0)
		if failed != nil {
			err = failed
		}
		switch {
		case errors.Is(err, errTxnInvalid):
			err = fmt.Errorf("%w: %v", ErrInternal, err)
		case errors.Is(err, errRetry):
			// The commit lost its timestamp race (bpf/txn/clock.h): it
			// aborted with nothing applied, like a conflict; retry it whole.
			err = fmt.Errorf("%w: the commit could not take a timestamp", ErrConflict)
		}
		t.finish(err)
		return err
	}
	if end != 0 {
		t.finish(errEnded)
		e.waitVisible(s.hdr.CommitTs)
		t.commitLSN = s.hdr.CommitTs // waited for after the slot is released
	}
	t.noteWrites(ops, end == uint8(chainBpfdbOpKindBPFDB_OP_COMMIT), s.hdr.CommitTs)
	return nil
}

// background runs the reaper and the vacuum until Close.
func (e *Engine) background() {
	defer close(e.reaperDone)
	never := make(<-chan time.Time)
	reap, vacuum := never, never
	if e.opts.TxnTimeout > 0 {
		t := time.NewTicker(max(e.opts.TxnTimeout/4, time.Millisecond))
		defer t.Stop()
		reap = t.C
	}
	if e.opts.VacuumInterval > 0 {
		t := time.NewTicker(e.opts.VacuumInterval)
		defer t.Stop()
		vacuum = t.C
	}
	checkpoint := never
	if e.log != nil && (e.opts.CheckpointInterval > 0 || e.opts.CheckpointLogBytes > 0) {
		t := time.NewTicker(checkpointCheck)
		defer t.Stop()
		checkpoint = t.C
	}
	var vacuumedAt uint64
	var vacuumEnd time.Time
	var vacuumTook time.Duration
	lastCheckpoint, loggedAt := time.Now(), uint64(0)
	for {
		select {
		case <-e.stopReaper:
			return
		case <-reap:
			e.reap()
			e.reapKernelTxns()
		case <-vacuum:
			// Vacuum while there are writes, and after a slab was found full
			// (what a finished snapshot pinned can go now).
			// At most a tenth of a core: a pass over a large index (Go's
			// walk) takes long enough to matter.
			clock := atomic.LoadUint64(&e.ctl.Clock)
			full := e.storeFull.Swap(false)
			if (clock != vacuumedAt && time.Since(vacuumEnd) >= 9*vacuumTook) || full {
				vacuumedAt = clock
				start := time.Now()
				e.Vacuum()
				vacuumEnd, vacuumTook = time.Now(), time.Since(start)
			}
		case <-checkpoint:
			logged := e.log.Stats().Bytes.Load()
			byTime := e.opts.CheckpointInterval > 0 && time.Since(lastCheckpoint) >= e.opts.CheckpointInterval
			bySize := e.opts.CheckpointLogBytes > 0 && logged-loggedAt >= uint64(e.opts.CheckpointLogBytes)
			if (byTime || bySize) && logged != loggedAt {
				if _, err := e.Checkpoint(); err == nil {
					lastCheckpoint, loggedAt = time.Now(), logged
				}
			}
		}
	}
}

// checkpointCheck is how often the background loop looks at the checkpoint
// triggers (Options.CheckpointInterval and CheckpointLogBytes).
var checkpointCheck = time.Second

// reap aborts transactions idle for longer than Options.TxnTimeout, so a
// client that vanished does not hold its locks forever.
func (e *Engine) reap() {
	deadline := time.Now().Add(-e.opts.TxnTimeout).UnixNano()
	for i := range e.txns {
		t := e.txns[i].Load()
		if t == nil || t.lastUsed.Load() > deadline || !t.mu.TryLock() {
			continue
		}
		if t.ended == nil && t.lastUsed.Load() <= deadline {
			t.expire()
		}
		t.mu.Unlock()
	}
}

// expire aborts t on behalf of the reaper. t.mu is held.
func (t *Txn) expire() {
	if t.begun {
		t.do(nil, uint8(chainBpfdbOpKindBPFDB_OP_ABORT))
	} else {
		t.finish(nil)
	}
	t.ended = fmt.Errorf("%w: idle for more than %v (Options.TxnTimeout)", ErrTxnExpired, t.e.opts.TxnTimeout)
}
