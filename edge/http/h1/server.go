package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	edgeconn "github.com/offedge/offedge/edge/conn"
)

const (
	bufSize = 4 << 10
	// stageSize is how much of a response of unknown length is held back
	// to send it with a Content-Length (net/http's 2 KiB).
	stageSize = 2 << 10
	// maxDrain bounds what is read of a request body the handler left, to
	// keep the connection (net/http's 256 KiB).
	maxDrain = 256 << 10
)

// Config is what a [Server] runs with. The bounds have no defaults here:
// the plan's table (plan/defaults.go) sets every one, and [New] refuses a
// zero rather than fill in a second table's value.
type Config struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds the reading of a request head, from its
	// first byte, and a new connection's wait for that byte.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection's wait for the next
	// request.
	IdleTimeout time.Duration
	// MaxHeadBytes bounds a request head (request line and fields, with
	// line ends); a longer one gets 431.
	MaxHeadBytes int
	// ConnContext derives a connection's context (once per connection).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState is called as net/http's Server.ConnState: New, Active,
	// Idle, Hijacked, Closed.
	ConnState func(net.Conn, http.ConnState)
	// DisableGeneralOptionsHandler passes "OPTIONS *" to the handler
	// instead of answering it with 200 (net/http's field of that name).
	DisableGeneralOptionsHandler bool
	Logger                       *slog.Logger // nil: discarded
}

// Server serves HTTP/1.x on plain listeners ([Server.Serve]) and on
// connections handed over one by one ([Server.ServeConn], HTTP/1 over TLS).
type Server struct {
	cfg Config

	stats Stats

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	poll      *poller
	pollErr   error
	closing   atomic.Bool
	done      chan struct{} // closed by Shutdown/Close: stops the poller's sweeper
	date      atomic.Pointer[dateCache]
}

// Stats are the server's counters, read with atomic loads. They are the
// cheap hook for metrics: the hot path only adds to them.
type Stats struct {
	Accepted atomic.Uint64 // connections accepted or handed over
	Requests atomic.Uint64 // requests given to the handler
	Refused  atomic.Uint64 // request heads refused (4xx/5xx before the handler)
	Parked   atomic.Int64  // keep-alive connections parked without a goroutine
}

// Stats returns the server's live counters.
func (s *Server) Stats() *Stats { return &s.stats }

var errServerClosed = http.ErrServerClosed

func (s *Server) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
		s.listeners = make(map[net.Listener]struct{})
		s.done = make(chan struct{})
	}
}

// New checks cfg and returns a server for it: a handler, and every bound
// set (the plan sets them; a zero is a caller that skipped the plan).
func New(cfg Config) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("http/1 server: no handler")
	}
	for _, err := range []error{
		edgeconn.Required("read_header_timeout", cfg.ReadHeaderTimeout),
		edgeconn.Required("idle_timeout", cfg.IdleTimeout),
		edgeconn.Required("max_header_bytes", cfg.MaxHeadBytes),
	} {
		if err != nil {
			return nil, fmt.Errorf("http/1 server: %w", err)
		}
	}
	s := &Server{cfg: cfg}
	s.init()
	return s, nil
}

func (s *Server) rht() time.Duration  { return s.cfg.ReadHeaderTimeout }
func (s *Server) idle() time.Duration { return s.cfg.IdleTimeout }
func (s *Server) maxHead() int        { return s.cfg.MaxHeadBytes }

func (s *Server) logger() *slog.Logger {
	if s.cfg.Logger != nil {
		return s.cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Serve accepts connections on ln until Shutdown or Close (then it
// returns http.ErrServerClosed) or until ln fails.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return errServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return errServerClosed
			}
			if edgeconn.Temporary(err) { // out of descriptors, aborted: back off
				delay = max(5*time.Millisecond, min(2*delay, time.Second))
				s.logger().Warn("http/1 accept failed; backing off", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
					continue
				case <-s.done:
					return errServerClosed
				}
			}
			return err
		}
		delay = 0
		c := s.newConn(nc, nil)
		if c == nil {
			continue
		}
		if raw := rawConnOf(nc); raw != nil {
			if p := s.poller(); p != nil {
				c.raw = raw
				if err := p.add(c); err == nil {
					s.dispatch(c)
					continue
				}
				c.raw = nil
			}
		}
		s.dispatch(c)
	}
}

// dispatch serves c on a worker of the process's pool (edgeconn.Go, shared
// with tunnels and forwards). Workers outlive the connections they serve:
// a fresh goroutine per request would grow its stack again each time
// (copying it, at a cost the profile shows above the whole parse), while a
// worker keeps the stack it grew. There are as many busy workers as
// requests in flight, not as connections; idle ones exit after a while.
func (s *Server) dispatch(c *conn) { edgeconn.Go(c.run) }

// ServeConn serves HTTP/1 on one connection (a TLS connection that chose
// http/1.1 by ALPN) in the calling goroutine, until it closes. tlsState is
// what Request.TLS carries.
func (s *Server) ServeConn(nc net.Conn, tlsState *tls.ConnectionState) {
	s.init()
	c := s.newConn(nc, tlsState)
	if c == nil {
		return
	}
	// The socket under the records goes into the poller for hang-ups
	// alone: no wake-up per request, one when the client leaves, and a
	// request in flight then is cancelled (as on a plain connection).
	if raw := socketOf(nc); raw != nil {
		if p := s.poller(); p != nil {
			c.watch = raw
			if p.watchHangUp(c) != nil {
				c.watch = nil
			}
		}
	}
	c.loop()
}

func (s *Server) newConn(nc net.Conn, tlsState *tls.ConnectionState) *conn {
	c := &conn{srv: s, nc: nc, tlsState: tlsState, remoteAddr: nc.RemoteAddr().String(), fd: -1}
	c.run = c.loop
	c.src.c = c
	c.out.c = c
	ctx := context.Background()
	if s.cfg.ConnContext != nil {
		ctx = s.cfg.ConnContext(ctx, nc)
	}
	c.ctx = ctx
	c.deadline.Store(time.Now().Add(s.rht()).UnixNano())
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		nc.Close()
		return nil
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.stats.Accepted.Add(1)
	if s.cfg.ConnState != nil {
		s.cfg.ConnState(nc, http.StateNew)
	}
	return c
}

func (s *Server) poller() *poller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poll == nil && s.pollErr == nil {
		s.poll, s.pollErr = newPoller(s)
		if s.pollErr != nil {
			s.logger().Warn("http/1 server: no readiness poller, idle connections keep a goroutine", "err", s.pollErr)
		}
	}
	return s.poll
}

// socketOf returns the raw socket under nc and the connections that wrap
// it (a TLS connection, edge wrappers), nil when there is none.
func socketOf(nc net.Conn) syscall.RawConn { return rawConnOf(edgeconn.Innermost(nc)) }

// rawConnOf returns the raw socket of a plain TCP connection (or of a
// wrapper that exposes it), nil for anything else (TLS).
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish (their connections then close) and returns when none is
// left or when ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	wait := time.Millisecond
	for {
		if s.closeIdle() == 0 {
			s.closePoller()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 100*time.Millisecond)
			t.Reset(wait)
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.init()
	s.stop()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.state.Store(stateClosed)
		c.nc.Close()
		// A handler waiting on something else than the client (an idle
		// upstream) learns it from its context, as with net/http, whose
		// background read fails on the closed connection.
		c.cancelInFlight()
		c.forget(http.StateClosed)
	}
	s.closePoller()
	return nil
}

// stop closes the listeners. The poller stays while requests are in
// flight: it is what sees their clients hang up (a drain would otherwise
// wait for its deadline on a stream whose client left).
func (s *Server) stop() {
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.done)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
}

func (s *Server) closePoller() {
	s.mu.Lock()
	p := s.poll
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
}

// closeIdle closes the parked connections and returns how many remain.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	var idle []*conn
	for c := range s.conns {
		if c.state.Load() == stateParked {
			idle = append(idle, c)
		}
	}
	n := len(s.conns)
	s.mu.Unlock()
	for _, c := range idle {
		if c.state.CompareAndSwap(stateParked, stateClosed) {
			c.closeNow()
			n--
		}
	}
	return n
}

// Connection states. A connection is active while a goroutine owns it,
// pending when readiness was reported while it was active (the goroutine
// looks again before parking), parked when only the poller knows it.
const (
	stateActive int32 = iota
	statePending
	stateParked
	stateClosed
)

type conn struct {
	srv *Server
	run func() // c.loop as a func value, made once: dispatch allocates nothing
	nc  net.Conn
	raw syscall.RawConn // nil: not parked on the poller (TLS, or no poller)
	// watch is the socket under a TLS connection, in the poller for its
	// hang-up only (raw is nil then); fd is the poller's key of either.
	watch      syscall.RawConn
	fd         int
	tlsState   *tls.ConnectionState
	remoteAddr string
	ctx        context.Context
	src        source
	out        connWriter // what the exchange's write buffer writes to
	state      atomic.Int32
	deadline   atomic.Int64 // unix ns: a parked connection is closed after it
	lastPOST   bool         // the last request was a POST: skip stray CRLF
	// rdl is set while a read deadline may be on nc (set through
	// setReadDeadline): a head read from the buffer needs none, and
	// clearing one that is not there costs a timer update.
	rdl atomic.Bool

	// hup is set once the poller reported a hang-up (FIN, reset): no new
	// readiness edge will come for it, so it is remembered, and a request
	// that starts (or finishes reading its body) after it looks whether
	// the client is gone.
	hup atomic.Bool

	mu       sync.Mutex
	inFlight canceler // cancelled on hang-up while a request is served
}

// source is the reader behind the connection's bufio.Reader: a
// non-blocking read straight on the socket when nonblock is set (to see
// whether a request is there without waiting), the connection otherwise.
type source struct {
	c        *conn
	nonblock bool
	// drained is set when the last read took fewer bytes than it had
	// room for: the socket was empty then, and a byte that comes later
	// raises a readiness edge on the poller (epoll reports every arrival).
	// The loop then parks without the read that would find nothing (one
	// syscall per request; nginx clears rev->ready the same way).
	drained bool
	// The raw read's arguments and results, and the method value bound
	// once per connection, so that a non-blocking read allocates nothing.
	p    []byte
	n    int
	err  error
	read func(fd uintptr) bool
}

var errWouldBlock = errors.New("h1: would block")

// rawRead is one recvfrom, made without the scheduler's system call
// bookkeeping (edge/conn.Recv: the socket is non-blocking).
func (s *source) rawRead(fd uintptr) bool {
	var e syscall.Errno
	s.n, e = edgeconn.Recv(fd, s.p)
	if e != 0 {
		s.err = e
	}
	return true
}

func (s *source) Read(p []byte) (int, error) {
	if !s.nonblock || s.c.raw == nil {
		n, err := s.c.nc.Read(p)
		s.drained = err == nil && n < len(p)
		return n, err
	}
	if s.read == nil {
		s.read = s.rawRead
	}
	s.p = p
	rerr := s.c.raw.Read(s.read)
	n, err := s.n, s.err
	s.p, s.err = nil, nil
	switch {
	case rerr != nil:
		return 0, rerr
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	s.drained = n < len(p)
	return n, nil
}

// exchange is what a connection holds only while a request is in flight:
// buffers, the parsed head, the response state. Pooled.
type exchange struct {
	br     *bufio.Reader
	bw     *bufio.Writer
	h      head
	tmpl   http.Request
	res    response
	body   body
	stage  []byte
	hbuf   []byte      // the response head being written
	resHdr http.Header // the response's header map, cleared between requests
	te     []string
}

var exchangePool = sync.Pool{New: func() any {
	x := &exchange{stage: make([]byte, 0, stageSize), hbuf: make([]byte, 0, 512), te: []string{"chunked"}}
	x.h.reset()
	return x
}}

func (c *conn) getExchange() *exchange {
	x := exchangePool.Get().(*exchange)
	if x.br == nil {
		x.br = bufio.NewReaderSize(&c.src, bufSize)
		x.bw = bufio.NewWriterSize(&c.out, bufSize)
	} else {
		x.br.Reset(&c.src)
		x.bw.Reset(&c.out)
	}
	return x
}

func putExchange(x *exchange) {
	if x.br != nil {
		x.br.Reset(nil)
		x.bw.Reset(nil)
	}
	x.h.reset()
	x.tmpl = http.Request{}
	x.res = response{}
	x.body = body{}
	x.stage = x.stage[:0]
	x.hbuf = x.hbuf[:0]
	x.te = x.te[:1]
	x.te[0] = "chunked"
	exchangePool.Put(x)
}

// loop serves requests on c while they come, and returns when c is parked
// (no request waiting), closed or hijacked.
func (c *conn) loop() {
	x := c.getExchange()
	first := true
	for {
		if x.br.Buffered() == 0 {
			if x.bw.Buffered() > 0 {
				if err := x.bw.Flush(); err != nil {
					c.closeWith(x)
					return
				}
			}
			if c.raw != nil {
				// A drained socket is parked without a read, unless a
				// hang-up was reported: no edge comes after it, the read
				// finds the EOF.
				err := errWouldBlock
				parkUnread := c.src.drained && !c.hup.Load()
				c.src.drained = false // woken or pending: the next look reads
				if !parkUnread {
					c.src.nonblock = true
					_, err = x.br.Peek(1)
					c.src.nonblock = false
				}
				if err == errWouldBlock {
					putExchange(x)
					if c.park(first) {
						return
					}
					x = c.getExchange()
					continue
				}
				if err != nil {
					c.closeWith(x)
					return
				}
			} else if !c.waitBlocking(x, first) {
				return
			}
		}
		first = false
		if !c.serveRequest(x) {
			return
		}
	}
}

// park hands c to the poller. It reports false when readiness came while c
// was active: the caller looks again.
func (c *conn) park(fresh bool) bool {
	d := c.srv.idle()
	if fresh {
		d = c.srv.rht()
	}
	c.deadline.Store(time.Now().Add(d).UnixNano())
	if c.srv.closing.Load() {
		c.state.Store(stateClosed)
		c.closeNow()
		return true
	}
	if !fresh && c.srv.cfg.ConnState != nil {
		c.srv.cfg.ConnState(c.nc, http.StateIdle)
	}
	c.srv.stats.Parked.Add(1)
	if c.state.CompareAndSwap(stateActive, stateParked) {
		return true
	}
	c.srv.stats.Parked.Add(-1)
	c.state.Store(stateActive) // was pending
	return false
}

// wake is the poller's report that c is readable (or hung up).
func (c *conn) wake(hup bool) {
	if c.raw == nil {
		// A TLS connection's own goroutine reads it; the poller
		// reports only its hang-up.
		if hup {
			c.hup.Store(true)
			c.checkGone()
		}
		return
	}
	if hup {
		// Before the state: a connection woken from parked with its
		// request and a FIN in one edge sees the flag when its request
		// starts.
		c.hup.Store(true)
	}
	for {
		switch c.state.Load() {
		case stateParked:
			if c.state.CompareAndSwap(stateParked, stateActive) {
				c.srv.stats.Parked.Add(-1)
				c.srv.dispatch(c)
				return
			}
		case stateActive:
			if hup {
				c.checkGone()
			}
			if c.state.CompareAndSwap(stateActive, statePending) {
				return
			}
		case statePending:
			if hup {
				c.checkGone()
			}
			return
		default:
			return
		}
	}
}

// expire closes c if it is parked and its deadline passed.
func (c *conn) expire(now int64) {
	if c.state.Load() == stateParked && c.deadline.Load() < now && c.state.CompareAndSwap(stateParked, stateClosed) {
		c.srv.stats.Parked.Add(-1)
		c.closeNow()
	}
}

// waitBlocking waits for the next request on a connection the poller does
// not know, with the idle (or, first, the header) timeout.
func (c *conn) waitBlocking(x *exchange, fresh bool) bool {
	d := c.srv.idle()
	if fresh {
		d = c.srv.rht()
	} else if c.srv.cfg.ConnState != nil {
		c.srv.cfg.ConnState(c.nc, http.StateIdle)
	}
	if c.srv.closing.Load() || !c.state.CompareAndSwap(stateActive, stateParked) {
		c.closeWith(x)
		return false
	}
	c.setReadDeadline(time.Now().Add(d))
	_, err := x.br.Peek(1)
	if !c.state.CompareAndSwap(stateParked, stateActive) || err != nil {
		c.state.Store(stateClosed)
		c.closeWith(x)
		return false
	}
	return true
}

// cancelInFlight cancels the request in flight, if any.
func (c *conn) cancelInFlight() {
	c.mu.Lock()
	if c.inFlight != nil {
		c.inFlight.cancel()
	}
	c.mu.Unlock()
}

// checkGone cancels the request in flight when the client is gone: the
// socket holds no byte more and reads end of stream or a reset. Bytes
// still pending (a body not read yet, a pipelined request) come before
// the hang-up: then the request is left alone, and the end of its body
// looks again (as net/http starts its background read there).
func (c *conn) checkGone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight != nil && c.peerGone() {
		c.inFlight.cancel()
	}
}

// peerGone peeks at the socket without blocking: true on end of stream or
// an error other than "nothing yet".
func (c *conn) peerGone() bool {
	if c.raw == nil {
		// TLS: the bytes on the socket are records its goroutine owns
		// (a close_notify comes before the FIN), so a reported hang-up
		// is taken as the client gone, as nginx takes a pending end of
		// stream on any connection.
		return c.watch != nil && c.hup.Load()
	}
	gone := false
	var b [1]byte
	// Control, not Read: a handler blocked reading the body holds the
	// descriptor's read lock.
	_ = c.raw.Control(func(fd uintptr) {
		for {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EINTR {
				continue
			}
			gone = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN)
			return
		}
	})
	return gone
}

// setInFlight records the cancellation of the request starting (nil when
// it ended). A request starting after a hang-up was reported looks at
// once: no readiness edge will come for it.
func (c *conn) setInFlight(f canceler) {
	c.mu.Lock()
	c.inFlight = f
	c.mu.Unlock()
	if f != nil && c.hup.Load() {
		c.checkGone()
	}
}

// closeWith flushes what is buffered, closes c and releases x.
func (c *conn) closeWith(x *exchange) {
	if x != nil {
		if x.bw != nil && x.bw.Buffered() > 0 {
			_ = x.bw.Flush()
		}
		putExchange(x)
	}
	c.state.Store(stateClosed)
	c.closeNow()
}

func (c *conn) closeNow() {
	c.nc.Close()
	c.forget(http.StateClosed)
}

// forget removes c from the server and the poller.
func (c *conn) forget(st http.ConnState) {
	s := c.srv
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	p := s.poll
	s.mu.Unlock()
	if !ok {
		return
	}
	if p != nil && (c.raw != nil || c.watch != nil) {
		p.remove(c, st == http.StateHijacked)
	}
	if s.cfg.ConnState != nil {
		s.cfg.ConnState(c.nc, st)
	}
}

// closeWriteAndWait sends FIN and reads what the client still sends for a
// moment, so that a refusal is read before a reset destroys it (net/http's
// rstAvoidanceDelay).
func (c *conn) closeWriteAndWait(x *exchange) {
	_ = x.bw.Flush()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		c.setReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
	}
	c.closeWith(x)
}

// refuse answers a request head that does not reach the handler, worded
// as net/http words it, and closes the connection.
func (c *conn) refuse(x *exchange, e *statusError) {
	c.srv.stats.Refused.Add(1)
	const hdrs = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	msg := make([]byte, 0, 64)
	msg = appendInt(msg, int64(e.code))
	msg = append(msg, ' ')
	msg = append(msg, http.StatusText(e.code)...)
	if e.detail {
		msg = append(msg, ": "...)
		msg = append(msg, e.text...)
	}
	b := x.hbuf[:0]
	b = append(b, "HTTP/1.1 "...)
	b = append(b, msg...)
	b = append(b, hdrs...)
	if e.code == http.StatusNotImplemented {
		b = append(b, "Unsupported transfer encoding"...)
	} else {
		b = append(b, msg...)
	}
	x.hbuf = b
	_, _ = x.bw.Write(b)
	if e.code == http.StatusRequestHeaderFieldsTooLarge {
		c.closeWriteAndWait(x)
		return
	}
	c.closeWith(x)
}

// setReadDeadline sets nc's read deadline and notes whether one is set.
func (c *conn) setReadDeadline(t time.Time) error {
	c.rdl.Store(!t.IsZero())
	return c.nc.SetReadDeadline(t)
}

// readHead reads until a whole request head is buffered and returns it
// (still in the reader's buffer, or in a larger copy for a head longer
// than the buffer), with the count of bytes to discard after parsing.
// Before it waits for more bytes it sets the header timeout (a head that
// came whole, the common case, costs no deadline).
func (c *conn) readHead(x *exchange) ([]byte, int, error) {
	br := x.br
	armed := false
	arm := func() {
		if !armed {
			armed = true
			c.setReadDeadline(time.Now().Add(c.srv.rht()))
		}
	}
	if c.lastPOST {
		// RFC 9112 2.2 tolerance of a CRLF after a POST body, as net/http.
		if p, _ := br.Peek(min(4, max(br.Buffered(), 1))); len(p) > 0 {
			n := 0
			for n < len(p) && (p[n] == '\r' || p[n] == '\n') {
				n++
			}
			_, _ = br.Discard(n)
		}
	}
	resume := 0
	limit := c.srv.maxHead()
	for {
		b, _ := br.Peek(br.Buffered())
		end, next, err := findHeadEnd(b, resume)
		if err != nil {
			return nil, 0, err
		}
		if end >= 0 {
			if end > limit {
				return nil, 0, errTooLarge
			}
			return b[:end], end, nil
		}
		resume = next
		if len(b) > limit {
			return nil, 0, errTooLarge
		}
		arm()
		if len(b) == br.Size() {
			return c.readBigHead(x, limit)
		}
		if _, err := br.Peek(len(b) + 1); err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if len(b) == 0 {
				return nil, 0, err
			}
			if br.Buffered() == len(b) {
				return nil, 0, headReadError{err}
			}
		}
	}
}

// headReadError is a read error after part of a head came: net/http
// answers 400 to it unless it is a timeout.
type headReadError struct{ err error }

func (e headReadError) Error() string { return e.err.Error() }
func (e headReadError) Unwrap() error { return e.err }

// readBigHead reads a head longer than the read buffer into its own
// slice, up to limit bytes.
func (c *conn) readBigHead(x *exchange, limit int) ([]byte, int, error) {
	br := x.br
	big := make([]byte, 0, 2*br.Size())
	resume := 0
	for {
		b, _ := br.Peek(br.Buffered())
		big = append(big, b...)
		_, _ = br.Discard(len(b))
		end, next, err := findHeadEnd(big, resume)
		if err != nil {
			return nil, 0, err
		}
		if end >= 0 {
			if end > limit {
				return nil, 0, errTooLarge
			}
			// Give back what follows the head to the reader: it is the
			// body. The reader is empty, so a fresh one over the rest
			// and the connection keeps the bytes in order.
			rest := big[end:]
			if len(rest) > 0 {
				x.br = bufio.NewReaderSize(io.MultiReader(newBytesReader(rest), &c.src), bufSize)
			}
			return big[:end], 0, nil
		}
		resume = next
		if len(big) > limit {
			return nil, 0, errTooLarge
		}
		if _, err := br.Peek(1); err != nil {
			return nil, 0, headReadError{err}
		}
	}
}

type bytesReader struct{ b []byte }

func newBytesReader(b []byte) *bytesReader { return &bytesReader{b: b} }

func (r *bytesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// serveRequest reads one request, runs the handler and finishes the
// response. It reports whether the connection stays open for another.
func (c *conn) serveRequest(x *exchange) bool {
	s := c.srv
	raw, discard, err := c.readHead(x)
	if err != nil {
		var se *statusError
		var he headReadError
		switch {
		case errors.As(err, &se):
			if s.cfg.ConnState != nil {
				s.cfg.ConnState(c.nc, http.StateActive)
			}
			c.refuse(x, se)
		case errors.As(err, &he) && !isTimeout(he.err) && !errors.Is(he.err, net.ErrClosed):
			if s.cfg.ConnState != nil {
				s.cfg.ConnState(c.nc, http.StateActive)
			}
			c.refuse(x, errMalformed)
		default:
			c.closeWith(x)
		}
		return false
	}
	if s.cfg.ConnState != nil {
		s.cfg.ConnState(c.nc, http.StateActive)
	}
	h := &x.h
	h.reset()
	perr := h.parse(string(raw))
	if discard > 0 {
		_, _ = x.br.Discard(discard)
	}
	if perr != nil {
		var se *statusError
		if !errors.As(perr, &se) {
			se = errMalformed
		}
		c.refuse(x, se)
		return false
	}
	c.lastPOST = h.method == http.MethodPost
	if c.rdl.Load() {
		c.setReadDeadline(time.Time{})
	}
	s.stats.Requests.Add(1)

	r := &x.tmpl
	*r = http.Request{
		Method:        h.method,
		URL:           &h.url,
		Proto:         h.proto,
		ProtoMajor:    h.major,
		ProtoMinor:    h.minor,
		Header:        h.header,
		ContentLength: h.contentLength,
		Close:         h.close,
		Host:          h.host,
		Trailer:       h.trailer,
		RemoteAddr:    c.remoteAddr,
		RequestURI:    h.target,
		TLS:           c.tlsState,
		Body:          http.NoBody,
	}
	w := &x.res
	if x.resHdr == nil {
		x.resHdr = make(http.Header, 8)
	} else {
		clear(x.resHdr)
	}
	*w = response{c: c, x: x, req: r, contentLength: -1, header: x.resHdr, trailers: w.trailers[:0]}
	if h.chunked {
		r.TransferEncoding = x.te
	}
	if h.chunked || h.contentLength > 0 {
		x.body = body{x: x, remain: h.contentLength, chunked: h.chunked, expect: h.expectContinue}
		if h.chunked {
			x.body.cr = newChunkedReader(x.br)
		}
		r.Body = &x.body
	}
	var ctx context.Context
	var cancel canceler
	if c.ctx.Done() == nil { // the connection's context is never cancelled
		rc := &reqCtx{parent: c.ctx}
		ctx, cancel = rc, rc
	} else {
		cctx, f := context.WithCancel(c.ctx)
		ctx, cancel = cctx, cancelFunc(f)
	}
	req := r.WithContext(ctx)
	w.req = req
	c.setInFlight(cancel)
	var hijacked, panicked bool
	if h.method == http.MethodOptions && h.target == "*" && !s.cfg.DisableGeneralOptionsHandler {
		// "OPTIONS *" asks about the server, not a resource: answered
		// here, as net/http does.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	} else {
		hijacked, panicked = c.runHandler(w, req)
	}
	c.setInFlight(nil)
	cancel.cancel()
	if hijacked {
		w.released()
		x.br, x.bw = nil, nil // the handler owns them now
		putExchange(x)
		return false
	}
	if panicked {
		w.released() // before closeWith gives the exchange (and w) back
		c.closeWith(x)
		return false
	}
	if !w.finish() {
		return false
	}
	// A read deadline the handler set (http.ResponseController) is its
	// request's: the wait for the next one has its own bounds.
	if c.rdl.Load() {
		c.setReadDeadline(time.Time{})
	}
	return true
}

// runHandler calls the handler and reports whether it hijacked the
// connection or panicked (then the caller closes the connection after
// flushing what was written, so that a cut response stays cut, as
// net/http).
func (c *conn) runHandler(w *response, r *http.Request) (hijacked, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				c.srv.logger().Error("http: panic serving request", "peer", c.remoteAddr, "panic", p)
			}
			hijacked, panicked = w.hijacked, true
		}
	}()
	c.srv.cfg.Handler.ServeHTTP(w, r)
	return w.hijacked, false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
