package server

// Command statistics as Redis reports them: INFO commandstats and
// errorstats, SLOWLOG and LATENCY, and CONFIG RESETSTAT, which zeroes
// them (the Prometheus counters stay cumulative, as Prometheus wants).
//
// A command run on its own (every command but the loop's GET, SET, DEL,
// EXISTS, STRLEN and INCR family) is timed from start to reply. Those the
// loop gathers run many to a chain run: each is charged an equal share of
// its run's time, and they are not timed one by one, so SLOWLOG and the
// "command" latency event never show them; a slow run shows as the
// "fast-command" latency event.

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	defaultSlowlogSlower = 10000 // µs: slowlog-log-slower-than
	defaultSlowlogMaxLen = 128   // slowlog-max-len
	slowlogMaxArgs       = 32    // arguments an entry keeps (Redis's SLOWLOG_ENTRY_MAX_ARGC)
	slowlogMaxArgLen     = 128   // bytes an argument keeps (SLOWLOG_ENTRY_MAX_STRING)
	latencySamples       = 160   // samples an event keeps (LATENCY_TS_LEN)
)

func statsCommands() []*command {
	return []*command{
		{name: "slowlog", arity: -2, run: cmdSlowlog, flags: []string{"admin", "random", "loading", "stale"}},
		{name: "latency", arity: -2, run: cmdLatency, flags: []string{"admin", "noscript", "loading", "stale"}},
	}
}

// cmdStat is one command's line of INFO commandstats. calls counts
// every call, rejected ones too (refused before running: NOAUTH, arity,
// a limit): INFO, as Redis, reports calls as those that ran.
type cmdStat struct {
	calls, usec, rejected, failed atomic.Uint64
}

// statsOf is the server's statistics of cmd.
func (s *Server) statsOf(cmd *command) *cmdStat { return &s.cmdStats[cmd.id] }

// count counts a call of cmd (unknown commands are nil), in INFO and in
// the Prometheus counters.
func (s *Server) count(cmd *command) {
	s.commands.Add(1)
	if cmd == nil {
		s.metrics.countCommand("unknown")
		return
	}
	s.metrics.countCommand(cmd.name)
	s.statsOf(cmd).calls.Add(1)
}

// errorStats counts error replies by their code (ERR, WRONGTYPE...).
type errorStats struct {
	mu     sync.Mutex
	byCode map[string]uint64
	total  uint64
}

func (e *errorStats) add(msg string) {
	code, _, _ := strings.Cut(msg, " ")
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byCode == nil {
		e.byCode = map[string]uint64{}
	}
	e.byCode[code]++
	e.total++
}

func (e *errorStats) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byCode, e.total = nil, 0
}

// count is the total of error replies.
func (e *errorStats) count() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// lines is INFO errorstats.
func (e *errorStats) lines() []infoLine {
	e.mu.Lock()
	defer e.mu.Unlock()
	var lines []infoLine
	for code, n := range e.byCode {
		lines = append(lines, infoLine{"errorstat_" + code, "count=" + strconv.FormatUint(n, 10)})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].k < lines[j].k })
	return lines
}

// commandStatLines is INFO commandstats: the commands called since start
// or CONFIG RESETSTAT.
func (s *Server) commandStatLines() []infoLine {
	var lines []infoLine
	for name, cmd := range commands {
		st := s.statsOf(cmd)
		rejected := st.rejected.Load()
		calls := st.calls.Load()
		if calls == 0 {
			continue
		}
		calls -= min(rejected, calls)
		usec := st.usec.Load()
		perCall := 0.0
		if calls > 0 {
			perCall = float64(usec) / float64(calls)
		}
		lines = append(lines, infoLine{"cmdstat_" + name, "calls=" + strconv.FormatUint(calls, 10) +
			",usec=" + strconv.FormatUint(usec, 10) + ",usec_per_call=" + strconv.FormatFloat(perCall, 'f', 2, 64) +
			",rejected_calls=" + strconv.FormatUint(rejected, 10) + ",failed_calls=" + strconv.FormatUint(st.failed.Load(), 10)})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].k < lines[j].k })
	return lines
}

// resetStats is CONFIG RESETSTAT.
func (s *Server) resetStats() {
	for i := range s.cmdStats {
		st := &s.cmdStats[i]
		st.calls.Store(0)
		st.usec.Store(0)
		st.rejected.Store(0)
		st.failed.Store(0)
	}
	s.errors.reset()
	s.commands.Store(0)
	s.keyHits.Store(0)
	s.keyMisses.Store(0)
}

// ran records a command that ran on its own for d, and failed (answered
// an error) or not: its statistics, the slow log, the latency monitor.
func (c *conn) ran(cmd *command, args [][]byte, d time.Duration, failed bool) {
	st := c.s.statsOf(cmd)
	st.usec.Add(uint64(d.Microseconds()))
	if failed {
		st.failed.Add(1)
	}
	if slower := c.s.slowlogSlower.Load(); slower >= 0 && d.Microseconds() >= slower {
		c.s.slowlog.add(args, d, c.addr, c.name.Load().(string), int(c.s.slowlogMaxLen.Load()))
	}
	c.s.latency.observe("command", d, c.s.latencyThreshold.Load())
}

// ranFast records the chain run of ops, d long, that the fast commands
// cmds gathered: each is charged an equal share.
func (s *Server) ranFast(cmds []*command, d time.Duration) {
	if len(cmds) == 0 {
		return
	}
	share := uint64(d.Microseconds()) / uint64(len(cmds))
	for _, cmd := range cmds {
		s.statsOf(cmd).usec.Add(share)
	}
	s.latency.observe("fast-command", d, s.latencyThreshold.Load())
}

// slowEntry is one command of the slow log.
type slowEntry struct {
	id         uint64
	at         time.Time
	dur        time.Duration
	args       [][]byte
	addr, name string
}

// slowLog keeps the slowest recent commands, newest first.
type slowLog struct {
	mu      sync.Mutex
	nextID  uint64
	entries []slowEntry
}

func (l *slowLog) add(args [][]byte, d time.Duration, addr, name string, maxLen int) {
	kept := make([][]byte, 0, min(len(args), slowlogMaxArgs))
	for i, a := range args {
		if i == slowlogMaxArgs-1 && len(args) > slowlogMaxArgs {
			kept = append(kept, []byte("... ("+strconv.Itoa(len(args)-i)+" more arguments)"))
			break
		}
		if len(a) > slowlogMaxArgLen {
			a = append(a[:slowlogMaxArgLen:slowlogMaxArgLen], "... ("+strconv.Itoa(len(a)-slowlogMaxArgLen)+" more bytes)"...)
		} else {
			a = append([]byte(nil), a...)
		}
		kept = append(kept, a)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := slowEntry{id: l.nextID, at: time.Now(), dur: d, args: kept, addr: addr, name: name}
	l.nextID++
	l.entries = append([]slowEntry{e}, l.entries...)
	if len(l.entries) > maxLen {
		l.entries = l.entries[:max(maxLen, 0)]
	}
}

// get returns up to n entries, newest first (n < 0: all).
func (l *slowLog) get(n int) []slowEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n > len(l.entries) {
		n = len(l.entries)
	}
	return append([]slowEntry(nil), l.entries[:n]...)
}

func (l *slowLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *slowLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}

func cmdSlowlog(c *conn, a [][]byte) {
	switch strings.ToUpper(string(a[1])) {
	case "GET":
		n := 10
		if len(a) > 2 {
			v, err := strconv.Atoi(string(a[2]))
			if err != nil || v < -1 {
				c.wr.Error("ERR count should be greater than or equal to -1")
				return
			}
			n = v
		}
		entries := c.s.slowlog.get(n)
		c.wr.Array(len(entries))
		for _, e := range entries {
			c.wr.Array(6)
			c.wr.Int(int64(e.id))
			c.wr.Int(e.at.Unix())
			c.wr.Int(e.dur.Microseconds())
			c.wr.Array(len(e.args))
			for _, arg := range e.args {
				c.wr.Bulk(arg)
			}
			c.wr.BulkString(e.addr)
			c.wr.BulkString(e.name)
		}
	case "LEN":
		c.wr.Int(int64(c.s.slowlog.len()))
	case "RESET":
		c.s.slowlog.reset()
		c.wr.Simple("OK")
	case "HELP":
		writeHelp(c, "SLOWLOG", []string{
			"GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"    Entries are made of:", "    id, timestamp, time in microseconds, arguments array, client IP and port,",
			"    client name", "LEN", "    Return the length of the slowlog.",
			"RESET", "    Reset the slowlog.",
		})
	default:
		c.wr.Error("ERR unknown subcommand '" + printable(a[1]) + "'. Try SLOWLOG HELP.")
	}
}

// latencyMonitor keeps, by event, the latencies at or above
// latency-monitor-threshold (milliseconds; 0 turns it off), as Redis's
// latency monitor does.
type latencyMonitor struct {
	mu     sync.Mutex
	events map[string]*latencyEvent
}

type latencySample struct {
	at time.Time
	ms int64
}

type latencyEvent struct {
	samples []latencySample // oldest first, at most latencySamples
	max     int64
}

func (m *latencyMonitor) observe(event string, d time.Duration, thresholdMs int64) {
	ms := d.Milliseconds()
	if thresholdMs <= 0 || ms < thresholdMs {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events == nil {
		m.events = map[string]*latencyEvent{}
	}
	ev := m.events[event]
	if ev == nil {
		ev = &latencyEvent{}
		m.events[event] = ev
	}
	now := time.Now()
	if n := len(ev.samples); n > 0 && ev.samples[n-1].at.Unix() == now.Unix() {
		ev.samples[n-1].ms = max(ev.samples[n-1].ms, ms) // one sample a second, as Redis keeps
	} else {
		ev.samples = append(ev.samples, latencySample{at: now, ms: ms})
		if len(ev.samples) > latencySamples {
			ev.samples = ev.samples[1:]
		}
	}
	ev.max = max(ev.max, ms)
}

func cmdLatency(c *conn, a [][]byte) {
	m := &c.s.latency
	m.mu.Lock()
	defer m.mu.Unlock()
	switch strings.ToUpper(string(a[1])) {
	case "LATEST":
		names := make([]string, 0, len(m.events))
		for name := range m.events {
			names = append(names, name)
		}
		sort.Strings(names)
		c.wr.Array(len(names))
		for _, name := range names {
			ev := m.events[name]
			last := ev.samples[len(ev.samples)-1]
			c.wr.Array(4)
			c.wr.BulkString(name)
			c.wr.Int(last.at.Unix())
			c.wr.Int(last.ms)
			c.wr.Int(ev.max)
		}
	case "HISTORY":
		if len(a) != 3 {
			c.wr.Error("ERR wrong number of arguments for 'latency|history' command")
			return
		}
		var samples []latencySample
		if ev := m.events[string(a[2])]; ev != nil {
			samples = ev.samples
		}
		c.wr.Array(len(samples))
		for _, s := range samples {
			c.wr.Array(2)
			c.wr.Int(s.at.Unix())
			c.wr.Int(s.ms)
		}
	case "RESET":
		n := 0
		for name := range m.events {
			if len(a) == 2 || containsFold(a[2:], name) {
				delete(m.events, name)
				n++
			}
		}
		c.wr.Int(int64(n))
	case "HELP":
		writeHelp(c, "LATENCY", []string{
			"HISTORY <event>", "    Return time-latency samples for the <event> class.",
			"LATEST", "    Return the latest latency samples for all events.",
			"RESET [<event> ...]", "    Reset latency data of one or more <event> classes.",
			"    (default: reset all data for all event classes)",
		})
	default:
		c.wr.Error("ERR unknown subcommand '" + printable(a[1]) + "'. Try LATENCY HELP.")
	}
}

// containsFold says whether one of args is s, ignoring case.
func containsFold(args [][]byte, s string) bool {
	for _, a := range args {
		if strings.EqualFold(string(a), s) {
			return true
		}
	}
	return false
}
