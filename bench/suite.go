package bench

import (
	"fmt"
	"time"
)

// StandardClients are the client counts of the standard suite.
var StandardClients = []int{1, 8, 64}

// StandardParams are the settings of the standard suite: 100,000 keys of
// 100 bytes, zipfian 0.99, 1 s warm-up (64 PostgreSQL backends need it)
// and 2.5 s measured per cell.
func StandardParams() Params {
	p := DefaultParams()
	p.Warmup, p.Duration = time.Second, 2500*time.Millisecond
	return p
}

// StandardPlan is the suite `make bench` runs (70 cells, about 5 minutes
// on 2 cores): YCSB A, C
// and transfers at 1, 8 and 64 clients with sync durability, YCSB A again
// with async durability, and YCSB B and F at 8 clients, sync; every cell
// on every target.
func StandardPlan(p Params) Plan {
	plan := Plan{Params: p}
	for _, d := range []Durability{Sync, Async} {
		for _, t := range TargetNames {
			add := func(w Workload, clients ...int) {
				for _, c := range clients {
					plan.Cells = append(plan.Cells, Cell{Workload: w, Target: t, Clients: c, Durability: d})
				}
			}
			if d == Async {
				add(WorkloadA, StandardClients...)
				continue
			}
			add(WorkloadA, StandardClients...)
			add(WorkloadB, 8)
			add(WorkloadC, StandardClients...)
			add(WorkloadF, 8)
			add(WorkloadTransfer, StandardClients...)
		}
	}
	return plan
}

// ProcsPlan is issue 19's comparison of transfer stored procedures, at 1,
// 8 and 64 clients, sync then async durability: bpfdb serve's EVALSHA,
// redis-server's EVALSHA, bpfdb serve's WATCH/MULTI/EXEC transfers and
// PostgreSQL's plpgsql function at SERIALIZABLE.
func ProcsPlan(p Params) Plan {
	plan := Plan{Params: p}
	for _, d := range []Durability{Sync, Async} {
		for _, tw := range []struct {
			target string
			w      Workload
		}{{"serve", WorkloadTransferProc}, {"serve", WorkloadTransfer}, {"redis", WorkloadTransferProc}, {"postgres", WorkloadTransferProc}} {
			for _, c := range StandardClients {
				plan.Cells = append(plan.Cells, Cell{Workload: tw.w, Target: tw.target, Clients: c, Durability: d})
			}
		}
	}
	return plan
}

// Suites names the predefined plans.
var Suites = map[string]func(Params) Plan{"standard": StandardPlan, "procs": ProcsPlan}

// SuitePlan returns the named suite's plan with p.
func SuitePlan(name string, p Params) (Plan, error) {
	mk, ok := Suites[name]
	if !ok {
		return Plan{}, fmt.Errorf("unknown suite %q (have standard, procs)", name)
	}
	return mk(p), nil
}
