package bench

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a report was made.
type Machine struct {
	// NProc is the number of CPUs; Kernel is `uname -r`; CPU is
	// /proc/cpuinfo's model name; Go is the Go version of the harness.
	NProc    int    `json:"nproc"`
	Kernel   string `json:"kernel"`
	CPU      string `json:"cpu"`
	MemoryGB int    `json:"memory_gb"`
	Go       string `json:"go"`
	// Date is when the run started, UTC.
	Date time.Time `json:"date"`
	// Commit is `git rev-parse --short HEAD`, with "-dirty" when tracked
	// files differ from it ("unknown" outside a work tree).
	Commit string `json:"commit"`
}

// DescribeMachine gathers the machine's description (its fields are
// "unknown" where /proc or git cannot tell).
func DescribeMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC(),
		Kernel: "unknown", CPU: "unknown", Commit: "unknown"}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		kb, _ := strconv.Atoi(strings.Fields(v)[0])
		m.MemoryGB = (kb + 1<<19) >> 20
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			m.Commit += "-dirty"
		}
	}
	return m
}

// procField returns the value of the first "name : value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
