// Package server serves a bpfdb engine over the Redis protocol (RESP2), so
// redis-cli, redis-benchmark, memtier_benchmark and Redis client libraries
// work unchanged, with serializable transactions underneath.
//
// How a command runs:
//
//   - One event loop (loop.go) owns every socket. GET, plain SET, one-key
//     DEL, EXISTS and STRLEN are single engine ops, each its own autocommit
//     transaction: the loop gathers those of every connection that sent
//     something and runs them together, up to engine.MaxBatch per chain run.
//   - Every other command is served by a goroutine the loop hands the
//     connection over to until its input is consumed; its single-op commands
//     meet other goroutines' in a batcher (batcher.go).
//   - Every other data command, and MULTI/EXEC, runs as a transaction of
//     two chain runs (txn.go): one reads every key the commands touch
//     (exclusively locked if written), the commands are evaluated in Go,
//     and one run writes the results and commits. A no-wait conflict is
//     retried by the server with backoff, since every command is known.
//   - With sync durability a reply waits until the log record of every
//     write it acknowledges is on disk, outside the chain runs (the loop
//     parks the connection, a goroutine calls engine.WaitDurable), so one
//     fsync acknowledges many clients.
//
// The protocol is parsed by internal/resp, which bounds every declared
// length before allocating.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/resp"
	"github.com/bpfdb/bpfdb/mcudp"
	"github.com/bpfdb/bpfdb/mcxdp"
	"golang.org/x/sys/unix"
)

// Config configures a Server. Zero fields take defaults.
type Config struct {
	// Addr is the TCP address to listen on ("" for none).
	Addr string
	// Unix is the path of a unix socket to listen on ("" for none).
	Unix string
	// RequirePass, if set, refuses every command but AUTH, HELLO and QUIT
	// until the client authenticates with it.
	RequirePass string
	// MaxClients is the most connections served at once (default 10000);
	// more are answered with an error and closed.
	MaxClients int
	// Version is reported by INFO and HELLO.
	Version string
	// Memcache, if set, are the counters of the memcached UDP front end
	// (mcudp) serving the same engine, reported by INFO and /metrics.
	Memcache *mcudp.Stats
	// MemcacheXDP, if set, is the XDP program answering memcached gets in
	// the kernel (mcxdp) from the same engine: INFO and /metrics report
	// what it answered and what it passed up.
	MemcacheXDP *mcxdp.Frontend
	// ScriptInstructionLimit is the most Lua instructions one run of a
	// script or function may take (default 100 million, about 2 s of
	// Lua here); a run past it fails with nothing applied.
	ScriptInstructionLimit int64
}

// Limits of the protocol: an argument may be longer than a value (so an
// oversized SET gets an error naming the engine's MaxValueLen, not a
// closed connection), but not without bound.
const (
	// maxArgs is the most arguments one command may have.
	maxArgs = 4096
	// minBulk is the longest argument kept, in bytes, whatever the
	// engine's MaxValueLen: one kept and longer than a value is refused by
	// the command, naming the limit (Server.limits keeps the engine's
	// longest value when it is longer).
	minBulk = 64 << 10
	// maxSkip is the longest argument read at all (Redis's default
	// proto-max-bulk-len): a longer one than the kept limit is read,
	// dropped and answered with an error naming the limits, the
	// connection kept.
	maxSkip = 512 << 20
	// readBuffer is a connection's read buffer, and the longest inline command.
	readBuffer = 16 << 10
	// maxPipeline is the most pipelined commands executed before replying.
	maxPipeline = 1024
	// maxGathered bounds the argument bytes gathered before replying.
	maxGathered = 1 << 20
	// maxReplyBuffer is how many reply bytes are held before sending them.
	maxReplyBuffer = 64 << 10
)

// Server answers RESP commands from an engine.
type Server struct {
	e         *engine.Engine
	cfg       Config
	listeners []net.Listener
	tcpAddr   net.Addr
	batch     *batcher
	loop      *loop
	dbs       dbNames // the store's databases by the names clients use (swapdb.go)
	scripts   scripts // the script cache and the scripts running (script.go)
	keyLocks  *keyLocks
	metrics   *metrics
	started   time.Time
	// limits bound what a connection's command may declare once
	// authenticated: an argument up to the engine's MaxValueLen (at least
	// minBulk) is kept, a longer one up to maxSkip read and dropped.
	limits resp.Limits

	mu       sync.Mutex
	conns    map[*conn]struct{}
	closing  bool
	acceptWG sync.WaitGroup

	nextID        atomic.Int64
	totalConns    atomic.Uint64
	rejectedConns atomic.Uint64
	commands      atomic.Uint64
	maxClients    atomic.Int64 // Config.MaxClients, changed by CONFIG SET maxclients
	// keyHits and keyMisses count GETs that found a value or none
	// (INFO's keyspace_hits and keyspace_misses).
	keyHits, keyMisses atomic.Uint64
	// cmdStats is INFO commandstats, by command.id; errors errorstats;
	// slowlog and latency what SLOWLOG and LATENCY show, under the
	// thresholds CONFIG SET changes (stats.go).
	cmdStats         []cmdStat
	errors           errorStats
	slowlog          slowLog
	latency          latencyMonitor
	slowlogSlower    atomic.Int64 // µs; negative: off
	slowlogMaxLen    atomic.Int64
	latencyThreshold atomic.Int64 // ms; 0: off
	// tracking is CLIENT TRACKING's table; stopTracking ends its
	// subscription to the engine's commits (nil: the store has no log).
	tracking     tracking
	stopTracking func()

	shutdownOnce sync.Once
	shutdownReq  chan struct{}
	saving       atomic.Bool // a BGSAVE is running
}

// New returns a server of e bound to cfg's addresses.
func New(e *engine.Engine, cfg Config) (*Server, error) {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 10000
	}
	if cfg.Addr == "" && cfg.Unix == "" {
		return nil, errors.New("bpfdb: server: no address to listen on")
	}
	if cfg.ScriptInstructionLimit < 0 {
		return nil, fmt.Errorf("bpfdb: server: ScriptInstructionLimit %d is negative (0: the default, %d)", cfg.ScriptInstructionLimit, scriptInstructionLimit)
	}
	s := &Server{
		e:           e,
		cfg:         cfg,
		conns:       map[*conn]struct{}{},
		started:     time.Now(),
		shutdownReq: make(chan struct{}),
		limits:      connLimits(e.MaxValueLen()),
	}
	s.maxClients.Store(int64(cfg.MaxClients))
	s.cmdStats = make([]cmdStat, len(commands))
	s.slowlogSlower.Store(defaultSlowlogSlower)
	s.slowlogMaxLen.Store(defaultSlowlogMaxLen)
	if err := s.dbs.load(e); err != nil {
		return nil, err
	}
	s.scripts.instructions = cmp.Or(s.cfg.ScriptInstructionLimit, scriptInstructionLimit)
	if err := s.loadLibraries(); err != nil {
		return nil, err
	}
	s.batch = newBatcher(s.submit)
	s.keyLocks = newKeyLocks()
	s.metrics = newMetrics(s)
	if cfg.Addr != "" {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("bpfdb: listening on %s: %w", cfg.Addr, err)
		}
		s.listeners = append(s.listeners, ln)
		s.tcpAddr = ln.Addr()
	}
	if cfg.Unix != "" {
		os.Remove(cfg.Unix) // a socket left by a server that was killed
		ln, err := net.Listen("unix", cfg.Unix)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("bpfdb: listening on %s: %w", cfg.Unix, err)
		}
		s.listeners = append(s.listeners, ln)
	}
	var err error
	if s.loop, err = newLoop(s); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("bpfdb: server event loop: %w", err)
	}
	s.startTracking()
	go s.loop.serve()
	return s, nil
}

// Addr is the TCP address the server is bound to (nil without one).
func (s *Server) Addr() net.Addr { return s.tcpAddr }

// ShutdownRequested is closed when a client sends SHUTDOWN; the owner of
// the server then shuts it (and the engine) down.
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdownReq }

// Serve accepts connections until Shutdown, then returns nil.
func (s *Server) Serve() error {
	for _, ln := range s.listeners {
		s.acceptWG.Add(1)
		go s.accept(ln)
	}
	s.acceptWG.Wait()
	return nil
}

func (s *Server) accept(ln net.Listener) {
	defer s.acceptWG.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // EMFILE and the like: let it pass
			continue
		}
		s.totalConns.Add(1)
		s.mu.Lock()
		if s.closing || int64(len(s.conns)) >= s.maxClients.Load() {
			s.mu.Unlock()
			s.rejectedConns.Add(1)
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write([]byte("-ERR max number of clients reached\r\n"))
			nc.Close()
			continue
		}
		addr := nc.RemoteAddr().String()
		fd, err := detach(nc)
		if err != nil {
			s.mu.Unlock()
			continue
		}
		c := newConn(s, fd, addr)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.metrics.connected.Inc()
		s.loop.add(c)
	}
}

// detach takes the socket of an accepted connection from the Go runtime
// (its netpoller) for the event loop: a duplicate of the descriptor, the
// original closed.
func detach(nc net.Conn) (int, error) {
	defer nc.Close()
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Shutdown stops accepting, lets every connection finish the commands it
// is executing (a round of the loop, a handed-over pipeline) and send their
// replies, including waiting for their writes to be durable, then closes
// them; input not yet executed is dropped, as by a crash of the client's
// connection. When ctx ends first, the remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.closeListeners()
	s.acceptWG.Wait() // no connection is added from here on
	s.loop.shutdown(false)
	select {
	case <-s.loop.done:
	case <-ctx.Done():
		s.loop.shutdown(true)
		<-s.loop.done
	}
	if s.stopTracking != nil {
		s.stopTracking()
	}
	return ctx.Err()
}

func (s *Server) closeListeners() {
	for _, ln := range s.listeners {
		ln.Close()
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.gone.Store(true)
	s.untrack(c) // and the redirects to it
	c.pushMu.Lock()
	c.pushes = nil
	c.pushMu.Unlock()
	s.metrics.connected.Dec()
}

func (s *Server) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) requestShutdown() {
	s.shutdownOnce.Do(func() { close(s.shutdownReq) })
}

// connLimits are the limits of a connection's reader for an engine whose
// longest value is maxValue bytes: an argument that long is kept (at
// least minBulk), a longer one is read and dropped up to maxSkip.
func connLimits(maxValue int) resp.Limits {
	bulk := max(minBulk, maxValue)
	return resp.Limits{MaxArgs: maxArgs, MaxBulk: bulk, MaxSkip: max(maxSkip, bulk)}
}

// unauthLimits are the limits of a connection's reader before AUTH (with
// RequirePass): a client may send only small commands, as Redis allows
// unauthenticated clients.
var unauthLimits = resp.Limits{MaxArgs: 10, MaxBulk: 16 << 10}
