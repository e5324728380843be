package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/firewall"
	"github.com/offedge/offedge/plan"
)

// runFirewall is `offedge run --firewall`: the node's table applied at
// start and on every accepted reload, with the same code as `offedge
// firewall apply`.
type runFirewall struct {
	mu     sync.Mutex // one netlink conversation at a time: apply, ban export
	conn   *firewall.Conn
	remove bool
	log    *slog.Logger
	// exported are the bans written to the table's ban sets.
	exported map[netip.Prefix]bool
}

// exportBans writes the node's bans to the firewall's ban sets (ban4,
// ban6): the kernel then drops a banned client's packets before offedge
// sees them; offedge's accept still refuses it when the export fails. Called
// by the ban list after every change, with every ban in force.
func (f *runFirewall) exportBans(bans []protect.Ban) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exported == nil {
		f.exported = map[netip.Prefix]bool{}
	}
	now := time.Now()
	inForce := map[netip.Prefix]bool{}
	for _, b := range bans {
		inForce[b.Prefix] = true
		if f.exported[b.Prefix] {
			continue
		}
		var d time.Duration
		if !b.Until.IsZero() {
			if d = b.Until.Sub(now); d <= 0 {
				continue
			}
		}
		if err := f.conn.Ban(plan.FirewallTable, b.Prefix, d); err != nil {
			f.log.Error("exporting a ban to the firewall", "prefix", b.Prefix.String(), "err", err)
			continue
		}
		f.exported[b.Prefix] = true
	}
	for p := range f.exported {
		if inForce[p] {
			continue
		}
		delete(f.exported, p)
		// An expired ban has left the set by its own timeout already.
		if err := f.conn.Unban(plan.FirewallTable, p); err != nil {
			f.log.Debug("lifting a ban from the firewall", "prefix", p.String(), "err", err)
		}
	}
}

// startFirewall applies p's firewall; it is nil when --firewall is off.
func startFirewall(enabled, remove bool, nsPath string, p *plan.Plan, log *slog.Logger) (*runFirewall, error) {
	if !enabled {
		return nil, nil
	}
	if p.Firewall == nil {
		return nil, fmt.Errorf("--firewall: node %q has no firewall in the inventory; add firewall: {} and its management access", p.Node)
	}
	c, err := openFirewall(nsPath)
	if err != nil {
		return nil, err
	}
	f := &runFirewall{conn: c, remove: remove, log: log}
	if err := f.apply(p); err != nil {
		c.Close()
		return nil, err
	}
	return f, nil
}

// apply installs p's firewall (one atomic batch: on error the previous
// table stays).
func (f *runFirewall) apply(p *plan.Plan) error {
	if f == nil {
		return nil
	}
	if p.Firewall == nil {
		return fmt.Errorf("node %q no longer has a firewall in the inventory; the table stays as it was (offedge firewall remove deletes it)", p.Node)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.conn.Apply(p.Firewall); err != nil {
		return err
	}
	rules := 0
	for _, c := range p.Firewall.Chains {
		rules += len(c.Rules)
	}
	f.log.Info("firewall applied", "table", "inet "+p.Firewall.Table, "rules", rules, "input", p.Firewall.Input)
	return nil
}

// stop leaves the table in place (the node stays protected while offedge
// is down), or removes it when asked.
func (f *runFirewall) stop() {
	if f == nil {
		return
	}
	defer f.conn.Close()
	if !f.remove {
		f.log.Info("firewall left in place", "table", "inet "+plan.FirewallTable)
		return
	}
	if err := f.conn.Remove(plan.FirewallTable); err != nil {
		f.log.Error("removing the firewall", "err", err)
		return
	}
	f.log.Info("firewall removed", "table", "inet "+plan.FirewallTable)
}
