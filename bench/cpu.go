package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUSample is the machine's busy CPU time and this process's own (its
// waited-for children, the servers it started and stopped, included).
type CPUSample struct {
	// At is when the sample was taken.
	At          time.Time
	MachineBusy time.Duration // /proc/stat: every CPU's non-idle time
	Own         time.Duration // getrusage: self and waited children
	ok          bool
}

// clockTick is USER_HZ, the unit of /proc/stat (100 on every Linux ABI).
const clockTick = 100

// SampleCPU reads the counters; a sample that cannot be read is not ok.
func SampleCPU() CPUSample {
	s := CPUSample{At: time.Now()}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	var busy int64
	for i, v := range f[1:9] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 && i != 7 { // not idle, iowait, steal
			busy += n
		}
	}
	s.MachineBusy = time.Duration(busy) * time.Second / clockTick
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return s
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	s.Own = tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
	s.ok = true
	return s
}

// OtherCPUShare is the share of the machine's CPU capacity (nproc CPUs)
// used between two samples by processes other than this one and its
// children; -1 if unknown. Servers still running at the second sample
// count as other.
func OtherCPUShare(from, to CPUSample, nproc int) float64 {
	wall := to.At.Sub(from.At)
	if !from.ok || !to.ok || wall <= 0 || nproc <= 0 {
		return -1
	}
	other := (to.MachineBusy - from.MachineBusy) - (to.Own - from.Own)
	return max(0, float64(other)/float64(wall)/float64(nproc))
}
