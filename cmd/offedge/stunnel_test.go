package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/interop/stunnel"
	"github.com/offedge/offedge/inventory"
)

// TestImportReferenceStunnel imports Open Food Facts' real stunnel configs
// where they stand: the Moji server's duplicated [Robotoff] is reported and
// kept apart, and the OVH client's sections become entrances whose exit is
// named through the inventory and --host.
func TestImportReferenceStunnel(t *testing.T) {
	ref := testutil.RequireReference(t)
	out, errOut, code := run("import", "stunnel", filepath.Join(ref, "confs/moji-stunnel-server/stunnel/off.conf"),
		"--node", "moji-stunnel-server", "--network", "internet", "--inventory", "../../examples/openfoodfacts")
	if code != 1 || !strings.Contains(errOut, "section [Robotoff] is defined again (first at line 13)") {
		t.Fatalf("exit %d stderr %q; want the duplicate reported and exit 1", code, errOut)
	}
	for _, want := range []string{"  - name: robotoff  #", "  - name: robotoff-line23  #", "service: robotoff\n", "service: off-query\n", "psk: /etc/stunnel/psk/off-query-psk.txt"} {
		if !strings.Contains(out, want) {
			t.Fatalf("import output lacks %q:\n%s", want, out)
		}
	}
	out, errOut, code = run("import", "stunnel", filepath.Join(ref, "confs/ovh-stunnel-client/stunnel/off.conf"),
		"--node", "ovh-stunnel-client", "--inventory", "../../examples/openfoodfacts", "--host", "proxy2.openfoodfacts.org=off2")
	if code != 0 {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	if !strings.Contains(out, `entrance: {node: ovh-stunnel-client, network: ovh-lan, address: "10.1.0.113", port: 27017}`) || !strings.Contains(out, "- {node: off2, network: internet, port: 27017}") {
		t.Fatalf("import output:\n%s", out)
	}
	// What import writes is YAML the loader reads (FIXMEs aside).
	if _, err := inventory.Parse("imported.yaml", []byte(out)); err != nil {
		t.Fatalf("imported YAML does not parse: %v\n%s", err, out)
	}
}

// TestExportStunnel writes the stunnel4 side of a node from the embedded
// inventory, reading the secrets under --root, and checks the derived
// certificates and the sections.
func TestExportStunnel(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"mongodb-ovh", "redis-ovh"} {
		p := filepath.Join(root, "etc/offedge/psk", name+".psk")
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	certDir := filepath.Join(t.TempDir(), "stunnel")
	out, errOut, code := run("export", "stunnel", "--node", "ovh-stunnel-client", "--root", root, "--dir", certDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	cfg, err := stunnel.Parse("export.conf", strings.NewReader(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(cfg.Sections) != 2 || len(cfg.Findings) != 0 {
		t.Fatalf("sections %+v findings %v", cfg.Sections, cfg.Findings)
	}
	s := cfg.Section("mongodb-ovh")
	for key, want := range map[string]string{"client": "yes", "connect": "213.36.253.208:27017", "sni": "mongodb-ovh", "verifyPeer": "yes",
		"cert": filepath.Join(certDir, "mongodb-ovh.crt"), "key": filepath.Join(certDir, "mongodb-ovh.key")} {
		if got, _ := s.Get(key); got != want {
			t.Fatalf("%s = %q; want %q\n%s", key, got, want, out)
		}
	}
	st, err := os.Stat(filepath.Join(certDir, "mongodb-ovh.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("derived key file: %v, mode %v; want 0600", err, st)
	}
	// A secret readable by others is refused, with the fix.
	os.Chmod(filepath.Join(root, "etc/offedge/psk/redis-ovh.psk"), 0o644)
	_, errOut, code = run("export", "stunnel", "--node", "ovh-stunnel-client", "--root", root, "--dir", certDir)
	if code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("exit %d stderr %q; want the loose secret refused with the fix", code, errOut)
	}
	if strings.Contains(out, "0123456789abcdef") {
		t.Fatal("the secret appears in the exported config")
	}
}
