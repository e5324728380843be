package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Exposure rules (OE1xx): what faces the internet that should not, and
// listeners whose access list shuts everyone out.
var exposureRules = []checker{
	{
		Rule: Rule{
			ID:       "OE101",
			Title:    "clear-text tunnel entrance on a public address",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A tunnel entrance (stunnel's client = yes) accepts clear text and forwards it, authenticated, to the exit: whoever can connect to the entrance talks to the service behind the tunnel as if from inside. In 2023-02 Open Food Facts' MongoDB tunnel entrance listened on the OVH proxy's public address, the database was found from the internet, dropped and held for ransom (docs/reports/2024-01-04-setting-up-stunnel.md, the 2023-02-08 section); the entrances then moved to a dedicated container on the private network. Put entrances on a private network or on loopback. An entrance that must face the internet says so with public: true on the endpoint: the runtime honours it and the finding becomes a warning.`,
			Example: `tunnels:
  - name: mongodb
    service: mongodb
    entrance: {node: proxy, network: internet, port: 27017}
    exits: [{node: db-host, network: internet, port: 27017}]
    auth: {psk: /etc/offedge/psk/mongodb.psk}
    allow: [app]`,
		},
		run: checkPublicEntrance,
	},
	{
		Rule: Rule{
			ID:       "OE102",
			Title:    "database listening on a public address",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `Databases (MongoDB, Redis, PostgreSQL, MySQL, memcached, Elasticsearch, InfluxDB, or any service with database: true) have weak or no authentication by default and are scanned for continuously; an exposed one is found and emptied within hours, as Open Food Facts' MongoDB was (docs/reports/2024-01-04-setting-up-stunnel.md). An empty bind means every network of the node (0.0.0.0 / [::]), the internet included when the node has a public address: the default Redis install at Free bound all interfaces with protected-mode off. Bind databases to private networks and reach them from elsewhere through a tunnel.`,
			Example: `services:
  - name: redis
    node: db-host       # has an address on the internet
    protocol: redis
    port: 6379
    allow: [app]        # no bind: every network, the internet included`,
		},
		run: checkPublicDatabase,
	},
	{
		Rule: Rule{
			ID:       "OE103",
			Title:    "forward publishes a database on a public address",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A forward relays clear-text TCP: a forward listening on the internet in front of a database publishes the database, however private its own bind is, with an IP allow list as the only barrier (source addresses of a NAT gateway are shared by everything behind it). This is the iptables DNAT pattern Open Food Facts used before moving database access to authenticated tunnels (docs/reports/2024-01-04-setting-up-stunnel.md). Use a tunnel, whose exit only admits its entrance's key.`,
			Example: `forwards:
  - name: mongodb
    node: gateway
    listen: {network: internet, port: 27017}
    service: mongodb    # protocol: mongodb
    allow: [partner]`,
		},
		run: checkForwardedDatabase,
	},
	{
		Rule: Rule{
			ID:       "OE104",
			Title:    "listener admits nobody",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `Every TCP listener goes through the same address filter, and the default is deny (DESIGN.md): a service, tunnel entrance or forward with no allow list accepts no connection (a service bound to every network still answers its own node over loopback; one bound to named networks is reached there even from its own node). That is safe but almost never what was meant: the clients named in uses: get no path and the outage is discovered in production. Name who may connect (allow: [NODE, policy:NAME, ...]), or mark a node-local service loopback: true.`,
			Example: `services:
  - name: mongodb
    node: db-host
    protocol: mongodb
    port: 27017
    bind: [lan]         # and no allow list`,
		},
		run: checkAdmitsNobody,
	},
}

func checkPublicEntrance(p *pass) {
	for _, t := range p.m.Tunnels {
		e := t.Entrance
		if e == nil || e.Loopback || !p.m.IsPublic(e.Network) {
			continue
		}
		where := endpointText(p.m, e)
		if e.Public {
			p.reportAs(Warning, e.Pos, object("tunnel", t.Name), nil,
				"entrance accepts clear text on public address %s (acknowledged with public: true); whoever passes allow %s reaches service %q unencrypted",
				where, listText(t.Allow), t.Service)
			continue
		}
		p.report(e.Pos, object("tunnel", t.Name), nil,
			"entrance accepts clear text on public address %s: whoever passes allow %s reaches service %q from the internet; put the entrance on a private network or loopback",
			where, listText(t.Allow), t.Service)
	}
}

// publicAddrs returns the addresses, on the public network, a service
// listens on: those of the networks it binds, or all of its node's when it
// binds none.
func publicAddrs(m *inventory.Model, s *inventory.Service) []netip.AddrPort {
	n := m.Node(s.Node)
	if n == nil || s.Loopback {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range n.Addresses {
		if !m.IsPublic(a.Network) {
			continue
		}
		if len(s.Bind) > 0 && !slices.Contains(s.Bind, a.Network) {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.IP, uint16(s.Port)))
	}
	return out
}

func addrsText(addrs []netip.AddrPort) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

func checkPublicDatabase(p *pass) {
	for _, s := range p.m.Services {
		if !s.IsDatabase() {
			continue
		}
		addrs := publicAddrs(p.m, s)
		if len(addrs) == 0 {
			continue
		}
		kind := fmt.Sprintf("protocol %s", s.Protocol)
		if s.Database {
			kind = "database: true"
		}
		if len(s.Bind) == 0 {
			p.report(s.Pos, object("service", s.Name), nil,
				"database (%s) binds every network of node %q, the internet included: it listens on %s; bind it to a private network",
				kind, s.Node, addrsText(addrs))
			continue
		}
		p.report(s.Pos, object("service", s.Name), nil,
			"database (%s) listens on public address %s; bind it to a private network and use a tunnel from elsewhere",
			kind, addrsText(addrs))
	}
}

func checkForwardedDatabase(p *pass) {
	for _, f := range p.m.Forwards {
		s := p.m.Service(f.Service)
		if s == nil || !s.IsDatabase() || f.Listen == nil || f.Listen.Loopback || !p.m.IsPublic(f.Listen.Network) {
			continue
		}
		p.report(f.Listen.Pos, object("forward", f.Name), []Related{{s.Pos, fmt.Sprintf("service %q is a database", s.Name)}},
			"relays database service %q in clear text from public address %s; use a tunnel instead",
			s.Name, endpointText(p.m, f.Listen))
	}
}

func checkAdmitsNobody(p *pass) {
	for _, s := range p.m.Services {
		if s.Loopback || len(s.Allow) > 0 {
			continue
		}
		if len(s.Bind) == 0 {
			p.report(s.Pos, object("service", s.Name), nil,
				"no allow list: nobody may connect but processes on %s over loopback; name the clients in allow, or set loopback: true", s.Node)
			continue
		}
		p.report(s.Pos, object("service", s.Name), nil,
			"no allow list: nobody may connect, not even %s itself on %s; name the clients in allow", s.Node, strings.Join(s.Bind, ", "))
	}
	for _, t := range p.m.Tunnels {
		if t.Entrance == nil || t.Entrance.Loopback || len(t.Allow) > 0 {
			continue
		}
		p.report(t.Pos, object("tunnel", t.Name), nil,
			"no allow list: nobody may use the entrance at %s; name the clients in allow", endpointText(p.m, t.Entrance))
	}
	for _, f := range p.m.Forwards {
		if f.Listen == nil || f.Listen.Loopback || len(f.Allow) > 0 {
			continue
		}
		p.report(f.Pos, object("forward", f.Name), nil,
			"no allow list: nobody may use the forward at %s; name the clients in allow", endpointText(p.m, f.Listen))
	}
}
