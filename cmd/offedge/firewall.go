package main

import (
	"encoding/json"
	"fmt"

	"github.com/offedge/offedge/plan"
)

// cmdFirewall dispatches `offedge firewall plan|diff|apply|confirm|remove`.
func cmdFirewall(e *env, args []string) error {
	if len(args) == 0 {
		return usageError("firewall needs a subcommand: plan, diff, apply, confirm or remove")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "plan":
		return cmdFirewallPlan(e, rest)
	default:
		if fn, ok := firewallLive[sub]; ok {
			return fn(e, rest)
		}
		return usageError("unknown firewall subcommand %q (plan, diff, apply, confirm, remove)", sub)
	}
}

// firewallLive holds the subcommands that talk to the kernel.
var firewallLive = map[string]func(*env, []string) error{}

// firewallPlan compiles node's plan and returns its firewall, or an error
// saying the node has none.
func firewallPlan(inv, node string) (*plan.Firewall, error) {
	m, err := loadInventory(inv)
	if err != nil {
		return nil, err
	}
	p, err := plan.Compile(m, node, plan.Options{})
	if err != nil {
		return nil, err
	}
	if p.Firewall == nil {
		return nil, fmt.Errorf("node %q has no firewall in the inventory; add firewall: {} (and its management access) to the node", node)
	}
	return p.Firewall, nil
}

func cmdFirewallPlan(e *env, args []string) error {
	fs := e.newFlags("firewall plan")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the node whose firewall to print (required)")
	format := fs.String("format", "nft", "output format: nft or json")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	if *node == "" {
		return usageError("--node is required")
	}
	if *format != "nft" && *format != "json" {
		return usageError("--format must be nft or json, not %q", *format)
	}
	fw, err := firewallPlan(*inv, *node)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(fw)
	}
	fmt.Fprintf(e.stdout, "# firewall of %s: table inet %s, input policy %s; each comment names the inventory object\n", *node, fw.Table, fw.Input)
	fmt.Fprintf(e.stdout, "# apply: offedge firewall apply --node %s [--confirm 60s]\n", *node)
	return fw.WriteNft(e.stdout)
}
