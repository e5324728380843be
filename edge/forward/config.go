package forward

import (
	"log/slog"
	"net/netip"
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
	// Route maps the target to the address to connect to and the source
	// address to connect from (the zero Addr lets the kernel choose); nil
	// connects to the target as written. The runtime's maps a plan's
	// addresses to the lab's and binds the source the plan shows.
	Route func(target string) (netip.AddrPort, netip.Addr, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}
