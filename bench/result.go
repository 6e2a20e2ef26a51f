package bench

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Result is the outcome of one cell.
type Result struct {
	// Workload is the workload's label ("ycsb-a", "transfer").
	Workload string `json:"workload"`
	// Target is the target's name.
	Target string `json:"target"`
	// Clients is the number of concurrent clients.
	Clients int `json:"clients"`
	// Durability is the durability the target ran with.
	Durability Durability `json:"durability"`
	// Pipeline is the YCSB pipeline depth (1 for transfer).
	Pipeline int `json:"pipeline"`

	// Skipped, if not empty, says why the cell did not run.
	Skipped string `json:"skipped,omitempty"`
	// Error, if not empty, says why the cell failed.
	Error string `json:"error,omitempty"`

	// Elapsed is the measured window.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Ops is the number of completed YCSB operations or committed
	// transfers in the window.
	Ops int64 `json:"ops"`
	// Throughput is Ops per second.
	Throughput float64 `json:"ops_per_sec"`
	// Latency summarizes the HDR histogram of the window.
	Latency Latency `json:"latency_us"`

	// Attempts counts YCSB operations sent, or transfer attempts.
	Attempts int64 `json:"attempts"`
	// Aborts counts operations or attempts a conflict aborted.
	Aborts int64 `json:"aborts"`
	// Retried counts transfers that committed after at least one retry.
	Retried int64 `json:"retried"`
	// GaveUp counts transfers abandoned after MaxAttempts.
	GaveUp int64 `json:"gave_up"`
	// AbortRate is Aborts / Attempts.
	AbortRate float64 `json:"abort_rate"`
	// RetryRate is Retried / Ops: the share of committed transfers that
	// needed a retry.
	RetryRate float64 `json:"retry_rate"`

	// ServerCPU is the CPU time the server's processes used during the
	// measured window, in µs per operation or committed transfer; 0 when
	// not measured (in-process targets, or /proc unreadable).
	ServerCPU float64 `json:"server_cpu_us_per_op,omitempty"`
	// ServerRetries counts the transactions the server ran again after a
	// conflict during the measured window, unseen by clients (bpfdb
	// serve's metrics); nil where the server does not count them.
	ServerRetries *int64 `json:"server_retries,omitempty"`

	// Conserved reports the transfer check: the balances sum to Expected.
	Conserved *bool `json:"conserved,omitempty"`
	// Total is the sum of the balances read after a transfer cell.
	Total int64 `json:"total,omitempty"`
	// Expected is the sum loaded.
	Expected int64 `json:"expected,omitempty"`
}

// Latency is a latency distribution in microseconds.
type Latency struct {
	// P50 to P9999 are the 50th, 90th, 99th, 99.9th and 99.99th percentiles.
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	P9999 float64 `json:"p99_99"`
	// Max is the slowest operation, Mean the average.
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Percentiles lists the percentiles Latency holds, for charts.
var Percentiles = []struct {
	Label string
	Of    func(Latency) float64
}{
	{"p50", func(l Latency) float64 { return l.P50 }},
	{"p90", func(l Latency) float64 { return l.P90 }},
	{"p99", func(l Latency) float64 { return l.P99 }},
	{"p99.9", func(l Latency) float64 { return l.P999 }},
	{"p99.99", func(l Latency) float64 { return l.P9999 }},
}

// Histogram bounds: 1 ns to 10 minutes, 3 significant digits.
const (
	histMin     = 1
	histMax     = int64(10 * time.Minute)
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

// record adds n operations of latency d to h, clamped to its range.
func record(h *hdrhistogram.Histogram, d time.Duration, n int64) {
	v := max(int64(d), histMin)
	v = min(v, histMax)
	h.RecordValues(v, n) // in range: cannot fail
}

// latencyOf summarizes a histogram of nanoseconds in microseconds.
func latencyOf(h *hdrhistogram.Histogram) Latency {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		P9999: us(h.ValueAtQuantile(99.99)),
		Max:   us(h.Max()),
		Mean:  h.Mean() / 1e3,
	}
}
