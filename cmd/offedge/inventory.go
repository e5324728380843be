package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/suggest"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// inventoryFlag adds the --inventory flag every command shares.
func inventoryFlag(fs *flag.FlagSet) *string {
	p := fs.String("inventory", "", "inventory `PATH`: a file, or a directory holding inventory.yaml (default: the embedded Open Food Facts inventory)")
	fs.StringVar(p, "i", "", "shorthand for --inventory")
	return p
}

// inventoryArg is the inventory of a command that also takes it as its one
// positional argument (check, plan, graph): `offedge check FILE` must check
// FILE, never the embedded inventory. Two different inventories, or more
// arguments, are refused.
func inventoryArg(flagValue string, pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return flagValue, nil
	case len(pos) > 1:
		return "", usageError("unexpected argument %q: give one inventory", pos[1])
	case flagValue != "" && flagValue != pos[0]:
		return "", usageError("two inventories given: --inventory %s and %s", flagValue, pos[0])
	}
	return pos[0], nil
}

// loadInventory loads the inventory at path, or the embedded example.
func loadInventory(path string) (*inventory.Model, error) {
	if path == "" {
		return inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	}
	return inventory.LoadPath(path)
}

// nodeNames lists the model's node names, sorted.
func nodeNames(m *inventory.Model) []string {
	names := make([]string, 0, len(m.Nodes))
	for _, n := range m.Nodes {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return names
}

// checkNode refuses a node name the inventory does not have, as a usage
// error with the nearest name, the way why and impact do.
func checkNode(m *inventory.Model, name string) error {
	if m.Node(name) != nil {
		return nil
	}
	if s := suggest.Closest(name, nodeNames(m), 2); s != "" {
		return usageError("unknown node %q (did you mean %q?)", name, s)
	}
	names := nodeNames(m)
	more := ""
	if len(names) > 12 {
		names, more = names[:12], fmt.Sprintf(" and %d more", len(m.Nodes)-12)
	}
	return usageError("unknown node %q (the inventory's nodes: %s%s)", name, strings.Join(names, ", "), more)
}

// nodePlan loads the inventory at path, refuses a node it does not have
// (with a suggestion) and compiles the node's plan: what plan, secrets init
// and export stunnel start from.
func nodePlan(path, node string, opts plan.Options) (*inventory.Model, *plan.Plan, error) {
	m, err := loadInventory(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkNode(m, node); err != nil {
		return nil, nil, err
	}
	p, err := plan.Compile(m, node, opts)
	if err != nil {
		return nil, nil, err
	}
	return m, p, nil
}

// cmdNodes prints the node names, one a line, for the completion scripts.
func cmdNodes(e *env, args []string) error {
	fs := e.newFlags("__nodes")
	inv := inventoryFlag(fs)
	if err := e.parseNone(fs, args); err != nil {
		return err
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	for _, n := range nodeNames(m) {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}
