package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/offedge/offedge/firewall"
	"github.com/offedge/offedge/plan"
)

func init() {
	firewallLive["diff"] = cmdFirewallDiff
	firewallLive["apply"] = cmdFirewallApply
	firewallLive["confirm"] = cmdFirewallConfirm
	firewallLive["remove"] = cmdFirewallRemove
}

// defaultStateDir holds the pending-confirmation file of `apply --confirm`.
const defaultStateDir = "/run/offedge"

func openFirewall(nsPath string) (*firewall.Conn, error) {
	c, err := firewall.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("%w (offedge firewall needs root, or CAP_NET_ADMIN)", err)
	}
	return c, nil
}

// liveTarget is what diff and apply act on: a node's planned firewall and
// the namespace whose kernel holds it.
type liveTarget struct{ inv, node, ns *string }

func liveFlags(fs *flag.FlagSet) liveTarget {
	return liveTarget{
		inv:  inventoryFlag(fs),
		node: fs.String("node", "", "the node whose firewall it is (required)"),
		ns:   fs.String("netns", "", "network namespace, as a path such as /run/netns/NAME (default: this one)"),
	}
}

// open compiles the node's firewall and connects to the namespace.
func (t liveTarget) open() (*plan.Firewall, *firewall.Conn, error) {
	if *t.node == "" {
		return nil, nil, usageError("--node is required")
	}
	fw, err := firewallPlan(*t.inv, *t.node)
	if err != nil {
		return nil, nil, err
	}
	c, err := openFirewall(*t.ns)
	if err != nil {
		return nil, nil, err
	}
	return fw, c, nil
}

func cmdFirewallDiff(e *env, args []string) error {
	fs := e.newFlags("firewall diff")
	t := liveFlags(fs)
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	fw, c, err := t.open()
	if err != nil {
		return err
	}
	defer c.Close()
	node := t.node
	live, err := c.Read(fw.Table)
	if err != nil && !errors.Is(err, firewall.ErrNoTable) {
		return err
	}
	d, ok := firewall.Diff(fw, live)
	if ok {
		fmt.Fprintf(e.stdout, "table inet %s is as planned for %s\n", fw.Table, *node)
		return nil
	}
	io.WriteString(e.stdout, d)
	return &exitError{code: 1}
}

func cmdFirewallRemove(e *env, args []string) error {
	fs := e.newFlags("firewall remove")
	ns := fs.String("netns", "", "network namespace (default: this one)")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	c, err := openFirewall(*ns)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Remove(plan.FirewallTable); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "table inet %s removed (other tables untouched)\n", plan.FirewallTable)
	return nil
}

func pendingFile(dir string) string   { return filepath.Join(dir, "firewall.pending") }
func confirmedFile(dir string) string { return filepath.Join(dir, "firewall.confirmed") }

func cmdFirewallApply(e *env, args []string) error {
	fs := e.newFlags("firewall apply")
	t := liveFlags(fs)
	node := t.node
	confirm := fs.Duration("confirm", 0, "roll back unless confirmed within this time (offedge firewall confirm, or yes on stdin)")
	state := fs.String("state-dir", defaultStateDir, "where --confirm keeps its pending file")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	if *confirm < 0 {
		return usageError("--confirm must be positive")
	}
	fw, c, err := t.open()
	if err != nil {
		return err
	}
	defer c.Close()
	if *confirm == 0 {
		if err := c.Apply(fw); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "applied table inet %s for %s\n", fw.Table, *node)
		return nil
	}
	snap, err := c.Snapshot(fw.Table)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*state, 0o700); err != nil {
		return err
	}
	os.Remove(confirmedFile(*state))
	if err := os.WriteFile(pendingFile(*state), []byte(fmt.Sprintf("%d %s\n", os.Getpid(), *node)), 0o600); err != nil {
		return err
	}
	defer os.Remove(pendingFile(*state))
	if err := c.Apply(fw); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "applied table inet %s for %s; it is rolled back in %s unless confirmed:\n", fw.Table, *node, *confirm)
	fmt.Fprintf(e.stdout, "  from a NEW connection to the node: offedge firewall confirm --state-dir %s\n  or type yes here\n", *state)
	ok := waitConfirm(*state, *confirm)
	os.Remove(confirmedFile(*state))
	if ok {
		fmt.Fprintln(e.stdout, "confirmed; keeping the new ruleset")
		return nil
	}
	if err := c.Restore(snap); err != nil {
		return fmt.Errorf("not confirmed, and rolling back failed: %w", err)
	}
	return &exitError{code: 1, err: fmt.Errorf("not confirmed within %s: the previous table is restored", *confirm)}
}

// waitConfirm waits for `offedge firewall confirm` (the confirmed file) or
// "yes" on stdin, until timeout or an interrupt.
func waitConfirm(dir string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	yes := make(chan struct{}, 1)
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				if a := strings.ToLower(strings.TrimSpace(sc.Text())); a == "yes" || a == "y" {
					yes <- struct{}{}
					return
				}
			}
		}()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(confirmedFile(dir)); err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-yes:
			return true
		case <-tick.C:
		}
	}
}

func cmdFirewallConfirm(e *env, args []string) error {
	fs := e.newFlags("firewall confirm")
	state := fs.String("state-dir", defaultStateDir, "the --state-dir of the pending apply")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	b, err := os.ReadFile(pendingFile(*state))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no firewall apply is waiting for confirmation (no %s)", pendingFile(*state))
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(confirmedFile(*state), nil, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "confirmed the pending apply (%s)\n", strings.TrimSpace(string(b)))
	return nil
}
