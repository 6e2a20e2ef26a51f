package bench

import (
	"context"
	"sync"
)

// parallelChunks calls fn on [lo, hi) chunks of at most size items of
// [0, n), from the given number of goroutines; it stops at the first
// error or when ctx ends, and returns that error.
func parallelChunks(ctx context.Context, n, workers, size int, fn func(lo, hi int) error) error {
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				if err := fn(lo, min(lo+size, n)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for lo := 0; lo < n; lo += size {
		select {
		case next <- lo:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs // a worker's error after the last chunk was handed out (nil if none)
	}
	return err
}
