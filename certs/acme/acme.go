// Package acme obtains and renews certificates from an ACME CA (Let's
// Encrypt by default) through go-acme/lego, and writes them where package
// certs reads and reloads them: a renewed pair is served on the next
// handshake, never after a reload. HTTP-01 is answered by the node's own
// HTTP listener from a [Challenges] store. Account keys and certificates
// live in a state directory, every file mode 0600 and replaced atomically.
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	legoapi "github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/internal/secretfile"
)

// Let's Encrypt's directories.
const (
	LetsEncrypt        = lego.DirectoryURLLetsEncrypt
	LetsEncryptStaging = lego.DirectoryURLLetsEncryptStaging
)

// ChallengePrefix is the path HTTP-01 validation requests ask for.
const ChallengePrefix = "/.well-known/acme-challenge/"

// maxTokens bounds the HTTP-01 tokens a node holds at once (one per name
// being validated; an order for 100 names is the CA's own limit).
const maxTokens = 1024

// Challenges holds the HTTP-01 tokens of the orders in progress and answers
// their validation requests. It is a lego challenge.Provider.
type Challenges struct {
	mu     sync.Mutex
	tokens map[string]string // token -> key authorisation
}

// NewChallenges returns an empty store.
func NewChallenges() *Challenges { return &Challenges{tokens: make(map[string]string)} }

// Present records a token for the CA to fetch.
func (c *Challenges) Present(_ context.Context, _, token, keyAuth string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tokens) >= maxTokens {
		return fmt.Errorf("acme: %d HTTP-01 challenges already pending", maxTokens)
	}
	c.tokens[token] = keyAuth
	return nil
}

// CleanUp forgets a token once its authorisation is done.
func (c *Challenges) CleanUp(_ context.Context, _, token, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tokens, token)
	return nil
}

// KeyAuth returns the key authorisation of a pending token.
func (c *Challenges) KeyAuth(token string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.tokens[token]
	return k, ok
}

// ServeHTTP answers GET and HEAD ChallengePrefix+token with the token's key
// authorisation (text/plain) and anything else under the prefix with 404.
func (c *Challenges) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, ChallengePrefix)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	k, ok := c.KeyAuth(token)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(k))
}

// ALPNChallenges holds the TLS-ALPN-01 challenge certificates of the
// orders in progress, by name, and gives them to the node's TLS listeners
// (edge/http's Resources.ALPNChallenges), which present one to a client
// offering only the acme-tls/1 protocol. It is a lego challenge.Provider;
// at most maxTokens names are pending at once.
type ALPNChallenges struct {
	mu    sync.Mutex
	certs map[string]*tls.Certificate // lower-case name -> challenge certificate
}

// NewALPNChallenges returns an empty store.
func NewALPNChallenges() *ALPNChallenges {
	return &ALPNChallenges{certs: make(map[string]*tls.Certificate)}
}

// Present makes the challenge certificate of domain (RFC 8737: the name and
// the key authorisation's digest in the critical acmeIdentifier extension).
func (a *ALPNChallenges) Present(_ context.Context, domain, _, keyAuth string) error {
	name := strings.ToLower(strings.TrimSuffix(domain, "."))
	a.mu.Lock()
	full := len(a.certs) >= maxTokens && a.certs[name] == nil
	a.mu.Unlock()
	if full {
		return fmt.Errorf("acme: %d TLS-ALPN-01 challenges already pending", maxTokens)
	}
	cert, err := tlsalpn01.ChallengeCert(name, keyAuth)
	if err != nil {
		return fmt.Errorf("acme: TLS-ALPN-01 certificate for %s: %w", name, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.certs[name] = cert
	return nil
}

// CleanUp forgets the challenge of domain once its authorisation is done.
func (a *ALPNChallenges) CleanUp(_ context.Context, domain, _, _ string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.certs, strings.ToLower(strings.TrimSuffix(domain, ".")))
	return nil
}

// ChallengeCertificate returns the pending challenge certificate of a
// server name.
func (a *ALPNChallenges) ChallengeCertificate(serverName string) (*tls.Certificate, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.certs[strings.ToLower(serverName)]
	return c, ok
}

// Config configures an [Issuer].
type Config struct {
	// Directory is the CA's directory URL; empty means Let's Encrypt.
	Directory string
	// Email is the account's contact address.
	Email string
	// StateDir holds accounts/ and certificates/.
	StateDir string
	// HTTP01 answers HTTP-01 challenges; it must be served by the node's
	// plain-HTTP listener on port 80 of every name.
	HTTP01 *Challenges
	// TLSALPN01, when set, answers TLS-ALPN-01 challenges; it must be given
	// to the node's TLS listener on port 443 of every name.
	TLSALPN01 *ALPNChallenges
	// DNS01, when set, answers DNS-01 challenges (wildcards need it) by
	// writing _acme-challenge TXT records (a lego DNS provider).
	DNS01 challenge.Provider
	// Nameservers are the recursive resolvers ("host:port") lego asks
	// whether a TXT record has propagated; empty means the system's, and
	// the authoritative servers are asked too. They are process-wide
	// (lego's DNS client is).
	Nameservers []string
	// HTTPClient talks to the CA; nil means lego's default.
	HTTPClient *http.Client
	// Logger receives issue and renewal events; nil discards them. It
	// receives what lego logs too, unless the program set lego's
	// process-wide logger itself (then the last issuer made sets it).
	Logger *slog.Logger
}

// Issuer is one ACME account at one CA.
type Issuer struct {
	cfg    Config
	client *lego.Client
	user   *account
}

type account struct {
	Email        string                    `json:"email"`
	Registration *legoacme.ExtendedAccount `json:"registration"`
	key          crypto.Signer
}

func (a *account) GetEmail() string                           { return a.Email }
func (a *account) GetRegistration() *legoacme.ExtendedAccount { return a.Registration }
func (a *account) GetPrivateKey() crypto.Signer               { return a.key }

// accountDir is StateDir/accounts/<CA host>/<email>.
func accountDir(cfg Config) (string, error) {
	u, err := url.Parse(cfg.Directory)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("acme: directory %q is not a URL", cfg.Directory)
	}
	host := strings.ReplaceAll(u.Host, ":", "_")
	email := cfg.Email
	if email == "" {
		email = "default"
	}
	if strings.ContainsAny(email, "/\\") || email == "." || email == ".." {
		return "", fmt.Errorf("acme: e-mail %q is not an address", cfg.Email)
	}
	return filepath.Join(cfg.StateDir, "accounts", host, email), nil
}

// NewIssuer loads the account of cfg.Email at cfg.Directory from the state
// directory, or creates its key and registers it (agreeing to the CA's
// terms, as certbot --agree-tos does).
func NewIssuer(ctx context.Context, cfg Config) (*Issuer, error) {
	if cfg.Directory == "" {
		cfg.Directory = LetsEncrypt
	}
	if cfg.StateDir == "" {
		return nil, errors.New("acme: no state directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	useLegoLogger(cfg.Logger)
	dir, err := accountDir(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: state directory: %w", err)
	}
	a := &account{Email: cfg.Email}
	keyFile := filepath.Join(dir, "account.key")
	if a.key, err = loadOrCreateKey(keyFile); err != nil {
		return nil, err
	}
	regFile := filepath.Join(dir, "account.json")
	if b, err := os.ReadFile(regFile); err == nil {
		var saved account
		if err := json.Unmarshal(b, &saved); err != nil {
			return nil, fmt.Errorf("acme: account %s: %w", regFile, err)
		}
		a.Registration = saved.Registration
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("acme: account: %w", err)
	}
	lc := lego.NewConfig(a)
	lc.CADirURL = cfg.Directory
	lc.UserAgent = "offedge"
	if cfg.HTTPClient != nil {
		lc.HTTPClient = cfg.HTTPClient
	}
	client, err := lego.NewClient(lc)
	if err != nil {
		return nil, fmt.Errorf("acme: directory %s: %w", cfg.Directory, err)
	}
	if cfg.HTTP01 != nil {
		if err := client.Challenge.SetHTTP01Provider(cfg.HTTP01); err != nil {
			return nil, err
		}
	}
	if cfg.TLSALPN01 != nil {
		if err := client.Challenge.SetTLSALPN01Provider(cfg.TLSALPN01); err != nil {
			return nil, err
		}
	}
	if cfg.DNS01 != nil {
		var opts []dns01.ChallengeOption
		if len(cfg.Nameservers) > 0 {
			dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: cfg.Nameservers, Timeout: 10 * time.Second}))
			opts = append(opts, dns01.DisableAuthoritativeNssPropagationRequirement())
		}
		if err := client.Challenge.SetDNS01Provider(&cleaning{Provider: cfg.DNS01, pending: map[string]int{}}, opts...); err != nil {
			return nil, err
		}
	}
	if a.Registration == nil {
		reg, err := client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		if err != nil {
			return nil, fmt.Errorf("acme: registering %q at %s: %w", cfg.Email, cfg.Directory, err)
		}
		a.Registration = reg
		b, err := json.MarshalIndent(a, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := certs.WriteFileAtomic(regFile, b, 0o600); err != nil {
			return nil, fmt.Errorf("acme: saving account: %w", err)
		}
		cfg.Logger.Info("ACME account registered", "email", cfg.Email, "directory", cfg.Directory, "account", reg.Location)
	}
	return &Issuer{cfg: cfg, client: client, user: a}, nil
}

// lego logs through one process-wide logger, whose default writes to
// stdout. Unless the program set it itself (to route lego's lines to the
// node whose names they mention, say), it is the last issuer's logger.
var legoLogger = struct {
	sync.Mutex
	initial, ours *slog.Logger
}{initial: legolog.Default()}

func useLegoLogger(l *slog.Logger) {
	legoLogger.Lock()
	defer legoLogger.Unlock()
	if cur := legolog.Default(); cur != legoLogger.initial && cur != legoLogger.ours {
		return
	}
	legoLogger.ours = l.With("lib", "lego")
	legolog.SetDefault(legoLogger.ours)
}

func loadOrCreateKey(path string) (crypto.Signer, error) {
	b, err := secretfile.ReadFile(path, 0o077, "ACME account key")
	if err == nil {
		defer clear(b)
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("acme: account key %s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("acme: account key %s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("acme: account key %s: not a signing key", path)
		}
		return s, nil
	}
	if _, serr := os.Lstat(path); !errors.Is(serr, os.ErrNotExist) {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := certs.WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("acme: account key: %w", err)
	}
	return k, nil
}

// CertFiles returns where the certificate whose first name is name lives:
// StateDir/certificates/<name>/fullchain.pem and privkey.pem, certbot's
// file names. A wildcard's "*" is written "_".
func CertFiles(stateDir, name string) (certFile, keyFile string) {
	d := filepath.Join(stateDir, "certificates", strings.ReplaceAll(strings.ToLower(name), "*", "_"))
	return filepath.Join(d, "fullchain.pem"), filepath.Join(d, "privkey.pem")
}

// Obtain orders a certificate for names (the first one names its files),
// with a fresh key, and writes the pair to [CertFiles], key first, both
// 0600 and atomically. It returns the new leaf.
func (i *Issuer) Obtain(ctx context.Context, names []string) (*x509.Certificate, error) {
	return i.obtain(ctx, names, nil)
}

// obtain is Obtain; an order renewing old (a certificate whose renewal
// information the CA gave) says it replaces it (RFC 9773 section 5: the
// CA may then exempt it from rate limits), unless the CA answers that old
// was replaced already.
func (i *Issuer) obtain(ctx context.Context, names []string, old *x509.Certificate) (*x509.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("acme: no names")
	}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "/\\") || strings.Contains(n, "..") {
			return nil, fmt.Errorf("acme: %q is not a DNS name", n)
		}
	}
	req := certificate.ObtainRequest{Domains: names, Bundle: true, KeyType: certcrypto.EC256}
	if old != nil {
		if id, err := legoapi.MakeARICertID(old); err == nil {
			req.ReplacesCertID = id
		}
	}
	res, err := i.client.Certificate.Obtain(ctx, req)
	if _, replaced := errors.AsType[*legoacme.AlreadyReplacedError](err); replaced {
		i.cfg.Logger.Warn("the CA says the certificate was replaced already; ordering anew", "names", names)
		req.ReplacesCertID = ""
		res, err = i.client.Certificate.Obtain(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	certFile, keyFile := CertFiles(i.cfg.StateDir, names[0])
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return nil, err
	}
	// The pair is checked before it replaces anything.
	pair, err := tlsPair(res.Certificate, res.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("acme: CA answered an unusable certificate: %w", err)
	}
	if err := certs.WriteFileAtomic(keyFile, res.PrivateKey, 0o600); err != nil {
		return nil, err
	}
	if err := certs.WriteFileAtomic(certFile, res.Certificate, 0o600); err != nil {
		return nil, err
	}
	i.cfg.Logger.Info("certificate issued", "names", names, "not_after", pair.NotAfter, "issuer", pair.Issuer.String())
	return pair, nil
}

// RenewAt is when a certificate is due for renewal: two thirds of its
// lifetime after NotBefore, less a jitter of up to a twentieth of the
// lifetime (jitter in [0,1)), so that certificates issued together are not
// renewed in the same second.
func RenewAt(leaf *x509.Certificate, jitter float64) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotBefore.Add(life*2/3 - time.Duration(jitter*float64(life/20)))
}

// renewalInfo asks the CA for its suggested renewal window of leaf (ARI,
// RFC 9773); legoapi.ErrNoARI when the CA publishes none.
func (i *Issuer) renewalInfo(ctx context.Context, leaf *x509.Certificate) (*legoacme.ExtendedRenewalInfo, error) {
	ri, err := i.client.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		return nil, err
	}
	return ri.ExtendedRenewalInfo, nil
}

// Backoff is how long to wait after the attempt-th consecutive failure
// (1 for the first): one minute doubled per failure, at most a day, with
// up to 10% jitter; a CA rate limit with a Retry-After waits at least
// that long.
func Backoff(attempt int, err error) time.Duration {
	d := time.Minute
	for i := 1; i < attempt && d < 24*time.Hour; i++ {
		d *= 2
	}
	d = min(d, 24*time.Hour)
	d += time.Duration(mrand.Int64N(int64(d/10) + 1))
	var rl *legoacme.RateLimitedError
	if errors.As(err, &rl) && rl.RetryAfter > d {
		d = rl.RetryAfter
	}
	return d
}

// StaleCleaner is a DNS provider that can remove every _acme-challenge TXT
// record of a name, left by an earlier order that never cleaned up (the
// 2024-01-19 wildcard renewals failed on such records).
type StaleCleaner interface {
	CleanStale(ctx context.Context, fqdn string) error
}

// cleaning removes stale records before a DNS-01 challenge is presented,
// when its provider can, unless a challenge of ours is already pending at
// the same record (a wildcard and its apex share one _acme-challenge name).
type cleaning struct {
	challenge.Provider
	mu      sync.Mutex
	pending map[string]int // fqdn -> our challenges presented, not cleaned up
}

func (c *cleaning) Present(ctx context.Context, domain, token, keyAuth string) error {
	fqdn := dns01.GetChallengeInfo(ctx, domain, keyAuth).EffectiveFQDN
	c.mu.Lock()
	first := c.pending[fqdn] == 0
	c.pending[fqdn]++
	c.mu.Unlock()
	if sc, ok := c.Provider.(StaleCleaner); ok && first {
		if err := sc.CleanStale(ctx, fqdn); err != nil {
			c.done(fqdn)
			return fmt.Errorf("removing stale %s records: %w", fqdn, err)
		}
	}
	if err := c.Provider.Present(ctx, domain, token, keyAuth); err != nil {
		c.done(fqdn)
		return err
	}
	return nil
}

// Timeout is the provider's propagation timeout and polling interval, or
// lego's defaults (lego asks the provider it is given, this wrapper).
func (c *cleaning) Timeout() (timeout, interval time.Duration) {
	if t, ok := c.Provider.(challenge.ProviderTimeout); ok {
		return t.Timeout()
	}
	return dns01.DefaultPropagationTimeout, dns01.DefaultPollingInterval
}

func (c *cleaning) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	c.done(dns01.GetChallengeInfo(ctx, domain, keyAuth).EffectiveFQDN)
	return c.Provider.CleanUp(ctx, domain, token, keyAuth)
}

func (c *cleaning) done(fqdn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[fqdn]--; c.pending[fqdn] <= 0 {
		delete(c.pending, fqdn)
	}
}
