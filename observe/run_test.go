package observe

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/lab/standin"
)

// serveLoopback runs handle for every connection accepted on a fresh
// loopback listener and returns its address.
func serveLoopback(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func standinAddr(t *testing.T, protocol string) netip.AddrPort {
	t.Helper()
	s, err := standin.New(protocol, standin.Info{Service: protocol, Node: "test"}, standin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// closedPort returns a loopback port nothing listens on, for the whole
// test (testutil.RefusedAddr).
func closedPort(t *testing.T) netip.AddrPort {
	return netip.MustParseAddrPort(testutil.RefusedAddr(t))
}

func TestRunReasons(t *testing.T) {
	okHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer okHTTP.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	pool := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	httpAddr := netip.MustParseAddrPort(okHTTP.Listener.Addr().String())
	tlsAddr := netip.MustParseAddrPort(tlsSrv.Listener.Addr().String())
	deny := serveLoopback(t, func(c net.Conn) {})
	silent := serveLoopback(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	garbage := serveLoopback(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH\r\n")); c.Read(make([]byte, 64)) })
	smtp := standinAddr(t, "smtp")
	redis := standinAddr(t, "redis")
	mongo := standinAddr(t, "mongodb")
	postgres := serveLoopback(t, func(c net.Conn) {
		buf := make([]byte, 256)
		c.Read(buf)
		c.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 3}) // AuthenticationCleartextPassword
	})

	cases := []struct {
		name   string
		probe  Probe
		roots  bool
		reason string // "" means success
	}{
		{"http ok", Probe{Protocol: ProtoHTTP, Addr: httpAddr, Host: "x", Path: "/", MaxStatus: 400}, false, ""},
		{"http status", Probe{Protocol: ProtoHTTP, Addr: httpAddr, Host: "x", Path: "/missing", MaxStatus: 400}, false, ReasonStatus},
		{"http exact status", Probe{Protocol: ProtoHTTP, Addr: httpAddr, Host: "x", Path: "/", Status: 204}, false, ReasonStatus},
		{"https ok", Probe{Protocol: ProtoHTTPS, Addr: tlsAddr, Host: "example.com", Path: "/", MaxStatus: 400}, true, ""},
		{"https untrusted", Probe{Protocol: ProtoHTTPS, Addr: tlsAddr, Host: "example.com", Path: "/", MaxStatus: 400}, false, ReasonTLS},
		{"https wrong name", Probe{Protocol: ProtoHTTPS, Addr: tlsAddr, Host: "other.org", Path: "/", MaxStatus: 400}, true, ReasonTLS},
		{"connect refused", Probe{Protocol: ProtoHTTP, Addr: closedPort(t), Host: "x"}, false, ReasonConnect},
		{"denied http", Probe{Protocol: ProtoHTTP, Addr: deny, Host: "x"}, false, ReasonDenied},
		{"denied https", Probe{Protocol: ProtoHTTPS, Addr: deny, Host: "x"}, false, ReasonDenied},
		{"denied redis", Probe{Protocol: ProtoRedis, Addr: deny}, false, ReasonDenied},
		{"denied tcp", Probe{Protocol: ProtoTCP, Addr: deny}, false, ReasonDenied},
		{"timeout", Probe{Protocol: ProtoHTTP, Addr: silent, Host: "x"}, false, ReasonTimeout},
		{"protocol", Probe{Protocol: ProtoHTTP, Addr: garbage, Host: "x"}, false, ReasonProtocol},
		{"redis not redis", Probe{Protocol: ProtoRedis, Addr: garbage}, false, ReasonProtocol},
		{"mongodb not mongodb", Probe{Protocol: ProtoMongoDB, Addr: garbage}, false, ReasonProtocol},
		{"smtp ok", Probe{Protocol: ProtoSMTP, Addr: smtp}, false, ""},
		{"smtp not smtp", Probe{Protocol: ProtoSMTP, Addr: garbage}, false, ReasonProtocol},
		{"redis ok", Probe{Protocol: ProtoRedis, Addr: redis}, false, ""},
		{"mongodb ok", Probe{Protocol: ProtoMongoDB, Addr: mongo}, false, ""},
		{"postgresql ok", Probe{Protocol: ProtoPostgreSQL, Addr: postgres}, false, ""},
		{"postgresql not postgresql", Probe{Protocol: ProtoPostgreSQL, Addr: garbage}, false, ReasonProtocol},
		{"tcp ok (silent peer)", Probe{Protocol: ProtoTCP, Addr: silent}, false, ""},
		{"dns", Probe{From: Internet, Protocol: ProtoHTTP, Host: "no-such-host.invalid", Addr: netip.MustParseAddrPort("192.0.2.1:80")}, false, ReasonDNS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := RunOptions{Timeout: 2 * time.Second}
			if tc.reason == ReasonTimeout {
				opts.Timeout = 300 * time.Millisecond
			}
			if tc.roots {
				opts.RootCAs = pool
			}
			tc.probe.Name = tc.name
			r := Run(context.Background(), tc.probe, NetDialer{}, opts)
			if r.Success != (tc.reason == "") || r.Reason != tc.reason {
				t.Fatalf("success=%v reason=%q (%s), want reason %q", r.Success, r.Reason, r.Detail, tc.reason)
			}
			if tc.probe.Protocol == ProtoHTTPS && r.Success && r.NotAfter.IsZero() {
				t.Error("no certificate expiry recorded")
			}
		})
	}
}

// TestTunnelReason: a dialer's ReasonError decides the reason.
func TestDialerReason(t *testing.T) {
	d := DialerFunc(func(ctx context.Context, p *Probe) (net.Conn, error) {
		return nil, &ReasonError{ReasonTLS, tls.AlertError(42)}
	})
	r := Run(context.Background(), Probe{Name: "t", Protocol: ProtoRedis, Tunnel: "x"}, d, RunOptions{})
	if r.Reason != ReasonTLS {
		t.Fatalf("reason %q, want tls", r.Reason)
	}
}

func FuzzBSONOK(f *testing.F) {
	f.Add(bsonDoc(bsonInt32("ok", 1)))
	f.Add(bsonDoc(bsonString("x", "y"), bsonInt32("ok", 0)))
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		bsonOK(b)
	})
}
