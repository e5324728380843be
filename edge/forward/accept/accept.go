// Package accept is the accept loop shared by offedge's TCP forwards and
// tunnels, after ghostunnel's proxy: a concurrency limit taken before
// Accept (excess connections wait in the kernel backlog), backoff on
// temporary accept errors, tracking of every open connection, and a
// Shutdown that stops accepting, drains until a deadline, then closes what
// is left. It knows nothing of what a connection carries.
package accept

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

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
}

// Server runs accept loops and tracks connections. The zero value is not
// usable; call [New].
type Server struct {
	opts Options
	log  *slog.Logger
	lim  limiter

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
	}
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
		if !s.Track(c) {
			c.Close()
			s.lim.release()
			return ErrServerClosed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.lim.release()
			defer s.UntrackClose(c)
			handle(c)
		}()
	}
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

// LogLimiter lets at most one line per interval through for noisy events
// (handshake failures from scanners), counting the ones it suppresses. The
// zero value allows one line per second.
type LogLimiter struct {
	// Every is the minimum interval between two lines; zero means 1s.
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether a line may be logged at now, and how many lines were
// suppressed since the last one allowed.
func (l *LogLimiter) Allow(now time.Time) (bool, int) {
	every := l.Every
	if every <= 0 {
		every = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed = 0
	l.last = now
	return true, n
}

// CounterIdle measures idleness by watching a byte counter.
func CounterIdle(moved *atomic.Uint64, now func() time.Time) func() time.Duration {
	last, since := moved.Load(), now()
	return func() time.Duration {
		if m := moved.Load(); m != last {
			last, since = m, now()
		}
		return now().Sub(since)
	}
}

// WatchIdle calls expire once idleFor reports at least idle. It checks every
// quarter of idle, so a connection is closed between idle and 1.25×idle
// after its last byte. The returned function stops the watch.
func WatchIdle(idle time.Duration, idleFor func() time.Duration, expire func()) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	step := max(idle/4, time.Millisecond)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if idleFor() >= idle {
			stopped = true
			expire()
			return
		}
		t.Reset(step)
	}
	mu.Lock()
	t = time.AfterFunc(step, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
