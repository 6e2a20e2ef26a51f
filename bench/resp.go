package bench

// The RESP client side shared by the serve and redis targets: one
// go-redis client with a single connection per bench client, so a
// client's pipeline and its WATCH ... EXEC stay on its own connection.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// quietRedisLog drops go-redis's log lines (such as failed dials while a
// server starts): the harness reports failures itself.
type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}

var silenceRedis sync.Once

// respConnect opens one connection to addr and checks it with PING.
func respConnect(ctx context.Context, addr string) (*respConn, error) {
	silenceRedis.Do(func() { redis.SetLogger(quietRedisLog{}) })
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		Protocol:              2,
		DisableIdentity:       true,
		PoolSize:              1,
		MaxRetries:            -1,
		DialTimeout:           5 * time.Second,
		ReadTimeout:           ioGrace,
		WriteTimeout:          ioGrace,
		ContextTimeoutEnabled: true,
	})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return &respConn{c: c}, nil
}

// respConn is one bench client's connection.
type respConn struct{ c *redis.Client }

// isConflict reports a server's conflict error (bpfdb answers "CONFLICT ...").
func isConflict(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "CONFLICT")
}

func (r *respConn) Do(ctx context.Context, ops []Op) (int, error) {
	if len(ops) == 1 {
		if ops[0].Write {
			return respOutcome(ops[0].Key, r.c.Set(ctx, string(ops[0].Key), ops[0].Value, 0).Err())
		}
		v, err := r.c.Get(ctx, string(ops[0].Key)).Bytes()
		ops[0].Value = v
		return respOutcome(ops[0].Key, err)
	}
	pipe := r.c.Pipeline()
	cmds := make([]redis.Cmder, len(ops))
	for i, op := range ops {
		if op.Write {
			cmds[i] = pipe.Set(ctx, string(op.Key), op.Value, 0)
		} else {
			cmds[i] = pipe.Get(ctx, string(op.Key))
		}
	}
	pipe.Exec(ctx) // each command carries its own error, a broken connection's included
	aborted := 0
	for i, cmd := range cmds {
		if g, ok := cmd.(*redis.StringCmd); ok {
			ops[i].Value, _ = g.Bytes()
		}
		n, err := respOutcome(ops[i].Key, cmd.Err())
		if err != nil {
			return aborted, err
		}
		aborted += n
	}
	return aborted, nil
}

// respOutcome turns one reply into (aborted, error).
func respOutcome(key []byte, err error) (int, error) {
	switch {
	case err == nil:
		return 0, nil
	case errors.Is(err, redis.Nil):
		return 0, fmt.Errorf("%s: %w", key, ErrNotFound)
	case isConflict(err):
		return 1, nil
	}
	return 0, err
}

// Transfer is WATCH from to; MGET from to; MULTI; SET; SET; EXEC. EXEC's
// nil reply (redis.TxFailedErr: a watched key changed) or a CONFLICT error
// aborts the attempt.
func (r *respConn) Transfer(ctx context.Context, from, to []byte, amount int64) error {
	a, b := string(from), string(to)
	err := r.c.Watch(ctx, func(tx *redis.Tx) error {
		vals, err := tx.MGet(ctx, a, b).Result()
		if err != nil {
			return err
		}
		var bal [2]int64
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s: %w", []string{a, b}[i], ErrNotFound)
			}
			if bal[i], err = ParseBalance([]byte(s)); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, a, FormatBalance(bal[0]-amount), 0)
			p.Set(ctx, b, FormatBalance(bal[1]+amount), 0)
			return nil
		})
		return err
	}, a, b)
	if errors.Is(err, redis.TxFailedErr) || isConflict(err) {
		return fmt.Errorf("%w: %v", ErrAborted, err)
	}
	return err
}

// TransferScript is the transfer stored procedure of RESP servers (and of
// the server's own benchmark of it, server/script_bench_test.go): both
// accounts are declared keys, ARGV[1] is the amount. A missing account
// is an error reply (nothing written).
const TransferScript = `local a = tonumber(redis.call('GET', KEYS[1]))
local b = tonumber(redis.call('GET', KEYS[2]))
if a == nil or b == nil then return redis.error_reply('ERR transfer: account not found') end
local n = tonumber(ARGV[1])
redis.call('SET', KEYS[1], a - n)
redis.call('SET', KEYS[2], b + n)
return 1`

// transferSHA is TransferScript's SHA1 in hex, its EVALSHA name.
var transferSHA = func() string { h := sha1.Sum([]byte(TransferScript)); return hex.EncodeToString(h[:]) }()

// TransferProc is EVALSHA of TransferScript (respSupports loaded it with
// SCRIPT LOAD). A CONFLICT error reply aborts the attempt: the client saw
// a conflict (bpfdb retries a script's conflicts itself, so it should not).
func (r *respConn) TransferProc(ctx context.Context, from, to []byte, amount int64) error {
	err := r.c.EvalSha(ctx, transferSHA, []string{string(from), string(to)}, amount).Err()
	if isConflict(err) {
		return fmt.Errorf("%w: %v", ErrAborted, err)
	}
	return err
}

func (r *respConn) Close() error { return r.c.Close() }

// respLoad writes pairs with MSET of 32 pairs (within bpfdb's 64 keys per
// transaction), 16 MSETs per round trip, from 8 connections.
func respLoad(ctx context.Context, addr string, pairs []KV) error {
	const perMSet, perTrip = 32, 16
	return parallelChunks(ctx, len(pairs), 8, perMSet*perTrip, func(lo, hi int) error {
		c, err := respConnect(ctx, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		pipe := c.c.Pipeline()
		for i := lo; i < hi; i += perMSet {
			args := make([]any, 0, 2*perMSet)
			for _, kv := range pairs[i:min(i+perMSet, hi)] {
				args = append(args, string(kv.Key), kv.Value)
			}
			pipe.MSet(ctx, args...)
		}
		_, err = pipe.Exec(ctx)
		return err
	})
}

// respSupports probes, for the transfer workload, whether the server
// knows WATCH, MULTI and EXEC; for the stored procedure, it loads
// TransferScript with SCRIPT LOAD (before each cell; EVALSHA finds it cached).
func respSupports(ctx context.Context, addr, server string, w Workload) error {
	if !w.Transfer {
		return nil
	}
	c, err := respConnect(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if w.Proc {
		sha, err := c.c.ScriptLoad(ctx, TransferScript).Result()
		switch {
		case err != nil && strings.Contains(strings.ToLower(err.Error()), "unknown command"):
			return skipf("%s does not support SCRIPT LOAD (%v)", server, err)
		case err == nil && sha != transferSHA:
			err = fmt.Errorf("%s: SCRIPT LOAD returned %q, not the script's SHA1 %s", server, sha, transferSHA)
		}
		return err
	}
	for _, cmd := range [][]any{{"WATCH", "bench:probe"}, {"UNWATCH"}, {"MULTI"}, {"DISCARD"}} {
		if err := c.c.Do(ctx, cmd...).Err(); err != nil {
			if strings.Contains(strings.ToLower(err.Error()), "unknown command") {
				return skipf("%s does not support %s yet (%v)", server, cmd[0], err)
			}
			return err
		}
	}
	return nil
}
