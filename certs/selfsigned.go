package certs

import (
	"github.com/offedge/offedge/internal/atomicfile"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// SelfSignedOptions describe a certificate made by [SelfSigned].
type SelfSignedOptions struct {
	// Names are the DNS names or IP literals of the certificate.
	Names []string
	// NotBefore and NotAfter bound its validity; zero means now-1h and now+90 days.
	NotBefore, NotAfter time.Time
}

// SelfSigned returns a fresh ECDSA P-256 self-signed certificate and its key,
// PEM encoded, for the lab and tests (a certbot stand-in). The certificate is
// its own CA so that a client can trust exactly it.
func SelfSigned(opts SelfSignedOptions) (certPEM, keyPEM []byte, err error) {
	if len(opts.Names) == 0 {
		return nil, nil, fmt.Errorf("self-signed certificate: no names")
	}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = time.Now().Add(-time.Hour)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = opts.NotBefore.Add(90 * 24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.Names[0]},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range opts.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// WriteSelfSigned writes a [SelfSigned] pair as dir/fullchain.pem and
// dir/privkey.pem (mode 0600), the certbot layout, and returns both paths.
// Files are replaced atomically (write then rename), as certbot does.
func WriteSelfSigned(dir string, opts SelfSignedOptions) (certFile, keyFile string, err error) {
	c, k, err := SelfSigned(opts)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	if err := WriteFileAtomic(keyFile, k, 0o600); err != nil {
		return "", "", err
	}
	if err := WriteFileAtomic(certFile, c, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// WriteFileAtomic replaces path with data (see atomicfile.Write: a fresh
// temporary file with mode, synced, renamed into place), so a reader sees
// the old file or the new one, never a part.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode)
}
