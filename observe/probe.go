// Package observe watches what the inventory declares: it generates the
// probes each node runs (from the node that would be the consumer), runs
// them with a protocol hello where the protocol is known, keeps their
// latest results for the metrics endpoint and the dashboard, and writes the
// Prometheus scrape configuration, alert rules and Alertmanager inhibit
// rules derived from the same reachability as `offedge impact`.
//
// Generation is pure (Model in, probes out), like plan.Compile; running a
// probe is the only side effect, through a Dialer the caller supplies (the
// runtime in production, the lab's address map on loopback).
package observe

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
)

// Internet is the vantage point of the probes run from outside the estate
// (every site hostname, as a visitor sees it).
const Internet = "internet"

// LoopbackNetwork is the Network of a probe that dials the node's own
// 127.0.0.1 (the same name as plan.LoopbackNetwork).
const LoopbackNetwork = "loopback"

// Probe kinds: what a probe watches.
const (
	KindSite     = "site"     // a site hostname, from the internet
	KindUpstream = "upstream" // one upstream server, from the proxy node using it
	KindTunnel   = "tunnel"   // a tunnel, from its entrance node through to the service
	KindForward  = "forward"  // a forward, from a node that uses it
	KindService  = "service"  // a service, from each node that uses it
)

// Protocols a probe speaks. Anything else is a TCP connect.
const (
	ProtoHTTP       = "http"
	ProtoHTTPS      = "https"
	ProtoRedis      = "redis"
	ProtoMongoDB    = "mongodb"
	ProtoPostgreSQL = "postgresql"
	ProtoSMTP       = "smtp"
	ProtoTCP        = "tcp"
)

// Probe is one check, fully resolved from the inventory: who runs it, what
// it dials and what it expects. Every label it gives a metric (Name, From,
// Kind, Object, Protocol) comes from the inventory, so their number is
// bounded by it.
type Probe struct {
	// Name identifies the probe among all probes of the inventory:
	// "site/world.openfoodfacts.org", "upstream/ovh-proxy/blog/service:blog",
	// "tunnel/mongodb-ovh", "forward/pmg-smtp", "service/docker-prod/mongodb".
	Name string `json:"name"`
	// From is the node that runs the probe, or Internet.
	From string `json:"from"`
	Kind string `json:"kind"`
	// Object is the inventory object watched: site, upstream, tunnel,
	// forward or service name.
	Object string `json:"object"`
	// Protocol is the hello spoken (http, https, redis, mongodb,
	// postgresql, smtp) or tcp.
	Protocol string `json:"protocol"`
	// Network and Addr are the production address dialed; Network is
	// LoopbackNetwork for the node's own 127.0.0.1. A tunnel probe opens
	// the tunnel itself (Tunnel) instead of dialing its entrance.
	Network string         `json:"network"`
	Addr    netip.AddrPort `json:"addr"`
	// Host is the HTTP Host and TLS server name; for a site probe from the
	// internet it is also the name resolved by DNS.
	Host       string `json:"host,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	Path       string `json:"path,omitempty"`
	// Status is the HTTP status expected; zero accepts any status below
	// MaxStatus.
	Status    int `json:"status,omitempty"`
	MaxStatus int `json:"max_status,omitempty"`
	// Tunnel names the tunnel a tunnel probe opens from its entrance.
	Tunnel string `json:"tunnel,omitempty"`
	// Via says how the target is reached, for people ("tunnel mongodb-ovh",
	// "forward pmg-smtp", "direct").
	Via string `json:"via,omitempty"`
}

// Target renders where the probe goes: "https://world.openfoodfacts.org/",
// "10.1.0.113:27017 on ovh-lan".
func (p *Probe) Target() string {
	switch {
	case p.Kind == KindSite:
		return fmt.Sprintf("%s://%s%s", p.Protocol, p.Host, p.Path)
	case p.Tunnel != "":
		return fmt.Sprintf("tunnel %s to %s", p.Tunnel, p.Host)
	}
	return fmt.Sprintf("%s on %s", p.Addr, p.Network)
}

// protocolOf maps a service protocol to the hello a probe speaks.
func protocolOf(serviceProtocol string) string {
	switch serviceProtocol {
	case "http", "influxdb":
		return ProtoHTTP
	case "https":
		return ProtoHTTPS
	case "redis", "mongodb", "postgresql", "smtp":
		return serviceProtocol
	}
	return ProtoTCP
}

// Generate returns every probe of the inventory, in a stable order: sites
// from the internet, then per site the upstream servers from its node, the
// tunnels from their entrance nodes, the forwards, and the services each
// node uses. A target the inventory gives no open path to produces no probe
// (`offedge check` reports it).
func Generate(m *inventory.Model) []Probe {
	g := &generator{m: m, e: reach.New(m), seen: map[string]bool{}}
	g.sites()
	g.upstreams()
	g.tunnels()
	g.forwards()
	g.services()
	return g.out
}

// For returns the probes whose vantage point is node (or Internet).
func For(probes []Probe, node string) []Probe {
	var out []Probe
	for _, p := range probes {
		if p.From == node {
			out = append(out, p)
		}
	}
	return out
}

type generator struct {
	m    *inventory.Model
	e    *reach.Engine
	out  []Probe
	seen map[string]bool
}

func (g *generator) add(p Probe) {
	if g.seen[p.Name] {
		return
	}
	g.seen[p.Name] = true
	g.out = append(g.out, p)
}

func targetNetwork(t inventory.Target) string {
	if t.Loopback {
		return LoopbackNetwork
	}
	return t.Network
}

// siteEntry is the public listener a visitor reaches for a site: TLS if it
// has one, IPv4 first.
func (g *generator) siteEntry(s *inventory.Site) (proto string, network string, addr netip.AddrPort, ok bool) {
	node := g.m.Node(s.Node)
	if node == nil {
		return "", "", netip.AddrPort{}, false
	}
	best := -1
	for _, l := range s.Listen {
		if !g.m.IsPublic(l.Network) || l.RedirectHTTPS {
			continue
		}
		rank := 1
		if l.TLS {
			rank = 2
		}
		if rank <= best {
			continue
		}
		var ip netip.Addr
		if l.Address.IsValid() {
			ip = l.Address
		} else if as := node.AddressesOn(l.Network); len(as) > 0 {
			ip = as[0].IP
		} else {
			continue
		}
		best = rank
		proto, network, addr = ProtoHTTP, l.Network, netip.AddrPortFrom(ip, uint16(l.Port))
		if l.TLS {
			proto = ProtoHTTPS
		}
	}
	return proto, network, addr, best > 0
}

// probeHosts are the hostnames probed for a site: its exact hosts, or, for
// a site with only wildcards, "www." in place of each "*." (a wildcard names
// no one host; www is the one most likely to be in DNS).
func probeHosts(s *inventory.Site) []string {
	var exact, wild []string
	for _, h := range s.Hosts {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			wild = append(wild, "www."+rest)
		} else {
			exact = append(exact, h)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return wild
}

// sites probes every site hostname on the internet (probeHosts). Any
// answer below 500 is the site up: a static root may well answer / with
// 404, and redirects are not followed.
func (g *generator) sites() {
	for _, s := range g.m.Sites {
		proto, network, addr, ok := g.siteEntry(s)
		if !ok {
			continue
		}
		for _, h := range probeHosts(s) {
			g.add(Probe{Name: "site/" + h, From: Internet, Kind: KindSite, Object: s.Name, Protocol: proto,
				Network: network, Addr: addr, Host: h, Path: "/", MaxStatus: 500, Via: "site " + s.Name})
		}
	}
}

// member names an upstream server the way `offedge impact` does
// ("service blog", "tunnel robotoff", "node off1:443").
func member(us *inventory.UpstreamServer) string {
	switch {
	case us.Service != "":
		return "service " + us.Service
	case us.Tunnel != "":
		return "tunnel " + us.Tunnel
	}
	return fmt.Sprintf("node %s:%d", us.Node, us.Port)
}

func firstExactHost(s *inventory.Site) string {
	for _, h := range s.Hosts {
		if !strings.HasPrefix(h, "*.") {
			return h
		}
	}
	return s.Name
}

// upstreams probes every server of every pool a site's routes use, from
// the site's node, with the pool's health check when it has one.
func (g *generator) upstreams() {
	for _, s := range g.m.Sites {
		node := g.m.Node(s.Node)
		if node == nil {
			continue
		}
		for _, rt := range s.Routes {
			name := rt.Upstream
			if rt.Static != nil {
				name = rt.Static.Fallback
			}
			u := g.m.Upstream(name)
			if u == nil {
				continue
			}
			for _, us := range u.Servers {
				t, ok := g.m.ReachUpstreamServer(node, us)
				if !ok {
					continue
				}
				p := Probe{Name: fmt.Sprintf("upstream/%s/%s/%s", node.Name, u.Name, strings.Replace(member(us), " ", ":", 1)), From: node.Name,
					Kind: KindUpstream, Object: u.Name, Protocol: ProtoHTTP, Network: targetNetwork(t), Addr: t.Addr,
					Host: firstExactHost(s), Path: "/", MaxStatus: 500, Via: member(us)}
				if u.Host != "" {
					p.Host = u.Host
				}
				if us.TLS {
					p.Protocol = ProtoHTTPS
					p.ServerName = us.ServerName
					if p.ServerName == "" {
						p.ServerName = p.Host
					}
				}
				if h := u.HealthCheck; h != nil {
					p.Path = h.Path
					p.Status, p.MaxStatus = h.Status, 400
				}
				g.add(p)
			}
		}
	}
}

// tunnels probes every tunnel from its entrance node, through an exit, to
// the service, speaking the service's protocol.
func (g *generator) tunnels() {
	for _, t := range g.m.Tunnels {
		svc := g.m.Service(t.Service)
		ent := g.m.Node(t.Entrance.Node)
		if svc == nil || ent == nil {
			continue
		}
		tg, ok := g.m.ReachEndpoint(ent, t.Entrance)
		if !ok {
			tg = inventory.Target{Network: LoopbackNetwork, Loopback: true}
		}
		g.add(Probe{Name: "tunnel/" + t.Name, From: ent.Name, Kind: KindTunnel, Object: t.Name,
			Protocol: protocolOf(svc.Protocol), Network: targetNetwork(tg), Addr: tg.Addr, Tunnel: t.Name,
			Host: svc.Name, Path: "/", MaxStatus: 500, Via: "tunnel " + t.Name})
	}
}

// openPaths are the paths from a node to a service no allow list refuses.
func (g *generator) openPaths(n *inventory.Node, s *inventory.Service) []reach.Path {
	var out []reach.Path
	paths, _ := g.e.ServicePaths(n, s)
	for _, p := range paths {
		if p.Open() && len(p.Hops) > 0 {
			out = append(out, p)
		}
	}
	return out
}

func usesService(n *inventory.Node, s string) bool { return slices.Contains(n.Uses, s) }

// forwards probes every forward from a node that uses it: the first node
// using the forward's service whose open path goes through it, else the
// first node its allow list admits.
func (g *generator) forwards() {
	for _, f := range g.m.Forwards {
		svc := g.m.Service(f.Service)
		if svc == nil {
			continue
		}
		var from *inventory.Node
		var hop reach.Hop
		for _, pass := range []bool{true, false} {
			for _, n := range g.m.Nodes {
				if from != nil || (pass && !usesService(n, svc.Name)) {
					continue
				}
				for _, p := range g.openPaths(n, svc) {
					if p.Hops[0].Kind == "forward" && p.Hops[0].Via == f.Name {
						from, hop = n, p.Hops[0]
						break
					}
				}
			}
		}
		if from == nil {
			continue
		}
		g.add(Probe{Name: "forward/" + f.Name, From: from.Name, Kind: KindForward, Object: f.Name,
			Protocol: protocolOf(svc.Protocol), Network: targetNetwork(hop.Target), Addr: hop.Target.Addr,
			Host: svc.Name, Path: "/", MaxStatus: 500, Via: "forward " + f.Name})
	}
}

// services probes every service a node uses, the way it connects: the
// first open path (directly, through a tunnel entrance or a forward).
func (g *generator) services() {
	for _, n := range g.m.Nodes {
		for _, u := range n.Uses {
			svc := g.m.Service(u)
			if svc == nil {
				continue
			}
			paths := g.openPaths(n, svc)
			if len(paths) == 0 {
				continue
			}
			h := paths[0].Hops[0]
			via := "direct"
			if h.Via != "" {
				via = map[string]string{"entrance": "tunnel", "forward": "forward"}[h.Kind] + " " + h.Via
			}
			g.add(Probe{Name: "service/" + n.Name + "/" + svc.Name, From: n.Name, Kind: KindService, Object: svc.Name,
				Protocol: protocolOf(svc.Protocol), Network: targetNetwork(h.Target), Addr: h.Target.Addr,
				Host: svc.Name, Path: "/", MaxStatus: 500, Via: via})
		}
	}
}
