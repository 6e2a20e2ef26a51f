// Command flowcount counts, per IPv4 source address, the packets and bytes
// an interface receives, in bpfdb, from an XDP program in the kernel
// (flowcount.c): a small application of the store as a library for BPF
// programs (bpf/include/bpfdb_api.h). It embeds the engine, loads the XDP
// program against the engine's maps, attaches it, serves the counters over
// RESP (redis-cli GET pkts:10.0.0.2) and prints the busiest sources itself,
// read through the embedded Go API. The counters are durable: restarted
// after kill -9, flowcount finds every count that was on disk.
//
// See README.md in this directory.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/server"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// config is flowcount's command line.
type config struct {
	iface    string
	dir      string
	listen   string
	mode     string
	async    bool
	maxKeys  int
	report   time.Duration
	top      int
	stopWait time.Duration
}

func main() {
	if err := run(os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "flowcount:", err)
		os.Exit(1)
	}
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("flowcount", flag.ContinueOnError)
	fs.StringVar(&c.iface, "iface", "", "interface whose received packets are counted (required)")
	fs.StringVar(&c.dir, "dir", "./flowcount-data", "bpfdb data directory (log and checkpoints)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:6380", "TCP address to serve RESP on")
	fs.StringVar(&c.mode, "mode", "auto", "XDP attach mode: auto (native if the driver has it), native or generic")
	fs.IntVar(&c.maxKeys, "max-keys", 1<<16, "capacity of the store (two keys per source)")
	fs.BoolVar(&c.async, "async", false, "answer RESP writes before they are on disk (the log is fsynced every 10ms); the counters' increments are made durable in the background either way")
	fs.DurationVar(&c.report, "report", 5*time.Second, "how often to print the busiest sources (0: never)")
	fs.IntVar(&c.top, "top", 10, "how many sources a report prints")
	fs.DurationVar(&c.stopWait, "shutdown-timeout", 10*time.Second, "longest SIGINT or SIGTERM takes")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.iface == "" {
		return c, errors.New("--iface is required")
	}
	return c, nil
}

func attachFlags(mode string) (link.XDPAttachFlags, error) {
	switch mode {
	case "auto":
		return 0, nil
	case "native":
		return link.XDPDriverMode, nil
	case "generic":
		return link.XDPGenericMode, nil
	}
	return 0, fmt.Errorf("--mode %q: want auto, native or generic", mode)
}

// run is flowcount: it returns when SIGINT or SIGTERM arrives, or stop is
// closed, after detaching the program and closing the store.
func run(args []string, log io.Writer, stop <-chan struct{}) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	flags, err := attachFlags(c.mode)
	if err != nil {
		return err
	}
	iface, err := net.InterfaceByName(c.iface)
	if err != nil {
		return err
	}
	durability := engine.Sync
	if c.async {
		durability = engine.Async
	}
	db, err := engine.Open(engine.Options{Dir: c.dir, MaxKeys: c.maxKeys, Durability: durability})
	if err != nil {
		return err
	}
	r := db.Recovery()
	fmt.Fprintf(log, "flowcount: %s: recovered to LSN %d (%d transactions replayed)\n", c.dir, r.LSN, r.Replay.Txns)
	objs, err := load(db)
	if err != nil {
		db.Close()
		return err
	}
	defer objs.Close()
	l, err := link.AttachXDP(link.XDPOptions{Program: objs.FlowCountXdp, Interface: iface.Index, Flags: flags})
	if err != nil {
		db.Close()
		return fmt.Errorf("attaching XDP to %s: %w", c.iface, err)
	}
	srv, err := server.New(db, server.Config{Addr: c.listen, Version: "flowcount"})
	if err != nil {
		l.Close()
		db.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	fmt.Fprintf(log, "flowcount: counting packets received on %s; RESP on %s\n", c.iface, srv.Addr())

	wait(c.report, stop, srv.ShutdownRequested(), func() { report(log, db, objs, c.top) })

	// Detach first: no increment is made after the store starts closing.
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.stopWait/2)
	defer cancel()
	srv.Shutdown(ctx)
	<-served
	report(log, db, objs, c.top)
	return db.Close()
}

// load loads flowcount.c against db's maps.
func load(db *engine.Engine) (*flowcountObjects, error) {
	spec, err := loadFlowcount()
	if err != nil {
		return nil, err
	}
	repl, err := db.FitSpec(spec)
	if err != nil {
		return nil, err
	}
	var objs flowcountObjects
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		return nil, fmt.Errorf("loading flowcount.c against the store: %w", err)
	}
	return &objs, nil
}

// wait calls tick every interval until a signal, stop or done.
func wait(interval time.Duration, stop, done <-chan struct{}, tick func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	var ticks <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-sig:
			return
		case <-stop:
			return
		case <-done:
			return
		case <-ticks:
			tick()
		}
	}
}

// source is one source address's counters.
type source struct {
	addr        string
	pkts, bytes int64
}

// sources reads every counter from the store through the embedded API.
func sources(db *engine.Engine) ([]source, error) {
	by := map[string]*source{}
	err := db.Scan(func(it *engine.Item) bool {
		key, value := it.Key, it.Value
		kind, addr, ok := strings.Cut(string(key), ":")
		if !ok || (kind != "pkts" && kind != "bytes") {
			return true
		}
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return true
		}
		s := by[addr]
		if s == nil {
			s = &source{addr: addr}
			by[addr] = s
		}
		if kind == "pkts" {
			s.pkts = n
		} else {
			s.bytes = n
		}
		return true
	})
	out := make([]source, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b source) int {
		return cmp.Or(cmp.Compare(b.pkts, a.pkts), strings.Compare(a.addr, b.addr))
	})
	return out, err
}

// report prints the top busiest sources and what the program could not count.
func report(log io.Writer, db *engine.Engine, objs *flowcountObjects, top int) {
	srcs, err := sources(db)
	if err != nil {
		fmt.Fprintf(log, "flowcount: reading the counters: %v\n", err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "flowcount: %d sources\n", len(srcs))
	for _, s := range srcs[:min(top, len(srcs))] {
		fmt.Fprintf(&b, "  %-15s %10d pkts %14d bytes\n", s.addr, s.pkts, s.bytes)
	}
	if st, err := readStats(db, objs); err == nil {
		fmt.Fprintf(&b, "  since start: %d IPv4 packets counted, %d other packets passed\n", st.packets, st.other)
		if st.failed > 0 || st.retries > 0 {
			fmt.Fprintf(&b, "  since start: %d increments retried, %d failed (%s): those packets were passed uncounted\n",
				st.retries, st.failed, st.why)
		}
	}
	io.WriteString(log, b.String())
}

// stats are the program's own counters, summed over CPUs.
type stats struct {
	packets, other, retries, failed uint64
	why                             string // failures by status
}

func readStats(db *engine.Engine, objs *flowcountObjects) (stats, error) {
	var st stats
	sum := func(m *ebpf.Map, i uint32) (uint64, error) {
		var per []uint64
		if err := m.Lookup(i, &per); err != nil {
			return 0, err
		}
		var n uint64
		for _, v := range per {
			n += v
		}
		return n, nil
	}
	for i, p := range []*uint64{&st.packets, &st.other, &st.retries, &st.failed} {
		n, err := sum(objs.FlowStats, uint32(i))
		if err != nil {
			return st, err
		}
		*p = n
	}
	var why []string
	for status := uint32(0); status < objs.FlowFailed.MaxEntries(); status++ {
		n, err := sum(objs.FlowFailed, status)
		if err != nil {
			return st, err
		}
		if n > 0 {
			why = append(why, fmt.Sprintf("%v: %d", db.StatusError(int32(status)), n))
		}
	}
	st.why = strings.Join(why, ", ")
	return st, nil
}
