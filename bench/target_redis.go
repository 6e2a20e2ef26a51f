package bench

import (
	"context"
	"strconv"
	"time"
)

// redisTarget is redis-server started by the harness on a free loopback
// port in a temporary directory. Sync durability is `--appendonly yes
// --appendfsync always`; async is `--save ” --appendonly no` (no
// persistence at all).
type redisTarget struct {
	env TargetEnv
	respServer
}

func newRedis(env TargetEnv) *redisTarget {
	return &redisTarget{env: env, respServer: respServer{what: "redis-server", stopWait: 30 * time.Second}}
}

func (t *redisTarget) Name() string { return "redis" }

func (t *redisTarget) Check() error {
	if err := executable(t.env.RedisServer); err != nil {
		return skipf("redis-server: %v", err)
	}
	return nil
}

func (t *redisTarget) Start(ctx context.Context, d Durability) error {
	dir, port, err := t.prepare("redis")
	if err != nil {
		return err
	}
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--daemonize", "no", "--protected-mode", "yes", "--save", "", "--logfile", ""}
	if d == Sync {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	t.proc, err = startProcess("redis-server", t.env.RedisServer, args, dir, nil)
	if err != nil {
		return err
	}
	return t.waitReady(ctx)
}
