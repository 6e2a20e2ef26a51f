package bench

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/bpfdb/bpfdb/engine"
)

// embedded is bpfdb's engine in this process: engine.Open with a
// temporary Dir and the durability (engine.Sync or engine.Async). YCSB
// uses Get and Set, or Batch for a pipeline. A transfer is a Begin, one
// Txn.Run of the two Gets (ForUpdate: it writes both keys, so it takes
// their exclusive locks at the read) and one Txn.CommitWith of the two
// Sets: two chain runs, retried on ErrConflict. Loading BPF needs root.
type embedded struct {
	env TargetEnv
	dir string
	e   *engine.Engine
}

func newEmbedded(env TargetEnv) *embedded { return &embedded{env: env} }

func (t *embedded) Name() string { return "embedded" }

func (t *embedded) Check() error {
	if os.Geteuid() != 0 {
		return skipf("not root: loading bpfdb's BPF programs needs root")
	}
	if t.env.ValueSize > engine.DefaultMaxValueLen {
		return skipf("values of %d bytes exceed bpfdb's limit of %d", t.env.ValueSize, engine.DefaultMaxValueLen)
	}
	return nil
}

// engineOptions sizes the index for the records and the accounts, and the
// value store for three versions of every record (slots round values up
// to a power of two).
func engineOptions(keys, valueSize int) engine.Options {
	opts := engine.Options{MaxKeys: 2*keys + 4096}
	slot := 32
	for slot < valueSize {
		slot *= 2
	}
	opts.MaxMemory = int64(opts.MaxKeys)*1024 + int64(max(3*keys, 2*opts.MaxKeys))*int64(slot)
	return opts
}

func (t *embedded) Start(ctx context.Context, d Durability) error {
	dir, err := os.MkdirTemp("", "bpfdb-bench-embedded-")
	if err != nil {
		return err
	}
	opts := engineOptions(t.env.Keys, t.env.ValueSize)
	opts.Dir = dir
	opts.Durability = engine.Sync
	if d == Async {
		opts.Durability = engine.Async
	}
	e, err := engine.Open(opts)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, engine.ErrNotPermitted) {
			return skipf("%v", err)
		}
		return err
	}
	t.dir, t.e = dir, e
	return nil
}

func (t *embedded) Load(ctx context.Context, pairs []KV) error {
	return parallelChunks(ctx, len(pairs), 4, 64, func(lo, hi int) error {
		ops := make([]engine.Op, 0, hi-lo)
		for _, kv := range pairs[lo:hi] {
			ops = append(ops, engine.Op{Kind: engine.OpSet, Key: kv.Key, Value: kv.Value})
		}
		for attempt := 0; ; attempt++ {
			if err := t.e.Batch(ops); err != nil {
				return err
			}
			failed := ops[:0]
			for _, op := range ops {
				if op.Err != nil {
					if !engine.Retryable(op.Err) || attempt >= 100 {
						return fmt.Errorf("loading %s: %w", op.Key, op.Err)
					}
					failed = append(failed, engine.Op{Kind: engine.OpSet, Key: op.Key, Value: op.Value})
				}
			}
			if len(failed) == 0 {
				return nil
			}
			ops = failed
		}
	})
}

func (t *embedded) Supports(ctx context.Context, w Workload) error { return nil }

func (t *embedded) Connect(ctx context.Context) (Conn, error) { return embeddedConn{t.e}, nil }

func (t *embedded) Stop() error {
	var err error
	if t.e != nil {
		err = t.e.Close()
		t.e = nil
	}
	if t.dir != "" {
		err = errors.Join(err, os.RemoveAll(t.dir))
		t.dir = ""
	}
	return err
}

// embeddedConn shares the engine: it is safe for concurrent use.
type embeddedConn struct{ e *engine.Engine }

func (c embeddedConn) Do(ctx context.Context, ops []Op) (int, error) {
	if len(ops) == 1 {
		op := &ops[0]
		var err error
		if op.Write {
			err = c.e.Set(op.Key, op.Value)
		} else {
			op.Value, err = c.e.Get(op.Key)
		}
		return classifyEngine(op.Key, err)
	}
	batch := make([]engine.Op, len(ops))
	for i, op := range ops {
		batch[i] = engine.Op{Kind: engine.OpGet, Key: op.Key}
		if op.Write {
			batch[i] = engine.Op{Kind: engine.OpSet, Key: op.Key, Value: op.Value}
		}
	}
	if err := c.e.Batch(batch); err != nil {
		return 0, err
	}
	aborted := 0
	for i, op := range batch {
		if !ops[i].Write {
			ops[i].Value = op.Value
		}
		n, err := classifyEngine(op.Key, op.Err)
		if err != nil {
			return aborted, err
		}
		aborted += n
	}
	return aborted, nil
}

// classifyEngine turns an engine outcome into (aborted, error).
func classifyEngine(key []byte, err error) (int, error) {
	switch {
	case err == nil:
		return 0, nil
	case errors.Is(err, engine.ErrNotFound):
		return 0, fmt.Errorf("%s: %w", key, ErrNotFound)
	case engine.Retryable(err):
		return 1, nil
	}
	return 0, err
}

func (c embeddedConn) Transfer(ctx context.Context, from, to []byte, amount int64) error {
	err := c.transfer(from, to, amount)
	if err != nil && engine.Retryable(err) {
		return fmt.Errorf("%w: %v", ErrAborted, err)
	}
	return err
}

func (c embeddedConn) transfer(from, to []byte, amount int64) error {
	tx, err := c.e.Begin()
	if err != nil {
		return err
	}
	defer tx.Abort()
	reads := []engine.Op{
		{Kind: engine.OpGet, Key: from, ForUpdate: true},
		{Kind: engine.OpGet, Key: to, ForUpdate: true},
	}
	if err := tx.Run(reads); err != nil {
		return err
	}
	var bal [2]int64
	for i, op := range reads {
		if op.Err != nil {
			return fmt.Errorf("%s: %w", op.Key, ErrNotFound)
		}
		if bal[i], err = ParseBalance(op.Value); err != nil {
			return err
		}
	}
	return tx.CommitWith([]engine.Op{
		{Kind: engine.OpSet, Key: from, Value: FormatBalance(bal[0] - amount)},
		{Kind: engine.OpSet, Key: to, Value: FormatBalance(bal[1] + amount)},
	})
}

func (c embeddedConn) Close() error { return nil }
