package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A stat line is read past the last ')' of the command name: ppid and
// the four CPU times (ticks of 10 ms) summed.
func TestParseProcStat(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
	line := "4242 (postgres: a) b) S 4200 4200 4200 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 12345 0 0\n"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 4200 {
		t.Errorf("ppid %d, want 4200", st.ppid)
	}
	if want := 210 * 10 * time.Millisecond; st.cpu != want {
		t.Errorf("cpu %v, want %v", st.cpu, want)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 0 0 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	self, err := processTreeCPU(os.Getpid())
	if err != nil || self < 0 {
		t.Errorf("processTreeCPU(self) = %v, %v", self, err)
	}
	if _, err := processTreeCPU(-1); err == nil {
		t.Error("processTreeCPU(-1) found a process")
	}
}

// A tree's CPU is its root's and every descendant's, no one else's.
func TestTreeCPU(t *testing.T) {
	ms := time.Millisecond
	stats := map[int]procStat{
		1:  {ppid: 0, cpu: 1000 * ms}, // init: not in the tree
		10: {ppid: 1, cpu: 100 * ms},  // the root (a postmaster)
		11: {ppid: 10, cpu: 20 * ms},  // a backend
		12: {ppid: 10, cpu: 30 * ms},  // another
		13: {ppid: 12, cpu: 4 * ms},   // a grandchild
		20: {ppid: 1, cpu: 500 * ms},  // a stranger
	}
	if got, want := treeCPU(stats, 10), 154*ms; got != want {
		t.Errorf("treeCPU = %v, want %v", got, want)
	}
	if got, want := treeCPU(stats, 13), 4*ms; got != want {
		t.Errorf("treeCPU of a leaf = %v, want %v", got, want)
	}
}

// The counter is the unlabelled sample of that exact name.
func TestParseCounter(t *testing.T) {
	text := `# HELP bpfdb_txn_retries_total Transactions run again.
# TYPE bpfdb_txn_retries_total counter
bpfdb_txn_retries_total_other 9
bpfdb_txn_retries_total 1.234e+06
bpfdb_exec_total{outcome="committed"} 5
`
	n, err := parseCounter(text, "bpfdb_txn_retries_total")
	if err != nil || n != 1_234_000 {
		t.Errorf("parseCounter = %d, %v; want 1234000", n, err)
	}
	if _, err := parseCounter(text, "bpfdb_missing_total"); err == nil {
		t.Error("a missing counter was found")
	}
}

// procTarget is memTarget with a stored procedure and server stats: its
// "server" spends 10 µs of CPU and one retry per procedure call.
type procTarget struct {
	*memTarget
	procCalls, plainCalls atomic.Int64
}

func (p *procTarget) Connect(ctx context.Context) (Conn, error) {
	return procConn{memConn{p.memTarget}, p}, nil
}
func (p *procTarget) ServerCPU() (time.Duration, error) {
	return time.Duration(p.procCalls.Load()) * 10 * time.Microsecond, nil
}
func (p *procTarget) ServerRetries(ctx context.Context) (int64, bool, error) {
	return p.procCalls.Load(), true, nil
}

type procConn struct {
	memConn
	p *procTarget
}

func (c procConn) Transfer(ctx context.Context, from, to []byte, amount int64) error {
	c.p.plainCalls.Add(1)
	return c.memConn.Transfer(ctx, from, to, amount)
}

func (c procConn) TransferProc(ctx context.Context, from, to []byte, amount int64) error {
	c.p.procCalls.Add(1)
	return c.memConn.Transfer(ctx, from, to, amount)
}

// The stored-procedure workload calls TransferProc only, counts the
// aborts it shows the client, and measures the server's CPU time per
// transfer and its retries over the window; a target without a stored
// procedure is skipped.
func TestTransferProcWorkload(t *testing.T) {
	pt := &procTarget{memTarget: &memTarget{abortEvery: 5}}
	res := runWorkloadCell(t, pt, WorkloadTransferProc, 2, 10, DistUniform)
	if res.Error != "" || res.Ops == 0 || res.Conserved == nil || !*res.Conserved {
		t.Fatalf("%s", res.Summary())
	}
	if res.Workload != "transfer-proc" {
		t.Errorf("workload label %q", res.Workload)
	}
	if pt.plainCalls.Load() != 0 || pt.procCalls.Load() == 0 {
		t.Errorf("%d Transfer calls, %d TransferProc calls: want only TransferProc", pt.plainCalls.Load(), pt.procCalls.Load())
	}
	if res.Aborts == 0 {
		t.Errorf("the injected aborts were not counted: %s", res.Summary())
	}
	// Every call costs 10 µs, and a committed transfer took 1.25 calls.
	if res.ServerCPU < 11 || res.ServerCPU > 14 {
		t.Errorf("server CPU %.2f µs per transfer, want about 12.5", res.ServerCPU)
	}
	if res.ServerRetries == nil || *res.ServerRetries < res.Attempts*9/10 || *res.ServerRetries > res.Attempts*11/10 {
		t.Errorf("server retries %v, want about the %d attempts", res.ServerRetries, res.Attempts)
	}
	if !strings.Contains(res.Summary(), "server CPU") || !strings.Contains(ResultsTable([]Result{res}), fmt.Sprintf("%.1f (", res.ServerCPU)) {
		t.Errorf("server CPU not reported: %s", res.Summary())
	}

	plain := runWorkloadCell(t, &memTarget{}, WorkloadTransferProc, 1, 10, DistUniform)
	if plain.Skipped == "" || plain.Ops != 0 {
		t.Errorf("a target without a stored procedure ran it: %s", plain.Summary())
	}
}

// The procs suite runs, at every client count and durability, the four
// targets of issue 19.
func TestProcsPlan(t *testing.T) {
	plan, err := SuitePlan("procs", StandardParams())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Cells) != 2*4*len(StandardClients) {
		t.Fatalf("%d cells", len(plan.Cells))
	}
	seen := map[string]bool{}
	for _, c := range plan.Cells {
		seen[c.Target+" "+c.Workload.Label()] = true
	}
	for _, want := range []string{"serve transfer-proc", "serve transfer", "redis transfer-proc", "postgres transfer-proc"} {
		if !seen[want] {
			t.Errorf("no %s cell", want)
		}
	}
	if ws, err := ParseWorkloads("transfer-proc"); err != nil || !ws[0].Proc {
		t.Errorf("ParseWorkloads(transfer-proc) = %v, %v", ws, err)
	}
}
