package httpedge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"github.com/offedge/offedge/edge/http/h1"
	"github.com/offedge/offedge/edge/protect"
)

// MaxRequestLineBytes is the longest request line (method, URI, version)
// answered normally; longer ones get 414, as nginx's 8k header buffer.
const MaxRequestLineBytes = 8 << 10

// check refuses the zero limits a server would otherwise have to replace:
// the plan resolves every default.
func (l Limits) check() error {
	if l.ReadHeaderTimeout <= 0 || l.ReadBodyTimeout <= 0 || l.IdleTimeout <= 0 || l.ShutdownTimeout <= 0 || l.SendTimeout <= 0 || l.MaxHeaderBytes <= 0 ||
		l.MaxConns <= 0 || l.MaxConnsPerClient == 0 {
		return fmt.Errorf("limits %+v: every limit must be positive", l)
	}
	return nil
}

// Server serves one [Config] on any number of listeners (typically the IPv4
// and IPv6 sockets of one port). The handler chain is compiled once by
// NewServer and replaced atomically by Update; requests already running keep
// the chain they started with.
type Server struct {
	opts      Options
	log       *slog.Logger
	limits    Limits // fixed for the server's life
	tlsOn     bool
	tlsConfig *tls.Config
	srv       *http.Server // HTTP/2 (and HTTP/1 with Options.NetHTTP1)
	h1        *h1.Server   // HTTP/1

	chain atomic.Pointer[chain]
	stats counters
	// routes counts requests per site and route; nohost those no site
	// answered.
	routes routeStatsSet
	bots   hitSet // bot rule matches by site and rule
	nohost *routeStats

	mu    sync.Mutex // guards roots, closing; serialises Update
	roots map[string]*os.Root
	// fileCaches are the open-file caches of the static roots (by path).
	fileCaches map[string]*fileCache
	closing    bool

	tunnels tunnelSet // hijacked (WebSocket) connections
	// refusedLog bounds the warnings a client causes per request.
	refusedLog rateLog
	// decisions logs the protections' decisions (bot rules, zones).
	decisions *protect.DecisionLog
	tickets   ticketKeys // session ticket keys of tlsConfig
	gate      *connGate  // connection caps of every socket of the server
	encoders  encoderPools
}

// NewServer validates cfg and builds its handler chain once: error pages,
// htpasswd files, static roots, and the routes' references to the node's
// resources (pools, caches, access logs, certificates), which res holds and
// the caller owns. An error names the site and route it is about.
func NewServer(cfg Config, res Resources, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := cfg.Limits.check(); err != nil {
		return nil, fmt.Errorf("listener %q: %w", cfg.Listener, err)
	}
	s := &Server{
		opts:   opts,
		log:    opts.Logger,
		limits: cfg.Limits,
		tlsOn:  cfg.TLS,
	}
	maxConns := s.limits.MaxConns
	if opts.MaxConns > 0 {
		maxConns = min(maxConns, opts.MaxConns)
	}
	s.gate = newConnGate(maxConns, s.limits.MaxConnsPerClient)
	s.nohost = s.routes.get("", "")
	s.decisions = protect.NewDecisionLog(opts.Logger, opts.Now)
	if s.tlsOn {
		// Before the chain: sites with a TLS policy of their own clone it.
		s.tlsConfig = s.newTLSConfig()
	}
	ch, err := s.build(cfg, res)
	if err != nil {
		s.closeResources()
		return nil, err
	}
	s.chain.Store(ch)
	s.srv = &http.Server{
		Handler: s,
		// OPTIONS * reaches our handler like every request (the head
		// scanner counts on one handler call per request head).
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            s.limits.ReadHeaderTimeout,
		IdleTimeout:                  s.limits.IdleTimeout,
		// net/http answers 431 itself beyond this; below it our handler
		// tells a long request line (414) from big headers (431).
		MaxHeaderBytes: s.limits.MaxHeaderBytes + MaxRequestLineBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig:      s.tlsConfig,
		ConnContext:    s.connContext,
		ConnState:      s.connState,
	}
	if !opts.NetHTTP1 {
		s.h1, err = h1.New(h1.Config{
			Handler:           s,
			ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
			IdleTimeout:       s.limits.IdleTimeout,
			// The same bound as net/http's (its read limit is
			// MaxHeaderBytes plus 4096); below it the handler tells a
			// long request line (414) from big headers (431).
			MaxHeadBytes:                 s.limits.MaxHeaderBytes + MaxRequestLineBytes + 4096,
			DisableGeneralOptionsHandler: true,
			ConnContext:                  s.connContext,
			ConnState:                    s.connState,
			Logger:                       s.log,
		})
		if err != nil {
			s.closeResources()
			return nil, fmt.Errorf("listener %q: %w", cfg.Listener, err)
		}
	}
	return s, nil
}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	if ec, ok := c.(*edgeConn); ok {
		return context.WithValue(ctx, connCtxKey{}, ec)
	}
	return ctx
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.stats.openConns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.stats.openConns.Add(-1)
	}
}

func (s *Server) name() string { return s.chain.Load().cfg.Listener }

// Serve accepts connections on ln (already filtered by the runtime's
// acl.Wrap) until Shutdown. When the config has TLS, Serve terminates it
// (TLS 1.2 minimum, HTTP/2 and HTTP/1.1 by ALPN). It returns nil after
// Shutdown, or the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return http.ErrServerClosed
	}
	var err error
	if s.h1 != nil && !s.tlsOn {
		err = s.h1.Serve(s.newListener(ln))
	} else {
		err = s.srv.Serve(s.newListener(ln))
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("listener %q: %w", s.name(), err)
}

// Prepare compiles cfg against res without changing what is served, and
// returns the function that swaps it in (atomically; it cannot fail). On
// error nothing changed. The TLS switch and the Limits are fixed when the
// server is created: changing them is an error (open a new Server).
func (s *Server) Prepare(cfg Config, res Resources) (commit func(), err error) {
	if cfg.TLS != s.tlsOn {
		return nil, fmt.Errorf("listener %q: tls cannot change on update; start a new server", cfg.Listener)
	}
	if cfg.Limits != s.limits {
		return nil, fmt.Errorf("listener %q: limits cannot change on update; start a new server", cfg.Listener)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, fmt.Errorf("listener %q: server is shut down", cfg.Listener)
	}
	s.mu.Unlock()
	ch, err := s.build(cfg, res)
	if err != nil {
		return nil, err
	}
	return func() {
		s.chain.Store(ch)
		s.log.Info("configuration updated", "listener", cfg.Listener, "sites", len(cfg.Sites))
	}, nil
}

// Update compiles cfg and swaps it in atomically. On error the running chain
// is untouched. Requests in flight, WebSocket tunnels and long downloads
// finish on the chain they started with; resources res shares with the
// previous configuration (pools with their health state and idle
// connections, caches, open access logs) simply carry on.
func (s *Server) Update(cfg Config, res Resources) error {
	commit, err := s.Prepare(cfg, res)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Shutdown stops accepting, lets requests in flight and WebSocket tunnels
// finish, and closes everything when they are done or when ctx (bounded by
// Limits.ShutdownTimeout) expires.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.gate.close() // accept loops waiting for a slot stop
	ctx, cancel := context.WithTimeout(ctx, s.limits.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if s.h1 != nil {
		if err1 := s.h1.Shutdown(ctx); err == nil {
			err = err1
		}
	}
	if err == nil {
		err = s.tunnels.wait(ctx)
	}
	if err != nil {
		s.srv.Close()
		if s.h1 != nil {
			s.h1.Close()
		}
		s.tunnels.closeAll()
		err = fmt.Errorf("listener %q: shutdown: %w", s.name(), err)
	}
	s.closeResources()
	return err
}

// closeResources closes what the server itself opened: its static roots.
func (s *Server) closeResources() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.roots {
		r.Close()
		delete(s.roots, k)
	}
	for k, c := range s.fileCaches {
		c.closeAll()
		delete(s.fileCaches, k)
	}
}

// getCertificate picks the certificate of the site the SNI names, as the
// Host is matched. An unknown or absent SNI gets the certificate of the site
// explicitly marked Default, and when no site is, the handshake fails: no
// other site's certificate (and so no list of our names) is ever shown.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ch := s.chain.Load()
	if host, ok := normalizeHost(hello.ServerName); ok {
		if st, ok := ch.hosts.lookup(host); ok && st.cert != nil {
			return st.cert.Certificate()
		}
	}
	if ch.tlsDefault != nil {
		return ch.tlsDefault.cert.Certificate()
	}
	return nil, fmt.Errorf("listener %q: no site for server name %q", ch.cfg.Listener, hello.ServerName)
}

// tunnelSet tracks hijacked connections so that Shutdown can wait for or
// close them (net/http forgets hijacked connections).
type tunnelSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (t *tunnelSet) add(c ...net.Conn) {
	t.mu.Lock()
	if t.conns == nil {
		t.conns = make(map[net.Conn]struct{})
	}
	for _, x := range c {
		t.conns[x] = struct{}{}
	}
	t.wg.Add(1)
	t.mu.Unlock()
}

func (t *tunnelSet) done(c ...net.Conn) {
	t.mu.Lock()
	for _, x := range c {
		delete(t.conns, x)
	}
	t.mu.Unlock()
	t.wg.Done()
}

func (t *tunnelSet) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *tunnelSet) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
}
