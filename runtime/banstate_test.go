package runtime

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bans survive a restart of the node: the state file in the state
// directory holds them (0600), the next Start restores them and the
// address is refused at accept again; a ban lifted before the stop stays
// lifted.
func TestBansSurviveRestart(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	p := f.compile("1", "client")
	n, err := Start(p, Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	n.Bans().Add(netip.MustParsePrefix("127.0.0.23/32"), time.Hour, "manual: scraping")
	n.Bans().Add(netip.MustParsePrefix("127.0.0.24/32"), time.Hour, "manual")
	n.Bans().Del(netip.MustParsePrefix("127.0.0.24/32"))
	n.Shutdown(context.Background())

	file := filepath.Join(dir, "bans.json")
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no state file after the stop: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}

	n, err = Start(p, Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	b, ok := n.Bans().Banned(netip.MustParseAddr("127.0.0.23"))
	if !ok || b.Reason != "manual: scraping" {
		t.Fatalf("after the restart 127.0.0.23 is not banned as it was (%+v, %v)", b, ok)
	}
	if _, ok := n.Bans().Banned(netip.MustParseAddr("127.0.0.24")); ok {
		t.Error("a ban lifted before the stop came back")
	}
	if v, err := getVersion(httpClient("127.0.0.23"), f.httpAddr); err == nil {
		t.Fatalf("the restored ban did not refuse the client (version %q)", v)
	}
	if st := n.Status().Protection.BanState; st.File != file {
		t.Errorf("status names state file %q, want %q", st.File, file)
	}
}

// A state file that cannot be read back is moved aside, never overwritten
// (it is the only record of those bans), and the node starts.
func TestUnreadableBanStateMovedAside(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "bans.json")
	os.WriteFile(file, []byte("{torn"), 0o600)
	n, err := Start(f.compile("1", "client"), Options{StateDir: dir})
	if err != nil {
		t.Fatalf("a torn state file stopped the node: %v", err)
	}
	defer n.Shutdown(context.Background())
	ents, _ := os.ReadDir(dir)
	var aside string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "bans.json.unreadable-") {
			aside = filepath.Join(dir, e.Name())
		}
	}
	if b, err := os.ReadFile(aside); err != nil || string(b) != "{torn" {
		t.Fatalf("the unreadable file was not kept aside: %v %q (dir: %v)", err, b, ents)
	}
	n.Bans().Add(netip.MustParsePrefix("127.0.0.25/32"), time.Hour, "manual")
	n.Shutdown(context.Background())
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), "127.0.0.25/32") {
		t.Errorf("the new state file does not hold the new ban: %q", b)
	}
}

// Without a state directory (a library user, offedge run by hand) bans
// are kept in memory and nothing is written.
func TestBansInMemoryWithoutStateDir(t *testing.T) {
	f := newFixture(t)
	wd, _ := os.Getwd()
	n, err := Start(f.compile("1", "client"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Bans().Add(netip.MustParsePrefix("127.0.0.26/32"), time.Hour, "manual")
	n.Shutdown(context.Background())
	if _, err := os.Stat(filepath.Join(wd, "bans.json")); err == nil {
		os.Remove(filepath.Join(wd, "bans.json"))
		t.Fatal("a relative state file was written into the working directory")
	}
	if st := n.Status().Protection.BanState; st.Writes != 0 || st.File != "" {
		t.Errorf("ban state %+v, want no file and no writes", st)
	}
}
