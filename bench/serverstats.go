package bench

// The server side of a cell: the CPU time of a server's processes, read
// from /proc, and the retries a server counts in its metrics, sampled at
// the start and the end of the measured window (ServerStats).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// procStat is what processTreeCPU needs of one /proc/<pid>/stat.
type procStat struct {
	ppid int
	cpu  time.Duration // utime + stime + cutime + cstime
}

// parseProcStat parses a /proc/<pid>/stat line. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself, so the
// fields are counted from the last ')': ppid is field 4, utime, stime,
// cutime and cstime are fields 14 to 17, in clock ticks.
func parseProcStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: ppid %q", f[1])
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat: CPU time %q", v)
		}
		ticks += n
	}
	return procStat{ppid: ppid, cpu: time.Duration(ticks) * time.Second / clockTick}, nil
}

// treeCPU sums the CPU time of root and of every process descending from
// it in stats (by pid).
func treeCPU(stats map[int]procStat, root int) time.Duration {
	children := map[int][]int{}
	for pid, st := range stats {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var total time.Duration
	seen := map[int]bool{}
	for stack := []int{root}; len(stack) > 0; {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		total += stats[pid].cpu
		stack = append(stack, children[pid]...)
	}
	return total
}

// processTreeCPU is the CPU time of process root and its descendants
// (PostgreSQL's backends are the postmaster's children; a backend that
// ended is in the postmaster's cutime once it was waited for).
func processTreeCPU(root int) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	stats := map[int]procStat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // ended meanwhile
		}
		if st, err := parseProcStat(data); err == nil {
			stats[pid] = st
		}
	}
	if _, ok := stats[root]; !ok {
		return 0, fmt.Errorf("process %d not found in /proc", root)
	}
	return treeCPU(stats, root), nil
}

// parseCounter returns the value of the unlabelled sample name in a
// Prometheus text exposition.
func parseCounter(text, name string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		metric, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || metric != name {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is not a number", name, value)
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s not in the metrics", name)
}

// scrapeCounter fetches url and returns the counter name.
func scrapeCounter(ctx context.Context, url, name string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseCounter(string(body), name)
}

// serverSample is one ServerStats reading.
type serverSample struct {
	cpu       time.Duration
	retries   int64
	cpuOK     bool
	retriesOK bool
}

// sampleServer reads s; a reading that fails is left not ok.
func sampleServer(ctx context.Context, s ServerStats) serverSample {
	var out serverSample
	var err error
	out.cpu, err = s.ServerCPU()
	out.cpuOK = err == nil
	out.retries, out.retriesOK, err = s.ServerRetries(ctx)
	out.retriesOK = out.retriesOK && err == nil
	return out
}

// setServer stores in res what the server did between two samples of the
// measured window: CPU time per operation and retries.
func (res *Result) setServer(from, to serverSample) {
	if from.cpuOK && to.cpuOK && res.Ops > 0 {
		res.ServerCPU = float64(to.cpu-from.cpu) / float64(time.Microsecond) / float64(res.Ops)
	}
	if from.retriesOK && to.retriesOK {
		n := to.retries - from.retries
		res.ServerRetries = &n
	}
}
