package plan

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/offedge/offedge/inventory"
)

// TestRoutingInPlan: match kinds, maps, rewrite steps and upstream paths
// reach the plan's routes and its text shows them as nginx writes them.
func TestRoutingInPlan(t *testing.T) {
	inv := `providers: [{name: p, locations: [{name: l}]}]
networks: [{name: internet, kind: public}]
servers: [{name: s1, provider: p, addresses: [{network: internet, ip: 192.0.2.1}]}]
services: [{name: app, node: s1, port: 8080, protocol: http}]
upstreams: [{name: app, servers: [{service: app}]}]
sites:
  - name: w
    node: s1
    hosts: [w.example]
    listen: [{network: internet, port: 80}]
    maps: [{name: kind, source: $http_user_agent, default: other, entries: [{regex: bot, case_insensitive: true, value: robot}]}]
    rewrites:
      - if: {variable: $kind, op: "=", value: robot}
        then: [{return: {code: 403}}]
      - rewrite: {regex: '^/old/(.*)$', replacement: '/new/$1', flag: permanent}
    routes:
      - {path: /, exact: true, upstream: app}
      - {path: /api/, upstream: app, upstream_path: /v2/}
      - {path: /images/, match: priority_prefix, upstream: app}
      - {path: '\.php$', match: regex_ci, upstream: app, upstream_path: '/php$uri'}
      - path: /loop/
        rewrites: [{set: {name: x, value: $1}}, {return: {code: 200, body: "x"}}]
`
	if _, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(inv)}}, "inventory.yaml"); err == nil {
		t.Fatal("a set naming $1 outside any regex loaded")
	}
	_, text := compileText(t, strings.Replace(inv, "value: $1", "value: $uri", 1), "s1")
	for _, want := range []string{
		`map $http_user_agent $kind (1 entries, default "other")`,
		`if ($kind = "robot")`, `  return 403`, `rewrite ^/old/(.*)$ /new/$1 permanent`,
		`= / -> upstream app`, `/api/ -> upstream app path /v2/`, `^~ /images/ -> upstream app`,
		`~* \.php$ -> upstream app path /php$uri`, `/loop/ -> its rewrites, else 404`, `set $x "$uri"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan text lacks %q:\n%s", want, text)
		}
	}
}

// compileText loads inv, compiles node's plan and returns it with its text.
func compileText(t *testing.T, inv, node string) (*Plan, string) {
	t.Helper()
	m, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(inv)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, node, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	if err := p.WriteText(&tb); err != nil {
		t.Fatal(err)
	}
	return p, tb.String()
}
