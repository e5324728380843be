package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"github.com/offedge/offedge/edge/forward/accept"
	"io"
	"log/slog"
	"net"
	"os"
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
		if bc, ok := c.(*batchConn); ok {
			c = bc.Conn
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
	tsrc, _ := src.(*tls.Conn)
	for {
		nr, rerr := src.Read(buf)
		if tsrc != nil && rerr == nil && nr > 0 && nr < len(buf) {
			nr, rerr = drainBuffered(tsrc, buf, nr)
		}
		if nr > 0 {
			nw, werr := writeBatched(dst, buf[:nr])
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

// batchConn is the socket under a tunnel's tls.Conn. crypto/tls writes
// each record (≤16 KiB) with its own Write; between begin and flush,
// batchConn collects them so that one tls.Conn.Write costs one syscall.
// Outside a batch (handshake, alerts, close_notify) it writes through.
type batchConn struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	buf []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.on {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

func (b *batchConn) begin() {
	b.mu.Lock()
	b.on = true
	b.mu.Unlock()
}

// flush ends the batch and writes what it collected.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.on = false
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// writeBatched writes p to dst, as one syscall when dst is a tls.Conn over
// a batchConn. If the batched write fails, it reports nothing written:
// the connection is then aborted anyway.
func writeBatched(dst net.Conn, p []byte) (int, error) {
	tc, ok := dst.(*tls.Conn)
	if !ok {
		return dst.Write(p)
	}
	bc, ok := tc.NetConn().(*batchConn)
	if !ok {
		return dst.Write(p)
	}
	bc.begin()
	n, err := tc.Write(p)
	if ferr := bc.flush(); ferr != nil {
		return 0, ferr
	}
	return n, err
}

// aLongTimeAgo is a deadline that has always passed.
var aLongTimeAgo = time.Unix(1, 0)

// drainBuffered appends to buf[:n] the records c has already received,
// without waiting for more: crypto/tls returns one record (≤16 KiB) per
// Read, and writing each on its own costs one syscall per record. With the
// read deadline in the past, a Read that would have to wait for the socket
// returns a timeout at once (without a syscall), and crypto/tls keeps the
// partial record for the next Read.
func drainBuffered(c *tls.Conn, buf []byte, n int) (int, error) {
	c.SetReadDeadline(aLongTimeAgo)
	var err error
	for n < len(buf) {
		var m int
		m, err = c.Read(buf[n:])
		n += m
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = nil
			}
			break
		}
	}
	if derr := c.SetReadDeadline(time.Time{}); err == nil {
		err = derr
	}
	return n, err
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
