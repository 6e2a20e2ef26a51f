package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bpfdb/bpfdb/bench"
	"github.com/spf13/cobra"
)

// benchFlags are the flags of `bpfdb bench`.
type benchFlags struct {
	suite, workloads, targets, clients, durability, distribution string
	out, docs, fromJSON                                          string
	params                                                       bench.Params
}

func benchCmd() *cobra.Command {
	f := benchFlags{params: bench.DefaultParams()}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark bpfdb against redis, pebble and PostgreSQL (YCSB A/B/C/F, transfers)",
		Long: `bench runs YCSB workloads A, B, C and F and a transfer workload (read two
balances, move an amount, write both, commit; the total is checked at the end)
against bpfdb embedded in this process, bpfdb serve, redis-server, pebble and
PostgreSQL; transfer-proc is the transfer as a stored procedure (EVALSHA of a
Lua script on RESP servers, a plpgsql function at SERIALIZABLE on PostgreSQL).
It starts and stops every server itself, on 127.0.0.1 in temporary
directories, says which targets it skipped and why, and measures the servers'
CPU time per operation (from /proc) and bpfdb serve's own retries (from its
metrics) during each measured window. Results go to --out as
results.json, results.md and SVG charts; --docs also rewrites the generated
section of a document (between <!-- bench:begin --> and <!-- bench:end -->).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runBench(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.suite, "suite", "", "run a predefined plan (standard; procs: transfer stored procedures); other flags override its settings, --durability keeps its cells of those durabilities")
	fl.StringVar(&f.workloads, "workloads", "a,c,transfer", "workloads: a, b, c, f, transfer, transfer-proc (a stored procedure: EVALSHA, a PostgreSQL function)")
	fl.StringVar(&f.targets, "targets", strings.Join(bench.TargetNames, ","), "targets: embedded, serve, redis, pebble, postgres")
	fl.StringVar(&f.clients, "clients", "1,8,64", "client counts")
	fl.StringVar(&f.durability, "durability", "sync", "sync, async, or both (sync,async)")
	fl.StringVar(&f.distribution, "distribution", string(f.params.Distribution), "key choice: zipfian or uniform")
	fl.Float64Var(&f.params.Theta, "theta", f.params.Theta, "zipfian exponent")
	fl.IntVar(&f.params.Keys, "keys", f.params.Keys, "records (and transfer accounts)")
	fl.IntVar(&f.params.ValueSize, "value-size", f.params.ValueSize, "bytes per YCSB value")
	fl.DurationVar(&f.params.Warmup, "warmup", f.params.Warmup, "unmeasured run before each cell")
	fl.DurationVar(&f.params.Duration, "duration", f.params.Duration, "measured time per cell (the bound when --ops is set too)")
	fl.Int64Var(&f.params.Ops, "ops", 0, "end a cell after this many operations or transfers (0: by --duration only)")
	fl.IntVar(&f.params.Pipeline, "pipeline", f.params.Pipeline, "YCSB operations per round trip")
	fl.Uint64Var(&f.params.Seed, "seed", f.params.Seed, "random seed")
	fl.StringVar(&f.out, "out", "bench-results", "directory for results.json, results.md and the charts")
	fl.StringVar(&f.docs, "docs", "", "also regenerate the marked section of this Markdown file")
	fl.StringVar(&f.fromJSON, "from-json", "", "do not run: rewrite the outputs from this results.json")
	cmd.AddCommand(mcgetCmd())
	return cmd
}

// benchPlan builds the plan from the suite and the flags set explicitly.
func benchPlan(cmd *cobra.Command, f benchFlags) (bench.Plan, error) {
	changed := cmd.Flags().Changed
	p := f.params
	var err error
	if p.Distribution, err = bench.ParseDistribution(f.distribution); err != nil {
		return bench.Plan{}, err
	}
	if f.suite != "" {
		sp := bench.StandardParams()
		for name, set := range map[string]func(){
			"theta": func() { sp.Theta = p.Theta }, "keys": func() { sp.Keys = p.Keys },
			"value-size": func() { sp.ValueSize = p.ValueSize }, "warmup": func() { sp.Warmup = p.Warmup },
			"duration": func() { sp.Duration = p.Duration }, "ops": func() { sp.Ops = p.Ops },
			"pipeline": func() { sp.Pipeline = p.Pipeline }, "seed": func() { sp.Seed = p.Seed },
			"distribution": func() { sp.Distribution = p.Distribution },
		} {
			if changed(name) {
				set()
			}
		}
		for _, name := range []string{"workloads", "targets", "clients"} {
			if changed(name) {
				return bench.Plan{}, fmt.Errorf("--%s cannot be combined with --suite", name)
			}
		}
		plan, err := bench.SuitePlan(f.suite, sp)
		if err != nil || !changed("durability") {
			return plan, err
		}
		durs, err := parseDurabilities(f.durability)
		if err != nil {
			return bench.Plan{}, err
		}
		plan.Cells = slices.DeleteFunc(plan.Cells, func(c bench.Cell) bool { return !slices.Contains(durs, c.Durability) })
		return plan, nil
	}
	if changed("ops") && !changed("duration") {
		p.Duration = bench.MaxDuration
	}
	workloads, err := bench.ParseWorkloads(f.workloads)
	if err != nil {
		return bench.Plan{}, err
	}
	targets := splitList(f.targets)
	for _, t := range targets {
		if !slices.Contains(bench.TargetNames, t) {
			return bench.Plan{}, fmt.Errorf("unknown target %q (have %s)", t, strings.Join(bench.TargetNames, ", "))
		}
	}
	var clients []int
	for _, s := range splitList(f.clients) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > bench.MaxClients {
			return bench.Plan{}, fmt.Errorf("--clients: %q is not a count from 1 to %d", s, bench.MaxClients)
		}
		clients = append(clients, n)
	}
	durs, err := parseDurabilities(f.durability)
	if err != nil {
		return bench.Plan{}, err
	}
	return bench.CrossPlan(p, workloads, targets, clients, durs), nil
}

// parseDurabilities parses --durability's list.
func parseDurabilities(list string) ([]bench.Durability, error) {
	var durs []bench.Durability
	for _, s := range splitList(list) {
		d, err := bench.ParseDurability(s)
		if err != nil {
			return nil, err
		}
		durs = append(durs, d)
	}
	return durs, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func runBench(cmd *cobra.Command, f benchFlags) error {
	var report *bench.Report
	if f.fromJSON != "" {
		r, err := bench.ReadReport(f.fromJSON)
		if err != nil {
			return err
		}
		report = r
	} else {
		plan, err := benchPlan(cmd, f)
		if err != nil {
			return err
		}
		if err := plan.Params.Validate(); err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			self = ""
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		report = &bench.Report{Command: strings.Join(os.Args, " "), Machine: bench.DescribeMachine(), Params: plan.Params}
		fmt.Fprintf(os.Stderr, "bench: %d cells; %s measured each after %s warm-up\n", len(plan.Cells), plan.Params.Duration, plan.Params.Warmup)
		runner := &bench.Runner{Env: bench.DefaultTargetEnv(self, plan.Params), Log: os.Stderr, Progress: bench.NewProgress(os.Stderr)}
		begin, cpu := time.Now(), bench.SampleCPU()
		report.Results, err = runner.Run(ctx, plan)
		report.Wall = time.Since(begin)
		report.OtherCPU = bench.OtherCPUShare(cpu, bench.SampleCPU(), report.Machine.NProc)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: done in %s; other processes used %.0f%% of the CPU meanwhile\n", report.Wall.Round(time.Second), 100*report.OtherCPU)
	}
	if err := writeBenchOutputs(report, f); err != nil {
		return err
	}
	printSkips(report)
	if failed := report.Failed(); len(failed) > 0 {
		return fmt.Errorf("%d cells failed (see above and %s)", len(failed), filepath.Join(f.out, "results.md"))
	}
	return nil
}

// chartFile matches the charts the harness writes, to remove stale ones.
var chartFile = regexp.MustCompile(`^(ycsb-[a-z]|transfer)-.*\.svg$`)

func writeBenchOutputs(r *bench.Report, f benchFlags) error {
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	if f.fromJSON == "" {
		if err := r.WriteJSON(filepath.Join(f.out, "results.json")); err != nil {
			return err
		}
	}
	charts, err := bench.WriteCharts(r.Results, f.out)
	if err != nil {
		return err
	}
	entries, _ := os.ReadDir(f.out)
	for _, e := range entries {
		if chartFile.MatchString(e.Name()) && !slices.Contains(charts, e.Name()) {
			os.Remove(filepath.Join(f.out, e.Name()))
		}
	}
	md := "# bpfdb bench results\n\n" + bench.SeriesTables(r.Results, ".") + "\n## Every cell\n\n" + bench.ResultsTable(r.Results)
	if err := os.WriteFile(filepath.Join(f.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote results.md and %d charts to %s\n", len(charts), f.out)
	if f.docs == "" {
		return nil
	}
	rel, err := filepath.Rel(filepath.Dir(f.docs), f.out)
	if err != nil {
		return err
	}
	if err := bench.UpdateDocs(f.docs, bench.DocsSection(r, filepath.ToSlash(rel))); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: regenerated the bench section of %s\n", f.docs)
	return nil
}

// printSkips says plainly which cells were skipped or failed, and why.
func printSkips(r *bench.Report) {
	seen := map[string]bool{}
	for _, res := range r.Results {
		var line string
		switch {
		case res.Skipped != "":
			line = fmt.Sprintf("bench: skipped %s (%s): %s", res.Target, res.Workload, res.Skipped)
		case res.Error != "":
			line = fmt.Sprintf("bench: FAILED %s %s %s clients=%d: %s", res.Workload, res.Durability, res.Target, res.Clients, res.Error)
		default:
			continue
		}
		if !seen[line] {
			seen[line] = true
			fmt.Fprintln(os.Stderr, line)
		}
	}
}

// mcgetCmd is `bpfdb bench mcget`: a memcached UDP GET load against any
// server (bpfdb serve --udp-port or --xdp, memcached -U), for measuring
// CPU per GET beside ../shared/tools/cpu-per-op.
func mcgetCmd() *cobra.Command {
	p := bench.DefaultMCGetParams()
	var load, loadOnly bool
	cmd := &cobra.Command{
		Use:   "mcget",
		Short: "Send memcached UDP gets of key:%012d records (as redis-benchmark -r names them) to --addr",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			if load || loadOnly {
				fmt.Fprintf(os.Stderr, "mcget: storing %d records of %d bytes on %s\n", p.Keys, p.ValueSize, p.Addr)
				if err := bench.MCLoad(ctx, p); err != nil {
					return err
				}
				if loadOnly {
					return nil
				}
			}
			res, err := bench.MCGet(ctx, p, func(done uint64) {
				fmt.Fprintf(os.Stderr, "mcget: %d of %d gets answered\n", done, p.Requests)
			})
			fmt.Printf("gets %d hits %d misses %d lost %d errors %d in %.2fs: %.0f gets/s\n", res.Requests, res.Hits,
				res.Misses, res.Lost, res.Errors, res.Elapsed.Seconds(), float64(res.Requests)/res.Elapsed.Seconds())
			if err == nil && (res.Lost > 0 || res.Errors > 0) {
				err = fmt.Errorf("mcget: %d gets lost, %d answered with neither a value nor END", res.Lost, res.Errors)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&p.Addr, "addr", "127.0.0.1:11211", "memcached UDP server")
	fl.IntVar(&p.Keys, "keys", p.Keys, "records")
	fl.IntVar(&p.ValueSize, "value-size", p.ValueSize, "bytes per value (--load)")
	fl.Int64VarP(&p.Requests, "requests", "n", p.Requests, "gets to send")
	fl.IntVar(&p.Sockets, "sockets", p.Sockets, "UDP sockets")
	fl.IntVar(&p.Window, "window", p.Window, "gets in flight per socket")
	fl.DurationVar(&p.Timeout, "timeout", p.Timeout, "a get unanswered after this is lost")
	fl.BoolVar(&load, "load", false, "store the records first (UDP sets)")
	fl.BoolVar(&loadOnly, "load-only", false, "store the records and stop")
	return cmd
}
