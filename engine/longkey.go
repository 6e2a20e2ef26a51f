package engine

// Keys longer than InlineKeyLen (bpf/include/bpfdb.h, struct bpfdb_key).
// The index is a BPF hash map with fixed-size keys of InlineKeyLen bytes,
// so a longer key is held there by its index key: its length, its SHA-256
// and its first keyDigestLen bytes. The chain never sees the difference.
// The engine keeps every long key whole (longKeys) for what must name it:
// the log drain (a ring record carries the index key), checkpoints and
// scans (they walk the index), and the vacuum's hand-off to the expirer.
//
// Invariants:
//
//  1. The index key of a key is a pure function of the key (indexKey): any
//     caller can compute it, none needs the table to write or read.
//  2. longKeys holds a long key while the index may hold a record of it or
//     the ring a log record naming it. Every op naming it holds it from
//     its encoding to its request slot's release (hold, release); Vacuum
//     forgets it only when no op held or released it since a walk of the
//     index began, the walk met no record of it, and the log is durable
//     past the store's clock as read after that walk (every commit naming
//     it was logged before the record went). A record is removed only
//     when empty and unlocked, so an open transaction's keys stay.
//  3. Two long keys with the same length and SHA-256 are taken to be the
//     same key; hold checks the bytes and panics if they differ.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/bpfdb/bpfdb/logd"
)

const (
	// InlineKeyLen is the longest key the index holds as itself, and the
	// longest key a BPF program may use (bpfdb_api.h).
	InlineKeyLen = int(chainBpfdbLimitBPFDB_MAX_KEY_LEN)
	// DefaultMaxKeyLen is Options.MaxKeyLen by default.
	DefaultMaxKeyLen = 512
	// MaxKeyLenLimit is the largest Options.MaxKeyLen.
	MaxKeyLenLimit = int(chainBpfdbLimitBPFDB_MAX_LONG_KEY_LEN)

	keyDigestLen = int(chainBpfdbLimitBPFDB_KEY_DIGEST_LEN)
)

// The log can hold the longest key: the difference must not be negative.
var _ [logd.MaxKeyLen - MaxKeyLenLimit]struct{}

// indexKey writes the index key of key, of database db, into k
// (invariant 1).
func indexKey(k *chainBpfdbKey, db int, key []byte) {
	k.Len, k.Db = uint32(len(key)), uint32(db)
	if len(key) <= InlineKeyLen {
		k.Data = [InlineKeyLen]byte{}
		copy(k.Data[:], key)
		return
	}
	sum := sha256.Sum256(key)
	copy(k.Data[:keyDigestLen], sum[:])
	copy(k.Data[keyDigestLen:], key)
}

// isLong reports whether k is the index key of a long key.
func (k *chainBpfdbKey) isLong() bool { return int(k.Len) > InlineKeyLen }

// digestOf is the table's key for the long key whose index key is k.
func digestOf(k *chainBpfdbKey) longDigest {
	var d longDigest
	d.len = k.Len
	copy(d.sum[:], k.Data[:keyDigestLen])
	return d
}

type longDigest struct {
	len uint32
	sum [keyDigestLen]byte
}

// longKey is a long key and what Vacuum needs to know to forget it.
type longKey struct {
	key     []byte
	refs    int    // ops in flight holding it
	touched uint64 // the walk epoch of its last hold or release
	seen    uint64 // the epoch of the last walk that met its record
	gone    uint64 // the clock after the walk (goneEpoch) that did not meet it; 0: none
	goneAt  uint64 // that walk's epoch
}

// longKeys is the engine's table of long keys (invariant 2).
type longKeys struct {
	mu    sync.Mutex
	keys  map[longDigest]*longKey
	epoch uint64 // of the last walk begun
}

// hold registers key, a long key whose index key is k, for an op about
// to run, and returns what release gives back.
func (t *longKeys) hold(k *chainBpfdbKey, key []byte) *longKey {
	d := digestOf(k)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = make(map[longDigest]*longKey)
	}
	l := t.keys[d]
	if l == nil {
		l = &longKey{key: bytes.Clone(key)}
		t.keys[d] = l
	} else if !bytes.Equal(l.key, key) {
		panic(fmt.Sprintf("bpfdb: two keys of %d bytes with one SHA-256", len(key))) // invariant 3
	}
	l.refs++
	l.touched = t.epoch
	return l
}

// release gives back holds taken by hold.
func (t *longKeys) release(held []*longKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range held {
		if l.refs <= 0 {
			panic("bpfdb: long key released more often than held")
		}
		l.refs--
		l.touched = t.epoch
	}
}

// key returns the whole key whose index key is k: for a long key, the
// one the table holds (false if it holds none: never while a record of
// it exists, invariant 2).
func (t *longKeys) key(k *chainBpfdbKey) ([]byte, bool) {
	if !k.isLong() {
		return k.Data[:k.Len], true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.keys[digestOf(k)]
	if l == nil {
		return nil, false
	}
	return l.key, true
}

// beginWalk starts a walk of the index and returns its epoch.
func (t *longKeys) beginWalk() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.epoch++
	return t.epoch
}

// met notes that the walk of epoch saw a record of index key k, and
// returns the whole key (false: the table does not hold it).
func (t *longKeys) met(k *chainBpfdbKey, epoch uint64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.keys[digestOf(k)]
	if l == nil {
		return nil, false
	}
	l.seen = epoch
	return l.key, true
}

// endWalk forgets the long keys that may go (invariant 2), after the walk
// of epoch went through the whole index: clock is the store's clock read
// after it, durable the durable LSN read after that (logged: whether the
// store has a log at all).
func (t *longKeys) endWalk(epoch, clock, durable uint64, logged bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for d, l := range t.keys {
		switch {
		case l.refs > 0 || l.seen == epoch || l.touched >= epoch:
			l.gone = 0 // in use during the walk
		case l.gone == 0 || l.touched >= l.goneAt:
			l.gone, l.goneAt = max(clock, 1), epoch
		}
		if l.gone != 0 && (!logged || l.gone <= durable) {
			delete(t.keys, d)
		}
	}
}

// count is how many long keys the table holds.
func (t *longKeys) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}
