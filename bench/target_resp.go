package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// respServer is a RESP server process the harness started in a temporary
// directory: what the redis and serve targets share once it runs.
type respServer struct {
	what string // the server's name in messages ("redis-server", "bpfdb serve")
	dir  string
	addr string
	proc *process
	// stopWait is how long Stop waits after SIGTERM (serve checkpoints).
	stopWait time.Duration
	// metrics, if set, is the server's Prometheus endpoint (bpfdb serve
	// --metrics), where ServerRetries reads bpfdb_txn_retries_total.
	metrics string
}

// ServerCPU is the CPU time of the server process and its descendants.
func (s *respServer) ServerCPU() (time.Duration, error) {
	if s.proc == nil {
		return 0, errors.New("not started")
	}
	return processTreeCPU(s.proc.cmd.Process.Pid)
}

// ServerRetries reads bpfdb_txn_retries_total from the metrics endpoint;
// not ok for a server without one (redis-server).
func (s *respServer) ServerRetries(ctx context.Context) (int64, bool, error) {
	if s.metrics == "" {
		return 0, false, nil
	}
	n, err := scrapeCounter(ctx, "http://"+s.metrics+"/metrics", "bpfdb_txn_retries_total")
	return n, err == nil, err
}

// prepare makes the server's temporary directory and picks its loopback
// address; it returns the directory and the port.
func (s *respServer) prepare(name string) (string, int, error) {
	dir, err := os.MkdirTemp("", "bpfdb-bench-"+name+"-")
	if err != nil {
		return "", 0, err
	}
	s.dir = dir
	port, err := freePort()
	if err != nil {
		return "", 0, err
	}
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	return dir, port, nil
}

// waitReady returns once the server accepts a RESP connection.
func (s *respServer) waitReady(ctx context.Context) error {
	return s.proc.waitReady(ctx, func(ctx context.Context) error {
		c, err := respConnect(ctx, s.addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

func (s *respServer) Load(ctx context.Context, pairs []KV) error {
	return respLoad(ctx, s.addr, pairs)
}

func (s *respServer) Supports(ctx context.Context, w Workload) error {
	return respSupports(ctx, s.addr, s.what, w)
}

func (s *respServer) Connect(ctx context.Context) (Conn, error) { return respConnect(ctx, s.addr) }

// Stop sends SIGTERM, waits up to stopWait, and removes the directory.
func (s *respServer) Stop() error {
	var err error
	if s.proc != nil {
		err = s.proc.stop(syscall.SIGTERM, s.stopWait)
		s.proc = nil
	}
	if s.dir != "" {
		err = errors.Join(err, os.RemoveAll(s.dir))
		s.dir = ""
	}
	s.metrics = ""
	return err
}
