package nginx

// The inventory fragment the importer writes: the inventory's own field
// names (docs/inventory.md), only the fields an import sets, in the order
// an operator reads them. These types are output only; inventory.Load is
// what validates them (the tests load every import with the inventory it
// was made against).

type outFile struct {
	Upstreams  []*outUpstream   `yaml:"upstreams,omitempty"`
	Sites      []*outSite       `yaml:"sites,omitempty"`
	Protection []*outProtection `yaml:"protection,omitempty"`
}

type outUpstream struct {
	Name           string               `yaml:"name"`
	Servers        []*outUpstreamServer `yaml:"servers"`
	Keepalive      int                  `yaml:"keepalive,omitempty"`
	Host           string               `yaml:"host,omitempty"`
	ConnectTimeout string               `yaml:"connect_timeout,omitempty"`
	ReadTimeout    string               `yaml:"read_timeout,omitempty"`
	MaxFails       int                  `yaml:"max_fails,omitempty"`
	FailTimeout    string               `yaml:"fail_timeout,omitempty"`
}

type outUpstreamServer struct {
	Service    string `yaml:"service,omitempty"`
	Node       string `yaml:"node,omitempty"`
	Port       int    `yaml:"port,omitempty"`
	Network    string `yaml:"network,omitempty"`
	TLS        bool   `yaml:"tls,omitempty"`
	ServerName string `yaml:"server_name,omitempty"`
	Weight     int    `yaml:"weight,omitempty"`
	Backup     bool   `yaml:"backup,omitempty"`
	MaxConns   int    `yaml:"max_conns,omitempty"`
}

type outSite struct {
	Name       string            `yaml:"name"`
	Node       string            `yaml:"node"`
	Hosts      []string          `yaml:"hosts,omitempty"`
	Default    bool              `yaml:"default,omitempty"`
	Listen     []*outListen      `yaml:"listen"`
	TLS        *outTLS           `yaml:"tls,omitempty"`
	Routes     []*outRoute       `yaml:"routes,omitempty"`
	Headers    map[string]string `yaml:"headers,omitempty"`
	Always     map[string]string `yaml:"headers_always,omitempty"`
	Expires    string            `yaml:"expires,omitempty"`
	ErrorPages map[int]string    `yaml:"error_pages,omitempty"`
	AccessLog  *outAccessLog     `yaml:"access_log,omitempty"`
	ErrorLog   *outErrorLog      `yaml:"error_log,omitempty"`
	Compress   *outCompress      `yaml:"compress,omitempty"`
	Maps       []*outVarMap      `yaml:"maps,omitempty"`
	Rewrites   []*outStep        `yaml:"rewrites,omitempty"`
	Allow      []string          `yaml:"allow,omitempty"`

	// from is where the server block was written (a YAML comment).
	from string
	// redirectFrom is the server block a redirect_https site came from.
	redirectFrom *Directive
}

type outListen struct {
	Network       string `yaml:"network"`
	Address       string `yaml:"address,omitempty"`
	Port          int    `yaml:"port"`
	TLS           bool   `yaml:"tls,omitempty"`
	RedirectHTTPS bool   `yaml:"redirect_https,omitempty"`
}

type outTLS struct {
	Certbot    string `yaml:"certbot,omitempty"`
	CertbotDir string `yaml:"certbot_dir,omitempty"`
	CertFile   string `yaml:"cert_file,omitempty"`
	KeyFile    string `yaml:"key_file,omitempty"`
	HSTS       *bool  `yaml:"hsts,omitempty"`
	// The site's TLS policy (ssl_protocols, ssl_ciphers, ssl_ecdh_curve,
	// ssl_session_tickets).
	MinVersion     string   `yaml:"min_version,omitempty"`
	Ciphers        []string `yaml:"ciphers,omitempty"`
	Curves         []string `yaml:"curves,omitempty"`
	SessionTickets *bool    `yaml:"session_tickets,omitempty"`
}

type outRoute struct {
	Path             string            `yaml:"path"`
	Match            string            `yaml:"match,omitempty"`
	Exact            bool              `yaml:"exact,omitempty"`
	Upstream         string            `yaml:"upstream,omitempty"`
	Static           *outStatic        `yaml:"static,omitempty"`
	Redirect         string            `yaml:"redirect,omitempty"`
	RedirectCode     int               `yaml:"redirect_code,omitempty"`
	Headers          map[string]string `yaml:"headers,omitempty"`
	Always           map[string]string `yaml:"headers_always,omitempty"`
	Inherit          *bool             `yaml:"headers_inherit,omitempty"`
	Expires          string            `yaml:"expires,omitempty"`
	MaxBodySize      string            `yaml:"max_body_size,omitempty"`
	WebSocket        bool              `yaml:"websocket,omitempty"`
	BasicAuth        string            `yaml:"basic_auth,omitempty"`
	RequestBuffering *bool             `yaml:"request_buffering,omitempty"`
	Cache            *outRouteCache    `yaml:"cache,omitempty"`
	Limits           []*outLimit       `yaml:"limits,omitempty"`
	Compress         *outCompress      `yaml:"compress,omitempty"`
	Rewrites         []*outStep        `yaml:"rewrites,omitempty"`
	UpstreamPath     string            `yaml:"upstream_path,omitempty"`

	from string
}

type outLimit struct {
	Zone    string `yaml:"zone"`
	Burst   *int   `yaml:"burst,omitempty"`
	NoDelay *bool  `yaml:"nodelay,omitempty"`
}

type outStatic struct {
	Root     string    `yaml:"root"`
	Fallback string    `yaml:"fallback,omitempty"`
	Cache    *outCache `yaml:"cache,omitempty"`
}

type outCache struct {
	Dir      string         `yaml:"dir,omitempty"`
	MaxSize  string         `yaml:"max_size,omitempty"`
	TTL      map[int]string `yaml:"ttl,omitempty"`
	Inactive string         `yaml:"inactive,omitempty"`
}

type outRouteCache struct {
	Cache            string            `yaml:"cache"`
	Key              []string          `yaml:"key,omitempty"`
	Valid            map[string]string `yaml:"valid"`
	MinUses          int               `yaml:"min_uses,omitempty"`
	IgnoreCC         bool              `yaml:"ignore_cache_control,omitempty"`
	Bypass           []string          `yaml:"bypass,omitempty"`
	NoStore          []string          `yaml:"no_store,omitempty"`
	UseStale         []string          `yaml:"use_stale,omitempty"`
	BackgroundUpdate bool              `yaml:"background_update,omitempty"`
}

type outAccessLog struct {
	Path   string `yaml:"path"`
	Format string `yaml:"format,omitempty"`
	Buffer string `yaml:"buffer,omitempty"`
	Flush  string `yaml:"flush,omitempty"`
}

type outProtection struct {
	Node       string          `yaml:"node"`
	Caches     []*outNodeCache `yaml:"caches,omitempty"`
	Maps       []*outClassMap  `yaml:"maps,omitempty"`
	LimitZones []*outZone      `yaml:"limit_zones,omitempty"`
}

type outNodeCache struct {
	Name     string `yaml:"name"`
	Dir      string `yaml:"dir,omitempty"`
	MaxSize  string `yaml:"max_size"`
	Inactive string `yaml:"inactive,omitempty"`
}

type outClassMap struct {
	Name    string        `yaml:"name"`
	Source  string        `yaml:"source"`
	Rules   []*outMapRule `yaml:"rules,omitempty"`
	Default string        `yaml:"default,omitempty"`
}

type outMapRule struct {
	Exact string `yaml:"exact,omitempty"`
	Regex string `yaml:"regex,omitempty"`
	Class string `yaml:"class"`
}

type outZone struct {
	Name    string `yaml:"name"`
	Key     string `yaml:"key,omitempty"`
	Map     string `yaml:"map,omitempty"`
	Rate    int    `yaml:"rate"`
	Per     string `yaml:"per,omitempty"`
	Burst   int    `yaml:"burst,omitempty"`
	NoDelay bool   `yaml:"nodelay,omitempty"`
	DryRun  bool   `yaml:"dry_run,omitempty"`
	Status  int    `yaml:"status,omitempty"`
	MaxKeys int    `yaml:"max_keys,omitempty"`
}

type outErrorLog struct {
	Path  string `yaml:"path"`
	Level string `yaml:"level,omitempty"`
}

type outCompress struct {
	Gzip       *bool    `yaml:"gzip,omitempty"`
	Zstd       *bool    `yaml:"zstd,omitempty"`
	Types      []string `yaml:"types,omitempty"`
	MinLength  string   `yaml:"min_length,omitempty"`
	Level      int      `yaml:"level,omitempty"`
	GzipStatic *bool    `yaml:"gzip_static,omitempty"`
}

type outVarMap struct {
	Name      string         `yaml:"name"`
	Source    string         `yaml:"source"`
	Hostnames bool           `yaml:"hostnames,omitempty"`
	Entries   []*outVarEntry `yaml:"entries,omitempty"`
	Default   string         `yaml:"default,omitempty"`
}

type outVarEntry struct {
	Exact           string `yaml:"exact,omitempty"`
	Regex           string `yaml:"regex,omitempty"`
	CaseInsensitive bool   `yaml:"case_insensitive,omitempty"`
	Value           string `yaml:"value"`
}

type outStep struct {
	Rewrite *outRewrite   `yaml:"rewrite,omitempty"`
	Return  *outReturn    `yaml:"return,omitempty"`
	Set     *outSet       `yaml:"set,omitempty"`
	If      *outCondition `yaml:"if,omitempty"`
	Then    []*outStep    `yaml:"then,omitempty"`
}

type outRewrite struct {
	Regex       string `yaml:"regex"`
	Replacement string `yaml:"replacement"`
	Flag        string `yaml:"flag,omitempty"`
}

type outReturn struct {
	Code int    `yaml:"code"`
	URL  string `yaml:"url,omitempty"`
	Body string `yaml:"body,omitempty"`
}

type outSet struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type outCondition struct {
	Variable string `yaml:"variable"`
	Op       string `yaml:"op,omitempty"`
	Value    string `yaml:"value,omitempty"`
}
