package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
)

// pinDir returns a fresh directory below /sys/fs/bpf, removed at cleanup.
func pinDir(t *testing.T) string {
	t.Helper()
	dir := fmt.Sprintf("/sys/fs/bpf/bpfdb-test-%d-%s", os.Getpid(), filepath.Base(t.Name()))
	t.Cleanup(func() { removePins(dir) })
	return dir
}

// With PinDir, every map of the store is pinned by name with its owner;
// another loader (OpenPinned, as cilium/ebpf's LoadPinnedMap) reaches the
// live store through them; a second engine is refused the directory; Close
// removes the pins.
func TestPinShareClose(t *testing.T) {
	dir := pinDir(t)
	e := openTest(t, Options{MaxKeys: 64, PinDir: dir})
	for name := range e.MapReplacements() {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("map %s not pinned: %v", name, err)
		}
	}
	specSet(t, e, []byte("shared"), []byte("value"))
	maps, err := OpenPinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rec chainBpfdbRecord
	key := chainBpfdbKey{Len: 6}
	copy(key.Data[:], "shared")
	if err := maps["records"].Lookup(&key, &rec); err != nil {
		t.Errorf("the pinned index does not hold the engine's key: %v", err)
	}
	for _, m := range maps {
		m.Close()
	}
	if _, err := Open(Options{MaxKeys: 64, PinDir: dir}); !errors.Is(err, ErrPinned) {
		t.Errorf("a second engine on the same pin directory: %v, want ErrPinned", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins left after Close: %v", err)
	}
}

// The pins of an owner that died (kill -9) are detected as stale:
// OpenPinned refuses them, and the next Open replaces them.
func TestPinStaleOwner(t *testing.T) {
	dir := pinDir(t)
	e := openTest(t, Options{MaxKeys: 64, PinDir: dir})
	// Make the owner a process that is gone: pid 0 never runs a program.
	if err := ownerMap(t, dir).Put(uint32(0), pinOwner{Pid: 0, StartTime: 1, Layout: LayoutVersion}); err != nil {
		t.Fatal(err)
	}
	e.opts.PinDir = "" // as a killed server, which removes nothing
	e.Close()
	if _, err := OpenPinned(dir); err == nil {
		t.Fatal("OpenPinned accepted the pins of a dead owner")
	}
	e = openTest(t, Options{MaxKeys: 64, PinDir: dir})
	if o, err := readOwner(dir); err != nil || o.Pid != uint32(os.Getpid()) {
		t.Fatalf("owner after replacing stale pins: %+v, %v", o, err)
	}
	maps, err := OpenPinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		m.Close()
	}
	e.Close()
}

// A store of another layout is refused, with the two layouts named.
func TestPinLayoutMismatch(t *testing.T) {
	dir := pinDir(t)
	openTest(t, Options{MaxKeys: 64, PinDir: dir})
	start, err := startTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := ownerMap(t, dir).Put(uint32(0), pinOwner{Pid: uint32(os.Getpid()), StartTime: start, Layout: LayoutVersion + 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPinned(dir); !errors.Is(err, ErrLayout) {
		t.Fatalf("OpenPinned of another layout = %v, want ErrLayout", err)
	}
}

func ownerMap(t *testing.T, dir string) *ebpf.Map {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, ownerPin), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
