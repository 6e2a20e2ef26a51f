package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble"
)

// pebbleTarget is pebble used directly in this process: the user-space
// embedded baseline. Writes use pebble.Sync for sync durability and
// pebble.NoSync for async; a pipeline's writes go in one batch. A transfer
// is what a user would build on pebble: per-account mutexes taken in
// account order, two reads, one batch of two writes, committed (synced
// for sync durability) before the locks are released.
type pebbleTarget struct {
	env   TargetEnv
	dir   string
	db    *pebble.DB
	wo    *pebble.WriteOptions
	locks *keyLocks
}

func newPebble(env TargetEnv) *pebbleTarget { return &pebbleTarget{env: env} }

func (t *pebbleTarget) Name() string { return "pebble" }

func (t *pebbleTarget) Check() error { return nil }

func (t *pebbleTarget) Start(ctx context.Context, d Durability) error {
	dir, err := os.MkdirTemp("", "bpfdb-bench-pebble-")
	if err != nil {
		return err
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebbleLogger{}})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	t.dir, t.db, t.wo = dir, db, pebble.Sync
	if d == Async {
		t.wo = pebble.NoSync
	}
	t.locks = newKeyLocks()
	return nil
}

func (t *pebbleTarget) Load(ctx context.Context, pairs []KV) error {
	return parallelChunks(ctx, len(pairs), 2, 1000, func(lo, hi int) error {
		b := t.db.NewBatch()
		defer b.Close()
		for _, kv := range pairs[lo:hi] {
			b.Set(kv.Key, kv.Value, nil)
		}
		return b.Commit(t.wo)
	})
}

func (t *pebbleTarget) Supports(ctx context.Context, w Workload) error { return nil }

func (t *pebbleTarget) Connect(ctx context.Context) (Conn, error) { return (*pebbleConn)(t), nil }

func (t *pebbleTarget) Stop() error {
	var err error
	if t.db != nil {
		err = t.db.Close()
		t.db = nil
	}
	if t.dir != "" {
		err = errors.Join(err, os.RemoveAll(t.dir))
		t.dir = ""
	}
	return err
}

// pebbleConn shares the target's DB, which is safe for concurrent use.
type pebbleConn pebbleTarget

func (c *pebbleConn) get(key []byte) ([]byte, error) {
	v, closer, err := c.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	v = append([]byte(nil), v...)
	return v, closer.Close()
}

func (c *pebbleConn) Do(ctx context.Context, ops []Op) (int, error) {
	if len(ops) == 1 && ops[0].Write {
		return 0, c.db.Set(ops[0].Key, ops[0].Value, c.wo)
	}
	var b *pebble.Batch
	for i := range ops {
		if !ops[i].Write {
			v, err := c.get(ops[i].Key)
			if err != nil {
				return 0, err
			}
			ops[i].Value = v
			continue
		}
		if b == nil {
			b = c.db.NewBatch()
			defer b.Close()
		}
		b.Set(ops[i].Key, ops[i].Value, nil)
	}
	if b != nil {
		return 0, b.Commit(c.wo)
	}
	return 0, nil
}

func (c *pebbleConn) Transfer(ctx context.Context, from, to []byte, amount int64) error {
	unlock := c.locks.lock(from, to)
	defer unlock()
	va, err := c.get(from)
	if err != nil {
		return err
	}
	vb, err := c.get(to)
	if err != nil {
		return err
	}
	a, err := ParseBalance(va)
	if err != nil {
		return err
	}
	b, err := ParseBalance(vb)
	if err != nil {
		return err
	}
	batch := c.db.NewBatch()
	defer batch.Close()
	batch.Set(from, FormatBalance(a-amount), nil)
	batch.Set(to, FormatBalance(b+amount), nil)
	return batch.Commit(c.wo)
}

func (c *pebbleConn) Close() error { return nil }

// keyLocks are per-key mutexes created on first use. lock takes two of
// them in key order, so two transfers never wait for each other in a cycle.
type keyLocks struct{ m sync.Map } // string(key) -> *sync.Mutex

func newKeyLocks() *keyLocks { return &keyLocks{} }

func (l *keyLocks) get(key []byte) *sync.Mutex {
	if m, ok := l.m.Load(string(key)); ok {
		return m.(*sync.Mutex)
	}
	m, _ := l.m.LoadOrStore(string(key), new(sync.Mutex))
	return m.(*sync.Mutex)
}

// lock locks a and b (once if equal), lower key first; it returns the unlock.
func (l *keyLocks) lock(a, b []byte) func() {
	if string(a) > string(b) {
		a, b = b, a
	}
	ma, mb := l.get(a), l.get(b)
	ma.Lock()
	if mb == ma {
		return ma.Unlock
	}
	mb.Lock()
	return func() { mb.Unlock(); ma.Unlock() }
}

// quietPebbleLogger drops pebble's informational logging.
type quietPebbleLogger struct{}

func (quietPebbleLogger) Infof(string, ...any)  {}
func (quietPebbleLogger) Errorf(string, ...any) {}
func (quietPebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
