package logd

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

func openLog(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func txn(lsn uint64) Txn {
	return Txn{LSN: lsn, ID: lsn * 10, Writes: []Write{{Key: []byte(fmt.Sprint("k", lsn)), Value: []byte(fmt.Sprint("v", lsn))}}}
}

// appendAll writes txns to l through a Writer of their own, in one batch,
// and closes the Writer: once it returns they are on disk and published.
func appendAll(l *Log, txns ...Txn) {
	w := l.NewWriter()
	for i := range txns {
		w.Add(&txns[i])
	}
	w.Close(time.Time{})
}

// txns returns txn(from) .. txn(to).
func txns(from, to uint64) []Txn {
	var ts []Txn
	for lsn := from; lsn <= to; lsn++ {
		ts = append(ts, txn(lsn))
	}
	return ts
}

// The durable LSN is the end of the gap-free persisted prefix: a commit
// that arrives before an earlier one does not make the earlier one durable.
func TestDurableLSNIsGapFree(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	l.Start(0)
	appendAll(l, txn(2), txn(3))
	if n := l.Stats().Txns.Load(); n != 2 {
		t.Fatalf("%d transactions persisted, want 2", n)
	}
	if got := l.DurableLSN(); got != 0 {
		t.Fatalf("durable LSN %d with LSN 1 missing, want 0", got)
	}
	if done, err := l.Durable(2); done || err != nil {
		t.Fatalf("Durable(2) with LSN 1 missing = %v, %v; want false, nil", done, err)
	}
	appendAll(l, txn(1))
	if err := l.WaitDurable(3); err != nil {
		t.Fatal(err)
	}
	if got := l.DurableLSN(); got != 3 {
		t.Fatalf("durable LSN = %d, want 3", got)
	}
}

// Durable answers without waiting, and OnChange's function is called once
// the durable LSN has moved, so a caller on another goroutine than the
// Writer's can poll Durable again.
func TestDurableWithoutWaiting(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	changed := make(chan struct{}, 16)
	l.OnChange(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	l.Start(0)
	if done, err := l.Durable(1); done || err != nil {
		t.Fatalf("Durable(1) before any append = %v, %v; want false, nil", done, err)
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		appendAll(l, txn(1))
	}()
	defer func() { <-written }() // before l.Close
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("OnChange's function not called within 5s of an append")
		}
		if done, err := l.Durable(1); err != nil {
			t.Fatal(err)
		} else if done {
			break
		}
	}
	if done, _ := l.Durable(2); done {
		t.Fatal("Durable(2) with only LSN 1 appended")
	}
}

// Close ends WaitDurable, for a waiter already blocked and for one that
// comes after, with ErrClosed for what is not durable, and nil for what is.
func TestWaitDurableEndsAtClose(t *testing.T) {
	l := openLog(t, t.TempDir())
	l.Start(0)
	appendAll(l, txn(1))
	waited := make(chan error, 1)
	go func() { waited <- l.WaitDurable(2) }()
	time.Sleep(10 * time.Millisecond) // usually blocked in WaitDurable by now
	select {
	case err := <-waited:
		t.Fatalf("WaitDurable(2) returned %v before Close with LSN 2 never written", err)
	default:
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitDurable(2) ended by Close with %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitDurable(2) still waiting 5s after Close")
	}
	if err := l.WaitDurable(3); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitDurable(3) after Close = %v, want ErrClosed", err)
	}
	if err := l.WaitDurable(1); err != nil {
		t.Fatalf("WaitDurable(1) after Close = %v, want nil: LSN 1 is durable", err)
	}
	if done, err := l.Durable(2); done || !errors.Is(err, ErrClosed) {
		t.Fatalf("Durable(2) after Close = %v, %v; want false, ErrClosed", done, err)
	}
}

// Transactions added to a Writer between two Commits share one fsync
// (group commit), and all replay in order.
func TestGroupCommitAndReplay(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	l.Start(0)
	const n, group = 2000, 100
	w := l.NewWriter()
	for i := uint64(1); i <= n; i++ {
		tx := txn(i)
		w.Add(&tx)
		if i%group == 0 {
			w.Commit()
		}
	}
	w.Close(time.Time{})
	if err := l.WaitDurable(n); err != nil {
		t.Fatal(err)
	}
	if syncs := l.Stats().Syncs.Load(); syncs > n/group {
		t.Errorf("%d syncs for %d transactions committed in groups of %d: no group commit", syncs, n, group)
	}
	l.Close()

	l = openLog(t, dir)
	defer l.Close()
	next := uint64(1)
	st, err := l.Replay(0, 0, func(tx *Txn) error {
		if tx.LSN != next || string(tx.Writes[0].Value) != fmt.Sprint("v", next) {
			return fmt.Errorf("replayed LSN %d (%q), want %d", tx.LSN, tx.Writes[0].Value, next)
		}
		next++
		return nil
	})
	if err != nil || st.Damage != nil || st.Txns != n || st.Last != n {
		t.Fatalf("replay: %+v, %v", st, err)
	}
	st, _ = l.Replay(0, 100, func(*Txn) error { return nil })
	if st.Last != 100 {
		t.Fatalf("replay until 100 ended at %d", st.Last)
	}
}

// A finished checkpoint loads back whole, trims the log at and below it,
// and one never finished is ignored.
func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	l.Start(0)
	appendAll(l, txns(1, 10)...) // a group
	appendAll(l, txns(11, 20)...)
	l.WaitDurable(20)
	cw := l.NewCheckpoint(15)
	for i := 0; i < 100; i++ {
		cw.Add(i%3, []byte(fmt.Sprint("key", i)), Entry{Value: []byte(fmt.Sprint("value", i)), ExpireAt: int64(i), Type: uint8(i % MaxTypes)})
	}
	if err := cw.Finish(); err != nil {
		t.Fatal(err)
	}
	unfinished := l.NewCheckpoint(20)
	unfinished.Add(0, []byte("half"), Entry{Value: []byte("done")})
	unfinished.batch.Commit(pebble.Sync) // written but no manifest: a crash mid-checkpoint
	l.Close()

	l = openLog(t, dir)
	defer l.Close()
	c, ok, err := l.LatestCheckpoint()
	if err != nil || !ok || c.LSN != 15 || c.Entries != 100 {
		t.Fatalf("latest checkpoint: %+v %v %v", c, ok, err)
	}
	n := 0
	err = l.LoadCheckpoint(c, func(db int, k []byte, e Entry) error {
		var i int64
		fmt.Sscanf(string(k), "key%d", &i)
		if v, expireAt := e.Value, e.ExpireAt; string(v) != fmt.Sprint("value", i) || expireAt != i || db != int(i%3) || e.Type != uint8(i%MaxTypes) {
			t.Errorf("entry %q of database %d = %q, deadline %d", k, db, v, expireAt)
		}
		n++
		return nil
	})
	if err != nil || n != 100 {
		t.Fatalf("loaded %d entries: %v", n, err)
	}
	st, _ := l.Replay(c.LSN, 0, func(*Txn) error { return nil })
	if st.First != 16 || st.Last != 20 || st.Damage != nil {
		t.Fatalf("replay after the checkpoint: %+v", st)
	}
	// The group of LSNs 1-10 is gone; the one of 11-20 stays whole.
	st, _ = l.Replay(0, 0, func(*Txn) error { return nil })
	if st.Txns != 0 || st.Damage == nil || !strings.Contains(st.Damage.Error(), "LSN 11 follows 0") {
		t.Fatalf("log at and below the checkpoint was not trimmed: %+v", st)
	}
}

// A directory in use is refused.
func TestDirectoryLocked(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	defer l.Close()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of a directory in use succeeded")
	}
}

// Rebuild replays a checkpoint and the log after it, up to a point in time.
func TestRebuild(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	defer l.Close()
	l.Start(0)
	appendAll(l, append(txns(1, 10), Txn{LSN: 11, ID: 1, Writes: []Write{{Key: []byte("k3"), Delete: true}}})...)
	l.WaitDurable(11)
	cw := l.NewCheckpoint(4)
	for i := 1; i <= 4; i++ {
		cw.Add(0, []byte(fmt.Sprint("k", i)), Entry{Value: []byte(fmt.Sprint("v", i))})
	}
	if err := cw.Finish(); err != nil {
		t.Fatal(err)
	}
	state, rep, err := Rebuild(l, 0, 0, nil)
	if err != nil || rep.Checkpoint.LSN != 4 || rep.LastLSN != 11 || rep.Keys != 9 || rep.Replay.Damage != nil {
		t.Fatalf("rebuild: %+v, %v", rep, err)
	}
	if _, ok := state[EntryKey{0, "k3"}]; ok {
		t.Fatal("k3 was deleted at LSN 11 but is present")
	}
	state, rep, _ = Rebuild(l, 7, 0, nil)
	if rep.LastLSN != 7 || len(state) != 7 || string(state[EntryKey{0, "k7"}].Value) != "v7" {
		t.Fatalf("rebuild until 7: %+v, %d keys", rep, len(state))
	}
}

// Rebuild keeps deadlines, from the checkpoint and from the log, and
// leaves out the keys whose deadline is before its instant.
func TestRebuildDeadlines(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	defer l.Close()
	l.Start(0)
	w := func(k string, at int64) Write { return Write{Key: []byte(k), Value: []byte("v"), ExpireAt: at} }
	appendAll(l, Txn{LSN: 1, Writes: []Write{w("cp-live", 2000), w("cp-gone", 1000)}})
	l.WaitDurable(1)
	cw := l.NewCheckpoint(1)
	cw.Add(0, []byte("cp-live"), Entry{Value: []byte("v"), ExpireAt: 2000})
	cw.Add(0, []byte("cp-gone"), Entry{Value: []byte("v"), ExpireAt: 1000})
	if err := cw.Finish(); err != nil {
		t.Fatal(err)
	}
	appendAll(l, Txn{LSN: 2, Writes: []Write{w("log-live", 3000), w("log-gone", 1500), w("plain", 0)}})
	l.WaitDurable(2)
	state, rep, err := Rebuild(l, 0, 1501, nil)
	if err != nil || rep.Keys != 3 || rep.Expired != 2 {
		t.Fatalf("rebuild at 1501: %+v, %v", rep, err)
	}
	want := map[string]int64{"cp-live": 2000, "log-live": 3000, "plain": 0}
	for k, at := range want {
		if e, ok := state[EntryKey{0, k}]; !ok || e.ExpireAt != at || string(e.Value) != "v" {
			t.Errorf("%s: %+v, %v; want deadline %d", k, e, ok, at)
		}
	}
	// At its deadline a key still reads; after it, it does not.
	if state, _, _ = Rebuild(l, 0, 1500, nil); len(state) != 4 {
		t.Fatalf("rebuild at 1500: %d keys, want 4 (all but cp-gone)", len(state))
	}
}

// A Writer driven by its caller's goroutine: the durable LSN is the gap-free prefix whatever order LSNs come in and
// however they are split into batches, OnChange is called as it advances,
// keys and values may alias reused memory, and with NoSync nothing is
// durable before Sync, which SyncDue says is due.
func TestWriter(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprint("NoSync=", noSync), func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, Options{NoSync: noSync, SyncInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			l.Start(0)
			var changes int
			l.OnChange(func() { changes++ })
			w := l.NewWriter()
			scratch := make([]byte, 2)
			add := func(lsn uint64) {
				if lsn%2 == 0 {
					t := txn(lsn)
					w.Add(&t)
					return
				}
				// A single write whose key and value share memory that is
				// overwritten right after.
				copy(scratch, fmt.Sprintf("%d%d", lsn%10, lsn%10))
				w.AddWrite(lsn, lsn*10, Write{Key: scratch[:1], Value: scratch[1:]})
				copy(scratch, "xx")
			}
			for _, batch := range [][]uint64{{2, 4, 3}, {6}, {1, 5}} {
				for _, lsn := range batch {
					add(lsn)
				}
				w.Commit()
			}
			if d, due := w.SyncDue(); due != noSync || (noSync && d <= 0) {
				t.Fatalf("SyncDue = %v, %v", d, due)
			}
			if noSync {
				if got := l.DurableLSN(); got != 0 {
					t.Fatalf("durable LSN %d before the sync, want 0", got)
				}
				w.Sync()
			}
			if got := l.DurableLSN(); got != 6 {
				t.Fatalf("durable LSN = %d, want 6", got)
			}
			if changes == 0 {
				t.Fatal("OnChange's function was not called")
			}
			// Enough transactions to fill several batches by themselves.
			big := make([]byte, 4096)
			for lsn := uint64(7); lsn <= 300; lsn++ {
				w.AddWrite(lsn, 1, Write{Key: []byte("big"), Value: big})
			}
			if w.Pending() >= 294 {
				t.Fatalf("%d transactions pending, want a batch committed by Add", w.Pending())
			}
			w.Close(time.Time{})
			if err := l.WaitDurable(300); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir)
			defer l.Close()
			var got []uint64
			st, err := l.Replay(0, 0, func(tx *Txn) error {
				got = append(got, tx.LSN)
				if tx.LSN <= 6 {
					want := txn(tx.LSN)
					if tx.LSN%2 == 1 {
						want = Txn{LSN: tx.LSN, ID: tx.LSN * 10, Writes: []Write{{Key: []byte(fmt.Sprint(tx.LSN % 10)), Value: []byte(fmt.Sprint(tx.LSN % 10))}}}
					}
					if fmt.Sprint(*tx) != fmt.Sprint(want) {
						t.Errorf("replayed %v, want %v", *tx, want)
					}
				}
				return nil
			})
			if err != nil || st.Damage != nil || len(got) != 300 {
				t.Fatalf("replayed %d transactions, damage %v, error %v", len(got), st.Damage, err)
			}
		})
	}
}

// publish advances over the gap-free prefix whatever the order and
// grouping of the LSNs it is given, duplicates included.
func TestPublishOutOfOrder(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	l.Start(10)
	for _, step := range []struct {
		lsns []uint64
		want uint64
	}{
		{[]uint64{14, 12}, 10},
		{[]uint64{11, 9, 10}, 12},
		{[]uint64{17, 16, 14}, 12},
		{[]uint64{13}, 14},
		{[]uint64{15, 18}, 18},
	} {
		l.publish(step.lsns)
		if got := l.DurableLSN(); got != step.want {
			t.Fatalf("after %v: durable LSN %d, want %d", step.lsns, got, step.want)
		}
	}
	if len(l.above) != 0 {
		t.Fatalf("above = %v, want empty", l.above)
	}
}

// TryCommit makes one attempt: on a full disk the batch stays pending and
// the failure reaches waiters at once; a later Commit writes the batch.
func TestTryCommitKeepsTheBatch(t *testing.T) {
	l := openLog(t, t.TempDir())
	l.Start(0)
	w := l.NewWriter()
	one := txn(1)
	w.Add(&one)
	reserve := l.opts.MinFreeBytes
	l.opts.MinFreeBytes = 1 << 60 // no disk has that much free: checkSpace refuses
	err := w.TryCommit()
	if !errors.Is(err, ErrLogFailed) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("TryCommit on a full disk = %v, want ErrLogFailed naming the full disk", err)
	}
	if w.Pending() != 1 {
		t.Fatalf("%d transactions pending after the failed attempt, want 1", w.Pending())
	}
	if done, err := l.Durable(1); done || !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Durable(1) after the failed attempt = %v, %v; want false, ErrLogFailed", done, err)
	}
	l.opts.MinFreeBytes = reserve
	w.Commit()
	if done, err := l.Durable(1); !done || err != nil {
		t.Fatalf("Durable(1) after Commit = %v, %v; want true, nil", done, err)
	}
	w.Close(time.Time{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// SetMeta's values survive a close and reopen, a checkpoint's trimming and
// truncation; Meta of a name never set is nil.
func TestMeta(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := l.Meta("dbmap"); v != nil || err != nil {
		t.Fatalf("Meta of a name never set: %q, %v", v, err)
	}
	if err := l.SetMeta("dbmap", []byte{1, 0, 2}); err != nil {
		t.Fatal(err)
	}
	cw := l.NewCheckpoint(0)
	if err := cw.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateAfter(0); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v, err := l.Meta("dbmap"); string(v) != "\x01\x00\x02" || err != nil {
		t.Fatalf("Meta after reopening: %q, %v", v, err)
	}
}
