// Package server serves a bpfdb engine over the Redis protocol (RESP), so
// redis-cli and Redis client libraries work unchanged. Framing is done by
// github.com/tidwall/redcon.
//
// Every command is one autocommit transaction; MGET reads one snapshot and
// MSET writes all of its keys in one transaction.
package server

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/tidwall/redcon"
)

// Server answers RESP commands from an engine.
type Server struct {
	e   *engine.Engine
	srv *redcon.Server
}

// New returns a server for e listening on addr (host:port).
func New(e *engine.Engine, addr string) *Server {
	s := &Server{e: e}
	s.srv = redcon.NewServerNetwork("tcp", addr, s.handle, nil, nil)
	return s
}

// ListenAndServe serves until Close; signal, if not nil, receives nil once
// the listener is bound (or the error binding it).
func (s *Server) ListenAndServe(signal chan error) error {
	return s.srv.ListenServeAndSignal(signal)
}

// Addr is the address the server is bound to.
func (s *Server) Addr() net.Addr { return s.srv.Addr() }

// Close stops accepting and closes every connection.
func (s *Server) Close() error { return s.srv.Close() }

func errorReply(conn redcon.Conn, err error) {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "bpfdb: ")
	switch {
	case errors.Is(err, engine.ErrConflict):
		conn.WriteError("CONFLICT " + msg)
	default:
		conn.WriteError("ERR " + msg)
	}
}

func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	name := strings.ToUpper(string(cmd.Args[0]))
	args := cmd.Args[1:]
	arity := func(min int, exact bool) bool {
		if len(args) < min || (exact && len(args) != min) {
			conn.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(name)))
			return false
		}
		return true
	}
	switch name {
	case "PING":
		if len(args) > 0 {
			conn.WriteBulk(args[0])
		} else {
			conn.WriteString("PONG")
		}
	case "ECHO":
		if arity(1, true) {
			conn.WriteBulk(args[0])
		}
	case "QUIT":
		conn.WriteString("OK")
		conn.Close()
	case "COMMAND":
		conn.WriteArray(0)
	case "GET":
		if !arity(1, true) {
			return
		}
		v, err := s.e.Get(args[0])
		switch {
		case errors.Is(err, engine.ErrNotFound):
			conn.WriteNull()
		case err != nil:
			errorReply(conn, err)
		default:
			conn.WriteBulk(v)
		}
	case "SET":
		if !arity(2, false) {
			return
		}
		if len(args) > 2 {
			conn.WriteError("ERR SET options are not supported yet")
			return
		}
		if err := s.e.Set(args[0], args[1]); err != nil {
			errorReply(conn, err)
			return
		}
		conn.WriteString("OK")
	case "DEL":
		if !arity(1, false) {
			return
		}
		ops := make([]engine.Op, len(args))
		for i, k := range args {
			ops[i] = engine.Op{Kind: engine.OpDelete, Key: k}
		}
		if err := s.e.Batch(ops); err != nil {
			errorReply(conn, err)
			return
		}
		n := 0
		for _, op := range ops {
			if op.Err == nil {
				n++
			} else if !errors.Is(op.Err, engine.ErrNotFound) {
				errorReply(conn, op.Err)
				return
			}
		}
		conn.WriteInt(n)
	case "MGET":
		if !arity(1, false) {
			return
		}
		ops := make([]engine.Op, len(args))
		for i, k := range args {
			ops[i] = engine.Op{Kind: engine.OpGet, Key: k}
		}
		if err := s.e.Exec(ops); err != nil {
			errorReply(conn, err)
			return
		}
		conn.WriteArray(len(ops))
		for _, op := range ops {
			if op.Err != nil {
				conn.WriteNull()
			} else {
				conn.WriteBulk(op.Value)
			}
		}
	case "MSET":
		if len(args) == 0 || len(args)%2 != 0 {
			conn.WriteError("ERR wrong number of arguments for 'mset' command")
			return
		}
		ops := make([]engine.Op, 0, len(args)/2)
		for i := 0; i < len(args); i += 2 {
			ops = append(ops, engine.Op{Kind: engine.OpSet, Key: args[i], Value: args[i+1]})
		}
		if err := s.e.Exec(ops); err != nil {
			errorReply(conn, err)
			return
		}
		conn.WriteString("OK")
	default:
		conn.WriteError(fmt.Sprintf("ERR unknown command '%s'", strings.ToLower(name)))
	}
}
