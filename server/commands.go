package server

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/bpfdb/bpfdb/engine"
)

// command is one entry of the command table.
type command struct {
	name string
	// arity counts the name: n > 0 exactly n arguments, n < 0 at least -n.
	arity int
	// keys returns the keys the command reads and writes (data commands),
	// in the connection's database; otherDB, if set, a key it writes in
	// another (COPY ... DB, MOVE), when it names one.
	keys    func(args [][]byte) (keys [][]byte, write bool)
	otherDB func(args [][]byte) (db int, key []byte, ok bool)
	// fast, if set, gathers the command as one autocommit op when it can
	// (and reports whether it did).
	fast func(c *conn, args [][]byte) bool
	// eval runs a data command against a transaction's view (txn.go).
	eval func(v *txView, args [][]byte) reply
	// strings: the command's keys hold strings; it answers WRONGTYPE,
	// without running, when one holds another type.
	strings bool
	// dynamic: the command may touch keys keys does not name (a script):
	// its transaction reads them as it goes (txView.fetch).
	dynamic bool
	// check validates a data command's arguments against the engine's
	// limits before it runs or is queued.
	check func(args [][]byte, lim limits) error
	// run executes a command that is not a data command.
	run func(c *conn, args [][]byte)
	// noAuth: allowed before AUTH. multiControl: runs at once inside MULTI
	// (MULTI, EXEC, DISCARD, WATCH...). queueable: a non-data command
	// that may be queued in MULTI (PING, ECHO, SELECT, DBSIZE, INFO,
	// LASTSAVE); it runs, in its place, after the transaction commits.
	noAuth, multiControl, queueable bool
	// pure: run's reply depends on nothing but the arguments and the
	// connection's protocol (PING, ECHO), so the event loop answers it
	// itself (conn.runPure) rather than handing the connection over.
	pure bool
	// flags, group and firstKey/lastKey/step describe it to COMMAND
	// (group: "string" for other data commands, "server" for the rest).
	group                   string
	flags                   []string
	firstKey, lastKey, step int
	// id indexes the server's statistics of the command (Server.cmdStats).
	id int
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// commands is the command table, by lower-case name.
var commands = map[string]*command{}

func init() {
	for _, cmd := range dataCommands() {
		commands[cmd.name] = cmd
	}
	for _, cmd := range adminCommands() {
		commands[cmd.name] = cmd
	}
	for _, cmd := range keyspaceCommands() {
		commands[cmd.name] = cmd
	}
	for _, cmd := range expireCommands() {
		commands[cmd.name] = cmd
	}
	for _, cmd := range statsCommands() {
		commands[cmd.name] = cmd
	}
	for _, cmd := range trackingCommands() {
		commands[cmd.name] = cmd
	}
	for _, cmd := range append(scriptCommands(), functionCommands()...) {
		cmd.group = "scripting"
		commands[cmd.name] = cmd
	}
	for _, cmd := range hashCommands() {
		cmd.group = "hash"
		commands[cmd.name] = cmd
	}
	id := 0
	for _, cmd := range commands {
		cmd.id = id
		id++
	}
}

// lookup finds a command by name, in any case, without allocating.
func lookup(name []byte) *command {
	if len(name) > 32 {
		return nil
	}
	var buf [32]byte
	lower := buf[:len(name)]
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	return commands[string(lower)]
}

// Key extractors.
func firstKey(args [][]byte) [][]byte { return args[1:2] }
func allKeys(args [][]byte) [][]byte  { return args[1:] }
func pairKeys(args [][]byte) [][]byte {
	keys := make([][]byte, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		keys = append(keys, args[i])
	}
	return keys
}

func reads(f func([][]byte) [][]byte) func([][]byte) ([][]byte, bool) {
	return func(args [][]byte) ([][]byte, bool) { return f(args), false }
}

func writes(f func([][]byte) [][]byte) func([][]byte) ([][]byte, bool) {
	return func(args [][]byte) ([][]byte, bool) { return f(args), true }
}

// limits is what a command's check needs of the engine.
type limits interface {
	CheckKey(key []byte) error
	MaxValueLen() int
}

// checkKeys validates the keys of a command (and its values, for writes).
func checkKeys(keys func([][]byte) [][]byte, valueArgs ...int) func([][]byte, limits) error {
	return func(args [][]byte, lim limits) error {
		for _, k := range keys(args) {
			if err := lim.CheckKey(k); err != nil {
				return err
			}
		}
		for _, i := range valueArgs {
			if i < len(args) {
				if err := checkValueLen(len(args[i]), lim.MaxValueLen()); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// checkValueLen refuses a value of n bytes when the engine takes at most
// maxValue (its MaxValueLen), as the engine would (engine.ErrValueTooLarge,
// naming the limit), without a value of that length to show it: an
// APPEND or SETRANGE is refused before it builds its result.
func checkValueLen(n, maxValue int) error {
	if n <= maxValue {
		return nil
	}
	return fmt.Errorf("%w: value is %d bytes, the limit is %d (Options.MaxValueLen, --max-value-len)", engine.ErrValueTooLarge, n, maxValue)
}

var errSyntax = errors.New("ERR syntax error")

func dataCommands() []*command {
	return []*command{
		{name: "get", strings: true, arity: 2, keys: reads(firstKey), flags: []string{"readonly", "fast"},
			fast: func(c *conn, a [][]byte) bool { return c.gather(replyValue, engine.Op{Kind: engine.OpGet, Key: a[1]}) },
			eval: func(v *txView, a [][]byte) reply { return v.getReply(a[1]) }},
		{name: "strlen", strings: true, arity: 2, keys: reads(firstKey), flags: []string{"readonly", "fast"},
			fast: func(c *conn, a [][]byte) bool { return c.gather(replyLength, engine.Op{Kind: engine.OpGet, Key: a[1]}) },
			eval: func(v *txView, a [][]byte) reply { val, _ := v.get(a[1]); return intReply(int64(len(val))) }},
		{name: "exists", arity: -2, keys: reads(allKeys), flags: []string{"readonly", "fast"},
			fast: func(c *conn, a [][]byte) bool {
				return len(a) == 2 && c.gather(replyCount, engine.Op{Kind: engine.OpGet, Key: a[1]})
			},
			eval: func(v *txView, a [][]byte) reply {
				n := 0
				for _, k := range a[1:] {
					if _, ok := v.get(k); ok {
						n++
					}
				}
				return intReply(int64(n))
			}},
		{name: "mget", arity: -2, keys: reads(allKeys), flags: []string{"readonly", "fast"},
			eval: func(v *txView, a [][]byte) reply {
				r := arrayReply(len(a) - 1)
				for _, k := range a[1:] {
					r.elems = append(r.elems, v.getReply(k))
				}
				return r
			}},
		{name: "set", arity: -3, keys: writes(firstKey), check: checkSet, flags: []string{"write", "denyoom"},
			fast: fastSet, eval: evalSet},
		{name: "setnx", arity: 3, keys: writes(firstKey), check: checkKeys(firstKey, 2), flags: []string{"write", "denyoom", "fast"},
			eval: func(v *txView, a [][]byte) reply {
				if _, ok := v.get(a[1]); ok {
					return intReply(0)
				}
				v.set(a[1], a[2])
				return intReply(1)
			}},
		{name: "getset", strings: true, arity: 3, keys: writes(firstKey), check: checkKeys(firstKey, 2), flags: []string{"write", "denyoom", "fast"},
			eval: func(v *txView, a [][]byte) reply {
				r := v.getReply(a[1])
				v.set(a[1], a[2])
				return r
			}},
		{name: "getdel", strings: true, arity: 2, keys: writes(firstKey), flags: []string{"write", "fast"},
			eval: func(v *txView, a [][]byte) reply {
				r := v.getReply(a[1])
				v.del(a[1])
				return r
			}},
		{name: "del", arity: -2, keys: writes(allKeys), check: checkKeys(allKeys), flags: []string{"write"},
			fast: func(c *conn, a [][]byte) bool {
				return len(a) == 2 && c.gather(replyCount, engine.Op{Kind: engine.OpDelete, Key: a[1]})
			},
			eval: func(v *txView, a [][]byte) reply {
				n := 0
				for _, k := range a[1:] {
					if v.del(k) {
						n++
					}
				}
				return intReply(int64(n))
			}},
		{name: "mset", arity: -3, keys: writes(pairKeys), check: checkPairs, flags: []string{"write", "denyoom"},
			fast: func(c *conn, a [][]byte) bool {
				return len(a) == 3 && c.gather(replyOK, engine.Op{Kind: engine.OpSet, Key: a[1], Value: a[2]})
			},
			eval: func(v *txView, a [][]byte) reply {
				for i := 1; i+1 < len(a); i += 2 {
					v.set(a[i], a[i+1])
				}
				return okReply
			}},
		{name: "msetnx", arity: -3, keys: writes(pairKeys), check: checkPairs, flags: []string{"write", "denyoom"},
			eval: func(v *txView, a [][]byte) reply {
				for i := 1; i+1 < len(a); i += 2 {
					if _, ok := v.get(a[i]); ok {
						return intReply(0)
					}
				}
				for i := 1; i+1 < len(a); i += 2 {
					v.set(a[i], a[i+1])
				}
				return intReply(1)
			}},
		{name: "incr", strings: true, arity: 2, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "denyoom", "fast"},
			fast: func(c *conn, a [][]byte) bool { return c.gatherIncr(a[1], 1) },
			eval: func(v *txView, a [][]byte) reply { return v.incrBy(a[1], 1) }},
		{name: "decr", strings: true, arity: 2, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "denyoom", "fast"},
			fast: func(c *conn, a [][]byte) bool { return c.gatherIncr(a[1], -1) },
			eval: func(v *txView, a [][]byte) reply { return v.incrBy(a[1], -1) }},
		{name: "incrby", strings: true, arity: 3, keys: writes(firstKey), check: checkIncr, flags: []string{"write", "denyoom", "fast"},
			fast: func(c *conn, a [][]byte) bool { return fastIncrBy(c, a, false) },
			eval: func(v *txView, a [][]byte) reply { return v.incrByArg(a[1], a[2], false) }},
		{name: "decrby", strings: true, arity: 3, keys: writes(firstKey), check: checkIncr, flags: []string{"write", "denyoom", "fast"},
			fast: func(c *conn, a [][]byte) bool { return fastIncrBy(c, a, true) },
			eval: func(v *txView, a [][]byte) reply { return v.incrByArg(a[1], a[2], true) }},
		{name: "append", strings: true, arity: 3, keys: writes(firstKey), check: checkKeys(firstKey, 2), flags: []string{"write", "denyoom"},
			eval: func(v *txView, a [][]byte) reply {
				old, _ := v.get(a[1])
				if err := v.checkLen(len(old) + len(a[2])); err != nil {
					return v.fail(err)
				}
				val := append(append(make([]byte, 0, len(old)+len(a[2])), old...), a[2]...)
				v.update(a[1], val)
				return intReply(int64(len(val)))
			}},
	}
}

// checkSet checks SET's key and value against the engine's limits (a
// value with a TTL may be as long as any). A syntax error is not refused
// here: as in Redis, SET is queued in MULTI and answers it at EXEC, in its
// place.
var checkSet = checkKeys(firstKey, 2)

func checkPairs(args [][]byte, lim limits) error {
	if len(args)%2 != 1 {
		return errors.New("ERR wrong number of arguments for '" + string(bytes.ToLower(args[0])) + "' command")
	}
	for i := 1; i+1 < len(args); i += 2 {
		if err := lim.CheckKey(args[i]); err != nil {
			return err
		}
		if err := checkValueLen(len(args[i+1]), lim.MaxValueLen()); err != nil {
			return err
		}
	}
	return nil
}

// fastIncrBy gathers INCRBY or DECRBY whose argument is an integer (and,
// negated, still one); the others take the slower path and its error.
func fastIncrBy(c *conn, a [][]byte, negate bool) bool {
	by, ok := parseInteger(a[2])
	if !ok || (negate && by == math.MinInt64) {
		return false
	}
	if negate {
		by = -by
	}
	return c.gatherIncr(a[1], by)
}

// checkIncrArg checks a key (args[1]) and an integer increment (args[i]):
// INCRBY's and HINCRBY's.
func checkIncrArg(i int) func(args [][]byte, lim limits) error {
	return func(args [][]byte, lim limits) error {
		if err := lim.CheckKey(args[1]); err != nil {
			return err
		}
		if _, ok := parseInteger(args[i]); !ok {
			return errNotInteger
		}
		return nil
	}
}

var checkIncr = checkIncrArg(2)

var (
	errNotInteger = errors.New("ERR value is not an integer or out of range")
	errOverflow   = errors.New("ERR increment or decrement would overflow")
)
