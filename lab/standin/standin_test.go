package standin

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNewKinds(t *testing.T) {
	tests := []struct {
		protocol string
		flavor   string
		kind     string
	}{
		{"http", "", "http"},
		{"https", "", "http"},
		{"HTTP", "off", "product-opener"},
		{"http", "off-pro", "product-opener"},
		{"influxdb", "", "influxdb"},
		{"mongodb", "", "mongodb"},
		{"redis", "", "redis"},
		{"smtp", "", "smtp"},
		{"tcp", "", "tcp"},
		{"nfs", "", "tcp"},
		{"postgresql", "", "tcp"},
		{"", "", "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.protocol+"/"+tt.flavor, func(t *testing.T) {
			info := testInfo
			info.Flavor = tt.flavor
			srv, err := New(tt.protocol, info, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if got := srv.Kind(); got != tt.kind {
				t.Errorf("Kind() = %q, want %q", got, tt.kind)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"no service", Info{Node: "n"}, "Service is empty"},
		{"no node", Info{Service: "s"}, "Node is empty"},
		{"bad flavor", Info{Service: "s", Node: "n", Flavor: "xyz"}, `unknown Product Opener flavor "xyz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("http", tt.info, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestCloseStopsEverything checks, for every kind of server, that Close
// stops several listeners served concurrently, closes open connections,
// makes Serve return nil, and that Serve after Close returns ErrClosed.
func TestCloseStopsEverything(t *testing.T) {
	for _, protocol := range []string{"http", "mongodb", "redis", "smtp", "tcp"} {
		t.Run(protocol, func(t *testing.T) {
			srv, err := New(protocol, testInfo, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			done := make(chan error, 2)
			for range 2 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addrs = append(addrs, ln.Addr().String())
				go func() { done <- srv.Serve(ln) }()
			}
			var conns []net.Conn
			for _, a := range addrs {
				c := dial(t, a)
				// A first exchange proves the connection is being served.
				switch protocol {
				case "http":
					c.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
				case "redis":
					c.Write([]byte("PING\r\n"))
				case "mongodb":
					if _, err := MongoCommand(testCtx(t), c, "admin", Doc{{"ping", int32(1)}}); err != nil {
						t.Fatal(err)
					}
				}
				if protocol != "mongodb" {
					if _, err := c.Read(make([]byte, 1)); err != nil {
						t.Fatalf("%s on %s: %v", protocol, a, err)
					}
				}
				conns = append(conns, c)
			}
			closed := make(chan error, 1)
			go func() { closed <- srv.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatalf("Close: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return: a connection goroutine is still running")
			}
			for range 2 {
				if err := <-done; err != nil {
					t.Errorf("Serve after Close = %v, want nil", err)
				}
			}
			for _, c := range conns {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64<<10)
				for {
					_, err := c.Read(buf)
					if err == nil {
						continue
					}
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("a connection is still open after Close")
					}
					break
				}
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Serve(ln); !errors.Is(err, ErrClosed) {
				t.Errorf("Serve after Close = %v, want ErrClosed", err)
			}
			if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				t.Error("Serve after Close left its listener open")
			}
			if err := srv.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}
