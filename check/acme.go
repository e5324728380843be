package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// ACME rules (OE403-OE408, in the TLS family): certificates a node
// obtains itself (tls: acme), checked before an order fails at the CA.
var acmeRules = []checker{
	{
		Rule: Rule{
			ID:       "OE403",
			Title:    "wildcard certificate by HTTP-01 or TLS-ALPN-01",
			Severity: Error,
			Since:    "0.2.0",
			Why:      `An ACME CA issues a wildcard name (*.openfoodfacts.org) only after a DNS-01 challenge: HTTP-01 and TLS-ALPN-01 prove control of one host, not of a zone, and Let's Encrypt refuses the order. Open Food Facts' wildcards are issued with DNS-01 at OVH. Use challenge: dns-01 with dns_provider and credentials, or list the hosts instead of the wildcard.`,
			Example: `sites:
  - name: off
    node: proxy
    hosts: [openfoodfacts.org, "*.openfoodfacts.org"]
    listen: [{network: internet, port: 443, tls: true}, {network: internet, port: 80, redirect_https: true}]
    tls: {acme: {email: ops@example.org}}   # http-01 by default`,
		},
		run: checkACMEWildcard,
	},
	{
		Rule: Rule{
			ID:       "OE404",
			Title:    "http-01 or tls-alpn-01 on a node the internet cannot reach on its port",
			Severity: Error,
			Since:    "0.2.0",
			Why:      `The CA validates HTTP-01 by fetching http://NAME/.well-known/acme-challenge/TOKEN on port 80, and TLS-ALPN-01 by a handshake on port 443, from the internet. The node obtaining the certificate must have a plain-HTTP listener on port 80 (any site's: every plain-HTTP listener answers the node's tokens), or a TLS listener on 443, on an address the internet reaches; otherwise every order fails and the certificate expires (certbot's "Connection refused" in docs/reports/2024-06-05-off1-reverse-proxy-install.md). Add the listener, or use dns-01.`,
			Example: `sites:
  - name: wiki
    node: proxy
    hosts: [wiki.example.org]
    listen: [{network: internet, port: 443, tls: true}]   # no port 80
    tls: {acme: {email: ops@example.org}}`,
		},
		run: checkACMEPort,
	},
	{
		Rule: Rule{
			ID:       "OE405",
			Title:    "a name issued on two nodes that cannot both validate",
			Severity: Error,
			Since:    "0.2.0",
			Why:      `When two nodes serve one name (images on a replica and its fallback origin), each obtains its own certificate and the CA validates at whichever node the name's DNS record points to. DNS-01 works on both. HTTP-01 works when the other node forwards the validation requests it cannot answer (offedge plans that route when the nodes reach each other's port 80). TLS-ALPN-01 is answered in the handshake and cannot be forwarded: the node the DNS does not point to can never validate. A site with its own /.well-known/acme-challenge/ route keeps it, and forwards nothing. This is the 2024-06-05 failure: off1's renewal of images.openfoodfacts.org fetched the token from off2.`,
			Example: `sites:
  - name: images
    node: ovh3
    hosts: [images.example.org]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {acme: {email: ops@example.org, challenge: tls-alpn-01}}
  - name: images-origin
    node: off1
    hosts: [images.example.org]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {acme: {email: ops@example.org, challenge: tls-alpn-01}}`,
		},
		run: checkACMETwoIssuers,
	},
	{
		Rule: Rule{
			ID:       "OE406",
			Title:    "acme site without an account e-mail",
			Severity: Warning,
			Since:    "0.2.0",
			Why:      `The account e-mail is how the CA reaches the operators about the account: revocations, terms of service changes, problems with the certificates it issued. An account without one is allowed; nobody is told. Give the team's address (not a person's).`,
			Example:  `    tls: {acme: {challenge: http-01}}`,
		},
		run: checkACMEEmail,
	},
	{
		Rule: Rule{
			ID:       "OE407",
			Title:    "dns-01 without credentials",
			Severity: Error,
			Since:    "0.2.0",
			Why:      `A DNS-01 challenge is answered by writing a TXT record through the DNS provider's API, which needs credentials (for OVH: the application key, secret and consumer key, in certbot-dns-ovh's file format). Without a credentials file every order fails.`,
			Example:  `    tls: {acme: {email: ops@example.org, challenge: dns-01, dns_provider: ovh}}`,
		},
		run: checkACMECredentials,
	},
	{
		Rule: Rule{
			ID:       "OE408",
			Title:    "dns provider credentials file unreadable or readable by others",
			Severity: Error,
			Since:    "0.2.0",
			Why:      `The credentials file holds a secret that can rewrite the zone (every name of it, not only _acme-challenge). offedge refuses one its group or others can read, as it refuses every key file, and one it cannot read fails every order. check looks at the file on the machine it runs on, which need not be the node: a missing file is a warning (on the node, every order fails until it is there, logged and counted in offedge_acme_consecutive_failures), a file with a loose mode or that cannot be read is an error.`,
			Example:  `    tls: {acme: {email: ops@example.org, challenge: dns-01, dns_provider: ovh, credentials: /root/.ovhapi/openfoodfacts.org}}   # mode 0644`,
		},
		run: checkACMECredentialsFile,
	},
}

// acmeSites lists the sites obtaining their certificate by ACME.
func acmeSites(m *inventory.Model) []*inventory.Site {
	var out []*inventory.Site
	for _, s := range m.Sites {
		if s.TLS != nil && s.TLS.ACME != nil {
			out = append(out, s)
		}
	}
	return out
}

func checkACMEWildcard(p *pass) {
	for _, s := range acmeSites(p.m) {
		a := s.TLS.ACME
		if a.ChallengeOrDefault() == inventory.ChallengeDNS01 {
			continue
		}
		for _, h := range s.Hosts {
			if strings.HasPrefix(h, "*.") {
				p.report(a.Pos, object("site", s.Name), nil,
					"%s is a wildcard, which a CA issues only by dns-01, not %s; use challenge: dns-01 with dns_provider and credentials, or list the hosts", h, a.ChallengeOrDefault())
				break
			}
		}
	}
}

// validationPort is the port the CA validates a challenge on, and whether
// the listener must be TLS.
func validationPort(challenge string) (int, bool) {
	if challenge == inventory.ChallengeTLSALPN01 {
		return 443, true
	}
	return 80, false
}

func checkACMEPort(p *pass) {
	r := p.ix.reach
	internet := r.Internet()
	for _, s := range acmeSites(p.m) {
		a := s.TLS.ACME
		ch := a.ChallengeOrDefault()
		if ch == inventory.ChallengeDNS01 {
			continue
		}
		port, tls := validationPort(ch)
		node := p.m.Node(s.Node)
		if node == nil {
			continue
		}
		reached, listening := false, false
		for _, o := range p.m.SitesOn(s.Node) {
			if tls && o != s {
				continue // TLS-ALPN-01 is answered by the site's own TLS listeners
			}
			for _, l := range o.Listen {
				if l.Port != port || l.TLS != tls {
					continue
				}
				listening = true
				ep := &inventory.Endpoint{Node: node.Name, Network: l.Network, Address: l.Address, Port: l.Port}
				if _, ok := r.Live().ReachEndpoint(internet, ep); ok {
					reached = true
				}
			}
		}
		kind := "a plain-HTTP listener on port 80"
		if tls {
			kind = "a TLS listener on port 443"
		}
		switch {
		case !listening:
			p.report(a.Pos, object("site", s.Name), nil,
				"obtains its certificate by %s, which the CA validates on port %d, but node %s has no %s; add one (redirect_https: true is enough for http-01), or use dns-01", ch, port, s.Node, strings.TrimPrefix(kind, "a "))
		case !reached:
			p.report(a.Pos, object("site", s.Name), nil,
				"obtains its certificate by %s, but the internet cannot reach node %s on port %d (%s on no public address); use dns-01, or listen on a public network", ch, s.Node, port, kind)
		}
	}
}

func checkACMETwoIssuers(p *pass) {
	type issuer struct {
		site *inventory.Site
		ch   string
	}
	byName := map[string][]issuer{}
	var names []string
	for _, s := range acmeSites(p.m) {
		for _, h := range s.Hosts {
			if _, ok := byName[h]; !ok {
				names = append(names, h)
			}
			byName[h] = append(byName[h], issuer{s, s.TLS.ACME.ChallengeOrDefault()})
		}
	}
	reported := map[*inventory.Site]bool{}
	for _, h := range names {
		list := byName[h]
		nodes := map[string]bool{}
		for _, is := range list {
			nodes[is.site.Node] = true
		}
		// Every node serving the name to the internet, ACME or not, is
		// where the DNS may point.
		for _, o := range p.m.SiteForHost(h) {
			if slices.Contains(o.Hosts, h) && publiclyServed(p, o) {
				nodes[o.Node] = true
			}
		}
		if len(nodes) < 2 {
			continue
		}
		for _, is := range list {
			if reported[is.site] {
				continue
			}
			others := otherNodes(p, h, is.site.Node)
			var why string
			switch is.ch {
			case inventory.ChallengeTLSALPN01:
				why = fmt.Sprintf("tls-alpn-01 is validated in a handshake with the node the name's DNS points to, and %s also serves it: the CA may ask %s, which cannot answer for %s", strings.Join(others, ", "), strings.Join(others, ", "), is.site.Node)
			case inventory.ChallengeHTTP01:
				why = forwardProblem(p, h, is.site)
			}
			if why != "" {
				reported[is.site] = true
				p.report(is.site.TLS.ACME.Pos, object("site", is.site.Name), nil, "%s: %s; use dns-01 on every node serving %s", h, why, h)
			}
		}
	}
}

// publiclyServed reports whether the internet reaches one of site s's
// listeners (the CA could be sent there by the name's DNS).
func publiclyServed(p *pass, s *inventory.Site) bool {
	internet := p.ix.reach.Internet()
	for _, l := range s.Listen {
		if _, ok := p.ix.reach.Live().ReachEndpoint(internet, &inventory.Endpoint{Node: s.Node, Network: l.Network, Address: l.Address, Port: l.Port}); ok {
			return true
		}
	}
	return false
}

// otherNodes are the nodes other than node serving host to the internet, sorted.
func otherNodes(p *pass, host, node string) []string {
	var out []string
	for _, o := range p.m.SiteForHost(host) {
		if o.Node != node && slices.Contains(o.Hosts, host) && !slices.Contains(out, o.Node) && publiclyServed(p, o) {
			out = append(out, o.Node)
		}
	}
	slices.Sort(out)
	return out
}

// forwardProblem says why the HTTP-01 validation requests for host of
// site s, landing on another node serving host, cannot reach s's node:
// that node keeps its own /.well-known/acme-challenge/ route, or cannot
// reach s's node's port 80.
func forwardProblem(p *pass, host string, s *inventory.Site) string {
	to := p.m.Node(s.Node)
	for _, o := range p.m.SiteForHost(host) {
		if o.Node == s.Node || !slices.Contains(o.Hosts, host) || !publiclyServed(p, o) {
			continue
		}
		for _, r := range o.Routes {
			if strings.HasPrefix(r.Path, "/.well-known/acme-challenge") {
				return fmt.Sprintf("site %s on %s answers /.well-known/acme-challenge/ itself (route %s), so validation requests landing there never reach %s", o.Name, o.Node, r.Path, s.Node)
			}
		}
		from := p.m.Node(o.Node)
		ok := false
		for _, l := range s.Listen {
			if l.Port == 80 && !l.TLS {
				if _, reached := p.ix.reach.Live().ReachEndpoint(from, &inventory.Endpoint{Node: to.Name, Network: l.Network, Address: l.Address, Port: 80}); reached {
					ok = true
				}
			}
		}
		if !ok {
			return fmt.Sprintf("%s also serves it and cannot reach %s's port 80 to forward the validation requests it cannot answer", o.Node, s.Node)
		}
	}
	return ""
}

func checkACMEEmail(p *pass) {
	for _, s := range acmeSites(p.m) {
		if a := s.TLS.ACME; a.Email == "" {
			p.report(a.Pos, object("site", s.Name), nil, "its ACME account has no e-mail: the CA cannot reach anyone about it; add email: (the team's address)")
		}
	}
}

func checkACMECredentials(p *pass) {
	for _, s := range acmeSites(p.m) {
		if a := s.TLS.ACME; a.ChallengeOrDefault() == inventory.ChallengeDNS01 && a.Credentials == "" {
			p.report(a.Pos, object("site", s.Name), nil, "obtains its certificate by dns-01 through %s but gives no credentials file; add credentials: FILE (mode 0600)", a.DNSProvider)
		}
	}
}

func checkACMECredentialsFile(p *pass) {
	seen := map[string]bool{}
	for _, s := range acmeSites(p.m) {
		a := s.TLS.ACME
		if a.Credentials == "" || seen[a.Credentials] {
			continue
		}
		seen[a.Credentials] = true
		fi, err := os.Stat(a.Credentials)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p.reportAs(Warning, a.Pos, object("site", s.Name), nil, "credentials file %s does not exist on this machine; where the node runs it must (mode 0600)", a.Credentials)
		case err != nil:
			p.report(a.Pos, object("site", s.Name), nil, "credentials file %s cannot be read: %v", a.Credentials, err)
		case !fi.Mode().IsRegular():
			p.report(a.Pos, object("site", s.Name), nil, "credentials file %s is not a regular file", a.Credentials)
		case fi.Mode().Perm()&0o077 != 0:
			p.report(a.Pos, object("site", s.Name), nil, "credentials file %s is mode %04o: its group or others can use the secret; chmod 600 %s", a.Credentials, fi.Mode().Perm(), a.Credentials)
		default:
			f, err := os.Open(a.Credentials)
			if err != nil {
				p.report(a.Pos, object("site", s.Name), nil, "credentials file %s cannot be read: %v", a.Credentials, err)
				continue
			}
			f.Close()
		}
	}
}
