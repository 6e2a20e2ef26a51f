package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// serveTarget is `bpfdb serve` started by the harness as a subprocess
// (TargetEnv.BpfdbBinary: the running binary itself) on free loopback
// ports in a temporary directory, with --durability, and driven over RESP
// like redis. It passes --metrics and --max-keys only if its `serve
// --help` lists them. Loading BPF needs root.
type serveTarget struct {
	env TargetEnv
	respServer
}

func newServe(env TargetEnv) *serveTarget {
	return &serveTarget{env: env, respServer: respServer{what: "bpfdb serve", stopWait: time.Minute}}
}

func (t *serveTarget) Name() string { return "serve" }

func (t *serveTarget) Check() error {
	if t.env.BpfdbBinary == "" {
		return skipf("no bpfdb binary to run serve with")
	}
	if err := executable(t.env.BpfdbBinary); err != nil {
		return skipf("bpfdb binary: %v", err)
	}
	if os.Geteuid() != 0 {
		return skipf("not root: bpfdb serve loads BPF programs, which needs root")
	}
	return nil
}

// serveFlags returns the flags `serve --help` lists.
func (t *serveTarget) serveFlags(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, t.env.BpfdbBinary, "serve", "--help").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s serve --help: %v: %s", t.env.BpfdbBinary, err, out)
	}
	return string(out), nil
}

func (t *serveTarget) Start(ctx context.Context, d Durability) error {
	help, err := t.serveFlags(ctx)
	if err != nil {
		return err
	}
	dir, _, err := t.prepare("serve")
	if err != nil {
		return err
	}
	args := []string{"serve", "--dir", dir + "/data", "--listen", t.addr, "--durability", string(d)}
	if strings.Contains(help, "--metrics") {
		mport, err := freePort()
		if err != nil {
			return err
		}
		t.metrics = fmt.Sprintf("127.0.0.1:%d", mport)
		args = append(args, "--metrics", t.metrics)
	}
	if strings.Contains(help, "--max-keys") {
		args = append(args, "--max-keys", strconv.Itoa(engineOptions(t.env.Keys, t.env.ValueSize).MaxKeys))
	}
	t.proc, err = startProcess("bpfdb-serve", t.env.BpfdbBinary, args, dir, nil)
	if err != nil {
		return err
	}
	return t.waitReady(ctx)
}
