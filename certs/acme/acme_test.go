package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/challenge/dns01"

	"github.com/offedge/offedge/certs"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/plan"
)

func TestChallengesServe(t *testing.T) {
	c := NewChallenges()
	c.Present(context.Background(), "a.test", "tok", "tok.thumb")
	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("GET", ChallengePrefix+"tok"); code != 200 || body != "tok.thumb" {
		t.Fatalf("GET token: %d %q", code, body)
	}
	if code, _ := get("POST", ChallengePrefix+"tok"); code != 404 {
		t.Fatalf("POST: %d", code)
	}
	if code, _ := get("GET", ChallengePrefix+"other"); code != 404 {
		t.Fatalf("unknown token: %d", code)
	}
	c.CleanUp(context.Background(), "a.test", "tok", "")
	if code, _ := get("GET", ChallengePrefix+"tok"); code != 404 {
		t.Fatalf("after clean-up: %d", code)
	}
	for i := range maxTokens {
		if err := c.Present(context.Background(), "a.test", "t"+string(rune('a'+i%26))+strings.Repeat("x", i), "k"); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if err := c.Present(context.Background(), "a.test", "one-too-many", "k"); err == nil {
		t.Fatal("more than maxTokens accepted")
	}
}

func TestRenewAtAndBackoff(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	if got := RenewAt(leaf, 0); !got.Equal(nb.Add(60 * 24 * time.Hour)) {
		t.Fatalf("RenewAt(0) = %v, want day 60", got)
	}
	if got := RenewAt(leaf, 0.999); got.Before(nb.Add(55*24*time.Hour)) || !got.Before(nb.Add(60*24*time.Hour)) {
		t.Fatalf("RenewAt(0.999) = %v, want in (day 55.5, day 60)", got)
	}
	prev := time.Duration(0)
	for a := 1; a <= 20; a++ {
		d := Backoff(a, errors.New("x"))
		if d < prev*9/10 || d > 24*time.Hour*11/10 {
			t.Fatalf("Backoff(%d) = %v after %v", a, d, prev)
		}
		prev = d
	}
	if d := Backoff(1, errors.New("x")); d < time.Minute || d > time.Minute*11/10 {
		t.Fatalf("first backoff %v", d)
	}
	rl := &legoacme.RateLimitedError{ProblemDetails: &legoacme.ProblemDetails{Type: legoacme.RateLimitedErrorType}, RetryAfter: 3 * time.Hour}
	if d := Backoff(1, rl); d != 3*time.Hour {
		t.Fatalf("rate-limited backoff %v, want the CA's Retry-After", d)
	}
}

// TestHTTP01Issue obtains a certificate from a real pebble validating
// HTTP-01 against the node's challenge handler, and checks the state
// directory: account and certificate files 0600, reused on restart.
func TestHTTP01Issue(t *testing.T) {
	ch := NewChallenges()
	p := startPebble(t, serveChallenges(t, ch), 1, 0)
	state := t.TempDir()
	ctx := context.Background()
	log, _ := testutil.Logger(t)
	cfg := Config{Directory: p.dir, Email: "ops@example.org", StateDir: state, HTTP01: ch, HTTPClient: p.client, Logger: log}
	iss, err := NewIssuer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := iss.Obtain(ctx, []string{"world.openfoodfacts.test", "fr.openfoodfacts.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "fr.openfoodfacts.test", Roots: p.roots, Intermediates: intermediates(t, state, "world.openfoodfacts.test")}); err != nil {
		t.Fatalf("issued certificate does not verify against pebble's root: %v", err)
	}
	cf, kf := CertFiles(state, "world.openfoodfacts.test")
	if _, err := certs.LoadKeyPair(cf, kf, false); err != nil {
		t.Fatalf("certs cannot load the issued pair: %v", err)
	}
	filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		if path == state {
			return nil
		}
		if d.IsDir() && fi.Mode().Perm() != 0o700 || !d.IsDir() && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", path, fi.Mode().Perm())
		}
		if strings.HasSuffix(path, ".tmp") {
			t.Errorf("%s left behind", path)
		}
		return nil
	})
	acct := iss.user.Registration.Location
	again, err := NewIssuer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.user.Registration.Location != acct {
		t.Fatalf("restart registered a new account: %s, was %s", again.user.Registration.Location, acct)
	}
	// A name whose challenge the node cannot answer fails with the CA's reason.
	cfg2 := cfg
	cfg2.HTTP01 = &Challenges{tokens: map[string]string{}}
	cfg2.StateDir = t.TempDir()
	bad, err := NewIssuer(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Obtain(ctx, []string{"nobody.test"}); err == nil || !strings.Contains(err.Error(), "nobody.test") {
		t.Fatalf("unanswered challenge: %v", err)
	}
}

func intermediates(t *testing.T, state, name string) *x509.CertPool {
	cf, _ := CertFiles(state, name)
	b, err := os.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}

// TestRenewalWhileServing runs a Manager against pebble issuing
// certificates that live 30 seconds (renewed after about 20): a client keeps
// handshaking with a TLS server whose GetCertificate is the certs.Store,
// and every handshake succeeds while the served certificate changes.
func TestRenewalWhileServing(t *testing.T) {
	ch := NewChallenges()
	p := startPebble(t, serveChallenges(t, ch), 1, 30*time.Second)
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, _ := testutil.Logger(t)
	iss, err := NewIssuer(ctx, Config{Directory: p.dir, Email: "ops@example.org", StateDir: state, HTTP01: ch, HTTPClient: p.client, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	store := certs.NewStore(certs.Options{Logger: log})
	m := NewManager(iss, store)
	m.Add([]string{"images.openfoodfacts.test"})
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	testutil.Eventually(t, 30*time.Second, "first issue", func() bool {
		s := m.Statuses()[0]
		return !s.NotAfter.IsZero()
	})
	ln := testutil.Listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		TLSConfig: &tls.Config{GetCertificate: store.GetCertificate}}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()

	var handshakes atomic.Int64
	serials := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(serials) < 2 && time.Now().Before(deadline) {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "images.openfoodfacts.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake %d failed: %v", handshakes.Load(), err)
		}
		leaf := c.ConnectionState().PeerCertificates[0]
		c.Close()
		handshakes.Add(1)
		if time.Now().After(leaf.NotAfter) {
			t.Fatalf("served an expired certificate (not after %v)", leaf.NotAfter)
		}
		serials[leaf.SerialNumber.String()] = true
		time.Sleep(20 * time.Millisecond) // pace the client, not a synchronisation
	}
	if len(serials) < 2 {
		t.Fatalf("served %d certificates in %d handshakes; want the issue and a renewal", len(serials), handshakes.Load())
	}
	s := m.Statuses()[0]
	if s.LastError != "" || s.LastAttempt.IsZero() || !s.NextRenewal.After(s.LastAttempt) {
		t.Fatalf("status after renewals: %+v", s)
	}
}

// TestHTTP01ThroughTheEdge: pebble validates HTTP-01 against the node's own
// plain-HTTP listener (edge/http, with redirect_https, no site naming the
// host), the challenge store being the listener's Challenges resource.
func TestHTTP01ThroughTheEdge(t *testing.T) {
	ch := NewChallenges()
	srv, err := httpedge.NewServer(httpedge.Config{Listener: "http", RedirectHTTPS: true, Limits: plan.DefaultLimits(),
		Sites: []httpedge.Site{{Name: "off", Hosts: []string{"world.openfoodfacts.test"}}}},
		httpedge.Resources{Challenges: ch}, httpedge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln := testutil.Listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	pn, _ := strconv.Atoi(port)
	p := startPebble(t, pn, 1, 0)
	iss, err := NewIssuer(context.Background(), Config{Directory: p.dir, Email: "ops@example.org", StateDir: t.TempDir(), HTTP01: ch, HTTPClient: p.client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Obtain(context.Background(), []string{"images.openfoodfacts.test"}); err != nil {
		t.Fatalf("HTTP-01 through the edge listener: %v", err)
	}
}

// challtestsrvDNS is a lego DNS provider writing TXT records through
// pebble-challtestsrv's management API (pebble's DNS server in the tests).
type challtestsrvDNS struct {
	mgmt    string
	dns     string // challtestsrv's DNS address
	present atomic.Int64
	cleaned atomic.Int64
	// seen are the TXT values resolvers saw right after each Present.
	mu   sync.Mutex
	seen [][]string
}

// CleanStale removes every TXT value of fqdn (challtestsrv's clear-txt).
func (c *challtestsrvDNS) CleanStale(ctx context.Context, fqdn string) error {
	return c.post(ctx, "/clear-txt", map[string]string{"host": fqdn})
}

func (c *challtestsrvDNS) post(ctx context.Context, path string, body map[string]string) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+c.mgmt+path, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("challtestsrv %s: %s", path, resp.Status)
	}
	return nil
}

func (c *challtestsrvDNS) Present(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	c.present.Add(1)
	if err := c.post(ctx, "/set-txt", map[string]string{"host": info.EffectiveFQDN, "value": info.Value}); err != nil {
		return err
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, c.dns)
	}}
	txt, err := r.LookupTXT(ctx, info.EffectiveFQDN)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.seen = append(c.seen, txt)
	c.mu.Unlock()
	return nil
}

func (c *challtestsrvDNS) CleanUp(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	c.cleaned.Add(1)
	return c.post(ctx, "/clear-txt", map[string]string{"host": info.EffectiveFQDN})
}

// TestDNS01Wildcard issues a wildcard certificate by DNS-01: TXT records
// set through challtestsrv, which pebble resolves against, and removed after.
func TestDNS01Wildcard(t *testing.T) {
	p := startPebble(t, 1, 1, 0)
	dns := &challtestsrvDNS{mgmt: p.chall, dns: p.dnsAddr}
	iss, err := NewIssuer(context.Background(), Config{Directory: p.dir, Email: "ops@example.org", StateDir: t.TempDir(),
		DNS01: dns, Nameservers: []string{p.dnsAddr}, HTTPClient: p.client})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := iss.Obtain(context.Background(), []string{"*.openfoodfacts.test", "openfoodfacts.test"})
	if err != nil {
		t.Fatalf("DNS-01: %v", err)
	}
	if leaf.VerifyHostname("world.openfoodfacts.test") != nil || leaf.VerifyHostname("openfoodfacts.test") != nil {
		t.Fatalf("names %v", leaf.DNSNames)
	}
	if dns.present.Load() != 2 || dns.cleaned.Load() != 2 {
		t.Fatalf("presented %d, cleaned %d TXT records; want 2 and 2", dns.present.Load(), dns.cleaned.Load())
	}
}

// TestDNS01CleansStaleRecords: a TXT record left at _acme-challenge by an
// earlier order is removed before the new challenge is presented, so the
// resolvers (and the CA) see only the new value.
func TestDNS01CleansStaleRecords(t *testing.T) {
	p := startPebble(t, 1, 1, 0)
	dns := &challtestsrvDNS{mgmt: p.chall, dns: p.dnsAddr}
	ctx := context.Background()
	if err := dns.post(ctx, "/set-txt", map[string]string{"host": "_acme-challenge.static.openfoodfacts.test.", "value": "stale-from-2024"}); err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(ctx, Config{Directory: p.dir, Email: "ops@example.org", StateDir: t.TempDir(),
		DNS01: dns, Nameservers: []string{p.dnsAddr}, HTTPClient: p.client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Obtain(ctx, []string{"static.openfoodfacts.test"}); err != nil {
		t.Fatalf("DNS-01: %v", err)
	}
	dns.mu.Lock()
	defer dns.mu.Unlock()
	if len(dns.seen) != 1 || len(dns.seen[0]) != 1 || dns.seen[0][0] == "stale-from-2024" {
		t.Fatalf("TXT values after Present: %q; want only the new one", dns.seen)
	}
}
