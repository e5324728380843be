package inventory

import (
	"strings"
	"testing"
	"testing/fstest"
)

const routingBase = `providers: [{name: p, locations: [{name: l}]}]
networks: [{name: internet, kind: public}]
servers: [{name: s1, provider: p, addresses: [{network: internet, ip: 192.0.2.1}]}]
`

// loadRoutes loads one site on s1 with the given routes (flow YAML).
func loadRoutes(t *testing.T, routes string) (*Model, error) {
	t.Helper()
	y := routingBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], routes: " + routes + "}]\n"
	return Load(fstest.MapFS{"inventory.yaml": &fstest.MapFile{Data: []byte(y)}}, "inventory.yaml")
}

func TestRouteMatchKinds(t *testing.T) {
	m, err := loadRoutes(t, `[{path: /, redirect: "https://x"}, {path: /x, exact: true, redirect: "https://x"}, {path: /x, match: priority_prefix, redirect: "https://x"},
	  {path: '\.jpg$', match: regex_ci, redirect: "https://x"}, {path: '^/api/', match: regex, redirect: "https://x"}, {path: /y, match: exact, redirect: "https://x"}]`)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range m.Site("w").Routes {
		kinds = append(kinds, r.Kind())
	}
	if got := strings.Join(kinds, " "); got != "prefix exact priority_prefix regex_ci regex exact" {
		t.Errorf("kinds: %s", got)
	}
	for name, c := range map[string]struct{ routes, want string }{
		"unknown":   {`[{path: /, match: glob, redirect: "https://x"}]`, `unknown match "glob" (use prefix, exact, priority_prefix, regex or regex_ci)`},
		"both":      {`[{path: /, exact: true, match: regex, redirect: "https://x"}]`, `exact: true with match: regex`},
		"pcre":      {`[{path: '^/(?!admin)', match: regex, redirect: "https://x"}]`, `negative lookahead (?!...), a PCRE feature RE2 (Go's regexp) does not have`},
		"syntax":    {`[{path: '^/(', match: regex, redirect: "https://x"}]`, `missing closing )`},
		"slash":     {`[{path: x, match: priority_prefix, redirect: "https://x"}]`, `path must start with /`},
		"duplicate": {`[{path: /x, redirect: "https://x"}, {path: /x, match: priority_prefix, redirect: "https://x"}]`, `duplicate route path "/x"`},
	} {
		_, err := loadRoutes(t, c.routes)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}

// TestEAN8RewritesLoad: the 2024-06-20 EAN-8 image path migration of ks1's
// images-off, with the site's referer block, loads as steps.
func TestEAN8RewritesLoad(t *testing.T) {
	y := routingBase + `upstreams: [{name: proxy2, servers: [{node: s1, port: 443}]}]
sites:
  - name: images
    node: s1
    hosts: [images.example]
    listen: [{network: internet, port: 80}]
    rewrites:
      - if: {variable: $http_referer, op: "~*", value: (jobothoniel.com)}
        then: [{return: {code: 403}}]
    maps: [{name: size, source: $uri, default: small, entries: [{regex: '\.full\.jpg', case_insensitive: true, value: big}]}]
    routes:
      - path: /
        static: {root: /srv/images, fallback: proxy2}
        rewrites:
          - rewrite: {regex: '^/images/products/(....)/([^/]*)$', replacement: '/images/products/000/000/000/$1/$2', flag: break}
          - rewrite: {regex: '^/images/products/(..)(...)(....)/([^/]*)$', replacement: '/images/products/000/0$1/$2/$3/$4', flag: break}
      - {path: '^/v(\d+)/(.*)$', match: regex, upstream: proxy2, upstream_path: '/api/v$1/$2$is_args$args'}
      - {path: /api/, upstream: proxy2, upstream_path: /v2/}
`
	m, err := Load(fstest.MapFS{"inventory.yaml": &fstest.MapFile{Data: []byte(y)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := m.Site("images")
	if len(s.Rewrites) != 1 || len(s.Routes[0].Rewrites) != 2 || s.Routes[0].Rewrites[1].Rewrite.Flag != "break" {
		t.Errorf("steps not loaded: %+v", s.Routes[0].Rewrites)
	}
	for name, c := range map[string]struct{ routes, want string }{
		"capture":  {`[{path: /, redirect: "https://x", rewrites: [{rewrite: {regex: '^/(a)$', replacement: '/$2'}}]}]`, `names $2, but only 1 groups are captured there`},
		"flag":     {`[{path: /, redirect: "https://x", rewrites: [{rewrite: {regex: '^/', replacement: '/x', flag: stop}}]}]`, `flag "stop"`},
		"two":      {`[{path: /, redirect: "https://x", rewrites: [{return: {code: 200}, set: {name: a}}]}]`, `exactly one of rewrite, return, set and if`},
		"return":   {`[{path: /, rewrites: [{return: {code: 301}}]}]`, `a redirect needs a url`},
		"variable": {`[{path: /, rewrites: [{return: {code: 200, body: "$nope"}}]}]`, `unknown variable $nope`},
		"filetest": {`[{path: /, rewrites: [{if: {variable: $uri, op: "-f"}, then: [{return: {code: 404}}]}]}]`, `file tests -f/-d/-e/-x are not supported`},
		"upre":     {`[{path: '^/a', match: regex, upstream: u, upstream_path: /b}]`, `upstream_path on a regex route without variables`},
		"upnone":   {`[{path: /a, redirect: "https://x", upstream_path: /b}]`, `upstream_path without upstream`},
	} {
		_, err := loadRoutes(t, c.routes)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}

// TestClassMapVariables: a node's class maps are variables of its sites
// (and of no other node's).
func TestClassMapVariables(t *testing.T) {
	y := strings.Replace(routingBase, "192.0.2.1}]}]\n", "192.0.2.1}]}, {name: s2, provider: p, addresses: [{network: internet, ip: 192.0.2.2}]}]\n", 1) + `protection:
  - node: s1
    maps: [{name: crawlers, source: user_agent, rules: [{regex: '(?i)bot', class: crawler}]}]
sites:
  - name: w
    node: s1
    hosts: [a.example]
    listen: [{network: internet, port: 80}]
    rewrites: [{if: {variable: $crawlers, op: "=", value: crawler}, then: [{return: {code: 403}}]}]
    routes: [{path: /, redirect: "https://x"}]
  - name: other
    node: s2
    hosts: [b.example]
    listen: [{network: internet, port: 80}]
    rewrites: [{if: {variable: $crawlers, op: "=", value: crawler}, then: [{return: {code: 403}}]}]
    routes: [{path: /, redirect: "https://x"}]
`
	_, err := Load(fstest.MapFS{"inventory.yaml": &fstest.MapFile{Data: []byte(y)}}, "inventory.yaml")
	if err == nil || !strings.Contains(err.Error(), `site "other": rewrites`) || strings.Contains(err.Error(), `site "w"`) {
		t.Fatalf("want only site other refused ($crawlers is s1's): %v", err)
	}
}
