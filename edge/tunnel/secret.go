package tunnel

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/internal/secretfile"
)

// Secret declares key material of a node's tunnel ends: a node resource
// (plan.Resources.Secrets), loaded once per node ([LoadSecret]) and named
// by every tunnel end that uses it ([Auth].Secret). It names files and
// never holds the secret itself. Exactly one of PSKFile and the PKI files
// is set.
type Secret struct {
	// PSKFile holds a tunnel's pre-shared secret; Tunnel is the tunnel
	// whose key it derives (the derivation is salted with its name).
	PSKFile string `json:"psk_file,omitempty"`
	Tunnel  string `json:"tunnel,omitempty"`
	// CAFile, CertFile and KeyFile are the node's internal PKI files
	// (package pki).
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

func (s Secret) check() error {
	pki := s.CAFile != "" || s.CertFile != "" || s.KeyFile != ""
	switch {
	case s.PSKFile != "" && pki:
		return errors.New("both a psk file and pki files; choose one")
	case s.PSKFile != "":
		if s.Tunnel == "" {
			return errors.New("psk file without the tunnel whose key it derives")
		}
		return checkName(s.Tunnel)
	case pki:
		if s.CAFile == "" || s.CertFile == "" || s.KeyFile == "" {
			return errors.New("pki: ca_file, cert_file and key_file are all required")
		}
		return nil
	}
	return errors.New("neither a psk file nor pki files")
}

// Key is a loaded [Secret]: the key pair derived from a pre-shared secret,
// or the node's PKI certificate and CA, which reload by themselves when
// their files change (checked at most every certs.DefaultCheckInterval,
// on the handshake path: `offedge pki issue` rotating a node's certificate
// takes effect without a reload; open connections keep theirs; a file
// that fails to load never replaces a working one).
type Key struct {
	mode string // "psk" or "pki"
	psk  *PSKKey
	cert *certs.Cert
	ca   *certs.Pool
}

// Kind is "psk" or "pki".
func (k *Key) Kind() string { return k.mode }

// LoadSecret reads the files s names now (a broken file is an error) and
// derives a PSK's key through opts.Keys when set. A short secret or one
// that looks low in entropy (secretfile.Weakness) is accepted (existing
// stunnel secrets must keep working) with a warning.
func LoadSecret(s Secret, opts Options) (*Key, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s.PSKFile != "" {
		secret, err := secretfile.Read(s.PSKFile)
		if err != nil {
			return nil, fmt.Errorf("auth psk: %w", err)
		}
		defer clear(secret)
		if weak := secretfile.Weakness(secret); weak != "" {
			log.Warn("weak tunnel secret: an exit presents a certificate derived from it, so it can be guessed offline; replace it on both ends",
				"tunnel", s.Tunnel, "file", s.PSKFile, "problem", weak, "fix", "offedge secrets new "+s.PSKFile+".new (then move it into place on both ends)")
		}
		var k *PSKKey
		if opts.Keys != nil {
			k, err = opts.Keys.Derive(s.Tunnel, secret)
		} else {
			k, err = DerivePSKKey(s.Tunnel, secret)
		}
		if err != nil {
			return nil, err
		}
		return &Key{mode: "psk", psk: k}, nil
	}
	copts := certs.Options{Logger: log, Now: opts.Now}
	cert, err := certs.NewCert(s.CertFile, s.KeyFile, copts)
	if err != nil {
		return nil, fmt.Errorf("auth pki: %w", err)
	}
	ca, err := certs.NewPool(s.CAFile, copts)
	if err != nil {
		return nil, fmt.Errorf("auth pki: %w", err)
	}
	return &Key{mode: "pki", cert: cert, ca: ca}, nil
}

// SecretVersion identifies what a Key loaded from s now would hold,
// without the secret: for a pre-shared secret, a hash of the tunnel name
// and the secret (reading the file, with its mode checked); for the PKI,
// "" (its files reload by themselves). The runtime keys a secret by its
// declaration and this version, so a reload after the secret file changed
// builds a new key, and one after no change keeps the derived key without
// deriving again.
func SecretVersion(s Secret) (string, error) {
	if err := s.check(); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	if s.PSKFile == "" {
		return "", nil
	}
	secret, err := secretfile.Read(s.PSKFile)
	if err != nil {
		return "", fmt.Errorf("auth psk: %w", err)
	}
	defer clear(secret)
	h := hmac.New(sha256.New, versionKey[:])
	h.Write([]byte(strings.ToLower(s.Tunnel) + "\x00"))
	h.Write(secret)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// versionKey keys SecretVersion's MAC: a version compares within one
// process and tells nothing of the secret outside it.
var versionKey = func() (k [32]byte) {
	rand.Read(k[:])
	return k
}()
