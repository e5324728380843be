package openfoodfacts_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/offedge/offedge/check"
	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

func load(t *testing.T) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatalf("loading the Open Food Facts inventory:\n%v", err)
	}
	return m
}

func TestLoads(t *testing.T) {
	m := load(t)
	if got, want := len(m.Servers), 6; got != want {
		t.Errorf("servers: got %d, want %d", got, want)
	}
	if got, want := len(m.Nodes), 6+12; got != want {
		t.Errorf("nodes: got %d, want %d", got, want)
	}
	if len(m.Files) < 2 {
		t.Errorf("files: got %v, want inventory.yaml and its includes", m.Files)
	}
}

// TestNames pins the names other packages' end-to-end tests rely on.
func TestNames(t *testing.T) {
	m := load(t)
	for _, n := range []string{"off1", "off2", "ovh1", "ovh2", "ovh3", "osm45",
		"ovh-proxy", "ovh-pmg", "ovh-wiki", "ovh-odoo", "ovh-stunnel-client", "ovh-blog",
		"docker-staging", "docker-prod", "ovh-monitoring",
		"moji-stunnel-client", "moji-stunnel-server", "moji-docker-prod"} {
		if m.Node(n) == nil {
			t.Errorf("node %q missing", n)
		}
	}
	for _, s := range []string{"po-off", "po-obf", "po-opf", "po-opff", "po-off-pro", "mongodb", "redis",
		"pmg-smtp", "blog", "wiki", "odoo", "monitoring", "influxdb", "docker-prod-apps",
		"docker-staging-apps", "robotoff", "off-query"} {
		if m.Service(s) == nil {
			t.Errorf("service %q missing", s)
		}
	}
	for _, s := range []string{"off", "obf", "opf", "opff", "off-pro", "images-off1", "images",
		"blog", "wiki", "connect", "monitoring", "robotoff", "docker-prod", "docker-staging"} {
		if m.Site(s) == nil {
			t.Errorf("site %q missing", s)
		}
	}
	for _, tn := range []string{"mongodb-ovh", "redis-ovh", "mongodb-moji", "redis-moji",
		"influxdb-moji", "robotoff", "off-query"} {
		if m.Tunnel(tn) == nil {
			t.Errorf("tunnel %q missing", tn)
		}
	}
	if m.Forward("pmg-smtp") == nil {
		t.Error(`forward "pmg-smtp" missing`)
	}
	for _, p := range []string{"free", "ovh", "moji"} {
		if m.Provider(p) == nil {
			t.Errorf("provider %q missing", p)
		}
	}
}

// siteFor returns the site answering host, by nginx's rule: an exact name
// first, then the longest matching leading wildcard.
func siteFor(m *inventory.Model, host string) *inventory.Site {
	var best *inventory.Site
	bestLen := -1
	for _, s := range m.Sites {
		for _, h := range s.Hosts {
			switch {
			case h == host:
				return s
			case strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) && len(h) > bestLen:
				best, bestLen = s, len(h)
			}
		}
	}
	return best
}

func TestHostRouting(t *testing.T) {
	m := load(t)
	for host, want := range map[string]struct{ site, node string }{
		"world.openfoodfacts.org":    {"off", "off1"},
		"openfoodfacts.org":          {"off", "off1"},
		"fr.pro.openfoodfacts.org":   {"off-pro", "off1"},
		"world.openbeautyfacts.org":  {"obf", "off1"},
		"off1.openfoodfacts.org":     {"images-off1", "off1"},
		"robotoff.openfoodfacts.org": {"robotoff", "ovh-proxy"},
		"search.openfoodfacts.org":   {"docker-prod", "ovh-proxy"},
		"wiki.openfoodfacts.net":     {"docker-staging", "ovh-proxy"},
	} {
		s := siteFor(m, host)
		if s == nil || s.Name != want.site || s.Node != want.node {
			t.Errorf("%s: got %+v, want site %q on %q", host, s, want.site, want.node)
		}
	}
}

// TestSameIPDifferentNetworks: 10.0.0.1 is off1 at Free and ovh1 at OVH.
func TestSameIPDifferentNetworks(t *testing.T) {
	m := load(t)
	ip := netip.MustParseAddr("10.0.0.1")
	if n := m.NodeAt("free-lan", ip); n == nil || n.Name != "off1" {
		t.Errorf("10.0.0.1 on free-lan: got %v, want off1", n)
	}
	if n := m.NodeAt("ovh-lan", ip); n == nil || n.Name != "ovh1" {
		t.Errorf("10.0.0.1 on ovh-lan: got %v, want ovh1", n)
	}
}

func TestImagesFallbackChain(t *testing.T) {
	m := load(t)
	s := m.Site("images")
	if s == nil || s.Node != "ovh3" || len(s.Routes) == 0 || s.Routes[0].Static == nil {
		t.Fatalf("site images: want a static route on ovh3, got %+v", s)
	}
	u := m.Upstream(s.Routes[0].Static.Fallback)
	if u == nil || len(u.Servers) != 1 || u.Servers[0].Node != "off1" || !u.Servers[0].TLS {
		t.Fatalf("images fallback: want off1 over TLS, got %+v", u)
	}
	origin := m.Site("images-off1")
	if origin == nil || origin.Routes[0].Static == nil || origin.Routes[0].Static.Fallback != "" {
		t.Errorf("images-off1 must serve files with no fallback, got %+v", origin)
	}
}

// TestDatabasesNeverPublic: every database binds private networks only.
func TestDatabasesNeverPublic(t *testing.T) {
	m := load(t)
	for _, s := range m.Services {
		if !s.IsDatabase() {
			continue
		}
		if len(s.Bind) == 0 && !s.Loopback {
			t.Errorf("service %q binds every network", s.Name)
		}
		for _, nw := range s.Bind {
			if m.IsPublic(nw) {
				t.Errorf("service %q binds public network %q", s.Name, nw)
			}
		}
		if len(s.Allow) == 0 {
			t.Errorf("service %q has no allow list", s.Name)
		}
	}
}

// TestOneSecretPerTunnel: no PSK file is shared (the OVH and Moji MongoDB
// tunnels shared one in the stunnel configuration).
func TestOneSecretPerTunnel(t *testing.T) {
	m := load(t)
	seen := map[string]string{}
	for _, tn := range m.Tunnels {
		if tn.Auth == nil || tn.Auth.PSK == "" {
			t.Errorf("tunnel %q: want a PSK file", tn.Name)
			continue
		}
		if other, dup := seen[tn.Auth.PSK]; dup {
			t.Errorf("tunnels %q and %q share %s", other, tn.Name, tn.Auth.PSK)
		}
		seen[tn.Auth.PSK] = tn.Name
	}
}

// TestMojiReachesFreeOverIPv6: Moji has no public IPv4, so the Moji tunnel
// entrance reaches off2's exit over IPv6.
func TestMojiReachesFreeOverIPv6(t *testing.T) {
	m := load(t)
	tn := m.Tunnel("mongodb-moji")
	entrance := m.Node(tn.Entrance.Node)
	target, ok := m.ReachEndpoint(entrance, tn.Exits[0])
	if !ok {
		t.Fatalf("moji-stunnel-client cannot reach the mongodb-moji exit")
	}
	if !target.Addr.Addr().Is6() {
		t.Errorf("mongodb-moji exit reached at %v, want IPv6", target)
	}
}

// admitted reports whether node n may use a listener with allow list allow,
// reached as t (a loopback connection stays on the node).
func admitted(m *inventory.Model, allow []string, t inventory.Target, n *inventory.Node) bool {
	return t.Loopback || m.Admits(allow, t.Network, n)
}

// TestEverythingConnects walks every declared connection: each node's
// `uses`, each tunnel (entrance → exit → service), each upstream server
// from the sites that use it, and each forward, and checks that the
// addressing and the allow lists let it through.
func TestEverythingConnects(t *testing.T) {
	m := load(t)
	useService := func(n *inventory.Node, s *inventory.Service) (string, bool) {
		if tg, ok := m.ReachService(n, s); ok && admitted(m, s.Allow, tg, n) {
			return "direct " + tg.String(), true
		}
		for _, tn := range m.Tunnels {
			if tn.Service != s.Name {
				continue
			}
			tg, ok := m.ReachEndpoint(n, tn.Entrance)
			if ok && admitted(m, tn.Allow, tg, n) {
				return "tunnel " + tn.Name + " at " + tg.String(), true
			}
		}
		return "", false
	}
	for _, n := range m.Nodes {
		for _, u := range n.Uses {
			s := m.Service(u)
			if s == nil {
				t.Errorf("%s uses unknown service %q", n.Name, u)
				continue
			}
			if how, ok := useService(n, s); !ok {
				t.Errorf("%s cannot use %s", n.Name, u)
			} else {
				t.Logf("%s → %s: %s", n.Name, u, how)
			}
		}
	}
	for _, tn := range m.Tunnels {
		in := m.Node(tn.Entrance.Node)
		s := m.Service(tn.Service)
		for _, e := range tn.Exits {
			tg, ok := m.ReachEndpoint(in, e)
			if !ok {
				t.Errorf("tunnel %s: entrance %s cannot reach exit on %s", tn.Name, in.Name, e.Node)
				continue
			}
			t.Logf("tunnel %s: %s → %s", tn.Name, in.Name, tg)
			out := m.Node(e.Node)
			st, ok := m.ReachService(out, s)
			if !ok || !admitted(m, s.Allow, st, out) {
				t.Errorf("tunnel %s: exit %s cannot use service %s", tn.Name, out.Name, s.Name)
			}
		}
	}
	for _, site := range m.Sites {
		from := m.Node(site.Node)
		for _, r := range site.Routes {
			name := r.Upstream
			if r.Static != nil {
				name = r.Static.Fallback
			}
			if name == "" {
				continue
			}
			for _, us := range m.Upstream(name).Servers {
				switch {
				case us.Service != "":
					s := m.Service(us.Service)
					tg, ok := m.ReachService(from, s)
					if !ok || !admitted(m, s.Allow, tg, from) {
						t.Errorf("site %s: %s cannot use service %s", site.Name, from.Name, s.Name)
					}
				case us.Tunnel != "":
					tn := m.Tunnel(us.Tunnel)
					tg, ok := m.ReachEndpoint(from, tn.Entrance)
					if !ok || !admitted(m, tn.Allow, tg, from) {
						t.Errorf("site %s: %s cannot use tunnel %s", site.Name, from.Name, tn.Name)
					}
				default:
					var nets []string
					if us.Network != "" {
						nets = []string{us.Network}
					}
					if _, ok := m.Reach(from, m.Node(us.Node), us.Port, nets, false); !ok {
						t.Errorf("site %s: %s cannot reach %s:%d", site.Name, from.Name, us.Node, us.Port)
					}
				}
			}
		}
	}
	for _, f := range m.Forwards {
		from := m.Node(f.Node)
		s := m.Service(f.Service)
		tg, ok := m.ReachService(from, s)
		if !ok || !admitted(m, s.Allow, tg, from) {
			t.Errorf("forward %s: %s cannot use service %s", f.Name, from.Name, s.Name)
		}
		for _, who := range []string{"off1", "off2"} {
			n := m.Node(who)
			if _, ok := m.ReachEndpoint(n, f.Listen); !ok || !m.Admits(f.Allow, f.Listen.Network, n) {
				t.Errorf("forward %s: %s cannot use it", f.Name, who)
			}
		}
	}
}

// TestOVH2GuestsLeaveThroughOVH2: Proxmox gives ovh2's guests ovh2 as
// gateway (docs/proxmox.md: "10.0.0.2 on off2 or ovh2"), and off2's MongoDB
// sees docker-prod as 51.210.154.203 (reports/2023-10-14-mongodb-down.md).
func TestOVH2GuestsLeaveThroughOVH2(t *testing.T) {
	m := load(t)
	for _, name := range []string{"docker-staging", "docker-prod", "ovh-monitoring"} {
		src, via, ok := m.SourceFor(m.Node(name), "internet", 4)
		if !ok || via == nil || via.Name != "ovh2" || src.String() != "51.210.154.203" {
			t.Errorf("%s leaves as %v via %v (ok %t); want 51.210.154.203 via ovh2", name, src, via, ok)
		}
	}
	// ovh1's guests still leave through ovh1, the network's gateway.
	if _, via, ok := m.SourceFor(m.Node("ovh-stunnel-client"), "internet", 4); !ok || via == nil || via.Name != "ovh1" {
		t.Errorf("ovh-stunnel-client leaves via %v; want ovh1", via)
	}
}

// TestExportsChecked: the NFS exports the example declares (facts §7) are
// what OE505 and OE506 act on: sharenfs=on as off2 had it in 2023-06 is
// refused, and a child of ovh3's exported rpool/backups that stops saying
// it inherits the export is reported.
func TestExportsChecked(t *testing.T) {
	for _, tt := range []struct {
		rule, object string
		change       func(m *inventory.Model)
	}{
		{"OE505", `dataset "off2:zfs-hdd/obf/images"`, func(m *inventory.Model) {
			m.Node("off2").Storage.Dataset("zfs-hdd/obf/images").NFS = []string{"*"}
		}},
		{"OE506", `dataset "ovh3:rpool/backups/monitoring-volumes"`, func(m *inventory.Model) {
			m.Node("ovh3").Storage.Dataset("rpool/backups/monitoring-volumes").NFSInherit = false
		}},
	} {
		m := load(t)
		for _, f := range check.Run(m) {
			if f.Rule == "OE505" || f.Rule == "OE506" {
				t.Fatalf("the example as written: %s", f)
			}
		}
		tt.change(m)
		found := false
		for _, f := range check.Run(m) {
			found = found || (f.Rule == tt.rule && f.Object == tt.object)
		}
		if !found {
			t.Errorf("%s not reported for %s", tt.rule, tt.object)
		}
	}
}
