package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/offedge/offedge/firewall"
	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// NetnsPrefix names the namespaces of `offedge lab --netns`: one per node
// (PREFIX + node name) and one holding the networks' bridges (PREFIX +
// "switch"). A lab started after another was killed removes what that one
// left behind.
const NetnsPrefix = "oelab-"

// NetnsLab is the inventory in network namespaces: every server and guest
// in its own namespace holding exactly its inventory addresses (IPv6
// included), every network a bridge in a switch namespace with a veth link
// to each node on it, default routes as the gateways say, forwarding on
// the gateways, and each node's firewall applied by the same code as
// `offedge run --firewall` (firewall.Conn.Apply), NAT and DNAT included.
// Nothing links the namespaces to the machine's own.
//
// Each declared service and each listener of a node's plan is answered by
// a stand-in that greets with "NODE NAME from PEER" and closes, so a test
// (or an operator with `ip netns exec`) sees who the server saw.
type NetnsLab struct {
	m       *inventory.Model
	prefix  string
	sw      *netns.NS
	nodes   map[string]*netns.NS
	links   map[string][]string // node -> its interfaces
	plans   map[string]*plan.Plan
	lns     []net.Listener
	wg      sync.WaitGroup
	Answers []string // "node service addr" of every stand-in, for the tour
}

// NetnsOptions adjust a namespace lab. The zero value is `offedge lab --netns`.
type NetnsOptions struct {
	// Prefix replaces NetnsPrefix (tests use their own, so that labs in
	// parallel do not remove each other).
	Prefix string
}

func (o NetnsOptions) prefix() string {
	if o.Prefix == "" {
		return NetnsPrefix
	}
	return o.Prefix
}

// CleanStale removes namespaces a previous lab with this prefix left (it
// was killed before it could).
func CleanStale(prefix string) error {
	names, err := netns.List(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, (&netns.NS{Name: n}).Close())
	}
	return errors.Join(errs...)
}

// StartNetns builds the namespace lab. It needs root.
func StartNetns(ctx context.Context, m *inventory.Model, opts NetnsOptions) (l *NetnsLab, err error) {
	if err := netns.Available(); err != nil {
		return nil, fmt.Errorf("lab --netns: %w", err)
	}
	prefix := opts.prefix()
	if err := CleanStale(prefix); err != nil {
		return nil, fmt.Errorf("lab --netns: removing a previous lab's namespaces: %w", err)
	}
	l = &NetnsLab{m: m, prefix: prefix, nodes: map[string]*netns.NS{}, links: map[string][]string{}, plans: map[string]*plan.Plan{}}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	for _, n := range m.Nodes {
		p, err := plan.Compile(m, n.Name, plan.Options{})
		if err != nil {
			return nil, err
		}
		l.plans[n.Name] = p
	}
	if l.sw, err = netns.Create(prefix + "switch"); err != nil {
		return nil, err
	}
	for i, nw := range m.Networks {
		br := fmt.Sprintf("br%d", i)
		if _, err := l.sw.Run("ip", "link", "add", br, "type", "bridge"); err != nil {
			return nil, err
		}
		if _, err := l.sw.Run("ip", "link", "set", br, "up"); err != nil {
			return nil, err
		}
		_ = nw
	}
	for i, n := range m.Nodes {
		ns, err := netns.Create(prefix + n.Name)
		if err != nil {
			return nil, err
		}
		l.nodes[n.Name] = ns
		if err := l.wire(i, n, ns); err != nil {
			return nil, fmt.Errorf("lab --netns: node %s: %w", n.Name, err)
		}
	}
	for _, n := range m.Nodes {
		if err := l.route(n); err != nil {
			return nil, fmt.Errorf("lab --netns: node %s: %w", n.Name, err)
		}
	}
	for _, n := range m.Nodes {
		if err := l.applyFirewall(n.Name); err != nil {
			return nil, err
		}
	}
	for _, n := range m.Nodes {
		if err := l.standIns(n); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *NetnsLab) netIndex(network string) int {
	return slices.IndexFunc(l.m.Networks, func(n *inventory.Network) bool { return n.Name == network })
}

// ifname is the node's interface on a network: eth + the network's index.
func ifname(netIdx int) string { return fmt.Sprintf("eth%d", netIdx) }

// addrBits is the prefix length an address gets: its network's declared
// prefix when one contains it (the subnet is on-link), else a host route.
func (l *NetnsLab) addrBits(a *inventory.Address) int {
	nw := l.m.Network(a.Network)
	if nw != nil {
		for _, p := range nw.Prefixes {
			if p.Contains(a.IP) {
				return p.Bits()
			}
		}
	}
	return a.IP.BitLen()
}

// wire links the node to the bridge of each of its networks and gives it
// exactly its inventory addresses there.
func (l *NetnsLab) wire(nodeIdx int, n *inventory.Node, ns *netns.NS) error {
	done := map[string]bool{}
	for _, a := range n.Addresses {
		ni := l.netIndex(a.Network)
		dev := ifname(ni)
		if !done[a.Network] {
			done[a.Network] = true
			peer := fmt.Sprintf("v%d-%d", nodeIdx, ni)
			// Both ends are created directly in their namespaces: no
			// interface ever appears in the machine's own.
			if _, err := l.sw.Run("ip", "link", "add", peer, "type", "veth", "peer", "name", dev, "netns", ns.Name); err != nil {
				return err
			}
			if _, err := l.sw.Run("ip", "link", "set", peer, "master", fmt.Sprintf("br%d", ni), "up"); err != nil {
				return err
			}
			if _, err := ns.Run("ip", "link", "set", dev, "up"); err != nil {
				return err
			}
			l.links[n.Name] = append(l.links[n.Name], dev)
		}
		args := []string{"addr", "add", fmt.Sprintf("%s/%d", a.IP, l.addrBits(a)), "dev", dev}
		if a.IP.Is6() {
			args = append([]string{"-6"}, append(args, "nodad")...)
		}
		if _, err := ns.Run("ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// route gives the node its routes: the members of a network without a
// declared prefix on-link, the internet on-link from a public address, or
// a default route through the address's gateway; and forwarding when the
// node is someone's gateway or DNATs a kernel forward.
func (l *NetnsLab) route(n *inventory.Node) error {
	m := l.m
	ns := l.nodes[n.Name]
	run := func(fam int, args ...string) error {
		if fam == 6 {
			args = append([]string{"-6"}, args...)
		}
		_, err := ns.Run("ip", args...)
		return err
	}
	defaults := map[int]bool{}
	for _, a := range n.Addresses {
		fam := famOf(a.IP)
		dev := ifname(l.netIndex(a.Network))
		if m.IsPublic(a.Network) && !defaults[fam] {
			defaults[fam] = true
			if err := run(fam, "route", "replace", "default", "dev", dev); err != nil {
				return err
			}
		}
		if !m.IsPublic(a.Network) && l.addrBits(a) == a.IP.BitLen() {
			for _, o := range m.NodesOn(a.Network) {
				for _, oa := range o.AddressesOn(a.Network) {
					if o != n && famOf(oa.IP) == fam {
						if err := run(fam, "route", "replace", oa.IP.String(), "dev", dev); err != nil {
							return err
						}
					}
				}
			}
		}
	}
	for _, a := range n.Addresses {
		fam := famOf(a.IP)
		if defaults[fam] || m.IsPublic(a.Network) {
			continue
		}
		gw := m.GatewayOf(a)
		if gw == nil || gw == n {
			continue
		}
		for _, ga := range gw.AddressesOn(a.Network) {
			if famOf(ga.IP) == fam {
				defaults[fam] = true
				if err := run(fam, "route", "replace", "default", "via", ga.IP.String(), "dev", ifname(l.netIndex(a.Network))); err != nil {
					return err
				}
				break
			}
		}
	}
	forward := false
	for _, o := range m.Nodes {
		for _, a := range o.Addresses {
			forward = forward || (o != n && m.GatewayOf(a) == n)
		}
	}
	for _, f := range m.Forwards {
		forward = forward || (f.Node == n.Name && f.IsKernel())
	}
	if forward {
		for _, k := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"} {
			if _, err := ns.Run("sysctl", "-qw", k); err != nil {
				return err
			}
		}
	}
	return nil
}

func famOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// applyFirewall installs the node's planned firewall in its namespace.
func (l *NetnsLab) applyFirewall(node string) error {
	p := l.plans[node]
	if p.Firewall == nil {
		return nil
	}
	c, err := firewall.Open(l.nodes[node].Path)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Apply(p.Firewall); err != nil {
		return fmt.Errorf("lab --netns: firewall of %s: %w", node, err)
	}
	return nil
}

// standIns answers every declared service and every listener of the
// node's plan, inside its namespace.
func (l *NetnsLab) standIns(n *inventory.Node) error {
	type ep struct {
		name string
		addr netip.AddrPort
	}
	var eps []ep
	for _, s := range l.m.Services {
		if s.Node != n.Name || s.Loopback {
			continue
		}
		for _, a := range n.Addresses {
			if len(s.Bind) == 0 || slices.Contains(s.Bind, a.Network) {
				eps = append(eps, ep{s.Name, netip.AddrPortFrom(a.IP, uint16(s.Port))})
			}
		}
	}
	for _, li := range l.plans[n.Name].Listeners {
		if li.Network != plan.LoopbackNetwork {
			eps = append(eps, ep{li.Name, li.Addr})
		}
	}
	seen := map[netip.AddrPort]bool{}
	for _, e := range eps {
		if seen[e.addr] {
			continue
		}
		seen[e.addr] = true
		var ln net.Listener
		err := l.nodes[n.Name].Do(func() error {
			var err error
			ln, err = net.Listen("tcp", e.addr.String())
			return err
		})
		if err != nil {
			return fmt.Errorf("lab --netns: %s %s on %s: %w", n.Name, e.name, e.addr, err)
		}
		l.lns = append(l.lns, ln)
		l.Answers = append(l.Answers, fmt.Sprintf("%s %s %s", n.Name, e.name, e.addr))
		greeting := n.Name + " " + e.name
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s from %s\n", greeting, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
				c.Close()
			}
		}()
	}
	return nil
}

// Namespace returns the namespace of a node (nil if unknown).
func (l *NetnsLab) Namespace(node string) *netns.NS { return l.nodes[node] }

// Dial connects from node's namespace to addr.
func (l *NetnsLab) Dial(ctx context.Context, node string, addr netip.AddrPort) (net.Conn, error) {
	ns := l.nodes[node]
	if ns == nil {
		return nil, fmt.Errorf("unknown node %q", node)
	}
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
		return err
	})
	return c, err
}

// Greeting connects from node to addr and returns the stand-in's greeting
// ("off2 redis from 146.59.148.140"), or an error when the connection is
// refused, dropped (no answer within timeout) or unroutable.
func (l *NetnsLab) Greeting(node string, addr netip.AddrPort, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := l.Dial(ctx, node, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(io.LimitReader(c, 512)).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Down takes a node's links down (its namespace stays); Up brings them back.
func (l *NetnsLab) Down(node string) error { return l.setLinks(node, "down") }

// Up brings a node's links back up.
func (l *NetnsLab) Up(node string) error {
	if err := l.setLinks(node, "up"); err != nil {
		return err
	}
	return l.route(l.m.Node(node)) // routes went with the links
}

func (l *NetnsLab) setLinks(node, state string) error {
	ns := l.nodes[node]
	if ns == nil {
		return fmt.Errorf("unknown node %q", node)
	}
	for _, dev := range l.links[node] {
		if _, err := ns.Run("ip", "link", "set", dev, state); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the stand-ins and removes every namespace of the lab.
func (l *NetnsLab) Close() error {
	for _, ln := range l.lns {
		ln.Close()
	}
	l.wg.Wait()
	var errs []error
	for _, ns := range l.nodes {
		errs = append(errs, ns.Close())
	}
	if l.sw != nil {
		errs = append(errs, l.sw.Close())
	}
	return errors.Join(errs...)
}
