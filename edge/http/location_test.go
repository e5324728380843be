package httpedge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offedge/offedge/edge/http/vars"
	"github.com/offedge/offedge/edge/protect"

	"github.com/offedge/offedge/internal/testutil"
)

// startNginxServers runs a real nginx on 127.0.0.1 with the given server
// blocks (each listens on the returned address) and returns the address.
func startNginxServers(t *testing.T, servers string) string {
	t.Helper()
	bin := testutil.RequireBinary(t, "nginx")
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s;
  proxy_temp_path %[1]s;
  fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s;
  scgi_temp_path %[1]s;
  server_tokens off;
%[3]s
}
`, dir, addr, strings.ReplaceAll(servers, "LISTEN", "listen "+addr+";"))
	runNginx(t, bin, dir, addr, conf)
	return addr
}

// locationCase is one location in both forms: nginx's and the edge's.
type locationCase struct {
	nginx string // "= /", "^~ /images/", "~* \.jpg$"
	route Route
}

// precedenceLocations exercises every rule of nginx's location choice:
// exact first, a priority prefix that is the longest match stops the regex
// search (a shorter one does not), regexes in declaration order (the
// first wins, even when a later one is more specific), case-insensitive
// regexes, and the longest prefix when no regex matches.
var precedenceLocations = []locationCase{
	{"= /", Route{Path: "/", Exact: true}},
	{"/", Route{Path: "/"}},
	{"^~ /images/", Route{Path: "/images/", Match: "priority_prefix"}},
	{"/images/products/", Route{Path: "/images/products/"}},
	{`~* \.(jpg|png)$`, Route{Path: `\.(jpg|png)$`, Match: "regex_ci"}},
	{"~ ^/api/v[0-9]+/", Route{Path: "^/api/v[0-9]+/", Match: "regex"}},
	{"/api/", Route{Path: "/api/"}},
	{"~ ^/api/v2/", Route{Path: "^/api/v2/", Match: "regex"}},
	{"= /api/v1/exact", Route{Path: "/api/v1/exact", Exact: true}},
	{"/static", Route{Path: "/static"}},
	{`~ \.php$`, Route{Path: `\.php$`, Match: "regex"}},
	{"^~ /assets/", Route{Path: "/assets/", Match: "priority_prefix"}},
	{"/assets/js/", Route{Path: "/assets/js/"}},
}

var precedencePaths = []string{
	"/", "/x", "/images/a.jpg", "/images/products/a.jpg", "/images/products/a.JPG", "/images/products/x",
	"/api/v1/x", "/api/v2/x", "/api/x", "/api/v1/exact", "/api/v1/exact/", "/API/v1/x", "/a.JPG", "/static.php",
	"/staticx", "/a/b.PHP", "/assets/x.png", "/assets/js/x.png", "/assets/js/x", "/api/v1/x.php",
	"/%61pi/v1/x", "//api//v2/../x", "/images/products/../a.png",
}

// locationLabel is the name both servers answer with for location i.
func locationLabel(i int) string { return fmt.Sprintf("L%02d", i) }

// TestLocationPrecedenceAgainstNginx: for every path, the edge chooses the
// route nginx chooses for the same locations. Each location answers a
// redirect to http://r/<label> + the request URI, in nginx with
// "return 302 http://r/<label>$request_uri" and in the edge with a
// redirect route; the Location headers must be equal.
func TestLocationPrecedenceAgainstNginx(t *testing.T) {
	var ngx strings.Builder
	ngx.WriteString("server {\n LISTEN\n server_name prec;\n")
	site := Site{Name: "prec", Hosts: []string{"prec"}}
	for i, l := range precedenceLocations {
		fmt.Fprintf(&ngx, " location %s { return 302 http://r/%s$request_uri; }\n", l.nginx, locationLabel(i))
		rt := l.route
		rt.Redirect, rt.RedirectCode = "http://r/"+locationLabel(i), 302
		site.Routes = append(site.Routes, rt)
	}
	ngx.WriteString("}\n")
	nginxAddr := startNginxServers(t, ngx.String())
	n := newNode(t)
	_, edgeAddr := n.start(Config{Listener: "prec", Sites: []Site{site}}, Options{})
	for _, p := range precedencePaths {
		want := locationOf(t, nginxAddr, p)
		got := locationOf(t, edgeAddr, p)
		if got != want {
			t.Errorf("GET %s: the edge chose %q, nginx %q", p, got, want)
		}
	}
}

// locationOf is the label of the location that answered GET path: the
// first segment of the redirect's Location.
func locationOf(t *testing.T, addr, path string) string {
	t.Helper()
	resp, _ := raw(t, addr, "GET "+path+" HTTP/1.1\r\nHost: prec\r\nConnection: close\r\n\r\n")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 302 || !strings.HasPrefix(loc, "http://r/") {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	label, _, _ := strings.Cut(strings.TrimPrefix(loc, "http://r/"), "/")
	return label
}

func TestLocationPrecedence(t *testing.T) {
	n := newNode(t)
	site := Site{Name: "prec", Hosts: []string{"prec"}}
	for i, l := range precedenceLocations {
		rt := l.route
		rt.Redirect, rt.RedirectCode = "http://r/"+locationLabel(i), 302
		site.Routes = append(site.Routes, rt)
	}
	_, addr := n.start(Config{Listener: "prec", Sites: []Site{site}}, Options{})
	for path, want := range map[string]int{
		"/": 0, "/x": 1, "/images/a.jpg": 2, "/images/products/a.jpg": 4, "/images/products/x": 3,
		"/api/v1/x": 5, "/api/v2/x": 5, "/api/x": 6, "/api/v1/exact": 8, "/static.php": 10, "/staticx": 9,
		"/a/b.PHP": 1, "/assets/x.png": 11, "/assets/js/x.png": 4,
	} {
		if got := locationOf(t, addr, path); got != locationLabel(want) {
			t.Errorf("GET %s: %s; want %s (%s)", path, got, locationLabel(want), precedenceLocations[want].nginx)
		}
	}
}

func TestLocationConfigErrors(t *testing.T) {
	n := newNode(t)
	for name, c := range map[string]struct {
		rt   Route
		want string
	}{
		"lookahead": {Route{Path: `^/(?!admin)`, Match: "regex"}, "negative lookahead"},
		"backref":   {Route{Path: `^/(a)\1`, Match: "regex"}, `backreference \1`},
		"syntax":    {Route{Path: `^/(`, Match: "regex"}, "missing closing )"},
		"kind":      {Route{Path: "/", Match: "glob"}, `match "glob"`},
		"exactre":   {Route{Path: "/", Exact: true, Match: "regex"}, "exact and a regex"},
		"slash":     {Route{Path: "x", Match: "priority_prefix"}, "must start with /"},
	} {
		rt := c.rt
		rt.Redirect, rt.RedirectCode = "http://r/", 302
		s, err := n.newServer(Config{Listener: "x", Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{rt}}}}, Options{})
		if err == nil {
			s.Shutdown(t.Context())
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", name, err, c.want)
		}
	}
}

// rewriteServer is one nginx server block and the edge site meant to
// behave the same; BACKEND in the nginx text is the echo backend.
func rewriteSite(n *testNode, backend string) (string, Site) {
	ngx := `
map $http_user_agent $kind { default other; "~*(bot|crawl)" robot; curl/8.0 curl; }
map $uri $sz { default small; "~*\.full\.jpg$" big; "~^/mc/(x)" x$1; }
server {
 LISTEN
 server_name rw;
 if ($http_referer ~* (jobothoniel.com)) { return 403; }
 set $who anon;
 if ($cookie_user) { set $who $cookie_user; }
 rewrite ^/old/(.*)$ /new/$1 permanent;
 rewrite ^/moved$ https://example.org/moved? redirect;
 rewrite ^/keep/(.*)$ /new/$1?k=1 redirect;
 location / { return 200 "root $uri $args $who"; }
 location /new/ { return 200 "new $uri $args"; }
 location /images/products/ {
  rewrite ^/images/products/(....)/([^/]*)$ /images/products/000/000/000/$1/$2 break;
  rewrite ^/images/products/(.)(....)/([^/]*)$ /images/products/000/000/00$1/$2/$3 break;
  rewrite ^/images/products/(..)(....)/([^/]*)$ /images/products/000/000/0$1/$2/$3 break;
  proxy_pass http://BACKEND;
 }
 location /loop/ { rewrite ^/loop/(.*)$ /loop/$1 last; }
 location /chain/ { rewrite ^/chain/([0-9])(.*)$ /chain/$2 last; return 200 "chain $uri"; }
 location /q/ { rewrite ^/q/(.*)$ /r/?x=$1; return 200 "not reached"; }
 location /r/ { return 200 "r $uri $args"; }
 location ~ ^/cap/(\w+)/(\d+)$ { return 200 "cap $2 $1 $arg_a"; }
 location /ret301 { return 301 /elsewhere$is_args$args; }
 location /gone { return 410; }
 location /https { return 301 https://$host$request_uri; }
 location /vars { return 200 "$request|$scheme|$https|$is_args|$arg_b|$cookie_user|$http_x_y|$request_method|$server_name|$host"; }
 location /map { return 200 "map $kind"; }
 location ~ ^/mc/(.*)$ { return 200 "$sz $1|$1 $sz"; }
 location /api/ { proxy_pass http://BACKEND/v2/; }
 location = /exact { proxy_pass http://BACKEND/other; }
 location /tmpl/ { proxy_pass http://BACKEND/x$uri$is_args$args; }
 location /brk/ { rewrite ^/brk/(.*)$ /changed/$1 break; proxy_pass http://BACKEND/up/; }
 location /plain/ { proxy_pass http://BACKEND; }
}
`
	up := n.up(Upstream{Name: "echo", Servers: []UpstreamServer{{Addr: backend}}})
	ret := func(code int, body string) []vars.Step {
		return []vars.Step{{Return: &vars.Return{Code: code, Body: body}}}
	}
	rw := func(re, repl, flag string) vars.Step {
		return vars.Step{Rewrite: &vars.Rewrite{Regex: re, Replacement: repl, Flag: flag}}
	}
	site := Site{Name: "rw", Hosts: []string{"rw"},
		Maps: []vars.MapConfig{{Name: "kind", Source: "$http_user_agent", Default: "other", Entries: []vars.MapEntry{
			{Regex: "(bot|crawl)", CaseInsensitive: true, Value: "robot"}, {Exact: "curl/8.0", Value: "curl"}}},
			{Name: "sz", Source: "$uri", Default: "small", Entries: []vars.MapEntry{
				{Regex: `\.full\.jpg$`, CaseInsensitive: true, Value: "big"}, {Regex: "^/mc/(x)", Value: "x$1"}}}},
		Rewrites: []vars.Step{
			{If: &vars.Condition{Variable: "$http_referer", Op: "~*", Value: "(jobothoniel.com)"}, Then: []vars.Step{{Return: &vars.Return{Code: 403}}}},
			{Set: &vars.SetVar{Name: "who", Value: "anon"}},
			{If: &vars.Condition{Variable: "$cookie_user"}, Then: []vars.Step{{Set: &vars.SetVar{Name: "who", Value: "$cookie_user"}}}},
			rw("^/old/(.*)$", "/new/$1", "permanent"),
			rw("^/moved$", "https://example.org/moved?", "redirect"),
			rw("^/keep/(.*)$", "/new/$1?k=1", "redirect"),
		},
		Routes: []Route{
			{Path: "/", Rewrites: ret(200, "root $uri $args $who")},
			{Path: "/new/", Rewrites: ret(200, "new $uri $args")},
			{Path: "/images/products/", Rewrites: []vars.Step{
				rw("^/images/products/(....)/([^/]*)$", "/images/products/000/000/000/$1/$2", "break"),
				rw("^/images/products/(.)(....)/([^/]*)$", "/images/products/000/000/00$1/$2/$3", "break"),
				rw("^/images/products/(..)(....)/([^/]*)$", "/images/products/000/000/0$1/$2/$3", "break")}, Upstream: up},
			{Path: "/loop/", Rewrites: []vars.Step{rw("^/loop/(.*)$", "/loop/$1", "last")}},
			{Path: "/chain/", Rewrites: []vars.Step{rw("^/chain/([0-9])(.*)$", "/chain/$2", "last"), {Return: &vars.Return{Code: 200, Body: "chain $uri"}}}},
			{Path: "/q/", Rewrites: []vars.Step{rw("^/q/(.*)$", "/r/?x=$1", ""), {Return: &vars.Return{Code: 200, Body: "not reached"}}}},
			{Path: "/r/", Rewrites: ret(200, "r $uri $args")},
			{Path: `^/cap/(\w+)/(\d+)$`, Match: "regex", Rewrites: ret(200, "cap $2 $1 $arg_a")},
			{Path: "/ret301", Rewrites: []vars.Step{{Return: &vars.Return{Code: 301, URL: "/elsewhere$is_args$args"}}}},
			{Path: "/gone", Rewrites: []vars.Step{{Return: &vars.Return{Code: 410}}}},
			{Path: "/https", Rewrites: []vars.Step{{Return: &vars.Return{Code: 301, URL: "https://$host$request_uri"}}}},
			{Path: "/vars", Rewrites: ret(200, "$request|$scheme|$https|$is_args|$arg_b|$cookie_user|$http_x_y|$request_method|$server_name|$host")},
			{Path: "/map", Rewrites: ret(200, "map $kind")},
			{Path: "^/mc/(.*)$", Match: "regex", Rewrites: ret(200, "$sz $1|$1 $sz")},
			{Path: "/api/", Upstream: up, UpstreamPath: "/v2/"},
			{Path: "/exact", Exact: true, Upstream: up, UpstreamPath: "/other"},
			{Path: "/tmpl/", Upstream: up, UpstreamPath: "/x$uri$is_args$args"},
			{Path: "/brk/", Upstream: up, UpstreamPath: "/up/", Rewrites: []vars.Step{rw("^/brk/(.*)$", "/changed/$1", "break")}},
			{Path: "/plain/", Upstream: up},
		}}
	return strings.ReplaceAll(ngx, "BACKEND", backend), site
}

type rewriteCase struct {
	target string
	hdr    []string
}

var rewriteCases = []rewriteCase{
	{target: "/"}, {target: "/x?a=1&b=2"}, {target: "/x", hdr: []string{"Cookie", "user=ann; y=2"}},
	{target: "/x", hdr: []string{"Referer", "https://JOBOTHONIEL.com/page"}},
	{target: "/old/a/b?z=9"}, {target: "/moved?drop=1"}, {target: "/keep/p?orig=2"},
	{target: "/images/products/1234/1.jpg"}, {target: "/images/products/51234/front_fr.4.400.jpg"},
	{target: "/images/products/123456/1.jpg"}, {target: "/images/products/1234567/1.jpg"},
	{target: "/images/products/123/456/789/0123/1.jpg"},
	{target: "/loop/x"}, {target: "/chain/0123456789"}, {target: "/chain/01234567890"}, {target: "/chain/012"},
	{target: "/q/abc?y=1"}, {target: "/cap/word/42?a=z"}, {target: "/cap/word/x"},
	{target: "/ret301"}, {target: "/ret301?p=1"}, {target: "/gone"},
	{target: "/map", hdr: []string{"User-Agent", "SuperBot/2"}}, {target: "/map", hdr: []string{"User-Agent", "CURL/8.0"}}, {target: "/map"},
	{target: "/api/product/1.json?fields=a,b"}, {target: "/api/"}, {target: "/exact?x=1"}, {target: "/tmpl/a.b?q=1"},
	{target: "/https//a/../b?c=d"}, {target: "/vars?a=1&B=2", hdr: []string{"X-Y", "z", "Cookie", "user=u1"}}, {target: "/vars"},
	{target: "/brk/p?x=1"}, {target: "/plain/a/b?c"}, {target: "//api//x"}, {target: "/images/products/1234/../5678/x.jpg"},
}

// TestRewritesAgainstNginx replays a request set against a real nginx and
// the edge with the same rewrites, returns, conditions, set variables, a
// map and proxy_pass URIs, and compares status, Location and body.
func TestRewritesAgainstNginx(t *testing.T) {
	n := newNode(t)
	echo := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream "+r.RequestURI) })
	ngxConf, site := rewriteSite(n, echo.addr())
	ngx := startNginxServers(t, ngxConf)
	_, edge := n.start(Config{Listener: "rw", Sites: []Site{site}}, Options{})
	for _, c := range rewriteCases {
		want := answerOf(t, ngx, c)
		got := answerOf(t, edge, c)
		if got != want {
			t.Errorf("GET %s %v:\n edge:  %s\n nginx: %s", c.target, c.hdr, got, want)
		}
	}
}

// answerOf is what a server answers, with its own port replaced by PORT.
func answerOf(t *testing.T, addr string, c rewriteCase) string {
	t.Helper()
	req := "GET " + c.target + " HTTP/1.1\r\nHost: rw\r\nConnection: close\r\n"
	for i := 0; i+1 < len(c.hdr); i += 2 {
		req += c.hdr[i] + ": " + c.hdr[i+1] + "\r\n"
	}
	resp, body := raw(t, addr, req+"\r\n")
	_, port, _ := net.SplitHostPort(addr)
	loc := strings.ReplaceAll(resp.Header.Get("Location"), ":"+port, ":PORT")
	if resp.StatusCode >= 300 {
		body = "" // error pages and redirect bodies are each server's own
	}
	return fmt.Sprintf("%d location=%q body=%q", resp.StatusCode, loc, body)
}

// TestClassMapAsVariable: the node's class maps (protection: maps:) are
// variables of its sites' templates, computed on the current URI.
func TestClassMapAsVariable(t *testing.T) {
	n := newNode(t)
	protectNode(t, n, nil, map[string]protect.MapConfig{
		"crawlers": {Source: protect.SourceUserAgent, Rules: []protect.MapRule{{Regex: `(?i)bot|crawl`, Class: "crawler"}}, Default: "human"},
		"by-path":  {Source: protect.SourcePath, Rules: []protect.MapRule{{Regex: `^/new/`, Class: "new"}}}, // not a variable name: not a variable
	})
	site := Site{Name: "s", Hosts: []string{"s"},
		Rewrites: []vars.Step{{If: &vars.Condition{Variable: "$crawlers", Op: "=", Value: "crawler"},
			Then: []vars.Step{{Rewrite: &vars.Rewrite{Regex: "^", Replacement: "/stop-crawling.txt", Flag: "last"}}}}},
		Routes: []Route{
			{Path: "/", Rewrites: []vars.Step{{Return: &vars.Return{Code: 200, Body: "page $crawlers"}}}},
			{Path: "/stop-crawling.txt", Exact: true, Rewrites: []vars.Step{{Return: &vars.Return{Code: 200, Body: "stop $uri"}}}},
		}}
	_, addr := n.start(Config{Listener: "s", Sites: []Site{site}}, Options{})
	for ua, want := range map[string]string{"Googlebot/2.1": "stop /stop-crawling.txt", "Mozilla/5.0": "page human"} {
		resp, body := raw(t, addr, "GET /x HTTP/1.1\r\nHost: s\r\nUser-Agent: "+ua+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || body != want {
			t.Errorf("%s: %d %q; want %q", ua, resp.StatusCode, body, want)
		}
	}
	bad := site
	bad.Routes = []Route{{Path: "/", Rewrites: []vars.Step{{Return: &vars.Return{Code: 200, Body: "$by-path"}}}}}
	if s, err := n.newServer(Config{Listener: "s", Sites: []Site{bad}}, Options{}); err == nil {
		s.Shutdown(t.Context())
		t.Error("a template naming $by (by-path is no variable name) was accepted")
	}
}

// BenchmarkServeHTTPEAN8Rewrite is the redirect benchmark's request on a
// site that runs the EAN-8 migration's six rewrites (the fourth matches)
// behind a regex route: the rewrite phase's cost per request, beside
// BenchmarkServeHTTPRedirect. Compare instruction counts, not time.
func BenchmarkServeHTTPEAN8Rewrite(b *testing.B) {
	n := newNode(b)
	var steps []vars.Step
	for _, rw := range [][2]string{
		{`^/images/products/(....)/([^/]*)$`, `/images/products/000/000/000/$1/$2`},
		{`^/images/products/(.)(....)/([^/]*)$`, `/images/products/000/000/00$1/$2/$3`},
		{`^/images/products/(..)(....)/([^/]*)$`, `/images/products/000/000/0$1/$2/$3`},
		{`^/images/products/(...)(....)/([^/]*)$`, `/images/products/000/000/$1/$2/$3`},
		{`^/images/products/(.)(...)(....)/([^/]*)$`, `/images/products/000/00$1/$2/$3/$4`},
		{`^/images/products/(..)(...)(....)/([^/]*)$`, `/images/products/000/0$1/$2/$3/$4`},
	} {
		steps = append(steps, vars.Step{Rewrite: &vars.Rewrite{Regex: rw[0], Replacement: rw[1], Flag: "break"}})
	}
	s, err := n.newServer(Config{Listener: "bench", Sites: []Site{{Name: "www", Hosts: []string{"www.example.org"},
		Routes: []Route{
			{Path: `\.php$`, Match: "regex", Redirect: "https://php.example.org"},
			{Path: "/", Redirect: "https://www.example.org", Rewrites: steps},
		}}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(b.Context())
	req := httptest.NewRequest("GET", "http://www.example.org/images/products/1234567/1.jpg", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		r, u := *req, *req.URL
		r.URL = &u
		s.ServeHTTP(w, &r)
	}
	if loc := w.h.Get("Location"); loc != "https://www.example.org/images/products/000/000/123/4567/1.jpg" {
		b.Fatalf("Location %q", loc)
	}
}
