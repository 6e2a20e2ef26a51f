package bench

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// runRealTarget runs a YCSB F cell pipelined 4 deep (reads, then the
// read-modify-writes' writes), a transfer cell and a cell of each extra
// workload, of about a third of a second each, on a real target.
func runRealTarget(t *testing.T, name string, env TargetEnv, extra ...Workload) {
	t.Helper()
	p := testParams(2000)
	p.Duration, p.Pipeline = 300*time.Millisecond, 4
	env.Keys, env.ValueSize = p.Keys, p.ValueSize
	target, err := NewTarget(name, env)
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan{Params: p, Cells: []Cell{
		{Workload: WorkloadF, Target: name, Clients: 4, Durability: Async},
		{Workload: WorkloadTransfer, Target: name, Clients: 4, Durability: Async},
	}}
	for _, w := range extra {
		plan.Cells = append(plan.Cells, Cell{Workload: w, Target: name, Clients: 4, Durability: Async})
	}
	results, err := (&Runner{NewTarget: func(string, TargetEnv) (Target, error) { return target, nil }}).Run(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		if res.Skipped != "" {
			t.Skipf("skipping: %s", res.Skipped)
		}
		if res.Error != "" || res.Ops == 0 {
			t.Fatalf("%s", res.Summary())
		}
		if res.Conserved != nil && !*res.Conserved {
			t.Fatalf("%s", res.Summary())
		}
		if _, server := target.(ServerStats); server && res.ServerCPU <= 0 {
			t.Errorf("no server CPU measured: %s", res.Summary())
		}
		t.Log(res.Summary())
	}
}

// requireBPF skips without root unless BPFDB_REQUIRE_BPF=1, then fails.
func requireBPF(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("BPFDB_REQUIRE_BPF") == "1" {
			t.Fatal("BPFDB_REQUIRE_BPF=1 but not root: cannot load BPF programs")
		}
		t.Skip("skipping: loading BPF programs needs root")
	}
}

// The embedded bpfdb target end to end (needs root).
func TestEmbeddedTarget(t *testing.T) {
	requireBPF(t)
	runRealTarget(t, "embedded", TargetEnv{})
}

// The pebble target end to end (needs nothing).
func TestPebbleTarget(t *testing.T) {
	runRealTarget(t, "pebble", TargetEnv{})
}

// redis-server and PostgreSQL end to end, the transfer stored procedure
// included, when BPFDB_BENCH_SERVERS=1 (they start servers; the plain
// test run needs none).
func TestServerTargets(t *testing.T) {
	if os.Getenv("BPFDB_BENCH_SERVERS") != "1" {
		t.Skip("skipping: set BPFDB_BENCH_SERVERS=1 to start redis-server and PostgreSQL")
	}
	env := DefaultTargetEnv("", testParams(2000))
	for _, name := range []string{"redis", "postgres"} {
		t.Run(name, func(t *testing.T) { runRealTarget(t, name, env, WorkloadTransferProc) })
	}
}

// A server that is not where the environment says is skipped, not failed.
func TestMissingServerIsSkipped(t *testing.T) {
	env := TargetEnv{RedisServer: "/nonexistent/redis-server", PostgresBin: "/nonexistent", BpfdbBinary: "/nonexistent/bpfdb"}
	for _, name := range []string{"redis", "postgres", "serve"} {
		target, _ := NewTarget(name, env)
		var skip *SkipError
		if err := target.Check(); !errors.As(err, &skip) {
			t.Errorf("%s: Check() = %v, want a *SkipError", name, err)
		}
	}
}
