package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	legolog "github.com/go-acme/lego/v5/log"

	"github.com/offedge/offedge/certs/acme/ovhtest"
	"github.com/offedge/offedge/internal/secretfile"
	"github.com/offedge/offedge/internal/testutil"
)

// offCredentials is a credentials file as Open Food Facts keeps them for
// certbot-dns-ovh (/root/.ovhapi/<domain>, docs/nginx-reverse-proxy.md),
// with made-up keys.
const offCredentials = `# OVH API credentials used by Certbot
dns_ovh_endpoint = ovh-eu
dns_ovh_application_key = Ak7cW2fQpR9xLm3T
dns_ovh_application_secret = b9841238feb177a84330febba8a83208
dns_ovh_consumer_key = 256vfsd347245sdfgQ8rT1uV0wXyZ2aB
`

func TestParseOVHCredentials(t *testing.T) {
	c, err := ParseOVHCredentials([]byte(offCredentials))
	if err != nil {
		t.Fatal(err)
	}
	want := OVHCredentials{Endpoint: "ovh-eu", ApplicationKey: "Ak7cW2fQpR9xLm3T", ApplicationSecret: "b9841238feb177a84330febba8a83208", ConsumerKey: "256vfsd347245sdfgQ8rT1uV0wXyZ2aB"}
	if c != want {
		t.Fatalf("parsed %+v", c)
	}
	// configobj's other spellings: no spaces, quotes, CRLF, ; comments,
	// an inline comment, an API URL as endpoint.
	alt := "; keys\r\ndns_ovh_endpoint=https://eu.api.ovh.com/1.0\r\ndns_ovh_application_key='Ak7cW2fQpR9xLm3T'\r\n" +
		"dns_ovh_application_secret = \"b9841238feb177a84330febba8a83208\"\r\ndns_ovh_consumer_key = 256vfsd347245sdfgQ8rT1uV0wXyZ2aB # ck\r\n"
	c, err = ParseOVHCredentials([]byte(alt))
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "https://eu.api.ovh.com/1.0" || c.ApplicationKey != want.ApplicationKey || c.ApplicationSecret != want.ApplicationSecret || c.ConsumerKey != want.ConsumerKey {
		t.Fatalf("parsed %+v", c)
	}
	secret := "b9841238feb177a84330febba8a83208"
	for name, tc := range map[string]struct{ text, err string }{
		"missing key":     {strings.Replace(offCredentials, "dns_ovh_consumer_key", "#", 1), "dns_ovh_consumer_key is missing"},
		"typo":            {strings.Replace(offCredentials, "dns_ovh_application_key", "dns_ovh_aplication_key", 1), `line 3: unknown key "dns_ovh_aplication_key"`},
		"twice":           {offCredentials + "dns_ovh_application_secret = " + secret + "x\n", "line 6: dns_ovh_application_secret given twice"},
		"no equals":       {strings.Replace(offCredentials, "dns_ovh_application_secret = ", "dns_ovh_application_secret ", 1), "line 4: not \"key = value\""},
		"empty":           {strings.Replace(offCredentials, "= "+secret, "= ", 1), "line 4: dns_ovh_application_secret is empty"},
		"space in value":  {strings.Replace(offCredentials, "= "+secret, "= "+secret[:8]+" "+secret[8:], 1), "line 4: dns_ovh_application_secret holds spaces"},
		"control":         {strings.Replace(offCredentials, "= "+secret, "= "+secret+"\x00", 1), "holds spaces, quotes or control characters"},
		"bad endpoint":    {strings.Replace(offCredentials, "ovh-eu", "ovh-mars", 1), `dns_ovh_endpoint "ovh-mars" is neither`},
		"trailing slash":  {strings.Replace(offCredentials, "ovh-eu", "https://eu.api.ovh.com/1.0/", 1), "without a trailing slash"},
		"too long":        {strings.Replace(offCredentials, "= "+secret, "= "+strings.Repeat(secret, 9), 1), "longer than 256 bytes"},
		"secret as a key": {strings.Replace(offCredentials, "dns_ovh_application_secret = ", "\x01"+secret+"=", 1), "line 4: unknown key (expected"},
	} {
		_, err := ParseOVHCredentials([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", name, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), secret[:12]) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

func TestReadOVHCredentialsRefusesReadableFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "openfoodfacts.org")
	if err := os.WriteFile(path, []byte(offCredentials), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadOVHCredentials(path); err != nil {
		t.Fatalf("0600: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		os.Chmod(path, mode)
		_, err := ReadOVHCredentials(path)
		if !errors.Is(err, secretfile.ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("dns_ovh_endpoint = ovh-eu\n"), 0o600)
	if _, err := ReadOVHCredentials(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("incomplete file: %v", err)
	}
	if _, err := ReadOVHCredentials(filepath.Join(dir, "none")); err == nil {
		t.Error("a missing file read")
	}
	os.WriteFile(path, []byte(offCredentials), 0o600)
	if p, err := NewDNSProvider("ovh", path, nil); err != nil {
		t.Errorf("NewDNSProvider(ovh): %v", err)
	} else if _, ok := p.(StaleCleaner); !ok {
		t.Error("the OVH provider cannot clean stale records")
	}
	os.Chmod(path, 0o644)
	if _, err := NewDNSProvider("ovh", path, nil); !errors.Is(err, secretfile.ErrPermissions) {
		t.Errorf("NewDNSProvider with a readable file: %v", err)
	}
	if _, err := NewDNSProvider("route53", path, nil); err == nil || !strings.Contains(err.Error(), `unknown DNS provider "route53" (known: ovh)`) {
		t.Errorf("unknown provider: %v", err)
	}
}

// FuzzParseOVHCredentials: the parser never panics, what it accepts is
// four printable values without spaces that parse back the same when
// written out again, and an error never carries a value of the input.
func FuzzParseOVHCredentials(f *testing.F) {
	f.Add([]byte(offCredentials))
	f.Add([]byte("dns_ovh_endpoint=ovh-ca\ndns_ovh_application_key='a'\ndns_ovh_application_secret=\"b\"\ndns_ovh_consumer_key=c # x\n"))
	f.Add([]byte("dns_ovh_endpoint = http://127.0.0.1:1/1.0\r\n;\r\n#\r\n"))
	f.Add([]byte("= \n=\"\"\n'"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseOVHCredentials(b)
		if err != nil {
			return
		}
		for _, v := range []string{c.Endpoint, c.ApplicationKey, c.ApplicationSecret, c.ConsumerKey} {
			if v == "" || !printable(v) || strings.ContainsAny(v, " \t\"'") || len(v) > maxCredentialValue {
				t.Fatalf("accepted value %q", v)
			}
		}
		out := fmt.Sprintf("dns_ovh_endpoint = %s\ndns_ovh_application_key = %s\ndns_ovh_application_secret = %s\ndns_ovh_consumer_key = %s\n",
			c.Endpoint, c.ApplicationKey, c.ApplicationSecret, c.ConsumerKey)
		again, err := ParseOVHCredentials([]byte(out))
		if err != nil || again != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
		}
	})
}

// fakeOVH is the OVH stand-in publishing its TXT records to challtestsrv,
// with its DNS front (SOA for its zones, the rest relayed to challtestsrv)
// as lego's resolver.
type fakeOVH struct {
	*ovhtest.Server
	dns string // the front's address, for Config.Nameservers
	mu  sync.Mutex
	log []string // "fqdn=v1,v2" per publication
}

func startFakeOVH(t *testing.T, p *pebble, cfg ovhtest.Config) *fakeOVH {
	t.Helper()
	f := &fakeOVH{}
	cts := &challtestsrvDNS{mgmt: p.chall}
	cfg.Publish = func(fqdn string, values []string) error {
		f.mu.Lock()
		f.log = append(f.log, fqdn+"="+strings.Join(values, ","))
		f.mu.Unlock()
		if p.chall == "" {
			return nil // no pebble: published nowhere
		}
		ctx := context.Background()
		if err := cts.post(ctx, "/clear-txt", map[string]string{"host": fqdn}); err != nil {
			return err
		}
		for _, v := range values {
			if err := cts.post(ctx, "/set-txt", map[string]string{"host": fqdn, "value": v}); err != nil {
				return err
			}
		}
		return nil
	}
	f.Server = ovhtest.Start(cfg)
	t.Cleanup(f.Close)
	var err error
	if f.dns, err = f.ServeDNS(p.dnsAddr); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeOVH) credentials(secret string) OVHCredentials {
	return OVHCredentials{Endpoint: f.URL, ApplicationKey: "Ak7cW2fQpR9xLm3T", ApplicationSecret: secret, ConsumerKey: "256vfsd347245sdfgQ8rT1uV0wXyZ2aB"}
}

var ovhAccount = ovhtest.Config{ApplicationKey: "Ak7cW2fQpR9xLm3T", ApplicationSecret: "b9841238feb177a84330febba8a83208",
	ConsumerKey: "256vfsd347245sdfgQ8rT1uV0wXyZ2aB", Zones: []string{"example.test"}}

// TestOVHWildcard issues *.example.test and example.test through lego's
// OVH provider against the OVH stand-in: every call signed and checked,
// the TXT records published to challtestsrv where pebble really validates
// them, a stale _acme-challenge record left at OVH removed before the new
// challenges are presented, and nothing left in the zone afterwards.
func TestOVHWildcard(t *testing.T) {
	p := startPebble(t, 1, 1, 0)
	cfg := ovhAccount
	// Open Food Facts' token rules (docs/nginx-reverse-proxy.md).
	cfg.Rules = []ovhtest.Rule{{Method: "GET", Path: "/domain/zone/"}, {Method: "GET", Path: "/domain/zone/example.test/*"}, {Method: "PUT", Path: "/domain/zone/example.test/*"},
		{Method: "POST", Path: "/domain/zone/example.test/*"}, {Method: "DELETE", Path: "/domain/zone/example.test/*"}}
	f := startFakeOVH(t, p, cfg)
	staleID, err := f.Seed("example.test", "_acme-challenge", "stale-from-2024-01")
	if err != nil {
		t.Fatal(err)
	}
	log, logs := testutil.Logger(t)
	prov, err := NewOVH(f.credentials(cfg.ApplicationSecret), OVHOptions{PollingInterval: 100 * time.Millisecond, PropagationTimeout: 20 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	iss, err := NewIssuer(context.Background(), Config{Directory: p.dir, Email: "ops@example.org", StateDir: state,
		DNS01: prov, Nameservers: []string{f.dns}, HTTPClient: p.client, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := iss.Obtain(context.Background(), []string{"*.example.test", "example.test"})
	if err != nil {
		t.Fatalf("DNS-01 through OVH: %v\ncalls: %+v", err, f.Calls())
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "world.example.test", Roots: p.roots, Intermediates: intermediates(t, state, "*.example.test")}); err != nil {
		t.Fatalf("wildcard does not verify: %v", err)
	}
	if leaf.VerifyHostname("example.test") != nil {
		t.Fatalf("names %v", leaf.DNSNames)
	}
	// The calls, in order: the stale record listed and deleted and the
	// zone refreshed before the first new record is created.
	var seq []string
	for _, c := range f.Calls() {
		if c.Status != 200 {
			t.Errorf("call refused: %+v", c)
		}
		seq = append(seq, c.Method+" "+c.Path)
	}
	del := slices.Index(seq, fmt.Sprintf("DELETE /domain/zone/example.test/record/%d", staleID))
	firstPost := slices.Index(seq, "POST /domain/zone/example.test/record")
	list := slices.Index(seq, "GET /domain/zone/example.test/record?fieldType=TXT&subDomain=_acme-challenge")
	if list < 0 || del < list || firstPost < del || !slices.Contains(seq[del:firstPost], "POST /domain/zone/example.test/refresh") {
		t.Fatalf("calls %q: want the stale record listed, deleted and the zone refreshed before the first new record", seq)
	}
	posts, deletes := 0, 0
	for _, s := range seq {
		if s == "POST /domain/zone/example.test/record" {
			posts++
		}
		if strings.HasPrefix(s, "DELETE ") {
			deletes++
		}
	}
	if posts != 2 || deletes != 3 {
		t.Fatalf("%d records created, %d deleted; want 2 (wildcard and apex share the name) and 3 (with the stale one): %q", posts, deletes, seq)
	}
	if recs := f.Records("example.test"); len(recs) != 0 {
		t.Fatalf("records left in the zone: %+v", recs)
	}
	f.mu.Lock()
	pub := slices.Clone(f.log)
	f.mu.Unlock()
	if len(pub) < 3 || pub[0] != "_acme-challenge.example.test.=stale-from-2024-01" || pub[1] != "_acme-challenge.example.test.=" {
		t.Fatalf("publications %q: want the stale value, then none, then the challenges", pub)
	}
	for _, s := range pub[2:] {
		if strings.Contains(s, "stale") {
			t.Fatalf("the stale value was published with the challenges: %q", pub)
		}
	}
	if !strings.Contains(logs.String(), "lib=lego") || !strings.Contains(logs.String(), "dns01") {
		t.Fatalf("lego's own lines are not in the issuer's log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "stale ACME challenge records removed at OVH") {
		t.Fatalf("the clean-up is not logged:\n%s", logs)
	}
	for _, secret := range []string{cfg.ApplicationSecret, cfg.ConsumerKey} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a secret is in the log:\n%s", logs)
		}
	}
}

// TestOVHRefusedCalls: the stand-in refuses what OVH refuses, and the
// provider's errors say why without showing a secret: a wrong application
// secret (bad signature), an unknown consumer key, a consumer key without
// the GET rule stale records need, a zone the account does not have.
func TestOVHRefusedCalls(t *testing.T) {
	f := startFakeOVH(t, &pebble{}, ovhAccount)
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{f.dns}, Timeout: 5 * time.Second}))
	ctx := context.Background()
	good := f.credentials(ovhAccount.ApplicationSecret)
	present := func(c OVHCredentials, domain string) error {
		prov, err := NewOVH(c, OVHOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := prov.CleanStale(ctx, "_acme-challenge."+domain+"."); err != nil {
			return err
		}
		if err := prov.Present(ctx, domain, "tok", "tok.key"); err != nil {
			return err
		}
		return prov.CleanUp(ctx, domain, "tok", "tok.key")
	}
	if err := present(good, "world.example.test"); err != nil {
		t.Fatalf("signed with the right keys: %v", err)
	}
	n := len(f.Calls())
	wrong := good
	wrong.ApplicationSecret = "0000000000000000000000000000dead"
	err := present(wrong, "world.example.test")
	if err == nil || !strings.Contains(err.Error(), "(status code 400): \"Invalid signature\"") {
		t.Fatalf("wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), wrong.ApplicationSecret) {
		t.Fatalf("the error shows the secret: %v", err)
	}
	ck := good
	ck.ConsumerKey = "Q8rT1uV0wXyZ2aB256vfsd347245sdfg"
	if err := present(ck, "world.example.test"); err == nil || !strings.Contains(err.Error(), "(status code 403): \"This credential does not exist\"") {
		t.Fatalf("unknown consumer key: %v", err)
	}
	for _, c := range f.Calls()[n:] {
		if c.Status == 200 && c.Path != "/auth/time" {
			t.Fatalf("a call with wrong keys was answered: %+v", c)
		}
	}
	if err := present(good, "world.other.test"); err == nil || !strings.Contains(err.Error(), "could not find the zone of _acme-challenge.world.other.test.") {
		t.Fatalf("a zone not at OVH: %v", err)
	}
	// lego's documented rules (POST and DELETE only) cannot list stale records.
	cfg := ovhAccount
	cfg.Rules = []ovhtest.Rule{{Method: "POST", Path: "/domain/zone/*"}, {Method: "DELETE", Path: "/domain/zone/*"}}
	g := startFakeOVH(t, &pebble{}, cfg)
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{g.dns}, Timeout: 5 * time.Second}))
	if err := present(g.credentials(cfg.ApplicationSecret), "world.example.test"); err == nil || !strings.Contains(err.Error(), "(status code 403): \"This call has not been granted\"") || !strings.Contains(err.Error(), "listing the TXT records") {
		t.Fatalf("no GET rule: %v", err)
	}
	for _, c := range g.Calls() {
		if c.Method == "POST" && strings.HasSuffix(c.Path, "/record") {
			t.Fatalf("a record was created although stale ones could not be listed: %+v", g.Calls())
		}
	}
}

// TestCleaningKeepsTheProviderTimeout: the stale-record wrapper lego is
// given reports the provider's propagation timeout and polling interval
// (it hid them: lego then used its defaults), and lego's when the provider
// has none.
func TestCleaningKeepsTheProviderTimeout(t *testing.T) {
	prov, err := NewOVH(OVHCredentials{Endpoint: "ovh-eu", ApplicationKey: "k", ApplicationSecret: "s", ConsumerKey: "c"},
		OVHOptions{PropagationTimeout: 7 * time.Minute, PollingInterval: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var p challenge.Provider = &cleaning{Provider: prov, pending: map[string]int{}}
	pt, ok := p.(challenge.ProviderTimeout)
	if !ok {
		t.Fatal("the wrapper hides the provider's timeout")
	}
	if to, iv := pt.Timeout(); to != 7*time.Minute || iv != 3*time.Second {
		t.Fatalf("timeout %v, interval %v", to, iv)
	}
	if to, iv := (&cleaning{Provider: &challtestsrvDNS{}}).Timeout(); to != dns01.DefaultPropagationTimeout || iv != dns01.DefaultPollingInterval {
		t.Fatalf("without a provider timeout: %v, %v", to, iv)
	}
	// The runtime's DNS-01 hook takes NewDNSProvider as it is.
	var _ func(string, string, *slog.Logger) (challenge.Provider, error) = NewDNSProvider
}

// TestLegoLoggerLeftToTheProgram: an issuer's logger becomes lego's unless
// the program set lego's logger itself, which is then kept.
func TestLegoLoggerLeftToTheProgram(t *testing.T) {
	saved, ours := legolog.Default(), legoLogger.ours
	defer func() {
		legolog.SetDefault(saved)
		legoLogger.ours = ours
	}()
	a, abuf := testutil.Logger(t)
	useLegoLogger(a)
	legolog.Info("from lego, to a")
	if !strings.Contains(abuf.String(), "from lego, to a") || !strings.Contains(abuf.String(), "lib=lego") {
		t.Fatalf("lego's line is not in the issuer's log: %q", abuf)
	}
	b, bbuf := testutil.Logger(t)
	useLegoLogger(b)
	legolog.Info("from lego, to b")
	if !strings.Contains(bbuf.String(), "to b") || strings.Contains(abuf.String(), "to b") {
		t.Fatal("the last issuer's logger does not get lego's lines")
	}
	program, pbuf := testutil.Logger(t)
	legolog.SetDefault(program)
	useLegoLogger(a)
	legolog.Info("routed by the program")
	if !strings.Contains(pbuf.String(), "routed by the program") || strings.Contains(abuf.String(), "routed") {
		t.Fatal("an issuer replaced the logger the program gave lego")
	}
}
