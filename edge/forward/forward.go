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

	"github.com/offedge/offedge/edge/conn"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = conn.ErrServerClosed

// TCP keepalive of the target connection (a forward has no keepalive
// setting: this is the edge's own choice, not a configuration default).
const keepAlivePeriod = 30 * time.Second

// keepAliveAfter is when keepalive is switched on for the target
// connection. The first probe comes after keepAlivePeriod of silence, so a
// connection that ends sooner would never use it: enabling it late saves a
// short connection four setsockopt calls (about 2% of its CPU time in
// bench/tunnel.sh) and delays a probe by at most this. It runs on the
// relays' shared timer (conn.RelayOptions.Later) or the event loop's
// sweep, not a timer per connection. A variable for its test.
var keepAliveAfter = 5 * time.Second

// Stats is a snapshot of a forwarder's counters. Byte counts of a spliced
// connection are added when that direction ends.
type Stats struct {
	Accepted     uint64
	Active       int64
	DialFailures uint64
	// DialFailuresBy counts DialFailures by reason (refused, timeout, ...).
	DialFailuresBy map[string]uint64
	IdleClosed     uint64
	// RefusedPerClient counts connections reset because their client
	// already had max_conns_per_client open.
	RefusedPerClient uint64
	BytesUp          uint64 // client → target
	BytesDown        uint64 // target → client
}

// Forwarder relays every connection accepted on its listeners to Config.Target.
type Forwarder struct {
	opts Options
	srv  *conn.Server
	cur  atomic.Pointer[Config]

	accepted, idleClosed, bytesUp, bytesDown atomic.Uint64
	dialFailures                             conn.ReasonCounter
	active                                   atomic.Int64
	logLim                                   conn.LogLimiter
	bufs                                     conn.BufferPool // for the non-splice copy
	onIdle                                   func()          // made once, not per connection

	pipes   atomic.Int64 // held by the event loops' spliced directions (maxPipes)
	mu      sync.Mutex
	closing bool
	groups  []*group // the event loops serving listeners (loop_linux.go)
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
	f.onIdle = func() { f.idleClosed.Add(1) }
	f.srv = conn.New(conn.Options{Kind: "forward", Name: c.Name, Logger: opts.Logger, Now: opts.Now, MaxConns: c.MaxConns, MaxConnsPerClient: c.MaxConnsPerClient})
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
	if _, err := netip.ParseAddrPort(cfg.Target); err != nil {
		return nil, fmt.Errorf("forward %q: target %q: an IP address and port (the plan resolves names): %w", cfg.Name, cfg.Target, err)
	}
	for _, err := range []error{
		conn.Required("connect_timeout", cfg.ConnectTimeout),
		conn.Required("idle_timeout", cfg.IdleTimeout),
		conn.Required("max_conns", cfg.MaxConns),
		conn.Required("max_conns_per_client", cfg.MaxConnsPerClient),
	} {
		if err != nil {
			return nil, fmt.Errorf("forward %q: %w", cfg.Name, err)
		}
	}
	if cfg.MaxConnsPerClient > cfg.MaxConns {
		return nil, fmt.Errorf("forward %q: max_conns_per_client %d is above max_conns %d", cfg.Name, cfg.MaxConnsPerClient, cfg.MaxConns)
	}
	return &cfg, nil
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed. On Linux a TCP listener (bare, or filtered by edge/acl)
// is served by an event loop (loop_linux.go); anything else by a goroutine
// per connection.
func (f *Forwarder) Serve(ln net.Listener) error {
	if ok, err := f.serveLoop(ln); ok {
		return err
	}
	return f.srv.Serve(ln, f.handle)
}

// Update replaces the configuration for new connections; open connections
// keep theirs. On error nothing changes.
func (f *Forwarder) Update(cfg Config) error {
	commit, err := f.Prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare checks cfg without changing what is served, and returns the
// function that swaps it in.
func (f *Forwarder) Prepare(cfg Config) (commit func(), err error) {
	c, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	return func() {
		f.cur.Store(c)
		f.srv.SetLimits(c.MaxConns, c.MaxConnsPerClient)
		for _, l := range f.servingLoops() {
			l.resumeNow() // a raised max_conns admits from the backlog at once
		}
	}, nil
}

// Shutdown stops accepting, waits for open connections until ctx is done,
// then closes them and returns ctx.Err().
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closing = true
	groups := f.groups
	f.mu.Unlock()
	for _, g := range groups {
		g.stop()
	}
	err := f.srv.Shutdown(ctx)
	for _, g := range groups {
		for _, l := range g.loops {
			select {
			case <-l.drained:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		g.close()
	}
	return err
}

func (f *Forwarder) servingLoops() []*loop {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ls []*loop
	for _, g := range f.groups {
		ls = append(ls, g.loops...)
	}
	return ls
}

// route is where a connection to target goes: the runtime's mapping when
// Options.Route is set, else the target itself from a source the kernel
// chooses.
func (f *Forwarder) route(target string) (netip.AddrPort, netip.Addr, error) {
	if f.opts.Route != nil {
		return f.opts.Route(target)
	}
	ap, err := netip.ParseAddrPort(target)
	return ap, netip.Addr{}, err
}

// Stats returns a snapshot of the counters.
func (f *Forwarder) Stats() Stats {
	return Stats{
		Accepted:         f.accepted.Load(),
		Active:           f.active.Load(),
		DialFailures:     f.dialFailures.Total(),
		DialFailuresBy:   f.dialFailures.Snapshot(),
		IdleClosed:       f.idleClosed.Load(),
		RefusedPerClient: f.srv.RefusedPerClient(),
		BytesUp:          f.bytesUp.Load(),
		BytesDown:        f.bytesDown.Load(),
	}
}

func (f *Forwarder) handle(c net.Conn) {
	f.accepted.Add(1)
	f.active.Add(1)
	defer f.active.Add(-1)
	cfg := f.cur.Load()

	ctx, cancel := conn.WithDialTimeout(f.srv.Context(), cfg.Target, cfg.ConnectTimeout)
	up, err := f.dial(ctx, cfg.Target)
	cancel()
	if err != nil {
		f.dialFailures.Add(conn.ReasonOf(err))
		if ok, n := f.logLim.Allow(f.opts.Now()); ok {
			f.opts.Logger.Warn("target unreachable; closing client connection", "forward", cfg.Name, "client", c.RemoteAddr().String(),
				"err", fmt.Errorf("forward %q: target %s: %w", cfg.Name, cfg.Target, err), "suppressed_since_last", n)
		}
		return
	}
	// up is not tracked by the server: at Shutdown's deadline closing the
	// client connection ends the relay, which resets up.
	defer up.Close()
	if f.srv.Context().Err() != nil {
		return // Shutdown started during the dial
	}
	if cfg.ProxyProtocol {
		hdr := AppendProxyV2(nil, addrPort(c.RemoteAddr()), addrPort(c.LocalAddr()))
		if _, err := up.Write(hdr); err != nil {
			f.opts.Logger.Info("writing PROXY header failed", "forward", cfg.Name, "err", err)
			return
		}
	}
	_, err = conn.Relay(c, up, conn.RelayOptions{
		Idle: cfg.IdleTimeout, OnIdle: f.onIdle, Now: f.opts.Now,
		Up: &f.bytesUp, Down: &f.bytesDown, Buffers: &f.bufs,
		Later: targetKeepAlive, LaterAfter: keepAliveAfter,
	})
	if err != nil && !quiet(err) {
		f.opts.Logger.Debug("connection ended with error", "forward", cfg.Name, "client", c.RemoteAddr().String(), "err", err)
	}
}

// targetKeepAlive switches keepalive on for the target connection, b.
func targetKeepAlive(_, b net.Conn) { conn.SetKeepAlive(b, keepAlivePeriod) }

func (f *Forwarder) dial(ctx context.Context, addr string) (net.Conn, error) {
	target, source, err := f.route(addr)
	if err != nil {
		return nil, &conn.DialError{Addr: addr, Reason: conn.ReasonOf(err), Err: err}
	}
	// Keepalive is enabled later, see keepAliveAfter.
	return conn.Dialer{Source: source}.DialContext(ctx, target.String())
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func quiet(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
