package server

import (
	"runtime"
	"sync"

	"github.com/bpfdb/bpfdb/engine"
)

// batcher runs the autocommit ops of many connections together: a chain run
// costs microseconds, an op inside it a fraction of one, so ops that wait
// while a run is in flight go into the next run, up to engine.MaxBatch.
//
// Invariants:
//   - A request's ops run in its order: a request longer than MaxBatch is
//     cut into chunks, and a chunk in flight marks the request busy, so no
//     other runner takes its next chunk before the first has run.
//   - Requests of different connections are independent (each op is its
//     own transaction), so they may share a run in any order.
//   - The runners never wait for the disk: a connection waits for the
//     durability of its own writes (engine.WaitDurable) after its request
//     is done, so one fsync covers every connection that wrote meanwhile.
type batcher struct {
	e    *engine.Engine
	kick chan struct{}
	quit chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	queue []*batchReq
}

// batchReq is one connection's ops, waiting to run.
type batchReq struct {
	ops  []engine.Op
	next int  // first op not yet taken by a runner
	left int  // ops not yet run
	busy bool // a chunk is running
	lsn  uint64
	err  error
	done chan struct{}
}

// runners is how many runs may be in flight: one per CPU keeps every CPU
// busy without runs queueing for one another.
var runners = runtime.GOMAXPROCS(0)

var batchReqPool = sync.Pool{New: func() any { return &batchReq{done: make(chan struct{}, 1)} }}

func newBatcher(e *engine.Engine) *batcher {
	b := &batcher{e: e, kick: make(chan struct{}, runners), quit: make(chan struct{})}
	for range runners {
		b.wg.Add(1)
		go b.runner()
	}
	return b
}

func (b *batcher) close() {
	close(b.quit)
	b.wg.Wait()
}

// do runs ops, each its own transaction, in order, and returns the last
// commit's LSN among them (0 if none wrote).
func (b *batcher) do(ops []engine.Op) (uint64, error) {
	r := batchReqPool.Get().(*batchReq)
	r.ops, r.next, r.left, r.busy, r.lsn, r.err = ops, 0, len(ops), false, 0, nil
	b.mu.Lock()
	b.queue = append(b.queue, r)
	b.mu.Unlock()
	b.poke()
	<-r.done
	lsn, err := r.lsn, r.err
	r.ops = nil
	batchReqPool.Put(r)
	return lsn, err
}

func (b *batcher) poke() {
	select {
	case b.kick <- struct{}{}:
	default: // every runner is already awake
	}
}

// chunk is a part of one request taken into a run.
type chunk struct {
	r     *batchReq
	from  int // first op in r.ops
	n     int
	write bool // it holds a SET or DEL
}

func (b *batcher) runner() {
	defer b.wg.Done()
	var (
		ops    [engine.MaxBatch]engine.Op
		chunks []chunk
	)
	for {
		select {
		case <-b.quit:
			return
		case <-b.kick:
		}
		for {
			chunks = b.take(ops[:], chunks[:0])
			if len(chunks) == 0 {
				break
			}
			b.run(ops[:], chunks)
		}
	}
}

// take moves ops of waiting requests into ops, and returns where they came from.
func (b *batcher) take(ops []engine.Op, chunks []chunk) []chunk {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	kept := b.queue[:0]
	for i, r := range b.queue {
		if r.busy || n == len(ops) {
			kept = append(kept, b.queue[i])
			continue
		}
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
			r.busy = true // its next chunk waits for this one
			kept = append(kept, r)
		}
	}
	clear(b.queue[len(kept):])
	b.queue = kept
	if len(b.queue) > 0 {
		b.poke() // more than one run's worth: wake another runner
	}
	return chunks
}

// run executes one run's ops and hands each request its results.
func (b *batcher) run(ops []engine.Op, chunks []chunk) {
	n := 0
	for _, ch := range chunks {
		n += ch.n
	}
	lsn, err := b.e.Submit(ops[:n])
	n = 0
	b.mu.Lock()
	for _, ch := range chunks {
		r := ch.r
		copy(r.ops[ch.from:ch.from+ch.n], ops[n:n+ch.n])
		n += ch.n
		if ch.write {
			r.lsn = max(r.lsn, lsn)
		}
		if err != nil && r.err == nil {
			r.err = err
		}
		r.left -= ch.n
		r.busy = false
		if r.left == 0 {
			r.done <- struct{}{}
		}
	}
	more := len(b.queue) > 0
	b.mu.Unlock()
	clear(ops[:n])
	if more {
		b.poke()
	}
}
