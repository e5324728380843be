package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
)

// Reachability rules (OE2xx): every declared connection — a node's uses:,
// a site's upstreams, a tunnel's exits, a forward's target — must have a
// network path that the access lists let through, and every name an allow
// list or uses: entry gives must exist.
var reachRules = []checker{
	{
		Rule: Rule{
			ID:       "OE201",
			Title:    "allow list names something that does not exist",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `Allow lists name nodes, providers, clusters, networks and policies, and are resolved to addresses when offedge starts. A name that resolves to nothing silently admits nobody: a typo, or a node renamed or removed, turns into an outage for the clients it was meant to admit, or into a rule that looks stricter than it is. Loading accepts such names (a policy may name a node being decommissioned); this rule refuses them. A policy that includes itself through policy: entries is reported here too.`,
			Example: `services:
  - name: mongodb
    node: db-host
    protocol: mongodb
    port: 27017
    bind: [lan]
    allow: [app, ap-server]    # there is no node "ap-server"`,
		},
		run: checkUnknownAllow,
	},
	{
		Rule: Rule{
			ID:       "OE202",
			Title:    "uses: entry names nothing",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A node's uses: list says what software on it connects to; offedge check proves a path exists for each entry, and offedge why and impact answer from it. An entry that is neither a service name nor a hostname served by a site cannot be checked, so the dependency it was meant to record is lost.`,
			Example: `servers:
  - name: app
    ...
    uses: [mongo]       # the service is called "mongodb"`,
		},
		run: checkUnknownUses,
	},
	{
		Rule: Rule{
			ID:       "OE203",
			Title:    "no path to a used service",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A node that uses a service must reach it: directly (a shared private network, or the internet with an address family both ends have), through a tunnel entrance it can reach, or through a forward. Private networks are only reachable from nodes on them: 10.0.0.1 at one provider is not 10.0.0.1 at another. The common trap is IPv6: Moji is IPv6-only on the internet, so a host with no IPv6 route cannot reach it without a tunnel (docs/reports/2024-08-13-moji-server-installation.md, docs/reports/2024-09-05-adding-ipv6-to-off2.md, where off2 needed IPv6 and a ULA masquerade before its guests could reach Moji). The message says which leg is missing.`,
			Example: `services:
  - name: api
    node: v6-host       # only an IPv6 address on the internet
    protocol: http
    port: 5500
    allow: [v4-host]
servers:
  - name: v4-host       # only an IPv4 address on the internet
    ...
    uses: [api]`,
		},
		run: checkUsesPaths,
	},
	{
		Rule: Rule{
			ID:       "OE204",
			Title:    "every path to a used service is blocked",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `The network lets the node reach the service, but an allow list on the way refuses it: the service's own, a tunnel entrance's, or a forward's. The finding quotes the refusing list. Either the uses: entry is stale or the allow list is missing the client; in both cases the inventory contradicts itself, and the connection will be refused at run time.`,
			Example: `services:
  - name: mongodb
    node: db-host
    protocol: mongodb
    port: 27017
    bind: [lan]
    allow: [backup]     # app is not admitted
servers:
  - name: app           # on lan
    ...
    uses: [mongodb]`,
		},
		run: nil, // reported by checkUsesPaths, which computes the paths once
	},
	{
		Rule: Rule{
			ID:       "OE205",
			Title:    "internal service reached through the public reverse proxy",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `docs/nginx-reverse-proxy.md forbids calling an internal service through the reverse proxy: a client on the same Proxmox cluster as the service it uses must call the service's internal address, because replies to requests that go out and come back in on the proxy's public address take the wrong gateway and the requests never arrive (the proxy's public address and its private network have different gateways; docs/reports/2022-02-18-ovh-reverse-proxy-down.md). The model would show a path (out through the NAT gateway, back in on the proxy's public address), so only this rule catches it. It is an error, not a warning: the documented outcome is requests that never arrive, and the fix is always at hand, since the upstream is in the same cluster (or the same provider and on a private network the client is on): name the service in uses:. It fires when a uses: entry is a hostname served by a site on another node whose upstream (or, for a static site, whose files) lives in the client's cluster, or at the client's provider on a private network they share.`,
			Example: `servers:
  - name: app           # cluster: ovh
    ...
    uses: [wiki.example.org]
sites:
  - name: wiki
    node: proxy         # public reverse proxy
    hosts: [wiki.example.org]
    routes: [{path: /, upstream: wiki}]   # service wiki runs in cluster ovh`,
		},
		run: nil, // reported by checkUsesPaths
	},
	{
		Rule: Rule{
			ID:       "OE206",
			Title:    "upstream server unreachable from the proxy",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A site's route proxies to an upstream pool (or falls back to one after a static miss); every server of the pool must be reachable from the node running the site, or requests to it fail with 502 once the others are down. Addresses are scoped to their network: an upstream on a private network the proxy is not on, a loopback service on another node, or an IPv6-only server seen from a proxy without IPv6 is unreachable. The images chain of Open Food Facts (ovh3 serving replicas, falling back to off1) depends on this.`,
			Example: `upstreams:
  - name: app
    servers: [{service: app}]   # binds a private network the proxy is not on
sites:
  - name: app
    node: proxy
    hosts: [app.example.org]
    listen: [{network: internet, port: 80}]
    routes: [{path: /, upstream: app}]`,
		},
		run: checkUpstreams,
	},
	{
		Rule: Rule{
			ID:       "OE207",
			Title:    "upstream refuses the proxy",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `The proxy reaches the upstream server, but the server's allow list (the service's, or the tunnel entrance's for a tunnel member) does not admit the proxy's address: every request is refused at the connection. Usually the proxy moved (a new container, a new address) and the allow list still names the old one; proxies do move, as the OVH proxy did when its failover IP was lost and replaced in a hurry (docs/reports/2024-08-03-ovh-reverse-proxy-ip-lost.md).`,
			Example: `services:
  - name: app
    node: app-host
    protocol: http
    port: 8080
    bind: [lan]
    allow: [old-proxy]  # the site runs on proxy`,
		},
		run: nil, // reported by checkUpstreams
	},
	{
		Rule: Rule{
			ID:       "OE208",
			Title:    "tunnel exit unreachable from its entrance",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `The entrance node dials each exit in turn; an exit it cannot reach (a private network it is not on, an address family it has no route for) is dead configuration, and a tunnel with no reachable exit carries nothing. Moji has no public IPv4, so its tunnels must dial IPv6 addresses; an exit given as an IPv4 address fails (docs/reports/2024-08-13-moji-server-installation.md).`,
			Example: `tunnels:
  - name: db
    service: mongodb
    entrance: {node: v6-client, network: lan, port: 27017}
    exits: [{node: db-host, network: internet, address: 192.0.2.8, port: 27017}]`,
		},
		run: checkTunnels,
	},
	{
		Rule: Rule{
			ID:       "OE209",
			Title:    "tunnel exit cannot reach its service",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `The exit (stunnel's client = no) connects to the service on behalf of the tunnel's clients, so the exit's node must reach the service and be admitted by its allow list. An exit placed on a host that is not on the service's network, or missing from the service's allow list, accepts tunnels and then drops every connection.`,
			Example: `services:
  - name: mongodb
    node: db-host
    protocol: mongodb
    port: 27017
    bind: [lan]
    allow: [app]        # the exit node is not admitted`,
		},
		run: nil, // reported by checkTunnels
	},
	{
		Rule: Rule{
			ID:       "OE210",
			Title:    "forward cannot reach its service",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A forward (the iptables DNAT proxies, e.g. SMTP from Free to the mail gateway at OVH, docs/mail.md) relays to its service from its own node: that node must reach the service and be admitted by its allow list, or the forward accepts connections and drops them.`,
			Example: `forwards:
  - name: smtp
    node: gateway       # not on the mail relay's network
    listen: {network: internet, port: 26}
    service: smtp
    allow: [client]`,
		},
		run: checkForwards,
	},
}

func checkUnknownAllow(p *pass) {
	check := func(entries []string, pos inventory.Pos, obj string) {
		if unknown := p.ix.unknownAllow(p.m, entries); len(unknown) > 0 {
			p.report(pos, obj, nil, "allow names %s, which %s nothing in the inventory",
				strings.Join(unknown, ", "), map[bool]string{true: "matches", false: "match"}[len(unknown) == 1])
		}
	}
	for _, s := range p.m.Services {
		check(s.Allow, s.Pos, object("service", s.Name))
	}
	for _, s := range p.m.Sites {
		check(s.Allow, s.Pos, object("site", s.Name))
	}
	for _, t := range p.m.Tunnels {
		check(t.Allow, t.Pos, object("tunnel", t.Name))
	}
	for _, f := range p.m.Forwards {
		check(f.Allow, f.Pos, object("forward", f.Name))
	}
	for _, pol := range p.m.Policies {
		check(pol.Allow, pol.Pos, object("policy", pol.Name))
	}
	for _, a := range p.m.Admins {
		check(a.Allow, a.Pos, fmt.Sprintf("admin of %q", a.Node))
	}
}

func checkUnknownUses(p *pass) {
	for _, n := range p.m.Nodes {
		for _, u := range n.Uses {
			if p.m.Service(u) == nil && len(p.m.SiteForHost(u)) == 0 {
				p.report(n.Pos, nodeObject(n), nil, "uses %q, which is neither a service nor a hostname served by a site", u)
			}
		}
	}
}

// checkUsesPaths applies OE203, OE204 and OE205 to every uses: entry.
func checkUsesPaths(p *pass) {
	noPath, blocked, viaProxy := p.as("OE203"), p.as("OE204"), p.as("OE205")
	r := p.ix.reach
	for _, n := range p.m.Nodes {
		for _, u := range n.Uses {
			if s := p.m.Service(u); s != nil {
				if !r.Usable(n, s) {
					usesService(r, noPath, blocked, n, s)
				}
				continue
			}
			if sites := r.SitesForHost(u); len(sites) > 0 {
				usesHost(r, noPath, blocked, viaProxy, n, u, sites)
			}
		}
	}
}

// usesService explains why n cannot use s (OE203 or OE204), in the words
// of the reachability engine; it is called only when the engine found no
// open path.
func usesService(r *reach.Engine, noPath, blocked *pass, n *inventory.Node, s *inventory.Service) {
	paths, notes := r.ServicePaths(n, s)
	var reasons []string
	var related []Related
	for _, path := range paths {
		if path.Open() {
			return
		}
		reason := path.Blocked.Reason()
		if slices.Contains(reasons, reason) {
			continue
		}
		reasons = append(reasons, reason)
		related = append(related, Related{path.Blocked.Pos, reason})
	}
	if len(paths) > 0 {
		blocked.report(n.Pos, nodeObject(n), related, "uses service %q, but every path to it is blocked: %s", s.Name, strings.Join(reasons, "; "))
		return
	}
	if v6, outside, ok := v6Only(r, n, s); ok {
		// The common trap has its own message: say what to do about it.
		rest := "no tunnel or forward leads to it"
		var others []string
		for _, note := range notes {
			if !strings.HasPrefix(note, "direct: ") && !strings.HasPrefix(note, "no tunnel or forward leads to ") {
				others = append(others, note)
			}
		}
		if len(others) > 0 {
			rest = strings.Join(others, "; ")
		}
		noPath.report(n.Pos, nodeObject(n), nil,
			"uses service %q, but %s on %s is reachable %s only over IPv6 (%s) and %s has no IPv6 route to the internet (no public IPv6 address, no gateway with one); %s; give %s IPv6 or add a tunnel entrance it can reach",
			s.Name, s.Name, s.Node, outside, strings.Join(v6, ", "), n.Name, rest, n.Name)
		return
	}
	noPath.report(n.Pos, nodeObject(n), nil, "uses service %q, but has no path to it: %s", s.Name, strings.Join(notes, "; "))
}

// v6Only reports the trap of docs/reports/2024-08-13: a service reachable
// from outside its private networks only over IPv6 (v6, its addresses
// there), used by a node with no IPv6 route to the internet. outside says
// from where: "on the internet", "from outside free-lan".
func v6Only(r *reach.Engine, n *inventory.Node, s *inventory.Service) (v6 []string, outside string, ok bool) {
	to := r.Model().Node(s.Node)
	if to == nil || s.Loopback {
		return nil, "", false
	}
	var privates []string
	pub := ""
	for _, a := range reach.Candidates(to, s.Bind) {
		switch {
		case !r.Model().IsPublic(a.Network):
			if !slices.Contains(privates, a.Network) {
				privates = append(privates, a.Network)
			}
		case a.IP.Is4():
			return nil, "", false
		default:
			pub = a.Network
			v6 = append(v6, netip.AddrPortFrom(a.IP, uint16(s.Port)).String())
		}
	}
	if pub == "" {
		return nil, "", false
	}
	if _, _, reached := r.Live().SourceFor(n, pub, 6); reached {
		return nil, "", false
	}
	outside = "on the internet"
	if len(privates) > 0 {
		outside = "from outside " + strings.Join(privates, ", ")
	}
	return v6, outside, true
}

// usesHost checks a uses: entry naming a hostname served by sites: some
// listener of theirs must be reachable and admit n (OE203, OE204), and when
// n can only reach them at a public address, the site must not be a detour
// to an upstream living next to n (OE205).
func usesHost(r *reach.Engine, noPath, blocked, viaProxy *pass, n *inventory.Node, host string, sites []*inventory.Site) {
	m := r.Model()
	var reasons, whys []string
	var related []Related
	reached, private := false, false
	for _, site := range sites {
		sn := m.Node(site.Node)
		if sn == nil {
			continue
		}
		if sn == n {
			reached, private = true, true
			continue
		}
		for _, l := range site.Listen {
			t, ok := r.Live().Reach(n, sn, l.Port, []string{l.Network}, false)
			if !ok {
				why := r.WhyNot(n, sn, sn.AddressesOn(l.Network))
				whys = append(whys, fmt.Sprintf("site %q on %s port %d: %s", site.Name, site.Node, l.Port, why))
				continue
			}
			if r.Admits(site.Allow, t, true) {
				reached = true
				private = private || !m.IsPublic(t.Network)
				continue
			}
			reason := r.Refused(reach.BlockSite, site.Name, site.Pos, site.Allow, n, t).Reason()
			if !slices.Contains(reasons, reason) {
				reasons = append(reasons, reason)
				related = append(related, Related{site.Pos, reason})
			}
		}
	}
	switch {
	case reached:
	case len(reasons) > 0:
		blocked.report(n.Pos, nodeObject(n), related, "uses %s, but every path to it is blocked: %s", host, strings.Join(reasons, "; "))
		return
	default:
		slices.Sort(whys)
		whys = slices.Compact(whys)
		noPath.report(n.Pos, nodeObject(n), nil, "uses %s, but has no path to any listener of the sites serving it: %s", host, strings.Join(whys, "; "))
		return
	}
	if private {
		return // reached on a private network or on the node itself: no detour
	}
	for _, site := range sites {
		if msg, pos, label, ok := internalDetour(m, n, site); ok {
			viaProxy.report(n.Pos, nodeObject(n), []Related{{site.Pos, fmt.Sprintf("site %q serves %s", site.Name, host)}, {pos, label}},
				"uses %s through site %q on %s, at its public address, but %s; call it on its internal address instead", host, site.Name, site.Node, msg)
			return
		}
	}
}

// near reports whether target is in the same cluster as n, or at the same
// provider on a private network they share, and says which.
func near(m *inventory.Model, n, target *inventory.Node) (string, bool) {
	if n == target {
		return "", false
	}
	if n.Cluster != "" && n.Cluster == target.Cluster {
		return fmt.Sprintf("in the same cluster %q as %s", n.Cluster, n.Name), true
	}
	if n.Provider == "" || n.Provider != target.Provider {
		return "", false
	}
	for _, a := range n.Addresses {
		if m.IsPublic(a.Network) {
			continue
		}
		for _, b := range target.Addresses {
			if b.Network == a.Network {
				return fmt.Sprintf("at the same provider %q as %s, on network %s", n.Provider, n.Name, a.Network), true
			}
		}
	}
	return "", false
}

// internalDetour finds an upstream of site (or, for a static route, the
// site's own files) living next to n.
func internalDetour(m *inventory.Model, n *inventory.Node, site *inventory.Site) (msg string, pos inventory.Pos, label string, ok bool) {
	for _, r := range site.Routes {
		var pools []string
		if r.Upstream != "" {
			pools = append(pools, r.Upstream)
		}
		if r.Static != nil {
			if sn := m.Node(site.Node); sn != nil {
				if where, ok := near(m, n, sn); ok {
					return fmt.Sprintf("its files (route %s) are on %s, %s", r.Path, sn.Name, where), r.Pos, "the static route", true
				}
			}
			if r.Static.Fallback != "" {
				pools = append(pools, r.Static.Fallback)
			}
		}
		for _, name := range pools {
			u := m.Upstream(name)
			if u == nil {
				continue
			}
			for _, us := range u.Servers {
				node, port, svc, _ := m.UpstreamServerTarget(us)
				if svc != nil {
					node = m.Node(svc.Node)
				}
				if node == nil {
					continue
				}
				where, ok := near(m, n, node)
				if !ok {
					continue
				}
				if svc != nil {
					return fmt.Sprintf("its upstream service %q runs on %s, %s (uses: [%s])", svc.Name, node.Name, where, svc.Name), us.Pos, "the upstream server", true
				}
				return fmt.Sprintf("its upstream %s port %d is %s", node.Name, port, where), us.Pos, "the upstream server", true
			}
		}
	}
	return "", inventory.Pos{}, "", false
}

// serverText describes an upstream server: `service "x" (node:port)`.
func serverText(m *inventory.Model, us *inventory.UpstreamServer) string {
	switch {
	case us.Service != "":
		if s := m.Service(us.Service); s != nil {
			return fmt.Sprintf("service %q on %s port %d", s.Name, s.Node, s.Port)
		}
		return fmt.Sprintf("service %q", us.Service)
	case us.Tunnel != "":
		if t := m.Tunnel(us.Tunnel); t != nil && t.Entrance != nil {
			return fmt.Sprintf("tunnel %q entrance at %s on %s", t.Name, endpointText(m, t.Entrance), t.Entrance.Node)
		}
		return fmt.Sprintf("tunnel %q", us.Tunnel)
	}
	return fmt.Sprintf("%s port %d", us.Node, us.Port)
}

// serverUnreachable explains why from cannot reach an upstream server.
func serverUnreachable(r *reach.Engine, from *inventory.Node, us *inventory.UpstreamServer) string {
	m := r.Model()
	node, _, svc, ep := m.UpstreamServerTarget(us)
	if node == nil {
		return "it names nothing"
	}
	var cands []*inventory.Address
	switch {
	case ep != nil:
		if ep.Loopback {
			return fmt.Sprintf("the entrance listens on the loopback of %s only", node.Name)
		}
		cands = r.EndpointCandidates(ep)
	case svc != nil && svc.Loopback:
		return fmt.Sprintf("service %q listens on the loopback of %s only", svc.Name, node.Name)
	case svc != nil:
		cands = reach.Candidates(node, svc.Bind)
		if us.Network != "" {
			cands = reach.Candidates(node, []string{us.Network})
		}
	default:
		if us.Network != "" {
			cands = reach.Candidates(node, []string{us.Network})
		} else {
			cands = node.Addresses
		}
	}
	return r.WhyNot(from, node, cands)
}

// checkUpstreams applies OE206 and OE207 to every server of every pool a
// site's routes use, from the site's node.
func checkUpstreams(p *pass) {
	refused := p.as("OE207")
	for _, site := range p.m.Sites {
		from := p.m.Node(site.Node)
		if from == nil {
			continue
		}
		seen := map[*inventory.UpstreamServer]bool{}
		for _, r := range site.Routes {
			var pools []string
			if r.Upstream != "" {
				pools = append(pools, r.Upstream)
			}
			if r.Static != nil && r.Static.Fallback != "" {
				pools = append(pools, r.Static.Fallback)
			}
			for _, name := range pools {
				u := p.m.Upstream(name)
				if u == nil {
					continue
				}
				for i, us := range u.Servers {
					if seen[us] {
						continue
					}
					seen[us] = true
					rel := []Related{{us.Pos, fmt.Sprintf("server %d of upstream %q", i, u.Name)}}
					t, ok := p.m.ReachUpstreamServer(from, us)
					if !ok {
						p.report(r.Pos, object("site", site.Name), rel,
							"route %s proxies to upstream %q, whose server %s is out of reach of %s: %s",
							r.Path, u.Name, serverText(p.m, us), from.Name, serverUnreachable(p.ix.reach, from, us))
						continue
					}
					var allow []string
					var who string
					switch _, _, svc, ep := p.m.UpstreamServerTarget(us); {
					case ep != nil:
						allow, who = p.m.Tunnel(us.Tunnel).Allow, fmt.Sprintf("tunnel %q", us.Tunnel)
					case svc != nil:
						allow, who = svc.Allow, fmt.Sprintf("service %q", svc.Name)
					default:
						continue
					}
					if !p.ix.reach.Admits(allow, t, false) {
						refused.report(r.Pos, object("site", site.Name), rel,
							"route %s proxies to upstream %q, but %s allows %s and %s (%s) is not admitted",
							r.Path, u.Name, who, listText(allow), from.Name, t.Source)
					}
				}
			}
		}
	}
}

// checkTunnels applies OE208 and OE209 to every exit of every tunnel.
func checkTunnels(p *pass) {
	noService := p.as("OE209")
	r := p.ix.reach
	for _, t := range p.m.Tunnels {
		if t.Entrance == nil {
			continue
		}
		in, svc := p.m.Node(t.Entrance.Node), p.m.Service(t.Service)
		if in == nil || svc == nil {
			continue
		}
		svcNode := p.m.Node(svc.Node)
		for i, e := range t.Exits {
			out := p.m.Node(e.Node)
			if out == nil {
				continue
			}
			if _, ok := r.Live().ReachEndpoint(in, e); !ok {
				why := r.WhyNot(in, out, r.EndpointCandidates(e))
				p.report(e.Pos, object("tunnel", t.Name), []Related{{t.Entrance.Pos, "the entrance"}},
					"exit %d (%s at %s) is out of reach of the entrance on %s: %s", i, e.Node, endpointText(p.m, e), in.Name, why)
				continue
			}
			tg, ok := r.Live().ReachService(out, svc)
			switch {
			case !ok && svc.Loopback:
				noService.report(e.Pos, object("tunnel", t.Name), []Related{{svc.Pos, "the service"}},
					"exit %d on %s cannot reach service %q: it listens on the loopback of %s only", i, out.Name, svc.Name, svc.Node)
			case !ok:
				why := r.WhyNot(out, svcNode, reach.Candidates(svcNode, svc.Bind))
				noService.report(e.Pos, object("tunnel", t.Name), []Related{{svc.Pos, "the service"}},
					"exit %d on %s cannot reach service %q on %s: %s", i, out.Name, svc.Name, svc.Node, why)
			case !r.Admits(svc.Allow, tg, false):
				noService.report(e.Pos, object("tunnel", t.Name), []Related{{svc.Pos, "the service"}},
					"exit %d on %s is refused by service %q: it allows %s and %s (%s) is not admitted", i, out.Name, svc.Name, listText(svc.Allow), out.Name, tg.Source)
			}
		}
	}
}

func checkForwards(p *pass) {
	for _, f := range p.m.Forwards {
		fn, svc := p.m.Node(f.Node), p.m.Service(f.Service)
		if fn == nil || svc == nil {
			continue
		}
		rel := []Related{{svc.Pos, "the service"}}
		r := p.ix.reach
		tg, ok := r.Live().ReachService(fn, svc)
		switch {
		case !ok && svc.Loopback:
			p.report(f.Pos, object("forward", f.Name), rel, "node %s cannot reach service %q: it listens on the loopback of %s only", fn.Name, svc.Name, svc.Node)
		case !ok:
			svcNode := p.m.Node(svc.Node)
			why := r.WhyNot(fn, svcNode, reach.Candidates(svcNode, svc.Bind))
			p.report(f.Pos, object("forward", f.Name), rel, "node %s cannot reach service %q on %s: %s", fn.Name, svc.Name, svc.Node, why)
		case !r.Admits(svc.Allow, tg, false):
			p.report(f.Pos, object("forward", f.Name), rel, "node %s is refused by service %q: it allows %s and %s (%s) is not admitted", fn.Name, svc.Name, listText(svc.Allow), fn.Name, tg.Source)
		}
	}
}
