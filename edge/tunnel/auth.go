package tunnel

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
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
	cert tls.Certificate
	// get, when set, returns the current certificate (pki: reloaded when
	// its files change); cert is then unused.
	get    func() (*tls.Certificate, error)
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

// loadCredentials builds what the tunnel end name presents and accepts
// from a: the node's loaded secret a.Secret names (from keys), or, for an
// Auth that names files, the files read now.
func loadCredentials(name string, a Auth, keys map[string]*Key, opts Options) (*credentials, error) {
	k, err := resolveKey(name, a, keys, opts)
	if err != nil {
		return nil, err
	}
	switch k.mode {
	case "psk":
		if !strings.EqualFold(k.psk.Name, name) {
			return nil, fmt.Errorf("auth: secret %q derives the key of tunnel %q, not of this one", a.Secret, k.psk.Name)
		}
		return &credentials{cert: k.psk.Certificate, verify: k.psk.verifyPeer, mode: "psk"}, nil
	default:
		if len(a.PKI.PeerNames) == 0 {
			return nil, errors.New("auth pki: peer_names is empty; list the nodes allowed at the other end")
		}
		return k.pkiCredentials(a.PKI.PeerNames, opts.Now), nil
	}
}

// resolveKey finds or loads the key material of a.
func resolveKey(name string, a Auth, keys map[string]*Key, opts Options) (*Key, error) {
	files := a.PSKFile != "" || a.PKI != nil && (a.PKI.CAFile != "" || a.PKI.CertFile != "" || a.PKI.KeyFile != "")
	switch {
	case a.Secret != "" && files:
		return nil, fmt.Errorf("auth: secret %q and key files are both set; a secret names files declared once per node", a.Secret)
	case a.Secret != "":
		k := keys[a.Secret]
		if k == nil {
			return nil, fmt.Errorf("auth: secret %q is not among the node's loaded secrets", a.Secret)
		}
		if (k.mode == "pki") != (a.PKI != nil) {
			return nil, fmt.Errorf("auth: secret %q is a %s secret; the tunnel's auth wants the other kind", a.Secret, k.mode)
		}
		return k, nil
	case a.PSKFile != "" && a.PKI != nil:
		return nil, errors.New("auth: both psk_file and pki are set; choose one")
	case a.PSKFile != "":
		return LoadSecret(Secret{PSKFile: a.PSKFile, Tunnel: name}, opts)
	case a.PKI != nil:
		if a.PKI.CAFile == "" || a.PKI.CertFile == "" || a.PKI.KeyFile == "" {
			return nil, errors.New("auth pki: ca_file, cert_file and key_file are all required")
		}
		if len(a.PKI.PeerNames) == 0 {
			return nil, errors.New("auth pki: peer_names is empty; list the nodes allowed at the other end")
		}
		return LoadSecret(Secret{CAFile: a.PKI.CAFile, CertFile: a.PKI.CertFile, KeyFile: a.PKI.KeyFile}, opts)
	default:
		return nil, errors.New("auth: neither psk_file nor pki is set")
	}
}

// pkiCredentials presents the node's certificate (the current one: it
// reloads when its files change, see LoadSecret) and accepts a peer whose
// certificate chains to the CA and names one of names.
func (k *Key) pkiCredentials(peerNames []string, now func() time.Time) *credentials {
	names := slices.Clone(peerNames)
	ca := k.ca
	verify := func(peer []*x509.Certificate) error {
		if len(peer) == 0 {
			return errors.New("peer sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range peer[1:] {
			inter.AddCert(c)
		}
		leaf := peer[0]
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots:         ca.Get(),
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
	return &credentials{get: k.cert.Certificate, verify: verify, mode: "pki"}
}

// clientConfig is the entrance's TLS configuration for one tunnel.
func (c *credentials) clientConfig(name string) *tls.Config {
	tc := &tls.Config{
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
	if c.get != nil {
		tc.Certificates = nil
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.get() }
	}
	return tc
}

// serverConfig is the exit's TLS configuration for one tunnel.
func (c *credentials) serverConfig() *tls.Config {
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs.PeerCertificates)
		},
	}
	if c.get != nil {
		tc.Certificates = nil
		tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.get() }
	}
	return tc
}
