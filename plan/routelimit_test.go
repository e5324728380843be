package plan

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/inventory"
)

const routeLimitInventory = `providers: [{name: p1}]
networks: [{name: internet, kind: public}]
servers:
  - name: web
    provider: p1
    addresses: [{network: internet, ip: 192.0.2.10}]
upstreams:
  - name: app
    servers: [{node: web, network: internet, port: 8080}]
sites:
  - name: www
    node: web
    hosts: [www.example.org]
    listen: [{network: internet, port: 80}]
    routes:
      - {path: /, upstream: app, limits: [api]}
      - {path: /api/, upstream: app, limits: [{zone: api, burst: 20, nodelay: true}]}
      - {path: /search, upstream: app, limits: [{zone: api, burst: 2}]}
protection:
  - node: web
    limit_zones:
      - {name: api, rate: 10, burst: 5}
`

// A route's limits are a zone's name (the zone's burst and nodelay) or the
// zone with the route's own, as nginx's limit_req lines; the zone's state
// holds the largest burst.
func TestRouteLimitsResolved(t *testing.T) {
	m, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(routeLimitInventory)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, "web", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if z := p.Resources.Zones["api"]; z.Burst != 5 || z.MaxBurst != 20 || z.NoDelay {
		t.Fatalf("zone %+v; want burst 5, max_burst 20", z)
	}
	got := map[string][]httpedge.RouteLimit{}
	for _, l := range p.Listeners {
		for _, s := range l.HTTP.Sites {
			for _, r := range s.Routes {
				got[r.Path] = r.Limits
			}
		}
	}
	for path, want := range map[string][]httpedge.RouteLimit{
		"/":       {{Zone: "api", Burst: 5}},
		"/api/":   {{Zone: "api", Burst: 20, NoDelay: true}},
		"/search": {{Zone: "api", Burst: 2}},
	} {
		if !slices.Equal(got[path], want) {
			t.Errorf("%s: limits %+v, want %+v", path, got[path], want)
		}
	}
}

func TestRouteLimitErrors(t *testing.T) {
	for name, tc := range map[string]struct{ from, to, want string }{
		"negative burst": {"{zone: api, burst: 2}", "{zone: api, burst: -1}", "burst must not be negative"},
		"unknown field":  {"{zone: api, burst: 2}", "{zone: api, bursts: 2}", `unknown field "bursts"`},
		"unknown zone":   {"limits: [api]", "limits: [apy]", `unknown limit zone "apy"`},
		"not a zone":     {"limits: [api]", "limits: [[api]]", "want"},
	} {
		inv := strings.Replace(routeLimitInventory, tc.from, tc.to, 1)
		if inv == routeLimitInventory {
			t.Fatalf("%s: fixture unchanged", name)
		}
		_, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(inv)}}, "inventory.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", name, err, tc.want)
		}
	}
}
