package check

import (
	"net/http"
	"strings"
)

// HTTP response rules (OE8xx): what a site's answers carry.
var headerRules = []checker{
	{
		Rule: Rule{
			ID:       "OE801",
			Title:    "route drops security headers its site sets",
			Severity: Warning,
			Since:    "0.2.0",
			Why:      `A route with headers_inherit: false sends none of its site's added headers — what nginx does to every location with an add_header of its own, and the classic nginx trap: a location adds Access-Control-Allow-Origin and silently loses the server's Strict-Transport-Security, X-Content-Type-Options and X-Frame-Options. offedge keeps nginx's behaviour when asked (an imported configuration says headers_inherit: false, so that it answers as it did), and reports every security header the site sets that such a route neither sets itself nor gets otherwise. Fix it by removing headers_inherit: false (the route then adds its headers on top of the site's), or by setting the header on the route too. Strict-Transport-Security is not reported when the site's hsts default sends it anyway.`,
			Example: `sites:
  - name: api
    node: proxy
    hosts: [api.example.org]
    listen: [{network: internet, port: 80}]
    headers: {X-Content-Type-Options: nosniff}
    routes:
      - path: /v1/
        upstream: api
        headers: {Access-Control-Allow-Origin: "*"}
        headers_inherit: false`,
		},
		run: checkDroppedSecurityHeaders,
	},
}

// securityHeaders are the response fields whose loss weakens a site:
// transport security, sniffing, framing, content and referrer policies.
var securityHeaders = []string{
	"Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
	"Content-Security-Policy", "Referrer-Policy", "Permissions-Policy",
	"Cross-Origin-Opener-Policy", "Cross-Origin-Resource-Policy", "Cross-Origin-Embedder-Policy",
}

func checkDroppedSecurityHeaders(p *pass) {
	for _, s := range p.m.Sites {
		set := map[string]bool{}
		for _, m := range []map[string]string{s.Headers, s.HeadersAlways} {
			for k := range m {
				set[http.CanonicalHeaderKey(k)] = true
			}
		}
		// The hsts default sends Strict-Transport-Security on the site's
		// TLS listeners whatever the route says.
		hsts := s.TLS != nil && (s.TLS.HSTS == nil || *s.TLS.HSTS)
		for _, r := range s.Routes {
			if r.HeadersInherit == nil || *r.HeadersInherit {
				continue
			}
			own := map[string]bool{}
			for _, m := range []map[string]string{r.Headers, r.HeadersAlways} {
				for k := range m {
					own[http.CanonicalHeaderKey(k)] = true
				}
			}
			var lost []string
			for _, k := range securityHeaders {
				if set[k] && !own[k] && !(k == "Strict-Transport-Security" && hsts) {
					lost = append(lost, k)
				}
			}
			if len(lost) == 0 {
				continue
			}
			p.report(r.Pos, object("site", s.Name)+": route "+r.Path, nil,
				"headers_inherit: false drops the site's %s on this route; remove headers_inherit: false or set the same headers on the route",
				strings.Join(lost, ", "))
		}
	}
}
