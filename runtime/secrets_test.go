package runtime

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/pki"
	"github.com/offedge/offedge/plan"
)

// tunnelNode is one node holding both ends of tunnel "t" (entrance on
// 127.0.0.23, exit on 127.0.0.24, to an echo target), the ends naming the
// node's secret rather than files.
type tunnelNode struct {
	t              *testing.T
	target         string
	entrance, exit netip.AddrPort
	psk            string
}

func newTunnelNode(t *testing.T) *tunnelNode {
	f := &tunnelNode{t: t, target: listenEcho(t),
		entrance: netip.MustParseAddrPort("127.0.0.23:" + freePort(t, "127.0.0.23")),
		exit:     netip.MustParseAddrPort("127.0.0.24:" + freePort(t, "127.0.0.24")),
		psk:      filepath.Join(t.TempDir(), "t.psk")}
	f.writeSecret("0123456789abcdef0123456789abcdef-first")
	return f
}

func (f *tunnelNode) writeSecret(s string) {
	f.t.Helper()
	if err := os.WriteFile(f.psk, []byte(s+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// plan is the node's plan with its ends authenticated by auth (whose
// Secret the plan declares as secret).
func (f *tunnelNode) plan(name string, secret tunnel.Secret, auth func(peer string) tunnel.Auth) *plan.Plan {
	p := &plan.Plan{Node: "n", Resources: emptyResources()}
	p.Resources.Secrets = map[string]plan.TunnelSecret{name: {Secret: secret, Uses: []string{"t entrance", "t exit"}}}
	e := entranceConfig(f.exit.String(), "")
	e.Auth = auth("n")
	p.Listeners = append(p.Listeners,
		plan.Listener{Name: "tunnel t entrance", Kind: plan.KindTunnelEntrance, Addr: f.entrance, ACL: acl.AllowAll(), Entrance: e},
		plan.Listener{Name: "tunnel exit", Kind: plan.KindTunnelExit, Addr: f.exit, ACL: acl.AllowAll(), Exit: &tunnel.ExitConfig{
			Listener: f.exit.String(), HandshakeTimeout: plan.DefaultHandshakeTimeout, MaxConns: plan.DefaultMaxConns, MaxConnsPerClient: 1024,
			Tunnels: []tunnel.ExitTunnel{{Name: "t", Target: f.target, Auth: auth("n"), ConnectTimeout: plan.DefaultConnectTimeout,
				IdleTimeout: plan.DefaultTunnelIdle, KeepAlive: plan.DefaultTCPKeepAlive}}}})
	return p
}

func (f *tunnelNode) pskPlan() *plan.Plan {
	return f.plan("psk t", tunnel.Secret{PSKFile: f.psk, Tunnel: "t"}, func(string) tunnel.Auth { return tunnel.Auth{Secret: "psk t"} })
}

// echoes checks a round trip through the entrance.
func (f *tunnelNode) echoes() {
	f.t.Helper()
	c, err := net.DialTimeout("tcp", f.entrance.String(), 5*time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		f.t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		f.t.Fatalf("through the tunnel: %q, %v; want the echo", buf, err)
	}
}

// exitAccepts reports whether the exit completes a TLS session (and
// relays a byte) for a client presenting the key derived from secret.
func (f *tunnelNode) exitAccepts(secret string) bool {
	f.t.Helper()
	k, err := tunnel.DerivePSKKey("t", []byte(secret))
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", f.exit.String(), &tls.Config{
		MinVersion: tls.VersionTLS13, ServerName: "t", InsecureSkipVerify: true, Certificates: []tls.Certificate{k.Certificate}})
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return false
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	return err == nil
}

func (n *Node) secret(name string) *tunnel.Key {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen.secrets[name]
}

func countOf(list []string, s string) int {
	c := 0
	for _, v := range list {
		if v == s {
			c++
		}
	}
	return c
}

// TestTunnelSecretsAreNodeResources: a pre-shared secret is one resource
// of the node, loaded once for both tunnel ends that name it; a reload
// that declares it unchanged keeps the derived key; one after the file
// changed derives the new key and every end uses it (on the old code an
// unchanged listener kept its old key until a restart); a reload whose
// secret cannot be read is refused and the running key keeps serving; a
// secret no tunnel names any more is closed.
func TestTunnelSecretsAreNodeResources(t *testing.T) {
	f := newTunnelNode(t)
	n := startPlan(t, f.pskPlan())
	f.echoes()
	if got := countOf(n.Status().Resources, "secret psk t"); got != 1 {
		t.Fatalf("resources %v: want the secret once for both ends", n.Status().Resources)
	}
	first := n.secret("psk t")

	if err := n.Apply(context.Background(), f.pskPlan()); err != nil {
		t.Fatal(err)
	}
	if n.secret("psk t") != first {
		t.Fatal("a reload with the secret unchanged derived its key again")
	}

	f.writeSecret("0123456789abcdef0123456789abcdef-second")
	if err := n.Apply(context.Background(), f.pskPlan()); err != nil {
		t.Fatal(err)
	}
	if n.secret("psk t") == first {
		t.Fatal("a reload after the secret changed kept the old key")
	}
	f.echoes()
	if !f.exitAccepts("0123456789abcdef0123456789abcdef-second") || f.exitAccepts("0123456789abcdef0123456789abcdef-first") {
		t.Fatal("after the reload the exit does not accept exactly the new secret's key")
	}

	// A secret file others may read refuses the reload; the key in force
	// keeps serving.
	second := n.secret("psk t")
	if err := os.Chmod(f.psk, 0o644); err != nil {
		t.Fatal(err)
	}
	err := n.Apply(context.Background(), f.pskPlan())
	if err == nil || !strings.Contains(err.Error(), `secret "psk t"`) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Apply with a readable secret file = %v; want a refusal naming the secret", err)
	}
	if n.secret("psk t") != second || n.Status().FailedReloads != 1 {
		t.Fatalf("the refused reload changed the key or was not counted: %+v", n.Status())
	}
	f.echoes()
	os.Chmod(f.psk, 0o600)

	// Without the tunnels, the secret is closed.
	if err := n.Apply(context.Background(), &plan.Plan{Node: "n", Resources: emptyResources()}); err != nil {
		t.Fatal(err)
	}
	if got := countOf(n.Status().Resources, "secret psk t"); got != 0 {
		t.Fatalf("resources %v after the tunnels left", n.Status().Resources)
	}
}

// TestPKISecretSharedAndRotating: the node's PKI files are one resource
// for both ends; a reload keeps it (no file is read again), and a
// certificate issued again while the node runs is served without a
// reload (the resource reloads its files by itself).
func TestPKISecretSharedAndRotating(t *testing.T) {
	f := newTunnelNode(t)
	caDir, out := filepath.Join(t.TempDir(), "ca"), t.TempDir()
	if err := pki.Init(caDir); err != nil {
		t.Fatal(err)
	}
	if err := pki.Issue(caDir, "n", out); err != nil {
		t.Fatal(err)
	}
	files := pki.NodeFiles(out, "n")
	s := tunnel.Secret{CAFile: files.CA, CertFile: files.Cert, KeyFile: files.Key}
	mk := func() *plan.Plan {
		return f.plan("pki", s, func(peer string) tunnel.Auth {
			return tunnel.Auth{Secret: "pki", PKI: &tunnel.PKIAuth{PeerNames: []string{peer}}}
		})
	}
	n := startPlan(t, mk())
	f.echoes()
	if got := countOf(n.Status().Resources, "secret pki"); got != 1 {
		t.Fatalf("resources %v: want the PKI once for both ends", n.Status().Resources)
	}
	k := n.secret("pki")
	if err := n.Apply(context.Background(), mk()); err != nil {
		t.Fatal(err)
	}
	if n.secret("pki") != k {
		t.Fatal("a reload with the PKI files unchanged loaded them again")
	}
	// The exit's certificate, as a client without one sees it (in TLS
	// 1.3 the client's side of the handshake ends before the exit checks
	// the client's certificate).
	leaf := func() []byte {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", f.exit.String(),
			&tls.Config{MinVersion: tls.VersionTLS13, ServerName: "t", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake with the exit: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	before := leaf()
	if err := pki.Issue(caDir, "n", out); err != nil {
		t.Fatal(err)
	}
	// The resource checks its files at most every certs.DefaultCheckInterval.
	deadline := time.Now().Add(30 * time.Second)
	for string(leaf()) == string(before) {
		if time.Now().After(deadline) {
			t.Fatal("the exit still serves the old certificate 30 s after it was issued again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.echoes()
}
