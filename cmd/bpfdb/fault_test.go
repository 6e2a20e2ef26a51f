package main

// Faults seen from a client: `bpfdb serve` on a volume that fills up, and
// on a disk that stops answering. Writes are refused with MISCONF before
// they apply, reads go on, writes come back by themselves, shutdown is
// bounded, and a restart has every acknowledged write and no refused one.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/internal/faultfs"
	"github.com/cockroachdb/pebble/vfs"
	"os"
	"os/signal"
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
	// Values that do not compress, so that pebble's tables fill the
	// volume as its log did.
	rng := rand.New(rand.NewPCG(13, 1))
	random := make([]byte, 750)
	valueOf := func() string {
		for i := range random {
			random[i] = byte(rng.Uint32())
		}
		return base64.StdEncoding.EncodeToString(random) // 1000 bytes
	}
	acked := map[string]string{}
	// Fill the volume until writes are refused, and look at the refusal.
	// Pebble may give space back meanwhile (a memtable flush deletes its
	// log files) and end the refusal before it is seen: then fill again.
	// A flush may also take the space between the log's check and its
	// write: that commit is not durable (its outcome unknown after a
	// restart), and the log refuses writes from then on.
	var (
		refusal, incrErr error
		info, metrics    string
		refused          string
		next             int
	)
	for attempt := 1; ; attempt++ {
		refusal = nil
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && next < 40000; next++ {
			k := fmt.Sprintf("big:%d", next)
			value := valueOf()
			err := c.Set(ctx, k, value, 0).Err()
			if err != nil && strings.Contains(err.Error(), "not durable") {
				continue
			}
			if err != nil {
				refusal, refused = err, k
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
		incrErr = c.Incr(ctx, "counter").Err()
		var err error
		if info, err = c.Info(ctx, "persistence").Result(); err != nil {
			t.Fatal(err)
		}
		metrics = scrape(t, p.metrics)
		seen := incrErr != nil && strings.Contains(info, "log_writes_refused:1") && strings.Contains(metrics, "bpfdb_log_writes_refused 1")
		if seen || attempt == 5 {
			break
		}
		t.Logf("attempt %d: the refusal ended before it was looked at (space given back); filling again", attempt)
	}
	for _, want := range []string{"bytes free", "--min-free-bytes"} {
		if !strings.Contains(refusal.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, refusal)
		}
	}
	t.Logf("%d SETs acknowledged, then: %v", len(acked), refusal)
	if incrErr == nil || !strings.HasPrefix(incrErr.Error(), "MISCONF ") {
		t.Errorf("INCR while refused = %v, want MISCONF", incrErr)
	}
	if v, err := c.Get(ctx, "big:0").Result(); err != nil || v != acked["big:0"] {
		t.Errorf("GET while writes are refused = %d bytes, %v", len(v), err)
	}
	for _, want := range []string{"aof_last_write_status:err", "log_writes_refused:1", "log_fault:", "durable_lsn_lag:0"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO persistence lacks %q:\n%s", want, info)
		}
	}
	if !strings.Contains(metrics, "bpfdb_log_writes_refused 1") {
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
	if n, err := c.Exists(ctx, refused).Result(); err != nil || n != 0 {
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

// envHangOnSignal makes the serve child (TestMain) put its log on a
// faultfs whose syncs hang from the moment it gets SIGUSR1.
const envHangOnSignal = "BPFDB_SERVE_TEST_HANG_ON_SIGUSR1"

// hungMark is what the child prints once its disk hangs: a write sent
// after it is seen cannot reach the disk.
const hungMark = "bpfdb test: log syncs hang from now on"

// installTestFaults, in the serve child, sets up what the parent asked
// for through the environment.
func installTestFaults() {
	if os.Getenv(envHangOnSignal) != "1" {
		return
	}
	fs := faultfs.New(vfs.Default)
	engineFS = fs
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		fs.SetSyncDelay(time.Hour) // a disk that stops answering
		fmt.Fprintln(os.Stderr, hungMark)
	}()
}

// TestServeHungDisk: the disk stops answering. Writes are refused with
// MISCONF once the stalled fsync passes its bound, reads go on, and
// SIGTERM still stops the server within --shutdown-timeout: it exits 1
// naming the commits that are not on disk. A restart (the disk answering
// again) has every acknowledged write.
func TestServeHungDisk(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envHangOnSignal, "1")
	p := startServe(t, dir, "--shutdown-timeout", "4s")
	c := p.client(t)
	ctx := context.Background()
	acked := map[string]string{}
	for i := 0; i < 200; i++ {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if err := c.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		acked[k] = v
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); !strings.Contains(p.stderr.String(), hungMark); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the child did not hang its disk within 10s of SIGUSR1")
		}
	}
	hung := make(chan error, 1)
	go func() { hung <- p.client(t).Set(ctx, "hung", "write", 0).Err() }()
	// Writes applied before the stall is noticed are answered "not
	// durable" once it is; from then on writes are refused.
	var refusal error
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		refusal = c.Set(ctx, "refused", "write", 0).Err()
		if refusal != nil && strings.HasPrefix(refusal.Error(), "MISCONF ") {
			break
		}
		if refusal != nil && !strings.Contains(refusal.Error(), "not durable") {
			t.Fatalf("a write on a hung disk = %v", refusal)
		}
	}
	if refusal == nil || !strings.HasPrefix(refusal.Error(), "MISCONF ") || !strings.Contains(refusal.Error(), "stalled") {
		t.Fatalf("a write on a hung disk = %v, want MISCONF naming the stalled write", refusal)
	}
	if v, err := c.Get(ctx, "k7").Result(); err != nil || v != "v7" {
		t.Errorf("GET on a hung disk = %q, %v", v, err)
	}
	start := time.Now()
	code := p.stop(t, syscall.SIGTERM, 15*time.Second)
	took := time.Since(start)
	t.Logf("SIGTERM on a hung disk: exit %d after %v", code, took)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if took > 7*time.Second {
		t.Errorf("SIGTERM took %v with --shutdown-timeout 4s", took)
	}
	if out := p.stderr.String(); !strings.Contains(out, "not on disk") || !strings.Contains(out, "LSN") {
		t.Errorf("the exit does not name the commits not on disk:\n%s", out)
	}
	select {
	case err := <-hung:
		if err == nil {
			t.Errorf("the write waiting on the hung disk was acknowledged")
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the write waiting on the hung disk got no answer")
	}
	t.Setenv(envHangOnSignal, "")
	p = startServe(t, dir)
	c = p.client(t)
	checkKeys(t, c, acked)
}
