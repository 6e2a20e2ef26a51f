package server

// Client-side caching (CLIENT TRACKING), as Redis 6+ offers it: a client
// that tracks is told, by an "invalidate" push (RESP3) or a message on
// __redis__:invalidate to the client it redirects to (RESP2), of every key
// it read that is written after.
//
// Invariants, and why:
//
//   - Invalidations come from the engine's stream of committed writes
//     (engine.OnCommit, fed by the log drain), not from this server's
//     commands: so writes of MULTI/EXEC, of other servers on the engine,
//     of BPF programs through the kernel API and of the expirer all
//     invalidate. It needs the log: without --dir, CLIENT TRACKING ON is
//     refused, naming why.
//   - A read key is registered before the read runs: a write that commits
//     after the read's snapshot is then always reported (one that commits
//     before may be too: a spurious invalidation costs a re-read only).
//   - As in Redis's default mode, a key is forgotten once invalidated: the
//     client reads it again to be told again. BCAST clients register
//     prefixes instead, and hear of every matching key.
//   - Pushes go out between replies, never inside one: they are queued on
//     the connection (queuePush) and written by whoever owns it, the loop
//     (woken by pushReady) or its goroutine, at its next write. So the
//     reads of a MULTI are registered at EXEC, not when queued: a push
//     between a QUEUED reply and EXEC's would forget the key before EXEC
//     read it, and the client would cache what nobody tracks.
//   - A client that does not read its pushes is shut down once they pass
//     maxPushBuffer, as Redis does past its output buffer limit.

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// trackMode is a connection's CLIENT TRACKING state, under tracking.mu.
type trackMode struct {
	bcast, optin, optout bool
	redirect             *conn // RESP2: the client told instead (nil: this one)
	redirectID           int64
	prefixes             [][]byte
	keys                 map[string]struct{} // tracked for this client, in tracking.keys
}

// maxPushBuffer is how many bytes of pushes a client may leave unread.
const maxPushBuffer = 32 << 20

// tracking is the server's table of tracked keys and tracking clients.
type tracking struct {
	// active counts the tracking clients: with none, a commit's
	// invalidation takes no lock.
	active  atomic.Int32
	mu      sync.Mutex
	clients map[*conn]*trackMode
	keys    map[string]map[*conn]struct{} // default, OPTIN and OPTOUT reads
	bcast   map[*conn]*trackMode

	// pushReady holds the loop's connections with pushes queued.
	readyMu   sync.Mutex
	pushReady []*conn
}

// invalidateChannel is where a RESP2 client subscribes to hear of another
// client's invalidations (CLIENT TRACKING ... REDIRECT).
const invalidateChannel = "__redis__:invalidate"

// subscribedOK is what a RESP2 client may run once subscribed.
var subscribedOK = map[string]bool{"subscribe": true, "unsubscribe": true, "psubscribe": true, "punsubscribe": true,
	"ssubscribe": true, "sunsubscribe": true, "ping": true, "quit": true, "reset": true}

func trackingCommands() []*command {
	return []*command{
		{name: "subscribe", arity: -2, run: cmdSubscribe, flags: []string{"pubsub", "noscript", "loading", "stale"}},
		{name: "unsubscribe", arity: -1, run: cmdUnsubscribe, flags: []string{"pubsub", "noscript", "loading", "stale"}},
	}
}

// cmdSubscribe subscribes to __redis__:invalidate, where the clients that
// redirect here are told of invalidations: bpfdb has no other pub/sub.
func cmdSubscribe(c *conn, a [][]byte) {
	for _, ch := range a[1:] {
		if string(ch) != invalidateChannel {
			c.wr.Error("ERR bpfdb has no pub/sub: only " + invalidateChannel + " (CLIENT TRACKING ... REDIRECT) can be subscribed to")
			return
		}
	}
	for _, ch := range a[1:] {
		c.subscribed.Store(true)
		c.writePubSub("subscribe", ch, 1)
	}
}

// cmdUnsubscribe leaves __redis__:invalidate.
func cmdUnsubscribe(c *conn, a [][]byte) {
	was := c.subscribed.Swap(false)
	if was {
		c.s.dropRedirectsTo(c) // the clients redirecting here are told nothing more
	}
	if len(a) == 1 && !was {
		c.writePubSub("unsubscribe", nil, 0)
		return
	}
	for range max(len(a)-1, 1) {
		c.writePubSub("unsubscribe", []byte(invalidateChannel), 0)
	}
}

// writePubSub writes a (un)subscription's confirmation: a push in RESP3.
func (c *conn) writePubSub(kind string, channel []byte, count int64) {
	if c.resp3.Load() {
		c.wr.Raw([]byte(">3\r\n"))
	} else {
		c.wr.Array(3)
	}
	c.wr.BulkString(kind)
	if channel == nil {
		c.wr.Null()
	} else {
		c.wr.Bulk(channel)
	}
	c.wr.Int(count)
}

// startTracking subscribes the server to the engine's committed writes;
// false without a log.
func (s *Server) startTracking() bool {
	remove, ok := s.e.OnCommit(s.invalidate)
	if ok {
		s.stopTracking = remove
	}
	return ok
}

// track registers keys, read by c, when c tracks them.
func (s *Server) track(c *conn, keys [][]byte) {
	if !c.tracking.Load() {
		return
	}
	t := &s.tracking
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.clients[c]
	if m == nil || m.bcast || (m.optin && !c.cachingYes) || (m.optout && c.cachingNo) {
		return
	}
	if t.keys == nil {
		t.keys = map[string]map[*conn]struct{}{}
	}
	if m.keys == nil {
		m.keys = map[string]struct{}{}
	}
	for _, k := range keys {
		readers := t.keys[string(k)]
		if readers == nil {
			readers = map[*conn]struct{}{}
			t.keys[string(k)] = readers
		}
		readers[c] = struct{}{}
		m.keys[string(k)] = struct{}{}
	}
}

// invalidate tells the clients tracking key that it was written
// (engine.OnCommit: on the log drain's goroutine).
func (s *Server) invalidate(key []byte) {
	t := &s.tracking
	if t.active.Load() == 0 {
		return
	}
	t.mu.Lock()
	var told []*conn
	for c := range t.keys[string(key)] {
		m := t.clients[c]
		delete(m.keys, string(key))
		told = append(told, m.target(c))
	}
	delete(t.keys, string(key))
	for c, m := range t.bcast {
		if len(m.prefixes) == 0 || slices.ContainsFunc(m.prefixes, func(p []byte) bool { return bytes.HasPrefix(key, p) }) {
			told = append(told, m.target(c))
		}
	}
	t.mu.Unlock()
	for _, c := range told {
		if c != nil {
			s.queuePush(c, key)
		}
	}
}

// target is the connection that hears c's invalidations: c in RESP3, its
// redirect in RESP2 (nil: none, Redis drops them too).
func (m *trackMode) target(c *conn) *conn {
	if m == nil {
		return nil
	}
	if m.redirect != nil {
		return m.redirect
	}
	if c.resp3.Load() {
		return c
	}
	return nil
}

// queuePush queues an invalidation of key on c, rendered in its protocol,
// and has its owner write it.
func (s *Server) queuePush(c *conn, key []byte) {
	if c.gone.Load() {
		return
	}
	var b []byte
	switch {
	case c.resp3.Load(): // a RESP3 redirect target too, as Redis
		b = append(b, ">2\r\n$10\r\ninvalidate\r\n*1\r\n"...)
	case c.subscribed.Load():
		b = append(b, "*3\r\n$7\r\nmessage\r\n$20\r\n"+invalidateChannel+"\r\n*1\r\n"...)
	default:
		return // a RESP2 client that did not subscribe: nowhere to say it
	}
	b = append(strconv.AppendInt(append(b, '$'), int64(len(key)), 10), '\r', '\n')
	b = append(append(b, key...), '\r', '\n')
	c.pushMu.Lock()
	first := len(c.pushes) == 0
	c.pushes = append(c.pushes, b...)
	over := len(c.pushes) > maxPushBuffer
	c.pushMu.Unlock()
	if over {
		s.untrack(c)
		s.shutdownConn(c) // it does not read: as Redis past its output buffer limit
		return
	}
	if first {
		t := &s.tracking
		t.readyMu.Lock()
		t.pushReady = append(t.pushReady, c)
		t.readyMu.Unlock()
		s.loop.wake()
	}
}

// takePushes moves c's queued pushes into its replies; its owner calls it
// between replies, before writing.
func (c *conn) takePushes() {
	c.pushMu.Lock()
	if len(c.pushes) > 0 {
		c.wr.Raw(c.pushes)
		c.pushes = c.pushes[:0]
	}
	c.pushMu.Unlock()
}

// readyPushes returns, and forgets, the connections with pushes queued.
func (t *tracking) readyPushes() []*conn {
	t.readyMu.Lock()
	defer t.readyMu.Unlock()
	ready := t.pushReady
	t.pushReady = nil
	return ready
}

// untrack forgets c (CLIENT TRACKING OFF, or closed); clients that
// redirected to it are told nothing more.
func (s *Server) untrack(c *conn) {
	t := &s.tracking
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := t.clients[c]; m != nil {
		for k := range m.keys {
			readers := t.keys[k]
			delete(readers, c)
			if len(readers) == 0 {
				delete(t.keys, k)
			}
		}
		delete(t.clients, c)
		delete(t.bcast, c)
		t.active.Add(-1)
	}
	t.dropRedirectsTo(c)
	c.tracking.Store(false)
}

// dropRedirectsTo breaks the redirects to c (CLIENT TRACKINGINFO shows
// broken_redirect, as in Redis).
func (s *Server) dropRedirectsTo(c *conn) {
	t := &s.tracking
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropRedirectsTo(c)
}

func (t *tracking) dropRedirectsTo(c *conn) {
	for _, m := range t.clients {
		if m.redirect == c {
			m.redirect = nil
		}
	}
}

// clientTracking is CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]...
// [BCAST] [OPTIN] [OPTOUT]; it returns the error to answer ("" for OK).
func (c *conn) clientTracking(a [][]byte) string {
	switch strings.ToUpper(string(a[0])) {
	case "OFF":
		c.s.untrack(c)
		return ""
	case "ON":
	default:
		return errSyntax.Error()
	}
	if c.s.stopTracking == nil {
		return "ERR CLIENT TRACKING needs the store's log (bpfdb serve --dir): invalidations come from the committed writes it streams"
	}
	m := &trackMode{}
	for i := 1; i < len(a); i++ {
		switch opt := strings.ToUpper(string(a[i])); {
		case opt == "BCAST":
			m.bcast = true
		case opt == "OPTIN":
			m.optin = true
		case opt == "OPTOUT":
			m.optout = true
		case opt == "NOLOOP":
			return "ERR CLIENT TRACKING NOLOOP is not supported by bpfdb: a client is told of its own writes too"
		case (opt == "PREFIX" || opt == "REDIRECT") && i+1 < len(a):
			i++
			if opt == "PREFIX" {
				m.prefixes = append(m.prefixes, bytes.Clone(a[i]))
				continue
			}
			id, err := strconv.ParseInt(string(a[i]), 10, 64)
			if err != nil {
				return "ERR Invalid client ID"
			}
			m.redirectID = id
		default:
			return errSyntax.Error()
		}
	}
	switch {
	case m.optin && m.optout:
		return "ERR You can't use both OPTIN and OPTOUT."
	case m.bcast && (m.optin || m.optout):
		return "ERR OPTIN and OPTOUT are not compatible with BCAST."
	case len(m.prefixes) > 0 && !m.bcast:
		return "ERR PREFIX option requires BCAST mode to be enabled"
	}
	if m.redirectID != 0 && m.redirectID != c.id {
		for _, o := range c.s.connsByID() {
			if o.id == m.redirectID {
				m.redirect = o
			}
		}
		if m.redirect == nil {
			return "ERR The client ID you want redirect to does not exist"
		}
	}
	c.s.untrack(c)
	t := &c.s.tracking
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients == nil {
		t.clients, t.bcast = map[*conn]*trackMode{}, map[*conn]*trackMode{}
	}
	if m.redirect != nil && m.redirect.gone.Load() {
		return "ERR The client ID you want redirect to does not exist"
	}
	t.clients[c] = m
	if m.bcast {
		t.bcast[c] = m
	}
	t.active.Add(1)
	c.tracking.Store(true)
	return ""
}

// clientCaching is CLIENT CACHING YES|NO: whether the next command's reads
// are tracked, in OPTIN or OPTOUT mode.
func (c *conn) clientCaching(arg []byte) string {
	t := &c.s.tracking
	t.mu.Lock()
	m := t.clients[c]
	t.mu.Unlock()
	yes := strings.EqualFold(string(arg), "yes")
	switch {
	case !yes && !strings.EqualFold(string(arg), "no"):
		return errSyntax.Error()
	case m == nil || (!m.optin && !m.optout):
		return "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"
	case yes && !m.optin:
		return "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
	case !yes && !m.optout:
		return "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
	}
	c.cachingYes, c.cachingNo = yes, !yes
	c.cachingNext = true
	return ""
}

// trackingInfo answers CLIENT TRACKINGINFO.
func (c *conn) trackingInfo() {
	t := &c.s.tracking
	t.mu.Lock()
	m := t.clients[c]
	var flags []string
	redirect := int64(-1)
	var prefixes [][]byte
	if m == nil {
		flags = []string{"off"}
	} else {
		flags = []string{"on"}
		for _, f := range []struct {
			on   bool
			name string
		}{{m.bcast, "bcast"}, {m.optin, "optin"}, {m.optout, "optout"}, {c.cachingYes, "caching-yes"}, {c.cachingNo, "caching-no"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		redirect = m.redirectID
		if m.redirectID != 0 && m.redirect == nil {
			flags = append(flags, "broken_redirect")
		}
		if m.bcast {
			prefixes = m.prefixes
		}
	}
	t.mu.Unlock()
	c.wr.Map(3)
	c.wr.BulkString("flags")
	c.wr.Set(len(flags))
	for _, f := range flags {
		c.wr.BulkString(f)
	}
	c.wr.BulkString("redirect")
	c.wr.Int(redirect)
	c.wr.BulkString("prefixes")
	c.wr.Array(len(prefixes))
	for _, p := range prefixes {
		c.wr.Bulk(p)
	}
}

// getRedirect answers CLIENT GETREDIR: -1 when not tracking, 0 when
// telling this client itself.
func (c *conn) getRedirect() int64 {
	t := &c.s.tracking
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.clients[c]
	if m == nil {
		return -1
	}
	return m.redirectID
}
