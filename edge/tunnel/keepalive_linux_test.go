package tunnel

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/conn"
)

// capture hands out the connections its listener accepts, unwrapped.
type capture struct {
	net.Listener
	got chan *net.TCPConn
}

func (c capture) Accept() (net.Conn, error) {
	nc, err := c.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		select {
		case c.got <- tc:
		default:
		}
	}
	return nc, err
}

func keepIdle(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return v
}

// An exit sets a tunnel's keepalive on an accepted connection only when
// the listener does not already give it (Options.ListenKeepAlive): the
// kernel copied the listener's on accept.
func TestExitKeepAliveOnlyWhereTheListenerDiffers(t *testing.T) {
	target := startEcho(t, "")
	for _, tc := range []struct {
		name             string
		tunnel, listener time.Duration // the tunnel's keepalive, what Options says the listener sets
		want             int           // TCP_KEEPIDLE of the accepted connection; the listener really sets 30 s
	}{
		{"differs: set per connection", 45 * time.Second, 30 * time.Second, 45},
		{"same: inherited, not set again", 45 * time.Second, 45 * time.Second, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := conn.Listen(context.Background(), "127.0.0.1:0", 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			cl := capture{Listener: ln, got: make(chan *net.TCPConn, 1)}
			secret := writeSecret(t, secretA)
			x, err := NewExit(fullExit(ExitConfig{Listener: ln.Addr().String(),
				Tunnels: []ExitTunnel{{Name: "ka", Target: target, Auth: Auth{PSKFile: secret}, KeepAlive: tc.tunnel}}}),
				Options{ListenKeepAlive: tc.listener})
			if err != nil {
				t.Fatal(err)
			}
			serve(t, x, cl)
			e, err := NewEntrance(fullEntrance(EntranceConfig{Name: "ka", Exits: []string{ln.Addr().String()}, Auth: Auth{PSKFile: secret}, Mux: true}), Options{})
			if err != nil {
				t.Fatal(err)
			}
			eln := listen(t)
			serve(t, e, eln)
			if got, err := roundTrip(t, eln.Addr().String(), "ping"); err != nil || got != "ping" {
				t.Fatalf("round trip: %q, %v", got, err)
			}
			if got := keepIdle(t, <-cl.got); got != tc.want {
				t.Fatalf("TCP_KEEPIDLE of the exit's accepted connection = %d; want %d", got, tc.want)
			}
		})
	}
}
