package server

import (
	"strconv"
	"testing"

	"github.com/bpfdb/bpfdb/bench"
)

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
	sha, ok := c.do(b, "SCRIPT", "LOAD", bench.TransferScript).(string)
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
