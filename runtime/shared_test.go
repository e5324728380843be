package runtime

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/edge/acl"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/plan"
)

// counting is a backend that counts requests by path.
type counting struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newCounting(t *testing.T) *counting {
	c := &counting{hits: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[r.URL.Path]++
		c.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "backend %s", r.URL.Path)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *counting) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[path]
}

func (c *counting) addr() string { return strings.TrimPrefix(c.URL, "http://") }

// upstream is a plan upstream with every default resolved.
func upstream(name string, addrs ...string) httpedge.Upstream {
	u := httpedge.Upstream{Name: name, Keepalive: plan.DefaultKeepalive, ConnectTimeout: plan.DefaultConnectTimeout,
		ReadTimeout: plan.DefaultUpstreamRead, MaxFails: plan.DefaultMaxFails, FailTimeout: time.Hour}
	for _, a := range addrs {
		u.Servers = append(u.Servers, httpedge.UpstreamServer{Addr: a, Weight: 1})
	}
	u.Retries = len(addrs) - 1
	return u
}

func emptyResources() plan.Resources {
	return plan.Resources{Upstreams: map[string]httpedge.Upstream{}, Caches: map[string]httpedge.Cache{},
		AccessLogs: map[string]httpedge.AccessLog{}, Certificates: map[string]httpedge.Certificate{}}
}

// httpListeners are n plain HTTP listeners on 127.0.0.21 serving site.
func httpListeners(t *testing.T, n int, site httpedge.Site) []plan.Listener {
	var out []plan.Listener
	for range n {
		ap := netip.MustParseAddrPort("127.0.0.21:" + freePort(t, "127.0.0.21"))
		out = append(out, httpListener(ap, site))
	}
	return out
}

func httpListener(ap netip.AddrPort, sites ...httpedge.Site) plan.Listener {
	return plan.Listener{Name: "http " + ap.String(), Kind: plan.KindHTTP, Network: "lan", Addr: ap, ACL: acl.AllowAll(),
		HTTP: &httpedge.Config{Listener: "test " + ap.String(), Sites: sites, Limits: plan.DefaultLimits()}}
}

func proxyRoute(path, up string) httpedge.Route {
	return httpedge.Route{Path: path, Upstream: up, MaxBodyBytes: plan.DefaultMaxBodyBytes}
}

func startPlan(t *testing.T, p *plan.Plan) *Node {
	t.Helper()
	n, err := Start(p, Options{ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	for _, l := range p.Listeners {
		testutil.WaitTCP(t, l.Addr.String(), 5*time.Second)
	}
	return n
}

func get(t *testing.T, addr, host, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestFourListenersShareOnePool: a node with four listeners naming one
// upstream runs one pool: one health probe per server per interval (the
// interval here is an hour, so exactly the first one), and one failure
// state: once a request through one listener has found a server dead,
// requests through the other three do not try it again. With a pool per
// listener, as before, there were four probes and each listener tried the
// dead server once.
func TestFourListenersShareOnePool(t *testing.T) {
	be := newCounting(t)
	dead := testutil.FreeAddr(t)
	up := upstream("app", dead, be.addr())
	up.HealthCheck = &httpedge.HealthCheck{Path: "/health", Interval: time.Hour, Timeout: 2 * time.Second, Rise: 1, Fall: 1}
	res := emptyResources()
	res.Upstreams["app"] = up
	site := httpedge.Site{Name: "www", Hosts: []string{"www.example.org"}, Routes: []httpedge.Route{proxyRoute("/", "app")}}
	p := &plan.Plan{Node: "edge", Resources: res, Listeners: httpListeners(t, 4, site)}
	n := startPlan(t, p)

	testutil.Eventually(t, 5*time.Second, "the first health probe", func() bool { return be.count("/health") >= 1 })
	// A down server is skipped once the probe marks it; wait for that too,
	// so that the requests below see the state every listener shares.
	testutil.Eventually(t, 5*time.Second, "the dead server marked down", func() bool {
		for _, u := range n.Status().Upstreams {
			if u.Addr == dead {
				return !u.Up
			}
		}
		return false
	})
	for _, l := range p.Listeners {
		if resp, body := get(t, l.Addr.String(), "www.example.org", "/"); resp.StatusCode != 200 || body != "backend /" {
			t.Fatalf("%s: %d %q", l.Name, resp.StatusCode, body)
		}
	}
	if got := be.count("/health"); got != 1 {
		t.Errorf("%d health probes of the live server from four listeners; want 1 (one pool)", got)
	}
	st := n.Status()
	var servers int
	for _, u := range st.Upstreams {
		servers++
		if u.Addr == dead && u.Requests != 0 {
			t.Errorf("the dead server got %d requests after the shared pool marked it down", u.Requests)
		}
	}
	if servers != 2 {
		t.Errorf("status lists %d upstream servers; want 2 (one pool of two)", servers)
	}
	if be.count("/") != 4 {
		t.Errorf("the live server answered %d of 4 requests", be.count("/"))
	}
}

// TestTwoListenersShareOneCache: ovh3 serves its image route on ports 80
// and 443 with one cache: a fallback answer fetched through one listener
// is a hit on the other.
func TestTwoListenersShareOneCache(t *testing.T) {
	be := newCounting(t)
	res := emptyResources()
	res.Upstreams["off1"] = upstream("off1", be.addr())
	res.Caches["images /"] = httpedge.Cache{MaxBytes: 1 << 20, TTL: map[int]time.Duration{200: time.Hour}}
	site := httpedge.Site{Name: "images", Hosts: []string{"images.example.org"}, Routes: []httpedge.Route{{
		Path: "/", MaxBodyBytes: plan.DefaultMaxBodyBytes,
		Static: &httpedge.Static{Root: t.TempDir(), Fallback: "off1", Cache: "images /"},
	}}}
	p := &plan.Plan{Node: "ovh3", Resources: res, Listeners: httpListeners(t, 2, site)}
	startPlan(t, p)
	resp, _ := get(t, p.Listeners[0].Addr.String(), "images.example.org", "/a.jpg")
	if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("first: %d %s", resp.StatusCode, resp.Header.Get("X-Cache-Status"))
	}
	resp, body := get(t, p.Listeners[1].Addr.String(), "images.example.org", "/a.jpg")
	if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "HIT" || body != "backend /a.jpg" {
		t.Fatalf("other listener: %d %s %q; want a hit of the shared cache", resp.StatusCode, resp.Header.Get("X-Cache-Status"), body)
	}
	if be.count("/a.jpg") != 1 {
		t.Errorf("the fallback was asked %d times", be.count("/a.jpg"))
	}
}

// TestAccessLogLinesNeverSplit: four listeners write one access log under
// concurrent load; with a small buffer, separate writers flushed parts of
// lines at their own times and lines split and interleaved. Every line
// must be one whole JSON record.
func TestAccessLogLinesNeverSplit(t *testing.T) {
	be := newCounting(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	res := emptyResources()
	res.Upstreams["app"] = upstream("app", be.addr())
	res.AccessLogs[logPath] = httpedge.AccessLog{Path: logPath, BufferBytes: 4096, FlushInterval: 5 * time.Millisecond}
	site := httpedge.Site{Name: "www", Hosts: []string{"www.example.org"}, Routes: []httpedge.Route{proxyRoute("/", "app")},
		AccessLog: &httpedge.SiteLog{File: logPath, Format: "json"}}
	p := &plan.Plan{Node: "docker-prod", Resources: res, Listeners: httpListeners(t, 4, site)}
	startPlan(t, p)

	const perListener = 60
	ua := strings.TrimSpace(strings.Repeat("a-long-user-agent/1.0 ", 60)) // lines of ~1.6 KB: several per buffer, and across buffers
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, l := range p.Listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := range perListener {
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/%d/%d", l.Addr, l.Addr.Port(), i), nil)
				req.Host = "www.example.org"
				req.Header.Set("User-Agent", ua)
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	want := 4 * perListener
	var lines []string
	testutil.Eventually(t, 5*time.Second, "every line flushed", func() bool {
		b, _ := os.ReadFile(logPath)
		if strings.Count(string(b), "\n") < want {
			return false // the last lines are still buffered
		}
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return true
	})
	if len(lines) != want {
		t.Fatalf("%d lines for %d requests", len(lines), want)
	}
	seen := map[string]bool{}
	for i, line := range lines {
		var rec struct {
			URI string `json:"uri"`
			UA  string `json:"user_agent"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.UA != ua {
			t.Fatalf("line %d is not one whole record (%v): %.120q", i+1, err, line)
		}
		seen[rec.URI] = true
	}
	if len(seen) != want {
		t.Fatalf("%d distinct requests logged, want %d", len(seen), want)
	}
}

// reloadFixture is a node with two listeners serving version "1" of a
// site, and the means to build other versions of its plan.
type reloadFixture struct {
	t    *testing.T
	be   *counting
	a, b netip.AddrPort
	node *Node
}

func newReloadFixture(t *testing.T) *reloadFixture {
	f := &reloadFixture{t: t, be: newCounting(t),
		a: netip.MustParseAddrPort("127.0.0.21:" + freePort(t, "127.0.0.21")),
		b: netip.MustParseAddrPort("127.0.0.21:" + freePort(t, "127.0.0.21"))}
	f.node = startPlan(t, f.plan("1", nil))
	f.requireVersion("1")
	return f
}

// plan is version v of the node's plan; change alters it further.
func (f *reloadFixture) plan(v string, change func(p *plan.Plan)) *plan.Plan {
	res := emptyResources()
	res.Upstreams["app"] = upstream("app", f.be.addr())
	site := httpedge.Site{Name: "www", Hosts: []string{"www.example.org"}, Headers: map[string]string{"X-Version": v},
		Routes: []httpedge.Route{proxyRoute("/", "app")}}
	p := &plan.Plan{Node: "edge", Resources: res, Listeners: []plan.Listener{httpListener(f.a, site), httpListener(f.b, site)}}
	if change != nil {
		change(p)
	}
	return p
}

// requireVersion checks that both listeners serve version v.
func (f *reloadFixture) requireVersion(v string) {
	f.t.Helper()
	for _, ap := range []netip.AddrPort{f.a, f.b} {
		resp, body := get(f.t, ap.String(), "www.example.org", "/")
		if resp.StatusCode != 200 || resp.Header.Get("X-Version") != v || body != "backend /" {
			f.t.Fatalf("%s: %d version %q %q; want version %s on every listener", ap, resp.StatusCode, resp.Header.Get("X-Version"), body, v)
		}
	}
}

// TestRefusedReloadsChangeNothing: a reload that cannot apply in full
// applies not at all. Each new plan also moves both listeners to version
// 2, so that a reload applied in part would show; each is refused, counted
// in failed_reloads, and leaves version 1 serving on both listeners.
func TestRefusedReloadsChangeNothing(t *testing.T) {
	f := newReloadFixture(t)
	taken, err := net.Listen("tcp", "127.0.0.21:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	md5 := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(md5, []byte("admin:$apr1$x9Qa0h1k$QbHYYbvB0Vb5ydWP4wU5b/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		change     func(p *plan.Plan)
	}{
		{"a new listener cannot bind", "listening on", func(p *plan.Plan) {
			ap := netip.MustParseAddrPort(taken.Addr().String())
			p.Listeners = append(p.Listeners, httpListener(ap, p.Listeners[0].HTTP.Sites...))
		}},
		{"a missing certificate", "certificate", func(p *plan.Plan) {
			p.Resources.Certificates["www"] = httpedge.Certificate{CertFile: filepath.Join(dir, "none.pem"), KeyFile: filepath.Join(dir, "none-key.pem")}
			ap := netip.MustParseAddrPort("127.0.0.21:" + freePort(t, "127.0.0.21"))
			l := httpListener(ap, p.Listeners[0].HTTP.Sites...)
			l.HTTP.TLS = true
			l.HTTP.Sites = []httpedge.Site{p.Listeners[0].HTTP.Sites[0]}
			l.HTTP.Sites[0].Certificate = "www"
			p.Listeners = append(p.Listeners, l)
		}},
		{"a non-bcrypt htpasswd", "htpasswd", func(p *plan.Plan) {
			s := &p.Listeners[1].HTTP.Sites[0]
			s.Routes = append(s.Routes, httpedge.Route{Path: "/admin/", Upstream: "app", MaxBodyBytes: plan.DefaultMaxBodyBytes, BasicAuthFile: md5})
		}},
		{"a missing static root", "root", func(p *plan.Plan) {
			s := &p.Listeners[1].HTTP.Sites[0]
			s.Routes = append(s.Routes, httpedge.Route{Path: "/static/", MaxBodyBytes: plan.DefaultMaxBodyBytes, Static: &httpedge.Static{Root: filepath.Join(dir, "missing")}})
		}},
	}
	for i, tc := range cases {
		// Each case's plan is built on its own copy of the sites.
		p := f.plan("2", nil)
		for j := range p.Listeners {
			cfg := *p.Listeners[j].HTTP
			cfg.Sites = []httpedge.Site{cfg.Sites[0]}
			cfg.Sites[0].Routes = append([]httpedge.Route(nil), cfg.Sites[0].Routes...)
			p.Listeners[j].HTTP = &cfg
		}
		tc.change(p)
		err := f.node.Apply(context.Background(), p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("%s: Apply = %v; want a refusal naming %q", tc.name, err, tc.want)
		}
		f.requireVersion("1")
		st := f.node.Status()
		if st.FailedReloads != uint64(i+1) || st.Reloads != uint64(i+1) || len(st.Listeners) != 2 || st.LastError == "" {
			t.Fatalf("%s: status %+v; want %d failed reloads and the 2 listeners", tc.name, st, i+1)
		}
		if got := f.node.Plan().Listeners[0].HTTP.Sites[0].Headers["X-Version"]; got != "1" {
			t.Fatalf("%s: the plan in force became version %q", tc.name, got)
		}
	}
	// The sockets and resources of the refused reloads are gone: the good
	// reload binds the port that was taken, and the open resources are the
	// running plan's only.
	taken.Close()
	if err := f.node.Apply(context.Background(), f.plan("2", nil)); err != nil {
		t.Fatal(err)
	}
	f.requireVersion("2")
	if st := f.node.Status(); st.FailedReloads != uint64(len(cases)) || st.LastError != "" || strings.Join(st.Resources, ",") != "upstream app" {
		t.Fatalf("after a good reload: %+v", st)
	}
}

// TestReloadKeepsResourcesStillDeclared: a reload that declares a resource
// unchanged keeps the same object (a pool's counters and health carry
// on), one whose declaration changed is rebuilt, and one no longer
// declared is closed. A plan that cannot be loaded is a failed reload too.
func TestReloadKeepsResourcesStillDeclared(t *testing.T) {
	f := newReloadFixture(t)
	requests := func() uint64 {
		for _, u := range f.node.Status().Upstreams {
			if u.Pool == "app" {
				return u.Requests
			}
		}
		return 0
	}
	before := requests()
	if before == 0 {
		t.Fatal("no request counted on the pool")
	}
	other := newCounting(t)
	p := f.plan("2", func(p *plan.Plan) {
		p.Resources.Upstreams["other"] = upstream("other", other.addr())
		s := &p.Listeners[0].HTTP.Sites[0]
		s.Routes = append(append([]httpedge.Route(nil), s.Routes...), proxyRoute("/other/", "other"))
	})
	if err := f.node.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := requests(); got != before {
		t.Fatalf("the app pool's counter went from %d to %d across a reload that kept it", before, got)
	}
	f.requireVersion("2")
	if strings.Join(f.node.Status().Resources, ",") != "upstream app,upstream other" {
		t.Fatalf("resources %v", f.node.Status().Resources)
	}
	if err := f.node.Apply(context.Background(), f.plan("3", nil)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.node.Status().Resources, ",") != "upstream app" {
		t.Fatalf("after dropping it, resources %v", f.node.Status().Resources)
	}
	err := f.node.Reload(context.Background(), func() (*plan.Plan, error) { return nil, fmt.Errorf("inventory.yaml:3: broken") })
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Reload = %v", err)
	}
	if st := f.node.Status(); st.FailedReloads != 1 || st.Reloads != 3 {
		t.Fatalf("a refused load: %+v; want counted as a failed reload", st)
	}
	f.requireVersion("3")
}

// TestReloadReplacesAListenerThatTurnsTLS: a listener whose TLS switch
// changes cannot be updated in place; the reload builds the new server
// first (certificate loaded), then moves the socket to it. The other
// listener is updated in place.
func TestReloadReplacesAListenerThatTurnsTLS(t *testing.T) {
	f := newReloadFixture(t)
	cf, kf, err := certs.WriteSelfSigned(t.TempDir(), certs.SelfSignedOptions{Names: []string{"www.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	p := f.plan("2", func(p *plan.Plan) {
		p.Resources.Certificates["www"] = httpedge.Certificate{CertFile: cf, KeyFile: kf}
		cfg := *p.Listeners[0].HTTP
		cfg.TLS = true
		cfg.Sites = []httpedge.Site{cfg.Sites[0]}
		cfg.Sites[0].Certificate = "www"
		cfg.Sites[0].Default = true
		p.Listeners[0].HTTP = &cfg
	})
	if err := f.node.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", "https://"+f.a.String()+"/", nil)
	req.Host = "www.example.org"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("the replaced listener does not speak TLS: %v", err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Version") != "2" {
		t.Fatalf("TLS listener serves version %q", resp.Header.Get("X-Version"))
	}
	if r, _ := get(t, f.b.String(), "www.example.org", "/"); r.Header.Get("X-Version") != "2" {
		t.Fatalf("the other listener serves version %q", r.Header.Get("X-Version"))
	}
	if st := f.node.Status(); len(st.Listeners) != 2 || st.FailedReloads != 0 {
		t.Fatalf("status %+v", st)
	}
}
