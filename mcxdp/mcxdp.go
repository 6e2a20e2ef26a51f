// Package mcxdp answers memcached UDP get and gets requests in XDP, from
// the store, without the request reaching user space: the kernel half of
// bpfdb's memcached front end (bpf/mcxdp/mcxdp.c). What the program cannot
// answer in one datagram, and every other command, passes up to the
// kernel's stack and to the user-space server of package mcudp, which
// must listen on the same port.
//
//	fe, err := mcxdp.Attach(db, mcxdp.Config{Interface: "eth0", Port: 11211})
//	defer fe.Close()
//
// XDP_TX sends a reply back out of the interface it came in on; on a veth,
// the peer must have an XDP program attached (any, even one that passes
// everything) for the kernel to deliver what XDP_TX sends.
package mcxdp

import (
	"errors"
	"fmt"
	"net"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Limits of the XDP program, from bpf/mcxdp/mcxdp.h.
const (
	// MaxRequest is the longest request text (after the frame header)
	// answered in XDP.
	MaxRequest = int(mcxdpMcxdpLimitMCXDP_REQ_MAX)
	// MaxKeys is the most keys of one get answered in XDP.
	MaxKeys = int(mcxdpMcxdpLimitMCXDP_KEYS)
	// MaxDatagram is the largest reply, frame header included.
	MaxDatagram = int(mcxdpMcxdpLimitMCXDP_DATAGRAM)
)

// Mode is how the program is attached.
type Mode int

const (
	// Auto attaches in the driver's native mode where it has one, else generic.
	Auto Mode = iota
	// Native requires the driver's XDP (fails where it has none).
	Native
	// Generic uses the kernel's generic XDP (any interface, slower).
	Generic
)

// Config says where the front end answers.
type Config struct {
	// Interface is the network interface whose received requests are answered.
	Interface string
	// Port is the UDP port answered (memcached's 11211 when 0).
	Port int
	// Mode is the attach mode (Auto by default).
	Mode Mode
}

// Frontend is the XDP program attached to an interface.
type Frontend struct {
	objs mcxdpObjects
	link link.Link
	cfg  Config
}

// Attach loads the program against db's maps and attaches it.
func Attach(db *engine.Engine, cfg Config) (*Frontend, error) {
	if cfg.Port == 0 {
		cfg.Port = 11211
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mcxdp: port %d is not a UDP port", cfg.Port)
	}
	flags, err := cfg.Mode.flags()
	if err != nil {
		return nil, err
	}
	iface, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("mcxdp: %w", err)
	}
	f := &Frontend{cfg: cfg}
	if err := load(db, cfg.Port, &f.objs); err != nil {
		return nil, err
	}
	f.link, err = link.AttachXDP(link.XDPOptions{Program: f.objs.McxdpGet, Interface: iface.Index, Flags: flags})
	if err != nil {
		f.objs.Close()
		return nil, fmt.Errorf("mcxdp: attaching to %s: %w", cfg.Interface, err)
	}
	return f, nil
}

// ParseMode reads "auto", "native" or "generic".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return Auto, nil
	case "native":
		return Native, nil
	case "generic":
		return Generic, nil
	}
	return Auto, fmt.Errorf("mcxdp: XDP mode %q: want auto, native or generic", s)
}

// load loads the program, answering port, against db's maps into objs.
func load(db *engine.Engine, port int, objs *mcxdpObjects) error {
	spec, err := loadMcxdp()
	if err != nil {
		return err
	}
	if err := spec.Variables["mcxdp_port"].Set(uint16(port)); err != nil {
		return err
	}
	repl, err := db.FitSpec(spec)
	if err != nil {
		return err
	}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("mcxdp: loading the program: %+v", ve)
		}
		return fmt.Errorf("mcxdp: loading the program: %w", err)
	}
	return nil
}

func (m Mode) flags() (link.XDPAttachFlags, error) {
	switch m {
	case Auto:
		return 0, nil
	case Native:
		return link.XDPDriverMode, nil
	case Generic:
		return link.XDPGenericMode, nil
	}
	return 0, fmt.Errorf("mcxdp: unknown mode %d", m)
}

// Config returns the front end's configuration (Port filled in).
func (f *Frontend) Config() Config { return f.cfg }

// Close detaches the program and releases it; the store is not touched.
func (f *Frontend) Close() error {
	err := f.link.Close()
	return errors.Join(err, f.objs.Close())
}

// Counter is one of the program's counters, summed over CPUs.
type Counter struct {
	Name, Help string
	Value      uint64
}

// counters names the program's counters (enum mcxdp_stat), for INFO
// (memcache_xdp_<name>) and /metrics.
var counters = []struct {
	stat       mcxdpMcxdpStat
	name, help string
}{
	{mcxdpMcxdpStatMCXDP_ANSWERED, "answered", "get and gets requests answered in XDP"},
	{mcxdpMcxdpStatMCXDP_HITS, "hits", "keys found by gets answered in XDP"},
	{mcxdpMcxdpStatMCXDP_MISSES, "misses", "keys not found by gets answered in XDP"},
	{mcxdpMcxdpStatMCXDP_PASS_COMMAND, "passed_command", "requests passed to user space: not a get or gets"},
	{mcxdpMcxdpStatMCXDP_PASS_TOO_BIG, "passed_too_big", "gets passed to user space: the reply needs more than one datagram"},
	{mcxdpMcxdpStatMCXDP_PASS_KEY, "passed_long_key", "gets passed to user space: a key longer than the store's limit"},
	{mcxdpMcxdpStatMCXDP_PASS_KEYS, "passed_many_keys", "gets passed to user space: more keys than XDP answers"},
	{mcxdpMcxdpStatMCXDP_PASS_LONG, "passed_long_request", "requests passed to user space: longer than XDP reads"},
	{mcxdpMcxdpStatMCXDP_PASS_BAD, "passed_malformed", "requests passed to user space: a malformed frame or command line"},
	{mcxdpMcxdpStatMCXDP_PASS_STORE, "passed_store_busy", "gets passed to user space: the store could not answer at once"},
	{mcxdpMcxdpStatMCXDP_PASS_ROOM, "passed_no_room", "gets passed to user space: the packet could not grow to the reply"},
}

// Counters reads the program's counters.
func (f *Frontend) Counters() ([]Counter, error) {
	out := make([]Counter, 0, len(counters))
	for _, c := range counters {
		var per []uint64
		if err := f.objs.McxdpStats.Lookup(uint32(c.stat), &per); err != nil {
			return nil, fmt.Errorf("mcxdp: reading counter %s: %w", c.name, err)
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		out = append(out, Counter{Name: c.name, Help: c.help, Value: n})
	}
	return out, nil
}
