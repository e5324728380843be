package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/internal/testutil"
)

const helperEnv = "OFFEDGE_TUNNEL_TEST_HELPER"

// TestMain lets the test binary double as a stand-alone exit process, so
// that a test can SIGKILL a real exit mid-stream.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelperExit(cfg))
	}
	os.Exit(m.Run())
}

func runHelperExit(js string) int {
	var cfg ExitConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	x, err := NewExit(fullExit(cfg), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", cfg.Listener)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(ln.Addr().String())
	if err := x.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testutil.SyncBuffer

func newLogger(t *testing.T) (*slog.Logger, *testutil.SyncBuffer) { return testutil.Logger(t) }

// writeSecret writes a 0600 secret file and returns its path.
func writeSecret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "psk.txt")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	secretA = "ieYeiph0ohzeiLaeChoo5eeNg4Eiw9oo"
	secretB = "Ohsh5sooghai0Ief8eeHeeb5quu4eeKi"
)

// listen opens a loopback listener closed at the end of the test.
func listen(t testing.TB) net.Listener { return testutil.Listen(t) }

// startEcho runs a TCP echo server that answers each connection with
// prefix followed by everything it reads, and half-closes at EOF.
func startEcho(t testing.TB, prefix string) string {
	t.Helper()
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if prefix != "" {
					c.Write([]byte(prefix))
				}
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

// serve runs srv.Serve(ln) and shuts srv down at the end of the test.
func serve(t testing.TB, srv interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}, ln net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

type pair struct {
	entrance     *Entrance
	exit         *Exit
	entranceAddr string
	exitAddr     string
	entranceLog  *syncBuffer
	exitLog      *syncBuffer
}

// startPair runs an exit for one tunnel to target and an entrance to it,
// both with secret files holding the given secrets.
func startPair(t *testing.T, name, target, entranceSecret, exitSecret string, tweak func(*EntranceConfig, *ExitConfig)) *pair {
	t.Helper()
	p := new(pair)
	var exitLogger, entLogger *slog.Logger
	exitLogger, p.exitLog = newLogger(t)
	entLogger, p.entranceLog = newLogger(t)
	xln := listen(t)
	p.exitAddr = xln.Addr().String()
	xcfg := ExitConfig{
		Listener: p.exitAddr,
		Tunnels:  []ExitTunnel{{Name: name, Target: target, Auth: Auth{PSKFile: writeSecret(t, exitSecret)}}},
	}
	ecfg := EntranceConfig{
		Name:  name,
		Exits: []string{p.exitAddr},
		Auth:  Auth{PSKFile: writeSecret(t, entranceSecret)},
		Mux:   true, // the plan's default
	}
	if tweak != nil {
		tweak(&ecfg, &xcfg)
	}
	var err error
	p.exit, err = NewExit(fullExit(xcfg), Options{Logger: exitLogger})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, p.exit, xln)
	p.entrance, err = NewEntrance(fullEntrance(ecfg), Options{Logger: entLogger})
	if err != nil {
		t.Fatal(err)
	}
	eln := listen(t)
	p.entranceAddr = eln.Addr().String()
	serve(t, p.entrance, eln)
	return p
}

// roundTrip sends msg on a new connection to addr, half-closes, and returns
// everything read until EOF.
func roundTrip(t testing.TB, addr, msg string) (string, error) {
	t.Helper()
	return roundTripFrom(t, "", addr, msg)
}

// roundTripFrom is roundTrip from a source address ("": the kernel's choice).
func roundTripFrom(t testing.TB, src, addr, msg string) (string, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// aclListener wraps ln with an access list admitting only allow.
func aclListener(ln net.Listener, allow string) net.Listener {
	return acl.Wrap(ln, acl.List{Rules: []acl.Rule{{Prefix: mustPrefix(allow), Allow: true, From: "test"}}}, acl.ListenerOptions{Name: "test"})
}

var _ = testutil.FreeAddr

// Test values for the fields the plan always sets (plan/defaults.go has the
// real ones; this package cannot import plan, which imports it).
const (
	testConnectTimeout    = 10 * time.Second
	testHandshakeTimeout  = 10 * time.Second
	testIdleTimeout       = 12 * time.Hour
	testKeepAlive         = 30 * time.Second
	testMaxConns          = 4096
	testMaxConnsPerClient = 1024
)

func orTest[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// fullEntrance fills the zero timeouts and limits of c with test values, as
// the plan would.
func fullEntrance(c EntranceConfig) EntranceConfig {
	orTest(&c.ConnectTimeout, testConnectTimeout)
	orTest(&c.HandshakeTimeout, testHandshakeTimeout)
	orTest(&c.IdleTimeout, testIdleTimeout)
	orTest(&c.KeepAlive, testKeepAlive)
	orTest(&c.MaxConns, testMaxConns)
	orTest(&c.MaxConnsPerClient, min(testMaxConnsPerClient, c.MaxConns))
	return c
}

// fullExit fills the zero timeouts and limits of c and of its tunnels with
// test values, as the plan would.
func fullExit(c ExitConfig) ExitConfig {
	orTest(&c.HandshakeTimeout, testHandshakeTimeout)
	orTest(&c.MaxConns, testMaxConns)
	orTest(&c.MaxConnsPerClient, min(testMaxConnsPerClient, c.MaxConns))
	c.Tunnels = slices.Clone(c.Tunnels)
	for i := range c.Tunnels {
		t := &c.Tunnels[i]
		orTest(&t.ConnectTimeout, testConnectTimeout)
		orTest(&t.IdleTimeout, testIdleTimeout)
		orTest(&t.KeepAlive, testKeepAlive)
	}
	return c
}
