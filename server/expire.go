package server

// Keys that expire: SET's EX/PX/EXAT/PXAT/KEEPTTL, SETEX, PSETEX, GETEX,
// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT (NX, XX, GT, LT), TTL, PTTL,
// EXPIRETIME, PEXPIRETIME and PERSIST, with Redis 7's replies. Deadlines
// are engine.Op.ExpireAt (Unix ms on the store's clock, engine.Now); the
// kernel treats a value past its deadline as absent and the engine deletes
// it (docs/DESIGN.md). A transaction computes every deadline and TTL from
// one instant, txView.now.

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/bpfdb/bpfdb/engine"
)

// ttlOption is a parsed EX, PX, EXAT or PXAT option, or KEEPTTL or PERSIST.
type ttlOption struct {
	name string // upper case; "" when none was given
	arg  []byte
}

// isTTLOption reports whether opt (upper case) takes a time argument.
func isTTLOption(opt string) bool {
	return opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT"
}

func invalidExpire(cmd string) error {
	return fmt.Errorf("ERR invalid expire time in '%s' command", cmd)
}

// deadline converts o into a deadline at now for command cmd (lower case):
// 0 for none (or KEEPTTL/PERSIST), or Redis's errors for a time that is
// not an integer, not positive, or overflows.
func (o ttlOption) deadline(cmd string, now int64) (int64, error) {
	if !isTTLOption(o.name) {
		return 0, nil
	}
	n, ok := parseInteger(o.arg)
	if !ok {
		return 0, errNotInteger
	}
	seconds := o.name == "EX" || o.name == "EXAT"
	if n <= 0 || (seconds && n > math.MaxInt64/1000) {
		return 0, invalidExpire(cmd)
	}
	if seconds {
		n *= 1000
	}
	if o.name == "EX" || o.name == "PX" {
		if n > math.MaxInt64-now {
			return 0, invalidExpire(cmd)
		}
		n += now
	}
	return n, nil
}

// setExpiring writes val under k with deadline at (0: none) at v.now: a
// deadline already past deletes k, as Redis does. Any value may have a
// deadline (the engine stores it with the value).
func (v *txView) setExpiring(k, val []byte, at int64) reply {
	if at != 0 && at <= v.now {
		v.del(k)
		return okReply
	}
	v.setTTL(k, val, at)
	return okReply
}

// setOptions are SET's options.
type setOptions struct {
	nx, xx, get, keepTTL bool
	ttl                  ttlOption
}

// parseSet parses SET's options as Redis 7 does: an option may be
// repeated (the last time wins), but NX and XX, and KEEPTTL and the time
// options, exclude each other. The time's value is checked by
// ttlOption.deadline, after every option parsed.
func parseSet(args [][]byte) (setOptions, error) {
	var o setOptions
	for i := 3; i < len(args); i++ {
		opt := string(bytes.ToUpper(args[i]))
		switch {
		case opt == "NX" && !o.xx:
			o.nx = true
		case opt == "XX" && !o.nx:
			o.xx = true
		case opt == "GET":
			o.get = true
		case opt == "KEEPTTL" && o.ttl.name == "":
			o.keepTTL = true
		case isTTLOption(opt) && (o.ttl.name == "" || o.ttl.name == opt) && !o.keepTTL && i+1 < len(args):
			o.ttl = ttlOption{name: opt, arg: args[i+1]}
			i++
		default:
			return o, errSyntax
		}
	}
	return o, nil
}

func evalSet(v *txView, a [][]byte) reply {
	o, err := parseSet(a)
	if err != nil {
		return errReply(err)
	}
	at, err := o.ttl.deadline("set", v.now)
	if err != nil {
		return errReply(err)
	}
	if err := v.checkLen(len(a[2])); err != nil {
		return v.fail(err)
	}
	old, exists := v.get(a[1])
	r := okReply
	if o.get && v.typeOf(a[1]) != engine.TypeString {
		return errReply(errWrongType) // nothing set, as Redis
	}
	if o.get {
		r = bulkReply(old, exists)
	}
	if (o.nx && exists) || (o.xx && !exists) {
		if o.get {
			return r
		}
		return nullReply
	}
	if o.keepTTL {
		// The deadline is kept as it is, as Redis does (and update): one
		// at v.now has not passed (viewEntry), so it is not a time
		// already past that deletes the key, as a new one would be.
		at, _ = v.ttl(a[1])
		v.setTTL(a[1], a[2], at)
		return r
	}
	if w := v.setExpiring(a[1], a[2], at); w.kind == kindError {
		return w
	}
	return r
}

// fastSet gathers SET k v, and SET k v EX|PX n, as one autocommit op; the
// others (and any error) take the transaction path.
func fastSet(c *conn, a [][]byte) bool {
	op := engine.Op{Kind: engine.OpSet, Key: a[1], Value: a[2]}
	switch len(a) {
	case 3:
	case 5:
		opt := ttlOption{name: string(bytes.ToUpper(a[3])), arg: a[4]}
		if opt.name != "EX" && opt.name != "PX" {
			return false
		}
		at, err := opt.deadline("set", c.s.e.Now())
		if err != nil {
			return false
		}
		op.ExpireAt = at
	default:
		return false
	}
	return c.gather(replyOK, op)
}

// evalSetEx is SETEX (seconds) or PSETEX (ms): SET key value EX|PX time.
func evalSetEx(cmd, unit string) func(v *txView, a [][]byte) reply {
	return func(v *txView, a [][]byte) reply {
		at, err := ttlOption{name: unit, arg: a[2]}.deadline(cmd, v.now)
		if err != nil {
			return errReply(err)
		}
		if err := v.checkLen(len(a[3])); err != nil {
			return v.fail(err)
		}
		return v.setExpiring(a[1], a[3], at)
	}
}

// evalGetEx is GETEX key [EX|PX|EXAT|PXAT time | PERSIST]. As in Redis 7
// an option may be repeated (the last time wins), and a missing key
// answers nil before the time is checked.
func evalGetEx(v *txView, a [][]byte) reply {
	var o ttlOption
	for i := 2; i < len(a); i++ {
		opt := string(bytes.ToUpper(a[i]))
		switch {
		case opt == "PERSIST" && (o.name == "" || o.name == opt):
			o.name = opt
		case isTTLOption(opt) && (o.name == "" || o.name == opt) && i+1 < len(a):
			o = ttlOption{name: opt, arg: a[i+1]}
			i++
		default:
			return errReply(errSyntax)
		}
	}
	val, ok := v.get(a[1])
	if !ok {
		return nullReply
	}
	at, err := o.deadline("getex", v.now)
	if err != nil {
		return errReply(err)
	}
	cur, _ := v.ttl(a[1])
	switch {
	case o.name == "PERSIST" && cur != 0:
		v.setTTL(a[1], val, 0)
	case at != 0:
		if w := v.setExpiring(a[1], val, at); w.kind == kindError {
			return w
		}
	}
	return bulkReply(val, true)
}

// evalExpire is EXPIRE, PEXPIRE, EXPIREAT or PEXPIREAT: seconds or ms,
// relative to now or absolute, with NX, XX, GT or LT. As in Redis, the
// options are checked before the time, and the time before the key.
func evalExpire(cmd string, seconds, relative bool) func(v *txView, a [][]byte) reply {
	return func(v *txView, a [][]byte) reply {
		var nx, xx, gt, lt bool
		for _, f := range a[3:] {
			switch string(bytes.ToUpper(f)) {
			case "NX":
				nx = true
			case "XX":
				xx = true
			case "GT":
				gt = true
			case "LT":
				lt = true
			default:
				return errReply(errors.New("ERR Unsupported option " + printable(f)))
			}
		}
		if nx && (xx || gt || lt) {
			return errReply(errors.New("ERR NX and XX, GT or LT options at the same time are not compatible"))
		}
		if gt && lt {
			return errReply(errors.New("ERR GT and LT options at the same time are not compatible"))
		}
		when, ok := parseInteger(a[2])
		if !ok {
			return errReply(errNotInteger)
		}
		if seconds {
			if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
				return errReply(invalidExpire(cmd))
			}
			when *= 1000
		}
		if relative {
			// A negative time cannot overflow: now is positive.
			if when > math.MaxInt64-v.now {
				return errReply(invalidExpire(cmd))
			}
			when += v.now
		}
		if !v.exists(a[1]) {
			return intReply(0)
		}
		cur, _ := v.ttl(a[1])
		if (nx && cur != 0) || (xx && cur == 0) || (gt && (cur == 0 || when <= cur)) || (lt && cur != 0 && when >= cur) {
			return intReply(0)
		}
		if when <= v.now {
			v.del(a[1])
			return intReply(1)
		}
		v.retime(a[1], when)
		return intReply(1)
	}
}

// evalTTL answers TTL, PTTL, EXPIRETIME or PEXPIRETIME: -2 for a missing
// key, -1 for one without a deadline.
func evalTTL(ms, absolute bool) func(v *txView, a [][]byte) reply {
	return func(v *txView, a [][]byte) reply {
		at, exists := v.ttl(a[1])
		switch {
		case !exists:
			return intReply(-2)
		case at == 0:
			return intReply(-1)
		case absolute && ms:
			return intReply(at)
		case absolute:
			return intReply(at/1000 + (at%1000+500)/1000) // rounded, as Redis does, without overflowing
		}
		left := max(at-v.now, 0)
		if ms {
			return intReply(left)
		}
		return intReply((left + 500) / 1000)
	}
}

func evalPersist(v *txView, a [][]byte) reply {
	if at, exists := v.ttl(a[1]); !exists || at == 0 {
		return intReply(0)
	}
	v.retime(a[1], 0)
	return intReply(1)
}

// checkSetEx validates SETEX's and PSETEX's key and value.
var checkSetEx = checkKeys(firstKey, 3)

func expireCommands() []*command {
	one := func(c *command) *command {
		c.firstKey, c.lastKey, c.step = 1, 1, 1
		return c
	}
	return []*command{
		one(&command{name: "setex", arity: 4, keys: writes(firstKey), check: checkSetEx, flags: []string{"write", "denyoom"}, eval: evalSetEx("setex", "EX")}),
		one(&command{name: "psetex", arity: 4, keys: writes(firstKey), check: checkSetEx, flags: []string{"write", "denyoom"}, eval: evalSetEx("psetex", "PX")}),
		one(&command{name: "getex", strings: true, arity: -2, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "fast"}, eval: evalGetEx}),
		one(&command{name: "expire", arity: -3, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "fast"}, eval: evalExpire("expire", true, true)}),
		one(&command{name: "pexpire", arity: -3, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "fast"}, eval: evalExpire("pexpire", false, true)}),
		one(&command{name: "expireat", arity: -3, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "fast"}, eval: evalExpire("expireat", true, false)}),
		one(&command{name: "pexpireat", arity: -3, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "fast"}, eval: evalExpire("pexpireat", false, false)}),
		one(&command{name: "ttl", arity: 2, keys: reads(firstKey), check: checkKeys(firstKey), flags: []string{"readonly", "fast"}, eval: evalTTL(false, false)}),
		one(&command{name: "pttl", arity: 2, keys: reads(firstKey), check: checkKeys(firstKey), flags: []string{"readonly", "fast"}, eval: evalTTL(true, false)}),
		one(&command{name: "expiretime", arity: 2, keys: reads(firstKey), check: checkKeys(firstKey), flags: []string{"readonly", "fast"}, eval: evalTTL(false, true)}),
		one(&command{name: "pexpiretime", arity: 2, keys: reads(firstKey), check: checkKeys(firstKey), flags: []string{"readonly", "fast"}, eval: evalTTL(true, true)}),
		one(&command{name: "persist", arity: 2, keys: writes(firstKey), check: checkKeys(firstKey), flags: []string{"write", "fast"}, eval: evalPersist}),
	}
}
