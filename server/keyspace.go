package server

// Keyspace and string commands beyond the first set (issue 18): TYPE,
// UNLINK, TOUCH, RENAME, RENAMENX, COPY, GETRANGE, SUBSTR, SETRANGE,
// INCRBYFLOAT as transactions (txn.go), and KEYS, SCAN, RANDOMKEY and
// TIME, which read one snapshot of the whole store.
//
// SCAN's cursor is a position in the order of a 64-bit hash of the keys
// (FNV-1a): a call returns the keys whose hash is at or past the cursor,
// smallest first, never splitting keys of one hash between calls, and the
// cursor is the next hash after the last one returned (0 once past the
// end). The order does not depend on what else is stored, so a key present
// for the whole iteration is returned at least once, whatever is written
// meanwhile, as Redis promises. Each call reads one snapshot of the whole
// index: its cost grows with the store, so COUNT below 100 is taken as 100.

import (
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bpfdb/bpfdb/engine"
)

func keyspaceCommands() []*command {
	srcDst := func(a [][]byte) [][]byte { return a[1:3] }
	return []*command{
		{name: "type", arity: 2, keys: reads(firstKey), flags: []string{"readonly", "fast"},
			eval: func(v *txView, a [][]byte) reply {
				if v.exists(a[1]) {
					return reply{kind: kindSimple, str: v.typeOf(a[1]).String()}
				}
				return reply{kind: kindSimple, str: "none"}
			}},
		{name: "unlink", arity: -2, keys: writes(allKeys), check: checkKeys(allKeys), flags: []string{"write", "fast"},
			eval: func(v *txView, a [][]byte) reply { return countDeleted(v, a[1:]) }},
		{name: "touch", arity: -2, keys: reads(allKeys), flags: []string{"readonly", "fast"},
			eval: func(v *txView, a [][]byte) reply { return countExisting(v, a[1:]) }},
		{name: "rename", arity: 3, keys: writes(srcDst), check: checkKeys(srcDst), flags: []string{"write"},
			eval: func(v *txView, a [][]byte) reply { return rename(v, a[1], a[2], false) }},
		{name: "renamenx", arity: 3, keys: writes(srcDst), check: checkKeys(srcDst), flags: []string{"write", "fast"},
			eval: func(v *txView, a [][]byte) reply { return rename(v, a[1], a[2], true) }},
		{name: "copy", arity: -3, keys: copyKeys, otherDB: copyDB, check: checkCopy, flags: []string{"write", "denyoom"},
			eval: evalCopy},
		{name: "move", arity: 3, keys: writes(firstKey), otherDB: moveDB, check: checkMove, flags: []string{"write", "fast"},
			eval: evalMove},
		{name: "swapdb", arity: 3, run: cmdSwapDB, flags: []string{"write", "fast"}},
		{name: "getrange", strings: true, arity: 4, keys: reads(firstKey), check: checkRange, flags: []string{"readonly"},
			eval: evalGetRange},
		{name: "substr", strings: true, arity: 4, keys: reads(firstKey), check: checkRange, flags: []string{"readonly"},
			eval: evalGetRange},
		{name: "setrange", strings: true, arity: 4, keys: writes(firstKey), check: checkSetRange, flags: []string{"write", "denyoom"},
			eval: evalSetRange},
		{name: "incrbyfloat", strings: true, arity: 3, keys: writes(firstKey), check: checkIncrFloat, flags: []string{"write", "denyoom", "fast"},
			eval: evalIncrByFloat},
		{name: "keys", arity: 2, run: cmdKeys, queueable: true, flags: []string{"readonly"}},
		{name: "scan", arity: -2, run: cmdScan, flags: []string{"readonly"}},
		{name: "randomkey", arity: 1, run: cmdRandomKey, queueable: true, flags: []string{"readonly"}},
		{name: "time", arity: 1, run: cmdTime, queueable: true, flags: []string{"fast"}},
		{name: "object", arity: -2, run: cmdObject, flags: []string{"readonly"}},
		{name: "memory", arity: -2, run: cmdMemory, flags: []string{"readonly"}},
	}
}

// getOne reads key of database db in its own snapshot, for the
// introspection commands: its value and type.
func (s *Server) getOne(db int, key []byte) ([]byte, engine.ValueType, bool, error) {
	ops := []engine.Op{{Kind: engine.OpGet, DB: db, Key: key}}
	if err := s.exec(ops); err != nil {
		return nil, 0, false, err
	}
	if errors.Is(ops[0].Err, engine.ErrNotFound) {
		return nil, 0, false, nil
	}
	return ops[0].Value, ops[0].Type, ops[0].Err == nil, ops[0].Err
}

// encoding is OBJECT ENCODING's answer, by Redis's rules for a string; a
// hash is one serialized run of fields and values (hash.go), which Redis
// calls a listpack.
func encoding(v []byte, typ engine.ValueType) string {
	if typ == engine.TypeHash {
		return "listpack"
	}
	if _, ok := parseInteger(v); ok && len(v) <= 20 {
		return "int"
	}
	if len(v) <= 44 {
		return "embstr"
	}
	return "raw"
}

func cmdObject(c *conn, a [][]byte) {
	sub := strings.ToUpper(string(a[1]))
	if sub == "HELP" {
		writeHelp(c, "OBJECT", []string{
			"ENCODING <key>", "    Return the kind of internal representation used in order to store the value associated with a <key>.",
			"REFCOUNT <key>", "    Return the number of references of the value associated with the specified <key>.",
		})
		return
	}
	if len(a) != 3 || (sub != "ENCODING" && sub != "REFCOUNT") {
		c.wr.Error("ERR unknown subcommand or wrong number of arguments for '" + printable(a[1]) + "'. Try OBJECT HELP.")
		return
	}
	v, typ, ok, err := c.s.getOne(c.db, a[2])
	switch {
	case err != nil:
		c.wr.Error(errorText(err))
	case !ok:
		c.wr.Null()
	case sub == "REFCOUNT":
		c.wr.Int(1)
	default:
		c.wr.BulkString(encoding(v, typ))
	}
}

// cmdMemory answers MEMORY USAGE key: the key's share of the index, its
// value's slab slot and the key itself, in kernel memory.
func cmdMemory(c *conn, a [][]byte) {
	sub := strings.ToUpper(string(a[1]))
	if sub == "HELP" {
		writeHelp(c, "MEMORY", []string{"USAGE <key>", "    Return the kernel memory in bytes used by <key> and its value."})
		return
	}
	if sub != "USAGE" || len(a) < 3 {
		c.wr.Error("ERR unknown subcommand or wrong number of arguments for '" + printable(a[1]) + "'. Try MEMORY HELP.")
		return
	}
	v, _, ok, err := c.s.getOne(c.db, a[2])
	switch {
	case err != nil:
		c.wr.Error(errorText(err))
	case !ok:
		c.wr.Null()
	default:
		m, err := c.s.e.Memory()
		if err != nil {
			c.wr.Error(errorText(err))
			return
		}
		c.wr.Int(int64(m.PerKey(c.s.e.Options(), len(v))))
	}
}

func countDeleted(v *txView, keys [][]byte) reply {
	n := 0
	for _, k := range keys {
		if v.del(k) {
			n++
		}
	}
	return intReply(int64(n))
}

func countExisting(v *txView, keys [][]byte) reply {
	n := 0
	for _, k := range keys {
		if v.exists(k) {
			n++
		}
	}
	return intReply(int64(n))
}

var errNoSuchKey = errors.New("ERR no such key")

// rename moves src's value to dst, in one transaction.
func rename(v *txView, src, dst []byte, nx bool) reply {
	val, typ, ok := v.stored(src)
	if !ok {
		return errReply(errNoSuchKey)
	}
	if nx && v.exists(dst) {
		return intReply(0)
	}
	if string(src) != string(dst) {
		at, _ := v.ttl(src)
		v.putStored(dst, val, typ, at)
		v.del(src)
	}
	if nx {
		return intReply(1)
	}
	return okReply
}

var errDBRange = errors.New("ERR DB index is out of range")

// copyOptions parses COPY src dst [DB n] [REPLACE]: the destination's
// database (-1: the source's) and REPLACE.
func copyOptions(a [][]byte) (db int, replace bool, err error) {
	db = -1
	for i := 3; i < len(a); i++ {
		switch strings.ToUpper(string(a[i])) {
		case "REPLACE":
			replace = true
		case "DB":
			if i+1 >= len(a) {
				return 0, false, errSyntax
			}
			i++
			n, ok := parseDB(a[i])
			if !ok {
				return 0, false, errDBRange
			}
			db = n
		default:
			return 0, false, errSyntax
		}
	}
	return db, replace, nil
}

// copyKeys is COPY's keys in the connection's database: the source, and
// the destination unless DB names another (copyDB).
func copyKeys(a [][]byte) ([][]byte, bool) {
	if _, _, ok := copyDB(a); ok {
		return a[1:2], true
	}
	return a[1:3], true
}

// copyDB is the destination of COPY ... DB n.
func copyDB(a [][]byte) (int, []byte, bool) {
	db, _, err := copyOptions(a)
	return db, a[2], err == nil && db >= 0
}

func checkCopy(a [][]byte, lim limits) error {
	if err := checkKeys(func(a [][]byte) [][]byte { return a[1:3] })(a, lim); err != nil {
		return err
	}
	_, _, err := copyOptions(a)
	return err
}

func evalCopy(v *txView, a [][]byte) reply {
	db, replace, _ := copyOptions(a)
	if db < 0 {
		db = v.db
	}
	if db == v.db && string(a[1]) == string(a[2]) {
		return errReply(errors.New("ERR source and destination objects are the same"))
	}
	val, typ, ok := v.stored(a[1])
	if !ok {
		return intReply(0)
	}
	at, _ := v.ttl(a[1])
	copied := false
	v.in(db, func() {
		if !v.exists(a[2]) || replace {
			v.putStored(a[2], val, typ, at)
			copied = true
		}
	})
	return intReply(boolInt(copied))
}

// moveDB is MOVE key db's destination.
func moveDB(a [][]byte) (int, []byte, bool) {
	db, ok := parseDB(a[2])
	return db, a[1], ok
}

func checkMove(a [][]byte, lim limits) error {
	if err := lim.CheckKey(a[1]); err != nil {
		return err
	}
	if _, ok := parseDB(a[2]); !ok {
		return errDBRange
	}
	return nil
}

// evalMove moves key to another database unless it holds the key
// already, with its deadline, as one transaction.
func evalMove(v *txView, a [][]byte) reply {
	db, _ := parseDB(a[2])
	if db == v.db {
		return errReply(errors.New("ERR source and destination objects are the same"))
	}
	val, typ, ok := v.stored(a[1])
	if !ok {
		return intReply(0)
	}
	at, _ := v.ttl(a[1])
	moved := false
	v.in(db, func() {
		if !v.exists(a[1]) {
			v.putStored(a[1], val, typ, at)
			moved = true
		}
	})
	if !moved {
		return intReply(0)
	}
	v.del(a[1])
	return intReply(1)
}

func checkRange(a [][]byte, lim limits) error {
	if err := lim.CheckKey(a[1]); err != nil {
		return err
	}
	if _, ok := parseInteger(a[2]); !ok {
		return errNotInteger
	}
	if _, ok := parseInteger(a[3]); !ok {
		return errNotInteger
	}
	return nil
}

// evalGetRange is GETRANGE as Redis computes it: negative offsets count
// from the end, both ends inclusive and clamped.
func evalGetRange(v *txView, a [][]byte) reply {
	val, _ := v.get(a[1])
	start, _ := parseInteger(a[2])
	end, _ := parseInteger(a[3])
	n := int64(len(val))
	if start < 0 && end < 0 && start > end {
		return reply{kind: kindBulk, bulk: []byte{}}
	}
	if start < 0 {
		start = max(n+start, 0)
	}
	if end < 0 {
		end = max(n+end, 0)
	}
	end = min(end, n-1)
	if start > end || n == 0 {
		return reply{kind: kindBulk, bulk: []byte{}}
	}
	return reply{kind: kindBulk, bulk: val[start : end+1]}
}

func checkSetRange(a [][]byte, lim limits) error {
	if err := lim.CheckKey(a[1]); err != nil {
		return err
	}
	off, ok := parseInteger(a[2])
	if !ok {
		return errNotInteger
	}
	if off < 0 || off > 512<<20 {
		return errors.New("ERR offset is out of range")
	}
	return nil
}

// evalSetRange overwrites from offset, padding with zero bytes; a result
// past the engine's MaxValueLen aborts with the limit named.
func evalSetRange(v *txView, a [][]byte) reply {
	old, _ := v.get(a[1])
	off, _ := parseInteger(a[2])
	if len(a[3]) == 0 {
		return intReply(int64(len(old)))
	}
	size := max(int64(len(old)), off+int64(len(a[3])))
	if err := v.checkLen(int(size)); err != nil { // at most 512 MiB and a kept argument: an int
		return v.fail(err)
	}
	val := make([]byte, size)
	copy(val, old)
	copy(val[off:], a[3])
	v.update(a[1], val)
	return intReply(size)
}

var errNotFloat = errors.New("ERR value is not a valid float")

// parseFloat parses a float as Redis does: finite, no spaces.
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 5000 || strings.ContainsAny(string(b), " \t\r\n") {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// checkFloatArg checks a key (a[1]) and a float increment (a[i]):
// INCRBYFLOAT's and HINCRBYFLOAT's.
func checkFloatArg(i int) func(a [][]byte, lim limits) error {
	return func(a [][]byte, lim limits) error {
		if err := lim.CheckKey(a[1]); err != nil {
			return err
		}
		if _, ok := parseFloat(a[i]); !ok {
			return errNotFloat
		}
		return nil
	}
}

var checkIncrFloat = checkFloatArg(2)

func evalIncrByFloat(v *txView, a [][]byte) reply {
	by, _ := parseFloat(a[2])
	cur := 0.0
	if old, ok := v.get(a[1]); ok {
		f, ok := parseFloat(old)
		if !ok {
			return errReply(errNotFloat)
		}
		cur = f
	}
	next := cur + by
	if math.IsNaN(next) || math.IsInf(next, 0) {
		return errReply(errors.New("ERR increment would produce NaN or Infinity"))
	}
	val := strconv.AppendFloat(nil, next, 'f', -1, 64)
	v.update(a[1], val)
	return reply{kind: kindBulk, bulk: val}
}

// scanKeys returns every key of database db of one snapshot for which
// keep is true.
func (s *Server) scanKeys(db int, keep func(k []byte) bool) ([][]byte, error) {
	var keys [][]byte
	err := s.scanDB(db, func(it *engine.Item) {
		if keep(it.Key) {
			keys = append(keys, append([]byte(nil), it.Key...))
		}
	})
	return keys, err
}

// scanDB calls fn with every item of database db of one snapshot (under
// one hold of the database names), then waits until every commit the
// listing may show is durable (engine.LastCommit): with sync durability
// no reply shows what a crash could take back (loop.go). It runs on a
// goroutine, never the event loop, which does not serve these commands.
func (s *Server) scanDB(db int, fn func(it *engine.Item)) error {
	s.dbs.hold()
	store := s.dbs.storeDB(db)
	err := s.e.Scan(func(it *engine.Item) bool {
		if it.DB == store {
			fn(it)
		}
		return true
	})
	s.dbs.mu.RUnlock()
	if err != nil {
		return err
	}
	return s.shownDurable()
}

// shownDurable waits until every commit made so far is durable, for a
// reply showing what any of them may have done (scanDB, DBSIZE).
func (s *Server) shownDurable() error {
	return s.e.WaitDurable(s.e.LastCommit())
}

// globMatch matches Redis's glob patterns (*, ?, [..], \ escapes), which
// path.Match implements but for '/', which matters to neither.
func globMatch(pattern, key []byte) bool {
	ok, err := path.Match(string(pattern), string(key))
	return ok && err == nil
}

func cmdKeys(c *conn, a [][]byte) {
	keys, err := c.s.scanKeys(c.db, func(k []byte) bool { return globMatch(a[1], k) })
	if err != nil {
		c.wr.Error(errorText(err))
		return
	}
	c.wr.Array(len(keys))
	for _, k := range keys {
		c.wr.Bulk(k)
	}
}

// scanHash is a key's position in SCAN's order.
func scanHash(k []byte) uint64 {
	h := fnv.New64a()
	h.Write(k)
	return h.Sum64()
}

// cmdScan answers SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]; see
// the top of this file for the cursor.
func cmdScan(c *conn, a [][]byte) {
	cursor, err := strconv.ParseUint(string(a[1]), 10, 64)
	if err != nil {
		c.wr.Error("ERR invalid cursor")
		return
	}
	var match []byte
	count, typ := 10, ""
	for i := 2; i < len(a); i += 2 {
		if i+1 >= len(a) {
			c.wr.Error(errSyntax.Error())
			return
		}
		switch strings.ToUpper(string(a[i])) {
		case "MATCH":
			match = a[i+1]
		case "COUNT":
			n, ok := parseInteger(a[i+1])
			if !ok || n < 1 {
				c.wr.Error(errSyntax.Error())
				return
			}
			count = int(min(n, 1<<20))
		case "TYPE":
			typ = strings.ToLower(string(a[i+1]))
		default:
			c.wr.Error(errSyntax.Error())
			return
		}
	}
	count = max(count, 100)
	type hashed struct {
		h uint64
		k []byte
		t engine.ValueType
	}
	var found []hashed
	err = c.s.scanDB(c.db, func(it *engine.Item) {
		if h := scanHash(it.Key); h >= cursor {
			found = append(found, hashed{h, append([]byte(nil), it.Key...), it.Type})
		}
	})
	if err != nil {
		c.wr.Error(errorText(err))
		return
	}
	slices.SortFunc(found, func(x, y hashed) int {
		if x.h != y.h {
			if x.h < y.h {
				return -1
			}
			return 1
		}
		return strings.Compare(string(x.k), string(y.k))
	})
	n := min(count, len(found))
	for n < len(found) && n > 0 && found[n].h == found[n-1].h {
		n++ // keys of one hash go together
	}
	next := uint64(0)
	if n < len(found) && found[n-1].h != math.MaxUint64 {
		next = found[n-1].h + 1
	}
	var out [][]byte
	for _, f := range found[:n] {
		if (match == nil || globMatch(match, f.k)) && (typ == "" || typ == f.t.String()) {
			out = append(out, f.k)
		}
	}
	c.wr.Array(2)
	c.wr.BulkString(strconv.FormatUint(next, 10))
	c.wr.Array(len(out))
	for _, k := range out {
		c.wr.Bulk(k)
	}
}

func cmdRandomKey(c *conn, a [][]byte) {
	var pick []byte
	seen := 0
	err := c.s.scanDB(c.db, func(it *engine.Item) {
		// Reservoir sampling: each key is picked with probability 1/n.
		if seen++; rand.IntN(seen) == 0 {
			pick = append(pick[:0], it.Key...)
		}
	})
	switch {
	case err != nil:
		c.wr.Error(errorText(err))
	case seen == 0:
		c.wr.Null()
	default:
		c.wr.Bulk(pick)
	}
}

func cmdTime(c *conn, a [][]byte) {
	now := time.Now()
	c.wr.Array(2)
	c.wr.BulkString(strconv.FormatInt(now.Unix(), 10))
	c.wr.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}
