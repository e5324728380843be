package check

import (
	"github.com/offedge/offedge/inventory"
)

// TLS rules (OE4xx): certificates behind every TLS listener.
var tlsRules = []checker{
	{
		Rule: Rule{
			ID:       "OE401",
			Title:    "site listens with tls but has no certificate",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A site listening with tls: true needs a certificate source: a certbot certificate name or cert_file and key_file. Without one the listener cannot complete a handshake and every HTTPS client of the site fails; nginx refuses such a configuration at reload, offedge refuses it before anything is served.`,
			Example: `sites:
  - name: blog
    node: proxy
    hosts: [blog.example.org]
    listen: [{network: internet, port: 443, tls: true}]
    routes: [{path: /, upstream: blog}]   # and no tls: section`,
		},
		run: checkMissingCertificate,
	},
	{
		Rule: Rule{
			ID:       "OE402",
			Title:    "certificate on a site with no TLS listener",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `The site names a certificate but none of its listeners has tls: true, so the certificate is never served. Usually the TLS listener was forgotten (the site answers in clear text only, or redirects to an HTTPS listener that does not exist), or the tls: section is a leftover whose certificate certbot keeps renewing for nothing — renewals that fail loudly and are then ignored, as Open Food Facts' renewal failure alerts were in 2024-01 (docs/reports/2024-01-19-certbot-failure-off2-proxy.md).`,
			Example: `sites:
  - name: blog
    node: proxy
    hosts: [blog.example.org]
    listen: [{network: internet, port: 80}]
    tls: {certbot: blog.example.org}
    routes: [{path: /, upstream: blog}]`,
		},
		run: checkUnusedCertificate,
	},
}

func hasCertificate(t *inventory.TLS) bool {
	return t != nil && (t.Certbot != "" || (t.CertFile != "" && t.KeyFile != "") || t.ACME != nil)
}

func checkMissingCertificate(p *pass) {
	for _, s := range p.m.Sites {
		if hasCertificate(s.TLS) {
			continue
		}
		for _, l := range s.Listen {
			if l.TLS {
				p.report(l.Pos, object("site", s.Name), nil,
					"listens with tls: true on %s port %d but has no certificate; add tls: {certbot: NAME} or tls: {cert_file: FILE, key_file: FILE}",
					l.Network, l.Port)
				break
			}
		}
	}
}

func checkUnusedCertificate(p *pass) {
	for _, s := range p.m.Sites {
		if !hasCertificate(s.TLS) {
			continue
		}
		tls := false
		for _, l := range s.Listen {
			tls = tls || l.TLS
		}
		if !tls {
			p.report(s.TLS.Pos, object("site", s.Name), nil,
				"has a certificate but no listener with tls: true, so it is never served; add a TLS listener or remove the tls: section")
		}
	}
}
