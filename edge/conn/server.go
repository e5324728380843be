// Package accept is the accept loop shared by offedge's TCP forwards and
// tunnels, after ghostunnel's proxy: a concurrency limit taken before
// Accept (excess connections wait in the kernel backlog), backoff on
// temporary accept errors, tracking of every open connection, and a
// Shutdown that stops accepting, drains until a deadline, then closes what
// is left. It knows nothing of what a connection carries.
package conn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/offedge/offedge/edge/acl"
)

// Required refuses a zero or negative configuration value: the plan sets
// every value of a tunnel or forward (plan/defaults.go is the one table of
// defaults), so a zero here is a caller that skipped the plan, and the edge
// does not guess for it. field is the inventory name ("idle_timeout").
func Required[T ~int | ~int64](field string, v T) error {
	switch {
	case v == 0:
		return fmt.Errorf("%s is 0: the plan sets every value (plan/defaults.go)", field)
	case v < 0:
		return fmt.Errorf("%s %v is negative", field, v)
	}
	return nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server closed")

// Options configure a [Server].
type Options struct {
	// Kind and Name identify the server in errors and logs ("forward", "pmg-smtp").
	Kind, Name string
	// Logger receives accept errors; nil discards them.
	Logger *slog.Logger
	// MaxConns bounds concurrent connections; it must be positive.
	MaxConns int
	// MaxConnsPerClient bounds the concurrent connections of one client
	// address; zero means no per-client bound. A connection over it is
	// accepted and reset at once, so that one client cannot hold every
	// slot of MaxConns while the others wait in the backlog.
	MaxConnsPerClient int
	// Now is the clock of the rate-limited refusal log; nil means time.Now.
	Now func() time.Time
}

// Server runs accept loops and tracks connections. The zero value is not
// usable; call [New].
type Server struct {
	opts Options
	log  *slog.Logger
	lim  limiter

	perClient  atomic.Int64 // the current MaxConnsPerClient
	refused    atomic.Uint64
	refusedLog LogLimiter
	clientsMu  sync.Mutex
	clients    map[netip.Addr]int

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closing   bool
	done      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New returns a server; opts.MaxConns must be positive.
func New(opts Options) *Server {
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
		done:      make(chan struct{}),
		clients:   make(map[netip.Addr]int),
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	s.perClient.Store(int64(max(opts.MaxConnsPerClient, 0)))
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lim.max = max(opts.MaxConns, 1)
	return s
}

// Context is cancelled when Shutdown starts; use it as the parent of dials
// and handshakes so that they stop with the server.
func (s *Server) Context() context.Context { return s.ctx }

// SetMaxConns changes the concurrency limit for connections accepted from now on.
func (s *Server) SetMaxConns(n int) { s.lim.setMax(max(n, 1)) }

// SetLimits changes both limits for connections accepted from now on; a
// client already over a lowered per-client bound keeps its open
// connections.
func (s *Server) SetLimits(maxConns, perClient int) {
	s.perClient.Store(int64(max(perClient, 0)))
	s.lim.setMax(max(maxConns, 1))
}

// RefusedPerClient counts the connections reset because their client
// already had MaxConnsPerClient open.
func (s *Server) RefusedPerClient() uint64 { return s.refused.Load() }

// admit takes a per-client slot for c; it reports false when the client
// is at its bound. The slot is counted under the returned address, which
// leave gives back (the zero Addr when none was counted).
func (s *Server) admit(c net.Conn) (netip.Addr, bool) { return s.AdmitClient(ClientAddr(c)) }

// AdmitClient takes a per-client slot for a connection from ip (unmapped),
// for a caller that accepts connections itself (the forward's event loop);
// it reports false when the client is at its bound. The slot is counted
// under the returned address, which [Server.LeaveClient] gives back (the
// zero Addr when none was counted).
func (s *Server) AdmitClient(ip netip.Addr) (netip.Addr, bool) {
	limit := s.perClient.Load()
	if limit <= 0 || !ip.IsValid() {
		return netip.Addr{}, true
	}
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	if int64(s.clients[ip]) >= limit {
		return netip.Addr{}, false
	}
	s.clients[ip]++
	return ip, true
}

// LeaveClient gives back the per-client slot admit or AdmitClient counted
// under ip.
func (s *Server) LeaveClient(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	s.clientsMu.Lock()
	if s.clients[ip]--; s.clients[ip] <= 0 {
		delete(s.clients, ip)
	}
	s.clientsMu.Unlock()
}

// RefusedClient counts and logs (rate-limited) a connection from ip reset
// because its client is at MaxConnsPerClient; what is "connection" or
// "stream".
func (s *Server) RefusedClient(ip netip.Addr, what string) {
	s.refused.Add(1)
	if ok, n := s.refusedLog.Allow(s.opts.Now()); ok {
		s.log.Warn("client over its connection cap; "+what+" reset", "kind", s.opts.Kind, "name", s.opts.Name,
			"client", ip.String(), "max_conns_per_client", s.perClient.Load(), "suppressed_since_last", n)
	}
}

// TryAcquire takes one of MaxConns' slots if one is free, without waiting,
// for a caller that accepts connections itself; [Server.Release] gives it
// back. Shutdown does not wait for such slots: the caller drains its own.
func (s *Server) TryAcquire() bool { return s.lim.tryAcquire() }

// Release gives back a slot TryAcquire took.
func (s *Server) Release() { s.lim.release() }

// ClientAddr is the address a connection comes from, unmapped (an
// IPv4-mapped IPv6 client counts as its IPv4 address): the key of the
// per-client bound.
func ClientAddr(c net.Conn) netip.Addr { return acl.PeerAddr(c).Addr() }

// Serve accepts connections on ln and runs handle for each in its own
// goroutine, until Shutdown (ErrServerClosed) or a permanent accept error.
// The accepted connection is tracked and closed when handle returns.
func (s *Server) Serve(ln net.Listener, handle func(net.Conn)) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
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
		if !s.lim.acquire(s.done) {
			return ErrServerClosed
		}
		c, err := ln.Accept()
		if err != nil {
			s.lim.release()
			if s.isClosing() {
				return ErrServerClosed
			}
			if !Temporary(err) {
				return fmt.Errorf("%s %q: accept on %s: %w", s.opts.Kind, s.opts.Name, ln.Addr(), err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; backing off", "kind", s.opts.Kind, "name", s.opts.Name, "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		ip, ok := s.admit(c)
		if !ok {
			s.RefusedClient(ClientAddr(c), "connection")
			Abort(c)
			s.lim.release()
			continue
		}
		if !s.Track(c) {
			s.LeaveClient(ip)
			c.Close()
			s.lim.release()
			return ErrServerClosed
		}
		s.wg.Add(1)
		Go(func() {
			defer s.wg.Done()
			defer s.lim.release()
			defer s.LeaveClient(ip)
			defer s.UntrackClose(c)
			handle(c)
		})
	}
}

// ErrOverLimit is returned by ServeStream when max_conns connections are
// open; ErrClientOverLimit when the stream's client is at its own bound.
var (
	ErrOverLimit       = errors.New("max_conns reached")
	ErrClientOverLimit = errors.New("max_conns_per_client reached")
)

// ServeStream runs handle for c, a stream multiplexed over a connection
// this server accepted, as Serve runs it for an accepted connection: c
// takes a slot of MaxConns and one of its client's MaxConnsPerClient (a
// stream counts as a connection), is tracked, and is closed when handle
// returns; Shutdown waits for it. Unlike Serve it never waits for a slot:
// over a limit, or once Shutdown started, it returns an error at once and
// the caller resets the stream (its peer holds the session, not a backlog).
func (s *Server) ServeStream(c net.Conn, handle func(net.Conn)) error {
	if !s.lim.tryAcquire() {
		return ErrOverLimit
	}
	ip, ok := s.admit(c)
	if !ok {
		s.lim.release()
		s.RefusedClient(ClientAddr(c), "stream")
		return ErrClientOverLimit
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.LeaveClient(ip)
		s.lim.release()
		return ErrServerClosed
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	Go(func() {
		defer s.wg.Done()
		defer s.lim.release()
		defer s.LeaveClient(ip)
		defer s.UntrackClose(c)
		handle(c)
	})
	return nil
}

// Temporary reports whether an accept error is worth retrying after a pause
// (out of file descriptors or memory, an aborted connection, a timeout).
func Temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Track registers a connection (an upstream one, say) so that Shutdown can
// close it; it reports false when the server is shutting down, in which
// case the caller must close c itself.
func (s *Server) Track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// UntrackClose forgets and closes a tracked connection.
func (s *Server) UntrackClose(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// Shutdown stops the listeners, waits for the handlers to return until ctx
// is done, then closes every tracked connection, waits for the handlers and
// returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
		s.cancel()
	}
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-finished
	return ctx.Err()
}

// limiter is a counting semaphore whose size can change at run time.
type limiter struct {
	mu   sync.Mutex
	n    int
	max  int
	wake chan struct{}
}

func (l *limiter) acquire(done <-chan struct{}) bool {
	for {
		l.mu.Lock()
		if l.n < l.max {
			l.n++
			l.mu.Unlock()
			return true
		}
		if l.wake == nil {
			l.wake = make(chan struct{})
		}
		w := l.wake
		l.mu.Unlock()
		select {
		case <-w:
		case <-done:
			return false
		}
	}
}

// tryAcquire takes a slot if one is free, without waiting.
func (l *limiter) tryAcquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n < l.max {
		l.n++
		return true
	}
	return false
}

func (l *limiter) signalLocked() {
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	l.n--
	l.signalLocked()
	l.mu.Unlock()
}

func (l *limiter) setMax(m int) {
	l.mu.Lock()
	l.max = m
	l.signalLocked()
	l.mu.Unlock()
}
