package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
)

// Regressions for findings of the review of the server.

// A key absent at WATCH, created and deleted again before EXEC, has
// changed: EXEC must fail, as in Redis (the deletion has a version).
func TestWatchSeesCreateThenDelete(t *testing.T) {
	ts := startServer(t, Config{}, false)
	a, b := ts.raw(t), ts.raw(t)
	if got := a.do(t, "WATCH", "ghost"); got != respStatus("OK") {
		t.Fatalf("WATCH = %v", got)
	}
	b.do(t, "SET", "ghost", "1")
	b.do(t, "DEL", "ghost")
	a.do(t, "MULTI")
	a.do(t, "SET", "ghost", "2")
	if got := a.do(t, "EXEC"); got != (nullArray{}) {
		t.Fatalf("EXEC after the watched key was created and deleted = %#v, want a null array", got)
	}
	if got := b.do(t, "GET", "ghost"); got != nil {
		t.Fatalf("GET ghost = %#v, want null: the EXEC must not have run", got)
	}
}

// SHUTDOWN ABORT cancels nothing here; it must not shut the server down.
func TestShutdownAbortIsNotAShutdown(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.raw(t)
	if _, ok := c.do(t, "SHUTDOWN", "ABORT").(respError); !ok {
		t.Fatal("SHUTDOWN ABORT did not answer an error")
	}
	select {
	case <-ts.srv.ShutdownRequested():
		t.Fatal("SHUTDOWN ABORT requested a shutdown")
	default:
	}
}

// A pipeline op refused by a long lock holder is re-run by the server after
// a backoff; nothing after it in the pipeline may run before it, even when
// the pipeline spans two chain runs (found by review: a DEL in the second
// run ran, then ran again on the retry, deleting another client's value).
func TestRefusedPipelineOpHoldsBackTheRest(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c, other := ts.raw(t), ts.raw(t)
	c.do(t, "SET", "d", "old")
	tx, err := ts.eng.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Run([]engine.Op{{Kind: engine.OpGet, Key: []byte("hot"), ForUpdate: true}}); err != nil {
		t.Fatal(err)
	}
	const n = engine.MaxBatch + 6
	var pipe []byte
	for i := 0; i < n; i++ {
		switch i {
		case 10:
			pipe = append(pipe, encode("SET", "hot", "x")...)
		case n - 1:
			pipe = append(pipe, encode("DEL", "d")...)
		default:
			pipe = append(pipe, encode("GET", "k")...)
		}
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(pipe); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := other.do(t, "GET", "d"); got != "old" {
		t.Fatalf("GET d while SET hot waits for its lock = %#v: the DEL behind it ran", got)
	}
	tx.Abort()
	for i := 0; i < n; i++ {
		r, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if i == n-1 && fmt.Sprint(r) != "1" {
			t.Fatalf("DEL d = %#v, want 1", r)
		}
		if i == 10 && r != respStatus("OK") {
			t.Fatalf("SET hot = %#v, want OK once the lock is free", r)
		}
	}
	if got := other.do(t, "GET", "hot"); got != "x" {
		t.Fatalf("GET hot = %#v", got)
	}
}
