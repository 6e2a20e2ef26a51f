package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Target is a store under test. Its methods are called by one goroutine
// (the runner), in the order Check, Start, Load, Supports, Connect..., Stop;
// the Conns it hands out are each used by one client goroutine.
type Target interface {
	// Name is the target's name ("embedded", "redis", ...).
	Name() string
	// Check reports, without starting anything, why the target cannot run
	// here (a missing binary, not root), as a *SkipError; nil if it can.
	Check() error
	// Start brings up an empty store with the durability, in a temporary
	// directory of its own.
	Start(ctx context.Context, d Durability) error
	// Load writes the pairs, batched; they may be many.
	Load(ctx context.Context, pairs []KV) error
	// Supports reports, as a *SkipError, why the started target cannot
	// run w (a server without MULTI/EXEC); nil if it can.
	Supports(ctx context.Context, w Workload) error
	// Connect opens one client's connection.
	Connect(ctx context.Context) (Conn, error)
	// Stop shuts the store down and removes its directory.
	Stop() error
}

// Conn is one client's connection to a started target.
type Conn interface {
	// Do runs independent reads (Value nil) and writes as one round trip
	// where the target can pipeline them. Reads store the value in
	// Op.Value. It returns how many operations aborted (a conflict: they
	// may be retried); any other failure, a missing key included, is err.
	Do(ctx context.Context, ops []Op) (aborted int, err error)
	// Transfer makes one attempt to move amount from one account to
	// another in one transaction: read both balances, write both, commit.
	// An attempt that aborted and may be retried returns an error wrapping
	// ErrAborted.
	Transfer(ctx context.Context, from, to []byte, amount int64) error
	// Close closes the connection.
	Close() error
}

// ProcConn is a Conn whose server runs the transfer as a stored procedure
// (WorkloadTransferProc); targets without one skip that workload.
type ProcConn interface {
	Conn
	// TransferProc makes one call of the server's transfer procedure:
	// one round trip that reads both balances, writes both and commits.
	// A conflict the server shows the client returns an error wrapping
	// ErrAborted (the harness retries and counts it); conflicts the
	// server retries itself stay invisible here (see ServerStats).
	TransferProc(ctx context.Context, from, to []byte, amount int64) error
}

// ServerStats is a Target that runs as server processes the harness can
// observe; RunCell samples it at the start and the end of the measured
// window, for the server's CPU time and retries per operation.
type ServerStats interface {
	// ServerCPU returns the CPU time (user and system) used so far by
	// the server's processes: the one started and its descendants, those
	// that ended included once they were waited for.
	ServerCPU() (time.Duration, error)
	// ServerRetries returns how many transactions the server has run
	// again after a conflict so far, without telling a client; ok is
	// false if the server does not count them.
	ServerRetries(ctx context.Context) (n int64, ok bool, err error)
}

// KV is a key and its value.
type KV struct{ Key, Value []byte }

// Op is one request of a Conn.Do: a read when Write is false (its result
// goes into Value), a write of Value otherwise.
type Op struct {
	Key   []byte
	Value []byte
	// Write marks a write; false is a read.
	Write bool
}

// ErrAborted marks an attempt that a conflict aborted; it may be retried.
var ErrAborted = errors.New("aborted by a conflict")

// ErrNotFound is returned by a read of a key that should exist.
var ErrNotFound = errors.New("key not found")

// SkipError says why a target or a cell was not run.
type SkipError struct{ Reason string }

// Error returns the reason.
func (e *SkipError) Error() string { return e.Reason }

// skipf returns a *SkipError.
func skipf(format string, args ...any) error { return &SkipError{Reason: fmt.Sprintf(format, args...)} }

// TargetEnv is what targets need from the harness.
type TargetEnv struct {
	// BpfdbBinary runs `serve` (normally os.Executable()).
	BpfdbBinary string
	// RedisServer is the redis-server binary.
	RedisServer string
	// PostgresBin is the directory of initdb and postgres.
	PostgresBin string
	// Keys and ValueSize size the stores (capacity of bpfdb's index).
	Keys, ValueSize int
}

// DefaultTargetEnv returns the Debian paths of the servers.
func DefaultTargetEnv(bpfdbBinary string, p Params) TargetEnv {
	return TargetEnv{
		BpfdbBinary: bpfdbBinary,
		RedisServer: "/usr/bin/redis-server",
		PostgresBin: "/usr/lib/postgresql/15/bin",
		Keys:        p.Keys,
		ValueSize:   p.ValueSize,
	}
}

// targetMakers builds targets by name.
var targetMakers = map[string]func(TargetEnv) Target{
	"embedded": func(env TargetEnv) Target { return newEmbedded(env) },
	"serve":    func(env TargetEnv) Target { return newServe(env) },
	"redis":    func(env TargetEnv) Target { return newRedis(env) },
	"pebble":   func(env TargetEnv) Target { return newPebble(env) },
	"postgres": func(env TargetEnv) Target { return newPostgres(env) },
}

// TargetNames lists the targets in report order: bpfdb's first.
var TargetNames = []string{"embedded", "serve", "redis", "pebble", "postgres"}

// IsBpfdb reports whether the named target is bpfdb itself (whose rows
// get a ratio to the best alternative).
func IsBpfdb(name string) bool { return name == "embedded" || name == "serve" }

// NewTarget returns the named target.
func NewTarget(name string, env TargetEnv) (Target, error) {
	mk, ok := targetMakers[name]
	if !ok {
		names := make([]string, 0, len(targetMakers))
		for n := range targetMakers {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown target %q (have %s)", name, strings.Join(names, ", "))
	}
	return mk(env), nil
}
