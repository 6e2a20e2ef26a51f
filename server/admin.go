package server

import (
	"bytes"
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"golang.org/x/sys/unix"
)

func adminCommands() []*command {
	return []*command{
		{name: "ping", arity: -1, run: cmdPing, queueable: true, pure: true, flags: []string{"fast"}},
		{name: "echo", arity: 2, run: func(c *conn, a [][]byte) { c.wr.Bulk(a[1]) }, queueable: true, pure: true, flags: []string{"fast"}},
		{name: "hello", arity: -1, run: cmdHello, noAuth: true, flags: []string{"noscript", "fast"}},
		{name: "auth", arity: -2, run: cmdAuth, noAuth: true, flags: []string{"noscript", "fast"}},
		{name: "quit", arity: -1, run: func(c *conn, a [][]byte) { c.wr.Simple("OK"); c.quit = true }, noAuth: true, multiControl: true, flags: []string{"fast"}},
		{name: "select", arity: 2, run: cmdSelect, queueable: true, flags: []string{"fast"}},
		{name: "dbsize", arity: 1, run: cmdDBSize, queueable: true, flags: []string{"readonly"}},
		{name: "flushall", arity: -1, run: cmdFlushAll, flags: []string{"write"}},
		{name: "flushdb", arity: -1, run: cmdFlushDB, flags: []string{"write"}},
		{name: "info", arity: -1, run: cmdInfo, queueable: true, flags: []string{"loading", "stale"}},
		{name: "config", arity: -2, run: cmdConfig, flags: []string{"admin", "noscript"}},
		{name: "command", arity: -1, run: cmdCommand, flags: []string{"loading", "stale"}},
		{name: "client", arity: -2, run: cmdClient, flags: []string{"admin", "noscript"}},
		{name: "save", arity: 1, run: cmdSave, flags: []string{"admin", "noscript"}},
		{name: "bgsave", arity: -1, run: cmdBGSave, flags: []string{"admin", "noscript"}},
		{name: "lastsave", arity: 1, run: cmdLastSave, queueable: true, flags: []string{"fast"}},
		{name: "shutdown", arity: -1, run: cmdShutdown, flags: []string{"admin", "noscript"}},
		{name: "multi", arity: 1, run: cmdMulti, multiControl: true, flags: []string{"fast"}},
		{name: "exec", arity: 1, run: cmdExec, multiControl: true, flags: []string{"noscript"}},
		{name: "discard", arity: 1, run: cmdDiscard, multiControl: true, flags: []string{"fast"}},
		{name: "watch", arity: -2, run: cmdWatch, multiControl: true, flags: []string{"fast"}, firstKey: 1, lastKey: -1, step: 1},
		{name: "unwatch", arity: 1, run: cmdUnwatch, multiControl: true, flags: []string{"fast"}},
	}
}

func cmdPing(c *conn, a [][]byte) {
	if c.subscribed.Load() && !c.resp3.Load() && len(a) <= 2 {
		c.wr.Array(2) // a subscriber's PING, as Redis answers it
		c.wr.BulkString("pong")
		if len(a) == 2 {
			c.wr.Bulk(a[1])
		} else {
			c.wr.BulkString("")
		}
		return
	}
	switch len(a) {
	case 1:
		c.wr.Simple("PONG")
	case 2:
		c.wr.Bulk(a[1])
	default:
		c.wr.Error("ERR wrong number of arguments for 'ping' command")
	}
}

// cmdHello answers HELLO [protover [AUTH user pass] [SETNAME name]], as
// Redis 7 does: protover 2 or 3 switches the connection's replies to that
// protocol (RESP3: nulls and maps), anything else is NOPROTO.
func cmdHello(c *conn, a [][]byte) {
	proto := c.wr.Proto()
	if len(a) > 1 {
		v, err := strconv.Atoi(string(a[1]))
		if err != nil {
			c.wr.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && v != 3 {
			c.wr.Error("NOPROTO sorry, this protocol version is not supported.")
			return
		}
		proto = v
	}
	var setName []byte
	for i := 2; i < len(a); i++ {
		switch strings.ToUpper(string(a[i])) {
		case "AUTH":
			if i+2 >= len(a) {
				c.wr.Error(errSyntax.Error())
				return
			}
			if !c.checkPassword(a[i+1], a[i+2]) {
				c.wr.Error("WRONGPASS invalid username-password pair or user is disabled.")
				return
			}
			i += 2
		case "SETNAME":
			if i+1 >= len(a) {
				c.wr.Error(errSyntax.Error())
				return
			}
			setName = a[i+1]
			i++
		default:
			c.wr.Error(errSyntax.Error())
			return
		}
	}
	if !c.authed {
		c.wr.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName != nil {
		c.name.Store(string(setName))
	}
	c.wr.SetProto(proto)
	c.resp3.Store(proto == 3)
	c.wr.Map(7)
	c.wr.BulkString("server")
	c.wr.BulkString("bpfdb")
	c.wr.BulkString("version")
	c.wr.BulkString(c.s.cfg.Version)
	c.wr.BulkString("proto")
	c.wr.Int(int64(proto))
	c.wr.BulkString("id")
	c.wr.Int(c.id)
	c.wr.BulkString("mode")
	c.wr.BulkString("standalone")
	c.wr.BulkString("role")
	c.wr.BulkString("master")
	c.wr.BulkString("modules")
	c.wr.Array(0)
}

// checkPassword authenticates the connection if pass is the server's
// password (the user, if given, must be "default").
func (c *conn) checkPassword(user, pass []byte) bool {
	want := c.s.cfg.RequirePass
	ok := want != "" && (user == nil || string(user) == "default") &&
		subtle.ConstantTimeCompare(pass, []byte(want)) == 1
	if ok {
		c.authed = true
		c.rd.SetLimits(c.s.limits)
	}
	return ok
}

func cmdAuth(c *conn, a [][]byte) {
	if len(a) > 3 {
		c.wr.Error(errSyntax.Error())
		return
	}
	if c.s.cfg.RequirePass == "" && len(a) == 3 && string(a[1]) == "default" {
		c.wr.Simple("OK") // as Redis: the default user has no password
		return
	}
	if c.s.cfg.RequirePass == "" {
		c.wr.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	var user []byte
	pass := a[1]
	if len(a) == 3 {
		user, pass = a[1], a[2]
	}
	if !c.checkPassword(user, pass) {
		c.wr.Error("WRONGPASS invalid username-password pair or user is disabled.")
		return
	}
	c.wr.Simple("OK")
}

func cmdSelect(c *conn, a [][]byte) {
	n, ok := parseDB(a[1])
	switch {
	case !ok && isInteger(a[1]):
		c.wr.Error("ERR DB index is out of range")
	case !ok:
		c.wr.Error("ERR value is not an integer or out of range")
	default:
		c.db = n
		c.shownDB.Store(int32(n))
		c.wr.Simple("OK")
	}
}

// parseDB is the database b names (SELECT's, MOVE's, COPY ... DB's
// argument), if one of the store's (engine.Databases).
func parseDB(b []byte) (int, bool) {
	n, ok := parseInteger(b)
	return int(n), ok && n >= 0 && n < int64(engine.Databases)
}

// isInteger says whether b is an integer (parseInteger's syntax).
func isInteger(b []byte) bool {
	_, ok := parseInteger(b)
	return ok
}

// cmdDBSize answers the engine's count of the database's keys (no scan).
func cmdDBSize(c *conn, a [][]byte) {
	n, _, err := c.s.keyCounts(nil)
	if err == nil {
		err = c.s.shownDurable()
	}
	if err != nil {
		c.wr.Error(errorText(err))
		return
	}
	c.wr.Int(n[c.db])
}

// cmdFlushAll deletes every key of every database that one snapshot
// sees; writes that commit after the snapshot stay, as if they came after
// the FLUSHALL.
func cmdFlushAll(c *conn, a [][]byte) { flush(c, a, -1) }

// cmdFlushDB is FLUSHALL of the connection's database.
func cmdFlushDB(c *conn, a [][]byte) { flush(c, a, c.db) }

// flush deletes the keys of database db (-1: all), engine.MaxBatch per run.
func flush(c *conn, a [][]byte, db int) {
	for _, opt := range a[1:] {
		if o := strings.ToUpper(string(opt)); o != "SYNC" && o != "ASYNC" {
			c.wr.Error(errSyntax.Error())
			return
		}
	}
	var ops []engine.Op
	// One hold for the scan and its deletes (swapdb.go, invariant 1).
	c.s.dbs.hold()
	defer c.s.dbs.mu.RUnlock()
	if db >= 0 {
		db = c.s.dbs.storeDB(db)
	}
	err := c.s.e.Scan(func(it *engine.Item) bool {
		if db < 0 || it.DB == db {
			ops = append(ops, engine.Op{Kind: engine.OpDelete, DB: it.DB, Key: bytes.Clone(it.Key)})
		}
		return true
	})
	if err != nil {
		c.wr.Error(errorText(err))
		return
	}
	if err := c.s.e.Batch(ops); err != nil {
		c.wr.Error(errorText(err))
		return
	}
	for _, op := range ops {
		if op.Err != nil && !errors.Is(op.Err, engine.ErrNotFound) {
			c.wr.Error(errorText(op.Err))
			return
		}
	}
	c.wr.Simple("OK")
}

func cmdSave(c *conn, a [][]byte) {
	if _, err := c.s.e.Checkpoint(); err != nil {
		c.wr.Error(errorText(err))
		return
	}
	c.wr.Simple("OK")
}

// cmdBGSave starts a checkpoint in the background; like Redis it answers
// at once, and LASTSAVE tells when it finished.
func cmdBGSave(c *conn, a [][]byte) {
	if c.s.e.Options().Dir == "" {
		c.wr.Error(errorText(engine.ErrNoLog))
		return
	}
	if !c.s.saving.CompareAndSwap(false, true) {
		c.wr.Error("ERR Background save already in progress")
		return
	}
	go func() {
		defer c.s.saving.Store(false)
		c.s.e.Checkpoint()
	}()
	c.wr.Simple("Background saving started")
}

func cmdLastSave(c *conn, a [][]byte) {
	st, err := c.s.e.Stats()
	if err != nil {
		c.wr.Error(errorText(err))
		return
	}
	if st.LastCheckpoint.IsZero() {
		c.wr.Int(c.s.started.Unix())
		return
	}
	c.wr.Int(st.LastCheckpoint.Unix())
}

// cmdShutdown asks the server's owner to shut down: stop accepting, finish
// in-flight commands, checkpoint and exit. The connection is closed.
func cmdShutdown(c *conn, a [][]byte) {
	for _, opt := range a[1:] {
		switch strings.ToUpper(string(opt)) {
		case "ABORT":
			c.wr.Error("ERR No shutdown in progress.")
			return
		case "NOSAVE", "SAVE", "NOW", "FORCE":
		default:
			c.wr.Error(errSyntax.Error())
			return
		}
	}
	c.s.requestShutdown()
	c.quit = true
}

func cmdClient(c *conn, a [][]byte) {
	switch strings.ToUpper(string(a[1])) {
	case "ID":
		c.wr.Int(c.id)
	case "SETNAME":
		if len(a) != 3 {
			c.wr.Error("ERR wrong number of arguments for 'client|setname' command")
			return
		}
		if bytes.ContainsAny(a[2], " \n") {
			c.wr.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.name.Store(string(a[2]))
		c.wr.Simple("OK")
	case "GETNAME":
		if name := c.name.Load().(string); name != "" {
			c.wr.BulkString(name)
		} else {
			c.wr.Null()
		}
	case "SETINFO":
		c.wr.Simple("OK")
	case "LIST":
		var b strings.Builder
		for _, o := range c.s.connsByID() {
			b.WriteString(o.describe(c))
		}
		c.wr.BulkString(b.String())
	case "INFO":
		c.wr.BulkString(c.describe(c))
	case "KILL":
		n, err := c.s.killClients(a[2:], c)
		switch {
		case err != nil:
			c.wr.Error(err.Error())
		case len(a) == 3: // the old form, CLIENT KILL addr: OK or an error
			if n == 0 {
				c.wr.Error("ERR No such client")
			} else {
				c.wr.Simple("OK")
			}
		default:
			c.wr.Int(int64(n))
		}
	case "TRACKING", "CACHING":
		if len(a) < 3 {
			c.wr.Error("ERR wrong number of arguments for 'client|" + strings.ToLower(string(a[1])) + "' command")
			return
		}
		msg := ""
		if strings.EqualFold(string(a[1]), "TRACKING") {
			msg = c.clientTracking(a[2:])
		} else if len(a) == 3 {
			msg = c.clientCaching(a[2])
		} else {
			msg = errSyntax.Error()
		}
		if msg != "" {
			c.wr.Error(msg)
		} else {
			c.wr.Simple("OK")
		}
	case "GETREDIR":
		c.wr.Int(c.getRedirect())
	case "TRACKINGINFO":
		c.trackingInfo()
	case "NO-EVICT", "NO-TOUCH":
		// Nothing is evicted (no maxmemory) and no key has an access
		// time: both modes are what bpfdb always does.
		if len(a) != 3 || (!strings.EqualFold(string(a[2]), "on") && !strings.EqualFold(string(a[2]), "off")) {
			c.wr.Error(errSyntax.Error())
			return
		}
		c.wr.Simple("OK")
	case "HELP":
		writeHelp(c, "CLIENT", []string{
			"ID", "    Return the ID of the current connection.",
			"GETNAME", "    Return the name of the current connection.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"SETINFO <LIB-NAME|LIB-VER> <value>", "    Accepted, as clients send it.",
			"LIST", "    Return information about client connections.",
			"INFO", "    Return information about the current client connection.",
			"KILL <ip:port>", "    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]", "    Kill connections by ID <id>, ADDR <ip:port>, LADDR <ip:port> or SKIPME (YES|NO).",
			"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]] [OPTIN] [OPTOUT]",
			"    Control server assisted client side caching (NOLOOP is not supported).",
			"CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
			"GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
			"TRACKINGINFO", "    Return information about the current client's tracking status.",
			"NO-EVICT (ON|OFF)", "    Accepted: bpfdb evicts nothing.",
			"NO-TOUCH (ON|OFF)", "    Accepted: bpfdb keeps no access times.",
		})
	default:
		c.wr.Error("ERR unknown subcommand '" + printable(a[1]) + "'. Try CLIENT HELP.")
	}
}

// writeHelp answers a HELP subcommand as Redis does: lines of text.
func writeHelp(c *conn, cmd string, lines []string) {
	c.wr.Array(len(lines) + 3)
	c.wr.Simple(cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		c.wr.Simple(l)
	}
	c.wr.Simple("HELP")
	c.wr.Simple("    Print this help.")
}

// killClients closes the connections CLIENT KILL's arguments select (the
// old form: one address; the new: ID, ADDR, LADDR, SKIPME filters) and
// returns how many. It shuts their sockets down under s.mu, while they
// are listed (loop.close takes them out before closing the descriptor);
// the loop then sees the end of input and closes them as usual.
func (s *Server) killClients(args [][]byte, self *conn) (int, error) {
	var id int64 = -1
	var addr, laddr string
	skipMe := true
	if len(args) == 1 {
		addr = string(args[0])
	} else {
		if len(args) == 0 || len(args)%2 != 0 {
			return 0, errSyntax
		}
		for i := 0; i < len(args); i += 2 {
			v := string(args[i+1])
			switch strings.ToUpper(string(args[i])) {
			case "ID":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n <= 0 {
					return 0, errors.New("ERR client-id should be greater than 0")
				}
				id = n
			case "ADDR":
				addr = v
			case "LADDR":
				laddr = v
			case "SKIPME":
				switch strings.ToLower(v) {
				case "yes":
					skipMe = true
				case "no":
					skipMe = false
				default:
					return 0, errSyntax
				}
			default:
				return 0, errSyntax
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for o := range s.conns {
		if (id >= 0 && o.id != id) || (addr != "" && o.addr != addr) ||
			(laddr != "" && (s.tcpAddr == nil || s.tcpAddr.String() != laddr)) || (skipMe && o == self && len(args) > 1) {
			continue
		}
		unix.Shutdown(o.fd, unix.SHUT_RDWR)
		n++
	}
	return n, nil
}

// shutdownConn shuts c's socket down, as CLIENT KILL does, if it is still
// listed (under s.mu, so never a descriptor number already reused); the
// loop or its goroutine then closes it.
func (s *Server) shutdownConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; ok {
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
}

// connsByID returns the open connections, oldest first.
func (s *Server) connsByID() []*conn {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for o := range s.conns {
		conns = append(conns, o)
	}
	s.mu.Unlock()
	slices.SortFunc(conns, func(x, y *conn) int { return int(x.id - y.id) })
	return conns
}

// describe is o's line of CLIENT LIST, in Redis's fields; self is the
// connection asking (whose protocol, in MULTI, is known).
func (o *conn) describe(self *conn) string {
	name, _ := o.name.Load().(string)
	proto := 2
	if o.resp3.Load() {
		proto = 3
	}
	multi := -1
	if o == self && o.inMulti {
		multi = len(o.queued)
	}
	sub := 0
	if o.subscribed.Load() {
		sub = 1
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=0 flags=N db=%d sub=%d psub=0 ssub=0 multi=%d watch=0 cmd=client|list user=default resp=%d\n",
		o.id, o.addr, o.s.tcpAddr, o.fd, name, int64(time.Since(o.created).Seconds()), o.shownDB.Load(), sub, multi, proto)
}

// runtimeParam is a parameter CONFIG SET changes: an integer of at
// least min.
type runtimeParam struct {
	v   *atomic.Int64
	min int64
}

// runtimeParams is what CONFIG SET changes at run time; the rest is
// bpfdb serve's command line.
func (s *Server) runtimeParams() map[string]runtimeParam {
	return map[string]runtimeParam{
		"maxclients":                {&s.maxClients, 1},
		"slowlog-log-slower-than":   {&s.slowlogSlower, -1},
		"slowlog-max-len":           {&s.slowlogMaxLen, 0},
		"latency-monitor-threshold": {&s.latencyThreshold, 0},
	}
}

// configSet applies CONFIG SET's pairs, all or none, and returns the
// error to answer ("" for OK).
func (s *Server) configSet(args [][]byte) string {
	if len(args) == 0 || len(args)%2 != 0 {
		return "ERR wrong number of arguments for 'config|set' command"
	}
	params := s.runtimeParams()
	values := map[string]int64{}
	for i := 0; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		p, ok := params[name]
		if !ok {
			names := slices.Sorted(maps.Keys(params))
			return "ERR CONFIG SET of '" + printable(args[i]) + "' is not supported: " + strings.Join(names, ", ") +
				" change at run time; the rest is bpfdb serve's command line"
		}
		n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
		if err != nil || n < p.min {
			return fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - argument must be an integer of at least %d", name, p.min)
		}
		values[name] = n
	}
	for name, n := range values {
		params[name].v.Store(n)
	}
	return ""
}

// configValues answers CONFIG GET: the parameters redis-benchmark,
// memtier_benchmark and client libraries ask for, with bpfdb's answers.
func (s *Server) configValues() map[string]string {
	// Both durabilities log every commit (async fsyncs on a timer, like
	// appendfsync everysec); without a directory nothing is logged.
	appendonly := "yes"
	if s.e.Options().Dir == "" {
		appendonly = "no"
	}
	return map[string]string{
		"save":                      "",
		"appendonly":                appendonly,
		"appendfsync":               map[bool]string{true: "always", false: "everysec"}[s.e.Options().Durability == engine.Sync],
		"maxclients":                strconv.FormatInt(s.maxClients.Load(), 10),
		"databases":                 strconv.Itoa(engine.Databases),
		"maxmemory":                 strconv.FormatInt(s.e.Options().MaxMemory, 10),
		"maxmemory-policy":          "noeviction",
		"proto-max-bulk-len":        strconv.Itoa(s.limits.MaxBulk), // the longest argument kept
		"timeout":                   "0",
		"dir":                       s.e.Options().Dir,
		"port":                      portOf(s.tcpAddr),
		"bind":                      hostOf(s.tcpAddr),
		"requirepass":               "",
		"cluster-enabled":           "no",
		"slowlog-log-slower-than":   strconv.FormatInt(s.slowlogSlower.Load(), 10),
		"slowlog-max-len":           strconv.FormatInt(s.slowlogMaxLen.Load(), 10),
		"latency-monitor-threshold": strconv.FormatInt(s.latencyThreshold.Load(), 10),
	}
}

func cmdConfig(c *conn, a [][]byte) {
	switch strings.ToUpper(string(a[1])) {
	case "GET":
		if len(a) < 3 {
			c.wr.Error("ERR wrong number of arguments for 'config|get' command")
			return
		}
		values := c.s.configValues()
		var names []string
		for name := range values {
			for _, pat := range a[2:] {
				if ok, _ := path.Match(strings.ToLower(string(pat)), name); ok {
					names = append(names, name)
					break
				}
			}
		}
		sort.Strings(names)
		c.wr.Map(len(names))
		for _, name := range names {
			c.wr.BulkString(name)
			c.wr.BulkString(values[name])
		}
	case "SET":
		if msg := c.s.configSet(a[2:]); msg != "" {
			c.wr.Error(msg)
		} else {
			c.wr.Simple("OK")
		}
	case "RESETSTAT":
		c.s.resetStats()
		c.wr.Simple("OK")
	case "HELP":
		writeHelp(c, "CONFIG", []string{
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value> [<directive> <value> ...]", "    Set maxclients, slowlog-log-slower-than, slowlog-max-len or latency-monitor-threshold; the rest is set on the command line.",
			"RESETSTAT", "    Reset INFO's statistics (commandstats, errorstats, hits and misses); the Prometheus counters stay cumulative.",
		})
	default:
		c.wr.Error("ERR unknown subcommand '" + printable(a[1]) + "'. Try CONFIG HELP.")
	}
}

// cmdCommand answers COMMAND, COMMAND COUNT, COMMAND INFO and COMMAND DOCS
// from the command table.
func cmdCommand(c *conn, a [][]byte) {
	var names []string
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(a) == 1 {
		c.wr.Array(len(names))
		for _, name := range names {
			writeCommandInfo(c, commands[name])
		}
		return
	}
	switch strings.ToUpper(string(a[1])) {
	case "COUNT":
		c.wr.Int(int64(len(names)))
	case "INFO":
		c.wr.Array(len(a) - 2)
		for _, name := range a[2:] {
			if cmd := lookup(name); cmd != nil {
				writeCommandInfo(c, cmd)
			} else {
				c.wr.Null()
			}
		}
	case "DOCS":
		want := names
		if len(a) > 2 {
			want = nil
			for _, name := range a[2:] {
				if cmd := lookup(name); cmd != nil {
					want = append(want, cmd.name)
				}
			}
		}
		c.wr.Array(2 * len(want))
		for _, name := range want {
			c.wr.BulkString(name)
			c.wr.Array(4)
			c.wr.BulkString("summary")
			c.wr.BulkString(strings.ToUpper(name) + " (bpfdb)")
			c.wr.BulkString("group")
			c.wr.BulkString(cmp.Or(commands[name].group, map[bool]string{true: "string", false: "server"}[commands[name].eval != nil]))
		}
	case "LIST":
		c.wr.Array(len(names))
		for _, name := range names {
			c.wr.BulkString(name)
		}
	case "GETKEYS":
		if len(a) < 3 {
			c.wr.Error("ERR wrong number of arguments for 'command|getkeys' command")
			return
		}
		cmd := lookup(a[2])
		switch {
		case cmd == nil:
			c.wr.Error("ERR Invalid command specified")
		case !cmd.arityOK(len(a) - 2):
			c.wr.Error("ERR Invalid number of arguments specified for command")
		case cmd.keys == nil:
			c.wr.Error("ERR The command has no key arguments")
		default:
			keys, _ := cmd.keys(a[2:])
			c.wr.Array(len(keys))
			for _, k := range keys {
				c.wr.Bulk(k)
			}
		}
	case "HELP":
		writeHelp(c, "COMMAND", []string{
			"(no subcommand)", "    Return details about all commands.",
			"COUNT", "    Return the total number of commands.",
			"LIST", "    Return the names of all commands.",
			"INFO [<command-name> ...]", "    Return details about the given commands.",
			"DOCS [<command-name> ...]", "    Return documentation about the given commands.",
			"GETKEYS <full-command>", "    Return the keys of a full command.",
		})
	default:
		c.wr.Error("ERR unknown subcommand '" + printable(a[1]) + "'. Try COMMAND HELP.")
	}
}

func writeCommandInfo(c *conn, cmd *command) {
	first, last, step := cmd.firstKey, cmd.lastKey, cmd.step
	if cmd.keys != nil && first == 0 {
		first, last, step = keyPositions(cmd)
	}
	c.wr.Array(10)
	c.wr.BulkString(cmd.name)
	c.wr.Int(int64(cmd.arity))
	c.wr.Array(len(cmd.flags))
	for _, f := range cmd.flags {
		c.wr.Simple(f)
	}
	c.wr.Int(int64(first))
	c.wr.Int(int64(last))
	c.wr.Int(int64(step))
	c.wr.Array(0) // ACL categories
	c.wr.Array(0) // tips
	writeKeySpecs(c, cmd, first, last, step)
	c.wr.Array(0) // subcommands
}

// keyPositions finds where a data command's keys are, as COMMAND gives
// them (first, last, step; last -1: to the end), by asking its keys
// function about a command of keyProbeArgs arguments.
func keyPositions(cmd *command) (first, last, step int) {
	args := make([][]byte, keyProbeArgs)
	for i := range args {
		args[i] = []byte{byte(i)}
	}
	keys, _ := cmd.keys(args)
	if len(keys) == 0 {
		return 0, 0, 0
	}
	at := make([]int, len(keys))
	for i, k := range keys {
		at[i] = int(k[0])
	}
	first, last, step = at[0], at[len(at)-1], 1
	if len(at) > 1 {
		step = at[1] - at[0]
	}
	if len(at) > 2 && last+step >= keyProbeArgs {
		last = -1 // every step-th argument to the end
	}
	return first, last, step
}

// keyProbeArgs is the length of keyPositions' probe: more than any
// command with fixed key positions takes, and pairs of MSET's to the end.
const keyProbeArgs = 9

// writeKeySpecs writes the key specs of cmd, whose keys are the arguments
// first to last (negative: from the end) every step: one spec, an index
// to begin and a range, as Redis 7 gives them (cluster clients route by
// them).
func writeKeySpecs(c *conn, cmd *command, first, last, step int) {
	if first == 0 {
		c.wr.Array(0)
		return
	}
	flags := []string{"RO", "ACCESS"}
	if slices.Contains(cmd.flags, "write") {
		flags = []string{"RW", "UPDATE"}
	}
	lastKey := last
	if last >= 0 {
		lastKey = last - first
	}
	c.wr.Array(1)
	c.wr.Map(3)
	c.wr.BulkString("flags")
	c.wr.Array(len(flags))
	for _, f := range flags {
		c.wr.Simple(f)
	}
	c.wr.BulkString("begin_search")
	c.wr.Map(2)
	c.wr.BulkString("type")
	c.wr.BulkString("index")
	c.wr.BulkString("spec")
	c.wr.Map(1)
	c.wr.BulkString("index")
	c.wr.Int(int64(first))
	c.wr.BulkString("find_keys")
	c.wr.Map(2)
	c.wr.BulkString("type")
	c.wr.BulkString("range")
	c.wr.BulkString("spec")
	c.wr.Map(3)
	c.wr.BulkString("lastkey")
	c.wr.Int(int64(lastKey))
	c.wr.BulkString("keystep")
	c.wr.Int(int64(step))
	c.wr.BulkString("limit")
	c.wr.Int(0)
}

func portOf(a fmt.Stringer) string {
	if a == nil {
		return "0"
	}
	s := a.String()
	return s[strings.LastIndexByte(s, ':')+1:]
}

func hostOf(a fmt.Stringer) string {
	if a == nil {
		return ""
	}
	s := a.String()
	return s[:max(strings.LastIndexByte(s, ':'), 0)]
}
