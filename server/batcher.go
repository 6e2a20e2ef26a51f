package server

import (
	"errors"
	"runtime"
	"slices"
	"sync"

	"github.com/bpfdb/bpfdb/engine"
)

// batcher runs the autocommit ops of many connections together: a chain run
// costs microseconds, an op inside it a fraction of one, so ops that arrive
// while a run is in flight go into the next run, up to engine.MaxBatch.
//
// It is a leader/follower queue (LevelDB's writer queue): the connection
// that finds no run in flight becomes the leader and runs what is queued,
// its own ops first among them; connections that arrive meanwhile queue
// and wait. When the leader's own ops are done it hands the lead to the
// connection at the head of the queue, if any, and returns to its client.
// No goroutine of its own, so no hand-off when the server is idle.
//
// Invariants:
//   - At most one leader at a time: runs of queued ops are serialized,
//     which is what lets the queue fill while a run is in flight.
//   - A request's ops run in its order: one longer than MaxBatch is cut
//     into chunks that run one after the other.
//   - Requests of different connections are independent (each op is its
//     own transaction), so they may share a run in any order.
//   - The leader never waits for the disk: every connection waits for the
//     durability of its own writes (engine.WaitDurable) after its request
//     is done, so one fsync covers every connection that wrote meanwhile.
type batcher struct {
	submit func([]engine.Op) (uint64, error) // Server.submit

	mu      sync.Mutex
	queue   []*batchReq
	leading bool // a leader is running the queue
}

// batchReq is one connection's ops, waiting to run.
type batchReq struct {
	ops  []engine.Op
	next int // first op not yet taken into a run
	left int // ops not yet run
	lsn  uint64
	err  error
	// wake receives false when the request is done, true when its
	// goroutine must take the lead.
	wake chan bool
}

// errNotRun marks the ops of a request not run because an earlier one was
// refused; retryable, like the refusal.
var errNotRun = errors.New("bpfdb: not run: an earlier op of the pipeline was refused; retry")

var batchReqPool = sync.Pool{New: func() any { return &batchReq{wake: make(chan bool, 1)} }}

func newBatcher(submit func([]engine.Op) (uint64, error)) *batcher {
	return &batcher{submit: submit}
}

// do runs ops, each its own transaction, in order, and returns the last
// commit's LSN among them (0 if none wrote).
func (b *batcher) do(ops []engine.Op) (uint64, error) {
	r := batchReqPool.Get().(*batchReq)
	r.ops, r.next, r.left, r.lsn, r.err = ops, 0, len(ops), 0, nil
	b.mu.Lock()
	b.queue = append(b.queue, r)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	for {
		if lead {
			b.lead(r)
			break
		}
		if lead = <-r.wake; !lead {
			break
		}
	}
	lsn, err := r.lsn, r.err
	r.ops = nil
	batchReqPool.Put(r)
	return lsn, err
}

// chunk is a part of one request taken into a run.
type chunk struct {
	r     *batchReq
	from  int // first op in r.ops
	n     int
	write bool // it holds a SET or DEL
}

// lead runs the queue until own is done, then hands the lead on.
func (b *batcher) lead(own *batchReq) {
	var (
		ops    [engine.MaxBatch]engine.Op
		chunks [engine.MaxBatch]chunk
	)
	// Let the goroutines the scheduler has made runnable (connections whose
	// commands arrived with ours, found by one netpoll) queue their ops
	// first: with one CPU free for the server they would otherwise each run
	// alone, one after the other. Costs ~100ns when nothing else is runnable.
	runtime.Gosched()
	for {
		b.mu.Lock()
		n, nc := b.take(ops[:], chunks[:0])
		b.mu.Unlock()
		b.run(own, ops[:n], chunks[:nc])
		b.mu.Lock()
		if own.left == 0 {
			if len(b.queue) > 0 {
				b.queue[0].wake <- true
			} else {
				b.leading = false
			}
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
}

// take moves queued ops into ops, from the head of the queue; b.mu is held.
// It returns how many ops and chunks it took.
func (b *batcher) take(ops []engine.Op, chunks []chunk) (int, int) {
	n := 0
	for len(b.queue) > 0 && n < len(ops) {
		r := b.queue[0]
		k := min(len(r.ops)-r.next, len(ops)-n)
		ch := chunk{r: r, from: r.next, n: k}
		for j := range k {
			op := r.ops[r.next+j]
			ch.write = ch.write || op.Kind != engine.OpGet
			ops[n+j] = op
		}
		n += k
		r.next += k
		chunks = append(chunks, ch)
		if r.next < len(r.ops) {
			break // its next chunk runs after this one
		}
		b.queue[0] = nil
		b.queue = b.queue[1:]
	}
	return n, len(chunks)
}

// run executes one run's ops and hands each request its results, waking
// the requests done but own (the leader's, which is not waiting). The
// leader never sleeps: TrySubmit does not back off, and a refused op
// fails; its connection backs off and submits it again (conn.flushOps).
func (b *batcher) run(own *batchReq, ops []engine.Op, chunks []chunk) {
	lsn, err := b.submit(ops)
	n := 0
	for _, ch := range chunks {
		r := ch.r
		copy(r.ops[ch.from:ch.from+ch.n], ops[n:n+ch.n])
		refused := slices.ContainsFunc(ops[n:n+ch.n], func(op engine.Op) bool { return retryable(op.Err) })
		n += ch.n
		if ch.write {
			r.lsn = max(r.lsn, lsn)
		}
		if err != nil && r.err == nil {
			r.err = err
		}
		b.mu.Lock()
		r.left -= ch.n
		if refused && r.next < len(r.ops) {
			// Nothing after a refused op may run (the connection re-runs
			// its refused ops in order, so they must be a suffix): drop
			// the request's chunks not taken yet. It is the head of the
			// queue, where take leaves a request it cut.
			for j := r.next; j < len(r.ops); j++ {
				r.ops[j].Err = errNotRun
			}
			r.left -= len(r.ops) - r.next
			r.next = len(r.ops)
			if len(b.queue) > 0 && b.queue[0] == r {
				b.queue[0] = nil
				b.queue = b.queue[1:]
			}
		}
		done := r.left == 0
		b.mu.Unlock()
		if done && r != own {
			r.wake <- false
		}
	}
	clear(ops)
}
