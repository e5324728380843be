package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/smux"

	"github.com/offedge/offedge/edge/conn"
)

// Exit is the TLS end of one or more tunnels (stunnel's `client = no`): it
// accepts TLS 1.3 connections from authenticated entrances only, picks the
// tunnel by the TLS server name (SNI = tunnel name) and forwards the stream
// to that tunnel's target.
type Exit struct {
	opts Options
	srv  *server
	cur  atomic.Pointer[exitState]

	sessMu   sync.Mutex
	sessions map[sessionKey]int  // open sessions by entrance address and tunnel
	recheck  map[*session]func() // each open session's check against the current configuration
}

type sessionKey struct {
	peer   netip.Addr
	tunnel string
}

// exitState is everything built from one ExitConfig; Update swaps it whole.
type exitState struct {
	cfg     ExitConfig
	tunnels map[string]*exitTunnel // by lower-cased name
	base    *tls.Config
}

type exitTunnel struct {
	cfg   ExitTunnel
	creds *credentials
	tls   *tls.Config
}

// NewExit checks cfg, reads every tunnel's secret or key files, and returns
// an exit ready to Serve.
func NewExit(cfg ExitConfig, opts Options) (*Exit, error) {
	opts = opts.withDefaults()
	st, err := buildExit(cfg, opts)
	if err != nil {
		return nil, err
	}
	x := &Exit{opts: opts, sessions: map[sessionKey]int{}, recheck: map[*session]func(){}}
	x.srv = newServer("exit", cfg.Listener, opts.Logger, opts.Now, st.cfg.MaxConns, st.cfg.MaxConnsPerClient)
	x.cur.Store(st)
	return x, nil
}

func buildExit(cfg ExitConfig, opts Options) (*exitState, error) {
	if len(cfg.Tunnels) == 0 {
		return nil, fmt.Errorf("exit %s: no tunnels", cfg.Listener)
	}
	if err := limits(cfg.HandshakeTimeout, cfg.MaxConns, cfg.MaxConnsPerClient); err != nil {
		return nil, fmt.Errorf("exit %s: %w", cfg.Listener, err)
	}
	cfg.Tunnels = slices.Clone(cfg.Tunnels)
	st := &exitState{cfg: cfg, tunnels: make(map[string]*exitTunnel, len(cfg.Tunnels))}

	for i := range cfg.Tunnels {
		t := &cfg.Tunnels[i]
		if err := checkName(t.Name); err != nil {
			return nil, fmt.Errorf("exit %s: %w", cfg.Listener, err)
		}
		wrap := func(err error) error { return fmt.Errorf("tunnel %q: exit %s: %w", t.Name, cfg.Listener, err) }
		key := strings.ToLower(t.Name)
		if _, dup := st.tunnels[key]; dup {
			return nil, wrap(errors.New("tunnel name used twice on this exit (names are compared without case, as TLS server names)"))
		}
		if _, _, err := net.SplitHostPort(t.Target); err != nil {
			return nil, wrap(fmt.Errorf("target %q: %w (IPv6 literals need brackets: [2001:db8::102]:16000)", t.Target, err))
		}
		if err := dialing(t.ConnectTimeout, t.IdleTimeout, t.KeepAlive); err != nil {
			return nil, wrap(err)
		}
		creds, err := loadCredentials(t.Name, t.Auth, cfg.Secrets, opts)
		if err != nil {
			return nil, wrap(err)
		}
		tc := creds.serverConfig()
		// Offered to entrances that ask for it; stunnel4 and older
		// offedge entrances send no ALPN and get one connection per client.
		tc.NextProtos = []string{MuxALPN}
		st.tunnels[key] = &exitTunnel{cfg: *t, creds: creds, tls: tc}
	}
	st.base = &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			t, err := st.lookup(h.ServerName)
			if err != nil {
				return nil, err
			}
			return t.tls, nil
		},
	}
	return st, nil
}

// lookup finds the tunnel for a TLS server name. Without a server name, an
// exit that serves one tunnel serves that one.
func (st *exitState) lookup(sni string) (*exitTunnel, error) {
	if sni == "" {
		if len(st.tunnels) == 1 {
			for _, t := range st.tunnels {
				return t, nil
			}
		}
		return nil, fmt.Errorf("client sent no TLS server name and this exit serves %d tunnels (%s); "+
			"set the entrance's SNI to the tunnel name (stunnel: sni = NAME)", len(st.tunnels), st.names())
	}
	if t, ok := st.tunnels[strings.ToLower(sni)]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("unknown tunnel %q (this exit serves: %s)", sni, st.names())
}

func (st *exitState) names() string {
	var n []string
	for _, t := range st.cfg.Tunnels {
		n = append(n, t.Name)
	}
	return strings.Join(n, ", ")
}

// Serve accepts connections on ln until Shutdown, then returns ErrServerClosed.
func (x *Exit) Serve(ln net.Listener) error { return x.srv.serve(ln, x.handle) }

// Update replaces the configuration for new connections; open connections
// keep the one they started with. On error nothing changes.
func (x *Exit) Update(cfg ExitConfig) error {
	commit, err := x.Prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare builds cfg without changing what is served, and returns the
// function that swaps it in.
func (x *Exit) Prepare(cfg ExitConfig) (commit func(), err error) {
	st, err := buildExit(cfg, x.opts)
	if err != nil {
		return nil, err
	}
	return func() {
		x.cur.Store(st)
		x.srv.SetLimits(st.cfg.MaxConns, st.cfg.MaxConnsPerClient)
		x.sessMu.Lock()
		checks := make([]func(), 0, len(x.recheck))
		for _, f := range x.recheck {
			checks = append(checks, f)
		}
		x.sessMu.Unlock()
		for _, f := range checks {
			go f() // a control message may wait for a slow peer
		}
	}, nil
}

// Shutdown stops accepting, waits for open connections until ctx is done,
// then closes them and returns ctx.Err().
func (x *Exit) Shutdown(ctx context.Context) error { return x.srv.Shutdown(ctx) }

// Stats returns a snapshot of the exit's counters.
func (x *Exit) Stats() Stats { return x.srv.snapshot() }

func (x *Exit) handle(c net.Conn) {
	st := x.cur.Load()
	tc := tls.Server(conn.NewBatchConn(c), st.base)
	// The handshake runs under its own deadline before anything is dialed:
	// plain text, garbage or a silent peer costs one goroutine for at most
	// HandshakeTimeout and never reaches the target.
	hctx, cancel := context.WithTimeout(x.srv.Context(), st.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		x.handshakeFailed(st, tc, c, err)
		return
	}
	cs := tc.ConnectionState()
	t, err := st.lookup(cs.ServerName)
	if err != nil { // cannot happen: GetConfigForClient accepted the name
		x.opts.Logger.Error("tunnel vanished after handshake", "exit", st.cfg.Listener, "err", err)
		return
	}
	cfg := t.cfg
	if cfg.KeepAlive != x.opts.ListenKeepAlive {
		conn.SetKeepAlive(c, cfg.KeepAlive)
	}
	log := x.opts.Logger.With("tunnel", cfg.Name, "peer", c.RemoteAddr().String())
	if cs.NegotiatedProtocol == MuxALPN {
		x.serveSession(st, t, tc, c, cs, log)
		return
	}
	x.forward(cfg, tc, log)
}

// forward dials the tunnel's target and relays the client side c to it:
// c is a TLS connection of its own, or a stream of a session.
func (x *Exit) forward(cfg ExitTunnel, c net.Conn, log *slog.Logger) {
	dctx, cancel := conn.WithDialTimeout(x.srv.Context(), cfg.Target, cfg.ConnectTimeout)
	up, err := x.dial(dctx, cfg)
	cancel()
	if err != nil {
		x.srv.c.dialFails.Add(conn.ReasonOf(err))
		log.Warn("target unreachable; closing tunnel connection", "err", fmt.Errorf("tunnel %q: target %s: %w", cfg.Name, cfg.Target, err))
		if ms, ok := c.(*stream); ok {
			ms.Abort()
		}
		return
	}
	if !x.srv.Track(up) {
		up.Close()
		return
	}
	defer x.srv.UntrackClose(up)
	if ms, ok := c.(*stream); ok {
		ms.relayTo(up)
	}
	_, err = x.srv.relay(c, up, cfg.IdleTimeout)
	if err != nil && !quietErr(err) {
		log.Info("connection ended with error", "target", cfg.Target, "err", err)
	}
}

func (x *Exit) handshakeFailed(st *exitState, tc *tls.Conn, c net.Conn, err error) {
	name := tc.ConnectionState().ServerName
	t, _ := st.lookup(name)
	peer := c.RemoteAddr().String()
	mode := ""
	if t != nil {
		mode = t.creds.mode
		if mode == "psk" && strings.Contains(err.Error(), "bad record MAC") {
			// OpenSSL (stunnel) clients send their refusal of our
			// certificate as an unencrypted alert, which reads here as a
			// record that fails authentication.
			err = fmt.Errorf("the peer aborted the handshake after our certificate (stunnel/OpenSSL refusal): %w: %w", ErrPeerKeyMismatch, err)
		}
	}
	herr := handshakeError(err, mode)
	x.srv.c.handshakeFailures.Add(herr.Reason)
	switch {
	case herr.Reason == conn.ReasonWrongKey || herr.Reason == conn.ReasonPeerName:
		x.srv.c.authFailures.Add(1)
		if t != nil {
			name = t.cfg.Name
		}
		x.opts.Logger.Error("peer failed authentication", "exit", st.cfg.Listener, "tunnel", name, "peer", peer,
			"reason", herr.Reason.String(), "err", fmt.Errorf("tunnel %q: %w", name, herr.Err))
	case t != nil:
		x.srv.warnLimited("TLS handshake failed", "exit", st.cfg.Listener, "tunnel", t.cfg.Name, "peer", peer, "reason", herr.Reason.String(), "err", herr.Err)
	default:
		x.srv.warnLimited("TLS handshake failed", "exit", st.cfg.Listener, "peer", peer, "reason", herr.Reason.String(), "err", herr.Err)
	}
}

func (x *Exit) dial(ctx context.Context, cfg ExitTunnel) (net.Conn, error) {
	return conn.Dialer{Dial: x.opts.Dial, KeepAlive: cfg.KeepAlive}.DialContext(ctx, cfg.Target)
}

// serveSession carries the streams of a multiplexed session (MuxALPN)
// until it ends. Each stream is a client connection of its own: it takes a
// slot of max_conns and of the entrance's max_conns_per_client, is
// checked against the tunnel's current authentication (a reload that
// changed the secret drains sessions made with the old one, see current
// below), relayed with the tunnel's idle timeout and counted and logged
// as a connection. On Shutdown the exit tells the entrance to open no new
// stream (go-away) and closes the session once its streams ended.
func (x *Exit) serveSession(st *exitState, t *exitTunnel, tc *tls.Conn, raw net.Conn, cs tls.ConnectionState, log *slog.Logger) {
	rc := &recordConn{Conn: tc}
	m, err := smux.Server(rc, muxConfig())
	if err != nil { // cannot happen: muxConfig is valid
		log.Error("tunnel session", "err", err)
		return
	}
	s := newSession(m, rc, raw, x.opts.Now())
	defer s.close()
	key := sessionKey{conn.ClientAddr(raw), t.cfg.Name}
	x.sessMu.Lock()
	n := x.sessions[key]
	if n < MuxMaxSessionsPerPeer {
		x.sessions[key]++
	}
	x.sessMu.Unlock()
	if n >= MuxMaxSessionsPerPeer {
		x.srv.warnLimited("entrance over its session limit; session closed", "tunnel", t.cfg.Name,
			"peer", raw.RemoteAddr().String(), "max_sessions", MuxMaxSessionsPerPeer)
		x.srv.c.refusedStreams.Add(1)
		return
	}
	defer func() {
		x.sessMu.Lock()
		if x.sessions[key]--; x.sessions[key] <= 0 {
			delete(x.sessions, key)
		}
		x.sessMu.Unlock()
	}()
	timer := time.AfterFunc(st.cfg.HandshakeTimeout, s.close)
	ctl, err := m.AcceptStream()
	timer.Stop()
	if err != nil {
		return
	}
	s.ctl = ctl
	s.send(ctlHello, 0)
	// The session is the carrier, not a client connection: Accepted and
	// Active count its streams (Sessions counts it).
	x.srv.c.accepted.Add(^uint64(0))
	x.srv.c.active.Add(-1)
	defer x.srv.c.active.Add(1)
	x.srv.c.sessions.Add(1)
	defer x.srv.c.sessions.Add(-1)
	go s.readControl(nil)
	stop := context.AfterFunc(x.srv.Context(), func() {
		s.send(ctlGoAway, 0)
		s.drain()
	})
	defer stop()

	// A reload that dropped the tunnel, or changed what authenticates
	// its peers, ends the session as it would have ended a connection's
	// life: open streams keep their configuration to their end, no new
	// stream is taken (go-away), and the entrance dials again under the
	// new configuration. Checked at each reload and at each new stream.
	var verified atomic.Pointer[credentials]
	verified.Store(t.creds)
	current := func() (*exitTunnel, bool) {
		cur, err := x.cur.Load().lookup(cs.ServerName)
		if err != nil {
			log.Warn("tunnel no longer served by this exit; draining its session", "err", err)
			s.send(ctlGoAway, 0)
			s.drain()
			return nil, false
		}
		if v := verified.Load(); cur.creds != v {
			if err := cur.creds.verify(cs.PeerCertificates); err != nil {
				x.srv.c.authFailures.Add(1)
				log.Error("peer failed authentication", "exit", st.cfg.Listener,
					"err", fmt.Errorf("tunnel %q: the session's peer no longer passes the tunnel's authentication (changed by a reload); "+
						"draining the session: %w", cur.cfg.Name, err))
				s.send(ctlGoAway, 0)
				s.drain()
				return nil, false
			}
			verified.CompareAndSwap(v, cur.creds)
		}
		return cur, true
	}
	x.sessMu.Lock()
	x.recheck[s] = func() {
		if s.isUsable() {
			current()
		}
	}
	x.sessMu.Unlock()
	defer func() {
		x.sessMu.Lock()
		delete(x.recheck, s)
		x.sessMu.Unlock()
	}()

	for {
		sm, err := m.AcceptStream()
		if err != nil {
			return
		}
		ms, ok := s.register(sm)
		if !ok {
			if !ms.reset.Load() {
				x.srv.c.refusedStreams.Add(1)
				x.srv.warnLimited("tunnel session over its stream limit; stream reset", "tunnel", t.cfg.Name,
					"peer", raw.RemoteAddr().String(), "max_streams", MuxMaxStreams)
			}
			ms.Abort()
			continue
		}
		cur, ok := current()
		if !ok {
			ms.Abort()
			continue
		}
		cfg := cur.cfg
		err = x.srv.ServeStream(ms, func(c net.Conn) {
			x.srv.c.accepted.Add(1)
			x.srv.c.active.Add(1)
			defer x.srv.c.active.Add(-1)
			x.srv.c.streams.Add(1)
			x.forward(cfg, c, log)
		})
		if err != nil {
			x.srv.c.refusedStreams.Add(1)
			ms.Abort()
		}
	}
}
