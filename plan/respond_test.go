package plan

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/inventory"
)

// TestResponseFieldsCompiled: headers, headers_always and headers_inherit
// reach the edge as written; a route's expires is its own, else its
// site's, and "off" cancels the site's.
func TestResponseFieldsCompiled(t *testing.T) {
	p := compileSites(t, `  - name: w
    node: s1
    hosts: [w.example]
    listen: [{network: internet, port: 80}]
    headers: {X-A: a}
    headers_always: {X-Content-Type-Options: nosniff}
    expires: 1h
    access_log: {path: /var/log/w.log, format: combined_proxy}
    routes:
      - {path: /, redirect: /x}
      - {path: /own/, redirect: /x, headers: {X-B: b}, headers_inherit: false, expires: modified 30d}
      - {path: /off/, redirect: /x, expires: "off"}
`)
	st := p.Listeners[0].HTTP.Sites[0]
	if st.Headers["X-A"] != "a" || st.HeadersAlways["X-Content-Type-Options"] != "nosniff" || st.AccessLog.Format != "combined_proxy" {
		t.Fatalf("site: %+v", st)
	}
	want := []struct {
		noSite  bool
		expires *httpedge.Expires
	}{
		{false, &httpedge.Expires{Mode: "access", Seconds: 3600}},
		{true, &httpedge.Expires{Mode: "modified", Seconds: 30 * 86400}},
		{false, nil},
	}
	for i, w := range want {
		r := st.Routes[i]
		if r.NoSiteHeaders != w.noSite || (r.Expires == nil) != (w.expires == nil) || (r.Expires != nil && *r.Expires != *w.expires) {
			t.Errorf("route %s: no_site_headers %v expires %+v; want %v %+v", r.Path, r.NoSiteHeaders, r.Expires, w.noSite, w.expires)
		}
	}
}

// TestCompressCompiled: a route's compress fields are its own, else its
// site's, else the defaults table's; gzip_static reaches static routes
// only; both codings off is no compression.
func TestCompressCompiled(t *testing.T) {
	p := compileSites(t, `  - name: w
    node: s1
    hosts: [w.example]
    listen: [{network: internet, port: 80}]
    compress: {level: 9, types: [text/css], gzip_static: true}
    routes:
      - {path: /, redirect: /x}
      - {path: /static/, static: {root: /srv}, compress: {zstd: false, min_length: 1k}}
      - {path: /none/, redirect: /x, compress: {gzip: false, zstd: false}}
  - name: v
    node: s1
    hosts: [v.example]
    listen: [{network: internet, port: 80}]
    routes:
      - {path: /, redirect: /x, compress: {}}
      - {path: /no/, redirect: /x}
`)
	w, v := p.Listeners[0].HTTP.Sites[0], p.Listeners[0].HTTP.Sites[1]
	want := []*httpedge.Compress{
		{Gzip: true, Zstd: true, Types: []string{"text/css"}, MinLength: DefaultCompressMinLength, GzipLevel: 9},
		{Gzip: true, Zstd: false, Types: []string{"text/css"}, MinLength: 1024, GzipLevel: 9, Static: true},
		nil,
		{Gzip: true, Zstd: true, Types: DefaultCompressTypes, MinLength: DefaultCompressMinLength, GzipLevel: DefaultGzipLevel},
		nil,
	}
	for i, r := range append(w.Routes, v.Routes...) {
		if !reflect.DeepEqual(r.Compress, want[i]) {
			t.Errorf("route %d %s: %+v, want %+v", i, r.Path, r.Compress, want[i])
		}
	}
}

// compileSites compiles node s1 of a one-server inventory with these
// sites (YAML list items).
func compileSites(t *testing.T, sites string) *Plan {
	t.Helper()
	fsys := fstest.MapFS{"inventory.yaml": {Data: []byte(`providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers: [{name: s1, provider: p, addresses: [{network: internet, ip: 192.0.2.1}]}]
sites:
` + sites)}}
	m, err := inventory.Load(fsys, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, "s1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestErrorLogCompiled: a site's error log is a log file of the node at
// nginx's level mapped onto the edge's; a file cannot be an access log
// and an error log.
func TestErrorLogCompiled(t *testing.T) {
	p := compileSites(t, `  - name: w
    node: s1
    hosts: [w.example]
    listen: [{network: internet, port: 80}]
    error_log: {path: /var/log/w.err, level: crit}
    routes: [{path: /, redirect: /x}]
  - name: v
    node: s1
    hosts: [v.example]
    listen: [{network: internet, port: 80}]
    error_log: {path: /var/log/w.err}
    routes: [{path: /, redirect: /x}]
`)
	w, v := p.Listeners[0].HTTP.Sites[0], p.Listeners[0].HTTP.Sites[1]
	if *w.ErrorLog != (httpedge.SiteErrorLog{File: "/var/log/w.err", Level: "error"}) || v.ErrorLog.Level != DefaultErrorLogLevel {
		t.Fatalf("error logs %+v %+v", w.ErrorLog, v.ErrorLog)
	}
	if f, ok := p.Resources.AccessLogs["/var/log/w.err"]; !ok || f.BufferBytes != DefaultErrorLogBuffer || len(p.Resources.AccessLogs) != 1 {
		t.Fatalf("log files %+v", p.Resources.AccessLogs)
	}
	fsys := fstest.MapFS{"inventory.yaml": {Data: []byte(`providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers: [{name: s1, provider: p, addresses: [{network: internet, ip: 192.0.2.1}]}]
sites:
  - {name: w, node: s1, hosts: [w.example], listen: [{network: internet, port: 80}], error_log: {path: /var/log/x}, access_log: {path: /var/log/x}, routes: [{path: /, redirect: /x}]}
`)}}
	m, err := inventory.Load(fsys, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(m, "s1", Options{}); err == nil || !strings.Contains(err.Error(), "is an access log too") {
		t.Fatalf("one file as both logs: %v", err)
	}
}

// TestTLSPolicyCompiled: a site's TLS settings reach the edge as a policy;
// a site without them has none.
func TestTLSPolicyCompiled(t *testing.T) {
	p := compileSites(t, `  - name: w
    node: s1
    hosts: [w.example]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {certbot: w.example, min_version: "1.3", curves: [secp384r1], session_tickets: false}
    routes: [{path: /, redirect: /x}]
  - name: v
    node: s1
    hosts: [v.example]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {certbot: v.example}
    routes: [{path: /, redirect: /x}]
`)
	w, v := p.Listeners[0].HTTP.Sites[0], p.Listeners[0].HTTP.Sites[1]
	if !reflect.DeepEqual(w.TLSPolicy, &httpedge.TLSPolicy{MinVersion: "1.3", Curves: []string{"secp384r1"}, NoSessionTickets: true}) || v.TLSPolicy != nil {
		t.Fatalf("tls policies %+v %+v", w.TLSPolicy, v.TLSPolicy)
	}
}
