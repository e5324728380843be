package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"

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
	x := &Exit{opts: opts}
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
		st.tunnels[key] = &exitTunnel{cfg: *t, creds: creds, tls: creds.serverConfig()}
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
	conn.SetKeepAlive(c, cfg.KeepAlive)
	log := x.opts.Logger.With("tunnel", cfg.Name, "peer", c.RemoteAddr().String())

	dctx, cancel := context.WithTimeout(x.srv.Context(), cfg.ConnectTimeout)
	up, err := x.dial(dctx, cfg)
	cancel()
	if err != nil {
		x.srv.c.dialFails.Add(conn.ReasonOf(err))
		log.Warn("target unreachable; closing tunnel connection", "err", fmt.Errorf("tunnel %q: target %s: %w", cfg.Name, cfg.Target, err))
		return
	}
	if !x.srv.Track(up) {
		up.Close()
		return
	}
	defer x.srv.UntrackClose(up)
	_, err = x.srv.relay(tc, up, cfg.IdleTimeout)
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
