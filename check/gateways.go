package check

import (
	"fmt"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Routing rules: how a node's traffic leaves it.
var gatewayRules = []checker{
	{
		Rule: Rule{
			ID:       "OE211",
			Title:    "guest with two default gateways",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `A guest gets one default route per address family. A public address brings its own (the provider's router), and so does each private address whose network has a gateway (or that names one). With two, which one wins depends on the order interfaces come up: after a reboot of ovh1, the OVH reverse proxy had its default route through the NAT gateway on its private interface, so replies to requests on its public address left by the wrong gateway and never arrived, and every site behind it was down (docs/reports/2022-02-18-ovh-reverse-proxy-down.md). The fix kept the public gateway and removed the private one. offedge's model picks the public address, so its answers would hide the trap: this rule names it. Write gateway: none on the address that must not carry the default route.`,
			Example: `guests:
  - name: proxy
    host: host
    id: 101
    kind: ct
    addresses:
      - {network: internet, ip: 192.0.2.101}
      - {network: lan, ip: 10.1.0.101}    # lan's gateway is host: a second default route
        # fix: add gateway: none to this address`,
		},
		run: checkDefaultGateways,
	},
}

// defaultRoute is one way a guest's traffic of one family leaves it.
type defaultRoute struct {
	text string
	pos  inventory.Pos
}

// defaultRoutes lists, per family, the default routes the addresses of n
// give it: one for its public addresses, one per private address with a
// gateway other than n itself.
func defaultRoutes(m *inventory.Model, n *inventory.Node) map[int][]defaultRoute {
	out := map[int][]defaultRoute{}
	public := map[int]bool{}
	for _, a := range n.Addresses {
		fam := 6
		if a.IP.Is4() {
			fam = 4
		}
		if m.IsPublic(a.Network) {
			if !public[fam] {
				public[fam] = true
				out[fam] = append(out[fam], defaultRoute{fmt.Sprintf("its public address %s on %s", a.IP, a.Network), a.Pos})
			}
			continue
		}
		if gw := m.GatewayOf(a); gw != nil && gw != n {
			out[fam] = append(out[fam], defaultRoute{fmt.Sprintf("%s (NAT) from %s on %s", gw.Name, a.IP, a.Network), a.Pos})
		}
	}
	return out
}

func checkDefaultGateways(p *pass) {
	for _, n := range p.m.Nodes {
		if n.Guest == nil {
			continue
		}
		routes := defaultRoutes(p.m, n)
		for _, fam := range []int{4, 6} {
			rs := routes[fam]
			if len(rs) < 2 {
				continue
			}
			texts := make([]string, len(rs))
			related := make([]Related, len(rs))
			for i, r := range rs {
				texts[i] = r.text
				related[i] = Related{r.pos, "default route: " + r.text}
			}
			p.report(n.Guest.Pos, nodeObject(n), related,
				"has %d default IPv%d gateways: %s; which one wins depends on the order interfaces come up, and replies may leave by the wrong one; keep one (gateway: none on the others)",
				len(rs), fam, strings.Join(texts, ", "))
		}
	}
}
