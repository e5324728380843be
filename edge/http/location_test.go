package httpedge

import (
	"fmt"
	"strings"
	"testing"

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
