package server

// Functions: FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE, FCALL and
// FCALL_RO (issue 19). A library is Lua code starting "#!lua name=<lib>"
// that registers functions with redis.register_function; a function runs
// exactly as a script does (script.go): one serializable transaction,
// run again whole after a conflict.
//
// Invariants:
//
//  1. The libraries are stored with the data (engine.SetMeta, synced)
//     before a FUNCTION command that changes them answers, so they
//     survive a restart, as Redis keeps them in its RDB and AOF.
//  2. A library is run once at load, with nothing but
//     redis.register_function, to learn its functions; each FCALL runs it
//     again in the call's fresh Lua state, then calls the function, so a
//     retried call starts from nothing (script.go, invariant 2).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// functionsMeta is the engine.SetMeta name of the stored libraries.
const functionsMeta = "server.functions"

// library is a loaded library: its code, compiled, and its functions.
type library struct {
	name  string
	code  string
	proto *lua.FunctionProto
	funcs map[string]funcInfo
}

// funcInfo is a registered function's flags.
type funcInfo struct {
	flags []string
}

func (f funcInfo) noWrites() bool { return slices.Contains(f.flags, "no-writes") }

var errLibraryName = errors.New("ERR Missing library metadata")

// compileLibrary parses code's "#!lua name=<lib>" header, compiles it and
// runs it once, within timeLimit, to learn its functions (invariant 2).
func (sc *scripts) compileLibrary(code string, timeLimit time.Duration) (*library, error) {
	first, _, _ := strings.Cut(code, "\n")
	if !strings.HasPrefix(first, "#!") {
		return nil, errLibraryName
	}
	fields := strings.Fields(first[2:])
	if len(fields) == 0 || fields[0] != "lua" {
		return nil, fmt.Errorf("ERR Engine '%s' not found", strings.TrimPrefix(first, "#!"))
	}
	lib := &library{code: code, funcs: map[string]funcInfo{}}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != "name" {
			return nil, fmt.Errorf("ERR Invalid metadata value given: %s", f)
		}
		lib.name = v
	}
	if lib.name == "" {
		return nil, errors.New("ERR Library name was not given")
	}
	chunk, err := parse.Parse(strings.NewReader(code[len(first):]), "user_function")
	if err == nil {
		lib.proto, err = lua.Compile(chunk, "user_function")
	}
	if err != nil {
		return nil, fmt.Errorf("ERR Error compiling function: %s", oneLine(err.Error()))
	}
	st := newScriptState()
	st.run = &scriptRun{}
	defer st.L.Close()
	budget := newRunBudget(timeLimit, sc.instructions)
	st.L.SetContext(budget)
	if err := registerInto(st, lib.proto, func(name string, _ *lua.LFunction, flags []string) error {
		if _, dup := lib.funcs[name]; dup {
			return fmt.Errorf("Function %s already exists", name)
		}
		lib.funcs[name] = funcInfo{flags: flags}
		return nil
	}); err != nil {
		if stop := budget.stopped("loading library '" + lib.name + "'"); stop != nil {
			return nil, stop
		}
		return nil, fmt.Errorf("ERR Error registering functions: %s", oneLine(err.Error()))
	}
	if len(lib.funcs) == 0 {
		return nil, errors.New("ERR No functions registered")
	}
	return lib, nil
}

// registerInto runs a library's code in st with redis.register_function
// calling add.
func registerInto(st *scriptState, proto *lua.FunctionProto, add func(name string, fn *lua.LFunction, flags []string) error) error {
	L, redis := st.L, st.redis
	redis.RawSetString("register_function", L.NewFunction(func(L *lua.LState) int {
		var name string
		var fn *lua.LFunction
		var flags []string
		if t, ok := L.Get(1).(*lua.LTable); ok && L.GetTop() == 1 {
			name = lua.LVAsString(t.RawGetString("function_name"))
			fn, _ = t.RawGetString("callback").(*lua.LFunction)
			if ft, ok := t.RawGetString("flags").(*lua.LTable); ok {
				ft.ForEach(func(_, v lua.LValue) { flags = append(flags, lua.LVAsString(v)) })
			}
		} else {
			name, fn = L.CheckString(1), L.CheckFunction(2)
		}
		if name == "" || fn == nil {
			L.RaiseError("wrong arguments to redis.register_function")
		}
		if err := add(name, fn, flags); err != nil {
			L.RaiseError("%s", err.Error())
		}
		return 0
	}))
	L.Push(L.NewFunctionFromProto(proto))
	err := L.PCall(0, 0, nil)
	redis.RawSetString("register_function", lua.LNil) // a library's, not a script's
	return err
}

// findFunction returns the library holding function name.
func (sc *scripts) findFunction(name string) (*library, funcInfo, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, lib := range sc.libs {
		if f, ok := lib.funcs[name]; ok {
			return lib, f, true
		}
	}
	return nil, funcInfo{}, false
}

// encodeLibraries is the stored form of libs (and FUNCTION DUMP's
// payload): uvarint count, then each library's code with its uvarint
// length, in name order.
func encodeLibraries(libs map[string]*library) []byte {
	names := make([]string, 0, len(libs))
	for n := range libs {
		names = append(names, n)
	}
	slices.Sort(names)
	b := binary.AppendUvarint(nil, uint64(len(names)))
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(libs[n].code)))
		b = append(b, libs[n].code...)
	}
	return b
}

// decodeLibraries parses encodeLibraries' output and compiles each.
func (sc *scripts) decodeLibraries(b []byte) (map[string]*library, error) {
	libs := map[string]*library{}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errors.New("ERR payload is not a function dump")
	}
	b = b[k:]
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, errors.New("ERR payload is not a function dump")
		}
		lib, err := sc.compileLibrary(string(b[k:k+int(l)]), scriptTimeLimit)
		if err != nil {
			return nil, err
		}
		libs[lib.name] = lib
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, errors.New("ERR payload is not a function dump")
	}
	return libs, nil
}

// setLibraries stores libs, then makes them the loaded ones (invariant 1);
// under sc.libMu.
func (s *Server) setLibraries(libs map[string]*library) error {
	if err := s.e.SetMeta(functionsMeta, encodeLibraries(libs)); err != nil {
		return fmt.Errorf("ERR the functions could not be stored: %v", err)
	}
	s.scripts.mu.Lock()
	s.scripts.libs = libs
	s.scripts.mu.Unlock()
	return nil
}

// loadLibraries reads the stored libraries at start (none: an empty set,
// never nil, so that maps.Clone of it can be added to).
func (s *Server) loadLibraries() error {
	s.scripts.libs = map[string]*library{}
	b, err := s.e.Meta(functionsMeta)
	if err != nil || b == nil {
		return err
	}
	libs, err := s.scripts.decodeLibraries(b)
	if err != nil {
		return fmt.Errorf("bpfdb: server: the stored functions: %v", err)
	}
	s.scripts.libs = libs // before the server serves: nothing reads them yet
	return nil
}

func functionCommands() []*command {
	return []*command{
		{name: "fcall", arity: -3, keys: scriptKeys(false), check: checkScript(false), dynamic: true,
			flags: []string{"noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}, eval: evalFunction(false)},
		{name: "fcall_ro", arity: -3, keys: scriptKeys(true), check: checkScript(false), dynamic: true,
			flags: []string{"readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}, eval: evalFunction(true)},
		{name: "function", arity: -2, run: cmdFunction, flags: []string{"noscript"}},
	}
}

// evalFunction is FCALL (FCALL_RO: ro) of a registered function.
func evalFunction(ro bool) func(v *txView, a [][]byte) reply {
	return func(v *txView, a [][]byte) reply {
		sc := &v.srv.scripts
		lib, f, ok := sc.findFunction(string(a[1]))
		if !ok {
			return errReply(errors.New("ERR Function not found"))
		}
		if ro && !f.noWrites() {
			return errReply(errors.New("ERR Can not execute a script with write flag using *_ro command."))
		}
		n := numKeys(a)
		keys, argv := a[3:3+n], a[3+n:]
		r := &scriptRun{v: v, readOnly: ro || f.noWrites(), sha: lib.name + "." + string(a[1])}
		return r.run(sc, func(st *scriptState) error {
			L := st.L
			var fn *lua.LFunction
			err := registerInto(st, lib.proto, func(name string, g *lua.LFunction, _ []string) error {
				if name == string(a[1]) {
					fn = g
				}
				return nil
			})
			if err != nil {
				return err
			}
			L.Push(fn)
			L.Push(stringsTable(L, keys))
			L.Push(stringsTable(L, argv))
			return L.PCall(2, 1, nil)
		})
	}
}

// cmdFunction answers FUNCTION LOAD, LIST, DELETE, FLUSH, DUMP, RESTORE
// and HELP.
func cmdFunction(c *conn, a [][]byte) {
	sc := &c.s.scripts
	sub := strings.ToUpper(string(a[1]))
	switch {
	case sub == "LOAD" && (len(a) == 3 || len(a) == 4 && strings.EqualFold(string(a[2]), "REPLACE")):
		lib, err := sc.compileLibrary(string(a[len(a)-1]), libraryLoadTimeLimit)
		if err != nil {
			c.wr.Error(err.Error())
			return
		}
		sc.libMu.Lock()
		defer sc.libMu.Unlock()
		if _, exists := sc.libs[lib.name]; exists && len(a) == 3 {
			c.wr.Error("ERR Library '" + lib.name + "' already exists")
			return
		}
		next := maps.Clone(sc.libs)
		delete(next, lib.name)
		for fname := range lib.funcs {
			for _, other := range next {
				if _, dup := other.funcs[fname]; dup {
					c.wr.Error("ERR Function " + fname + " already exists")
					return
				}
			}
		}
		next[lib.name] = lib
		if err := c.s.setLibraries(next); err != nil {
			c.wr.Error(err.Error())
			return
		}
		c.wr.BulkString(lib.name)
	case sub == "DELETE" && len(a) == 3:
		sc.libMu.Lock()
		defer sc.libMu.Unlock()
		if _, ok := sc.libs[string(a[2])]; !ok {
			c.wr.Error("ERR Library not found")
			return
		}
		next := maps.Clone(sc.libs)
		delete(next, string(a[2]))
		if err := c.s.setLibraries(next); err != nil {
			c.wr.Error(err.Error())
			return
		}
		c.wr.Simple("OK")
	case sub == "FLUSH" && len(a) <= 3:
		sc.libMu.Lock()
		defer sc.libMu.Unlock()
		if err := c.s.setLibraries(map[string]*library{}); err != nil {
			c.wr.Error(err.Error())
			return
		}
		c.wr.Simple("OK")
	case sub == "DUMP" && len(a) == 2:
		sc.mu.Lock()
		b := encodeLibraries(sc.libs)
		sc.mu.Unlock()
		c.wr.Bulk(b)
	case sub == "RESTORE" && (len(a) == 3 || len(a) == 4):
		restoreFunctions(c, a)
	case sub == "LIST":
		listFunctions(c, a)
	case sub == "HELP":
		writeHelp(c, "FUNCTION", []string{
			"LOAD [REPLACE] <FUNCTION CODE>", "    Create a new library with the given library name and code.",
			"DELETE <LIBRARY NAME>", "    Delete the given library.",
			"LIST [LIBRARYNAME PATTERN] [WITHCODE]", "    Return general information on all the libraries.",
			"FLUSH [ASYNC|SYNC]", "    Delete all the libraries.",
			"DUMP", "    Return a serialized payload representing the current libraries.",
			"RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]", "    Restore the libraries represented by the given payload.",
		})
	default:
		c.wr.Error("ERR unknown subcommand or wrong number of arguments for '" + printable(a[1]) + "'. Try FUNCTION HELP.")
	}
}

// restoreFunctions is FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE].
func restoreFunctions(c *conn, a [][]byte) {
	policy := "APPEND"
	if len(a) == 4 {
		policy = strings.ToUpper(string(a[3]))
	}
	if policy != "FLUSH" && policy != "APPEND" && policy != "REPLACE" {
		c.wr.Error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
		return
	}
	libs, err := c.s.scripts.decodeLibraries(a[2])
	if err != nil {
		c.wr.Error(err.Error())
		return
	}
	sc := &c.s.scripts
	sc.libMu.Lock()
	defer sc.libMu.Unlock()
	next := map[string]*library{}
	if policy != "FLUSH" {
		next = maps.Clone(sc.libs)
	}
	for name, lib := range libs {
		if _, exists := next[name]; exists && policy == "APPEND" {
			c.wr.Error("ERR Library " + name + " already exists")
			return
		}
		next[name] = lib
	}
	if err := c.s.setLibraries(next); err != nil {
		c.wr.Error(err.Error())
		return
	}
	c.wr.Simple("OK")
}

// listFunctions is FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
func listFunctions(c *conn, a [][]byte) {
	pattern, withCode := "", false
	for i := 2; i < len(a); i++ {
		switch strings.ToUpper(string(a[i])) {
		case "WITHCODE":
			withCode = true
		case "LIBRARYNAME":
			if i+1 >= len(a) {
				c.wr.Error(errSyntax.Error())
				return
			}
			i++
			pattern = string(a[i])
		default:
			c.wr.Error("ERR Unknown argument " + printable(a[i]))
			return
		}
	}
	sc := &c.s.scripts
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var libs []*library
	for _, lib := range sc.libs {
		if pattern == "" || globMatch([]byte(pattern), []byte(lib.name)) {
			libs = append(libs, lib)
		}
	}
	slices.SortFunc(libs, func(x, y *library) int { return strings.Compare(x.name, y.name) })
	c.wr.Array(len(libs))
	for _, lib := range libs {
		c.wr.Map(3 + int(boolInt(withCode)))
		c.wr.BulkString("library_name")
		c.wr.BulkString(lib.name)
		c.wr.BulkString("engine")
		c.wr.BulkString("LUA")
		c.wr.BulkString("functions")
		names := make([]string, 0, len(lib.funcs))
		for n := range lib.funcs {
			names = append(names, n)
		}
		slices.Sort(names)
		c.wr.Array(len(names))
		for _, n := range names {
			c.wr.Map(3)
			c.wr.BulkString("name")
			c.wr.BulkString(n)
			c.wr.BulkString("description")
			c.wr.Null()
			c.wr.BulkString("flags")
			c.wr.Array(len(lib.funcs[n].flags))
			for _, f := range lib.funcs[n].flags {
				c.wr.BulkString(f)
			}
		}
		if withCode {
			c.wr.BulkString("library_code")
			c.wr.BulkString(lib.code)
		}
	}
}
