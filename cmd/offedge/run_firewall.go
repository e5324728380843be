package main

import (
	"fmt"
	"log/slog"

	"github.com/offedge/offedge/firewall"
	"github.com/offedge/offedge/plan"
)

// runFirewall is `offedge run --firewall`: the node's table applied at
// start and on every accepted reload, with the same code as `offedge
// firewall apply`.
type runFirewall struct {
	conn   *firewall.Conn
	remove bool
	log    *slog.Logger
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
