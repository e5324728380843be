package tunnel

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// PSKSalt starts the Argon2id salt of the pre-shared-secret key
// derivation. Changing it changes every derived key: it is versioned, never
// edited. (v1 was HKDF-SHA256 alone: a weak secret could be guessed offline
// at billions of tries a second from the certificate an exit presents.)
const PSKSalt = "offedge tunnel psk v2"

// Argon2id parameters of the derivation: OWASP's first recommended
// configuration (2 passes over 19 MiB, 1 lane), about 25 ms and 19 MiB per
// guess. Heavier settings (RFC 9106's 64 MiB × 3) cost 0.1–0.5 s per tunnel
// end, paid at every start by each end of every tunnel and by the lab for
// the whole estate; this keeps a start quick while turning an offline guess
// from one hash into a memory-hard computation. Paid once per start and
// secret: Update reuses keys whose secret did not change.
const (
	PSKArgonTime    = 2
	PSKArgonMemory  = 19 << 10 // KiB
	PSKArgonThreads = 1
)

// pskNotBefore and pskNotAfter are the fixed validity of derived
// certificates, so that both ends (and stunnel) build the same bytes.
var (
	pskNotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	pskNotAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ErrPeerKeyMismatch is wrapped by handshake errors when the peer presented a
// key other than the one derived from the tunnel's pre-shared secret.
var ErrPeerKeyMismatch = errors.New("peer key does not match the tunnel's pre-shared secret (wrong secret on one side?)")

// PSKKey is the key pair and certificate both ends of a pre-shared-secret
// tunnel derive from the secret and the tunnel name.
type PSKKey struct {
	// Name is the tunnel name the key was derived for.
	Name string
	// Public is the Ed25519 public key the peer must present.
	Public ed25519.PublicKey
	// Certificate is the deterministic self-signed certificate, ready for
	// crypto/tls.
	Certificate tls.Certificate
	// CertPEM and KeyPEM are the certificate and PKCS #8 private key in PEM,
	// for stunnel (`cert`, `key`, `CAfile`). KeyPEM is secret.
	CertPEM, KeyPEM []byte
}

// DerivePSKKey derives the tunnel key from a pre-shared secret:
//
//	seed = Argon2id(password = secret, salt = "offedge tunnel psk v2" || 0x00 || lower(name),
//	                t = 2, m = 19 MiB, p = 1, 32 bytes)      (RFC 9106)
//	key  = Ed25519 key whose RFC 8032 seed is seed
//
// and the self-signed certificate: X.509 v3, serial = the first 16 bytes of
// SHA-256(public key) with the top bit cleared (a zero first byte becomes 1),
// subject and issuer CN = lower(name),
// validity 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z, no extensions except
// the subject and authority key identifiers (SHA-1 of the public key), signed
// with the key (Ed25519 signatures are deterministic). Only the public key is
// compared by the peer; the certificate exists because TLS and stunnel need one.
// The name is lower-cased (ASCII) because exits look tunnels up by TLS server
// name, which compares without case.
func DerivePSKKey(name string, secret []byte) (*PSKKey, error) {
	name = strings.ToLower(name)
	if name == "" {
		return nil, errors.New("deriving tunnel key: empty tunnel name")
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("tunnel %q: deriving key: empty secret", name)
	}
	seed := argon2.IDKey(secret, pskArgonSalt(name), PSKArgonTime, PSKArgonMemory, PSKArgonThreads, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)

	sum := sha256.Sum256(pub)
	serial := sum[:16]
	serial[0] &= 0x7f
	if serial[0] == 0 {
		serial[0] = 1 // keep the encoding 16 bytes long and positive
	}
	skid := sha1Sum(pub)
	tmpl := &x509.Certificate{
		SerialNumber:   new(big.Int).SetBytes(serial),
		Subject:        pkix.Name{CommonName: name},
		NotBefore:      pskNotBefore,
		NotAfter:       pskNotAfter,
		SubjectKeyId:   skid,
		AuthorityKeyId: skid,
	}
	der, err := x509.CreateCertificate(zeroReader{}, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("tunnel %q: creating derived certificate: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tunnel %q: parsing derived certificate: %w", name, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("tunnel %q: encoding derived key: %w", name, err)
	}
	return &PSKKey{
		Name:        name,
		Public:      pub,
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf},
		CertPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}, nil
}

func pskArgonSalt(name string) []byte {
	return append([]byte(PSKSalt+"\x00"), name...)
}

// verifyPeer checks that the peer's leaf certificate carries the derived public key.
func (k *PSKKey) verifyPeer(certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("peer sent no certificate")
	}
	got, ok := certs[0].PublicKey.(ed25519.PublicKey)
	if !ok || !bytes.Equal(got, k.Public) {
		return ErrPeerKeyMismatch
	}
	return nil
}

// zeroReader is the randomness given to x509.CreateCertificate: Ed25519
// signing does not use it, and every other field is fixed, so the
// certificate is a pure function of the name and the secret.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
