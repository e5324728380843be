package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"github.com/offedge/offedge/edge/forward/accept"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = accept.ErrServerClosed

// Defaults applied to zero durations and limits.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout matches stunnel's TIMEOUTidle (43200 s).
	DefaultIdleTimeout = 12 * time.Hour
	DefaultKeepAlive   = 30 * time.Second
	DefaultMaxConns    = 4096
)

// orDefault returns d, or def when d is zero. A negative duration means
// "disabled" and is returned as 0.
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Stats is a snapshot of an entrance's or exit's counters.
type Stats struct {
	Accepted          uint64 // connections accepted (after the address filter)
	Active            int64  // connections open now
	HandshakeFailures uint64 // TLS handshakes that failed, including authentication
	AuthFailures      uint64 // peers refused for their key or certificate
	DialFailures      uint64 // connections to exits or targets that failed
	BytesUp           uint64 // client → service bytes
	BytesDown         uint64 // service → client bytes
}

type counters struct {
	accepted, handshakeFailures, authFailures, dialFailures atomic.Uint64
	bytesUp, bytesDown                                      atomic.Uint64
	active                                                  atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Accepted:          c.accepted.Load(),
		Active:            c.active.Load(),
		HandshakeFailures: c.handshakeFailures.Load(),
		AuthFailures:      c.authFailures.Load(),
		DialFailures:      c.dialFailures.Load(),
		BytesUp:           c.bytesUp.Load(),
		BytesDown:         c.bytesDown.Load(),
	}
}

// server is the shared accept loop plus the counters and the rate-limited
// logger of one entrance or exit.
type server struct {
	*accept.Server
	log    *slog.Logger
	now    func() time.Time
	c      counters
	logLim accept.LogLimiter
	bufs   *sync.Pool
}

func newServer(kind, name string, log *slog.Logger, now func() time.Time, maxConns int) *server {
	return &server{
		Server: accept.New(accept.Options{Kind: kind, Name: name, Logger: log, MaxConns: maxConns}),
		log:    log,
		now:    now,
		bufs:   newBufPool(),
	}
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

// newBufPool returns a pool of 32 KiB copy buffers.
func newBufPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
}

type closeWriter interface{ CloseWrite() error }

// pipe copies both ways between a (the client side) and b (the service
// side) until both directions finish, propagating half-closes. If one
// direction fails, both connections are closed at once so that the other
// copy returns. An idle timeout closes both when no byte moved for idle.
func pipe(bufs *sync.Pool, a, b net.Conn, idle time.Duration, now func() time.Time, up, down *atomic.Uint64) (fromB uint64, err error) {
	var moved, fromBCount atomic.Uint64
	var stop func()
	if idle > 0 {
		stop = accept.WatchIdle(idle, accept.CounterIdle(&moved, now), func() { a.Close(); b.Close() })
	}
	// Whichever direction fails first aborts both, so that the other copy
	// returns at once; its error is then a consequence, and the first error
	// is the one reported.
	var once sync.Once
	errc := make(chan error, 2)
	half := func(dst, src net.Conn, n, local *atomic.Uint64) {
		err := copyHalf(bufs, dst, src, n, &moved, local)
		if err != nil {
			once.Do(func() { abort(a, b) })
		}
		errc <- err
	}
	go half(b, a, up, nil)
	half(a, b, down, &fromBCount)
	err = <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	if stop != nil {
		stop()
	}
	return fromBCount.Load(), err
}

// abort resets both connections after an error: SO_LINGER 0 on the TCP
// socket, and for TLS no close_notify, so that neither the client nor the
// peer tunnel end mistakes a truncated stream for a complete one.
func abort(conns ...net.Conn) {
	for _, c := range conns {
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// fromConn reports whether err is an I/O error on c's socket.
func fromConn(err error, c net.Conn) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Addr == nil || oe.Source == nil {
		return false
	}
	return oe.Addr.String() == c.RemoteAddr().String() && oe.Source.String() == c.LocalAddr().String()
}

// copyHalf copies src to dst and half-closes dst at EOF. local, if not nil,
// counts this connection's bytes.
func copyHalf(bufs *sync.Pool, dst, src net.Conn, n, moved, local *atomic.Uint64) error {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n.Add(uint64(nw))
			moved.Add(uint64(nw))
			if local != nil {
				local.Add(uint64(nw))
			}
			if werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			if cw, ok := dst.(closeWriter); ok {
				if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
					return err
				}
				return nil
			}
			return dst.Close()
		}
		if rerr != nil {
			return rerr
		}
	}
}

// dialTCP connects to addr with TCP keepalive set once, by the dialer (or
// after a custom dial).
func dialTCP(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string, keepAlive time.Duration) (net.Conn, error) {
	if dial != nil {
		c, err := dial(ctx, "tcp", addr)
		if err == nil {
			setKeepAlive(c, keepAlive)
		}
		return c, err
	}
	d := net.Dialer{KeepAliveConfig: keepAliveConfig(keepAlive)}
	if keepAlive <= 0 {
		d.KeepAlive = -1
	}
	return d.DialContext(ctx, "tcp", addr)
}

func keepAliveConfig(period time.Duration) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: period > 0, Idle: period, Interval: period, Count: 3}
}

// setKeepAlive enables TCP keepalive on c when it is a TCP connection.
func setKeepAlive(c net.Conn, period time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok || period <= 0 {
		return
	}
	tc.SetKeepAliveConfig(keepAliveConfig(period))
}
