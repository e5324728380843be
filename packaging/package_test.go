// Package packaging_test builds the Debian package with scripts/package.sh
// and inspects it the way a reviewer would: dpkg-deb for its control data
// and contents, the packaged binary for its version, systemd-analyze for
// the unit.
package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offedge/offedge/internal/testutil"
)

func TestDebPackage(t *testing.T) {
	dpkg := testutil.RequireBinary(t, "dpkg-deb")
	out := t.TempDir()
	cmd := exec.Command("bash", "scripts/package.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "OUT="+out, "VERSION=1.2.3")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "offedge_1.2.3_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("package.sh made %v; want one offedge_1.2.3_ARCH.deb", debs)
	}
	deb := debs[0]
	run := func(name string, args ...string) string {
		t.Helper()
		b, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, b)
		}
		return string(b)
	}

	for field, want := range map[string]string{"Package": "offedge", "Version": "1.2.3", "Section": "net", "Depends": "adduser"} {
		if got := strings.TrimSpace(run(dpkg, "-f", deb, field)); got != want {
			t.Errorf("control field %s = %q; want %q", field, got, want)
		}
	}
	contents := run(dpkg, "-c", deb)
	for _, p := range []string{
		"./usr/bin/offedge",
		"./usr/lib/systemd/system/offedge.service",
		"./etc/offedge/offedge.env",
		"./usr/share/man/man1/offedge.1.gz",
		"./usr/share/man/man1/offedge-run.1.gz",
		"./usr/share/man/man1/offedge-check.1.gz",
		"./usr/share/bash-completion/completions/offedge",
		"./usr/share/zsh/vendor-completions/_offedge",
		"./usr/share/fish/vendor_completions.d/offedge.fish",
		"./usr/share/doc/offedge/README.md",
	} {
		if !strings.Contains(contents, p+"\n") {
			t.Errorf("package lacks %s:\n%s", p, contents)
		}
	}
	if !strings.Contains(contents, "-rwxr-xr-x root/root") || strings.Contains(contents, "offedge.env") && !strings.Contains(contents, "-rw-r----- root/root") {
		t.Errorf("unexpected modes:\n%s", contents)
	}

	ctl := t.TempDir()
	run(dpkg, "-e", deb, ctl)
	conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if strings.TrimSpace(string(conffiles)) != "/etc/offedge/offedge.env" {
		t.Errorf("conffiles = %q; want the settings file, kept across upgrades", conffiles)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		run("sh", "-n", filepath.Join(ctl, s))
	}
	postinst, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
	if !strings.Contains(string(postinst), "adduser --system") {
		t.Error("postinst does not create the service user")
	}

	root := t.TempDir()
	run(dpkg, "-x", deb, root)
	bin := filepath.Join(root, "usr/bin/offedge")
	if v := run(bin, "version"); !strings.HasPrefix(v, "offedge 1.2.3 (commit ") {
		t.Errorf("packaged binary says %q; want version 1.2.3 and its commit", v)
	}

	unitPath := filepath.Join(root, "usr/lib/systemd/system/offedge.service")
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "User=offedge",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"StateDirectory=offedge", "EnvironmentFile=-/etc/offedge/offedge.env",
	} {
		if !strings.Contains(string(unit), line) {
			t.Errorf("unit lacks %q", line)
		}
	}

	// systemd-analyze verify checks every key and value and that the
	// commands exist; it warns (exit 0) on unknown keys, so any output is a
	// failure. The binary is verified where the package put it.
	sa := testutil.RequireBinary(t, "systemd-analyze")
	local := filepath.Join(t.TempDir(), "offedge.service")
	if err := os.WriteFile(local, []byte(strings.ReplaceAll(string(unit), "/usr/bin/offedge", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(sa, "verify", "--man=no", local).CombinedOutput(); err != nil || len(strings.TrimSpace(string(b))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, b)
	}
}
