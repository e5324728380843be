package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// TestLabIssuesFromPebble: with Pebble, every site's certificate is
// obtained from a pebble the lab starts (DNS-01, wildcards included) and
// served, trusted through the lab's CA file; the lab CA's certificate is
// the fallback served until then.
func TestLabIssuesFromPebble(t *testing.T) {
	testutil.RequireBinary(t, "pebble")
	testutil.RequireBinary(t, "pebble-challtestsrv")
	l := startOFFWith(t, Options{Pebble: true, NoEngines: true})
	if l.pebble == nil {
		t.Fatal("the lab did not start pebble")
	}
	var tour strings.Builder
	l.WriteTour(&tour, "")
	if !strings.Contains(tour.String(), "Certificates: issued to every node by ACME (DNS-01) from a pebble the lab started ("+l.pebble.Directory+")") {
		t.Errorf("the tour does not say where certificates come from:\n%s", tour.String())
	}
	pool := x509.NewCertPool()
	b, err := os.ReadFile(l.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	issuer := func(node, name string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := l.dialSite(ctx, node, 443)
		if err != nil {
			return ""
		}
		tc := tls.Client(c, &tls.Config{ServerName: name, RootCAs: pool})
		defer tc.Close()
		if err := tc.HandshakeContext(ctx); err != nil {
			return "handshake: " + err.Error()
		}
		return tc.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}
	// The lab CA's certificate verifies through the CA file from the start.
	if got := issuer("off1", "world.openfoodfacts.org"); strings.HasPrefix(got, "handshake") || got == "" {
		t.Fatalf("world.openfoodfacts.org before pebble's certificate: %q", got)
	}
	for _, c := range []struct{ node, name string }{{"off1", "world.openfoodfacts.org"}, {"ovh3", "images.openfoodfacts.org"}} {
		var last string
		testutil.Eventually(t, 90*time.Second, c.name+" on "+c.node+" served a certificate from pebble", func() bool {
			last = issuer(c.node, c.name)
			return strings.HasPrefix(last, "Pebble Intermediate")
		})
	}
	// A drill takes a node down and up at once, whatever its orders are doing.
	t0 := time.Now()
	if err := l.Down("off1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Up(context.Background(), "off1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 15*time.Second {
		t.Errorf("off1 down and up took %v", d)
	}
	for _, ln := range l.nodes {
		if ln.rt == nil {
			continue
		}
		for _, a := range ln.rt.Status().ACME {
			if a.Challenge != "dns-01" || a.Site == "" {
				t.Errorf("%s: %+v", ln.node.Name, a)
			}
		}
	}
}
