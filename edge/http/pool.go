package httpedge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/conn"
)

// upstreamIdleTimeout closes kept-alive upstream connections idle this long.
const upstreamIdleTimeout = 60 * time.Second

// checkUpstream refuses the zero values a pool would otherwise have to
// replace: the plan resolves every default.
func checkUpstream(u *Upstream) error {
	switch {
	case u.Keepalive == 0:
		return errors.New("keepalive is 0: give the number of idle connections kept per server (-1 keeps none)")
	case u.ConnectTimeout <= 0:
		return fmt.Errorf("connect_timeout %v must be positive", u.ConnectTimeout)
	case u.ReadTimeout <= 0:
		return fmt.Errorf("read_timeout %v must be positive", u.ReadTimeout)
	case u.MaxFails == 0:
		return errors.New("max_fails is 0: give the failures that take a server out (-1: never)")
	case u.FailTimeout <= 0:
		return fmt.Errorf("fail_timeout %v must be positive", u.FailTimeout)
	case u.Queue > 0 && u.QueueTimeout <= 0:
		return fmt.Errorf("queue_timeout %v must be positive when requests may queue", u.QueueTimeout)
	}
	for _, sv := range u.Servers {
		if sv.Weight < 1 {
			return fmt.Errorf("server %q: weight %d must be at least 1", sv.Addr, sv.Weight)
		}
	}
	if hc := u.HealthCheck; hc != nil {
		if hc.Interval <= 0 || hc.Timeout <= 0 || hc.Rise <= 0 || hc.Fall <= 0 {
			return fmt.Errorf("health check: interval (%v), timeout (%v), rise (%d) and fall (%d) must all be positive", hc.Interval, hc.Timeout, hc.Rise, hc.Fall)
		}
	}
	return nil
}

func validateUpstream(u *Upstream) error {
	if len(u.Servers) == 0 {
		return errors.New("no servers")
	}
	primaries := 0
	capped := false
	seen := map[string]bool{}
	for i, sv := range u.Servers {
		host, port, err := net.SplitHostPort(sv.Addr)
		if err != nil || host == "" {
			return fmt.Errorf("server %d %q: address must be host:port", i, sv.Addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("server %q: bad port", sv.Addr)
		}
		if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
			return fmt.Errorf("server %q: bad host", sv.Addr)
		}
		if sv.Weight < 0 {
			return fmt.Errorf("server %q: negative weight", sv.Addr)
		}
		if sv.MaxConns < 0 {
			return fmt.Errorf("server %q: negative max_conns; 0 means no cap", sv.Addr)
		}
		if sv.MaxConns > 0 {
			capped = true
		}
		if seen[sv.Addr] {
			return fmt.Errorf("server %q: listed twice", sv.Addr)
		}
		seen[sv.Addr] = true
		if !sv.Backup {
			primaries++
		}
	}
	if primaries == 0 {
		return errors.New("every server is a backup; at least one must be primary")
	}
	if u.Queue < 0 {
		return fmt.Errorf("negative queue %d; 0 means no request waits", u.Queue)
	}
	if u.Queue > 0 && !capped {
		return errors.New("a queue needs max_conns on at least one server (requests only wait for a capped server)")
	}
	if hc := u.HealthCheck; hc != nil {
		if len(hc.Path) == 0 || hc.Path[0] != '/' {
			return fmt.Errorf("health check path %q must start with /", hc.Path)
		}
		if _, err := url.ParseRequestURI(hc.Path); err != nil || strings.ContainsAny(hc.Path, " \r\n#") {
			return fmt.Errorf("health check path %q is not a request URI", hc.Path)
		}
		if hc.Status != 0 && (hc.Status < 100 || hc.Status > 599) {
			return fmt.Errorf("health check status %d is not an HTTP status", hc.Status)
		}
	}
	if u.Host != "" {
		if _, ok := normalizeHost(u.Host); !ok {
			return fmt.Errorf("host header %q is not a valid host", u.Host)
		}
	}
	return nil
}

// pool is a built upstream: its servers, their connections and health. One
// pool exists per declared upstream of a node, shared by every Server
// (listener) whose routes name it, so health checks run once and one
// failure state decides for all listeners.
type pool struct {
	name     string
	cfg      Upstream
	backends []*backend
	log      *slog.Logger
	now      func() time.Time
	// realClock: now is time.Now (Options.realClock).
	realClock bool
	cancel    context.CancelFunc
	probeReq  *http.Request // the health check's request (URI, User-Agent)

	mu    sync.Mutex // smooth weighted round robin state, active counts, queue
	queue []*waiter  // requests waiting for a server under max_conns, oldest first
}

type backend struct {
	addr       string
	weight     int
	backup     bool
	hostHeader string    // Host sent when the pool sets none and the client sent none
	client     *h1Client // the server's connections: traffic and health probes alike

	current  int // SWRR, guarded by pool.mu
	active   int // requests holding a connection now, guarded by pool.mu
	maxConns int // cap on active; 0: none

	mu        sync.Mutex
	failTimes []time.Time // failures within FailTimeout
	downUntil time.Time

	activeDown atomic.Bool
	requests   atomic.Uint64
	fails      atomic.Uint64
	retried    atomic.Uint64 // requests that failed here and were sent to another server
	maxFails   int
	failWindow time.Duration
}

// newPool builds the pool for u and starts its health checks.
func newPool(u Upstream, opts Options) (*pool, error) {
	if err := validateUpstream(&u); err != nil {
		return nil, err
	}
	if err := checkUpstream(&u); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	p := &pool{name: u.Name, cfg: u, log: opts.Logger, now: opts.Now, realClock: opts.realClock}
	for _, sv := range u.Servers {
		b := &backend{addr: sv.Addr, weight: sv.Weight, backup: sv.Backup, maxConns: sv.MaxConns,
			maxFails: u.MaxFails, failWindow: u.FailTimeout, hostHeader: sv.Addr}
		b.client = newH1Client(opts, u, sv)
		p.backends = append(p.backends, b)
	}
	if hc := u.HealthCheck; hc != nil {
		uri, err := url.ParseRequestURI(hc.Path)
		if err != nil {
			return nil, fmt.Errorf("health check path %q: %w", hc.Path, err)
		}
		p.probeReq = &http.Request{Method: http.MethodGet, URL: uri, Header: http.Header{"User-Agent": {"offedge-health-check"}}}
		ctx, cancel := context.WithCancel(context.Background())
		p.cancel = cancel
		for _, b := range p.backends {
			go p.healthLoop(ctx, b)
		}
	}
	return p, nil
}

func (p *pool) close() {
	if p.cancel != nil {
		p.cancel()
	}
	for _, b := range p.backends {
		b.client.closeIdle()
	}
}

// newH1Client is the one client of a server, plain or TLS: the same
// connection pool, request writer (one forwarding-header policy) and
// response reader; TLS only changes how a connection is opened.
func newH1Client(opts Options, u Upstream, sv UpstreamServer) *h1Client {
	dial := opts.Dial
	if dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	c := &h1Client{addr: sv.Addr, dial: dial, connectTimeout: u.ConnectTimeout, readTimeout: u.ReadTimeout, maxIdle: max(u.Keepalive, 0)}
	if sv.TLS {
		host, _, _ := net.SplitHostPort(sv.Addr)
		sni := sv.ServerName
		if sni == "" {
			if _, err := netip.ParseAddr(host); err != nil {
				sni = host
			} else if h, ok := normalizeHost(u.Host); ok {
				sni = h
			}
		}
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs, ServerName: sni,
			NextProtos: []string{"http/1.1"}, ClientSessionCache: tls.NewLRUClientSessionCache(max(u.Keepalive, 1))}
	}
	return c
}

// connectError marks a failure before any byte of the request was sent, so
// that any request may be retried on the next server.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// upstreamConn applies the read timeout between two reads (nginx
// proxy_read_timeout) and the same bound to writes that make no progress
// (proxy_send_timeout), refreshing the deadlines at most every tenth of the
// timeout (and at most once a second) rather than on every call.
type upstreamConn struct {
	net.Conn
	rw          io.ReadWriter // conn.DataPath(Conn)
	readTimeout time.Duration
	lastRead    int64
	lastWrite   int64
	// now, when set, is the clock reading of the request being sent
	// (unix ns) that the refreshes use instead of reading the clock
	// (exchange sets it while only heads are written and read).
	now int64
	// aborted is set when the client went away: a deadline refresh
	// after it must not undo the deadline in the past that abort set.
	aborted atomic.Bool
	abortFn func() // abort, bound once (watchCancel)
}

func newUpstreamConn(raw net.Conn, readTimeout time.Duration) *upstreamConn {
	return &upstreamConn{Conn: raw, rw: conn.DataPath(raw), readTimeout: readTimeout}
}

// errAborted is a read or write on an upstream connection after the
// client went away.
var errAborted = fmt.Errorf("upstream exchange aborted: the client went away: %w", os.ErrDeadlineExceeded)

// abort ends the exchange on c: a read or write blocked now returns, and
// later ones fail. The connection is then closed, never reused.
func (c *upstreamConn) abort() {
	c.aborted.Store(true)
	_ = c.Conn.SetDeadline(aLongTimeAgo)
}

func (c *upstreamConn) refreshEvery() int64 {
	return min(int64(time.Second), int64(c.readTimeout/10))
}

// clock is the request's reading when exchange set one, else the clock's.
func (c *upstreamConn) clock() int64 {
	if c.now != 0 {
		return c.now
	}
	return time.Now().UnixNano()
}

// lastUsed is when the connection last read or wrote, to within a refresh
// period (the deadlines' refreshes note the time): the start of its idle
// time, without a clock reading.
func (c *upstreamConn) lastUsed() time.Time {
	if t := max(c.lastRead, c.lastWrite); t != 0 {
		return time.Unix(0, t)
	}
	return time.Now()
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	now := c.clock()
	if now-c.lastRead >= c.refreshEvery() {
		c.lastRead = now
		_ = c.Conn.SetReadDeadline(time.Unix(0, now).Add(c.readTimeout))
	}
	if c.aborted.Load() { // after the refresh: see abort
		return 0, errAborted
	}
	return c.rw.Read(p)
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	now := c.clock()
	if now-c.lastWrite >= c.refreshEvery() {
		c.lastWrite = now
		_ = c.Conn.SetWriteDeadline(time.Unix(0, now).Add(c.readTimeout))
	}
	if c.aborted.Load() {
		return 0, errAborted
	}
	return c.rw.Write(p)
}

func (c *upstreamConn) SetDeadline(t time.Time) error {
	c.lastRead, c.lastWrite = 0, 0
	return c.Conn.SetDeadline(t)
}

// usable reports whether the server may be chosen: not marked down by
// passive health (MaxFails within FailTimeout) nor by an active check.
func (b *backend) usable(now time.Time) bool {
	if b.activeDown.Load() {
		return false
	}
	b.mu.Lock()
	down := now.Before(b.downUntil)
	b.mu.Unlock()
	return !down
}

func (b *backend) failure(now time.Time) {
	b.fails.Add(1)
	if b.maxFails < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := b.failTimes[:0]
	for _, t := range b.failTimes {
		if now.Sub(t) < b.failWindow {
			keep = append(keep, t)
		}
	}
	b.failTimes = append(keep, now)
	if len(b.failTimes) >= b.maxFails {
		b.downUntil = now.Add(b.failWindow)
		b.failTimes = b.failTimes[:0]
	}
}

func (b *backend) success() {
	b.mu.Lock()
	if len(b.failTimes) > 0 {
		b.failTimes = b.failTimes[:0]
	}
	b.mu.Unlock()
}

// pick chooses a server by smooth weighted round robin (nginx's algorithm)
// among usable primaries, then usable backups; when none is usable it picks
// among all primaries rather than fail without trying (as nginx does for a
// pool whose every server is marked down). tried excludes servers already
// attempted for this request.
func (p *pool) pick(tried uint64) *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, _ := p.pickLocked(tried, p.now())
	return b
}

// pickLocked is pick with p.mu held. Servers at their max_conns are
// skipped; full reports that one was, so that the caller may queue.
func (p *pool) pickLocked(tried uint64, now time.Time) (best *backend, full bool) {
	for _, pass := range [3]int{0, 1, 2} {
		best = nil
		total := 0
		for i, b := range p.backends {
			if i < 64 && tried&(1<<i) != 0 {
				continue
			}
			switch pass {
			case 0:
				if b.backup || !b.usable(now) {
					continue
				}
			case 1:
				if !b.backup || !b.usable(now) {
					continue
				}
			case 2:
				if b.backup {
					continue
				}
			}
			if b.maxConns > 0 && b.active >= b.maxConns {
				full = true
				continue
			}
			b.current += b.weight
			total += b.weight
			if best == nil || b.current > best.current {
				best = b
			}
		}
		if best != nil {
			best.current -= total
			return best, false
		}
	}
	return nil, full
}

func (p *pool) index(b *backend) int {
	for i, x := range p.backends {
		if x == b {
			return i
		}
	}
	return 0
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// errNoServer is returned when every server was tried.
var errNoServer = errors.New("no live upstream server")

// roundTrip sends pr to the pool, moving to the next server when a
// connection could not be established (any method: nothing was sent) or,
// for idempotent requests without a body, when the server failed before
// answering. It returns the response and the server that gave it.
func (p *pool) roundTrip(pr *proxyRequest) (*http.Response, *backend, error) {
	var tried uint64
	attempts := len(p.backends)
	if p.cfg.Retries > 0 {
		attempts = min(attempts, p.cfg.Retries+1)
	} else if p.cfg.Retries < 0 {
		attempts = 1
	}
	canRetryAfterSend := pr.retryable()
	var lastErr error = errNoServer
	var last *backend
	for a := 0; a < attempts; a++ {
		// The first pick at the request's clock reading (the server's
		// and the pool's clocks are both the real one then).
		now := pr.start
		if a > 0 || now.IsZero() || !p.realClock {
			now = p.now()
		}
		b, err := p.acquire(pr.ctx, tried, pr.stats, now)
		if errors.Is(err, errNoServer) {
			break // every server tried: report the last failure
		}
		if err != nil {
			return nil, last, err // queue full or timed out, client gone
		}
		tried |= 1 << (p.index(b) % 64)
		if last != nil {
			last.retried.Add(1)
		}
		b.requests.Add(1)
		host := pr.host
		if host == "" {
			host = b.hostHeader
		}
		resp, err := b.client.roundTrip(pr, host)
		if err == nil {
			b.success()
			p.releaseOnClose(b, resp)
			return resp, b, nil
		}
		p.release(b)
		last, lastErr = b, err
		if errors.Is(err, context.Canceled) && pr.ctx.Err() != nil {
			return nil, b, err // the client went away; not the server's fault
		}
		var cbe *clientBodyError
		if errors.As(err, &cbe) {
			return nil, b, err // the client's body failed; not the server's fault
		}
		if pr.stats != nil {
			pr.stats.upstreamErrors.Add(1)
		}
		b.failure(p.now())
		var ce *connectError
		if !errors.As(err, &ce) && !canRetryAfterSend {
			break
		}
		if pr.bodyStarted() {
			break
		}
		p.log.Warn("upstream attempt failed; trying next server", "upstream", p.name, "server", b.addr, "err", err)
	}
	return nil, last, lastErr
}

// healthLoop probes one server every Interval: Fall consecutive failures
// mark it down, Rise consecutive successes up again.
func (p *pool) healthLoop(ctx context.Context, b *backend) {
	hc := p.cfg.HealthCheck
	tick := time.NewTicker(hc.Interval)
	defer tick.Stop()
	okRun, badRun := 0, 0
	for {
		ok, skipped := p.probe(ctx, b, hc)
		if ctx.Err() != nil {
			return
		}
		if skipped {
			// Busy at max_conns: serving traffic; the state stays as it is.
		} else if ok {
			okRun, badRun = okRun+1, 0
			if b.activeDown.Load() && okRun >= hc.Rise {
				b.activeDown.Store(false)
				p.log.Info("upstream server up", "upstream", p.name, "server", b.addr)
			}
		} else {
			okRun, badRun = 0, badRun+1
			if !b.activeDown.Load() && badRun >= hc.Fall {
				b.activeDown.Store(true)
				p.log.Warn("upstream server down (health check)", "upstream", p.name, "server", b.addr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe sends the health check through the server's own client, the
// connections traffic uses: a probe sees what a request would (a pool of
// stale connections, a TLS failure), and costs no connection of its own
// while the server keeps one idle.
func (p *pool) probe(ctx context.Context, b *backend, hc *HealthCheck) (ok, skipped bool) {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	host := p.cfg.Host
	if host == "" {
		host = b.hostHeader
	}
	if !p.tryAcquire(b) {
		return false, true // busy at max_conns: no probe this round
	}
	defer p.release(b)
	pr := proxyRequest{ctx: ctx, r: p.probeReq, method: http.MethodGet, probe: true}
	resp, err := b.client.roundTrip(&pr, host)
	if err != nil {
		return false, false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if hc.Status != 0 {
		return resp.StatusCode == hc.Status, false
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 400, false
}
