package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/pebble"
	"github.com/offedge/offedge/internal/testutil"
)

const acmeRunInventory = `providers: [{name: local}]
networks: [{name: lan, kind: private, prefixes: [127.0.0.0/8]}]
servers:
  - {name: edge, provider: local, mode: bare-metal, acme_state_dir: %[1]s, addresses: [{network: lan, ip: 127.0.0.41}]}
sites:
  - name: images
    node: edge
    hosts: [images.run.test, static.run.test]
    listen: [{network: lan, port: %[2]d, tls: true}, {network: lan, port: %[3]d, redirect_https: true}]
    tls: {acme: {email: ops@example.org, directory: "%[4]s"}}
    routes: [{path: /, redirect: "https://elsewhere.example/"}]
suppress:
  - {rule: OE404, object: 'site "images"', reason: "pebble validates on loopback, not from the internet"}
`

// TestRunIssuesFromPebble drives the real binary: offedge run with an
// inventory whose site says tls: acme obtains its certificate from pebble
// (HTTP-01 on its own listener) and serves it; offedge certs reports it
// from the files and from the running node; certs renew renews it through
// the admin endpoint.
func TestRunIssuesFromPebble(t *testing.T) {
	bin := buildBinary(t)
	port := func() int {
		a := testutil.FreeAddr(t)
		_, p, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(p)
		return n
	}
	tlsPort, httpPort := port(), port()
	pb := testutil.StartPebble(t, pebble.Options{HTTPPort: httpPort, TLSPort: tlsPort, DefaultIPv4: "127.0.0.41"})
	dir := t.TempDir()
	state := filepath.Join(dir, "acme")
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte(fmt.Sprintf(acmeRunInventory, state, tlsPort, httpPort, pb.Directory)), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := testutil.FreeAddr(t)
	cmd := exec.Command(bin, "run", "--node", "edge", "--inventory", inv, "--admin", admin, "--acme-ca", filepath.Join(pb.Dir(), "tls", "fullchain.pem"), "--probe-interval", "0")
	var logs testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := testutil.WaitTCPErr(t.Context(), admin, 20*time.Second); err != nil {
		t.Fatalf("offedge run: %v\n%s", err, logs.String())
	}
	site := fmt.Sprintf("127.0.0.41:%d", tlsPort)
	issuer := func() string {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", site, &tls.Config{ServerName: "static.run.test", InsecureSkipVerify: true})
		if err != nil {
			return ""
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}
	testutil.Eventually(t, 60*time.Second, "offedge run to serve a certificate pebble issued", func() bool {
		return strings.HasPrefix(issuer(), "Pebble Intermediate")
	})
	first := serial(t, site)

	out := func(args ...string) string {
		t.Helper()
		var o, e bytes.Buffer
		env := &env{stdout: &o, stderr: &e}
		if code := env.main(args); code != 0 {
			t.Fatalf("offedge %s: exit %d: %s%s\nrun's log:\n%s", strings.Join(args, " "), code, o.String(), e.String(), logs.String())
		}
		return o.String()
	}
	for _, mode := range [][]string{{}, {"--admin", admin}} {
		got := out(append([]string{"certs", "--node", "edge", "--inventory", inv}, mode...)...)
		for _, name := range []string{"images.run.test", "static.run.test"} {
			if !strings.Contains(got, name+"  ") || !strings.Contains(got, "acme http-01") || !strings.Contains(got, "Pebble Intermediate") {
				t.Fatalf("offedge certs %v lacks %s issued by pebble:\n%s", mode, name, got)
			}
		}
	}
	if got := out("certs", "renew", "--admin", admin, "static.run.test"); !strings.Contains(got, "renewing static.run.test") {
		t.Fatalf("certs renew: %q", got)
	}
	testutil.Eventually(t, 60*time.Second, "the forced renewal to be served", func() bool { return serial(t, site) != first })
	var o, e bytes.Buffer
	if code := (&env{stdout: &o, stderr: &e}).main([]string{"certs", "renew", "--admin", admin, "nothing.run.test"}); code == 0 || !strings.Contains(e.String(), "no ACME certificate") {
		t.Fatalf("renewing an unknown name: exit %d, %q", code, e.String())
	}
}

func serial(t *testing.T, addr string) string {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: "images.run.test", InsecureSkipVerify: true})
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
