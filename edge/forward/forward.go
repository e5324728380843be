package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/forward/accept"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = accept.ErrServerClosed

// Defaults applied to zero fields of a Config. A negative IdleTimeout
// disables the idle timeout.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultIdleTimeout    = 12 * time.Hour
	DefaultMaxConns       = 4096
	keepAlivePeriod       = 30 * time.Second
	// keepAliveAfter is when keepalive is switched on for the target
	// connection. The first probe comes after keepAlivePeriod of silence,
	// so a connection that ends sooner would never use it: enabling it
	// late saves a short connection four setsockopt calls (about 2% of its
	// CPU time in bench/tunnel.sh) and delays a probe by at most this.
	keepAliveAfter = 5 * time.Second
)

var keepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: keepAlivePeriod, Interval: keepAlivePeriod, Count: 3}

// Stats is a snapshot of a forwarder's counters. Byte counts of a spliced
// connection are added when that direction ends.
type Stats struct {
	Accepted     uint64
	Active       int64
	DialFailures uint64
	IdleClosed   uint64
	BytesUp      uint64 // client → target
	BytesDown    uint64 // target → client
}

// Forwarder relays every connection accepted on its listeners to Config.Target.
type Forwarder struct {
	opts Options
	srv  *accept.Server
	cur  atomic.Pointer[Config]

	accepted, dialFailures, idleClosed, bytesUp, bytesDown atomic.Uint64
	active                                                 atomic.Int64
	logLim                                                 accept.LogLimiter
	bufs                                                   sync.Pool // 32 KiB buffers for the non-splice copy
}

// New checks cfg and returns a forwarder ready to Serve.
func New(cfg Config, opts Options) (*Forwarder, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{opts: opts}
	f.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	f.srv = accept.New(accept.Options{Kind: "forward", Name: c.Name, Logger: opts.Logger, MaxConns: c.MaxConns})
	f.cur.Store(c)
	return f, nil
}

func normalize(cfg Config) (*Config, error) {
	if cfg.Name == "" {
		return nil, errors.New("forward: empty name")
	}
	if _, _, err := net.SplitHostPort(cfg.Target); err != nil {
		return nil, fmt.Errorf("forward %q: target %q: %w (IPv6 literals need brackets: [2001:db8::1]:25)", cfg.Name, cfg.Target, err)
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("forward %q: max_conns %d is negative", cfg.Name, cfg.MaxConns)
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	switch {
	case cfg.ConnectTimeout == 0:
		cfg.ConnectTimeout = DefaultConnectTimeout
	case cfg.ConnectTimeout < 0:
		return nil, fmt.Errorf("forward %q: connect_timeout %v is negative", cfg.Name, cfg.ConnectTimeout)
	}
	switch {
	case cfg.IdleTimeout == 0:
		cfg.IdleTimeout = DefaultIdleTimeout
	case cfg.IdleTimeout < 0:
		cfg.IdleTimeout = 0
	}
	return &cfg, nil
}

// Serve accepts connections on ln until Shutdown, then returns ErrServerClosed.
func (f *Forwarder) Serve(ln net.Listener) error { return f.srv.Serve(ln, f.handle) }

// Update replaces the configuration for new connections; open connections
// keep theirs. On error nothing changes.
func (f *Forwarder) Update(cfg Config) error {
	c, err := normalize(cfg)
	if err != nil {
		return err
	}
	f.cur.Store(c)
	f.srv.SetMaxConns(c.MaxConns)
	return nil
}

// Shutdown stops accepting, waits for open connections until ctx is done,
// then closes them and returns ctx.Err().
func (f *Forwarder) Shutdown(ctx context.Context) error { return f.srv.Shutdown(ctx) }

// Stats returns a snapshot of the counters.
func (f *Forwarder) Stats() Stats {
	return Stats{
		Accepted:     f.accepted.Load(),
		Active:       f.active.Load(),
		DialFailures: f.dialFailures.Load(),
		IdleClosed:   f.idleClosed.Load(),
		BytesUp:      f.bytesUp.Load(),
		BytesDown:    f.bytesDown.Load(),
	}
}

func (f *Forwarder) handle(c net.Conn) {
	f.accepted.Add(1)
	f.active.Add(1)
	defer f.active.Add(-1)
	cfg := f.cur.Load()

	ctx, cancel := context.WithTimeout(f.srv.Context(), cfg.ConnectTimeout)
	up, err := f.dial(ctx, cfg.Target)
	cancel()
	if err != nil {
		f.dialFailures.Add(1)
		if ok, n := f.logLim.Allow(f.opts.Now()); ok {
			f.opts.Logger.Warn("target unreachable; closing client connection", "forward", cfg.Name, "client", c.RemoteAddr().String(),
				"err", fmt.Errorf("forward %q: target %s: %w", cfg.Name, cfg.Target, err), "suppressed_since_last", n)
		}
		return
	}
	if !f.srv.Track(up) {
		up.Close()
		return
	}
	defer f.srv.UntrackClose(up)
	if tc, ok := up.(*net.TCPConn); ok {
		t := time.AfterFunc(keepAliveAfter, func() { tc.SetKeepAliveConfig(keepAliveConfig) })
		defer t.Stop()
	}
	if cfg.ProxyProtocol {
		hdr := AppendProxyV2(nil, addrPort(c.RemoteAddr()), addrPort(c.LocalAddr()))
		if _, err := up.Write(hdr); err != nil {
			f.opts.Logger.Info("writing PROXY header failed", "forward", cfg.Name, "err", err)
			return
		}
	}
	if err := f.relay(c, up, cfg.IdleTimeout); err != nil && !quiet(err) {
		f.opts.Logger.Debug("connection ended with error", "forward", cfg.Name, "client", c.RemoteAddr().String(), "err", err)
	}
}

func (f *Forwarder) dial(ctx context.Context, addr string) (net.Conn, error) {
	if f.opts.Dial != nil {
		return f.opts.Dial(ctx, "tcp", addr)
	}
	d := net.Dialer{KeepAlive: -1} // enabled later, see keepAliveAfter
	return d.DialContext(ctx, "tcp", addr)
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// relay copies both ways until both directions end, propagating half-closes.
// Between two *net.TCPConn it calls TCPConn.ReadFrom directly, which splices
// on Linux; the idle timeout then polls TCP_INFO instead of wrapping the
// connections (a wrapper would defeat splice).
func (f *Forwarder) relay(client, up net.Conn, idle time.Duration) error {
	a, aok := client.(*net.TCPConn)
	b, bok := up.(*net.TCPConn)
	spliced := aok && bok && haveTCPInfo
	if spliced {
		capLocalBuffers(a)
		capLocalBuffers(b)
	}
	var moved atomic.Uint64
	var stop func()
	if idle > 0 {
		var idleFor func() time.Duration
		if spliced {
			idleFor = func() time.Duration {
				da, _ := sinceLastRecv(a)
				db, _ := sinceLastRecv(b)
				return min(da, db)
			}
		} else {
			idleFor = accept.CounterIdle(&moved, f.opts.Now)
		}
		stop = accept.WatchIdle(idle, idleFor, func() {
			f.idleClosed.Add(1)
			client.Close()
			up.Close()
		})
		defer stop()
	}
	var ended atomic.Int32 // directions that reached EOF
	half := func(dst, src net.Conn, n *atomic.Uint64) error {
		if spliced {
			c, err := dst.(*net.TCPConn).ReadFrom(src)
			n.Add(uint64(c))
			if err != nil {
				return err
			}
			if ended.Add(1) == 2 {
				// Both sources are at EOF, so both connections are
				// about to be closed, and close sends this FIN (no
				// unread data is left to turn it into a reset).
				return nil
			}
			return dst.(*net.TCPConn).CloseWrite()
		}
		return copyCounting(&f.bufs, dst, src, n, &moved)
	}
	// Whichever direction fails first aborts both, so that the other copy
	// returns at once; the first error is the one reported.
	var once sync.Once
	errc := make(chan error, 2)
	run := func(dst, src net.Conn, n *atomic.Uint64) {
		err := half(dst, src, n)
		if err != nil {
			once.Do(func() { abort(client, up) })
		}
		errc <- err
	}
	go run(up, client, &f.bytesUp)
	run(client, up, &f.bytesDown)
	err := <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	return err
}

// abort resets both connections after an error (SO_LINGER 0), so that
// neither end mistakes a truncated stream for a complete one.
func abort(conns ...net.Conn) {
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// copyCounting is the portable copy: pooled 32 KiB buffer, counted bytes,
// half-close at EOF.
func copyCounting(bufs *sync.Pool, dst, src net.Conn, n, moved *atomic.Uint64) error {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n.Add(uint64(nw))
			moved.Add(uint64(nw))
			if werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				return cw.CloseWrite()
			}
			return dst.Close()
		}
		if rerr != nil {
			return rerr
		}
	}
}

func quiet(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
