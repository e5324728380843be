package plan

import (
	"testing"
	"testing/fstest"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/inventory"
)

// TestResponseFieldsCompiled: headers, headers_always and headers_inherit
// reach the edge as written; a route's expires is its own, else its
// site's, and "off" cancels the site's.
func TestResponseFieldsCompiled(t *testing.T) {
	fsys := fstest.MapFS{"inventory.yaml": {Data: []byte(`providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers: [{name: s1, provider: p, addresses: [{network: internet, ip: 192.0.2.1}]}]
sites:
  - name: w
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
`)}}
	m, err := inventory.Load(fsys, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, "s1", Options{})
	if err != nil {
		t.Fatal(err)
	}
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
