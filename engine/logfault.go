package engine

// Refusing writes the log cannot take.
//
// Invariants, and why:
//
//   - While the log's Health is not nil (the last write failed, the
//     volume is nearly full, a write is stalled), control.log_refused is
//     set, and the chain refuses every commit that writes before it
//     reserves ring space (bpf/wal/wal.h): ErrLogUnavailable, nothing
//     applied. Reads, and transactions that write nothing, go on.
//   - The flag follows Health within logWatchInterval: the log's writer
//     refreshes it after every write, and watchLog every interval, which
//     also probes the free space while refused (nothing is written then,
//     so nothing else would notice space coming back) and catches a write
//     that has stalled. So writes resume by themselves once the disk does.
//   - Commits that passed the check just before the flag was set are
//     applied and not yet durable: Stats (DurableLSN below CommitLSN), the
//     log line on the transition, and ErrNotDurable for their waiters say
//     so. The log keeps trying to write them.

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// logWatchInterval is how often watchLog looks at the log's health.
const logWatchInterval = 50 * time.Millisecond

// refreshLogGate sets control.log_refused from the log's health, and says
// so in the log on every change.
func (e *Engine) refreshLogGate() {
	health := e.log.Health()
	refused := health != nil
	if refused {
		e.logFault.Store(&health)
	}
	if refused == e.logRefused.Load() {
		return
	}
	e.logGateMu.Lock()
	defer e.logGateMu.Unlock()
	if refused == e.logRefused.Load() {
		return
	}
	e.logRefused.Store(refused)
	durable, last := e.log.DurableLSN(), atomic.LoadUint64(&e.ctl.Clock)
	if refused {
		atomic.StoreUint64(&e.ctl.LogRefused, 1)
		e.opts.Logf("bpfdb: writes refused, reads go on: %v; %s", health, describeNotDurable(durable, last))
		e.log.Wake() // waiters for durability learn of a stall too
		return
	}
	atomic.StoreUint64(&e.ctl.LogRefused, 0)
	e.opts.Logf("bpfdb: the log writes again: writes accepted (durable to LSN %d)", durable)
}

// describeNotDurable says which commits are applied but not on disk.
func describeNotDurable(durable, last uint64) string {
	if last <= durable {
		return fmt.Sprintf("every commit is durable (LSN %d)", durable)
	}
	return fmt.Sprintf("commits at LSN %d to %d (%d) are applied and not yet durable", durable+1, last, last-durable)
}

// logRefusedError is the error of a commit the chain refused because
// control.log_refused was set: ErrLogUnavailable with its cause.
func (e *Engine) logRefusedError() error {
	if cause := e.logFault.Load(); cause != nil {
		return fmt.Errorf("%w: %v", ErrLogUnavailable, *cause)
	}
	return ErrLogUnavailable
}

// LogFault returns why writes are refused now, or nil when they are
// taken (always nil without a data directory).
func (e *Engine) LogFault() error {
	if e.log == nil || !e.logRefused.Load() {
		return nil
	}
	return e.logRefusedError()
}

// watchLog keeps control.log_refused in step with the log's health while
// nothing is written (see the invariants above), until stop is closed.
func (e *Engine) watchLog(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(logWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if e.logRefused.Load() {
				e.log.ProbeSpace()
			}
			e.refreshLogGate()
		}
	}
}

// errCloseTimeout: Close ran out of Options.CloseTimeout.
var errCloseTimeout = errors.New("bpfdb: closing took longer than Options.CloseTimeout")

// notDurableError is Close's error when commits could not be made
// durable: ErrNotDurable naming them and the cause.
func (e *Engine) notDurableError(cause error) error {
	durable, last := e.log.DurableLSN(), atomic.LoadUint64(&e.ctl.Clock)
	if last <= durable {
		return cause
	}
	return fmt.Errorf("%w: %s: %v", ErrNotDurable, describeNotDurable(durable, last), cause)
}
