package server

// Scripts: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (issue 19), in
// Lua 5.1 as Redis runs them, on github.com/yuin/gopher-lua (a pure-Go
// Lua 5.1, maintained, no cgo).
//
// A script is a data command (txn.go): its keys are its KEYS, written
// unless it is an _RO variant, and it may touch keys it did not declare
// (command.dynamic), which its transaction reads as it goes
// (txView.fetch). Each redis.call evaluates a data command against the
// transaction's view, exactly as a queued MULTI command is evaluated, so
// a script sees its own writes, and they commit with its transaction.
//
// Invariants:
//
//  1. A script is one serializable transaction: every key it reads is
//     locked (exclusively, since it may write it later; a read-only
//     script reads one snapshot and takes no lock) until its writes
//     commit, all or none. A Lua error, an error raised by redis.call, a
//     limit or a kill fails the transaction: nothing is applied (Redis
//     would keep the writes made before the error).
//  2. A no-wait conflict aborts the attempt, and runTxn runs the script
//     again from the start in a new Lua state: the script sees the store
//     only through redis.call, and nothing it did is kept, so the client
//     never sees the conflict. Scripts run concurrently with each other
//     and with every other command: a short one in the event loop
//     between other clients' commands (invariant 5), a longer one on a
//     goroutine.
//  3. A script runs at most scriptTimeLimit and scriptInstructionLimit
//     Lua instructions (runBudget); SCRIPT KILL stops every script
//     running. Each fails it with nothing applied, so a script that wrote
//     can be stopped too (Redis cannot).
//  4. Runs share pooled Lua states (scriptState), so no run may leave a
//     trace in one: globals and the library tables (string, table, math,
//     redis) are read-only, as in Redis 7, through proxies
//     (scriptState.protect), and a state a run changed anyway
//     (table.insert into a proxy) is closed, not pooled
//     (scriptState.clean).
//  5. The event loop runs a script itself (runTxnInline) only under a
//     budget of a few milliseconds (inlineScriptTime), and only as long
//     as it need not wait: past the budget, or at a conflict, the run
//     ends with nothing applied (invariant 2 makes that safe) and a
//     goroutine runs the script again from the start. A script's
//     redis.log may therefore log twice, as it does when a conflict
//     re-runs it.

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Bounds of one run of a script (invariant 3).
const (
	// scriptTimeLimit: Redis's busy-reply threshold, lua-time-limit, is
	// 5 s; there a script blocks every client, here it blocks none, so it
	// is stopped instead.
	scriptTimeLimit = 5 * time.Second
	// scriptInstructionLimit bounds the Lua instructions of a run
	// (Config.ScriptInstructionLimit sets another), whatever the
	// machine's speed or load: a loop that would outrun it is a bug.
	// Time spent in redis.call and the libraries' Go functions counts
	// against scriptTimeLimit only.
	scriptInstructionLimit = 100_000_000
	// libraryLoadTimeLimit bounds FUNCTION LOAD's run of a library's
	// code, which only registers functions (Redis's is 500 ms too). The
	// stored libraries (at start, FUNCTION RESTORE), which loaded once
	// already, get scriptTimeLimit, so that a loaded machine does not
	// refuse them.
	libraryLoadTimeLimit = 500 * time.Millisecond
	// inlineScriptTime and inlineScriptInstructions bound a run on the
	// event loop (runTxnInline), which serves every other client
	// meanwhile: a script that outruns them stops, with nothing applied,
	// and runs again from the start on a goroutine of its own under the
	// bounds above (invariant 5).
	inlineScriptTime         = 2 * time.Millisecond
	inlineScriptInstructions = 50_000
)

// errInlineBudget fails an event loop's run of a script that outran
// inlineScriptTime or inlineScriptInstructions; runTxnInline then leaves
// the script to a goroutine.
var errInlineBudget = errors.New("bpfdb: the script outran the event loop's budget")

// runBudget is the context a run's Lua state works under. gopher-lua's VM
// asks the context's Done before every instruction it runs
// (mainLoopWithContext), so Done counts instructions, and every
// budgetCheckEvery of them reads the clock and whether SCRIPT KILL asked
// (kill): no timer is set up per run, which cost more than a short
// script. Done is nil (never ready) until the run is to stop, then a
// closed channel, and Err says why. Done and Err are called on the run's
// goroutine only; kill from anywhere. The coroutine library must stay
// unopened: gopher-lua gives a coroutine a child context of this one,
// which never sees a nil Done close, so it would escape every bound.
type runBudget struct {
	limit    int64 // instructions a run may take
	left     int64 // instructions left
	time     time.Duration
	deadline time.Time
	killed   atomic.Bool
	done     chan struct{} // nil, or closedChan once stopped
	err      error         // why it stopped
}

// budgetCheckEvery is how many instructions run between two looks at the
// clock and at kill (a power of two: a mask tests it).
const budgetCheckEvery = 1024

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Errors a runBudget stops a run with (Err); runBudget.stopped words them
// for the client.
var (
	errOutOfInstructions = errors.New("out of instructions")
	errOutOfTime         = errors.New("out of time")
	errKilled            = errors.New("killed")
)

func newRunBudget(limit time.Duration, instructions int64) *runBudget {
	if limit <= 0 || instructions <= 0 {
		panic("server: a script's run needs a positive budget")
	}
	return &runBudget{limit: instructions, left: instructions, time: limit, deadline: time.Now().Add(limit)}
}

// Done is nil while the run may go on, and closed once it is to stop.
func (b *runBudget) Done() <-chan struct{} {
	b.left--
	if b.left&(budgetCheckEvery-1) == 0 || b.left < 0 {
		b.check()
	}
	return b.done
}

func (b *runBudget) check() {
	switch {
	case b.done != nil:
		return
	case b.left < 0:
		b.err = errOutOfInstructions
	case b.killed.Load():
		b.err = errKilled
	case time.Now().After(b.deadline):
		b.err = errOutOfTime
	default:
		return
	}
	b.done = closedChan
}

// kill stops the run at its next check (SCRIPT KILL).
func (b *runBudget) kill() { b.killed.Store(true) }

// Err is why the run stopped, nil while it goes on.
func (b *runBudget) Err() error { return b.err }

// Deadline is when the run is stopped for time.
func (b *runBudget) Deadline() (time.Time, bool) { return b.deadline, true }

// Value: a run's context carries no values.
func (b *runBudget) Value(any) any { return nil }

// stopped is the error of a run its budget stopped for time or
// instructions (nil: it was not), for what (a script, a library's load).
func (b *runBudget) stopped(what string) error {
	switch b.err {
	case errOutOfInstructions:
		return fmt.Errorf("ERR %s ran more than %d Lua instructions, the limit: stopped, nothing it wrote was applied", what, b.limit)
	case errOutOfTime:
		return fmt.Errorf("ERR %s ran longer than %d ms, the limit: stopped, nothing it wrote was applied", what, b.time.Milliseconds())
	}
	return nil
}

// scripts is the server's script cache (SCRIPT LOAD, EVAL) and the
// scripts running (SCRIPT KILL).
type scripts struct {
	mu      sync.Mutex
	protos  map[string]*lua.FunctionProto // by SHA1 in hex
	running map[*scriptRun]struct{}
	// long holds the scripts (by scriptRun.sha) that outran the event
	// loop's budget, and when: the loop leaves them to goroutines for
	// longScriptMemory rather than run each twice. A run can outrun it
	// by being descheduled, not by being long, hence the expiry. At most
	// maxLongScripts.
	long map[string]time.Time
	// libs are FUNCTION's libraries, by name (function.go): read under
	// mu, replaced under libMu and mu. libMu orders the changes, and is
	// held while one is stored (an fsync), which mu must not be: the
	// event loop takes mu to run a script.
	libs  map[string]*library
	libMu sync.Mutex
	// instructions bounds a run's Lua instructions (runBudget).
	instructions int64
}

// compile returns the compiled body, caching it under its SHA1.
func (sc *scripts) compile(body []byte) (string, *lua.FunctionProto, error) {
	sha := sha1hex(body)
	sc.mu.Lock()
	p := sc.protos[sha]
	sc.mu.Unlock()
	if p != nil {
		return sha, p, nil
	}
	chunk, err := parse.Parse(strings.NewReader(string(body)), "user_script")
	if err == nil {
		p, err = lua.Compile(chunk, "user_script")
	}
	if err != nil {
		return "", nil, fmt.Errorf("ERR Error compiling script (new function): %s", oneLine(err.Error()))
	}
	// Lua 5.1 gives a main chunk no Lua 5.0 arg table (a script reads
	// `arg` as a missing global in Redis); gopher-lua gives it one, built
	// in every run with room for 32 fields. A nested function(...) keeps
	// its arg, as in Redis.
	p.IsVarArg &^= lua.VarArgNeedsArg
	sc.mu.Lock()
	if sc.protos == nil {
		sc.protos = map[string]*lua.FunctionProto{}
	}
	sc.protos[sha] = p
	sc.mu.Unlock()
	return sha, p, nil
}

func (sc *scripts) lookup(sha string) *lua.FunctionProto {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.protos[strings.ToLower(sha)]
}

// replyError is an error whose text is the error reply, whatever its
// code (a script's redis.error_reply, NOSCRIPT): errorText adds none.
type replyError string

func (e replyError) Error() string { return string(e) }

func sha1hex(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func scriptCommands() []*command {
	return []*command{
		{name: "eval", arity: -3, keys: scriptKeys(false), check: checkScript(false), dynamic: true,
			flags: []string{"noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}, eval: evalScript(false, false)},
		{name: "evalsha", arity: -3, keys: scriptKeys(false), check: checkScript(true), dynamic: true,
			flags: []string{"noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}, eval: evalScript(true, false)},
		{name: "eval_ro", arity: -3, keys: scriptKeys(true), check: checkScript(false), dynamic: true,
			flags: []string{"readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}, eval: evalScript(false, true)},
		{name: "evalsha_ro", arity: -3, keys: scriptKeys(true), check: checkScript(true), dynamic: true,
			flags: []string{"readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}, eval: evalScript(true, true)},
		{name: "script", arity: -2, run: cmdScript, flags: []string{"noscript"}},
	}
}

// numKeys parses EVAL's numkeys (args[2]), checked by checkScript.
func numKeys(a [][]byte) int {
	n, _ := strconv.Atoi(string(a[2]))
	return n
}

// scriptKeys is a script's declared keys: its KEYS, written unless ro.
func scriptKeys(ro bool) func(a [][]byte) ([][]byte, bool) {
	return func(a [][]byte) ([][]byte, bool) {
		n := numKeys(a)
		if n < 0 || 3+n > len(a) {
			return nil, !ro
		}
		return a[3 : 3+n], !ro
	}
}

func checkScript(bySHA bool) func(a [][]byte, lim limits) error {
	return func(a [][]byte, lim limits) error {
		n, err := strconv.Atoi(string(a[2]))
		switch {
		case err != nil:
			return errNotInteger
		case n < 0:
			return errors.New("ERR Number of keys can't be negative")
		case 3+n > len(a):
			return errors.New("ERR Number of keys can't be greater than number of args")
		}
		for _, k := range a[3 : 3+n] {
			if err := lim.CheckKey(k); err != nil {
				return err
			}
		}
		return nil
	}
}

// scriptRun is one run of a script against a transaction's view.
type scriptRun struct {
	v        *txView
	readOnly bool
	sha      string
	budget   *runBudget
	resp3    bool // redis.setresp(3): replies reach Lua in RESP3's forms
}

// evalScript is EVAL or EVALSHA (bySHA), read-write or read-only (ro).
func evalScript(bySHA, ro bool) func(v *txView, a [][]byte) reply {
	return func(v *txView, a [][]byte) reply {
		sc := &v.srv.scripts
		var sha string
		var proto *lua.FunctionProto
		if bySHA {
			sha, proto = strings.ToLower(string(a[1])), sc.lookup(string(a[1]))
			if proto == nil {
				return errReply(replyError("NOSCRIPT No matching script. Please use EVAL."))
			}
		} else {
			var err error
			if sha, proto, err = sc.compile(a[1]); err != nil {
				return errReply(err)
			}
		}
		n := numKeys(a)
		r := &scriptRun{v: v, readOnly: ro, sha: sha}
		keys, argv := a[3:3+n], a[3+n:]
		return r.run(sc, func(st *scriptState) error {
			L := st.L
			L.G.Global.RawSetString("KEYS", stringsTable(L, keys))
			L.G.Global.RawSetString("ARGV", stringsTable(L, argv))
			L.Push(L.NewFunctionFromProto(proto))
			return L.PCall(0, 1, nil)
		})
	}
}

// run runs body, which leaves the script's result on the Lua stack, and
// returns its reply; an error fails the transaction (invariant 1).
func (r *scriptRun) run(sc *scripts, body func(st *scriptState) error) reply {
	limit, instructions := scriptTimeLimit, sc.instructions
	if r.v.inline {
		limit, instructions = inlineScriptTime, min(inlineScriptInstructions, instructions)
	}
	budget := newRunBudget(limit, instructions)
	r.budget = budget
	sc.mu.Lock()
	if at, long := sc.long[r.sha]; long && r.v.inline && time.Since(at) < longScriptMemory {
		sc.mu.Unlock()
		return r.v.fail(errInlineBudget)
	}
	if sc.running == nil {
		sc.running = map[*scriptRun]struct{}{}
	}
	sc.running[r] = struct{}{}
	sc.mu.Unlock()
	defer func() {
		sc.mu.Lock()
		delete(sc.running, r)
		sc.mu.Unlock()
	}()

	st := statePool.Get().(*scriptState)
	st.run = r
	L := st.L
	L.SetContext(budget)
	err := body(st)
	if r.v.inline && err == nil && time.Now().After(budget.deadline.Add(9*inlineScriptTime)) {
		// Far past the budget, which it looks at between instructions
		// only: in a Go built-in (string.rep of 100 MB). Not on the loop
		// again for a while.
		sc.noteLong(r.sha)
	}
	defer st.release(err == nil && budget.Err() == nil)
	if r.v.failed != nil { // the transaction failed under the script: whatever it made of that
		return errReply(r.v.failed)
	}
	if err != nil {
		if budget.killed.Load() {
			return r.v.fail(errors.New("ERR Script killed by user with SCRIPT KILL: nothing it wrote was applied"))
		}
		if stop := budget.stopped("script"); stop != nil {
			if r.v.inline {
				sc.noteLong(r.sha)
				return r.v.fail(errInlineBudget)
			}
			return r.v.fail(stop)
		}
		return r.v.fail(r.scriptError(err))
	}
	rep := luaReply(L.Get(-1))
	if rep.kind == kindError {
		// redis.error_reply returned: an error reply, the transaction
		// still fails (invariant 1).
		return r.v.fail(replyError(rep.str))
	}
	return rep
}

// maxLongScripts bounds scripts.long: past it, the set starts again.
// longScriptMemory is how long the loop leaves a script that outran it
// to goroutines.
const (
	maxLongScripts   = 1024
	longScriptMemory = 10 * time.Second
)

// noteLong records that the script sha outran the event loop's budget.
func (sc *scripts) noteLong(sha string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.long == nil || len(sc.long) >= maxLongScripts {
		sc.long = map[string]time.Time{}
	}
	sc.long[sha] = time.Now()
}

// scriptError is the error reply of a script that raised err.
// Redis's shape: the message, then " script: <sha>, on @user_script:<line>.".
func (r *scriptRun) scriptError(err error) error {
	var apiErr *lua.ApiError
	msg, where := err.Error(), ""
	if errors.As(err, &apiErr) {
		if t, ok := apiErr.Object.(*lua.LTable); ok {
			if e, ok := t.RawGetString("err").(lua.LString); ok {
				// redis.call's error (where it was called), or
				// error(redis.error_reply(...)): its code kept.
				where = lua.LVAsString(t.RawGetString("where"))
				return replyError(fmt.Sprintf("%s script: %s, on @%s.", oneLine(string(e)), r.sha, scriptLine(where)))
			}
		}
		msg = apiErr.Object.String()
	}
	where, _, _ = strings.Cut(msg, ": ") // "user_script:<line>: <message>"
	if !strings.HasPrefix(msg, "ERR ") {
		msg = "ERR " + msg
	}
	return replyError(fmt.Sprintf("%s script: %s, on @%s.", oneLine(msg), r.sha, scriptLine(where)))
}

// scriptLine is "user_script:<line>" from a Lua position ("user_script:3:"),
// or "user_script" when it names none.
func scriptLine(where string) string {
	where = strings.TrimPrefix(strings.TrimSuffix(strings.TrimSpace(where), ":"), "@")
	if name, line, ok := strings.Cut(where, ":"); ok && strings.HasPrefix(name, "user_") {
		if _, err := strconv.Atoi(line); err == nil {
			return where
		}
	}
	return "user_script"
}

// scriptState is a Lua state and the run it serves: building a state
// costs more than most scripts, so runs borrow them from statePool. No
// run may change what the next sees (invariant 4): globals cannot be
// created (protectGlobals, as in Redis), library tables are read-only
// proxies (readOnly), and KEYS and ARGV are set by each run.
type scriptState struct {
	L   *lua.LState
	run *scriptRun
	// redis is the redis table itself (scripts see a read-only proxy):
	// FCALL adds register_function to it while a library's code runs.
	redis *lua.LTable
	// proxies are the read-only tables scripts see: empty, and only
	// table.insert and its kind (raw writes) can change that.
	proxies []*lua.LTable
}

var statePool = sync.Pool{New: func() any { return newScriptState() }}

// release returns the state to the pool after a run that ended well;
// one that failed (perhaps mid-unwind, or its context cancelled), or
// left a trace (clean), is closed.
func (st *scriptState) release(reuse bool) {
	st.run = nil
	if !reuse || !st.clean() {
		st.L.Close()
		return
	}
	st.L.RemoveContext()
	st.L.SetTop(0)
	st.L.G.Global.RawSetString("KEYS", lua.LNil) // a function's run has none
	st.L.G.Global.RawSetString("ARGV", lua.LNil)
	statePool.Put(st)
}

// clean reports whether no run wrote into a read-only table: a raw
// write (table.insert, table.sort...) gets past a proxy's __newindex,
// and leaves a key in it. The real tables behind the proxies are
// reachable from Go only.
func (st *scriptState) clean() bool {
	for _, p := range st.proxies {
		if k, _ := p.Next(lua.LNil); k != lua.LNil {
			return false
		}
	}
	return true
}

// newScriptState is a Lua state with the libraries Redis gives scripts
// (base without file access, table, string, math) and the redis table,
// whose functions act for st.run.
func newScriptState() *scriptState {
	st := &scriptState{}
	r := func() *scriptRun { return st.run }
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	st.L = L
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	// No files, and no code from strings. No setfenv or getfenv either
	// (Redis 7 has them): one would change the environment of the pooled
	// state, or of a library's function, for every later run; the other
	// answers the real globals table for a library function (protect).
	for _, name := range []string{"dofile", "loadfile", "load", "loadstring", "require", "module", "setfenv", "getfenv"} {
		L.SetGlobal(name, lua.LNil)
	}
	st.redis = L.NewTable()
	L.SetFuncs(st.redis, map[string]lua.LGFunction{
		"call":         func(L *lua.LState) int { return r().call(L, false) },
		"pcall":        func(L *lua.LState) int { return r().call(L, true) },
		"error_reply":  func(L *lua.LState) int { L.Push(statusTable(L, "err", L.CheckString(1))); return 1 },
		"status_reply": func(L *lua.LState) int { L.Push(statusTable(L, "ok", L.CheckString(1))); return 1 },
		"sha1hex":      func(L *lua.LState) int { L.Push(lua.LString(sha1hex([]byte(L.CheckString(1))))); return 1 },
		"log":          func(L *lua.LState) int { return 0 },
		"setresp": func(L *lua.LState) int {
			switch L.CheckInt(1) {
			case 2, 3:
				r().resp3 = L.CheckInt(1) == 3
			default:
				L.RaiseError("RESP version must be 2 or 3.")
			}
			return 0
		},
	})
	for i, level := range []string{"LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"} {
		st.redis.RawSetString(level, lua.LNumber(i))
	}
	L.SetGlobal("redis", st.redis)
	st.protect()
	return st
}

// errReadOnly is what a write to a protected table raises, in Redis's words.
const errReadOnly = "Attempt to modify a readonly table"

// protect makes the state's globals and libraries read-only (invariant
// 4). gopher-lua has no read-only tables, so scripts reach each through
// a proxy (readOnly): the library tables are replaced by proxies, string
// methods read through one, and the globals themselves are one, the
// environment of every function a script or library defines (L.Env) and
// their _G; the real globals table is reachable from Go only (getfenv,
// which answers it for a library function, is removed). rawset refuses
// the proxies, setmetatable takes tables only (the metatable of a number or
// boolean is the whole state's), and the real table raises for a name it
// does not have (protectGlobals).
func (st *scriptState) protect() {
	L := st.L
	refuse := L.NewFunction(func(L *lua.LState) int {
		L.RaiseError(errReadOnly)
		return 0
	})
	for _, name := range []string{lua.TabLibName, lua.StringLibName, lua.MathLibName, "redis"} {
		L.G.Global.RawSetString(name, st.readOnly(L.G.Global.RawGetString(name).(*lua.LTable), refuse))
	}
	if mt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		// "s:upper()" looks up string methods through this metatable.
		mt.RawSetString("__index", L.G.Global.RawGetString(lua.StringLibName))
		mt.RawSetString("__metatable", lua.LFalse) // getmetatable("") cannot reach it
	}
	st.wrap("rawset", func(L *lua.LState) {
		if t, ok := L.Get(1).(*lua.LTable); ok && (t == L.G.Global || slices.Contains(st.proxies, t)) {
			L.RaiseError(errReadOnly)
		}
	})
	st.wrap("setmetatable", func(L *lua.LState) { L.CheckTable(1) })
	globals := st.readOnly(L.G.Global, refuse)
	L.G.Global.RawSetString("_G", globals)
	protectGlobals(L, refuse)
	L.Env = globals
}

// wrap replaces the global function name with one that runs check
// (which may raise) on its arguments, then calls it.
func (st *scriptState) wrap(name string, check func(L *lua.LState)) {
	L := st.L
	fn := L.G.Global.RawGetString(name).(*lua.LFunction)
	L.G.Global.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
		check(L)
		n := L.GetTop()
		L.Push(fn)
		for i := 1; i <= n; i++ {
			L.Push(L.Get(i))
		}
		L.Call(n, 1)
		return 1
	}))
}

// readOnly returns a proxy of t that scripts read t through and cannot
// write (refuse raises the error): an empty table whose metatable, which
// getmetatable cannot reach, sends reads to t.
func (st *scriptState) readOnly(t *lua.LTable, refuse *lua.LFunction) *lua.LTable {
	L := st.L
	p, mt := L.NewTable(), L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", refuse)
	mt.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(p, mt)
	st.proxies = append(st.proxies, p)
	return p
}

// protectGlobals makes a script's read of a global that does not exist
// an error, as Redis 7 does, and the real globals table refuse new names
// (refuse: "Attempt to modify a readonly table"), should Go code ever
// write it for a script.
func protectGlobals(L *lua.LState, refuse *lua.LFunction) {
	mt := L.NewTable()
	mt.RawSetString("__newindex", refuse)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.CheckAny(2).String())
		return 0
	}))
	mt.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(L.G.Global, mt)
}

// statusTable is Redis's Lua form of a status (field "ok") or an error
// (field "err") reply.
func statusTable(L *lua.LState, field, msg string) *lua.LTable {
	t := L.CreateTable(0, 1) // one field: NewTable makes room for 32 array and 32 hash entries
	t.RawSetString(field, lua.LString(msg))
	return t
}

func stringsTable(L *lua.LState, items [][]byte) *lua.LTable {
	t := L.CreateTable(len(items), 0)
	for _, b := range items {
		t.Append(lua.LString(b))
	}
	return t
}

// call is redis.call (protected: redis.pcall): it evaluates a data command
// against the script's transaction view.
func (r *scriptRun) call(L *lua.LState, protected bool) int {
	rep := r.command(L)
	if rep.kind == kindError && !protected {
		t := statusTable(L, "err", rep.str)
		t.RawSetString("where", lua.LString(L.Where(1)))
		L.Error(t, 1)
		return 0
	}
	L.Push(replyLua(L, rep, r.resp3))
	return 1
}

var errScriptArgs = errors.New("ERR Lua redis lib command arguments must be strings or integers")

// command runs the command redis.call was given.
func (r *scriptRun) command(L *lua.LState) reply {
	n := L.GetTop()
	if n == 0 {
		return errReply(errors.New("ERR Please specify at least one argument for this redis lib call"))
	}
	// The arguments' bytes share one allocation: a command may keep an
	// argument (a value to write), not change it.
	size := 0
	for i := 1; i <= n; i++ {
		switch a := L.Get(i).(type) {
		case lua.LString:
			size += len(a)
		case lua.LNumber:
			size += maxLuaNumberLen
		default:
			return errReply(errScriptArgs)
		}
	}
	args := make([][]byte, n)
	buf := make([]byte, 0, size)
	for i := range n {
		start := len(buf)
		switch a := L.Get(i + 1).(type) {
		case lua.LString:
			buf = append(buf, a...)
		case lua.LNumber:
			buf = appendLuaNumber(buf, a)
		}
		args[i] = buf[start:len(buf):len(buf)]
	}
	v := r.v
	if v == nil {
		return errReply(errors.New("ERR redis.call is not allowed while a library loads"))
	}
	if v.failed != nil {
		return errReply(v.failed)
	}
	cmd := lookup(args[0])
	switch {
	case cmd == nil:
		return errReply(errors.New("ERR Unknown Redis command called from script"))
	case cmd.eval == nil || cmd.dynamic:
		return errReply(errors.New("ERR This Redis command is not allowed from script"))
	case !cmd.arityOK(len(args)):
		return errReply(errors.New("ERR Wrong number of args calling Redis command from script"))
	}
	if cmd.check != nil {
		if err := cmd.check(args, v.srv.e); err != nil {
			return errReply(err)
		}
	}
	keys, write := cmd.keys(args)
	if write && r.readOnly {
		return errReply(errors.New("ERR Write commands are not allowed from read-only scripts."))
	}
	if cmd.strings && v.wrongType(keys) {
		return errReply(errWrongType)
	}
	rep := cmd.eval(v, args)
	if v.failed != nil {
		return errReply(v.failed)
	}
	return rep
}

// appendLuaNumber appends a Lua number as Redis passes it to a command:
// an integer when it is one, else with 17 significant digits.
func appendLuaNumber(dst []byte, n lua.LNumber) []byte {
	f := float64(n)
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'g', 17, 64)
}

// maxLuaNumberLen is the longest appendLuaNumber appends: a sign, 17
// digits, a point and an exponent ("-1.2345678901234567e-308").
const maxLuaNumberLen = 24

// replyLua converts a command's reply to Lua as Redis does: integer to
// number, bulk to string, null to false, status to {ok=...}, error to
// {err=...}, array to a table, and a map flattened to one; after
// redis.setresp(3) (resp3), null to nil and a map to {map={...}}.
func replyLua(L *lua.LState, rep reply, resp3 bool) lua.LValue {
	switch rep.kind {
	case kindInt:
		return lua.LNumber(rep.n)
	case kindBulk:
		return lua.LString(rep.bulk)
	case kindNull:
		if resp3 {
			return lua.LNil
		}
		return lua.LFalse
	case kindSimple:
		return statusTable(L, "ok", rep.str)
	case kindError:
		return statusTable(L, "err", rep.str)
	case kindMap:
		if resp3 {
			m := L.CreateTable(0, len(rep.elems)/2)
			for i := 0; i+1 < len(rep.elems); i += 2 {
				L.SetTable(m, replyLua(L, rep.elems[i], true), replyLua(L, rep.elems[i+1], true))
			}
			t := L.CreateTable(0, 1)
			t.RawSetString("map", m)
			return t
		}
		fallthrough
	case kindArray:
		t := L.CreateTable(len(rep.elems), 0)
		for _, e := range rep.elems {
			t.Append(replyLua(L, e, resp3))
		}
		return t
	}
	return lua.LNil
}

// luaReply converts a script's result to a reply as Redis does: number to
// integer (truncated), string to bulk, true to 1, false and nil to null,
// a table with err or ok to an error or status, any other table to an
// array up to its first nil.
func luaReply(v lua.LValue) reply {
	switch x := v.(type) {
	case lua.LNumber:
		return intReply(int64(x))
	case lua.LString:
		return reply{kind: kindBulk, bulk: []byte(x)}
	case lua.LBool:
		if x {
			return intReply(1)
		}
		return nullReply
	case *lua.LTable:
		if e, ok := x.RawGetString("err").(lua.LString); ok {
			return reply{kind: kindError, str: string(e)}
		}
		if s, ok := x.RawGetString("ok").(lua.LString); ok {
			return reply{kind: kindSimple, str: string(s)}
		}
		if m, ok := x.RawGetString("map").(*lua.LTable); ok { // RESP3's map (RESP2: pairs)
			r := reply{kind: kindMap}
			m.ForEach(func(k, v lua.LValue) { r.elems = append(r.elems, luaReply(k), luaReply(v)) })
			return r
		}
		r := arrayReply(x.Len())
		for i := 1; ; i++ {
			e := x.RawGetInt(i)
			if e == lua.LNil {
				break
			}
			r.elems = append(r.elems, luaReply(e))
		}
		return r
	}
	return nullReply
}

// cmdScript answers SCRIPT LOAD, EXISTS, FLUSH, KILL and HELP.
func cmdScript(c *conn, a [][]byte) {
	sc := &c.s.scripts
	switch sub := strings.ToUpper(string(a[1])); {
	case sub == "LOAD" && len(a) == 3:
		sha, _, err := sc.compile(a[2])
		if err != nil {
			c.wr.Error(errorText(err))
			return
		}
		c.wr.BulkString(sha)
	case sub == "EXISTS" && len(a) >= 3:
		c.wr.Array(len(a) - 2)
		for _, sha := range a[2:] {
			c.wr.Int(boolInt(sc.lookup(string(sha)) != nil))
		}
	case sub == "FLUSH" && len(a) <= 3:
		sc.mu.Lock()
		sc.protos = nil
		sc.mu.Unlock()
		c.wr.Simple("OK")
	case sub == "KILL" && len(a) == 2:
		sc.mu.Lock()
		n := len(sc.running)
		for r := range sc.running {
			r.budget.kill()
		}
		sc.mu.Unlock()
		if n == 0 {
			c.wr.Error("NOTBUSY No scripts in execution right now.")
			return
		}
		c.wr.Simple("OK")
	case sub == "HELP":
		writeHelp(c, "SCRIPT", []string{
			"EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
			"FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache.",
			"KILL", "    Kill the currently executing Lua scripts (nothing they wrote is applied).",
			"LOAD <script>", "    Load a script into the scripts cache without executing it.",
		})
	default:
		c.wr.Error("ERR unknown subcommand or wrong number of arguments for '" + printable(a[1]) + "'. Try SCRIPT HELP.")
	}
}

// fetcher is txView.fetch for tx: it reads a key a script did not
// declare, locking it exclusively when the script may write (forUpdate).
// Under the transaction's hold of the database names (tryTxn).
func (s *Server) fetcher(tx *engine.Txn, forUpdate bool, v *txView) func(dk string) (*entry, error) {
	return func(dk string) (*entry, error) {
		ops := []engine.Op{dbOp(engine.OpGet, dk)}
		ops[0].ForUpdate = forUpdate
		s.dbs.toStore(ops)
		if err := tx.Run(ops); err != nil {
			return nil, err
		}
		if ops[0].Err != nil && !errors.Is(ops[0].Err, engine.ErrNotFound) {
			return nil, ops[0].Err
		}
		return viewEntry(&ops[0], v.now), nil
	}
}
