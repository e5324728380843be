package httpedge

import (
	"github.com/offedge/offedge/internal/testutil"

	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"golang.org/x/crypto/bcrypt"
)

func TestVirtualHosts(t *testing.T) {
	n := newNode(t)
	off := newBackend(t, textHandler("off"))
	pro := newBackend(t, textHandler("pro"))
	def := newBackend(t, textHandler("default"))
	ip6 := newBackend(t, textHandler("v6"))
	cfg := Config{Listener: "test", Sites: []Site{
		n.proxySite("off", []string{"openfoodfacts.org", "*.openfoodfacts.org"}, off.addr()),
		n.proxySite("pro", []string{"pro.openfoodfacts.org", "*.pro.openfoodfacts.org"}, pro.addr()),
		n.proxySite("v6", []string{"2001:db8::10"}, ip6.addr()),
	}}
	d := n.proxySite("catchall", []string{"catchall.example"}, def.addr())
	d.Default = true
	cfg.Sites = append(cfg.Sites, d)
	_, addr := n.start(cfg, Options{})
	c := client(addr)
	tests := []struct{ host, want string }{
		{"openfoodfacts.org", "off"},
		{"world.openfoodfacts.org", "off"},
		{"WORLD.OpenFoodFacts.org:443", "off"},
		{"pro.openfoodfacts.org", "pro"},
		{"fr.pro.openfoodfacts.org", "pro"},
		{"unknown.example", "default"},
		{"[2001:db8::10]:80", "v6"},
		{"192.0.2.1", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			resp, body := get(t, c, "http://x/", "Host", tt.host)
			if resp.StatusCode != 200 || body != tt.want {
				t.Fatalf("Host %q: %d %q, want %q", tt.host, resp.StatusCode, body, tt.want)
			}
		})
	}
}

// TestUnknownHostRefusedWithoutDefault: a plain HTTP listener follows the
// TLS rule. Before, an unknown Host was served by the first site, so a
// misspelt or stale DNS name showed whatever site came first.
func TestUnknownHostRefusedWithoutDefault(t *testing.T) {
	n := newNode(t)
	a := newBackend(t, textHandler("a"))
	b := newBackend(t, textHandler("b"))
	_, addr := n.start(Config{Sites: []Site{n.proxySite("a", []string{"a.example"}, a.addr()), n.proxySite("b", []string{"b.example"}, b.addr())}}, Options{})
	c := client(addr)
	for _, host := range []string{"nowhere.example", "192.0.2.1"} {
		if resp, body := get(t, c, "http://x/", "Host", host); resp.StatusCode != http.StatusMisdirectedRequest || body == "a" || body == "b" {
			t.Errorf("Host %q: %d %q; want 421 and no site", host, resp.StatusCode, body)
		}
	}
	if _, body := get(t, c, "http://x/", "Host", "b.example"); body != "b" {
		t.Errorf("Host b.example: %q; want b", body)
	}
	// HTTP/1.0 without Host has nowhere to go either.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.0\r\n\r\n")
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(line, " 421 ") {
		t.Errorf("HTTP/1.0 without Host: %q; want 421", line)
	}
}

func TestRedirectHTTPS(t *testing.T) {
	n := newNode(t)
	cfg := Config{RedirectHTTPS: true, Sites: []Site{{Name: "off", Hosts: []string{"*.openfoodfacts.org"}}}}
	_, addr := n.start(cfg, Options{})
	tests := []struct{ host, uri, want string }{
		{"world.openfoodfacts.org", "/product/123?x=1&y=%20", "https://world.openfoodfacts.org/product/123?x=1&y=%20"},
		{"world.openfoodfacts.org:80", "/", "https://world.openfoodfacts.org/"},
		{"[2001:db8::1]", "/a", "https://[2001:db8::1]/a"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.uri, func(t *testing.T) {
			resp, _ := raw(t, addr, "GET "+tt.uri+" HTTP/1.1\r\nHost: "+tt.host+"\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != 301 || resp.Header.Get("Location") != tt.want {
				t.Fatalf("%d Location %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), tt.want)
			}
		})
	}
}

func TestRoutesAndForwardedHeaders(t *testing.T) {
	n := newNode(t)
	api := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "api %s host=%s xri=%s xff=%s xfp=%s xfh=%s conn=%q", r.URL.RequestURI(), r.Host,
			r.Header.Get("X-Real-IP"), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Hop"))
	})
	root := newBackend(t, textHandler("root"))
	exact := newBackend(t, textHandler("exact"))
	cfg := Config{Sites: []Site{{
		Name:    "off",
		Hosts:   []string{"world.openfoodfacts.org"},
		Headers: map[string]string{"Strict-Transport-Security": "max-age=63072000", "X-Content-Type-Options": "nosniff"},
		Routes: []Route{
			{Path: "/", Upstream: n.up(Upstream{Name: "root", Servers: []UpstreamServer{{Addr: root.addr()}}})},
			{Path: "/api/", Upstream: n.up(Upstream{Name: "api", Host: "backend.internal", Servers: []UpstreamServer{{Addr: api.addr()}}}),
				Headers: map[string]string{"Access-Control-Allow-Origin": "*"}},
			{Path: "/api/v2/health", Exact: true, Upstream: n.up(Upstream{Name: "exact", Servers: []UpstreamServer{{Addr: exact.addr()}}})},
			{Path: "/old/", Redirect: "https://static.openfoodfacts.org", RedirectCode: 302},
		},
	}}}
	_, addr := n.start(cfg, Options{})
	c := client(addr)

	t.Run("longest prefix", func(t *testing.T) {
		resp, body := get(t, c, "http://world.openfoodfacts.org/api/v0/product/123?fields=a%2Cb",
			"X-Forwarded-For", "198.51.100.7", "Connection", "X-Hop", "X-Hop", "secret")
		want := "api /api/v0/product/123?fields=a%2Cb host=backend.internal xri=127.0.0.1 xff=198.51.100.7, 127.0.0.1 xfp=http xfh=world.openfoodfacts.org conn=\"\""
		if body != want {
			t.Fatalf("got  %s\nwant %s", body, want)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Strict-Transport-Security") != "max-age=63072000" {
			t.Fatalf("site and route headers not both added: %v", resp.Header)
		}
	})
	t.Run("exact beats prefix", func(t *testing.T) {
		if _, body := get(t, c, "http://world.openfoodfacts.org/api/v2/health"); body != "exact" {
			t.Fatalf("got %q", body)
		}
		if _, body := get(t, c, "http://world.openfoodfacts.org/api/v2/health/x"); !strings.HasPrefix(body, "api ") {
			t.Fatalf("exact route matched a longer path: %q", body)
		}
	})
	t.Run("root", func(t *testing.T) {
		resp, body := get(t, c, "http://world.openfoodfacts.org/product/1")
		if body != "root" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%q %v", body, resp.Header)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("route header leaked to another route")
		}
	})
	t.Run("redirect", func(t *testing.T) {
		resp, _ := get(t, c, "http://world.openfoodfacts.org/old/images/1.jpg?x=1")
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://static.openfoodfacts.org/old/images/1.jpg?x=1" {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("no route", func(t *testing.T) {
		cfg2 := Config{Sites: []Site{{Name: "x", Hosts: []string{"x"}, Routes: []Route{{Path: "/only/", Redirect: "/"}}}}}
		_, addr2 := n.start(cfg2, Options{})
		resp, _ := get(t, client(addr2), "http://x/other")
		if resp.StatusCode != 404 {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
}

func TestHeadersOnlyOnSuccess(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ok")
	})
	site := n.proxySite("s", []string{"s"}, be.addr())
	site.Headers = map[string]string{"Link": "<http://creativecommons.org/licenses/by-sa/3.0/>; rel='license'"}
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	c := client(addr)
	if resp, _ := get(t, c, "http://s/ok"); resp.Header.Get("Link") == "" {
		t.Fatal("Link missing on 200")
	}
	if resp, _ := get(t, c, "http://s/missing"); resp.StatusCode != 404 || resp.Header.Get("Link") != "" {
		t.Fatalf("status %d, Link %q: nginx add_header adds nothing to a 404", resp.StatusCode, resp.Header.Get("Link"))
	}
}

func TestBodyLimit(t *testing.T) {
	nd := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	up := nd.up(Upstream{Name: "be", Servers: []UpstreamServer{{Addr: be.addr()}}})
	cfg := Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{
		{Path: "/", Upstream: up},
		{Path: "/upload/", Upstream: up, MaxBodyBytes: 20 << 20},
		{Path: "/small/", Upstream: up, MaxBodyBytes: 100},
	}}}}
	_, addr := nd.start(cfg, Options{})
	c := client(addr)
	post := func(path string, body io.Reader, size int64) (int, string) {
		req, _ := http.NewRequest("POST", "http://s"+path, body)
		req.ContentLength = size
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name   string
		path   string
		size   int64
		chunk  bool
		status int
	}{
		{"default 1MiB fits", "/", 1 << 20, false, 200},
		{"default 1MiB exceeded", "/", 1<<20 + 1, false, 413},
		{"route 20MiB", "/upload/", 5 << 20, false, 200},
		{"small exceeded", "/small/", 101, false, 413},
		{"small chunked exceeded", "/small/", 500, true, 413},
		{"small chunked fits", "/small/", 100, true, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(make([]byte, tt.size))
			size := tt.size
			if tt.chunk {
				body, size = io.MultiReader(body), -1
			}
			code, text := post(tt.path, body, size)
			if code != tt.status {
				t.Fatalf("status %d (%q), want %d", code, text, tt.status)
			}
			if code == 413 && !strings.Contains(text, "too large") {
				t.Fatalf("413 body is not clear: %q", text)
			}
			if code == 200 && text != fmt.Sprintf("%d <nil>", tt.size) {
				t.Fatalf("upstream got %q", text)
			}
		})
	}
}

func TestSiteAllowList(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("secret"))
	deny := n.proxySite("deny", []string{"deny"}, be.addr())
	deny.Allow = &acl.List{Default: false}
	allow := n.proxySite("allow", []string{"allow"}, be.addr())
	allow.Allow = &acl.List{Rules: []acl.Rule{{Prefix: mustPrefix("127.0.0.0/8"), Allow: true}}}
	_, addr := n.start(Config{Sites: []Site{deny, allow}}, Options{})
	c := client(addr)
	if resp, body := get(t, c, "http://deny/"); resp.StatusCode != 403 || strings.Contains(body, "secret") {
		t.Fatalf("deny: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, c, "http://allow/"); resp.StatusCode != 200 || body != "secret" {
		t.Fatalf("allow: %d %q", resp.StatusCode, body)
	}
}

func TestBasicAuth(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	hy := strings.Replace(string(hash), "$2a$", "$2y$", 1) // htpasswd -B writes $2y$
	htp := writeFile(t, filepath.Join(dir, "htpasswd"), "# exporters\nprometheus:"+hy+"\n")
	be := newBackend(t, textHandler("metrics"))
	site := n.proxySite("exp", []string{"exp"}, be.addr())
	site.Routes[0].BasicAuthFile = htp
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	c := client(addr)
	tests := []struct {
		name, user, pass string
		status           int
	}{
		{"good", "prometheus", "s3cret", 200},
		{"good again (cached)", "prometheus", "s3cret", 200},
		{"wrong password", "prometheus", "nope", 401},
		{"unknown user", "root", "s3cret", 401},
		{"none", "", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://exp/metrics", nil)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("non-bcrypt file refused", func(t *testing.T) {
		bad := writeFile(t, filepath.Join(dir, "md5"), "u:$apr1$abc$def\n")
		s2 := n.proxySite("exp", []string{"exp"}, be.addr())
		s2.Routes[0].BasicAuthFile = bad
		_, err := n.newServer(Config{Sites: []Site{s2}}, Options{})
		if err == nil || !strings.Contains(err.Error(), "only bcrypt") || !strings.Contains(err.Error(), `site "exp"`) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestErrorAndMaintenancePages(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	p502 := writeFile(t, filepath.Join(dir, "502.html"), "<h1>Open Food Facts is resting</h1>")
	p503 := writeFile(t, filepath.Join(dir, "503.html"), "<h1>maintenance</h1>")
	maint := filepath.Join(dir, "maintenance.on")
	clk := newClock()
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(502)
			io.WriteString(w, "ugly upstream 502")
			return
		}
		io.WriteString(w, "up")
	})
	dead := n.proxySite("dead", []string{"dead"}, deadAddr(t))
	dead.ErrorPages = map[int]string{502: p502}
	live := n.proxySite("live", []string{"live"}, be.addr())
	live.ErrorPages = map[int]string{502: p502, 503: p503}
	live.MaintenanceFile = maint
	_, addr := n.start(Config{Sites: []Site{dead, live}}, Options{Now: clk.Now})
	c := client(addr)

	if resp, body := get(t, c, "http://dead/"); resp.StatusCode != 502 || !strings.Contains(body, "resting") {
		t.Fatalf("dead upstream: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, c, "http://live/bad"); resp.StatusCode != 502 || !strings.Contains(body, "resting") {
		t.Fatalf("intercepted upstream 502: %d %q", resp.StatusCode, body)
	}
	if _, body := get(t, c, "http://live/"); body != "up" {
		t.Fatalf("before maintenance: %q", body)
	}
	writeFile(t, maint, "")
	clk.Add(2 * time.Second)
	resp, body := get(t, c, "http://live/")
	if resp.StatusCode != 503 || !strings.Contains(body, "maintenance") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("maintenance: %d %q Retry-After=%q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	os.Remove(maint)
	clk.Add(2 * time.Second)
	if _, body := get(t, c, "http://live/"); body != "up" {
		t.Fatalf("after maintenance: %q", body)
	}
}

func TestConfigErrorsNameTheObject(t *testing.T) {
	good := Upstream{Name: "u", Servers: []UpstreamServer{{Addr: "127.0.0.1:1"}}}
	tests := []struct {
		name string
		cfg  func(n *testNode) Config
		want string
	}{
		{"no sites", func(n *testNode) Config { return Config{Listener: "l"} }, `listener "l": no sites`},
		{"no action", func(n *testNode) Config { return Config{Sites: []Site{{Name: "off", Routes: []Route{{Path: "/"}}}}} }, `site "off": route "/": exactly one`},
		{"two actions", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "off", Routes: []Route{{Path: "/", Upstream: n.up(good), Redirect: "/x"}}}}}
		}, `exactly one`},
		{"bad path", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "off", Routes: []Route{{Path: "api", Upstream: n.up(good)}}}}}
		}, `route "api": path must start with /`},
		{"bad addr", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "off", Routes: []Route{{Path: "/", Upstream: n.up(Upstream{Name: "pool", Servers: []UpstreamServer{{Addr: "10.1.0.113"}}})}}}}}
		}, `upstream "pool": server 0 "10.1.0.113": address must be host:port`},
		{"only backups", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "off", Routes: []Route{{Path: "/", Upstream: n.up(Upstream{Name: "p", Servers: []UpstreamServer{{Addr: "127.0.0.1:1", Backup: true}}})}}}}}
		}, `every server is a backup`},
		{"bad host", func(n *testNode) Config { return Config{Sites: []Site{{Name: "off", Hosts: []string{"a.*.org"}}}} }, `site "off": host "a.*.org"`},
		{"dup host", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", Hosts: []string{"x.org"}}, {Name: "b", Hosts: []string{"x.org"}}}}
		}, `site "b": host "x.org": listed twice`},
		{"two defaults", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", Default: true}, {Name: "b", Default: true}}}
		}, `site "b": a second default site`},
		{"tls without cert", func(n *testNode) Config { return Config{TLS: true, Sites: []Site{{Name: "a"}}} }, `site "a": a TLS listener needs a certificate`},
		{"missing page", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", ErrorPages: map[int]string{502: "/nonexistent/502.html"}}}}
		}, `site "a": error page for 502`},
		{"bad log format", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", AccessLog: n.log(AccessLog{Path: "/dev/null"}, "main")}}}
		}, `site "a": access log: format "main"`},
		{"missing root", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "img", Routes: []Route{{Path: "/", Static: &Static{Root: "/nonexistent/root"}}}}}}
		}, `site "img": route "/": static: root`},
		{"cache without fallback", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "img", Routes: []Route{{Path: "/", Static: &Static{Root: os.TempDir(), Cache: n.cache(Cache{MaxBytes: 1, TTL: map[int]time.Duration{200: time.Hour}})}}}}}}
		}, `needs a fallback`},
		{"bad redirect code", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", Routes: []Route{{Path: "/", Redirect: "/x", RedirectCode: 200}}}}}
		}, `redirect code 200`},
		{"unknown upstream", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", Routes: []Route{{Path: "/", Upstream: "nope"}}}}}
		}, `site "a": route "/": upstream "nope" is not among the node's upstreams`},
		{"unknown cache", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", Routes: []Route{{Path: "/", Static: &Static{Root: os.TempDir(), Fallback: n.up(good), Cache: "nope"}}}}}}
		}, `cache "nope" is not among the node's caches`},
		{"unknown certificate", func(n *testNode) Config { return Config{TLS: true, Sites: []Site{{Name: "a", Certificate: "nope"}}} }, `site "a": certificate "nope" is not among the node's certificates`},
		{"unknown log", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", AccessLog: &SiteLog{File: "nope", Format: "json"}}}}
		}, `site "a": access log: file "nope" is not among the node's access logs`},
		{"zero limits", func(n *testNode) Config {
			return Config{Listener: "l", Sites: []Site{{Name: "a"}}, Limits: Limits{ReadHeaderTimeout: -1}}
		}, `every limit must be positive`},
		{"bad header", func(n *testNode) Config {
			return Config{Sites: []Site{{Name: "a", Headers: map[string]string{"Bad Header": "x"}}}}
		}, `header "Bad Header"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t)
			s, err := n.newServer(tt.cfg(n), Options{})
			if err == nil {
				s.Shutdown(t.Context())
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestIPv6Listener(t *testing.T) {
	n := newNode(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		if testutil.InCI() {
			t.Fatal("no IPv6 loopback in CI:", err)
		}
		t.Skip("no IPv6 loopback here:", err)
	}
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Header.Get("X-Real-IP")) })
	s, err := n.newServer(Config{Sites: []Site{n.proxySite("v6", []string{"v6"}, be.addr())}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(t.Context())
	_, body := get(t, client(ln.Addr().String()), "http://v6/")
	if body != "::1" {
		t.Fatalf("X-Real-IP %q, want ::1", body)
	}
}

type tokens map[string]string

func (t tokens) KeyAuth(tok string) (string, bool) { k, ok := t[tok]; return k, ok }

// TestACMEChallengeOnRedirectingListener: a plain-HTTP listener with
// redirect_https answers the node's pending HTTP-01 tokens for any host
// (GET and HEAD), and still redirects every other request, unknown tokens
// included.
func TestACMEChallengeOnRedirectingListener(t *testing.T) {
	n := newNode(t)
	n.built.Challenges = tokens{"tok-1": "tok-1.thumbprint"}
	cfg := Config{RedirectHTTPS: true, Sites: []Site{{Name: "off", Hosts: []string{"*.openfoodfacts.org"}}}}
	_, addr := n.start(cfg, Options{})
	for _, host := range []string{"world.openfoodfacts.org", "images.example.net"} {
		resp, body := raw(t, addr, "GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || body != "tok-1.thumbprint" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("token for %s: %d %q %q", host, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	head, err := http.Head("http://" + addr + "/.well-known/acme-challenge/tok-1")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 || head.ContentLength != int64(len("tok-1.thumbprint")) {
		t.Fatalf("HEAD token: %d %d", head.StatusCode, head.ContentLength)
	}
	for _, req := range []string{
		"GET /.well-known/acme-challenge/other HTTP/1.1\r\n",
		"POST /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nContent-Length: 0\r\n",
		"GET /product/1 HTTP/1.1\r\n",
	} {
		resp, _ := raw(t, addr, req+"Host: world.openfoodfacts.org\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 301 {
			t.Fatalf("%q: %d, want the redirect", req, resp.StatusCode)
		}
	}
}
