package plan

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/http/vars"
	"github.com/offedge/offedge/edge/tunnel"
)

// WriteText renders the plan for people: each listener, its access list and
// the handler chain behind it, requests flowing top to bottom.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s: %d listeners\n", p.Node, len(p.Listeners))
	writeResources(&b, &p.Resources)
	r := &p.Resources
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
			fmt.Fprintf(&b, "    auth: %s\n", authText(e.Auth, r))
			if e.Mux {
				b.WriteString("    mux: clients as streams of long-lived TLS sessions (ALPN offedge-mux/1; one connection per client if the exit does not offer it)\n")
			} else {
				b.WriteString("    mux: off (one TLS connection per client)\n")
			}
			fmt.Fprintf(&b, "    timeouts: connect %s, handshake %s, idle %s; tcp keepalive %s; max %d connections, %d per client\n",
				dur(e.ConnectTimeout), dur(e.HandshakeTimeout), dur(e.IdleTimeout), dur(e.KeepAlive), e.MaxConns, e.MaxConnsPerClient)
			if e.AllowPublic {
				b.WriteString("    public address acknowledged (public: true)\n")
			}
		case l.Exit != nil:
			fmt.Fprintf(&b, "  handshake %s; max %d connections, %d per client (entrance node)\n", dur(l.Exit.HandshakeTimeout), l.Exit.MaxConns, l.Exit.MaxConnsPerClient)
			for _, t := range l.Exit.Tunnels {
				fmt.Fprintf(&b, "  tunnel %s exit -> %s\n", t.Name, t.Target)
				fmt.Fprintf(&b, "    auth: %s\n", authText(t.Auth, r))
				fmt.Fprintf(&b, "    timeouts: connect %s, idle %s; tcp keepalive %s\n", dur(t.ConnectTimeout), dur(t.IdleTimeout), dur(t.KeepAlive))
			}
		case l.Forward != nil:
			f := l.Forward
			pp := ""
			if f.ProxyProtocol {
				pp = " (PROXY protocol v2)"
			}
			fmt.Fprintf(&b, "  forward %s -> %s%s\n", f.Name, f.Target, pp)
			fmt.Fprintf(&b, "    timeouts: connect %s, idle %s; max %d connections, %d per client\n", dur(f.ConnectTimeout), dur(f.IdleTimeout), f.MaxConns, f.MaxConnsPerClient)
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
	if p.Storage != nil {
		p.Storage.writeText(&b)
	}
	if p.Admin != nil {
		p.Admin.writeText(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeResources lists the node's resources, each once, with every value
// it runs with.
func writeResources(b *strings.Builder, r *Resources) {
	if len(r.Upstreams)+len(r.Caches)+len(r.AccessLogs)+len(r.Certificates)+len(r.Secrets) == 0 {
		return
	}
	b.WriteString("\nresources:\n")
	for _, name := range slices.Sorted(maps.Keys(r.Upstreams)) {
		u := r.Upstreams[name]
		fmt.Fprintf(b, "  %s\n", upstreamText(&u))
		fmt.Fprintf(b, "    keepalive %d, connect %s, read %s, max_fails %d per %s, retries %d\n",
			u.Keepalive, dur(u.ConnectTimeout), dur(u.ReadTimeout), u.MaxFails, dur(u.FailTimeout), u.Retries)
		if h := u.HealthCheck; h != nil {
			want := "2xx or 3xx"
			if h.Status != 0 {
				want = fmt.Sprint(h.Status)
			}
			fmt.Fprintf(b, "    health GET %s every %s (timeout %s, %s, up after %d, down after %d)\n", h.Path, dur(h.Interval), dur(h.Timeout), want, h.Rise, h.Fall)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Caches)) {
		ca := r.Caches[name]
		var ttls []string
		for code, d := range ca.TTL {
			ttls = append(ttls, fmt.Sprintf("%d:%s", code, dur(d)))
		}
		sort.Strings(ttls)
		where := "memory"
		if ca.Dir != "" {
			where = ca.Dir
		}
		ttl := "ttl " + strings.Join(ttls, " ")
		if len(ttls) == 0 {
			ttl = "validity set by the routes that use it"
		}
		fmt.Fprintf(b, "  cache %q: %s, %d bytes, %s, inactive %s\n", name, where, ca.MaxBytes, ttl, dur(ca.Inactive))
	}
	for _, name := range slices.Sorted(maps.Keys(r.AccessLogs)) {
		a := r.AccessLogs[name]
		fmt.Fprintf(b, "  access log %s: buffer %d bytes, flush every %s\n", a.Path, a.BufferBytes, dur(a.FlushInterval))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Certificates)) {
		fmt.Fprintf(b, "  certificate %s: %s\n", name, r.Certificates[name].CertFile)
		if a, ok := r.ACME[name]; ok {
			writeACME(b, &a)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Secrets)) {
		s := r.Secrets[name]
		what := fmt.Sprintf("psk file %s, key derived for tunnel %s", s.PSKFile, s.Tunnel)
		if s.PSKFile == "" {
			what = fmt.Sprintf("certificate %s, key %s, CA %s (reloaded when they change)", s.CertFile, s.KeyFile, s.CAFile)
		}
		fmt.Fprintf(b, "  secret %q: %s; used by %s\n", name, what, strings.Join(s.Uses, ", "))
	}
	writeProtection(b, r)
}

// writeACME says how an ACME certificate is obtained and what is served
// until it is.
func writeACME(b *strings.Builder, a *ACMECertificate) {
	email := a.Account.Email
	if email == "" {
		email = "no e-mail"
	}
	fmt.Fprintf(b, "    acme %s for %s, from %s (%s), state %s\n", a.Challenge, strings.Join(a.Names, " "), a.Account.Directory, email, a.Account.StateDir)
	if a.Account.DNSProvider != "" {
		fmt.Fprintf(b, "    dns provider %s, credentials %s\n", a.Account.DNSProvider, a.Account.Credentials)
	}
	if a.Fallback != nil {
		fmt.Fprintf(b, "    until issued: %s\n", a.Fallback.CertFile)
	} else {
		b.WriteString("    until issued: a self-signed placeholder\n")
	}
}

func writeHTTP(b *strings.Builder, c *httpedge.Config) {
	l := c.Limits
	fmt.Fprintf(b, "  limits: header %s (%d bytes), body %s, idle %s, send %s, drain %s\n",
		dur(l.ReadHeaderTimeout), l.MaxHeaderBytes, dur(l.ReadBodyTimeout), dur(l.IdleTimeout), dur(l.SendTimeout), dur(l.ShutdownTimeout))
	if c.RedirectHTTPS {
		b.WriteString("  every request -> 301 https://$host$request_uri\n")
	}
	for _, s := range c.Sites {
		def := ""
		if s.Default {
			def = " (default)"
		}
		fmt.Fprintf(b, "  site %s%s: %s\n", s.Name, def, strings.Join(s.Hosts, " "))
		if s.Certificate != "" {
			fmt.Fprintf(b, "    certificate %s\n", s.Certificate)
		}
		if s.AccessLog != nil {
			fmt.Fprintf(b, "    access log %s (%s)\n", s.AccessLog.File, s.AccessLog.Format)
		}
		if s.ErrorLog != nil {
			fmt.Fprintf(b, "    error log %s (%s)\n", s.ErrorLog.File, s.ErrorLog.Level)
		}
		if p := s.TLSPolicy; p != nil {
			fmt.Fprintf(b, "    tls policy: min_version %q ciphers %v curves %v no_session_tickets %v\n", p.MinVersion, p.Ciphers, p.Curves, p.NoSessionTickets)
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
		for _, br := range s.Bots {
			fmt.Fprintf(b, "    bot rule %s -> %s", br.Name, br.Action)
			if br.PageFile != "" {
				fmt.Fprintf(b, " %s", br.PageFile)
			}
			fmt.Fprintf(b, " (%d user agents, %d referers, %d paths, %d ranges)\n", len(br.UserAgent), len(br.Referer), len(br.Path), len(br.Addr))
		}
		if len(s.Jails) > 0 {
			fmt.Fprintf(b, "    jails: %s\n", strings.Join(s.Jails, ", "))
		}
		if c.RedirectHTTPS {
			continue
		}
		for _, m := range s.Maps {
			fmt.Fprintf(b, "    map %s $%s (%d entries", m.Source, m.Name, len(m.Entries))
			if m.Hostnames {
				b.WriteString(", hostnames")
			}
			fmt.Fprintf(b, ", default %q)\n", m.Default)
		}
		stepsText(b, "    ", s.Rewrites)
		for _, r := range s.Routes {
			match := routeMatchText(r)
			switch {
			case r.Upstream != "":
				fmt.Fprintf(b, "    %s -> upstream %s", match, r.Upstream)
				if r.UpstreamPath != "" {
					fmt.Fprintf(b, " path %s", r.UpstreamPath)
				}
				if r.StreamRequestBody {
					b.WriteString(", bodies streamed")
				}
				if r.Cache != nil {
					b.WriteString(", " + cachePolicyText(r.Cache))
				}
			case r.Static != nil:
				fmt.Fprintf(b, "    %s -> files %s", match, r.Static.Root)
				if r.Static.Fallback != "" {
					fmt.Fprintf(b, ", missing -> upstream %s", r.Static.Fallback)
				}
				if r.Static.Cache != "" {
					fmt.Fprintf(b, ", cache %q", r.Static.Cache)
				}
			case r.Redirect != "":
				fmt.Fprintf(b, "    %s -> %d %s", match, r.RedirectCode, r.Redirect)
			default:
				fmt.Fprintf(b, "    %s -> its rewrites, else 404", match)
			}
			body := "unlimited"
			if r.MaxBodyBytes >= 0 {
				body = fmt.Sprint(r.MaxBodyBytes)
			}
			fmt.Fprintf(b, " (body %s)", body)
			if r.BasicAuthFile != "" {
				fmt.Fprintf(b, " (basic auth %s)", r.BasicAuthFile)
			}
			if r.WebSocket {
				b.WriteString(" (websocket)")
			}
			if len(r.Limits) > 0 {
				var ls []string
				for _, l := range r.Limits {
					nd := ""
					if l.NoDelay {
						nd = " nodelay"
					}
					ls = append(ls, fmt.Sprintf("%s burst %d%s", l.Zone, l.Burst, nd))
				}
				fmt.Fprintf(b, " (limits %s)", strings.Join(ls, ", "))
			}
			b.WriteString("\n")
			stepsText(b, "      ", r.Rewrites)
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

func authText(a tunnel.Auth, r *Resources) string {
	if a.Secret != "" {
		s, ok := r.Secrets[a.Secret]
		var t string
		switch {
		case !ok:
			t = "secret " + a.Secret + " (not declared)"
		case s.PSKFile != "":
			t = "psk " + s.PSKFile
		default:
			t = "pki " + s.CertFile
		}
		if a.PKI != nil {
			t += ", peer must be " + strings.Join(a.PKI.PeerNames, " or ")
		}
		return fmt.Sprintf("%s (secret %q)", t, a.Secret)
	}
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

// writeProtection writes the node's rate zones, maps, jails, ban list and
// tarpit.
func writeProtection(b *strings.Builder, r *Resources) {
	for _, name := range slices.Sorted(maps.Keys(r.Maps)) {
		m := r.Maps[name]
		def := m.Default
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(b, "  map %q: %s, %d rules, default class %s\n", name, m.Source, len(m.Rules), def)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Zones)) {
		z := r.Zones[name]
		key := z.Key
		if z.Map != "" {
			key += " (map " + z.Map + ")"
		}
		mode := ""
		if z.NoDelay {
			mode += ", nodelay"
		}
		if z.DryRun {
			mode += ", dry run"
		}
		fmt.Fprintf(b, "  limit zone %q: by %s, %g/s burst %d%s (routes up to %d), status %d, %d keys\n", name, key, z.Rate, z.Burst, mode, z.MaxBurst, z.Status, z.MaxKeys)
	}
	if bn := r.Bans; bn != nil {
		var allow []string
		for _, p := range bn.Allow {
			allow = append(allow, p.String())
		}
		never := "no allow list"
		if len(allow) > 0 {
			never = "never " + strings.Join(allow, " ")
		}
		kept := "kept in memory only"
		if bn.StateFile != "" {
			kept = "kept in " + bn.StateFile
		}
		fmt.Fprintf(b, "  bans: at most %d, %s, %s\n", bn.MaxBans, never, kept)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Jails)) {
		j := r.Jails[name]
		fmt.Fprintf(b, "  jail %q: site %s, %d of %s in %s -> ban %s\n", name, j.Site, j.MaxEvents, strings.Join(j.Events, "+"), dur(j.Window), dur(j.BanTime))
	}
	if t := r.Tarpit; t != nil {
		fmt.Fprintf(b, "  tarpit: %d held at most, %s each\n", t.Max, dur(t.Hold))
	}
}

func cachePolicyText(c *httpedge.CachePolicy) string {
	var valid []string
	for code, d := range c.Valid {
		s := "any"
		if code != 0 {
			s = fmt.Sprint(code)
		}
		valid = append(valid, s+":"+dur(d))
	}
	sort.Strings(valid)
	t := fmt.Sprintf("cache %q key %s valid %s", c.Cache, strings.Join(c.Key, "+"), strings.Join(valid, " "))
	if c.MinUses > 1 {
		t += fmt.Sprintf(" min_uses %d", c.MinUses)
	}
	if len(c.Bypass) > 0 {
		t += " bypass " + strings.Join(c.Bypass, ",")
	}
	if len(c.UseStale) > 0 {
		t += " stale " + strings.Join(c.UseStale, ",")
	}
	if c.BackgroundUpdate {
		t += " (background update)"
	}
	return t
}

// routeMatchText is a route's match as nginx writes the location
// ("= /", "^~ /images/", "~* \.php$", "/").
func routeMatchText(r httpedge.Route) string {
	if m := r.Modifier(); m != "" {
		return m + " " + r.Path
	}
	return r.Path
}

// stepsText writes rewrite steps as nginx writes them, one a line.
func stepsText(b *strings.Builder, indent string, steps []vars.Step) {
	for _, st := range steps {
		switch {
		case st.Rewrite != nil:
			fmt.Fprintf(b, "%srewrite %s %s", indent, st.Rewrite.Regex, st.Rewrite.Replacement)
			if st.Rewrite.Flag != "" {
				b.WriteString(" " + st.Rewrite.Flag)
			}
			b.WriteString("\n")
		case st.Return != nil:
			fmt.Fprintf(b, "%sreturn %d", indent, st.Return.Code)
			if t := st.Return.URL + st.Return.Body; t != "" {
				fmt.Fprintf(b, " %q", t)
			}
			b.WriteString("\n")
		case st.Set != nil:
			fmt.Fprintf(b, "%sset $%s %q\n", indent, st.Set.Name, st.Set.Value)
		case st.If != nil:
			cond := st.If.Variable
			if st.If.Op != "" {
				cond += " " + st.If.Op + " " + strconv.Quote(st.If.Value)
			}
			fmt.Fprintf(b, "%sif (%s)\n", indent, cond)
			stepsText(b, indent+"  ", st.Then)
		}
	}
}
