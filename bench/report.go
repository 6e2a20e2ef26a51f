package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Report is everything a run produced: what ran, where, and the results.
type Report struct {
	// Command is the command line that made the report.
	Command string `json:"command"`
	// Machine is where it ran.
	Machine Machine `json:"machine"`
	// Params are the plan's settings.
	Params Params `json:"params"`
	// Wall is the run's wall time, targets' start-up and loading included.
	Wall time.Duration `json:"wall_ns"`
	// OtherCPU is the share of the machine's CPU that other processes
	// (not the harness, not its servers) used during the run; -1 unknown.
	OtherCPU float64 `json:"other_cpu_share"`
	// Results holds one entry per cell, skipped and failed ones included.
	Results []Result `json:"results"`
}

// WriteJSON writes the report, indented, to path.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Failed returns the results that failed (not the skipped ones).
func (r *Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Error != "" {
			out = append(out, res)
		}
	}
	return out
}

// series is the results of one workload at one durability (and pipeline
// depth): a comparison table and its charts.
type series struct {
	workload   Workload
	durability Durability
	pipeline   int
	results    []Result
}

// key names the series in file names: "ycsb-a-sync", "ycsb-a-sync-p16".
func (s series) key() string {
	k := s.workload.Label() + "-" + string(s.durability)
	if s.pipeline > 1 {
		k += fmt.Sprintf("-p%d", s.pipeline)
	}
	return k
}

// title is the series' heading.
func (s series) title() string {
	t := fmt.Sprintf("%s, %s durability", s.workload.Title, s.durability)
	if s.pipeline > 1 {
		t += fmt.Sprintf(", pipeline %d", s.pipeline)
	}
	return t
}

// shortTitle is the series' chart title: "YCSB A, sync".
func (s series) shortTitle() string {
	t := "Transfer"
	if s.workload.Proc {
		t = "Transfer procedure"
	}
	if !s.workload.Transfer {
		t = "YCSB " + strings.ToUpper(s.workload.Name)
	}
	t += ", " + string(s.durability)
	if s.pipeline > 1 {
		t += fmt.Sprintf(", pipeline %d", s.pipeline)
	}
	return t
}

// clients lists the client counts of the series, ascending.
func (s series) clients() []int {
	var cs []int
	for _, r := range s.results {
		if !slices.Contains(cs, r.Clients) {
			cs = append(cs, r.Clients)
		}
	}
	slices.Sort(cs)
	return cs
}

// targets lists the series' targets in TargetNames order, others after.
func (s series) targets() []string {
	var ts []string
	for _, name := range TargetNames {
		for _, r := range s.results {
			if r.Target == name {
				ts = append(ts, name)
				break
			}
		}
	}
	for _, r := range s.results {
		if !slices.Contains(ts, r.Target) {
			ts = append(ts, r.Target)
		}
	}
	return ts
}

// get returns the result of target at clients.
func (s series) get(target string, clients int) (Result, bool) {
	for _, r := range s.results {
		if r.Target == target && r.Clients == clients {
			return r, true
		}
	}
	return Result{}, false
}

// measured reports whether a result has numbers to show.
func measured(r Result) bool { return r.Skipped == "" && r.Error == "" && r.Ops > 0 }

// bestAlternative returns the fastest non-bpfdb target at clients.
func (s series) bestAlternative(clients int) (Result, bool) {
	var best Result
	found := false
	for _, r := range s.results {
		if r.Clients == clients && !IsBpfdb(r.Target) && measured(r) && (!found || r.Throughput > best.Throughput) {
			best, found = r, true
		}
	}
	return best, found
}

// groupSeries splits results into series, in Workloads order, sync first.
func groupSeries(results []Result) []series {
	var out []series
	for _, w := range Workloads {
		for _, d := range []Durability{Sync, Async} {
			var pipes []int
			for _, r := range results {
				if r.Workload == w.Label() && r.Durability == d && !slices.Contains(pipes, r.Pipeline) {
					pipes = append(pipes, r.Pipeline)
				}
			}
			slices.Sort(pipes)
			for _, p := range pipes {
				s := series{workload: w, durability: d, pipeline: p}
				for _, r := range results {
					if r.Workload == w.Label() && r.Durability == d && r.Pipeline == p {
						s.results = append(s.results, r)
					}
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// DisplayName is a target's name in tables and legends.
func DisplayName(target string) string {
	switch target {
	case "embedded":
		return "bpfdb embedded"
	case "serve":
		return "bpfdb serve"
	case "postgres":
		return "PostgreSQL"
	}
	return target
}
