package sanoid

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Node is what one host's files say: its sanoid.conf (nil when not given)
// and the syncoid commands it runs.
type Node struct {
	Name   string
	Conf   *Conf
	Syncs  []*Sync
	Probes []Problem // the parsers' problems for this node's files
}

// Importer maps the nodes' files onto the inventory's datasets and
// replicas.
type Importer struct {
	// Model names the nodes behind the hosts of syncoid's remote ends
	// (by name, first label of a hostname, or address); may be nil.
	Model *inventory.Model
	// Hosts names the node behind a host (lower-case), before the model.
	Hosts map[string]string
	// Schedule and MaxLag are written on every replica (syncoid runs
	// after each sanoid run; the files say neither).
	Schedule, MaxLag string
}

// Dataset is one imported dataset of a node.
type Dataset struct {
	Name string
	// From says where it comes from: a sanoid section (file:line) or the
	// replica naming it.
	From string
	// Template and Recursive are the sanoid section's, when it has one.
	Template  string
	Recursive bool
}

// Replica is one imported replica.
type Replica struct {
	Name                   string
	SourceNode, SourcePath string
	TargetNode, TargetPath string
	Recursive              bool
	From                   string // file:line of the syncoid command
	Unmapped               []string
}

// Result is an import: datasets per node, replicas, and the report.
type Result struct {
	Nodes    []string
	Datasets map[string][]*Dataset
	Replicas []*Replica
	Report   []Problem
}

// policy is a dataset's resolved sanoid settings: the section that covers
// it (itself, or the nearest recursive ancestor), its templates' values.
type policy struct {
	sec      *Section
	autosnap bool
	prune    bool
}

func resolve(c *Conf, s *Section) (policy, []Problem) {
	var probs []Problem
	vals := map[string]string{"autosnap": "yes", "autoprune": "yes"} // sanoid.defaults.conf
	apply := func(sec *Section) {
		for _, k := range sec.Keys {
			vals[k] = sec.Vals[k]
		}
	}
	if t, ok := s.Get("use_template"); ok {
		for _, name := range strings.Split(t, ",") {
			name = strings.TrimSpace(name)
			if tp := c.Template(name); tp != nil {
				apply(tp)
			} else {
				probs = append(probs, Problem{c.File, s.Lines["use_template"], fmt.Sprintf("[%s] uses template %q, which %s does not define", s.Name, name, c.File)})
			}
		}
	}
	apply(s)
	as, _ := Yes(vals["autosnap"])
	ap, _ := Yes(vals["autoprune"])
	return policy{sec: s, autosnap: as, prune: ap}, probs
}

// covering returns the section of c that applies to dataset ds: its own,
// or the nearest ancestor's with recursive=yes. process_children_only
// excludes the section's own dataset.
func covering(c *Conf, ds string) *Section {
	if c == nil {
		return nil
	}
	byName := map[string]*Section{}
	for _, s := range c.Datasets() {
		if _, dup := byName[s.Name]; !dup {
			byName[s.Name] = s
		}
	}
	for name, self := ds, true; ; self = false {
		if s := byName[name]; s != nil {
			r, _ := Yes(s.Vals["recursive"])
			only, _ := Yes(s.Vals["process_children_only"])
			if self && !only || !self && r {
				return s
			}
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
}

// sanoid keys the inventory maps (use_template, recursive and
// process_children_only decide what is covered); the retention and
// autosnap keys are sanoid's own policy.
var mappedKeys = map[string]bool{"use_template": true, "recursive": true, "process_children_only": true}
var policyKeys = map[string]bool{
	"frequent_period": true, "frequently": true, "hourly": true, "daily": true, "weekly": true,
	"monthly": true, "yearly": true, "autosnap": true, "autoprune": true,
}

// nodeFor names the node behind a syncoid host.
func (im *Importer) nodeFor(local, host string) (string, bool) {
	h := strings.ToLower(host)
	if n, ok := im.Hosts[h]; ok {
		return n, true
	}
	if im.Model == nil {
		return "", false
	}
	if n := im.Model.Node(h); n != nil {
		return n.Name, true
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		// The address on a network the local node is on (10.0.0.1 is
		// off1 on free-lan and ovh1 on ovh-lan).
		var found []string
		if ln := im.Model.Node(local); ln != nil {
			for _, a := range ln.Addresses {
				if n := im.Model.NodeAt(a.Network, ip); n != nil && !contains(found, n.Name) {
					found = append(found, n.Name)
				}
			}
		}
		if len(found) == 1 {
			return found[0], true
		}
		return "", false
	}
	if first, _, ok := strings.Cut(h, "."); ok {
		if n := im.Model.Node(first); n != nil {
			return n.Name, true
		}
	}
	return "", false
}

// pvesrTarget says the inventory copies into ds on node by Proxmox storage
// replication (ovh3's replicated_volumes template keeps those).
func (im *Importer) pvesrTarget(node, ds string) bool {
	if im.Model == nil {
		return false
	}
	for _, r := range im.Model.Replicas {
		if r.Kind == "pvesr" && r.Target != nil && r.Target.Node == node && r.Target.Path == ds {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Import maps the nodes' files. The report says, with file and line,
// everything not mapped and every dataset named on one side only: a
// replica whose source the source's sanoid.conf does not snapshot
// (syncoid --no-sync-snap then never sends anything new), a target its
// sanoid.conf does not prune, a synced (autosnap = no) section no replica
// writes into, and a snapshotted dataset of a replication source that no
// replica copies (the opf typo of 2023-12-08).
func (im *Importer) Import(nodes []*Node) *Result {
	res := &Result{Datasets: map[string][]*Dataset{}}
	byNode := map[string]*Node{}
	for _, n := range nodes {
		if _, dup := byNode[n.Name]; !dup {
			res.Nodes = append(res.Nodes, n.Name)
		}
		byNode[n.Name] = n
		res.Report = append(res.Report, n.Probes...)
	}
	addDS := func(node string, d *Dataset) {
		for _, x := range res.Datasets[node] {
			if x.Name == d.Name {
				return
			}
		}
		res.Datasets[node] = append(res.Datasets[node], d)
	}
	policies := map[*Section]policy{}
	// Datasets from sanoid.conf, and what of it is not mapped.
	for _, n := range nodes {
		c := n.Conf
		if c == nil {
			continue
		}
		for _, s := range c.Sections {
			var pol []string
			polLine := 0
			for _, k := range s.Keys {
				switch {
				case mappedKeys[k] && !strings.HasPrefix(s.Name, "template_"):
				case policyKeys[k]:
					pol = append(pol, k+"="+s.Vals[k])
					if polLine == 0 {
						polLine = s.Lines[k]
					}
				default:
					res.Report = append(res.Report, Problem{c.File, s.Lines[k], fmt.Sprintf("[%s] %s = %s: not mapped (the inventory has no field for it)", s.Name, k, s.Vals[k])})
				}
			}
			if len(pol) > 0 {
				res.Report = append(res.Report, Problem{c.File, polLine, fmt.Sprintf("[%s] %s: sanoid's snapshot policy, kept in sanoid.conf (not in the inventory)", s.Name, strings.Join(pol, " "))})
			}
			if strings.HasPrefix(s.Name, "template_") {
				continue
			}
			if !validDataset(s.Name) {
				res.Report = append(res.Report, Problem{c.File, s.Line, fmt.Sprintf("[%s] is not a dataset name", s.Name)})
				continue
			}
			p, probs := resolve(c, s)
			res.Report = append(res.Report, probs...)
			policies[s] = p
			r, _ := Yes(s.Vals["recursive"])
			tmpl, _ := s.Get("use_template")
			addDS(n.Name, &Dataset{Name: s.Name, From: fmt.Sprintf("%s:%d", c.File, s.Line), Template: tmpl, Recursive: r})
		}
	}
	// Replicas from the syncoid commands.
	type key struct{ sn, sp, tn, tp string }
	seen := map[key]*Replica{}
	names := map[string]bool{}
	for _, n := range nodes {
		for _, s := range n.Syncs {
			from := fmt.Sprintf("%s:%d", s.File, s.Line)
			srcNode, tgtNode := n.Name, n.Name
			remote := s.Source
			if s.Target.Host != "" {
				remote = s.Target
			}
			if remote.Host == "" {
				res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("both ends are on %s (%s to %s): not a replica between nodes", n.Name, s.Source, s.Target)})
				continue
			}
			other, ok := im.nodeFor(n.Name, remote.Host)
			if !ok {
				res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("no node for host %s: pass --host %s=NODE", remote.Host, remote.Host)})
				continue
			}
			if s.Source.Host != "" {
				srcNode = other
			} else {
				tgtNode = other
			}
			k := key{srcNode, s.Source.Dataset, tgtNode, s.Target.Dataset}
			if first, dup := seen[k]; dup {
				res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("the same copy as %s: imported once", first.From)})
				continue
			}
			r := &Replica{
				SourceNode: srcNode, SourcePath: s.Source.Dataset,
				TargetNode: tgtNode, TargetPath: s.Target.Dataset,
				Recursive: s.Recursive, From: from, Unmapped: s.Unmapped,
			}
			r.Name = replicaName(r, names)
			names[r.Name] = true
			seen[k] = r
			res.Replicas = append(res.Replicas, r)
			for _, u := range s.Unmapped {
				res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("%s: not mapped (how syncoid runs, not what it copies)", u)})
			}
			// The ends are datasets of their nodes (offedge check's OE504
			// then holds the replicas to them).
			addDS(srcNode, &Dataset{Name: r.SourcePath, From: "source of replica " + r.Name})
			addDS(tgtNode, &Dataset{Name: r.TargetPath, From: "target of replica " + r.Name})
			// Named in syncoid, not in sanoid.conf.
			if sn := byNode[srcNode]; sn != nil && sn.Conf != nil {
				cov := covering(sn.Conf, r.SourcePath)
				switch {
				case cov == nil && s.NoSyncSnap:
					res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("%s on %s is in no section of %s and syncoid runs with --no-sync-snap: no snapshot is ever taken for it to send", r.SourcePath, srcNode, sn.Conf.File)})
				case cov == nil:
					res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("%s on %s is in no section of %s: only syncoid's own sync snapshots are sent", r.SourcePath, srcNode, sn.Conf.File)})
				case !policies[cov].autosnap && s.NoSyncSnap:
					res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("%s on %s: its section [%s] (%s:%d) takes no snapshots (autosnap = no) and syncoid runs with --no-sync-snap: nothing new is sent unless another copy brings snapshots", r.SourcePath, srcNode, cov.Name, sn.Conf.File, cov.Line)})
				}
			}
			if tn := byNode[tgtNode]; tn != nil && tn.Conf != nil {
				if cov := covering(tn.Conf, r.TargetPath); cov == nil {
					res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("%s on %s is in no section of %s: the copied snapshots are never pruned there", r.TargetPath, tgtNode, tn.Conf.File)})
				} else if policies[cov].autosnap {
					res.Report = append(res.Report, Problem{s.File, s.Line, fmt.Sprintf("%s on %s: its section [%s] (%s:%d) takes its own snapshots (autosnap = yes) on a replica target; a synced template (autosnap = no) is meant", r.TargetPath, tgtNode, cov.Name, tn.Conf.File, cov.Line)})
				}
			}
		}
	}
	// Named in sanoid.conf, not in syncoid.
	sources := map[string]bool{}
	for _, r := range res.Replicas {
		sources[r.SourceNode] = true
	}
	for _, n := range nodes {
		if n.Conf == nil {
			continue
		}
		for _, s := range n.Conf.Datasets() {
			p, ok := policies[s]
			if !ok {
				continue
			}
			if !p.autosnap {
				if !im.pvesrTarget(n.Name, s.Name) && !coveredBy(res.Replicas, n.Name, s.Name, func(r *Replica) (string, string, bool) { return r.TargetNode, r.TargetPath, r.Recursive }) {
					res.Report = append(res.Report, Problem{n.Conf.File, s.Line, fmt.Sprintf("[%s] keeps synced snapshots (autosnap = no) but no syncoid command copies into it or under it", s.Name)})
				}
				continue
			}
			if sources[n.Name] && !coveredBy(res.Replicas, n.Name, s.Name, func(r *Replica) (string, string, bool) { return r.SourceNode, r.SourcePath, r.Recursive }) {
				res.Report = append(res.Report, Problem{n.Conf.File, s.Line, fmt.Sprintf("[%s] is snapshotted on %s, a replication source, but no syncoid command copies it", s.Name, n.Name)})
			}
		}
	}
	sort.SliceStable(res.Report, func(i, j int) bool {
		a, b := res.Report[i], res.Report[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return res
}

// coveredBy says a replica end (as end returns it) is ds on node, an
// ancestor of it copied recursively, or a descendant of it (the dataset's
// children are copied one by one, as ovh3's guest volumes are).
func coveredBy(rs []*Replica, node, ds string, end func(*Replica) (string, string, bool)) bool {
	for _, r := range rs {
		n, p, rec := end(r)
		if n != node {
			continue
		}
		if p == ds || rec && strings.HasPrefix(ds, p+"/") || strings.HasPrefix(p, ds+"/") {
			return true
		}
	}
	return false
}

// replicaName names a replica after what it copies and where:
// off2's zfs-hdd/off to ovh3 is off-ovh3, a pool copied whole is
// SOURCE-POOL-TARGET (off2-rpool-ovh3). A name already taken gets the
// source's pool, then the source node, then a number.
func replicaName(r *Replica, taken map[string]bool) string {
	pool, rest, _ := strings.Cut(r.SourcePath, "/")
	clean := func(s string) string {
		return strings.Trim(strings.Map(func(c rune) rune {
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
				return c
			}
			if c >= 'A' && c <= 'Z' {
				return c + 'a' - 'A'
			}
			return '-'
		}, s), "-")
	}
	var cands []string
	if rest == "" {
		cands = append(cands, clean(r.SourceNode+"-"+pool+"-"+r.TargetNode))
	} else {
		cands = append(cands,
			clean(rest+"-"+r.TargetNode),
			clean(pool+"-"+rest+"-"+r.TargetNode),
			clean(r.SourceNode+"-"+pool+"-"+rest+"-"+r.TargetNode))
	}
	for _, c := range cands {
		if !taken[c] {
			return c
		}
	}
	for i := 2; ; i++ {
		if c := fmt.Sprintf("%s-%d", cands[len(cands)-1], i); !taken[c] {
			return c
		}
	}
}
