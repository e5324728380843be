package check

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// Firewall rules (6xx): what applying a node's firewall would do to the
// people administering it and to what it should protect.
var firewallRules = []checker{
	{
		Rule: Rule{
			ID:       "OE601",
			Title:    "firewall would lock the operators out",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A firewall that drops what the inventory does not declare also drops ssh, the Proxmox UI and IPMI unless the inventory declares them: applying it from a remote session cuts that session and every later one, and the way back is the provider's rescue console. Open Food Facts administers its servers over ssh (the PMG UI through an ssh tunnel to ovh1, docs/mail.md) and reboots Free's servers through IPMI (docs/free-datacenter.md). So every node with a firewall declares its management access, and check evaluates the rendered ruleset: each management source must be admitted on each of the node's addresses of its family. A management allow list that resolves to nobody counts as none.`,
			Example: `servers:
  - name: db
    provider: p
    firewall: {}          # input: drop, and no management: nobody gets in
    addresses:
      - {network: internet, ip: 192.0.2.10}`,
		},
		run: checkLockout,
	},
	{
		Rule: Rule{
			ID:       "OE602",
			Title:    "node open to the internet by omission",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `With input: accept, a firewall filters only what the inventory declares; everything else a node happens to listen on (a database bound to 0.0.0.0 after an upgrade, a debug port, docker's published ports) is open. On a node with a public address that is the internet: the MongoDB ransomed in 2024-01 was reachable because nothing closed what nobody meant to open (docs/reports/2024-01-04-setting-up-stunnel.md). Use input: drop (the default) and declare what must be reachable.`,
			Example: `servers:
  - name: web
    provider: p
    firewall: {input: accept}
    management: [{name: ssh, allow: [192.0.2.0/28]}]
    addresses:
      - {network: internet, ip: 192.0.2.10}`,
		},
		run: checkOpenByOmission,
	},
	{
		Rule: Rule{
			ID:       "OE603",
			Title:    "public node left out of the firewall",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `Once an inventory gives nodes firewalls, a node with a public address and services but no firewall: is the one whose allow lists nothing enforces: they are checked and explained, yet its services answer whoever reaches them, as off2's Redis answered docker-prod and ovh3 in the lab before the firewall existed. Give it firewall: {} and its management access, or say why not with a suppression.`,
			Example: `servers:
  - name: db
    provider: p
    addresses:
      - {network: internet, ip: 192.0.2.10}
services:
  - {name: redis, node: db, port: 6379, protocol: redis, allow: [app]}
# and another node has firewall: {}`,
		},
		run: checkLeftOut,
	},
}

// managementSources resolves a management entry's allow list as the
// firewall does: on every network of the node.
func managementSources(m *inventory.Model, n *inventory.Node, mg *inventory.Management) (srcs []inventory.Source, anyone bool) {
	seen := map[string]bool{}
	for _, a := range n.Addresses {
		if seen[a.Network] {
			continue
		}
		seen[a.Network] = true
		res := m.ResolveAllow(mg.Allow, a.Network)
		anyone = anyone || res.Any
		srcs = append(srcs, res.Sources...)
	}
	return srcs, anyone
}

func checkLockout(p *pass) {
	for _, n := range p.m.Nodes {
		if n.Firewall == nil {
			continue
		}
		var inband []*inventory.Management
		for _, mg := range n.Management {
			if !mg.OutOfBand(n) {
				inband = append(inband, mg)
			}
		}
		if len(inband) == 0 {
			if n.Firewall.InputPolicy() == "drop" {
				p.report(n.Firewall.Pos, nodeObject(n), nil,
					"firewall drops everything the inventory does not declare, and %s declares no management access reaching it: applying it would lock the operators out; add management: [{name: ssh, allow: [...]}]", n.Name)
			}
			continue
		}
		pl, err := plan.Compile(p.m, n.Name, plan.Options{})
		if err != nil || pl.Firewall == nil {
			continue // other rules report why the plan does not compile
		}
		for _, mg := range inband {
			obj := fmt.Sprintf("%s: management %q", nodeObject(n), mg.Name)
			srcs, anyone := managementSources(p.m, n, mg)
			if anyone {
				continue
			}
			if len(srcs) == 0 {
				p.report(mg.Pos, obj, nil, "allow %s admits no address on any network of %s: nobody could administer it through its firewall", listText(mg.Allow), n.Name)
				continue
			}
			var blocked []string
			reachable := false
			for _, s := range srcs {
				for _, a := range n.Addresses {
					if a.IP.Is4() != s.Prefix.Addr().Is4() {
						continue
					}
					reachable = true
					ok, rule := pl.Firewall.Decide(plan.Packet{Src: s.Prefix.Addr(), Dst: a.IP, Proto: mg.Transport(), Port: uint16(mg.DefaultPort())})
					if !ok {
						by := "the input policy"
						if rule != nil {
							by = fmt.Sprintf("rule %q", rule.Nft())
						}
						blocked = append(blocked, fmt.Sprintf("%s (%s) to %s by %s", s.Prefix, s.From, a.IP, by))
					}
				}
			}
			switch {
			case !reachable:
				p.report(mg.Pos, obj, nil, "allow %s admits only addresses of a family %s has none of", listText(mg.Allow), n.Name)
			case len(blocked) > 0:
				p.report(mg.Pos, obj, nil, "the firewall would drop %s port %d from %s", mg.Transport(), mg.DefaultPort(), strings.Join(blocked, "; "))
			}
		}
	}
}

func publicAddr(m *inventory.Model, n *inventory.Node) (netip.Addr, bool) {
	for _, a := range n.Addresses {
		if m.IsPublic(a.Network) {
			return a.IP, true
		}
	}
	return netip.Addr{}, false
}

func checkOpenByOmission(p *pass) {
	for _, n := range p.m.Nodes {
		if n.Firewall == nil || n.Firewall.InputPolicy() != "accept" {
			continue
		}
		if ip, ok := publicAddr(p.m, n); ok {
			p.report(n.Firewall.Pos, nodeObject(n), nil,
				"firewall input: accept on a node with public address %s: every port the inventory does not declare is open to the internet; use input: drop (the default) and declare what must be reachable", ip)
		}
	}
}

func checkLeftOut(p *pass) {
	using := false
	for _, n := range p.m.Nodes {
		using = using || n.Firewall != nil
	}
	if !using {
		return
	}
	for _, n := range p.m.Nodes {
		if n.Firewall != nil {
			continue
		}
		ip, ok := publicAddr(p.m, n)
		if !ok {
			continue
		}
		var open []string
		for _, s := range p.m.Services {
			if s.Node != n.Name || s.Loopback {
				continue
			}
			exposed := len(s.Bind) == 0
			for _, b := range s.Bind {
				exposed = exposed || p.m.IsPublic(b)
			}
			if exposed {
				open = append(open, fmt.Sprintf("%s (port %d)", s.Name, s.Port))
			}
		}
		if len(open) > 0 {
			p.report(n.Pos, nodeObject(n), nil,
				"has public address %s and no firewall, so nothing enforces the allow lists of %s while other nodes have firewalls; add firewall: {} and its management access", ip, strings.Join(open, ", "))
		}
	}
}
