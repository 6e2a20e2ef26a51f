package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpfdb/bpfdb/mcudp"
)

// MCGetParams describe a memcached UDP GET load: Window requests in
// flight on each of Sockets UDP sockets, for keys chosen uniformly from
// Keys records named like redis-benchmark's (key:%012d), so that the same
// records serve a RESP GET run with redis-benchmark -r Keys.
type MCGetParams struct {
	Addr      string        // host:port of the server
	Keys      int           // records
	ValueSize int           // bytes per value (MCLoad)
	Requests  int64         // gets to send (MCGet)
	Sockets   int           // UDP sockets, each with its own goroutine
	Window    int           // requests in flight per socket
	Timeout   time.Duration // a request with no reply by then counts as lost
	Seed      uint64
}

// DefaultMCGetParams are 10,000 records of 100 bytes, 4 sockets of 16.
func DefaultMCGetParams() MCGetParams {
	return MCGetParams{Keys: 10000, ValueSize: 100, Requests: 200000, Sockets: 4, Window: 16,
		Timeout: 500 * time.Millisecond, Seed: 1}
}

// MCGetResult is what a load did.
type MCGetResult struct {
	Requests, Hits, Misses, Lost, Errors uint64
	Elapsed                              time.Duration
}

func mcKey(i int) string { return fmt.Sprintf("key:%012d", i) }

// MCLoad stores every record with UDP sets, one at a time, checking each
// is STORED.
func MCLoad(ctx context.Context, p MCGetParams) error {
	conn, err := net.Dial("udp", p.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	value := bytes.Repeat([]byte{'v'}, p.ValueSize)
	buf := make([]byte, 64<<10)
	for i := range p.Keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		req := mcudp.AppendHeader(nil, mcudp.Header{RequestID: uint16(i), Total: 1})
		req = fmt.Appendf(req, "set %s 0 0 %d\r\n%s\r\n", mcKey(i), len(value), value)
		for try := 0; ; try++ {
			if _, err := conn.Write(req); err != nil {
				return err
			}
			conn.SetReadDeadline(time.Now().Add(p.Timeout))
			n, err := conn.Read(buf)
			if err == nil && n >= mcudp.HeaderLen && bytes.Equal(buf[:2], req[:2]) {
				if !bytes.Equal(buf[mcudp.HeaderLen:n], []byte("STORED\r\n")) {
					return fmt.Errorf("set %s: %q", mcKey(i), buf[mcudp.HeaderLen:n])
				}
				break
			}
			if try == 5 {
				return fmt.Errorf("set %s: no reply after %d tries: %v", mcKey(i), try+1, err)
			}
		}
	}
	return nil
}

// MCGet sends p.Requests gets and counts the replies; progress, if not
// nil, is called about once a second with the requests answered so far.
func MCGet(ctx context.Context, p MCGetParams, progress func(done uint64)) (MCGetResult, error) {
	if p.Sockets < 1 || p.Window < 1 || p.Window > 1<<12 || p.Keys < 1 {
		return MCGetResult{}, errors.New("bench: mcget needs Sockets ≥ 1, 1 ≤ Window ≤ 4096 and Keys ≥ 1")
	}
	var res MCGetResult
	var left atomic.Int64
	left.Store(p.Requests)
	var done atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, p.Sockets)
	start := time.Now()
	stop := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(done.Load())
				}
			}
		}()
	}
	var mu sync.Mutex
	for s := range p.Sockets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := mcGetSocket(ctx, p, uint64(s), &left, &done)
			mu.Lock()
			res.Requests += r.Requests
			res.Hits += r.Hits
			res.Misses += r.Misses
			res.Lost += r.Lost
			res.Errors += r.Errors
			mu.Unlock()
			errs <- err
		}()
	}
	wg.Wait()
	close(stop)
	res.Elapsed = time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// mcGetSocket runs rounds of p.Window gets on one socket until left is spent.
func mcGetSocket(ctx context.Context, p MCGetParams, s uint64, left *atomic.Int64, done *atomic.Uint64) (MCGetResult, error) {
	var r MCGetResult
	conn, err := net.Dial("udp", p.Addr)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	rng := rand.New(rand.NewPCG(p.Seed, s))
	buf := make([]byte, 64<<10)
	pending := make(map[uint16]bool, p.Window)
	var id uint16
	for ctx.Err() == nil {
		n := min(int64(p.Window), left.Add(-int64(p.Window))+int64(p.Window))
		if n <= 0 {
			break
		}
		clear(pending)
		for range n {
			id++
			req := mcudp.AppendHeader(nil, mcudp.Header{RequestID: id, Total: 1})
			req = fmt.Appendf(req, "get %s\r\n", mcKey(rng.IntN(p.Keys)))
			if _, err := conn.Write(req); err != nil {
				return r, err
			}
			pending[id] = true
		}
		r.Requests += uint64(n)
		deadline := time.Now().Add(p.Timeout)
		for len(pending) > 0 {
			conn.SetReadDeadline(deadline)
			m, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					r.Lost += uint64(len(pending))
					break
				}
				return r, err
			}
			h, payload, err := mcudp.ParseHeader(buf[:m])
			if (err != nil && !errors.Is(err, mcudp.ErrMultiPart)) || !pending[h.RequestID] {
				continue
			}
			delete(pending, h.RequestID)
			done.Add(1)
			switch {
			case bytes.HasPrefix(payload, []byte("VALUE ")):
				r.Hits++
			case bytes.Equal(payload, []byte("END\r\n")):
				r.Misses++
			default:
				r.Errors++
			}
		}
	}
	return r, ctx.Err()
}
