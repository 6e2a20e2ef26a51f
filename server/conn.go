package server

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/resp"
)

// conn is one client connection. The event loop (loop.go) serves it while
// its commands are ones the loop runs; otherwise the loop hands it over to
// a goroutine (serveHandedOver) that reads every command that has arrived
// (a pipeline), executes them in order, writes the replies with one system
// call, and hands it back once no input is left.
type conn struct {
	s       *Server
	l       *loop
	fd      int
	rd      *resp.Reader // a handed-over connection's reader (fdIO), made at the first hand-over
	wr      *resp.Writer
	id      int64
	addr    string
	created time.Time
	name    atomic.Value // string, set by CLIENT SETNAME
	authed  bool
	quit    bool
	db      int          // SELECT's database
	shownDB atomic.Int32 // db, for other connections' CLIENT LIST
	// errReplies counts the error replies written (stats.go); curCmd is
	// the fast command gathering an op, cmdsBuf gatheredBy's buffer.
	errReplies uint64
	curCmd     *command
	cmdsBuf    []*command
	// Client-side caching (tracking.go): tracking after CLIENT TRACKING
	// ON; subscribed to __redis__:invalidate; resp3 after HELLO 3 (the
	// pusher's copy of the writer's protocol); CLIENT CACHING's answer for
	// the next command (cachingNext: it is the next); invalidations queued
	// for the owner to write.
	tracking, subscribed, resp3 atomic.Bool
	gone                        atomic.Bool // out of the server's list: closed, or closing
	cachingYes, cachingNo       bool
	cachingNext                 bool
	pushMu                      sync.Mutex
	pushes                      []byte
	stop                        atomic.Bool // the server is shutting down

	cmds [][][]byte // the pipeline being executed
	// tooLong[i] is the length of command i's argument that was too long
	// to keep (0: none): the command is answered with an error.
	tooLong []int

	// Autocommit ops gathered from consecutive fast commands, and how to
	// answer each of those commands from them.
	ops     []engine.Op
	pending []pendingReply

	// MULTI state.
	inMulti  bool
	multiErr bool       // a command failed to queue: EXEC answers EXECABORT
	queued   [][][]byte // copies: the read arena is recycled per pipeline
	watched  map[string]uint64
	watchGen uint64 // dbNames.gen before the first WATCH

	loopState
}

// pendingReply answers one fast command from its ops (ops[at:at+n]).
type pendingReply struct {
	kind replyKind
	at   int
	cmd  *command // what gathered it (stats.go)
}

type replyKind uint8

const (
	replyValue   replyKind = iota // GET: the value or null
	replyOK                       // SET: +OK
	replyCount                    // DEL: 1 if there was a value
	replyInteger                  // INCR: the sum, from the op's Value
	replyLength                   // STRLEN: the value's length or 0
)

func newConn(s *Server, fd int, addr string) *conn {
	c := &conn{
		s:       s,
		l:       s.loop,
		fd:      fd,
		id:      s.nextID.Add(1),
		addr:    addr,
		created: time.Now(),
		authed:  s.cfg.RequirePass == "",
	}
	c.wr = resp.NewWriter(fdIO{c})
	c.wr.OnError = func(msg string) {
		c.errReplies++
		s.errors.add(msg)
	}
	c.in = make([]byte, 0, loopReadBuffer)
	c.refusedAt = -1
	c.name.Store("")
	return c
}

// serveHandedOver runs on a goroutine of its own while the loop has handed
// the connection over: it finishes the ops of the loop's round that were
// refused (a conflict or a checkpoint's closed gate, waited out here), then
// serves pipelines until no input is left, and hands the connection back.
func (c *conn) serveHandedOver() {
	if c.rd == nil {
		lim := c.s.limits
		if !c.authed {
			lim = unauthLimits
		}
		c.rd = resp.NewReader(fdIO{c}, readBuffer, lim)
	}
	if c.refusedAt >= 0 {
		lsn, err := c.runOps(c.ops[c.refusedAt:])
		c.answerOps(lsn, err)
		c.refusedAt = -1
	}
	ok := true
	for ok && !c.quit && !c.stop.Load() && c.inputLeft() {
		ok = c.servePipeline()
	}
	c.takePushes()
	if ok && c.wr.Flush() != nil {
		ok = false
	}
	c.closeNow = c.closeNow || !ok || c.quit
	c.inPos, c.in = 0, c.in[:0]
	c.l.add(c)
}

// inputLeft says whether a handed-over connection has input it has read
// and not executed.
func (c *conn) inputLeft() bool { return c.inPos < len(c.in) || c.rd.Buffered() > 0 }

// servePipeline reads and executes one pipeline and sends its replies. It
// reports whether the connection stays open.
func (c *conn) servePipeline() bool {
	err := c.readPipeline()
	for i, args := range c.cmds {
		if c.quit {
			break // Redis closes right after QUIT's reply
		}
		if c.tooLong[i] > 0 {
			c.flushOps()
			c.refuseTooLong(args, c.tooLong[i])
			continue
		}
		c.dispatch(args)
		if c.wr.Buffered() > maxReplyBuffer {
			// Big replies (MGETs of many large values): send what is
			// ready rather than hold a whole pipeline's replies.
			c.flushOps()
			if c.wr.Flush() != nil {
				return false
			}
		}
	}
	c.flushOps()
	var perr *resp.ProtocolError
	if errors.As(err, &perr) {
		c.wr.Error("ERR " + perr.Error())
	}
	c.rd.Reset()
	c.takePushes()
	if werr := c.wr.Flush(); werr != nil || err != nil {
		return false
	}
	return true
}

// readPipeline reads one command, waiting for it, then every further
// command that has already arrived, up to maxPipeline and maxGathered.
func (c *conn) readPipeline() error {
	c.cmds, c.tooLong = c.cmds[:0], c.tooLong[:0]
	for len(c.cmds) == 0 || (c.rd.HasCommand() && len(c.cmds) < maxPipeline && c.rd.ArenaSize() < maxGathered) {
		var args [][]byte
		if n := len(c.cmds); n < cap(c.cmds) {
			args = c.cmds[:n+1][n][:0]
		}
		args, err := c.rd.ReadCommand(args)
		var tooLong *resp.ArgTooLongError
		switch {
		case errors.As(err, &tooLong) && len(args) > 0:
			c.cmds = append(c.cmds, args)
			c.tooLong = append(c.tooLong, tooLong.Len)
		case errors.As(err, &tooLong):
			c.cmds = append(c.cmds, [][]byte{[]byte("?")}) // the name itself was too long
			c.tooLong = append(c.tooLong, tooLong.Len)
		case err == io.EOF:
			return io.EOF
		case err != nil:
			return err
		default:
			c.cmds = append(c.cmds, args)
			c.tooLong = append(c.tooLong, 0)
		}
	}
	return nil
}

// dispatch executes one command or, for a fast one, gathers its op.
func (c *conn) dispatch(args [][]byte) {
	cmd := lookup(args[0])
	c.s.count(cmd)
	if cmd == nil {
		c.flushOps()
		if c.inMulti {
			c.multiErr = true
		}
		c.wr.Error(unknownCommand(args))
		c.commandDone()
		return
	}
	if !c.authed && !cmd.noAuth {
		c.flushOps()
		if c.inMulti {
			c.multiErr = true
		}
		c.s.statsOf(cmd).rejected.Add(1)
		c.wr.Error("NOAUTH Authentication required.")
		c.commandDone()
		return
	}
	if !cmd.arityOK(len(args)) {
		c.flushOps()
		if c.inMulti {
			c.multiErr = true
		}
		c.s.statsOf(cmd).rejected.Add(1)
		c.wr.Error("ERR wrong number of arguments for '" + cmd.name + "' command")
		c.commandDone()
		return
	}
	if c.inMulti && !cmd.multiControl {
		c.queue(cmd, args)
		return
	}
	if c.subscribed.Load() && !c.resp3.Load() && !subscribedOK[cmd.name] {
		c.flushOps()
		c.wr.Error("ERR Can't execute '" + cmd.name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		c.commandDone()
		return
	}
	if cmd.fast != nil && c.gatherWith(cmd, args) {
		return
	}
	c.flushOps()
	c.trackReads(cmd, args)
	errs, start := c.errReplies, time.Now()
	if cmd.eval != nil {
		c.runAutocommit(cmd, args)
	} else {
		cmd.run(c, args)
	}
	c.ran(cmd, args, time.Since(start), c.errReplies > errs)
	c.commandDone()
}

// gatherWith has the fast command cmd gather its op, if it can.
func (c *conn) gatherWith(cmd *command, args [][]byte) bool {
	c.curCmd = cmd
	if !cmd.fast(c, args) {
		return false
	}
	c.trackReads(cmd, args)
	c.commandDone()
	return true
}

// trackReads registers the keys cmd reads, if c tracks them, before it
// runs (tracking.go).
func (c *conn) trackReads(cmd *command, args [][]byte) {
	if !c.tracking.Load() || cmd.keys == nil {
		return
	}
	if keys, write := cmd.keys(args); !write {
		c.s.track(c, keys)
	}
}

// commandDone ends a command: CLIENT CACHING's answer holds for one
// command only, a whole MULTI/EXEC being one (as in Redis).
func (c *conn) commandDone() {
	if c.inMulti {
		c.cachingNext = false // the flags hold until EXEC or DISCARD
		return
	}
	if c.cachingNext {
		c.cachingNext = false
		return
	}
	c.cachingYes, c.cachingNo = false, false
}

// refuseTooLong answers a command one of whose arguments was too long to
// keep (longer than the engine's MaxValueLen and than minBulk): no key or
// value can be that long.
func (c *conn) refuseTooLong(args [][]byte, n int) {
	cmd := lookup(args[0])
	c.s.count(cmd)
	if cmd != nil {
		c.s.statsOf(cmd).rejected.Add(1)
	}
	if c.inMulti {
		c.multiErr = true
	}
	c.wr.Error(fmt.Sprintf("ERR '%s' has an argument of %d bytes: values are at most %d bytes (Options.MaxValueLen, --max-value-len), keys %d (Options.MaxKeyLen, --max-key-len)",
		printable(args[0]), n, c.s.e.MaxValueLen(), c.s.e.MaxKeyLen()))
	c.commandDone()
}

// queue adds a command to the open MULTI after checking what can be
// checked before it runs; a failure makes EXEC answer EXECABORT.
func (c *conn) queue(cmd *command, args [][]byte) {
	if cmd.eval == nil && !cmd.queueable {
		c.multiErr = true
		c.wr.Error("ERR '" + cmd.name + "' cannot be used inside MULTI")
		return
	}
	if cmd.check != nil {
		if err := cmd.check(args, c.s.e); err != nil {
			c.s.statsOf(cmd).rejected.Add(1)
			c.multiErr = true
			c.wr.Error(errorText(err))
			return
		}
	}
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = append([]byte(nil), a...)
	}
	c.queued = append(c.queued, cp)
	c.wr.Simple("QUEUED")
}

// gather adds a fast command's op and how to answer it.
// gatherIncr gathers INCR, DECR, INCRBY or DECRBY of key by by as one
// autocommit OpIncr: one chain run, its lock never held across a round
// trip (a kernel-side bpfdb_incr racing it is not refused). A bad key
// takes the slower path, which words the error as Redis does.
func (c *conn) gatherIncr(key []byte, by int64) bool {
	if c.s.e.CheckKey(key) != nil {
		return false
	}
	return c.gather(replyInteger, engine.Op{Kind: engine.OpIncr, Key: key, Delta: by})
}

func (c *conn) gather(kind replyKind, op engine.Op) bool {
	op.DB = c.db
	c.pending = append(c.pending, pendingReply{kind: kind, at: len(c.ops), cmd: c.curCmd})
	c.ops = append(c.ops, op)
	return true
}

// flushOps runs the gathered ops (with other connections', through the
// batcher), waits until their writes are durable, and answers their
// commands in order.
func (c *conn) flushOps() {
	if len(c.ops) == 0 {
		return
	}
	start := time.Now()
	lsn, runErr := c.runOps(c.ops)
	c.s.ranFast(c.gatheredBy(0, len(c.ops)), time.Since(start))
	c.answerOps(lsn, runErr)
}

// gatheredBy is the commands that gathered ops from to to of c.ops (one
// op each), in c.cmdsBuf.
func (c *conn) gatheredBy(from, to int) []*command {
	c.cmdsBuf = c.cmdsBuf[:0]
	for i, p := range c.pending[from:to] {
		if p.cmd == nil || p.at != from+i {
			panic("bpfdb: server: a gathered op with no command of its own")
		}
		c.cmdsBuf = append(c.cmdsBuf, p.cmd)
	}
	return c.cmdsBuf
}

// answerOps waits until the writes of the gathered ops (up to lsn) and
// those of the loop's round before (roundLSN, its held replies) are
// durable, then answers their commands.
func (c *conn) answerOps(lsn uint64, runErr error) {
	if runErr != nil {
		lsn = 0 // the ops answer runErr: none is acknowledged
	}
	c.answerRound(runErr, c.s.e.WaitDurable(max(lsn, c.roundLSN)))
}

// renderOps answers the commands of the gathered ops, run with runErr and
// made durable with durableErr, and forgets the ops.
func (c *conn) renderOps(runErr, durableErr error) {
	for _, p := range c.pending {
		op := &c.ops[p.at]
		opErr := op.Err
		switch {
		case runErr != nil:
			opErr = runErr // the chain could not run: nothing to report
		case durableErr == nil:
		case op.Kind != engine.OpGet && op.Err == nil:
			if op.Version == 0 { // a write whose LSN the op does not carry
				opErr = durableErr
			} else if err := c.notDurable(op.Version, durableErr); err != nil {
				opErr = err // applied, but not acknowledged as durable
			}
		default:
			if shown, ok := shownCommit(op); ok {
				if err := c.notDurable(shown, durableErr); err != nil {
					opErr = err // it shows a commit the disk never took
				}
			}
		}
		if opErr == nil && op.Kind == engine.OpGet && op.Type != engine.TypeString && p.kind != replyCount {
			opErr = errWrongType // GET, STRLEN of another type; EXISTS counts any
		}
		switch {
		case opErr == nil:
			switch p.kind {
			case replyValue:
				c.s.keyHits.Add(1)
				c.wr.Bulk(op.Value)
			case replyOK:
				c.wr.Simple("OK")
			case replyCount:
				c.wr.Int(1)
			case replyLength:
				c.wr.Int(int64(len(op.Value)))
			case replyInteger:
				n, _ := strconv.ParseInt(string(op.Value), 10, 64) // the chain's own digits
				c.wr.Int(n)
			}
		case errors.Is(opErr, engine.ErrNotFound):
			switch p.kind {
			case replyValue:
				c.s.keyMisses.Add(1)
				c.wr.Null()
			default:
				c.wr.Int(0)
			}
		default:
			c.s.statsOf(p.cmd).failed.Add(1)
			c.wr.Error(errorText(opErr))
		}
	}
	clear(c.ops) // drop references into the read arena
	c.ops = c.ops[:0]
	c.pending = c.pending[:0]
}

// runOps runs autocommit ops through the batcher. The batcher does not
// wait (engine.TrySubmit): a conflict with a long transaction or a
// checkpoint's closed gate (up to 200ms) is waited out here, as for
// transactions. The ops refused are a suffix of ops (nothing after a
// refused op runs; batcher.run), so re-running them keeps their order.
// It returns the LSN their replies rest on: the newest of their commits
// and of the commits their reads found (readLSN).
func (c *conn) runOps(ops []engine.Op) (uint64, error) {
	lsn, err := c.s.batch.do(ops)
	for try := 0; err == nil && try < txnRetries; try++ {
		i := slices.IndexFunc(ops, func(op engine.Op) bool { return retryable(op.Err) })
		if i < 0 {
			break
		}
		time.Sleep(jitter(try))
		var more uint64
		more, err = c.s.batch.do(ops[i:])
		lsn = max(lsn, more)
	}
	return max(lsn, readLSN(ops)), err
}

// readLSN is the newest commit the replies of ops show without having
// made it (shownCommit). With sync durability they wait for it as a
// write's reply waits for its own, so that no reply shows a write a crash
// could take back (Redis answers every client of an iteration after its
// fsync).
func readLSN(ops []engine.Op) uint64 {
	var lsn uint64
	for i := range ops {
		if shown, ok := shownCommit(&ops[i]); ok {
			lsn = max(lsn, shown)
		}
	}
	return lsn
}

// shownCommit is the commit an op's reply shows that is not its own
// write (engine.Op.Version): the value or the deletion a GET found, or
// the deletion a DEL found already made. ok is false for any other op.
func shownCommit(op *engine.Op) (lsn uint64, ok bool) {
	notFound := op.Err != nil && errors.Is(op.Err, engine.ErrNotFound)
	switch {
	case op.Kind == engine.OpGet && (op.Err == nil || notFound), op.Kind == engine.OpDelete && notFound:
		return op.Version, true
	}
	return 0, false
}

// errorText is the error reply for an engine error.
func errorText(err error) string {
	var verbatim replyError
	if errors.As(err, &verbatim) {
		return string(verbatim)
	}
	msg := strings.TrimPrefix(err.Error(), "bpfdb: ")
	if strings.HasPrefix(msg, "ERR ") || strings.HasPrefix(msg, "EXECABORT ") || strings.HasPrefix(msg, "WRONGTYPE ") {
		return msg
	}
	if errors.Is(err, engine.ErrWrongType) {
		return errWrongType.Error()
	}
	if errors.Is(err, engine.ErrLogUnavailable) || errors.Is(err, engine.ErrLogFull) {
		// Redis's answer when it cannot persist: writes refused, reads served.
		return "MISCONF " + msg
	}
	if errors.Is(err, engine.ErrStoreFull) {
		// Redis's answer when maxmemory is reached and nothing is evicted.
		return "OOM command not allowed when used memory > 'maxmemory': " + msg
	}
	return "ERR " + msg
}

func unknownCommand(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(printable(args[0]))
	b.WriteString("', with args beginning with: ")
	for i, a := range args[1:] {
		if i == 8 {
			break
		}
		b.WriteString("'" + printable(a) + "' ")
	}
	return b.String()
}

// printable shortens an argument for an error message.
func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, string(b))
}
