package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/internal/testutil"
)

func listen(t testing.TB) net.Listener { return testutil.Listen(t) }

// startEcho echoes each connection, prefixed by the PROXY header it
// received when proxied is set, and half-closes at EOF.
func startEcho(t testing.TB, headers chan<- ProxyHeader) string {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if headers != nil {
					buf := make([]byte, 0, 256)
					for {
						h, n, err := ParseProxyV2(buf)
						if err == nil {
							headers <- h
							c.Write(buf[n:])
							break
						}
						if !errors.Is(err, ErrShortHeader) {
							return
						}
						tmp := make([]byte, 64)
						m, err := c.Read(tmp)
						if err != nil {
							return
						}
						buf = append(buf, tmp[:m]...)
					}
				}
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T, cfg Config, ln net.Listener) *Forwarder {
	t.Helper()
	f, err := New(full(cfg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

func roundTrip(t testing.TB, d *net.Dialer, addr, msg string) (string, error) {
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

func TestForwardEchoHalfClose(t *testing.T) {
	target := startEcho(t, nil)
	ln := listen(t)
	f := start(t, Config{Name: "pmg-smtp", Target: target}, ln)
	msg := strings.Repeat("forwarded bytes ", 1<<16) // 1 MiB
	got, err := roundTrip(t, &net.Dialer{}, ln.Addr().String(), msg)
	if err != nil || got != msg {
		t.Fatalf("got %d bytes, %v; want %d", len(got), err, len(msg))
	}
	testutil.Eventually(t, 5*time.Second, "counters", func() bool {
		s := f.Stats()
		return s.BytesUp == uint64(len(msg)) && s.BytesDown == uint64(len(msg)) && s.Active == 0 && s.Accepted == 1
	})
}

func TestForwardProxyProtocol(t *testing.T) {
	headers := make(chan ProxyHeader, 1)
	target := startEcho(t, headers)
	ln := listen(t)
	start(t, Config{Name: "smtp", Target: target, ProxyProtocol: true}, ln)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}
	got, err := roundTrip(t, d, ln.Addr().String(), "EHLO x\r\n")
	if err != nil || got != "EHLO x\r\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	h := <-headers
	if h.Local || h.Source.Addr() != netip.MustParseAddr("127.0.0.7") || h.Dest.String() != ln.Addr().String() {
		t.Fatalf("header %+v; want source 127.0.0.7, dest %s", h, ln.Addr())
	}
}

func TestForwardACL(t *testing.T) {
	target := startEcho(t, nil)
	inner := listen(t)
	stats := new(acl.Stats)
	ln := acl.Wrap(inner, acl.List{Rules: []acl.Rule{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Allow: true}}}, acl.ListenerOptions{Name: "forward smtp", Stats: stats})
	f := start(t, Config{Name: "smtp", Target: target}, ln)
	denied := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.55")}}
	got, err := roundTrip(t, denied, inner.Addr().String(), "hello")
	if got != "" || (err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("denied source got %q, %v", got, err)
	}
	if got, err := roundTrip(t, &net.Dialer{}, inner.Addr().String(), "hello"); err != nil || got != "hello" {
		t.Fatalf("allowed source got %q, %v", got, err)
	}
	testutil.Eventually(t, 5*time.Second, "acl counters", func() bool { return stats.Denied.Load() == 1 && stats.Accepted.Load() == 1 })
	if f.Stats().Accepted != 1 {
		t.Fatalf("forwarder saw %d connections; want 1", f.Stats().Accepted)
	}
}

func TestForwardIdleTimeoutSpliced(t *testing.T) {
	target := startEcho(t, nil)
	ln := listen(t)
	const idle = 400 * time.Millisecond
	f := start(t, Config{Name: "idle", Target: target, IdleTimeout: idle}, ln)
	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	quiet, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	start := time.Now()
	for time.Since(start) < 3*idle {
		busy.SetDeadline(time.Now().Add(5 * time.Second))
		busy.Write([]byte("b"))
		if _, err := io.ReadFull(busy, make([]byte, 1)); err != nil {
			t.Fatalf("busy connection closed after %v: %v", time.Since(start), err)
		}
		time.Sleep(idle / 4) // pacing the traffic, not synchronisation
	}
	quiet.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := quiet.Read(make([]byte, 1)); err == nil {
		t.Fatal("quiet connection got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("quiet connection not closed by the idle timeout")
	}
	if f.Stats().IdleClosed != 1 {
		t.Fatalf("IdleClosed = %d; want 1", f.Stats().IdleClosed)
	}
}

func TestForwardTargetDown(t *testing.T) {
	addr := testutil.RefusedAddr(t)
	ln := listen(t)
	f := start(t, Config{Name: "down", Target: addr, ConnectTimeout: time.Second}, ln)
	got, _ := roundTrip(t, &net.Dialer{}, ln.Addr().String(), "x")
	if got != "" {
		t.Fatalf("got %q", got)
	}
	testutil.Eventually(t, 5*time.Second, "dial failure counted", func() bool { return f.Stats().DialFailures == 1 })
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{Target: "127.0.0.1:1"}, "empty name"},
		{"bad target", Config{Name: "smtp", Target: "10.1.0.102"}, `forward "smtp": target "10.1.0.102"`},
		{"ipv6 no brackets", Config{Name: "smtp", Target: "2001:db8::1:25"}, "brackets"},
		{"host name", Config{Name: "smtp", Target: "mx.example.org:25"}, "an IP address and port (the plan resolves names)"},
		{"negative max", Config{Name: "smtp", Target: "127.0.0.1:25", MaxConns: -1}, "negative"},
		{"negative connect", Config{Name: "smtp", Target: "127.0.0.1:25", ConnectTimeout: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(full(tt.cfg), Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v; want %q", err, tt.want)
			}
		})
	}
}

func TestProxyV2(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		local    bool
		size     int
	}{
		{"ipv4", netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("203.0.113.1:25"), false, 28},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::7]:40000"), netip.MustParseAddrPort("[2001:db8::1]:25"), false, 52},
		{"mapped ipv4", netip.MustParseAddrPort("[::ffff:198.51.100.7]:1"), netip.MustParseAddrPort("203.0.113.1:25"), false, 28},
		{"mixed families", netip.MustParseAddrPort("198.51.100.7:1"), netip.MustParseAddrPort("[2001:db8::1]:25"), true, 16},
		{"unknown", netip.AddrPort{}, netip.AddrPort{}, true, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendProxyV2(nil, tt.src, tt.dst)
			if len(b) != tt.size {
				t.Fatalf("header is %d bytes; want %d", len(b), tt.size)
			}
			h, n, err := ParseProxyV2(append(b, "payload"...))
			if err != nil || n != len(b) {
				t.Fatalf("parse: n=%d err=%v", n, err)
			}
			if h.Local != tt.local {
				t.Fatalf("Local = %v", h.Local)
			}
			if !tt.local && (h.Source.Addr() != tt.src.Addr().Unmap() || h.Source.Port() != tt.src.Port() || h.Dest != tt.dst) {
				t.Fatalf("got %v → %v", h.Source, h.Dest)
			}
			for i := 0; i < len(b); i++ {
				if _, _, err := ParseProxyV2(b[:i]); !errors.Is(err, ErrShortHeader) {
					t.Fatalf("prefix %d: %v; want ErrShortHeader", i, err)
				}
			}
		})
	}
	bad := []struct {
		name string
		in   []byte
		want string
	}{
		{"http", []byte("GET / HTTP/1.1\r\n"), "not a PROXY"},
		{"v1", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "not a PROXY"},
		{"version 3", append([]byte(ProxyV2Signature), 0x31, 0x11, 0, 0), "version 3"},
		{"command 5", append([]byte(ProxyV2Signature), 0x25, 0x11, 0, 0), "unknown command"},
		{"udp", append([]byte(ProxyV2Signature), 0x21, 0x12, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2), "unsupported family"},
		{"short body", append([]byte(ProxyV2Signature), 0x21, 0x11, 0, 4, 1, 2, 3, 4), "too short"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseProxyV2(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v; want %q", err, tt.want)
			}
		})
	}
}

func FuzzParseProxyV2(f *testing.F) {
	f.Add(AppendProxyV2(nil, netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("203.0.113.1:25")))
	f.Add(AppendProxyV2(nil, netip.MustParseAddrPort("[2001:db8::7]:1"), netip.MustParseAddrPort("[2001:db8::1]:2")))
	f.Add(AppendProxyV2(nil, netip.AddrPort{}, netip.AddrPort{}))
	f.Add(append([]byte(ProxyV2Signature), 0x21, 0x11, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 1, 0, 1, 9))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, n, err := ParseProxyV2(in)
		if err != nil {
			return
		}
		if n < 16 || n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		if h.Local {
			return
		}
		// What parses re-encodes to the same addresses.
		h2, _, err := ParseProxyV2(AppendProxyV2(nil, h.Source, h.Dest))
		unmap := func(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
		if err != nil || unmap(h2.Source) != unmap(h.Source) || unmap(h2.Dest) != unmap(h.Dest) {
			t.Fatalf("re-encode: %+v %v; want %+v", h2, err, h)
		}
	})
}

// TestForwardPerClientCap: one client holding its max_conns_per_client
// idle connections is refused more, and another client is still served
// (before the cap, it waited behind the first client's connections).
func TestForwardPerClientCap(t *testing.T) {
	target := startEcho(t, nil)
	ln := listen(t)
	f := start(t, Config{Name: "cap", Target: target, MaxConns: 4, MaxConnsPerClient: 2}, ln)
	from := func(src string) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	}
	for i := range 2 {
		c, err := from("127.0.0.1").Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
	}
	if got, _ := roundTrip(t, from("127.0.0.1"), ln.Addr().String(), "over"); got != "" {
		t.Fatalf("third connection of one client got %q; want it reset", got)
	}
	if got, err := roundTrip(t, from("127.0.0.2"), ln.Addr().String(), "other"); got != "other" {
		t.Fatalf("another client: %q, %v; want it served while the first holds its cap", got, err)
	}
	if s := f.Stats(); s.RefusedPerClient != 1 {
		t.Fatalf("RefusedPerClient = %d; want 1", s.RefusedPerClient)
	}
	if _, err := New(full(Config{Name: "x", Target: target, MaxConns: 2, MaxConnsPerClient: 3}), Options{}); err == nil || !strings.Contains(err.Error(), "above max_conns") {
		t.Fatalf("per-client cap above max_conns: %v", err)
	}
}

// Test values for the fields the plan always sets (plan/defaults.go has the
// real ones; this package cannot import plan, which imports it).
const (
	testConnectTimeout    = 10 * time.Second
	testIdleTimeout       = 12 * time.Hour
	testMaxConns          = 4096
	testMaxConnsPerClient = 1024
)

// full fills the zero timeouts and limits of c with test values, as the
// plan would.
func full(c Config) Config {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = testConnectTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = testIdleTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = testMaxConns
	}
	if c.MaxConnsPerClient == 0 {
		c.MaxConnsPerClient = min(testMaxConnsPerClient, c.MaxConns)
	}
	return c
}

// TestZeroValuesRefused: the plan sets every timeout and limit
// (plan/defaults.go is the one table of defaults), so New, Update and
// Prepare refuse a zero or negative one instead of filling in a second
// table's value.
func TestZeroValuesRefused(t *testing.T) {
	valid := func() Config { return full(Config{Name: "smtp", Target: "127.0.0.1:25"}) }
	ok, err := New(valid(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	fields := []struct {
		field string
		set   func(*Config, int)
	}{
		{"connect_timeout", func(c *Config, v int) { c.ConnectTimeout = time.Duration(v) }},
		{"idle_timeout", func(c *Config, v int) { c.IdleTimeout = time.Duration(v) }},
		{"max_conns", func(c *Config, v int) { c.MaxConns = v }},
		{"max_conns_per_client", func(c *Config, v int) { c.MaxConnsPerClient = v }},
	}
	for _, v := range []int{0, -1} {
		for _, f := range fields {
			t.Run(fmt.Sprintf("%s %d", f.field, v), func(t *testing.T) {
				want := `forward "smtp": ` + f.field + " is 0: the plan sets every value (plan/defaults.go)"
				if v < 0 {
					want = `forward "smtp": ` + f.field + " -1"
				}
				cfg := valid()
				f.set(&cfg, v)
				_, err := New(cfg, Options{})
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("New: err = %v; want it to contain %q", err, want)
				}
				if err := ok.Update(cfg); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Update: err = %v; want it to contain %q", err, want)
				}
				if _, err := ok.Prepare(cfg); err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Prepare: err = %v; want it to contain %q", err, want)
				}
			})
		}
	}
}

// BenchmarkForwardConn is one forwarded connection: connect, a 1-byte echo
// with half-closes both ways, close (bench/tunnel.sh's connection loop).
// Its allocations include the client's and the echo target's: compare
// with BenchmarkDirectConn, the same without the forward.
func BenchmarkForwardConn(b *testing.B) {
	target := startEcho(b, nil)
	ln := listen(b)
	f, err := New(full(Config{Name: "bench", Target: target}), Options{})
	if err != nil {
		b.Fatal(err)
	}
	go f.Serve(ln)
	b.Cleanup(func() { f.Shutdown(context.Background()) })
	benchConns(b, ln.Addr().String())
}

// BenchmarkDirectConn is BenchmarkForwardConn's client and target alone.
func BenchmarkDirectConn(b *testing.B) { benchConns(b, startEcho(b, nil)) }

func benchConns(b *testing.B, addr string) {
	d := &net.Dialer{}
	b.ReportAllocs()
	for b.Loop() {
		if got, err := roundTrip(b, d, addr, "x"); err != nil || got != "x" {
			b.Fatalf("got %q, %v", got, err)
		}
	}
}

// At Shutdown's deadline an open forwarded connection is closed on both
// sides: the client's, which the server tracks, and the target's, which
// the relay resets when the client side ends.
func TestForwardShutdownClosesBothSides(t *testing.T) {
	tln := listen(t)
	targetDone := make(chan error, 1)
	accepted := make(chan struct{})
	go func() {
		c, err := tln.Accept()
		if err != nil {
			close(accepted)
			targetDone <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The relay runs once the client's first bytes came through: an
		// accept alone races with the forward's look at Shutdown after
		// its dial (a connection still dialling when Shutdown starts is
		// dropped, not relayed).
		_, err = io.ReadFull(c, make([]byte, len("open")))
		close(accepted)
		if err == nil {
			_, err = io.Copy(io.Discard, c)
		}
		targetDone <- err
	}()
	ln := listen(t)
	f, err := New(full(Config{Name: "shutdown", Target: tln.Addr().String()}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("open")); err != nil {
		t.Fatal(err)
	}
	<-accepted
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v; want the deadline (the connection was open)", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if err := <-targetDone; err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("target side: %v; want it closed or reset", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client side: %v; want it closed", err)
	}
	if s := f.Stats(); s.Active != 0 {
		t.Fatalf("%d connections still active", s.Active)
	}
}
