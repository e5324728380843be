package tunnel

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/offedge/offedge/internal/secretfile"
)

// NodeURIPrefix is the URI SAN prefix naming an offedge node in internal
// PKI certificates (offedge://node/NAME), the same as package pki writes.
const NodeURIPrefix = "offedge://node/"

// ErrPeerNameMismatch is wrapped by handshake errors when a PKI peer
// certificate is valid but names none of the allowed peer nodes.
var ErrPeerNameMismatch = errors.New("peer certificate names none of the allowed peer nodes")

// credentials is what one tunnel end presents and accepts, built once from
// Auth (files read at construction or Update, never per connection).
type credentials struct {
	cert   tls.Certificate
	verify func(certs []*x509.Certificate) error
	mode   string // "psk" or "pki", for logs
}

// KeyCache remembers keys derived from pre-shared secrets, by
// SHA-256(lower(name) || 0 || secret), so that the (deliberately slow)
// derivation runs once per secret: across Updates of a role, and across the
// roles that share the cache (the lab shares one between every node, whose
// two tunnel ends derive the same key). Concurrent requests for one key
// wait for a single derivation. It holds at most MaxEntries keys. The zero
// value is ready; it is safe for concurrent use.
type KeyCache struct {
	mu sync.Mutex
	m  map[[32]byte]*keyEntry
}

type keyEntry struct {
	done chan struct{}
	key  *PSKKey
	err  error
}

// MaxEntries bounds a KeyCache; when full, an arbitrary entry makes room.
const MaxEntries = 1024

// Derive returns DerivePSKKey(name, secret), from the cache when it can.
func (k *KeyCache) Derive(name string, secret []byte) (*PSKKey, error) {
	h := sha256.New()
	h.Write([]byte(strings.ToLower(name)))
	h.Write([]byte{0})
	h.Write(secret)
	var id [32]byte
	h.Sum(id[:0])
	k.mu.Lock()
	if e, ok := k.m[id]; ok {
		k.mu.Unlock()
		<-e.done
		return e.key, e.err
	}
	if k.m == nil {
		k.m = map[[32]byte]*keyEntry{}
	}
	if len(k.m) >= MaxEntries {
		for old := range k.m {
			delete(k.m, old)
			break
		}
	}
	e := &keyEntry{done: make(chan struct{})}
	k.m[id] = e
	k.mu.Unlock()
	e.key, e.err = DerivePSKKey(name, secret)
	close(e.done)
	if e.err != nil {
		k.mu.Lock()
		delete(k.m, id)
		k.mu.Unlock()
	}
	return e.key, e.err
}

// loadCredentials reads the secret or the PKI files named by a. A secret
// shorter than RecommendedSecretLen or that looks low in entropy is
// accepted (existing stunnel secrets must keep working) with a warning.
func loadCredentials(name string, a Auth, now func() time.Time, keys *KeyCache, log *slog.Logger) (*credentials, error) {
	switch {
	case a.PSKFile != "" && a.PKI != nil:
		return nil, errors.New("auth: both psk_file and pki are set; choose one")
	case a.PSKFile != "":
		secret, err := secretfile.Read(a.PSKFile)
		if err != nil {
			return nil, fmt.Errorf("auth psk: %w", err)
		}
		if weak := secretfile.Weakness(secret); weak != "" {
			log.Warn("weak tunnel secret: an exit presents a certificate derived from it, so it can be guessed offline; replace it on both ends",
				"tunnel", name, "file", a.PSKFile, "problem", weak, "fix", "offedge secret new "+a.PSKFile+".new (then move it into place on both ends)")
		}
		k, err := keys.Derive(name, secret)
		clear(secret)
		if err != nil {
			return nil, err
		}
		return &credentials{cert: k.Certificate, verify: k.verifyPeer, mode: "psk"}, nil
	case a.PKI != nil:
		return loadPKI(a.PKI, now)
	default:
		return nil, errors.New("auth: neither psk_file nor pki is set")
	}
}

func loadPKI(p *PKIAuth, now func() time.Time) (*credentials, error) {
	if p.CAFile == "" || p.CertFile == "" || p.KeyFile == "" {
		return nil, errors.New("auth pki: ca_file, cert_file and key_file are all required")
	}
	if len(p.PeerNames) == 0 {
		return nil, errors.New("auth pki: peer_names is empty; list the nodes allowed at the other end")
	}
	if st, err := os.Stat(p.KeyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("auth pki: key file %s: mode %04o is accessible by group or others; fix with: chmod 600 %s", p.KeyFile, st.Mode().Perm(), p.KeyFile)
	}
	cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("auth pki: loading %s and %s: %w", p.CertFile, p.KeyFile, err)
	}
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		return nil, fmt.Errorf("auth pki: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("auth pki: %s: no PEM certificate found", p.CAFile)
	}
	names := slices.Clone(p.PeerNames)
	verify := func(certs []*x509.Certificate) error {
		if len(certs) == 0 {
			return errors.New("peer sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		leaf := certs[0]
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots:         pool,
			Intermediates: inter,
			CurrentTime:   now(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		}); err != nil {
			return fmt.Errorf("peer certificate %q: %w", leaf.Subject.CommonName, err)
		}
		var have []string
		have = append(have, leaf.DNSNames...)
		for _, u := range leaf.URIs {
			if s := u.String(); strings.HasPrefix(s, NodeURIPrefix) && !slices.Contains(have, strings.TrimPrefix(s, NodeURIPrefix)) {
				have = append(have, strings.TrimPrefix(s, NodeURIPrefix))
			}
		}
		for _, want := range names {
			if slices.Contains(have, want) {
				return nil
			}
		}
		return fmt.Errorf("%w: certificate names %v, allowed %v", ErrPeerNameMismatch, have, names)
	}
	return &credentials{cert: cert, verify: verify, mode: "pki"}, nil
}

// clientConfig is the entrance's TLS configuration for one tunnel.
func (c *credentials) clientConfig(name string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ServerName:   name,
		Certificates: []tls.Certificate{c.cert},
		// The chain is checked by VerifyConnection: the peer is pinned (psk)
		// or checked against the internal CA and node names (pki), not
		// against the Web PKI and the SNI.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs.PeerCertificates)
		},
		// Resumed sessions skip the signatures but keep ECDHE, and
		// VerifyConnection still runs against the certificates stored in
		// the ticket.
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
}

// serverConfig is the exit's TLS configuration for one tunnel.
func (c *credentials) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs.PeerCertificates)
		},
	}
}
