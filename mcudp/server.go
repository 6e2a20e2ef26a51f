package mcudp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpfdb/bpfdb/engine"
)

// Server answers memcached UDP requests from an engine.
type Server struct {
	e       *engine.Engine
	conn    *net.UDPConn
	version string
	work    chan datagram
	wg      sync.WaitGroup
	stats   Stats
}

// Stats count what the server answered (the XDP program keeps its own).
type Stats struct {
	Requests, Gets, Hits, Misses, Writes, Errors, Datagrams atomic.Uint64
}

type datagram struct {
	from *net.UDPAddr
	b    []byte
}

// workers serve requests at once: a write may wait for its fsync.
const workers = 8

// Listen serves e's store over memcached UDP on addr (host:port).
func Listen(e *engine.Engine, addr, version string) (*Server, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("mcudp: listening on %s: %w", addr, err)
	}
	s := &Server{e: e, conn: conn, version: version, work: make(chan datagram, 256)}
	for i := 0; i < workers; i++ {
		s.wg.Add(1)
		go s.worker()
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Serve reads requests until Close; it returns nil then.
func (s *Server) Serve() error {
	defer func() {
		close(s.work)
		s.wg.Wait()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			continue // an ICMP error of an earlier reply, say
		}
		s.work <- datagram{from: from, b: append([]byte(nil), buf[:n]...)}
	}
}

// Close stops Serve.
func (s *Server) Close() error { return s.conn.Close() }

func (s *Server) worker() {
	defer s.wg.Done()
	out := make([]byte, 0, MaxDatagram)
	for d := range s.work {
		s.stats.Requests.Add(1)
		h, payload, err := ParseHeader(d.b)
		if errors.Is(err, ErrShort) {
			s.stats.Errors.Add(1)
			continue // no header to answer to: dropped, counted
		}
		reply := s.handle(payload, err)
		if reply == nil {
			continue // noreply
		}
		Datagrams(h.RequestID, reply, out, func(b []byte) error {
			s.stats.Datagrams.Add(1)
			_, err := s.conn.WriteToUDP(b, d.from)
			return err
		})
	}
}

// Answer returns the reply text to the request datagram d (frame header
// included), as the server sends it (split into datagrams), or nil for a
// request that gets none; it applies what d asks.
func (s *Server) Answer(d []byte) []byte {
	_, payload, err := ParseHeader(d)
	if errors.Is(err, ErrShort) {
		return nil // no header to answer to
	}
	return s.handle(payload, err)
}

// handle answers one request's payload (or the header's error).
func (s *Server) handle(payload []byte, headerErr error) []byte {
	if headerErr != nil {
		s.stats.Errors.Add(1)
		return []byte("SERVER_ERROR multi-packet request not supported\r\n")
	}
	r, err := ParseRequest(payload)
	if err != nil {
		s.stats.Errors.Add(1)
		return []byte("CLIENT_ERROR " + trim(err) + "\r\n")
	}
	switch r.Cmd {
	case "get", "gets":
		return s.get(r)
	case "set", "add", "replace":
		return s.noReply(r, s.store(r))
	case "delete":
		return s.noReply(r, s.delete(r))
	case "incr", "decr":
		return s.noReply(r, s.incr(r))
	case "version":
		return []byte("VERSION bpfdb-" + s.version + "\r\n")
	case "append", "prepend", "cas", "touch", "gat", "gats":
		s.stats.Errors.Add(1)
		return []byte("SERVER_ERROR " + r.Cmd + " is not supported by bpfdb\r\n")
	}
	s.stats.Errors.Add(1)
	return []byte("ERROR\r\n")
}

func (s *Server) noReply(r Request, reply []byte) []byte {
	if r.NoReply {
		return nil
	}
	return reply
}

// get reads every key in one snapshot (a read-only transaction: never
// half of a commit), as the XDP program does.
func (s *Server) get(r Request) []byte {
	s.stats.Gets.Add(1)
	ops := make([]engine.Op, 0, len(r.Keys))
	for _, k := range r.Keys {
		if s.e.CheckKey(k) == nil { // a longer key cannot be in the store
			ops = append(ops, engine.Op{Kind: engine.OpGet, Key: k})
		}
	}
	if len(ops) > 0 {
		if err := retry(func() error { return s.e.Exec(ops) }); err != nil {
			s.stats.Errors.Add(1)
			return []byte("SERVER_ERROR " + trim(err) + "\r\n")
		}
	}
	var reply []byte
	for _, op := range ops {
		if op.Err != nil || op.Type != engine.TypeString { // memcached has strings only
			s.stats.Misses.Add(1)
			continue
		}
		s.stats.Hits.Add(1)
		reply = AppendValue(reply, op.Key, 0, op.Value, op.Version, r.Cmd == "gets")
	}
	return append(reply, "END\r\n"...)
}

// store runs set, add or replace. bpfdb keeps no flags and no expiry:
// anything but 0 is refused rather than dropped.
func (s *Server) store(r Request) []byte {
	s.stats.Writes.Add(1)
	switch {
	case r.Flags != 0:
		return []byte("SERVER_ERROR bpfdb stores no flags: only 0 is accepted\r\n")
	case r.Exptime != 0:
		return []byte("SERVER_ERROR bpfdb keys do not expire: only an exptime of 0 is accepted\r\n")
	case s.e.CheckKey(r.Keys[0]) != nil:
		return []byte(fmt.Sprintf("CLIENT_ERROR key longer than bpfdb's %d bytes\r\n", s.e.MaxKeyLen()))
	case s.e.CheckValue(r.Data) != nil:
		return []byte(fmt.Sprintf("SERVER_ERROR object too large for cache: bpfdb's limit is %d bytes\r\n", s.e.MaxValueLen()))
	}
	if r.Cmd == "set" {
		if err := retry(func() error { return s.e.Set(r.Keys[0], r.Data) }); err != nil {
			return s.writeError(err)
		}
		return []byte("STORED\r\n")
	}
	stored := false
	err := s.txn(r.Keys[0], func(old []byte, exists bool) ([]byte, bool, error) {
		stored = exists == (r.Cmd == "replace")
		return r.Data, stored, nil
	})
	switch {
	case err != nil:
		return s.writeError(err)
	case !stored:
		return []byte("NOT_STORED\r\n")
	}
	return []byte("STORED\r\n")
}

func (s *Server) delete(r Request) []byte {
	s.stats.Writes.Add(1)
	if s.e.CheckKey(r.Keys[0]) != nil {
		return []byte("NOT_FOUND\r\n")
	}
	err := retry(func() error { return s.e.Delete(r.Keys[0]) })
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return []byte("NOT_FOUND\r\n")
	case err != nil:
		return s.writeError(err)
	}
	return []byte("DELETED\r\n")
}

// incr and decr as memcached does them: on a decimal 64-bit unsigned
// value, incr wrapping around, decr stopping at 0.
func (s *Server) incr(r Request) []byte {
	s.stats.Writes.Add(1)
	if s.e.CheckKey(r.Keys[0]) != nil {
		return []byte("NOT_FOUND\r\n")
	}
	var result uint64
	found, bad := false, false
	err := s.txn(r.Keys[0], func(old []byte, exists bool) ([]byte, bool, error) {
		found, bad = exists, false
		if !exists {
			return nil, false, nil
		}
		n, err := strconv.ParseUint(string(old), 10, 64)
		if err != nil {
			bad = true
			return nil, false, nil
		}
		if r.Cmd == "incr" {
			n += r.Delta
		} else {
			n -= min(n, r.Delta)
		}
		result = n
		return strconv.AppendUint(nil, n, 10), true, nil
	})
	switch {
	case err != nil:
		return s.writeError(err)
	case !found:
		return []byte("NOT_FOUND\r\n")
	case bad:
		return []byte("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
	}
	return append(strconv.AppendUint(nil, result, 10), "\r\n"...)
}

// txn reads key under its exclusive lock, lets fn decide the new value,
// and commits it, as one serializable transaction retried on conflicts.
func (s *Server) txn(key []byte, fn func(old []byte, exists bool) (value []byte, write bool, err error)) error {
	return retry(func() error {
		t, err := s.e.Begin()
		if err != nil {
			return err
		}
		defer t.Abort()
		reads := []engine.Op{{Kind: engine.OpGet, Key: key, ForUpdate: true}}
		if err := t.Run(reads); err != nil {
			return err
		}
		if reads[0].Err != nil && !errors.Is(reads[0].Err, engine.ErrNotFound) {
			return reads[0].Err
		}
		value, write, err := fn(reads[0].Value, reads[0].Err == nil)
		if err != nil || !write {
			return err
		}
		return t.CommitWith([]engine.Op{{Kind: engine.OpSet, Key: key, Value: value}})
	})
}

func (s *Server) writeError(err error) []byte {
	s.stats.Errors.Add(1)
	return []byte("SERVER_ERROR " + trim(err) + "\r\n")
}

// retry runs fn again while it fails with a retryable error (nothing
// applied), with a short backoff, for about a second at most.
func retry(fn func() error) error {
	var err error
	for attempt := 0; attempt < 32; attempt++ {
		if err = fn(); !engine.Retryable(err) {
			return err
		}
		time.Sleep(time.Duration(20<<min(attempt, 10)) * time.Microsecond)
	}
	return err
}

// trim is an error's text on one line, without the package prefix.
func trim(err error) string {
	msg := err.Error()
	for _, p := range []string{"bpfdb: ", "mcudp: "} {
		if len(msg) > len(p) && msg[:len(p)] == p {
			msg = msg[len(p):]
		}
	}
	b := []byte(msg)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}
