package httpedge

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/http/vars"
	"github.com/offedge/offedge/edge/protect"
)

// Config is everything one listening socket serves.
type Config struct {
	// Listener names the socket in logs, e.g. "off1 203.0.113.10:443".
	Listener string `json:"listener"`
	// TLS makes the server terminate TLS (HTTP/2 and HTTP/1.1, TLS 1.2 minimum)
	// with the sites' certificates, chosen by SNI.
	TLS bool `json:"tls"`
	// RedirectHTTPS answers every request with 301 https://host/uri.
	RedirectHTTPS bool `json:"redirect_https"`
	// Sites are the virtual hosts; the one marked Default (else the first)
	// answers requests whose Host matches no site.
	Sites []Site `json:"sites"`
	// Limits bound what one client may hold. Every field must be set (the
	// plan resolves them from its defaults table); NewServer refuses zeros.
	Limits Limits `json:"limits"`
}

// Limits bound slow or hostile clients. The plan's defaults table
// (plan.DefaultLimits) gives the values a node runs with.
type Limits struct {
	ReadHeaderTimeout time.Duration `json:"read_header_timeout"`
	ReadBodyTimeout   time.Duration `json:"read_body_timeout"` // per request body
	IdleTimeout       time.Duration `json:"idle_timeout"`      // nginx keepalive_timeout
	MaxHeaderBytes    int           `json:"max_header_bytes"`  // all fields; request line limit 8 KiB -> 414
	ShutdownTimeout   time.Duration `json:"shutdown_timeout"`
	// SendTimeout drops a client that accepts no byte for this long while we
	// write to it (nginx send_timeout).
	SendTimeout time.Duration `json:"send_timeout"`
	// MaxConns bounds the listener's open connections (all its sockets);
	// more wait in the kernel's backlog. The runtime's descriptor budget
	// (Options.MaxConns) may lower it.
	MaxConns int `json:"max_conns"`
	// MaxConnsPerClient bounds one client address's open connections;
	// over it a connection is reset. Negative: no bound.
	MaxConnsPerClient int `json:"max_conns_per_client"`
}

// Site is one virtual host.
type Site struct {
	// Name identifies the site in logs and errors.
	Name string `json:"name"`
	// Hosts are exact names or leading wildcards ("*.openfoodfacts.org").
	Hosts []string `json:"hosts"`
	// Default makes this site answer unknown hosts (and, on TLS, present its
	// certificate to clients whose SNI matches no site).
	Default bool `json:"default,omitempty"`
	// Certificate names the site's certificate among the node's resources
	// (required on a TLS listener).
	Certificate string `json:"certificate,omitempty"`
	// Routes are chosen as nginx chooses a location: exact, else the
	// longest prefix if it is a priority prefix, else the first regex in
	// order, else the longest prefix.
	Routes []Route `json:"routes"`
	// Headers are added to the site's successful answers (200, 201, 204,
	// 206, 301, 302, 303, 304, 307, 308: nginx add_header), and
	// HeadersAlways to every answer, errors included (add_header ...
	// always). A route's own fields are added on top (see Route).
	Headers       map[string]string `json:"headers,omitempty"`
	HeadersAlways map[string]string `json:"headers_always,omitempty"`
	// ErrorPages maps a status to an HTML file served for it (502, 503, ...).
	ErrorPages map[int]string `json:"error_pages,omitempty"`
	// MaintenanceFile, while it exists, turns every answer into 503.
	MaintenanceFile string `json:"maintenance_file,omitempty"`
	// AccessLog, when set, logs every request of the site.
	AccessLog *SiteLog `json:"access_log,omitempty"`
	// ErrorLog, when set, receives what the server logs about the site's
	// requests (upstream failures and timeouts, refusals, cut answers)
	// instead of the server's logger (nginx error_log in a server).
	ErrorLog *SiteErrorLog `json:"error_log,omitempty"`
	// Allow restricts who may use the site (checked per request, 403); nil: anyone.
	Allow *acl.List `json:"allow,omitempty"`
	// Bots are matched in order against every request of the site; the
	// first that matches decides (the stop-crawling page, 403, 429, a
	// tarpit, or a close without an answer).
	Bots []protect.BotRuleConfig `json:"bots,omitempty"`
	// Jails name the node's jails this site's requests feed (limit hits,
	// bot matches, 4xx answers), which ban at accept.
	Jails []string `json:"jails,omitempty"`
	// Maps are the site's maps (nginx map), read as $NAME by its templates.
	Maps []vars.MapConfig `json:"maps,omitempty"`
	// Rewrites run before a route is chosen (nginx's server-level
	// rewrite, return, set and if), in order.
	Rewrites []vars.Step `json:"rewrites,omitempty"`
	// TLSPolicy narrows the listener's TLS policy for clients whose SNI
	// names this site (nginx's ssl_protocols, ssl_ciphers, ssl_ecdh_curve,
	// ssl_session_tickets in a server); nil: the listener's policy.
	TLSPolicy *TLSPolicy `json:"tls_policy,omitempty"`
	// HSTS is the Strict-Transport-Security value sent with every answer
	// of the site on a TLS listener, errors included (nginx add_header
	// ... always); "" sends none. The plan sets DefaultHSTS unless the
	// inventory opts out.
	HSTS string `json:"hsts,omitempty"`
}

// SiteLog is how a site writes to an access log file of the node.
type SiteLog struct {
	// File names the log file among the node's resources (AccessLogs).
	File   string `json:"file"`
	Format string `json:"format"` // "combined" | "combined_upstream" | "json"
}

// TLSPolicy is a site's narrowing of the edge's TLS policy (TLS 1.2
// minimum, ECDHE AEAD suites, rotating ticket keys): it can ask for more,
// never for less.
type TLSPolicy struct {
	// MinVersion is "1.2" (the edge's) or "1.3".
	MinVersion string `json:"min_version,omitempty"`
	// Ciphers are the TLS 1.2 suites offered, by IANA name, in order: a
	// subset of the edge's. Empty: the edge's.
	Ciphers []string `json:"ciphers,omitempty"`
	// Curves are the key exchanges offered, in order: X25519MLKEM768,
	// X25519, P-256, P-384, P-521. Empty: Go's (hybrid post-quantum first).
	Curves []string `json:"curves,omitempty"`
	// NoSessionTickets turns session tickets off (nginx
	// ssl_session_tickets off): every connection does a full handshake.
	NoSessionTickets bool `json:"no_session_tickets,omitempty"`
}

// SiteErrorLog is how a site writes to a log file of the node (one of
// AccessLogs: one writer per path, whatever writes to it).
type SiteErrorLog struct {
	File string `json:"file"`
	// Level is the least severity written: "debug", "info", "warn" or
	// "error".
	Level string `json:"level"`
}

// AccessLog is one buffered access log file, shared by every site and
// listener of the node that names it.
type AccessLog struct {
	Path          string        `json:"path"`
	BufferBytes   int           `json:"buffer_bytes"`
	FlushInterval time.Duration `json:"flush_interval"`
}

// Certificate is a PEM chain (certbot fullchain.pem) and its key, loaded
// once per node and reloaded when the files change.
type Certificate struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// Route is one location of a site: exactly one of Upstream, Static or
// Redirect says what it does.
type Route struct {
	Path  string `json:"path"` // prefix, exact when Exact, a regex for the regex kinds
	Exact bool   `json:"exact,omitempty"`
	// Match is "priority_prefix" (nginx "location ^~"), "regex"
	// ("location ~") or "regex_ci" ("location ~*"); "" is a prefix, or
	// exact when Exact. See routeTable.match for the precedence.
	Match string `json:"match,omitempty"`
	// Upstream names the pool (among the node's resources) requests are proxied to.
	Upstream     string  `json:"upstream,omitempty"`
	Static       *Static `json:"static,omitempty"`
	Redirect     string  `json:"redirect,omitempty"`      // URL prefix; request URI appended
	RedirectCode int     `json:"redirect_code,omitempty"` // 301, 302, 303, 307 or 308 (required with Redirect)
	// Headers and HeadersAlways are the route's added fields, as the
	// site's; a field the route names replaces the site's of that name.
	Headers       map[string]string `json:"headers,omitempty"`
	HeadersAlways map[string]string `json:"headers_always,omitempty"`
	// NoSiteHeaders drops the site's fields on this route (nginx: a
	// location with an add_header of its own inherits none of the
	// server's).
	NoSiteHeaders bool `json:"no_site_headers,omitempty"`
	// Expires sets Expires and Cache-Control on the route's successful
	// answers (nginx expires); nil: left as they are.
	Expires *Expires `json:"expires,omitempty"`
	// Compress compresses the route's answers; nil: never.
	Compress     *Compress `json:"compress,omitempty"`
	MaxBodyBytes int64     `json:"max_body_bytes"` // -1 = unlimited; 0 is refused
	WebSocket    bool      `json:"websocket,omitempty"`
	// BasicAuthFile is an htpasswd file with bcrypt ($2y$/$2a$/$2b$) entries.
	BasicAuthFile string `json:"basic_auth_file,omitempty"`
	// StreamRequestBody sends a proxied request's body upstream as it
	// arrives (nginx proxy_request_buffering off), for streaming uploads.
	// By default the whole body is read first (in memory up to
	// BodyBufferBytes, then in an unlinked temporary file), so that a slow
	// client holds no upstream connection.
	StreamRequestBody bool `json:"stream_request_body,omitempty"`
	// Cache keeps the route's proxied answers in one of the node's caches
	// (nginx proxy_cache on a location); nil: not cached.
	Cache *CachePolicy `json:"cache,omitempty"`
	// Limits are the node's rate zones every request of the route counts
	// against, in order (nginx limit_req, one per zone), each with the
	// route's burst and nodelay.
	Limits []RouteLimit `json:"limits,omitempty"`
	// Rewrites run once the route is chosen (nginx's location-level
	// rewrite, return, set and if), in order.
	Rewrites []vars.Step `json:"rewrites,omitempty"`
	// UpstreamPath is the URI part of nginx's proxy_pass: on a prefix or
	// exact route it replaces the part of the path the route matched; a
	// template (with variables) is the whole target sent upstream.
	UpstreamPath string `json:"upstream_path,omitempty"`
}

// RouteLimit is one rate zone a route counts against (nginx limit_req
// zone=Zone burst=Burst [nodelay]); the plan resolves Burst and NoDelay
// from the zone when the route does not say.
type RouteLimit struct {
	Zone    string `json:"zone"`
	Burst   int    `json:"burst"`
	NoDelay bool   `json:"nodelay,omitempty"`
}

// Static serves files from Root, falling back to an upstream for files
// missing locally (nginx try_files $uri @fallback).
type Static struct {
	Root string `json:"root"`
	// Fallback names the pool missing files are fetched from.
	Fallback string `json:"fallback,omitempty"`
	// Cache names the cache (among the node's resources) fallback answers are kept in.
	Cache string `json:"cache,omitempty"`
}

// Cache keeps fallback responses; one per declared cache of the node,
// shared by every listener whose routes name it.
type Cache struct {
	Dir      string                `json:"dir,omitempty"` // "" = memory only
	MaxBytes int64                 `json:"max_bytes"`
	TTL      map[int]time.Duration `json:"ttl"` // status -> ttl; statuses absent are not cached
	// Inactive drops an entry nobody asked for within it, fresh or not
	// (nginx's inactive=); 0 keeps entries until they are evicted.
	Inactive time.Duration `json:"inactive,omitempty"`
}

// Upstream is a pool of servers routes proxy to. Every field is required
// (the plan resolves defaults); NewPool refuses zeros it would otherwise
// have to replace.
type Upstream struct {
	Name    string           `json:"name"`
	Servers []UpstreamServer `json:"servers"`
	Host    string           `json:"host,omitempty"` // Host header sent; "" keeps the client's
	// Keepalive is the number of idle connections kept per server; -1 keeps none.
	Keepalive      int           `json:"keepalive"`
	ConnectTimeout time.Duration `json:"connect_timeout"`
	ReadTimeout    time.Duration `json:"read_timeout"`
	// MaxFails failures within FailTimeout take a server out for
	// FailTimeout; -1 never takes it out.
	MaxFails    int           `json:"max_fails"`
	FailTimeout time.Duration `json:"fail_timeout"`
	// Retries is how many other servers a request may be retried on; 0: none.
	Retries     int          `json:"retries"`
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
	// Queue is how many requests may wait when every server is at its
	// MaxConns (0: none wait, they get 503 at once); QueueTimeout how long
	// each may wait (then 503). nginx's upstream queue directive.
	Queue        int           `json:"queue,omitempty"`
	QueueTimeout time.Duration `json:"queue_timeout,omitempty"`
}

// UpstreamServer is one member of a pool.
type UpstreamServer struct {
	Addr       string `json:"addr"`   // host:port, IP literal (the lead's dialer maps it)
	Weight     int    `json:"weight"` // at least 1
	Backup     bool   `json:"backup,omitempty"`
	TLS        bool   `json:"tls,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	// MaxConns caps the requests in flight to this server, each holding one
	// connection (nginx max_conns); 0: no cap.
	MaxConns int `json:"max_conns,omitempty"`
}

// HealthCheck is an active probe of every server of a pool.
type HealthCheck struct {
	Path     string        `json:"path"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	Rise     int           `json:"rise"`
	Fall     int           `json:"fall"`
	// Status is the expected status; 0 accepts any 2xx or 3xx.
	Status int `json:"status,omitempty"`
}

// Options are the runtime's injections.
type Options struct {
	Logger *slog.Logger
	// Dial opens upstream connections; nil means a net.Dialer. The lab maps production addresses to loopback here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies TLS upstreams; nil means the system pool.
	RootCAs *x509.CertPool
	Now     func() time.Time
	// BodyTempDir holds the temporary files of buffered request bodies
	// (created and unlinked at once); "" is os.TempDir().
	BodyTempDir string
	// NetHTTP1 serves HTTP/1 with net/http's server loop instead of the
	// edge's own (edge/http/h1), for comparisons (bench/http).
	NetHTTP1 bool
	// MaxConns is the listener's share of the process's file descriptors
	// in connections (the runtime's budget); 0: no budget. It lowers
	// Limits.MaxConns, never raises it.
	MaxConns int

	// realClock: Now is time.Now (withDefaults set it), so a request's
	// clock reading may serve the upstream side's timers and idle ages,
	// which run on the real clock.
	realClock bool
}
