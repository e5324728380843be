package plan

import (
	"path"
	"slices"
	"strings"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/inventory"
)

// ACMECertificate is one certificate the node obtains and renews itself
// from an ACME CA: the certificate follows the site, so the node the plan
// gives an ACME site to holds its order. It is served from the files of
// the Certificates entry of the same name (in StateDir); until the first
// one is issued, Fallback (the site's certbot or certificate files, a copy
// from the site's previous node) is served, or a self-signed placeholder
// when there is none.
type ACMECertificate struct {
	// Site is the inventory site the certificate is for.
	Site string `json:"site"`
	// Names are the site's hosts; the first names the files.
	Names []string `json:"names"`
	// Challenge is http-01, dns-01 or tls-alpn-01.
	Challenge string `json:"challenge"`
	// Account is the ACME account the order is made with.
	Account ACMEAccount `json:"account"`
	// Fallback is served while the first certificate is issued; nil: a
	// self-signed placeholder.
	Fallback *httpedge.Certificate `json:"fallback,omitempty"`
}

// ACMEAccount is an ACME account at a CA, kept in StateDir.
type ACMEAccount struct {
	Directory string `json:"directory"`
	Email     string `json:"email,omitempty"`
	StateDir  string `json:"state_dir"`
	// DNSProvider and Credentials write DNS-01's TXT records.
	DNSProvider string `json:"dns_provider,omitempty"`
	Credentials string `json:"credentials,omitempty"`
}

// ACMEName is the resource name of the ACME certificate whose first name is host.
func ACMEName(host string) string { return "acme:" + host }

// ChallengeForwardHost is the Host of the HTTP-01 validation requests a
// node forwards to another node serving the same name (see
// challengeForward). The receiving node answers them from its own pending
// tokens or not at all: its listener gives that host a site with no
// routes, so a token neither node holds is a 404, never a loop.
const ChallengeForwardHost = "acme-challenge.invalid"

// challengeForwardSite is the name of that site (no inventory name has a colon).
const challengeForwardSite = "acme:forwarded"

// ChallengeForwardUpstream names the pool a node forwards HTTP-01
// validation requests to.
func ChallengeForwardUpstream(node string) string { return "acme-challenge " + node }

// acmeStateDir is the node's ACME state directory.
func (c *compiler) acmeStateDir() string {
	if c.node.ACMEStateDir != "" {
		return c.opts.file(c.node.ACMEStateDir)
	}
	return c.opts.file(DefaultACMEStateDir)
}

// acmeDirectory resolves an acme: block's directory.
func acmeDirectory(d string) string {
	switch d {
	case "":
		return DefaultACMEDirectory
	case inventory.ACMEStaging:
		return LetsEncryptStaging
	}
	return d
}

// acmeCertificate declares the ACME certificate of site s and returns its
// name: its files live in the state directory, as certs/acme writes them
// (certificates/<first name, * as _>/fullchain.pem and privkey.pem).
func (c *compiler) acmeCertificate(s *inventory.Site) string {
	t := s.TLS
	a := t.ACME
	name := ACMEName(s.Hosts[0])
	dir := path.Join(c.acmeStateDir(), "certificates", strings.ReplaceAll(strings.ToLower(s.Hosts[0]), "*", "_"))
	files := httpedge.Certificate{CertFile: path.Join(dir, "fullchain.pem"), KeyFile: path.Join(dir, "privkey.pem")}
	ac := ACMECertificate{
		Site: s.Name, Names: slices.Clone(s.Hosts), Challenge: a.ChallengeOrDefault(),
		Account: ACMEAccount{Directory: acmeDirectory(a.Directory), Email: a.Email, StateDir: c.acmeStateDir(),
			DNSProvider: a.DNSProvider, Credentials: c.opts.file(a.Credentials)},
	}
	if t.Certbot != "" || t.CertFile != "" {
		_, fb := c.filesCertificate(t)
		ac.Fallback = &fb
	}
	if prev, ok := c.plan.Resources.ACME[name]; ok && prev.Site != s.Name {
		c.fail("site %q: its ACME certificate %s is also site %q's: give the two sites different first hosts, or make them one site", s.Name, name, prev.Site)
	}
	if c.plan.Resources.ACME == nil {
		c.plan.Resources.ACME = map[string]ACMECertificate{}
	}
	c.plan.Resources.ACME[name] = ac
	c.plan.Resources.Certificates[name] = files
	return name
}

// challengeForward gives site s, on this node, the route forwarding
// HTTP-01 validation requests for its names to the other nodes holding an
// HTTP-01 order for one of them: the CA validates on whichever node the
// name's DNS record points to, which need not be the node that ordered
// (the 2024-06-05 failure: images.openfoodfacts.org renewed on off1 while
// the name still pointed at off2). The node's own pending tokens are
// answered before routing; only the others are forwarded. A site's own
// /.well-known/acme-challenge/ route (certbot's webroot) is kept instead.
func (c *compiler) challengeForward(s *inventory.Site) *httpedge.Route {
	for _, r := range s.Routes {
		if strings.HasPrefix(r.Path, "/.well-known/acme-challenge") {
			return nil
		}
	}
	var peers []*inventory.Site
	for _, h := range s.Hosts {
		if strings.HasPrefix(h, "*") {
			continue
		}
		for _, o := range c.m.SiteForHost(h) {
			if o.Node == c.node.Name || !slices.Contains(o.Hosts, h) || o.TLS == nil || o.TLS.ACME == nil ||
				o.TLS.ACME.ChallengeOrDefault() != inventory.ChallengeHTTP01 || slices.Contains(peers, o) {
				continue
			}
			peers = append(peers, o)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	name := ChallengeForwardUpstream(peers[0].Node)
	if len(peers) > 1 {
		name = ChallengeForwardUpstream(c.node.Name + " peers")
	}
	if _, done := c.plan.Resources.Upstreams[name]; !done {
		u := httpedge.Upstream{
			Name: name, Host: ChallengeForwardHost,
			Keepalive: -1, ConnectTimeout: DefaultConnectTimeout, ReadTimeout: DefaultUpstreamRead,
			MaxFails: -1, FailTimeout: DefaultFailTimeout,
		}
		for _, o := range peers {
			peer := c.m.Node(o.Node)
			port80 := false
			for _, l := range o.Listen {
				if l.Port != c.opts.HTTP01Port || l.TLS {
					continue
				}
				port80 = true
				t, ok := c.m.Reach(c.node, peer, l.Port, []string{l.Network}, false)
				if !ok {
					continue // no path to forward on: check OE405 says so
				}
				srv := httpedge.UpstreamServer{Addr: c.dial(t), Weight: DefaultWeight}
				if !slices.Contains(u.Servers, srv) {
					u.Servers = append(u.Servers, srv)
				}
				break
			}
			if !port80 {
				// The peer cannot be validated by HTTP-01 at all (check OE404 says so).
				continue
			}
		}
		if len(u.Servers) == 0 {
			return nil
		}
		u.Retries = len(u.Servers) - 1
		c.plan.Resources.Upstreams[name] = u
	}
	return &httpedge.Route{Path: "/.well-known/acme-challenge/", Upstream: name, MaxBodyBytes: DefaultMaxBodyBytes}
}

// holdsForwardedChallenges reports whether other nodes forward HTTP-01
// validation requests to this node: it holds an HTTP-01 order for a name
// another node serves.
func (c *compiler) holdsForwardedChallenges() bool {
	for _, s := range c.m.SitesOn(c.node.Name) {
		if s.TLS == nil || s.TLS.ACME == nil || s.TLS.ACME.ChallengeOrDefault() != inventory.ChallengeHTTP01 {
			continue
		}
		for _, h := range s.Hosts {
			for _, o := range c.m.SiteForHost(h) {
				if o.Node != c.node.Name && slices.Contains(o.Hosts, h) {
					return true
				}
			}
		}
	}
	return false
}

// forwardedChallengeSite is the site plain-HTTP listeners of a node
// holding forwarded challenges give ChallengeForwardHost: no routes, so a
// forwarded token the node does not hold is a 404 (its pending tokens are
// answered before any site is).
func forwardedChallengeSite() httpedge.Site {
	return httpedge.Site{Name: challengeForwardSite, Hosts: []string{ChallengeForwardHost}}
}
