package tunnel

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Auth says how the two ends of a tunnel authenticate each other. In a
// plan, Secret names the node's key material (plan.Resources.Secrets,
// loaded once per node by the runtime and handed over in the config's
// Secrets), with PKI carrying only the peer names of a pki tunnel. A
// library caller may instead name the files here: exactly one of PSKFile
// and PKI, read when the end is built or updated.
type Auth struct {
	// Secret names a loaded [Key] of the config's Secrets.
	Secret string `json:"secret,omitempty"`
	// PSKFile is a file holding the tunnel's shared secret (for example the
	// output of `pwgen 32`). Its mode must not grant group or other access
	// (0600 or 0400). Both ends derive the same Ed25519 key and certificate
	// from it; see docs/tunnels.md.
	PSKFile string `json:"psk_file,omitempty"`
	// PKI authenticates with certificates issued by an internal CA (package pki).
	PKI *PKIAuth `json:"pki,omitempty"`
}

// PKIAuth is certificate authentication with an internal CA.
type PKIAuth struct {
	// The files, unless Auth.Secret names them.
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// PeerNames are the node names the peer certificate must carry (as DNS
	// SAN or offedge://node/NAME URI SAN): on an exit, the entrance nodes; on
	// an entrance, the exit nodes.
	PeerNames []string `json:"peer_names"`
}

// EntranceConfig configures the clear-text side of a tunnel (stunnel's
// `client = yes`): it accepts plain TCP and carries it over TLS 1.3 to an exit.
type EntranceConfig struct {
	// Name is the tunnel name; it is also the SNI sent to the exit, which uses
	// it to pick the tunnel.
	Name string `json:"name"`
	// Exits are host:port addresses tried in order (failover).
	Exits []string `json:"exits"`
	Auth  Auth     `json:"auth"`
	// Public says the inventory puts the listener on a public network.
	Public bool `json:"public,omitempty"`
	// AllowPublic is the explicit override to serve clear text on a public
	// network or address.
	AllowPublic      bool          `json:"allow_public,omitempty"`
	ConnectTimeout   time.Duration `json:"connect_timeout"`
	HandshakeTimeout time.Duration `json:"handshake_timeout"`
	IdleTimeout      time.Duration `json:"idle_timeout"`
	KeepAlive        time.Duration `json:"keepalive"`
	MaxConns         int           `json:"max_conns"`
	// MaxConnsPerClient bounds the connections of one client address
	// (never above MaxConns).
	MaxConnsPerClient int `json:"max_conns_per_client"`
	// KeyExchange selects the TLS 1.3 key exchange the entrance offers:
	// "" or "hybrid" (default) offers X25519MLKEM768 (post-quantum hybrid)
	// and X25519, as Go does; "x25519" offers X25519 only, which costs about
	// a third less CPU per new connection but gives up protection against
	// recording now and decrypting later with a quantum computer. Exits
	// accept both.
	KeyExchange string `json:"key_exchange,omitempty"`
	// Mux carries the clients as streams of a few long-lived TLS
	// connections (sessions) to the exit, offering MuxALPN: a new client
	// then costs no handshake. An exit that does not take it (stunnel4, an
	// older offedge) gets one TLS connection per client, as without Mux.
	Mux bool `json:"mux"`
	// Secrets are the node's loaded secrets that Auth.Secret names (the
	// runtime's registry); not part of the plan.
	Secrets map[string]*Key `json:"-"`
}

// ExitConfig configures the TLS side of tunnels (stunnel's `client = no`).
// One exit listener may serve several tunnels, chosen by SNI = tunnel name.
type ExitConfig struct {
	Listener         string        `json:"listener"`
	Tunnels          []ExitTunnel  `json:"tunnels"`
	HandshakeTimeout time.Duration `json:"handshake_timeout"`
	MaxConns         int           `json:"max_conns"`
	// MaxConnsPerClient bounds the connections of one client address, that
	// is of one entrance node (never above MaxConns).
	MaxConnsPerClient int `json:"max_conns_per_client"`
	// Secrets are the node's loaded secrets that the tunnels' Auth.Secret
	// names (the runtime's registry); not part of the plan.
	Secrets map[string]*Key `json:"-"`
}

// ExitTunnel is one tunnel served by an exit listener.
type ExitTunnel struct {
	Name string `json:"name"`
	// Target is the host:port of the service the tunnel reaches.
	Target         string        `json:"target"`
	Auth           Auth          `json:"auth"`
	ConnectTimeout time.Duration `json:"connect_timeout"`
	IdleTimeout    time.Duration `json:"idle_timeout"`
	KeepAlive      time.Duration `json:"keepalive"`
}

// Options are the process-level dependencies of an entrance or exit.
type Options struct {
	// Logger receives connection and error lines; nil discards them.
	Logger *slog.Logger
	// Dial opens outgoing connections; nil uses a net.Dialer with the
	// configured timeout and keepalive. The lab maps addresses here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Keys caches keys derived from pre-shared secrets that an Auth names
	// by file; nil gives the role its own (kept across its Updates). Share
	// one between roles, or nodes (the lab), to derive each secret once.
	Keys *KeyCache
	// ListenKeepAlive is the TCP keepalive the listener already gives
	// every connection it accepts (conn.Listen sets it once on the
	// listening socket): a tunnel whose keepalive is the same skips the
	// four setsockopt calls of setting it again per connection. Zero: not
	// known, set per connection.
	ListenKeepAlive time.Duration
}
