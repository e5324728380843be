package plan

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/tunnel"
)

// WriteText renders the plan for people: each listener, its access list and
// the handler chain behind it, requests flowing top to bottom.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s: %d listeners\n", p.Node, len(p.Listeners))
	for _, l := range p.Listeners {
		pub := ""
		if l.Public {
			pub = " public"
		}
		fmt.Fprintf(&b, "\n%s  [%s on %s%s]\n", l.Addr, l.Kind, l.Network, pub)
		fmt.Fprintf(&b, "  acl: %s\n", l.ACL.String())
		switch {
		case l.HTTP != nil:
			writeHTTP(&b, l.HTTP)
		case l.Entrance != nil:
			e := l.Entrance
			fmt.Fprintf(&b, "  tunnel %s entrance -> TLS 1.3 -> %s\n", e.Name, strings.Join(e.Exits, ", "))
			fmt.Fprintf(&b, "    auth: %s\n", authText(e.Auth))
			fmt.Fprintf(&b, "    timeouts: connect %s, idle %s\n", dur(e.ConnectTimeout), dur(e.IdleTimeout))
			if e.AllowPublic {
				b.WriteString("    public address acknowledged (public: true)\n")
			}
		case l.Exit != nil:
			for _, t := range l.Exit.Tunnels {
				fmt.Fprintf(&b, "  tunnel %s exit -> %s\n", t.Name, t.Target)
				fmt.Fprintf(&b, "    auth: %s\n", authText(t.Auth))
			}
		case l.Forward != nil:
			f := l.Forward
			pp := ""
			if f.ProxyProtocol {
				pp = " (PROXY protocol v2)"
			}
			fmt.Fprintf(&b, "  forward %s -> %s%s\n", f.Name, f.Target, pp)
		}
	}
	if len(p.Dials) > 0 {
		b.WriteString("\ndials:\n")
		keys := make([]netip.AddrPort, 0, len(p.Dials))
		for k := range p.Dials {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].Compare(keys[j]) < 0 })
		for _, k := range keys {
			d := p.Dials[k]
			via := ""
			if d.Via != "" {
				via = " via " + d.Via + " (NAT)"
			}
			fmt.Fprintf(&b, "  %s on %s from %s%s\n", k, d.Network, d.Source, via)
		}
	}
	if p.Firewall != nil {
		p.Firewall.writeSummary(&b, p.Node)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHTTP(b *strings.Builder, c *httpedge.Config) {
	if c.RedirectHTTPS {
		b.WriteString("  every request -> 301 https://$host$request_uri\n")
	}
	for _, s := range c.Sites {
		def := ""
		if s.Default {
			def = " (default)"
		}
		fmt.Fprintf(b, "  site %s%s: %s\n", s.Name, def, strings.Join(s.Hosts, " "))
		if s.CertFile != "" {
			fmt.Fprintf(b, "    cert: %s\n", s.CertFile)
		}
		if s.HSTS != "" {
			fmt.Fprintf(b, "    hsts: %s\n", s.HSTS)
		}
		if s.Allow != nil {
			fmt.Fprintf(b, "    allow: %s\n", s.Allow.String())
		}
		if s.MaintenanceFile != "" {
			fmt.Fprintf(b, "    maintenance while %s exists\n", s.MaintenanceFile)
		}
		if c.RedirectHTTPS {
			continue
		}
		for _, r := range s.Routes {
			match := r.Path
			if r.Exact {
				match = "= " + r.Path
			}
			switch {
			case r.Upstream != nil:
				stream := ""
				if r.StreamRequestBody {
					stream = ", bodies streamed"
				}
				fmt.Fprintf(b, "    %s -> %s%s\n", match, upstreamText(r.Upstream), stream)
			case r.Static != nil:
				fmt.Fprintf(b, "    %s -> files %s", match, r.Static.Root)
				if r.Static.Fallback != nil {
					fmt.Fprintf(b, ", missing -> %s", upstreamText(r.Static.Fallback))
				}
				if ca := r.Static.Cache; ca != nil {
					var ttls []string
					for code, d := range ca.TTL {
						ttls = append(ttls, fmt.Sprintf("%d:%s", code, dur(d)))
					}
					sort.Strings(ttls)
					fmt.Fprintf(b, ", cache %s", strings.Join(ttls, " "))
				}
				b.WriteString("\n")
			case r.Redirect != "":
				code := r.RedirectCode
				if code == 0 {
					code = 301
				}
				fmt.Fprintf(b, "    %s -> %d %s\n", match, code, r.Redirect)
			}
		}
	}
}

func upstreamText(u *httpedge.Upstream) string {
	var servers []string
	for _, s := range u.Servers {
		t := s.Addr
		if s.TLS {
			t = "https://" + t
			if s.ServerName != "" {
				t += " (sni " + s.ServerName + ")"
			}
		}
		if s.Backup {
			t += " backup"
		}
		if s.Weight > 1 {
			t += fmt.Sprintf(" weight %d", s.Weight)
		}
		if s.MaxConns > 0 {
			t += fmt.Sprintf(" max_conns %d", s.MaxConns)
		}
		servers = append(servers, t)
	}
	host := ""
	if u.Host != "" {
		host = ", Host " + u.Host
	}
	if u.QueueTimeout > 0 {
		host += fmt.Sprintf(", queue %d for %s", u.Queue, u.QueueTimeout)
	}
	return fmt.Sprintf("upstream %s [%s]%s", u.Name, strings.Join(servers, ", "), host)
}

func authText(a tunnel.Auth) string {
	switch {
	case a.PSKFile != "":
		return "psk " + a.PSKFile
	case a.PKI != nil:
		return fmt.Sprintf("pki %s, peer must be %s", a.PKI.CertFile, strings.Join(a.PKI.PeerNames, " or "))
	}
	return "none"
}

func dur(d time.Duration) string {
	if d%(time.Hour) == 0 && d >= time.Hour {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
