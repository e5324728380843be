package main

import (
	"encoding/json"

	"github.com/offedge/offedge/plan"
)

func cmdPlan(e *env, args []string) error {
	fs := e.newFlags("plan")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the node whose plan to print (required)")
	format := fs.String("format", "text", "output format: text or json")
	root := fs.String("root", "", "prefix for every file path in the plan")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	if *node == "" {
		return usageError("--node is required")
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	p, err := plan.Compile(m, *node, plan.Options{Root: *root})
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	return p.WriteText(e.stdout)
}
