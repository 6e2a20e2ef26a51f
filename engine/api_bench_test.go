package engine

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine/internal/apitest"
	"golang.org/x/sys/unix"
)

// BenchmarkIncr compares one autocommit increment of a counter, logged
// (a data directory, async durability: nobody waits for the disk, as a
// BPF writer cannot), made three ways in one run:
//
//   - kernel-repeat: by a BPF program calling bpfdb_incr, run by
//     BPF_PROG_RUN with repeat (what an XDP or tc program attached to an
//     interface costs per packet, without the packet);
//   - kernel-run: one BPF_PROG_RUN per increment (the syscall included);
//   - engine-incr: the embedded Go API's Engine.Incr, one chain run
//     (OpIncr), what RESP INCR runs;
//   - engine-txn: a read-write transaction of two chain runs (Txn.Run of
//     the key ForUpdate, CommitWith of the new value).
//
// cpu-µs/op is the process's CPU (user+system, every thread: the log's
// writer included) per increment.
func BenchmarkIncr(b *testing.B) {
	db := openTest(b, Options{Dir: b.TempDir(), Durability: Async, CheckpointInterval: -1, CheckpointLogBytes: -1})
	a := loadAPI(b, db)
	in := &apiSlot{Keys: [2]apitest.ApitestBpfdbKey{apiKey("counter")}, Delta: 1}
	if err := a.slots.Update(uint32(0), in, 0); err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 16) // api slot 0
	binary.LittleEndian.PutUint32(pkt, 0)
	prog := a.coll.Programs["api_incr"]
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	report := func(b *testing.B, start time.Duration) {
		b.ReportMetric(float64(cpu()-start)/float64(b.N)/1e3, "cpu-µs/op")
	}
	b.Run("kernel-repeat", func(b *testing.B) {
		start := cpu()
		_, per, err := prog.Benchmark(pkt, b.N, b.ResetTimer)
		if err != nil {
			b.Fatal(err)
		}
		report(b, start)
		b.ReportMetric(float64(per.Nanoseconds()), "kernel-ns/op")
		checkStatus(b, a)
	})
	b.Run("kernel-run", func(b *testing.B) {
		start := cpu()
		for i := 0; i < b.N; i++ {
			if _, err := a.call("api_incr", 0, in); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	b.Run("engine-incr", func(b *testing.B) {
		start := cpu()
		for i := 0; i < b.N; i++ {
			if _, err := db.Incr([]byte("incr-counter"), 1); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	b.Run("engine-txn", func(b *testing.B) {
		start := cpu()
		for i := 0; i < b.N; i++ {
			if err := engineIncr(db, []byte("engine-counter")); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
}

// checkStatus fails the benchmark if the last kernel increment failed.
func checkStatus(b *testing.B, a *apiEnv) {
	var out apiSlot
	if err := a.slots.Lookup(uint32(0), &out); err != nil {
		b.Fatal(err)
	}
	if out.Status != 0 {
		b.Fatalf("the kernel increment failed with status %d", out.Status)
	}
}
