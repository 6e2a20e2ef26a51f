package engine_test

// Kernel-side writers racing clients of the Redis protocol (issue 14,
// item 6): a BPF program (bpf/test/apitest.c) loaded against the store
// that `server` serves over RESP.

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/engine/internal/apitest"
	"github.com/bpfdb/bpfdb/server"
	"github.com/cilium/ebpf"
	"github.com/redis/go-redis/v9"
)

// respStore is an engine served over RESP, with the API test programs
// loaded against it.
type respStore struct {
	db    *engine.Engine
	rdb   *redis.Client
	coll  *ebpf.Collection
	slots *ebpf.Map
}

func openRESPStore(t *testing.T) *respStore {
	t.Helper()
	db, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if errors.Is(err, engine.ErrNotPermitted) && os.Getenv("BPFDB_REQUIRE_BPF") != "1" {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(db, server.Config{Addr: "127.0.0.1:0", Version: "test"})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	go srv.Serve()
	spec, err := apitest.LoadApitest()
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range spec.Programs {
		if p.Type != ebpf.XDP {
			delete(spec.Programs, name)
		}
	}
	repl, err := db.FitSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr().String(), Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() {
		rdb.Close()
		coll.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		db.Close()
	})
	return &respStore{db: db, rdb: rdb, coll: coll, slots: coll.Maps["api_slots"]}
}

func key(k string) apitest.ApitestBpfdbKey {
	var out apitest.ApitestBpfdbKey
	out.Len = uint32(copy(out.Data[:], k))
	return out
}

// call runs prog on api slot slot, again while it fails retryably.
func (s *respStore) call(prog string, slot uint32, in *apitest.ApitestApiSlot) (*apitest.ApitestApiSlot, error) {
	pkt := make([]byte, 16)
	binary.LittleEndian.PutUint32(pkt, slot)
	var out apitest.ApitestApiSlot
	for try := 0; try < 5000; try++ {
		if err := s.slots.Update(slot, in, ebpf.UpdateAny); err != nil {
			return nil, err
		}
		if _, err := s.coll.Programs[prog].Run(&ebpf.RunOptions{Data: pkt}); err != nil {
			return nil, err
		}
		if err := s.slots.Lookup(slot, &out); err != nil {
			return nil, err
		}
		switch out.Status {
		case 2, 6, 12, 14, 19: // conflict, versions full, retry, log full, txn table full: nothing applied
			time.Sleep(20 * time.Microsecond)
			continue
		}
		return &out, nil
	}
	return &out, errors.New(prog + ": still refused after 5000 tries")
}

// Kernel-side increments racing RESP INCRs of the same key lose no update.
func TestAPIIncrRacesRESP(t *testing.T) {
	s := openRESPStore(t)
	ctx := context.Background()
	const kernelIncrs, respIncrs = 400, 400
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 2; w++ {
		wg.Add(2)
		go func(slot uint32) {
			defer wg.Done()
			in := &apitest.ApitestApiSlot{Keys: [2]apitest.ApitestBpfdbKey{key("hits")}, Delta: 1}
			for i := 0; i < kernelIncrs/2; i++ {
				out, err := s.call("api_incr", slot, in)
				if err == nil && out.Status != 0 {
					err = errors.New("kernel incr: status " + strconv.Itoa(int(out.Status)))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(uint32(w))
		go func() {
			defer wg.Done()
			for i := 0; i < respIncrs/2; i++ {
				if err := s.rdb.Incr(ctx, "hits").Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := s.rdb.Get(ctx, "hits").Int(); err != nil || n != kernelIncrs+respIncrs {
		t.Fatalf("hits = %d, %v; want %d", n, err, kernelIncrs+respIncrs)
	}
}

// Kernel-side transfer transactions racing RESP MULTI/EXEC transfers
// conserve the total, and every snapshot read over RESP (MGET) sees it.
func TestAPITransfersRaceRESP(t *testing.T) {
	s := openRESPStore(t)
	ctx := context.Background()
	const total = 2000
	if err := s.rdb.MSet(ctx, "acct:a", total/2, "acct:b", total/2).Err(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg, readers sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 2; w++ {
		wg.Add(2)
		go func(slot uint32) {
			defer wg.Done()
			in := &apitest.ApitestApiSlot{Keys: [2]apitest.ApitestBpfdbKey{key("acct:a"), key("acct:b")}}
			for i := 0; i < 150; i++ {
				in.Delta = int64(i%21 - 10)
				out, err := s.call("api_transfer", slot, in)
				if err == nil && out.Status != 0 {
					err = errors.New("kernel transfer: status " + strconv.Itoa(int(out.Status)))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(uint32(w))
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				amt := int64(i % 7)
				_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.DecrBy(ctx, "acct:a", amt)
					p.IncrBy(ctx, "acct:b", amt)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			vals, err := s.rdb.MGet(ctx, "acct:a", "acct:b").Result()
			if err != nil {
				errs <- err
				return
			}
			a, _ := strconv.Atoi(vals[0].(string))
			b, _ := strconv.Atoi(vals[1].(string))
			if a+b != total {
				errs <- errors.New("a snapshot read over RESP saw " + strconv.Itoa(a+b))
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	a, _ := s.rdb.Get(ctx, "acct:a").Int()
	b, _ := s.rdb.Get(ctx, "acct:b").Int()
	if a+b != total {
		t.Fatalf("total %d after the race, want %d", a+b, total)
	}
}
