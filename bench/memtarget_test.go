package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// memTarget is an in-process map: a correct target for the harness's own
// tests, which can be made to break transfers in chosen ways.
type memTarget struct {
	name string
	// transfer, if set, replaces the correct transfer.
	transfer func(m *memTarget, from, to []byte, amount int64) error
	// abortEvery, if positive, aborts one transfer attempt in abortEvery.
	abortEvery int
	// skip, if set, is returned by Check.
	skip error

	mu    sync.Mutex
	data  map[string][]byte
	calls int
}

func (m *memTarget) Name() string {
	if m.name == "" {
		return "memory"
	}
	return m.name
}
func (m *memTarget) Check() error { return m.skip }
func (m *memTarget) Start(ctx context.Context, d Durability) error {
	m.data = map[string][]byte{}
	return nil
}
func (m *memTarget) Load(ctx context.Context, pairs []KV) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, kv := range pairs {
		m.data[string(kv.Key)] = append([]byte(nil), kv.Value...)
	}
	return nil
}
func (m *memTarget) Supports(ctx context.Context, w Workload) error { return nil }
func (m *memTarget) Connect(ctx context.Context) (Conn, error)      { return memConn{m}, nil }
func (m *memTarget) Stop() error                                    { return nil }
func (m *memTarget) get(k []byte) []byte                            { m.mu.Lock(); defer m.mu.Unlock(); return m.data[string(k)] }
func (m *memTarget) set(k, v []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[string(k)] = append([]byte(nil), v...)
}
func (m *memTarget) balance(k []byte) int64       { n, _ := ParseBalance(m.get(k)); return n }
func (m *memTarget) setBalance(k []byte, n int64) { m.set(k, FormatBalance(n)) }

type memConn struct{ m *memTarget }

func (c memConn) Do(ctx context.Context, ops []Op) (int, error) {
	for i := range ops {
		if ops[i].Write {
			c.m.set(ops[i].Key, ops[i].Value)
			continue
		}
		v := c.m.get(ops[i].Key)
		if v == nil {
			return 0, fmt.Errorf("%s: %w", ops[i].Key, ErrNotFound)
		}
		ops[i].Value = v
	}
	return 0, nil
}

func (c memConn) Transfer(ctx context.Context, from, to []byte, amount int64) error {
	m := c.m
	if m.abortEvery > 0 {
		m.mu.Lock()
		m.calls++
		abort := m.calls%m.abortEvery == 0
		m.mu.Unlock()
		if abort {
			return fmt.Errorf("%w: injected", ErrAborted)
		}
	}
	if m.transfer != nil {
		return m.transfer(m, from, to, amount)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, _ := ParseBalance(m.data[string(from)])
	b, _ := ParseBalance(m.data[string(to)])
	m.data[string(from)] = FormatBalance(a - amount)
	m.data[string(to)] = FormatBalance(b + amount)
	return nil
}

func (c memConn) Close() error { return nil }

// Broken transfers, for the conservation check to catch.
var (
	// losesMoney credits one less than it debits.
	losesMoney = func(m *memTarget, from, to []byte, amount int64) error {
		m.setBalance(from, m.balance(from)-amount)
		m.setBalance(to, m.balance(to)+amount-1)
		return nil
	}
	// createsMoney credits one more than it debits.
	createsMoney = func(m *memTarget, from, to []byte, amount int64) error {
		m.setBalance(from, m.balance(from)-amount)
		m.setBalance(to, m.balance(to)+amount+1)
		return nil
	}
	// notAtomic reads and writes each balance separately, so concurrent
	// transfers lose each other's updates.
	notAtomic = func(m *memTarget, from, to []byte, amount int64) error {
		a, b := m.balance(from), m.balance(to)
		time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond)
		m.setBalance(from, a-amount)
		m.setBalance(to, b+amount)
		return nil
	}
)
