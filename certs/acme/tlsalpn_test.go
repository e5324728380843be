package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/certs"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/plan"
)

// served is what the test site answers a normal client (over HTTP/2).
const served = "HTTP/2.0 302 Found https://world.openfoodfacts.test/x"

var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// tlsEdge starts an edge/http TLS listener serving one site with a
// self-signed certificate, answering TLS-ALPN-01 from alpn; it returns its
// address.
func tlsEdge(t *testing.T, alpn *ALPNChallenges, host string) string {
	t.Helper()
	cf, kf, err := certs.WriteSelfSigned(filepath.Join(t.TempDir(), "site"), certs.SelfSignedOptions{Names: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := httpedge.Build(nil, nil, nil, map[string]httpedge.Certificate{"site": {CertFile: cf, KeyFile: kf}}, httpedge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res.ALPNChallenges = alpn
	log, _ := testutil.Logger(t)
	srv, err := httpedge.NewServer(httpedge.Config{Listener: "https", TLS: true, Limits: plan.DefaultLimits(),
		Sites: []httpedge.Site{{Name: "images", Hosts: []string{host}, Certificate: "site", Default: true,
			Routes: []httpedge.Route{{Path: "/", Redirect: "https://world.openfoodfacts.test", RedirectCode: 302, MaxBodyBytes: 1024}}}}},
		res, httpedge.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln := testutil.Listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// normalGet is a browser-like client: h2 and http/1.1 offered.
func normalGet(t *testing.T, addr, host string) (string, *x509.Certificate) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Get("https://" + host + "/x")
	if err != nil {
		t.Fatalf("a normal client: %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Proto + " " + resp.Status + " " + resp.Header.Get("Location"), resp.TLS.PeerCertificates[0]
}

// TestALPNChallengesOnTheListener: a client offering only acme-tls/1 gets
// the pending challenge certificate of its server name and a closed
// connection, a name with none pending gets no handshake, and normal
// clients (h2, http/1.1, or acme-tls/1 among others) get the site.
func TestALPNChallengesOnTheListener(t *testing.T) {
	alpn := NewALPNChallenges()
	host := "images.openfoodfacts.test"
	addr := tlsEdge(t, alpn, host)
	if err := alpn.Present(context.Background(), host, "tok", "tok.thumbprint"); err != nil {
		t.Fatal(err)
	}
	acme := func(name string) (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: name, NextProtos: []string{httpedge.ACMETLS1}, InsecureSkipVerify: true})
	}
	c, err := acme(strings.ToUpper(host))
	if err != nil {
		t.Fatalf("acme-tls/1 handshake: %v", err)
	}
	st := c.ConnectionState()
	leaf := st.PeerCertificates[0]
	if st.NegotiatedProtocol != httpedge.ACMETLS1 || leaf.VerifyHostname(host) != nil {
		t.Fatalf("negotiated %q, certificate for %v", st.NegotiatedProtocol, leaf.DNSNames)
	}
	found := false
	for _, e := range leaf.Extensions {
		found = found || (e.Id.Equal(oidACMEIdentifier) && e.Critical)
	}
	if !found {
		t.Fatal("the challenge certificate has no critical acmeIdentifier extension")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("the validation connection was not closed: %d, %v", n, err)
	}
	c.Close()
	if c, err := acme("other.openfoodfacts.test"); err == nil {
		c.Close()
		t.Fatal("acme-tls/1 handshake for a name with no challenge pending succeeded")
	}
	body, cert := normalGet(t, addr, host)
	if body != served || hasACMEExtension(cert) {
		t.Fatalf("a normal client got %q with the challenge certificate: %v", body, hasACMEExtension(cert))
	}
	// acme-tls/1 among other protocols is a normal client.
	c, err = tls.Dial("tcp", addr, &tls.Config{ServerName: host, NextProtos: []string{httpedge.ACMETLS1, "http/1.1"}, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.ConnectionState(); st.NegotiatedProtocol != "http/1.1" || hasACMEExtension(st.PeerCertificates[0]) {
		t.Fatalf("acme-tls/1 and http/1.1 offered: negotiated %q", st.NegotiatedProtocol)
	}
	c.Close()
	alpn.CleanUp(context.Background(), host, "tok", "")
	if c, err := acme(host); err == nil {
		c.Close()
		t.Fatal("acme-tls/1 handshake after clean-up succeeded")
	}
}

func hasACMEExtension(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidACMEIdentifier) {
			return true
		}
	}
	return false
}

// TestTLSALPN01ThroughTheEdge: pebble validates TLS-ALPN-01 against the
// node's own edge/http TLS listener (pebble's tlsPort is its port) while
// the listener keeps serving its site to normal clients.
func TestTLSALPN01ThroughTheEdge(t *testing.T) {
	alpn := NewALPNChallenges()
	host := "images.openfoodfacts.test"
	addr := tlsEdge(t, alpn, host)
	_, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	p := startPebble(t, 1, pn, 0)
	log, _ := testutil.Logger(t)
	state := t.TempDir()
	iss, err := NewIssuer(context.Background(), Config{Directory: p.dir, Email: "ops@example.org", StateDir: state, TLSALPN01: alpn, HTTPClient: p.client, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := iss.Obtain(context.Background(), []string{host, "static.openfoodfacts.test"})
	if err != nil {
		t.Fatalf("TLS-ALPN-01 through the edge listener: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "static.openfoodfacts.test", Roots: p.roots, Intermediates: intermediates(t, state, host)}); err != nil {
		t.Fatalf("issued certificate: %v", err)
	}
	if _, ok := alpn.ChallengeCertificate(host); ok {
		t.Fatal("the challenge is still pending after the order")
	}
	if body, _ := normalGet(t, addr, host); body != served {
		t.Fatalf("the site after the order: %q", body)
	}
}

func TestALPNChallengesBound(t *testing.T) {
	a := NewALPNChallenges()
	for i := range maxTokens {
		a.certs["n"+strconv.Itoa(i)+".test"] = &tls.Certificate{}
	}
	if err := a.Present(context.Background(), "one-too-many.test", "t", "k"); err == nil {
		t.Fatal("more than maxTokens pending")
	}
	if err := a.Present(context.Background(), "n1.test", "t", "k"); err != nil {
		t.Fatalf("replacing a pending name: %v", err)
	}
}
