package server

// Values longer than a slot (issue 17): up to the engine's MaxValueLen (1
// MiB by default), stored by the engine in whole pages. Through the
// server they take every path: the loop's fast path (a GET, and a SET
// whose command fits the loop's buffer), the goroutine a command longer
// than that buffer is handed over to (resp.Reader), transactions, TTLs,
// and a value over the limit, refused naming it with the connection kept.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/redis/go-redis/v9"
)

// bigValue is n pseudo-random bytes (seeded by n and tag), so that a value
// read back in the wrong order or from the wrong pages shows.
func bigValue(n int, tag uint64) string {
	r := rand.New(rand.NewPCG(uint64(n), tag))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// sameValue reports a difference between a value read back and the one
// written without printing a megabyte.
func sameValue(got any, want string) error {
	s, ok := got.(string)
	if !ok {
		return fmt.Errorf("got %T, want a string of %d bytes", got, len(want))
	}
	if s == want {
		return nil
	}
	i := 0
	for i < len(s) && i < len(want) && s[i] == want[i] {
		i++
	}
	return fmt.Errorf("got %d bytes, want %d: they differ from byte %d", len(s), len(want), i)
}

func TestBigValues(t *testing.T) {
	ts := startServer(t, Config{}, false)
	c := ts.client(t, func(o *redis.Options) { o.ReadTimeout, o.WriteTimeout = 20*time.Second, 20*time.Second })
	ctx := testCtx(t, 120*time.Second)
	limit := ts.maxValue()

	t.Run("limits reported", func(t *testing.T) {
		if ts.redis {
			t.Skip("bpfdb's limits")
		}
		if limit != engine.DefaultMaxValueLen {
			t.Fatalf("the engine's MaxValueLen is %d, want the default %d", limit, engine.DefaultMaxValueLen)
		}
		v, err := c.ConfigGet(ctx, "proto-max-bulk-len").Result()
		if err != nil || v["proto-max-bulk-len"] != strconv.Itoa(limit) {
			t.Errorf("CONFIG GET proto-max-bulk-len: %v, %v; want %d", v, err, limit)
		}
		info, err := c.Info(ctx, "server").Result()
		if got, _ := infoField(info, "max_value_bytes"); err != nil || got != strconv.Itoa(limit) {
			t.Errorf("INFO max_value_bytes: %q, %v; want %d", got, err, limit)
		}
	})

	t.Run("SET GET", func(t *testing.T) {
		for _, n := range []int{100, engine.SlotValueLen, engine.SlotValueLen + 1, 4 << 10, 64 << 10, 1 << 20} {
			k, v := fmt.Sprint("bv:", n), bigValue(n, 1)
			if err := c.Set(ctx, k, v, 0).Err(); err != nil {
				t.Fatalf("SET of %d bytes: %v", n, err)
			}
			got, err := c.Get(ctx, k).Result()
			if err != nil {
				t.Fatalf("GET of %d bytes: %v", n, err)
			}
			if err := sameValue(got, v); err != nil {
				t.Fatalf("GET of %d bytes: %v", n, err)
			}
			if l, err := c.StrLen(ctx, k).Result(); err != nil || l != int64(n) {
				t.Fatalf("STRLEN of %d bytes: %d, %v", n, l, err)
			}
			// Overwritten by a value of another size, then deleted.
			w := bigValue(n/2+3, 2)
			if err := c.Set(ctx, k, w, 0).Err(); err != nil {
				t.Fatalf("SET over %d bytes: %v", n, err)
			}
			if got, err := c.Get(ctx, k).Result(); err != nil || sameValue(got, w) != nil {
				t.Fatalf("GET after overwriting %d bytes with %d: %v %v", n, len(w), err, sameValue(got, w))
			}
			if d, err := c.Del(ctx, k).Result(); err != nil || d != 1 {
				t.Fatalf("DEL of %d bytes: %d, %v", n, d, err)
			}
		}
		// The longest value there is.
		v := bigValue(limit, 3)
		if err := c.Set(ctx, "bv:max", v, 0).Err(); err != nil {
			t.Fatalf("SET of %d bytes (the limit): %v", limit, err)
		}
		if got, err := c.Get(ctx, "bv:max").Result(); err != nil || sameValue(got, v) != nil {
			t.Fatalf("GET of %d bytes (the limit): %v %v", limit, err, sameValue(got, v))
		}
		c.Del(ctx, "bv:max")
	})

	t.Run("APPEND across the slot and into pages", func(t *testing.T) {
		want := bigValue(1000, 4)
		if err := c.Set(ctx, "bv:app", want, 0).Err(); err != nil {
			t.Fatal(err)
		}
		for i, n := range []int{24, 1, 7, 3000, 4096, 1, 10_000, 50_000, 100_000} {
			part := bigValue(n, uint64(10+i))
			want += part
			l, err := c.Append(ctx, "bv:app", part).Result()
			if err != nil || l != int64(len(want)) {
				t.Fatalf("APPEND of %d bytes: %d, %v; want %d", n, l, err, len(want))
			}
			got, err := c.Get(ctx, "bv:app").Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := sameValue(got, want); err != nil {
				t.Fatalf("GET after APPEND to %d bytes: %v", len(want), err)
			}
		}
		if got, err := c.GetRange(ctx, "bv:app", 1020, 1030).Result(); err != nil || got != want[1020:1031] {
			t.Fatalf("GETRANGE across the slot boundary: %q, %v", got, err)
		}
		c.Del(ctx, "bv:app")
	})

	t.Run("GETSET and SET GET", func(t *testing.T) {
		v1, v2, v3 := bigValue(200<<10, 5), bigValue(300<<10, 6), bigValue(5000, 7)
		if err := c.Set(ctx, "bv:gs", v1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := c.GetSet(ctx, "bv:gs", v2).Result()
		if err != nil || sameValue(got, v1) != nil {
			t.Fatalf("GETSET: %v %v", err, sameValue(got, v1))
		}
		got, err = c.SetArgs(ctx, "bv:gs", v3, redis.SetArgs{Get: true}).Result()
		if err != nil || sameValue(got, v2) != nil {
			t.Fatalf("SET GET: %v %v", err, sameValue(got, v2))
		}
		got, err = c.GetDel(ctx, "bv:gs").Result()
		if err != nil || sameValue(got, v3) != nil {
			t.Fatalf("GETDEL: %v %v", err, sameValue(got, v3))
		}
	})

	t.Run("MSET MGET", func(t *testing.T) {
		var pairs []any
		var keys, vals []string
		for i, n := range []int{2000, 100 << 10, 64 << 10, 10, 250 << 10, 1 << 20} {
			k, v := fmt.Sprint("bv:m", i), bigValue(n, uint64(20+i))
			keys, vals = append(keys, k), append(vals, v)
			pairs = append(pairs, k, v)
		}
		if err := c.MSet(ctx, pairs...).Err(); err != nil {
			t.Fatalf("MSET: %v", err)
		}
		got, err := c.MGet(ctx, keys...).Result()
		if err != nil || len(got) != len(keys) {
			t.Fatalf("MGET: %d values, %v", len(got), err)
		}
		for i := range keys {
			if err := sameValue(got[i], vals[i]); err != nil {
				t.Fatalf("MGET %s: %v", keys[i], err)
			}
		}
		if d, err := c.Del(ctx, keys...).Result(); err != nil || d != int64(len(keys)) {
			t.Fatalf("DEL: %d, %v", d, err)
		}
	})

	t.Run("MULTI EXEC", func(t *testing.T) {
		a, b := bigValue(300<<10, 30), bigValue(1<<20, 31)
		if err := c.Set(ctx, "bv:tb", bigValue(5000, 32), 0).Err(); err != nil {
			t.Fatal(err)
		}
		var get1, get2 *redis.StringCmd
		var app *redis.IntCmd
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "bv:ta", a, 0)
			p.Set(ctx, "bv:tb", b, 0)
			get1 = p.Get(ctx, "bv:ta")
			app = p.Append(ctx, "bv:ta", "tail")
			get2 = p.Get(ctx, "bv:tb")
			return nil
		})
		if err != nil {
			t.Fatalf("EXEC: %v", err)
		}
		if err := sameValue(get1.Val(), a); err != nil {
			t.Errorf("GET in MULTI: %v", err)
		}
		if err := sameValue(get2.Val(), b); err != nil {
			t.Errorf("GET in MULTI: %v", err)
		}
		if app.Val() != int64(len(a)+4) {
			t.Errorf("APPEND in MULTI: %d", app.Val())
		}
		got, err := c.Get(ctx, "bv:ta").Result()
		if err != nil || sameValue(got, a+"tail") != nil {
			t.Errorf("GET after EXEC: %v %v", err, sameValue(got, a+"tail"))
		}
		c.Del(ctx, "bv:ta", "bv:tb")
	})

	t.Run("SET EX", func(t *testing.T) {
		v := bigValue(10<<10, 40)
		if err := c.Set(ctx, "bv:ttl", v, 100*time.Second).Err(); err != nil {
			t.Fatalf("SET EX of 10 KiB: %v", err)
		}
		if ttl, err := c.TTL(ctx, "bv:ttl").Result(); err != nil || ttl < 99*time.Second || ttl > 100*time.Second {
			t.Fatalf("TTL: %v, %v", ttl, err)
		}
		if got, err := c.Get(ctx, "bv:ttl").Result(); err != nil || sameValue(got, v) != nil {
			t.Fatalf("GET: %v %v", err, sameValue(got, v))
		}
		// One that expires: gone once its deadline passes.
		if err := c.Set(ctx, "bv:short", v, 50*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		if !waitFor(5*time.Second, func() bool { return c.Exists(ctx, "bv:short").Val() == 0 }) {
			t.Fatal("a 10 KiB value with a 50 ms TTL is still there after 5 s")
		}
		c.Del(ctx, "bv:ttl")
	})

	t.Run("RENAME COPY", func(t *testing.T) {
		v := bigValue(200<<10, 45)
		if err := c.Set(ctx, "bv:r1", v, 100*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename(ctx, "bv:r1", "bv:r2").Err(); err != nil {
			t.Fatalf("RENAME: %v", err)
		}
		if err := c.Copy(ctx, "bv:r2", "bv:r3", 0, false).Err(); err != nil {
			t.Fatalf("COPY: %v", err)
		}
		for _, k := range []string{"bv:r2", "bv:r3"} {
			if got, err := c.Get(ctx, k).Result(); err != nil || sameValue(got, v) != nil {
				t.Fatalf("GET %s: %v %v", k, err, sameValue(got, v))
			}
			if ttl, err := c.TTL(ctx, k).Result(); err != nil || ttl < 99*time.Second {
				t.Fatalf("TTL %s: %v, %v", k, ttl, err)
			}
		}
		if n, err := c.Exists(ctx, "bv:r1").Result(); err != nil || n != 0 {
			t.Fatalf("EXISTS of the renamed key: %d, %v", n, err)
		}
		c.Del(ctx, "bv:r2", "bv:r3")
	})

	t.Run("over the limit", func(t *testing.T) {
		over := strings.Repeat("o", limit+1)
		err := c.Set(ctx, "bv:over", over, 0).Err()
		if ts.redis {
			if err != nil {
				t.Fatalf("Redis SET of %d bytes: %v", len(over), err)
			}
			return
		}
		if err == nil || !strings.HasPrefix(err.Error(), "ERR") || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
			t.Fatalf("SET of %d bytes: %v, want an -ERR naming %d", len(over), err, limit)
		}
		// Pipelined, between other commands: each is answered, in order.
		cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "bv:p", "1", 0)
			p.Set(ctx, "bv:over", over, 0)
			p.Incr(ctx, "bv:p")
			p.SetEx(ctx, "bv:over", over, time.Minute)
			p.Ping(ctx)
			return nil
		})
		if len(cmds) != 5 {
			t.Fatalf("%d replies to 5 pipelined commands", len(cmds))
		}
		if err := cmds[0].Err(); err != nil {
			t.Errorf("SET before: %v", err)
		}
		for _, i := range []int{1, 3} {
			if err := cmds[i].Err(); err == nil || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
				t.Errorf("pipelined %v: %v, want an error naming %d", cmds[i].Name(), err, limit)
			}
		}
		if n, err := cmds[2].(*redis.IntCmd).Result(); err != nil || n != 2 {
			t.Errorf("INCR after the refused SET: %d, %v", n, err)
		}
		if err := cmds[4].Err(); err != nil {
			t.Errorf("PING after: %v", err)
		}
		if n, err := c.Exists(ctx, "bv:over").Result(); err != nil || n != 0 {
			t.Errorf("EXISTS of the refused key: %d, %v", n, err)
		}
		// APPEND past the limit.
		if err := c.Set(ctx, "bv:full", strings.Repeat("f", limit), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Append(ctx, "bv:full", "x").Err(); err == nil || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
			t.Errorf("APPEND past the limit: %v, want an error naming %d", err, limit)
		}
		if n, err := c.StrLen(ctx, "bv:full").Result(); err != nil || n != int64(limit) {
			t.Errorf("STRLEN after the refused APPEND: %d, %v", n, err)
		}
		c.Del(ctx, "bv:p", "bv:full")
	})
}

// Large values over a raw connection: a SET longer than the loop's buffer
// arriving in pieces, pipelines of large SETs and GETs in one write (the
// loop hands the connection to a goroutine and back), and a refused value
// with commands after it in the same write.
func TestBigValuesRaw(t *testing.T) {
	ts := startServer(t, Config{}, false)
	limit := ts.maxValue()
	c := ts.raw(t)

	// In pieces of 10 KB, with pauses: the loop reads the start, then
	// hands the rest to the Reader.
	v := bigValue(1<<20, 50)
	cmd := append(encode("SET", "raw:a", v), encode("GET", "raw:a")...)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		for i := 0; i < len(cmd); i += 10_000 {
			c.Write(cmd[i:min(i+10_000, len(cmd))])
			if i%100_000 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	if r, err := c.read(); err != nil || r != respStatus("OK") {
		t.Fatalf("SET of 1 MiB in pieces: %#.100v, %v", r, err)
	}
	if r, err := c.read(); err != nil || sameValue(r, v) != nil {
		t.Fatalf("GET of 1 MiB: %v %v", err, sameValue(r, v))
	}

	// A pipeline of large SETs and GETs in one write, its replies read
	// as they come.
	var pipe []byte
	var want []string
	for i := range 8 {
		k, v := fmt.Sprint("raw:p", i), bigValue([]int{1 << 20, 100, 300 << 10, 5000}[i%4], uint64(60+i))
		pipe = append(pipe, encode("SET", k, v)...)
		want = append(want, "OK")
		pipe = append(pipe, encode("GET", k)...)
		want = append(want, v)
	}
	for i := range 8 { // GETs of large values, pipelined: several loop rounds
		pipe = append(pipe, encode("GET", fmt.Sprint("raw:p", i))...)
		want = append(want, want[2*i+1])
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	done := make(chan error, 1)
	go func() { _, err := c.Write(pipe); done <- err }()
	for i, w := range want {
		r, err := c.read()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if w == "OK" {
			if r != respStatus("OK") {
				t.Fatalf("reply %d: %#.100v, want OK", i, r)
			}
		} else if err := sameValue(r, w); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("writing a pipeline of %d bytes: %v", len(pipe), err)
	}

	// A value over the limit, between commands in one write.
	if !ts.redis {
		over := strings.Repeat("x", limit+1)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		go c.Write(bytes.Join([][]byte{encode("SET", "raw:b", "1"), encode("SET", "raw:b", over), encode("GET", "raw:b"), encode("PING")}, nil))
		r, err := c.read()
		if err != nil || r != respStatus("OK") {
			t.Fatalf("SET before: %#v, %v", r, err)
		}
		r, err = c.read()
		if e, ok := r.(respError); err != nil || !ok || !strings.Contains(string(e), strconv.Itoa(limit)) || !strings.Contains(string(e), "max-value-len") {
			t.Fatalf("SET of %d bytes: %#.200v, %v; want an error naming the limit, %d (--max-value-len)", len(over), r, err, limit)
		}
		readReplies(t, c, []any{"1", respStatus("PONG")})
	}
}

// A server whose engine takes values of at most 4 KiB: a longer value the
// reader keeps (up to 64 KiB) is refused by the command, a longer one is
// dropped by the reader; both name the limit. One that takes 2 MiB takes
// a value of 2 MiB through the reader.
func TestMaxValueLenOption(t *testing.T) {
	if againstRedis() != "" {
		t.Skip("Options.MaxValueLen: bpfdb only")
	}
	small := startServerWith(t, Config{}, false, engine.Options{MaxValueLen: 4 << 10})
	c := small.client(t)
	ctx := testCtx(t, 60*time.Second)
	if v, err := c.ConfigGet(ctx, "proto-max-bulk-len").Result(); err != nil || v["proto-max-bulk-len"] != strconv.Itoa(minBulk) {
		t.Errorf("CONFIG GET proto-max-bulk-len: %v, %v; want %d (the least kept)", v, err, minBulk)
	}
	if err := c.Set(ctx, "o:a", strings.Repeat("a", 4<<10), time.Minute).Err(); err != nil {
		t.Fatalf("SET EX of 4 KiB: %v", err)
	}
	for _, n := range []int{4<<10 + 1, 60 << 10, 100 << 10} {
		for _, set := range []func() error{
			func() error { return c.Set(ctx, "o:b", strings.Repeat("b", n), 0).Err() },
			func() error { return c.Set(ctx, "o:b", strings.Repeat("b", n), time.Minute).Err() },
			func() error { return c.MSet(ctx, "o:c", "1", "o:b", strings.Repeat("b", n)).Err() },
		} {
			if err := set(); err == nil || !strings.HasPrefix(err.Error(), "ERR") || !strings.Contains(err.Error(), "4096") {
				t.Errorf("a write of %d bytes: %v, want an -ERR naming 4096", n, err)
			}
		}
	}
	if err := c.Append(ctx, "o:a", "x").Err(); err == nil || !strings.Contains(err.Error(), "4096") {
		t.Errorf("APPEND past 4 KiB: %v, want an error naming 4096", err)
	}
	if n, err := c.Exists(ctx, "o:b", "o:c").Result(); err != nil || n != 0 {
		t.Errorf("refused writes left %d keys (%v)", n, err)
	}

	big := startServerWith(t, Config{}, false, engine.Options{MaxValueLen: 2 << 20})
	b := big.client(t, func(o *redis.Options) { o.ReadTimeout, o.WriteTimeout = 20*time.Second, 20*time.Second })
	if v, err := b.ConfigGet(ctx, "proto-max-bulk-len").Result(); err != nil || v["proto-max-bulk-len"] != strconv.Itoa(2<<20) {
		t.Errorf("CONFIG GET proto-max-bulk-len: %v, %v; want %d", v, err, 2<<20)
	}
	v := bigValue(2<<20, 70)
	if err := b.Set(ctx, "o:big", v, 0).Err(); err != nil {
		t.Fatalf("SET of 2 MiB: %v", err)
	}
	if got, err := b.Get(ctx, "o:big").Result(); err != nil || sameValue(got, v) != nil {
		t.Fatalf("GET of 2 MiB: %v %v", err, sameValue(got, v))
	}
	if err := b.Append(ctx, "o:big", "x").Err(); err == nil || !strings.Contains(err.Error(), strconv.Itoa(2<<20)) {
		t.Errorf("APPEND past 2 MiB: %v, want an error naming %d", err, 2<<20)
	}
	if err := b.Set(ctx, "o:big2", v+"x", 0).Err(); err == nil || !strings.Contains(err.Error(), strconv.Itoa(2<<20)) {
		t.Errorf("SET of 2 MiB + 1: %v, want an error naming %d", err, 2<<20)
	}
	if err := b.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// Clients writing and reading the same keys with large values at once:
// the loop runs their GETs and SETs together in chain runs, and every
// GET answers one of the values written, whole.
func TestBigValuesConcurrent(t *testing.T) {
	ts := startServer(t, Config{}, false)
	ctx := testCtx(t, 60*time.Second)
	var values []string
	known := map[string]bool{}
	for i, n := range []int{100, 1000, 1017, 2000, 5000, 64 << 10, 200 << 10, 1 << 20} {
		v := bigValue(n, uint64(100+i))
		values = append(values, v)
		known[v] = true
	}
	keys := []string{"cc:a", "cc:b"}
	stop := time.Now().Add(2 * time.Second)
	errs := make(chan error, 8)
	var reads, writes [8]int
	for w := range 8 {
		c := ts.client(t, func(o *redis.Options) { o.PoolSize, o.ReadTimeout = 1, 20*time.Second })
		go func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(stop) {
				k := keys[r.IntN(len(keys))]
				if w%2 == 0 { // a writer: SET, sometimes with a TTL, or DEL
					var err error
					switch r.IntN(8) {
					case 0:
						err = c.Del(ctx, k).Err()
					case 1:
						err = c.Set(ctx, k, values[r.IntN(len(values))], time.Minute).Err()
					default:
						err = c.Set(ctx, k, values[r.IntN(len(values))], 0).Err()
					}
					if err != nil {
						errs <- fmt.Errorf("writer %d: %v", w, err)
						return
					}
					writes[w]++
					continue
				}
				cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
					for range 4 {
						p.Get(ctx, keys[r.IntN(len(keys))])
					}
					return nil
				})
				if err != nil && err != redis.Nil {
					errs <- fmt.Errorf("reader %d: %v", w, err)
					return
				}
				for _, cmd := range cmds {
					v, err := cmd.(*redis.StringCmd).Result()
					if err == redis.Nil {
						continue
					}
					if err != nil || !known[v] {
						errs <- fmt.Errorf("reader %d: GET answered %d bytes not written (%v)", w, len(v), err)
						return
					}
					reads[w]++
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("reads %v, writes %v", reads, writes)
}
