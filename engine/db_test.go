package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Databases are separate keyspaces of one store: the same key in two is
// two keys, through every path (autocommit, batches, transactions,
// expiry, scans, the log, checkpoints), and BPF programs name theirs.
func TestDatabases(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, Options{MaxKeys: 1024, Dir: dir})
	long := longKeyOf(100, "db")
	var ops []Op
	for db := range Databases {
		ops = append(ops, Op{Kind: OpSet, DB: db, Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", db)},
			Op{Kind: OpSet, DB: db, Key: long, Value: fmt.Appendf(nil, "long%d", db)})
	}
	if err := e.Exec(ops); err != nil {
		t.Fatal(err)
	}
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Run([]Op{{Kind: OpDelete, DB: 3, Key: []byte("k")}, {Kind: OpSet, DB: 4, Key: []byte("t"), Value: []byte("txn"), ExpireAt: e.Now() + 3600_000}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, err := e.Stats(); err != nil || st.ExpiryPendingDB[4] != 1 || st.ExpiryPending != 1 {
		t.Fatalf("a transaction's deadline in database 4: pending by database %v, %v", st.ExpiryPendingDB, err)
	}
	if ops := []Op{{Kind: OpSet, DB: 5, Key: []byte("k"), Value: []byte("short-lived"), ExpireAt: e.Now() + 20}}; e.Batch(ops) != nil || ops[0].Err != nil {
		t.Fatal(ops[0].Err)
	}
	want := func(db int, k string) string {
		switch {
		case k == "t" && db == 4:
			return "txn"
		case k == "t", k == "k" && (db == 3 || db == 5):
			return ""
		case k == "k":
			return fmt.Sprintf("v%d", db)
		}
		return fmt.Sprintf("long%d", db)
	}
	check := func(e *Engine, what string) {
		t.Helper()
		for db := range Databases {
			for _, k := range []string{"k", string(long), "t"} {
				ops := []Op{{Kind: OpGet, DB: db, Key: []byte(k)}}
				if err := e.Exec(ops); err != nil {
					t.Fatal(err)
				}
				if got := string(ops[0].Value); got != want(db, k) || (got == "") != errors.Is(ops[0].Err, ErrNotFound) {
					t.Fatalf("%s: database %d, %d-byte key: %q, %v; want %q", what, db, len(k), got, ops[0].Err, want(db, k))
				}
			}
		}
		n := 0
		if err := e.Scan(func(it *Item) bool {
			db, k, v := it.DB, it.Key, it.Value
			if string(v) != want(db, string(k)) {
				t.Errorf("%s: Scan: database %d, %d-byte key: %q", what, db, len(k), v)
			}
			n++
			return true
		}); err != nil || n != 2*Databases-1 {
			t.Fatalf("%s: Scan: %d keys, %v; want %d", what, n, err, 2*Databases-1)
		}
	}
	time.Sleep(50 * time.Millisecond) // database 5's k expires
	check(e, "before")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, Options{MaxKeys: 1024, Dir: dir})
	check(e, "after replaying the log")
	if _, err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, Options{MaxKeys: 1024, Dir: dir})
	check(e, "after loading the checkpoint")

	if err := e.Set([]byte("x"), []byte("y")); err != nil {
		t.Fatal(err)
	}
	if ops := []Op{{Kind: OpGet, DB: Databases, Key: []byte("x")}}; !errors.Is(e.Exec(ops), ErrNoSuchDB) && !errors.Is(ops[0].Err, ErrNoSuchDB) {
		t.Fatalf("database %d: %v", Databases, ops[0].Err)
	}
	a := loadAPI(t, e)
	in := setIn("kernel", "v")
	in.Keys[0].Db = 7
	wantStatus(t, "kernel set in database 7", a.mustCall(t, "api_set", 0, in).Status, chainBpfdbStatusBPFDB_OK)
	if ops := []Op{{Kind: OpGet, DB: 7, Key: []byte("kernel")}}; e.Exec(ops) != nil || string(ops[0].Value) != "v" {
		t.Fatalf("a BPF program's write in database 7: %q, %v", ops[0].Value, ops[0].Err)
	}
	in.Keys[0].Db = uint32(Databases)
	wantStatus(t, "kernel set in no database", a.mustCall(t, "api_set", 0, in).Status, chainBpfdbStatusBPFDB_ERR_BAD_REQUEST)
}
