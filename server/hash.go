package server

// Hashes: HSET, HGET, HGETALL... A hash is one value of the store, of type
// engine.TypeHash, holding every field (internal/hashenc says why, and how
// it is encoded). Every hash command is a data command run as a
// transaction (txn.go): it reads the key under a lock (a snapshot, for the
// read-only ones), decodes it once per transaction (entry.hash), and a
// command that changes it writes the whole hash back at commit. A hash is
// thus atomic, isolated and logged like a string, inside MULTI/EXEC too.
//
// Invariants:
//
//  1. A hash in the store has at least one field: a command that removes
//     the last one deletes the key, as Redis does.
//  2. A hash is at most the store's longest value (Options.MaxValueLen)
//     encoded: a command that would make it longer fails its whole
//     transaction (txView.fail), naming the limit, with nothing applied.
//  3. A hash command on a key holding a string answers WRONGTYPE and
//     changes nothing; a string command on a hash does the same (the
//     commands' strings flag, and the fast path's check of Op.Type).

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/hashenc"
)

func hashCommands() []*command {
	rd, wr := reads(firstKey), writes(firstKey)
	ro, rw := []string{"readonly", "fast"}, []string{"write", "denyoom", "fast"}
	return []*command{
		{name: "hset", arity: -4, keys: wr, check: checkHashPairs, flags: rw, eval: evalHSet(false)},
		{name: "hmset", arity: -4, keys: wr, check: checkHashPairs, flags: rw, eval: evalHSet(true)},
		{name: "hsetnx", arity: 4, keys: wr, check: checkHashPairs, flags: rw, eval: evalHSetNX},
		{name: "hget", arity: 3, keys: rd, flags: ro, eval: evalHGet},
		{name: "hmget", arity: -3, keys: rd, flags: ro, eval: evalHMGet},
		{name: "hgetall", arity: 2, keys: rd, flags: []string{"readonly"}, eval: evalHGetAll(true, true)},
		{name: "hkeys", arity: 2, keys: rd, flags: []string{"readonly"}, eval: evalHGetAll(true, false)},
		{name: "hvals", arity: 2, keys: rd, flags: []string{"readonly"}, eval: evalHGetAll(false, true)},
		{name: "hdel", arity: -3, keys: wr, check: checkKeys(firstKey), flags: []string{"write", "fast"}, eval: evalHDel},
		{name: "hlen", arity: 2, keys: rd, flags: ro, eval: evalHLen},
		{name: "hexists", arity: 3, keys: rd, flags: ro, eval: evalHExists},
		{name: "hstrlen", arity: 3, keys: rd, flags: ro, eval: evalHStrLen},
		{name: "hincrby", arity: 4, keys: wr, check: checkIncrArg(3), flags: rw, eval: evalHIncrBy},
		{name: "hincrbyfloat", arity: 4, keys: wr, check: checkFloatArg(3), flags: rw, eval: evalHIncrByFloat},
		{name: "hscan", arity: -3, keys: rd, check: checkHScan, flags: []string{"readonly"}, eval: evalHScan},
	}
}

// hashOf returns k's hash, decoded once per transaction: an empty one, not
// stored until putHash, when k has no value; errWrongType when k holds
// another type.
func (v *txView) hashOf(k []byte) (*hashenc.Hash, error) {
	e := v.entry(k)
	switch {
	case !e.exists:
		return hashenc.New(), nil
	case e.typ != engine.TypeHash:
		return nil, errWrongType
	case e.hash == nil:
		h, err := hashenc.Decode(e.val)
		if err != nil {
			return nil, fmt.Errorf("ERR key '%s' holds a hash that does not decode: %v", printable(k), err)
		}
		e.hash = h
	}
	return e.hash, nil
}

// putHash makes h, which a command changed, k's value, keeping k's
// deadline as Redis does; with no field left it deletes k (invariant 1).
// It fails the transaction when h is too long (invariant 2).
func (v *txView) putHash(k []byte, h *hashenc.Hash) reply {
	if h.Len() == 0 {
		v.del(k)
		return reply{}
	}
	if n := h.Size(); n > v.maxValue {
		return v.fail(fmt.Errorf("%w: the hash of key '%s' would be %d bytes encoded, the limit is %d: a hash is one value of the store (Options.MaxValueLen, --max-value-len)",
			engine.ErrValueTooLarge, printable(k), n, v.maxValue))
	}
	e := v.entry(k)
	if !e.exists {
		e.expireAt = 0
	}
	e.val, e.typ, e.hash, e.exists, e.dirty = nil, engine.TypeHash, h, true, true
	return reply{}
}

// checkHashPairs checks HSET key field value [field value ...]: the pairs
// are whole, and no field and value alone are longer than a value may be.
func checkHashPairs(a [][]byte, lim limits) error {
	if len(a)%2 != 0 {
		return errors.New("ERR wrong number of arguments for '" + strings.ToLower(string(a[0])) + "' command")
	}
	if err := lim.CheckKey(a[1]); err != nil {
		return err
	}
	for i := 2; i+1 < len(a); i += 2 {
		if err := checkValueLen(len(a[i])+len(a[i+1]), lim.MaxValueLen()); err != nil {
			return err
		}
	}
	return nil
}

// evalHSet is HSET (the number of new fields) or HMSET (OK).
func evalHSet(ok bool) func(v *txView, a [][]byte) reply {
	return func(v *txView, a [][]byte) reply {
		h, err := v.hashOf(a[1])
		if err != nil {
			return errReply(err)
		}
		added := 0
		for i := 2; i+1 < len(a); i += 2 {
			if h.Set(a[i], a[i+1]) {
				added++
			}
		}
		if r := v.putHash(a[1], h); r.kind == kindError {
			return r
		}
		if ok {
			return okReply
		}
		return intReply(int64(added))
	}
}

func evalHSetNX(v *txView, a [][]byte) reply {
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	if _, ok := h.Get(a[2]); ok {
		return intReply(0)
	}
	h.Set(a[2], a[3])
	if r := v.putHash(a[1], h); r.kind == kindError {
		return r
	}
	return intReply(1)
}

func evalHGet(v *txView, a [][]byte) reply {
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	return bulkReply(h.Get(a[2]))
}

func evalHMGet(v *txView, a [][]byte) reply {
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	r := arrayReply(len(a) - 2)
	for _, f := range a[2:] {
		r.elems = append(r.elems, bulkReply(h.Get(f)))
	}
	return r
}

// evalHGetAll is HGETALL (fields and values: a map in RESP3), HKEYS or
// HVALS, in the hash's order.
func evalHGetAll(fields, values bool) func(v *txView, a [][]byte) reply {
	return func(v *txView, a [][]byte) reply {
		h, err := v.hashOf(a[1])
		if err != nil {
			return errReply(err)
		}
		r := arrayReply(2 * h.Len())
		if fields && values {
			r.kind = kindMap
		}
		for i := range h.Len() {
			f, val := h.Field(i)
			if fields {
				r.elems = append(r.elems, bulkReply(f, true))
			}
			if values {
				r.elems = append(r.elems, bulkReply(val, true))
			}
		}
		return r
	}
}

func evalHDel(v *txView, a [][]byte) reply {
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	n := 0
	for _, f := range a[2:] {
		if h.Delete(f) {
			n++
		}
	}
	if n > 0 {
		// Smaller, yet perhaps still above a --max-value-len lowered
		// since it was written: then it fails, as any write of it would.
		if r := v.putHash(a[1], h); r.kind == kindError {
			return r
		}
	}
	return intReply(int64(n))
}

func evalHLen(v *txView, a [][]byte) reply {
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	return intReply(int64(h.Len()))
}

func evalHExists(v *txView, a [][]byte) reply {
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	if _, ok := h.Get(a[2]); ok {
		return intReply(1)
	}
	return intReply(0)
}

func evalHStrLen(v *txView, a [][]byte) reply {
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	val, _ := h.Get(a[2])
	return intReply(int64(len(val)))
}

var errHashNotInteger = errors.New("ERR hash value is not an integer")

func evalHIncrBy(v *txView, a [][]byte) reply {
	by, _ := parseInteger(a[3])
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	var n int64
	if old, ok := h.Get(a[2]); ok {
		if n, ok = parseInteger(old); !ok {
			return errReply(errHashNotInteger)
		}
	}
	if (by > 0 && n > math.MaxInt64-by) || (by < 0 && n < math.MinInt64-by) {
		return errReply(errOverflow)
	}
	n += by
	h.Set(a[2], strconv.AppendInt(nil, n, 10))
	if r := v.putHash(a[1], h); r.kind == kindError {
		return r
	}
	return intReply(n)
}

func evalHIncrByFloat(v *txView, a [][]byte) reply {
	by, _ := parseFloat(a[3])
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	cur := 0.0
	if old, ok := h.Get(a[2]); ok {
		if cur, ok = parseFloat(old); !ok {
			return errReply(errors.New("ERR hash value is not a float"))
		}
	}
	next := cur + by
	if math.IsNaN(next) || math.IsInf(next, 0) {
		return errReply(errors.New("ERR increment would produce NaN or Infinity"))
	}
	val := strconv.AppendFloat(nil, next, 'f', -1, 64)
	h.Set(a[2], val)
	if r := v.putHash(a[1], h); r.kind == kindError {
		return r
	}
	return reply{kind: kindBulk, bulk: val}
}

// hscanOptions parses HSCAN key cursor [MATCH pattern] [COUNT n]
// [NOVALUES].
func hscanOptions(a [][]byte) (match []byte, noValues bool, err error) {
	if _, err := strconv.ParseUint(string(a[2]), 10, 64); err != nil {
		return nil, false, errors.New("ERR invalid cursor")
	}
	for i := 3; i < len(a); i++ {
		switch strings.ToUpper(string(a[i])) {
		case "MATCH":
			if i+1 >= len(a) {
				return nil, false, errSyntax
			}
			i++
			match = a[i]
		case "COUNT":
			if i+1 >= len(a) {
				return nil, false, errSyntax
			}
			i++
			if n, ok := parseInteger(a[i]); !ok || n < 1 {
				return nil, false, errSyntax
			}
		case "NOVALUES":
			noValues = true
		default:
			return nil, false, errSyntax
		}
	}
	return match, noValues, nil
}

func checkHScan(a [][]byte, lim limits) error {
	if err := lim.CheckKey(a[1]); err != nil {
		return err
	}
	_, _, err := hscanOptions(a)
	return err
}

// evalHScan answers every field matching in one reply, with cursor 0, as
// Redis does for a hash in one listpack: a hash is one value, read whole
// at one snapshot, so one call returns every field present, which keeps
// SCAN's guarantee whatever happens between calls. COUNT is a hint Redis
// ignores here too.
func evalHScan(v *txView, a [][]byte) reply {
	match, noValues, _ := hscanOptions(a)
	h, err := v.hashOf(a[1])
	if err != nil {
		return errReply(err)
	}
	out := arrayReply(2 * h.Len())
	for i := range h.Len() {
		f, val := h.Field(i)
		if match != nil && !globMatch(match, f) {
			continue
		}
		out.elems = append(out.elems, bulkReply(f, true))
		if !noValues {
			out.elems = append(out.elems, bulkReply(val, true))
		}
	}
	r := arrayReply(2)
	r.elems = append(r.elems, reply{kind: kindBulk, bulk: []byte("0")}, out)
	return r
}
