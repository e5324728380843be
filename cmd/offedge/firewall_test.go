package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/firewall"
	"github.com/offedge/offedge/internal/testutil"
)

func TestFirewallPlanCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"needs a subcommand", []string{"firewall"}, 2, "", "needs a subcommand"},
		{"unknown subcommand", []string{"firewall", "show"}, 2, "", `unknown firewall subcommand "show"`},
		{"needs node", []string{"firewall", "plan"}, 2, "", "--node is required"},
		{"off2 redis", []string{"firewall", "plan", "--node", "off2"}, 0,
			`ip daddr 10.0.0.2 tcp dport 6379 ip saddr @svc-redis-free-lan-4 accept comment "service redis (inventory.d/10-off2.yaml:`, ""},
		{"ovh1 pmg dnat", []string{"firewall", "plan", "--node", "ovh1"}, 0,
			`ip daddr 146.59.148.140 tcp dport 26 ip saddr @fwd-pmg-smtp-4 dnat ip to 10.1.0.102:25 comment "forward pmg-smtp`, ""},
		{"json", []string{"firewall", "plan", "--node", "ovh1", "--format", "json"}, 0, `"verdict": "dnat"`, ""},
		{"bad format", []string{"firewall", "plan", "--node", "ovh1", "--format", "xml"}, 2, "", "--format must be nft or json"},
		{"node without firewall", []string{"firewall", "plan", "--node", "b", "--inventory", "testdata/nofirewall.yaml"}, 1, "", `node "b" has no firewall in the inventory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, %q, %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

// TestFirewallApplyDiffConfirm drives apply, diff, confirm and rollback in
// a namespace of the test's own.
func TestFirewallApplyDiffConfirm(t *testing.T) {
	ns := testutil.Netns(t, "oefw-cli")
	state := t.TempDir()
	if out, _, code := run("firewall", "diff", "--node", "off2", "--netns", ns.Path); code != 1 || !strings.Contains(out, "no table inet offedge") {
		t.Fatalf("diff before apply: exit %d\n%s", code, out)
	}
	if out, errOut, code := run("firewall", "apply", "--node", "off2", "--netns", ns.Path); code != 0 {
		t.Fatalf("apply: exit %d %s %s", code, out, errOut)
	}
	if out, _, code := run("firewall", "diff", "--node", "off2", "--netns", ns.Path); code != 0 || !strings.Contains(out, "as planned") {
		t.Fatalf("diff after apply: exit %d\n%s", code, out)
	}
	if out, _, code := run("firewall", "diff", "--node", "ovh1", "--netns", ns.Path); code != 1 || !strings.Contains(out, "+ \t\tip daddr 146.59.148.140 tcp dport 26") {
		t.Fatalf("diff against another node's plan: exit %d\n%s", code, out)
	}
	if _, errOut, code := run("firewall", "confirm", "--state-dir", state); code != 1 || !strings.Contains(errOut, "no firewall apply is waiting") {
		t.Fatalf("confirm with nothing pending: exit %d %s", code, errOut)
	}

	// Not confirmed: off2's table comes back.
	out, errOut, code := run("firewall", "apply", "--node", "ovh1", "--netns", ns.Path, "--confirm", "300ms", "--state-dir", state)
	if code != 1 || !strings.Contains(errOut, "previous table is restored") {
		t.Fatalf("unconfirmed apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, _, code := run("firewall", "diff", "--node", "off2", "--netns", ns.Path); code != 0 {
		t.Fatalf("after rollback the table is not off2's:\n%s", out)
	}

	// Confirmed from another command: ovh1's table stays.
	done := make(chan int, 1)
	go func() {
		_, _, code := run("firewall", "apply", "--node", "ovh1", "--netns", ns.Path, "--confirm", "60s", "--state-dir", state)
		done <- code
	}()
	waitFile(t, filepath.Join(state, "firewall.pending"), done)
	if out, errOut, code := run("firewall", "confirm", "--state-dir", state); code != 0 {
		t.Fatalf("confirm: exit %d %s %s", code, out, errOut)
	}
	if code := <-done; code != 0 {
		t.Fatalf("confirmed apply exited %d", code)
	}
	if out, _, code := run("firewall", "diff", "--node", "ovh1", "--netns", ns.Path); code != 0 {
		t.Fatalf("after confirm the table is not ovh1's:\n%s", out)
	}

	// Remove leaves nothing of offedge's.
	if _, _, code := run("firewall", "remove", "--netns", ns.Path); code != 0 {
		t.Fatal("remove failed")
	}
	c, err := firewall.Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read("offedge"); err != firewall.ErrNoTable {
		t.Fatalf("after remove: %v", err)
	}
}

// waitFile waits until path exists, or fails if the command ended first.
func waitFile(t *testing.T, path string, done chan int) {
	t.Helper()
	ended := -1
	testutil.Eventually(t, 30*time.Second, path, func() bool {
		select {
		case ended = <-done:
			return true
		default:
		}
		_, err := os.Stat(path)
		return err == nil
	})
	if ended >= 0 {
		t.Fatalf("apply ended (exit %d) before waiting for confirmation", ended)
	}
}
