package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
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

// loadCredentials reads the secret or the PKI files named by a.
func loadCredentials(name string, a Auth, now func() time.Time) (*credentials, error) {
	switch {
	case a.PSKFile != "" && a.PKI != nil:
		return nil, errors.New("auth: both psk_file and pki are set; choose one")
	case a.PSKFile != "":
		secret, err := secretfile.Read(a.PSKFile)
		if err != nil {
			return nil, fmt.Errorf("auth psk: %w", err)
		}
		k, err := DerivePSKKey(name, secret)
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
