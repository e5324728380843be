package check

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Conflict rules (OE3xx): two things claiming what only one can have — an
// address and port, a hostname on a listener, a secret, a certificate.
var conflictRules = []checker{
	{
		Rule: Rule{
			ID:       "OE301",
			Title:    "two listeners on one address and port",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `Only one socket can listen on an address and port of a node: the second fails to start (or, with SO_REUSEPORT, silently takes half the connections). Sites on the same node, address and port share one listener and are told apart by hostname, so they conflict only when they disagree on tls or on redirect_https (one listener either redirects every request to HTTPS or serves them). Tunnel exits on the same node, address and port share one listener too, told apart by the TLS server name (the tunnel name). Tunnel entrances, forwards and services conflict with anything else there, and exits with anything but exits. A service with no bind listens on every address of its node (0.0.0.0 / [::]) and conflicts with anything on the same port of that node. Guests are separate network namespaces: a guest's port never conflicts with its host's.`,
			Example: `services:
  - name: influxdb
    node: proxy
    protocol: influxdb
    port: 8087          # every network of proxy
    allow: [app]
tunnels:
  - name: influx
    service: influxdb-remote
    entrance: {node: client, network: lan, port: 8087}
    exits: [{node: proxy, network: internet, port: 8087}]`,
		},
		run: checkListeners,
	},
	{
		Rule: Rule{
			ID:       "OE302",
			Title:    "two sites claim one hostname on one listener",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `Sites sharing a listener are chosen by the request's Host; two sites listing the same name (or two default: true sites) on one listener make the answer depend on file order, which is how a renamed nginx conf ends up serving the wrong site. Loading rejects duplicate site names, not duplicate hostnames; this rule closes the gap. A more specific name beside a wildcard (pro.example.org beside *.example.org) is not a conflict.`,
			Example: `sites:
  - name: off
    node: proxy
    hosts: [world.example.org]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {certbot: example.org}
  - name: off-new
    node: proxy
    hosts: [world.example.org]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {certbot: example.org}`,
		},
		run: nil, // reported by checkListeners
	},
	{
		Rule: Rule{
			ID:       "OE303",
			Title:    "tunnel secret shared by two tunnels",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A pre-shared key authenticates both ends of one tunnel. Shared between tunnels, a key leaked at one site opens every tunnel that uses it, and it cannot be rotated for one without breaking the others. Open Food Facts' stunnel configurations use the same mongodb-psk.txt for the OVH and Moji MongoDB tunnels (docs/reports/2024-01-04-setting-up-stunnel.md created it once and copied it to each client). Give each tunnel its own file.`,
			Example: `tunnels:
  - name: mongodb-ovh
    ...
    auth: {psk: /etc/offedge/psk/mongodb.psk}
  - name: mongodb-moji
    ...
    auth: {psk: /etc/offedge/psk/mongodb.psk}`,
		},
		run: checkSharedSecrets,
	},
	{
		Rule: Rule{
			ID:       "OE304",
			Title:    "one certbot certificate for one hostname on two nodes",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `Two sites on different nodes serve the same hostname with the same certbot certificate name. Certbot renews a certificate on the node where its renewal is set up (and, with an HTTP challenge, only on the node the name's DNS points to); the copy on the other node is renewed by nobody and expires. This happened to images.openfoodfacts.org when it was moved from ovh3 to off2 without its renewal (docs/reports/2023-09-27-expired-ssl-certificate-for-images-on-off2.md). Give each node its own certificate name (for instance the node's own hostname, which is what a proxy in front verifies), or serve the hostname from one node.`,
			Example: `sites:
  - name: images
    node: storage
    hosts: [images.example.org]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {certbot: images.example.org}
  - name: images-origin
    node: origin
    hosts: [images.example.org]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {certbot: images.example.org}`,
		},
		run: checkSharedCertificates,
	},
	{
		Rule: Rule{
			ID:       "OE305",
			Title:    "guest id does not match its private address",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `Open Food Facts' Proxmox convention is that a guest's id is the last octet of its private IPv4 address (CT 113 is 10.1.0.113, docs/proxmox.md), so an id names an address in every runbook and config. Where it is broken, configs and people disagree: Moji's CT 102 was installed as 10.3.0.103 while the stunnel configurations dial ::102 (docs/reports/2024-08-13-moji-server-installation.md). Only guests with an id up to 255 and a private IPv4 address are checked.`,
			Example: `guests:
  - name: stunnel-server
    host: osm45
    id: 102
    kind: ct
    addresses: [{network: lan, ip: 10.3.0.103}]`,
		},
		run: checkGuestIDs,
	},
}

// listener is one socket a node opens, as the inventory describes it.
type listener struct {
	node string
	// addr is the address listened on; the zero Addr means every address
	// of the node (a service with no bind).
	addr   netip.Addr
	port   int
	site   *inventory.Site // set for site listeners
	tls    bool
	redir  bool   // redirect_https, for site listeners
	exit   bool   // a tunnel exit: exits share a listener, told apart by SNI
	what   string // `service "x"`, `site "x" listen 1`, `tunnel "x" exit 0`
	object string
	pos    inventory.Pos
}

func (l *listener) where() string {
	if !l.addr.IsValid() {
		return fmt.Sprintf("every address of %s port %d", l.node, l.port)
	}
	return fmt.Sprintf("%s on %s", netip.AddrPortFrom(l.addr, uint16(l.port)), l.node)
}

var loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// listeners returns every listener of the model, grouped by node.
func listeners(m *inventory.Model) map[string][]*listener {
	out := map[string][]*listener{}
	add := func(l *listener) {
		for _, o := range out[l.node] {
			if o.what == l.what && o.addr == l.addr && o.port == l.port {
				return // the same socket listed twice by one object
			}
		}
		out[l.node] = append(out[l.node], l)
	}
	for _, s := range m.Services {
		n := m.Node(s.Node)
		if n == nil {
			continue
		}
		base := listener{node: n.Name, port: s.Port, what: object("service", s.Name), object: object("service", s.Name), pos: s.Pos}
		switch {
		case s.Loopback:
			l := base
			l.addr = loopback4
			add(&l)
		case len(s.Bind) == 0:
			l := base
			add(&l)
		default:
			for _, a := range n.Addresses {
				if slices.Contains(s.Bind, a.Network) {
					l := base
					l.addr = a.IP
					add(&l)
				}
			}
		}
	}
	for _, s := range m.Sites {
		n := m.Node(s.Node)
		if n == nil {
			continue
		}
		for i, ln := range s.Listen {
			base := listener{node: n.Name, port: ln.Port, site: s, tls: ln.TLS, redir: ln.RedirectHTTPS, what: fmt.Sprintf("site %q listen %d", s.Name, i), object: object("site", s.Name), pos: ln.Pos}
			if ln.Address.IsValid() {
				l := base
				l.addr = ln.Address
				add(&l)
				continue
			}
			for _, a := range n.AddressesOn(ln.Network) {
				l := base
				l.addr = a.IP
				add(&l)
			}
		}
	}
	endpoint := func(e *inventory.Endpoint, what, obj string, exit bool) {
		if e == nil || m.Node(e.Node) == nil {
			return
		}
		for _, ap := range m.EndpointAddrs(e) {
			add(&listener{node: e.Node, addr: ap.Addr(), port: e.Port, exit: exit, what: what, object: obj, pos: e.Pos})
		}
	}
	for _, t := range m.Tunnels {
		endpoint(t.Entrance, fmt.Sprintf("tunnel %q entrance", t.Name), object("tunnel", t.Name), false)
		for i, e := range t.Exits {
			endpoint(e, fmt.Sprintf("tunnel %q exit %d", t.Name, i), object("tunnel", t.Name), true)
		}
	}
	for _, f := range m.Forwards {
		endpoint(f.Listen, object("forward", f.Name), object("forward", f.Name), false)
	}
	return out
}

func posCompare(a, b inventory.Pos) int {
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
}

// checkListeners applies OE301 (socket conflicts) and OE302 (hostname
// conflicts on a shared site listener), node by node and port by port.
func checkListeners(p *pass) {
	hosts := p.as("OE302")
	byNode := listeners(p.m)
	for _, n := range p.m.Nodes {
		ls := byNode[n.Name]
		slices.SortStableFunc(ls, func(a, b *listener) int {
			return cmp.Or(cmp.Compare(a.port, b.port), posCompare(a.pos, b.pos))
		})
		for start := 0; start < len(ls); {
			end := start
			for end < len(ls) && ls[end].port == ls[start].port {
				end++
			}
			group := ls[start:end]
			start = end
			conflicts(p, group)
			siteHosts(hosts, group)
		}
	}
}

func conflicts(p *pass, group []*listener) {
	reported := map[[2]string]bool{}
	for j, b := range group {
		for _, a := range group[:j] {
			if a.addr.IsValid() && b.addr.IsValid() && a.addr != b.addr {
				continue
			}
			if a.site != nil && b.site != nil && a.tls == b.tls && a.redir == b.redir {
				continue // sites share a listener
			}
			if a.exit && b.exit {
				continue // tunnel exits share a listener (the plan's one exit listener per address)
			}
			key := [2]string{a.what, b.what}
			if reported[key] {
				continue
			}
			reported[key] = true
			detail := ""
			switch {
			case a.site != nil && b.site != nil && a.tls != b.tls:
				detail = fmt.Sprintf(", with tls: %t against %t; sites share a listener only when they agree on tls", b.tls, a.tls)
			case a.site != nil && b.site != nil:
				detail = fmt.Sprintf(", with redirect_https: %t against %t; sites share a listener only when they agree on redirect_https", b.redir, a.redir)
			}
			at := b.where()
			if !a.addr.IsValid() {
				at = a.where()
			}
			part := strings.TrimSpace(strings.TrimPrefix(b.what, b.object))
			if part == "" {
				part = "it"
			}
			p.report(b.pos, b.object, []Related{{a.pos, a.what + " listens here"}},
				"%s listens on %s, as does %s%s", part, at, a.what, detail)
		}
	}
}

// siteHosts reports two sites claiming one hostname, or two default sites,
// on one listener (node, address, port).
func siteHosts(p *pass, group []*listener) {
	type key struct {
		addr netip.Addr
		host string
	}
	first := map[key]*listener{}
	reported := map[string]bool{}
	for _, l := range group {
		if l.site == nil {
			continue
		}
		names := l.site.Hosts
		if l.site.Default {
			names = append(slices.Clip(names), "") // "" stands for default: true
		}
		for _, h := range names {
			k := key{l.addr, h}
			a, seen := first[k]
			if !seen {
				first[k] = l
				continue
			}
			if a.site == l.site {
				continue
			}
			r := a.site.Name + "\x00" + l.site.Name + "\x00" + h
			if reported[r] {
				continue
			}
			reported[r] = true
			what := fmt.Sprintf("host %q", h)
			if h == "" {
				what = "default: true"
			}
			p.report(l.site.Pos, object("site", l.site.Name), []Related{{a.site.Pos, fmt.Sprintf("site %q claims it first", a.site.Name)}},
				"claims %s on %s, which site %q already claims there; a request would go to whichever is first", what, l.where(), a.site.Name)
		}
	}
}

func checkSharedSecrets(p *pass) {
	first := map[string]*inventory.Tunnel{}
	for _, t := range p.m.Tunnels {
		if t.Auth == nil || strings.TrimSpace(t.Auth.PSK) == "" {
			continue
		}
		k := path.Clean(strings.TrimSpace(t.Auth.PSK))
		o, seen := first[k]
		if !seen {
			first[k] = t
			continue
		}
		p.report(t.Auth.Pos, object("tunnel", t.Name), []Related{{o.Auth.Pos, fmt.Sprintf("tunnel %q uses it", o.Name)}},
			"shares its secret %s with tunnel %q: a leak at either end opens both, and neither can be rotated alone; give each tunnel its own file", k, o.Name)
	}
}

func checkSharedCertificates(p *pass) {
	byCert := map[string][]*inventory.Site{}
	var certs []string
	for _, s := range p.m.Sites {
		if s.TLS == nil || s.TLS.Certbot == "" {
			continue
		}
		k := s.TLS.CertbotDir + "\x00" + s.TLS.Certbot
		if _, ok := byCert[k]; !ok {
			certs = append(certs, k)
		}
		byCert[k] = append(byCert[k], s)
	}
	for _, k := range certs {
		sites := byCert[k]
		for j, b := range sites {
			for _, a := range sites[:j] {
				if a.Node == b.Node {
					continue
				}
				var common []string
				for _, h := range b.Hosts {
					if slices.Contains(a.Hosts, h) {
						common = append(common, h)
					}
				}
				if len(common) == 0 {
					continue
				}
				p.report(b.TLS.Pos, object("site", b.Name), []Related{{a.TLS.Pos, fmt.Sprintf("site %q on %s uses it too", a.Name, a.Node)}},
					"certificate %q is also used by site %q on %s for %s: certbot renews it where its renewal is set up, and the copy on the other node expires; give one node its own certificate name, or serve the names from one node",
					b.TLS.Certbot, a.Name, a.Node, strings.Join(common, ", "))
				break
			}
		}
	}
}

func checkGuestIDs(p *pass) {
	for _, n := range p.m.Nodes {
		g := n.Guest
		if g == nil || g.ID < 1 || g.ID > 255 {
			continue
		}
		var private []string
		match := false
		for _, a := range g.Addresses {
			if p.m.IsPublic(a.Network) || !a.IP.Is4() {
				continue
			}
			private = append(private, a.IP.String())
			match = match || int(a.IP.As4()[3]) == g.ID
		}
		if len(private) > 0 && !match {
			p.report(g.Pos, nodeObject(n), nil,
				"%s %d has private address %s: the id is not its last octet, against the id = last octet convention", g.Kind, g.ID, strings.Join(private, ", "))
		}
	}
}
