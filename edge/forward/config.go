package forward

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Config is one TCP forward: listen → target (the iptables DNAT rules it replaces).
type Config struct {
	Name string `json:"name"`
	// Target is the host:port connections are forwarded to.
	Target string `json:"target"`
	// ProxyProtocol sends a PROXY protocol v2 header carrying the client
	// address before the first byte.
	ProxyProtocol  bool          `json:"proxy_protocol,omitempty"`
	ConnectTimeout time.Duration `json:"connect_timeout"`
	IdleTimeout    time.Duration `json:"idle_timeout"`
	MaxConns       int           `json:"max_conns"`
	// MaxConnsPerClient bounds the connections of one client address
	// (never above MaxConns).
	MaxConnsPerClient int `json:"max_conns_per_client"`
}

// Options are the process-level dependencies of a forwarder.
type Options struct {
	// Logger receives connection and error lines; nil discards them.
	Logger *slog.Logger
	// Dial opens the connection to the target; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}
