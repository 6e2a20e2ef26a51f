package engine

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// OpKind says what an Op does.
type OpKind uint8

// Operation kinds.
const (
	OpGet    = OpKind(chainBpfdbOpKindBPFDB_OP_GET)
	OpSet    = OpKind(chainBpfdbOpKindBPFDB_OP_SET)
	OpDelete = OpKind(chainBpfdbOpKindBPFDB_OP_DEL)
	// OpIncr adds Delta to the key's value read as a decimal int64 (an
	// absent key is 0) and leaves the sum's digits in Value. Autocommit
	// only (Batch, Submit): it is one transaction of one chain run, so its
	// lock is never held across a round trip to user space.
	OpIncr = OpKind(chainBpfdbOpKindBPFDB_OP_INCR)
)

func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "GET"
	case OpSet:
		return "SET"
	case OpDelete:
		return "DEL"
	case OpIncr:
		return "INCR"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// ValueType is what a value's bytes are (bpf/include/bpfdb.h, enum
// bpfdb_value_type). The store keeps every type as it keeps a string, one
// value per version; the type is kept with it (logged, checkpointed,
// recovered), and says how its user reads the bytes.
type ValueType uint8

// Value types.
const (
	// TypeString: the value is the bytes (the zero Type).
	TypeString = ValueType(chainBpfdbValueTypeBPFDB_TYPE_STRING)
	// TypeHash: the value is a hash's fields and values, in the server's
	// encoding (server/hash.go).
	TypeHash = ValueType(chainBpfdbValueTypeBPFDB_TYPE_HASH)
	// numTypes is how many types there are.
	numTypes = int(chainBpfdbValueTypeBPFDB_TYPES)
)

// String is the type's name, as Redis's TYPE answers it.
func (t ValueType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeHash:
		return "hash"
	}
	return fmt.Sprintf("ValueType(%d)", uint8(t))
}

// Op is one operation of a Batch or an Exec. Value is the input of a Set and
// the result of a Get; Err is the operation's outcome (ErrNotFound for a
// Get or Delete of an absent key).
type Op struct {
	Kind OpKind
	// Type is, for an OpSet, the type of Value; after an OpGet, the type
	// of the value read. An OpIncr of a value that is not a string fails
	// with ErrWrongType.
	Type  ValueType
	Key   []byte
	Value []byte
	Err   error
	// Version is, after a Get, the commit timestamp (LSN) of the version
	// read: of the value, or for a key found absent of its deletion (once
	// the key's record is given back, a bound the deletions of other keys
	// share; 0 if none is kept, and for the Get of its own transaction's
	// uncommitted write). A key written or deleted since has another
	// Version. After an autocommit Set or Delete it is the LSN of its
	// commit; after an autocommit Delete that found no value (ErrNotFound),
	// the newest commit there was when it ran, at or after the deletion it
	// found.
	Version uint64
	// Delta is what an OpIncr adds.
	Delta int64
	// DB is the database (keyspace) of Key, 0 to Databases-1: the same
	// bytes in two databases are two keys.
	DB int
	// ExpireAt is a deadline, the Unix time in milliseconds on the store's
	// clock (Engine.Now): for an OpSet, when the value it writes expires
	// (0: never); after
	// an OpGet, the value's. Past its deadline a value reads as absent, and
	// the engine deletes it (a logged deletion). An OpIncr keeps the
	// deadline of the value it adds to.
	ExpireAt int64
	// onlyExpired makes an OpDelete delete only a value that has expired
	// (the expirer's).
	onlyExpired bool
	// ForUpdate makes a Get in a read-write transaction take the key's
	// exclusive lock rather than a shared one: for a key the transaction
	// will write, so that two read-modify-writes of it conflict once, at
	// the read, instead of both failing to upgrade. Ignored elsewhere.
	ForUpdate bool
}

// An autocommit op that raced an installer, met a lock held by another
// transaction, found every version of its key still readable (a snapshot
// being registered reclaims nothing for a moment), found the log ring full,
// or met the checkpoint gate, is re-run up to autocommitRetries times with a backoff that
// doubles from nothing to maxBackoff: a one-key autocommit write has nothing
// to roll back, so a brief wait is better than surfacing a no-wait conflict.
// A lock held longer (an open interactive transaction) still ends in
// ErrConflict, after about 10ms.
const (
	autocommitRetries = 16
	maxBackoff        = 2 * time.Millisecond
)

func backoff(try int) {
	if try < 2 {
		runtime.Gosched()
		return
	}
	time.Sleep(min(time.Microsecond<<(try-2), maxBackoff))
}

// encode writes op j of slot s, and returns it. The long key of an op
// that may write is held (longkey.go, invariant 2) until s is released;
// a GET makes no version and logs nothing.
func (s *reqSlot) encode(j int, kind uint8, db int, key, value []byte) *chainBpfdbOp {
	o := &s.ops[j]
	o.Kind = kind
	o.Flags, o.Detail, o.Status = 0, 0, 0
	indexKey(&o.Key, db, key)
	if o.Key.isLong() && kind != uint8(OpGet) {
		s.long = append(s.long, s.longKeys.hold(&o.Key, key))
	}
	o.ValLen = uint32(len(value))
	copy(o.Value[:], value)
	return o
}

// value copies a GET's answer out of the request area, with its deadline.
func (o *chainBpfdbOp) value() ([]byte, int64) {
	n, deadline := splitStored(o.Value[:], o.ValLen)
	v := make([]byte, n)
	copy(v, o.Value[:n])
	return v, deadline
}

// checkOp refuses an op whose key, value or deadline the store cannot hold.
func (e *Engine) checkOp(op *Op) error {
	if op.Kind == OpGet && len(op.Key) <= e.opts.MaxKeyLen && uint(op.DB) < uint(Databases) {
		return nil // the common case, without the calls below
	}
	if err := e.checkKeyValue(op.Key, op.Value, op.Kind == OpSet); err != nil {
		return err
	}
	if op.DB < 0 || op.DB >= Databases {
		return fmt.Errorf("%w: database %d: the store has %d (Databases), 0 to %d", ErrNoSuchDB, op.DB, Databases, Databases-1)
	}
	if op.Kind == OpSet && int(op.Type) >= numTypes {
		return fmt.Errorf("bpfdb: %v of key %q is not a value type: there are %d", op.Type, op.Key, numTypes)
	}
	if op.Kind == OpSet {
		return checkDeadline(op)
	}
	return nil
}

// Get returns the value of key (of database 0: Exec with Op.DB for
// another), or ErrNotFound; ErrWrongType when it is not a string (Op.Type:
// an OpGet reads any).
func (e *Engine) Get(key []byte) ([]byte, error) {
	ops := [1]Op{{Kind: OpGet, Key: key}}
	if err := e.Batch(ops[:]); err != nil {
		return nil, err
	}
	return ops[0].stringValue()
}

// stringValue is what a Get op read, if a string: the Engine.Get family
// reads strings only.
func (op *Op) stringValue() ([]byte, error) {
	if op.Err == nil && op.Type != TypeString {
		return nil, fmt.Errorf("%w: key %q holds a %v", ErrWrongType, op.Key, op.Type)
	}
	return op.Value, op.Err
}

// Set stores value under key (of database 0) as one transaction. It fails with ErrConflict
// when another transaction holds key's lock for longer than a brief retry.
func (e *Engine) Set(key, value []byte) error {
	ops := [1]Op{{Kind: OpSet, Key: key, Value: value}}
	if err := e.Batch(ops[:]); err != nil {
		return err
	}
	return ops[0].Err
}

// errIncrInTxn refuses OpIncr in a transaction, which reads with Get
// (ForUpdate) and writes with Set instead.
var errIncrInTxn = errors.New("bpfdb: INCR is autocommit only (Batch, Submit); in a transaction, Get ForUpdate and Set")

// Incr adds delta to key's value read as a decimal int64 (an absent key
// is 0) as one transaction and returns the sum: ErrNotInteger, with
// nothing applied, for a value that is not one, ErrOverflow for a sum out
// of range.
func (e *Engine) Incr(key []byte, delta int64) (int64, error) {
	ops := [1]Op{{Kind: OpIncr, Key: key, Delta: delta}}
	if err := e.Batch(ops[:]); err != nil {
		return 0, err
	}
	if ops[0].Err != nil {
		return 0, ops[0].Err
	}
	return strconv.ParseInt(string(ops[0].Value), 10, 64)
}

// Delete removes key (of database 0) as one transaction; ErrNotFound if it had no value.
func (e *Engine) Delete(key []byte) error {
	ops := [1]Op{{Kind: OpDelete, Key: key}}
	if err := e.Batch(ops[:]); err != nil {
		return err
	}
	return ops[0].Err
}

// Batch runs independent autocommit operations, MaxBatch per chain run: each
// is its own transaction, executed in order, with its outcome in its Err.
// Batch itself fails only when the chain cannot run. The values of the Gets
// of one run share one allocation. With Sync durability it returns once
// every write is on disk: it is Submit followed by WaitDurable.
func (e *Engine) Batch(ops []Op) error {
	lsn, err := e.Submit(ops)
	if err != nil {
		return err
	}
	return e.WaitDurable(lsn)
}

// Submit runs ops like Batch but returns without waiting for the disk: the
// writes are applied and visible, and lsn is the last commit among them
// (0 if none), to pass to WaitDurable before acknowledging them. A server
// uses it to let one goroutine run the batches of many clients while each
// client waits for its own commits (group commit).
func (e *Engine) Submit(ops []Op) (lsn uint64, err error) {
	return e.submit(ops, autocommitRetries)
}

// TrySubmit is Submit without the backoff: a refused op (ErrConflict, or
// ErrVersionsFull, ErrLogFull, ErrQuiesced) is re-run once, at once, and
// then fails; the ops after it in its run are not run and fail
// with ErrConflict. So the ops that failed with one of those errors are a
// suffix of each MaxBatch chunk, and the caller may back off and submit
// them again. For a caller that runs other callers' ops in the same run
// (a server's batcher) and must not sleep while they wait.
func (e *Engine) TrySubmit(ops []Op) (lsn uint64, err error) {
	return e.submit(ops, 1)
}

func (e *Engine) submit(ops []Op, retries int) (lsn uint64, err error) {
	for len(ops) > 0 {
		n := min(len(ops), MaxBatch)
		for chunk := ops[:n]; len(chunk) > 0; {
			k := readThenWrite(chunk)
			last, err := e.runAuto(chunk[:k], retries)
			lsn = max(lsn, last)
			if err != nil {
				return lsn, err
			}
			if refusedIn(chunk[:k]) {
				// Nothing after a refused op runs: its failures stay a
				// suffix of the chunk, as in one run.
				for i := k; i < len(chunk); i++ {
					chunk[i].Err = fmt.Errorf("%w: not run, after a refused op", ErrConflict)
				}
				break
			}
			chunk = chunk[k:]
		}
		ops = ops[n:]
	}
	return lsn, nil
}

// readThenWrite returns how many of ops may share a chain run: up to the
// first write of a key an earlier Get of ops reads. Such a write runs
// after the Get's run has returned, so that it cannot free the blob the
// Get is answered with before the engine copied it (blob.go).
func readThenWrite(ops []Op) int {
	first := 0 // the first Get: writes before it cannot follow one
	for first < len(ops) && ops[first].Kind != OpGet {
		first++
	}
	last := len(ops) - 1 // the last write: Gets after it are not followed by one
	for last > first && ops[last].Kind == OpGet {
		last--
	}
	if last <= first {
		return len(ops) // no write follows a Get: the common runs (all Gets, all writes, one op)
	}
	var gets [MaxBatch]int
	n := 0
	for i := first; i <= last; i++ {
		if ops[i].Kind == OpGet {
			gets[n] = i
			n++
			continue
		}
		for _, j := range gets[:n] {
			if ops[j].DB == ops[i].DB && bytes.Equal(ops[j].Key, ops[i].Key) {
				return i
			}
		}
	}
	return len(ops)
}

// refusedIn reports whether an op of ops was refused for a reason that
// passes (Retryable). By index: an Op is too large to copy per element.
func refusedIn(ops []Op) bool {
	for i := range ops {
		if ops[i].Err != nil && Retryable(ops[i].Err) {
			return true
		}
	}
	return false
}

// WaitDurable returns once the commit at lsn (and every commit before it)
// is on disk, at once with Async durability, without a data directory or
// for lsn 0. ErrNotDurable if the log cannot be written.
func (e *Engine) WaitDurable(lsn uint64) error { return e.waitDurable(lsn) }

// LastCommit is the LSN of the newest commit made so far: a read that
// ended before the call saw no later one. Waiting for it to be durable
// (WaitDurable) makes durable whatever such a read may show.
func (e *Engine) LastCommit() uint64 { return atomic.LoadUint64(&e.ctl.Clock) }

// Durable is WaitDurable without the wait: done once the commit at lsn is
// on disk (or needs not be), or with the error WaitDurable would return.
// Pair it with OnDurableChange to learn when to ask again.
func (e *Engine) Durable(lsn uint64) (done bool, err error) {
	if lsn == 0 || e.log == nil || e.opts.Durability != Sync {
		return true, nil
	}
	done, err = e.log.Durable(lsn)
	if err != nil {
		return true, fmt.Errorf("%w (LSN %d): %v", ErrNotDurable, lsn, err)
	}
	return done, nil
}

// OnDurableChange adds fn to the functions called when the durable LSN
// advances or a log write fails, and returns the function that removes it.
// fn runs on the goroutine that wrote the log (the log's own, or a caller
// of SyncLog) and must not block nor take a lock a SyncLog caller may
// hold; without a log (no data directory) it is never called.
func (e *Engine) OnDurableChange(fn func()) (remove func()) {
	if e.log == nil {
		return func() {}
	}
	e.durableMu.Lock()
	defer e.durableMu.Unlock()
	var fns []*func()
	if old := e.durableFns.Load(); old != nil {
		fns = append(fns, *old...)
	}
	fns = append(fns, &fn)
	e.durableFns.Store(&fns)
	e.log.OnChange(e.durableChanged)
	return func() {
		e.durableMu.Lock()
		defer e.durableMu.Unlock()
		old := *e.durableFns.Load()
		keep := make([]*func(), 0, len(old))
		for _, f := range old {
			if f != &fn {
				keep = append(keep, f)
			}
		}
		e.durableFns.Store(&keep)
	}
}

// durableChanged calls the OnDurableChange functions.
func (e *Engine) durableChanged() {
	if fns := e.durableFns.Load(); fns != nil {
		for _, fn := range *fns {
			(*fn)()
		}
	}
}

func (e *Engine) runAuto(ops []Op, retries int) (uint64, error) {
	var lsn uint64
	all := ops
	for {
		s, err := e.acquire()
		if err != nil {
			return lsn, err
		}
		last, err := e.runAutoIn(s, ops, retries)
		e.release(s)
		lsn = max(lsn, last)
		if err != nil {
			return lsn, err
		}
		// A checkpoint's gate may stay closed longer than the retries last
		// (up to drainWait while open transactions finish). Wait for it to
		// open with the slot and run lock released (a checkpoint waits for
		// runs in flight), then run again the ops it refused: a suffix,
		// since nothing runs after a refused op (runAutoIn).
		i := slices.IndexFunc(ops, func(op Op) bool { return Retryable(op.Err) })
		if i < 0 || !errors.Is(ops[i].Err, ErrQuiesced) || retries < autocommitRetries || !e.waitGateOpen() {
			break
		}
		ops = ops[i:]
	}
	ops = all
	// A full slab may be full of versions nobody can see any more: collect
	// them now, outside the run lock, so the caller's next try can succeed.
	for i := range ops {
		if errors.Is(ops[i].Err, ErrStoreFull) {
			e.storeFull.Store(true)
			e.Vacuum()
			break
		}
	}
	return lsn, nil
}

// runAutoIn runs ops in slot s, re-running refused ones up to retries
// times, and returns the last commit's LSN.
func (e *Engine) runAutoIn(s *reqSlot, ops []Op, retries int) (uint64, error) {
	var lsn uint64
	var pending [MaxBatch]int // request op index -> ops index
	// held[i]: the blob built for ops[i] and not yet adopted (blob.go),
	// kept for its retries; given back when the op is over.
	var held []blobHeader
	defer func() {
		for i := range held {
			if held[i].ID != 0 {
				e.blobFree(&held[i])
				e.blobLog.drop(held[i].ID)
			}
		}
	}()
	n := 0
	blobs := false // an op needs a blob built (buildBlobs)
	for i := range ops {
		op := &ops[i]
		op.Err = e.checkOp(op)
		if op.Err == nil && op.Kind != OpGet && op.Kind != OpSet && op.Kind != OpDelete && op.Kind != OpIncr {
			op.Err = fmt.Errorf("bpfdb: unknown operation %v", op.Kind)
		}
		if op.Err != nil {
			continue
		}
		if op.Kind == OpGet {
			op.Value, op.Version, op.ExpireAt, op.Type = nil, 0, 0, TypeString
		}
		blobs = blobs || needsBlob(op)
		pending[n] = i
		n++
	}
	for try := 0; n > 0; try++ {
		if try > 0 {
			backoff(try)
		}
		if blobs {
			if held, n = e.buildBlobs(ops, pending[:n], held); n == 0 {
				break
			}
		}
		wrote := false // an op before this one writes (a run of GETs skips wroteEarlier's scan)
		for j := 0; j < n; j++ {
			op := &ops[pending[j]]
			o := s.encode(j, uint8(op.Kind), op.DB, op.Key, op.Value)
			switch {
			case op.Kind == OpIncr:
				o.ValLen, o.Ts = 0, uint64(op.Delta)
			case op.Kind == OpSet && held != nil && held[pending[j]].ID != 0:
				o.setBlob(held[pending[j]])
			case op.Kind == OpSet:
				o.setDeadline(len(op.Value), op.ExpireAt, op.Type)
			case op.onlyExpired:
				o.Flags = uint8(chainBpfdbBeginFlagBPFDB_DEL_EXPIRED)
			}
			if op.Kind != OpGet {
				wrote = true
			} else if wrote && wroteEarlier(ops, pending[:j], op.DB, op.Key) {
				// An earlier op of this run wrote the key: read the newest
				// version, which may not be visible yet (bpf/chain.c auto_read).
				o.Flags = uint8(chainBpfdbBeginFlagBPFDB_GET_LATEST)
			}
		}
		s.hdr.Mode = uint32(chainBpfdbModeBPFDB_MODE_AUTOCOMMIT)
		s.hdr.Nops = uint32(n)
		if err := e.run(s); err != nil {
			return lsn, err
		}
		if s.hdr.Status != 0 {
			return lsn, e.statusError(s.hdr.Status, 0)
		}
		e.waitVisible(s.hdr.CommitTs)
		lsn = max(lsn, s.hdr.CommitTs)
		// The chain stops at the first op to retry and skips the rest
		// (BPFDB_ERR_ABORTED), so re-running them in order keeps a
		// pipeline's order. One allocation holds every value returned.
		total := 0
		for j := 0; j < n; j++ {
			if o := &s.ops[j]; o.Status == 0 && (o.Kind == uint8(OpGet) || o.Kind == uint8(OpIncr)) && !isBlob(o.ValLen) {
				n, _ := splitStored(o.Value[:], o.ValLen)
				total += n
			}
		}
		buf := make([]byte, total)
		again := 0
		for j := 0; j < n; j++ {
			op := &ops[pending[j]]
			o := &s.ops[j]
			op.Err = nil
			if o.Status != 0 {
				op.Err = e.statusError(o.Status, o.Detail)
			}
			if held != nil && held[pending[j]].ID != 0 && headerAt(o.Value[:]).Adopted != 0 {
				if op.Err != nil { // the chain freed it: never logged
					e.blobLog.drop(held[pending[j]].ID)
				}
				held[pending[j]] = blobHeader{}
			}
			if op.Kind == OpGet && op.Err == nil && isBlob(o.ValLen) {
				if v, d, ok := e.getValue(o, false); ok {
					op.Value, op.ExpireAt, op.Version, op.Type = v, d, o.Ts, lenValueType(o.ValLen)
					continue
				}
				op.Err = errRetry // freed under the copy: read again
			}
			if op.Kind == OpGet && op.Err == ErrNotFound { // statusError's own value
				op.Version = o.Ts
				e.noteExpired(o, op.Key)
			}
			if op.onlyExpired && op.Err == ErrNotFound {
				op.ExpireAt = int64(o.Ts) // the live value's deadline (bpf/chain.c)
			}
			if op.Kind == OpDelete && !op.onlyExpired && op.Err == ErrNotFound {
				op.Version = e.LastCommit() // read after the run
			}
			if Retryable(op.Err) && try < retries {
				pending[again] = pending[j]
				again++
				continue
			}
			if op.Err == ErrAborted || op.Err == errRetry { // statusError's own values
				op.Err = ErrConflict // a retry budget ran out
			}
			if op.Err == nil && (op.Kind == OpGet || op.Kind == OpIncr) { // the value read, or the sum
				l, deadline := splitStored(o.Value[:], o.ValLen)
				if op.Kind == OpGet {
					op.Version, op.ExpireAt, op.Type = o.Ts, deadline, lenValueType(o.ValLen)
				}
				op.Value = buf[:l:l]
				copy(op.Value, o.Value[:l])
				buf = buf[l:]
			}
			if op.Err == nil && (op.Kind == OpSet || op.Kind == OpDelete) {
				op.Version = o.Ts // its commit's LSN (bpf/chain.c)
				e.noteWrite(op, o.Ts)
			}
		}
		n = again
	}
	return lsn, nil
}

// buildBlobs builds a blob for each op at the indexes pending that needs
// one and holds none (held, allocated on first need, holds them by op
// index), and returns held and how many of pending remain: an op whose
// blob cannot be built (ErrStoreFull) fails and leaves pending.
func (e *Engine) buildBlobs(ops []Op, pending []int, held []blobHeader) ([]blobHeader, int) {
	n := 0
	for _, i := range pending {
		op := &ops[i]
		if needsBlob(op) && (held == nil || held[i].ID == 0) {
			if held == nil {
				held = make([]blobHeader, len(ops))
			}
			h, err := e.newBlob(op, true)
			if err != nil {
				op.Err = err
				continue
			}
			held[i] = h
		}
		pending[n] = i
		n++
	}
	return held, n
}

// wroteEarlier reports whether one of the ops at indexes earlier writes
// key of db. A run holds at most MaxBatch ops, so a scan beats a map (no
// allocation).
func wroteEarlier(ops []Op, earlier []int, db int, key []byte) bool {
	for _, i := range earlier {
		if ops[i].Kind != OpGet && ops[i].DB == db && bytes.Equal(ops[i].Key, key) {
			return true
		}
	}
	return false
}

// waitGateOpen waits, up to twice drainWait, for a checkpoint's quiesce
// gate to open, and reports whether it did.
func (e *Engine) waitGateOpen() bool {
	for deadline := time.Now().Add(2 * drainWait); time.Now().Before(deadline); {
		if atomic.LoadUint64(&e.ctl.Gate) == 0 {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return atomic.LoadUint64(&e.ctl.Gate) == 0
}

// Exec runs ops as one serializable transaction in as few chain runs as it
// can (one when len(ops) <= MaxBatch-2). If every op is a Get it runs as a
// read-only snapshot transaction, which takes no locks and cannot conflict.
// On failure nothing is applied: the error is the first failing op's, and
// ErrConflict means the transaction may be retried as a whole.
func (e *Engine) Exec(ops []Op) error {
	readOnly := true
	for i := range ops {
		if ops[i].Kind != OpGet {
			readOnly = false
		}
		ops[i].Err = e.checkOp(&ops[i])
		if ops[i].Err == nil && ops[i].Kind == OpIncr {
			ops[i].Err = errIncrInTxn
		}
		if ops[i].Err != nil {
			return ops[i].Err
		}
	}
	for try := 0; ; try++ {
		err := e.exec(ops, readOnly)
		// A read-only run whose blob moved is run again (blob.go).
		if !readOnly || try >= autocommitRetries || !slices.ContainsFunc(ops, func(op Op) bool { return op.Err == errBlobMoved }) {
			return err
		}
		backoff(try)
	}
}

func (e *Engine) exec(ops []Op, readOnly bool) error {
	t, err := e.begin(readOnly)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(ops) > MaxBatch-2 {
		if err := t.do(ops[:MaxBatch-2], 0); err != nil {
			t.abortIfOpen()
			return err
		}
		ops = ops[MaxBatch-2:]
	}
	if err := t.do(ops, uint8(chainBpfdbOpKindBPFDB_OP_COMMIT)); err != nil {
		t.abortIfOpen()
		return err
	}
	return e.waitDurable(t.commitLSN)
}
