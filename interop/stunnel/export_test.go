package stunnel

import (
	"net/netip"
	"os"
	"path/filepath"
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
