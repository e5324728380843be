package acme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	legoovh "github.com/go-acme/lego/v5/providers/dns/ovh"
	"github.com/ovh/go-ovh/ovh"

	"github.com/offedge/offedge/internal/secretfile"
)

// OVHCredentials are the OVH API keys a DNS-01 provider signs its calls
// with: an application key and secret and a consumer key (created at
// https://eu.api.ovh.com/createToken/), and the API endpoint.
type OVHCredentials struct {
	// Endpoint is an OVH endpoint name (ovh-eu, ovh-ca, ovh-us,
	// kimsufi-eu, ...) or the API's URL.
	Endpoint          string
	ApplicationKey    string
	ApplicationSecret string
	ConsumerKey       string
}

// The credentials file's keys: certbot-dns-ovh's, so that the files Open
// Food Facts keeps in /root/.ovhapi/<domain> for certbot work as they are.
var ovhKeys = [...]string{"dns_ovh_endpoint", "dns_ovh_application_key", "dns_ovh_application_secret", "dns_ovh_consumer_key"}

// maxCredentialValue bounds one value of a credentials file (OVH's keys
// are 16 to 32 characters).
const maxCredentialValue = 256

// ParseOVHCredentials parses a credentials file in certbot-dns-ovh's
// format: one "key = value" per line (the value may be quoted), blank lines
// and lines starting with # or ; ignored, and exactly the four keys
// dns_ovh_endpoint, dns_ovh_application_key, dns_ovh_application_secret and
// dns_ovh_consumer_key, each once. Errors name the line and the key, never
// a value.
func ParseOVHCredentials(b []byte) (OVHCredentials, error) {
	var vals [len(ovhKeys)]string
	var seen [len(ovhKeys)]bool
	for n, line := range bytes.Split(b, []byte("\n")) {
		lineNo := n + 1
		s := strings.TrimSpace(strings.TrimSuffix(string(line), "\r"))
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return OVHCredentials{}, fmt.Errorf("line %d: not \"key = value\"", lineNo)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		i := -1
		for j, name := range ovhKeys {
			if k == name {
				i = j
			}
		}
		if i < 0 {
			if !printable(k) || len(k) > 64 {
				return OVHCredentials{}, fmt.Errorf("line %d: unknown key (expected %s)", lineNo, strings.Join(ovhKeys[:], ", "))
			}
			return OVHCredentials{}, fmt.Errorf("line %d: unknown key %q (expected %s)", lineNo, k, strings.Join(ovhKeys[:], ", "))
		}
		if seen[i] {
			return OVHCredentials{}, fmt.Errorf("line %d: %s given twice", lineNo, k)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		} else if c, _, ok := strings.Cut(v, " #"); ok {
			v = strings.TrimSpace(c) // an inline comment, as configobj reads it
		}
		switch {
		case v == "":
			return OVHCredentials{}, fmt.Errorf("line %d: %s is empty", lineNo, k)
		case len(v) > maxCredentialValue:
			return OVHCredentials{}, fmt.Errorf("line %d: %s is longer than %d bytes", lineNo, k, maxCredentialValue)
		case !printable(v) || strings.ContainsAny(v, " \t\"'"):
			return OVHCredentials{}, fmt.Errorf("line %d: %s holds spaces, quotes or control characters", lineNo, k)
		}
		seen[i], vals[i] = true, v
	}
	for i, ok := range seen {
		if !ok {
			return OVHCredentials{}, fmt.Errorf("%s is missing", ovhKeys[i])
		}
	}
	c := OVHCredentials{Endpoint: vals[0], ApplicationKey: vals[1], ApplicationSecret: vals[2], ConsumerKey: vals[3]}
	if _, err := c.endpointURL(); err != nil {
		return OVHCredentials{}, err
	}
	return c, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return false
		}
	}
	return true
}

// endpointURL is the API URL the endpoint names.
func (c OVHCredentials) endpointURL() (string, error) {
	if u, ok := ovh.Endpoints[c.Endpoint]; ok {
		return u, nil
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.HasSuffix(c.Endpoint, "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("dns_ovh_endpoint %q is neither an OVH endpoint name (ovh-eu, ovh-ca, ovh-us, ...) nor an API URL without a trailing slash", c.Endpoint)
	}
	return c.Endpoint, nil
}

// ReadOVHCredentials reads and parses a credentials file
// ([ParseOVHCredentials]); a file that group or others can read is refused,
// as certbot warns about and as offedge refuses for every key file.
func ReadOVHCredentials(path string) (OVHCredentials, error) {
	b, err := secretfile.ReadFile(path, 0o077, "OVH credentials file")
	if err != nil {
		return OVHCredentials{}, err
	}
	defer clear(b)
	c, err := ParseOVHCredentials(b)
	if err != nil {
		return OVHCredentials{}, fmt.Errorf("OVH credentials file %s: %w", path, err)
	}
	return c, nil
}

// OVHOptions tune an [OVH] provider; zero fields take the defaults.
type OVHOptions struct {
	// HTTPClient talks to the API (nil: a client with a 30-second timeout).
	HTTPClient *http.Client
	// TTL of the TXT records (default 120 s, lego's).
	TTL int
	// PropagationTimeout bounds the wait for the record to be seen by the
	// resolvers (default 60 s); PollingInterval is how often they are
	// asked (default 2 s).
	PropagationTimeout, PollingInterval time.Duration
	// Logger receives the stale records removed; nil discards.
	Logger *slog.Logger
}

// OVH is the DNS-01 provider for zones hosted at OVH: lego's OVH provider
// (it adds the TXT record and refreshes the zone, and removes the record
// after validation), and the removal of stale _acme-challenge records
// ([StaleCleaner]) through the same signed API. Its consumer key needs GET,
// POST and DELETE on /domain/zone/<zone>/*.
type OVH struct {
	*legoovh.DNSProvider
	api *ovh.Client
	log *slog.Logger
}

// NewOVH returns an OVH provider signing with c.
func NewOVH(c OVHCredentials, o OVHOptions) (*OVH, error) {
	endpoint, err := c.endpointURL()
	if err != nil {
		return nil, err
	}
	if c.ApplicationKey == "" || c.ApplicationSecret == "" || c.ConsumerKey == "" {
		return nil, errors.New("ovh: application key, application secret and consumer key are all needed")
	}
	if o.TTL == 0 {
		o.TTL = dns01.DefaultTTL
	}
	if o.PropagationTimeout == 0 {
		o.PropagationTimeout = dns01.DefaultPropagationTimeout
	}
	if o.PollingInterval == 0 {
		o.PollingInterval = dns01.DefaultPollingInterval
	}
	// go-ovh sets its client's Timeout on every request: each user gets
	// its own copy.
	httpClient := func() *http.Client {
		if o.HTTPClient == nil {
			return &http.Client{Timeout: 30 * time.Second}
		}
		cp := *o.HTTPClient
		return &cp
	}
	p, err := legoovh.NewDNSProviderConfig(&legoovh.Config{
		APIEndpoint: endpoint, ApplicationKey: c.ApplicationKey, ApplicationSecret: c.ApplicationSecret, ConsumerKey: c.ConsumerKey,
		TTL: o.TTL, PropagationTimeout: o.PropagationTimeout, PollingInterval: o.PollingInterval, HTTPClient: httpClient(),
	})
	if err != nil {
		return nil, err
	}
	api, err := ovh.NewClient(endpoint, c.ApplicationKey, c.ApplicationSecret, c.ConsumerKey)
	if err != nil {
		return nil, fmt.Errorf("ovh: %w", err)
	}
	api.Client = httpClient()
	api.Timeout = api.Client.Timeout
	if api.Timeout == 0 {
		api.Timeout = 30 * time.Second
	}
	api.UserAgent = "offedge"
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &OVH{DNSProvider: p, api: api, log: o.Logger}, nil
}

// CleanStale removes every TXT record of fqdn from its OVH zone (records
// left by orders that never cleaned up: the 2024-01-19 failures) and
// refreshes the zone when it removed any.
func (o *OVH) CleanStale(ctx context.Context, fqdn string) error {
	zone, err := dns01.DefaultClient().FindZoneByFqdn(ctx, fqdn)
	if err != nil {
		return fmt.Errorf("ovh: could not find the zone of %s: %w", fqdn, err)
	}
	zone = dns01.UnFqdn(zone)
	sub, err := dns01.ExtractSubDomain(fqdn, zone)
	if err != nil {
		return fmt.Errorf("ovh: %w", err)
	}
	base := "/domain/zone/" + url.PathEscape(zone) + "/record"
	var ids []int64
	q := url.Values{"fieldType": {"TXT"}, "subDomain": {sub}}
	if err := o.api.GetWithContext(ctx, base+"?"+q.Encode(), &ids); err != nil {
		return fmt.Errorf("ovh: listing the TXT records of %s: %w", fqdn, err)
	}
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		if err := o.api.DeleteWithContext(ctx, fmt.Sprintf("%s/%d", base, id), nil); err != nil {
			return fmt.Errorf("ovh: deleting stale record %d of %s: %w", id, fqdn, err)
		}
	}
	if err := o.api.PostWithContext(ctx, "/domain/zone/"+url.PathEscape(zone)+"/refresh", nil, nil); err != nil {
		return fmt.Errorf("ovh: refreshing zone %s: %w", zone, err)
	}
	o.log.Warn("stale ACME challenge records removed at OVH", "name", fqdn, "zone", zone, "records", len(ids))
	return nil
}

// DNSProviders are the DNS-01 providers [NewDNSProvider] knows, by the
// names an inventory gives them.
var DNSProviders = []string{"ovh"}

// NewDNSProvider returns the DNS-01 provider called name, its credentials
// read from the file credentials (for "ovh": [ReadOVHCredentials]'s format).
func NewDNSProvider(name, credentials string, log *slog.Logger) (challenge.Provider, error) {
	switch name {
	case "ovh":
		c, err := ReadOVHCredentials(credentials)
		if err != nil {
			return nil, err
		}
		return NewOVH(c, OVHOptions{Logger: log})
	}
	return nil, fmt.Errorf("acme: unknown DNS provider %q (known: %s)", name, strings.Join(DNSProviders, ", "))
}
