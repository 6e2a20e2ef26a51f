package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Commands of 1,000 keys are one transaction each (issue 17): MSET of
// 1,000 pairs, a MULTI of 1,000 SETs, MGET and DEL of 1,000 keys.
func TestThousandKeyTransactions(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.client(t)
	ctx := testCtx(t, 60*time.Second)
	const n = 1000
	keys := make([]string, n)
	var pairs []any
	for i := range keys {
		keys[i] = fmt.Sprintf("big:%04d", i)
		pairs = append(pairs, keys[i], "v"+keys[i])
	}
	start := time.Now()
	if err := c.MSet(ctx, pairs...).Err(); err != nil {
		t.Fatalf("MSET of %d pairs: %v", n, err)
	}
	t.Logf("MSET of %d pairs: %v", n, time.Since(start))
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil || len(vals) != n {
		t.Fatalf("MGET of %d keys: %d values, %v", n, len(vals), err)
	}
	for i, v := range vals {
		if v != "v"+keys[i] {
			t.Fatalf("MGET: %s is %#v", keys[i], v)
		}
	}
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, k, "m"+k, 0)
		}
		return nil
	})
	if err != nil || len(cmds) != n {
		t.Fatalf("MULTI of %d SETs: %v", n, err)
	}
	if v, _ := c.Get(ctx, keys[n-1]).Result(); v != "m"+keys[n-1] {
		t.Fatalf("after the MULTI, %s is %q", keys[n-1], v)
	}
	if d, err := c.Del(ctx, keys...).Result(); err != nil || d != n {
		t.Fatalf("DEL of %d keys: %d, %v", n, d, err)
	}
	if e, _ := c.Exists(ctx, keys[:10]...).Result(); e != 0 {
		t.Fatalf("%d keys left after DEL", e)
	}
}
