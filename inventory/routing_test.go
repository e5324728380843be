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
