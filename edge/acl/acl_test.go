package acl

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestDecide(t *testing.T) {
	list := List{Rules: []Rule{
		{Prefix: mustPrefix("127.0.0.9/32"), Allow: false, From: "banned"},
		{Prefix: mustPrefix("127.0.0.0/24"), Allow: true, From: "ovh1"},
		{Prefix: mustPrefix("2001:db8::/32"), Allow: true},
	}}
	tests := []struct {
		addr string
		want bool
		by   string
	}{
		{"127.0.0.1", true, "ovh1"},
		{"127.0.0.9", false, "banned"},
		{"127.0.1.1", false, "default"},
		{"::ffff:127.0.0.2", true, "ovh1"},
		{"2001:db8::1", true, "2001:db8::/32"},
		{"2001:db9::1", false, "default"},
		{"fe80::1%eth0", false, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ok, by := list.Decide(netip.MustParseAddr(tt.addr))
			if ok != tt.want || by != tt.by {
				t.Fatalf("Decide(%s) = %v, %q; want %v, %q", tt.addr, ok, by, tt.want, tt.by)
			}
		})
	}
	var zero List
	if zero.Allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("zero List must deny")
	}
	all := AllowAll()
	if !all.Allowed(netip.MustParseAddr("203.0.113.7")) {
		t.Fatal("AllowAll must allow")
	}
}

func TestString(t *testing.T) {
	l := List{Rules: []Rule{{Prefix: mustPrefix("10.0.0.0/8"), Allow: true, From: "provider:ovh"}}}
	if got, want := l.String(), "allow 10.0.0.0/8 (provider:ovh), deny all others"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
}

// TestListenerDeniesBeforeReading binds two client sockets to different
// loopback sources and checks that only the allowed one reaches Accept, and
// that the denied one sees its connection closed without any byte.
func TestListenerDeniesBeforeReading(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	stats := new(Stats)
	now := time.Unix(0, 0)
	ln := Wrap(inner, List{Rules: []Rule{{Prefix: mustPrefix("127.0.0.2/32"), Allow: true, From: "ovh1"}}},
		ListenerOptions{Name: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil)), Stats: stats, Now: func() time.Time { return now }})
	defer ln.Close()

	accepted := make(chan netip.AddrPort, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- PeerAddr(c)
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatalf("dial from %s: %v", src, err)
		}
		return c
	}
	for i := 0; i < 3; i++ {
		bad := dialFrom("127.0.0.3")
		bad.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := bad.Read(make([]byte, 8))
		if n != 0 || err == nil {
			t.Fatalf("denied peer read %d bytes, err %v; want closed connection", n, err)
		}
		bad.Close()
	}
	good := dialFrom("127.0.0.2")
	defer good.Close()
	good.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := good.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("allowed peer got %q, %v", buf, err)
	}
	if got := (<-accepted).Addr().String(); got != "127.0.0.2" {
		t.Fatalf("accepted %s; want 127.0.0.2", got)
	}
	if stats.Denied.Load() != 3 || stats.Accepted.Load() != 1 {
		t.Fatalf("stats denied=%d accepted=%d; want 3 and 1", stats.Denied.Load(), stats.Accepted.Load())
	}
	// Three denials within one clock tick: one log line, the others counted.
	if n := strings.Count(logs.String(), "connection denied"); n != 1 {
		t.Fatalf("got %d denial log lines; want 1 (rate limited):\n%s", n, logs.String())
	}
}
