package faultfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/bpfdb/bpfdb/internal/faultfs"
)

// step is one operation of a TestRules case, and the error it must return
// (nil: success).
type step struct {
	do   string // write, writeat, sync, syncdata, syncto, syncdir, create, reuse
	file string // base name; ignored by syncdir
	want error
}

func TestRules(t *testing.T) {
	hasPrefix := func(p string) func(string) bool {
		return func(base string) bool { return strings.HasPrefix(base, p) }
	}
	tests := []struct {
		name  string
		rules []faultfs.Rule
		steps []step
	}{
		{
			name: "no rules",
			steps: []step{
				{"write", "000002.log", nil},
				{"sync", "000002.log", nil},
				{"create", "000003.sst", nil},
				{"syncdir", "", nil},
			},
		},
		{
			name:  "write EIO on WAL files",
			rules: []faultfs.Rule{{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO}},
			steps: []step{
				{"write", "000002.log", syscall.EIO},
				{"writeat", "000002.log", syscall.EIO},
				{"write", "000003.sst", nil},
				{"write", "MANIFEST-000001", nil},
				{"sync", "000002.log", nil},
				{"write", "000002.log", syscall.EIO}, // until cleared
			},
		},
		{
			name:  "sync ENOSPC on MANIFEST",
			rules: []faultfs.Rule{{Op: faultfs.OpSync, Match: "MANIFEST-*", Err: syscall.ENOSPC}},
			steps: []step{
				{"sync", "MANIFEST-000001", syscall.ENOSPC},
				{"syncdata", "MANIFEST-000001", syscall.ENOSPC},
				{"syncto", "MANIFEST-000001", syscall.ENOSPC},
				{"sync", "000002.log", nil},
				{"syncdir", "", nil},
				{"write", "MANIFEST-000001", nil},
			},
		},
		{
			name:  "write and sync",
			rules: []faultfs.Rule{{Op: faultfs.OpWrite | faultfs.OpSync, Match: "*.sst", Err: syscall.EIO}},
			steps: []step{
				{"write", "000004.sst", syscall.EIO},
				{"sync", "000004.sst", syscall.EIO},
				{"write", "000002.log", nil},
				{"sync", "000002.log", nil},
			},
		},
		{
			name:  "default error is EIO",
			rules: []faultfs.Rule{{Op: faultfs.OpSync, Match: "*.log"}},
			steps: []step{{"sync", "000002.log", syscall.EIO}},
		},
		{
			name:  "empty match matches every file and directory",
			rules: []faultfs.Rule{{Op: faultfs.OpSync, Err: syscall.EIO}},
			steps: []step{
				{"sync", "000002.log", syscall.EIO},
				{"sync", "MANIFEST-000001", syscall.EIO},
				{"syncdir", "", syscall.EIO},
				{"write", "000002.log", nil},
			},
		},
		{
			name:  "after N",
			rules: []faultfs.Rule{{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO, After: 2}},
			steps: []step{
				{"write", "000002.log", nil},
				{"write", "000003.sst", nil}, // not matching: does not count
				{"sync", "000002.log", nil},  // another kind: does not count
				{"writeat", "000005.log", nil},
				{"write", "000002.log", syscall.EIO},
				{"write", "000005.log", syscall.EIO},
				{"write", "000002.log", syscall.EIO},
			},
		},
		{
			name:  "once",
			rules: []faultfs.Rule{{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO, Once: true}},
			steps: []step{
				{"sync", "000002.log", syscall.EIO},
				{"sync", "000002.log", nil},
				{"syncdata", "000002.log", nil},
			},
		},
		{
			name:  "after N once",
			rules: []faultfs.Rule{{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO, After: 1, Once: true}},
			steps: []step{
				{"sync", "000002.log", nil},
				{"syncto", "000002.log", syscall.EIO},
				{"sync", "000002.log", nil},
				{"sync", "000002.log", nil},
			},
		},
		{
			name:  "after counts the kinds together",
			rules: []faultfs.Rule{{Op: faultfs.OpWrite | faultfs.OpSync, Match: "*.log", Err: syscall.EIO, After: 2}},
			steps: []step{
				{"write", "000002.log", nil},
				{"sync", "000002.log", nil},
				{"write", "000002.log", syscall.EIO},
				{"sync", "000002.log", syscall.EIO},
			},
		},
		{
			name:  "func",
			rules: []faultfs.Rule{{Op: faultfs.OpSync, Func: hasPrefix("0000"), Err: syscall.EIO}},
			steps: []step{
				{"sync", "000002.log", syscall.EIO},
				{"sync", "000004.sst", syscall.EIO},
				{"sync", "MANIFEST-000001", nil},
			},
		},
		{
			name:  "match and func",
			rules: []faultfs.Rule{{Op: faultfs.OpSync, Match: "*.log", Func: hasPrefix("0000"), Err: syscall.EIO}},
			steps: []step{
				{"sync", "000002.log", syscall.EIO},
				{"sync", "000004.sst", nil},
				{"sync", "other.log", nil},
			},
		},
		{
			name:  "create ENOSPC",
			rules: []faultfs.Rule{{Op: faultfs.OpCreate, Match: "*.sst", Err: syscall.ENOSPC}},
			steps: []step{
				{"create", "000005.sst", syscall.ENOSPC},
				{"reuse", "000007.sst", syscall.ENOSPC},
				{"create", "000006.log", nil},
				{"write", "000006.log", nil},
				{"sync", "000006.log", nil},
				{"reuse", "000008.log", nil},
				{"write", "000004.sst", nil}, // opened before the rule
			},
		},
		{
			name: "first rule that fires wins",
			rules: []faultfs.Rule{
				{Op: faultfs.OpSync, Match: "*.log", Err: syscall.ENOSPC, Once: true},
				{Op: faultfs.OpSync, Err: syscall.EIO},
			},
			steps: []step{
				{"sync", "000002.log", syscall.ENOSPC},
				{"sync", "000002.log", syscall.EIO},
				{"sync", "000004.sst", syscall.EIO},
			},
		},
		{
			name: "a rule that fires leaves the after count of later ones",
			rules: []faultfs.Rule{
				{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO, Once: true},
				{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.ENOSPC, After: 1},
			},
			steps: []step{
				{"write", "000002.log", syscall.EIO},
				{"write", "000002.log", nil},
				{"write", "000002.log", syscall.ENOSPC},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := faultfs.New(vfs.Default)
			files := map[string]vfs.File{}
			t.Cleanup(func() {
				for _, f := range files {
					f.Close()
				}
			})
			// Open the files the steps use before the rules are set, except
			// those the steps create.
			for _, s := range tt.steps {
				switch s.do {
				case "create", "syncdir":
				case "reuse":
					if err := os.WriteFile(filepath.Join(dir, "old-"+s.file), []byte("old"), 0o666); err != nil {
						t.Fatal(err)
					}
				default:
					if files[s.file] == nil {
						f, err := fs.Create(filepath.Join(dir, s.file))
						if err != nil {
							t.Fatal(err)
						}
						files[s.file] = f
					}
				}
			}
			d, err := fs.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()

			fs.Set(tt.rules...)
			before := fs.Stats()
			var want faultfs.Stats
			for i, s := range tt.steps {
				path := filepath.Join(dir, s.file)
				var op faultfs.Op
				var err error
				switch s.do {
				case "write", "writeat":
					op = faultfs.OpWrite
					f := files[s.file]
					size := fileSize(t, path)
					var n int
					if s.do == "write" {
						n, err = f.Write([]byte("data"))
					} else {
						n, err = f.WriteAt([]byte("data"), size)
					}
					wantN, wantSize := 4, size+4
					if s.want != nil {
						wantN, wantSize = 0, size
					}
					if n != wantN || fileSize(t, path) != wantSize {
						t.Errorf("step %d: %s %s: wrote %d bytes, size %d, want %d, %d",
							i, s.do, s.file, n, fileSize(t, path), wantN, wantSize)
					}
					want.Writes++
				case "sync":
					op, err = faultfs.OpSync, files[s.file].Sync()
					want.Syncs++
				case "syncdata":
					op, err = faultfs.OpSync, files[s.file].SyncData()
					want.Syncs++
				case "syncto":
					op = faultfs.OpSync
					_, err = files[s.file].SyncTo(1)
					want.Syncs++
				case "syncdir":
					op, path, err = faultfs.OpSync, dir, d.Sync()
					want.Syncs++
				case "create", "reuse":
					op = faultfs.OpCreate
					var f vfs.File
					old := filepath.Join(dir, "old-"+s.file)
					if s.do == "create" {
						f, err = fs.Create(path)
					} else {
						f, err = fs.ReuseForWrite(old, path)
					}
					if err == nil {
						if files[s.file] != nil {
							files[s.file].Close()
						}
						files[s.file] = f
					}
					_, statErr := os.Stat(path)
					if exists := statErr == nil; exists != (s.want == nil) {
						t.Errorf("step %d: %s %s: file exists: %v", i, s.do, s.file, exists)
					}
					if s.do == "reuse" && s.want != nil {
						if _, err := os.Stat(old); err != nil {
							t.Errorf("step %d: a failed reuse removed the old file: %v", i, err)
						}
					}
					want.Creates++
				default:
					t.Fatalf("step %d: unknown %q", i, s.do)
				}
				checkErr(t, fmt.Sprintf("step %d: %s %s", i, s.do, s.file), err, s.want, op, path)
				if s.want != nil {
					switch op {
					case faultfs.OpCreate:
						want.CreateFaults++
					case faultfs.OpWrite:
						want.WriteFaults++
					case faultfs.OpSync:
						want.SyncFaults++
					}
				}
			}
			got := fs.Stats()
			got.Creates -= before.Creates
			got.Writes -= before.Writes
			got.Syncs -= before.Syncs
			if got != want {
				t.Errorf("Stats: got %+v, want %+v", got, want)
			}
			if n := want.CreateFaults + want.WriteFaults + want.SyncFaults; fs.Injected() != n {
				t.Errorf("Injected() = %d, want %d", fs.Injected(), n)
			}
		})
	}
}

// checkErr checks that err is nil if want is, and otherwise an injected
// fault of kind op on path wrapping want.
func checkErr(t *testing.T, what string, err, want error, op faultfs.Op, path string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	var fe *faultfs.Error
	switch {
	case !errors.Is(err, want):
		t.Errorf("%s: got %v, want %v", what, err, want)
	case !errors.As(err, &fe):
		t.Errorf("%s: %v is not a *faultfs.Error", what, err)
	case fe.Op != op || fe.Path != path:
		t.Errorf("%s: got a %v fault on %s, want %v on %s", what, fe.Op, fe.Path, op, path)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestTornWrite(t *testing.T) {
	tests := []struct {
		name    string
		rule    faultfs.Rule
		writeAt bool
		buf     string
		wantN   int
		want    string // the file's content after "0123" and buf
	}{
		{"write", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Torn: true}, false, "abcdefgh", 4, "0123abcd"},
		{"writeat", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Torn: true}, true, "abcdefgh", 4, "0123abcd"},
		{"odd length", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Torn: true}, false, "abcde", 2, "0123ab"},
		{"one byte", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Torn: true}, false, "a", 0, "0123"},
		{"ENOSPC", faultfs.Rule{Op: faultfs.OpWrite, Err: syscall.ENOSPC, Torn: true}, false, "abcdefgh", 4, "0123abcd"},
		{"not torn", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log"}, false, "abcdefgh", 0, "0123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "000002.log")
			fs := faultfs.New(vfs.Default)
			f, err := fs.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("0123")); err != nil {
				t.Fatal(err)
			}
			fs.Set(tt.rule)
			var n int
			if tt.writeAt {
				n, err = f.WriteAt([]byte(tt.buf), 4)
			} else {
				n, err = f.Write([]byte(tt.buf))
			}
			wantErr := tt.rule.Err
			if wantErr == nil {
				wantErr = syscall.EIO
			}
			checkErr(t, "torn write", err, wantErr, faultfs.OpWrite, path)
			if n != tt.wantN {
				t.Errorf("wrote %d bytes, want %d", n, tt.wantN)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("file holds %q, want %q", got, tt.want)
			}
			// A torn rule fails syncs like any other.
			fs.Set(faultfs.Rule{Op: faultfs.OpSync, Torn: true})
			checkErr(t, "sync", f.Sync(), syscall.EIO, faultfs.OpSync, path)
		})
	}
}

// TestClear sets and clears rules from one goroutine while others write
// and sync (run it with -race).
func TestClear(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(vfs.Default)
	fs.Set(faultfs.Rule{Op: faultfs.OpWrite | faultfs.OpSync, Match: "*.log"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 3 {
		f, err := fs.Create(filepath.Join(dir, fmt.Sprintf("%06d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.Write([]byte("x")); err != nil && !errors.Is(err, syscall.EIO) {
					t.Error(err)
				}
				if err := f.Sync(); err != nil && !errors.Is(err, syscall.EIO) {
					t.Error(err)
				}
			}
		}()
	}
	waitFor(t, "a fault", func() bool { return fs.Injected() > 0 })
	for range 50 {
		fs.Set(faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Once: true})
		fs.SetSyncDelay(time.Microsecond)
		fs.Clear()
	}
	close(stop)
	wg.Wait()

	f, err := fs.Create(filepath.Join(dir, "000009.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := fs.Injected()
	for range 3 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Errorf("write after Clear: %v", err)
		}
		if err := f.Sync(); err != nil {
			t.Errorf("sync after Clear: %v", err)
		}
	}
	if fs.Injected() != n {
		t.Errorf("faults injected after Clear: %d", fs.Injected()-n)
	}
}

func TestSyncDelay(t *testing.T) {
	const delay = 30 * time.Millisecond
	fs := faultfs.New(vfs.Default)
	path := filepath.Join(t.TempDir(), "000002.log")
	f, err := fs.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs.SetSyncDelay(delay)
	for _, s := range []struct {
		name string
		fn   func() error
	}{
		{"Sync", f.Sync},
		{"SyncData", f.SyncData},
		{"SyncTo", func() error { _, err := f.SyncTo(0); return err }},
	} {
		start := time.Now()
		if err := s.fn(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < delay {
			t.Errorf("%s took %v, want at least %v", s.name, d, delay)
		}
	}
	// Writes are not delayed.
	start := time.Now()
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= delay {
		t.Errorf("Write took %v", d)
	}

	// A hung disk: a sync sleeps until the delay changes, and the rules
	// set meanwhile apply to it.
	fs.SetSyncDelay(time.Hour)
	done := make(chan error)
	go func() { done <- f.Sync() }()
	select {
	case err := <-done:
		t.Fatalf("Sync returned during the delay: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	fs.Set(faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO})
	fs.SetSyncDelay(0)
	select {
	case err := <-done:
		checkErr(t, "Sync released", err, syscall.EIO, faultfs.OpSync, path)
	case <-time.After(10 * time.Second):
		t.Fatal("SetSyncDelay(0) did not release the sync")
	}

	// Clear also removes the delay.
	fs.SetSyncDelay(time.Hour)
	fs.Clear()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestSetPanics(t *testing.T) {
	for _, r := range []faultfs.Rule{
		{},
		{Op: 1 << 7},
		{Op: faultfs.OpWrite, Match: "[.log"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Set(%+v) did not panic", r)
				}
			}()
			faultfs.New(vfs.Default).Set(r)
		}()
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[faultfs.Op]string{
		faultfs.OpCreate:                  "create",
		faultfs.OpWrite | faultfs.OpSync:  "write|sync",
		faultfs.OpSync | 1<<6:             "sync|Op(0x40)",
		0:                                 "Op(0x0)",
		faultfs.OpCreate | faultfs.OpSync: "create|sync",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op(%#x).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

func TestRoot(t *testing.T) {
	if root := vfs.Root(faultfs.New(vfs.Default)); root != vfs.Default {
		t.Errorf("vfs.Root = %T, want vfs.Default", root)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// pebbleFatal is what panicLogger panics with.
type pebbleFatal struct{ msg string }

// panicLogger drops pebble's messages and panics with its fatal ones:
// pebble v1 calls Logger.Fatalf when a commit fails, and the default
// logger exits the process.
type panicLogger struct{}

func (panicLogger) Infof(string, ...any) {}

func (panicLogger) Fatalf(format string, args ...any) {
	panic(pebbleFatal{fmt.Sprintf(format, args...)})
}

// commit commits a batch setting key, recovering pebble's fatal error.
func commit(db *pebble.DB, key string, opts *pebble.WriteOptions) error {
	return recoverFatal(func() error {
		b := db.NewBatch()
		if err := b.Set([]byte(key), value(key), nil); err != nil {
			return err
		}
		return b.Commit(opts)
	})
}

// syncWAL syncs the WAL as logd does with NoSync, recovering pebble's
// fatal error.
func syncWAL(db *pebble.DB) error {
	return recoverFatal(func() error { return db.LogData(nil, pebble.Sync) })
}

// recoverFatal runs fn, returning panicLogger's panic as an error.
func recoverFatal(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			err = errors.New(f.msg)
		}
	}()
	return fn()
}

func value(key string) []byte { return []byte("value of " + key) }

// has reports whether db holds key, with its value.
func has(t *testing.T, db *pebble.DB, key string) bool {
	t.Helper()
	v, c, err := db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer c.Close()
	if !bytes.Equal(v, value(key)) {
		t.Fatalf("Get(%s) = %q", key, v)
	}
	return true
}

// TestPebbleWALFault breaks pebble's WAL under a synced commit, and checks
// what the engineer relies on: the commit fails (as a Fatalf), the broken
// instance stays broken, Close returns the fault, and a fresh pebble.Open
// of the directory holds every batch committed before it.
func TestPebbleWALFault(t *testing.T) {
	tests := []struct {
		name string
		rule faultfs.Rule
		// failedVisible: after the reopen, the batch whose commit failed is
		// there. A failed fsync leaves the written data in the page cache,
		// and the reopen replays it; a failed write never wrote it.
		failedVisible bool
		// noSync: the batch is committed without sync (which succeeds),
		// and the sync after it fails (logd's NoSync mode).
		noSync bool
	}{
		{"EIO on sync", faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO}, true, false},
		{"EIO on sync once", faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO, Once: true}, true, false},
		{"EIO on write", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO}, false, false},
		{"torn write", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO, Torn: true}, false, false},
		{"ENOSPC on write", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.ENOSPC}, false, false},
		{"EIO on sync, NoSync commit", faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO}, true, true},
		{"EIO on write, NoSync commit", faultfs.Rule{Op: faultfs.OpWrite, Match: "*.log", Err: syscall.EIO}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := faultfs.New(vfs.Default)
			db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: panicLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			var committed []string
			for i := range 5 {
				key := fmt.Sprint("before", i)
				if err := commit(db, key, pebble.Sync); err != nil {
					t.Fatalf("commit %s: %v", key, err)
				}
				committed = append(committed, key)
			}
			if s := fs.Stats(); s.Writes == 0 || s.Syncs == 0 {
				t.Fatalf("pebble wrote through the FS: %+v", s)
			}

			fs.Set(tt.rule)
			if tt.noSync {
				if err := commit(db, "failed", pebble.NoSync); err != nil {
					t.Fatalf("commit without sync under the fault: %v", err)
				}
				err = syncWAL(db)
			} else {
				err = commit(db, "failed", pebble.Sync)
			}
			if err == nil || !strings.Contains(err.Error(), "fatal commit error") ||
				!strings.Contains(err.Error(), tt.rule.Err.Error()) {
				t.Fatalf("commit under the fault: %v, want pebble's fatal commit error", err)
			}
			if fs.Injected() == 0 {
				t.Fatal("no fault injected")
			}
			t.Logf("failed commit: %v", err)
			// The failed batch was applied to the memtable: the broken
			// instance reads it.
			if !has(t, db, "failed") {
				t.Error("the broken instance does not read the failed batch")
			}

			// The disk recovers, but the instance stays broken: the WAL
			// writer keeps its error. A synced commit fails again, and one
			// without sync returns nil yet is never written.
			fs.Clear()
			if err := commit(db, "after sync", pebble.Sync); err == nil {
				t.Error("a synced commit on the broken instance succeeded")
			}
			if err := commit(db, "after nosync", pebble.NoSync); err != nil {
				t.Errorf("a commit without sync on the broken instance: %v", err)
			}

			// Close returns the fault, and releases the directory's lock.
			closed := make(chan error, 1)
			go func() {
				defer func() {
					if r := recover(); r != nil {
						closed <- fmt.Errorf("Close panicked: %v", r)
					}
				}()
				closed <- db.Close()
			}()
			select {
			case err := <-closed:
				t.Logf("Close of the broken instance: %v", err)
				if !errors.Is(err, tt.rule.Err) {
					t.Errorf("Close of the broken instance: %v, want %v", err, tt.rule.Err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Close of the broken instance hangs")
			}

			// Reopen: everything committed before the fault is there.
			db, err = pebble.Open(dir, &pebble.Options{FS: fs, Logger: panicLogger{}})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			for _, key := range committed {
				if !has(t, db, key) {
					t.Errorf("%s, committed before the fault, is lost", key)
				}
			}
			if got := has(t, db, "failed"); got != tt.failedVisible {
				t.Errorf("after the reopen, the failed batch is there: %v, want %v", got, tt.failedVisible)
			}
			for _, key := range []string{"after sync", "after nosync"} {
				if has(t, db, key) {
					t.Errorf("%s, committed on the broken instance, is there", key)
				}
			}

			// Rewriting the failed batch works, and lasts.
			if err := commit(db, "failed", pebble.Sync); err != nil {
				t.Fatalf("rewriting the failed batch: %v", err)
			}
			committed = append(committed, "failed")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db, err = pebble.Open(dir, &pebble.Options{Logger: panicLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, key := range committed {
				if !has(t, db, key) {
					t.Errorf("%s is lost after the second reopen", key)
				}
			}
		})
	}
}
