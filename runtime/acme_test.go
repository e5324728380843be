package runtime

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/certs/acme"
	"github.com/offedge/offedge/internal/pebble"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// The runtime's ACME tests share one pebble, validating HTTP-01 on
// acmeHTTPPort and TLS-ALPN-01 on acmeTLSPort of whatever address
// challtestsrv resolves a name to (node a unless a test says otherwise):
// node a is 127.0.0.31, node b 127.0.0.32, each with its port-80 and
// port-443 listeners on those ports. Certificates live 45 seconds, so that a renewal happens
// while a test watches.
var (
	pebbleOnce   sync.Once
	sharedPebble *pebble.Server
	pebbleRoots  *x509.CertPool
	acmeHTTPPort int
	acmeTLSPort  int
	pebbleErr    error
)

const acmeValidity = 45 * time.Second

func startSharedPebble(t *testing.T) *pebble.Server {
	t.Helper()
	testutil.RequireBinary(t, "pebble")
	testutil.RequireBinary(t, "pebble-challtestsrv")
	pebbleOnce.Do(func() {
		acmeHTTPPort = freePortOn(t, "127.0.0.31", "127.0.0.32")
		acmeTLSPort = freePortOn(t, "127.0.0.31", "127.0.0.32")
		out := new(testutil.SyncBuffer)
		sharedPebble, pebbleErr = pebble.Start(context.Background(), pebble.Options{Dir: filepath.Join(os.TempDir(), fmt.Sprintf("offedge-runtime-pebble-%d", os.Getpid())),
			HTTPPort: acmeHTTPPort, TLSPort: acmeTLSPort, Validity: acmeValidity, Output: out, DefaultIPv4: "127.0.0.31"})
		if pebbleErr == nil {
			pebbleRoots, pebbleErr = sharedPebble.Roots(context.Background())
		}
		if pebbleErr != nil {
			pebbleErr = fmt.Errorf("%w\n%s", pebbleErr, out)
		}
	})
	if pebbleErr != nil {
		t.Fatal(pebbleErr)
	}
	return sharedPebble
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPebble != nil {
		sharedPebble.Close()
		os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("offedge-runtime-pebble-%d", os.Getpid())))
	}
	os.Exit(code)
}

// freePortOn is a port free on every ip a moment ago.
func freePortOn(t *testing.T, ips ...string) int {
	t.Helper()
	for range 50 {
		p := freePort(t, ips[0])
		ok := true
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			n, _ := strconv.Atoi(p)
			return n
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

// acmeInventory has nodes a and b; sites are added by the tests.
func acmeInventory(t *testing.T, sites string) *inventory.Model {
	t.Helper()
	inv := `providers: [{name: local, locations: [{name: here}]}]
networks:
  - {name: lan, kind: private, prefixes: [127.0.0.0/8]}
servers:
  - name: a
    provider: local
    mode: bare-metal
    acme_state_dir: STATE/a
    addresses: [{network: lan, ip: 127.0.0.31}]
  - name: b
    provider: local
    mode: bare-metal
    acme_state_dir: STATE/b
    addresses: [{network: lan, ip: 127.0.0.32}]
sites:
` + sites
	dir := t.TempDir()
	r := strings.NewReplacer("STATE", dir, "PORT80", strconv.Itoa(acmeHTTPPort), "PORT443", strconv.Itoa(acmeTLSPort), "DIRECTORY", sharedPebble.Directory)
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(r.Replace(inv)), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := inventory.LoadPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// acmeSite is a site issuing by HTTP-01 from the shared pebble.
func acmeSite(name, node, hosts, extra string) string {
	return fmt.Sprintf(`  - name: %s
    node: %s
    hosts: [%s]
    listen: [{network: lan, port: PORT443, tls: true}, {network: lan, port: PORT80, redirect_https: true}]
    tls: {acme: {email: ops@example.org, directory: DIRECTORY%s}}
    routes: [{path: /, redirect: "https://elsewhere.example/"}]
`, name, node, hosts, extra)
}

func compileNode(t *testing.T, m *inventory.Model, node string) *plan.Plan {
	t.Helper()
	p, err := plan.Compile(m, node, plan.Options{HTTP01Port: acmeHTTPPort})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startACMENode(t *testing.T, p *plan.Plan) *Node {
	t.Helper()
	return startACMENodeWith(t, p, ACMEOptions{HTTPClient: sharedPebble.Client})
}

func startACMENodeWith(t *testing.T, p *plan.Plan, o ACMEOptions) *Node {
	t.Helper()
	log, _ := testutil.Logger(t)
	n, err := Start(p, Options{Logger: log, FDLimit: 4096, ACME: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// served is the leaf a TLS handshake with addr for name presents.
func served(addr, name string) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// waitIssued waits until addr serves name a certificate pebble issued.
func waitIssued(t *testing.T, addr, name string) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	testutil.Eventually(t, 60*time.Second, fmt.Sprintf("%s to serve %s a certificate from pebble", addr, name), func() bool {
		l, err := served(addr, name)
		if err != nil {
			return false
		}
		inter := x509.NewCertPool()
		if _, err := l.Verify(x509.VerifyOptions{DNSName: name, Roots: pebbleRoots, Intermediates: inter}); err != nil {
			// The chain has an intermediate: ask for the whole chain.
			c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: pebbleRoots})
			if err != nil {
				return false
			}
			c.Close()
		}
		leaf = l
		return true
	})
	return leaf
}

func acmeStatus(n *Node, name string) (ACMEStatus, bool) {
	for _, s := range n.Status().ACME {
		if s.Name == plan.ACMEName(name) {
			return s, true
		}
	}
	return ACMEStatus{}, false
}

// TestACMEIssueAndServe: a site with tls: acme gets a certificate from
// pebble (HTTP-01 answered by the node's own port-80 listener, which
// redirects everything else to https) and serves it; the state directory
// holds it 0600; status and renewal times are reported; the certificate is
// renewed while clients keep connecting, with no failed handshake.
func TestACMEIssueAndServe(t *testing.T) {
	startSharedPebble(t)
	m := acmeInventory(t, acmeSite("img", "a", "images.acme.test, static.acme.test", ""))
	p := compileNode(t, m, "a")
	n := startACMENode(t, p)
	addr := fmt.Sprintf("127.0.0.31:%d", acmeTLSPort)
	first := waitIssued(t, addr, "static.acme.test")
	st, ok := acmeStatus(n, "images.acme.test")
	if !ok || st.Placeholder || st.NotAfter.IsZero() || !st.NextRenewal.After(st.LastSuccess) || st.LastSuccess.IsZero() || st.LastError != "" {
		t.Fatalf("status after issue: %+v", st)
	}
	fi, err := os.Stat(p.Resources.Certificates[plan.ACMEName("images.acme.test")].KeyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, fi)
	}
	// Renewal at two thirds of 45 s (15 s left for an issue on a loaded machine), while a client keeps handshaking.
	deadline := time.Now().Add(90 * time.Second)
	var handshakes, failed int
	for time.Now().Before(deadline) {
		l, err := served(addr, "images.acme.test")
		handshakes++
		if err != nil {
			failed++
			t.Logf("handshake %d: %v", handshakes, err)
			continue
		}
		if time.Now().After(l.NotAfter) {
			t.Fatalf("an expired certificate was served (not after %v)", l.NotAfter)
		}
		if l.SerialNumber.Cmp(first.SerialNumber) != 0 {
			break
		}
		time.Sleep(50 * time.Millisecond) // pacing the client, not synchronisation
	}
	if failed > 0 {
		t.Fatalf("%d of %d handshakes failed during renewal", failed, handshakes)
	}
	if l, err := served(addr, "images.acme.test"); err != nil || l.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("no renewed certificate served within a minute (%d handshakes): %v", handshakes, err)
	}
}

// TestACMEPlaceholderWhileIssuing: while the CA cannot be reached the
// site is served a self-signed placeholder for its names (or the files
// the inventory also gives, a copy from the previous node), and the
// failure is reported with its reason.
func TestACMEPlaceholderWhileIssuing(t *testing.T) {
	startSharedPebble(t)
	fb := t.TempDir()
	cf, kf, err := certs.WriteSelfSigned(fb, certs.SelfSignedOptions{Names: []string{"copied.acme.test"}})
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://127.0.0.1:" + freePort(t, "127.0.0.1") + "/dir"
	sites := strings.Replace(acmeSite("ph", "a", "ph.acme.test", ""), "DIRECTORY", dead, 1) +
		strings.Replace(strings.Replace(acmeSite("cp", "a", "copied.acme.test", ""), "DIRECTORY", dead, 1),
			"tls: {acme:", "tls: {cert_file: "+cf+", key_file: "+kf+", acme:", 1)
	m := acmeInventory(t, sites)
	n := startACMENode(t, compileNode(t, m, "a"))
	addr := fmt.Sprintf("127.0.0.31:%d", acmeTLSPort)
	l, err := served(addr, "ph.acme.test")
	if err != nil || l.Subject.CommonName != "ph.acme.test" || l.Issuer.CommonName != "ph.acme.test" {
		t.Fatalf("placeholder: %v %v", err, l)
	}
	want, _ := certs.LoadKeyPair(cf, kf, false)
	if l, err := served(addr, "copied.acme.test"); err != nil || !l.Equal(want.Leaf) {
		t.Fatalf("the copied certificate is not served while issuing: %v", err)
	}
	testutil.Eventually(t, 20*time.Second, "the failure to be reported", func() bool {
		st, _ := acmeStatus(n, "ph.acme.test")
		return st.Placeholder && st.Failures > 0 && strings.Contains(st.LastError, "127.0.0.1") && !st.NextRenewal.IsZero()
	})
	for _, c := range n.Status().Certificates {
		if c.Name == plan.ACMEName("ph.acme.test") && !c.NotAfter.IsZero() {
			t.Fatal("a self-signed placeholder's expiry is reported as the certificate's")
		}
		if c.Name == plan.ACMEName("copied.acme.test") && !c.NotAfter.Equal(want.Leaf.NotAfter) {
			t.Fatal("the copied certificate's expiry is not reported")
		}
	}
	if err := n.RenewCertificate("nothing.acme.test"); err == nil {
		t.Fatal("renewing a certificate the node does not have succeeded")
	}
}

// TestACMECertificateFollowsTheSite: a site moved from a to b in the
// inventory (two runtimes, reloaded with their new plans) is issued its
// certificate on b, which serves it; a no longer manages it.
func TestACMECertificateFollowsTheSite(t *testing.T) {
	startSharedPebble(t)
	other := acmeSite("other", "b", "other.acme.test", "")
	before := acmeInventory(t, acmeSite("moving", "a", "moving.acme.test", "")+other)
	na := startACMENode(t, compileNode(t, before, "a"))
	nb := startACMENode(t, compileNode(t, before, "b"))
	waitIssued(t, fmt.Sprintf("127.0.0.31:%d", acmeTLSPort), "moving.acme.test")
	if _, ok := acmeStatus(nb, "moving.acme.test"); ok {
		t.Fatal("b manages moving's certificate before the move")
	}
	after := acmeInventory(t, acmeSite("moving", "b", "moving.acme.test", "")+other)
	ctx := context.Background()
	if err := na.Apply(ctx, compileNode(t, after, "a")); err != nil {
		t.Fatal(err)
	}
	if err := nb.Apply(ctx, compileNode(t, after, "b")); err != nil {
		t.Fatal(err)
	}
	// challtestsrv resolves every name to a (127.0.0.31) by default; the name now points to b.
	if err := sharedPebble.SetA("moving.acme.test", "127.0.0.32"); err != nil {
		t.Fatal(err)
	}
	// The shared challtestsrv outlives the test (-count=2 issued nothing
	// for a the second time round).
	t.Cleanup(func() {
		if err := sharedPebble.ClearA("moving.acme.test"); err != nil {
			t.Errorf("clearing moving.acme.test's address: %v", err)
		}
	})
	waitIssued(t, fmt.Sprintf("127.0.0.32:%d", acmeTLSPort), "moving.acme.test")
	if _, ok := acmeStatus(na, "moving.acme.test"); ok {
		t.Fatal("a still manages moving's certificate after the move")
	}
	for _, r := range na.Status().Resources {
		if strings.Contains(r, "moving.acme.test") {
			t.Fatalf("a still holds %s", r)
		}
	}
}

// TestACMEHTTP01Forwarded: images.acme.test is served by a and b, both
// issuing by HTTP-01, and its DNS points to a: b's validation requests
// reach a, which forwards the tokens it does not hold to b. Both get a
// certificate. A token neither holds is a 404, not a loop.
func TestACMEHTTP01Forwarded(t *testing.T) {
	startSharedPebble(t)
	if err := sharedPebble.SetA("images.acme.test", "127.0.0.31"); err != nil {
		t.Fatal(err)
	}
	m := acmeInventory(t, acmeSite("images-a", "a", "images.acme.test", "")+acmeSite("images-b", "b", "images.acme.test", ""))
	pb := compileNode(t, m, "b")
	startACMENode(t, compileNode(t, m, "a"))
	nb := startACMENode(t, pb)
	waitIssued(t, fmt.Sprintf("127.0.0.31:%d", acmeTLSPort), "images.acme.test")
	waitIssued(t, fmt.Sprintf("127.0.0.32:%d", acmeTLSPort), "images.acme.test")
	if st, _ := acmeStatus(nb, "images.acme.test"); st.LastSuccess.IsZero() {
		t.Fatalf("b's status: %+v", st)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.31:%d%sunknown-token", acmeHTTPPort, acme.ChallengePrefix), nil)
	req.Host = "images.acme.test"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown token through the forward: %d, want 404", resp.StatusCode)
	}
}

// TestACMETLSALPN01: a site issuing by TLS-ALPN-01 is validated on its
// own TLS listener (pebble connects to its port 443 stand-in).
func TestACMETLSALPN01(t *testing.T) {
	startSharedPebble(t)
	m := acmeInventory(t, acmeSite("alpn", "a", "alpn.acme.test", ", challenge: tls-alpn-01"))
	log, logs := testutil.Logger(t)
	n, err := Start(compileNode(t, m, "a"), Options{Logger: log, FDLimit: 4096, ACME: ACMEOptions{HTTPClient: sharedPebble.Client}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	waitIssued(t, fmt.Sprintf("127.0.0.31:%d", acmeTLSPort), "alpn.acme.test")
	if st, _ := acmeStatus(n, "alpn.acme.test"); st.Challenge != "tls-alpn-01" || st.LastSuccess.IsZero() {
		t.Fatalf("status %+v", st)
	}
	// lego's own records reach the node's logger, tagged with the node.
	if !strings.Contains(logs.String(), "node=a") || !regexp.MustCompile(`node=a[^\n]*domain=alpn.acme.test[^\n]*from=lego`).MatchString(logs.String()) {
		t.Fatalf("lego's records are not in the node's log:\n%s", logs.String())
	}
}

// TestACMEDNS01Wildcard: a wildcard site by DNS-01 is issued through the
// node's DNS provider (here writing to challtestsrv; OVH in production)
// and served for a name under the wildcard.
func TestACMEDNS01Wildcard(t *testing.T) {
	startSharedPebble(t)
	m := acmeInventory(t, acmeSite("wild", "a", `"*.wild.acme.test", wild.acme.test`, ", challenge: dns-01, dns_provider: ovh, credentials: /nonexistent/ovh.ini"))
	var asked []string
	dns := sharedPebble.DNSProvider()
	n := startACMENodeWith(t, compileNode(t, m, "a"), ACMEOptions{HTTPClient: sharedPebble.Client, Nameservers: []string{sharedPebble.DNS},
		DNSProvider: func(name, credentials string, _ *slog.Logger) (challenge.Provider, error) {
			asked = append(asked, name+" "+credentials)
			return dns, nil
		}})
	waitIssued(t, fmt.Sprintf("127.0.0.31:%d", acmeTLSPort), "fr.wild.acme.test")
	if st, _ := acmeStatus(n, `*.wild.acme.test`); st.Challenge != "dns-01" || st.LastSuccess.IsZero() {
		t.Fatalf("status %+v", st)
	}
	if len(asked) != 1 || asked[0] != "ovh /nonexistent/ovh.ini" {
		t.Fatalf("DNS provider built for %q, want once for ovh and its credentials file", asked)
	}
}
