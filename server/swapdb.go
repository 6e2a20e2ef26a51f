package server

// SWAPDB: the databases a client names (SELECT n) are names for the
// store's databases (engine.Op.DB), and SWAPDB swaps two names. Swapping
// the data would be a transaction over every key of both databases, which
// no-wait key locks cannot protect against new keys (phantoms); swapping
// names moves nothing, so it is O(1) whatever the databases hold.
//
// Invariants:
//
//  1. Every engine call the server makes for a client runs under the
//     names' read lock (dbNames.hold), with the store's numbers of the
//     databases it touches resolved under that same hold: an autocommit
//     op is one engine call, a server transaction's attempt one hold
//     (tryTxn), a scan and what it deletes (FLUSHDB) one hold. SWAPDB
//     takes the write lock, so every such call sees the names before it
//     or after it, never both: each is serialized on one side of the
//     swap. Holds never nest, and no holder waits for another, so the
//     write lock waits only for engine calls in flight.
//  2. Ops a connection keeps between attempts (gathered ops, refused and
//     run again) carry its database's name; only the op array handed to
//     the engine carries store numbers, for the length of the call
//     (submit).
//  3. The names are stored (engine.SetMeta, synced) before SWAPDB
//     answers and before any command sees them, so a restart keeps every
//     swap a client was told of.
//  4. A WATCH across a swap fails its EXEC (gen), as Redis fails a
//     transaction watching a key of a swapped database.
//
// The names are the server's: BPF programs using the store (key.db), the
// memcached paths (database 0) and `bpfdb wal dump` use the store's
// numbers; INFO keyspace, DBSIZE and `bpfdb recover --dump` use names.

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/bpfdb/bpfdb/engine"
)

// DBNamesMeta is the engine.SetMeta (logd.Log.SetMeta) name under which
// the server stores its database names: byte n is the store's number of
// the database clients name n (SELECT n). Read it with DBNames.
const DBNamesMeta = "server.db-names"

// DBNames returns, by the store's number, the name clients give each
// database, from what the server stored under DBNamesMeta (nil: none
// stored, the identity).
func DBNames(stored []byte) (names [engine.Databases]int, err error) {
	var d dbNames
	if err := d.parse(stored); err != nil {
		return names, err
	}
	for i, n := range d.name {
		names[i] = int(n)
	}
	return names, nil
}

// dbNames maps the databases clients name to the store's.
type dbNames struct {
	mu    sync.RWMutex
	store [engine.Databases]uint8 // by name
	name  [engine.Databases]uint8 // by store number
	gen   atomic.Uint64           // swaps so far
}

// load reads the stored names (the identity when none were stored).
func (d *dbNames) load(e *engine.Engine) error {
	b, err := e.Meta(DBNamesMeta)
	if err != nil {
		return fmt.Errorf("bpfdb: server: reading the database names: %w", err)
	}
	return d.parse(b)
}

// parse sets the names from b, stored by swap (nil: the identity).
func (d *dbNames) parse(b []byte) error {
	for i := range d.store {
		d.store[i] = uint8(i)
	}
	if b != nil {
		if len(b) != engine.Databases {
			return fmt.Errorf("bpfdb: server: the stored database names are %d bytes, want %d", len(b), engine.Databases)
		}
		copy(d.store[:], b)
	}
	var seen [engine.Databases]bool
	for n, s := range d.store {
		if int(s) >= engine.Databases || seen[s] {
			return fmt.Errorf("bpfdb: server: the stored database names %v are not a permutation", d.store)
		}
		seen[s] = true
		d.name[s] = uint8(n)
	}
	return nil
}

// hold takes the names' read lock for one engine call or one transaction
// attempt (invariant 1); release with d.mu.RUnlock.
func (d *dbNames) hold() { d.mu.RLock() }

// storeDB is the store's number of the database named db; under hold.
func (d *dbNames) storeDB(db int) int { return int(d.store[db]) }

// nameOf is the name of the store's database db; under hold.
func (d *dbNames) nameOf(db int) int { return int(d.name[db]) }

// toStore rewrites ops' databases from names to store numbers; under
// hold, undone by toNames before the hold ends (invariant 2).
func (d *dbNames) toStore(ops []engine.Op) {
	for i := range ops {
		ops[i].DB = int(d.store[ops[i].DB])
	}
}

// toNames undoes toStore.
func (d *dbNames) toNames(ops []engine.Op) {
	for i := range ops {
		ops[i].DB = int(d.name[ops[i].DB])
	}
}

// swap swaps names a and b, storing the result first (invariant 3).
func (d *dbNames) swap(e *engine.Engine, a, b int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := d.store
	next[a], next[b] = next[b], next[a]
	if err := e.SetMeta(DBNamesMeta, next[:]); err != nil {
		return fmt.Errorf("bpfdb: SWAPDB not done: storing the database names: %w", err)
	}
	d.store = next
	for n, st := range d.store {
		d.name[st] = uint8(n)
	}
	d.gen.Add(1)
	return nil
}

// submit runs ops, whose databases are names, as engine.TrySubmit (the
// loop's and the batcher's one engine call).
func (s *Server) submit(ops []engine.Op) (uint64, error) {
	s.dbs.hold()
	defer s.dbs.mu.RUnlock()
	s.dbs.toStore(ops)
	defer s.dbs.toNames(ops)
	return s.e.TrySubmit(ops)
}

// exec runs ops, whose databases are names, as engine.Exec.
func (s *Server) exec(ops []engine.Op) error {
	s.dbs.hold()
	defer s.dbs.mu.RUnlock()
	s.dbs.toStore(ops)
	defer s.dbs.toNames(ops)
	return s.e.Exec(ops)
}

// keyCounts is the engine's count of keys (engine.Keys) by database name,
// and of those with a deadline by st's count (nil: none counted).
func (s *Server) keyCounts(st *engine.Stats) (n, expiring [engine.Databases]int64, err error) {
	s.dbs.hold()
	defer s.dbs.mu.RUnlock()
	keys, err := s.e.Keys()
	for db := range n {
		n[db] = keys[s.dbs.storeDB(db)]
		if st != nil {
			expiring[db] = min(int64(st.ExpiryPendingDB[s.dbs.storeDB(db)]), n[db])
		}
	}
	return n, expiring, err
}

var errSwapIndex = errors.New("ERR DB index is out of range")

// cmdSwapDB answers SWAPDB a b: the two names swapped, durably, for every
// client at once.
func cmdSwapDB(c *conn, a [][]byte) {
	var dbs [2]int
	for i, arg := range a[1:3] {
		n, err := strconv.Atoi(string(arg))
		if err != nil {
			c.wr.Error("ERR invalid " + [2]string{"first", "second"}[i] + " DB index")
			return
		}
		if n < 0 || n >= engine.Databases {
			c.wr.Error(errSwapIndex.Error())
			return
		}
		dbs[i] = n
	}
	if dbs[0] != dbs[1] {
		if err := c.s.dbs.swap(c.s.e, dbs[0], dbs[1]); err != nil {
			c.wr.Error(errorText(err))
			return
		}
	}
	c.wr.Simple("OK")
}
