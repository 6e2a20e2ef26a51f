package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// transferClient runs transfers until the window closes. A transfer picks
// two distinct accounts and an amount, and retries its attempt (a
// Conn.Transfer, or a ProcConn.TransferProc for a Proc workload) while it
// aborts (ErrAborted), with a randomized exponential back-off of at most
// a millisecond, up to MaxAttempts; past the deadline it stops retrying
// and the transfer is not counted.
func transferClient(ctx context.Context, c Conn, spec CellSpec, rng *rand.Rand, win *window, st *clientStats) error {
	n := spec.Chooser.N()
	attempt := c.Transfer
	if spec.Workload.Proc {
		pc, ok := c.(ProcConn)
		if !ok {
			return errors.New("transfer-proc: the connection has no stored procedure")
		}
		attempt = pc.TransferProc
	}
	for win.running(ctx) {
		from := spec.Chooser.Next(rng)
		to := spec.Chooser.Next(rng)
		for tries := 0; to == from && tries < 64; tries++ {
			to = spec.Chooser.Next(rng)
		}
		if to == from {
			to = (from + 1) % n
		}
		amount := 1 + rng.Int64N(MaxTransferAmount)
		t0 := time.Now()
		if !win.take(t0, 1) {
			break
		}
		measured := !t0.Before(win.measureStart)
		committed, attempts := false, 0
		for attempts < MaxAttempts {
			attempts++
			err := attempt(ctx, spec.Accounts[from], spec.Accounts[to], amount)
			if err == nil {
				committed = true
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, ErrAborted) {
				return fmt.Errorf("transfer: %w", err)
			}
			if measured {
				st.aborts++
			}
			if !win.running(ctx) {
				break
			}
			backoff(rng, attempts)
		}
		if !measured {
			continue
		}
		st.attempts += int64(attempts)
		switch {
		case committed:
			t1 := time.Now()
			st.ops++
			if attempts > 1 {
				st.retried++
			}
			st.end = t1
			record(st.hist, t1.Sub(t0), 1)
			win.meter.ops.Add(1)
		case attempts >= MaxAttempts:
			st.gaveUp++
		}
	}
	return nil
}

// backoff sleeps a random time below min(2^attempt µs, 1 ms).
func backoff(rng *rand.Rand, attempt int) {
	limit := min(time.Microsecond<<min(attempt, 10), time.Millisecond)
	time.Sleep(time.Duration(rng.Int64N(int64(limit))))
}

// checkConservation reads every account through a fresh connection and
// sets res.Conserved, Total and Expected; a broken sum is also res.Error.
func checkConservation(ctx context.Context, t Target, spec CellSpec, res *Result) {
	expected := int64(len(spec.Accounts)) * InitialBalance
	total, err := sumBalances(ctx, t, spec.Accounts)
	if err != nil {
		res.Error = joinErr(res.Error, "conservation check: "+err.Error())
		return
	}
	ok := total == expected
	res.Conserved, res.Total, res.Expected = &ok, total, expected
	if !ok {
		res.Error = joinErr(res.Error, fmt.Sprintf("money not conserved: balances sum to %d, loaded %d (%+d)", total, expected, total-expected))
	}
}

// sumBalances reads the accounts, 64 per round trip, and sums them.
func sumBalances(ctx context.Context, t Target, accounts [][]byte) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := t.Connect(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var total int64
	ops := make([]Op, 0, 64)
	for i := 0; i < len(accounts); i += cap(ops) {
		ops = ops[:0]
		for _, k := range accounts[i:min(i+cap(ops), len(accounts))] {
			ops = append(ops, Op{Key: k})
		}
		aborted, err := c.Do(ctx, ops)
		if err == nil && aborted > 0 {
			err = fmt.Errorf("%d reads aborted with no writer running", aborted)
		}
		if err != nil {
			return 0, err
		}
		for _, op := range ops {
			n, err := ParseBalance(op.Value)
			if err != nil {
				return 0, fmt.Errorf("account %s: %w", op.Key, err)
			}
			total += n
		}
	}
	return total, nil
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
