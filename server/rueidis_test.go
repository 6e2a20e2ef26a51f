package server

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// rueidis with its default options (RESP3, client-side caching through
// CLIENT TRACKING ON OPTIN) connects, caches a GET, and sees another
// client's SET within a second. (Also against redis-server:
// BPFDB_TEST_REDIS=1.)
func TestRueidisDefaults(t *testing.T) {
	ts := startServer(t, Config{}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{ts.addr}})
	if err != nil {
		t.Fatalf("rueidis with default options: %v", err)
	}
	defer c.Close()
	if err := c.Do(ctx, c.B().Set().Key("ru:k").Value("v1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	get := func() (string, bool) {
		t.Helper()
		r := c.DoCache(ctx, c.B().Get().Key("ru:k").Cache(), time.Minute)
		v, err := r.ToString()
		if err != nil {
			t.Fatalf("DoCache GET: %v", err)
		}
		return v, r.IsCacheHit()
	}
	if v, _ := get(); v != "v1" {
		t.Fatalf("GET: %q", v)
	}
	if v, hit := get(); v != "v1" || !hit {
		t.Fatalf("second GET: %q, cache hit %v; want v1 from the cache", v, hit)
	}
	other := ts.client(t)
	if err := other.Set(ctx, "ru:k", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		v, _ := get()
		if v == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cached GET still answers %q a second after another client's SET", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Pipelines, MULTI/EXEC and the other commands rueidis sends work too.
	res := c.DoMulti(ctx, c.B().Incr().Key("ru:n").Build(), c.B().Incr().Key("ru:n").Build(), c.B().Get().Key("ru:n").Build())
	if n, err := res[2].ToString(); err != nil || n != "2" {
		t.Fatalf("pipelined INCR, INCR, GET: %q, %v", n, err)
	}
}
