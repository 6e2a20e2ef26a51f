package engine

// Durability, specified: what a data directory keeps across clean restarts,
// SIGKILL, damaged logs and full disks.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// The crash child: set by the parent test through the environment.
const (
	envChildDir     = "BPFDB_TEST_CHILD_DIR"
	envChildStart   = "BPFDB_TEST_CHILD_START"
	envChildCount   = "BPFDB_TEST_CHILD_COUNT"
	envChildWorkers = "BPFDB_TEST_CHILD_WORKERS"
	envChildFault   = "BPFDB_TEST_CHILD_FAULT" // fault_test.go: where the child kills itself
	accounts        = 20
	initialMoney    = 1000
	// childMaxKeys holds every transfer marker a test's rounds of the
	// crash child can write (a fast machine acknowledges 20,000 and more).
	childMaxKeys = 1 << 17
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envChildDir); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

func account(i int) []byte     { return fmt.Appendf(nil, "acct-%02d", i) }
func transferKey(n int) []byte { return fmt.Appendf(nil, "xfer-%06d", n) }

// markerDeadline is the deadline an odd transfer's marker carries (2100-01-01):
// recovery must bring it back with the marker.
func markerDeadline(n int) int64 {
	if n%2 == 1 {
		return 4_102_444_800_000
	}
	return 0
}

// crashChild commits transfers numbered from $START, each moving money
// between two accounts and writing its marker key in the same transaction,
// and prints "ack N" once Commit returned (sync durability). It stops after
// $COUNT transfers by exiting without Close, as a crash would, unless the
// parent kills it first. With $WORKERS above 1, that many goroutines
// commit at once, worker w the transfers start+w, start+w+workers, ...: the
// log then holds several transactions per batch, out of LSN order.
func crashChild(dir string) int {
	start, _ := strconv.Atoi(os.Getenv(envChildStart))
	count, _ := strconv.Atoi(os.Getenv(envChildCount))
	workers, _ := strconv.Atoi(os.Getenv(envChildWorkers))
	opts := Options{MaxKeys: childMaxKeys, Dir: dir, TxnTimeout: -1}
	checkpoints := childFault(&opts, os.Getenv(envChildFault))
	e, err := Open(opts)
	if err != nil {
		fmt.Println("open:", err)
		return 2
	}
	if count == 0 {
		os.Exit(0) // only recovery was asked for
	}
	if start == 0 {
		ops := make([]Op, accounts)
		for i := range ops {
			ops[i] = Op{Kind: OpSet, Key: account(i), Value: specItoa(initialMoney)}
		}
		if err := e.Exec(ops); err != nil {
			fmt.Println("init:", err)
			return 2
		}
	}
	fmt.Println("ready")
	if checkpoints != nil {
		go checkpoints(e)
	}
	workers = max(workers, 1)
	var mu sync.Mutex // orders the lines of stdout
	out := bufio.NewWriter(os.Stdout)
	failed := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(start + w)))
			for n := start + w; n < start+count; n += workers {
				from, to := rng.Intn(accounts), rng.Intn(accounts)
				err := childTransfer(e, n, from, to, int64(1+rng.Intn(50)))
				for Retryable(err) {
					err = childTransfer(e, n, from, to, int64(1+rng.Intn(50)))
				}
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error:", err)
				} else {
					fmt.Fprintln(out, "ack", n)
				}
				out.Flush()
				mu.Unlock()
				if err != nil {
					failed <- struct{}{}
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if len(failed) > 0 {
		return 2
	}
	os.Exit(0) // no Close: no checkpoint, nothing flushed that was not already durable
	return 0
}

func childTransfer(e *Engine, n, from, to int, amount int64) error {
	t, err := e.Begin()
	if err != nil {
		return err
	}
	defer t.Abort()
	a, err := t.Get(account(from))
	if err != nil {
		return err
	}
	b, err := t.Get(account(to))
	if err != nil {
		return err
	}
	av, _ := strconv.ParseInt(string(a), 10, 64)
	bv, _ := strconv.ParseInt(string(b), 10, 64)
	if from != to {
		if err := t.Set(account(from), specItoa(av-amount)); err != nil {
			return err
		}
		if err := t.Set(account(to), specItoa(bv+amount)); err != nil {
			return err
		}
	}
	marker := []Op{{Kind: OpSet, Key: transferKey(n), Value: specItoa(amount), ExpireAt: markerDeadline(n)}}
	if err := t.Run(marker); err != nil {
		return err
	}
	return t.Commit()
}

// runChild starts the crash child and returns the transfers it
// acknowledged, killing it with SIGKILL after killAfter (0: let it finish).
func runChild(t *testing.T, dir string, start, count, workers int, killAfter time.Duration) (acked []int) {
	t.Helper()
	return runChildEnv(t, dir, start, count, workers, killAfter, nil)
}

// runChildFault is runChild with a fault that kills the child from inside
// (envChildFault; fault_test.go's childFault).
func runChildFault(t *testing.T, dir string, start, count, workers int, fault string) (acked []int) {
	t.Helper()
	return runChildEnv(t, dir, start, count, workers, 0, []string{envChildFault + "=" + fault})
}

func runChildEnv(t *testing.T, dir string, start, count, workers int, killAfter time.Duration, env []string) (acked []int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildDir+"="+dir, envChildStart+"="+strconv.Itoa(start),
		envChildCount+"="+strconv.Itoa(count), envChildWorkers+"="+strconv.Itoa(workers))
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The kill is timed from "ready": the accounts exist, transfers start.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "ack "); ok {
			v, _ := strconv.Atoi(n)
			acked = append(acked, v)
		} else if line == "ready" {
			if killAfter > 0 {
				timer := time.AfterFunc(killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
				defer timer.Stop()
			}
		} else {
			t.Errorf("child: %s", line)
		}
	}
	cmd.Wait()
	return acked
}

// checkBank opens dir, checks the bank invariant, that every acknowledged
// transfer is present, and that no transfer at or past next appears, and
// returns the highest transfer present plus one.
func checkBank(t *testing.T, dir string, acked map[int]bool, next int) int {
	t.Helper()
	e := openTest(t, Options{MaxKeys: childMaxKeys, Dir: dir, TxnTimeout: -1})
	defer e.Close()
	ops := make([]Op, accounts)
	for i := range ops {
		ops[i] = Op{Kind: OpGet, Key: account(i)}
	}
	if err := e.Exec(ops); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, op := range ops {
		v, _ := strconv.ParseInt(string(op.Value), 10, 64)
		total += v
	}
	if total != accounts*initialMoney {
		t.Fatalf("after recovery the accounts hold %d, want %d (recovery %+v)", total, accounts*initialMoney, e.Recovery())
	}
	for n := range acked {
		op := []Op{{Kind: OpGet, Key: transferKey(n)}}
		if err := e.Batch(op); err != nil || op[0].Err != nil {
			t.Fatalf("acknowledged transfer %d lost: %v %v (recovery %+v)", n, err, op[0].Err, e.Recovery())
		}
		if op[0].ExpireAt != markerDeadline(n) {
			t.Fatalf("transfer %d's marker came back with deadline %d, want %d", n, op[0].ExpireAt, markerDeadline(n))
		}
	}
	high := 0
	for n := 0; n < next+16; n++ {
		if _, err := e.Get(transferKey(n)); err == nil {
			if n >= next {
				t.Fatalf("transfer %d was never attempted, yet it is present", n)
			}
			high = n + 1
		}
	}
	return high
}

// A child killed with SIGKILL at random moments never loses a commit it
// acknowledged, never keeps part of a transfer, and never invents one;
// with one committer, and with eight at once (several transactions to a
// log batch, out of LSN order).
func TestCrashKill(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close() // skip or fail without privileges
	for _, workers := range []int{1, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			dir := t.TempDir()
			acked := map[int]bool{}
			next := 0
			rng := rand.New(rand.NewSource(time.Now().UnixNano()))
			const rounds, perRound = 6, 100000
			for round := 0; round < rounds; round++ {
				kill := time.Duration(20+rng.Intn(400)) * time.Millisecond
				got := runChild(t, dir, next, perRound, workers, kill)
				high := next
				for _, n := range got {
					acked[n] = true
					high = max(high, n+1)
				}
				// Each worker has at most one transfer in flight, within
				// workers of the highest acknowledged.
				attempted := high + workers
				next = checkBank(t, dir, acked, attempted)
				t.Logf("round %d: killed after %v, %d acknowledged, %d present", round, kill, len(got), next)
			}
			if len(acked) == 0 {
				t.Fatal("no transfer was acknowledged in any round")
			}
		})
	}
}

// A clean Close takes a checkpoint; reopening loads it, with nothing to replay.
func TestReopenAfterClose(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, Options{MaxKeys: 1024, Dir: dir})
	for i := 0; i < 200; i++ {
		specSet(t, e, specKey("k", i), specPattern(i*5%1025, byte(i)))
	}
	for i := 0; i < 200; i += 3 {
		if err := e.Delete(specKey("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, Options{MaxKeys: 1024, Dir: dir})
	rec := e.Recovery()
	if rec.Checkpoint.LSN == 0 || rec.Replay.Txns != 0 || rec.LSN != rec.Checkpoint.LSN {
		t.Fatalf("recovery after a clean close: %+v", rec)
	}
	for i := 0; i < 200; i++ {
		if i%3 == 0 {
			specAbsent(t, e, specKey("k", i))
		} else {
			specWant(t, e, specKey("k", i), specPattern(i*5%1025, byte(i)))
		}
	}
	// New commits continue the LSNs.
	specSet(t, e, []byte("after"), []byte("reopen"))
	e.Close()
	e = openTest(t, Options{MaxKeys: 1024, Dir: dir})
	specWant(t, e, []byte("after"), []byte("reopen"))
}

// A damaged record stops recovery at the last valid transaction before it;
// the damage is reported, the tail is dropped, and new commits follow.
func TestRecoverDamagedLog(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close()
	for _, damage := range []string{"corrupt", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			acked := runChild(t, dir, 0, 50, 1, 0)
			if len(acked) != 50 {
				t.Fatalf("child acknowledged %d of 50", len(acked))
			}
			// LSN 1 sets the accounts; transfer n commits at LSN 2+n.
			const bad = 2 + 30
			damageLog(t, dir, bad, damage)

			e := openTest(t, Options{MaxKeys: childMaxKeys, Dir: dir})
			rec := e.Recovery()
			if rec.LSN != bad-1 || rec.Replay.Damage == nil {
				t.Fatalf("recovery over a %s LSN %d: %+v", damage, bad, rec)
			}
			for n := 0; n < 50; n++ {
				_, err := e.Get(transferKey(n))
				if present := err == nil; present != (2+n < bad) {
					t.Fatalf("transfer %d (LSN %d) present = %v", n, 2+n, present)
				}
			}
			specSet(t, e, []byte("new"), []byte("commit"))
			e.Close()
			e = openTest(t, Options{MaxKeys: childMaxKeys, Dir: dir})
			if rec := e.Recovery(); rec.Replay.Damage != nil {
				t.Fatalf("damage reported again after it was dropped: %+v", rec)
			}
			specWant(t, e, []byte("new"), []byte("commit"))
		})
	}
}

// damageLog flips a byte of LSN lsn's record ("corrupt"), or deletes it and
// the four after it, leaving a gap before the rest ("truncated"). It edits
// pebble directly, knowing logd's layout (logd/group.go): groups under 'g'
// + big-endian largest LSN, each a run of frames (uvarint LSN, uvarint
// length, record).
func damageLog(t *testing.T, dir string, lsn uint64, how string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	iter, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'g'}, UpperBound: []byte{'g' + 1}})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	defer b.Close()
	found := 0
	for iter.First(); iter.Valid(); iter.Next() {
		var group []byte
		for v := iter.Value(); len(v) > 0; {
			frameLSN, n := binary.Uvarint(v)
			size, m := binary.Uvarint(v[n:])
			body := append([]byte(nil), v[n+m:n+m+int(size)]...)
			v = v[n+m+int(size):]
			switch {
			case how == "corrupt" && frameLSN == lsn:
				body[len(body)/2] ^= 0x55
				found++
			case how == "truncated" && frameLSN >= lsn && frameLSN < lsn+5:
				found++
				continue
			}
			group = binary.AppendUvarint(group, frameLSN)
			group = binary.AppendUvarint(group, uint64(len(body)))
			group = append(group, body...)
		}
		b.Set(iter.Key(), group, nil)
	}
	iter.Close()
	if want := map[string]int{"corrupt": 1, "truncated": 5}[how]; found != want {
		t.Fatalf("%s at LSN %d: %d records found, want %d", how, lsn, found, want)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// A directory in use by another engine is refused with a clear error.
func TestDirInUse(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, Options{MaxKeys: 64, Dir: dir})
	defer e.Close()
	_, err := Open(Options{MaxKeys: 64, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open of %s: %v", dir, err)
	}
}

// Checkpoints taken while writers run hold a consistent image: reopening
// from one (plus the log after it) keeps the bank invariant, and the gate
// is closed only briefly.
func TestCheckpointUnderLoad(t *testing.T) {
	dir := t.TempDir()
	e := openTest(t, Options{MaxKeys: 1 << 12, Dir: dir, CheckpointInterval: -1})
	for i := 0; i < accounts; i++ {
		specSet(t, e, account(i), specItoa(initialMoney))
	}
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		rng := rand.New(rand.NewSource(1))
		n := 0
		for deadline := time.Now().Add(3 * time.Second); n < 20000 && time.Now().Before(deadline); n++ {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if err := childTransfer(e, n, rng.Intn(accounts), rng.Intn(accounts), 7); err != nil && !Retryable(err) {
				t.Error(err)
			}
		}
		done <- n
	}()
	for i := 0; i < 5; i++ {
		time.Sleep(20 * time.Millisecond)
		st, err := e.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("checkpoint %d: LSN %d, %d keys, gate closed %v, took %v", i, st.LSN, st.Keys, st.GateClosed, st.Duration)
	}
	close(stop)
	attempted := <-done
	e.Close()
	checkBank(t, dir, nil, attempted+1)
}

// A filling disk makes the engine refuse writes before they apply
// (ErrLogUnavailable, naming the free space and the limit), while reads go
// on; nothing acknowledged is lost, nothing refused appears, and writes
// are taken again by themselves once space returns.
func TestFullDisk(t *testing.T) {
	openTest(t, Options{MaxKeys: 64}).Close()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=24m"); err != nil {
		t.Skipf("cannot mount a small tmpfs: %v", err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	data := filepath.Join(dir, "data")
	opts := Options{MaxKeys: 1 << 15, MaxMemory: 1<<15*(indexBytesPerKey+1024) + 1<<20, Dir: data, CheckpointInterval: -1, CheckpointLogBytes: -1,
		LogRingBytes: 1 << 20}
	e := openTest(t, opts)
	value := specPattern(1000, 1)
	acked := 0
	var failure error
	for i, deadline := 0, time.Now().Add(30*time.Second); i < 1<<15 && time.Now().Before(deadline); i++ {
		if err := e.Set(specKey("big", i), value); err != nil {
			failure = err
			break
		}
		acked++
	}
	if !errors.Is(failure, ErrLogUnavailable) {
		t.Fatalf("after %d acknowledged writes: %v, want ErrLogUnavailable", acked, failure)
	}
	for _, want := range []string{"bytes free", "--min-free-bytes"} {
		if !strings.Contains(failure.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, failure)
		}
	}
	// Refused before applying: the key is absent; reads go on.
	if _, err := e.Get(specKey("big", acked)); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused write's key reads %v, want ErrNotFound", err)
	}
	specWant(t, e, specKey("big", 0), value)
	if err := e.LogFault(); !errors.Is(err, ErrLogUnavailable) {
		t.Errorf("LogFault = %v, want ErrLogUnavailable", err)
	}
	// A transaction is refused the same way, and leaves nothing.
	tx, err := e.Begin()
	if err != nil {
		t.Fatal(err)
	}
	err = tx.Set([]byte("txn"), []byte("refused")) // refused here, before the key is touched
	if err == nil {
		err = tx.Commit()
	}
	if !errors.Is(err, ErrLogUnavailable) {
		t.Errorf("a transaction's write on a full disk = %v, want ErrLogUnavailable", err)
	}
	tx.Abort()
	if _, err := e.Get([]byte("txn")); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused transaction's key reads %v, want ErrNotFound", err)
	}
	st, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.DurableLSN != st.CommitLSN {
		t.Errorf("durable LSN %d, last commit %d: commits applied that are not durable", st.DurableLSN, st.CommitLSN)
	}
	// Space returns: writes resume without anything being done.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=256m"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		err := e.Set([]byte("after"), []byte("space returned"))
		if err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("commits still refused 5s after space returned: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d writes acknowledged before the refusal; writes resumed %v after space returned", acked, time.Since(start))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, opts)
	for i := 0; i < acked; i++ {
		specWant(t, e, specKey("big", i), value)
	}
	specWant(t, e, []byte("after"), []byte("space returned"))
	if _, err := e.Get(specKey("big", acked)); !errors.Is(err, ErrNotFound) {
		t.Errorf("after restart, the refused write's key reads %v, want ErrNotFound", err)
	}
}

// Checkpoints are taken by log size and by interval, and counted.
func TestCheckpointTriggers(t *testing.T) {
	defer func(d time.Duration) { checkpointCheck = d }(checkpointCheck)
	checkpointCheck = 10 * time.Millisecond
	for name, opts := range map[string]Options{
		"log size": {CheckpointInterval: -1, CheckpointLogBytes: 4096},
		"interval": {CheckpointInterval: 50 * time.Millisecond, CheckpointLogBytes: -1},
	} {
		t.Run(name, func(t *testing.T) {
			opts.MaxKeys, opts.Dir = 1024, t.TempDir()
			e := openTest(t, opts)
			deadline := time.Now().Add(5 * time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				specSet(t, e, specKey("k", i%500), specPattern(100, byte(i)))
				st, err := e.Stats()
				if err != nil {
					t.Fatal(err)
				}
				if st.Checkpoints > 0 {
					if st.LastCheckpoint.IsZero() || st.GateClosed <= 0 || st.DurableLSN == 0 {
						t.Fatalf("checkpoint stats: %+v", st)
					}
					return
				}
				time.Sleep(time.Millisecond)
			}
			t.Fatal("no checkpoint was taken")
		})
	}
}
