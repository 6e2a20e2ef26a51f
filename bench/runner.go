package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Cell names one measurement of a plan.
type Cell struct {
	// Workload is what the clients do.
	Workload Workload
	// Target is the target's name (see TargetNames).
	Target string
	// Clients is the number of concurrent clients.
	Clients int
	// Durability is the durability the target is started with.
	Durability Durability
}

// Plan is the cells to run and the settings they share.
type Plan struct {
	// Params are shared by every cell.
	Params Params
	// Cells are run in order, grouped by durability and target.
	Cells []Cell
}

// CrossPlan returns every combination, durability outermost, then target,
// workload and client count.
func CrossPlan(p Params, workloads []Workload, targets []string, clients []int, durabilities []Durability) Plan {
	plan := Plan{Params: p}
	for _, d := range durabilities {
		for _, t := range targets {
			for _, w := range workloads {
				for _, c := range clients {
					plan.Cells = append(plan.Cells, Cell{Workload: w, Target: t, Clients: c, Durability: d})
				}
			}
		}
	}
	return plan
}

// Runner runs plans.
type Runner struct {
	// Env locates the servers.
	Env TargetEnv
	// Log receives one line per target started, skipped or stopped.
	Log io.Writer
	// Progress shows the live line of the running cell (may be nil).
	Progress *Progress
	// NewTarget builds targets (default NewTarget); tests substitute it.
	NewTarget func(name string, env TargetEnv) (Target, error)
}

// Timeouts of the phases around the cells.
const (
	startTimeout = 2 * time.Minute
	loadTimeout  = 5 * time.Minute
)

// group is the cells of one target at one durability, run on one start.
type group struct {
	target     string
	durability Durability
	cells      []Cell
}

// groups splits the plan's cells by (durability, target), keeping the
// order in which each pair first appears and the cells' order within it.
func (p Plan) groups() []group {
	var out []group
	index := map[[2]string]int{}
	for _, c := range p.Cells {
		k := [2]string{string(c.Durability), c.Target}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, group{target: c.Target, durability: c.Durability})
		}
		out[i].cells = append(out[i].cells, c)
	}
	return out
}

// Run runs every cell of the plan and returns their results in the
// plan's group order, skipped and failed cells included. It fails only for
// an invalid plan; ctx cancels it (the cells not run are then skipped).
func (r *Runner) Run(ctx context.Context, plan Plan) ([]Result, error) {
	p := plan.Params
	if err := p.Validate(); err != nil {
		return nil, err
	}
	newTarget := r.NewTarget
	if newTarget == nil {
		newTarget = NewTarget
	}
	chooser, err := NewKeyChooser(p.Distribution, p.Keys, p.Theta, p.Seed)
	if err != nil {
		return nil, err
	}
	records, accounts := make([][]byte, p.Keys), make([][]byte, p.Keys)
	for i := range p.Keys {
		records[i], accounts[i] = RecordKey(i), AccountKey(i)
	}
	var results []Result
	for _, g := range plan.groups() {
		t, err := newTarget(g.target, r.Env)
		if err != nil {
			return nil, err
		}
		results = append(results, r.runGroup(ctx, t, g, p, records, accounts, chooser)...)
	}
	return results, nil
}

// runGroup starts t, loads what the group's cells need, runs them and
// stops t. A target that cannot run skips all of its cells.
func (r *Runner) runGroup(ctx context.Context, t Target, g group, p Params, records, accounts [][]byte, chooser KeyChooser) []Result {
	skipAll := func(reason string) []Result {
		out := make([]Result, len(g.cells))
		for i, c := range g.cells {
			out[i] = Result{Workload: c.Workload.Label(), Target: c.Target, Clients: c.Clients, Durability: c.Durability, Pipeline: p.Pipeline, Skipped: reason}
		}
		return out
	}
	failAll := func(err error) []Result {
		out := skipAll("")
		for i := range out {
			out[i].Error = err.Error()
		}
		return out
	}
	if ctx.Err() != nil {
		return skipAll("interrupted")
	}
	if err := t.Check(); err != nil {
		r.logf("bench: skipping %s (%s durability): %v", t.Name(), g.durability, err)
		return skipAll(err.Error())
	}
	begin := time.Now()
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	err := t.Start(sctx, g.durability)
	cancel()
	if err != nil {
		var skip *SkipError
		if errors.As(err, &skip) {
			r.logf("bench: skipping %s (%s durability): %v", t.Name(), g.durability, err)
			return skipAll(skip.Reason)
		}
		r.logf("bench: %s (%s durability) failed to start: %v", t.Name(), g.durability, err)
		return failAll(fmt.Errorf("start: %w", err))
	}
	defer func() {
		if err := t.Stop(); err != nil {
			r.logf("bench: stopping %s: %v", t.Name(), err)
		}
	}()
	r.logf("bench: started %s (%s durability) in %.1fs", t.Name(), g.durability, time.Since(begin).Seconds())
	if err := r.load(ctx, t, g, p, records, accounts); err != nil {
		r.logf("bench: loading %s failed: %v", t.Name(), err)
		return failAll(fmt.Errorf("load: %w", err))
	}
	var out []Result
	for _, c := range g.cells {
		res := Result{Workload: c.Workload.Label(), Target: c.Target, Clients: c.Clients, Durability: c.Durability, Pipeline: p.Pipeline}
		if err := t.Supports(ctx, c.Workload); err != nil {
			res.Skipped = err.Error()
			r.logf("bench: skipping %s on %s: %v", c.Workload.Label(), t.Name(), err)
		} else if ctx.Err() != nil {
			res.Skipped = "interrupted"
		} else {
			res = RunCell(ctx, t, CellSpec{Workload: c.Workload, Clients: c.Clients, Durability: c.Durability,
				Params: p, Records: records, Accounts: accounts, Chooser: chooser}, r.Progress)
			r.logf("bench: %s", res.Summary())
		}
		out = append(out, res)
	}
	return out
}

// load writes the records if a YCSB cell needs them and the accounts if
// a transfer cell does.
func (r *Runner) load(ctx context.Context, t Target, g group, p Params, records, accounts [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	var ycsb, transfer bool
	for _, c := range g.cells {
		ycsb = ycsb || !c.Workload.Transfer
		transfer = transfer || c.Workload.Transfer
	}
	begin := time.Now()
	var pairs []KV
	if ycsb {
		value := make([]byte, p.ValueSize)
		for i := range value {
			value[i] = byte('a' + i%26)
		}
		for _, k := range records {
			pairs = append(pairs, KV{Key: k, Value: value})
		}
	}
	if transfer {
		balance := FormatBalance(InitialBalance)
		for _, k := range accounts {
			pairs = append(pairs, KV{Key: k, Value: balance})
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	if err := t.Load(ctx, pairs); err != nil {
		return err
	}
	el := time.Since(begin)
	r.logf("bench: loaded %d keys into %s in %.1fs (%s keys/s)", len(pairs), t.Name(), el.Seconds(), thousands(float64(len(pairs))/el.Seconds()))
	return nil
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

// Summary is a one-line description of the result.
func (res Result) Summary() string {
	head := fmt.Sprintf("%s %s %s clients=%d", res.Workload, res.Durability, res.Target, res.Clients)
	switch {
	case res.Skipped != "":
		return head + ": skipped: " + res.Skipped
	case res.Error != "" && res.Ops == 0:
		return head + ": FAILED: " + res.Error
	}
	s := fmt.Sprintf("%s: %s ops/s, p50 %s p99 %s p99.9 %s µs, aborts %.2f%%", head, thousands(res.Throughput),
		shortFloat(res.Latency.P50), shortFloat(res.Latency.P99), shortFloat(res.Latency.P999), 100*res.AbortRate)
	if res.ServerCPU > 0 {
		s += fmt.Sprintf(", server CPU %.1f µs/op", res.ServerCPU)
	}
	if res.ServerRetries != nil {
		s += fmt.Sprintf(", server retries %d", *res.ServerRetries)
	}
	if res.Conserved != nil && *res.Conserved {
		s += ", total conserved"
	}
	if res.Error != "" {
		s += ": FAILED: " + res.Error
	}
	return s
}
