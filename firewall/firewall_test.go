package firewall

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

func exampleFirewalls(t *testing.T) map[string]*plan.Firewall {
	t.Helper()
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*plan.Firewall{}
	for _, n := range m.Nodes {
		p, err := plan.Compile(m, n.Name, plan.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Firewall == nil {
			t.Fatalf("node %s has no firewall in the example", n.Name)
		}
		out[n.Name] = p.Firewall
	}
	return out
}

func open(t *testing.T, ns *netns.NS) *Conn {
	t.Helper()
	c, err := Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func nftList(t *testing.T, ns *netns.NS, what ...string) string {
	t.Helper()
	nft := testutil.RequireBinary(t, "nft")
	out, err := ns.Run(nft, append([]string{"list"}, what...)...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestApplyIsWhatNftLoads: for every node of the example, the table applied
// through netlink reads back (with nft) exactly as the rendered plan does
// when nft itself loads it, and offedge reads it back as planned.
func TestApplyIsWhatNftLoads(t *testing.T) {
	nft := testutil.RequireBinary(t, "nft")
	viaNetlink := testutil.Netns(t, "oefw-a")
	viaNft := testutil.Netns(t, "oefw-b")
	c := open(t, viaNetlink)
	for node, fw := range exampleFirewalls(t) {
		t.Run(node, func(t *testing.T) {
			if err := c.Apply(fw); err != nil {
				t.Fatal(err)
			}
			var script bytes.Buffer
			if err := fw.WriteNft(&script); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), node+".nft")
			// nft loads the rendered text into an empty table of its own.
			text := "table inet offedge\ndelete table inet offedge\n" + script.String()
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := viaNft.Run(nft, "-f", file); err != nil {
				t.Fatalf("nft refuses the rendered plan: %v", err)
			}
			got, want := nftList(t, viaNetlink, "table", "inet", "offedge"), nftList(t, viaNft, "table", "inet", "offedge")
			if got != want {
				t.Fatalf("netlink apply differs from nft -f of the plan:\n%s", strings.Join(diffLines(want, got), "\n"))
			}
			live, err := c.Read("offedge")
			if err != nil {
				t.Fatal(err)
			}
			if len(live.Foreign) > 0 {
				t.Fatalf("own rules read back as foreign: %+v", live.Foreign)
			}
			if d, ok := Diff(fw, live); !ok {
				t.Fatalf("diff right after apply:\n%s", d)
			}
		})
	}
}

func diffLines(want, got string) []string {
	var out []string
	for _, op := range lineDiff(strings.Split(want, "\n"), strings.Split(got, "\n")) {
		if op.kind != ' ' {
			out = append(out, string(op.kind)+" "+op.line)
		}
	}
	return out
}

// TestForeignTablesUntouched: a table another tool owns (fail2ban's) keeps
// its chain and rule through apply, re-apply and remove.
func TestForeignTablesUntouched(t *testing.T) {
	ns := testutil.Netns(t, "oefw-f")
	c := open(t, ns)
	foreign := &nftables.Table{Family: nftables.TableFamilyINet, Name: "fail2ban"}
	c.nft.AddTable(foreign)
	ch := c.nft.AddChain(&nftables.Chain{Name: "f2b-chain", Table: foreign, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(-1)})
	c.nft.AddRule(&nftables.Rule{Table: foreign, Chain: ch, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	if err := c.nft.Flush(); err != nil {
		t.Fatal(err)
	}
	before := nftList(t, ns, "table", "inet", "fail2ban")
	fws := exampleFirewalls(t)
	for _, step := range []func() error{
		func() error { return c.Apply(fws["off2"]) },
		func() error { return c.Apply(fws["ovh1"]) },
		func() error { return c.Remove("offedge") },
		func() error { return c.Remove("offedge") }, // removing twice is fine
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if got := nftList(t, ns, "table", "inet", "fail2ban"); got != before {
			t.Fatalf("table inet fail2ban changed:\n%s\nwant:\n%s", got, before)
		}
	}
	if _, err := c.Read("offedge"); !errors.Is(err, ErrNoTable) {
		t.Fatalf("after remove: %v, want ErrNoTable", err)
	}
}

// TestRefusedApplyChangesNothing: a ruleset the kernel refuses leaves the
// applied one in place (one transaction).
func TestRefusedApplyChangesNothing(t *testing.T) {
	ns := testutil.Netns(t, "oefw-r")
	c := open(t, ns)
	fws := exampleFirewalls(t)
	if err := c.Apply(fws["off2"]); err != nil {
		t.Fatal(err)
	}
	before := nftList(t, ns, "table", "inet", "offedge")
	bad := *fws["ovh1"]
	bad.Chains = append([]plan.FirewallChain(nil), bad.Chains...)
	in := bad.Chains[0]
	in.Rules = append(append([]plan.FirewallRule(nil), in.Rules...), plan.FirewallRule{Family: 4, SrcSet: "no-such-set", L4Proto: "tcp", DPort: 1, Verdict: "accept", From: "broken"})
	bad.Chains[0] = in
	if err := c.Apply(&bad); err == nil {
		t.Fatal("apply of a rule naming a missing set succeeded")
	}
	if got := nftList(t, ns, "table", "inet", "offedge"); got != before {
		t.Fatal("a refused apply changed the table")
	}
}

// TestBansSurviveApply: what other work put in the ban sets stays when a
// new ruleset is applied.
func TestBansSurviveApply(t *testing.T) {
	ns := testutil.Netns(t, "oefw-b")
	c := open(t, ns)
	fws := exampleFirewalls(t)
	if err := c.Apply(fws["ovh-proxy"]); err != nil {
		t.Fatal(err)
	}
	if err := c.Ban("offedge", netip.MustParsePrefix("198.51.100.77/32"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Ban("offedge", netip.MustParsePrefix("2001:db8:bad::/48"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(fws["ovh-proxy"]); err != nil {
		t.Fatal(err)
	}
	live, err := c.Read("offedge")
	if err != nil {
		t.Fatal(err)
	}
	if live.Banned[plan.BanSet4] != 1 || live.Banned[plan.BanSet6] != 1 {
		t.Fatalf("bans after re-apply: %v, want one in each set", live.Banned)
	}
	sets := nftList(t, ns, "set", "inet", "offedge", plan.BanSet6)
	if !strings.Contains(sets, "2001:db8:bad::/48 timeout") {
		t.Fatalf("ban6 lost its element or its timeout:\n%s", sets)
	}
	if d, ok := Diff(fws["ovh-proxy"], live); !ok {
		t.Fatalf("bans show in the diff:\n%s", d)
	}
}

// TestDiffShowsDrift: a live table that differs from the plan is reported
// line by line, and a hand-added rule offedge does not write is named.
func TestDiffShowsDrift(t *testing.T) {
	ns := testutil.Netns(t, "oefw-d")
	c := open(t, ns)
	fws := exampleFirewalls(t)
	if _, err := c.Read("offedge"); !errors.Is(err, ErrNoTable) {
		t.Fatalf("fresh namespace: %v", err)
	}
	d, ok := Diff(fws["off2"], nil)
	if ok || !strings.Contains(d, "no table inet offedge") || !strings.Contains(d, "+ \t\tip daddr 10.0.0.2 tcp dport 6379") {
		t.Fatalf("diff against nothing:\n%s", d)
	}
	if err := c.Apply(fws["off1"]); err != nil {
		t.Fatal(err)
	}
	// Someone adds a counter rule by hand.
	tb := &nftables.Table{Family: nftables.TableFamilyINet, Name: "offedge"}
	c.nft.AddRule(&nftables.Rule{Table: tb, Chain: &nftables.Chain{Name: "input", Table: tb}, Exprs: []expr.Any{&expr.Counter{}}})
	if err := c.nft.Flush(); err != nil {
		t.Fatal(err)
	}
	live, err := c.Read("offedge")
	if err != nil {
		t.Fatal(err)
	}
	if len(live.Foreign) != 1 {
		t.Fatalf("foreign rules: %+v, want the counter", live.Foreign)
	}
	d, ok = Diff(fws["off2"], live)
	if ok {
		t.Fatal("off1's table is in sync with off2's plan")
	}
	for _, want := range []string{"- \t\t# rule handle", "not written by offedge", "+ \t\tip daddr 10.0.0.2 tcp dport 6379"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if _, err := c.Snapshot("offedge"); err == nil {
		t.Fatal("snapshot of a table with a hand-written rule succeeded; rollback could not restore it")
	}
}
