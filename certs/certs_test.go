package certs

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestStoreReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	cf, kf, err := WriteSelfSigned(dir, SelfSignedOptions{Names: []string{"images.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := NewStore(Options{Now: clk.Now, CheckInterval: 5 * time.Second})
	c, err := s.Add(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := c.Certificate()
	// Replace the files with a certificate for more names.
	if _, _, err := WriteSelfSigned(dir, SelfSignedOptions{Names: []string{"images.example.org", "static.example.org"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Certificate(); got != first {
		t.Fatal("certificate reloaded before the check interval")
	}
	clk.Add(6 * time.Second)
	got, _ := c.Certificate()
	if got == first {
		t.Fatal("changed certificate not picked up after the interval")
	}
	if len(got.Leaf.DNSNames) != 2 {
		t.Fatalf("new leaf names = %v", got.Leaf.DNSNames)
	}
	// A broken file keeps the previous pair.
	if err := os.WriteFile(cf, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reload(); err == nil {
		t.Fatal("broken certificate reloaded without error")
	}
	if again, _ := c.Certificate(); again != got {
		t.Fatal("broken reload replaced the working certificate")
	}
}

func TestStoreGetCertificateBySNI(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(Options{})
	for _, names := range [][]string{{"openfoodfacts.org"}, {"*.openfoodfacts.org"}, {"images.openfoodfacts.org"}} {
		cf, kf, err := WriteSelfSigned(filepath.Join(dir, names[0]), SelfSignedOptions{Names: names})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(cf, kf); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		sni, want string // want: DNS name of the leaf, "" = error
	}{
		{"openfoodfacts.org", "openfoodfacts.org"},
		{"IMAGES.openfoodfacts.org.", "images.openfoodfacts.org"},
		{"world.openfoodfacts.org", "*.openfoodfacts.org"},
		{"a.b.openfoodfacts.org", ""},
		{"example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got certificate %v, want an error", c.Leaf.DNSNames)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Leaf.DNSNames[0] != tt.want {
				t.Fatalf("got %v, want %s", c.Leaf.DNSNames, tt.want)
			}
		})
	}
}

func TestAddRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	cf, kf, err := WriteSelfSigned(dir, SelfSignedOptions{Names: []string{"a.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	_, okf, _ := WriteSelfSigned(other, SelfSignedOptions{Names: []string{"b.example.org"}})
	tests := []struct {
		name, cert, key, want string
		setup                 func()
	}{
		{name: "missing cert", cert: filepath.Join(dir, "nope.pem"), key: kf, want: "nope.pem"},
		{name: "mismatched key", cert: cf, key: okf, want: "private key does not match"},
		{name: "world readable key", cert: cf, key: kf, want: "chmod 600", setup: func() { os.Chmod(kf, 0o644) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			_, err := NewStore(Options{}).Add(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
