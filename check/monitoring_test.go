package check

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/offedge/offedge/inventory"
)

// With monitoring: declared, OE703 asks for exactly those nodes on the ban
// allow lists, whatever they are called; the name heuristic is only the
// fallback for inventories that declare none.
func TestOE703FollowsDeclaredMonitoring(t *testing.T) {
	inv := `providers: [{name: p1}]
networks: [{name: internet, kind: public}]
servers:
  - {name: web, provider: p1, addresses: [{network: internet, ip: 192.0.2.10}]}
  - {name: watcher, provider: p1, addresses: [{network: internet, ip: 192.0.2.11}]}
  - {name: monitoring-old, provider: p1, addresses: [{network: internet, ip: 192.0.2.12}]}
monitoring: [watcher]
sites:
  - name: www
    node: web
    hosts: [www.example.org]
    listen: [{network: internet, port: 80}]
    routes: [{path: /, redirect: https://example.org/}]
protection:
  - node: web
    bans:
      ALLOW
      jails: [{name: abuse, site: www, events: [4xx], max_events: 20, window: 1m}]
`
	oe703 := func(allow string) []string {
		t.Helper()
		m, err := inventory.Load(fstest.MapFS{"i.yaml": {Data: []byte(strings.Replace(inv, "ALLOW", allow, 1))}}, "i.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range Run(m) {
			if f.Rule == "OE703" {
				out = append(out, f.Message)
			}
		}
		return out
	}
	if got := oe703("max_bans: 100"); len(got) != 1 || !strings.Contains(got[0], "watcher") || strings.Contains(got[0], "monitoring-old") {
		t.Fatalf("without an allow list: %q; want one finding naming watcher only", got)
	}
	if got := oe703("allow: [watcher]"); len(got) != 0 {
		t.Fatalf("with watcher allowed: %q", got)
	}
	m, err := inventory.Load(fstest.MapFS{"i.yaml": {Data: []byte(strings.Replace(strings.Replace(inv, "ALLOW", "", 1), "monitoring: [watcher]", "monitoring: [watchr]", 1))}}, "i.yaml")
	if err == nil || !strings.Contains(err.Error(), `unknown node "watchr"`) {
		t.Fatalf("a monitoring entry naming no node: %v", err)
	}
	_ = m
}
