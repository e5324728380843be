package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/offedge/offedge/internal/testutil"
)

// TestImportReferenceSanoid imports off2's and ovh3's real sanoid and
// syncoid files where they stand: off2's address and ovh3's hostnames
// name their nodes through the inventory, ovh3's twice-written off2 rpool
// line is imported once and reported, and a file given without a node is
// refused.
func TestImportReferenceSanoid(t *testing.T) {
	ref := filepath.Join(testutil.RequireReference(t), "confs")
	out, errOut, code := run("import", "sanoid", "off2="+filepath.Join(ref, "off2/sanoid"), "ovh3="+filepath.Join(ref, "ovh3/sanoid"),
		"--node", "ovh3", filepath.Join(ref, "common/systemd/system/syncoid.service"))
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a report to review); stderr %q", code, errOut)
	}
	for _, want := range []string{
		"  - name: off-ovh3  # ", "    source: {node: off2, path: zfs-hdd/off}\n    target: {node: ovh3, path: rpool/off}\n    recursive: true\n    schedule: 15m\n    max_lag: 7h\n",
		"# Under the server off2 (servers: - name: off2):",
		`#       - {name: rpool/off, description: "sanoid synced_data, recursive"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"ovh3/sanoid/syncoid-args.conf:30: the same copy as ",
		"syncoid.service:18: runs syncoid with each line of /etc/sanoid/syncoid-args.conf: import that file",
		"off2/sanoid/sanoid.conf:80: [zfs-hdd/logs-nginx] is snapshotted on off2, a replication source, but no syncoid command copies it",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("report lacks %q:\n%s", want, errOut)
		}
	}
	if _, errOut, code := run("import", "sanoid", filepath.Join(ref, "off2/sanoid")); code != 2 || !strings.Contains(errOut, "whose files?") {
		t.Errorf("no node: exit %d %q", code, errOut)
	}
	if _, errOut, code := run("import", "sanoid", "nosuch="+filepath.Join(ref, "off2/sanoid")); code != 2 || !strings.Contains(errOut, `unknown node "nosuch"`) {
		t.Errorf("unknown node: exit %d %q", code, errOut)
	}
}
