package server

import (
	"net/http"
	"sync/atomic"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/mcudp"
	"github.com/bpfdb/bpfdb/mcxdp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics. The engine's counters (the
// chain's per-CPU stats map, logd's and the checkpointer's) are read at
// every scrape by engineCollector, so INFO and /metrics read one source.
type metrics struct {
	reg        *prometheus.Registry
	commands   map[string]prometheus.Counter // by command name, made once
	connected  prometheus.Gauge
	execs      *prometheus.CounterVec
	txnRetries prometheus.Counter
	// loopTxns counts the transactions the event loop began
	// (conn.runInline): ran there, or left to a goroutine.
	loopTxnsRan, loopTxnsHandedOver prometheus.Counter
	handovers                       prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg:      prometheus.NewRegistry(),
		commands: map[string]prometheus.Counter{},
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bpfdb_connected_clients", Help: "Client connections open now.",
		}),
		execs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bpfdb_exec_total", Help: "EXEC calls by outcome (committed, watch_failed, error).",
		}, []string{"outcome"}),
		txnRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bpfdb_txn_retries_total", Help: "Transactions run again by the server after a conflict or another transient refusal.",
		}),
	}
	loopTxns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bpfdb_loop_txns_total",
		Help: "Transactions of data commands the event loop began, by outcome: ran (there), handed_over (to a goroutine, nothing applied: a key lock taken, a conflict, a checkpoint's gate, a script past the loop's budget).",
	}, []string{"outcome"})
	m.loopTxnsRan, m.loopTxnsHandedOver = loopTxns.WithLabelValues("ran"), loopTxns.WithLabelValues("handed_over")
	m.reg.MustRegister(loopTxns)
	m.handovers = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bpfdb_loop_handovers_total",
		Help: "Connections the event loop handed to a goroutine, for a command it does not run (MULTI/EXEC, admin commands, a transaction that would wait).",
	})
	m.reg.MustRegister(m.handovers)
	cmds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bpfdb_commands_total", Help: "Commands received, by name.",
	}, []string{"command"})
	for name := range commands {
		m.commands[name] = cmds.WithLabelValues(name)
	}
	m.commands["unknown"] = cmds.WithLabelValues("unknown")
	m.reg.MustRegister(cmds, m.connected, m.execs, m.txnRetries,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bpfdb_connections_total", Help: "Client connections accepted.",
		}, func() float64 { return float64(s.totalConns.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bpfdb_rejected_connections_total", Help: "Connections refused because --maxclients were open.",
		}, func() float64 { return float64(s.rejectedConns.Load()) }),
		&engineCollector{e: s.e},
		prometheus.NewGoCollector(),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
	)
	for _, f := range memcacheFields(s.cfg.Memcache) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bpfdb_memcache_udp_" + f.name + "_total", Help: "memcached UDP front end, answered in user space: " + f.help + ".",
		}, func() float64 { return float64(f.v.Load()) }))
	}
	if s.cfg.MemcacheXDP != nil {
		m.reg.MustRegister(xdpCollector{s.cfg.MemcacheXDP})
	}
	return m
}

// xdpCollector reports the XDP memcached program's counters, read from
// its map at every scrape.
type xdpCollector struct{ fe *mcxdp.Frontend }

// Describe sends nothing: an unchecked collector, whose counters are named
// by the program (mcxdp.Counter) when collected.
func (xdpCollector) Describe(chan<- *prometheus.Desc) {}

func (c xdpCollector) Collect(ch chan<- prometheus.Metric) {
	cs, err := c.fe.Counters()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("bpfdb_memcache_xdp_error", "Reading the XDP program's counters.", nil, nil), err)
		return
	}
	for _, x := range cs {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("bpfdb_memcache_xdp_"+x.Name+"_total",
			"memcached UDP front end, in XDP: "+x.Help+".", nil, nil), prometheus.CounterValue, float64(x.Value))
	}
}

// memcacheField is one counter of the memcached UDP front end.
type memcacheField struct {
	name, help string
	v          *atomic.Uint64
}

// memcacheFields lists the front end's counters (none when it is off),
// for INFO and /metrics alike.
func memcacheFields(st *mcudp.Stats) []memcacheField {
	if st == nil {
		return nil
	}
	return []memcacheField{
		{"requests", "requests", &st.Requests},
		{"gets", "get and gets requests", &st.Gets},
		{"hits", "keys found by gets", &st.Hits},
		{"misses", "keys not found by gets", &st.Misses},
		{"writes", "set, add, replace, delete, incr and decr requests", &st.Writes},
		{"errors", "requests answered with an error, or dropped as malformed", &st.Errors},
		{"datagrams", "reply datagrams sent", &st.Datagrams},
	}
}

func (m *metrics) countCommand(name string) { m.commands[name].Inc() }

// MetricsHandler serves the Prometheus metrics.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

// engineCollector exports engine.Stats.
type engineCollector struct{ e *engine.Engine }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descRuns        = desc("bpfdb_chain_runs_total", "Chain runs (BPF_PROG_RUN of the entry program).")
	descOps         = desc("bpfdb_ops_total", "Operations executed by the chain, by kind.", "op")
	descCommits     = desc("bpfdb_commits_total", "Transactions committed (autocommit ops included).")
	descAborts      = desc("bpfdb_aborts_total", "Transactions aborted, by reason.", "reason")
	descQuiesced    = desc("bpfdb_quiesced_total", "Writers refused while a checkpoint's gate was closed.")
	descGC          = desc("bpfdb_gc_reclaimed_versions_total", "Versions reclaimed by cooperative GC and vacuum.")
	descExpired     = desc("bpfdb_expired_keys_total", "Expired keys deleted (each a logged deletion).")
	descExpiring    = desc("bpfdb_expiring_keys", "Keys with a deadline the expirer waits for.")
	descLongKeys    = desc("bpfdb_long_keys", "Keys over 64 bytes, held in the kernel by digest and whole in the process's memory.")
	descLogRecords  = desc("bpfdb_log_records_total", "Log records read from the kernel's ring.")
	descLogTxns     = desc("bpfdb_log_txns_total", "Transactions written to the log.")
	descLogBytes    = desc("bpfdb_log_bytes_total", "Bytes written to the log.")
	descLogBatches  = desc("bpfdb_log_batches_total", "Group-commit batches written to the log.")
	descLogSyncs    = desc("bpfdb_log_fsyncs_total", "fsyncs of the log.")
	descLogErrors   = desc("bpfdb_log_write_errors_total", "Failed log writes (a full disk).")
	descLogBad      = desc("bpfdb_log_bad_records_total", "Ring records the log could not use (never expected: a dropped commit stops the durable LSN).")
	descCommitLSN   = desc("bpfdb_commit_lsn", "Last commit's LSN.")
	descDurableLSN  = desc("bpfdb_durable_lsn", "Last LSN on disk.")
	descLag         = desc("bpfdb_durable_lsn_lag", "Commits applied but not yet on disk.")
	descRefusing    = desc("bpfdb_log_writes_refused", "1 while writes are refused because the log cannot take them (a full or failing disk, a stalled write).")
	descLogReopens  = desc("bpfdb_log_reopens_total", "Times a failed write made the log reopen its store.")
	descCheckpoints = desc("bpfdb_checkpoints_total", "Checkpoints taken.")
	descCkptSecs    = desc("bpfdb_checkpoint_seconds_total", "Time spent taking checkpoints.")
	descGateSecs    = desc("bpfdb_checkpoint_gate_closed_seconds_total", "Time writers were refused by checkpoints' gate.")
	descLastCkpt    = desc("bpfdb_last_checkpoint_timestamp_seconds", "When the last checkpoint finished (0: none).")
	descRunLatency  = desc("bpfdb_chain_run_seconds", "Duration of chain runs as the kernel measures them.")
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.e.Stats()
	if err != nil {
		return // closed
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descRuns, st.Runs)
	counter(descOps, st.Gets, "get")
	counter(descOps, st.Sets, "set")
	counter(descOps, st.Deletes, "del")
	counter(descCommits, st.Commits)
	for reason, v := range abortReasons(st) {
		counter(descAborts, v, reason)
	}
	counter(descQuiesced, st.Quiesced)
	counter(descGC, st.GCReclaimed)
	counter(descExpired, st.ExpiredDeleted)
	counter(descLogRecords, st.LogRecords)
	counter(descLogTxns, st.LogTxns)
	counter(descLogBytes, st.LogBytes)
	counter(descLogBatches, st.LogBatches)
	counter(descLogSyncs, st.LogSyncs)
	counter(descLogErrors, st.LogWriteErrors)
	counter(descLogBad, st.LogBadRecords)
	gauge(descCommitLSN, float64(st.CommitLSN))
	gauge(descExpiring, float64(st.ExpiryPending))
	gauge(descLongKeys, float64(st.LongKeys))
	gauge(descDurableLSN, float64(st.DurableLSN))
	gauge(descLag, float64(durableLag(c.e, st)))
	gauge(descRefusing, map[bool]float64{true: 1}[st.LogFault != nil])
	counter(descLogReopens, st.LogReopens)
	counter(descCheckpoints, st.Checkpoints)
	ch <- prometheus.MustNewConstMetric(descCkptSecs, prometheus.CounterValue, st.CheckpointDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(descGateSecs, prometheus.CounterValue, st.GateClosed.Seconds())
	last := 0.0
	if !st.LastCheckpoint.IsZero() {
		last = float64(st.LastCheckpoint.Unix())
	}
	gauge(descLastCkpt, last)
	buckets := map[float64]uint64{}
	var cum uint64
	for i, b := range engine.RunLatencyBounds {
		cum += st.RunLatency[i]
		buckets[b.Seconds()] = cum
	}
	cum += st.RunLatency[len(st.RunLatency)-1]
	ch <- prometheus.MustNewConstHistogram(descRunLatency, cum, st.RunLatencySum.Seconds(), buckets)
}

// abortReasons are Stats' aborts by reason, as labels.
func abortReasons(st engine.Stats) map[string]uint64 {
	return map[string]uint64{
		"conflict":       st.AbortsConflict,
		"versions_full":  st.AbortsVersionsFull,
		"store_full":     st.AbortsStoreFull,
		"write_set_full": st.AbortsWriteSetFull,
		"user":           st.AbortsUser,
		"log_full":       st.AbortsLogFull,
		"log_refused":    st.AbortsLogRefused,
		"other":          st.AbortsOther,
	}
}

// durableLag is how many commits are applied but not on disk (none
// without a data directory: nothing is ever on disk).
func durableLag(e *engine.Engine, st engine.Stats) uint64 {
	if e.Options().Dir == "" || st.CommitLSN < st.DurableLSN {
		return 0
	}
	return st.CommitLSN - st.DurableLSN
}
