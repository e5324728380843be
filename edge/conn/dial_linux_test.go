package conn

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/testutil"
)

// A dial from a source address leaves the choice of its port to connect
// (IP_BIND_ADDRESS_NO_PORT); a dial without one has no bind at all.
func TestBoundDialLeavesPortToConnect(t *testing.T) {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, src := range []netip.Addr{netip.MustParseAddr("127.0.0.2"), {}} {
		c, err := Dialer{Source: src}.DialContext(context.Background(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) {
			v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT)
		}); err != nil || gerr != nil {
			t.Fatal(err, gerr)
		}
		if want := map[bool]int{true: 1, false: 0}[src.IsValid()]; v != want {
			t.Errorf("source %v: IP_BIND_ADDRESS_NO_PORT = %d, want %d", src, v, want)
		}
		c.Close()
	}
}

// Dials from one source address to two destinations share the ephemeral
// ports: with a range of four ports, four connections to each of two
// listeners are open at once. Bound at bind time instead, the fifth dial
// failed with EADDRINUSE (the source address had no port left), which on a
// real node meant about 470 bound dials a second in all before failures,
// TIME_WAIT holding each port for 60 s.
func TestBoundDialsShareEphemeralPorts(t *testing.T) {
	if err := netns.Available(); err != nil {
		if testutil.InCI() {
			t.Fatalf("%v; CI runs as root", err)
		}
		t.Skip(err)
	}
	ns, err := netns.New("oe-dial")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	if _, err := ns.Run("sysctl", "-w", "net.ipv4.ip_local_port_range=40000 40003"); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn // dialled and accepted, closed at the end
	)
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	err = ns.Do(func() error {
		var targets []string
		for _, addr := range []string{"127.0.0.1:5001", "127.0.0.1:5002"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					keep(c)
				}
			}()
			targets = append(targets, addr)
		}
		src := netip.MustParseAddr("127.0.0.2")
		for _, target := range targets {
			for i := range 4 {
				c, err := Dialer{Source: src}.DialContext(context.Background(), target)
				if err != nil {
					t.Errorf("dial %d to %s from %s: %v", i+1, target, src, err)
					continue
				}
				keep(c)
			}
		}
		// A fifth to the first: its four ports are taken for it.
		_, err := Dialer{Source: src}.DialContext(context.Background(), targets[0])
		if ReasonOf(err) != ReasonPorts || !strings.Contains(err.Error(), "no local port is free") {
			t.Errorf("dial 5 to %s: %v (reason %v); want reason ports, saying why", targets[0], err, ReasonOf(err))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
