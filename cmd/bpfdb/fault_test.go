package main

// Faults seen from a client: `bpfdb serve` on a volume that fills up, and
// on a disk that stops answering. Writes are refused with MISCONF before
// they apply, reads go on, writes come back by themselves, shutdown is
// bounded, and a restart has every acknowledged write and no refused one.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size (as mount(8) takes it) on a new
// directory, unmounted at cleanup; it skips where mounting is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestServeFullDisk is the report of issue 13 as a test: on a 24 MiB
// volume, SETs of 1000 bytes are acknowledged until the log's free-space
// bound, then refused with MISCONF naming the free space and the bound;
// the refused key is absent, GETs are served, INFO and /metrics say why,
// and once space returns writes are taken again without a restart.
// SIGTERM stops the server within its bound, and a restart has every
// acknowledged key.
func TestServeFullDisk(t *testing.T) {
	vol := mountTmpfs(t, "24m")
	dir := filepath.Join(vol, "data")
	p := startServe(t, dir)
	c := p.client(t)
	ctx := context.Background()
	value := strings.Repeat("v", 1000)
	acked := map[string]string{}
	var refusal error
	for i, deadline := 0, time.Now().Add(30*time.Second); time.Now().Before(deadline) && i < 40000; i++ {
		k := fmt.Sprintf("big:%d", i)
		if err := c.Set(ctx, k, value, 0).Err(); err != nil {
			refusal = err
			if got, err := c.Exists(ctx, k).Result(); err != nil || got != 0 {
				t.Errorf("refused %s: EXISTS = %d, %v; want 0", k, got, err)
			}
			break
		}
		acked[k] = value
	}
	if refusal == nil || !strings.HasPrefix(refusal.Error(), "MISCONF ") {
		t.Fatalf("after %d acknowledged SETs: %v, want a MISCONF refusal", len(acked), refusal)
	}
	for _, want := range []string{"bytes free", "--min-free-bytes"} {
		if !strings.Contains(refusal.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, refusal)
		}
	}
	t.Logf("%d SETs acknowledged, then: %v", len(acked), refusal)
	if err := c.Incr(ctx, "counter").Err(); err == nil || !strings.HasPrefix(err.Error(), "MISCONF ") {
		t.Errorf("INCR while refused = %v, want MISCONF", err)
	}
	if v, err := c.Get(ctx, "big:0").Result(); err != nil || v != value {
		t.Errorf("GET while writes are refused = %d bytes, %v", len(v), err)
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"aof_last_write_status:err", "log_writes_refused:1", "log_fault:", "durable_lsn_lag:0"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO persistence lacks %q:\n%s", want, info)
		}
	}
	if m := scrape(t, p.metrics); !strings.Contains(m, "bpfdb_log_writes_refused 1") {
		t.Errorf("/metrics lacks bpfdb_log_writes_refused 1")
	}

	if err := syscall.Mount("tmpfs", vol, "tmpfs", syscall.MS_REMOUNT, "size=256m"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		err := c.Set(ctx, "after", "space returned", 0).Err()
		if err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("writes still refused 5s after space returned: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("writes taken again %v after space returned", time.Since(start))
	acked["after"] = "space returned"

	begin := time.Now()
	if code := p.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("SIGTERM to exit: %v", time.Since(begin))
	p = startServe(t, dir)
	c = p.client(t)
	checkKeys(t, c, acked)
	if n, err := c.Exists(ctx, fmt.Sprintf("big:%d", len(acked)-1)).Result(); err != nil || n != 0 {
		t.Errorf("after restart the refused key exists: %d, %v", n, err)
	}
}

// scrape returns the text of a metrics endpoint.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
