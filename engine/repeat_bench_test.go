package engine

import (
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkChainRepeat runs the chain on the request an engine call has
// just left in its slot, b.N times inside one BPF_PROG_RUN (attr.Repeat),
// and reports the kernel's average per run: the chain's own time, without
// the system call, the Go side or the cold caches every real run meets.
func BenchmarkChainRepeat(b *testing.B) {
	for _, bc := range []struct {
		name  string
		nops  uint32
		chunk int // runs per BPF_PROG_RUN: about 0.2 ms, which a signal rarely interrupts
		prep  func(e *Engine, keys [][]byte) error
	}{
		{"Get", 1, 2000, func(e *Engine, keys [][]byte) error { _, err := e.Get(keys[0]); return err }},
		{"Set", 1, 1000, func(e *Engine, keys [][]byte) error { return e.Set(keys[0], benchValue(1)) }},
		{"BatchGet64", 64, 50, func(e *Engine, keys [][]byte) error {
			ops := make([]Op, 64)
			for i := range ops {
				ops[i] = Op{Kind: OpGet, Key: keys[i]}
			}
			return e.Batch(ops)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, keys := benchOpen(b)
			if err := bc.prep(e, keys); err != nil {
				b.Fatal(err)
			}
			s, err := e.acquire() // the lowest free slot: the one prep used
			if err != nil {
				b.Fatal(err)
			}
			defer e.release(s)
			if s.hdr.Nops != bc.nops {
				b.Fatalf("slot %d holds %d ops, want prep's %d", s.id, s.hdr.Nops, bc.nops)
			}
			// In chunks: a signal ends a run early (EINTR: the Go
			// runtime asks a goroutine running for 10 ms to yield), and
			// a long run meets one.
			var total float64
			failed := 0
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(bc.chunk, b.N-done)
				s.attr.Repeat = uint32(n)
				s.attr.ProgFd = uint32(e.progs.BpfdbEntry.FD())
				s.attr.Retval = 0
				_, _, errno := unix.RawSyscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&s.attr)), unsafe.Sizeof(s.attr))
				if errno == unix.EINTR { // a signal ended it early: run it again
					failed++
					runtime.Gosched() // let the runtime preempt us, or it signals again
					continue
				}
				if errno != 0 || s.attr.Retval != 2 { // XDP_PASS
					b.Fatalf("chain run: %v, return %d", errno, s.attr.Retval)
				}
				total += float64(s.attr.Duration) * float64(n)
				done += n
			}
			b.StopTimer()
			s.attr.Repeat = 0
			b.ReportMetric(float64(failed), "interrupted-chunks")
			for i := range bc.nops {
				if st := s.ops[i].Status; st != 0 {
					b.Fatalf("op %d: status %d", i, st)
				}
			}
			b.ReportMetric(total/float64(b.N), "kernel-ns/op")
		})
	}
}
