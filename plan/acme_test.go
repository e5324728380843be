package plan

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/offedge/offedge/inventory"
)

// acmeInventory serves images.example from two nodes (a replica and its
// fallback origin, as images.openfoodfacts.org on ovh3 and off1), both
// issuing by HTTP-01, and www.example from a only, by DNS-01 with a copied
// certbot certificate served until the first issue.
const acmeInventory = `providers: [{name: p, locations: [{name: l}]}]
networks:
  - {name: internet, kind: public}
servers:
  - name: a
    provider: p
    mode: bare-metal
    acme_state_dir: /srv/acme
    addresses: [{network: internet, ip: 192.0.2.1}]
  - name: b
    provider: p
    mode: bare-metal
    addresses: [{network: internet, ip: 192.0.2.2}]
sites:
  - name: images-a
    node: a
    hosts: [images.example, static.example]
    listen: [{network: internet, port: 443, tls: true}, {network: internet, port: 80, redirect_https: true}]
    tls: {acme: {email: ops@example.org, directory: staging}}
  - name: images-b
    node: b
    hosts: [images.example]
    listen: [{network: internet, port: 443, tls: true}, {network: internet, port: 80, redirect_https: true}]
    tls: {acme: {email: ops@example.org}}
  - name: www
    node: a
    hosts: [www.example, "*.www.example"]
    listen: [{network: internet, port: 443, tls: true}]
    tls: {certbot: www.example, acme: {challenge: dns-01, dns_provider: ovh, credentials: /etc/offedge/ovh.ini, email: ops@example.org}}
`

func loadInline(t *testing.T, inv string) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(inv)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestACMECertificatesFollowTheSite(t *testing.T) {
	m := loadInline(t, acmeInventory)
	pa, err := Compile(m, "a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	img, ok := pa.Resources.ACME[ACMEName("images.example")]
	if !ok {
		t.Fatalf("a's plan has no ACME certificate for images.example: %v", pa.Resources.ACME)
	}
	if img.Challenge != "http-01" || img.Account.Directory != LetsEncryptStaging || img.Account.StateDir != "/srv/acme" || img.Fallback != nil ||
		strings.Join(img.Names, " ") != "images.example static.example" {
		t.Fatalf("images on a: %+v", img)
	}
	if f := pa.Resources.Certificates[ACMEName("images.example")]; f.CertFile != "/srv/acme/certificates/images.example/fullchain.pem" || f.KeyFile != "/srv/acme/certificates/images.example/privkey.pem" {
		t.Fatalf("served from %+v", f)
	}
	www := pa.Resources.ACME[ACMEName("www.example")]
	if www.Challenge != "dns-01" || www.Account.DNSProvider != "ovh" || www.Account.Credentials != "/etc/offedge/ovh.ini" ||
		www.Fallback == nil || www.Fallback.CertFile != "/etc/letsencrypt/live/www.example/fullchain.pem" || www.Account.Directory != DefaultACMEDirectory {
		t.Fatalf("www on a: %+v", www)
	}
	pb, err := Compile(m, "b", Options{Root: "/lab/b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := pb.Resources.ACME[ACMEName("images.example")].Account.StateDir; got != "/lab/b"+DefaultACMEStateDir {
		t.Fatalf("b's state dir %q", got)
	}
	if _, ok := pb.Resources.ACME[ACMEName("www.example")]; ok {
		t.Fatal("b obtains www's certificate, which a serves")
	}
	// Each node forwards the HTTP-01 requests it cannot answer to the other,
	// under a host whose requests neither forwards again.
	for _, c := range []struct {
		p    *Plan
		peer string
		addr string
	}{{pa, "b", "192.0.2.2:80"}, {pb, "a", "192.0.2.1:80"}} {
		u, ok := c.p.Resources.Upstreams[ChallengeForwardUpstream(c.peer)]
		if !ok || len(u.Servers) != 1 || u.Servers[0].Addr != c.addr || u.Host != ChallengeForwardHost {
			t.Fatalf("%s: forward pool %+v", c.p.Node, u)
		}
		var routes, forwardSites int
		for _, l := range c.p.Listeners {
			for _, s := range l.HTTP.Sites {
				for _, r := range s.Routes {
					if r.Path == "/.well-known/acme-challenge/" && r.Upstream == u.Name {
						routes++
					}
				}
				if s.Name == challengeForwardSite {
					forwardSites++
					if l.HTTP.TLS || l.Addr.Port() != 80 {
						t.Fatalf("%s: forwarded-challenge site on %s", c.p.Node, l.Name)
					}
				}
			}
		}
		if routes != 2 || forwardSites != 1 {
			t.Fatalf("%s: %d forwarding routes (want 2: ports 80 and 443), %d forwarded-challenge sites (want 1)", c.p.Node, routes, forwardSites)
		}
	}
	var tb bytes.Buffer
	if err := pa.WriteText(&tb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"certificate acme:images.example: /srv/acme/certificates/images.example/fullchain.pem",
		"acme http-01 for images.example static.example, from " + LetsEncryptStaging + " (ops@example.org), state /srv/acme",
		"until issued: a self-signed placeholder",
		"dns provider ovh, credentials /etc/offedge/ovh.ini",
		"until issued: /etc/letsencrypt/live/www.example/fullchain.pem",
		"acme-challenge b",
	} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, tb.String())
		}
	}
}

// A site moved to another node in the inventory takes its certificate
// with it: the new node's plan obtains it, the old one's no longer does.
func TestACMECertificateMovesWithTheSite(t *testing.T) {
	moved := strings.Replace(acmeInventory, "  - name: www\n    node: a\n", "  - name: www\n    node: b\n", 1)
	m := loadInline(t, moved)
	pa, err := Compile(m, "a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Compile(m, "b", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pa.Resources.ACME[ACMEName("www.example")]; ok {
		t.Fatal("a still obtains www's certificate after the site moved to b")
	}
	if a, ok := pb.Resources.ACME[ACMEName("www.example")]; !ok || a.Account.StateDir != DefaultACMEStateDir {
		t.Fatalf("b does not obtain www's certificate: %+v", pb.Resources.ACME)
	}
}

func TestACMEInventoryErrors(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"directory: staging", "directory: http://ca.example/dir", "is not an https URL"},
		{"{email: ops@example.org}}", "{email: ops@example.org, challenge: http-02}}", `unknown challenge "http-02"`},
		{"dns_provider: ovh, credentials", "dns_provider: gandi, credentials", `unknown dns_provider "gandi"`},
		{"challenge: dns-01, dns_provider: ovh, ", "challenge: dns-01, ", "challenge dns-01 needs a dns_provider"},
		{"credentials: /etc/offedge/ovh.ini", "credentials: ovh.ini", "is not an absolute path"},
		{"acme_state_dir: /srv/acme", "acme_state_dir: srv/acme", "is not an absolute path"},
		{"{email: ops@example.org, directory: staging}", "{email: ops, directory: staging}", `email "ops" is not an address`},
		{"{email: ops@example.org}}", "{email: ops@example.org, dns_provider: ovh}}", "dns_provider \"ovh\" with challenge http-01"},
		{"tls: {acme: {email: ops@example.org}}", "tls: {hsts: false}", "no certificate source"},
	} {
		inv := strings.Replace(acmeInventory, c.from, c.to, 1)
		if inv == acmeInventory {
			t.Fatalf("%q not in the inventory", c.from)
		}
		_, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(inv)}}, "inventory.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "inventory.yaml:") {
			t.Errorf("%s -> %s: %v, want %q with a position", c.from, c.to, err, c.want)
		}
	}
}
