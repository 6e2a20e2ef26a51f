package server

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// go-ycsb (clients/ycsb, a module of its own built here with the go tool)
// loads and runs YCSB workload A against the server through go-ycsb's redis
// database with its default data type, hash: HSET for inserts and updates,
// HMGET for reads, over go-redis v9.0.0-rc.1 (HELLO 3). The runner exits
// non-zero if any operation failed, including a hash read that came back
// short (go-ycsb's redis database drops HMGET's errors). Then every record
// the load wrote must be a hash of 10 fields.
func TestGoYCSB(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			if requireBPF() {
				t.Fatalf("the go tool is needed to build clients/ycsb: %v", err)
			}
			t.Skip("skipping: no go tool to build clients/ycsb")
		}
	}
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 3*time.Minute)
	dir, _ := filepath.Abs("../clients/ycsb")
	bin := filepath.Join(t.TempDir(), "ycsb")
	build := exec.CommandContext(ctx, goTool, "build", "-C", dir, "-o", bin, ".")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -C %s: %v\n%s", dir, err, out)
	}

	const records, fields = 1000, 10
	run := exec.CommandContext(ctx, bin, "load", "run",
		"-P", filepath.Join(dir, "workloada"),
		"-p", "redis.addr="+ts.addr,
		"-p", fmt.Sprintf("recordcount=%d", records),
		"-p", "operationcount=2000",
		"-p", fmt.Sprintf("fieldcount=%d", fields),
		"--threads", "4")
	out, err := run.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ycsb load run did not finish in time: %v\n%s", ctx.Err(), out)
	}
	if err != nil {
		t.Fatalf("ycsb load run: %v\n%s", err, out)
	}
	t.Logf("%s", out)

	// go-ycsb names record i "usertable/user" followed by its util.Hash64(i):
	// FNV-1a of i's 8 big-endian bytes, made non-negative.
	key := func(i int64) string {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		h := fnv.New64a()
		h.Write(b[:])
		n := int64(h.Sum64())
		if n < 0 {
			n = -n
		}
		return fmt.Sprintf("usertable/user%d", n)
	}
	c := ts.client(t)
	if typ, err := c.Type(ctx, key(0)).Result(); err != nil || typ != "hash" {
		t.Fatalf("TYPE %s = %q, %v; want hash", key(0), typ, err)
	}
	all, err := c.HGetAll(ctx, key(0)).Result()
	if err != nil || len(all) != fields {
		t.Fatalf("HGETALL %s: %d fields, %v; want %d", key(0), len(all), err, fields)
	}
	for i := range fields {
		if v, ok := all[fmt.Sprintf("field%d", i)]; !ok || len(v) != 100 {
			t.Fatalf("HGETALL %s: field%d is %d bytes (present %v); want 100", key(0), i, len(v), ok)
		}
	}
	pipe := c.Pipeline()
	lens := make([]*redis.IntCmd, records)
	for i := range lens {
		lens[i] = pipe.HLen(ctx, key(int64(i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("HLEN of the %d records: %v", records, err)
	}
	for i, l := range lens {
		if l.Val() != fields {
			t.Fatalf("HLEN %s = %d, want %d", key(int64(i)), l.Val(), fields)
		}
	}
}
