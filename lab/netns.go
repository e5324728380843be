package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/offedge/offedge/firewall"
	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/observe"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/reach"
	"github.com/offedge/offedge/runtime"
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
// Each node runs as one process inside its namespace (netns_proc.go):
// `offedge __lab-node`, which starts the node's applications (the loopback
// lab's engines and stand-ins) and then `offedge run --firewall` for the
// node, with its state under the lab's directory. A visitor namespace on
// the internet network (VisitorV4, VisitorV6) stands for the public.
//
// With NetnsOptions.Greeters the nodes run no process: each declared
// service and each listener of a node's plan is answered by a stand-in
// that greets with "NODE NAME from PEER" and closes, so a test (or an
// operator with `ip netns exec`) sees who the server saw through the
// kernel's routes, NAT and firewall alone.
type NetnsLab struct {
	m       *inventory.Model
	opts    NetnsOptions
	prefix  string
	sw      *netns.NS
	visitor *netns.NS
	nodes   map[string]*netns.NS
	links   map[string][]string // node -> its interfaces
	plans   map[string]*plan.Plan
	lns     []net.Listener
	wg      sync.WaitGroup
	Answers []string // "node service addr" of every stand-in, for the tour

	dir     string
	own     bool
	ca      *labCA
	procs   map[string]*nodeProc
	elapsed time.Duration
	downs   sync.Map // node -> what took it down ("links", "process")
	closed  bool
	runDir  string // the notify sockets
	pgBase  string // PostgreSQL's data directories
}

// The visitor's addresses: documentation ranges no inventory node holds.
var (
	VisitorV4 = netip.MustParseAddr("203.0.113.254")
	VisitorV6 = netip.MustParseAddr("2001:db8:fe::1")
)

// NetnsOptions adjust a namespace lab. The zero value is `offedge lab --netns`.
type NetnsOptions struct {
	// Prefix replaces NetnsPrefix (tests use their own, so that labs in
	// parallel do not remove each other).
	Prefix string
	// Greeters runs greeting stand-ins instead of the nodes' processes.
	Greeters bool
	// Dir holds the lab's files (certificates, secrets, image trees, the
	// nodes' state). Empty: a temporary directory removed by Close.
	Dir string
	// Inventory is the path the node processes load (offedge run
	// --inventory); empty is the embedded Open Food Facts inventory. It
	// must hold the model StartNetns is given.
	Inventory string
	// Binary is the offedge executable the node processes run; empty is
	// this process's own executable.
	Binary string
	// Log receives every line the node processes write, prefixed by the
	// node's name (nil: discarded).
	Log io.Writer
	// NoEngines uses stand-ins even where real engines are installed.
	NoEngines bool
	// ProbeInterval is each node's offedge run --probe-interval (1s when
	// zero).
	ProbeInterval time.Duration
}

func (o NetnsOptions) prefix() string {
	if o.Prefix == "" {
		return NetnsPrefix
	}
	return o.Prefix
}

// validPrefix accepts lower-case letters and digits ending with '-': a
// prefix CleanStale may remove every namespace of, and never all of them.
func validPrefix(p string) bool {
	if len(p) < 2 || !strings.HasSuffix(p, "-") {
		return false
	}
	for _, c := range p[:len(p)-1] {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
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

// StartNetns builds the namespace lab and starts its nodes. It needs root.
// On any error everything it made is removed again.
func StartNetns(ctx context.Context, m *inventory.Model, opts NetnsOptions) (l *NetnsLab, err error) {
	start := time.Now()
	if err := netns.Available(); err != nil {
		return nil, fmt.Errorf("lab --netns: %w", err)
	}
	prefix := opts.prefix()
	if !validPrefix(prefix) {
		return nil, fmt.Errorf("lab --netns: namespace prefix %q: use lower-case letters and digits ending with '-', such as %q (every namespace starting with it is removed at start)", prefix, NetnsPrefix)
	}
	if err := CleanStale(prefix); err != nil {
		return nil, fmt.Errorf("lab --netns: removing a previous lab's namespaces: %w", err)
	}
	made := &NetnsLab{m: m, opts: opts, prefix: prefix, nodes: map[string]*netns.NS{}, links: map[string][]string{}, plans: map[string]*plan.Plan{}, procs: map[string]*nodeProc{}}
	l = made
	defer func() {
		// "return nil, err" has set l to nil already: close what was made.
		if err != nil {
			made.Close()
			l = nil
		}
	}()
	if !opts.Greeters {
		if err := l.makeDir(); err != nil {
			return nil, err
		}
	}
	// runtime.Load, checking once for every node: what offedge run serves.
	checked, err := runtime.Check(m)
	if err != nil {
		return nil, fmt.Errorf("lab --netns: %w", err)
	}
	for _, n := range m.Nodes {
		po := plan.Options{}
		if !opts.Greeters {
			po.Root = NodeDir(l.dir, n.Name)
		}
		p, err := checked.Plan(n.Name, po)
		if err != nil {
			return nil, err
		}
		l.plans[n.Name] = p
	}
	if l.sw, err = netns.Create(prefix + "switch"); err != nil {
		return nil, err
	}
	for i := range m.Networks {
		br := fmt.Sprintf("br%d", i)
		if _, err := l.sw.Run("ip", "link", "add", br, "type", "bridge"); err != nil {
			return nil, err
		}
		if _, err := l.sw.Run("ip", "link", "set", br, "up"); err != nil {
			return nil, err
		}
	}
	for i, n := range m.Nodes {
		ns, err := netns.Create(prefix + n.Name)
		if err != nil {
			return nil, err
		}
		l.nodes[n.Name] = ns
		if err := keepAddrsOnDown(ns); err != nil {
			return nil, err
		}
		if err := l.wire(i, n, ns); err != nil {
			return nil, fmt.Errorf("lab --netns: node %s: %w", n.Name, err)
		}
	}
	for _, n := range m.Nodes {
		if err := l.route(n); err != nil {
			return nil, fmt.Errorf("lab --netns: node %s: %w", n.Name, err)
		}
	}
	if err := l.wireVisitor(); err != nil {
		return nil, fmt.Errorf("lab --netns: visitor: %w", err)
	}
	if opts.Greeters {
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
		l.elapsed = time.Since(start)
		return l, nil
	}
	if err := l.serveInternet(); err != nil {
		return nil, fmt.Errorf("lab --netns: visitor: %w", err)
	}
	if err := l.startNodes(ctx); err != nil {
		return nil, err
	}
	l.elapsed = time.Since(start)
	return l, nil
}

// makeDir makes the lab's directory and its lab CA.
func (l *NetnsLab) makeDir() error {
	l.dir = l.opts.Dir
	if l.dir == "" {
		d, err := os.MkdirTemp("", "offedge-lab-netns-")
		if err != nil {
			return err
		}
		l.dir, l.own = d, true
	} else if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	// The node processes run as root and read only their own files, but
	// PostgreSQL runs as its own user: the tree stays traversable.
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return err
	}
	ca, err := newLabCA(l.dir)
	if err != nil {
		return err
	}
	l.ca = ca
	return nil
}

// startNodes writes the files the plans read (as the loopback lab does)
// and starts one process per node, then waits until every node is ready.
func (l *NetnsLab) startNodes(ctx context.Context) error {
	// started is the zfs stand-ins' snapshot grid (storage.go).
	files := &Lab{m: l.m, dir: l.dir, ca: l.ca, nodes: map[string]*labNode{}, secrets: map[string][]byte{}, started: time.Now()}
	for name, p := range l.plans {
		files.nodes[name] = &labNode{node: l.m.Node(name), plan: p}
	}
	if err := files.prepareFiles(); err != nil {
		return fmt.Errorf("lab --netns: preparing files: %w", err)
	}
	bin := l.opts.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lab --netns: %w", err)
		}
		bin = exe
	}
	// The notify sockets live in a short private directory: a socket's
	// path is limited to 107 bytes, and the lab's directory may be deep.
	runDir, err := os.MkdirTemp("", "oelab-run-")
	if err != nil {
		return err
	}
	l.runDir = runDir
	logOut := l.opts.Log
	if logOut == nil {
		logOut = io.Discard
	}
	logOut = &lineWriter{w: logOut}
	interval := l.opts.ProbeInterval
	if interval <= 0 {
		interval = time.Second
	}
	// PostgreSQL runs as its own user, which may not traverse the lab's
	// directory: its data lives in a directory of its own, kept across a
	// node's restarts (initdb runs once) and removed by Close.
	if l.pgBase, err = os.MkdirTemp("", "offedge-lab-pg-"); err != nil {
		return err
	}
	if err := os.Chmod(l.pgBase, 0o755); err != nil {
		return err
	}
	probes := observe.Generate(l.m)
	for _, n := range l.m.Nodes {
		p := l.plans[n.Name]
		env := []string{"SSL_CERT_FILE=" + l.ca.pemPath}
		// The machine has no ZFS: a node holding replicas finds the lab's
		// zfs stand-in (seeded fresh) first on its PATH, and offedge run's
		// storage watch measures it as it would the real zfs.
		zs, err := files.storageStandin(files.nodes[n.Name])
		if err != nil {
			return fmt.Errorf("lab --netns: node %s: zfs stand-in: %w", n.Name, err)
		}
		if zs != nil {
			env = append(env, "PATH="+zs.Dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
		serve := len(p.Listeners) > 0 || p.Firewall != nil || len(observe.For(probes, n.Name)) > 0
		apps := slices.ContainsFunc(l.m.Services, func(s *inventory.Service) bool { return s.Node == n.Name })
		if !serve && !apps {
			continue
		}
		argv := []string{bin, "__lab-node", "--node", n.Name, "--dir", l.dir, "--pg-dir", l.pgBase}
		if l.opts.Inventory != "" {
			argv = append(argv, "--inventory", l.opts.Inventory)
		}
		if l.opts.NoEngines {
			argv = append(argv, "--no-engines")
		}
		if serve {
			argv = append(argv, "--serve", "--probe-interval", interval.String())
			if p.Firewall != nil {
				argv = append(argv, "--firewall")
			}
		}
		proc, err := newNodeProc(n.Name, l.nodes[n.Name], argv, env, runDir, logOut)
		if err != nil {
			return err
		}
		l.procs[n.Name] = proc
		if err := proc.Start(); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(l.procs) {
		if err := l.procs[name].WaitReady(ctx); err != nil {
			return fmt.Errorf("lab --netns: %w", err)
		}
	}
	return nil
}

// lineWriter serialises the node processes' lines onto one writer.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// InternetPort is where the visitor answers "internet" on VisitorV4 and
// VisitorV6: a node's egress is measured by reaching it.
const InternetPort = 80

// serveInternet answers on the visitor's addresses, in its namespace.
func (l *NetnsLab) serveInternet() error {
	for _, a := range []netip.Addr{VisitorV4, VisitorV6} {
		var ln net.Listener
		err := l.visitor.Do(func() error {
			var err error
			ln, err = net.Listen("tcp", netip.AddrPortFrom(a, InternetPort).String())
			return err
		})
		if err != nil {
			return err
		}
		l.greet(ln, "internet")
	}
	return nil
}

// Egress says whether node reaches the internet over IPv4 (fam 4) or IPv6
// (fam 6) now: a connection to the visitor, answered.
func (l *NetnsLab) Egress(ctx context.Context, node string, fam int) error {
	to := VisitorV4
	if fam == 6 {
		to = VisitorV6
	}
	got, err := l.greeting(ctx, node, netip.AddrPortFrom(to, InternetPort))
	if err == nil && !strings.HasPrefix(got, "internet from ") {
		err = fmt.Errorf("the internet answered %q", got)
	}
	return err
}

// Admin fetches path from the admin endpoint of node's offedge run
// (NetnsAdminAddr inside its namespace).
func (l *NetnsLab) Admin(ctx context.Context, node, path string) ([]byte, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return l.Dial(ctx, node, netip.MustParseAddrPort(NetnsAdminAddr))
		},
		DisableKeepAlives: true,
	}, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+NetnsAdminAddr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s %s: %s", node, path, resp.Status)
	}
	return body, err
}

// wireVisitor links a namespace standing for the public to every public
// network, with VisitorV4 and VisitorV6 on-link there.
func (l *NetnsLab) wireVisitor() error {
	vis, err := netns.Create(l.prefix + "visitor")
	if err != nil {
		return err
	}
	l.visitor = vis
	for ni, nw := range l.m.Networks {
		if !l.m.IsPublic(nw.Name) {
			continue
		}
		dev, peer := ifname(ni), fmt.Sprintf("vv-%d", ni)
		if _, err := l.sw.Run("ip", "link", "add", peer, "type", "veth", "peer", "name", dev, "netns", vis.Name); err != nil {
			return err
		}
		if _, err := l.sw.Run("ip", "link", "set", peer, "master", fmt.Sprintf("br%d", ni), "up"); err != nil {
			return err
		}
		for _, args := range [][]string{
			{"link", "set", dev, "up"},
			{"addr", "add", VisitorV4.String() + "/32", "dev", dev},
			{"-6", "addr", "add", VisitorV6.String() + "/128", "dev", dev, "nodad"},
			{"route", "replace", "default", "dev", dev},
			{"-6", "route", "replace", "default", "dev", dev},
		} {
			if _, err := vis.Run("ip", args...); err != nil {
				return err
			}
		}
		l.links["visitor"] = append(l.links["visitor"], dev)
		break // one public network is the internet
	}
	return nil
}

// keepAddrsOnDown keeps a namespace's IPv6 addresses on a link that goes
// down (Linux flushes them by default; IPv4 addresses stay), so that a
// drill's link down and up leaves the node as the inventory says.
func keepAddrsOnDown(ns *netns.NS) error {
	for _, k := range []string{"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1"} {
		if _, err := ns.Run("sysctl", "-qw", k); err != nil {
			return err
		}
	}
	return nil
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
		l.Answers = append(l.Answers, fmt.Sprintf("%s %s %s", n.Name, e.name, e.addr))
		l.greet(ln, n.Name+" "+e.name)
	}
	return nil
}

// greet answers every connection to ln with "GREETING from PEER" and closes.
func (l *NetnsLab) greet(ln net.Listener, greeting string) {
	l.lns = append(l.lns, ln)
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

// Namespace returns the namespace of a node (nil if unknown); "" is the
// visitor's.
func (l *NetnsLab) Namespace(node string) *netns.NS {
	if node == "" || node == observe.Internet {
		return l.visitor
	}
	return l.nodes[node]
}

// dialTimeout bounds a connection attempt from a namespace: an address the
// firewall drops never answers, and an accepted one answers at once.
const dialTimeout = 1500 * time.Millisecond

// Dial connects from node's namespace to addr ("" is the visitor on the
// internet), within dialTimeout.
func (l *NetnsLab) Dial(ctx context.Context, node string, addr netip.AddrPort) (net.Conn, error) {
	ns := l.Namespace(node)
	if ns == nil {
		return nil, fmt.Errorf("unknown node %q", node)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
		return err
	})
	return c, err
}

// DialFrom connects from node (or the visitor, "") to target, an address
// on network: the kernel picks the source address and the route, as on
// the real machine.
func (l *NetnsLab) DialFrom(ctx context.Context, from, network string, target netip.AddrPort) (net.Conn, error) {
	return l.Dial(ctx, from, target)
}

// DialService connects from a node to a service by the first open path
// offedge why shows, as Lab.DialService does.
func (l *NetnsLab) DialService(ctx context.Context, from, service string) (net.Conn, reach.Path, error) {
	return dialService(ctx, l.m, reach.New(l.m), from, service, l.DialFrom)
}

// SiteAddr is the address of a node's public HTTP listener on port (IPv4
// first), the address a DNS name points to.
func (l *NetnsLab) SiteAddr(node string, port int) (netip.AddrPort, error) {
	return siteAddr(l.plans[node], node, port, func(li plan.Listener) (netip.AddrPort, error) { return li.Addr, nil })
}

// Prefix is the prefix of the lab's namespace names.
func (l *NetnsLab) Prefix() string { return l.prefix }

// Visitor is the internet client's IPv4 address.
func (l *NetnsLab) Visitor() netip.Addr { return VisitorV4 }

// Model is the inventory the lab runs.
func (l *NetnsLab) Model() *inventory.Model { return l.m }

// Plan is the plan a node runs.
func (l *NetnsLab) Plan(node string) *plan.Plan { return l.plans[node] }

// Dir is the lab's directory ("" for a greeters lab).
func (l *NetnsLab) Dir() string { return l.dir }

// CAFile is the PEM file of the lab CA that signed every site certificate.
func (l *NetnsLab) CAFile() string { return l.ca.pemPath }

// StartupTime is how long StartNetns took, every node ready.
func (l *NetnsLab) StartupTime() time.Duration { return l.elapsed }

// WaitReady waits until every node's applications accept connections
// (PostgreSQL initialises in the background).
func (l *NetnsLab) WaitReady(ctx context.Context) error {
	for _, name := range sortedKeys(l.procs) {
		p := l.procs[name]
		if !p.Running() {
			continue
		}
		if err := p.WaitApps(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops a node's process (its runtime and applications); its links,
// routes and firewall stay, as on a machine whose services crashed.
func (l *NetnsLab) Stop(node string) error {
	p := l.procs[node]
	if p == nil {
		return fmt.Errorf("node %q runs no process in the lab", node)
	}
	l.downs.Store(node, "process")
	return p.Stop(10 * time.Second)
}

// Start starts a stopped node's process again and waits until it is ready.
func (l *NetnsLab) Start(ctx context.Context, node string) error {
	p := l.procs[node]
	if p == nil {
		return fmt.Errorf("node %q runs no process in the lab", node)
	}
	if err := p.Start(); err != nil {
		return err
	}
	l.downs.Delete(node)
	return p.WaitReady(ctx)
}

// Pids are the running node processes' ids.
func (l *NetnsLab) Pids() map[string]int {
	out := map[string]int{}
	for name, p := range l.procs {
		if pid := p.Pid(); pid != 0 {
			out[name] = pid
		}
	}
	return out
}

// Greeting connects from node to addr and returns the stand-in's greeting
// ("off2 redis from 146.59.148.140"), or an error when the connection is
// refused, dropped (no answer within timeout) or unroutable.
func (l *NetnsLab) Greeting(node string, addr netip.AddrPort, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.greeting(ctx, node, addr)
}

// greeting reads the first line addr sends to node, within ctx.
func (l *NetnsLab) greeting(ctx context.Context, node string, addr netip.AddrPort) (string, error) {
	c, err := l.Dial(ctx, node, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(dialTimeout)
	}
	c.SetReadDeadline(dl)
	line, err := bufio.NewReader(io.LimitReader(c, 512)).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Down takes a node's links down (its namespace and processes stay); Up
// brings them back.
func (l *NetnsLab) Down(node string) error {
	if err := l.setLinks(node, "down"); err != nil {
		return err
	}
	l.downs.Store(node, "links")
	return nil
}

// Up brings a node's links back up.
func (l *NetnsLab) Up(node string) error {
	if err := l.setLinks(node, "up"); err != nil {
		return err
	}
	l.downs.Delete(node)
	return l.route(l.m.Node(node)) // routes went with the links
}

// IsDown reports whether the lab took node down (links, process or
// gateway).
func (l *NetnsLab) IsDown(node string) bool { return l.isDown(node) }

func (l *NetnsLab) isDown(node string) bool {
	_, down := l.downs.Load(node)
	return down
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

// Close stops the node processes and the stand-ins, removes every
// namespace of the lab (their interfaces and firewalls go with them) and a
// temporary directory.
func (l *NetnsLab) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range l.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, ln := range l.lns {
		ln.Close()
	}
	l.wg.Wait()
	for _, ns := range l.nodes {
		errs = append(errs, ns.Close())
	}
	if l.visitor != nil {
		errs = append(errs, l.visitor.Close())
	}
	if l.sw != nil {
		errs = append(errs, l.sw.Close())
	}
	if l.pgBase != "" {
		errs = append(errs, removePostgresDir(l.pgBase, 15*time.Second))
	}
	if l.runDir != "" {
		errs = append(errs, os.RemoveAll(l.runDir))
	}
	if l.own {
		errs = append(errs, os.RemoveAll(l.dir))
	}
	return errors.Join(errs...)
}

// removePostgresDir removes the PostgreSQL data under dir once no server
// runs on it: a node process killed by the drill leaves its PostgreSQL
// (told by its parent-death signal) finishing a fast shutdown, writing its
// checkpoint while the lab closes. It waits, within timeout, until no
// postmaster.pid is left, and retries a removal that raced a last write.
func removePostgresDir(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	running := func() bool {
		found := false
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == "postmaster.pid" {
				found = true
				return fs.SkipAll
			}
			return nil
		})
		return found
	}
	for running() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for {
		err := os.RemoveAll(dir)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
