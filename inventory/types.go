package inventory

import (
	"net/netip"
)

// File is one inventory document as written: inventory.yaml and each file it
// includes have this shape, and loading concatenates their lists.
//
// Every list entry carries its position (Pos) so that errors and check
// findings can name file:line:col.
type File struct {
	// Include lists further files to load, as paths or glob patterns
	// relative to the including file ("inventory.d/*.yaml").
	Include   []string       `yaml:"include"`
	Providers []*Provider    `yaml:"providers"`
	Networks  []*Network     `yaml:"networks"`
	Servers   []*Server      `yaml:"servers"`
	Guests    []*Guest       `yaml:"guests"`
	Services  []*Service     `yaml:"services"`
	Upstreams []*Upstream    `yaml:"upstreams"`
	Sites     []*Site        `yaml:"sites"`
	Tunnels   []*Tunnel      `yaml:"tunnels"`
	Forwards  []*Forward     `yaml:"forwards"`
	Policies  []*Policy      `yaml:"policies"`
	Replicas  []*Replica     `yaml:"replicas"`
	Suppress  []*Suppression `yaml:"suppress"`
	// Protection declares nodes' caches, rate zones, ban lists and jails.
	Protection []*Protection `yaml:"protection"`
	// Monitoring names the nodes that watch the estate (Prometheus, the
	// blackbox probes): they must never be banned, and offedge export
	// prometheus runs from the first.
	Monitoring []*Monitor `yaml:"monitoring"`
	// Admin declares nodes' admin endpoints: address and authentication.
	Admin []*Admin `yaml:"admin"`
}

// Monitor is one node that watches the estate; written as its name.
type Monitor struct {
	Pos  Pos    `yaml:"-"`
	Node string `yaml:"node,short"`
}

// Provider is an organisation hosting servers (Free, OVH, Moji).
type Provider struct {
	Pos         Pos         `yaml:"-"`
	Name        string      `yaml:"name"`
	Title       string      `yaml:"title"`
	Locations   []*Location `yaml:"locations"`
	Description string      `yaml:"description"`
}

// Location is a datacenter of a provider (sbg3, rbx8, rbx7).
type Location struct {
	Pos   Pos    `yaml:"-"`
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
}

// Network is an address space in which addresses are meaningful. Exactly one
// network per inventory usually has kind "public" (the internet); each site's
// private networks have kind "private" and may reuse the same ranges as other
// sites: an address is only meaningful inside its network.
type Network struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Kind is "public" (the internet) or "private".
	Kind     string `yaml:"kind"`
	Provider string `yaml:"provider"`
	Title    string `yaml:"title"`
	// Prefixes are the ranges addresses on this network come from. Optional;
	// when set, every address on the network must fall inside one of them.
	Prefixes []netip.Prefix `yaml:"prefixes"`
	// Gateway names the node that masquerades (NATs) this network's traffic
	// towards the public network. A host on the network reaches the internet
	// for an address family when it has an address of that family here and
	// the gateway has a public address of that family.
	Gateway string `yaml:"gateway"`
}

// Address is one address of a server or guest on a network.
type Address struct {
	Pos     Pos        `yaml:"-"`
	Network string     `yaml:"network"`
	IP      netip.Addr `yaml:"ip"`
	// Gateway overrides the network's gateway for traffic from this
	// address: a node, an address on this network held by the gateway
	// node (as Proxmox writes it: "10.0.0.2"), or "none" for an address
	// with no default route (a guest whose default route is its public
	// address, docs/reports/2022-02-18-ovh-reverse-proxy-down.md).
	Gateway string `yaml:"gateway"`
	// Label says what the address is for ("ipmi", "failover", "dns: proxy2").
	Label string `yaml:"label"`

	// gateway is Gateway resolved at load: the node, or nil for "none" or
	// when Gateway is empty (then the network's gateway applies).
	gateway *Node
}

// NoGateway is the Gateway value of an address with no default route.
const NoGateway = "none"

// Server is a physical machine at a provider.
type Server struct {
	Pos      Pos    `yaml:"-"`
	Name     string `yaml:"name"`
	Title    string `yaml:"title"`
	Provider string `yaml:"provider"`
	Location string `yaml:"location"`
	// Hardware is the provider's model name (advance-5, stor-2, dell-t630).
	Hardware string `yaml:"hardware"`
	// Mode is "bare-metal" or "proxmox".
	Mode string `yaml:"mode"`
	// Cluster names the Proxmox cluster the server belongs to, if any.
	Cluster   string     `yaml:"cluster"`
	OS        string     `yaml:"os"`
	Addresses []*Address `yaml:"addresses"`
	// Uses lists what software on this node connects to: service names, or
	// site hostnames reached over HTTP(S).
	Uses []string `yaml:"uses"`
	// Management is how operators and tools administer the node (ssh,
	// Proxmox UI, IPMI): the firewall always admits it.
	Management []*Management `yaml:"management"`
	// Firewall makes offedge own the node's nftables table (`offedge
	// firewall`, `offedge run --firewall`).
	Firewall *NodeFirewall `yaml:"firewall"`
	// Storage names the server's ZFS datasets: what replicas copy and what
	// it exports over NFS (docs/storage.md).
	Storage *NodeStorage `yaml:"storage"`
	// ACMEStateDir holds the node's ACME accounts and certificates.
	ACMEStateDir string `yaml:"acme_state_dir"`
	Description  string `yaml:"description"`
}

// NodeStorage is what a server holds on ZFS. When present, every zfs
// replica from or to the server must name one of its datasets.
type NodeStorage struct {
	Pos Pos `yaml:"-"`
	// Pools set the capacity thresholds of the server's pools. Every pool
	// the server watches (those of its datasets and of the replicas it
	// receives) is watched with the defaults when it is not listed.
	Pools    []*Pool    `yaml:"pools"`
	Datasets []*Dataset `yaml:"datasets"`
	// Backups are copies made as files (vzdump dumps, rclone copies): the
	// newest file of each directory must be younger than its max_age.
	Backups []*Backup `yaml:"backups"`
}

// Pool is the capacity thresholds of one ZFS pool (docs/storage.md).
type Pool struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Warn and Critical are the used percent (zpool's CAPACITY:
	// allocated / size) at which the pool alerts as a warning, then as
	// critical. Zero: the defaults.
	Warn     Percent `yaml:"warn"`
	Critical Percent `yaml:"critical"`
	// FillsWithin alerts when the pool's growth, extrapolated linearly,
	// fills it within this horizon. Zero: the default.
	FillsWithin Duration `yaml:"fills_within"`
	Description string   `yaml:"description"`
}

// Backup is a backup job that writes files into a directory (vzdump
// dumps, rclone copies); its freshness is the age of the newest file.
type Backup struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Dir is the absolute directory the job writes into.
	Dir string `yaml:"dir"`
	// Glob selects the job's files among the directory's entries (path.Match
	// syntax: "vzdump-*.zst"). Empty: every regular file.
	Glob string `yaml:"glob"`
	// MaxAge is the age of the newest file beyond which the job is stale.
	MaxAge Duration `yaml:"max_age"`
	// Schedule is how often the job runs ("3d" for twice a week).
	Schedule    Duration `yaml:"schedule"`
	Description string   `yaml:"description"`
}

// Dataset is one ZFS dataset of a server.
type Dataset struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// NFS lists the clients the dataset is exported to (its sharenfs):
	// addresses or prefixes. Empty: not exported.
	NFS []string `yaml:"nfs"`
	// NFSInherit says the dataset is meant to share the export of its
	// nearest exported parent (ZFS children inherit sharenfs).
	NFSInherit bool `yaml:"nfs_inherit"`
	// NFSOff says the dataset is not exported even under an exported
	// parent (sharenfs=off set on it).
	NFSOff      bool   `yaml:"nfs_off"`
	Description string `yaml:"description"`
}

// Guest is a Proxmox container (kind "ct") or virtual machine (kind "vm").
type Guest struct {
	Pos   Pos    `yaml:"-"`
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
	// Host is the server the guest runs on.
	Host string `yaml:"host"`
	// ID is the Proxmox guest id on its host (101 = the OVH reverse proxy).
	ID int `yaml:"id"`
	// Kind is "ct" (LXC container) or "vm" (QEMU virtual machine).
	Kind       string        `yaml:"kind"`
	OS         string        `yaml:"os"`
	Addresses  []*Address    `yaml:"addresses"`
	Uses       []string      `yaml:"uses"`
	Management []*Management `yaml:"management"`
	Firewall   *NodeFirewall `yaml:"firewall"`
	// ACMEStateDir holds the node's ACME accounts and certificates.
	ACMEStateDir string `yaml:"acme_state_dir"`
	Description  string `yaml:"description"`
}

// Service is something listening on a node.
type Service struct {
	Pos   Pos    `yaml:"-"`
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
	Node  string `yaml:"node"`
	Port  int    `yaml:"port"`
	// Protocol is http, https, tcp, or a database/application protocol
	// (mongodb, redis, postgresql, memcached, influxdb, smtp, ...). Database
	// protocols are held to stricter rules by `offedge check`.
	Protocol string `yaml:"protocol"`
	// Bind lists the networks the service listens on. Empty means every
	// network the node has an address on (a 0.0.0.0 / [::] bind).
	Bind []string `yaml:"bind"`
	// Loopback is true for a service that only listens on 127.0.0.1 / ::1.
	Loopback bool `yaml:"loopback"`
	// Allow is the access policy: who may connect (see "Access lists").
	Allow []string `yaml:"allow"`
	// Database marks a service holding data that must never be reachable
	// from the internet, when its protocol does not already say so.
	Database    bool   `yaml:"database"`
	Description string `yaml:"description"`
}

// Upstream is a pool of servers an HTTP route proxies to.
type Upstream struct {
	Pos     Pos               `yaml:"-"`
	Name    string            `yaml:"name"`
	Servers []*UpstreamServer `yaml:"servers"`
	// Keepalive is the number of idle connections kept per upstream server.
	Keepalive int `yaml:"keepalive"`
	// Host sets the Host header sent upstream; empty keeps the client's.
	Host           string       `yaml:"host"`
	ConnectTimeout Duration     `yaml:"connect_timeout"`
	ReadTimeout    Duration     `yaml:"read_timeout"`
	HealthCheck    *HealthCheck `yaml:"health_check"`
	// MaxFails and FailTimeout drive passive health: a server is taken out
	// for FailTimeout after MaxFails failures within FailTimeout.
	MaxFails    int      `yaml:"max_fails"`
	FailTimeout Duration `yaml:"fail_timeout"`
	// Retries is how many other servers an idempotent request is retried on
	// after a connection failure.
	Retries *int `yaml:"retries"`
	// Queue is how many requests may wait when every server is at its
	// max_conns; QueueTimeout how long each may wait (then 503).
	Queue        int      `yaml:"queue"`
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// UpstreamServer is one member of a pool: a service, a tunnel entrance, or a
// node's port on a network.
type UpstreamServer struct {
	Pos Pos `yaml:"-"`
	// Service names the service to reach (its node and port).
	Service string `yaml:"service"`
	// Tunnel names a tunnel; the pool dials the tunnel's entrance.
	Tunnel string `yaml:"tunnel"`
	// Node and Port name a listener directly (a site on another proxy).
	Node string `yaml:"node"`
	Port int    `yaml:"port"`
	// Network chooses which of the target's networks to use when several fit.
	Network string `yaml:"network"`
	// TLS dials the server with TLS; ServerName is the SNI and verified name.
	TLS        bool   `yaml:"tls"`
	ServerName string `yaml:"server_name"`
	Weight     int    `yaml:"weight"`
	// MaxConns caps the requests in flight to this server (nginx max_conns).
	MaxConns int `yaml:"max_conns"`
	// Backup servers are used only when every primary server is down.
	Backup bool `yaml:"backup"`
}

// HealthCheck is an active HTTP health check of every server of a pool.
type HealthCheck struct {
	Pos      Pos      `yaml:"-"`
	Path     string   `yaml:"path"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	// Rise successes mark a down server up; Fall failures mark it down.
	Rise int `yaml:"rise"`
	Fall int `yaml:"fall"`
	// Status is the expected status code; zero accepts any 2xx or 3xx.
	Status int `yaml:"status"`
}

// Site is an HTTP virtual host served by a node.
type Site struct {
	Pos   Pos    `yaml:"-"`
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
	Node  string `yaml:"node"`
	// Hosts are exact names or leading wildcards ("*.openfoodfacts.org").
	Hosts []string `yaml:"hosts"`
	// Default makes this site answer requests whose Host matches no site on
	// its listeners.
	Default bool      `yaml:"default"`
	Listen  []*Listen `yaml:"listen"`
	TLS     *TLS      `yaml:"tls"`
	Routes  []*Route  `yaml:"routes"`
	// Headers are response fields added to the site's successful answers
	// (nginx add_header), HeadersAlways to every answer (add_header ...
	// always).
	Headers       map[string]string `yaml:"headers"`
	HeadersAlways map[string]string `yaml:"headers_always"`
	// Expires sets Expires and Cache-Control on successful answers (nginx
	// expires); a route's own replaces it.
	Expires *Expires `yaml:"expires"`
	// Compress compresses the site's answers (nginx gzip, and zstd);
	// routes inherit it field by field.
	Compress *Compress `yaml:"compress"`
	// ErrorPages maps a status code (502, 503, 504) to an HTML file served
	// when offedge itself produces that status.
	ErrorPages map[int]string `yaml:"error_pages"`
	// MaintenanceFile switches the site to maintenance while the file exists:
	// 503 with Retry-After and the 503 error page, no restart needed.
	MaintenanceFile string     `yaml:"maintenance_file"`
	AccessLog       *AccessLog `yaml:"access_log"`
	// ErrorLog receives what offedge logs about the site's requests
	// (nginx error_log in a server).
	ErrorLog *ErrorLog `yaml:"error_log"`
	// Allow restricts who may connect; empty means anyone.
	Allow       []string `yaml:"allow"`
	Description string   `yaml:"description"`
	// Bots are matched in order against every request of the site.
	Bots []*BotRule `yaml:"bots"`
	// Maps are the site's nginx maps, read as $NAME (docs/routing.md).
	Maps []*VarMap `yaml:"maps"`
	// Rewrites run before a route is chosen (nginx's server-level
	// rewrite, return, set and if).
	Rewrites []*Step `yaml:"rewrites"`
}

// Listen is one listening socket of a site.
type Listen struct {
	Pos     Pos    `yaml:"-"`
	Network string `yaml:"network"`
	// Address picks one of the node's addresses on the network; empty means
	// all of them (IPv4 and IPv6).
	Address netip.Addr `yaml:"address"`
	Port    int        `yaml:"port"`
	TLS     bool       `yaml:"tls"`
	// RedirectHTTPS answers every request on this listener with a 301 to
	// the same host and URI over https.
	RedirectHTTPS bool `yaml:"redirect_https"`
}

// TLS says where a site's certificate comes from.
type TLS struct {
	Pos Pos `yaml:"-"`
	// Certbot names a certificate in certbot's layout:
	// <certbot_dir>/live/<name>/fullchain.pem and privkey.pem.
	Certbot    string `yaml:"certbot"`
	CertbotDir string `yaml:"certbot_dir"`
	// CertFile and KeyFile name PEM files directly.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// HSTS, unless false, makes the site send Strict-Transport-Security
	// (max-age two years) with every answer on its TLS listeners.
	HSTS *bool `yaml:"hsts"`
	// ACME makes the node that serves the site obtain and renew its
	// certificate itself (docs/certificates.md). With certbot or
	// cert_file/key_file too, those files are served until the first
	// certificate is issued (a certificate copied from the old node).
	ACME *ACME `yaml:"acme"`
	// MinVersion, Ciphers, Curves and SessionTickets narrow the edge's TLS
	// policy for this site's clients (nginx ssl_protocols, ssl_ciphers,
	// ssl_ecdh_curve, ssl_session_tickets).
	MinVersion     string   `yaml:"min_version"`
	Ciphers        []string `yaml:"ciphers"`
	Curves         []string `yaml:"curves"`
	SessionTickets *bool    `yaml:"session_tickets"`
}

// ACME challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeDNS01     = "dns-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ACMEStaging is the directory value naming Let's Encrypt's staging CA.
const ACMEStaging = "staging"

// ACME says how a site's certificate is obtained from an ACME CA.
type ACME struct {
	Pos Pos `yaml:"-"`
	// Challenge is http-01 (the default), dns-01 (wildcards) or tls-alpn-01.
	Challenge string `yaml:"challenge"`
	// Email is the account's contact address.
	Email string `yaml:"email"`
	// Directory is the CA's directory URL; empty is Let's Encrypt's
	// production CA, "staging" Let's Encrypt's staging CA.
	Directory string `yaml:"directory"`
	// DNSProvider writes dns-01's TXT records: "ovh".
	DNSProvider string `yaml:"dns_provider"`
	// Credentials is the DNS provider's credentials file (a secret: mode
	// 0600 or 0640).
	Credentials string `yaml:"credentials"`
}

// Route sends requests whose path matches to an upstream, a static root, or a
// redirect. Routes are chosen as nginx chooses a location (docs/routing.md):
// an exact route, else the longest prefix unless it is a priority prefix,
// else the first regex in declaration order, else that longest prefix.
type Route struct {
	Pos  Pos    `yaml:"-"`
	Path string `yaml:"path"`
	// Match is how Path matches: prefix (the default), exact (nginx
	// "location ="), priority_prefix ("location ^~": a longest match
	// stops the regex search), regex ("location ~") or regex_ci
	// ("location ~*"); for the two regex kinds Path is an RE2 regex.
	Match string `yaml:"match"`
	// Exact is match: exact.
	Exact bool `yaml:"exact"`
	// Upstream names the pool requests are proxied to.
	Upstream string  `yaml:"upstream"`
	Static   *Static `yaml:"static"`
	// Redirect answers with a redirect to this URL prefix + the request URI.
	Redirect     string `yaml:"redirect"`
	RedirectCode int    `yaml:"redirect_code"`
	// Headers and HeadersAlways are response fields added on this route,
	// on top of the site's (a name the route sets replaces the site's).
	Headers       map[string]string `yaml:"headers"`
	HeadersAlways map[string]string `yaml:"headers_always"`
	// HeadersInherit false drops the site's fields on this route (what
	// nginx does to a location with an add_header of its own).
	HeadersInherit *bool `yaml:"headers_inherit"`
	// Expires replaces the site's expires on this route ("off" cancels it).
	Expires *Expires `yaml:"expires"`
	// Compress sets the route's compression; a field it leaves unset is
	// the site's.
	Compress    *Compress `yaml:"compress"`
	MaxBodySize Size      `yaml:"max_body_size"`
	// WebSocket allows connection upgrades on this route.
	WebSocket bool `yaml:"websocket"`
	// BasicAuth names an htpasswd file (bcrypt) guarding the route.
	BasicAuth string `yaml:"basic_auth"`
	// RequestBuffering, on by default, reads a proxied request's whole body
	// before sending it upstream; false streams it (uploads).
	RequestBuffering *bool `yaml:"request_buffering"`
	// Cache keeps the route's proxied answers in a node cache.
	Cache *RouteCache `yaml:"cache"`
	// Limits are the node's rate zones the route counts against (nginx
	// limit_req), each a zone name or {zone, burst, nodelay}.
	Limits []*RouteLimit `yaml:"limits"`
	// Rewrites run once the route is chosen (nginx's location-level
	// rewrite, return, set and if).
	Rewrites []*Step `yaml:"rewrites"`
	// UpstreamPath is the URI part of nginx's proxy_pass.
	UpstreamPath string `yaml:"upstream_path"`
}

// RouteLimit is one rate zone a route counts against (nginx limit_req
// zone=Zone burst=N [nodelay]); written as the zone's name alone, the
// zone's own burst and nodelay apply.
type RouteLimit struct {
	Pos  Pos    `yaml:"-"`
	Zone string `yaml:"zone,short"`
	// Burst and NoDelay override the zone's for this route.
	Burst   *int  `yaml:"burst"`
	NoDelay *bool `yaml:"nodelay"`
}

// Route match kinds (Route.Match).
const (
	MatchPrefix         = "prefix"
	MatchExact          = "exact"
	MatchPriorityPrefix = "priority_prefix"
	MatchRegex          = "regex"
	MatchRegexCI        = "regex_ci"
)

// Kind is how the route's path matches: Match, exact when Exact, else prefix.
func (r *Route) Kind() string {
	switch {
	case r.Match != "":
		return r.Match
	case r.Exact:
		return MatchExact
	}
	return MatchPrefix
}

// IsRegex reports whether the route's path is a regex.
func (r *Route) IsRegex() bool { k := r.Kind(); return k == MatchRegex || k == MatchRegexCI }

// Static serves files from Root; a file missing there is fetched from the
// Fallback pool and cached.
type Static struct {
	Pos      Pos    `yaml:"-"`
	Root     string `yaml:"root"`
	Fallback string `yaml:"fallback"`
	Cache    *Cache `yaml:"cache"`
}

// Cache bounds the fallback cache of a static route.
type Cache struct {
	Pos Pos `yaml:"-"`
	// Dir keeps cached responses on disk; empty keeps them in memory.
	Dir     string `yaml:"dir"`
	MaxSize Size   `yaml:"max_size"`
	// TTL maps a status code to how long responses with it stay cached.
	TTL map[int]Duration `yaml:"ttl"`
	// Inactive drops entries unused that long, fresh or not (nginx's
	// inactive=).
	Inactive Duration `yaml:"inactive"`
}

// Compress is a site's or route's compression of its answers: gzip (nginx
// gzip, gzip_types, gzip_min_length, gzip_comp_level, gzip_static) and
// zstd, for the clients that accept them.
type Compress struct {
	Pos Pos `yaml:"-"`
	// Gzip and Zstd turn each coding on or off (both on by default).
	Gzip *bool `yaml:"gzip"`
	Zstd *bool `yaml:"zstd"`
	// Types are the media types compressed ("text/html", "text/*", "*").
	Types []string `yaml:"types"`
	// MinLength: answers of a known smaller length are sent as they are.
	MinLength *Size `yaml:"min_length"`
	// Level is gzip's compression level, 1 to 9.
	Level int `yaml:"level"`
	// GzipStatic serves FILE.gz beside a static FILE to gzip clients.
	GzipStatic *bool `yaml:"gzip_static"`
}

// ErrorLog is a site's error log: upstream failures and timeouts,
// refusals, cut answers, at Level or above.
type ErrorLog struct {
	Pos  Pos    `yaml:"-"`
	Path string `yaml:"path"`
	// Level is nginx's: debug, info, notice, warn, error, crit, alert or
	// emerg (notice is info; crit and above are error).
	Level string `yaml:"level"`
}

// AccessLog configures a site's access log.
type AccessLog struct {
	Pos  Pos    `yaml:"-"`
	Path string `yaml:"path"`
	// Format is "combined" (nginx's), "combined_upstream" (combined, then
	// c=cache u=upstream t=seconds), "combined_proxy" (combined, then
	// "X-Forwarded-For" cache [upstream seconds]: the Open Food Facts
	// reverse proxies' format) or "json".
	Format string   `yaml:"format"`
	Buffer Size     `yaml:"buffer"`
	Flush  Duration `yaml:"flush"`
}

// Tunnel carries a TCP service over TLS 1.3 from an entrance (stunnel's
// client = yes) to an exit (client = no) that connects to the service.
type Tunnel struct {
	Pos     Pos    `yaml:"-"`
	Name    string `yaml:"name"`
	Title   string `yaml:"title"`
	Service string `yaml:"service"`
	// Entrance is where clients connect in clear text.
	Entrance *Endpoint `yaml:"entrance"`
	// Exits are tried in order until one answers.
	Exits []*Endpoint `yaml:"exits"`
	Auth  *TunnelAuth `yaml:"auth"`
	// Allow says who may use the entrance; the exit only admits entrances.
	Allow          []string `yaml:"allow"`
	ConnectTimeout Duration `yaml:"connect_timeout"`
	IdleTimeout    Duration `yaml:"idle_timeout"`
	// KeyExchange is the TLS 1.3 key exchange of the tunnel: "hybrid" (the
	// default: X25519 with ML-KEM, safe against recording now and
	// decrypting later) or "x25519" (classical only, cheaper handshakes).
	KeyExchange string `yaml:"key_exchange"`
	// Mux carries the tunnel's clients as streams of a few long-lived TLS
	// connections between two offedge ends (nil: on). An exit that does
	// not offer it (stunnel4) gets one TLS connection per client anyway.
	Mux         *bool  `yaml:"mux"`
	Description string `yaml:"description"`
}

// Endpoint is a node's port on one of its networks.
type Endpoint struct {
	Pos     Pos    `yaml:"-"`
	Node    string `yaml:"node"`
	Network string `yaml:"network"`
	// Address picks one of the node's addresses on the network; empty means
	// the node's first address of each family there (IPv4 and IPv6).
	Address netip.Addr `yaml:"address"`
	Port    int        `yaml:"port"`
	// Loopback listens on 127.0.0.1 only (a tunnel entrance used by a proxy
	// on the same node).
	Loopback bool `yaml:"loopback"`
	// Public acknowledges a clear-text entrance on a public address; without
	// it `offedge check` and `offedge run` refuse one.
	Public bool `yaml:"public"`
}

// TunnelAuth is how the two ends of a tunnel authenticate each other.
type TunnelAuth struct {
	Pos Pos `yaml:"-"`
	// PSK names a file holding the shared secret (one per tunnel).
	PSK string `yaml:"psk"`
	// PKI uses certificates from `offedge pki`: each end proves its node name.
	PKI bool `yaml:"pki"`
}

// Forward relays TCP from a listener to a target (the iptables DNAT proxies).
type Forward struct {
	Pos    Pos       `yaml:"-"`
	Name   string    `yaml:"name"`
	Title  string    `yaml:"title"`
	Node   string    `yaml:"node"`
	Listen *Endpoint `yaml:"listen"`
	// Service names the target service.
	Service string   `yaml:"service"`
	Allow   []string `yaml:"allow"`
	// ProxyProtocol sends a PROXY protocol v2 header so the target sees the
	// real client address.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// Mode is "userspace" (the default: offedge accepts and relays each
	// connection) or "kernel" (an nftables DNAT rule in the node's firewall,
	// as the iptables rules did; the target sees the client's address).
	Mode        string `yaml:"mode"`
	Description string `yaml:"description"`
}

// Policy is a named access list other allow lists include as "policy:NAME".
type Policy struct {
	Pos         Pos      `yaml:"-"`
	Name        string   `yaml:"name"`
	Allow       []string `yaml:"allow"`
	Description string   `yaml:"description"`
}

// Replica is a dataset or directory copied from one node to another.
type Replica struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Kind is "zfs" (syncoid), "pvesr" (Proxmox storage replication) or "rsync".
	Kind   string      `yaml:"kind"`
	Source *ReplicaEnd `yaml:"source"`
	Target *ReplicaEnd `yaml:"target"`
	// Schedule is how often the copy runs ("15m", "1h").
	Schedule Duration `yaml:"schedule"`
	// MaxLag is the age of the newest copy beyond which the replica is stale
	// and monitoring must alert.
	MaxLag    Duration `yaml:"max_lag"`
	Recursive bool     `yaml:"recursive"`
	// Initiator is the end whose node runs the copy and connects to the
	// other end's ssh: "target" (a pull, as syncoid runs at Open Food
	// Facts; the default for zfs and rsync) or "source" (a push; the
	// default for pvesr, which Proxmox runs on the source node).
	Initiator   string `yaml:"initiator"`
	Description string `yaml:"description"`
}

// Initiators returns the node that runs the copy and the node it connects
// to, after Initiator's defaults; both empty when an end is missing.
func (r *Replica) Initiators() (runs, connectsTo string) {
	if r.Source == nil || r.Target == nil {
		return "", ""
	}
	init := r.Initiator
	if init == "" {
		init = "target"
		if r.Kind == "pvesr" {
			init = "source"
		}
	}
	if init == "source" {
		return r.Source.Node, r.Target.Node
	}
	return r.Target.Node, r.Source.Node
}

// ReplicaEnd is a dataset or path on a node.
type ReplicaEnd struct {
	Pos  Pos    `yaml:"-"`
	Node string `yaml:"node"`
	Path string `yaml:"path"`
}

// Suppression silences one check rule for one object, with a reason.
type Suppression struct {
	Pos    Pos    `yaml:"-"`
	Rule   string `yaml:"rule"`
	Object string `yaml:"object"`
	Reason string `yaml:"reason"`
}
