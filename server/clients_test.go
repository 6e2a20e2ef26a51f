package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// node-redis 6 (RESP3 by default) and ioredis, with their default options,
// run strings, pipelines, MULTI/EXEC, WATCH, SCAN and INFO against the
// server (clients/node/clients.mjs; .ci/run installs them with npm ci).
func TestNodeClients(t *testing.T) {
	dir, _ := filepath.Abs("../clients/node")
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(dir, "node_modules")); err != nil || statErr != nil {
		if requireBPF() {
			t.Fatalf("node and clients/node/node_modules are needed (npm ci in clients/node): %v %v", err, statErr)
		}
		t.Skip("skipping: no node, or no clients/node/node_modules (npm ci in clients/node)")
	}
	ts := startServer(t, Config{}, false)
	cmd := exec.Command(node, "clients.mjs", ts.addr)
	cmd.Dir = dir
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node clients.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
