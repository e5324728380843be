package inventory

import (
	"net/url"
	"strings"
)

// DNSProviders are the dns_provider values offedge can write DNS-01
// records with.
var dnsProviders = []string{"ovh"}

// validateACME checks a site's tls: acme: block. What cannot be known
// from the inventory alone (is port 80 reachable, is the credentials file
// readable) is `offedge check`'s.
func (b *builder) validateACME(s *Site, a *ACME, obj string) {
	switch a.Challenge {
	case "", ChallengeHTTP01, ChallengeTLSALPN01:
		if a.DNSProvider != "" {
			b.errf(a.Pos, obj, "use challenge: dns-01, or remove dns_provider", "dns_provider %q with challenge %s", a.DNSProvider, a.ChallengeOrDefault())
		}
	case ChallengeDNS01:
		if a.DNSProvider == "" {
			b.errf(a.Pos, obj, "add dns_provider: ovh and credentials: FILE", "challenge dns-01 needs a dns_provider")
		}
	default:
		b.errf(a.Pos, obj, "use http-01, dns-01 or tls-alpn-01", "unknown challenge %q", a.Challenge)
	}
	if a.DNSProvider != "" && !oneOf(a.DNSProvider, dnsProviders...) {
		b.errf(a.Pos, obj, "use "+strings.Join(dnsProviders, ", "), "unknown dns_provider %q", a.DNSProvider)
	}
	if a.Credentials != "" && a.DNSProvider == "" {
		b.errf(a.Pos, obj, "credentials are the DNS provider's: add challenge: dns-01 and dns_provider", "credentials without dns_provider")
	}
	if a.Credentials != "" && !strings.HasPrefix(a.Credentials, "/") {
		b.errf(a.Pos, obj, "e.g. credentials: /etc/offedge/ovh.ini", "credentials %q is not an absolute path", a.Credentials)
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " /\\\t") || strings.HasPrefix(a.Email, "@") || strings.HasSuffix(a.Email, "@")) {
		b.errf(a.Pos, obj, "e.g. email: ops@example.org", "email %q is not an address", a.Email)
	}
	if d := a.Directory; d != "" && d != ACMEStaging {
		u, err := url.Parse(d)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			b.errf(a.Pos, obj, "an https:// URL, or staging for Let's Encrypt's staging CA; omit it for Let's Encrypt", "directory %q is not an https URL", d)
		}
	}
	if len(s.Hosts) == 0 {
		b.errf(a.Pos, obj, "name the hosts the certificate is for (hosts: [...])", "an ACME certificate needs hosts; a default-only site has none")
	}
}

// ChallengeOrDefault is the challenge type, http-01 when unset.
func (a *ACME) ChallengeOrDefault() string {
	if a.Challenge == "" {
		return ChallengeHTTP01
	}
	return a.Challenge
}
