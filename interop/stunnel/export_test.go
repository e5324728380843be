package stunnel

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/plan"
)

// TestExportReplacesLooseKeyFile: a derived key file left 0644 by hand is
// replaced by a 0600 one (os.WriteFile would have kept the old mode).
func TestExportReplacesLooseKeyFile(t *testing.T) {
	p := &plan.Plan{Node: "edge", Listeners: []plan.Listener{{
		Name: "tunnel redis entrance", Kind: plan.KindTunnelEntrance, Addr: netip.MustParseAddrPort("10.0.0.5:6379"),
		Entrance: &tunnel.EntranceConfig{Name: "redis", Exits: []string{"192.0.2.8:6379"}, Auth: tunnel.Auth{PSKFile: writeSecret(t, secretA)}},
	}}}
	dir := t.TempDir()
	cfg, err := Export(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "redis.key")
	if got, _ := cfg.Section("redis").Get("key"); got != key {
		t.Fatalf("key = %q; want %q", got, key)
	}
	os.Chmod(key, 0o644)
	if _, err := Export(p, dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file after a second export: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
}

// TestExportThenImportKeepsPSK: an exported psk tunnel reads back as psk
// with its secret file. Before, the exported config only showed a
// certificate and import turned the tunnel into auth: {pki: true}.
func TestExportThenImportKeepsPSK(t *testing.T) {
	secret := writeSecret(t, secretA)
	p := &plan.Plan{Node: "edge", Listeners: []plan.Listener{{
		Name: "tunnel redis entrance", Kind: plan.KindTunnelEntrance, Addr: netip.MustParseAddrPort("10.0.0.5:6379"),
		Entrance: &tunnel.EntranceConfig{Name: "redis", Exits: []string{"192.0.2.8:6379"}, Auth: tunnel.Auth{PSKFile: secret}},
	}}}
	cfg, err := Export(p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	text, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("edge.conf", bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	yaml, problems := Importer{Node: "edge"}.Convert(back)
	if !strings.Contains(yaml, "auth: {psk: "+secret+"}") || strings.Contains(yaml, "pki: true") {
		t.Fatalf("export then import:\n%s\nwant auth: {psk: %s}", yaml, secret)
	}
	for _, pr := range problems {
		if strings.Contains(pr, "auth") || strings.Contains(pr, "secret") {
			t.Errorf("unexpected problem: %s", pr)
		}
	}
	if !strings.Contains(yaml, "works as is") || strings.Contains(yaml, "keep only what follows the colon") {
		t.Errorf("import's note on PSKsecrets files contradicts docs/tunnels.md:\n%s", yaml)
	}

	// A hand-made config of the same shape (cert = CAfile) but without the
	// marker is not taken for PKI either: import asks for the secret.
	for i := range back.Sections {
		back.Sections[i].Comment = ""
	}
	yaml, problems = Importer{Node: "edge"}.Convert(back)
	if !strings.Contains(yaml, "auth: {psk: FIXME}") || len(problems) == 0 {
		t.Fatalf("derived pair without the marker:\n%s\nproblems %v; want psk FIXME and a problem", yaml, problems)
	}
}
