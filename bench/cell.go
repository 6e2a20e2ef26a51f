package bench

// A cell runs `clients` goroutines, each with its own Conn, random source
// and histogram, for Params.Warmup and then Params.Duration (the measured
// window). Operations that start before the window are not counted; the
// window ends for each client at its first check after the deadline (or
// when Params.Ops are used up), and Elapsed runs to the latest such end.
// One client's failure cancels the others.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// ioGrace is how long past a cell's deadline a request may take before
// its context gives up on it.
const ioGrace = 30 * time.Second

// CellSpec is one cell to run against a started and loaded target.
type CellSpec struct {
	// Workload, Clients and Durability are the cell's (see Cell).
	Workload   Workload
	Clients    int
	Durability Durability
	// Params are the plan's settings.
	Params Params
	// Records and Accounts are the loaded keys, indexed by KeyChooser.
	Records, Accounts [][]byte
	// Chooser picks record and account indexes.
	Chooser KeyChooser
}

// clientStats are one client's counts; merged when the cell ends.
type clientStats struct {
	hist                           *hdrhistogram.Histogram
	ops, attempts, aborts, retried int64
	gaveUp                         int64
	end                            time.Time // last measured completion
	err                            error
}

// window is a cell's timing and shared budget.
type window struct {
	measureStart, deadline time.Time
	budget                 *atomic.Int64 // nil: no ops limit
	meter                  *cellMeter
}

// running reports whether a client should start another operation.
func (w *window) running(ctx context.Context) bool {
	return ctx.Err() == nil && time.Now().Before(w.deadline)
}

// take reserves n measured operations of the budget; false when used up.
func (w *window) take(t0 time.Time, n int64) bool {
	if w.budget == nil || t0.Before(w.measureStart) {
		return true
	}
	return w.budget.Add(-n) >= 0
}

// RunCell runs one cell against t and returns its result; a transfer
// cell ends with the conservation check. It never returns with a client
// still running.
func RunCell(ctx context.Context, t Target, spec CellSpec, progress *Progress) Result {
	p := spec.Params
	res := Result{Workload: spec.Workload.Label(), Target: t.Name(), Clients: spec.Clients,
		Durability: spec.Durability, Pipeline: p.Pipeline}
	if spec.Workload.Transfer {
		res.Pipeline = 1
	}
	if spec.Clients < 1 || spec.Clients > MaxClients {
		res.Error = fmt.Sprintf("clients must be 1 to %d", MaxClients)
		return res
	}
	conns := make([]Conn, 0, spec.Clients)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range spec.Clients {
		c, err := t.Connect(ctx)
		if err != nil {
			res.Error = fmt.Sprintf("connecting client %d: %v", len(conns)+1, err)
			return res
		}
		conns = append(conns, c)
	}
	if _, ok := conns[0].(ProcConn); spec.Workload.Proc && !ok {
		res.Skipped = DisplayName(t.Name()) + " has no stored procedure"
		return res
	}

	start := time.Now()
	win := &window{measureStart: start.Add(p.Warmup)}
	win.deadline = win.measureStart.Add(p.Duration)
	if p.Ops > 0 {
		win.budget = new(atomic.Int64)
		win.budget.Store(p.Ops)
	}
	win.meter = &cellMeter{
		label:        fmt.Sprintf("bench: %s %s %s clients=%d", spec.Workload.Label(), spec.Durability, t.Name(), spec.Clients),
		measureStart: win.measureStart, deadline: win.deadline,
	}
	cellCtx, cancel := context.WithDeadline(ctx, win.deadline.Add(ioGrace))
	defer cancel()
	stop := make(chan struct{})
	waitProgress := progress.watch(win.meter, stop)

	// A server's CPU time and retries are sampled when the window opens
	// and once every client has stopped.
	srv, _ := t.(ServerStats)
	var srvStart serverSample
	srvSampled := make(chan struct{})
	go func() {
		defer close(srvSampled)
		if srv == nil {
			return
		}
		select {
		case <-time.After(time.Until(win.measureStart)):
			srvStart = sampleServer(cellCtx, srv)
		case <-cellCtx.Done():
		}
	}()

	stats := make([]*clientStats, spec.Clients)
	var wg sync.WaitGroup
	for i, c := range conns {
		st := &clientStats{hist: newHistogram()}
		stats[i] = st
		rng := rand.New(rand.NewPCG(p.Seed, uint64(i)+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if spec.Workload.Transfer {
				st.err = transferClient(cellCtx, c, spec, rng, win, st)
			} else {
				st.err = ycsbClient(cellCtx, c, spec, rng, win, st)
			}
			if st.err != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	close(stop)
	waitProgress()
	cancel() // ends a sampler still waiting for a window that never opened
	<-srvSampled
	var srvEnd serverSample
	if srv != nil {
		srvEnd = sampleServer(ctx, srv)
	}

	merged := newHistogram()
	end := win.measureStart
	var errs []error
	for _, st := range stats {
		merged.Merge(st.hist)
		res.Ops += st.ops
		res.Attempts += st.attempts
		res.Aborts += st.aborts
		res.Retried += st.retried
		res.GaveUp += st.gaveUp
		if st.end.After(end) {
			end = st.end
		}
		if st.err != nil && !errors.Is(st.err, context.Canceled) {
			errs = append(errs, st.err)
		}
	}
	res.Elapsed = end.Sub(win.measureStart)
	if res.Elapsed > 0 {
		res.Throughput = float64(res.Ops) / res.Elapsed.Seconds()
	}
	res.Latency = latencyOf(merged)
	res.setServer(srvStart, srvEnd)
	if res.Attempts > 0 {
		res.AbortRate = float64(res.Aborts) / float64(res.Attempts)
	}
	if res.Ops > 0 {
		res.RetryRate = float64(res.Retried) / float64(res.Ops)
	}
	if len(errs) > 0 {
		res.Error = errs[0].Error()
		if len(errs) > 1 {
			res.Error += fmt.Sprintf(" (and %d more clients failed)", len(errs)-1)
		}
	} else if ctx.Err() != nil {
		res.Error = "interrupted: " + ctx.Err().Error()
	}
	if spec.Workload.Transfer && ctx.Err() == nil {
		checkConservation(ctx, t, spec, &res)
	}
	return res
}
