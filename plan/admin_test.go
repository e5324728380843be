package plan

import (
	"net/netip"
	"strings"
	"testing"
)

const adminInventory = `providers: [{name: p}]
networks:
  - {name: lan, kind: private, prefixes: [10.9.0.0/24]}
  - {name: internet, kind: public}
servers:
  - name: db
    provider: p
    firewall: {}
    management: [{name: ssh, allow: [10.9.0.0/24]}]
    addresses: [{network: lan, ip: 10.9.0.1}, {network: internet, ip: 192.0.2.1}]
  - {name: app, provider: p, addresses: [{network: lan, ip: 10.9.0.2}]}
  - {name: peer, provider: p, addresses: [{network: internet, ip: 198.51.100.5}]}
  - {name: quiet, provider: p, addresses: [{network: lan, ip: 10.9.0.6}]}
admin:
  - node: db
    listen: %s
    auth: {token_file: /etc/offedge/admin.token}
    allow: [203.0.113.0/28]
  - {node: peer, listen: 198.51.100.5:9901, auth: {token_file: /etc/offedge/admin.token}}
  - {node: quiet, listen: 127.0.0.1:9901}
`

// The admin endpoint's access list holds loopback, the node itself, every
// other admin node (a peer's dashboard asks this one; so may a node whose
// own endpoint is on loopback) and the allow list, whatever the address
// it listens on; the firewall admits exactly those on its port, so a
// peer's dashboard gets through a firewall with policy drop.
func TestAdminACLAndFirewall(t *testing.T) {
	for _, listen := range []string{"10.9.0.1:9901", "0.0.0.0:9901"} {
		m := loadYAML(t, strings.Replace(adminInventory, "%s", listen, 1))
		p, err := Compile(m, "db", Options{})
		if err != nil {
			t.Fatal(err)
		}
		l := p.Admin.ACL
		for addr, want := range map[string]bool{
			"127.0.0.1":    true,  // loopback
			"::1":          true,  // loopback
			"10.9.0.1":     true,  // itself
			"192.0.2.1":    true,  // itself
			"198.51.100.5": true,  // peer
			"10.9.0.6":     true,  // quiet: an admin node, its endpoint on loopback
			"203.0.113.7":  true,  // allow
			"10.9.0.2":     false, // app
			"203.0.113.99": false,
		} {
			if got := l.Allowed(netip.MustParseAddr(addr)); got != want {
				t.Errorf("listen %s: ACL admits %s: %v, want %v (%s)", listen, addr, got, want, l.String())
			}
		}
		dst := netip.MustParseAddr("10.9.0.1")
		for src, want := range map[string]bool{
			"198.51.100.5": true, "203.0.113.7": true, "10.9.0.6": true,
			"10.9.0.2": false, "203.0.113.99": false,
		} {
			ok, r := p.Firewall.Decide(Packet{Src: netip.MustParseAddr(src), Dst: dst, Proto: "tcp", Port: 9901})
			if ok != want {
				t.Errorf("listen %s: firewall admits %s on the admin port: %v (rule %+v), want %v", listen, src, ok, r, want)
			}
			if want && (r == nil || !strings.Contains(r.From, "admin endpoint db")) {
				t.Errorf("listen %s: %s admitted by %+v, not the admin endpoint's rule", listen, src, r)
			}
		}
	}
}

// An endpoint on loopback opens nothing in the firewall.
func TestAdminLoopbackNoFirewallRule(t *testing.T) {
	m := loadYAML(t, strings.Replace(adminInventory, "%s", "127.0.0.1:9901", 1))
	p, err := Compile(m, "db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Firewall.Chain("input").Rules {
		if r.DPort == 9901 {
			t.Errorf("rule for a loopback endpoint: %+v", r)
		}
	}
}
