package inventory

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/offedge/offedge/edge/http/vars"
)

// Model is a loaded, validated inventory: every list merged from every file,
// every reference resolved. It is pure data, never modified after Load, and
// safe to share between goroutines.
type Model struct {
	// Files are the inventory files in load order.
	Files []string

	Providers []*Provider
	Networks  []*Network
	Servers   []*Server
	Guests    []*Guest
	Services  []*Service
	Upstreams []*Upstream
	Sites     []*Site
	Tunnels   []*Tunnel
	Forwards  []*Forward
	Policies  []*Policy
	Replicas  []*Replica
	Suppress  []*Suppression
	// Protection declares nodes' shared protections (protect.go).
	Protection []*Protection
	// Monitoring names the nodes that watch the estate.
	Monitoring []*Monitor
	// Admins are the nodes' admin endpoints (admin.go).
	Admins []*Admin

	// Nodes are the servers then the guests, as one list: everything that has
	// addresses and runs things.
	Nodes []*Node

	providers map[string]*Provider
	networks  map[string]*Network
	nodes     map[string]*Node
	services  map[string]*Service
	upstreams map[string]*Upstream
	sites     map[string]*Site
	tunnels   map[string]*Tunnel
	forwards  map[string]*Forward
	policies  map[string]*Policy
	replicas  map[string]*Replica
	byAddr    map[netKey]*Node
	onNetwork map[string][]*Node
	// byProvider and byCluster list the nodes of each provider and cluster
	// in inventory order (guests with their host's), for allow entries.
	byProvider map[string][]*Node
	byCluster  map[string][]*Node
	lookups    lookups
}

type netKey struct {
	network string
	ip      netip.Addr
}

// Node is a server or a guest, with what it inherits from its host resolved.
type Node struct {
	Name string
	// Kind is "server", "ct" or "vm".
	Kind   string
	Server *Server // set for servers
	Guest  *Guest  // set for guests
	// Host is the server a guest runs on (nil for servers).
	Host      *Node
	Provider  string
	Location  string
	Cluster   string
	Addresses []*Address
	Uses      []string
	// Management and Firewall come from the server or guest (see there).
	Management []*Management
	Firewall   *NodeFirewall
	// Storage comes from the server (nil for guests and servers without).
	Storage *NodeStorage
	// ACMEStateDir comes from the server or guest; empty means the
	// plan's default.
	ACMEStateDir string
	Pos          Pos
}

// Title is the node's human title, or its kind and id.
func (n *Node) Title() string {
	if n.Server != nil && n.Server.Title != "" {
		return n.Server.Title
	}
	if n.Guest != nil {
		if n.Guest.Title != "" {
			return n.Guest.Title
		}
		return fmt.Sprintf("%s %d on %s", n.Kind, n.Guest.ID, n.Host.Name)
	}
	return n.Name
}

// Describe renders "ct 113 on ovh1" for guests and "server" for servers.
func (n *Node) Describe() string {
	if n.Guest != nil {
		return fmt.Sprintf("%s %d on %s", n.Kind, n.Guest.ID, n.Host.Name)
	}
	return "server"
}

// AddressesOn returns the node's addresses on a network, IPv4 first.
func (n *Node) AddressesOn(network string) []*Address {
	var out []*Address
	for _, a := range n.Addresses {
		if a.Network == network {
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].IP.Is4() && !out[j].IP.Is4() })
	return out
}

// Lookups by name; they return nil when the name is unknown.

func (m *Model) Provider(name string) *Provider { return m.providers[name] }
func (m *Model) Network(name string) *Network   { return m.networks[name] }
func (m *Model) Node(name string) *Node         { return m.nodes[name] }
func (m *Model) Service(name string) *Service   { return m.services[name] }
func (m *Model) Upstream(name string) *Upstream { return m.upstreams[name] }
func (m *Model) Site(name string) *Site         { return m.sites[name] }
func (m *Model) Tunnel(name string) *Tunnel     { return m.tunnels[name] }
func (m *Model) Forward(name string) *Forward   { return m.forwards[name] }
func (m *Model) Policy(name string) *Policy     { return m.policies[name] }
func (m *Model) Replica(name string) *Replica   { return m.replicas[name] }

// NodeAt returns the node holding ip on network, or nil.
func (m *Model) NodeAt(network string, ip netip.Addr) *Node {
	return m.byAddr[netKey{network, ip}]
}

// NodesOn returns the nodes with an address on network, in inventory order.
func (m *Model) NodesOn(network string) []*Node { return m.onNetwork[network] }

// IsPublic reports whether network is the public internet.
func (m *Model) IsPublic(network string) bool {
	n := m.networks[network]
	return n != nil && n.Kind == "public"
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// builder validates merged files into a Model, collecting every error.
type builder struct {
	m        *Model
	errs     Errors
	guestIDs map[string]*Node
}

func (b *builder) errf(pos Pos, object, hint, format string, args ...any) {
	b.errs = append(b.errs, &Error{Pos: pos, Object: object, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func build(files []*File, names []string) (*Model, Errors) {
	m := &Model{
		Files:     names,
		providers: map[string]*Provider{}, networks: map[string]*Network{}, nodes: map[string]*Node{},
		services: map[string]*Service{}, upstreams: map[string]*Upstream{}, sites: map[string]*Site{},
		tunnels: map[string]*Tunnel{}, forwards: map[string]*Forward{}, policies: map[string]*Policy{},
		replicas: map[string]*Replica{}, byAddr: map[netKey]*Node{}, onNetwork: map[string][]*Node{},
	}
	for _, f := range files {
		m.Providers = append(m.Providers, f.Providers...)
		m.Networks = append(m.Networks, f.Networks...)
		m.Servers = append(m.Servers, f.Servers...)
		m.Guests = append(m.Guests, f.Guests...)
		m.Services = append(m.Services, f.Services...)
		m.Upstreams = append(m.Upstreams, f.Upstreams...)
		m.Sites = append(m.Sites, f.Sites...)
		m.Tunnels = append(m.Tunnels, f.Tunnels...)
		m.Forwards = append(m.Forwards, f.Forwards...)
		m.Policies = append(m.Policies, f.Policies...)
		m.Replicas = append(m.Replicas, f.Replicas...)
		m.Suppress = append(m.Suppress, f.Suppress...)
		m.Protection = append(m.Protection, f.Protection...)
		m.Monitoring = append(m.Monitoring, f.Monitoring...)
		m.Admins = append(m.Admins, f.Admin...)
	}
	b := &builder{m: m, guestIDs: map[string]*Node{}}
	b.index()
	b.validate()
	m.buildLookups()
	return m, b.errs
}

// register adds name to an index, reporting invalid and duplicate names.
func register[T any](b *builder, idx map[string]T, kind, name string, pos Pos, v T, posOf func(T) Pos) bool {
	obj := fmt.Sprintf("%s %q", kind, name)
	if name == "" {
		b.errf(pos, kind, "every "+kind+" needs a name", "missing name")
		return false
	}
	if !nameRE.MatchString(name) {
		b.errf(pos, obj, "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", "invalid name")
		return false
	}
	if prev, dup := idx[name]; dup {
		b.errf(pos, obj, fmt.Sprintf("first defined at %s; rename one", posOf(prev)), "duplicate %s name", kind)
		return false
	}
	idx[name] = v
	return true
}

func (b *builder) index() {
	m := b.m
	for _, p := range m.Providers {
		register(b, m.providers, "provider", p.Name, p.Pos, p, func(p *Provider) Pos { return p.Pos })
	}
	for _, n := range m.Networks {
		register(b, m.networks, "network", n.Name, n.Pos, n, func(n *Network) Pos { return n.Pos })
	}
	nodePos := func(n *Node) Pos { return n.Pos }
	for _, s := range m.Servers {
		n := &Node{Name: s.Name, Kind: "server", Server: s, Provider: s.Provider, Location: s.Location,
			Cluster: s.Cluster, Addresses: s.Addresses, Uses: s.Uses, Pos: s.Pos,
			Management: s.Management, Firewall: s.Firewall, Storage: s.Storage, ACMEStateDir: s.ACMEStateDir}
		if register(b, m.nodes, "node", s.Name, s.Pos, n, nodePos) {
			m.Nodes = append(m.Nodes, n)
		}
	}
	for _, g := range m.Guests {
		n := &Node{Name: g.Name, Kind: g.Kind, Guest: g, Addresses: g.Addresses, Uses: g.Uses, Pos: g.Pos,
			Management: g.Management, Firewall: g.Firewall, ACMEStateDir: g.ACMEStateDir}
		if register(b, m.nodes, "node", g.Name, g.Pos, n, nodePos) {
			m.Nodes = append(m.Nodes, n)
		}
	}
	for _, s := range m.Services {
		register(b, m.services, "service", s.Name, s.Pos, s, func(s *Service) Pos { return s.Pos })
	}
	for _, u := range m.Upstreams {
		register(b, m.upstreams, "upstream", u.Name, u.Pos, u, func(u *Upstream) Pos { return u.Pos })
	}
	for _, s := range m.Sites {
		register(b, m.sites, "site", s.Name, s.Pos, s, func(s *Site) Pos { return s.Pos })
	}
	for _, t := range m.Tunnels {
		register(b, m.tunnels, "tunnel", t.Name, t.Pos, t, func(t *Tunnel) Pos { return t.Pos })
	}
	for _, f := range m.Forwards {
		register(b, m.forwards, "forward", f.Name, f.Pos, f, func(f *Forward) Pos { return f.Pos })
	}
	for _, p := range m.Policies {
		register(b, m.policies, "policy", p.Name, p.Pos, p, func(p *Policy) Pos { return p.Pos })
	}
	for _, r := range m.Replicas {
		register(b, m.replicas, "replica", r.Name, r.Pos, r, func(r *Replica) Pos { return r.Pos })
	}
}

// names lists the keys of an index, for "known: ..." hints.
func names[T any](idx map[string]T) string {
	var out []string
	for k := range idx {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) > 12 {
		out = append(out[:12], "...")
	}
	if len(out) == 0 {
		return "none is defined"
	}
	return "known: " + strings.Join(out, ", ")
}

// ref reports a dangling reference and returns whether name resolves.
func ref[T any](b *builder, idx map[string]T, pos Pos, object, field, kind, name string) bool {
	if name == "" {
		b.errf(pos, object, "", "missing %s", field)
		return false
	}
	if _, ok := idx[name]; !ok {
		hint := names(idx)
		var keys []string
		for k := range idx {
			keys = append(keys, k)
		}
		if s := suggestField(name, keys); strings.HasPrefix(s, "did you") {
			hint = s
		}
		b.errf(pos, object, hint, "%s names unknown %s %q", field, kind, name)
		return false
	}
	return true
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }

func (b *builder) validate() {
	m := b.m
	seenMon := map[string]bool{}
	for _, mo := range m.Monitoring {
		obj := fmt.Sprintf("monitoring %q", mo.Node)
		ref(b, m.nodes, mo.Pos, obj, "node", "node", mo.Node)
		if seenMon[mo.Node] {
			b.errf(mo.Pos, obj, "", "listed twice")
		}
		seenMon[mo.Node] = true
	}
	for _, p := range m.Providers {
		seen := map[string]bool{}
		for _, l := range p.Locations {
			obj := fmt.Sprintf("provider %q: location %q", p.Name, l.Name)
			if !nameRE.MatchString(l.Name) {
				b.errf(l.Pos, obj, "", "invalid location name")
			} else if seen[l.Name] {
				b.errf(l.Pos, obj, "", "duplicate location")
			}
			seen[l.Name] = true
		}
	}
	publics := 0
	for _, n := range m.Networks {
		obj := fmt.Sprintf("network %q", n.Name)
		switch n.Kind {
		case "public":
			publics++
		case "private":
		case "":
			b.errf(n.Pos, obj, `set kind: public (the internet) or kind: private`, "missing kind")
		default:
			b.errf(n.Pos, obj, `use "public" or "private"`, "unknown kind %q", n.Kind)
		}
		if n.Provider != "" {
			ref(b, m.providers, n.Pos, obj, "provider", "provider", n.Provider)
		}
		if n.Gateway != "" {
			ref(b, m.nodes, n.Pos, obj, "gateway", "node", n.Gateway)
			if n.Kind == "public" {
				b.errf(n.Pos, obj, "gateways belong to private networks", "a public network has no gateway")
			}
		}
	}
	if publics > 1 {
		b.errf(Pos{}, "", "model the internet once, as one network of kind public", "%d networks have kind public", publics)
	}
	for _, n := range m.Nodes {
		b.validateNode(n)
	}
	m.byProvider, m.byCluster = map[string][]*Node{}, map[string][]*Node{}
	for _, n := range m.Nodes {
		b.resolveGateways(n)
		if n.Provider != "" {
			m.byProvider[n.Provider] = append(m.byProvider[n.Provider], n)
		}
		if n.Cluster != "" {
			m.byCluster[n.Cluster] = append(m.byCluster[n.Cluster], n)
		}
	}
	for _, s := range m.Services {
		b.validateService(s)
	}
	for _, u := range m.Upstreams {
		b.validateUpstream(u)
	}
	for _, s := range m.Sites {
		b.validateSite(s)
	}
	for _, t := range m.Tunnels {
		b.validateTunnel(t)
	}
	for _, f := range m.Forwards {
		obj := fmt.Sprintf("forward %q", f.Name)
		if ref(b, m.nodes, f.Pos, obj, "node", "node", f.Node) {
			if f.Listen == nil {
				b.errf(f.Pos, obj, "add listen: {network: NAME, port: N}", "missing listen")
			} else {
				if f.Listen.Node == "" {
					f.Listen.Node = f.Node
				} else if f.Listen.Node != f.Node {
					b.errf(f.Listen.Pos, obj+": listen", "omit listen.node; a forward listens on its own node", "listen node %q differs from forward node %q", f.Listen.Node, f.Node)
				}
				b.validateEndpoint(f.Listen, obj+": listen", f.Node)
			}
		}
		ref(b, m.services, f.Pos, obj, "service", "service", f.Service)
		b.validateForwardMode(f, obj)
	}
	for _, r := range m.Replicas {
		obj := fmt.Sprintf("replica %q", r.Name)
		if r.Kind != "" && !oneOf(r.Kind, "zfs", "pvesr", "rsync") {
			b.errf(r.Pos, obj, `use zfs, pvesr or rsync`, "unknown kind %q", r.Kind)
		}
		if r.Initiator != "" && !oneOf(r.Initiator, "source", "target") {
			b.errf(r.Pos, obj, "use target (the target pulls) or source (the source pushes)", "unknown initiator %q", r.Initiator)
		}
		if r.Source == nil {
			b.errf(r.Pos, obj, "add source: {node: NAME, path: DATASET}", "missing source")
		} else {
			ref(b, m.nodes, r.Source.Pos, obj+": source", "node", "node", r.Source.Node)
			if r.Source.Path == "" {
				b.errf(r.Source.Pos, obj+": source", "", "missing path")
			}
		}
		if r.Target != nil {
			ref(b, m.nodes, r.Target.Pos, obj+": target", "node", "node", r.Target.Node)
			if r.Target.Path == "" {
				b.errf(r.Target.Pos, obj+": target", "", "missing path")
			}
		}
	}
	for _, s := range m.Suppress {
		if s.Rule == "" {
			b.errf(s.Pos, "suppression", "", "missing rule")
		}
		if strings.TrimSpace(s.Reason) == "" {
			b.errf(s.Pos, "suppression", "say why the finding does not apply", "missing reason")
		}
	}
	for _, p := range m.Policies {
		b.validateAllow(p.Allow, p.Pos, fmt.Sprintf("policy %q", p.Name))
	}
	seen := map[string]Pos{}
	for _, p := range m.Protection {
		b.validateProtection(p, seen)
	}
	seenAdmin := map[string]Pos{}
	for _, a := range m.Admins {
		b.validateAdmin(a, seenAdmin)
	}
}

func (b *builder) validateNode(n *Node) {
	m := b.m
	obj := fmt.Sprintf("%s %q", map[bool]string{true: "server", false: "guest"}[n.Server != nil], n.Name)
	if s := n.Server; s != nil {
		if ref(b, m.providers, s.Pos, obj, "provider", "provider", s.Provider) && s.Location != "" {
			p := m.providers[s.Provider]
			found := false
			var locs []string
			for _, l := range p.Locations {
				locs = append(locs, l.Name)
				found = found || l.Name == s.Location
			}
			if !found {
				b.errf(s.Pos, obj, "known: "+strings.Join(locs, ", "), "location %q is not a location of provider %q", s.Location, s.Provider)
			}
		}
		if s.Mode != "" && !oneOf(s.Mode, "bare-metal", "proxmox") {
			b.errf(s.Pos, obj, `use "bare-metal" or "proxmox"`, "unknown mode %q", s.Mode)
		}
	}
	if g := n.Guest; g != nil {
		if !oneOf(g.Kind, "ct", "vm") {
			b.errf(g.Pos, obj, `use kind: ct (container) or kind: vm`, "unknown guest kind %q", g.Kind)
		}
		if g.ID <= 0 {
			b.errf(g.Pos, obj, "the Proxmox id, e.g. id: 101", "missing or invalid id")
		}
		if ref(b, m.nodes, g.Pos, obj, "host", "node", g.Host) {
			host := m.nodes[g.Host]
			if host.Server == nil {
				b.errf(g.Pos, obj, "a guest's host must be a server", "host %q is a guest", g.Host)
			} else {
				n.Host = host
				n.Provider, n.Location, n.Cluster = host.Provider, host.Location, host.Cluster
				if host.Server.Mode == "bare-metal" {
					b.errf(g.Pos, obj, "set mode: proxmox on the host", "host %q is bare-metal and cannot run guests", g.Host)
				}
				key := fmt.Sprintf("%s/%d", g.Host, g.ID)
				if other, dup := b.guestIDs[key]; dup {
					b.errf(g.Pos, obj, fmt.Sprintf("guest %q at %s has it", other.Name, other.Pos), "id %d is already used on %s", g.ID, g.Host)
				} else {
					b.guestIDs[key] = n
				}
			}
		}
	}
	b.validateFirewall(n, obj)
	b.validateStorage(n, obj)
	if d := n.ACMEStateDir; d != "" && !strings.HasPrefix(d, "/") {
		b.errf(n.Pos, obj, "e.g. acme_state_dir: /var/lib/offedge/acme", "acme_state_dir %q is not an absolute path", d)
	}
	for i, a := range n.Addresses {
		aobj := fmt.Sprintf("%s: address %d", obj, i)
		if !ref(b, m.networks, a.Pos, aobj, "network", "network", a.Network) {
			continue
		}
		if !a.IP.IsValid() {
			b.errf(a.Pos, aobj, "add ip: ADDRESS", "missing ip")
			continue
		}
		if a.IP.Zone() != "" || a.IP.Is4In6() {
			b.errf(a.Pos, aobj, "write the plain address", "address %s has a zone or is IPv4-mapped", a.IP)
			continue
		}
		net := m.networks[a.Network]
		if len(net.Prefixes) > 0 && !slices.ContainsFunc(net.Prefixes, func(p netip.Prefix) bool { return p.Contains(a.IP) }) {
			b.errf(a.Pos, aobj, fmt.Sprintf("network %q has prefixes %v", a.Network, net.Prefixes), "%s is outside network %q", a.IP, a.Network)
		}
		if net.Kind == "public" && (a.IP.IsPrivate() || a.IP.IsLoopback()) {
			b.errf(a.Pos, aobj, "private addresses belong on a private network", "%s is a private address on public network %q", a.IP, a.Network)
		}
		key := netKey{a.Network, a.IP}
		if other, dup := m.byAddr[key]; dup {
			b.errf(a.Pos, aobj, fmt.Sprintf("%s has it at %s", other.Name, other.Pos), "address %s is already used on network %q", a.IP, a.Network)
			continue
		}
		m.byAddr[key] = n
		// A node's addresses come one after another: n is already listed
		// on this network only if it is the last one listed.
		if on := m.onNetwork[a.Network]; len(on) == 0 || on[len(on)-1] != n {
			m.onNetwork[a.Network] = append(on, n)
		}
	}
}

// resolveGateways resolves each address's own gateway, once every address
// is known: a node name, an address on the same network, or "none".
func (b *builder) resolveGateways(n *Node) {
	m := b.m
	for i, a := range n.Addresses {
		if a.Gateway == "" || a.Gateway == NoGateway || m.networks[a.Network] == nil {
			continue
		}
		aobj := fmt.Sprintf("%s %q: address %d", map[bool]string{true: "server", false: "guest"}[n.Server != nil], n.Name, i)
		if ip, err := netip.ParseAddr(a.Gateway); err == nil {
			gw := m.byAddr[netKey{a.Network, ip}]
			switch {
			case gw == nil:
				b.errf(a.Pos, aobj, fmt.Sprintf("give the gateway's address on %s, or name the gateway node", a.Network), "gateway %s is no address on network %q", ip, a.Network)
			case gw == n:
				b.errf(a.Pos, aobj, "a node is not its own gateway; write gateway: none for no default route", "gateway %s is this node's own address", ip)
			default:
				a.gateway = gw
			}
			continue
		}
		if ref(b, m.nodes, a.Pos, aobj, "gateway", "node", a.Gateway) {
			a.gateway = m.nodes[a.Gateway]
		}
	}
}

// GatewayOf returns the NAT gateway traffic from address a goes through
// towards the internet: the address's own gateway, else its network's; nil
// for an address with gateway: none, on a network without a gateway, or on
// the public network.
func (m *Model) GatewayOf(a *Address) *Node {
	switch {
	case a.Gateway == NoGateway:
		return nil
	case a.Gateway != "":
		return a.gateway
	}
	nw := m.networks[a.Network]
	if nw == nil || nw.Kind == "public" || nw.Gateway == "" {
		return nil
	}
	return m.nodes[nw.Gateway]
}

// knownProtocols are the protocols services may declare; databases are the
// ones `offedge check` keeps off public networks.
var databaseProtocols = []string{"mongodb", "redis", "postgresql", "mysql", "memcached", "elasticsearch", "influxdb"}

// IsDatabase reports whether s holds data that must never face the internet.
func (s *Service) IsDatabase() bool {
	return s.Database || slices.Contains(databaseProtocols, s.Protocol)
}

func (b *builder) validateService(s *Service) {
	m := b.m
	obj := fmt.Sprintf("service %q", s.Name)
	if ref(b, m.nodes, s.Pos, obj, "node", "node", s.Node) {
		node := m.nodes[s.Node]
		for _, nw := range s.Bind {
			if ref(b, m.networks, s.Pos, obj, "bind", "network", nw) && len(node.AddressesOn(nw)) == 0 {
				b.errf(s.Pos, obj, "add an address on that network to the node, or bind elsewhere", "binds network %q but node %q has no address there", nw, s.Node)
			}
		}
		if s.Loopback && len(s.Bind) > 0 {
			b.errf(s.Pos, obj, "a loopback service binds no network", "loopback and bind are exclusive")
		}
	}
	if s.Port < 1 || s.Port > 65535 {
		b.errf(s.Pos, obj, "", "port %d is not in 1-65535", s.Port)
	}
	if s.Protocol == "" {
		b.errf(s.Pos, obj, "e.g. http, tcp, mongodb, redis, postgresql, smtp", "missing protocol")
	}
	b.validateAllow(s.Allow, s.Pos, obj)
}

func (b *builder) validateUpstream(u *Upstream) {
	m := b.m
	obj := fmt.Sprintf("upstream %q", u.Name)
	if len(u.Servers) == 0 {
		b.errf(u.Pos, obj, "add servers: [{service: NAME}]", "no servers")
	}
	capped := false
	for i, s := range u.Servers {
		sobj := fmt.Sprintf("%s: server %d", obj, i)
		set := 0
		for _, v := range []string{s.Service, s.Tunnel, s.Node} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			b.errf(s.Pos, sobj, "set one of service, tunnel, or node with port", "a server names exactly one of service, tunnel or node")
			continue
		}
		switch {
		case s.Service != "":
			ref(b, m.services, s.Pos, sobj, "service", "service", s.Service)
		case s.Tunnel != "":
			ref(b, m.tunnels, s.Pos, sobj, "tunnel", "tunnel", s.Tunnel)
		default:
			ref(b, m.nodes, s.Pos, sobj, "node", "node", s.Node)
			if s.Port < 1 || s.Port > 65535 {
				b.errf(s.Pos, sobj, "a node server needs the port it listens on", "port %d is not in 1-65535", s.Port)
			}
		}
		if s.Network != "" {
			ref(b, m.networks, s.Pos, sobj, "network", "network", s.Network)
		}
		if s.Weight < 0 {
			b.errf(s.Pos, sobj, "", "negative weight")
		}
		if s.MaxConns < 0 {
			b.errf(s.Pos, sobj, "omit max_conns for no cap", "negative max_conns")
		}
		if s.MaxConns > 0 {
			capped = true
		}
	}
	if u.Queue < 0 {
		b.errf(u.Pos, obj, "omit queue for none", "negative queue")
	} else if u.Queue > 0 && !capped {
		b.errf(u.Pos, obj, "set max_conns on the servers requests should wait for", "queue without max_conns on any server: nothing would wait")
	}
	if u.QueueTimeout.D() < 0 {
		b.errf(u.Pos, obj, "", "negative queue_timeout")
	}
	if h := u.HealthCheck; h != nil && !strings.HasPrefix(h.Path, "/") {
		b.errf(h.Pos, obj+": health_check", `e.g. path: /health`, "path must start with /")
	}
}

var hostRE = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (b *builder) validateSite(s *Site) {
	m := b.m
	obj := fmt.Sprintf("site %q", s.Name)
	if !ref(b, m.nodes, s.Pos, obj, "node", "node", s.Node) {
		return
	}
	if len(s.Hosts) == 0 && !s.Default {
		b.errf(s.Pos, obj, `add hosts: [example.org, "*.example.org"], or default: true`, "no hosts")
	}
	for _, h := range s.Hosts {
		if !hostRE.MatchString(h) || len(h) > 253 {
			b.errf(s.Pos, obj, "lowercase names; a wildcard only as the leading label (*.example.org)", "invalid host %q", h)
		}
	}
	if len(s.Listen) == 0 {
		b.errf(s.Pos, obj, "add listen: [{network: internet, port: 443, tls: true}]", "no listen")
	}
	for i, l := range s.Listen {
		lobj := fmt.Sprintf("%s: listen %d", obj, i)
		if !ref(b, m.networks, l.Pos, lobj, "network", "network", l.Network) {
			continue
		}
		addrs := m.nodes[s.Node].AddressesOn(l.Network)
		if len(addrs) == 0 {
			b.errf(l.Pos, lobj, "add an address on that network to the node", "node %q has no address on network %q", s.Node, l.Network)
		}
		if l.Address.IsValid() && !slices.ContainsFunc(addrs, func(a *Address) bool { return a.IP == l.Address }) {
			b.errf(l.Pos, lobj, "use one of the node's addresses on the network", "%s is not an address of %q on %q", l.Address, s.Node, l.Network)
		}
		if l.Port < 1 || l.Port > 65535 {
			b.errf(l.Pos, lobj, "", "port %d is not in 1-65535", l.Port)
		}
		if l.TLS && l.RedirectHTTPS {
			b.errf(l.Pos, lobj, "redirect_https belongs on the plain-HTTP listener", "tls and redirect_https together")
		}
	}
	if t := s.TLS; t != nil {
		if t.Certbot != "" && (t.CertFile != "" || t.KeyFile != "") {
			b.errf(t.Pos, obj+": tls", "use certbot or cert_file/key_file", "two certificate sources")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			b.errf(t.Pos, obj+": tls", "set both cert_file and key_file", "incomplete certificate files")
		}
		switch t.MinVersion {
		case "", "1.2", "1.3":
		case "1.0", "1.1":
			b.errf(t.Pos, obj+": tls", "offedge offers TLS 1.2 and 1.3 only (RFC 8996 deprecates 1.0 and 1.1); omit min_version", "min_version %s", t.MinVersion)
		default:
			b.errf(t.Pos, obj+": tls", `use "1.2" or "1.3"`, "unknown min_version %q", t.MinVersion)
		}
		for _, c := range t.Ciphers {
			if !slices.ContainsFunc(tls.CipherSuites(), func(cs *tls.CipherSuite) bool {
				return cs.Name == c && slices.Contains(cs.SupportedVersions, tls.VersionTLS12)
			}) {
				b.errf(t.Pos, obj+": tls", "name TLS 1.2 suites by their IANA names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "unknown cipher %q", c)
			}
		}
		for _, c := range t.Curves {
			if !oneOf(c, "X25519MLKEM768", "X25519", "x25519", "P-256", "prime256v1", "secp256r1", "P-384", "secp384r1", "P-521", "secp521r1") {
				b.errf(t.Pos, obj+": tls", "use X25519MLKEM768, X25519, P-256, P-384 or P-521", "unknown curve %q", c)
			}
		}
		if t.ACME != nil {
			b.validateACME(s, t.ACME, obj+": tls: acme")
		} else if t.Certbot == "" && t.CertFile == "" {
			b.errf(t.Pos, obj+": tls", "add certbot: NAME, cert_file and key_file, or acme: {email: ...}", "no certificate source")
		}
	}
	seen := map[string]bool{}
	for i, r := range s.Routes {
		robj := fmt.Sprintf("%s: route %d (%s)", obj, i, r.Path)
		kind := r.Kind()
		switch {
		case !oneOf(kind, MatchPrefix, MatchExact, MatchPriorityPrefix, MatchRegex, MatchRegexCI):
			b.errf(r.Pos, robj, "use prefix, exact, priority_prefix, regex or regex_ci", "unknown match %q", r.Match)
		case r.Exact && kind != MatchExact:
			b.errf(r.Pos, robj, "exact: true is match: exact; keep one", "exact: true with match: %s", r.Match)
		case r.IsRegex():
			if _, err := vars.CompileRegex(r.Path, kind == MatchRegexCI); err != nil {
				b.errf(r.Pos, robj, "an RE2 regex, as nginx's location ~ (docs/routing.md)", "%v", err)
			}
		case !strings.HasPrefix(r.Path, "/"):
			b.errf(r.Pos, robj, "e.g. path: /api/", "path must start with /")
		}
		// One route per path and kind; a prefix and a priority prefix on
		// one path are the same location to nginx ("duplicate location").
		key := kind + " " + r.Path
		switch kind {
		case MatchPriorityPrefix:
			key = MatchPrefix + " " + r.Path
		}
		if seen[key] {
			b.errf(r.Pos, robj, "merge the two routes", "duplicate route path %q", r.Path)
		}
		seen[key] = true
		set := 0
		if r.Upstream != "" {
			set++
			ref(b, m.upstreams, r.Pos, robj, "upstream", "upstream", r.Upstream)
		}
		if r.Static != nil {
			set++
			if r.Static.Root == "" {
				b.errf(r.Static.Pos, robj+": static", "", "missing root")
			}
			if r.Static.Fallback != "" {
				ref(b, m.upstreams, r.Static.Pos, robj+": static", "fallback", "upstream", r.Static.Fallback)
			}
		}
		if r.Redirect != "" {
			set++
			if r.RedirectCode != 0 && !oneOf(fmt.Sprint(r.RedirectCode), "301", "302", "303", "307", "308") {
				b.errf(r.Pos, robj, "use 301, 302, 303, 307 or 308", "redirect_code %d is not a redirect", r.RedirectCode)
			}
		}
		if set != 1 && !(set == 0 && len(r.Rewrites) > 0) {
			b.errf(r.Pos, robj, "set one of upstream, static or redirect", "a route has exactly one action")
		}
	}
	for code := range s.ErrorPages {
		if code < 400 || code > 599 {
			b.errf(s.Pos, obj, "error pages are for 4xx and 5xx statuses", "error page for status %d", code)
		}
	}
	if a := s.AccessLog; a != nil && a.Format != "" && !oneOf(a.Format, LogFormats...) {
		b.errf(a.Pos, obj+": access_log", `use "`+strings.Join(LogFormats, `", "`)+`"`, "unknown format %q", a.Format)
	}
	if e := s.ErrorLog; e != nil {
		if e.Path == "" {
			b.errf(e.Pos, obj+": error_log", "e.g. path: /var/log/offedge/off.error.log", "missing path")
		}
		if e.Level != "" && !oneOf(e.Level, "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg") {
			b.errf(e.Pos, obj+": error_log", "use debug, info, notice, warn, error, crit, alert or emerg (nginx's levels)", "unknown level %q", e.Level)
		}
	}
	b.validateHeaders(s.Headers, s.HeadersAlways, s.Pos, obj)
	b.validateCompress(s.Compress, obj)
	for i, r := range s.Routes {
		robj := fmt.Sprintf("%s: route %d (%s)", obj, i, r.Path)
		b.validateHeaders(r.Headers, r.HeadersAlways, r.Pos, robj)
		b.validateCompress(r.Compress, robj)
		if c := r.Compress; c != nil && c.GzipStatic != nil && *c.GzipStatic && r.Static == nil {
			b.errf(c.Pos, robj+": compress", "gzip_static serves files: set it on a static route", "gzip_static on a route without static")
		}
	}
	b.validateAllow(s.Allow, s.Pos, obj)
	b.validateSiteProtection(s, obj)
	b.validateRouting(s, obj)
}

func (b *builder) validateEndpoint(e *Endpoint, obj, node string) {
	m := b.m
	if node == "" {
		if !ref(b, m.nodes, e.Pos, obj, "node", "node", e.Node) {
			return
		}
		node = e.Node
	}
	if e.Port < 1 || e.Port > 65535 {
		b.errf(e.Pos, obj, "", "port %d is not in 1-65535", e.Port)
	}
	if e.Loopback {
		if e.Network != "" || e.Address.IsValid() {
			b.errf(e.Pos, obj, "a loopback endpoint has no network", "loopback with network or address")
		}
		return
	}
	if !ref(b, m.networks, e.Pos, obj, "network", "network", e.Network) {
		return
	}
	addrs := m.nodes[node].AddressesOn(e.Network)
	if len(addrs) == 0 {
		b.errf(e.Pos, obj, "add an address on that network to the node", "node %q has no address on network %q", node, e.Network)
	}
	if e.Address.IsValid() && !slices.ContainsFunc(addrs, func(a *Address) bool { return a.IP == e.Address }) {
		b.errf(e.Pos, obj, "use one of the node's addresses on the network", "%s is not an address of %q on %q", e.Address, node, e.Network)
	}
}

func (b *builder) validateTunnel(t *Tunnel) {
	m := b.m
	obj := fmt.Sprintf("tunnel %q", t.Name)
	ref(b, m.services, t.Pos, obj, "service", "service", t.Service)
	if t.Entrance == nil {
		b.errf(t.Pos, obj, "add entrance: {node: NAME, network: NAME, port: N}", "missing entrance")
	} else {
		b.validateEndpoint(t.Entrance, obj+": entrance", "")
	}
	if len(t.Exits) == 0 {
		b.errf(t.Pos, obj, "add exits: [{node: NAME, network: NAME, port: N}]", "no exits")
	}
	for i, e := range t.Exits {
		b.validateEndpoint(e, fmt.Sprintf("%s: exit %d", obj, i), "")
		if e.Loopback {
			b.errf(e.Pos, fmt.Sprintf("%s: exit %d", obj, i), "an exit must be reachable from the entrance", "a tunnel exit cannot be loopback-only")
		}
	}
	if t.KeyExchange != "" && !oneOf(t.KeyExchange, "hybrid", "x25519") {
		b.errf(t.Pos, obj, `use "hybrid" (default) or "x25519"`, "unknown key_exchange %q", t.KeyExchange)
	}
	switch {
	case t.Auth == nil:
		b.errf(t.Pos, obj, "add auth: {psk: /etc/offedge/psk/NAME.psk} or auth: {pki: true}", "missing auth")
	case (t.Auth.PSK != "") == t.Auth.PKI:
		b.errf(t.Auth.Pos, obj+": auth", "set psk: FILE or pki: true", "auth needs exactly one of psk or pki")
	}
	b.validateAllow(t.Allow, t.Pos, obj)
}

// validateCompress checks a compress block's level and types.
func (b *builder) validateCompress(c *Compress, obj string) {
	if c == nil {
		return
	}
	if c.Level != 0 && (c.Level < 1 || c.Level > 9) {
		b.errf(c.Pos, obj+": compress", "gzip levels are 1 (fastest) to 9 (smallest)", "level %d", c.Level)
	}
	for _, t := range c.Types {
		if !validMediaRange(t) {
			b.errf(c.Pos, obj+": compress", "use a media type (text/html), a family (text/*) or *", "type %q", t)
		}
	}
}

// validMediaRange reports whether t is "*", "type/*" or "type/subtype".
func validMediaRange(t string) bool {
	if t == "*" {
		return true
	}
	typ, sub, ok := strings.Cut(t, "/")
	if !ok || typ == "" || sub == "" || typ == "*" || strings.ContainsAny(sub, "/") {
		return false
	}
	return httpguts.ValidHeaderFieldName(typ) && (sub == "*" || (httpguts.ValidHeaderFieldName(sub) && !strings.Contains(sub, "*")))
}

// validateHeaderValues compiles the added header values of a site and its
// routes as the edge does: nginx variables of the site's scope.
func (b *builder) validateHeaderValues(s *Site, scope *vars.Scope, obj string) {
	check := func(m map[string]string, pos Pos, obj string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if _, err := vars.Parse(m[k], scope); err != nil {
				b.errf(pos, obj, "docs/routing.md#variables", "header %q: %v", k, err)
			}
		}
	}
	check(s.Headers, s.Pos, obj)
	check(s.HeadersAlways, s.Pos, obj)
	for i, r := range s.Routes {
		robj := fmt.Sprintf("%s: route %d (%s)", obj, i, r.Path)
		check(r.Headers, r.Pos, robj)
		check(r.HeadersAlways, r.Pos, robj)
	}
}

// LogFormats are the access log formats a site may name.
var LogFormats = []string{"combined", "combined_upstream", "combined_proxy", "json"}

// validateHeaders checks added response fields: names are tokens, values
// have no control characters, and no name is in both lists.
func (b *builder) validateHeaders(headers, always map[string]string, pos Pos, obj string) {
	for _, m := range []map[string]string{headers, always} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !httpguts.ValidHeaderFieldName(k) {
				b.errf(pos, obj, "a header name is letters, digits and !#$%&'*+-.^_`|~", "header %q: not a valid header name", k)
			}
			if !httpguts.ValidHeaderFieldValue(m[k]) {
				b.errf(pos, obj, "", "header %q: the value holds a control character", k)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(always)) {
		if _, ok := headers[k]; ok {
			b.errf(pos, obj, "keep it in one of headers and headers_always", "header %q is in both headers and headers_always", k)
		}
	}
}

// validateAllow checks the syntax of allow entries; whether the names they
// refer to exist is a check rule (OE2xx), since a policy may name a node that
// is being decommissioned.
func (b *builder) validateAllow(entries []string, pos Pos, obj string) {
	for _, e := range entries {
		if _, err := ParseAllow(e); err != nil {
			b.errf(pos, obj, "use any, NODE, provider:NAME, cluster:NAME, network:NAME, policy:NAME or a CIDR", "allow entry %q: %v", e, err)
		}
	}
}

// MonitoringNodes returns the nodes the inventory says watch the estate
// (monitoring:), in order; nil when it names none.
func (m *Model) MonitoringNodes() []*Node {
	var out []*Node
	for _, mo := range m.Monitoring {
		if n := m.Node(mo.Node); n != nil {
			out = append(out, n)
		}
	}
	return out
}
