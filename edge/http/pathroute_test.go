package httpedge

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

// routeOf is the route the handler picks for a request target: parsed as
// net/http does, normalised (normalizeRequestPath), matched. ok is false
// when the request is refused.
func routeOf(t *routeTable, target string) (*route, string, bool) {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, "", false
	}
	r := &http.Request{URL: u}
	if err := normalizeRequestPath(r); err != nil {
		return nil, "", false
	}
	return t.match(r.URL.Path, nil), r.URL.EscapedPath(), true
}

// FuzzRouteOfNormalisedPath: a raw path and its normalised form choose the
// same route, normalising twice changes nothing, and the route is the one
// nginx would choose (decode, then merge slashes and resolve dot segments).
func FuzzRouteOfNormalisedPath(f *testing.F) {
	for _, s := range []string{"/", "/admin/secret", "//admin/secret", "/./admin/secret", "/x/../admin/secret",
		"/%2e%2e/admin/secret", "/x/%2e%2e/admin", "/%61dmin", "/admin", "/api/v2/product/1.json",
		"/images//products/../x.jpg", "/a%2fb", "/admin%3f/"} {
		f.Add(s)
	}
	names := map[*route]string{}
	var tbl routeTable
	for _, p := range []string{"/", "/admin/", "/api/", "/images/", "/x/"} {
		rt := &route{path: p}
		names[rt] = p
		tbl.AddPrefix(p, false, rt)
	}
	exact := &route{path: "/admin", exact: true}
	names[exact] = "=/admin"
	tbl.AddExact("/admin", exact)
	tbl.Sort() // as buildSite
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		rt, norm, ok := routeOf(&tbl, p)
		if !ok {
			return
		}
		rt2, norm2, ok := routeOf(&tbl, norm)
		if !ok || rt2 != rt || norm2 != norm {
			t.Fatalf("%q -> route %s (%q), its normal form %q -> route %s (%q, refused: %v)", p, names[rt], norm, norm, names[rt2], norm2, !ok)
		}
		dec, err := url.PathUnescape(strings.SplitN(p, "?", 2)[0])
		if err != nil {
			return
		}
		want := path.Clean(dec)
		if strings.HasSuffix(dec, "/") || strings.HasSuffix(dec, "/.") || strings.HasSuffix(dec, "/..") {
			want = strings.TrimSuffix(want, "/") + "/"
		}
		if got := tbl.match(want, nil); got != rt {
			t.Fatalf("%q -> route %s, nginx would choose %s (for %q)", p, names[rt], names[got], want)
		}
	})
}
