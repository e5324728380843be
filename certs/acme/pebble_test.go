package acme

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	pebblesrv "github.com/offedge/offedge/internal/pebble"
	"github.com/offedge/offedge/internal/testutil"
)

// pebble is a running Debian pebble (really validating: PEBBLE_VA_ALWAYS_VALID
// unset) with pebble-challtestsrv as its DNS server, all on loopback. Every
// name resolves to 127.0.0.1; pebble validates HTTP-01 on httpPort and
// TLS-ALPN-01 on tlsPort of 127.0.0.1.
type pebble struct {
	dir     string // directory URL
	client  *http.Client
	mgmt    string // pebble's management address
	chall   string // challtestsrv's management address
	dnsAddr string
	roots   *x509.CertPool
}

// startPebble starts pebble validating HTTP-01 against httpPort (the test's
// own listener) and issuing certificates valid for validity (zero: pebble's
// default of about five years).
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	s := testutil.StartPebble(t, pebblesrv.Options{HTTPPort: httpPort, TLSPort: tlsPort, Validity: validity})
	roots, err := s.Roots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &pebble{dir: s.Directory, client: s.Client, mgmt: s.Mgmt, chall: s.Chall, dnsAddr: s.DNS, roots: roots}
}

// serveChallenges serves c on a fresh loopback listener and returns its port.
func serveChallenges(t *testing.T, c *Challenges) int {
	t.Helper()
	ln := testutil.Listen(t)
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}
