package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplaceSection(t *testing.T) {
	const hand = "# Benchmarks\n\nhand-written\n"
	for _, tc := range []struct {
		name, doc, want string
		err             bool
	}{
		{"appends markers", hand, hand + "\n" + BeginMarker + "\nNEW\n" + EndMarker + "\n", false},
		{"replaces between markers", "a\n" + BeginMarker + "\nOLD\n" + EndMarker + "\nz\n", "a\n" + BeginMarker + "\nNEW\n" + EndMarker + "\nz\n", false},
		{"end before begin", EndMarker + BeginMarker, "", true},
		{"only begin", "x " + BeginMarker, "", true},
		{"two sections", BeginMarker + EndMarker + BeginMarker + EndMarker, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReplaceSection([]byte(tc.doc), "NEW\n")
			if (err != nil) != tc.err {
				t.Fatalf("error %v", err)
			}
			if !tc.err && string(got) != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// sampleResults are a small comparison: bpfdb against two alternatives.
func sampleResults() []Result {
	mk := func(w, target string, clients int, ops float64) Result {
		return Result{Workload: w, Target: target, Clients: clients, Durability: Sync, Pipeline: 1,
			Ops: int64(ops), Throughput: ops, Elapsed: time.Second,
			Latency: Latency{P50: 10, P90: 20, P99: 40, P999: 80, P9999: 160, Max: 200}}
	}
	yes := true
	tr := mk("transfer", "embedded", 8, 5000)
	tr.Conserved, tr.Total, tr.Expected, tr.AbortRate = &yes, 1000, 1000, 0.02
	return []Result{
		mk("ycsb-a", "embedded", 1, 3000), mk("ycsb-a", "embedded", 8, 16000),
		mk("ycsb-a", "redis", 1, 2000), mk("ycsb-a", "redis", 8, 20000),
		mk("ycsb-a", "pebble", 1, 1000), mk("ycsb-a", "pebble", 8, 8000),
		{Workload: "ycsb-a", Target: "serve", Clients: 1, Durability: Sync, Pipeline: 1, Skipped: "not root"},
		tr,
	}
}

// The comparison table gives each bpfdb cell its ratio to the best
// alternative of its column, and marks skipped cells with their reason.
func TestSeriesTablesRatios(t *testing.T) {
	md := SeriesTables(sampleResults(), "bench")
	for _, want := range []string{
		"| bpfdb embedded | 3,000 (**1.50×** redis) | 16,000 (**0.80×** redis) |",
		"| bpfdb serve | skipped¹ | |",
		"1. bpfdb serve skipped: not root",
		"| redis | 2,000 | 20,000 |",
		"conserved in every one",
		"![YCSB A (50% read, 50% update), sync durability: throughput](bench/ycsb-a-sync-throughput.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("tables lack %q:\n%s", want, md)
		}
	}
}

func TestWriteChartsAndDocs(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteCharts(sampleResults(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 { // ycsb-a: throughput + 2 latency; transfer: throughput + 1 latency
		t.Errorf("charts %v", files)
	}
	// One client count, and one latency at every percentile: each log
	// axis has one value, 1 (plot would widen it to 0..2 and panic).
	one := Result{Workload: "ycsb-c", Target: "serve", Clients: 1, Durability: Sync, Pipeline: 1, Ops: 1, Throughput: 1,
		Elapsed: time.Second, Latency: Latency{P50: 1, P90: 1, P99: 1, P999: 1, P9999: 1, Max: 1}}
	if files, err := WriteCharts([]Result{one}, dir); err != nil || len(files) != 2 {
		t.Errorf("charts of one client: %v, %v", files, err)
	}
	// A series with nothing measured has no chart (and does not panic).
	if files, err := WriteCharts([]Result{{Workload: "ycsb-c", Target: "redis", Clients: 1, Durability: Sync, Pipeline: 1, Error: "interrupted"}}, dir); err != nil || len(files) != 0 {
		t.Errorf("charts of an unmeasured series: %v, %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(data), "<svg") || !strings.Contains(string(data), "bpfdb embedded") {
			t.Errorf("%s is not an SVG with a legend (%v)", f, err)
		}
	}
	doc := filepath.Join(dir, "BENCHMARKS.md")
	os.WriteFile(doc, []byte("# hand\n"), 0o644)
	r := &Report{Command: "bpfdb bench --suite standard", Machine: Machine{NProc: 2, Kernel: "6.18", CPU: "AMD EPYC", Commit: "abc1234"},
		Params: DefaultParams(), Results: sampleResults(), Wall: time.Minute}
	if err := UpdateDocs(doc, DocsSection(r, "bench")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(doc)
	for _, want := range []string{"# hand\n\n" + BeginMarker, "`bpfdb bench --suite standard`", "`nproc` 2", "commit `abc1234`", EndMarker + "\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("docs lack %q", want)
		}
	}
}

func TestHumanLogTicks(t *testing.T) {
	for _, tc := range []struct {
		min, max float64
		want     []string
	}{
		{900, 60_000, []string{"1k", "2k", "5k", "10k", "20k", "50k"}},
		{2, 600_000, []string{"10", "100", "1k", "10k", "100k"}},
	} {
		var got []string
		for _, tk := range (humanLogTicks{}).Ticks(tc.min, tc.max) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ticks of [%v, %v]: %v, want %v", tc.min, tc.max, got, tc.want)
		}
	}
}
