package httpedge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/edge/protect"
)

// Resources are the built, node-level objects that a Config's sites and
// routes name: upstream pools, fallback caches, access log files and
// certificates. The runtime builds each once per node (NewPool, NewCache,
// OpenAccessLog, LoadCertificate) and hands the same Resources to every
// Server of the node, so that four listeners proxying to one upstream share
// one pool (one health check, one failure state), two ports serving one
// static route share one cache, and every line of an access log goes
// through one buffered writer. A Server never closes a resource: whoever
// built it does, once no Server uses it.
type Resources struct {
	Pools        map[string]*Pool
	Caches       map[string]*ResponseCache
	AccessLogs   map[string]*LogFile
	Certificates map[string]*certs.Cert
	// Zones, Maps and Jails are the node's rate zones, class maps and
	// jails (edge/protect); Tarpit bounds the requests the tarpit action
	// holds. Routes and sites name them.
	Zones  map[string]*protect.Zone
	Maps   map[string]*protect.Map
	Jails  map[string]*protect.Jail
	Tarpit *protect.Tarpit
	// Challenges holds the node's pending ACME HTTP-01 tokens (the
	// certs/acme challenge store); nil when the node issues none. Plain-HTTP
	// listeners answer them before redirect_https and routing.
	Challenges Challenges
	// ALPNChallenges holds the node's pending ACME TLS-ALPN-01 challenge
	// certificates; nil when the node issues none. TLS listeners answer a
	// handshake offering only the acme-tls/1 protocol with the one of its
	// server name, and close the connection after it.
	ALPNChallenges ALPNChallenges
}

// ALPNChallenges looks up the TLS-ALPN-01 challenge certificate of a
// server name.
type ALPNChallenges interface {
	ChallengeCertificate(serverName string) (*tls.Certificate, bool)
}

// Challenges looks up an ACME HTTP-01 token's key authorisation.
type Challenges interface {
	KeyAuth(token string) (string, bool)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
		o.realClock = true
	}
	return o
}

// Pool is an upstream pool: its servers, their kept-alive connections,
// passive failure state and active health checks.
type Pool struct{ p *pool }

// NewPool validates u (every default resolved: no zero keepalive,
// timeout, max_fails, weight or health-check field is accepted) and starts
// its health checks. Close stops them.
func NewPool(u Upstream, opts Options) (*Pool, error) {
	p, err := newPool(u, opts)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	return &Pool{p}, nil
}

// Close stops the health checks and closes idle connections; requests in
// flight finish.
func (p *Pool) Close() error {
	p.p.close()
	return nil
}

// Stats is the state of each server of the pool.
func (p *Pool) Stats() []UpstreamStats {
	now := p.p.now()
	var out []UpstreamStats
	p.p.mu.Lock()
	defer p.p.mu.Unlock()
	for _, b := range p.p.backends {
		out = append(out, UpstreamStats{
			Pool: p.p.name, Addr: b.addr, Backup: b.backup,
			Up:       b.usable(now),
			Requests: b.requests.Load(), Fails: b.fails.Load(),
			Retried: b.retried.Load(),
			Active:  b.active, MaxConns: b.maxConns,
		})
	}
	return out
}

// ResponseCache is a bounded cache of fallback responses.
type ResponseCache struct{ c *cache }

// NewCache builds the cache cfg describes, loading what a disk cache
// already holds.
func NewCache(cfg Cache, opts Options) (*ResponseCache, error) {
	c, err := newCache(cfg, opts.withDefaults().Now)
	if err != nil {
		return nil, err
	}
	return &ResponseCache{c}, nil
}

// Close releases the cache (entries on disk stay for the next start).
func (c *ResponseCache) Close() error { return nil }

// Len and Bytes report the entries held and their accounted size.
func (c *ResponseCache) Len() int { n, _ := c.c.stats(); return n }

// Bytes reports the accounted size of the entries held.
func (c *ResponseCache) Bytes() int64 { _, b := c.c.stats(); return b }

// Stats reports the entries held, their size and bound, the answers by
// X-Cache-Status and the entries removed (for room, or unused).
func (c *ResponseCache) Stats() CacheStats { return c.c.fullStats() }

// LogFile is one open access log file.
type LogFile struct{ s *logSink }

// OpenAccessLog opens (creating it 0640 when missing) the access log file
// and starts flushing it every FlushInterval.
func OpenAccessLog(cfg AccessLog) (*LogFile, error) {
	if cfg.Path == "" {
		return nil, errors.New("access log: path is empty")
	}
	if cfg.BufferBytes <= 0 || cfg.FlushInterval <= 0 {
		return nil, fmt.Errorf("access log %s: buffer (%d bytes) and flush interval (%v) must be positive", cfg.Path, cfg.BufferBytes, cfg.FlushInterval)
	}
	sink := &logSink{path: cfg.Path, stop: make(chan struct{})}
	if err := sink.open(cfg.BufferBytes); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	go sink.flushLoop(cfg.FlushInterval, cfg.BufferBytes)
	return &LogFile{sink}, nil
}

// Close flushes and closes the file.
func (l *LogFile) Close() error {
	l.s.close()
	return nil
}

// LoadCertificate loads a certificate and its key; the returned Cert
// reloads itself when the files change.
func LoadCertificate(c Certificate, opts Options) (*certs.Cert, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("a certificate needs cert_file and key_file")
	}
	opts = opts.withDefaults()
	return certs.NewStore(certs.Options{Logger: opts.Logger, Now: opts.Now}).Add(c.CertFile, c.KeyFile)
}

// Build builds every resource of the given declarations, standalone (no
// sharing with other Resources); on error what was built is closed. The
// runtime builds them one by one instead, to share them across reloads;
// tests and single-server uses call Build.
func Build(upstreams map[string]Upstream, caches map[string]Cache, logs map[string]AccessLog, certificates map[string]Certificate, opts Options) (Resources, error) {
	res := Resources{Pools: map[string]*Pool{}, Caches: map[string]*ResponseCache{}, AccessLogs: map[string]*LogFile{}, Certificates: map[string]*certs.Cert{}}
	fail := func(err error) (Resources, error) {
		res.Close()
		return Resources{}, err
	}
	for _, name := range slices.Sorted(maps.Keys(upstreams)) {
		p, err := NewPool(upstreams[name], opts)
		if err != nil {
			return fail(err)
		}
		res.Pools[name] = p
	}
	for _, name := range slices.Sorted(maps.Keys(caches)) {
		c, err := NewCache(caches[name], opts)
		if err != nil {
			return fail(fmt.Errorf("cache %q: %w", name, err))
		}
		res.Caches[name] = c
	}
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		l, err := OpenAccessLog(logs[name])
		if err != nil {
			return fail(err)
		}
		res.AccessLogs[name] = l
	}
	for _, name := range slices.Sorted(maps.Keys(certificates)) {
		c, err := LoadCertificate(certificates[name], opts)
		if err != nil {
			return fail(fmt.Errorf("certificate %q: %w", name, err))
		}
		res.Certificates[name] = c
	}
	return res, nil
}

// Close closes every resource of res (those Build made).
func (res Resources) Close() {
	for _, p := range res.Pools {
		p.Close()
	}
	for _, c := range res.Caches {
		c.Close()
	}
	for _, l := range res.AccessLogs {
		l.Close()
	}
}

// poolStats lists the servers of pools, sorted by pool and address.
func poolStats(pools []*pool) []UpstreamStats {
	var out []UpstreamStats
	for _, p := range pools {
		out = append(out, (&Pool{p}).Stats()...)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Pool != b.Pool {
			return a.Pool < b.Pool
		}
		return a.Addr < b.Addr
	})
	return out
}
