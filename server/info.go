package server

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"golang.org/x/sys/unix"
)

// infoSections are INFO's sections, in order. Each reads the same sources
// as /metrics (engine.Stats and the server's counters).
// infoSections is INFO's sections in order; INFO with no argument (or
// "default") leaves out those in notDefault, as Redis does.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "commandstats", "errorstats", "keyspace"}

var notDefault = map[string]bool{"commandstats": true}

func cmdInfo(c *conn, a [][]byte) {
	want := map[string]bool{}
	for _, s := range a[1:] {
		want[strings.ToLower(string(s))] = true
	}
	every := want["all"] || want["everything"]
	if len(want) == 0 || want["default"] {
		for _, s := range infoSections {
			want[s] = !notDefault[s]
		}
	}
	st, err := c.s.e.Stats()
	if err != nil {
		c.wr.Error(errorText(err))
		return
	}
	var b strings.Builder
	for _, section := range infoSections {
		if !every && !want[section] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "# %s\r\n", sectionTitle(section))
		for _, kv := range c.s.infoSection(section, st) {
			fmt.Fprintf(&b, "%s:%v\r\n", kv.k, kv.v)
		}
	}
	c.wr.BulkString(b.String())
}

type infoLine struct {
	k string
	v any
}

func (s *Server) infoSection(section string, st engine.Stats) []infoLine {
	opts := s.e.Options()
	switch section {
	case "server":
		return []infoLine{
			{"redis_version", "7.0.0"}, // what clients compare; bpfdb speaks RESP2 as Redis 7 does
			{"bpfdb_version", s.cfg.Version},
			{"bpfdb_build", s.e.Build()},
			{"redis_mode", "standalone"},
			{"os", runtime.GOOS + "/" + runtime.GOARCH},
			{"process_id", os.Getpid()},
			{"tcp_port", portOf(s.tcpAddr)},
			{"uptime_in_seconds", int64(time.Since(s.started).Seconds())},
			{"max_key_bytes", s.e.MaxKeyLen()},
			{"max_value_bytes", s.e.MaxValueLen()},
			{"max_keys", opts.MaxKeys},
		}
	case "memory":
		// The store's memory is kernel memory (its maps, as the kernel
		// accounts them); the process's own is Go's heap and buffers.
		// used_memory and maxmemory are the data's budget (engine
		// MemoryUse: the preallocated index and the value slots in use,
		// of --maxmemory); writes past it get OOM, as in Redis.
		m, _ := s.e.Memory()
		u, _ := s.e.MemoryUse()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return []infoLine{
			{"used_memory", u.Used},
			{"used_memory_human", humanBytes(u.Used)},
			{"used_memory_kernel", m.TotalBytes},
			{"used_memory_kernel_human", humanBytes(m.TotalBytes)},
			{"used_memory_process", ms.HeapInuse},
			{"used_memory_peak", u.Used},
			{"maxmemory", u.Budget},
			{"maxmemory_human", humanBytes(u.Budget)},
			{"maxmemory_policy", "noeviction"},
			{"value_pages", u.Pages},
			{"value_pages_used", u.PagesUsed},
			{"long_keys", st.LongKeys}, // keys over 64 bytes, held whole in the process's memory
			{"mem_fragmentation_ratio", "1.00"},
		}
	case "replication":
		return []infoLine{
			{"role", "master"},
			{"connected_slaves", 0},
			{"master_failover_state", "no-failover"},
			{"master_repl_offset", st.CommitLSN},
			{"repl_backlog_active", 0},
		}
	case "cpu":
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		secs := func(tv unix.Timeval) string { return fmt.Sprintf("%d.%06d", tv.Sec, tv.Usec) }
		return []infoLine{
			{"used_cpu_sys", secs(ru.Stime)},
			{"used_cpu_user", secs(ru.Utime)},
		}
	case "clients":
		return []infoLine{
			{"connected_clients", s.clientCount()},
			{"maxclients", s.maxClients.Load()},
		}
	case "commandstats":
		return s.commandStatLines()
	case "errorstats":
		return s.errors.lines()
	case "stats":
		fields := []infoLine{
			{"total_connections_received", s.totalConns.Load()},
			{"total_commands_processed", s.commands.Load()},
			{"rejected_connections", s.rejectedConns.Load()},
			{"chain_runs", st.Runs},
			{"commits", st.Commits},
			{"gc_reclaimed_versions", st.GCReclaimed},
			{"expired_keys", st.ExpiredDeleted},
			{"quiesced_writers", st.Quiesced},
			{"keyspace_hits", s.keyHits.Load()},
			{"keyspace_misses", s.keyMisses.Load()},
			{"total_error_replies", s.errors.count()},
		}
		reasons := abortReasons(st)
		names := make([]string, 0, len(reasons))
		for r := range reasons {
			names = append(names, r)
		}
		sort.Strings(names)
		for _, r := range names {
			fields = append(fields, infoLine{"aborts_" + r, reasons[r]})
		}
		for _, f := range memcacheFields(s.cfg.Memcache) {
			fields = append(fields, infoLine{"memcache_udp_" + f.name, f.v.Load()})
		}
		if s.cfg.MemcacheXDP != nil {
			cs, err := s.cfg.MemcacheXDP.Counters()
			if err != nil {
				fields = append(fields, infoLine{"memcache_xdp_error", err.Error()})
			}
			for _, c := range cs {
				fields = append(fields, infoLine{"memcache_xdp_" + c.Name, c.Value})
			}
		}
		return fields
	case "persistence":
		durability := "sync"
		if opts.Durability == engine.Async {
			durability = "async"
		}
		last := s.started.Unix()
		if !st.LastCheckpoint.IsZero() {
			last = st.LastCheckpoint.Unix()
		}
		inProgress := 0
		if s.saving.Load() {
			inProgress = 1
		}
		return []infoLine{
			{"loading", 0},
			{"dir", opts.Dir},
			{"durability", durability},
			{"aof_enabled", map[bool]int{true: 1, false: 0}[opts.Dir != ""]},
			{"rdb_bgsave_in_progress", inProgress},
			{"rdb_last_save_time", last},
			{"checkpoints", st.Checkpoints},
			{"checkpoint_seconds_total", st.CheckpointDuration.Seconds()},
			{"checkpoint_gate_closed_seconds_total", st.GateClosed.Seconds()},
			{"commit_lsn", st.CommitLSN},
			{"durable_lsn", st.DurableLSN},
			{"durable_lsn_lag", durableLag(s.e, st)},
			{"log_records", st.LogRecords},
			{"log_bytes", st.LogBytes},
			{"log_fsyncs", st.LogSyncs},
			{"log_write_errors", st.LogWriteErrors},
			{"log_reopens", st.LogReopens},
			{"aof_last_write_status", writeStatus(st.LogFault)},
			{"log_writes_refused", map[bool]int{true: 1, false: 0}[st.LogFault != nil]},
			{"log_fault", faultText(st.LogFault)},
			{"min_free_bytes", st.MinFreeBytes},
			{"log_bad_records", st.LogBadRecords},
		}
	case "keyspace":
		n, expiring, err := s.keyCounts(&st)
		if err != nil {
			return nil
		}
		var lines []infoLine
		for db, keys := range n {
			if keys > 0 {
				lines = append(lines, infoLine{"db" + strconv.Itoa(db), fmt.Sprintf("keys=%d,expires=%d,avg_ttl=0", keys, expiring[db])})
			}
		}
		return lines
	}
	return nil
}

// writeStatus is Redis's aof_last_write_status: ok, or err while the log
// cannot take writes.
func writeStatus(fault error) string {
	if fault != nil {
		return "err"
	}
	return "ok"
}

// faultText is why writes are refused, on one line, or "none".
func faultText(fault error) string {
	if fault == nil {
		return "none"
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(fault.Error())
}

// humanBytes is Redis's used_memory_human: 1.50M, 12.00K, 800B.
func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// sectionTitle is a section's header as Redis writes it: "Server", "CPU".
func sectionTitle(section string) string {
	if section == "cpu" {
		return "CPU"
	}
	return strings.ToUpper(section[:1]) + section[1:]
}
