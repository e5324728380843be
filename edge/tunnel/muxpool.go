package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/xtaci/smux"

	"github.com/offedge/offedge/edge/conn"
)

// Entrance session pool settings.
const (
	// maxSessions bounds the sessions of one entrance: clients are spread
	// over min(GOMAXPROCS, maxSessions) sessions, since each session
	// encrypts on one goroutine per direction.
	maxSessions = 4
	// legacyRecheck is how long an entrance whose exit did not take
	// MuxALPN dials one connection per client before offering it again.
	legacyRecheck = time.Minute
	// A session dial that fails (or a session that dies within
	// shortLived) makes the next clients of that slot fail at once for a
	// backoff of backoffMin doubling up to backoffMax, instead of each
	// trying every exit again.
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
	shortLived = time.Second
)

// A session to a later exit of the list (a failover) is drained once it is
// failbackAfter old, so that new clients try the first exits again, as
// each new connection did without sessions. A variable for tests.
var failbackAfter = 30 * time.Second

// errSessionFull says a session already carries MuxMaxStreams streams.
var errSessionFull = errors.New("tunnel session full")

// muxPool holds an entrance state's sessions to its exit.
type muxPool struct {
	e  *Entrance
	st *entranceState

	mu      sync.Mutex
	slots   []muxSlot
	next    int
	retired bool
}

type muxSlot struct {
	s           *session
	dialing     chan struct{} // closed when the dial in flight ends
	failures    int
	retryAt     time.Time
	legacyUntil time.Time
}

func newMuxPool(e *Entrance, st *entranceState) *muxPool {
	n := min(runtime.GOMAXPROCS(0), maxSessions)
	return &muxPool{e: e, st: st, slots: make([]muxSlot, n)}
}

func backoff(failures int) time.Duration {
	d := backoffMin
	for i := 1; i < failures && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// open returns the connection that carries one client to the exit: a
// stream of a session (dialing the session if its slot has none), or,
// when the exit does not multiplex, a TLS connection of its own.
func (p *muxPool) open(ctx context.Context, log *slog.Logger) (net.Conn, error) {
	for range 3 {
		p.mu.Lock()
		i := p.next % len(p.slots)
		p.next++
		sl := &p.slots[i]
		now := p.e.opts.Now()
		switch {
		case p.retired:
			// A reload swapped the state after this client loaded it.
			p.mu.Unlock()
			return p.e.connect(ctx, p.st, p.st.tls, log)
		case sl.s != nil && sl.s.isUsable() && sl.s.exit > 0 && now.Sub(sl.s.born) >= failbackAfter:
			// Drain the failover session and dial again from the first exit.
			s := sl.s
			sl.s = nil
			p.mu.Unlock()
			s.drain()
			continue
		case sl.s != nil && sl.s.isUsable():
			s := sl.s
			p.mu.Unlock()
			ms, err := p.openStream(s)
			switch {
			case err == nil:
				return ms, nil
			case errors.Is(err, errSessionFull):
				return p.e.connect(ctx, p.st, p.st.tls, log)
			}
			p.forget(i, s)
			continue
		case now.Before(sl.legacyUntil):
			p.mu.Unlock()
			return p.e.connect(ctx, p.st, p.st.tls, log)
		case now.Before(sl.retryAt):
			wait := sl.retryAt.Sub(now)
			p.mu.Unlock()
			return nil, fmt.Errorf("tunnel %q: the last session to the exits failed; retrying in %s", p.st.cfg.Name, wait.Round(time.Millisecond))
		case sl.dialing != nil:
			ch := sl.dialing
			p.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		ch := make(chan struct{})
		sl.dialing = ch
		p.mu.Unlock()

		s, legacy, err := p.dial(ctx, log)

		p.mu.Lock()
		sl.dialing = nil
		close(ch)
		switch {
		case err != nil:
			sl.failures++
			sl.retryAt = now.Add(backoff(sl.failures))
			p.mu.Unlock()
			return nil, err
		case legacy != nil:
			sl.legacyUntil = now.Add(legacyRecheck)
			p.mu.Unlock()
			log.Info("exit does not multiplex; one TLS connection per client", "exit", legacy.RemoteAddr().String(), "recheck", legacyRecheck)
			return legacy, nil
		}
		sl.failures = 0
		sl.s = s
		retired := p.retired
		p.mu.Unlock()
		p.e.srv.c.sessions.Add(1)
		go p.watch(i, s)
		ms, err := p.openStream(s)
		if retired {
			s.drain()
		}
		if err == nil {
			return ms, nil
		}
	}
	return nil, fmt.Errorf("tunnel %q: %w", p.st.cfg.Name, errSessionGone)
}

// openStream opens a stream on s.
func (p *muxPool) openStream(s *session) (*stream, error) {
	st, err := s.mux.OpenStream()
	if err != nil {
		return nil, errSessionGone
	}
	ms, ok := s.register(st)
	if !ok {
		st.Close()
		if s.isUsable() {
			return nil, errSessionFull
		}
		return nil, errSessionGone
	}
	p.e.srv.c.streams.Add(1)
	return ms, nil
}

// dial connects to the first exit that answers and, if it takes
// MuxALPN, starts a session on that connection; otherwise the connection
// is returned as legacy, for this client alone.
func (p *muxPool) dial(ctx context.Context, log *slog.Logger) (s *session, legacy net.Conn, err error) {
	st := p.st
	tc, exit, err := p.e.connectAt(ctx, st, st.muxTLS, log)
	if err != nil {
		return nil, nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != MuxALPN {
		return nil, tc, nil
	}
	rc := &recordConn{Conn: tc}
	m, err := smux.Client(rc, muxConfig())
	if err != nil { // cannot happen: muxConfig is valid
		tc.Close()
		return nil, nil, err
	}
	s = newSession(m, rc, tc.NetConn(), p.e.opts.Now())
	s.exit = exit
	fail := func(err error) (*session, net.Conn, error) {
		s.close()
		return nil, nil, err
	}
	if s.ctl, err = m.OpenStream(); err != nil {
		return fail(fmt.Errorf("tunnel %q: exit %s: opening the session: %w", st.cfg.Name, tc.RemoteAddr(), err))
	}
	// The exit answers the control stream with a hello once it has
	// accepted the session: in TLS 1.3 a refusal of our certificate
	// arrives after our handshake ended, on the first read.
	s.ctl.SetReadDeadline(time.Now().Add(st.cfg.HandshakeTimeout))
	var hello [ctlMsgSize]byte
	if _, err := io.ReadFull(s.ctl, hello[:]); err != nil || hello[0] != ctlHello {
		cause := rc.readErr()
		if cause == nil {
			cause = err
		}
		if cause == nil {
			cause = fmt.Errorf("unexpected control message %q", hello[0])
		}
		if isRemoteCertAlert(cause) {
			p.e.srv.c.authFailures.Add(1)
			p.e.srv.c.handshakeFailures.Add(conn.ReasonWrongKey)
			err := fmt.Errorf("tunnel %q: exit %s: the exit refused the session right after the TLS handshake "+
				"(in TLS 1.3 this is how it refuses our certificate): %w", st.cfg.Name, tc.RemoteAddr(), explainRemote(cause, st.creds.mode))
			log.Error("exit failed authentication", "exit", tc.RemoteAddr().String(), "err", err)
			return fail(err)
		}
		p.e.srv.c.handshakeFailures.Add(conn.ReasonOf(cause))
		return fail(fmt.Errorf("tunnel %q: exit %s: no session hello: %w", st.cfg.Name, tc.RemoteAddr(), cause))
	}
	s.ctl.SetReadDeadline(time.Time{})
	go s.readControl(nil)
	return s, nil, nil
}

// watch forgets slot i's session once it closed.
func (p *muxPool) watch(i int, s *session) {
	<-s.mux.CloseChan()
	s.close()
	p.e.srv.c.sessions.Add(-1)
	p.forget(i, s)
}

// forget empties slot i if it still holds s; a session that died young
// counts as a failed dial.
func (p *muxPool) forget(i int, s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sl := &p.slots[i]
	if sl.s != s {
		return
	}
	sl.s = nil
	if now := p.e.opts.Now(); now.Sub(s.born) < shortLived {
		sl.failures++
		sl.retryAt = now.Add(backoff(sl.failures))
	}
}

// retire lets the pool's sessions close once their streams end; clients
// that still reach it get a connection of their own.
func (p *muxPool) retire() {
	p.mu.Lock()
	p.retired = true
	var ss []*session
	for _, sl := range p.slots {
		if sl.s != nil {
			ss = append(ss, sl.s)
		}
	}
	p.mu.Unlock()
	for _, s := range ss {
		s.drain()
	}
}

// close closes every session of the pool, failing their streams.
func (p *muxPool) close() {
	p.retire()
	p.mu.Lock()
	var ss []*session
	for _, sl := range p.slots {
		if sl.s != nil {
			ss = append(ss, sl.s)
		}
	}
	p.mu.Unlock()
	for _, s := range ss {
		s.close()
	}
}

// done reports whether a retired pool has no session left.
func (p *muxPool) done() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.retired {
		return false
	}
	for _, sl := range p.slots {
		if sl.s != nil {
			return false
		}
	}
	return true
}
