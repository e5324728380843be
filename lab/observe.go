package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/observe"
	"github.com/offedge/offedge/runtime"
	"github.com/offedge/offedge/storage"
)

// AdminPort is the port of every lab node's metrics endpoint, on the node's
// own loopback address (its 127.0.0.1), and of the internet-side prober's,
// on the visitor's address.
const AdminPort = 9901

// observer is what watches one vantage point: its probes, run on a
// schedule, and its metrics endpoint. A node's observer stops when the node
// goes down (so Prometheus sees it down) and starts again with it.
type observer struct {
	addr   netip.AddrPort
	prober *observe.Prober
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (l *Lab) proberOptions() observe.ProberOptions {
	return observe.ProberOptions{Interval: l.opts.ProbeInterval,
		RunOptions: observe.RunOptions{Timeout: l.opts.ProbeTimeout, RootCAs: l.ca.pool}}
}

// labDialer dials a probe from its vantage point through the lab's map: a
// node dials from its own lab addresses (so access lists see it), the
// internet from the visitor's, and a tunnel probe opens the tunnel in the
// entrance node's runtime.
func (l *Lab) labDialer(rt *runtime.Node) observe.Dialer {
	var open func(ctx context.Context, name string) (net.Conn, error)
	if rt != nil {
		open = observe.TunnelOpener(rt.OpenTunnel)
	}
	return observe.DialerFunc(func(ctx context.Context, p *observe.Probe) (net.Conn, error) {
		if p.Tunnel != "" {
			if open == nil {
				return nil, fmt.Errorf("%s runs no tunnel entrance", p.From)
			}
			return open(ctx, p.Tunnel)
		}
		from := p.From
		if from == observe.Internet {
			from = ""
		}
		return l.DialFrom(ctx, from, p.Network, p.Addr)
	})
}

// startObserver serves reg-backed metrics on addr and runs the prober.
func (l *Lab) startObserver(addr netip.AddrPort, prober *observe.Prober, rt func() *runtime.Node, sw *storage.Watch) (*observer, error) {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	opts := observe.NodeOptions{Runtime: rt, Prober: prober}
	if sw != nil {
		opts.Storage = sw
	}
	reg := observe.NewRegistry(opts)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", observe.Handler(reg))
	o := &observer{addr: addr, prober: prober, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	o.wg.Add(2)
	go func() { defer o.wg.Done(); o.srv.Serve(ln) }()
	go func() { defer o.wg.Done(); prober.Run(ctx) }()
	if sw != nil {
		o.wg.Add(1)
		go func() { defer o.wg.Done(); sw.Run(ctx) }()
	}
	return o, nil
}

func (o *observer) stop() {
	if o == nil {
		return
	}
	o.cancel()
	o.srv.Close()
	o.wg.Wait()
}

// observeNode starts a node's observer after its runtime.
func (l *Lab) observeNode(ln *labNode) error {
	rt := ln.rt
	prober := observe.NewProber(ln.probes, l.labDialer(rt), l.proberOptions())
	sw, err := l.storageWatch(ln)
	if err != nil {
		return fmt.Errorf("lab: node %s: zfs stand-in: %w", ln.node.Name, err)
	}
	o, err := l.startObserver(netip.AddrPortFrom(l.addrs.Loopback(ln.node.Name), AdminPort), prober,
		func() *runtime.Node { return rt }, sw)
	if err != nil {
		return fmt.Errorf("lab: node %s: %w", ln.node.Name, err)
	}
	ln.obs, ln.watch = o, sw
	return nil
}

// MetricsTargets returns where Prometheus scrapes each node of the lab, and
// the internet-side prober.
func (l *Lab) MetricsTargets() (nodes map[string]string, internet string) {
	nodes = map[string]string{}
	for _, n := range l.m.Nodes {
		nodes[n.Name] = netip.AddrPortFrom(l.addrs.Loopback(n.Name), AdminPort).String()
	}
	return nodes, netip.AddrPortFrom(l.Visitor(), AdminPort).String()
}

// ExportOptions are the options of observe.Export that point Prometheus at
// this lab.
func (l *Lab) ExportOptions() observe.ExportOptions {
	nodes, internet := l.MetricsTargets()
	return observe.ExportOptions{Targets: nodes, InternetTarget: internet}
}

// Probes returns every probe the lab runs.
func (l *Lab) Probes() []observe.Probe { return l.probes }

// RunProbes runs the probes of node ("" for all, observe.Internet for the
// internet side) now, each from its own vantage point, and returns their
// results, the internet's first, then each node's in inventory order. The
// probes of a node that is down are not run: their results say so
// (Skipped).
func (l *Lab) RunProbes(ctx context.Context, node string) ([]observe.Result, error) {
	if node != "" && node != observe.Internet && l.m.Node(node) == nil {
		return nil, fmt.Errorf("unknown node %q", node)
	}
	type batch struct {
		prober  *observe.Prober
		skipped []observe.Probe
		why     string
	}
	l.mu.Lock()
	var batches []batch
	if node == "" || node == observe.Internet {
		batches = append(batches, batch{prober: l.internet.prober})
	}
	for _, n := range l.m.Nodes {
		ln := l.nodes[n.Name]
		switch {
		case node != "" && node != n.Name:
		case ln.obs != nil:
			batches = append(batches, batch{prober: ln.obs.prober})
		default:
			batches = append(batches, batch{skipped: ln.probes, why: n.Name + " is down"})
		}
	}
	l.mu.Unlock()
	var out []observe.Result
	for _, b := range batches {
		if b.prober != nil {
			out = append(out, b.prober.RunOnce(ctx)...)
		}
		for _, p := range b.skipped {
			out = append(out, observe.Result{Probe: p, Skipped: b.why, At: time.Now()})
		}
	}
	return out, nil
}

// ProbeResults returns the latest result of every probe that has run on
// its schedule, the internet's first, then each node's in inventory order
// (a down node's are gone with it). Nothing is run: this is the current
// probe state, for status pages and dashboards.
func (l *Lab) ProbeResults() []observe.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []observe.Result
	if l.internet != nil {
		out = append(out, l.internet.prober.Results()...)
	}
	for _, n := range l.m.Nodes {
		if o := l.nodes[n.Name].obs; o != nil {
			out = append(out, o.prober.Results()...)
		}
	}
	return out
}

// StopService stops the application behind a service (its node stays up),
// for drills: the probes of the service then fail with reason connect.
func (l *Lab) StopService(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ln, err := l.serviceNode(name)
	if err != nil {
		return err
	}
	for i, a := range ln.apps {
		if a.svc == s {
			a.stop()
			ln.apps = append(ln.apps[:i], ln.apps[i+1:]...)
			l.log.Info("service stopped", "service", name)
			return nil
		}
	}
	return nil // already stopped
}

// StartService starts a stopped service's application again.
func (l *Lab) StartService(ctx context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ln, err := l.serviceNode(name)
	if err != nil {
		return err
	}
	for _, a := range ln.apps {
		if a.svc == s {
			return nil // running
		}
	}
	a, err := l.startApp(ctx, s)
	if err != nil {
		return fmt.Errorf("lab: service %s: %w", name, err)
	}
	ln.apps = append(ln.apps, a)
	l.log.Info("service started", "service", name)
	return nil
}

// serviceNode returns a service and its node, which must be up.
func (l *Lab) serviceNode(name string) (*inventory.Service, *labNode, error) {
	s := l.m.Service(name)
	if s == nil {
		return nil, nil, fmt.Errorf("unknown service %q", name)
	}
	ln := l.nodes[s.Node]
	if ln.down {
		return nil, nil, fmt.Errorf("service %s: node %s is down", name, s.Node)
	}
	return s, ln, nil
}
