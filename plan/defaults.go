package plan

import (
	"time"

	httpedge "github.com/offedge/offedge/edge/http"
)

// The one table of defaults: every value a node runs with that the
// inventory leaves unset comes from here, and the plan shows it. The edge
// constructors refuse zero values rather than fill them, so no second
// table can disagree with this one. They follow nginx and stunnel where
// Open Food Facts relied on their defaults.
const (
	// Upstream pools.
	DefaultKeepalive      = 32               // idle connections kept per upstream server
	DefaultConnectTimeout = 10 * time.Second // stunnel TIMEOUTconnect; also HTTP upstreams and forwards
	DefaultUpstreamRead   = 60 * time.Second // nginx proxy_read_timeout
	DefaultMaxFails       = 1                // nginx max_fails
	DefaultFailTimeout    = 10 * time.Second // nginx fail_timeout
	DefaultWeight         = 1
	DefaultHealthInterval = 5 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthRise     = 2
	DefaultHealthFall     = 3
	DefaultQueueTimeout   = 60 * time.Second // nginx's upstream queue timeout

	// HTTP listeners and routes.
	DefaultMaxBodyBytes = 1 << 20 // nginx client_max_body_size
	DefaultRedirectCode = 301

	// Compression (a compress block's unset fields). nginx's gzip_min_length
	// is 20 and its level 1; 256 bytes is where gzip stops making answers
	// larger, and level 5 is near level 9's size at a third of its CPU
	// (klauspost/compress's own measurements).
	DefaultCompressMinLength = 256
	DefaultGzipLevel         = 5

	// Caches of static routes with a fallback.
	DefaultCacheBytes  = 1 << 30
	DefaultFallbackTTL = 24 * time.Hour // nginx's reference config caches fallback 200s a day
	// DefaultCacheInactive drops entries nobody asked for in that long,
	// fresh or not (nginx's proxy_cache_path inactive= default), for every
	// cache: static fallbacks and proxy caches.
	DefaultCacheInactive = 10 * time.Minute

	// Access logs (the reference config: buffer=256K flush=1s).
	DefaultLogFormat = "combined"
	DefaultLogBuffer = 256 << 10
	DefaultLogFlush  = time.Second
	// Error logs: nginx's default level; lines are rare, so a small buffer.
	DefaultErrorLogLevel  = "error"
	DefaultErrorLogBuffer = 4 << 10

	// Tunnels and forwards.
	DefaultTunnelIdle       = 12 * time.Hour // stunnel TIMEOUTidle
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultTCPKeepAlive     = 30 * time.Second
	DefaultMaxConns         = 4096 // per tunnel entrance, exit and forward listener
	// DefaultMaxConnsPerClient bounds one client address of a tunnel
	// entrance, exit (one entrance node) or forward: a quarter of
	// DefaultMaxConns, so that one client cannot lock the others out.
	DefaultMaxConnsPerClient = 1024

	// ACME: where a node keeps its accounts and certificates, and the CA
	// a site's acme: block names when it names none (Let's Encrypt's
	// production directory; "staging" names LetsEncryptStaging).
	DefaultACMEStateDir  = "/var/lib/offedge/acme"
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging   = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// DefaultCompressTypes are the media types a compress block without types
// compresses: text, and the structured-text types web answers use (nginx's
// gzip_types defaults to text/html alone; an import keeps what the
// configuration said).
var DefaultCompressTypes = []string{
	"text/*",
	"application/javascript", "application/json", "application/ld+json", "application/manifest+json",
	"application/xml", "application/rss+xml", "application/atom+xml", "application/xhtml+xml",
	"application/geo+json", "application/wasm", "image/svg+xml",
}

// HTTP listener limits on slow or hostile clients (nginx's defaults where
// it has them: client_header_timeout, client_body_timeout,
// keepalive_timeout, send_timeout).
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadBodyTimeout   = 60 * time.Second
	DefaultIdleTimeout       = 75 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultSendTimeout       = 60 * time.Second
	// DefaultHTTPMaxConns bounds a listener's open connections (the
	// runtime's descriptor budget lowers it); DefaultHTTPMaxConnsPerClient
	// one client address's, as for tunnels and forwards: large enough for a
	// carrier-grade NAT's users, small enough that one client cannot hold
	// the listener.
	DefaultHTTPMaxConns          = 16384
	DefaultHTTPMaxConnsPerClient = 1024
)

// DefaultLimits are the limits of every HTTP listener.
func DefaultLimits() httpedge.Limits {
	return httpedge.Limits{
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadBodyTimeout:   DefaultReadBodyTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ShutdownTimeout:   DefaultShutdownTimeout,
		SendTimeout:       DefaultSendTimeout,
		MaxConns:          DefaultHTTPMaxConns,
		MaxConnsPerClient: DefaultHTTPMaxConnsPerClient,
	}
}
