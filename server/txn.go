package server

// Transactions: MULTI/EXEC, WATCH, and every data command that is not a
// single autocommit op (INCR, SET NX, multi-key DEL, MGET...).
//
// All commands of a transaction are known before it runs, so it runs in
// two chain runs whatever it holds:
//
//  1. Read every key the commands touch, in one Txn.Run: keys some command
//     writes are read ForUpdate (exclusive lock), the rest under a shared
//     lock. A transaction that writes nothing runs as one read-only
//     snapshot (engine.Exec), which takes no locks.
//  2. Evaluate the commands in Go, in order, against a view of those
//     values (txView): each sees the writes of the ones before it.
//  3. Write the final value of every key written, and commit, in one
//     Txn.CommitWith.
//
// Strict 2PL makes this serializable: the locks taken in step 1 are held
// until step 3 commits. WATCH records each watched key's version (the
// commit timestamp the kernel reports with a Get); step 1 reads the watched
// keys too, and EXEC answers a null array if any version changed.
//
// A no-wait conflict (or any other transient refusal: a full log ring, a
// checkpoint's gate, a full transaction table) aborts the attempt with
// nothing applied, and the server runs the whole transaction again after a
// jittered backoff, up to txnRetries times: the client never sees it.

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/hashenc"
	"github.com/bpfdb/bpfdb/internal/resp"
)

// txnRetries bounds how often a transaction is run again after a
// conflict; the backoff doubles from 20µs to maxTxnBackoff. About 350ms
// in all: longer than a checkpoint's gate may stay closed (200ms).
const (
	txnRetries    = 100
	maxTxnBackoff = 5 * time.Millisecond
)

// queuedCmd is a data command of a transaction, and the database it runs
// in (a SELECT queued before it in MULTI changes it).
type queuedCmd struct {
	cmd  *command
	args [][]byte
	db   int
}

// dbKey is a transaction's name for key of database db: the database's
// number, then the key (views, plans and WATCH hold keys so).
func dbKey(db int, key []byte) string {
	var buf [64]byte
	return string(appendDBKey(buf[:0], db, key))
}

// appendDBKey appends dbKey's name of key of database db to dst, for a
// lookup by it that allocates nothing.
func appendDBKey(dst []byte, db int, key []byte) []byte {
	return append(append(dst, byte(db)), key...)
}

// dbOp is an op of kind on the key named k by dbKey.
func dbOp(kind engine.OpKind, k string) engine.Op {
	return engine.Op{Kind: kind, DB: int(k[0]), Key: []byte(k[1:])}
}

// entry is one key of a transaction's view.
type entry struct {
	val []byte
	typ engine.ValueType
	// hash is val decoded, once a command has read it as a hash
	// (hash.go): from then on it is the value, and val is stale.
	hash     *hashenc.Hash
	exists   bool
	expireAt int64  // the value's deadline, Unix ms (0: none)
	version  uint64 // as read in step 1 (0: absent)
	dirty    bool   // written by a command
	existed  bool   // had a value in the store
}

// txView is what the commands of a transaction see: the values read in
// step 1 with the writes of the commands evaluated so far.
type txView struct {
	vals map[string]*entry // by dbKey
	// db is the database of the command being evaluated.
	db    int
	order []string // keys in the order they were read
	// now is the store's clock (engine.Now) read just after step 1's
	// reads (tryTxn says why after them): the time every command of the
	// transaction judges expiry by and computes deadlines from.
	now int64
	// failed, set by a command that hit an engine limit at run time (an
	// APPEND past MaxValueLen), aborts the whole transaction.
	failed error
	// maxValue is the longest value the engine takes (its MaxValueLen).
	maxValue int
	// fetch, when set (a transaction with a script: txnPlan.dynamic),
	// reads a key step 1 did not, by dbKey; its failure fails the
	// transaction.
	fetch func(dk string) (*entry, error)
	// srv is the server the transaction runs in (scripts use its cache).
	srv *Server
	// inline: the event loop runs the transaction (runTxnInline), so a
	// script runs under the loop's budget (inlineScriptTime).
	inline bool
}

// checkLen refuses a value of n bytes, which a command is about to make,
// if the engine does not take one that long (the command then fails the
// transaction with it).
func (v *txView) checkLen(n int) error { return checkValueLen(n, v.maxValue) }

// fail aborts the transaction with err (a limit); the command's reply is
// never sent.
func (v *txView) fail(err error) reply {
	v.failed = err
	return errReply(err)
}

func (v *txView) entry(k []byte) *entry {
	// The lookup builds k's dbKey name on the stack (a map index by
	// string(bytes) copies nothing); only a new entry keeps it.
	var buf [64]byte
	name := appendDBKey(buf[:0], v.db, k)
	if e := v.vals[string(name)]; e != nil {
		return e
	}
	dk := string(name)
	e := &entry{}
	if v.fetch != nil && v.failed == nil {
		// A script's key it did not declare: read now, in the
		// transaction (script.go).
		var err error
		if e, err = v.fetch(dk); err != nil {
			v.failed, e = err, &entry{}
		}
	}
	// Otherwise every key a command touches is read in step 1; a missing
	// one is a bug in a command's keys function: absent and new.
	v.vals[dk] = e
	v.order = append(v.order, dk)
	return e
}

// get returns k's value, and whether k has one, for a command of
// strings: the command checked (wrongType) that it is one.
func (v *txView) get(k []byte) ([]byte, bool) {
	e := v.entry(k)
	return e.val, e.exists
}

// exists reports whether k has a value, of any type.
func (v *txView) exists(k []byte) bool { return v.entry(k).exists }

// typeOf is the type of k's value (a string when it has none).
func (v *txView) typeOf(k []byte) engine.ValueType { return v.entry(k).typ }

// wrongType reports whether one of keys holds a value that is not a
// string, which a command of strings answers WRONGTYPE without running.
func (v *txView) wrongType(keys [][]byte) bool {
	for _, k := range keys {
		if e := v.entry(k); e.exists && e.typ != engine.TypeString {
			return true
		}
	}
	return false
}

// errWrongType is Redis's answer to a command of one type on a key of another.
var errWrongType = errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")

// in runs f with the view in database db (COPY ... DB, MOVE).
func (v *txView) in(db int, f func()) {
	save := v.db
	v.db = db
	f()
	v.db = save
}

// set gives k the value val with no deadline (SET, MSET, GETSET...).
func (v *txView) set(k, val []byte) { v.setTTL(k, val, 0) }

// setTTL gives k the string val with deadline at (0: none).
func (v *txView) setTTL(k, val []byte, at int64) {
	e := v.entry(k)
	e.val, e.typ, e.hash, e.exists, e.dirty, e.expireAt = val, engine.TypeString, nil, true, true, at
}

// retime gives k's value, of any type, the deadline at (0: none).
func (v *txView) retime(k []byte, at int64) {
	e := v.entry(k)
	e.dirty, e.expireAt = true, at
}

// stored is k's value as the store holds it, of any type, and whether k
// has one: what RENAME, COPY and MOVE carry to another key (putStored).
func (v *txView) stored(k []byte) (val []byte, typ engine.ValueType, ok bool) {
	e := v.entry(k)
	return e.bytes(), e.typ, e.exists
}

// putStored gives k the value val of type typ (from stored), with
// deadline at.
func (v *txView) putStored(k, val []byte, typ engine.ValueType, at int64) {
	v.setTTL(k, val, at)
	v.entry(k).typ = typ
}

// bytes is e's value as the store holds it: a hash a command changed is
// encoded again.
func (e *entry) bytes() []byte {
	if e.hash != nil {
		return e.hash.Encode()
	}
	return e.val
}

// update gives k the value val, keeping its deadline (INCR, APPEND...).
func (v *txView) update(k, val []byte) {
	e := v.entry(k)
	at := e.expireAt
	if !e.exists {
		at = 0
	}
	v.setTTL(k, val, at)
}

// ttl returns k's deadline (0: none) and whether k has a value.
func (v *txView) ttl(k []byte) (int64, bool) {
	e := v.entry(k)
	return e.expireAt, e.exists
}

// del deletes k and reports whether it had a value.
func (v *txView) del(k []byte) bool {
	e := v.entry(k)
	had := e.exists
	e.val, e.typ, e.hash, e.exists, e.dirty, e.expireAt = nil, engine.TypeString, nil, false, true, 0
	return had
}

// getReply is k's value, null if it is not a string (MGET's answer).
func (v *txView) getReply(k []byte) reply {
	e := v.entry(k)
	return bulkReply(e.val, e.exists && e.typ == engine.TypeString)
}

func (v *txView) incrByArg(k, arg []byte, negate bool) reply {
	by, ok := parseInteger(arg)
	if !ok {
		return errReply(errNotInteger)
	}
	if negate {
		if by == -by && by != 0 { // math.MinInt64
			return errReply(errOverflow)
		}
		by = -by
	}
	return v.incrBy(k, by)
}

func (v *txView) incrBy(k []byte, by int64) reply {
	old, ok := v.get(k)
	var n int64
	if ok {
		if n, ok = parseInteger(old); !ok {
			return errReply(errNotInteger)
		}
	}
	if (by > 0 && n > 1<<63-1-by) || (by < 0 && n < -1<<63-by) {
		return errReply(errOverflow)
	}
	n += by
	v.update(k, strconv.AppendInt(nil, n, 10))
	return intReply(n)
}

// parseInteger parses a 64-bit integer as strictly as Redis (string2ll):
// digits with an optional minus sign, no plus sign, spaces or leading zeros.
func parseInteger(b []byte) (int64, bool) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(b) > 20 || (digits[0] == '0' && len(b) > 1) {
		return 0, false
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// runTxn runs cmds as one transaction, retrying it after conflicts. It
// returns each command's reply, or watchFailed when a watched key changed
// (nothing applied), or the error that stopped it (nothing applied).
// watchGen is the count of SWAPDBs (dbNames.gen) before the first WATCH:
// a swap since fails the EXEC (swapdb.go, invariant 4).
func (s *Server) runTxn(cmds []queuedCmd, watched map[string]uint64, watchGen uint64) (replies []reply, watchFailed bool, err error) {
	replies, watchFailed, lsn, err := s.commitTxn(planTxn(cmds, watched), cmds, watched, watchGen)
	if err != nil {
		return nil, false, err
	}
	// The wait for the disk comes after the key locks are released: the
	// commit is applied and visible, and a transaction after it on the
	// same keys commits at a later LSN, acknowledged only once that one
	// is durable too, which the log makes this one first.
	if err := s.e.WaitDurable(lsn); err != nil {
		return nil, false, err
	}
	return replies, watchFailed, nil
}

// commitTxn is runTxn up to the commit, under the key locks, without the
// wait for the disk: lsn is what its replies wait for there (tryTxn).
func (s *Server) commitTxn(plan txnPlan, cmds []queuedCmd, watched map[string]uint64, watchGen uint64) (replies []reply, watchFailed bool, lsn uint64, err error) {
	if !plan.readOnly && len(plan.keys) > 0 {
		// Wait for the server's transactions ahead on these keys
		// (keylocks.go) rather than conflict with them in the kernel.
		defer s.keyLocks.lock(plan.keys)()
	}
	for attempt := 0; ; attempt++ {
		replies, watchFailed, lsn, err = s.tryTxn(plan, cmds, watched, watchGen)
		if err == nil || !retryable(err) || attempt >= txnRetries {
			if err != nil && retryable(err) && !errors.Is(err, engine.ErrLogFull) {
				err = errors.New("ERR transaction gave up after " + strconv.Itoa(txnRetries) + " retries: " + errorText(err)[4:])
			}
			return replies, watchFailed, lsn, err
		}
		s.metrics.txnRetries.Inc()
		time.Sleep(jitter(attempt))
	}
}

// runTxnInline runs cmds as one transaction, as runTxn does, if it can
// without waiting: the event loop's run (loop.go). It reports done false,
// with nothing applied, when it would have waited: for the key locks of
// another transaction (keylocks.go), for a backoff after a conflict or
// another refusal runTxn retries, or for a script longer than the loop
// lets one run (inlineScriptTime). The caller then runs the transaction
// with runTxn, from the start. Nor does it wait for the disk: lsn is what
// its replies wait for there (tryTxn), which the loop makes durable
// before it sends them.
func (s *Server) runTxnInline(cmds []queuedCmd) (replies []reply, lsn uint64, done bool, err error) {
	plan := planTxn(cmds, nil)
	plan.inline = true
	if !plan.readOnly && len(plan.keys) > 0 {
		unlock, ok := s.keyLocks.tryLock(plan.keys)
		if !ok {
			return nil, 0, false, nil
		}
		defer unlock()
	}
	replies, _, lsn, err = s.tryTxn(plan, cmds, nil, 0)
	if err != nil && (retryable(err) || errors.Is(err, errInlineBudget)) {
		return nil, 0, false, nil
	}
	return replies, lsn, true, err
}

// txnPlan is step 1 of a transaction: the keys to read.
type txnPlan struct {
	keys     []string
	write    []bool // write[i]: keys[i] is written, so read ForUpdate
	readOnly bool
	// dynamic: a command may read keys it did not declare (a script),
	// so the transaction stays open for them (txView.fetch).
	dynamic bool
	// inline: the event loop runs the transaction (runTxnInline).
	inline bool
}

func planTxn(cmds []queuedCmd, watched map[string]uint64) txnPlan {
	p := txnPlan{readOnly: true}
	var seen map[string]int // index in p.keys, once there are too many keys to search
	add := func(k string, w bool) {
		i := p.index(k, seen)
		if i < 0 {
			i = len(p.keys)
			p.keys, p.write = append(p.keys, k), append(p.write, false)
			if seen != nil {
				seen[k] = i
			} else if len(p.keys) > planSearchKeys {
				seen = make(map[string]int, 2*len(p.keys))
				for j, k := range p.keys {
					seen[k] = j
				}
			}
		}
		if w {
			p.write[i] = true
			p.readOnly = false
		}
	}
	for _, qc := range cmds {
		keys, w := qc.cmd.keys(qc.args)
		for _, k := range keys {
			add(dbKey(qc.db, k), w)
		}
		if qc.cmd.dynamic {
			p.dynamic = true
			p.readOnly = p.readOnly && !w // it may write keys it did not declare
		}
		if qc.cmd.otherDB != nil {
			if db, k, ok := qc.cmd.otherDB(qc.args); ok {
				add(dbKey(db, k), true)
			}
		}
	}
	for k := range watched {
		add(k, false)
	}
	return p
}

// planSearchKeys is how many keys a plan finds its keys among by a search
// before it keeps a map of them: most transactions touch a few keys.
const planSearchKeys = 8

// index is where k is in p.keys, or -1; seen is the map of them, nil
// while there are at most planSearchKeys.
func (p *txnPlan) index(k string, seen map[string]int) int {
	if seen != nil {
		if i, ok := seen[k]; ok {
			return i
		}
		return -1
	}
	return slices.Index(p.keys, k)
}

// viewEntry is the view's entry of a key read in step 1 (r: a Get that
// found it or ErrNotFound). The kernel judged expiry at the transaction's
// BEGIN, before now was read: a value whose deadline falls between is
// absent to the commands, as it is to every reader from now on (existed
// still says the store holds it, so that a write replaces or deletes it).
// Expired is the kernel's test (deadline_passed, bpf/storage/expiry.h):
// now > deadline, as Redis; at its deadline a value is still live.
func viewEntry(r *engine.Op, now int64) *entry {
	e := new(entry)
	e.read(r, now)
	return e
}

// read sets e to viewEntry's entry of r at now.
func (e *entry) read(r *engine.Op, now int64) {
	*e = entry{version: r.Version} // a deletion's, when absent
	if r.Err != nil {
		return
	}
	e.existed = true
	if r.ExpireAt != 0 && now > r.ExpireAt {
		return
	}
	e.val, e.typ, e.exists, e.expireAt = r.Value, r.Type, true, r.ExpireAt
}

// newView is the view of the values read in step 1 (reads, of keys) at
// the transaction's time now, for an engine whose longest value is
// maxValue bytes. A read that failed otherwise than ErrNotFound fails the
// attempt.
func newView(keys []string, reads []engine.Op, now int64, maxValue int) (*txView, error) {
	v := &txView{vals: make(map[string]*entry, len(reads)), order: make([]string, 0, len(reads)), now: now, maxValue: maxValue}
	entries := make([]entry, len(reads)) // one allocation for the view's entries
	for i := range reads {
		r := &reads[i]
		if r.Err != nil && !errors.Is(r.Err, engine.ErrNotFound) {
			return nil, r.Err
		}
		entries[i].read(r, now)
		v.vals[keys[i]] = &entries[i]
		v.order = append(v.order, keys[i])
	}
	return v, nil
}

// writes is step 3: the final value of every key a command wrote. A key
// deleted is deleted in the store only if the store holds a value for it
// (existed): one the kernel found absent needs no deletion, one that
// expired between the kernel's BEGIN and now is deleted (it is a live
// version to the kernel until then; deleting it is what the expirer would
// do). A key set replaces whatever the store holds, an expired value too.
func (v *txView) writes() []engine.Op {
	var writes []engine.Op
	for _, k := range v.order {
		e := v.vals[k]
		switch {
		case !e.dirty:
		case e.exists:
			w := dbOp(engine.OpSet, k)
			w.Value, w.Type, w.ExpireAt = e.bytes(), e.typ, e.expireAt
			writes = append(writes, w)
		case e.existed:
			writes = append(writes, dbOp(engine.OpDelete, k))
		}
	}
	return writes
}

// tryTxn is one attempt of a transaction. It commits without waiting for
// the disk: lsn is what its replies wait for there, the newest of its
// commit and the commits it read (0: none).
func (s *Server) tryTxn(p txnPlan, cmds []queuedCmd, watched map[string]uint64, watchGen uint64) (replies []reply, watchFailed bool, lsn uint64, err error) {
	// One hold of the database names for the attempt (swapdb.go,
	// invariant 1): its reads and writes go to the same databases.
	s.dbs.hold()
	defer s.dbs.mu.RUnlock()
	if watched != nil && s.dbs.gen.Load() != watchGen {
		return nil, true, 0, nil
	}
	reads := make([]engine.Op, len(p.keys))
	for i, k := range p.keys {
		reads[i] = dbOp(engine.OpGet, k)
		reads[i].ForUpdate = p.write[i]
	}
	s.dbs.toStore(reads)
	var tx *engine.Txn
	if p.readOnly && !p.dynamic {
		if err := s.e.Exec(reads); err != nil {
			return nil, false, 0, err
		}
	} else {
		switch {
		case p.readOnly:
			tx, err = s.e.BeginReadOnly()
		case p.inline: // the event loop does not wait for a checkpoint
			tx, err = s.e.TryBegin()
		default:
			tx, err = s.e.Begin()
		}
		if err != nil {
			return nil, false, 0, err
		}
		if len(reads) > 0 {
			if err := tx.Run(reads); err != nil {
				tx.Abort()
				return nil, false, 0, err
			}
		}
	}
	// The clock is read after the reads, not before: the kernel took the
	// transaction's time at its BEGIN (the first chain run above), and
	// no earlier reading is that instant, since Go cannot see the
	// kernel's. Read after it, now is at or past the kernel's time (one
	// clock, engine.Now), so a value the kernel found absent is absent at
	// now too, and newView drops the values found present whose deadline
	// passed since: every command then sees one instant, now.
	v, err := newView(p.keys, reads, s.e.Now(), s.e.MaxValueLen())
	if err != nil {
		if tx != nil {
			tx.Abort()
		}
		return nil, false, 0, err
	}
	for k, version := range watched {
		if v.vals[k].version != version {
			if tx != nil {
				tx.Abort()
			}
			// Not held for the change it saw: nothing was applied, and
			// what the client reads next waits for that change's disk.
			return nil, true, 0, nil
		}
	}
	v.srv, v.inline = s, p.inline
	if p.dynamic {
		v.fetch = s.fetcher(tx, !p.readOnly, v)
	}
	replies = make([]reply, len(cmds))
	for i, qc := range cmds {
		v.db = qc.db
		if qc.cmd.strings {
			if keys, _ := qc.cmd.keys(qc.args); v.wrongType(keys) {
				replies[i] = errReply(errWrongType)
				continue
			}
		}
		replies[i] = qc.cmd.eval(v, qc.args)
		if v.failed != nil {
			if tx != nil {
				tx.Abort()
			}
			return nil, false, 0, v.failed
		}
	}
	if tx == nil || p.readOnly { // its keys read by one Exec, or a snapshot: nothing to write
		if tx != nil {
			tx.Abort()
		}
		// Its replies may show a commit not yet durable (of a goroutine's
		// transaction, waiting for the disk): answered once it is.
		return replies, false, v.newestRead(), nil
	}
	writes := v.writes()
	s.dbs.toStore(writes)
	if lsn, err = tx.SubmitWith(writes); err != nil {
		// A write the engine refuses before running it (a limit) leaves
		// the transaction open, its locks held: end it. Abort does
		// nothing to one that has ended.
		tx.Abort()
		return nil, false, 0, err
	}
	// Its replies may rest on a commit not yet durable, whose key locks
	// were released before its wait for the disk (runTxn): a SETNX that
	// found the key set, a script that chose not to write. They are
	// acknowledged once that commit is durable too.
	return replies, false, max(lsn, v.newestRead()), nil
}

// newestRead is the newest commit among the versions the view read (0:
// none). A version is its commit's timestamp, which is its LSN.
func (v *txView) newestRead() uint64 {
	var n uint64
	for _, k := range v.order {
		n = max(n, v.vals[k].version)
	}
	return n
}

// retryable reports whether a command or transaction that failed with
// err, having applied nothing, is run again: engine.Retryable, and an op
// of a pipeline not run because an earlier one was refused.
func retryable(err error) bool {
	return engine.Retryable(err) || errors.Is(err, errNotRun)
}

// jitter is the backoff before attempt+1: random, doubling from 20µs.
func jitter(attempt int) time.Duration {
	d := min(20*time.Microsecond<<min(attempt, 16), maxTxnBackoff)
	return d/2 + rand.N(d/2+1)
}

// runAutocommit runs one data command as its own transaction.
func (c *conn) runAutocommit(cmd *command, args [][]byte) {
	var replies []reply
	err := c.checkArgs(cmd, args)
	if err == nil {
		replies, _, err = c.s.runTxn([]queuedCmd{{cmd: cmd, args: args, db: c.db}}, nil, 0)
	}
	c.answerTxn(replies, err)
}

// maxInlineArgs and maxInlineBytes bound the arguments of a command the
// event loop runs itself (runInline): a longer one (MSET of many pairs,
// EVAL of a long script to compile) is a longer transaction, which the
// loop leaves to a goroutine.
const (
	maxInlineArgs  = 64
	maxInlineBytes = 64 << 10
)

// runInline is dispatch's run of a data command (runAutocommit) on the
// event loop, which must not wait (loop.go). It reports false, having
// answered nothing, when the command would wait (runTxnInline): the loop
// then hands the connection over, and its goroutine runs the command
// from the start.
func (c *conn) runInline(args [][]byte) bool {
	cmd := lookup(args[0])
	if cmd == nil || cmd.eval == nil || !cmd.arityOK(len(args)) || len(args) > maxInlineArgs {
		return false
	}
	n := 0
	for _, a := range args {
		n += len(a)
	}
	if n > maxInlineBytes {
		return false
	}
	c.trackReads(cmd, args)
	start := time.Now()
	var replies []reply
	var lsn uint64
	err := c.checkArgs(cmd, args)
	if err == nil {
		var done bool
		if replies, lsn, done, err = c.s.runTxnInline([]queuedCmd{{cmd: cmd, args: args, db: c.db}}); !done {
			c.s.metrics.loopTxnsHandedOver.Inc()
			return false
		}
		c.s.metrics.loopTxnsRan.Inc()
	}
	c.s.count(cmd)
	errs := c.errReplies
	from := c.wr.Buffered()
	c.answerTxn(replies, err)
	if lsn != 0 {
		// Sent once the commit (or the one it read) is durable (loop.settle).
		c.roundLSN = max(c.roundLSN, lsn)
		c.held = append(c.held, heldReply{from, c.wr.Buffered(), cmd, lsn})
	}
	c.ran(cmd, args, time.Since(start), c.errReplies > errs)
	c.commandDone()
	return true
}

// checkArgs is cmd's check of its arguments before it runs (nil: none).
func (c *conn) checkArgs(cmd *command, args [][]byte) error {
	if cmd.check == nil {
		return nil
	}
	return cmd.check(args, c.s.e)
}

// answerTxn writes the reply of a one-command transaction, or its error.
func (c *conn) answerTxn(replies []reply, err error) {
	if err != nil {
		c.wr.Error(errorText(err))
		return
	}
	replies[0].write(c.wr)
}

func cmdMulti(c *conn, args [][]byte) {
	if c.inMulti {
		c.wr.Error("ERR MULTI calls can not be nested")
		return
	}
	c.inMulti, c.multiErr, c.queued = true, false, nil
	c.wr.Simple("OK")
}

func cmdDiscard(c *conn, args [][]byte) {
	if !c.inMulti {
		c.wr.Error("ERR DISCARD without MULTI")
		return
	}
	c.endMulti()
	c.wr.Simple("OK")
}

func (c *conn) endMulti() {
	c.inMulti, c.multiErr, c.queued, c.watched = false, false, nil, nil
}

func cmdExec(c *conn, args [][]byte) {
	if !c.inMulti {
		c.wr.Error("ERR EXEC without MULTI")
		return
	}
	queued, watched, failed := c.queued, c.watched, c.multiErr
	c.endMulti()
	if failed {
		c.wr.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	var cmds []queuedCmd
	var other []int // PING, ECHO, SELECT..., run in place after the commit
	db := c.db
	for i, args := range queued {
		cmd := lookup(args[0])
		if cmd.eval == nil {
			if cmd.name == "select" {
				if n, ok := parseDB(args[1]); ok {
					db = n // the commands after it run in that database
				}
			}
			other = append(other, i)
			continue
		}
		cmds = append(cmds, queuedCmd{cmd: cmd, args: args, db: db})
	}
	for _, qc := range cmds {
		c.trackReads(qc.cmd, qc.args) // when they run, not when queued: see tracking.go
	}
	replies, watchFailed, err := c.s.runTxn(cmds, watched, c.watchGen)
	switch {
	case errors.Is(err, engine.ErrNotDurable):
		// Committed and visible, but its log record is not on disk.
		c.s.metrics.execs.WithLabelValues("error").Inc()
		c.wr.Error(errorText(err) + " (the transaction was applied; it is not acknowledged as durable)")
		return
	case err != nil:
		c.s.metrics.execs.WithLabelValues("error").Inc()
		c.wr.Error(errorText(err) + " (the transaction was not applied)")
		return
	case watchFailed:
		c.s.metrics.execs.WithLabelValues("watch_failed").Inc()
		c.wr.NullArray()
		return
	}
	c.s.metrics.execs.WithLabelValues("committed").Inc()
	c.wr.Array(len(queued))
	next := 0
	for i, args := range queued {
		if len(other) > 0 && other[0] == i {
			other = other[1:]
			lookup(args[0]).run(c, args)
			continue
		}
		replies[next].write(c.wr)
		next++
	}
}

func cmdWatch(c *conn, args [][]byte) {
	if c.inMulti {
		c.wr.Error("ERR WATCH inside MULTI is not allowed")
		return
	}
	ops := make([]engine.Op, len(args)-1)
	for i, k := range args[1:] {
		if err := c.s.e.CheckKey(k); err != nil {
			c.wr.Error(errorText(err))
			return
		}
		ops[i] = engine.Op{Kind: engine.OpGet, DB: c.db, Key: k}
	}
	gen := c.s.dbs.gen.Load() // before the reads: a swap meanwhile fails the EXEC
	if _, err := c.runOps(ops); err != nil {
		c.wr.Error(errorText(err))
		return
	}
	if c.watched == nil {
		c.watched, c.watchGen = map[string]uint64{}, gen
	}
	for _, op := range ops {
		if op.Err != nil && !errors.Is(op.Err, engine.ErrNotFound) {
			c.wr.Error(errorText(op.Err))
			return
		}
		if _, already := c.watched[dbKey(op.DB, op.Key)]; !already {
			c.watched[dbKey(op.DB, op.Key)] = op.Version // a deletion's, or 0, when absent
		}
	}
	c.wr.Simple("OK")
}

func cmdUnwatch(c *conn, args [][]byte) {
	c.watched = nil
	c.wr.Simple("OK")
}

// reply is a command's answer, kept until a transaction has committed.
type reply struct {
	kind  byte // one of the reply kinds below
	str   string
	bulk  []byte
	n     int64
	elems []reply
}

const (
	kindSimple byte = iota
	kindError
	kindInt
	kindBulk
	kindNull
	kindArray
	kindMap // elems are keys and values, alternately
)

var (
	okReply   = reply{kind: kindSimple, str: "OK"}
	nullReply = reply{kind: kindNull}
)

func intReply(n int64) reply   { return reply{kind: kindInt, n: n} }
func errReply(err error) reply { return reply{kind: kindError, str: errorText(err)} }
func arrayReply(n int) reply   { return reply{kind: kindArray, elems: make([]reply, 0, n)} }

// boolInt is b as Redis answers a yes or no: 1 or 0.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func bulkReply(b []byte, ok bool) reply {
	if !ok {
		return nullReply
	}
	return reply{kind: kindBulk, bulk: b}
}

func (r reply) write(w *resp.Writer) {
	switch r.kind {
	case kindSimple:
		w.Simple(r.str)
	case kindError:
		w.Error(r.str)
	case kindInt:
		w.Int(r.n)
	case kindBulk:
		w.Bulk(r.bulk)
	case kindNull:
		w.Null()
	case kindArray:
		w.Array(len(r.elems))
		for _, e := range r.elems {
			e.write(w)
		}
	case kindMap:
		w.Map(len(r.elems) / 2)
		for _, e := range r.elems {
			e.write(w)
		}
	}
}
