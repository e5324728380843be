package plan

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

// TestOpenFoodFactsFirewalls pins the nft text of every node's firewall.
func TestOpenFoodFactsFirewalls(t *testing.T) {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Nodes {
		p, err := Compile(m, n.Name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Firewall == nil {
			t.Fatalf("%s: no firewall", n.Name)
		}
		var b bytes.Buffer
		if err := p.Firewall.WriteNft(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", "openfoodfacts", n.Name+".nft"), b.Bytes())
	}
}

func loadYAML(t *testing.T, y string) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(y)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func firewallOf(t *testing.T, m *inventory.Model, node string) *Firewall {
	t.Helper()
	p, err := Compile(m, node, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Firewall == nil {
		t.Fatalf("%s: no firewall", node)
	}
	return p.Firewall
}

func rulesFrom(fw *Firewall, chain, from string) []FirewallRule {
	var out []FirewallRule
	for _, r := range fw.Chain(chain).Rules {
		if strings.Contains(r.From, from) {
			out = append(out, r)
		}
	}
	return out
}

// A small estate: a gateway with a private network, a database host, a
// host with a per-address gateway.
const fwInventory = `
providers: [{name: p}]
networks:
  - {name: internet, kind: public}
  - {name: lan, kind: private, prefixes: [10.0.0.0/8, "fd00::/48"], gateway: gw}
servers:
  - name: gw
    provider: p
    firewall: {}
    management: [{name: ssh, allow: [192.0.2.0/28]}]
    addresses:
      - {network: internet, ip: 198.51.100.1}
      - {network: internet, ip: "2001:db8::1"}
      - {network: lan, ip: 10.0.0.1}
      - {network: lan, ip: "fd00::1"}
  - name: gw2
    provider: p
    firewall: {}
    management: [{name: ssh, allow: [192.0.2.0/28]}]
    addresses:
      - {network: internet, ip: 198.51.100.2}
      - {network: lan, ip: 10.0.0.2}
  - name: db
    provider: p
    firewall: {}
    management: [{name: ssh, allow: [gw]}, {name: ipmi, address: 198.51.100.9, allow: [192.0.2.0/28]}]
    addresses:
      - {network: lan, ip: 10.0.0.3}
      - {network: lan, ip: "fd00::3"}
  - name: app
    provider: p
    addresses:
      - {network: lan, ip: 10.0.0.4, gateway: gw2}
services:
  - {name: pg, node: db, port: 5432, protocol: postgresql, bind: [lan], allow: [app]}
  - {name: closed, node: db, port: 9000, protocol: tcp, bind: [lan]}
  - {name: smtp, node: db, port: 25, protocol: smtp, bind: [lan], allow: [gw]}
forwards:
  - {name: mail, node: gw, listen: {network: internet, address: 198.51.100.1, port: 2525}, service: smtp, allow: [192.0.2.5], mode: kernel}
`

func TestFirewallServices(t *testing.T) {
	m := loadYAML(t, fwInventory)
	fw := firewallOf(t, m, "db")
	pg := rulesFrom(fw, "input", "service pg")
	if len(pg) != 1 || pg[0].Dst != netip.MustParseAddr("10.0.0.3") || pg[0].DPort != 5432 || pg[0].Verdict != "accept" {
		t.Fatalf("pg rules: %+v, want one IPv4 accept on 10.0.0.3:5432 (app has no IPv6)", pg)
	}
	if got := fw.Set(pg[0].SrcSet).Elements; !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.4/32")}) {
		t.Fatalf("pg admits %v, want only app", got)
	}
	closed := rulesFrom(fw, "input", "service closed")
	if len(closed) != 2 || closed[0].Verdict != "drop" || closed[0].SrcSet != "" {
		t.Fatalf("a service allowing nobody: %+v, want a drop per address", closed)
	}
	// DNAT keeps the client's address: the target admits the forward's sources.
	fwd := rulesFrom(fw, "input", "forward mail")
	if len(fwd) != 1 || fwd[0].DPort != 25 || !slices.Equal(fw.Set(fwd[0].SrcSet).Elements, []netip.Prefix{netip.MustParsePrefix("192.0.2.5/32")}) {
		t.Fatalf("forwarded clients on the target: %+v", fwd)
	}
	ssh := rulesFrom(fw, "input", "management ssh")
	if len(ssh) != 2 {
		t.Fatalf("ssh from gw: %+v, want IPv4 and IPv6", ssh)
	}
	if r := rulesFrom(fw, "input", "ipmi"); len(r) != 0 {
		t.Fatalf("an out-of-band IPMI controller got rules: %+v", r)
	}
	// Management comes before bans and services.
	in := fw.Chain("input").Rules
	iSSH := slices.IndexFunc(in, func(r FirewallRule) bool { return strings.Contains(r.From, "management ssh") })
	iBan := slices.IndexFunc(in, func(r FirewallRule) bool { return r.SrcSet == BanSet4 })
	iPG := slices.IndexFunc(in, func(r FirewallRule) bool { return strings.Contains(r.From, "service pg") })
	if !(iSSH < iBan && iBan < iPG) {
		t.Fatalf("order: ssh %d, ban %d, pg %d", iSSH, iBan, iPG)
	}
	if fw.Chain("postrouting") != nil || fw.Chain("prerouting") != nil {
		t.Fatal("db is nobody's gateway and has no kernel forward, yet has NAT chains")
	}
}

func TestFirewallNAT(t *testing.T) {
	m := loadYAML(t, fwInventory)
	gw := firewallOf(t, m, "gw")
	dnat := gw.Chain("prerouting").Rules
	if len(dnat) != 1 || dnat[0].DNAT != netip.MustParseAddrPort("10.0.0.3:25") || dnat[0].Dst != netip.MustParseAddr("198.51.100.1") || dnat[0].DPort != 2525 {
		t.Fatalf("dnat: %+v", dnat)
	}
	snat := gw.Chain("postrouting").Rules
	if len(snat) != 2 || snat[0].SNAT != netip.MustParseAddr("198.51.100.1") || snat[1].SNAT != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("snat: %+v, want IPv4 and NAT66 to gw's public addresses", snat)
	}
	if got := gw.Set(snat[1].SrcSet).Elements; !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("fd00::/48")}) {
		t.Fatalf("NAT66 source %v", got)
	}
	// app names gw2 as its own gateway: gw2 translates app alone.
	gw2 := firewallOf(t, m, "gw2")
	s2 := gw2.Chain("postrouting").Rules
	if len(s2) != 1 || s2[0].SNAT != netip.MustParseAddr("198.51.100.2") || !slices.Equal(gw2.Set(s2[0].SrcSet).Elements, []netip.Prefix{netip.MustParsePrefix("10.0.0.4/32")}) {
		t.Fatalf("per-address gateway: %+v", s2)
	}
	// A kernel forward opens no userspace listener.
	p, _ := Compile(m, "gw", Options{})
	if len(p.Listeners) != 0 {
		t.Fatalf("listeners: %+v", p.Listeners)
	}
	p, _ = Compile(m, "gw", Options{UserspaceForwards: true})
	if len(p.Listeners) != 1 || p.Listeners[0].Forward == nil {
		t.Fatalf("with UserspaceForwards: %+v", p.Listeners)
	}
}

func TestKernelForwardFamilies(t *testing.T) {
	m := loadYAML(t, strings.Replace(fwInventory, "address: 198.51.100.1, port: 2525", `address: "2001:db8::1", port: 2525`, 1))
	if _, err := Compile(m, "gw", Options{}); err == nil || !strings.Contains(err.Error(), "other address family") {
		t.Fatalf("IPv6 listener to an IPv4 target: %v", err)
	}
}

func TestFirewallInputAccept(t *testing.T) {
	m := loadYAML(t, strings.Replace(fwInventory, "  - name: db\n    provider: p\n    firewall: {}", "  - name: db\n    provider: p\n    firewall: {input: accept}", 1))
	fw := firewallOf(t, m, "db")
	if fw.Chain("input").Policy != "accept" || fw.Input != "accept" {
		t.Fatalf("policy %q", fw.Chain("input").Policy)
	}
	if r := rulesFrom(fw, "input", "service closed"); len(r) == 0 || r[0].Verdict != "drop" {
		t.Fatal("with policy accept, a service allowing nobody must still be dropped")
	}
}

func TestNoFirewallWithoutOptIn(t *testing.T) {
	m := loadYAML(t, fwInventory)
	p, err := Compile(m, "app", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Firewall != nil {
		t.Fatal("app has no firewall: in the inventory, yet its plan has one")
	}
}

func TestMergePrefixesAndSetNames(t *testing.T) {
	got := mergePrefixes([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("9.0.0.0/8"),
	})
	want := []netip.Prefix{netip.MustParsePrefix("9.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if !slices.Equal(got, want) {
		t.Fatalf("merge: %v, want %v", got, want)
	}
	for in, want := range map[string]string{"tunnel exit 10.0.0.1:443": "tunnel-exit-10.0.0.1-443", "9lives": "s-9lives", "a  b": "a-b"} {
		if got := setName(in); got != want {
			t.Errorf("setName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDecide runs connections through off2's planned input chain: the
// database admits Free's servers only; ovh1's NAT address reaches the
// tunnel exits, not the database; the operators reach ssh.
func TestDecide(t *testing.T) {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fw := firewallOf(t, m, "off2")
	for _, tc := range []struct {
		src, dst string
		port     uint16
		ok       bool
	}{
		{"10.0.0.1", "10.0.0.2", 6379, true}, // off1
		{"fd28:7f08:b8fe::206", "fd28:7f08:b8fe::1", 6379, true},
		{"10.0.0.3", "10.0.0.2", 6379, false},            // nobody at Free
		{"146.59.148.140", "213.36.253.208", 6379, true}, // redis-ovh exit
		{"146.59.148.140", "213.36.253.208", 5432, false},
		{"51.210.154.203", "213.36.253.208", 6379, false}, // docker-prod direct, through ovh2
		{"198.51.100.3", "213.36.253.208", 27017, false},  // ovh3
		{"2a06:c484:5::101", "2a01:e0d:1:c:58bf:fad0:0:1", 27017, true},
		{"192.0.2.5", "213.36.253.208", 22, true},    // operators
		{"198.51.100.3", "213.36.253.208", 22, true}, // ovh3 pulls replicas over ssh
		{"203.0.113.7", "213.36.253.208", 22, false},
	} {
		ok, r := fw.Decide(Packet{Src: netip.MustParseAddr(tc.src), Dst: netip.MustParseAddr(tc.dst), Proto: "tcp", Port: tc.port})
		if ok != tc.ok {
			t.Errorf("%s -> %s:%d: accepted %v by %+v, want %v", tc.src, tc.dst, tc.port, ok, r, tc.ok)
		}
	}
	if ok, _ := fw.Decide(Packet{Src: netip.MustParseAddr("203.0.113.7"), Dst: netip.MustParseAddr("127.0.0.1"), Proto: "tcp", Port: 6379, IIFName: "lo"}); !ok {
		t.Error("loopback refused")
	}
}

// A replica's initiator is admitted on the other end's ssh: the target of a
// zfs replica (syncoid pulls) on the source, the source of a pvesr replica
// or of one that says initiator: source on the target.
func TestFirewallReplicaInitiators(t *testing.T) {
	inv := fwInventory + `replicas:
  - {name: pulled, kind: zfs, source: {node: db, path: tank/a}, target: {node: gw2, path: rpool/a}, schedule: 15m, max_lag: 7h}
  - {name: pushed, kind: zfs, initiator: source, source: {node: app, path: tank/b}, target: {node: db, path: tank/b}, schedule: 15m, max_lag: 7h}
  - {name: proxmox, kind: pvesr, source: {node: gw2, path: rpool/vm}, target: {node: gw, path: rpool/vm}, schedule: 1m, max_lag: 1h}
`
	m := loadYAML(t, inv)
	admitted := func(node string) []netip.Prefix {
		var out []netip.Prefix
		fw := firewallOf(t, m, node)
		for _, r := range rulesFrom(fw, "input", "replicas over ssh") {
			out = append(out, fw.Set(r.SrcSet).Elements...)
		}
		return out
	}
	// db is the source of "pulled" (gw2 connects) and the target of
	// "pushed" (app connects).
	if got, want := admitted("db"), []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("10.0.0.4/32")}; !slices.Equal(got, want) {
		t.Fatalf("db admits %v on ssh for replicas, want gw2 and app %v", got, want)
	}
	// gw is the target of a pvesr replica: gw2 pushes to it.
	if got := admitted("gw"); !slices.Contains(got, netip.MustParsePrefix("10.0.0.2/32")) {
		t.Fatalf("gw admits %v on ssh for replicas, want gw2 (pvesr pushes)", got)
	}
	// gw2 runs both of its copies itself: nobody is admitted for them.
	if got := admitted("gw2"); len(got) != 0 {
		t.Fatalf("gw2 admits %v on ssh for replicas, want none", got)
	}
}
