package main

import (
	"fmt"
	"strings"

	"github.com/offedge/offedge/interop/sanoid"
)

// importSanoid turns sanoid.conf files and syncoid invocations (args files
// or systemd units) into the inventory's datasets and replicas
// (docs/storage.md#importing-sanoid-and-syncoid). Each PATH belongs to a
// node: NODE=PATH, or PATH alone with --node. The report lists every line
// not mapped and every dataset named on one side only.
func importSanoid(e *env, inv, node, schedule, maxLag, out, report string, hosts hostMap, args []string) error {
	if len(args) == 0 {
		return usageError("offedge import sanoid [NODE=]PATH... [--node NAME]: name each host's sanoid directory or files")
	}
	m, err := loadInventory(inv)
	if err != nil {
		return err
	}
	var nodes []*sanoid.Node
	byName := map[string]*sanoid.Node{}
	for _, a := range args {
		name, path, ok := strings.Cut(a, "=")
		if !ok {
			name, path = node, a
		}
		if name == "" {
			return usageError("%s: whose files? write NODE=%s or pass --node", a, a)
		}
		if err := checkNode(m, name); err != nil {
			return err
		}
		n := byName[name]
		if n == nil {
			n = &sanoid.Node{Name: name}
			byName[name] = n
			nodes = append(nodes, n)
		}
		if err := sanoid.Load(n, path); err != nil {
			return err
		}
	}
	im := &sanoid.Importer{Model: m, Hosts: hosts, Schedule: schedule, MaxLag: maxLag}
	res := im.Import(nodes)
	if err := writeTo(out, e.stdout, []byte(res.YAML(im))); err != nil {
		return err
	}
	if err := writeTo(report, e.stderr, []byte(res.ReportText())); err != nil {
		return err
	}
	if len(res.Report) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d line(s) in the report to review: not mapped, or named on one side only", len(res.Report))}
	}
	return nil
}
