package main

// History checking, the way Jepsen checks databases (issue 13, item 6).
//
// Clients run a random workload against `bpfdb serve` over RESP and record
// what they asked, what they were answered and when; the server is killed
// with SIGKILL in the middle and restarted on the same directory and
// address; afterwards the recorded history is checked against a model:
//
//   - TestHistoryLinearizable: GET, SET, DEL and SET ... GET on a few keys,
//     checked for linearizability by porcupine against a per-key register
//     model. A write whose outcome is unknown (the connection broke) may
//     have happened at any point after it was called, or never.
//   - TestHistoryModelCatchesViolations: the same model and check say
//     Illegal to histories that are not linearizable, so the check above is
//     not vacuous.
//   - TestHistoryTransfersSerializable (history_transfers_test.go): bank
//     transfers with WATCH/MULTI/EXEC, the total checked in snapshots, every
//     acknowledged transfer present after the restart, nothing half-applied.
//
// This file also holds what both need: starting the server on a fixed
// address, knowing whether the server is up, and telling a broken
// connection (expected while the server is being killed) from any other
// error (never expected).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"
)

// skipUnlessRoot skips (or fails, with BPFDB_REQUIRE_BPF=1) without root,
// as startServe does.
func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("BPFDB_REQUIRE_BPF") == "1" {
			t.Fatal("bpfdb serve needs root to load its BPF programs (BPFDB_REQUIRE_BPF=1)")
		}
		t.Skip("skipping: bpfdb serve needs root to load its BPF programs")
	}
}

// startServeAt is startServe on a given RESP address, with no metrics
// endpoint, so that the server restarted after a kill -9 is where the
// clients left it. It waits until the server answers PING.
func startServeAt(t *testing.T, dir, addr string, args ...string) *serveProc {
	t.Helper()
	skipUnlessRoot(t)
	full := append([]string{"serve", "--dir", dir, "--listen", addr, "--metrics", ""}, args...)
	deadline := time.Now().Add(45 * time.Second)
	for attempt := 0; ; attempt++ {
		p := &serveProc{addr: addr, stderr: &syncBuffer{}, exited: make(chan struct{})}
		p.cmd = exec.Command(os.Args[0], full...)
		p.cmd.Env = append(os.Environ(), "BPFDB_SERVE_TEST_MAIN=1")
		p.cmd.Stdout = p.stderr
		p.cmd.Stderr = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.exited) }()
		t.Cleanup(func() {
			select {
			case <-p.exited:
			default:
				p.cmd.Process.Kill()
				<-p.exited
			}
			if t.Failed() {
				t.Logf("bpfdb serve %s (start %d) output:\n%s", strings.Join(full, " "), attempt, p.stderr.String())
			}
		})
	wait:
		for {
			if pingOK(p.addr) {
				return p
			}
			if isClosed(p.exited) {
				// The address may still be held a moment after a kill -9.
				if strings.Contains(p.stderr.String(), "address already in use") && attempt < 20 && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
					break wait
				}
				t.Fatalf("bpfdb serve exited before serving: %v\n%s", p.err, p.stderr.String())
			}
			if time.Now().After(deadline) {
				t.Fatalf("bpfdb serve does not answer PING on %s after 45s\n%s", p.addr, p.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// serverCtl says whether the server is up, and counts its kills: a
// network error is expected only for an operation that overlapped a kill.
type serverCtl struct {
	mu    sync.Mutex
	up    bool
	gen   int           // incremented at each kill
	upped chan struct{} // closed when the server is up again
	since time.Time     // when it was last restarted
}

// redialGrace is how long after a restart a dial may still be refused by
// the client itself: once a dial failed while the server was down,
// go-redis's dial circuit breaker answers later dials with that error
// until a background probe, about once a second, gets through.
const redialGrace = 2 * time.Second

func newServerCtl() *serverCtl {
	c := &serverCtl{up: true, upped: make(chan struct{})}
	close(c.upped)
	return c
}

// state returns the generation and whether the server is up.
func (s *serverCtl) state() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, s.up
}

// down is called just before the server is killed.
func (s *serverCtl) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up, s.upped = false, make(chan struct{})
	s.gen++
}

// restarted is called once the new server answers.
func (s *serverCtl) restarted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = true
	s.since = time.Now()
	close(s.upped)
}

// waitUp returns once the server is up (at once if it is), stop is closed
// or ctx is done; it says whether the server is up.
func (s *serverCtl) waitUp(ctx context.Context, stop <-chan struct{}) bool {
	s.mu.Lock()
	ch := s.upped
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-stop:
	case <-ctx.Done():
	}
	return false
}

// expectedNetErr says whether an error of an operation called in
// generation gen (server up or not then) is a broken connection that a
// kill explains: the server was killed since, or is down.
func (s *serverCtl) expectedNetErr(gen int, upAtCall bool) bool {
	g, up := s.state()
	return g != gen || !up || !upAtCall
}

// expectedNotSent says whether an operation that never reached the server
// (gen and upAtCall as for expectedNetErr) is explained by a kill, or by
// the client's redial backoff just after a restart (redialGrace). Nothing
// was sent: the history is the same either way.
func (s *serverCtl) expectedNotSent(gen int, upAtCall bool) bool {
	s.mu.Lock()
	recent := !s.since.IsZero() && time.Since(s.since) < redialGrace
	s.mu.Unlock()
	return recent || s.expectedNetErr(gen, upAtCall)
}

type errClass int

const (
	errNone    errClass = iota
	errNotSent          // the connection could not be made: nothing was sent
	errNetwork          // the connection broke: the outcome is unknown
	errReply            // the server answered an error
)

// classify sorts a go-redis error. redis.Nil (a nil reply) and
// redis.TxFailedErr (EXEC answered a null array) are not errors here.
func classify(err error) errClass {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, redis.TxFailedErr) {
		return errNone
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return errNotSent
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return errReply
	}
	var nerr net.Error
	if errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
		return errNetwork
	}
	return errReply // a protocol error or anything else unexpected
}

// problems collects what must fail the test, from any goroutine.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

// report fails t with the problems (the first 30).
func (p *problems) report(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.list {
		if i == 30 {
			t.Errorf("... and %d more", len(p.list)-30)
			break
		}
		t.Error(s)
	}
}

// The register model of one key, for porcupine.

type kvInput struct {
	Op    string // "get", "set", "del", "getset" (SET key value GET)
	Key   string
	Value string // set, getset: a value written once in the whole history
}

type kvOutput struct {
	Value   string // get, getset: the value read
	Found   bool   // get, getset: the key was there
	Deleted int64  // del: 1 if the key was there
	Unknown bool   // a write whose outcome is unknown: it may or may not have happened
}

// kvModel is a map of registers, partitioned by key: a key's state is its
// value, "" when absent (no value written is empty).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		slices.Sort(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(kvInput), output.(kvOutput)
		read := func() bool { // what a get or getset saw
			if out.Found {
				return out.Value == st
			}
			return st == ""
		}
		switch in.Op {
		case "get":
			return read(), st
		case "set":
			return true, in.Value
		case "getset":
			return out.Unknown || read(), in.Value
		case "del":
			return out.Unknown || (out.Deleted == 1) == (st != ""), ""
		}
		panic("unknown op " + in.Op)
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		var s string
		switch in.Op {
		case "get":
			s = fmt.Sprintf("get(%s)", in.Key)
		case "set":
			s = fmt.Sprintf("set(%s, %s)", in.Key, in.Value)
		case "getset":
			s = fmt.Sprintf("set(%s, %s, GET)", in.Key, in.Value)
		case "del":
			s = fmt.Sprintf("del(%s)", in.Key)
		}
		switch {
		case out.Unknown:
			return s + " -> ? (outcome unknown)"
		case in.Op == "set":
			return s + " -> OK"
		case in.Op == "del":
			return fmt.Sprintf("%s -> %d", s, out.Deleted)
		case out.Found:
			return fmt.Sprintf("%s -> %q", s, out.Value)
		default:
			return s + " -> nil"
		}
	},
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(absent)"
		}
		return state.(string)
	},
}

// checkLinearizable checks history with kvModel, at most timeout. On
// Illegal it finds the keys whose histories are not linearizable and
// writes porcupine's visualization of the first one's into
// $BPFDB_HISTORY_DIR if set (kept), or else dir, and returns its path.
func checkLinearizable(t *testing.T, history []porcupine.Operation, timeout time.Duration, dir string) (porcupine.CheckResult, string) {
	t.Helper()
	start := time.Now()
	res := porcupine.CheckOperationsTimeout(kvModel, history, timeout)
	t.Logf("porcupine: %s for %d operations in %v", res, len(history), time.Since(start).Round(time.Millisecond))
	if res != porcupine.Illegal {
		return res, ""
	}
	// The key (partition) at fault, to visualize only its history: the
	// visualization of tens of thousands of operations takes long.
	var bad []porcupine.Operation
	var badKeys []string
	for _, part := range kvModel.Partition(history) {
		if porcupine.CheckOperationsTimeout(kvModel, part, timeout/4) == porcupine.Illegal {
			badKeys = append(badKeys, part[0].Input.(kvInput).Key)
			if bad == nil {
				bad = part
			}
		}
	}
	t.Logf("porcupine: the histories of keys %v are not linearizable", badKeys)
	if bad == nil {
		bad = history
	}
	if d := os.Getenv("BPFDB_HISTORY_DIR"); d != "" {
		dir = d
	}
	start = time.Now()
	_, info := porcupine.CheckOperationsVerbose(kvModel, bad, timeout/2)
	path := filepath.Join(dir, fmt.Sprintf("linearizability-%s-%d.html", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))
	if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
		t.Errorf("writing the visualization: %v", err)
		return res, ""
	}
	t.Logf("porcupine: visualization of %d operations (key %s) written in %v", len(bad), bad[0].Input.(kvInput).Key, time.Since(start).Round(time.Millisecond))
	return res, path
}

// TestHistoryModelCatchesViolations: the model and check of
// TestHistoryLinearizable say Illegal to histories that are not
// linearizable (and Ok to their legal neighbours), so that its passing
// means something. No server: it needs no root.
func TestHistoryModelCatchesViolations(t *testing.T) {
	type op struct {
		client     int
		in         kvInput
		out        kvOutput
		call, ret_ int64 // ret_ -1: outcome unknown, returns at the end
	}
	set := func(c int, k, v string, call, ret int64) op {
		return op{c, kvInput{Op: "set", Key: k, Value: v}, kvOutput{}, call, ret}
	}
	get := func(c int, k, v string, call, ret int64) op {
		return op{c, kvInput{Op: "get", Key: k}, kvOutput{Value: v, Found: v != ""}, call, ret}
	}
	unknownSet := func(c int, k, v string, call int64) op {
		return op{c, kvInput{Op: "set", Key: k, Value: v}, kvOutput{Unknown: true}, call, -1}
	}
	del := func(c int, k string, n int64, call, ret int64) op {
		return op{c, kvInput{Op: "del", Key: k}, kvOutput{Deleted: n}, call, ret}
	}
	getset := func(c int, k, v, old string, call, ret int64) op {
		return op{c, kvInput{Op: "getset", Key: k, Value: v}, kvOutput{Value: old, Found: old != ""}, call, ret}
	}
	cases := []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"read of a value never written", []op{set(0, "k", "a", 0, 10), get(1, "k", "zzz", 20, 30)}, porcupine.Illegal},
		{"stale read after an acknowledged overwrite", []op{set(0, "k", "a", 0, 10), set(0, "k", "b", 20, 30), get(1, "k", "a", 40, 50)}, porcupine.Illegal},
		{"acknowledged write lost", []op{set(0, "k", "a", 0, 10), get(1, "k", "", 20, 30)}, porcupine.Illegal},
		{"read of a deleted value", []op{set(0, "k", "a", 0, 10), del(1, "k", 1, 20, 30), get(0, "k", "a", 40, 50)}, porcupine.Illegal},
		{"del of an absent key answers 1", []op{del(0, "k", 1, 0, 10)}, porcupine.Illegal},
		{"getset sees a stale value", []op{set(0, "k", "a", 0, 10), set(0, "k", "b", 20, 30), getset(1, "k", "c", "a", 40, 50)}, porcupine.Illegal},
		{"unknown write seen, then gone", []op{unknownSet(0, "k", "a", 0), get(1, "k", "a", 10, 20), get(1, "k", "", 30, 40)}, porcupine.Illegal},
		{"one key's violation among legal keys", []op{set(0, "j", "x", 0, 10), get(1, "j", "x", 20, 30), set(0, "k", "a", 0, 10), set(2, "k", "b", 20, 30), get(1, "k", "a", 40, 50)}, porcupine.Illegal},
		// Legal neighbours.
		{"concurrent read sees the old value", []op{set(0, "k", "a", 0, 10), set(0, "k", "b", 20, 40), get(1, "k", "a", 25, 30)}, porcupine.Ok},
		{"unknown write that did not happen", []op{unknownSet(0, "k", "a", 0), get(1, "k", "", 10, 20)}, porcupine.Ok},
		{"unknown write that happened", []op{unknownSet(0, "k", "a", 0), get(1, "k", "", 10, 20), get(1, "k", "a", 30, 40)}, porcupine.Ok},
		{"getset and del", []op{getset(0, "k", "a", "", 0, 10), getset(1, "k", "b", "a", 20, 30), del(0, "k", 1, 40, 50), del(1, "k", 0, 60, 70)}, porcupine.Ok},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			var end int64
			for _, o := range c.ops {
				end = max(end, o.call, o.ret_)
			}
			var h []porcupine.Operation
			for _, o := range c.ops {
				ret := o.ret_
				if ret < 0 {
					ret = end + 1
				}
				h = append(h, porcupine.Operation{ClientId: o.client, Input: o.in, Output: o.out, Call: o.call, Return: ret})
			}
			dir := t.TempDir()
			res, path := checkLinearizable(t, h, 10*time.Second, dir)
			if res != c.want {
				t.Fatalf("porcupine says %s, want %s", res, c.want)
			}
			if res == porcupine.Illegal {
				if st, err := os.Stat(path); err != nil || st.Size() == 0 {
					t.Errorf("no visualization at %q: %v", path, err)
				}
			}
		})
	}
}

// TestHistoryLinearizable: 6 clients issue random GET, SET, DEL and SET
// ... GET (a read-modify-write, served as a transaction) on 6 keys, each
// write with a value of its own; the server (sync durability) is killed
// with SIGKILL twice and restarted on the same directory and address; the
// history is linearizable. A write whose connection broke has an unknown
// outcome: it may take effect at any point after its call (its return is
// the end of the history), or never; a read whose connection broke is
// dropped. A client whose write has an unknown outcome goes on as a new
// porcupine client, as a Jepsen process would.
func TestHistoryLinearizable(t *testing.T) {
	skipUnlessRoot(t)
	const (
		clients     = 6
		nkeys       = 6
		phases      = 3 // two kills between them
		phaseLoad   = 3 * time.Second
		maxPerPhase = 4000 // ops per client and phase at full speed (about 2500 fit with -race), to bound the check
	)
	testStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	dir := t.TempDir()
	addr := freePort(t)
	p := startServeAt(t, dir, addr, "--durability", "sync")
	t.Logf("server up in %v", time.Since(testStart).Round(time.Millisecond))

	t0 := time.Now()
	clock := func() int64 { return time.Since(t0).Nanoseconds() } // monotonic
	ctl := newServerCtl()
	stop := make(chan struct{})
	var probs problems
	var pids atomic.Int64 // porcupine client ids: a new one after an unknown outcome
	pids.Store(clients)
	histories := make([][]porcupine.Operation, clients)
	var unknownOps, droppedReads, notSent atomic.Int64
	key := func(i int) string { return fmt.Sprintf("lin:k%d", i) }

	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 1,
				DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
			defer c.Close()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			pid := w
			seq := 0
			inPhase, phaseGen := 0, 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				gen, up := ctl.state()
				if !up {
					if !ctl.waitUp(ctx, stop) {
						return
					}
					continue
				}
				if gen != phaseGen {
					phaseGen, inPhase = gen, 0
				}
				if inPhase >= maxPerPhase {
					// This phase's share is done: go on slowly, so that
					// the kill still finds writes in flight.
					time.Sleep(5 * time.Millisecond)
				}
				inPhase++
				in := kvInput{Key: key(rng.IntN(nkeys))}
				switch r := rng.IntN(100); {
				case r < 40:
					in.Op = "get"
				case r < 75:
					in.Op = "set"
				case r < 87:
					in.Op = "getset"
				default:
					in.Op = "del"
				}
				if in.Op == "set" || in.Op == "getset" {
					seq++
					in.Value = fmt.Sprintf("c%d-%d", w, seq)
				}
				var out kvOutput
				var err error
				call := clock()
				switch in.Op {
				case "get":
					out.Value, err = c.Get(ctx, in.Key).Result()
				case "set":
					var status string
					if status, err = c.Set(ctx, in.Key, in.Value, 0).Result(); err == nil && status != "OK" {
						err = fmt.Errorf("SET answered %q", status)
					}
				case "getset":
					out.Value, err = c.Do(ctx, "SET", in.Key, in.Value, "GET").Text()
				case "del":
					out.Deleted, err = c.Del(ctx, in.Key).Result()
				}
				ret := clock()
				out.Found = err == nil && (in.Op == "get" || in.Op == "getset")
				if err == redis.Nil {
					err = nil
				}
				op := porcupine.Operation{ClientId: pid, Input: in, Output: out, Call: call, Return: ret}
				switch classify(err) {
				case errNone:
					histories[w] = append(histories[w], op)
					continue
				case errNotSent:
					notSent.Add(1)
					if !ctl.expectedNotSent(gen, up) {
						probs.add("client %d: %s: cannot connect with the server up: %v", w, kvModel.DescribeOperation(in, out), err)
					}
					time.Sleep(10 * time.Millisecond)
					continue // nothing was sent: the op did not happen
				case errNetwork:
					if !ctl.expectedNetErr(gen, up) {
						probs.add("client %d: %s: connection error with the server up: %v", w, kvModel.DescribeOperation(in, kvOutput{Unknown: true}), err)
					}
				case errReply:
					probs.add("client %d: %s: unexpected reply: %v", w, kvModel.DescribeOperation(in, kvOutput{Unknown: true}), err)
				}
				// The outcome is unknown.
				if in.Op == "get" {
					droppedReads.Add(1)
					continue
				}
				unknownOps.Add(1)
				op.Output = kvOutput{Unknown: true}
				op.Return = -1 // the end of the history, set below
				histories[w] = append(histories[w], op)
				pid = int(pids.Add(1) - 1)
				ctl.waitUp(ctx, stop)
			}
		}(w)
	}

	kills := 0
	for phase := 0; phase < phases; phase++ {
		select {
		case <-time.After(phaseLoad):
		case <-ctx.Done():
		}
		if phase == phases-1 {
			break
		}
		ctl.down()
		if code := p.stop(t, syscall.SIGKILL, 30*time.Second); code == 0 {
			t.Errorf("exit code 0 after SIGKILL?")
		}
		kills++
		restart := time.Now()
		p = startServeAt(t, dir, addr, "--durability", "sync")
		t.Logf("kill -9 %d at %v; restarted (recovered) in %v", kills, time.Since(t0).Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))
		ctl.restarted()
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("clients still running 30s after the end of the load")
	}

	// A last read of every key, after the load, by a client of its own.
	var history []porcupine.Operation
	for _, h := range histories {
		history = append(history, h...)
	}
	final := p.client(t)
	finalPid := int(pids.Add(1) - 1)
	for i := 0; i < nkeys; i++ {
		in := kvInput{Op: "get", Key: key(i)}
		call := clock()
		v, err := final.Get(ctx, in.Key).Result()
		ret := clock()
		if err != nil && err != redis.Nil {
			t.Fatalf("final GET %s: %v", in.Key, err)
		}
		history = append(history, porcupine.Operation{ClientId: finalPid, Input: in,
			Output: kvOutput{Value: v, Found: err == nil}, Call: call, Return: ret})
	}
	end := clock() + 1
	counts := map[string]int{}
	for i := range history {
		if history[i].Return < 0 {
			history[i].Return = end
		}
		counts[history[i].Input.(kvInput).Op]++
	}
	if code := p.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("bpfdb serve exited %d on SIGTERM", code)
	}
	t.Logf("history: %d operations (%v) by %d porcupine clients over %v; %d kills; %d writes of unknown outcome, %d reads dropped, %d not sent",
		len(history), counts, pids.Load(), time.Duration(end).Round(time.Millisecond), kills, unknownOps.Load(), droppedReads.Load(), notSent.Load())
	probs.report(t)
	if len(history) < clients*phases*50 {
		t.Errorf("only %d operations in the history", len(history))
	}

	res, path := checkLinearizable(t, history, 20*time.Second, t.TempDir())
	switch res {
	case porcupine.Illegal:
		t.Errorf("the history is not linearizable; visualization: %s (set BPFDB_HISTORY_DIR to keep it after the test)", path)
	case porcupine.Unknown:
		t.Logf("porcupine did not finish within 20s: no violation found, none ruled out")
	}
	t.Logf("total %v", time.Since(testStart).Round(time.Millisecond))
}
