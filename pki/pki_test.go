package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInitIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	out := filepath.Join(t.TempDir(), "nodes")
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Init: %v; want refusal", err)
	}
	st, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode: %v %v; want 0600", st.Mode(), err)
	}
	for _, node := range []string{"off2-proxy", "ovh1"} {
		if err := Issue(dir, node, out); err != nil {
			t.Fatal(err)
		}
	}
	ca := readCert(t, filepath.Join(dir, CACertFile))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	leaf := readCert(t, filepath.Join(out, NodeCertFile("ovh1")))
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "ovh1", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("verify usage %v: %v", usage, err)
		}
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "offedge://node/ovh1" {
		t.Fatalf("URIs %v", leaf.URIs)
	}
	if st, err := os.Stat(filepath.Join(out, NodeKeyFile("ovh1"))); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("node key mode: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, CACertFile)); err != nil {
		t.Fatalf("CA copy: %v", err)
	}
	// Re-issuing replaces the node files.
	if err := Issue(dir, "ovh1", out); err != nil {
		t.Fatalf("re-issue: %v", err)
	}
	if again := readCert(t, filepath.Join(out, NodeCertFile("ovh1"))); again.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("re-issue kept the old certificate")
	}
}

func TestIssueErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	tests := []struct {
		name, node, want string
		setup            func(t *testing.T)
	}{
		{name: "no CA", node: "ovh1", want: "run pki init first"},
		{name: "bad node name", node: "OVH 1", want: "node name"},
		{name: "path in node name", node: "../x", want: "node name"},
		{name: "CA key readable", node: "ovh1", want: "chmod 600", setup: func(t *testing.T) {
			if err := Init(dir); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(dir, CAKeyFile), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			err := Issue(dir, tt.node, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Issue: %v; want error containing %q", err, tt.want)
			}
		})
	}
}
