// Package netnstest gives tests two network namespaces joined by a veth
// pair, the only place network tests of bpfdb send packets that leave
// loopback: the namespaces and their addresses are the test's own, made
// with iproute2 (`ip netns`, `ip link`), and deleted at cleanup.
package netnstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Pair is two namespaces, Server and Client, joined by a veth pair:
// ServerIf (address ServerIP) in Server, ClientIf (ClientIP) in Client.
type Pair struct {
	Server, Client     string // namespace names
	ServerIf, ClientIf string // interface names, in their namespaces
	ServerIP, ClientIP string // IPv4 addresses, on a /30 of their own
}

var seq atomic.Int32

// New makes a Pair, or skips the test when namespaces cannot be made (not
// root, no iproute2), unless BPFDB_REQUIRE_BPF=1, which fails it instead.
// Everything is deleted at cleanup.
func New(t testing.TB) *Pair {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("BPFDB_REQUIRE_BPF") == "1" {
			t.Fatal("network namespace tests need root and iproute2 (BPFDB_REQUIRE_BPF=1)")
		}
		t.Skip("skipping: network namespace tests need root and iproute2")
	}
	n := seq.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, n)
	p := &Pair{
		Server: "bpfdb-s" + id, Client: "bpfdb-c" + id,
		ServerIf: "bdbs" + id, ClientIf: "bdbc" + id,
		// 10.211.x.y/30: private addresses that exist only inside these
		// namespaces; a pair per test in the same process.
		ServerIP: fmt.Sprintf("10.211.%d.%d", n/64%256, n%64*4+1),
		ClientIP: fmt.Sprintf("10.211.%d.%d", n/64%256, n%64*4+2),
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", p.Server).Run()
		exec.Command("ip", "netns", "del", p.Client).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", p.Server},
		{"netns", "add", p.Client},
		{"link", "add", p.ServerIf, "netns", p.Server, "type", "veth", "peer", "name", p.ClientIf, "netns", p.Client},
		{"-n", p.Server, "addr", "add", p.ServerIP + "/30", "dev", p.ServerIf},
		{"-n", p.Client, "addr", "add", p.ClientIP + "/30", "dev", p.ClientIf},
		{"-n", p.Server, "link", "set", p.ServerIf, "up"},
		{"-n", p.Client, "link", "set", p.ClientIf, "up"},
		{"-n", p.Server, "link", "set", "lo", "up"},
		{"-n", p.Client, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return p
}

// In runs fn on an OS thread that has entered namespace ns, then returns
// the thread to the namespace it was in: what fn does with the network
// (attach a program to an interface by index, open a socket) happens in ns.
func In(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never handed back to the scheduler if it could not
		// return to its namespace: it dies with the goroutine.
		runtime.LockOSThread()
		errc <- in(ns, fn)
	}()
	return <-errc
}

func in(ns string, fn func() error) error {
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return fmt.Errorf("netnstest: namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netnstest: entering %s: %w", ns, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netnstest: leaving %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Dialer returns a dial function (for net/http, go-redis and the like)
// whose connections are made in namespace ns: to reach a server on that
// namespace's own loopback.
func Dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := In(ns, func() (err error) {
			c, err = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// Exec runs a command in namespace ns (`ip netns exec`) and returns its
// combined output.
func Exec(ns string, name string, args ...string) ([]byte, error) {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...).CombinedOutput()
}

// AttachPass attaches an XDP program that passes every packet to iface in
// namespace ns, until cleanup. A veth delivers what XDP_TX sends out of
// its peer only when this end has an XDP program too.
func AttachPass(t testing.TB, ns, iface string) {
	t.Helper()
	err := In(ns, func() error {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}}) // XDP_PASS
		if err != nil {
			return err
		}
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			prog.Close()
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index})
		if err != nil {
			prog.Close()
			return err
		}
		t.Cleanup(func() { l.Close(); prog.Close() })
		return nil
	})
	if err != nil {
		t.Fatalf("netnstest: an XDP pass program on %s in %s: %v", iface, ns, err)
	}
}
