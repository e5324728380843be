package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/offedge/offedge/edge/conn"
)

// Entrance is the clear-text end of a tunnel (stunnel's `client = yes`): it
// accepts plain TCP connections and carries each over TLS 1.3 to the first
// exit that answers.
type Entrance struct {
	opts Options
	srv  *server
	cur  atomic.Pointer[entranceState]

	poolsMu sync.Mutex
	pools   []*muxPool // the current state's, and retired ones still draining
}

// entranceState is everything built from one EntranceConfig; Update swaps it whole.
type entranceState struct {
	cfg   EntranceConfig
	creds *credentials
	tls   *tls.Config // one TLS connection per client (no ALPN)
	// muxTLS offers MuxALPN; pool holds the sessions (nil without mux).
	muxTLS *tls.Config
	pool   *muxPool
}

// NewEntrance checks cfg, reads its secret or key files, and returns an
// entrance ready to Serve. It refuses an entrance the inventory puts on a
// public network unless AllowPublic is set.
func NewEntrance(cfg EntranceConfig, opts Options) (*Entrance, error) {
	opts = opts.withDefaults()
	st, err := buildEntrance(cfg, opts)
	if err != nil {
		return nil, err
	}
	e := &Entrance{opts: opts}
	e.srv = newServer("entrance", cfg.Name, opts.Logger, opts.Now, st.cfg.MaxConns, st.cfg.MaxConnsPerClient)
	e.install(st)
	return e, nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Keys == nil {
		o.Keys = new(KeyCache)
	}
	return o
}

func buildEntrance(cfg EntranceConfig, opts Options) (*entranceState, error) {
	if err := checkName(cfg.Name); err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("tunnel %q: entrance: %w", cfg.Name, err) }
	if len(cfg.Exits) == 0 {
		return nil, wrap(errors.New("no exits"))
	}
	for _, x := range cfg.Exits {
		if _, _, err := net.SplitHostPort(x); err != nil {
			return nil, wrap(fmt.Errorf("exit %q: %w (IPv6 literals need brackets: [2001:db8::102]:16000)", x, err))
		}
	}
	if cfg.Public && !cfg.AllowPublic {
		return nil, wrap(errors.New("the listener is on a public network: an entrance accepts clear text from anyone who can reach it; " +
			"put it on a private address, or set allow_public if this is really intended"))
	}
	if err := dialing(cfg.ConnectTimeout, cfg.IdleTimeout, cfg.KeepAlive); err != nil {
		return nil, wrap(err)
	}
	if err := limits(cfg.HandshakeTimeout, cfg.MaxConns, cfg.MaxConnsPerClient); err != nil {
		return nil, wrap(err)
	}
	cfg.Exits = append([]string(nil), cfg.Exits...)
	var curves []tls.CurveID
	switch cfg.KeyExchange {
	case "", "hybrid":
	case "x25519":
		curves = []tls.CurveID{tls.X25519}
	default:
		return nil, wrap(fmt.Errorf("key_exchange %q: want \"hybrid\" (default) or \"x25519\"", cfg.KeyExchange))
	}
	creds, err := loadCredentials(cfg.Name, cfg.Auth, cfg.Secrets, opts)
	if err != nil {
		return nil, wrap(err)
	}
	tc := creds.clientConfig(cfg.Name)
	tc.CurvePreferences = curves
	st := &entranceState{cfg: cfg, creds: creds, tls: tc}
	if cfg.Mux {
		st.muxTLS = tc.Clone()
		st.muxTLS.NextProtos = []string{MuxALPN}
	}
	return st, nil
}

// checkName refuses a tunnel name that cannot travel as a TLS server name.
func checkName(name string) error {
	if name == "" {
		return errors.New("tunnel: empty name")
	}
	if len(name) > 253 {
		return fmt.Errorf("tunnel %q: name longer than 253 bytes", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
		if !ok {
			return fmt.Errorf("tunnel %q: name may only use letters, digits, '-', '_' and '.' (it is sent as the TLS server name)", name)
		}
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("tunnel %q: name must not be an IP address (it is sent as the TLS server name)", name)
	}
	return nil
}

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed. It refuses a listener bound to a public (global unicast,
// non-private) or wildcard address unless AllowPublic is set, and logs a
// warning when the override is used.
func (e *Entrance) Serve(ln net.Listener) error {
	st := e.cur.Load()
	if reason := publicReason(ln.Addr()); reason != "" {
		if !st.cfg.AllowPublic {
			return fmt.Errorf("tunnel %q: entrance: refusing to listen on %s: %s; an entrance serves clear text, "+
				"bind it to a private or loopback address, or set allow_public", st.cfg.Name, ln.Addr(), reason)
		}
		e.opts.Logger.Warn("SERVING A TUNNEL ENTRANCE ON A PUBLIC ADDRESS (allow_public is set): anyone who reaches it reaches the service",
			"tunnel", st.cfg.Name, "listen", ln.Addr().String(), "reason", reason)
	}
	return e.srv.serve(ln, e.handle)
}

// publicReason says why addr counts as public, or "" when it does not.
func publicReason(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return ""
	}
	ip = ip.Unmap()
	switch {
	case ip.IsUnspecified():
		return "wildcard address (all interfaces, public ones included)"
	case ip.IsLoopback(), ip.IsPrivate(), ip.IsLinkLocalUnicast():
		return ""
	case ip.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(ip):
		return "" // carrier-grade NAT shared space, not reachable from the Internet
	case ip.IsGlobalUnicast():
		return "public address"
	}
	return ""
}

// Update replaces the configuration for new connections; open connections
// keep the one they started with. On error nothing changes.
func (e *Entrance) Update(cfg EntranceConfig) error {
	commit, err := e.Prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare builds cfg (credentials loaded, files read) without changing
// what is served, and returns the function that swaps it in; it lets the
// runtime apply a reload to every listener or to none.
func (e *Entrance) Prepare(cfg EntranceConfig) (commit func(), err error) {
	st, err := buildEntrance(cfg, e.opts)
	if err != nil {
		return nil, err
	}
	return func() {
		old := e.cur.Load()
		e.install(st)
		e.srv.SetLimits(st.cfg.MaxConns, st.cfg.MaxConnsPerClient)
		if old != nil && old.pool != nil {
			// Its sessions carry on with their streams, and close
			// with the last one; new clients use the new sessions.
			old.pool.retire()
		}
	}, nil
}

// install makes st the state of new connections, with its session pool.
func (e *Entrance) install(st *entranceState) {
	if st.cfg.Mux {
		st.pool = newMuxPool(e, st)
		e.poolsMu.Lock()
		e.pools = slices.DeleteFunc(e.pools, (*muxPool).done)
		e.pools = append(e.pools, st.pool)
		e.poolsMu.Unlock()
	}
	e.cur.Store(st)
}

// Shutdown stops accepting, waits for open connections until ctx is done,
// then closes them and returns ctx.Err().
// Sessions close once no stream is left on them.
func (e *Entrance) Shutdown(ctx context.Context) error {
	err := e.srv.Shutdown(ctx)
	e.poolsMu.Lock()
	pools := slices.Clone(e.pools)
	e.poolsMu.Unlock()
	for _, p := range pools {
		p.close()
	}
	return err
}

// Stats returns a snapshot of the entrance's counters.
func (e *Entrance) Stats() Stats { return e.srv.snapshot() }

func (e *Entrance) handle(c net.Conn) {
	st := e.cur.Load()
	cfg := st.cfg
	if cfg.KeepAlive != e.opts.ListenKeepAlive {
		conn.SetKeepAlive(c, cfg.KeepAlive)
	}
	log := e.opts.Logger.With("tunnel", cfg.Name, "client", c.RemoteAddr().String())

	var up net.Conn
	var err error
	if st.pool != nil {
		up, err = st.pool.open(e.srv.Context(), log)
	} else {
		up, err = e.connect(e.srv.Context(), st, st.tls, log)
	}
	if err != nil {
		log.Warn("no exit reachable; closing client connection", "err", err)
		return
	}
	if !e.srv.Track(up) {
		up.Close()
		return
	}
	defer e.srv.UntrackClose(up)
	if ms, ok := up.(*stream); ok {
		ms.relayTo(c)
	}
	start := e.opts.Now()
	res, err := e.srv.relay(c, up, cfg.IdleTimeout)
	switch {
	case err == nil:
	case refusedAfterHandshake(err, res.Down, up):
		e.srv.c.authFailures.Add(1)
		e.srv.c.handshakeFailures.Add(conn.ReasonWrongKey)
		log.Error("exit failed authentication", "exit", up.RemoteAddr().String(),
			"err", fmt.Errorf("tunnel %q: exit %s: the exit closed the connection right after the TLS handshake, "+
				"before sending any byte (in TLS 1.3 this is how it refuses our certificate): %w", cfg.Name, up.RemoteAddr(), explainRemote(err, st.creds.mode)))
	case quietErr(err):
	default:
		log.Info("connection ended with error", "exit", up.RemoteAddr().String(), "err", err, "duration", e.opts.Now().Sub(start))
	}
}

// Open connects to the first exit that answers, exactly as for a client,
// and returns the TLS connection that carries the service's bytes. Probes
// use it to check the tunnel end to end from its entrance node, without
// going through the entrance's listener (whose allow list admits the
// tunnel's users, not the node itself).
func (e *Entrance) Open(ctx context.Context) (net.Conn, error) {
	st := e.cur.Load()
	return e.connect(ctx, st, st.tls, e.opts.Logger.With("tunnel", st.cfg.Name, "client", "probe"))
}

// connect tries the exits in order and returns the first established TLS
// connection.
func (e *Entrance) connect(ctx context.Context, st *entranceState, tcfg *tls.Config, log *slog.Logger) (*tls.Conn, error) {
	tc, _, err := e.connectAt(ctx, st, tcfg, log)
	return tc, err
}

// connectAt is connect, also saying which of the exits answered.
func (e *Entrance) connectAt(ctx context.Context, st *entranceState, tcfg *tls.Config, log *slog.Logger) (*tls.Conn, int, error) {
	cfg := st.cfg
	var errs []error
	for i, exit := range cfg.Exits {
		tc, err := e.connectOne(ctx, st, tcfg, exit)
		if err == nil {
			return tc, i, nil
		}
		err = fmt.Errorf("tunnel %q: exit %s: %w", cfg.Name, exit, err)
		if errors.Is(err, ErrPeerKeyMismatch) || errors.Is(err, ErrPeerNameMismatch) {
			log.Error("exit failed authentication", "exit", exit, "err", err)
		} else {
			log.Warn("exit unreachable", "exit", exit, "err", err)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0, errors.Join(errs...)
}

func (e *Entrance) connectOne(ctx context.Context, st *entranceState, tcfg *tls.Config, exit string) (*tls.Conn, error) {
	cfg := st.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	raw, err := e.dial(dctx, cfg, exit)
	cancel()
	if err != nil {
		e.srv.c.dialFails.Add(conn.ReasonOf(err))
		return nil, fmt.Errorf("connect: %w", err)
	}
	tc := tls.Client(conn.NewBatchConn(raw), tcfg)
	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		raw.Close()
		herr := handshakeError(err, st.creds.mode)
		e.srv.c.handshakeFailures.Add(herr.Reason)
		if herr.Reason == conn.ReasonWrongKey || herr.Reason == conn.ReasonPeerName {
			e.srv.c.authFailures.Add(1)
		}
		return nil, herr
	}
	return tc, nil
}

func (e *Entrance) dial(ctx context.Context, cfg EntranceConfig, addr string) (net.Conn, error) {
	return conn.Dialer{Dial: e.opts.Dial, KeepAlive: cfg.KeepAlive}.DialContext(ctx, addr)
}

// isRemoteCertAlert reports whether err is an alert from the peer refusing our certificate.
// refusedAfterHandshake says whether a relay's error is the exit refusing
// our certificate. In TLS 1.3 the client's handshake ends before the
// server has checked the client certificate: a refusal arrives as an alert
// on the first read, or, when nothing came from the exit (down bytes), as
// a reset of the connection to it (the exit closed it with our first
// bytes unread) or a broken pipe (our next write came after that reset).
func refusedAfterHandshake(err error, down uint64, up net.Conn) bool {
	return isRemoteCertAlert(err) ||
		down == 0 && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) && fromConn(err, up)
}

func isRemoteCertAlert(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" {
		return false
	}
	msg := oe.Err.Error()
	return strings.Contains(msg, "bad certificate") || strings.Contains(msg, "certificate required") ||
		strings.Contains(msg, "unknown certificate") || strings.Contains(msg, "decrypt error")
}

// explainRemote turns the peer's TLS alerts into the likely cause.
func explainRemote(err error, mode string) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" {
		return err
	}
	msg := oe.Err.Error()
	switch {
	case isRemoteCertAlert(err):
		if mode == "psk" {
			return fmt.Errorf("the peer refused our certificate: %w: %w", ErrPeerKeyMismatch, err)
		}
		return fmt.Errorf("the peer refused our certificate (not issued by its CA, or our node name is not among its allowed peers): %w", err)
	case strings.Contains(msg, "unrecognized name"):
		return fmt.Errorf("the peer does not serve this tunnel name: %w", err)
	}
	return err
}

// handshakeError classifies a failed handshake and explains the peer's
// alerts. mode is the tunnel's authentication ("psk" or "pki").
func handshakeError(err error, mode string) *conn.HandshakeError {
	var he *conn.HandshakeError
	if errors.As(err, &he) {
		return he
	}
	err = explainRemote(err, mode)
	r := conn.ReasonProtocol
	switch {
	case errors.Is(err, ErrPeerKeyMismatch), isRemoteCertAlert(err):
		r = conn.ReasonWrongKey
	case errors.Is(err, ErrPeerNameMismatch):
		r = conn.ReasonPeerName
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		r = conn.ReasonReset
	default:
		if c := conn.ReasonOf(err); c == conn.ReasonTimeout || c == conn.ReasonReset {
			r = c
		}
	}
	return &conn.HandshakeError{Reason: r, Err: err}
}

// quietErr reports whether err is an ordinary way for a connection to end.
func quietErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
