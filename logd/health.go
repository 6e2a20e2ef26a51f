package logd

// Faults: what the log does when the disk fails it, and how it tells.
//
// Invariants, and why:
//
//   - Every pebble write runs under dbMu and guard. Pebble v1 calls
//     Logger.Fatalf on a failed commit, and its commit pipeline is wedged
//     after one (the failed batch stays in its pending queue, so a later
//     commit waits for it forever). panicLogger turns the Fatalf into a
//     panic that guard recovers on the writer's own goroutine, and marks
//     the instance broken; no write reaches a broken instance (writes
//     check broken under dbMu), so nothing ever waits on a wedged one.
//   - Only the Writer reopens (write): it closes the broken instance and
//     opens the directory again, which replays what pebble has on disk,
//     then writes its own pending and unsynced batches again (Writer.adopt).
//     A CheckpointWriter that started on the old instance fails instead
//     (writeOn), and the reopen drops what it wrote (a checkpoint without
//     its manifest). A Fatalf on pebble's own goroutines (a MANIFEST write
//     of a flush) cannot be recovered there: it still stops the process,
//     and recovery at the next start keeps every acknowledged commit.
//   - Health is the log's answer to "may a commit apply now?": not while
//     the last write failed, nor while less than twice MinFreeBytes is
//     free (the space check is made before every write and by ProbeSpace),
//     nor while a write has been under way longer than StallTimeout. The
//     engine refuses commits in the kernel while Health is not nil.

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// pebbleFatal is what panicLogger panics with: pebble's fatal error.
type pebbleFatal struct{ msg string }

func (f pebbleFatal) Error() string { return f.msg } // pebble's messages name it

// panicLogger drops pebble's informational messages (WAL replay, flushes)
// and panics with its fatal ones, for guard to recover.
type panicLogger struct{}

func (panicLogger) Infof(string, ...any) {}

func (panicLogger) Fatalf(format string, args ...any) {
	panic(pebbleFatal{fmt.Sprintf(format, args...)})
}

// guard runs fn, turning pebble's fatal error into an error that marks
// the instance broken. Any other panic is not ours to hide.
func (l *Log) guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			l.broken.Store(true)
			err = f
		}
	}()
	return fn()
}

// errBroken refuses a write to an instance that failed, or was replaced.
var errBroken = errors.New("logd: the log's pebble instance failed a write and is being reopened")

// write runs fn on the current instance under dbMu, first reopening the
// directory if the last write broke the instance. Only the Writer's
// goroutine calls it.
func (l *Log) write(fn func(*pebble.DB) error) error {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if l.broken.Load() {
		if err := l.reopen(); err != nil {
			return err
		}
	}
	return l.guard(func() error { return fn(l.db) })
}

// writeOn runs fn under dbMu on the instance of generation gen, or fails
// if that instance broke or was replaced.
func (l *Log) writeOn(gen uint64, fn func(*pebble.DB) error) error {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if l.broken.Load() || gen != l.gen {
		return errBroken
	}
	return l.guard(func() error { return fn(l.db) })
}

// reopen replaces the broken instance with a new one of the same
// directory. Called under dbMu.
func (l *Log) reopen() error {
	if l.db != nil {
		if err := closeDB(l.db); err != nil {
			l.closeErr = err // kept for the reopen's error, should it fail
		}
		l.db = nil
	}
	var db *pebble.DB
	err := l.guard(func() error {
		var err error
		db, err = l.openDB()
		return err
	})
	if err != nil {
		return fmt.Errorf("reopening the log (closing the failed instance: %v): %w", l.closeErr, err)
	}
	l.db, l.gen = db, l.gen+1
	l.broken.Store(false)
	l.stats.Reopens.Add(1)
	return nil
}

// closeDB closes db, reporting a panic of a broken instance as an error.
func closeDB(db *pebble.DB) (err error) {
	if db == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("logd: closing pebble: %v", r)
		}
	}()
	return db.Close()
}

// ErrDiskFull is returned (wrapped) for a write refused for lack of space.
var ErrDiskFull = errors.New("no space left on device")

// checkSpace looks at the free space of the volume: it records for Health
// whether less than twice MinFreeBytes is free, and refuses a write of n
// bytes that would leave less than MinFreeBytes.
func (l *Log) checkSpace(n int) error {
	du, err := l.opts.FS.GetDiskUsage(l.dir)
	if err != nil {
		return fmt.Errorf("logd: free space of %s: %w", l.dir, err)
	}
	free, keep := int64(min(du.AvailBytes, 1<<62)), l.opts.MinFreeBytes
	var low error
	if free < 2*keep {
		low = fmt.Errorf("%w: %d bytes free in %s; writes are refused below %d (twice the %d kept free, --min-free-bytes)",
			ErrDiskFull, free, l.dir, 2*keep, keep)
	}
	l.mu.Lock()
	l.lowSpace = low
	l.mu.Unlock()
	if free < keep+int64(n) {
		return fmt.Errorf("%w: %d bytes free in %s; a write of %d would leave less than the %d kept free (--min-free-bytes)",
			ErrDiskFull, free, l.dir, n, keep)
	}
	return nil
}

// Health reports why commits should be refused now, or nil: the last
// write failed (ErrLogFailed, until a write succeeds), the volume has
// less than twice MinFreeBytes free (ErrDiskFull, as of the last write or
// ProbeSpace), or a write has been under way longer than StallTimeout
// (ErrLogStalled).
func (l *Log) Health() error {
	if err := l.stalled(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failure != nil {
		return l.failure
	}
	return l.lowSpace
}

// stalled is ErrLogStalled while a write has been under way longer than
// StallTimeout, else nil.
func (l *Log) stalled() error {
	start := l.writeStart.Load()
	if start == 0 {
		return nil
	}
	if d := time.Since(time.Unix(0, start)); d > l.opts.StallTimeout {
		return fmt.Errorf("%w: a write has been under way for %v (a slow or hung disk; the bound is %v)",
			ErrLogStalled, d.Round(time.Millisecond), l.opts.StallTimeout)
	}
	return nil
}

// ProbeSpace looks at the free space again (as every write does) and
// returns Health: while commits are refused, nothing is written, so the
// engine probes to learn when space has come back.
func (l *Log) ProbeSpace() error {
	if err := l.checkSpace(0); err != nil && !errors.Is(err, ErrDiskFull) {
		return err
	}
	return l.Health()
}

// MinFreeBytes is the free space the log keeps in its volume.
func (l *Log) MinFreeBytes() int64 { return l.opts.MinFreeBytes }
