package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// testParams are small and short, for tests.
func testParams(keys int) Params {
	p := DefaultParams()
	p.Keys, p.ValueSize = keys, 16
	p.Warmup, p.Duration = 20*time.Millisecond, 150*time.Millisecond
	return p
}

// runTransferCell loads accounts into t and runs one transfer cell.
func runTransferCell(t *testing.T, target Target, clients, keys int, d Distribution) Result {
	t.Helper()
	return runWorkloadCell(t, target, WorkloadTransfer, clients, keys, d)
}

// runWorkloadCell loads accounts into t and runs one cell of transfer
// workload w.
func runWorkloadCell(t *testing.T, target Target, w Workload, clients, keys int, d Distribution) Result {
	t.Helper()
	p := testParams(keys)
	p.Distribution = d
	ctx := context.Background()
	if err := target.Start(ctx, Sync); err != nil {
		t.Fatal(err)
	}
	defer target.Stop()
	accounts := make([][]byte, keys)
	pairs := make([]KV, keys)
	for i := range accounts {
		accounts[i] = AccountKey(i)
		pairs[i] = KV{accounts[i], FormatBalance(InitialBalance)}
	}
	if err := target.Load(ctx, pairs); err != nil {
		t.Fatal(err)
	}
	ch, err := NewKeyChooser(d, keys, 0.99, 1)
	if err != nil {
		t.Fatal(err)
	}
	return RunCell(ctx, target, CellSpec{Workload: w, Clients: clients, Durability: Sync,
		Params: p, Accounts: accounts, Chooser: ch}, nil)
}

// The transfer check passes a correct target and fails targets that
// create or lose money, deterministically or through lost updates.
func TestTransferConservationCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		target    *memTarget
		clients   int
		conserved bool
	}{
		{"correct", &memTarget{}, 4, true},
		{"correct with aborts", &memTarget{abortEvery: 3}, 4, true},
		{"loses money", &memTarget{transfer: losesMoney}, 1, false},
		{"creates money", &memTarget{transfer: createsMoney}, 1, false},
		{"not atomic", &memTarget{transfer: notAtomic}, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runTransferCell(t, tc.target, tc.clients, 10, DistUniform)
			if res.Ops == 0 {
				t.Fatalf("no transfer committed: %+v", res)
			}
			if res.Conserved == nil {
				t.Fatalf("no conservation verdict: %+v", res)
			}
			if *res.Conserved != tc.conserved {
				t.Fatalf("conserved = %v (total %d, expected %d), want %v", *res.Conserved, res.Total, res.Expected, tc.conserved)
			}
			if !tc.conserved && !strings.Contains(res.Error, "money not conserved") {
				t.Errorf("a broken total is not reported as the cell's error: %q", res.Error)
			}
			if tc.conserved && res.Error != "" {
				t.Errorf("error on a correct target: %s", res.Error)
			}
		})
	}
}

// Aborted attempts are retried and counted: abort rate and retry rate.
func TestTransferCountsAborts(t *testing.T) {
	res := runTransferCell(t, &memTarget{abortEvery: 2}, 1, 10, DistZipfian)
	if res.Aborts == 0 || res.Retried == 0 {
		t.Fatalf("aborts %d, retried %d: want both counted", res.Aborts, res.Retried)
	}
	// One client, every other attempt aborted: about half the attempts.
	if res.AbortRate < 0.4 || res.AbortRate > 0.6 {
		t.Errorf("abort rate %.2f, want about 0.5", res.AbortRate)
	}
	if res.Attempts != res.Ops+res.Aborts {
		t.Errorf("attempts %d != commits %d + aborts %d", res.Attempts, res.Ops, res.Aborts)
	}
	if res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 {
		t.Errorf("latency %+v", res.Latency)
	}
}
