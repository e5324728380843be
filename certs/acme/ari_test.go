package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	legoapi "github.com/go-acme/lego/v5/acme/api"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/internal/testutil"
)

// acmeFront stands in front of a real pebble (Debian's pebble 2.4 has no
// renewal information) and passes everything through, keeping the Host, so
// pebble's URLs name the front, except: the directory gains renewalInfo
// when ari is set, renewal information is answered from window, and the
// first limitOrders new orders are refused as Let's Encrypt refuses an
// order over a rate limit (429, rateLimited, Retry-After).
type acmeFront struct {
	dir    string
	client *http.Client

	mu              sync.Mutex
	ari             bool
	window          func(certID string) (start, end time.Time, retryAfter string)
	asked           map[string]int
	limitOrders     int
	limitRetryAfter string
	orders          []map[string]any // new orders' payloads
}

func startFront(t *testing.T, p *pebble) *acmeFront {
	t.Helper()
	target, _ := url.Parse(p.dir)
	target.Path = ""
	f := &acmeFront{asked: map[string]int{}}
	pebbleTransport := p.client.Transport
	proxy := &httputil.ReverseProxy{Transport: pebbleTransport, Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case r.URL.Path == "/dir" && f.ari:
			req, _ := http.NewRequest("GET", p.dir, nil)
			req.Host = r.Host
			resp, err := (&http.Client{Transport: pebbleTransport}).Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			var d map[string]any
			json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			d["renewalInfo"] = "https://" + r.Host + "/renewal-info"
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(d)
			return
		case strings.HasPrefix(r.URL.Path, "/renewal-info/") && f.ari:
			id := strings.TrimPrefix(r.URL.Path, "/renewal-info/")
			f.asked[id]++
			start, end, ra := f.window(id)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", ra)
			json.NewEncoder(w).Encode(map[string]any{"suggestedWindow": map[string]time.Time{"start": start, "end": end}})
			return
		case r.URL.Path == "/order-plz" && r.Method == "POST":
			b, _ := io.ReadAll(r.Body)
			var jws struct{ Payload string }
			json.Unmarshal(b, &jws)
			var payload map[string]any
			if pb, err := base64.RawURLEncoding.DecodeString(jws.Payload); err == nil {
				json.Unmarshal(pb, &payload)
			}
			f.orders = append(f.orders, payload)
			if f.limitOrders > 0 {
				f.limitOrders--
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Set("Retry-After", f.limitRetryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders recently: see https://letsencrypt.org/docs/rate-limits/","status":429}`))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	pool := pebbleTransport.(*http.Transport).TLSClientConfig.RootCAs.Clone()
	pool.AddCert(srv.Certificate())
	f.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	f.dir = srv.URL + "/dir"
	return f
}

func (f *acmeFront) set(fn func(*acmeFront)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// manage runs a manager of a certificate for name, issued through the
// front by HTTP-01 from ch, until the test ends.
func (f *acmeFront) manage(t *testing.T, ch *Challenges, name string) (*Manager, *testutil.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log, logs := testutil.Logger(t)
	iss, err := NewIssuer(ctx, Config{Directory: f.dir, Email: "ops@example.org", StateDir: t.TempDir(), HTTP01: ch, HTTPClient: f.client, Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	m := NewManager(iss, certs.NewStore(certs.Options{Logger: log}))
	m.Add([]string{name})
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, logs
}

func certID(t *testing.T, leaf *x509.Certificate) string {
	id, err := legoapi.MakeARICertID(leaf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// servedLeaf is the leaf of the certificate file the manager wrote (the
// chain alone: the key is replaced first, so the pair may not match while
// a renewal is being written).
func servedLeaf(t *testing.T, m *Manager) *x509.Certificate {
	b, err := os.ReadFile(m.Statuses()[0].CertFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM in %q", b)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestARIWindowFollowed: with a CA publishing renewal information, a
// certificate living five years (its two-thirds renewal years away) is
// renewed in the window the CA suggests, the renewal order says which
// certificate it replaces, the new certificate's window is followed in
// turn, and when the CA moves a window earlier (as Let's Encrypt does
// before a mass revocation) the manager, asking again after the CA's
// Retry-After, renews at once.
func TestARIWindowFollowed(t *testing.T) {
	defer func(d time.Duration) { ariRecheckMin = d }(ariRecheckMin)
	ariRecheckMin = time.Second
	ch := NewChallenges()
	p := startPebble(t, serveChallenges(t, ch), 1, 0)
	f := startFront(t, p)
	far := time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second)
	var first, moved string // cert IDs: renew the first soon; the one moved: now
	soon := time.Now().Add(4 * time.Second).Truncate(time.Second)
	f.set(func(f *acmeFront) {
		f.ari = true
		f.window = func(id string) (time.Time, time.Time, string) {
			switch {
			case first == "" || id == first:
				first = id
				return soon, soon.Add(2 * time.Second), "3600"
			case id == moved:
				return time.Now().Add(-time.Hour), time.Now().Add(-time.Minute), "3600"
			}
			return far, far.Add(24 * time.Hour), "1"
		}
	})
	m, _ := f.manage(t, ch, "images.openfoodfacts.test")

	testutil.Eventually(t, 30*time.Second, "first issue", func() bool { return !m.Statuses()[0].NotAfter.IsZero() })
	leaf1 := servedLeaf(t, m)
	if life := leaf1.NotAfter.Sub(leaf1.NotBefore); life < 365*24*time.Hour {
		t.Fatalf("pebble issued for %v; the test needs a long-lived certificate", life)
	}
	// The manager asks for the new certificate's renewal information
	// after it serves it: on a loaded machine, a moment after.
	var id1 string
	testutil.Eventually(t, 30*time.Second, "renewal information asked for the first certificate", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		id1 = first
		return id1 != ""
	})
	if id1 != certID(t, leaf1) {
		t.Fatalf("renewal information asked for %q, the certificate is %q", id1, certID(t, leaf1))
	}
	testutil.Eventually(t, 30*time.Second, "renewal in the CA's window", func() bool {
		return servedLeaf(t, m).SerialNumber.Cmp(leaf1.SerialNumber) != 0
	})
	renewedAt := time.Now()
	if renewedAt.Before(soon) {
		t.Fatalf("renewed at %v, before the window's start %v", renewedAt, soon)
	}
	leaf2 := servedLeaf(t, m)
	f.mu.Lock()
	orders := append([]map[string]any(nil), f.orders...)
	f.mu.Unlock()
	if len(orders) != 2 || orders[0]["replaces"] != nil || orders[1]["replaces"] != id1 {
		t.Fatalf("orders %v: want the renewal to replace %s", orders, id1)
	}
	testutil.Eventually(t, 10*time.Second, "the new certificate's window", func() bool {
		s := m.Statuses()[0]
		return s.WindowStart.Equal(far) && !s.NextRenewal.Before(far) && s.NextRenewal.Before(far.Add(24*time.Hour))
	})
	// The CA moves the window of the current certificate to the past.
	f.set(func(*acmeFront) { moved = certID(t, leaf2) })
	testutil.Eventually(t, 30*time.Second, "renewal after the window moved", func() bool {
		return servedLeaf(t, m).SerialNumber.Cmp(leaf2.SerialNumber) != 0
	})
	if s := m.Statuses()[0]; s.LastError != "" || s.Failures != 0 {
		t.Fatalf("status %+v", s)
	}
}

// TestRateLimitedRetryAfter: a CA refusing an order over a rate limit
// (429, rateLimited, Retry-After: 7200) has the next attempt wait the two
// hours it says, not the one-minute backoff; the failure is in the status
// with the CA's reason; a forced renewal (offedge certs renew) still goes
// ahead. Without renewal information the next renewal is at two thirds of
// the lifetime, less the jitter.
func TestRateLimitedRetryAfter(t *testing.T) {
	ch := NewChallenges()
	p := startPebble(t, serveChallenges(t, ch), 1, 0)
	f := startFront(t, p)
	f.set(func(f *acmeFront) { f.limitOrders, f.limitRetryAfter = 1, "7200" })
	m, logs := f.manage(t, ch, "world.openfoodfacts.test")

	testutil.Eventually(t, 30*time.Second, "the rate-limited attempt", func() bool { return m.Statuses()[0].Failures == 1 })
	s := m.Statuses()[0]
	if wait := s.NextRenewal.Sub(s.LastAttempt); wait < 2*time.Hour || wait > 2*time.Hour+time.Minute {
		t.Fatalf("next attempt in %v after a Retry-After of 2 hours", wait)
	}
	if !strings.Contains(s.LastError, "rateLimited") || !strings.Contains(s.LastError, "too many new orders") {
		t.Fatalf("last error %q", s.LastError)
	}
	if !strings.Contains(logs.String(), "retry_in=2h") {
		t.Fatalf("the retry is not logged with its wait:\n%s", logs)
	}
	if !m.Renew("world.openfoodfacts.test") {
		t.Fatal("Renew: no such certificate")
	}
	testutil.Eventually(t, 30*time.Second, "the forced issue", func() bool {
		s := m.Statuses()[0]
		return !s.NotAfter.IsZero() && s.Failures == 0
	})
	leaf := servedLeaf(t, m)
	s = m.Statuses()[0]
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if lo, hi := leaf.NotBefore.Add(life*2/3-life/20), leaf.NotBefore.Add(life*2/3); s.NextRenewal.Before(lo) || s.NextRenewal.After(hi) || !s.WindowStart.IsZero() {
		t.Fatalf("next renewal %v (window %v): want two thirds of the lifetime, in [%v, %v]", s.NextRenewal, s.WindowStart, lo, hi)
	}
}
