package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// transfer is one attempt at moving amt from account from to account to,
// with the marker key xfer:<id> written in the same transaction.
type transfer struct {
	id       string
	from, to int
	amt      int64
}

func (x transfer) marker() string { return "xfer:" + x.id }
func (x transfer) value() string  { return fmt.Sprintf("%d>%d:%d", x.from, x.to, x.amt) }

// TestHistoryTransfersSerializable: bank transfers with WATCH/MULTI/EXEC
// over RESP. 8 accounts start at 1000 (one MSET); 8 clients loop: WATCH a
// b, GET a, GET b, MULTI, SET a a-amt, SET b b+amt, SET xfer:<id> (a
// marker unique to the attempt), EXEC. The server (sync durability) is
// killed with SIGKILL in the middle of the run and restarted on the same
// directory and address, and once more, idle, at the end. Checked:
//
//   - while it runs, every 10 milliseconds, a snapshot (MGET of
//     every account, one read-only snapshot transaction in bpfdb) sums to
//     8*1000;
//   - after the last restart: every acknowledged transfer's marker is there
//     with its value, no marker of an attempt whose EXEC answered a null
//     array (watch failed) is, and a transfer whose outcome is unknown (its
//     connection broke at the kill) is there or not; every balance is 1000
//     plus the effects of exactly the transfers whose marker is there (so
//     nothing is half-applied and nothing acknowledged is lost), and DBSIZE
//     counts no other key.
//
// Any reply but OK, a null EXEC, or a broken connection at a kill fails
// the test (an `-ERR transient race, retry` among them).
func TestHistoryTransfersSerializable(t *testing.T) {
	skipUnlessRoot(t)
	const (
		accounts = 8
		initial  = 1000
		clients  = 8
		phase    = 3 * time.Second // load before the kill, and after it
	)
	testStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	dir := t.TempDir()
	addr := freePort(t)
	p := startServeAt(t, dir, addr, "--durability", "sync")
	t.Logf("server up in %v", time.Since(testStart).Round(time.Millisecond))
	acct := func(i int) string { return fmt.Sprintf("acct:%d", i) }
	allAccounts := make([]string, accounts)
	for i := range allAccounts {
		allAccounts[i] = acct(i)
	}
	{
		c := p.client(t)
		var kv []any
		for _, k := range allAccounts {
			kv = append(kv, k, initial)
		}
		if err := c.MSet(ctx, kv...).Err(); err != nil {
			t.Fatalf("MSET: %v", err)
		}
		c.Close()
	}

	ctl := newServerCtl()
	stop := make(chan struct{})
	var probs problems
	type result struct {
		acked, unknown, failed []transfer
	}
	results := make([]result, clients)
	var snapshots atomic.Int64

	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := &results[w]
			c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 1,
				DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
			defer c.Close()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for seq := 0; ; seq++ {
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
				x := transfer{id: fmt.Sprintf("%d-%d", w, seq), from: rng.IntN(accounts), amt: 1 + rng.Int64N(50)}
				x.to = (x.from + 1 + rng.IntN(accounts-1)) % accounts
				var badRead, badReply error
				err := c.Watch(ctx, func(tx *redis.Tx) error {
					a, err := tx.Get(ctx, acct(x.from)).Result()
					if err != nil {
						return err
					}
					b, err := tx.Get(ctx, acct(x.to)).Result()
					if err != nil {
						return err
					}
					av, err1 := strconv.ParseInt(a, 10, 64)
					bv, err2 := strconv.ParseInt(b, 10, 64)
					if err := errors.Join(err1, err2); err != nil {
						badRead = err
						return err
					}
					cmds, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
						pipe.Set(ctx, acct(x.from), av-x.amt, 0)
						pipe.Set(ctx, acct(x.to), bv+x.amt, 0)
						pipe.Set(ctx, x.marker(), x.value(), 0)
						return nil
					})
					if err == nil {
						for _, cmd := range cmds {
							if s := cmd.(*redis.StatusCmd).Val(); s != "OK" {
								badReply = fmt.Errorf("EXEC: %s answered %q", cmd.Name(), s)
								return badReply
							}
						}
					}
					return err
				}, acct(x.from), acct(x.to))
				switch {
				case err == nil:
					r.acked = append(r.acked, x)
					continue
				case errors.Is(err, redis.TxFailedErr):
					r.failed = append(r.failed, x) // a watched key changed: try another
					continue
				case badReply != nil:
					probs.add("client %d: transfer %s: %v", w, x.id, badReply)
				case badRead != nil:
					probs.add("client %d: transfer %s: a balance is not a number: %v", w, x.id, badRead)
				case errors.Is(err, redis.Nil):
					probs.add("client %d: transfer %s: GET of an account answered nil", w, x.id)
				default:
					switch classify(err) {
					case errNotSent:
						if !ctl.expectedNetErr(gen, up) {
							probs.add("client %d: transfer %s: cannot connect with the server up: %v", w, x.id, err)
						}
						time.Sleep(10 * time.Millisecond)
						continue // nothing was sent
					case errNetwork:
						if !ctl.expectedNetErr(gen, up) {
							probs.add("client %d: transfer %s: connection error with the server up: %v", w, x.id, err)
						}
					default:
						probs.add("client %d: transfer %s: unexpected reply: %v", w, x.id, err)
					}
				}
				// The outcome is unknown: its marker will say.
				r.unknown = append(r.unknown, x)
				ctl.waitUp(ctx, stop)
			}
		}(w)
	}

	// Snapshots of the total while the transfers run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 1,
			DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
		defer c.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			gen, up := ctl.state()
			if !up {
				continue
			}
			vals, err := c.MGet(ctx, allAccounts...).Result()
			if err != nil {
				switch classify(err) {
				case errNotSent, errNetwork:
					if ctl.expectedNetErr(gen, up) {
						continue
					}
				}
				probs.add("snapshot MGET: %v", err)
				continue
			}
			var sum int64
			for i, v := range vals {
				s, ok := v.(string)
				n, err := strconv.ParseInt(s, 10, 64)
				if !ok || err != nil {
					probs.add("snapshot MGET: %s = %v", allAccounts[i], v)
				}
				sum += n
			}
			snapshots.Add(1)
			if sum != accounts*initial {
				probs.add("snapshot MGET %v sums to %d, want %d", vals, sum, accounts*initial)
			}
		}
	}()

	select {
	case <-time.After(phase):
	case <-ctx.Done():
	}
	ctl.down()
	if code := p.stop(t, syscall.SIGKILL, 30*time.Second); code == 0 {
		t.Errorf("exit code 0 after SIGKILL?")
	}
	restart := time.Now()
	p = startServeAt(t, dir, addr, "--durability", "sync")
	t.Logf("kill -9 at %v; restarted (recovered) in %v", time.Since(testStart).Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))
	ctl.restarted()
	select {
	case <-time.After(phase):
	case <-ctx.Done():
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("clients still running 30s after the end of the load")
	}

	// Kill it once more, idle, so that every acknowledged transfer is
	// checked after a recovery.
	if code := p.stop(t, syscall.SIGKILL, 30*time.Second); code == 0 {
		t.Errorf("exit code 0 after SIGKILL?")
	}
	p = startServeAt(t, dir, addr, "--durability", "sync")
	c := p.client(t)

	var acked, unknown, failed []transfer
	for _, r := range results {
		acked = append(acked, r.acked...)
		unknown = append(unknown, r.unknown...)
		failed = append(failed, r.failed...)
	}
	t.Logf("%d transfers acknowledged, %d of unknown outcome, %d EXECs answered null (watch failed); %d snapshots checked",
		len(acked), len(unknown), len(failed), snapshots.Load())
	probs.report(t)
	if len(acked) < 100 {
		t.Errorf("only %d transfers acknowledged", len(acked))
	}

	// Which markers are there.
	present := func(xs []transfer) []bool {
		out := make([]bool, len(xs))
		for i := 0; i < len(xs); i += 500 {
			chunk := xs[i:min(i+500, len(xs))]
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, x := range chunk {
					p.Get(ctx, x.marker())
				}
				return nil
			})
			if err != nil && err != redis.Nil {
				t.Fatalf("reading the markers: %v", err)
			}
			for j, cmd := range cmds {
				v, err := cmd.(*redis.StringCmd).Result()
				switch {
				case err == redis.Nil:
				case err != nil:
					t.Fatalf("GET %s: %v", chunk[j].marker(), err)
				case v != chunk[j].value():
					t.Errorf("%s = %q, want %q", chunk[j].marker(), v, chunk[j].value())
					out[i+j] = true
				default:
					out[i+j] = true
				}
			}
		}
		return out
	}
	want := make([]int64, accounts)
	for i := range want {
		want[i] = initial
	}
	apply := func(x transfer) { want[x.from] -= x.amt; want[x.to] += x.amt }
	included := 0
	lost := 0
	for i, ok := range present(acked) {
		if !ok {
			if lost < 10 {
				t.Errorf("acknowledged transfer %s (%s) is not there after the restart", acked[i].id, acked[i].value())
			}
			lost++
		}
		apply(acked[i]) // acknowledged: it must have happened
		included++
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged transfers lost", lost, len(acked))
	}
	unknownIn := 0
	for i, ok := range present(unknown) {
		if ok {
			apply(unknown[i])
			included++
			unknownIn++
		}
	}
	for i, ok := range present(failed) {
		if ok {
			t.Errorf("transfer %s (%s), whose EXEC answered a null array, is there", failed[i].id, failed[i].value())
			included++
		}
	}
	t.Logf("of the %d transfers of unknown outcome, %d took effect", len(unknown), unknownIn)

	vals, err := c.MGet(ctx, allAccounts...).Result()
	if err != nil {
		t.Fatalf("final MGET: %v", err)
	}
	var sum int64
	for i, v := range vals {
		s, _ := v.(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Errorf("final %s = %v", allAccounts[i], v)
		}
		sum += n
		if n != want[i] {
			t.Errorf("final %s = %d, want %d (1000 plus the transfers whose marker is there)", allAccounts[i], n, want[i])
		}
	}
	if sum != accounts*initial {
		t.Errorf("final balances %v sum to %d, want %d", vals, sum, accounts*initial)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != int64(accounts+included) {
		t.Errorf("DBSIZE %d, %v; want %d accounts + %d markers", n, err, accounts, included)
	}
	if code := p.stop(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("bpfdb serve exited %d on SIGTERM", code)
	}
	t.Logf("final balances %v; total %v", vals, time.Since(testStart).Round(time.Millisecond))
}
