package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// TestLoadKeyPairKeyFileChecks: the key is read the way every key file is:
// regular files only, the mode of the opened file, the fix in the message,
// and group-readable keys only when allowed.
func TestLoadKeyPairKeyFileChecks(t *testing.T) {
	dir := t.TempDir()
	cf, kf, err := WriteSelfSigned(dir, SelfSignedOptions{Names: []string{"a.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := os.ReadFile(kf)
	fifo := filepath.Join(dir, "fifo-key.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(dir, "dir-key.pem")
	os.Mkdir(keyDir, 0o700)
	withMode := func(mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), "key.pem")
		os.WriteFile(p, keyPEM, 0o600)
		os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name       string
		key        string
		allowGroup bool
		want       string // "" means accepted
	}{
		{"0600", withMode(0o600), false, ""},
		{"0400", withMode(0o400), false, ""},
		{"group readable", withMode(0o640), false, "chmod 600"},
		{"group readable, allowed", withMode(0o640), true, ""},
		{"group writable, allowed group read", withMode(0o660), true, "chmod 640"},
		{"world readable, allowed group read", withMode(0o644), true, "mode 0644"},
		{"fifo (would block a plain read)", fifo, false, "not a regular file"},
		{"directory", keyDir, false, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := LoadKeyPair(cf, tt.key, tt.allowGroup)
			if tt.want == "" {
				if err != nil || pair.Leaf == nil {
					t.Fatalf("LoadKeyPair: %v (leaf %v); want it accepted", err, pair.Leaf)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatal("the key appears in the error")
			}
		})
	}
}

// TestPoolReloads: a CA bundle replaced on disk is used after the check
// interval; a broken replacement keeps the previous pool.
func TestPoolReloads(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	a, _, _ := WriteSelfSigned(filepath.Join(dir, "a"), SelfSignedOptions{Names: []string{"a.example.org"}})
	b, _, _ := WriteSelfSigned(filepath.Join(dir, "b"), SelfSignedOptions{Names: []string{"b.example.org"}})
	ca := filepath.Join(dir, "ca.pem")
	copyFile := func(src string) {
		data, _ := os.ReadFile(src)
		os.WriteFile(ca+".tmp", data, 0o644)
		os.Rename(ca+".tmp", ca)
	}
	copyFile(a)
	p, err := NewPool(ca, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	first := p.Get()
	copyFile(b)
	if p.Get() != first {
		t.Fatal("pool reloaded before the check interval")
	}
	clock.Add(DefaultCheckInterval)
	second := p.Get()
	if second == first || second.Equal(first) {
		t.Fatal("pool not reloaded after the file changed")
	}
	os.WriteFile(ca+".tmp", []byte("not PEM"), 0o644)
	os.Rename(ca+".tmp", ca)
	clock.Add(DefaultCheckInterval)
	if p.Get() != second {
		t.Fatal("a broken CA file replaced a working pool")
	}
}

func TestAddPendingServesPlaceholderUntilWritten(t *testing.T) {
	dir := t.TempDir()
	cp, kp, err := SelfSigned(SelfSignedOptions{Names: []string{"placeholder.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	ph, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	noLeaf := ph
	noLeaf.Leaf = nil
	if _, err := NewStore(Options{}).AddPending(filepath.Join(dir, "x.pem"), filepath.Join(dir, "x.key"), &noLeaf); err == nil {
		t.Fatal("a placeholder without its leaf accepted")
	}
	if ph.Leaf == nil {
		ph.Leaf, _ = x509.ParseCertificate(ph.Certificate[0])
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := NewStore(Options{Now: clk.Now})
	cf, kf := filepath.Join(dir, "live", "fullchain.pem"), filepath.Join(dir, "live", "privkey.pem")
	c, err := s.AddPending(cf, kf, &ph)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Certificate(); got != &ph || !c.Pending() || c.Names()[0] != "placeholder.example.org" {
		t.Fatalf("pending handle serves %v (pending %v)", got, c.Pending())
	}
	clk.Add(time.Minute)
	if got, _ := c.Certificate(); got != &ph {
		t.Fatal("missing files replaced the placeholder")
	}
	if again, err := s.AddPending(cf, kf, &ph); err != nil || again != c {
		t.Fatalf("second AddPending: %v, same handle %v", err, again == c)
	}
	if _, _, err := WriteSelfSigned(filepath.Join(dir, "live"), SelfSignedOptions{Names: []string{"images.example.org"}}); err != nil {
		t.Fatal(err)
	}
	if same, err := s.Add(cf, kf); err != nil || same != c {
		t.Fatalf("Add after AddPending: %v, same handle %v", err, same == c)
	}
	if ok, err := c.Reload(); !ok || err != nil {
		t.Fatalf("Reload once written: %v %v", ok, err)
	}
	if c.Pending() || c.Leaf().DNSNames[0] != "images.example.org" {
		t.Fatalf("after the files are written: pending %v, names %v", c.Pending(), c.Names())
	}
	// Files present from the start: an ordinary handle.
	c2, err := NewStore(Options{}).AddPending(cf, kf, &ph)
	if err != nil || c2.Pending() {
		t.Fatalf("existing files: %v pending %v", err, c2 != nil && c2.Pending())
	}
}
