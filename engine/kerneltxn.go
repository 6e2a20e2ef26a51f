package engine

// The engine's side of the API for other BPF programs
// (bpf/include/bpfdb_api.h): the layout and durable LSN it publishes in
// the control block, the reaper of abandoned kernel transactions, and
// FitSpec for loading a program against the open store.
//
// Invariants, and why:
//
//   - control.layout holds BPFDB_LAYOUT_VERSION from Open on: a BPF program
//     built against another layout, or run before the store is open,
//     fails every call with BPFDB_ERR_LAYOUT instead of misreading the maps.
//   - control.durable_lsn never passes the log's durable LSN: it is set
//     from e.log.DurableLSN() at Open (the recovered state is on disk) and
//     after every change of it (OnDurableChange), so a BPF writer that sees
//     its LSN at or below it knows its write is on disk.
//   - Kernel transactions live in the BPFDB_KERNEL_TXNS slots of the
//     transaction table above MaxTxns, which the engine never hands out.
//     One begun more than Options.TxnTimeout ago (control.ktxn_timeout_ns,
//     measured from its begin, bpf_ktime_get_ns) is aborted by
//     bpfdb_ktxn_reap, run by the engine's reaper while any kernel slot is
//     claimed (control.ktxn_claimed), so an abandoned one releases its
//     locks within about 1.25 TxnTimeout. A negative TxnTimeout disables it.

import (
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf"
)

// KernelTxns is the number of transactions BPF programs may have open at
// once (BPFDB_KERNEL_TXNS), besides the engine's MaxTxns.
const KernelTxns = int(chainBpfdbLimitBPFDB_KERNEL_TXNS)

// LayoutVersion is BPFDB_LAYOUT_VERSION (bpf/include/bpfdb.h): a hash of
// the limits and struct sizes the chain was compiled with, which the
// engine stores in control.layout at Open. A BPF program built against
// bpfdb_api.h compares it with its own.
const LayoutVersion = uint64(chainBpfdbLayoutBPFDB_LAYOUT_VERSION)

// initKernelAPI publishes the layout and the kernel transactions' timeout
// in the control block (from init, before anything runs).
func (e *Engine) initKernelAPI() {
	var timeout uint64
	if e.opts.TxnTimeout > 0 {
		timeout = uint64(e.opts.TxnTimeout.Nanoseconds())
	}
	atomic.StoreUint64(&e.ctl.KtxnTimeoutNs, timeout)
	atomic.StoreUint64(&e.ctl.DurableLsn, 0)
	atomic.StoreUint64(&e.ctl.Layout, LayoutVersion)
}

// startKernelAPI keeps control.durable_lsn up to date once the log runs.
func (e *Engine) startKernelAPI() {
	if e.log == nil {
		return
	}
	publish := func() {
		// Under durableMu: two writers of the log must not store out of order.
		e.durableMu.Lock()
		defer e.durableMu.Unlock()
		if ctl := e.ctl; ctl != nil {
			if lsn := e.log.DurableLSN(); lsn > atomic.LoadUint64(&ctl.DurableLsn) {
				atomic.StoreUint64(&ctl.DurableLsn, lsn)
			}
		}
	}
	e.OnDurableChange(publish)
	publish()
}

// reapKernelTxns aborts kernel transactions older than Options.TxnTimeout
// (from the reaper, every TxnTimeout/4).
func (e *Engine) reapKernelTxns() {
	if e.opts.TxnTimeout <= 0 || atomic.LoadUint64(&e.ctl.KtxnClaimed) == 0 {
		return
	}
	s, err := e.acquire()
	if err != nil {
		return
	}
	defer e.release(s)
	if e.runProg(s, e.progs.BpfdbKtxnReap) == nil {
		e.kernelReaped.Add(s.hdr.CommitTs)
	}
}

// KernelTxnsReaped is the number of kernel transactions the reaper has
// aborted because they outlived Options.TxnTimeout.
func (e *Engine) KernelTxnsReaped() uint64 { return e.kernelReaped.Load() }

// DurableLSNBPF is control.durable_lsn, the durable LSN BPF programs read
// (bpfdb_durable_lsn).
func (e *Engine) DurableLSNBPF() uint64 { return atomic.LoadUint64(&e.ctl.DurableLsn) }

// FitSpec prepares spec, a BPF object built against bpf/include/bpfdb_api.h,
// for loading against the open store: it gives every map of spec that the
// store has the store's size (a replacement must match it exactly) and
// returns those maps, for ebpf.CollectionOptions.MapReplacements. The maps
// stay the engine's: do not close them.
func (e *Engine) FitSpec(spec *ebpf.CollectionSpec) (map[string]*ebpf.Map, error) {
	repl := map[string]*ebpf.Map{}
	for name, m := range e.MapReplacements() {
		ms, ok := spec.Maps[name]
		if !ok {
			continue
		}
		if ms.Type != m.Type() || ms.KeySize != m.KeySize() || ms.ValueSize != m.ValueSize() {
			return nil, fmt.Errorf("%w: map %s is %v %d/%d in the program, %v %d/%d in the store (layout %#x)",
				ErrLayout, name, ms.Type, ms.KeySize, ms.ValueSize, m.Type(), m.KeySize(), m.ValueSize(), LayoutVersion)
		}
		ms.MaxEntries = m.MaxEntries()
		repl[name] = m
	}
	return repl, nil
}

// StatusError returns the error that status, an enum bpfdb_status a BPF
// program got from bpfdb_api.h, stands for (nil for BPFDB_OK): a Go
// program can report its BPF half's failures as the engine's own.
func (e *Engine) StatusError(status int32) error {
	if chainBpfdbStatus(status) == chainBpfdbStatusBPFDB_ERR_STORE_FULL { // no detail from the API: say both
		return fmt.Errorf("%w: the index (Options.MaxKeys, %d keys) or the value store (Options.MaxMemory) is full",
			ErrStoreFull, e.opts.MaxKeys)
	}
	return e.statusError(status, 0)
}
