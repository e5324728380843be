package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/conn"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = conn.ErrServerClosed

// limits checks the values every entrance and exit needs from its plan,
// and max_conns_per_client against max_conns.
func limits(handshake time.Duration, maxConns, perClient int) error {
	if err := conn.Required("handshake_timeout", handshake); err != nil {
		return err
	}
	if err := conn.Required("max_conns", maxConns); err != nil {
		return err
	}
	if err := conn.Required("max_conns_per_client", perClient); err != nil {
		return err
	}
	if perClient > maxConns {
		return fmt.Errorf("max_conns_per_client %d is above max_conns %d", perClient, maxConns)
	}
	return nil
}

// dialing checks the values a side that dials needs from its plan.
func dialing(connect, idle, keepAlive time.Duration) error {
	if err := conn.Required("connect_timeout", connect); err != nil {
		return err
	}
	if err := conn.Required("idle_timeout", idle); err != nil {
		return err
	}
	return conn.Required("keepalive", keepAlive)
}

// Stats is a snapshot of an entrance's or exit's counters.
type Stats struct {
	Accepted          uint64 // connections accepted (after the address filter)
	Active            int64  // connections open now
	HandshakeFailures uint64 // TLS handshakes that failed, including authentication
	AuthFailures      uint64 // peers refused for their key or certificate
	DialFailures      uint64 // connections to exits or targets that failed
	// HandshakeFailuresBy and DialFailuresBy count the failures by reason
	// (conn.Reason names: wrong_key, peer_name, timeout, protocol, reset,
	// refused, unreachable, source, other); only non-zero ones appear.
	HandshakeFailuresBy map[string]uint64
	DialFailuresBy      map[string]uint64
	// RefusedPerClient counts connections reset because their client
	// already had max_conns_per_client open.
	RefusedPerClient uint64
	BytesUp          uint64 // client → service bytes
	BytesDown        uint64 // service → client bytes
	// Sessions is the number of multiplexed TLS connections (MuxALPN) open
	// now, and Streams the client connections they carried. A stream
	// counts in Accepted and Active as a connection; a session does not
	// (on an exit, it is a connection its listener accepted, but it
	// carries clients rather than being one).
	Sessions int64
	Streams  uint64
	// RefusedStreams counts streams an exit reset at once: over the
	// session's MuxMaxStreams, over max_conns or max_conns_per_client, or
	// during shutdown; and sessions it closed at once for being over
	// MuxMaxSessionsPerPeer.
	RefusedStreams uint64
}

type counters struct {
	accepted, authFailures       atomic.Uint64
	handshakeFailures, dialFails conn.ReasonCounter
	bytesUp, bytesDown           atomic.Uint64
	active                       atomic.Int64
	sessions                     atomic.Int64
	streams, refusedStreams      atomic.Uint64
}

func (s *server) snapshot() Stats {
	c := &s.c
	return Stats{
		Accepted:            c.accepted.Load(),
		Active:              c.active.Load(),
		HandshakeFailures:   c.handshakeFailures.Total(),
		HandshakeFailuresBy: c.handshakeFailures.Snapshot(),
		AuthFailures:        c.authFailures.Load(),
		DialFailures:        c.dialFails.Total(),
		DialFailuresBy:      c.dialFails.Snapshot(),
		RefusedPerClient:    s.RefusedPerClient(),
		BytesUp:             c.bytesUp.Load(),
		BytesDown:           c.bytesDown.Load(),
		Sessions:            c.sessions.Load(),
		Streams:             c.streams.Load(),
		RefusedStreams:      c.refusedStreams.Load(),
	}
}

// server is the shared accept loop plus the counters and the rate-limited
// logger of one entrance or exit.
type server struct {
	*conn.Server
	log    *slog.Logger
	now    func() time.Time
	c      counters
	logLim conn.LogLimiter
	bufs   conn.BufferPool
}

func newServer(kind, name string, log *slog.Logger, now func() time.Time, maxConns, perClient int) *server {
	return &server{
		Server: conn.New(conn.Options{Kind: kind, Name: name, Logger: log, Now: now, MaxConns: maxConns, MaxConnsPerClient: perClient}),
		log:    log,
		now:    now,
	}
}

// relay copies between the client side a and the service side b, adding
// to the role's byte totals.
func (s *server) relay(a, b net.Conn, idle time.Duration) (conn.Result, error) {
	return conn.Relay(a, b, conn.RelayOptions{Idle: idle, Now: s.now, Up: &s.c.bytesUp, Down: &s.c.bytesDown, Buffers: &s.bufs})
}

// serve is Serve with the active-connection gauge.
func (s *server) serve(ln net.Listener, handle func(net.Conn)) error {
	return s.Serve(ln, func(c net.Conn) {
		s.c.accepted.Add(1)
		s.c.active.Add(1)
		defer s.c.active.Add(-1)
		handle(c)
	})
}

// warnLimited logs a rate-limited warning.
func (s *server) warnLimited(msg string, args ...any) {
	ok, n := s.logLim.Allow(s.now())
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	s.log.Warn(msg, args...)
}

// fromConn reports whether err is an I/O error on c's socket.
func fromConn(err error, c net.Conn) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Addr == nil || oe.Source == nil {
		return false
	}
	return oe.Addr.String() == c.RemoteAddr().String() && oe.Source.String() == c.LocalAddr().String()
}
