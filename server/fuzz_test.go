package server

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzConnection sends arbitrary bytes on one connection to a real server:
// whatever they are (commands, malformed RESP, transactions left open), the
// server must not panic, must close or answer within a bounded time, and
// must go on answering other connections. Its seed corpus runs in every
// `go test`; `go test -fuzz FuzzConnection ./server` explores further.
func FuzzConnection(f *testing.F) {
	for _, seed := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n",
		"MULTI\r\nINCR c\r\nSET d 1 NX GET\r\nEXEC\r\n",
		"WATCH a b\r\nMULTI\r\nMSETNX a 1 b 2\r\nDISCARD\r\nUNWATCH\r\n",
		"*2\r\n$3\r\nGET\r\n$-5\r\n",
		"*1\r\n$99999999999\r\n",
		"MULTI\r\nMULTI\r\nFOO\r\nEXEC\r\n",
		"APPEND k " + string(bytes.Repeat([]byte("x"), 1100)) + "\r\nQUIT\r\nPING\r\n",
		"CLIENT SETNAME x\r\nCLIENT GETNAME\r\nCONFIG GET *\r\nCOMMAND DOCS get\r\nINFO\r\nDBSIZE\r\n",
		"\x00\xff\r\n*\r\n$\r\n",
	} {
		f.Add([]byte(seed))
	}
	ts := startServer(f, Config{MaxClients: 64}, false)
	f.Fuzz(func(t *testing.T, input []byte) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(input)
		// Half-close: the server answers what it read, then sees EOF.
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the server neither answered nor closed within 5s: %v", err)
		}
		probe := ts.raw(t)
		if got := probe.do(t, "PING"); got != respStatus("PONG") {
			t.Fatalf("PING after the input = %#v", got)
		}
		probe.Close()
	})
}
