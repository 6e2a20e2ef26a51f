package server

// The event loop: one goroutine serves the common commands of every
// connection, as Redis does.
//
// It waits in epoll for sockets with input, reads what each one has sent,
// parses it in place (resp.Scan), gathers the autocommit ops of the fast
// commands (GET, SET, DEL, EXISTS, STRLEN) of every connection, runs them
// together in as few chain runs as engine.MaxBatch allows, and answers
// each connection with one write: per request one read and one write, no
// goroutine switch. A goroutine per connection, blocked in the runtime's
// netpoller, cost a scheduler wakeup per request and a read that found
// nothing; with two CPUs that was a third of the server's time.
//
// A data command that is a server transaction (a script, a hash command,
// a read-modify-write: txn.go) the loop runs itself, as the first command
// of a connection's round, when it can without waiting
// (conn.runInline): its key locks free, no conflict, a script within a
// few milliseconds. It commits without waiting for the disk; with sync
// durability its reply is held until the round's fsync, as a SET's is
// (below). A hand-over and the wake that gives the connection back cost
// more than such a transaction. Otherwise nothing of the attempt is
// applied and the command goes to a goroutine, as follows.
//
// Everything else (MULTI/EXEC, admin commands, an inline command, an
// argument too long to keep, a command larger than the loop's buffer, a
// client before AUTH) is served the way it always was, by a goroutine:
// the loop hands the connection over (serveHandedOver) and takes it back
// once the goroutine has run out of input.
//
// Invariants, and why:
//
//   - A connection belongs to the loop or to its goroutine (c.busy), never
//     both: the goroutine reads, writes and executes without locks, and the
//     loop only records the socket's readiness meanwhile.
//   - Replies go out in command order. A connection's commands after the
//     first one the loop does not run stay unparsed in c.in until the
//     replies before them are rendered; then the connection is handed over.
//   - With sync durability, a reply acknowledging a write (an op's, or a
//     transaction's the loop ran: c.held) is sent only once the write's
//     log record is durable, and a reply showing a commit it did not
//     make (what a GET, a DEL or a transaction found) only once that
//     commit's is, so that a crash cannot take back what a reply showed
//     (docs/DESIGN.md, "Reads wait as writes do"). After its chain runs the loop
//     writes the round's commits to the log itself (syncLog, one fsync per
//     round, as Redis's appendfsync always does), and answers. A write
//     that is still not durable (a run of another goroutine holds an
//     earlier LSN) waits in durWait without blocking the loop; the log
//     wakes the loop when the durable LSN moves (engine.OnDurableChange).
//     On a full disk the reply is the error, at once; a held reply is
//     replaced by it (settleHeld). While a connection waits it reads
//     nothing more, and nothing of its replies is written.
//   - Only the loop closes a socket, so a descriptor number is never
//     reused under a goroutine still using it.
//   - Sockets are edge-triggered: c.sockReadable remembers that the socket
//     may hold input not yet read. Only a read by the loop that leaves the
//     socket drained (a short read, EAGAIN, EOF) clears it; an event sets
//     it, even while the connection waits or is handed over. Once epoll has
//     reported the client's close, only EOF clears it.
//   - Ops of one connection run in its order, and nothing after an op the
//     engine refused (engine.TrySubmit) runs: the goroutine it is handed
//     over to runs the refused suffix again, with backoff, in order.

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/resp"
	"golang.org/x/sys/unix"
)

const (
	// loopReadBuffer is a connection's input buffer: one read takes up
	// to this much.
	loopReadBuffer = 16 << 10
	// maxLoopReplies bounds the reads gathered from one connection in a
	// round, so that their replies stay within about maxReplyBuffer when
	// the values fit a slot (engine.SlotValueLen). Values can be far
	// longer (engine.Engine.MaxValueLen, 1 MiB by default): once a round
	// has answered a connection with such a value, its next rounds gather
	// fewer reads (readsPerRound), down to one, so that a client pipelining
	// GETs of large values holds about one round of them, not
	// maxLoopReplies, in its reply buffer. (A reply is rendered whole and
	// written as the socket takes it: EPOLLOUT resumes a blocked write.)
	maxLoopReplies = maxReplyBuffer / engine.SlotValueLen
	// loopEvents is how many events one epoll_wait returns at most.
	loopEvents = 256
	// maxInlinePerRound bounds the transactions (scripts, hashes,
	// read-modify-writes) the loop runs itself for one connection in a
	// round, so that a client pipelining them does not hold the others
	// up for more than about one round of them.
	maxInlinePerRound = 16
	// maxInlineRound bounds the time a round spends in transactions the
	// loop runs itself: past it, the round's later ones go to goroutines,
	// so that the round's GETs and SETs wait for no more.
	maxInlineRound = 10 * time.Millisecond
)

// loopState is a connection's state in the event loop; the loop's alone
// unless the connection is handed over.
type loopState struct {
	in    []byte   // input read, not yet executed from inPos on
	inPos int      // start of the first command not yet executed
	args  [][]byte // Scan's arguments, reused
	// lastRead is the longest value the reads of the connection's last
	// round with reads answered (readsPerRound).
	lastRead int

	sockReadable bool // the socket may hold unread input
	more         bool // c.in holds complete commands not parsed yet (maxPipeline)
	eof          bool // the client closed its side, and everything before is read
	peerClosed   bool // epoll saw the client close its side: read until EOF
	closeNow     bool // close once the replies are out
	inReady      bool // in loop.ready
	busy         bool // handed over to a goroutine
	waiting      bool // in loop.durWait
	outBlocked   bool // the socket's send buffer is full
	handover     bool // hand over once this round's replies are rendered
	closed       bool // closed by the loop

	// This round's ops: the next to run, the first refused (-1: none),
	// and the last commit's LSN (of its ops and its transactions).
	opNext    int
	refusedAt int
	roundLSN  uint64
	// held are the replies, rendered in c.wr, of this round's
	// transactions the loop ran that committed writes, or read a commit
	// (runInline, tryTxn): sent once roundLSN is durable, or replaced by
	// the error (settleHeld).
	held []heldReply
}

// heldReply is a reply's place in a connection's unsent replies
// (resp.Writer.Pending), from its first byte to past its last, its
// command's, and the LSN it rests on: its transaction's commit, or the
// newest commit it read.
type heldReply struct {
	from, to int
	cmd      *command
	lsn      uint64
}

// loop is the event loop of a server.
type loop struct {
	s      *Server
	epfd   int
	wakeMu sync.Mutex // orders wakes with closing wakefd
	wakefd int        // an eventfd: a goroutine's knock; -1 once closed

	// incoming carries new connections and connections handed back.
	incoming chan *conn
	// handoffs gives a handed-over connection to an idle worker
	// (handOver); unbuffered, so a send succeeds only if one waits.
	handoffs    chan *conn
	wantDurable atomic.Bool // a connection waits for the log: wake the loop when it moves
	roundStart  time.Time   // when the round being served began (maxInlineRound)
	unsubscribe func()      // removes the loop's OnDurableChange function
	closing     atomic.Bool // Shutdown: finish what was read, then close
	cmdsBuf     []*command  // chargeRun's buffer
	forcing     atomic.Bool // Shutdown's deadline passed: close everything now
	done        chan struct{}

	conns   map[int32]*conn // by descriptor
	ready   []*conn         // connections with input to process
	spare   []*conn         // the other ready slice, reused
	round   []*conn         // connections processed this round
	durWait []*conn         // connections whose replies wait for the log
	run     [engine.MaxBatch]engine.Op
	parts   []runPart
}

// runPart is a connection's share of a chain run: c.ops[from:from+n].
type runPart struct {
	c        *conn
	from, n  int
	hasWrite bool
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	l := &loop{
		s:        s,
		epfd:     epfd,
		wakefd:   wakefd,
		incoming: make(chan *conn, 64),
		handoffs: make(chan *conn),
		done:     make(chan struct{}),
		conns:    map[int32]*conn{},
	}
	l.unsubscribe = s.e.OnDurableChange(func() {
		if l.wantDurable.Load() {
			l.wake()
		}
	})
	return l, nil
}

// wake makes the loop's epoll_wait return.
func (l *loop) wake() {
	one := [8]byte{1}
	l.wakeMu.Lock()
	if l.wakefd >= 0 {
		rawWrite(l.wakefd, one[:])
	}
	l.wakeMu.Unlock()
}

// add gives the loop a new connection, or a handed-over one back.
func (l *loop) add(c *conn) {
	l.incoming <- c
	l.wake()
}

// shutdown makes the loop close every connection once its commands in
// flight are answered, and return when none is left; with force, at once.
func (l *loop) shutdown(force bool) {
	l.closing.Store(true)
	if force {
		l.forcing.Store(true)
	}
	l.wake()
}

// serve is the loop's goroutine.
func (l *loop) serve() {
	defer l.exit()
	events := make([]unix.EpollEvent, loopEvents)
	for {
		var n int
		var err error
		if len(l.ready) > 0 {
			n, err = pollEvents(l.epfd, events)
		} else {
			n, err = unix.EpollWait(l.epfd, events, -1)
		}
		if err != nil && err != unix.EINTR {
			panic("bpfdb: epoll_wait: " + err.Error()) // EBADF, EINVAL: a bug
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == l.wakefd {
				l.knocked()
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil {
				continue
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.sockReadable = true
			}
			if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				// Its edge may come with the last data's: a short read
				// would not show the end, so read until it does.
				c.peerClosed = true
			}
			if c.busy || c.waiting {
				continue
			}
			if c.outBlocked {
				l.resume(c) // EPOLLOUT, or an error the write will find
				continue
			}
			l.enqueue(c)
		}
		if l.closing.Load() && len(l.conns) == 0 {
			return
		}
		l.serveRound()
	}
}

// exit releases the loop's descriptors once every connection is closed.
func (l *loop) exit() {
	l.unsubscribe()
	unix.Close(l.epfd)
	l.wakeMu.Lock() // the log may be calling wake
	unix.Close(l.wakefd)
	l.wakefd = -1
	l.wakeMu.Unlock()
	close(l.done)
}

// knocked handles the wake: connections coming in or back, the log's
// progress, shutdown.
func (l *loop) knocked() {
	var buf [8]byte
	rawRead(l.wakefd, buf[:])
	for more := true; more; {
		select {
		case c := <-l.incoming:
			l.arrive(c)
		default:
			more = false
		}
	}
	l.checkDurable()
	for _, c := range l.s.tracking.readyPushes() {
		if !c.closed && !c.busy && !c.waiting {
			l.resume(c) // writes the pushes (flush)
		}
	}
	if l.closing.Load() {
		for _, c := range l.conns {
			l.closeIdle(c)
		}
	}
}

// arrive registers a new connection, or takes back a handed-over one.
func (l *loop) arrive(c *conn) {
	if !c.busy {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			c.closeNow = true
		}
		l.conns[int32(c.fd)] = c
		c.sockReadable = true
	}
	c.busy = false
	l.resume(c)
}

// closeIdle closes, during shutdown, a connection with nothing in flight;
// with force, any connection, and a handed-over one's socket is shut down
// so its goroutine stops and gives it back.
func (l *loop) closeIdle(c *conn) {
	forcing := l.forcing.Load()
	switch {
	case c.busy:
		c.stop.Store(true)
		if forcing {
			unix.Shutdown(c.fd, unix.SHUT_RDWR)
		}
	case forcing || (!c.waiting && !c.outBlocked):
		l.close(c)
	}
}

// enqueue marks a connection to be processed this round.
func (l *loop) enqueue(c *conn) {
	if !c.inReady {
		c.inReady = true
		l.ready = append(l.ready, c)
	}
}

// serveRound reads and parses the input of every ready connection, runs
// their ops together, and answers them.
func (l *loop) serveRound() {
	l.roundStart = time.Now()
	ready := l.ready
	l.ready = l.spare[:0] // connections enqueued from here on are the next round's
	for _, c := range ready {
		c.inReady = false
		switch {
		case c.closed:
		case l.closing.Load():
			l.closeIdle(c)
		case l.process(c):
			l.round = append(l.round, c)
		}
	}
	clear(ready)
	l.spare = ready[:0]
	l.runOps()
	l.syncLog()
	for i, c := range l.round {
		l.settle(c)
		l.round[i] = nil
	}
	l.round = l.round[:0]
}

// process reads what the connection has sent and gathers its commands up
// to the first one the loop does not run. It reports whether the
// connection takes part in the round (false: closed).
func (l *loop) process(c *conn) bool {
	if c.sockReadable && !l.read(c) {
		return false
	}
	c.more = false
	if !c.authed || c.inMulti || c.subscribed.Load() {
		c.handover = c.inPos < len(c.in)
		return true
	}
	reads, maxReads, inlined := 0, c.readsPerRound(), 0
	for c.inPos < len(c.in) {
		if len(c.ops) == maxPipeline || reads == maxReads || inlined == maxInlinePerRound || c.wr.Buffered() > maxReplyBuffer {
			c.more = true
			break
		}
		args, n, st := resp.Scan(c.in[c.inPos:], c.args[:0], c.s.limits)
		c.args = args[:0]
		if st == resp.ScanIncomplete {
			if c.inPos == 0 && len(c.in) == cap(c.in) {
				// A command longer than the buffer: the Reader streams it
				// (and the loop does not scan it again at every read).
				c.handover = true
			}
			break
		}
		if st == resp.ScanOther || !c.gatherFast(args) {
			switch {
			case st == resp.ScanOther:
				c.handover = true
			case len(c.ops) > 0:
				// Its reply follows theirs: it waits for the next round,
				// where it comes first and may run in the loop.
				c.more = true
			case c.runPure(args):
				c.inPos += n
				continue
			case time.Since(l.roundStart) > maxInlineRound:
				c.handover = true // the round has run long: a goroutine runs it, on the other CPU
			case c.runInline(args):
				c.inPos += n
				inlined++
				continue
			default:
				c.handover = true
			}
			break
		}
		if c.ops[len(c.ops)-1].Kind == engine.OpGet {
			reads++
		}
		c.inPos += n
	}
	return true
}

// read reads once from the socket into c.in. It reports false if the
// connection was closed.
func (l *loop) read(c *conn) bool {
	if c.inPos > 0 && c.inPos == len(c.in) {
		c.in, c.inPos = c.in[:0], 0
	}
	if len(c.in) == cap(c.in) {
		return true // full of commands to execute first
	}
	for {
		n, err := rawRead(c.fd, c.in[len(c.in):cap(c.in)])
		switch {
		case n > 0:
			// A short read drained the socket; a full one may have left more.
			c.sockReadable = len(c.in)+n == cap(c.in) || c.peerClosed
			c.in = c.in[:len(c.in)+n]
			return true
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.sockReadable = false
			return true
		case err == nil:
			c.sockReadable, c.eof = false, true
			return true
		}
		l.close(c)
		return false
	}
}

// runPure answers a pure command (PING, ECHO: command.pure) with
// dispatch's accounting, and reports whether it was one. The loop runs
// it only before the round's first op, whose reply is rendered after the
// round's chain runs: replies go out in command order.
func (c *conn) runPure(args [][]byte) bool {
	cmd := lookup(args[0])
	if cmd == nil || !cmd.pure || !cmd.arityOK(len(args)) {
		return false
	}
	if len(c.ops) > 0 {
		panic("bpfdb: server: a pure command answered ahead of an op's reply")
	}
	c.s.count(cmd)
	errs, start := c.errReplies, time.Now()
	cmd.run(c, args)
	c.ran(cmd, args, time.Since(start), c.errReplies > errs)
	c.commandDone()
	return true
}

// gatherFast gathers a command the loop runs, with the accounting
// dispatch does, and reports whether it was one.
func (c *conn) gatherFast(args [][]byte) bool {
	cmd := lookup(args[0])
	if cmd == nil || cmd.fast == nil || !cmd.arityOK(len(args)) || !c.gatherWith(cmd, args) {
		return false
	}
	c.s.count(cmd)
	return true
}

// runOps runs the ops gathered this round, in chain runs of up to
// engine.MaxBatch ops taken from the connections in turn.
func (l *loop) runOps() {
	next := 0
	for {
		n := 0
		parts := l.parts[:0]
		for next < len(l.round) && n < engine.MaxBatch {
			c := l.round[next]
			if c.opNext == len(c.ops) {
				next++
				continue
			}
			k := min(len(c.ops)-c.opNext, engine.MaxBatch-n)
			p := runPart{c: c, from: c.opNext, n: k}
			for _, op := range c.ops[c.opNext : c.opNext+k] {
				p.hasWrite = p.hasWrite || op.Kind != engine.OpGet
			}
			copy(l.run[n:], c.ops[c.opNext:c.opNext+k])
			parts = append(parts, p)
			c.opNext += k
			n += k
		}
		if n == 0 {
			l.parts = parts
			return
		}
		start := time.Now()
		lsn, err := l.s.submit(l.run[:n])
		l.chargeRun(parts, time.Since(start))
		at := 0
		for _, p := range parts {
			c := p.c
			copy(c.ops[p.from:p.from+p.n], l.run[at:at+p.n])
			at += p.n
			if err != nil {
				// The chain could not run: nothing of this run, nor any
				// later op of the connection, was applied.
				for j := p.from; j < len(c.ops); j++ {
					c.ops[j].Err = err
				}
				c.opNext = len(c.ops)
				continue
			}
			if p.hasWrite {
				c.roundLSN = max(c.roundLSN, lsn)
			}
			c.roundLSN = max(c.roundLSN, readLSN(c.ops[p.from:p.from+p.n]))
			if c.refusedAt >= 0 {
				continue
			}
			for j := p.from; j < p.from+p.n; j++ {
				if retryable(c.ops[j].Err) {
					// Nothing after a refused op may run: the goroutine
					// re-runs the refused suffix in order.
					c.refusedAt = j
					c.opNext = len(c.ops)
					break
				}
			}
		}
		clear(l.run[:n])
	}
}

// chargeRun charges the commands whose ops made up a chain run of d.
func (l *loop) chargeRun(parts []runPart, d time.Duration) {
	l.cmdsBuf = l.cmdsBuf[:0]
	for _, p := range parts {
		l.cmdsBuf = append(l.cmdsBuf, p.c.gatheredBy(p.from, p.from+p.n)...)
	}
	l.s.ranFast(l.cmdsBuf, d)
}

// syncLog writes the round's commits to the log itself when they are not
// yet durable (sync durability), so that settle can answer them at once:
// one fsync per round, on the loop's thread, as Redis's appendfsync always
// does, instead of a hand-off to the log's goroutine and a wake-up back
// (engine.SyncLog, which waits at most 50ms: a hung disk never wedges the
// loop). The loop serves nobody during the fsync; what arrives
// meanwhile is the next round's, and shares the next fsync. A failed write
// is settle's to report: Durable returns it.
func (l *loop) syncLog() {
	var lsn uint64
	for _, c := range l.round {
		lsn = max(lsn, c.roundLSN)
	}
	if lsn == 0 {
		return
	}
	if done, _ := l.s.e.Durable(lsn); !done {
		l.s.e.SyncLog()
	}
}

// settle answers a connection's commands of this round, or parks it until
// its writes are durable, or hands it over.
func (l *loop) settle(c *conn) {
	c.opNext = 0
	if c.refusedAt >= 0 {
		l.handOver(c) // it runs the refused ops again, then answers
		return
	}
	if len(c.ops) > 0 || len(c.held) > 0 {
		done, durableErr := l.s.e.Durable(c.roundLSN)
		if !done {
			// Ask to be woken, then look again: the log may have moved
			// before it knew anyone was waiting.
			l.wantDurable.Store(true)
			done, durableErr = l.s.e.Durable(c.roundLSN)
		}
		if !done {
			c.waiting = true
			l.durWait = append(l.durWait, c)
			return
		}
		l.answer(c, durableErr)
	}
	l.resume(c)
}

// answer renders the replies of a connection's ops, and settles its
// held ones, once its round's writes are durable or cannot be.
func (l *loop) answer(c *conn, durableErr error) {
	c.noteReads()
	c.answerRound(nil, durableErr)
}

// answerRound renders the replies of the round: its held ones first,
// which precede its ops' (runInline runs only before the round's first
// op), then its ops', run with runErr and made durable with durableErr.
func (c *conn) answerRound(runErr, durableErr error) {
	c.settleHeld(durableErr)
	c.renderOps(runErr, durableErr)
	c.roundLSN = 0
}

// settleHeld makes the held replies final, once the round's writes are
// durable; if some cannot be (durableErr), each reply resting on one of
// them becomes its error, as a transaction run by a goroutine answers:
// applied, not acknowledged. A reply resting on a commit the disk took
// stays. Nothing was written to the socket since they were rendered (a
// waiting connection is not flushed), so their places still hold.
func (c *conn) settleHeld(durableErr error) {
	if durableErr != nil && len(c.held) > 0 {
		first := c.held[0].from
		rendered := bytes.Clone(c.wr.Pending()[first:])
		c.wr.Truncate(first)
		at := first
		for _, h := range c.held {
			err := c.notDurable(h.lsn, durableErr)
			if err == nil {
				continue // its place keeps its reply, copied with the next
			}
			c.wr.Raw(rendered[at-first : h.from-first])
			c.wr.Error(errorText(err))
			c.s.statsOf(h.cmd).failed.Add(1)
			at = h.to
		}
		c.wr.Raw(rendered[at-first:])
	}
	c.held = c.held[:0]
}

// notDurable is the error a reply resting on commit lsn (0: none) gets
// once its round's commits are durable or cannot be (roundErr, the
// error of the round's newest): lsn's own, which is nil when the disk
// took it before it failed.
func (c *conn) notDurable(lsn uint64, roundErr error) error {
	if roundErr == nil || lsn == 0 {
		return nil
	}
	done, err := c.s.e.Durable(lsn)
	if !done && err == nil {
		return roundErr // not yet durable, though the round's newest failed
	}
	return err
}

// readsPerRound is how many reads the loop gathers from the connection in
// a round: maxLoopReplies, or fewer while its reads answer values longer
// than a slot, so that a round's replies stay within about
// maxReplyBuffer, or one value.
func (c *conn) readsPerRound() int {
	if c.lastRead <= engine.SlotValueLen {
		return maxLoopReplies
	}
	return max(1, maxReplyBuffer/c.lastRead)
}

// noteReads records the longest value the reads of this round's ops
// answered, for readsPerRound; a round without reads changes nothing.
func (c *conn) noteReads() {
	longest, reads := 0, false
	for i := range c.ops {
		if op := &c.ops[i]; op.Kind == engine.OpGet {
			longest, reads = max(longest, len(op.Value)), true
		}
	}
	if reads {
		c.lastRead = longest
	}
}

// checkDurable answers the waiting connections whose writes are durable.
func (l *loop) checkDurable() {
	if len(l.durWait) == 0 {
		return
	}
	keep := l.durWait[:0]
	for _, c := range l.durWait {
		if c.closed {
			continue
		}
		done, err := l.s.e.Durable(c.roundLSN)
		if !done {
			keep = append(keep, c)
			continue
		}
		c.waiting = false
		l.answer(c, err)
		l.resume(c)
	}
	clear(l.durWait[len(keep):])
	l.durWait = keep
	if len(keep) == 0 {
		l.wantDurable.Store(false)
		// A connection parked from here on stores true before it looks.
	}
}

// resume carries on with a connection after its replies are rendered:
// sends them, hands it over if its next command is not the loop's, closes
// it if it is done, or queues it if it has input.
func (l *loop) resume(c *conn) {
	if c.closed {
		return
	}
	if c.handover && !c.closeNow {
		c.handover = false
		l.handOver(c) // its goroutine sends what is buffered first
		return
	}
	if !l.flush(c) || c.outBlocked {
		return
	}
	if c.closeNow || c.quit || (c.eof && !c.sockReadable && !c.more) || l.closing.Load() {
		l.close(c)
		return
	}
	if c.inPos > 0 {
		c.in = c.in[:copy(c.in, c.in[c.inPos:])]
		c.inPos = 0
	}
	if len(c.in) == 0 && cap(c.in) > loopReadBuffer {
		c.in = make([]byte, 0, loopReadBuffer) // a handed-over connection's may have grown
	}
	if c.sockReadable || c.more {
		l.enqueue(c)
	}
}

// flush writes a connection's buffered replies without blocking. It
// reports false if the connection was closed; c.outBlocked if the socket
// could not take them all (EPOLLOUT resumes).
func (l *loop) flush(c *conn) bool {
	c.takePushes()
	for c.wr.Buffered() > 0 {
		n, err := rawWrite(c.fd, c.wr.Pending())
		switch {
		case n > 0:
			c.wr.Consumed(n)
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			c.outBlocked = true
			return true
		default:
			l.close(c)
			return false
		}
	}
	c.outBlocked = false
	return true
}

// handOver gives the connection to a goroutine of its own: an idle
// worker's, or a new worker's. Workers are kept for handoverIdle after
// they served one because a new goroutine's stack starts small and grows,
// by copying, in every transaction or script it runs.
func (l *loop) handOver(c *conn) {
	c.busy, c.handover = true, false
	l.s.metrics.handovers.Inc()
	select {
	case l.handoffs <- c:
	default:
		go l.handoverWorker(c)
	}
}

// handoverIdle is how long a worker waits for another connection before
// it ends.
const handoverIdle = 10 * time.Second

// handoverWorker serves c, then the connections handed to it while it
// waits, until none comes for handoverIdle or the loop has ended.
func (l *loop) handoverWorker(c *conn) {
	idle := time.NewTimer(handoverIdle)
	defer idle.Stop()
	for {
		c.serveHandedOver()
		idle.Reset(handoverIdle)
		select {
		case c = <-l.handoffs:
		case <-idle.C:
			return
		case <-l.done:
			return
		}
	}
}

// close closes a connection the loop holds.
func (l *loop) close(c *conn) {
	if c.closed || l.conns[int32(c.fd)] != c {
		return
	}
	delete(l.conns, int32(c.fd))
	// Out of Server.conns before the descriptor is closed: CLIENT KILL
	// shuts down the sockets of listed connections only, so never a
	// descriptor number already reused.
	l.s.removeConn(c)
	unix.Close(c.fd) // also leaves the epoll set
	c.closed = true
	clear(c.ops)
	c.in = nil
}

// fdIO reads and writes a handed-over connection's socket, which is
// non-blocking, from its goroutine: the input the loop had read but not
// executed comes first, and a read or write that would block waits in
// poll(2).
type fdIO struct{ c *conn }

// pollWait bounds a wait in poll, so a goroutine sees a shutdown.
const pollWait = 100 * time.Millisecond

var errStopped = errors.New("bpfdb: server shutting down")

func (f fdIO) Read(p []byte) (int, error) {
	c := f.c
	if c.inPos < len(c.in) {
		n := copy(p, c.in[c.inPos:])
		c.inPos += n
		return n, nil
	}
	for {
		n, err := rawRead(c.fd, p)
		switch {
		case n > 0:
			return n, nil
		case err == nil:
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, err
		}
		if c.stop.Load() {
			return 0, errStopped
		}
		// Replies of commands executed before are not held back while
		// the rest of a command, or the next one, is awaited.
		if err := c.wr.Flush(); err != nil {
			return 0, err
		}
		if err := waitFD(c.fd, unix.POLLIN|unix.POLLRDHUP); err != nil {
			return 0, err
		}
	}
}

func (f fdIO) Write(p []byte) (int, error) {
	c := f.c
	written := 0
	for written < len(p) {
		n, err := rawWrite(c.fd, p[written:])
		switch {
		case n > 0:
			written += n
			continue
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return written, err
		}
		if err := waitFD(c.fd, unix.POLLOUT); err != nil {
			return written, err
		}
	}
	return written, nil
}

// waitFD waits up to pollWait for fd to be ready for events.
func waitFD(fd int, events int16) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		_, err := unix.Poll(pfd, int(pollWait/time.Millisecond))
		if err != unix.EINTR {
			return err
		}
	}
}
