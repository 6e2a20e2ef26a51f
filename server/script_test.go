package server

// Scripts (script.go): Redis's answers through go-redis (also against
// redis-server), a script as one transaction (all or nothing, undeclared
// keys, inside MULTI), a bank of concurrent transfer scripts that conserves
// its total and never shows a conflict, and SCRIPT KILL.

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/redis/go-redis/v9"
)

func TestScriptCommands(t *testing.T) {
	ts := startServer(t, Config{}, false)
	setGet := "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"
	steps := []step{
		{a("EVAL", "return 1", "0"), 1, nil},
		{a("EVAL", "return 3.99", "0"), 3, nil},
		{a("EVAL", "return 'hi'", "0"), "hi", nil},
		{a("EVAL", "return true", "0"), 1, nil},
		{a("EVAL", "return false", "0"), isNil{}, nil},
		{a("EVAL", "return nil", "0"), isNil{}, nil},
		{a("EVAL", "return {1, 'two', {3}, nil, 5}", "0"), []any{int64(1), "two", []any{int64(3)}}, nil},
		{a("EVAL", "return {KEYS[1], KEYS[2], ARGV[1]}", "2", "sc:a", "sc:b", "x"), []any{"sc:a", "sc:b", "x"}, nil},
		{a("EVAL", setGet, "1", "sc:k", "v1"), "v1", nil},
		{a("GET", "sc:k"), "v1", nil},
		{a("EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", "sc:n", "5"), 5, nil},
		{a("EVAL", "return redis.call('GET', 'sc:undeclared')", "0"), isNil{}, nil},
		{a("EVAL", "redis.call('SET', 'sc:undeclared', 7); return redis.call('INCR', 'sc:undeclared')", "0"), 8, nil},
		{a("EVAL", "return redis.status_reply('FINE')", "0"), "FINE", nil},
		{a("EVAL", "return redis.error_reply('MY failure')", "0"), errPrefix("MY failure"), nil},
		{a("EVAL", "return redis.sha1hex('')", "0"), "da39a3ee5e6b4b0d3255bfef95601890afd80709", nil},
		{a("EVAL", "return redis.pcall('INCR', KEYS[1])['err']", "1", "sc:k"), "ERR value is not an integer or out of range", nil},
		{a("EVAL", "return redis.call('INCR', KEYS[1])", "1", "sc:k"), errPrefix("ERR value is not an integer or out of range"), nil},
		{a("EVAL", "return {redis.call('SET', KEYS[1], 'x')}", "1", "sc:k"), []any{"OK"}, nil},
		{a("HSET", "sc:h", "f", "v"), 1, nil},
		{a("EVAL", "return redis.call('GET', KEYS[1])", "1", "sc:h"), errPrefix("WRONGTYPE"), nil},
		{a("EVAL", "return redis.call('HGETALL', KEYS[1])", "1", "sc:h"), []any{"f", "v"}, nil},
		{a("EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])['map']['f']", "1", "sc:h"), "v", nil},
		{a("EVAL", "redis.setresp(3); return redis.call('GET', 'sc:nokey') == nil", "0"), 1, nil},
		{a("EVAL", "return redis.call('GET', 'sc:nokey') == false", "0"), 1, nil},
		{a("EVAL", "return {map={only='one'}}", "0"), []any{"only", "one"}, nil},
		{a("EVAL", "redis.setresp(4)", "0"), errLike{prefix: "ERR", contains: "RESP version must be 2 or 3"}, nil},
		{a("EVAL", "return redis.call('SET', KEYS[1], 1.5)", "1", "sc:f"), "OK", nil},
		{a("GET", "sc:f"), "1.5", nil},
		{a("EVAL", "return redis.call('NOSUCH')", "0"), errLike{prefix: "ERR", contains: "unknown"}, nil},
		{a("EVAL", "return redis.call('SET', KEYS[1], {})", "1", "sc:f"), errPrefix("ERR Lua redis lib command arguments must be strings or integers"), nil},
		{a("EVAL", "return 1 +", "0"), errPrefix("ERR Error compiling script"), nil},
		{a("EVAL", "error('boom')", "0"), errLike{prefix: "ERR", contains: "boom"}, nil},
		{a("EVAL", "leaked = 1", "0"), errLike{prefix: "ERR", contains: "Attempt to modify a readonly table"}, nil},
		{a("EVAL", "return leaked", "0"), errLike{prefix: "ERR", contains: "Script attempted to access nonexistent global variable 'leaked'"}, nil},
		{a("EVAL", "return type(arg)", "0"), errLike{prefix: "ERR", contains: "Script attempted to access nonexistent global variable 'arg'"}, nil},
		{a("EVAL", "return select('#', ...)", "0"), 0, nil},
		{a("EVAL", "local function f(...) return arg.n end return f(1, 2)", "0"), 2, nil},
		// Libraries are read-only too (Redis 7), and nothing a run does
		// reaches the next one, whose Lua state may be the same.
		{a("EVAL", "string.len = nil", "0"), errLike{prefix: "ERR", contains: "Attempt to modify a readonly table"}, nil},
		{a("EVAL", "redis.call = function() return 1 end", "0"), errLike{prefix: "ERR", contains: "Attempt to modify a readonly table"}, nil},
		{a("EVAL", "redis = {call = function() return 'evil' end}", "0"), errLike{prefix: "ERR", contains: "Attempt to modify a readonly table"}, nil},
		{a("EVAL", "_G.tostring = nil", "0"), errLike{prefix: "ERR", contains: "Attempt to modify a readonly table"}, nil},
		{a("EVAL", "setmetatable(0, {__index = function() return 'evil' end})", "0"), errLike{prefix: "ERR", contains: "table expected"}, nil},
		{a("EVAL", "setmetatable(_G, nil)", "0"), errLike{prefix: "ERR"}, nil},
		{a("EVAL", "pcall(table.insert, _G, 0, 'x'); return {tostring(1), type(redis.call)}", "0"), []any{"1", "function"}, nil},
		{a("EVAL", "return {rawget(_G, 0) == nil, tostring(2)}", "0"), []any{int64(1), "2"}, nil},
		{a("EVAL", "rawset(_G, 'leaked', 1)", "0"), errLike{prefix: "ERR", contains: "Attempt to modify a readonly table"}, nil},
		{a("EVAL", "rawset(math, 'pi', 3)", "0"), errLike{prefix: "ERR", contains: "Attempt to modify a readonly table"}, nil},
		{a("EVAL", "pcall(table.insert, math, 'x'); pcall(table.insert, _G, 'y'); return 1", "0"), 1, nil},
		{a("EVAL", "return {math[1] == nil, rawget(_G, 1) == nil, ('ab'):upper(), string.len('abc')}", "0"), []any{int64(1), int64(1), "AB", int64(3)}, nil},
		{a("EVAL", "return {math[1] == nil, rawget(_G, 1) == nil}", "0"), []any{int64(1), int64(1)}, nil},
		{a("EVAL", "local x = 1\n\nerror('on line three')", "0"), errLike{prefix: "ERR", contains: "on @user_script:3."}, nil},
		{a("EVAL", "local x = 1\nreturn redis.call('INCR', KEYS[1])", "1", "sc:k"), errLike{prefix: "ERR value is not an integer", contains: "on @user_script:2."}, nil},
		{a("EVAL", "return 1", "-1"), errPrefix("ERR Number of keys can't be negative"), nil},
		{a("EVAL", "return 1", "2", "only"), errPrefix("ERR Number of keys can't be greater than number of args"), nil},
		{a("EVAL", "return 1", "x"), errPrefix("ERR value is not an integer or out of range"), nil},
		// EVAL_RO reads, and refuses writes.
		{a("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "sc:f"), "1.5", nil},
		{a("EVAL_RO", "return redis.call('SET', KEYS[1], 'no')", "1", "sc:f"), errLike{prefix: "ERR", contains: "Write commands are not allowed from read-only scripts"}, nil},
		// The script cache.
		{a("SCRIPT", "LOAD", "return ARGV[1]"), "098e0f0d1448c0a81dafe820f66d460eb09263da", nil},
		{a("EVALSHA", "098e0f0d1448c0a81dafe820f66d460eb09263da", "0", "from cache"), "from cache", nil},
		{a("EVALSHA_RO", "098E0F0D1448C0A81DAFE820F66D460EB09263DA", "0", "upper"), "upper", nil},
		{a("SCRIPT", "EXISTS", "098e0f0d1448c0a81dafe820f66d460eb09263da", "ffffffffffffffffffffffffffffffffffffffff"), []any{int64(1), int64(0)}, nil},
		{a("SCRIPT", "FLUSH"), "OK", nil},
		{a("EVALSHA", "098e0f0d1448c0a81dafe820f66d460eb09263da", "0", "x"), errPrefix("NOSCRIPT"), nil},
		{a("SCRIPT", "KILL"), errPrefix("NOTBUSY"), nil},
		{a("SCRIPT", "NOPE"), errPrefix("ERR unknown subcommand"), nil},
	}
	runSteps(t, ts, ts.conn(t), steps)
}

// A script is one transaction: an error after a write applies nothing
// (Redis keeps the write); inside MULTI it runs in its place.
func TestScriptTransaction(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 10*time.Second)
	c := ts.conn(t)
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "st:a", "1", 0)
		p.Eval(ctx, "return redis.call('INCR', KEYS[1]) + redis.call('INCR', 'st:b')", []string{"st:a"})
		p.Get(ctx, "st:b")
		return nil
	})
	if err != nil || len(cmds) != 3 || cmds[1].(*redis.Cmd).Val() != int64(3) || cmds[2].(*redis.StringCmd).Val() != "1" {
		t.Fatalf("EVAL inside MULTI: %v %v", cmds, err)
	}
	if ts.redis {
		return
	}
	err = c.Eval(ctx, "redis.call('SET', KEYS[1], 'partial'); error('after a write')", []string{"st:p"}).Err()
	if err == nil || !strings.Contains(err.Error(), "after a write") {
		t.Fatalf("a script that fails: %v", err)
	}
	if n := c.Exists(ctx, "st:p").Val(); n != 0 {
		t.Fatal("a script that failed after a write left the write")
	}
	// More keys than a transaction holds: refused, naming the limit,
	// nothing applied.
	limit := strconv.Itoa(engine.MaxTxnKeys)
	err = c.Eval(ctx, "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'st:many:' .. i, i) end", nil, engine.MaxTxnKeys+1).Err()
	if err == nil || !strings.Contains(err.Error(), limit) {
		t.Fatalf("a script writing %d keys: %v, want an error naming %s", engine.MaxTxnKeys+1, err, limit)
	}
	if n := c.Exists(ctx, "st:many:1").Val(); n != 0 {
		t.Fatal("a script over the key limit applied a write")
	}
	// go-redis's own script calls.
	sha, err := c.ScriptLoad(ctx, "return redis.call('INCRBY', KEYS[1], ARGV[1])").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.EvalSha(ctx, sha, []string{"st:sha"}, 7).Int(); n != 7 || err != nil {
		t.Fatalf("EvalSha: %d, %v", n, err)
	}
	if ok, err := c.ScriptExists(ctx, sha).Result(); err != nil || len(ok) != 1 || !ok[0] {
		t.Fatalf("ScriptExists: %v, %v", ok, err)
	}
}

// Concurrent transfer scripts over a bank of accounts, reading and
// writing keys they do not all declare, conserve the total, and no client
// sees a conflict: each script is retried whole.
func TestScriptBankTransfers(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 90*time.Second)
	const accounts, clients, each = 8, 8, 60
	setup := ts.client(t)
	for i := range accounts {
		setup.Set(ctx, fmt.Sprint("bank:", i), 100, 0)
	}
	// The source is declared, the destination is not.
	transfer := redis.NewScript(`
local from = tonumber(redis.call('GET', KEYS[1]))
local amount = tonumber(ARGV[2])
if from < amount then return 0 end
local to = tonumber(redis.call('GET', ARGV[1]))
redis.call('SET', KEYS[1], from - amount)
redis.call('SET', ARGV[1], to + amount)
return 1`)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.client(t)
			for i := range each {
				from, to := (w+i)%accounts, (w+3*i+1)%accounts
				if from == to {
					continue
				}
				if err := transfer.Run(ctx, c, []string{fmt.Sprint("bank:", from)}, fmt.Sprint("bank:", to), 1+i%7).Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a transfer script failed: %v", err)
	}
	total := 0
	for i := range accounts {
		n, _ := strconv.Atoi(setup.Get(ctx, fmt.Sprint("bank:", i)).Val())
		total += n
	}
	if total != accounts*100 {
		t.Fatalf("the accounts hold %d, want %d", total, accounts*100)
	}
}

// Patterns Redis users run as scripts: a fixed-window rate limiter and a
// lock released only by its owner.
func TestScriptPatterns(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 10*time.Second)
	c := ts.client(t)
	limiter := redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return 1`)
	allowed := 0
	for range 8 {
		ok, err := limiter.Run(ctx, c, []string{"rl:user"}, 5, 60000).Int()
		if err != nil {
			t.Fatal(err)
		}
		allowed += ok
	}
	if allowed != 5 {
		t.Errorf("the rate limiter allowed %d of 8 with a limit of 5", allowed)
	}
	if ttl := c.PTTL(ctx, "rl:user").Val(); ttl <= 0 {
		t.Errorf("the limiter's window has no deadline: %v", ttl)
	}
	release := redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	c.Set(ctx, "lock:job", "owner-a", 0)
	if n, _ := release.Run(ctx, c, []string{"lock:job"}, "owner-b").Int(); n != 0 || c.Exists(ctx, "lock:job").Val() != 1 {
		t.Errorf("another owner released the lock")
	}
	if n, _ := release.Run(ctx, c, []string{"lock:job"}, "owner-a").Int(); n != 1 || c.Exists(ctx, "lock:job").Val() != 0 {
		t.Errorf("the owner could not release the lock")
	}
}

// SCRIPT KILL stops a running script, whose write is not applied, while
// other clients are served meanwhile.
func TestScriptKill(t *testing.T) {
	ts := startServer(t, Config{}, false)
	if ts.redis {
		t.Skip("bpfdb's kill: Redis blocks every client and refuses to kill a script that wrote")
	}
	ctx := testCtx(t, 20*time.Second)
	c, other := ts.client(t), ts.client(t)
	done := make(chan error, 1)
	go func() {
		done <- c.Eval(ctx, "redis.call('SET', KEYS[1], 'x'); while true do end", []string{"sk:k"}).Err()
	}()
	if !waitFor(5*time.Second, func() bool { return other.Do(ctx, "SCRIPT", "KILL").Err() == nil }) {
		t.Fatal("SCRIPT KILL never found the script running")
	}
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the killed script answered %v", err)
	}
	if other.Exists(ctx, "sk:k").Val() != 0 {
		t.Fatal("the killed script's write was applied")
	}
}

// A script's instructions are bounded as well as its time, and so is a
// library's load: each is stopped with its limit named, nothing applied.
func TestScriptBounds(t *testing.T) {
	// A lower limit than the default, which the race detector's Lua
	// takes longer than the time limit to reach.
	const limit = 2_000_000
	ts := startServer(t, Config{ScriptInstructionLimit: limit}, false)
	if ts.redis {
		t.Skip("bpfdb's bounds: Redis answers BUSY to every other client until SCRIPT KILL")
	}
	ctx := testCtx(t, 20*time.Second)
	c := ts.client(t)
	err := c.Eval(ctx, "redis.call('SET', KEYS[1], 'x'); while true do end", []string{"sb:k"}).Err()
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(limit)+" Lua instructions") {
		t.Fatalf("an endless script answered %v, want an error naming %d instructions", err, limit)
	}
	if c.Exists(ctx, "sb:k").Val() != 0 {
		t.Fatal("the stopped script's write was applied")
	}
	if got, err := c.Eval(ctx, "local n = 0 for i = 1, 100000 do n = n + i end return n", nil).Int64(); err != nil || got != 5000050000 {
		t.Fatalf("a bounded loop: %v, %v", got, err)
	}
	err = c.FunctionLoad(ctx, "#!lua name=spin\nwhile true do end").Err()
	if err == nil || !strings.Contains(err.Error(), "loading library 'spin'") {
		t.Fatalf("loading an endless library answered %v", err)
	}
}

// A script longer than the event loop lets one run (inlineScriptTime,
// inlineScriptInstructions) stops there with nothing applied and runs
// again on a goroutine: its write is applied once, and it counts as one
// call.
func TestScriptOutrunsLoop(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 60*time.Second)
	c := ts.client(t)
	long := "local n = redis.call('INCR', KEYS[1]) local s = 0 for i = 1, 200000 do s = s + i end return n"
	for want := int64(1); want <= 3; want++ {
		if got, err := c.Eval(ctx, long, []string{"lo:n"}).Int64(); err != nil || got != want {
			t.Fatalf("run %d of the long script answered %v, %v", want, got, err)
		}
	}
	if got, err := c.Get(ctx, "lo:n").Int64(); err != nil || got != 3 {
		t.Fatalf("after three runs lo:n is %v, %v; want 3", got, err)
	}
	if info := c.Info(ctx, "commandstats").Val(); !strings.Contains(info, "cmdstat_eval:calls=3,") {
		t.Fatalf("three EVALs, INFO commandstats says:\n%s", info)
	}
	if ts.redis {
		return
	}
	samples, _ := scrape(t, ts.srv.MetricsHandler())
	handedOver := sumWhere(samples, func(s sample) bool {
		return s.name == "bpfdb_loop_txns_total" && strings.Contains(s.labels, `outcome="handed_over"`)
	})
	if handedOver < 1 {
		t.Fatalf("the long script was never begun in the event loop and handed over (bpfdb_loop_txns_total{outcome=\"handed_over\"} = %v)", handedOver)
	}
}

const testLibrary = `#!lua name=bank
local function move(keys, args)
  local from = tonumber(redis.call('GET', keys[1]) or '0')
  redis.call('SET', keys[1], from - args[1])
  return redis.call('INCRBY', keys[2], args[1])
end
local function balance(keys, args)
  return redis.call('GET', keys[1])
end
redis.register_function('move', move)
redis.register_function{function_name='balance', callback=balance, flags={'no-writes'}}
`

func TestFunctions(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.conn(t)
	steps := []step{
		{a("FUNCTION", "FLUSH"), "OK", nil},
		{a("FUNCTION", "LOAD", testLibrary), "bank", nil},
		{a("FUNCTION", "LOAD", testLibrary), errPrefix("ERR Library 'bank' already exists"), nil},
		{a("FUNCTION", "LOAD", "REPLACE", testLibrary), "bank", nil},
		{a("SET", "fn:a", "10"), "OK", nil},
		{a("FCALL", "move", "2", "fn:a", "fn:b", "4"), 4, nil},
		{a("FCALL_RO", "balance", "1", "fn:a"), "6", nil},
		{a("FCALL_RO", "move", "2", "fn:a", "fn:b", "1"), errPrefix("ERR Can not execute a script with write flag using *_ro command."), nil},
		{a("FCALL", "nosuch", "0"), errPrefix("ERR Function not found"), nil},
		{a("FUNCTION", "LOAD", "return 1"), errPrefix("ERR Missing library metadata"), nil},
		{a("FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"), errPrefix("ERR No functions registered"), nil},
		{a("FUNCTION", "LIST"), func(v any) error {
			if s := fmt.Sprint(v); !strings.Contains(s, "library_name bank") || !strings.Contains(s, "no-writes") {
				return fmt.Errorf("FUNCTION LIST lacks bank's functions: %s", s)
			}
			return nil
		}, nil},
		{a("FUNCTION", "DELETE", "bank"), "OK", nil},
		{a("FCALL", "move", "2", "fn:a", "fn:b", "4"), errPrefix("ERR Function not found"), nil},
		{a("FUNCTION", "DELETE", "bank"), errPrefix("ERR Library not found"), nil},
	}
	runSteps(t, ts, c, steps)
	if ts.redis {
		return
	}
	// DUMP and RESTORE.
	ctx := testCtx(t, 10*time.Second)
	mustDo(t, c, "bank", "FUNCTION", "LOAD", testLibrary)
	dump, err := c.Do(ctx, "FUNCTION", "DUMP").Text()
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, c, "OK", "FUNCTION", "FLUSH")
	mustDo(t, c, "OK", "FUNCTION", "RESTORE", dump)
	mustDo(t, c, errPrefix("ERR Library bank already exists"), "FUNCTION", "RESTORE", dump)
	mustDo(t, c, "OK", "FUNCTION", "RESTORE", dump, "REPLACE")
	mustDo(t, c, int64(5), "FCALL", "move", "2", "fn:c", "fn:d", "5")
}

// Functions are stored with the data: they survive a restart.
func TestFunctionsDurable(t *testing.T) {
	ts := startServer(t, Config{}, true)
	if ts.redis {
		t.Skip("bpfdb's restart")
	}
	c := ts.raw(t)
	c.do(t, "FUNCTION", "LOAD", testLibrary)
	ts = ts.restart(t)
	c = ts.raw(t)
	if got := c.do(t, "FCALL", "move", "2", "fd:a", "fd:b", "2"); got != int64(2) {
		t.Fatalf("FCALL after a restart: %#v", got)
	}
}
