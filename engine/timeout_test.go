// Specification: abandoned transactions (Options.TxnTimeout). A transaction
// idle for longer than the timeout is aborted: its locks are released
// within a bounded wait so another writer can take the key, its buffered
// writes are never applied, a read-only one stops pinning old versions,
// and every later call on it returns ErrTxnExpired. A transaction that
// keeps working is never expired.
package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAbandonedTxn(t *testing.T) {
	const timeout = 50 * time.Millisecond
	e := openTest(t, Options{MaxKeys: 64, TxnTimeout: timeout})
	k := []byte("k")
	specSet(t, e, k, []byte("v0"))

	abandoned, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer abandoned.Abort()
	if err := abandoned.Set(k, []byte("abandoned")); err != nil {
		t.Fatal(err)
	}
	if err := abandoned.Set([]byte("other"), []byte("abandoned")); err != nil {
		t.Fatal(err)
	}
	// The lock is held for now.
	probe, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = probe.Get(k)
	specIs(t, "Get of a key the abandoned txn holds, before its timeout", err, ErrConflict)

	start := time.Now()
	var won bool
	for deadline := start.Add(40 * timeout); time.Now().Before(deadline); time.Sleep(timeout / 10) {
		err := e.Set(k, []byte("winner"))
		if err == nil {
			won = true
			break
		}
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("Set while waiting for the abandoned lock: %v", err)
		}
	}
	if !won {
		t.Fatalf("the abandoned transaction's lock was not released within %v (TxnTimeout %v)", time.Since(start), timeout)
	}
	t.Logf("lock taken after %v", time.Since(start))
	specWant(t, e, k, []byte("winner"))
	specAbsent(t, e, []byte("other"))
	specFree(t, e, []byte("other"))

	_, err = abandoned.Get(k)
	specIs(t, "Get", err, ErrTxnExpired)
	specIs(t, "Set", abandoned.Set(k, []byte("late")), ErrTxnExpired)
	specIs(t, "Delete", abandoned.Delete(k), ErrTxnExpired)
	err = abandoned.Commit()
	specIs(t, "Commit", err, ErrTxnExpired)
	specMentions(t, err, fmt.Sprint(timeout))
	if err := abandoned.Abort(); err != nil {
		t.Fatalf("Abort of an expired txn: %v", err)
	}
	specWant(t, e, k, []byte("winner"))
}

func TestAbandonedReadOnlyTxn(t *testing.T) {
	const timeout = 50 * time.Millisecond
	e := openTest(t, Options{MaxKeys: 64, TxnTimeout: timeout})
	k := []byte("k")
	specSet(t, e, k, []byte("v0"))
	ro, err := e.BeginReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Abort()
	if v, err := ro.Get(k); err != nil || string(v) != "v0" {
		t.Fatalf("reader: %q, %v", v, err)
	}
	// Idle past the timeout, the reader is aborted and its snapshot released.
	time.Sleep(4 * timeout)
	deadline := time.Now().Add(40 * timeout)
	for e.txns[ro.slot].Load() != nil && time.Now().Before(deadline) {
		time.Sleep(timeout / 10)
	}
	if e.txns[ro.slot].Load() != nil {
		t.Fatalf("the abandoned reader is still open after %v (TxnTimeout %v)", 44*timeout, timeout)
	}
	for w := 0; w < 4*MaxVersions; w++ {
		specSet(t, e, k, specItoa(int64(w)))
	}
	_, err = ro.Get(k)
	specIs(t, "reader Get after expiry", err, ErrTxnExpired)
}

func TestActiveTxnDoesNotExpire(t *testing.T) {
	const timeout = 150 * time.Millisecond
	e := openTest(t, Options{MaxKeys: 64, TxnTimeout: timeout})
	specSet(t, e, []byte("k"), []byte("v"))
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	// Busy for 4 timeouts, never idle for more than a thirtieth of one.
	for start := time.Now(); time.Since(start) < 4*timeout; time.Sleep(timeout / 30) {
		if _, err := tx.Get([]byte("k")); err != nil {
			t.Fatalf("an active transaction failed after %v: %v", time.Since(start), err)
		}
	}
	if err := tx.Set([]byte("k"), []byte("w")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	specWant(t, e, []byte("k"), []byte("w"))
}
