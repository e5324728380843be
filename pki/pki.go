// Package pki is offedge's small internal certificate authority for tunnels:
// Init creates a CA (ECDSA P-256) in a directory, Issue signs a node
// certificate whose names are the node name (DNS SAN) and
// offedge://node/NAME (URI SAN), usable for both TLS client and server
// authentication. Private keys are written 0600 and never overwritten.
// Key files are read through package certs, as every key file is.
package pki

import (
	"github.com/offedge/offedge/internal/atomicfile"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"time"

	"github.com/offedge/offedge/certs"
)

// File names inside a CA directory and a node output directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// Validity of what Init and Issue create.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 2 * 365 * 24 * time.Hour
)

// NodeURIPrefix prefixes the URI SAN naming a node.
const NodeURIPrefix = "offedge://node/"

// Files are the paths a node's tunnel ends read: the CA certificate, the
// node's certificate and its private key.
type Files struct {
	CA, Cert, Key string
}

// NodeFiles is where a node finds its PKI material in dir (the directory
// Issue wrote for it, /etc/offedge/pki on the node): the layout plans use.
func NodeFiles(dir, node string) Files {
	return Files{
		CA:   path.Join(dir, CACertFile),
		Cert: path.Join(dir, NodeCertFile(node)),
		Key:  path.Join(dir, NodeKeyFile(node)),
	}
}

// NodeCertFile and NodeKeyFile name the files Issue writes for node.
func NodeCertFile(node string) string { return node + ".pem" }

// NodeKeyFile names the private key file Issue writes for node.
func NodeKeyFile(node string) string { return node + "-key.pem" }

var nodeName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// Init creates a new CA in dir (created 0700 if missing): ca.pem and
// ca-key.pem (0600). It refuses to overwrite an existing CA.
func Init(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki init %s: %w", dir, err)
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("pki init %s: %s already exists; refusing to replace a CA (remove it first if you really mean to re-key every node)", dir, f)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki init %s: %w", dir, err)
	}
	serial, err := randSerial()
	if err != nil {
		return fmt.Errorf("pki init %s: %w", dir, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "offedge tunnel CA", Organization: []string{"offedge"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki init %s: %w", dir, err)
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return fmt.Errorf("pki init %s: %w", dir, err)
	}
	if err := writeNew(filepath.Join(dir, CACertFile), pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return fmt.Errorf("pki init %s: %w", dir, err)
	}
	return nil
}

// Issue signs a certificate for node with the CA in dir and writes
// NODE.pem, NODE-key.pem (0600) and a copy of ca.pem into outDir (created
// 0700 if missing). Existing node files are replaced (re-issue); the CA
// copy is replaced too.
func Issue(dir, node, outDir string) error {
	if !nodeName.MatchString(node) {
		return fmt.Errorf("pki issue: node name %q: use lower-case letters, digits, '-' and '.' (a DNS name)", node)
	}
	wrap := func(err error) error { return fmt.Errorf("pki issue %q: %w", node, err) }
	// The key's mode is checked on the file opened, before it is used.
	ca, err := certs.LoadKeyPair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), false)
	if err != nil {
		return wrap(fmt.Errorf("loading CA from %s: %w (run pki init first?)", dir, err))
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		return wrap(err)
	}
	if !caCert.IsCA {
		return wrap(fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, CACertFile)))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return wrap(err)
	}
	serial, err := randSerial()
	if err != nil {
		return wrap(err)
	}
	uri, err := url.Parse(NodeURIPrefix + node)
	if err != nil {
		return wrap(err)
	}
	now := time.Now()
	notAfter := now.Add(NodeValidity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node, Organization: []string{"offedge"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{node},
		URIs:         []*url.URL{uri},
		SubjectKeyId: keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		return wrap(err)
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return wrap(err)
	}
	keyPath := filepath.Join(outDir, NodeKeyFile(node))
	os.Remove(keyPath)
	if err := writeKey(keyPath, key); err != nil {
		return wrap(err)
	}
	if err := atomicfile.Write(filepath.Join(outDir, NodeCertFile(node)), pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return wrap(err)
	}
	if err := atomicfile.Write(filepath.Join(outDir, CACertFile), pemBytes("CERTIFICATE", ca.Certificate[0]), 0o644); err != nil {
		return wrap(err)
	}
	return nil
}

func randSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyID(pub *ecdsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	s := sha1.Sum(b) // an identifier (RFC 5280 §4.2.1.2), not a security property
	return s[:]
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeNew(path, pemBytes("PRIVATE KEY", der), 0o600)
}

// writeNew creates path with mode, failing if it exists (O_EXCL), so a key
// is never written through a pre-existing file or symlink.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
