package bench

// Servers the harness starts run as its children: their output goes to a
// log file in their temporary directory (quoted when they fail), they get
// SIGKILL if the harness dies (Pdeathsig, see startOnLockedThread), and
// stop sends a signal, waits a bounded time, then kills their group.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Pdeathsig fires when the thread that forked the child exits, and Go
// ends threads whose goroutine exits while locked to them; so children are
// forked from one thread that stays locked to a goroutine that never ends.
var (
	starterOnce sync.Once
	starts      chan startRequest
)

type startRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func startOnLockedThread(cmd *exec.Cmd) error {
	starterOnce.Do(func() {
		starts = make(chan startRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range starts {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := startRequest{cmd: cmd, done: make(chan error, 1)}
	starts <- r
	return <-r.done
}

// process is a server started by the harness.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, once done
}

// startProcess starts bin with args in dir, output to dir/<name>.log; cred,
// if not nil, runs it as another user.
func startProcess(name, bin string, args []string, dir string, cred *syscall.Credential) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	if cred != nil {
		os.Chown(logPath, int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: cred}
	if err := startOnLockedThread(cmd); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady calls probe every 20 ms until it succeeds, the process exits,
// or ctx ends; the error then quotes the end of the process's log.
func (p *process) waitReady(ctx context.Context, probe func(context.Context) error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = probe(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (last probe: %v): %s", p.name, ctx.Err(), last, p.tail())
		case <-tick.C:
		}
	}
}

// stop sends sig, waits up to timeout, then kills the process (group).
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	if p.exited() {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %v after %v; killed", p.name, timeout, sig)
}

// tail returns the last lines of the process's log, on one line.
func (p *process) tail() string {
	data, _ := os.ReadFile(p.logPath)
	data = bytes.TrimSpace(data)
	if len(data) > 600 {
		data = data[len(data)-600:]
	}
	if len(data) == 0 {
		return "(no output)"
	}
	return strings.ReplaceAll(string(data), "\n", " | ")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// executable reports whether path is an executable file.
func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s not found", path)
		}
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}
