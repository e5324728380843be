package sanoid

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Load reads one node's files: a directory (its sanoid.conf and
// syncoid-args.conf, whichever exist), a systemd unit (*.service,
// *.timer, or a file in a *.d drop-in directory), a file whose name holds
// "syncoid" (an args file), or a sanoid.conf.
func Load(n *Node, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		found := false
		for _, name := range []string{"sanoid.conf", "syncoid-args.conf"} {
			p := filepath.Join(path, name)
			if _, err := os.Stat(p); err == nil {
				found = true
				if err := Load(n, p); err != nil {
					return err
				}
			}
		}
		if !found {
			return fmt.Errorf("%s: no sanoid.conf or syncoid-args.conf in it", path)
		}
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	base := filepath.Base(path)
	switch {
	case strings.HasSuffix(base, ".service") || strings.HasSuffix(base, ".timer") || strings.HasSuffix(filepath.Dir(path), ".d"):
		s, p, err := ParseUnit(path, f)
		n.Syncs, n.Probes = append(n.Syncs, s...), append(n.Probes, p...)
		return err
	case strings.Contains(base, "syncoid"):
		s, p, err := ParseArgsFile(path, f)
		n.Syncs, n.Probes = append(n.Syncs, s...), append(n.Probes, p...)
		return err
	}
	if n.Conf != nil {
		return fmt.Errorf("%s: a second sanoid.conf for %s (the first is %s)", path, n.Name, n.Conf.File)
	}
	c, err := ParseConf(path, f)
	if err != nil {
		return err
	}
	n.Conf, n.Probes = c, append(n.Probes, c.Problems...)
	return nil
}

// YAML writes the result as inventory YAML: for each node the datasets to
// put under its server's storage:, then the replicas (a replicas: list an
// inventory.d file can hold as is).
func (r *Result) YAML(im *Importer) string {
	var b strings.Builder
	b.WriteString("# Imported by offedge import sanoid. Review every line; the report lists what is not mapped.\n")
	for _, node := range r.Nodes {
		ds := r.Datasets[node]
		if len(ds) == 0 {
			continue
		}
		fmt.Fprintf(&b, "#\n# Under the server %s (servers: - name: %s):\n#   storage:\n#     datasets:\n", node, node)
		for _, d := range ds {
			desc := "replica end"
			if d.Template != "" {
				desc = "sanoid " + d.Template
				if d.Recursive {
					desc += ", recursive"
				}
			}
			fmt.Fprintf(&b, "#       - {name: %s, description: %s}  # %s\n", d.Name, strconv.Quote(desc), d.From)
		}
	}
	// Datasets of nodes with no file given (remote ends) too.
	for node, ds := range r.Datasets {
		if contains(r.Nodes, node) {
			continue
		}
		fmt.Fprintf(&b, "#\n# Under the server %s (its files were not given):\n#   storage:\n#     datasets:\n", node)
		for _, d := range ds {
			fmt.Fprintf(&b, "#       - {name: %s}  # %s\n", d.Name, d.From)
		}
	}
	if len(r.Replicas) == 0 {
		b.WriteString("replicas: []\n")
		return b.String()
	}
	b.WriteString("replicas:\n")
	for _, rp := range r.Replicas {
		fmt.Fprintf(&b, "  - name: %s  # %s\n    kind: zfs\n", rp.Name, rp.From)
		fmt.Fprintf(&b, "    source: {node: %s, path: %s}\n", rp.SourceNode, rp.SourcePath)
		fmt.Fprintf(&b, "    target: {node: %s, path: %s}\n", rp.TargetNode, rp.TargetPath)
		if rp.Recursive {
			b.WriteString("    recursive: true\n")
		}
		if im.Schedule != "" {
			fmt.Fprintf(&b, "    schedule: %s\n", im.Schedule)
		}
		if im.MaxLag != "" {
			fmt.Fprintf(&b, "    max_lag: %s\n", im.MaxLag)
		}
	}
	return b.String()
}

// ReportText is the report, one problem a line.
func (r *Result) ReportText() string {
	var b strings.Builder
	for _, p := range r.Report {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}
