// Package engine loads the bpfdb chain into the kernel, owns its maps, and
// runs it: the embedded Go API of bpfdb.
//
// An Engine is a transactional key-value store whose data and concurrency
// control live in BPF maps and programs. Each call writes its operations
// into a request slot that is mmapped from a BPF_F_MMAPABLE array map and
// runs the chain's entry program once through BPF_PROG_RUN; the chain
// answers in place. One run carries up to MaxBatch operations, so batch
// what you can: a run costs microseconds, an operation inside it far less.
package engine

import (
	"errors"
	"fmt"
	"log"
	"math"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bpfdb/bpfdb/logd"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cockroachdb/pebble/vfs"
	"golang.org/x/sys/unix"
)

// Options sets the capacity of a store. Zero fields take defaults.
type Options struct {
	// MaxMemory is the kernel memory the data may take: the index
	// (MaxKeys records, preallocated) and the value store, pages of
	// PageSize bytes that values of every size share (default MaxKeys
	// KiB, and at least the index and MinValuePages pages, which Open
	// refuses less than). A write that finds no page left fails with
	// ErrStoreFull naming it.
	MaxMemory int64
	// MaxKeys is the capacity of the index (default MaxMemory/1 KiB when
	// MaxMemory is set, else 65536).
	MaxKeys int
	// MaxKeyLen is the longest key, in bytes (default DefaultMaxKeyLen,
	// 512; at most MaxKeyLenLimit). A key of more than InlineKeyLen bytes
	// is held in the index by its SHA-256, and whole in the engine's
	// memory (longkey.go).
	MaxKeyLen int
	// MaxValueLen is the longest value a write may carry, in bytes
	// (default DefaultMaxValueLen, 1 MiB; at most MaxValueLenLimit). A
	// value of more than SlotValueLen bytes (its deadline included) is
	// stored in whole pages of the value store (blob.go).
	MaxValueLen int
	// TxnTimeout aborts interactive transactions idle for longer, releasing
	// their locks (default 30s; negative disables).
	TxnTimeout time.Duration
	// Build is the build id the chain reports (default 1); see Upgrade.
	Build uint32
	// VacuumInterval is how often Vacuum runs while there are writes
	// (default 1s; negative disables).
	VacuumInterval time.Duration
	// LogRingBytes is the size of the kernel ring commits are logged
	// through (a power of two; default 16 MiB).
	LogRingBytes int

	// Dir is the data directory: the log and checkpoints, in pebble. Open
	// recovers what it holds. Empty means in kernel memory only.
	Dir string
	// Durability says when a commit is acknowledged (default Sync).
	Durability Durability
	// SyncInterval bounds what a crash can lose with Async (default 10ms).
	SyncInterval time.Duration
	// CheckpointInterval is how often a checkpoint is taken (default 5m;
	// negative: never on a timer).
	CheckpointInterval time.Duration
	// CheckpointLogBytes takes a checkpoint once the log has grown by this
	// much since the last one (default 256 MiB; negative: never by size).
	CheckpointLogBytes int64
	// MinFreeBytes of free space are kept in Dir's volume for pebble's own
	// flushes: commits are refused (ErrLogUnavailable, nothing applied)
	// while less than twice as much is free, and log writes fail below it.
	// Default: a sixteenth of the volume, from 1 MiB to 64 MiB.
	MinFreeBytes int64
	// LogStallTimeout: while a log write has taken longer (a slow or hung
	// disk), commits are refused (default 1s).
	LogStallTimeout time.Duration
	// CloseTimeout bounds Close: past it, Close returns ErrNotDurable
	// naming the commits the log could not make durable (default 10s).
	CloseTimeout time.Duration
	// FS is the file system the log works through (default: the operating
	// system's); tests inject faults through it.
	FS vfs.FS
	// Logf is told when writes start and stop being refused (default
	// log.Printf).
	Logf func(format string, args ...any)
	// PinDir, if set, is a bpffs directory where Open pins the store's
	// maps by name, for programs of any loader (OpenPinned, pin.go), and
	// Close removes them. Open mounts bpffs on /sys/fs/bpf if needed, and
	// refuses a directory pinned by a running bpfdb (ErrPinned).
	PinDir string
	// Progress, if set, is told how recovery and checkpoints advance
	// (stage, done, total; total 0 when unknown).
	Progress func(stage string, done, total uint64)
}

// Durability says when a commit is acknowledged.
type Durability int

const (
	// Sync acknowledges a commit once its log record is on disk.
	Sync Durability = iota
	// Async acknowledges at once; a crash loses at most the last
	// SyncInterval of commits.
	Async
)

func (o *Options) setDefaults() {
	if o.MaxKeys <= 0 && o.MaxMemory > 0 {
		o.MaxKeys = int(min(o.MaxMemory/defaultBytesPerKey, math.MaxInt32))
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 1 << 16
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = max(int64(o.MaxKeys)*defaultBytesPerKey, o.minMemory())
	}
	if o.MaxKeyLen <= 0 {
		o.MaxKeyLen = DefaultMaxKeyLen
	}
	if o.MaxValueLen <= 0 {
		o.MaxValueLen = DefaultMaxValueLen
	}
	if o.TxnTimeout == 0 {
		o.TxnTimeout = 30 * time.Second
	}
	if o.Build == 0 {
		o.Build = 1
	}
	if o.VacuumInterval == 0 {
		o.VacuumInterval = time.Second
	}
	if o.LogRingBytes <= 0 {
		o.LogRingBytes = 16 << 20
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 10 * time.Millisecond
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = 5 * time.Minute
	}
	if o.CheckpointLogBytes == 0 {
		o.CheckpointLogBytes = 256 << 20
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
	if o.Logf == nil {
		o.Logf = log.Printf
	}
}

// Engine is an open store. Its methods are safe for concurrent use.
type Engine struct {
	opts Options
	meta metaStore // SetMeta without a log

	// mu is held shared by every run and exclusively by Upgrade and Close,
	// so no run straddles two builds of the chain.
	mu     sync.RWMutex
	closed bool
	maps   chainMaps
	progs  chainPrograms

	hdrMem, opsMem, ctlMem []byte
	pageMem                []byte // value_pages (bpf/storage/slab.h)
	ctl                    *chainBpfdbControl
	blobIDs                atomic.Uint64 // the last blob id handed out (blob.go)
	blobLog                blobLog       // logged blobs' values, for the drain (blob.go)
	slots                  [reqSlots]*reqSlot
	freeSlots              atomic.Uint64 // bit i: slots[i] is free

	// Durability (nil log: in memory only).
	log             *logd.Log
	ring            *ringbuf.Reader
	drainDone       chan struct{}
	drainMu         sync.Mutex      // serializes drain's users: drainLog and SyncLog
	syncReq         chan chan error // SyncLog's writes, for syncLogs (wal.go)
	syncBusy        atomic.Bool     // a SyncLog write is under way
	stopSync        chan struct{}   // stops syncLogs, once the drain has stopped
	drain           *logDrain
	logKick         chan struct{} // wakes drainLog (wal.go); holds one poke
	durableMu       sync.Mutex    // orders OnDurableChange's updates of durableFns
	durableFns      atomic.Pointer[[]*func()]
	logRecords      atomic.Uint64
	logBadRecords   atomic.Uint64
	recovery        Recovery
	checkpointMu    sync.Mutex
	checkpoints     atomic.Uint64
	gateClosedNanos atomic.Uint64
	checkpointNanos atomic.Uint64
	lastCheckpoint  atomic.Int64

	// Refusing writes the log cannot take (logfault.go).
	logGateMu  sync.Mutex // orders changes of logRefused
	logRefused atomic.Bool
	logFault   atomic.Pointer[error] // the cause of the last refusal
	stopWatch  chan struct{}
	watchDone  chan struct{}
	// Close: its deadline, and whether it gave up waiting (then the
	// kernel objects stay for the process's exit: see Close).
	closeDeadline atomic.Int64
	closingLog    atomic.Bool // the drain reads the ring to its end, failing or not
	unmapMu       sync.Mutex
	abandoned     bool

	txnSlots chan uint32
	txnGen   [MaxTxns]uint32
	txns     [MaxTxns]atomic.Pointer[Txn]

	storeFull atomic.Bool // a slab was full since the last vacuum
	vacuumMu  sync.Mutex  // one Vacuum at a time (vacuum.go)
	// longestCollect is the longest bpfdb_collect run, in ns (BenchmarkVacuum1M).
	longestCollect atomic.Int64
	expiry         *expirer // deletes expired keys (expiry.go)
	stopExpiry     chan struct{}
	expiryDone     chan struct{}
	stopReaper     chan struct{}
	reaperDone     chan struct{}
	closeOnce      sync.Once
	closeErr       error

	kernelReaped atomic.Uint64 // kernel transactions reaped (kerneltxn.go)
	longKeys     longKeys      // keys longer than InlineKeyLen (longkey.go)
	commitFns    commitFns     // OnCommit's (wal.go)
}

// reqSlot is one request slot of the request area: a header (struct
// bpfdb_req) and MaxBatch ops (struct bpfdb_op), both in mmapped map memory.
type reqSlot struct {
	id     uint32
	hdr    *chainBpfdbReq
	ops    []chainBpfdbOp
	packet []byte // struct bpfdb_run naming this slot
	attr   progRunAttr
	// long holds the long keys of the ops encoded since the slot was
	// taken (longkey.go, invariant 2), given back by release.
	long     []*longKey
	longKeys *longKeys
	// runs counts this slot's runs by the kernel's own measure of their
	// duration (RunLatencyBounds); only the slot's holder adds to it.
	runs runHistogram
}

// progRunAttr is the BPF_PROG_TEST_RUN member of union bpf_attr
// (include/uapi/linux/bpf.h), filled once per slot so a run is one syscall.
type progRunAttr struct {
	ProgFd, Retval, DataSizeIn, DataSizeOut uint32
	DataIn, DataOut                         uint64
	Repeat, Duration, CtxSizeIn, CtxSizeOut uint32
	CtxIn, CtxOut                           uint64
	Flags, CPU, BatchSize, _                uint32
}

// Open loads the chain with the given capacity and returns an empty store.
//
// With Options.Dir it opens (or creates) the data directory, refusing one
// another process is using, loads the newest checkpoint and replays the log
// after it (see Recovery), and logs every commit from then on.
func Open(opts Options) (*Engine, error) {
	opts.setDefaults()
	if err := opts.checkLimits(); err != nil {
		return nil, err
	}
	if err := opts.checkMemory(); err != nil {
		return nil, err
	}
	e := &Engine{opts: opts}
	spec, err := e.spec(opts.Build)
	if err != nil {
		return nil, err
	}
	var objs chainObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, loadError(err)
	}
	e.maps, e.progs = objs.chainMaps, objs.chainPrograms
	fail := func(err error) (*Engine, error) {
		if e.ring != nil {
			e.ring.Close()
		}
		if e.log != nil {
			e.log.Close()
		}
		e.maps.Close()
		e.progs.Close()
		e.unmap()
		return nil, err
	}
	if err := e.init(); err != nil {
		return fail(err)
	}
	if opts.Dir != "" {
		if e.log, err = logd.Open(opts.Dir, logd.Options{NoSync: opts.Durability == Async, SyncInterval: opts.SyncInterval,
			MinFreeBytes: opts.MinFreeBytes, StallTimeout: opts.LogStallTimeout, FS: opts.FS}); err != nil {
			return fail(err)
		}
		if e.recovery, err = e.recover(); err != nil {
			return fail(err)
		}
		if e.ring, err = ringbuf.NewReader(e.maps.WalRing); err != nil {
			return fail(fmt.Errorf("bpfdb: reading the log ring: %w", err))
		}
		e.log.Start(e.recovery.LSN)
		e.drain = &logDrain{rd: e.ring, w: e.log.NewWriter(), pending: map[uint64]*pendingTxn{},
			blobs: &e.blobLog, keys: &e.longKeys, commits: &e.commitFns, durable: e.log.DurableLSN, records: &e.logRecords,
			clock: func() uint64 { return atomic.LoadUint64(&e.ctl.Clock) }, bad: &e.logBadRecords, closing: &e.closingLog}
		e.drainDone = make(chan struct{})
		e.logKick = make(chan struct{}, 1)
		go e.drainLog()
		atomic.StoreUint64(&e.ctl.WalOn, 1)
		e.refreshLogGate()
		e.stopWatch, e.watchDone = make(chan struct{}), make(chan struct{})
		go e.watchLog(e.stopWatch, e.watchDone)
		e.syncReq, e.stopSync = make(chan chan error, 1), make(chan struct{})
		go e.syncLogs(e.stopSync)
	}
	e.startKernelAPI()
	e.stopReaper = make(chan struct{})
	e.reaperDone = make(chan struct{})
	go e.background()
	e.stopExpiry, e.expiryDone = make(chan struct{}), make(chan struct{})
	go e.expireLoop(e.stopExpiry, e.expiryDone)
	if opts.PinDir != "" {
		if err := e.pin(opts.PinDir); err != nil {
			e.opts.PinDir = "" // not ours to remove
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Recovery returns what Open recovered from its directory.
func (e *Engine) Recovery() Recovery { return e.recovery }

func loadError(err error) error {
	// Only EPERM means missing privileges: the verifier rejects a program
	// with EACCES, and that must fail loudly, never read as "not root".
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: %v", ErrNotPermitted, err)
	}
	return fmt.Errorf("bpfdb: loading the chain: %w", err)
}

// spec returns the chain's collection spec sized by e.opts.
func (e *Engine) spec(build uint32) (*ebpf.CollectionSpec, error) {
	spec, err := loadChain()
	if err != nil {
		return nil, fmt.Errorf("bpfdb: reading the embedded chain: %w", err)
	}
	spec.Maps["records"].MaxEntries = uint32(e.opts.MaxKeys)
	spec.Maps["wal_ring"].MaxEntries = uint32(e.opts.LogRingBytes)
	spec.Maps["value_pages"].MaxEntries = uint32(e.valuePages())
	if err := spec.Variables["bpfdb_build"].Set(build); err != nil {
		return nil, fmt.Errorf("bpfdb: setting the build id: %w", err)
	}
	return spec, nil
}

// stagePrograms lists the chain's stages in PROG_ARRAY order.
func (p *chainPrograms) stages() map[chainBpfdbStage]*ebpf.Program {
	return map[chainBpfdbStage]*ebpf.Program{
		chainBpfdbStageBPFDB_STAGE_AUTO:        p.BpfdbAuto,
		chainBpfdbStageBPFDB_STAGE_TXN_OPEN:    p.BpfdbTxnOpen,
		chainBpfdbStageBPFDB_STAGE_TXN_OPS:     p.BpfdbTxnOps,
		chainBpfdbStageBPFDB_STAGE_TXN_COMMIT:  p.BpfdbTxnCommit,
		chainBpfdbStageBPFDB_STAGE_TXN_RELEASE: p.BpfdbTxnRelease,
	}
}

func (e *Engine) fillChain(p *chainPrograms) error {
	for stage, prog := range p.stages() {
		if err := e.maps.ChainProgs.Put(uint32(stage), prog); err != nil {
			return fmt.Errorf("bpfdb: installing stage %d: %w", stage, err)
		}
	}
	return nil
}

func mmapMap(m *ebpf.Map) ([]byte, error) {
	size := int(m.ValueSize()) * int(m.MaxEntries())
	size = (size + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	mem, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("bpfdb: mapping %s: %w", m, err)
	}
	return mem, nil
}

func (e *Engine) init() error {
	if err := e.fillChain(&e.progs); err != nil {
		return err
	}
	var err error
	if e.hdrMem, err = mmapMap(e.maps.ReqHdr); err != nil {
		return err
	}
	if e.opsMem, err = mmapMap(e.maps.ReqOps); err != nil {
		return err
	}
	if e.ctlMem, err = mmapMap(e.maps.Control); err != nil {
		return err
	}
	if e.pageMem, err = mmapMap(e.maps.ValuePages); err != nil {
		return err
	}
	e.ctl = (*chainBpfdbControl)(unsafe.Pointer(&e.ctlMem[0]))
	// The first commit gets timestamp (and LSN) 1. A snapshot at 0 sees
	// nothing, so registering 0 (which reads as "no snapshot") is harmless.
	e.ctl.Clock, e.ctl.Visible = 0, 0
	e.ctl.PageCap = uint64(e.valuePages())
	e.initKernelAPI()
	e.setClock()
	e.expiry = newExpirer()

	if reqSlots != 64 {
		return fmt.Errorf("%w: the slot bitmap needs BPFDB_REQ_SLOTS = 64, not %d", ErrInternal, reqSlots)
	}
	hdrSize := int(unsafe.Sizeof(chainBpfdbReq{}))
	opSize := int(unsafe.Sizeof(chainBpfdbOp{}))
	for i := 0; i < reqSlots; i++ {
		s := &reqSlot{
			id:       uint32(i),
			hdr:      (*chainBpfdbReq)(unsafe.Pointer(&e.hdrMem[i*hdrSize])),
			ops:      unsafe.Slice((*chainBpfdbOp)(unsafe.Pointer(&e.opsMem[i*MaxBatch*opSize])), MaxBatch),
			packet:   make([]byte, unsafe.Sizeof(chainBpfdbRun{})),
			longKeys: &e.longKeys,
		}
		run := (*chainBpfdbRun)(unsafe.Pointer(&s.packet[0]))
		run.Magic, run.Slot = runMagic, uint32(i)
		s.attr.DataIn = uint64(uintptr(unsafe.Pointer(&s.packet[0])))
		s.attr.DataSizeIn = uint32(len(s.packet))
		s.attr.Repeat = 1
		e.slots[i] = s
	}
	e.freeSlots.Store(^uint64(0))
	e.txnSlots = make(chan uint32, MaxTxns)
	for i := 0; i < MaxTxns; i++ {
		e.txnSlots <- uint32(i)
	}
	return nil
}

func (e *Engine) unmap() {
	for _, m := range [][]byte{e.hdrMem, e.opsMem, e.ctlMem, e.pageMem} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	e.hdrMem, e.opsMem, e.ctlMem, e.ctl = nil, nil, nil, nil
	e.pageMem = nil
}

// Close aborts open transactions, and with a data directory takes a last
// checkpoint (unless the log is refusing writes) and waits until every
// commit is on disk. Then it releases the kernel objects; without a
// directory the data is gone with them.
//
// Close returns within Options.CloseTimeout (and a moment) whatever the
// disk does. If the log could not make every commit durable by then, it
// returns ErrNotDurable naming the LSNs that are not (they were never
// acknowledged with Sync durability); if the disk had not answered at
// all, the kernel objects are left to the process's exit.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		deadline := time.Now().Add(e.opts.CloseTimeout)
		e.closeDeadline.Store(deadline.UnixNano())
		done := make(chan error, 1)
		go func() { done <- e.close() }()
		timer := time.NewTimer(time.Until(deadline) + closeGrace)
		defer timer.Stop()
		select {
		case e.closeErr = <-done:
		case <-timer.C:
			e.unmapMu.Lock()
			e.abandoned = true
			e.closeErr = errCloseTimeout
			if e.log != nil {
				e.closeErr = e.notDurableError(errCloseTimeout)
				e.log.Abandon() // its waiters learn the commit is not durable
			}
			e.unmapMu.Unlock()
		}
	})
	return e.closeErr
}

// closeGrace is how long Close waits past CloseTimeout for the log's
// goroutine, which gives up retrying at CloseTimeout, to report.
const closeGrace = 500 * time.Millisecond

func (e *Engine) close() error {
	close(e.stopExpiry)
	<-e.expiryDone
	close(e.stopReaper)
	<-e.reaperDone
	for i := range e.txns {
		if t := e.txns[i].Load(); t != nil {
			t.Abort()
		}
	}
	var errs []error
	if e.log != nil {
		close(e.stopWatch)
		<-e.watchDone
		if fault := e.log.Health(); fault != nil {
			// The log holds every durable commit: a checkpoint is not needed
			// to recover them, and would fail on the same disk.
			e.opts.Logf("bpfdb: closing without a checkpoint: %v", fault)
		} else if _, err := e.Checkpoint(); err != nil {
			errs = append(errs, err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.log != nil {
		// No run is in flight: read what is left in the ring, then stop.
		e.closingLog.Store(true)
		e.ring.Flush()
		e.kickLog()
		<-e.drainDone
		close(e.stopSync)
		if e.drain.closeErr != nil {
			errs = append(errs, e.notDurableError(e.drain.closeErr))
		}
		errs = append(errs, e.ring.Close(), e.log.Close())
	}
	errs = append(errs, e.unpin())
	e.unmapMu.Lock()
	defer e.unmapMu.Unlock()
	if !e.abandoned {
		e.unmap()
		errs = append(errs, e.progs.Close(), e.maps.Close())
	}
	return errors.Join(errs...)
}

// acquire takes a request slot and the run lock; release gives both back.
// Free slots are a bitmap, not a channel: two channel operations cost more
// than the chain's own work for a GET.
func (e *Engine) acquire() (*reqSlot, error) {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, ErrClosed
	}
	for try := 0; ; try++ {
		free := e.freeSlots.Load()
		if free == 0 {
			// All 64 runs are in flight: they finish in microseconds.
			backoff(min(try, 8))
			continue
		}
		i := bits.TrailingZeros64(free)
		if e.freeSlots.CompareAndSwap(free, free&^(1<<i)) {
			return e.slots[i], nil
		}
	}
}

func (e *Engine) release(s *reqSlot) {
	if len(s.long) > 0 {
		e.longKeys.release(s.long)
		clear(s.long)
		s.long = s.long[:0]
	}
	e.freeSlots.Or(1 << s.id)
	e.mu.RUnlock()
}

// run executes the request in slot s with one BPF_PROG_RUN of the chain,
// and with Sync durability wakes the log's reader if it committed anything:
// its caller is about to wait for the disk. With Async nobody waits, and
// the reader's poll (drainPoll) gathers many commits per pebble write. (The
// ABORT record of a transaction whose commit failed after logging its
// writes is read at the next poke or poll: nothing waits for it either.)
func (e *Engine) run(s *reqSlot) error {
	err := e.runProg(s, e.progs.BpfdbEntry)
	if e.logKick != nil && s.hdr.CommitTs != 0 && e.opts.Durability == Sync {
		e.kickLog()
	}
	return err
}

// runProg runs prog once on slot s's packet. It issues BPF_PROG_TEST_RUN
// itself rather than through Program.Run, which masks signals around every
// run: two more syscalls, about 2µs here, half the cost of a run.
//
// A run interrupted by a signal (EINTR) is reissued only if it did not
// happen: every program that serves a request writes its build id into the
// slot's header, which is cleared first. A request never runs twice.
func (e *Engine) runProg(s *reqSlot, prog *ebpf.Program) error {
	s.attr.ProgFd = uint32(prog.FD())
	for {
		s.attr.Retval = 0
		s.hdr.Build = 0
		// RawSyscall: a test run never blocks, so skip the scheduler hand-off.
		_, _, errno := unix.RawSyscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&s.attr)), unsafe.Sizeof(s.attr))
		if errno == unix.EINTR && s.hdr.Build == 0 {
			continue
		}
		if errno != 0 && errno != unix.EINTR {
			return fmt.Errorf("bpfdb: running %s: %w", prog, errno)
		}
		if ret := s.attr.Retval; ret != 2 { // XDP_PASS
			return fmt.Errorf("%w: %s rejected request slot %d (return %d)", ErrInternal, prog, s.id, ret)
		}
		s.runs.observe(s.attr.Duration)
		return nil
	}
}

// waitDurable returns once the commit at ts (0: none) is on disk, with Sync
// durability. It needs no run lock: call it after releasing the slot, so a
// checkpoint waiting for in-flight runs does not wait for fsyncs.
func (e *Engine) waitDurable(ts uint64) error {
	if ts == 0 || e.log == nil || e.opts.Durability != Sync {
		return nil
	}
	if err := e.log.WaitDurable(ts); err != nil {
		return fmt.Errorf("%w (LSN %d): %v", ErrNotDurable, ts, err)
	}
	return nil
}

// waitVisible returns once every commit up to ts is visible to snapshots,
// so a caller that saw its commit acknowledged reads it back in any later
// snapshot. Commits on other CPUs finish within microseconds; this rarely loops.
func (e *Engine) waitVisible(ts uint64) {
	for i := 0; atomic.LoadUint64(&e.ctl.Visible) < ts; i++ {
		if i < 100 {
			continue
		}
		time.Sleep(10 * time.Microsecond)
	}
}

// Build returns the build id of the chain now installed.
func (e *Engine) Build() uint32 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.opts.Build
}

// Upgrade loads a new build of the chain's programs over the same maps and
// swaps it into the chain: every key, version and open transaction stays.
// Runs in flight finish on the old build first.
func (e *Engine) Upgrade(build uint32) error {
	spec, err := e.spec(build)
	if err != nil {
		return err
	}
	// Hold the lock while loading: the maps' descriptors must stay open.
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	var progs chainPrograms
	err = spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: e.MapReplacements()})
	if err != nil {
		return loadError(err)
	}
	if err := e.fillChain(&progs); err != nil {
		e.fillChain(&e.progs)
		progs.Close()
		return err
	}
	old := e.progs
	e.progs = progs
	e.opts.Build = build
	return old.Close()
}

// MapReplacements returns the store's maps by their names in the chain's
// object, for loading other BPF programs against the open store: pass it
// as ebpf.CollectionOptions.MapReplacements, and a program that declares
// any of these maps (bpf/include/maps.h) uses the store's own. The maps
// stay the engine's: do not close them.
func (e *Engine) MapReplacements() map[string]*ebpf.Map {
	m := &e.maps
	return map[string]*ebpf.Map{
		"chain_progs": m.ChainProgs, "req_hdr": m.ReqHdr, "req_ops": m.ReqOps,
		"records": m.Records, "empty_record": m.EmptyRecord, "removed_versions": m.RemovedVersions, "txn_table": m.TxnTable,
		"control": m.Control, "snapshots": m.Snapshots, "stats": m.Stats, "value_pages": m.ValuePages,
		"wal_ring": m.WalRing, "wal_scratch": m.WalScratch,
	}
}
