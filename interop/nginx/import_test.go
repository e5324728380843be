package nginx

import (
	"errors"
	"github.com/offedge/offedge/inventory"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/offedge/offedge/internal/testutil"
)

// referenceConfs lists every nginx configuration under the reference's
// confs/ (files under an nginx/ directory, systemd drop-ins aside).
func referenceConfs(t *testing.T) []string {
	ref := testutil.RequireReference(t)
	var files []string
	root := filepath.Join(ref, "confs")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.Contains(rel, "/nginx/") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatalf("no nginx configuration under %s", root)
	}
	return files
}

// TestImportReference imports every reference nginx configuration: each
// parses, imports against an inventory derived from its own addresses,
// loads with that inventory and passes offedge check; every directive is
// accounted for. The per-file counts and the unsupported directives are
// printed.
func TestImportReference(t *testing.T) {
	for _, f := range referenceConfs(t) {
		name, _ := filepath.Rel(filepath.Join(testutil.RequireReference(t), "confs"), f)
		t.Run(name, func(t *testing.T) {
			ds, incs := loadWithMain(t, f)
			tn := newTestNet(ds, false)
			_, _, rep := importChecked(t, ds, incs, tn, t.TempDir())
			n := len(incs)
			walk(ds, func(*Directive) { n++ })
			if len(rep.Entries) != n {
				t.Fatalf("%d directives, %d report entries", n, len(rep.Entries))
			}
			for _, e := range rep.Entries {
				if e.Note == "" && e.Status != Mapped {
					t.Errorf("%s:%d: %s %s without a note", e.File, e.Line, e.Status, e.Directive)
				}
			}
			t.Logf("%s: %s", name, rep.Summary())
			for _, e := range rep.Entries {
				if e.Status == Unsupported {
					t.Logf("  %d: unsupported %s: %s", e.Line, e.Directive, e.Note)
				}
			}
			for _, u := range rep.Unmapped {
				t.Logf("  unmapped %s", u)
			}
		})
	}
}

// loadWithMain loads f in the http context it runs in: with the nginx.conf
// beside it, when there is one (its proxy_cache_path, log formats...).
func loadWithMain(t *testing.T, f string) ([]*Directive, []Included) {
	t.Helper()
	// nginx.conf, then the *.conf snippets beside it (conf.d's), then f.
	paths := []string{f}
	if main := filepath.Join(filepath.Dir(f), "nginx.conf"); main != f {
		if _, err := os.Stat(main); err == nil {
			paths = []string{main}
			snippets, _ := filepath.Glob(filepath.Join(filepath.Dir(f), "*.conf"))
			for _, s := range snippets {
				if s != main && s != f {
					paths = append(paths, s)
				}
			}
			paths = append(paths, f)
		}
	}
	ld := &Loader{Prefix: filepath.Dir(f)}
	ds, err := ld.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return ds, ld.Includes
}

// TestImportFixture imports testdata/proxy.conf, whose every directive
// offedge supports, and checks what each became.
func TestImportFixture(t *testing.T) {
	ld := &Loader{Prefix: "testdata"}
	ds, err := ld.Load("testdata/proxy.conf")
	if err != nil {
		t.Fatal(err)
	}
	tn := newTestNet(ds, false)
	m, out, rep := importChecked(t, ds, ld.Includes, tn, t.TempDir())
	if !rep.Complete() {
		t.Errorf("not complete:\n%s", rep)
	}
	site := m.Site("example.org")
	if site == nil {
		t.Fatalf("no site example.org:\n%s", out)
	}
	// The plain server only redirects; it stays its own site, since the
	// TLS site's headers would go on the redirects (nginx's plain server
	// adds none).
	var redirects, tls int
	for _, l := range site.Listen {
		if l.TLS {
			tls++
		}
	}
	if plain := m.Site("example.org-http"); plain != nil {
		for _, l := range plain.Listen {
			if l.RedirectHTTPS {
				redirects++
			}
		}
	}
	if redirects == 0 || tls == 0 || site.TLS == nil || site.TLS.Certbot != "example.org" {
		t.Errorf("listeners and tls: %+v %+v", site.Listen, site.TLS)
	}
	if site.Headers["Strict-Transport-Security"] != "max-age=63072000" || site.Headers["X-Content-Type-Options"] != "nosniff" || site.HeadersAlways["X-Frame-Options"] != "DENY" {
		t.Errorf("site headers %v, always %v", site.Headers, site.HeadersAlways)
	}
	routes := map[string]*inventoryRoute{}
	for _, r := range site.Routes {
		routes[r.Path] = (*inventoryRoute)(r)
	}
	api, root, assets := routes["/api/"], routes["/"], routes[`\.(css|js)$`]
	if api == nil || root == nil || assets == nil {
		t.Fatalf("routes: %v\n%s", site.Routes, out)
	}
	if api.Cache == nil || api.Cache.Cache != "micro" || strings.Join(api.Cache.Key, ",") != "host,uri,cookie:user" || len(api.Cache.Bypass) != 1 {
		t.Errorf("api cache: %+v", api.Cache)
	}
	if api.HeadersInherit == nil || *api.HeadersInherit {
		t.Errorf("/api/ has its own add_header: nginx drops the server's there (headers_inherit: false); got %v", api.HeadersInherit)
	}
	if len(root.Headers) != 0 || root.HeadersInherit != nil || int64(root.MaxBodySize) != 512<<20 || len(root.Limits) != 1 || *root.Limits[0].Burst != 120 || !*root.Limits[0].NoDelay {
		t.Errorf("/: %+v", root)
	}
	if assets.Match != "regex_ci" || assets.Expires == nil || assets.Upstream == "" {
		t.Errorf("regex route: %+v", assets)
	}
	if site.ErrorPages[502] != "/srv/html/502.html" {
		t.Errorf("error pages: %v", site.ErrorPages)
	}
	if len(site.Rewrites) != 1 || site.Rewrites[0].If == nil || site.Rewrites[0].If.Op != "~*" || site.Rewrites[0].If.Value != `(spam\.example)` || site.Rewrites[0].Then[0].Return.Code != 403 {
		t.Errorf("rewrites: %+v", site.Rewrites)
	}
	p := m.ProtectionOf("edge")
	if p == nil || len(p.LimitZones) != 1 || p.LimitZones[0].Status != 444 || !p.LimitZones[0].DryRun || p.LimitZones[0].Rate != 240 || len(p.Caches) != 1 {
		t.Errorf("protection: %+v", p)
	}
	app := m.Upstream(api.Upstream)
	if app == nil || len(app.Servers) != 2 || !app.Servers[1].Backup || app.Servers[0].Weight != 10 || app.Keepalive != 16 {
		t.Errorf("upstream: %+v", app)
	}
	img := m.Site("images.example.org")
	if img == nil || len(img.Routes) != 1 || img.Routes[0].Static == nil || img.Routes[0].Static.Fallback == "" || img.Routes[0].Static.Cache == nil {
		t.Fatalf("images: %+v\n%s", img, out)
	}
	if img.AccessLog == nil || img.AccessLog.Format != "combined_upstream" {
		t.Errorf("images access log: %+v", img.AccessLog)
	}
	if fb := m.Upstream(img.Routes[0].Static.Fallback); fb.Host != "images.example.org" || !fb.Servers[0].TLS || fb.Servers[0].ServerName != "origin.example.net" {
		t.Errorf("fallback: %+v %+v", fb, fb.Servers[0])
	}
	// The trap is reported.
	if !strings.Contains(strings.Join(rep.Findings, "\n"), "add_header trap") {
		t.Errorf("findings lack the add_header trap: %v", rep.Findings)
	}
}

type inventoryRoute inventory.Route

// FuzzImport imports whatever parses: the importer never panics, every
// directive gets an entry, and what it writes parses as an inventory file.
func FuzzImport(f *testing.F) {
	data, err := os.ReadFile("testdata/proxy.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("server { listen 80; server_name a; location / { return 301 https://$host$request_uri; } }"))
	f.Add([]byte("map $uri $k { default $binary_remote_addr; ~x ''; } limit_req_zone $k zone=z:1m rate=1r/s; server { listen 10.254.0.1:81; location = /x { limit_req zone=z; proxy_pass http://10.1.0.50:8080/x; } }"))
	f.Add([]byte("upstream u { server 10.1.0.50:8080; } server { listen 443 ssl; ssl_certificate a; ssl_certificate_key b; if ($http_referer ~ (x)) { return 444; } location ^~ /a { proxy_pass https://u; } }"))
	base, err := inventory.Parse("inv.yaml", []byte(fuzzInventory))
	if err != nil || base == nil {
		f.Fatal(err)
	}
	m, err := LoadWith(fstestFS(fuzzInventory), "inventory.yaml", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := Parse("fuzz", in)
		if err != nil {
			return
		}
		out, rep, err := (&Importer{Model: m, Node: "edge"}).Import(ds)
		var pe *Error
		if errors.As(err, &pe) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		walk(ds, func(*Directive) { n++ })
		if len(rep.Entries) != n {
			t.Fatalf("%d directives, %d entries", n, len(rep.Entries))
		}
		if _, err := LoadWith(fstestFS(fuzzInventory), "inventory.yaml", out); err != nil {
			t.Fatalf("output does not load: %v\n%s", err, out)
		}
	})
}

const fuzzInventory = `providers: [{name: test}]
networks:
  - {name: lan, kind: private, prefixes: [10.0.0.0/8]}
servers:
  - {name: edge, provider: test, mode: bare-metal, addresses: [{network: lan, ip: 10.254.0.1}]}
  - {name: app1, provider: test, mode: bare-metal, addresses: [{network: lan, ip: 10.1.0.50}]}
services:
  - {name: app, node: app1, port: 8080, protocol: http, allow: [edge]}
`

func fstestFS(inv string) fstest.MapFS {
	return fstest.MapFS{"inventory.yaml": {Data: []byte(inv)}}
}

// TestImportIfs: ifs on the user agent in locations become the routes'
// rewrites, in order; the page they rewrite to is the route of the
// location serving it.
func TestImportIfs(t *testing.T) {
	ds, err := Parse("ifs.conf", []byte(`server {
    listen 80;
    server_name example.org;
    set $who guest;
    location / {
        if ($http_user_agent = "-") { rewrite ^ /stop-crawling.txt last; }
        if ($http_user_agent = "python-requests/2.32.2") { rewrite ^ /stop-crawling.txt last; }
        proxy_pass http://10.1.0.50:8080/;
    }
    location /api/ {
        return 200 "api of $who";
    }
    location ~* stop-crawling.txt { root /srv/html; }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, out, rep := importChecked(t, ds, nil, newTestNet(ds, false), t.TempDir())
	s := m.Site("example.org-http")
	if s == nil || len(s.Routes) != 3 || len(s.Rewrites) != 1 || s.Rewrites[0].Set.Name != "who" {
		t.Fatalf("site:\n%s", out)
	}
	if r := s.Routes[0]; len(r.Rewrites) != 2 || r.Rewrites[1].If.Value != "python-requests/2.32.2" || r.Rewrites[1].Then[0].Rewrite.Flag != "last" {
		t.Fatalf("/:\n%s", out)
	}
	if r := s.Routes[1]; r.Upstream != "" || len(r.Rewrites) != 1 || r.Rewrites[0].Return.Body != "api of $who" {
		t.Fatalf("/api/:\n%s", out)
	}
	if !rep.Complete() {
		t.Fatalf("incomplete:\n%s", rep)
	}
}
