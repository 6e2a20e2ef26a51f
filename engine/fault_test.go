package engine

// Fault injection: the log's disk fails writes or syncs with EIO or ENOSPC,
// or answers slowly, or never; the process is killed in the middle of a
// checkpoint and of the log's truncation at recovery; the WAL's last write
// is torn. Faults are injected under pebble through internal/faultfs
// (Options.FS). Every case checks the same promises: every acknowledged
// write survives, nothing refused appears, reads are served during the
// fault, and writes resume by themselves once it clears.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/internal/faultfs"
	"github.com/cockroachdb/pebble/vfs"
)

// outcomes sorts the writes of a fault run by what they were told.
type outcomes struct {
	mu         sync.Mutex
	acked      map[string]bool // acknowledged: must survive
	refused    map[string]bool // refused (nothing applied): must never appear
	notDurable map[string]bool // applied, not acknowledged: the log keeps them
	other      []error
}

func newOutcomes() *outcomes {
	return &outcomes{acked: map[string]bool{}, refused: map[string]bool{}, notDurable: map[string]bool{}}
}

// record files keys under err, the answer of the write that wrote them.
func (o *outcomes) record(err error, keys ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var into map[string]bool
	switch {
	case err == nil:
		into = o.acked
	case errors.Is(err, ErrLogUnavailable), errors.Is(err, ErrLogFull):
		into = o.refused
	case errors.Is(err, ErrNotDurable):
		into = o.notDurable
	default:
		o.other = append(o.other, err)
		return
	}
	for _, k := range keys {
		into[k] = true
	}
}

// faultLoad writes unique keys from several goroutines, autocommit and in
// two-key transactions, until stop is closed.
func faultLoad(e *Engine, o *outcomes, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%06d", w, i)
				if w%2 == 0 {
					o.record(e.Set([]byte(k), []byte(k)), k)
					time.Sleep(100 * time.Microsecond)
					continue
				}
				tx, err := e.Begin()
				if err != nil {
					o.record(err)
					continue
				}
				err = tx.Set([]byte(k+"a"), []byte(k))
				if err == nil {
					err = tx.Set([]byte(k+"b"), []byte(k))
				}
				if err == nil {
					err = tx.Commit()
				}
				tx.Abort()
				if errors.Is(err, ErrConflict) {
					continue // unique keys: cannot happen, but retryable and applies nothing
				}
				o.record(err, k+"a", k+"b")
				time.Sleep(100 * time.Microsecond)
			}
		}(w)
	}
	return &wg
}

// TestLogFaults: each fault of the disk under the log, injected while four
// writers run, then cleared.
func TestLogFaults(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close() // skip or fail without privileges
	for _, c := range []struct {
		name        string
		set         func(fs *faultfs.FS)
		cause       string // in the refusals' error
		loadRefused bool   // the writers meet refusals (not while they wait on a slow fsync)
	}{
		{"EIO on WAL write", func(fs *faultfs.FS) {
			fs.Set(faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO})
		}, "input/output error", true},
		{"EIO on WAL sync", func(fs *faultfs.FS) {
			fs.Set(faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO})
		}, "input/output error", true},
		{"ENOSPC on WAL write", func(fs *faultfs.FS) {
			fs.Set(faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.ENOSPC})
		}, "no space left on device", true},
		{"torn WAL write", func(fs *faultfs.FS) {
			fs.Set(faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO, Torn: true})
		}, "input/output error", true},
		{"slow fsync", func(fs *faultfs.FS) { fs.SetSyncDelay(time.Second) }, "stalled", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := faultfs.New(vfs.Default)
			dir := t.TempDir()
			opts := Options{MaxKeys: 1 << 16, Dir: dir, FS: fs,
				LogStallTimeout: 200 * time.Millisecond, CheckpointInterval: -1, CheckpointLogBytes: -1,
				Logf: t.Logf}
			e := openTest(t, opts)
			specSet(t, e, []byte("before"), []byte("the fault"))
			o := newOutcomes()
			stop := make(chan struct{})
			wg := faultLoad(e, o, stop)
			time.Sleep(100 * time.Millisecond)

			c.set(fs)
			faultAt := time.Now()
			var fault error
			for time.Since(faultAt) < 10*time.Second {
				if fault = e.LogFault(); fault != nil && strings.Contains(fault.Error(), c.cause) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if fault == nil || !strings.Contains(fault.Error(), c.cause) {
				t.Fatalf("LogFault under the fault = %v, want an error saying %q", fault, c.cause)
			}
			t.Logf("refusing %v after the fault: %v", time.Since(faultAt).Round(time.Millisecond), fault)
			err := e.Set([]byte("during"), []byte("the fault"))
			if !errors.Is(err, ErrLogUnavailable) || !strings.Contains(err.Error(), c.cause) {
				t.Errorf("a write during the fault = %v, want ErrLogUnavailable naming %q", err, c.cause)
			}
			// Reads are served meanwhile.
			for i := 0; i < 20; i++ {
				specWant(t, e, []byte("before"), []byte("the fault"))
				time.Sleep(10 * time.Millisecond)
			}

			fs.Clear()
			clearedAt := time.Now()
			for e.Set([]byte("after"), []byte("the fault")) != nil {
				if time.Since(clearedAt) > 10*time.Second {
					t.Fatalf("writes still refused 10s after the fault cleared: %v", e.LogFault())
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("writes taken %v after the fault cleared", time.Since(clearedAt).Round(time.Millisecond))
			time.Sleep(100 * time.Millisecond)
			close(stop)
			wg.Wait()
			if len(o.other) > 0 {
				t.Errorf("%d writes failed otherwise, first: %v", len(o.other), o.other[0])
			}
			if c.loadRefused && len(o.refused) == 0 {
				t.Errorf("no write was refused during the fault")
			}
			if st := fs.Stats(); fs.Injected() == 0 && st.Syncs == 0 {
				t.Fatalf("the fault never fired")
			}
			st, _ := e.Stats()
			t.Logf("%d acknowledged, %d refused, %d applied and not durable; %d log reopens, %d write errors",
				len(o.acked), len(o.refused), len(o.notDurable), st.LogReopens, st.LogWriteErrors)
			if err := e.Close(); err != nil {
				t.Fatalf("Close after the fault cleared: %v", err)
			}

			e = openTest(t, Options{MaxKeys: 1 << 16, Dir: dir})
			checkOutcomes(t, e, o)
			specWant(t, e, []byte("after"), []byte("the fault"))
			specAbsent(t, e, []byte("during"))
		})
	}
}

// checkOutcomes checks, after a restart: every acknowledged key is there;
// no refused key is; the applied ones the log went on writing are there.
func checkOutcomes(t *testing.T, e *Engine, o *outcomes) {
	t.Helper()
	check := func(what string, keys map[string]bool, present bool) {
		bad := 0
		for k := range keys {
			_, err := e.Get([]byte(k))
			if (err == nil) != present {
				if bad < 5 {
					t.Errorf("%s key %s: Get after restart = %v", what, k, err)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d %s keys wrong after restart", bad, len(keys), what)
		}
	}
	check("acknowledged", o.acked, true)
	check("refused", o.refused, false)
	check("applied, not durable", o.notDurable, true)
}

// A disk that stops answering does not hold Close: it returns within
// CloseTimeout with ErrNotDurable naming the commits not on disk. Once the
// disk answers again, the directory recovers every acknowledged commit.
func TestCloseOnHungDisk(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close()
	fs := faultfs.New(vfs.Default)
	dir := t.TempDir()
	opts := Options{MaxKeys: 1 << 12, Dir: dir, FS: fs, CloseTimeout: 2 * time.Second,
		CheckpointInterval: -1, CheckpointLogBytes: -1, Logf: t.Logf}
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		specSet(t, e, specKey("acked", i), specPattern(50, byte(i)))
	}
	fs.SetSyncDelay(time.Hour) // a disk that never answers, until the test lets it
	done := make(chan error, 1)
	go func() { done <- e.Set([]byte("hung"), []byte("write")) }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	err = e.Close()
	took := time.Since(start)
	t.Logf("Close on a hung disk: %v after %v", err, took)
	if took > opts.CloseTimeout+2*time.Second {
		t.Errorf("Close took %v, bound %v", took, opts.CloseTimeout)
	}
	if !errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), "not yet durable") {
		t.Errorf("Close on a hung disk = %v, want ErrNotDurable naming the LSNs", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the write waiting on the hung disk was acknowledged")
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the write waiting on the hung disk is still waiting after Close")
	}
	// The disk answers again: the abandoned close finishes in the
	// background and releases the directory; every acknowledged write is
	// there.
	fs.SetSyncDelay(0)
	var again *Engine
	for start := time.Now(); again == nil; {
		again, err = Open(Options{MaxKeys: 1 << 12, Dir: dir})
		if err != nil {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the directory is still in use 10s after the disk answered: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	defer again.Close()
	for i := 0; i < 100; i++ {
		specWant(t, again, specKey("acked", i), specPattern(50, byte(i)))
	}
}

// A process killed while it takes a checkpoint, or while recovery
// truncates a damaged log, loses nothing acknowledged: the crash child of
// durability_test.go runs with a fault of envChildFault that kills it
// (SIGKILL, from inside the file system) at the nth write or sync there.
func TestCrashKillDuringCheckpoint(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close()
	dir := t.TempDir()
	acked := map[int]bool{}
	next := 0
	for round, n := range []int{1, 3, 7, 15, 30, 60} {
		got := runChildFault(t, dir, next, 100000, 4, fmt.Sprintf("checkpoint:%d", n))
		high := next
		for _, v := range got {
			acked[v] = true
			high = max(high, v+1)
		}
		next = checkBank(t, dir, acked, high+4)
		t.Logf("round %d: killed at the %dth write of a checkpoint, %d acknowledged, %d present", round, n, len(got), next)
	}
	if len(acked) == 0 {
		t.Fatal("no transfer was acknowledged")
	}
}

func TestCrashKillDuringTruncate(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close()
	dir := t.TempDir()
	if got := runChild(t, dir, 0, 50, 1, 0); len(got) != 50 {
		t.Fatalf("child acknowledged %d of 50", len(got))
	}
	// LSN 1 sets the accounts; transfer n commits at LSN 2+n.
	const bad = 2 + 30
	damageLog(t, dir, bad, "corrupt")
	for n := 1; n <= 4; n++ {
		// Recovery finds the damage and truncates; the kill lands in the
		// nth sync of the log during Open.
		runChildFault(t, dir, 0, 0, 1, fmt.Sprintf("open:%d", n))
	}
	acked := map[int]bool{}
	for i := 0; i < bad-2; i++ {
		acked[i] = true
	}
	if high := checkBank(t, dir, acked, bad-2); high != bad-2 {
		t.Fatalf("after kills during truncation, transfers up to %d are present, want %d", high, bad-2)
	}
}

// A write torn by the crash (half of a record after the WAL's last whole
// one, or a block of garbage) loses nothing acknowledged: pebble reads
// the WAL up to it, and recovery keeps every acknowledged commit.
func TestTornWALTail(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close()
	for _, how := range []string{"half-record", "garbage"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			acked := map[int]bool{}
			high := 0
			for _, v := range runChild(t, dir, 0, 100000, 4, 300*time.Millisecond) {
				acked[v] = true
				high = max(high, v+1)
			}
			tearWAL(t, dir, how)
			checkBank(t, dir, acked, high+4) // each worker has one transfer in flight
		})
	}
}

// tearWAL appends to the newest WAL file what a write cut by a crash
// leaves after the last whole record: the first half of a record (a copy
// of the first half of the file's last 2 KiB), or a block of garbage.
func tearWAL(t *testing.T, dir, how string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no WAL file")
	}
	newest := logs[len(logs)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	var tail []byte
	switch how {
	case "half-record":
		last := b[len(b)-min(len(b), 2048):]
		tail = last[:len(last)/2]
	case "garbage":
		tail = make([]byte, 16<<10)
		for i := range tail {
			tail[i] = byte(i*131 + 7)
		}
	}
	f, err := os.OpenFile(newest, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(tail); err != nil {
		t.Fatal(err)
	}
}

// childFault sets up, in the crash child, the fault the parent asked for:
// "checkpoint:N" kills the process at the Nth write or sync of a file
// while a checkpoint is being taken (the child takes them one after
// another), and returns the function that takes them; "open:N" kills it
// at the Nth sync of the WAL while Open recovers.
func childFault(opts *Options, fault string) (checkpoints func(*Engine)) {
	kind, arg, ok := strings.Cut(fault, ":")
	if !ok {
		return nil
	}
	var n int
	fmt.Sscan(arg, &n)
	var armed atomic.Bool
	var count atomic.Int64
	kill := func() {
		if count.Add(1) == int64(n) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	fs := faultfs.New(vfs.Default)
	opts.FS = fs
	switch kind {
	case "checkpoint":
		fs.Set(faultfs.Rule{Op: faultfs.OpWrite | faultfs.OpSync, Func: func(string) bool {
			if armed.Load() {
				kill()
			}
			return false
		}})
		return func(e *Engine) {
			for {
				armed.Store(true)
				e.Checkpoint()
				armed.Store(false)
				time.Sleep(time.Millisecond)
			}
		}
	case "open":
		fs.Set(faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Func: func(string) bool {
			kill()
			return false
		}})
	}
	return nil
}
