package httpedge

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// statusBackend answers /s/CODE with that status (and a Last-Modified an
// hour old), so that a test sees what is added to each status.
func statusBackend(t *testing.T) *testBackend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		code := 200
		if i := strings.LastIndexByte(r.URL.Path, '/'); i >= 0 {
			if c, err := strconv.Atoi(r.URL.Path[i+1:]); err == nil {
				code = c
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "private")
		w.Header().Set("Last-Modified", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		if code != 204 && code != 304 {
			fmt.Fprintf(w, "status %d\n", code)
		}
	})
}

// headerStatuses are the statuses every header test asks for: nginx's
// add_header list, and some outside it.
var headerStatuses = []int{200, 201, 202, 203, 204, 206, 300, 301, 302, 303, 304, 307, 308, 400, 403, 404, 410, 500, 502, 503}

// TestAddHeaderLikeNginx runs the same add_header configuration on a real
// nginx and on the edge, both proxying to one backend, and compares which
// added fields every status carries: without always only on nginx's list,
// with always on every answer, and a location with its own add_header
// inheriting none of the server's.
func TestAddHeaderLikeNginx(t *testing.T) {
	be := statusBackend(t)
	ngx := startNginxServers(t, fmt.Sprintf(`server {
    LISTEN
    add_header X-Site site;
    add_header X-Site-Always site-always always;
    location / { proxy_pass http://%[1]s; }
    location /own/ {
      add_header X-Route route;
      add_header X-Route-Always route-always always;
      proxy_pass http://%[1]s;
    }
    location /none/ { proxy_pass http://%[1]s; }
}`, be.addr()))
	n := newNode(t)
	pool := n.up(Upstream{Name: "be", Servers: []UpstreamServer{{Addr: be.addr()}}})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"},
		Headers:       map[string]string{"X-Site": "site"},
		HeadersAlways: map[string]string{"X-Site-Always": "site-always"},
		Routes: []Route{
			{Path: "/", Upstream: pool},
			{Path: "/own/", Upstream: pool, NoSiteHeaders: true,
				Headers: map[string]string{"X-Route": "route"}, HeadersAlways: map[string]string{"X-Route-Always": "route-always"}},
			{Path: "/none/", Upstream: pool},
		}}}}, Options{})
	fields := []string{"X-Site", "X-Site-Always", "X-Route", "X-Route-Always"}
	for _, prefix := range []string{"/", "/own/", "/none/"} {
		for _, code := range headerStatuses {
			path := fmt.Sprintf("%ss/%d", prefix, code)
			want, _ := get(t, client(ngx), "http://s"+path)
			got, _ := get(t, client(addr), "http://s"+path)
			if got.StatusCode != code || want.StatusCode != code {
				t.Fatalf("%s: status %d (nginx %d), want %d", path, got.StatusCode, want.StatusCode, code)
			}
			for _, f := range fields {
				if g, w := got.Header.Values(f), want.Header.Values(f); strings.Join(g, "|") != strings.Join(w, "|") {
					t.Errorf("%s %d: %s = %q, nginx sends %q", path, code, f, g, w)
				}
			}
		}
	}
}

// TestAddHeaderInheritedAndOverridden: by default a route's fields are
// added on top of its site's, the route's value replacing the site's of
// the same name; error pages the edge writes itself carry only the always
// fields.
func TestAddHeaderInheritedAndOverridden(t *testing.T) {
	be := statusBackend(t)
	n := newNode(t)
	pool := n.up(Upstream{Name: "be", Servers: []UpstreamServer{{Addr: be.addr()}}})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"},
		Headers:       map[string]string{"X-Frame-Options": "DENY", "X-A": "site"},
		HeadersAlways: map[string]string{"X-Content-Type-Options": "nosniff"},
		Routes: []Route{
			{Path: "/api/", Upstream: pool, Headers: map[string]string{"X-A": "route", "Access-Control-Allow-Origin": "*"}},
			{Path: "/only/", Exact: true, Redirect: "/", RedirectCode: 302},
		}}}}, Options{})
	c := client(addr)
	resp, _ := get(t, c, "http://s/api/s/200")
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-A": "route", "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", k, got, v)
		}
	}
	// No route matches: the site's always fields only.
	resp, _ = get(t, c, "http://s/nothing")
	if resp.StatusCode != 404 || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "" {
		t.Errorf("404 outside the routes: %d %v", resp.StatusCode, resp.Header)
	}
	// A redirect the edge answers is on the list.
	resp, _ = get(t, c, "http://s/only/")
	if resp.StatusCode != 302 || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("302: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestAddHeaderRefusesBadFields(t *testing.T) {
	n := newNode(t)
	for _, site := range []Site{
		{Name: "a", Hosts: []string{"a"}, Headers: map[string]string{"X": "a\r\nInjected: 1"}, Routes: []Route{{Path: "/", Redirect: "/"}}},
		{Name: "a", Hosts: []string{"a"}, Headers: map[string]string{"X": "1"}, HeadersAlways: map[string]string{"X": "2"}, Routes: []Route{{Path: "/", Redirect: "/"}}},
		{Name: "a", Hosts: []string{"a"}, Routes: []Route{{Path: "/", Redirect: "/", HeadersAlways: map[string]string{"Bad Name": "1"}}}},
		{Name: "a", Hosts: []string{"a"}, Routes: []Route{{Path: "/", Redirect: "/", Expires: &Expires{Mode: "sometimes"}}}},
	} {
		if _, err := n.newServer(Config{Sites: []Site{site}}, Options{}); err == nil {
			t.Errorf("%+v: accepted", site)
		}
	}
}

// TestExpiresApply pins each mode against what nginx sends (read from
// ngx_http_headers_filter_module's ngx_http_set_expires and checked
// against the binary in TestExpiresLikeNginx).
func TestExpiresApply(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	lm := now.Add(-2 * time.Hour).Format(http.TimeFormat)
	for _, tt := range []struct {
		e       Expires
		lastMod string
		exp, cc string
	}{
		{Expires{Mode: "epoch"}, "", "Thu, 01 Jan 1970 00:00:01 GMT", "no-cache"},
		{Expires{Mode: "max"}, "", "Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000"},
		{Expires{Mode: "access", Seconds: 3600}, "", "Wed, 02 Dec 2026 11:00:00 GMT", "max-age=3600"},
		{Expires{Mode: "access", Seconds: 0}, "", "Wed, 02 Dec 2026 10:00:00 GMT", "max-age=0"},
		{Expires{Mode: "access", Seconds: -1}, "", "Wed, 02 Dec 2026 09:59:59 GMT", "no-cache"},
		{Expires{Mode: "modified", Seconds: 3 * 3600}, lm, "Wed, 02 Dec 2026 11:00:00 GMT", "max-age=3600"},
		{Expires{Mode: "modified", Seconds: 3600}, lm, "Wed, 02 Dec 2026 09:00:00 GMT", "no-cache"},
		{Expires{Mode: "modified", Seconds: 60}, "", "Wed, 02 Dec 2026 10:01:00 GMT", "max-age=60"}, // no Last-Modified: from now
	} {
		h := http.Header{"Cache-Control": {"private", "no-transform"}, "Expires": {"0"}}
		if tt.lastMod != "" {
			h.Set("Last-Modified", tt.lastMod)
		}
		tt.e.apply(h, now.Add(400*time.Millisecond))
		if got := h.Values("Expires"); len(got) != 1 || got[0] != tt.exp {
			t.Errorf("%+v: Expires %q, want %q", tt.e, got, tt.exp)
		}
		if got := h.Values("Cache-Control"); len(got) != 1 || got[0] != tt.cc {
			t.Errorf("%+v: Cache-Control %q, want %q", tt.e, got, tt.cc)
		}
	}
}

// TestExpiresLikeNginx serves one file through a real nginx and the edge
// with each expires value and compares Cache-Control, the offset of
// Expires from Date, and which statuses carry them (a 404 carries none).
func TestExpiresLikeNginx(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	values := []struct {
		nginx string
		e     *Expires
	}{
		{"epoch", &Expires{Mode: "epoch"}},
		{"max", &Expires{Mode: "max"}},
		{"1h", &Expires{Mode: "access", Seconds: 3600}},
		{"-1", &Expires{Mode: "access", Seconds: -1}},
		{"modified 2h", &Expires{Mode: "modified", Seconds: 7200}},
		{"modified 10m", &Expires{Mode: "modified", Seconds: 600}},
	}
	var locs strings.Builder
	n := newNode(t)
	site := Site{Name: "s", Hosts: []string{"s"}}
	for i, v := range values {
		fmt.Fprintf(&locs, "location /e%d/ { root %s; expires %s; }\n", i, root, v.nginx)
		site.Routes = append(site.Routes, Route{Path: fmt.Sprintf("/e%d/", i), Static: &Static{Root: root}, Expires: v.e})
	}
	// Both serve ROOT/eN/a.txt.
	for i := range values {
		d := filepath.Join(root, fmt.Sprintf("e%d", i))
		os.MkdirAll(d, 0o755)
		f := writeFile(t, filepath.Join(d, "a.txt"), "hello\n")
		os.Chtimes(f, old, old)
	}
	ngx := startNginxServers(t, "server {\nLISTEN\ntypes { text/plain txt; }\n"+locs.String()+"}")
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	offset := func(resp *http.Response) string {
		exp, err1 := http.ParseTime(resp.Header.Get("Expires"))
		date, err2 := http.ParseTime(resp.Header.Get("Date"))
		if err1 != nil || err2 != nil {
			return resp.Header.Get("Expires")
		}
		if exp.Year() < 2000 || exp.Year() > 2030 {
			return resp.Header.Get("Expires") // epoch and max: fixed dates
		}
		return exp.Sub(date).Round(10 * time.Second).String()
	}
	for i, v := range values {
		for _, path := range []string{fmt.Sprintf("/e%d/a.txt", i), fmt.Sprintf("/e%d/missing", i)} {
			want, _ := get(t, client(ngx), "http://s"+path)
			got, _ := get(t, client(addr), "http://s"+path)
			if got.StatusCode != want.StatusCode {
				t.Fatalf("expires %s %s: status %d, nginx %d", v.nginx, path, got.StatusCode, want.StatusCode)
			}
			gcc, wcc := got.Header.Get("Cache-Control"), want.Header.Get("Cache-Control")
			if gcc != wcc {
				// max-age counts from the second of the request: allow one
				// second between the two servers' clocks.
				g, _ := strconv.Atoi(strings.TrimPrefix(gcc, "max-age="))
				w, _ := strconv.Atoi(strings.TrimPrefix(wcc, "max-age="))
				if !strings.HasPrefix(gcc, "max-age=") || !strings.HasPrefix(wcc, "max-age=") || g-w > 1 || w-g > 1 {
					t.Errorf("expires %s %s: Cache-Control %q, nginx %q", v.nginx, path, gcc, wcc)
				}
			}
			if g, w := offset(got), offset(want); g != w {
				t.Errorf("expires %s %s: Expires %s from Date, nginx %s", v.nginx, path, g, w)
			}
		}
	}
}

// TestAccessLogUpstreamFormats: the reference's two formats, through a
// proxied route and a cached one.
func TestAccessLogUpstreamFormats(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	be := newBackend(t, textHandler("hello"))
	up := n.proxySite("u", []string{"u"}, be.addr())
	up.AccessLog = n.log(AccessLog{Path: filepath.Join(dir, "u.log"), FlushInterval: 10 * time.Millisecond}, "combined_upstream")
	px := n.proxySite("p", []string{"p"}, be.addr())
	px.AccessLog = n.log(AccessLog{Path: filepath.Join(dir, "p.log"), FlushInterval: 10 * time.Millisecond}, "combined_proxy")
	px.Routes = append(px.Routes, Route{Path: "/r/", Redirect: "/x"})
	_, addr := n.start(Config{Sites: []Site{up, px}}, Options{})
	c := client(addr)
	get(t, c, "http://u/a")
	get(t, c, "http://p/b", "X-Forwarded-For", "198.51.100.7")
	get(t, c, "http://p/r/c")
	read := func(path string, lines int) []string {
		var got []string
		testutil.Eventually(t, 5*time.Second, path+" flushed", func() bool {
			b, _ := os.ReadFile(path)
			got = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			return len(b) > 0 && len(got) == lines
		})
		return got
	}
	u := read(up.AccessLog.File, 1)[0]
	if ok, _ := regexp.MatchString(`^127\.0\.0\.1 - - \[[^]]+\] "GET /a HTTP/1\.1" 200 5 "-" "Go-http-client/1\.1" c=- u=`+regexp.QuoteMeta(be.addr())+` t=\d+\.\d{3}$`, u); !ok {
		t.Errorf("combined_upstream line %q", u)
	}
	p := read(px.AccessLog.File, 2)
	if ok, _ := regexp.MatchString(`^127\.0\.0\.1 - - \[[^]]+\] "GET /b HTTP/1\.1" 200 5 "-" "Go-http-client/1\.1" "198\.51\.100\.7" - \[\d+\.\d{3}\]$`, p[0]); !ok {
		t.Errorf("combined_proxy line %q", p[0])
	}
	if !strings.HasSuffix(p[1], `"GET /r/c HTTP/1.1" 301 0 "-" "Go-http-client/1.1" "-" - [-]`) {
		t.Errorf("combined_proxy line without an upstream %q", p[1])
	}
}

// TestSiteErrorLog: what the server logs about a site's requests goes to
// the site's error log when it has one (at its level and above), to the
// server's logger otherwise; refusals are written at nginx's levels.
func TestSiteErrorLog(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	dead := deadAddr(t)
	logger, serverLog := testutil.Logger(t)
	withLog := n.proxySite("a", []string{"a"}, dead)
	withLog.ErrorLog = &SiteErrorLog{File: n.log(AccessLog{Path: filepath.Join(dir, "a.error.log"), FlushInterval: 10 * time.Millisecond}, "").File, Level: "error"}
	withLog.Routes = append(withLog.Routes, Route{Path: "/private/", Redirect: "/", BasicAuthFile: writeFile(t, filepath.Join(dir, "htpasswd"), "u:$2y$05$0000000000000000000000000000000000000000000000000000\n")})
	without := n.proxySite("b", []string{"b"}, dead)
	_, addr := n.start(Config{Sites: []Site{withLog, without}}, Options{Logger: logger})
	c := client(addr)
	if resp, _ := get(t, c, "http://a/x"); resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, "http://a/private/"); resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, "http://b/y"); resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var lines []string
	testutil.Eventually(t, 5*time.Second, "two lines in the site's error log", func() bool {
		b, _ := os.ReadFile(withLog.ErrorLog.File)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(b) > 0 && len(lines) >= 2
	})
	if len(lines) != 2 || !strings.Contains(lines[0], `level=ERROR msg="upstream failed"`) || !strings.Contains(lines[0], "site=a") ||
		!strings.Contains(lines[1], `level=ERROR msg="request refused"`) || !strings.Contains(lines[1], "status=401") {
		t.Fatalf("site a's error log:\n%s", strings.Join(lines, "\n"))
	}
	server := serverLog.String()
	if !strings.Contains(server, `msg="upstream failed"`) || !strings.Contains(server, "site=b") || strings.Contains(server, "site=a") {
		t.Fatalf("server log:\n%s", server)
	}
	if _, err := n.newServer(Config{Sites: []Site{{Name: "c", Hosts: []string{"c"}, ErrorLog: &SiteErrorLog{File: withLog.ErrorLog.File, Level: "loud"}, Routes: []Route{{Path: "/", Redirect: "/"}}}}}, Options{}); err == nil {
		t.Fatal("an unknown level accepted")
	}
}

// TestAddHeaderVariablesLikeNginx: added header values with variables
// (the reference's X-Cache-Status $upstream_cache_status and X-From
// $upstream_addr, request variables, an empty result that sends nothing)
// against a real nginx with a proxy cache, request after request.
func TestAddHeaderVariablesLikeNginx(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "max-age=3600")
		io.WriteString(w, "hello")
	})
	cacheDir := t.TempDir()
	ngx := startNginxServers(t, fmt.Sprintf(`proxy_cache_path %[2]s keys_zone=c:1m;
server {
    LISTEN
    add_header X-Cache-Status $upstream_cache_status;
    add_header X-From $upstream_addr;
    add_header X-Req "$request_method $host $uri$is_args$args" always;
    add_header X-Empty "";
    location / { proxy_pass http://%[1]s; }
    location /cached/ {
        proxy_pass http://%[1]s;
        proxy_cache c;
        proxy_cache_key $uri;
        proxy_cache_valid 200 1h;
        add_header X-Cache-Status $upstream_cache_status;
        add_header X-From $upstream_addr;
    }
}`, be.addr(), cacheDir))
	n := newNode(t)
	up := n.up(Upstream{Name: "be", Servers: []UpstreamServer{{Addr: be.addr()}}})
	c := n.cache(Cache{MaxBytes: 1 << 20, TTL: map[int]time.Duration{}, Inactive: time.Hour})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"},
		Headers:       map[string]string{"X-Cache-Status": "$upstream_cache_status", "X-From": "$upstream_addr", "X-Empty": ""},
		HeadersAlways: map[string]string{"X-Req": "$request_method $host $uri$is_args$args"},
		Routes: []Route{
			{Path: "/", Upstream: up},
			{Path: "/cached/", Upstream: up, NoSiteHeaders: true,
				Headers: map[string]string{"X-Cache-Status": "$upstream_cache_status", "X-From": "$upstream_addr"},
				Cache:   &CachePolicy{Cache: c, Key: []string{"path"}, Valid: map[int]time.Duration{200: time.Hour}, MinUses: 1}},
		}}}}, Options{})
	for _, path := range []string{"/a?x=1", "/cached/b", "/cached/b", "/cached/b?y"} {
		want, _ := get(t, client(ngx), "http://s"+path)
		got, _ := get(t, client(addr), "http://s"+path)
		for _, f := range []string{"X-Cache-Status", "X-From", "X-Req", "X-Empty"} {
			if g, w := got.Header.Values(f), want.Header.Values(f); strings.Join(g, "|") != strings.Join(w, "|") {
				t.Errorf("%s: %s = %q, nginx sends %q", path, f, g, w)
			}
		}
	}
}
