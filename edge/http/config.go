package httpedge

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"time"

	"github.com/offedge/offedge/edge/acl"
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
	// Limits bound what one client may hold; zero fields take defaults.
	Limits Limits `json:"limits"`
}

// Limits bound slow or hostile clients. Zero values mean the defaults below.
type Limits struct {
	ReadHeaderTimeout time.Duration `json:"read_header_timeout"` // default 10s
	ReadBodyTimeout   time.Duration `json:"read_body_timeout"`   // default 60s (per request body)
	IdleTimeout       time.Duration `json:"idle_timeout"`        // default 75s (nginx keepalive_timeout)
	MaxHeaderBytes    int           `json:"max_header_bytes"`    // default 16 KiB total; request line limit 8 KiB -> 414
	ShutdownTimeout   time.Duration `json:"shutdown_timeout"`    // default 30s
	// SendTimeout drops a client that accepts no byte for this long while we
	// write to it (nginx send_timeout); default 60s.
	SendTimeout time.Duration `json:"send_timeout,omitempty"`
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
	// CertFile is a PEM chain (certbot fullchain.pem); KeyFile its key.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// Routes are matched by longest path prefix (exact routes first).
	Routes []Route `json:"routes"`
	// Headers are added to every response of the site.
	Headers map[string]string `json:"headers,omitempty"`
	// ErrorPages maps a status to an HTML file served for it (502, 503, ...).
	ErrorPages map[int]string `json:"error_pages,omitempty"`
	// MaintenanceFile, while it exists, turns every answer into 503.
	MaintenanceFile string `json:"maintenance_file,omitempty"`
	// AccessLog, when set, logs every request of the site.
	AccessLog *AccessLog `json:"access_log,omitempty"`
	// Allow restricts who may use the site (checked per request, 403); nil: anyone.
	Allow *acl.List `json:"allow,omitempty"`
	// HSTS is the Strict-Transport-Security value sent with every answer
	// of the site on a TLS listener, errors included (nginx add_header
	// ... always); "" sends none. The plan sets DefaultHSTS unless the
	// inventory opts out.
	HSTS string `json:"hsts,omitempty"`
}

// AccessLog configures a buffered access log file.
type AccessLog struct {
	Path          string        `json:"path"`
	Format        string        `json:"format"` // "combined" | "json"
	BufferBytes   int           `json:"buffer_bytes"`
	FlushInterval time.Duration `json:"flush_interval"`
}

// Route is one location of a site: exactly one of Upstream, Static or
// Redirect says what it does.
type Route struct {
	Path          string            `json:"path"` // prefix, or exact when Exact
	Exact         bool              `json:"exact,omitempty"`
	Upstream      *Upstream         `json:"upstream,omitempty"`
	Static        *Static           `json:"static,omitempty"`
	Redirect      string            `json:"redirect,omitempty"`      // URL prefix; request URI appended
	RedirectCode  int               `json:"redirect_code,omitempty"` // default 301
	Headers       map[string]string `json:"headers,omitempty"`
	MaxBodyBytes  int64             `json:"max_body_bytes,omitempty"` // 0 = default 1 MiB as nginx; -1 = unlimited
	WebSocket     bool              `json:"websocket,omitempty"`
	BasicAuthFile string            `json:"basic_auth_file,omitempty"` // htpasswd, bcrypt ($2y$/$2a$/$2b$) entries
	// StreamRequestBody sends a proxied request's body upstream as it
	// arrives (nginx proxy_request_buffering off), for streaming uploads.
	// By default the whole body is read first (in memory up to
	// BodyBufferBytes, then in an unlinked temporary file), so that a slow
	// client holds no upstream connection.
	StreamRequestBody bool `json:"stream_request_body,omitempty"`
}

// Static serves files from Root, falling back to an upstream for files
// missing locally (nginx try_files $uri @fallback).
type Static struct {
	Root     string    `json:"root"`
	Fallback *Upstream `json:"fallback,omitempty"`
	Cache    *Cache    `json:"cache,omitempty"`
}

// Cache keeps fallback responses.
type Cache struct {
	Dir      string                `json:"dir,omitempty"` // "" = memory only
	MaxBytes int64                 `json:"max_bytes"`
	TTL      map[int]time.Duration `json:"ttl"` // status -> ttl; statuses absent are not cached
}

// Upstream is a pool of servers a route proxies to.
type Upstream struct {
	Name           string           `json:"name"`
	Servers        []UpstreamServer `json:"servers"`
	Host           string           `json:"host,omitempty"` // Host header sent; "" keeps the client's
	Keepalive      int              `json:"keepalive"`
	ConnectTimeout time.Duration    `json:"connect_timeout"`
	ReadTimeout    time.Duration    `json:"read_timeout"`
	MaxFails       int              `json:"max_fails"`
	FailTimeout    time.Duration    `json:"fail_timeout"`
	Retries        int              `json:"retries"`
	HealthCheck    *HealthCheck     `json:"health_check,omitempty"`
	// Queue is how many requests may wait when every server is at its
	// MaxConns (0: none wait, they get 503 at once); QueueTimeout how long
	// each may wait (then 503). nginx's upstream queue directive.
	Queue        int           `json:"queue,omitempty"`
	QueueTimeout time.Duration `json:"queue_timeout,omitempty"`
}

// UpstreamServer is one member of a pool.
type UpstreamServer struct {
	Addr       string `json:"addr"`   // host:port, IP literal (the lead's dialer maps it)
	Weight     int    `json:"weight"` // 0 means 1
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
	Status   int           `json:"status,omitempty"`
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
}
