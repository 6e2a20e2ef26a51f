// Package faultfs wraps a pebble vfs.FS to inject faults into chosen file
// operations, for fault-injection tests of code that keeps its data in
// pebble.
//
// An FS passes every call through to the FS it wraps, and wraps every file
// it opens, until a test sets rules:
//
//	fs := faultfs.New(vfs.Default)
//	db, err := pebble.Open(dir, &pebble.Options{FS: fs})
//	...
//	fs.Set(faultfs.Rule{Op: faultfs.OpSync, Match: "*.log", Err: syscall.EIO})
//	// the next WAL fsync fails with EIO, and so does every one after it
//	fs.Clear()
//
// A rule fails the operations it matches: the kinds of operation in its Op
// (creating a file, writing to one, syncing one) on the files whose base
// name matches its Match pattern and its Func. It may first let After
// matching operations through, and may fire only Once. A failed write may
// be torn (half of it written). Every sync can be slowed down by a delay
// (SetSyncDelay). Rules and the delay can be set and cleared at any time,
// from any goroutine, while files are in use.
//
// An injected error is an *Error wrapping the rule's error, so that
// errors.Is(err, syscall.EIO) holds for it, and errors.As tells it from a
// real one. Stats counts the operations seen and the faults injected, so a
// test can check that a fault did fire.
package faultfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/vfs"
)

// Op is a set of kinds of file operation that a Rule fails.
type Op uint8

const (
	// OpCreate is creating a file: FS.Create, and FS.ReuseForWrite (pebble
	// recycling an old WAL file), matched against the new name. A failed
	// create fails before the wrapped FS is called: nothing is created,
	// removed or renamed.
	OpCreate Op = 1 << iota
	// OpWrite is File.Write and File.WriteAt. A failed write writes
	// nothing, unless the rule is Torn.
	OpWrite
	// OpSync is File.Sync, File.SyncData and File.SyncTo, on files and on
	// directories (FS.OpenDir). A failed sync syncs nothing.
	OpSync

	opAll = OpCreate | OpWrite | OpSync
)

// String returns the kinds in o, as in "write|sync".
func (o Op) String() string {
	var s []string
	for _, k := range []struct {
		op   Op
		name string
	}{{OpCreate, "create"}, {OpWrite, "write"}, {OpSync, "sync"}} {
		if o&k.op != 0 {
			s = append(s, k.name)
		}
	}
	if rest := o &^ opAll; rest != 0 || len(s) == 0 {
		s = append(s, fmt.Sprintf("Op(%#x)", uint8(rest)))
	}
	return strings.Join(s, "|")
}

// Rule says which operations fail, and how.
//
// A rule matches an operation if the operation's kind is in Op and the base
// name of its file (as in "000002.log": the last element of the path the
// file was opened or created with, unaffected by later renames) matches
// both Match and Func. Rules are checked in the order they were set; the
// first rule that fires fails the operation.
type Rule struct {
	// Op is the kinds of operation the rule fails: OpCreate, OpWrite,
	// OpSync, or several of them or'ed together. It must not be zero.
	Op Op
	// Match is a filepath.Match pattern on the file's base name: "*.log"
	// for pebble's WAL files, "MANIFEST-*", "*.sst". Empty matches every
	// file, directories included.
	Match string
	// Func, if not nil, must also return true for the file's base name.
	// It is called with the FS's lock held: it must not call the FS.
	Func func(base string) bool
	// Err is the error the failed operation returns, wrapped in an *Error:
	// syscall.EIO (the default, if nil) or syscall.ENOSPC, typically.
	Err error
	// After is how many matching operations the rule lets through before
	// it fires: 0 fails the first one. Operations of all the kinds in Op,
	// on all matching files, count together.
	After int
	// Once makes the rule fire once only, then let everything through. By
	// default it fails every matching operation after the first After,
	// until cleared.
	Once bool
	// Torn makes a failed Write or WriteAt write the first half of its
	// buffer (len(p)/2 bytes) before it returns that count and the error,
	// like a device that failed halfway. It has no effect on other kinds.
	Torn bool
}

// Error is the error of an injected fault.
type Error struct {
	// Op is the kind of the operation that failed: one of OpCreate,
	// OpWrite, OpSync.
	Op Op
	// Path is the file's path, as opened or created.
	Path string
	// Err is the rule's error.
	Err error
}

// Error describes the fault, as in "faultfs: injected sync fault on
// /tmp/x/000002.log: input/output error".
func (e *Error) Error() string {
	return fmt.Sprintf("faultfs: injected %v fault on %s: %v", e.Op, e.Path, e.Err)
}

// Unwrap returns the rule's error, for errors.Is(err, syscall.EIO).
func (e *Error) Unwrap() error { return e.Err }

// Stats counts what an FS has done since New.
type Stats struct {
	// Creates, Writes and Syncs count the operations of each kind called
	// on the FS and its files, whether they matched a rule or not, and
	// whether they failed or not.
	Creates, Writes, Syncs int64
	// CreateFaults, WriteFaults and SyncFaults count the faults injected
	// into operations of each kind.
	CreateFaults, WriteFaults, SyncFaults int64
}

// FS is a vfs.FS that injects faults into the FS it wraps. It is safe for
// concurrent use; its rules and sync delay may be changed at any time.
type FS struct {
	inner vfs.FS

	mu    sync.Mutex
	rules []*rule
	delay time.Duration
	wake  chan struct{} // closed when the delay changes

	seen, faults [3]atomic.Int64 // by kind: create, write, sync
}

// rule is a Rule in force, with what it has done so far.
type rule struct {
	Rule
	left  int  // matching operations still to let through
	spent bool // a Once rule that fired
}

var _ vfs.FS = (*FS)(nil)

// New returns an FS that passes everything through to inner, until rules
// are set.
func New(inner vfs.FS) *FS {
	return &FS{inner: inner, wake: make(chan struct{})}
}

// Set replaces the rules in force by rules (none: no fault). Their After
// counts start from now.
//
// Set panics if a rule's Op is zero or unknown, or its Match is not a valid
// pattern: these are mistakes in a test.
func (fs *FS) Set(rules ...Rule) {
	rs := make([]*rule, len(rules))
	for i, r := range rules {
		if r.Op == 0 || r.Op&^opAll != 0 {
			panic(fmt.Sprintf("faultfs: rule %d: invalid Op %v", i, r.Op))
		}
		if _, err := filepath.Match(r.Match, ""); err != nil {
			panic(fmt.Sprintf("faultfs: rule %d: Match %q: %v", i, r.Match, err))
		}
		if r.Err == nil {
			r.Err = syscall.EIO
		}
		rs[i] = &rule{Rule: r, left: r.After}
	}
	fs.mu.Lock()
	fs.rules = rs
	fs.mu.Unlock()
}

// Clear removes every rule and the sync delay (waking the syncs sleeping
// on it): from now on, the FS passes everything through.
func (fs *FS) Clear() {
	fs.Set()
	fs.SetSyncDelay(0)
}

// SetSyncDelay makes every Sync, SyncData and SyncTo, on any file, sleep
// for d before it runs (and before the rules are checked, so a rule set
// meanwhile applies to it): a slow disk. Zero removes the delay. A change
// of the delay wakes the syncs sleeping on the previous one, so that
// SetSyncDelay(0) releases a sync held by a long delay (a hung disk).
func (fs *FS) SetSyncDelay(d time.Duration) {
	fs.mu.Lock()
	fs.delay = d
	close(fs.wake)
	fs.wake = make(chan struct{})
	fs.mu.Unlock()
}

// Injected returns the number of faults injected since New, of all kinds.
func (fs *FS) Injected() int64 {
	var n int64
	for i := range fs.faults {
		n += fs.faults[i].Load()
	}
	return n
}

// Stats returns the counts of operations seen and faults injected so far.
func (fs *FS) Stats() Stats {
	return Stats{
		Creates:      fs.seen[0].Load(),
		Writes:       fs.seen[1].Load(),
		Syncs:        fs.seen[2].Load(),
		CreateFaults: fs.faults[0].Load(),
		WriteFaults:  fs.faults[1].Load(),
		SyncFaults:   fs.faults[2].Load(),
	}
}

// Unwrap returns the wrapped FS (for vfs.Root).
func (fs *FS) Unwrap() vfs.FS { return fs.inner }

// kind is op's index in seen and faults; op is a single kind.
func kind(op Op) int {
	switch op {
	case OpCreate:
		return 0
	case OpWrite:
		return 1
	default:
		return 2
	}
}

// fault counts an operation of kind op on the file at path, and returns the
// error of the rule that fails it, if one does, and whether that failure is
// a torn write.
func (fs *FS) fault(op Op, path string) (torn bool, err error) {
	k := kind(op)
	fs.seen[k].Add(1)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.rules) == 0 {
		return false, nil
	}
	base := filepath.Base(path)
	for _, r := range fs.rules {
		if r.spent || r.Op&op == 0 || !r.matches(base) {
			continue
		}
		if r.left > 0 {
			r.left--
			continue
		}
		r.spent = r.Once
		fs.faults[k].Add(1)
		return r.Torn && op == OpWrite, &Error{Op: op, Path: path, Err: r.Err}
	}
	return false, nil
}

// matches reports whether the rule applies to files of this base name.
func (r *rule) matches(base string) bool {
	if r.Match != "" {
		if ok, _ := filepath.Match(r.Match, base); !ok {
			return false
		}
	}
	return r.Func == nil || r.Func(base)
}

// syncDelay sleeps for the sync delay, or until it changes.
func (fs *FS) syncDelay() {
	fs.mu.Lock()
	d, wake := fs.delay, fs.wake
	fs.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	}
}

// wrap wraps a file the inner FS opened at path.
func (fs *FS) wrap(f vfs.File, err error, path string) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, path: path}, nil
}

// Create creates the named file, unless a rule fails it (OpCreate).
func (fs *FS) Create(name string) (vfs.File, error) {
	if _, err := fs.fault(OpCreate, name); err != nil {
		return nil, err
	}
	f, err := fs.inner.Create(name)
	return fs.wrap(f, err, name)
}

// Link creates newname as a hard link to oldname.
func (fs *FS) Link(oldname, newname string) error {
	return fs.inner.Link(oldname, newname)
}

// Open opens the named file for reading.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.inner.Open(name, opts...)
	return fs.wrap(f, err, name)
}

// OpenReadWrite opens the named file for reading and writing, creating it
// if it does not exist (not an OpCreate: rules never fail the opening).
func (fs *FS) OpenReadWrite(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.inner.OpenReadWrite(name, opts...)
	return fs.wrap(f, err, name)
}

// OpenDir opens the named directory for syncing.
func (fs *FS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.inner.OpenDir(name)
	return fs.wrap(f, err, name)
}

// Remove removes the named file or directory.
func (fs *FS) Remove(name string) error { return fs.inner.Remove(name) }

// RemoveAll removes the named file or directory and its children.
func (fs *FS) RemoveAll(name string) error { return fs.inner.RemoveAll(name) }

// Rename renames oldname to newname.
func (fs *FS) Rename(oldname, newname string) error {
	return fs.inner.Rename(oldname, newname)
}

// ReuseForWrite renames oldname to newname and opens it for writing,
// unless a rule fails it (OpCreate, matched against newname).
func (fs *FS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	if _, err := fs.fault(OpCreate, newname); err != nil {
		return nil, err
	}
	f, err := fs.inner.ReuseForWrite(oldname, newname)
	return fs.wrap(f, err, newname)
}

// MkdirAll creates a directory and its missing parents.
func (fs *FS) MkdirAll(dir string, perm os.FileMode) error {
	return fs.inner.MkdirAll(dir, perm)
}

// Lock locks the named file (pebble's LOCK).
func (fs *FS) Lock(name string) (io.Closer, error) { return fs.inner.Lock(name) }

// List lists the names in dir.
func (fs *FS) List(dir string) ([]string, error) { return fs.inner.List(dir) }

// Stat describes the named file.
func (fs *FS) Stat(name string) (os.FileInfo, error) { return fs.inner.Stat(name) }

// PathBase returns the last element of path.
func (fs *FS) PathBase(path string) string { return fs.inner.PathBase(path) }

// PathJoin joins path elements.
func (fs *FS) PathJoin(elem ...string) string { return fs.inner.PathJoin(elem...) }

// PathDir returns all but the last element of path.
func (fs *FS) PathDir(path string) string { return fs.inner.PathDir(path) }

// GetDiskUsage returns the disk usage of path's file system.
func (fs *FS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	return fs.inner.GetDiskUsage(path)
}

// file is a vfs.File whose writes and syncs go through its FS's rules.
type file struct {
	vfs.File
	fs   *FS
	path string
}

var _ vfs.File = (*file)(nil)

func (f *file) Write(p []byte) (int, error) {
	torn, err := f.fs.fault(OpWrite, f.path)
	if err == nil {
		return f.File.Write(p)
	}
	if !torn {
		return 0, err
	}
	n, werr := f.File.Write(p[:len(p)/2])
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	torn, err := f.fs.fault(OpWrite, f.path)
	if err == nil {
		return f.File.WriteAt(p, off)
	}
	if !torn {
		return 0, err
	}
	n, werr := f.File.WriteAt(p[:len(p)/2], off)
	if werr != nil {
		return n, werr
	}
	return n, err
}

// sync delays a sync and returns its injected error, if any.
func (f *file) sync() error {
	f.fs.syncDelay()
	_, err := f.fs.fault(OpSync, f.path)
	return err
}

func (f *file) Sync() error {
	if err := f.sync(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *file) SyncData() error {
	if err := f.sync(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *file) SyncTo(length int64) (fullSync bool, err error) {
	if err := f.sync(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}
