package main

import (
	"encoding/json"

	"github.com/offedge/offedge/plan"
)

func cmdPlan(e *env, args []string) error {
	fs := e.newFlags("plan")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node whose plan to print (required)")
	format := fs.String("format", "text", "output format: `text|json`")
	root := fs.String("root", "", "`DIR` prefixed to every file path in the plan")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	path, err := inventoryArg(*inv, pos)
	if err != nil {
		return err
	}
	if *node == "" {
		return usageError("--node is required")
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	m, err := loadInventory(path)
	if err != nil {
		return err
	}
	if err := checkNode(m, *node); err != nil {
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
