package httpedge

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/internal/testutil"
)

// testLogger sends the server's logs to the test log, at debug level when
// -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testNode declares the node-level resources a test's Config names
// (pools, caches, access logs, certificates) and builds them once, as the
// runtime does for a node. It fills the zero values a plan would have
// resolved, so that a test states only what it is about.
type testNode struct {
	t      testing.TB
	ups    map[string]Upstream
	caches map[string]Cache
	logs   map[string]AccessLog
	certs  map[string]Certificate
	built  Resources
	specs  map[string]any // what each built resource was built from
}

func newNode(t testing.TB) *testNode {
	n := &testNode{t: t, ups: map[string]Upstream{}, caches: map[string]Cache{}, logs: map[string]AccessLog{}, certs: map[string]Certificate{},
		built: Resources{Pools: map[string]*Pool{}, Caches: map[string]*ResponseCache{}, AccessLogs: map[string]*LogFile{}, Certificates: map[string]*certs.Cert{}},
		specs: map[string]any{}}
	t.Cleanup(func() { n.built.Close() })
	return n
}

// up declares a pool and returns its name.
func (n *testNode) up(u Upstream) string {
	if u.Keepalive == 0 {
		u.Keepalive = 16
	}
	if u.ConnectTimeout == 0 {
		u.ConnectTimeout = 5 * time.Second
	}
	if u.ReadTimeout == 0 {
		u.ReadTimeout = 60 * time.Second
	}
	if u.MaxFails == 0 {
		u.MaxFails = 1
	}
	if u.FailTimeout == 0 {
		u.FailTimeout = 10 * time.Second
	}
	u.Servers = append([]UpstreamServer(nil), u.Servers...)
	for i := range u.Servers {
		if u.Servers[i].Weight == 0 {
			u.Servers[i].Weight = 1
		}
	}
	if hc := u.HealthCheck; hc != nil {
		c := *hc
		if c.Interval == 0 {
			c.Interval = 5 * time.Second
		}
		if c.Timeout == 0 {
			c.Timeout = 2 * time.Second
		}
		if c.Rise == 0 {
			c.Rise = 2
		}
		if c.Fall == 0 {
			c.Fall = 3
		}
		u.HealthCheck = &c
	}
	n.ups[u.Name] = u
	return u.Name
}

// cache declares a cache and returns its name.
func (n *testNode) cache(c Cache) string {
	name := fmt.Sprintf("cache%d", len(n.caches))
	n.caches[name] = c
	return name
}

// log declares an access log file and returns a site's use of it.
func (n *testNode) log(a AccessLog, format string) *SiteLog {
	if a.BufferBytes == 0 {
		a.BufferBytes = 256 << 10
	}
	if a.FlushInterval == 0 {
		a.FlushInterval = time.Second
	}
	n.logs[a.Path] = a
	return &SiteLog{File: a.Path, Format: format}
}

// cert declares a certificate and returns its name.
func (n *testNode) cert(certFile, keyFile string) string {
	n.certs[certFile] = Certificate{CertFile: certFile, KeyFile: keyFile}
	return certFile
}

// res builds what was declared and not built yet (or declared anew).
func (n *testNode) res(opts Options) (Resources, error) {
	same := func(key string, spec any) bool {
		old, ok := n.specs[key]
		return ok && reflect.DeepEqual(old, spec)
	}
	for name, u := range n.ups {
		if same("u"+name, u) {
			continue
		}
		p, err := NewPool(u, opts)
		if err != nil {
			return Resources{}, err
		}
		if old, ok := n.built.Pools[name]; ok {
			old.Close()
		}
		n.built.Pools[name], n.specs["u"+name] = p, u
	}
	for name, c := range n.caches {
		if same("c"+name, c) {
			continue
		}
		rc, err := NewCache(c, opts)
		if err != nil {
			return Resources{}, err
		}
		n.built.Caches[name], n.specs["c"+name] = rc, c
	}
	for name, a := range n.logs {
		if same("l"+name, a) {
			continue
		}
		l, err := OpenAccessLog(a)
		if err != nil {
			return Resources{}, err
		}
		n.built.AccessLogs[name], n.specs["l"+name] = l, a
	}
	for name, c := range n.certs {
		if same("t"+name, c) {
			continue
		}
		ct, err := LoadCertificate(c, opts)
		if err != nil {
			return Resources{}, err
		}
		n.built.Certificates[name], n.specs["t"+name] = ct, c
	}
	return n.built, nil
}

// testLimits are the limits of a test server whose test sets none.
var testLimits = Limits{ReadHeaderTimeout: 10 * time.Second, ReadBodyTimeout: 60 * time.Second, IdleTimeout: 75 * time.Second,
	MaxHeaderBytes: 16 << 10, ShutdownTimeout: 30 * time.Second, SendTimeout: 60 * time.Second, MaxConns: 16384, MaxConnsPerClient: 1024}

// filled returns cfg with the zero values a plan resolves filled.
func filled(cfg Config) Config {
	l := &cfg.Limits
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.ReadHeaderTimeout, testLimits.ReadHeaderTimeout}, {&l.ReadBodyTimeout, testLimits.ReadBodyTimeout}, {&l.IdleTimeout, testLimits.IdleTimeout},
		{&l.ShutdownTimeout, testLimits.ShutdownTimeout}, {&l.SendTimeout, testLimits.SendTimeout}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = testLimits.MaxHeaderBytes
	}
	if l.MaxConns == 0 {
		l.MaxConns = testLimits.MaxConns
	}
	if l.MaxConnsPerClient == 0 {
		l.MaxConnsPerClient = testLimits.MaxConnsPerClient
	}
	cfg.Sites = append([]Site(nil), cfg.Sites...)
	for i := range cfg.Sites {
		st := &cfg.Sites[i]
		st.Routes = append([]Route(nil), st.Routes...)
		for j := range st.Routes {
			rt := &st.Routes[j]
			if rt.MaxBodyBytes == 0 {
				rt.MaxBodyBytes = 1 << 20
			}
			if rt.Redirect != "" && rt.RedirectCode == 0 {
				rt.RedirectCode = 301
			}
		}
	}
	return cfg
}

// newServer builds a Server for cfg on the node's resources.
func (n *testNode) newServer(cfg Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = testLogger(n.t)
	}
	res, err := n.res(opts)
	if err != nil {
		return nil, err
	}
	return NewServer(filled(cfg), res, opts)
}

// update applies cfg to s on the node's resources.
func (n *testNode) update(s *Server, cfg Config) error {
	res, err := n.res(s.opts)
	if err != nil {
		return err
	}
	return s.Update(filled(cfg), res)
}

// start runs a Server for cfg on 127.0.0.1:0 and returns it and its address.
func (n *testNode) start(cfg Config, opts Options) (*Server, string) {
	t := n.t
	t.Helper()
	s, err := n.newServer(cfg, opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	testutil.WaitTCP(t, ln.Addr().String(), 5*time.Second)
	return s, ln.Addr().String()
}

// backend is an httptest upstream that counts requests and connections.
type testBackend struct {
	*httptest.Server
	requests atomic.Int64
	conns    atomic.Int64
}

func newBackend(t testing.TB, h http.HandlerFunc) *testBackend {
	t.Helper()
	b := &testBackend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		h(w, r)
	}))
	b.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

func (b *testBackend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

func textHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}
}

// proxySite is a one-route site proxying everything to addrs.
func (n *testNode) proxySite(name string, hosts []string, addrs ...string) Site {
	up := Upstream{Name: name + "-up"}
	for _, a := range addrs {
		up.Servers = append(up.Servers, UpstreamServer{Addr: a})
	}
	return Site{Name: name, Hosts: hosts, Routes: []Route{{Path: "/", Upstream: n.up(up)}}}
}

// client returns an HTTP client that sends every request to addr,
// whatever the URL's host, and does not follow redirects.
func client(addr string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(b)
}

// raw sends bytes on a fresh connection and parses one response.
func raw(t testing.TB, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", firstLine(request), err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\r'); i >= 0 && i < 80 {
		return s[:i]
	}
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t testing.TB) string { return testutil.FreeAddr(t) }

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// droppingServer accepts connections, reads n bytes of each (so a request
// was sent) and closes it without answering; it counts the connections.
func droppingServer(t testing.TB, n int) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	calls := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			calls.Add(1)
			go func() { io.ReadAtLeast(c, make([]byte, n), n); c.Close() }()
		}
	}()
	return ln, calls
}
