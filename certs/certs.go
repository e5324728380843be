// Package certs loads TLS certificates from files laid out as certbot leaves
// them (fullchain.pem + privkey.pem) and reloads them when the files change,
// without a restart: a [Cert] stats its files at most once per check interval
// on the handshake path and swaps in the new pair atomically; a pair that
// fails to load never replaces a working one. A [Store] holds several pairs
// and chooses one by SNI from the certificates' own names.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/internal/secretfile"
)

// DefaultCheckInterval is how often, at most, a Cert looks at its files.
const DefaultCheckInterval = 5 * time.Second

// Options configure a [Store].
type Options struct {
	// Logger receives reload successes and failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CheckInterval is the minimum time between two stats of a pair's files;
	// zero means DefaultCheckInterval.
	CheckInterval time.Duration
	// AllowGroupReadableKey accepts private keys readable by their group
	// (Debian's ssl-cert group convention). Keys readable by others are
	// always refused.
	AllowGroupReadableKey bool
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
}

// Store holds reloadable certificate pairs, shared by file names: adding the
// same pair twice returns the same [Cert].
type Store struct {
	opts  Options
	mu    sync.Mutex
	certs map[[2]string]*Cert
	order []*Cert
}

// NewStore returns an empty store.
func NewStore(opts Options) *Store {
	opts.defaults()
	return &Store{opts: opts, certs: make(map[[2]string]*Cert)}
}

// Add loads the pair now (so that a broken file is an error at start, not at
// the first handshake) and returns its handle.
func (s *Store) Add(certFile, keyFile string) (*Cert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{certFile, keyFile}
	if c, ok := s.certs[k]; ok {
		return c, nil
	}
	c := &Cert{certFile: certFile, keyFile: keyFile, opts: s.opts}
	st, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cur.Store(st)
	c.checked.Store(s.opts.Now().UnixNano())
	s.certs[k] = c
	s.order = append(s.order, c)
	return c, nil
}

// AddPending returns the handle of a pair that may not be written yet (an
// ACME certificate being issued). When its files exist it is [Store.Add].
// When they do not, the handle serves placeholder (which must carry its
// Leaf) until they appear: [Cert.Reload] loads them at once, the
// handshake path within the check interval; until then a missing file is
// no error. [Cert.Pending] reports whether the placeholder is served.
func (s *Store) AddPending(certFile, keyFile string, placeholder *tls.Certificate) (*Cert, error) {
	if placeholder == nil || placeholder.Leaf == nil {
		return nil, errors.New("certs: a placeholder needs its leaf")
	}
	_, err1 := os.Stat(certFile)
	_, err2 := os.Stat(keyFile)
	if err1 == nil && err2 == nil {
		return s.Add(certFile, keyFile)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{certFile, keyFile}
	if c, ok := s.certs[k]; ok {
		return c, nil
	}
	c := &Cert{certFile: certFile, keyFile: keyFile, opts: s.opts}
	st := &certState{cert: placeholder, pending: true}
	for _, n := range placeholder.Leaf.DNSNames {
		st.names = append(st.names, strings.ToLower(n))
	}
	c.cur.Store(st)
	c.checked.Store(s.opts.Now().UnixNano())
	s.certs[k] = c
	s.order = append(s.order, c)
	return c, nil
}

// GetCertificate chooses, for a tls.Config, the first added certificate whose
// leaf names the SNI server name (exact, then a single-label wildcard as RFC
// 6125 defines it). An unknown or missing server name is a handshake error:
// the store never shows a certificate for another name.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		return nil, errors.New("certs: client sent no server name (SNI)")
	}
	s.mu.Lock()
	list := append([]*Cert(nil), s.order...)
	s.mu.Unlock()
	var wildcard *Cert
	for _, c := range list {
		st := c.state()
		if st.matchExact(name) {
			return c.Certificate()
		}
		if wildcard == nil && st.matchWildcard(name) {
			wildcard = c
		}
	}
	if wildcard != nil {
		return wildcard.Certificate()
	}
	return nil, fmt.Errorf("certs: no certificate for server name %q", name)
}

// Cert is one certificate pair, reloaded when its files change.
type Cert struct {
	certFile, keyFile string
	opts              Options

	cur     atomic.Pointer[certState]
	checked atomic.Int64 // unix nanos of the last stat
	mu      sync.Mutex   // serialises reloads
}

type certState struct {
	cert     *tls.Certificate
	names    []string // lower-case DNS names of the leaf
	pending  bool     // a placeholder, until the files are written (AddPending)
	certStat fileStamp
	keyStat  fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ino: inode(fi)}, nil
}

// Files returns the certificate and key paths.
func (c *Cert) Files() (certFile, keyFile string) { return c.certFile, c.keyFile }

// Names returns the DNS names of the current leaf certificate.
func (c *Cert) Names() []string { return append([]string(nil), c.state().names...) }

// Leaf returns the current leaf certificate.
func (c *Cert) Leaf() *x509.Certificate { return c.state().cert.Leaf }

func (c *Cert) state() *certState { return c.cur.Load() }

// Pending reports whether the handle serves the placeholder it was added
// with ([Store.AddPending]): its files are not written yet.
func (c *Cert) Pending() bool { return c.state().pending }

// Certificate returns the current pair, first reloading it when the check
// interval has passed and either file changed (modification time, size or
// inode, so certbot's symlink swap is seen). A failed reload keeps the old
// pair and is logged; it is retried at the next interval.
func (c *Cert) Certificate() (*tls.Certificate, error) {
	now := c.opts.Now().UnixNano()
	last := c.checked.Load()
	if now-last >= int64(c.opts.CheckInterval) && c.checked.CompareAndSwap(last, now) {
		c.maybeReload()
	}
	return c.state().cert, nil
}

// Reload checks the files now, ignoring the interval, and reports whether a
// new pair was loaded; the error says why a changed pair was refused.
func (c *Cert) Reload() (bool, error) {
	c.checked.Store(c.opts.Now().UnixNano())
	return c.reload()
}

func (c *Cert) maybeReload() {
	if _, err := c.reload(); err != nil {
		c.opts.Logger.Error("certificate reload failed; keeping the previous one", "cert", c.certFile, "key", c.keyFile, "err", err)
	}
}

func (c *Cert) reload() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.state()
	cs, err1 := stamp(c.certFile)
	ks, err2 := stamp(c.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if old.pending && errors.Is(err, os.ErrNotExist) {
			return false, nil // not written yet: the placeholder stays
		}
		return false, fmt.Errorf("certificate %s: %w", c.certFile, err)
	}
	if cs == old.certStat && ks == old.keyStat {
		return false, nil
	}
	st, err := c.load()
	if err != nil {
		return false, err
	}
	c.cur.Store(st)
	c.opts.Logger.Info("certificate reloaded", "cert", c.certFile, "names", st.names, "not_after", st.cert.Leaf.NotAfter)
	return true, nil
}

func (c *Cert) load() (*certState, error) {
	var st certState
	var err error
	if st.keyStat, err = stamp(c.keyFile); err != nil {
		return nil, fmt.Errorf("certificate key %s: %w", c.keyFile, err)
	}
	if st.certStat, err = stamp(c.certFile); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", c.certFile, err)
	}
	pair, err := LoadKeyPair(c.certFile, c.keyFile, c.opts.AllowGroupReadableKey)
	if err != nil {
		return nil, err
	}
	st.cert = &pair
	for _, n := range pair.Leaf.DNSNames {
		st.names = append(st.names, strings.ToLower(n))
	}
	return &st, nil
}

// LoadKeyPair reads a certificate chain and its private key, the key the
// way every key file is read: a regular file, opened once, whose mode (of
// the opened file, not the path) grants nothing to others, nor to the
// group unless allowGroupRead, with the fix in the error. The leaf is
// parsed. The key never appears in an error.
func LoadKeyPair(certFile, keyFile string, allowGroupRead bool) (tls.Certificate, error) {
	forbidden := os.FileMode(0o077)
	if allowGroupRead {
		forbidden = 0o037 // group read allowed, group write and others never
	}
	keyPEM, err := secretfile.ReadFile(keyFile, forbidden, "certificate key")
	if err != nil {
		return tls.Certificate{}, err
	}
	defer clear(keyPEM)
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("certificate %s: %w", certFile, err)
		}
	}
	return pair, nil
}

// NewCert loads a pair now and returns its reloading handle, outside any
// Store (a tunnel end's own certificate).
func NewCert(certFile, keyFile string, opts Options) (*Cert, error) {
	opts.defaults()
	c := &Cert{certFile: certFile, keyFile: keyFile, opts: opts}
	st, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cur.Store(st)
	c.checked.Store(opts.Now().UnixNano())
	return c, nil
}

// Pool is a CA bundle reloaded when its file changes, on the same terms as
// a [Cert]: at most once per check interval, a file that fails to load
// never replaces a working pool.
type Pool struct {
	file    string
	opts    Options
	cur     atomic.Pointer[poolState]
	checked atomic.Int64
	mu      sync.Mutex
}

type poolState struct {
	pool  *x509.CertPool
	stamp fileStamp
}

// NewPool loads the PEM certificates of file now.
func NewPool(file string, opts Options) (*Pool, error) {
	opts.defaults()
	p := &Pool{file: file, opts: opts}
	st, err := p.load()
	if err != nil {
		return nil, err
	}
	p.cur.Store(st)
	p.checked.Store(opts.Now().UnixNano())
	return p, nil
}

func (p *Pool) load() (*poolState, error) {
	s, err := stamp(p.file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	b, err := os.ReadFile(p.file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", p.file)
	}
	return &poolState{pool: pool, stamp: s}, nil
}

// Get returns the current pool, first reloading it when the check interval
// has passed and the file changed.
func (p *Pool) Get() *x509.CertPool {
	now := p.opts.Now().UnixNano()
	last := p.checked.Load()
	if now-last >= int64(p.opts.CheckInterval) && p.checked.CompareAndSwap(last, now) {
		if _, err := p.Reload(); err != nil {
			p.opts.Logger.Error("CA reload failed; keeping the previous one", "ca", p.file, "err", err)
		}
	}
	return p.cur.Load().pool
}

// Reload checks the file now and reports whether a new pool was loaded.
func (p *Pool) Reload() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checked.Store(p.opts.Now().UnixNano())
	s, err := stamp(p.file)
	if err != nil {
		return false, fmt.Errorf("CA file: %w", err)
	}
	if s == p.cur.Load().stamp {
		return false, nil
	}
	st, err := p.load()
	if err != nil {
		return false, err
	}
	p.cur.Store(st)
	p.opts.Logger.Info("CA reloaded", "ca", p.file)
	return true, nil
}

func (st *certState) matchExact(name string) bool {
	for _, n := range st.names {
		if n == name {
			return true
		}
	}
	return false
}

func (st *certState) matchWildcard(name string) bool {
	dot := strings.IndexByte(name, '.')
	if dot <= 0 {
		return false
	}
	for _, n := range st.names {
		if strings.HasPrefix(n, "*.") && n[1:] == name[dot:] {
			return true
		}
	}
	return false
}
