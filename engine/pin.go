package engine

// Sharing the store: its maps pinned in bpffs, for programs of any loader.
//
// Invariants, and why:
//
//   - Options.PinDir holds one pin per map of the store, named as in the
//     chain's object (bpf/include/maps.h), and the pin bpfdb_owner: an
//     array map of one struct pinOwner saying which process pinned them
//     and in which layout. A loader (libbpf, bpftool, cilium/ebpf) that
//     reuses maps by name finds the live store; OpenPinned does that for
//     Go, checking the owner and the layout first.
//   - One owner at a time: Open refuses a directory whose owner is alive
//     (its pid runs, with the start time it recorded), and replaces the
//     pins of a dead one (a server killed with SIGKILL leaves its pins;
//     they hold the dead store's maps, which no log is writing any more).
//   - Close removes the pins (the maps live on while an outside program
//     still holds them, but no new one finds them).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ownerPin is the name of the pin that says who owns a pin directory.
const ownerPin = "bpfdb_owner"

// pinOwner is the value of the bpfdb_owner map.
type pinOwner struct {
	Pid       uint32
	_         uint32
	StartTime uint64 // the process's start time, in clock ticks after boot (/proc/PID/stat)
	Layout    uint64 // LayoutVersion of the store
}

// ErrPinned: the pin directory belongs to a running bpfdb.
var ErrPinned = errors.New("bpfdb: the pin directory is in use by a running bpfdb")

// ErrLayout: pinned maps of another layout (limits, struct sizes) than
// this build's; using them would corrupt the store.
var ErrLayout = errors.New("bpfdb: the pinned store has another layout")

// pin pins every map of the store and the owner map in dir, replacing the
// pins of a dead owner; see the invariants above.
func (e *Engine) pin(dir string) error {
	if err := mountBPFFS(dir); err != nil {
		return err
	}
	if owner, err := readOwner(dir); err == nil {
		if alive(owner) {
			return fmt.Errorf("%w: %s is pinned by pid %d", ErrPinned, dir, owner.Pid)
		}
		if err := removePins(dir); err != nil {
			return fmt.Errorf("bpfdb: removing the stale pins of pid %d in %s: %w", owner.Pid, dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bpfdb: pin directory: %w", err)
	}
	start, err := startTime(os.Getpid())
	if err != nil {
		return err
	}
	owner, err := ebpf.NewMap(&ebpf.MapSpec{Name: ownerPin, Type: ebpf.Array, KeySize: 4,
		ValueSize: uint32(unsafe.Sizeof(pinOwner{})), MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("bpfdb: creating the owner map: %w", err)
	}
	defer owner.Close() // the pin keeps it
	if err := owner.Put(uint32(0), pinOwner{Pid: uint32(os.Getpid()), StartTime: start, Layout: LayoutVersion}); err != nil {
		return err
	}
	for name, m := range e.MapReplacements() {
		if err := m.Pin(filepath.Join(dir, name)); err != nil {
			removePins(dir)
			return fmt.Errorf("bpfdb: pinning %s in %s: %w", name, dir, err)
		}
	}
	// The owner pin last: a directory with an owner has every map.
	if err := owner.Pin(filepath.Join(dir, ownerPin)); err != nil {
		removePins(dir)
		return fmt.Errorf("bpfdb: pinning the owner in %s: %w", dir, err)
	}
	return nil
}

// unpin removes the pins Open made.
func (e *Engine) unpin() error {
	if e.opts.PinDir == "" {
		return nil
	}
	return removePins(e.opts.PinDir)
}

// OpenPinned opens the maps a running bpfdb pinned in dir (Options.PinDir,
// `bpfdb serve --pin`), by name, for loading other programs against the
// store (ebpf.CollectionOptions.MapReplacements). It refuses a directory
// whose owner is gone (ErrPinned's opposite: the store is no longer
// served, nothing logs its writes) or of another layout (ErrLayout). Close
// the maps when done.
func OpenPinned(dir string) (map[string]*ebpf.Map, error) {
	owner, err := readOwner(dir)
	if err != nil {
		return nil, fmt.Errorf("bpfdb: no bpfdb store pinned in %s: %w", dir, err)
	}
	if owner.Layout != LayoutVersion {
		return nil, fmt.Errorf("%w: %s holds layout %#x, this build uses %#x", ErrLayout, dir, owner.Layout, LayoutVersion)
	}
	if !alive(owner) {
		return nil, fmt.Errorf("bpfdb: the store pinned in %s belonged to pid %d, which is gone: its writes are logged by nobody", dir, owner.Pid)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	maps := map[string]*ebpf.Map{}
	for _, ent := range entries {
		if ent.Name() == ownerPin {
			continue
		}
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, ent.Name()), nil)
		if err != nil {
			for _, m := range maps {
				m.Close()
			}
			return nil, fmt.Errorf("bpfdb: opening the pinned map %s: %w", ent.Name(), err)
		}
		maps[ent.Name()] = m
	}
	return maps, nil
}

func readOwner(dir string) (pinOwner, error) {
	var o pinOwner
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, ownerPin), nil)
	if err != nil {
		return o, err
	}
	defer m.Close()
	err = m.Lookup(uint32(0), &o)
	return o, err
}

// alive reports whether the owner's process still runs: its pid exists
// with the start time it recorded (a pid is reused by other processes).
func alive(o pinOwner) bool {
	start, err := startTime(int(o.Pid))
	return err == nil && start == o.StartTime
}

// startTime is field 22 of /proc/PID/stat: when the process started.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("bpfdb: /proc/%d/stat: %d fields", pid, len(fields))
	}
	return strconv.ParseUint(fields[19], 10, 64) // field 22, the 20th after the name
}

// removePins removes every pin in dir and dir itself (pins are files of
// bpffs: removing one drops the reference the pin held).
func removePins(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	// The owner first: a directory without it is never taken as a store.
	os.Remove(filepath.Join(dir, ownerPin))
	for _, ent := range entries {
		if err := os.Remove(filepath.Join(dir, ent.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, os.Remove(dir))
	return errors.Join(errs...)
}

// mountBPFFS mounts bpffs on /sys/fs/bpf when dir is below it and nothing
// is mounted there, as bpftool and bpfman do (these machines start without
// it). Elsewhere dir must already be on a bpffs.
func mountBPFFS(dir string) error {
	const root = "/sys/fs/bpf"
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err == nil && fs.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if abs != root && !strings.HasPrefix(abs, root+"/") {
		return fmt.Errorf("bpfdb: %s is not below %s, and bpffs is not mounted there", dir, root)
	}
	if err := unix.Mount("bpf", root, "bpf", 0, ""); err != nil {
		return fmt.Errorf("bpfdb: mounting bpffs on %s: %w", root, err)
	}
	return nil
}
