package acme

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/offedge/offedge/certs"
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
	bin := testutil.RequireBinary(t, "pebble")
	chbin := testutil.RequireBinary(t, "pebble-challtestsrv")
	tmp := t.TempDir()

	p := &pebble{dnsAddr: testutil.FreeAddr(t), chall: testutil.FreeAddr(t), mgmt: testutil.FreeAddr(t)}
	ch := exec.Command(chbin, "-dns01", p.dnsAddr, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", p.chall, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	testutil.StartProcess(t, ch)

	cf, kf, err := certs.WriteSelfSigned(filepath.Join(tmp, "tls"), certs.SelfSignedOptions{Names: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	listen := testutil.FreeAddr(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        p.mgmt,
		"certificate":                    cf,
		"privateKey":                     kf,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      uint64(validity / time.Second),
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(tmp, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", p.dnsAddr)
	cmd.Env = append(filterEnv(os.Environ(), "PEBBLE_VA_ALWAYS_VALID"),
		"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	testutil.StartProcess(t, cmd)
	testutil.WaitTCP(t, listen, 20*time.Second)
	testutil.WaitTCP(t, p.mgmt, 20*time.Second)
	testutil.WaitTCP(t, p.chall, 20*time.Second)

	pem, err := os.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	p.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	p.dir = "https://" + listen + "/dir"
	p.roots = p.root(t)
	return p
}

// root fetches pebble's issuing root (it is made at start).
func (p *pebble) root(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: %q", b)
	}
	return pool
}

func filterEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, e := range env {
		if len(e) > len(name) && e[:len(name)+1] == name+"=" {
			continue
		}
		out = append(out, e)
	}
	return out
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
