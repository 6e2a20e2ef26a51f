package bench

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/mcudp"
)

// MCLoad stores the records and MCGet finds every one, none lost.
func TestMCGet(t *testing.T) {
	db, err := engine.Open(engine.Options{MaxKeys: 1024})
	if err != nil {
		if os.Getenv("BPFDB_REQUIRE_BPF") != "1" && errors.Is(err, engine.ErrNotPermitted) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer db.Close()
	mc, err := mcudp.Listen(db, "127.0.0.1:0", "test")
	if err != nil {
		t.Fatal(err)
	}
	go mc.Serve()
	defer mc.Close()
	p := DefaultMCGetParams()
	p.Addr, p.Keys, p.Requests, p.Sockets, p.Window = mc.Addr().String(), 100, 2000, 2, 8
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := MCLoad(ctx, p); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("key:000000000042")); err != nil || len(v) != p.ValueSize {
		t.Fatalf("key:000000000042 = %q, %v", v, err)
	}
	res, err := MCGet(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 2000 || res.Hits != 2000 || res.Lost+res.Misses+res.Errors != 0 {
		t.Errorf("%+v", res)
	}
}
