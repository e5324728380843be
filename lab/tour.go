package lab

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/offedge/offedge/plan"
)

// WriteTour prints what runs where and commands to try, for people.
// statusAddr is the status page's address ("" when there is none).
func (l *Lab) WriteTour(w io.Writer, statusAddr string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "offedge lab: %d nodes started in %s (files in %s)\n", len(l.m.Nodes), l.elapsed.Round(1e6), l.dir)
	b.WriteString("Every node has its own loopback addresses; production addresses are shown first, lab sockets after '=>'.\n")
	b.WriteString("Ports below 1024 move to 10000+port; IPv6 addresses share ::1 with ports from 40000.\n")
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
		fmt.Fprintf(&b, "\nStatus page: http://%s/  (failure drill: curl -X POST http://%s/api/nodes/ovh1/down, then .../up)\n", statusAddr, statusAddr)
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
// --connect-to so public names reach lab sockets, and redis-cli through
// tunnel entrances, bound to the source address of the node that would run
// them in production.
func (l *Lab) Commands() []Command {
	var out []Command
	ca := l.CAFile()
	// One HTTPS request per site with a plain hostname, on the site's node.
	seen := map[string]bool{}
	var sites []string
	for _, s := range l.m.Sites {
		sites = append(sites, s.Name)
	}
	sort.Strings(sites)
	for _, name := range sites {
		s := l.m.Site(name)
		host := ""
		for _, h := range s.Hosts {
			if !strings.HasPrefix(h, "*.") {
				host = h
				break
			}
		}
		if strings.HasPrefix(s.Hosts[0], "*.") {
			host = "world" + s.Hosts[0][1:]
		}
		if host == "" || seen[host] {
			continue
		}
		tls := false
		for _, li := range s.Listen {
			tls = tls || li.TLS
		}
		port, scheme := 80, "http"
		if tls {
			port, scheme = 443, "https"
		}
		ap, err := l.SiteAddr(s.Node, port)
		if err != nil {
			continue
		}
		seen[host] = true
		path := "/"
		if strings.HasPrefix(s.Name, "images") {
			path = "/images/products/301/762/042/2003/1.jpg"
		}
		cmd := fmt.Sprintf("curl -sS --cacert %s --connect-to %s:%d:%s %s://%s%s -o /dev/null -w '%%{http_code} %%header{x-cache-status}\\n'", ca, host, port, ap, scheme, host, path)
		if scheme == "http" {
			cmd = fmt.Sprintf("curl -sS --connect-to %s:%d:%s %s://%s%s", host, port, ap, scheme, host, path)
		}
		out = append(out, Command{What: fmt.Sprintf("%s on %s (site %s)", host, s.Node, s.Name), Command: cmd})
		if len(out) >= 6 {
			break
		}
	}
	if s := l.m.Site("off"); s != nil {
		if ap, err := l.SiteAddr(s.Node, 80); err == nil {
			out = append(out, Command{What: "http -> https redirect on off1", Command: fmt.Sprintf("curl -sSI --connect-to world.openfoodfacts.org:80:%s http://world.openfoodfacts.org/product/3017620422003", ap)})
		}
		if ap, err := l.SiteAddr(s.Node, 443); err == nil {
			out = append(out, Command{What: "the Product Opener API through off1", Command: fmt.Sprintf("curl -sS --cacert %s --connect-to world.openfoodfacts.org:443:%s https://world.openfoodfacts.org/api/v2/product/3017620422003.json", ca, ap)})
		}
	}
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
		for _, p := range l.m.PathsToService(client, svc) {
			if p.Blocked != "" || p.Hops[0].Via != t.Name {
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
			bind := ""
			if src.IsValid() && src.Is4() {
				bind = fmt.Sprintf(" # from %s's address %s", client.Name, src)
			}
			out = append(out, Command{
				What:    fmt.Sprintf("redis on %s through tunnel %s, as %s would", svc.Node, t.Name, client.Name),
				Command: fmt.Sprintf("python3 -c \"import socket;s=socket.create_connection(('%s',%d),source_address=('%s',0));s.sendall(b'PING\\r\\n');print(s.recv(64))\"%s", dst.Addr(), dst.Port(), src, bind),
			})
			break
		}
	}
	return out
}
