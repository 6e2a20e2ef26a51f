package server

import (
	"strconv"
	"testing"
)

// benchTransferScript is the bench harness's transfer stored procedure
// (bench/resp.go): read two balances, move an amount, write both.
const benchTransferScript = `local a = tonumber(redis.call('GET', KEYS[1]))
local b = tonumber(redis.call('GET', KEYS[2]))
if a == nil or b == nil then return redis.error_reply('ERR transfer: account not found') end
local n = tonumber(ARGV[1])
redis.call('SET', KEYS[1], a - n)
redis.call('SET', KEYS[2], b + n)
return 1`

// BenchmarkScriptTransferInline is the event loop's run of one EVALSHA
// transfer as a transaction (runTxnInline: two chain runs and the
// script), without the network. Its allocs/op is the Go side's garbage
// per transfer; compare its ns/op with engine's BaselineEmptyRun, of
// which it makes two.
func BenchmarkScriptTransferInline(b *testing.B) {
	ts := startServer(b, Config{}, false)
	if ts.redis {
		b.Skip("runs the server's transaction in process")
	}
	c := ts.raw(b)
	sha, ok := c.do(b, "SCRIPT", "LOAD", benchTransferScript).(string)
	if !ok {
		b.Fatal("SCRIPT LOAD failed")
	}
	const accounts = 100
	for i := range accounts {
		if r := c.do(b, "SET", "acct:"+strconv.Itoa(i), "1000000"); r != respStatus("OK") {
			b.Fatalf("SET = %#v", r)
		}
	}
	cmds := make([][]queuedCmd, accounts)
	for i := range cmds {
		args := [][]byte{[]byte("EVALSHA"), []byte(sha), []byte("2"),
			[]byte("acct:" + strconv.Itoa(i)), []byte("acct:" + strconv.Itoa((i+1)%accounts)), []byte("1")}
		cmds[i] = []queuedCmd{{cmd: lookup(args[0]), args: args}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		replies, _, done, err := ts.srv.runTxnInline(cmds[i%accounts])
		if !done || err != nil || replies[0].kind != kindInt || replies[0].n != 1 {
			b.Fatalf("transfer %d: done %v, %v, %#v", i, done, err, replies)
		}
	}
}
