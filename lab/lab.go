// Package lab runs a whole inventory on one machine: every node's plan is
// compiled and served by the same runtime as `offedge run`, each node on its
// own loopback addresses (so access lists see who connects), with real
// engines (redis-server, PostgreSQL) where the machine has them and
// labelled stand-ins for every other application. The lab adds nothing to
// the data path but an address map and the applications behind the edge.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/internal/pebble"
	"github.com/offedge/offedge/internal/secretfile"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/lab/standin"
	"github.com/offedge/offedge/observe"
	"github.com/offedge/offedge/pki"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/reach"
	"github.com/offedge/offedge/runtime"
	"github.com/offedge/offedge/storage"
	"github.com/offedge/offedge/storage/zfs/zfstest"
)

// Options configure a lab.
type Options struct {
	// Dir holds the lab's files (certificates, secrets, image trees, logs).
	// Empty: a temporary directory removed by Close.
	Dir    string
	Logger *slog.Logger
	// NoEngines uses stand-ins even where real engines are installed.
	NoEngines bool
	// Instance (0 to MaxInstance) picks disjoint loopback ranges, so that
	// several labs can run on one machine.
	Instance int
	// ProbeInterval and ProbeTimeout schedule the probes every node runs
	// (observe defaults when zero).
	ProbeInterval, ProbeTimeout time.Duration
	// Pebble issues the sites' certificates from a pebble the lab starts,
	// when pebble is installed (acme.go); the lab CA's are served until
	// each is issued, and stay without pebble. offedge lab sets it.
	Pebble bool
}

// Lab is a running lab.
type Lab struct {
	m     *inventory.Model
	reach *reach.Engine
	addrs *Addresses
	dir   string
	own   bool
	ca    *labCA
	// pebble is the lab's ACME CA (Options.Pebble), nil without.
	pebble *pebble.Server
	log    *slog.Logger
	opts   Options
	keys   tunnel.KeyCache // keys derived from the tunnel secrets, shared by every node

	mu      sync.Mutex
	downSet sync.Map // node name -> true; read by dialers without l.mu
	nodes   map[string]*labNode
	secrets map[string][]byte
	pgDirs  map[string]string
	started time.Time
	elapsed time.Duration

	probes   []observe.Probe
	internet *observer
}

type labNode struct {
	node *inventory.Node
	plan *plan.Plan
	rt   *runtime.Node
	apps []*app
	down bool
	// probes are the probes the node runs; obs runs them and serves the
	// node's metrics while the node is up.
	probes []observe.Probe
	obs    *observer
	// zfs is the node's zfs stand-in when it holds replicas (storage.go),
	// watch its storage watch while the node is up.
	zfs   *zfstest.Standin
	watch *storage.Watch
}

// Visitor returns the address standing for "someone on the internet" in
// the lab: a client that is none of the inventory's nodes.
func (l *Lab) Visitor() netip.Addr {
	return netip.AddrFrom4([4]byte{127, 1 + byte(50*l.opts.Instance), 255, 254})
}

// Start builds and starts the lab for m.
func Start(ctx context.Context, m *inventory.Model, opts Options) (*Lab, error) {
	start := time.Now()
	if opts.Instance < 0 || opts.Instance > MaxInstance {
		return nil, fmt.Errorf("lab instance %d: use 0 to %d", opts.Instance, MaxInstance)
	}
	l := &Lab{m: m, reach: reach.New(m), addrs: NewAddresses(m, opts.Instance), log: opts.Logger, opts: opts, nodes: map[string]*labNode{}, secrets: map[string][]byte{}, pgDirs: map[string]string{}, started: start}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.dir = opts.Dir
	if l.dir == "" {
		d, err := os.MkdirTemp("", "offedge-lab-")
		if err != nil {
			return nil, err
		}
		l.dir, l.own = d, true
	} else if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if l.ca, err = newLabCA(l.dir); err != nil {
		l.Close()
		return nil, err
	}
	pebbleUp := l.startPebble(ctx)
	// Every return before the nodes start waits for pebble first, so that
	// Close stops it.
	waitPebble := sync.OnceValue(func() error { return <-pebbleUp })
	var problems []string
	l.probes = observe.Generate(m)
	// runtime.Load, checking once for every node: what run would serve.
	checked, err := runtime.Check(m)
	if err != nil {
		waitPebble()
		l.Close()
		return nil, fmt.Errorf("lab: %w", err)
	}
	for _, n := range m.Nodes {
		p, err := checked.Plan(n.Name, plan.Options{Root: l.nodeDir(n.Name), UserspaceForwards: true})
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		l.nodes[n.Name] = &labNode{node: n, plan: p, probes: observe.For(l.probes, n.Name)}
	}
	if len(problems) > 0 {
		waitPebble()
		l.Close()
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	if err := l.prepareFiles(); err != nil {
		waitPebble()
		l.Close()
		return nil, fmt.Errorf("lab: preparing files: %w", err)
	}
	// Derive the tunnel keys (a slow, memory-hard KDF: 19 MiB each) on
	// every core while the nodes start, one per core at a time so that the
	// memory peak stays at a few of them; a node that needs a key before
	// it is ready waits for it.
	sem := make(chan struct{}, goruntime.GOMAXPROCS(0))
	for name, s := range l.secrets {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			l.keys.Derive(name, bytes.TrimSuffix(s, []byte("\n")))
		}()
	}
	if err := waitPebble(); err != nil {
		l.log.Warn("lab: pebble did not start; sites keep the lab CA's certificates", "err", err)
	} else if l.pebble != nil {
		if err := l.usePebble(); err != nil {
			l.Close()
			return nil, fmt.Errorf("lab: pebble: %w", err)
		}
	}
	for _, n := range m.Nodes {
		if err := l.up(ctx, l.nodes[n.Name]); err != nil {
			l.Close()
			return nil, err
		}
	}
	internet := observe.NewProber(observe.For(l.probes, observe.Internet), l.labDialer(nil), l.proberOptions())
	if l.internet, err = l.startObserver(netip.AddrPortFrom(l.Visitor(), AdminPort), internet, nil, nil); err != nil {
		l.Close()
		return nil, fmt.Errorf("lab: internet prober: %w", err)
	}
	l.elapsed = time.Since(start)
	return l, nil
}

// Model is the inventory the lab runs.
func (l *Lab) Model() *inventory.Model { return l.m }

// Addresses is the lab's address map.
func (l *Lab) Addresses() *Addresses { return l.addrs }

// Dir is the lab's directory.
func (l *Lab) Dir() string { return l.dir }

// CAFile is the PEM file of the lab CA that signed every site certificate.
func (l *Lab) CAFile() string { return l.ca.pemPath }

// StartupTime is how long Start took.
func (l *Lab) StartupTime() time.Duration { return l.elapsed }

func (l *Lab) nodeDir(node string) string { return filepath.Join(l.dir, "nodes", node) }

// prepareFiles writes what the plans read: certificates (from the lab CA),
// tunnel secrets and node certificates, error pages, and image trees for
// static roots. It is driven by the compiled plans, not by the inventory.
func (l *Lab) prepareFiles() error {
	certs := map[[2]string][]string{} // cert,key -> hosts
	var certOrder [][2]string
	roots := map[string]bool{} // static root -> has fallback
	pages := map[string]int{}
	botPages := map[string]bool{}
	var pkiNodes []struct{ node, dir string }
	var err error
	secret := func(name string) []byte {
		if s, ok := l.secrets[name]; ok {
			return s
		}
		b := make([]byte, secretfile.NewLen)
		rand.Read(b)
		s := []byte(hex.EncodeToString(b) + "\n")
		l.secrets[name] = s
		return s
	}
	writeAuth := func(node, name string, a tunnel.Auth) {
		if a.PSKFile != "" && err == nil {
			if e := os.MkdirAll(filepath.Dir(a.PSKFile), 0o700); e != nil {
				err = e
				return
			}
			err = os.WriteFile(a.PSKFile, secret(name), 0o600)
		}
		if a.PKI != nil {
			pkiNodes = append(pkiNodes, struct{ node, dir string }{node, filepath.Dir(a.PKI.CertFile)})
		}
	}
	names := sortedKeys(l.nodes)
	for _, name := range names {
		ln := l.nodes[name]
		for _, a := range ln.plan.Resources.AccessLogs {
			os.MkdirAll(filepath.Dir(a.Path), 0o755)
		}
		for _, c := range ln.plan.Resources.Caches {
			if c.Dir != "" {
				os.MkdirAll(c.Dir, 0o755)
			}
		}
		for _, li := range ln.plan.Listeners {
			switch {
			case li.HTTP != nil:
				for _, s := range li.HTTP.Sites {
					if c, ok := ln.plan.Resources.Certificates[s.Certificate]; ok {
						k := [2]string{c.CertFile, c.KeyFile}
						if _, ok := certs[k]; !ok {
							certOrder = append(certOrder, k)
						}
						certs[k] = appendNew(certs[k], s.Hosts...)
					}
					for code, p := range s.ErrorPages {
						pages[p] = code
					}
					for _, b := range s.Bots {
						if b.PageFile != "" {
							botPages[b.PageFile] = true
						}
					}
					if s.MaintenanceFile != "" {
						os.MkdirAll(filepath.Dir(s.MaintenanceFile), 0o755)
					}
					for _, r := range s.Routes {
						if r.Static != nil {
							roots[r.Static.Root] = roots[r.Static.Root] || r.Static.Fallback != ""
						}
					}
				}
			case li.Entrance != nil:
				writeAuth(name, li.Entrance.Name, ln.plan.Resources.Files(li.Entrance.Auth))
			case li.Exit != nil:
				for _, t := range li.Exit.Tunnels {
					writeAuth(name, t.Name, ln.plan.Resources.Files(t.Auth))
				}
			}
		}
	}
	if err != nil {
		return err
	}
	for i, k := range certOrder {
		if err := l.ca.issue(certs[k], k[0], k[1], int64(i+2)); err != nil {
			return err
		}
	}
	for p := range botPages {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// A stand-in for the stop-crawling page bot rules answer with.
		if err := os.WriteFile(p, []byte("This address is crawling the site. Please download the data export instead: https://world.openfoodfacts.org/data\n"), 0o644); err != nil {
			return err
		}
	}
	for p, code := range pages {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(errorPage(code)), 0o644); err != nil {
			return err
		}
	}
	flavors := []string{"off", "obf", "opf", "opff"}
	for root, hasFallback := range roots {
		keep := func(code string, n int) bool { return true }
		if hasFallback {
			// A node with a fallback has only some images locally: the
			// others come from the origin, as on ovh3 when replication lags.
			keep = func(code string, n int) bool { return !strings.HasSuffix(code, "3") }
		}
		if _, err := standin.WriteImages(root, flavors, keep); err != nil {
			return err
		}
	}
	if len(pkiNodes) > 0 {
		caDir := filepath.Join(l.dir, "pki-ca")
		if _, statErr := os.Stat(filepath.Join(caDir, "ca.pem")); statErr != nil {
			if err := pki.Init(caDir); err != nil {
				return err
			}
		}
		done := map[string]bool{}
		for _, pn := range pkiNodes {
			if done[pn.node] {
				continue
			}
			done[pn.node] = true
			if err := pki.Issue(caDir, pn.node, pn.dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func errorPage(code int) string {
	title, text := "Bad gateway", "Open Food Facts is unreachable right now. We are on it; please retry in a few minutes."
	if code == 503 {
		title, text = "Planned maintenance", "Open Food Facts is under planned maintenance. It will be back shortly."
	}
	return fmt.Sprintf("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n<body><h1>%s</h1><p>%s</p><p><small>offedge lab error page</small></p></body></html>\n", code, title, title, text)
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// up starts a node's applications, then its runtime.
func (l *Lab) up(ctx context.Context, ln *labNode) error {
	for _, s := range l.m.Services {
		if s.Node != ln.node.Name {
			continue
		}
		a, err := l.startApp(ctx, s)
		if err != nil {
			l.down(ln)
			return fmt.Errorf("lab: node %s: service %s: %w", ln.node.Name, s.Name, err)
		}
		ln.apps = append(ln.apps, a)
	}
	if len(ln.plan.Listeners) > 0 {
		rt, err := runtime.Start(ln.plan, runtime.Options{
			Logger: l.log, Map: l.mapFor(ln.node.Name), RootCAs: l.ca.pool, ShutdownTimeout: 5 * time.Second, Keys: &l.keys,
			ACME: l.acmeOptions(),
		})
		if err != nil {
			l.down(ln)
			return fmt.Errorf("lab: node %s: %w", ln.node.Name, err)
		}
		ln.rt = rt
	}
	if err := l.observeNode(ln); err != nil {
		l.down(ln)
		return err
	}
	ln.down = false
	l.downSet.Delete(ln.node.Name)
	return nil
}

func (l *Lab) down(ln *labNode) {
	l.downSet.Store(ln.node.Name, true)
	ln.obs.stop()
	ln.obs = nil
	if ln.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ln.rt.Shutdown(ctx)
		cancel()
		ln.rt = nil
	}
	for _, a := range ln.apps {
		a.stop()
	}
	ln.apps = nil
	ln.down = true
}

// affected returns the node and, for a server, its guests.
func (l *Lab) affected(name string) ([]*labNode, error) {
	n := l.m.Node(name)
	if n == nil {
		return nil, fmt.Errorf("unknown node %q", name)
	}
	out := []*labNode{l.nodes[name]}
	if n.Server != nil {
		for _, g := range l.m.GuestsOf(name) {
			out = append(out, l.nodes[g.Name])
		}
	}
	return out, nil
}

// Down takes a node down (a server with its guests), for failure drills.
func (l *Lab) Down(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ns, err := l.affected(name)
	if err != nil {
		return err
	}
	for _, ln := range ns {
		if !ln.down {
			l.down(ln)
		}
	}
	l.log.Info("node down", "node", name)
	return nil
}

// Up brings a node (and a server's guests) back.
func (l *Lab) Up(ctx context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ns, err := l.affected(name)
	if err != nil {
		return err
	}
	for _, ln := range ns {
		if ln.down {
			if err := l.up(ctx, ln); err != nil {
				return err
			}
		}
	}
	l.log.Info("node up", "node", name)
	return nil
}

// IsDown reports whether a node is down.
func (l *Lab) IsDown(name string) bool { return l.isDown(name) }

// Close stops everything and removes a temporary directory.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wg sync.WaitGroup
	for _, ln := range l.nodes {
		if !ln.down {
			wg.Add(1)
			go func() { defer wg.Done(); l.down(ln) }()
		}
	}
	wg.Wait()
	l.internet.stop()
	if l.pebble != nil {
		l.pebble.Close()
	}
	for _, d := range l.pgDirs {
		os.RemoveAll(d)
	}
	if l.own {
		return os.RemoveAll(l.dir)
	}
	return nil
}

// DialFrom connects from node (by the source address it presents on the
// target's network) to a production address on network, through the lab map.
// from may be "" for a visitor on the internet.
func (l *Lab) DialFrom(ctx context.Context, from, network string, target netip.AddrPort) (net.Conn, error) {
	mapped, err := l.mapFor(from).Dial(network, target)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	src, err := l.sourceFor(from, network, target.Addr())
	if err != nil {
		return nil, err
	}
	d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	return d.DialContext(ctx, "tcp", mapped.String())
}

func (l *Lab) mapFor(node string) nodeMap {
	return nodeMap{a: l.addrs, node: node, isDown: l.isDown}
}

func (l *Lab) isDown(node string) bool {
	_, down := l.downSet.Load(node)
	return down
}

// sourceFor is the lab address node from presents when connecting to
// target on network ("" is a visitor on the internet).
func (l *Lab) sourceFor(from, network string, target netip.Addr) (netip.Addr, error) {
	if from == "" {
		if target.Is4() {
			return l.Visitor(), nil
		}
		return ipv6Loopback, nil
	}
	n := l.m.Node(from)
	if n == nil {
		return netip.Addr{}, fmt.Errorf("unknown node %q", from)
	}
	if l.isDown(from) {
		return netip.Addr{}, fmt.Errorf("%s is down", from)
	}
	if network == plan.LoopbackNetwork {
		return l.addrs.Loopback(from), nil
	}
	fam := 4
	if !target.Is4() {
		fam = 6
	}
	src, _, ok := l.m.SourceFor(n, network, fam)
	if !ok {
		return netip.Addr{}, fmt.Errorf("%s has no route to %s on %s", from, target, network)
	}
	return l.mapFor(from).Source(network, src)
}

// DialService connects from a node to a service the way the inventory says
// it does: the first path offedge why would show (directly, through a
// tunnel entrance, or through a forward). It fails when no path is open.
func (l *Lab) DialService(ctx context.Context, from, service string) (net.Conn, reach.Path, error) {
	return dialService(ctx, l.m, l.reach, from, service, l.DialFrom)
}

// SiteAddr returns the lab socket of a node's HTTP listener on port of the
// public network (the address a DNS name would point to).
func (l *Lab) SiteAddr(node string, port int) (netip.AddrPort, error) {
	ln := l.nodes[node]
	if ln == nil {
		return netip.AddrPort{}, fmt.Errorf("unknown node %q", node)
	}
	return siteAddr(ln.plan, node, port, func(li plan.Listener) (netip.AddrPort, error) { return l.addrs.Map(li.Network, li.Addr) })
}

// Status reports each node's listeners and applications.
func (l *Lab) Status() []NodeStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []NodeStatus
	for _, n := range l.m.Nodes {
		ln := l.nodes[n.Name]
		st := NodeStatus{Node: n.Name, Kind: n.Kind, Down: ln.down}
		if n.Host != nil {
			st.Host = n.Host.Name
		}
		if ln.rt != nil {
			st.Runtime = ln.rt.Status()
		}
		for _, a := range ln.apps {
			st.Apps = append(st.Apps, a.status())
		}
		if ln.obs != nil {
			st.Probes = ln.obs.prober.Results()
		}
		out = append(out, st)
	}
	return out
}

// NodeStatus is one node on the status page.
type NodeStatus struct {
	Node    string         `json:"node"`
	Kind    string         `json:"kind"`
	Host    string         `json:"host,omitempty"`
	Down    bool           `json:"down"`
	Runtime runtime.Status `json:"runtime"`
	Apps    []AppStatus    `json:"apps"`
	// Probes are the latest results of the probes the node runs.
	Probes []observe.Result `json:"probes,omitempty"`
}
