package stunnel

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/plan"
)

const (
	secretA = "ieYeiph0ohzeiLaeChoo5eeNg4Eiw9oo"
	secretB = "Ohsh5sooghai0Ief8eeHeeb5quu4eeKi"
)

func newLogger(t *testing.T) (*slog.Logger, *testutil.SyncBuffer) { return testutil.Logger(t) }

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "psk.txt")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func listen(t testing.TB) net.Listener { return testutil.Listen(t) }

// serve runs a tunnel end on ln until the end of the test.
func serve(t *testing.T, srv interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}, ln net.Listener) {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, tunnel.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

// ping sends a Redis PING through addr and returns what came back.
func ping(t *testing.T, addr string) string {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("*1\r\n$4\r\nPING\r\n"))
	c.(*net.TCPConn).CloseWrite()
	b := make([]byte, 64)
	n, _ := c.Read(b)
	return string(b[:n])
}

// stunnelEnd writes the derived PSK certificate and key for name/secret and
// a stunnel4 config rendered by Render for one section, starts
// stunnel4, and waits for its accept port.
func stunnelEnd(t *testing.T, sec End, secret string) *testutil.SyncBuffer {
	t.Helper()
	bin := testutil.RequireBinary(t, "stunnel4")
	dir := t.TempDir()
	k, err := tunnel.DerivePSKKey(sec.Name, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	sec.CertFile = filepath.Join(dir, sec.Name+".pem")
	sec.KeyFile = filepath.Join(dir, sec.Name+"-key.pem")
	if err := os.WriteFile(sec.CertFile, k.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sec.KeyFile, k.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := Render(&Config{
		Comment:  "test stunnel4 end, as `offedge export stunnel` writes it",
		Global:   []Option{{Key: "foreground", Value: "yes"}, {Key: "pid", Value: ""}, {Key: "debug", Value: "info"}},
		Sections: []Section{sec.Section()},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "stunnel.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	out := testutil.StartProcess(t, exec.Command(bin, path))
	testutil.WaitTCP(t, sec.Accept, 10*time.Second)
	return out
}

func TestStunnelInterop(t *testing.T) {
	redis := testutil.StartRedis(t)

	t.Run("stunnel4 entrance to offedge exit", func(t *testing.T) {
		xlog, xbuf := newLogger(t)
		xln := listen(t)
		x, err := tunnel.NewExit(fullExit(tunnel.ExitConfig{Listener: xln.Addr().String(), Tunnels: []tunnel.ExitTunnel{
			{Name: "OffRedis", Target: redis, Auth: tunnel.Auth{PSKFile: writeSecret(t, secretA)}},
			{Name: "other", Target: "127.0.0.1:1", Auth: tunnel.Auth{PSKFile: writeSecret(t, secretB)}},
		}}), tunnel.Options{Logger: xlog})
		if err != nil {
			t.Fatal(err)
		}
		serve(t, x, xln)
		accept := testutil.FreeAddr(t)
		stunnelEnd(t, End{Name: "OffRedis", Client: true, Accept: accept, Connect: xln.Addr().String()}, secretA)
		testutil.RedisSession(t, accept)
		if s := x.Stats(); s.AuthFailures != 0 || s.Accepted == 0 || s.Sessions != 0 || s.Streams != 0 {
			t.Fatalf("exit stats %+v", s)
		}

		// The same stunnel4 entrance with a wrong secret is refused, and the
		// exit says why.
		bad := testutil.FreeAddr(t)
		stunnelEnd(t, End{Name: "OffRedis", Client: true, Accept: bad, Connect: xln.Addr().String()}, secretB)
		if got := ping(t, bad); strings.Contains(got, "PONG") {
			t.Fatal("stunnel4 with a wrong secret reached redis")
		}
		testutil.Eventually(t, 10*time.Second, "exit logs the wrong secret", func() bool {
			return strings.Contains(xbuf.String(), "peer key does not match the tunnel's pre-shared secret")
		})
	})

	t.Run("offedge entrance to stunnel4 exit", func(t *testing.T) {
		accept := testutil.FreeAddr(t)
		sout := stunnelEnd(t, End{Name: "redis", Client: false, Accept: accept, Connect: redis}, secretA)
		e, err := tunnel.NewEntrance(fullEntrance(tunnel.EntranceConfig{Name: "redis", Exits: []string{accept}, Auth: tunnel.Auth{PSKFile: writeSecret(t, secretA)}}), tunnel.Options{})
		if err != nil {
			t.Fatal(err)
		}
		eln := listen(t)
		serve(t, e, eln)
		testutil.RedisSession(t, eln.Addr().String())
		testutil.RedisSession(t, eln.Addr().String()) // resumes the TLS session with stunnel
		if !strings.Contains(sout.String(), "TLS accepted") {
			t.Fatalf("stunnel4 did not log the TLS session:\n%s", sout)
		}
		// stunnel4 takes no ALPN: one TLS connection per client, no session.
		if s := e.Stats(); s.Sessions != 0 || s.Streams != 0 || s.Accepted != 2 {
			t.Fatalf("entrance stats %+v; want 2 connections and no multiplexed session", s)
		}

		// Wrong secret on the offedge side: refused with a clear line.
		elog, ebuf := newLogger(t)
		bad, err := tunnel.NewEntrance(fullEntrance(tunnel.EntranceConfig{Name: "redis", Exits: []string{accept}, Auth: tunnel.Auth{PSKFile: writeSecret(t, secretB)}}), tunnel.Options{Logger: elog})
		if err != nil {
			t.Fatal(err)
		}
		bln := listen(t)
		serve(t, bad, bln)
		if got := ping(t, bln.Addr().String()); got != "" {
			t.Fatalf("wrong secret got %q", got)
		}
		testutil.Eventually(t, 5*time.Second, "entrance logs the wrong secret", func() bool {
			return strings.Contains(ebuf.String(), "peer key does not match the tunnel's pre-shared secret")
		})
	})
}

// fullEntrance and fullExit set the timeouts and limits the plan always
// sets, from the plan's table of defaults.
func fullEntrance(c tunnel.EntranceConfig) tunnel.EntranceConfig {
	c.ConnectTimeout, c.HandshakeTimeout = plan.DefaultConnectTimeout, plan.DefaultHandshakeTimeout
	c.IdleTimeout, c.KeepAlive = plan.DefaultTunnelIdle, plan.DefaultTCPKeepAlive
	c.MaxConns, c.MaxConnsPerClient = plan.DefaultMaxConns, plan.DefaultMaxConnsPerClient
	c.Mux = true // the plan's default: offered, and refused by stunnel4 without ALPN
	return c
}

func fullExit(c tunnel.ExitConfig) tunnel.ExitConfig {
	c.HandshakeTimeout = plan.DefaultHandshakeTimeout
	c.MaxConns, c.MaxConnsPerClient = plan.DefaultMaxConns, plan.DefaultMaxConnsPerClient
	for i := range c.Tunnels {
		t := &c.Tunnels[i]
		t.ConnectTimeout, t.IdleTimeout, t.KeepAlive = plan.DefaultConnectTimeout, plan.DefaultTunnelIdle, plan.DefaultTCPKeepAlive
	}
	return c
}
