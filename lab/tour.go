package lab

import (
	"fmt"
	"io"
	"strings"

	"github.com/offedge/offedge/plan"
)

// WriteTour prints what runs where and commands to try, for people.
// statusAddr is the status page's address ("" when there is none).
func (l *Lab) WriteTour(w io.Writer, statusAddr string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "offedge lab: %d nodes started in %s (files in %s)\n", len(l.m.Nodes), l.elapsed.Round(1e6), l.dir)
	b.WriteString("Every node has its own loopback addresses; production addresses are shown first, lab sockets after '=>'.\n")
	b.WriteString("Ports below 1024 move to 10000+port; IPv6 addresses share ::1, each with its own port (so IPv6 access lists cannot tell peers apart in the lab).\n")
	if l.pebble != nil {
		fmt.Fprintf(&b, "Certificates: issued to every node by ACME (DNS-01) from a pebble the lab started (%s), renewed as in production; %s trusts it.\n", l.pebble.Directory, l.CAFile())
	} else {
		why := "pebble is not installed or did not start"
		if !l.opts.Pebble {
			why = "ACME is off"
		}
		fmt.Fprintf(&b, "Certificates: from the lab's own CA (%s); %s.\n", l.CAFile(), why)
	}
	for _, st := range l.Status() {
		ln := l.nodes[st.Node]
		where := st.Kind
		if st.Host != "" {
			where = fmt.Sprintf("%s %d on %s", st.Kind, ln.node.Guest.ID, st.Host)
		}
		if len(ln.plan.Listeners) == 0 && len(st.Apps) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s (%s)\n", st.Node, where)
		nm := l.mapFor(st.Node)
		for _, li := range ln.plan.Listeners {
			lab, _ := nm.Listen(li.Network, li.Addr)
			fmt.Fprintf(&b, "  %-16s %-28s => %-22s %s\n", li.Kind, li.Addr, lab, describeListener(li))
		}
		for _, a := range st.Apps {
			fmt.Fprintf(&b, "  %-16s %-28s => %-22s %s\n", "service", a.Service, strings.Join(a.Addrs, " "), a.Label)
		}
	}
	b.WriteString("\nTry (copy-paste):\n")
	for _, c := range l.Commands() {
		fmt.Fprintf(&b, "  # %s\n  %s\n", c.What, c.Command)
	}
	if statusAddr != "" {
		fmt.Fprintf(&b, "\nStatus page: http://%s/  (the dashboard, with failure drill buttons; or curl -X POST http://%s/api/nodes/ovh1/down, then .../up)\n", statusAddr, statusAddr)
		fmt.Fprintf(&b, "Probes, each from its own vantage point: offedge probe --lab %s\n", statusAddr)
	}
	nodes, internet := l.MetricsTargets()
	if len(l.m.Nodes) > 0 {
		n := l.m.Nodes[0].Name
		fmt.Fprintf(&b, "Metrics: every node at its loopback, e.g. curl http://%s/metrics (%s); the internet-side probes at http://%s/metrics\n", nodes[n], n, internet)
	}
	b.WriteString("Ctrl-C stops everything.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func describeListener(li plan.Listener) string {
	switch {
	case li.HTTP != nil:
		var hosts []string
		for _, s := range li.HTTP.Sites {
			hosts = append(hosts, s.Hosts...)
		}
		if len(hosts) > 4 {
			hosts = append(hosts[:4], fmt.Sprintf("(+%d)", len(hosts)-4))
		}
		kind := "http"
		if li.HTTP.TLS {
			kind = "https"
		}
		if li.HTTP.RedirectHTTPS {
			kind = "http->https"
		}
		return kind + " " + strings.Join(hosts, " ")
	case li.Entrance != nil:
		return "tunnel " + li.Entrance.Name + " -> " + strings.Join(li.Entrance.Exits, ", ")
	case li.Exit != nil:
		var names []string
		for _, t := range li.Exit.Tunnels {
			names = append(names, t.Name+" -> "+t.Target)
		}
		return "exit " + strings.Join(names, ", ")
	case li.Forward != nil:
		return "forward " + li.Forward.Name + " -> " + li.Forward.Target
	}
	return ""
}

// Command is a command line to try against the lab.
type Command struct{ What, Command string }

// Commands returns copy-paste commands that exercise the lab: curl with
// --connect-to so public names reach lab sockets, and a client bound to
// the source address of the node that would connect in production.
func (l *Lab) Commands() []Command {
	var out []Command
	ca := l.CAFile()
	curl := func(what, node, host, path string, extra string) {
		s := l.m.SiteForHost(host)
		if len(s) == 0 {
			return
		}
		if node == "" {
			node = s[0].Node
		}
		tls := false
		for _, li := range s[0].Listen {
			tls = tls || li.TLS
		}
		port, scheme, cacert := 80, "http", ""
		if tls {
			port, scheme, cacert = 443, "https", " --cacert "+ca
		}
		ap, err := l.SiteAddr(node, port)
		if err != nil {
			return
		}
		out = append(out, Command{What: what, Command: fmt.Sprintf("curl -sS%s%s --connect-to %s:%d:%s %s://%s%s", extra, cacert, host, port, ap, scheme, host, path)})
	}
	curl("Product Opener's API through off1's proxy (a stand-in answers)", "off1", "world.openfoodfacts.org", "/api/v2/product/3017620422003.json", "")
	if ap, err := l.SiteAddr("off1", 80); err == nil {
		out = append(out, Command{What: "http -> https redirect on off1", Command: fmt.Sprintf("curl -sSI --connect-to world.openfoodfacts.org:80:%s http://world.openfoodfacts.org/product/3017620422003", ap)})
	}
	img := "/images/products/301/762/042/2003/1.jpg"
	curl("an image only off1 has, through ovh3's fallback: MISS, then HIT", "ovh3", "images.openfoodfacts.org", img, " -o /dev/null -w '%{http_code} %header{x-cache-status}\\n'")
	curl("the blog through the OVH reverse proxy (ct 101 on ovh1)", "", "blog.openfoodfacts.org", "/", " -o /dev/null -w '%{http_code} %header{x-offedge-standin}\\n'")
	curl("Robotoff on osm45, over IPv6 through the robotoff tunnel", "", "robotoff.openfoodfacts.org", "/health", "")
	// redis-cli through every redis tunnel entrance, from a node allowed to use it.
	for _, t := range l.m.Tunnels {
		svc := l.m.Service(t.Service)
		if svc == nil || svc.Protocol != "redis" || t.Entrance == nil || len(t.Allow) == 0 {
			continue
		}
		client := l.m.Node(t.Allow[0])
		if client == nil {
			continue
		}
		paths, _ := l.reach.ServicePaths(client, svc)
		for _, p := range paths {
			if !p.Open() || p.Hops[0].Via != t.Name {
				continue
			}
			h := p.Hops[0]
			dst, err := l.mapFor(client.Name).Dial(h.Target.Network, h.Target.Addr)
			if err != nil {
				continue
			}
			src, err := l.sourceFor(client.Name, h.Target.Network, h.Target.Addr.Addr())
			if err != nil {
				continue
			}
			// redis-cli cannot choose its source address: from 127.0.0.1
			// it is refused, because the entrance admits only the
			// consumer's address, as in production. socat binds it.
			out = append(out, Command{
				What: fmt.Sprintf("redis on %s through tunnel %s, as %s would: the entrance admits only %s's address %s, so a plain `redis-cli -h %s -p %d ping` (from 127.0.0.1) is refused; this binds %s",
					svc.Node, t.Name, client.Name, client.Name, src, dst.Addr(), dst.Port(), src),
				Command: fmt.Sprintf("printf 'PING\\r\\n' | socat -t 2 - TCP:%s,bind=%s", dst, src),
			})
			break
		}
	}
	return out
}
