package sanoid

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
)

const srcConf = `# the source
[zfs-hdd/opf]
  use_template=data
  recursive=yes
[zfs-hdd/off]
  use_template=data
  recursive=yes
[template_data]
  hourly = 36
  autosnap = yes
  post_snapshot_script = /x.sh
`

const tgtConf = `[rpool/off]
  use_template=synced
  recursive=yes
[rpool/opf]
  use_template=synced
  recursive=yes
[rpool/off]
  use_template=synced
[template_synced]
  autosnap = no
`

// A typo in the dataset name (opff for opf, 2023-12-08) is reported from
// both sides: syncoid copies a dataset sanoid does not snapshot, and
// sanoid's opf is copied by nobody; the synced target section into which
// nothing is copied is reported too.
func TestImportReportsOneSidedDatasets(t *testing.T) {
	src, err := ParseConf("src/sanoid.conf", strings.NewReader(srcConf))
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := ParseConf("tgt/sanoid.conf", strings.NewReader(tgtConf))
	if err != nil {
		t.Fatal(err)
	}
	args := "# pulls\n" +
		"--no-sync-snap --recursive op@src.example.org:zfs-hdd/off rpool/off\n" +
		"--no-sync-snap --recursive --sshoption=ProxyJump=x op@src.example.org:zfs-hdd/opff rpool/opf\n" +
		"  # indented\n" +
		"--no-sync-snap --recursive op@src.example.org:zfs-hdd/off rpool/off\n" +
		"only-one-arg\n"
	syncs, probs, err := ParseArgsFile("tgt/syncoid-args.conf", strings.NewReader(args))
	if err != nil {
		t.Fatal(err)
	}
	if len(syncs) != 3 || !syncs[0].Recursive || !syncs[0].NoSyncSnap || syncs[0].Source != (End{"op", "src.example.org", "zfs-hdd/off"}) || syncs[0].Target != (End{Dataset: "rpool/off"}) {
		t.Fatalf("syncs %+v", syncs)
	}
	im := &Importer{Hosts: map[string]string{"src.example.org": "src"}, Schedule: "15m", MaxLag: "7h"}
	res := im.Import([]*Node{
		{Name: "src", Conf: src, Probes: src.Problems},
		{Name: "tgt", Conf: tgt, Syncs: syncs, Probes: append(tgt.Problems, probs...)},
	})
	rep := res.ReportText()
	for _, want := range []string{
		"tgt/syncoid-args.conf:3: zfs-hdd/opff on src is in no section of src/sanoid.conf and syncoid runs with --no-sync-snap",
		"src/sanoid.conf:2: [zfs-hdd/opf] is snapshotted on src, a replication source, but no syncoid command copies it",
		"tgt/syncoid-args.conf:4: an indented comment",
		"tgt/syncoid-args.conf:5: the same copy as tgt/syncoid-args.conf:2",
		"tgt/syncoid-args.conf:6: want SOURCE TARGET",
		"tgt/syncoid-args.conf:3: --sshoption=ProxyJump=x: not mapped",
		"tgt/sanoid.conf:7: section [rpool/off] again (first at line 1)",
		"src/sanoid.conf:11: [template_data] post_snapshot_script = /x.sh: not mapped",
		"src/sanoid.conf:9: [template_data] hourly=36 autosnap=yes: sanoid's snapshot policy",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	if strings.Contains(rep, "[rpool/opf] keeps synced snapshots") {
		t.Errorf("rpool/opf is written into (from the wrong source), reported as unused:\n%s", rep)
	}
	if len(res.Replicas) != 2 || res.Replicas[0].Name != "off-tgt" || res.Replicas[1].Name != "opff-tgt" {
		t.Fatalf("replicas %+v", res.Replicas)
	}
	y := res.YAML(im)
	for _, want := range []string{"  - name: off-tgt  # tgt/syncoid-args.conf:2\n    kind: zfs\n    source: {node: src, path: zfs-hdd/off}\n    target: {node: tgt, path: rpool/off}\n    recursive: true\n    schedule: 15m\n    max_lag: 7h\n",
		`#       - {name: zfs-hdd/opff, description: "replica end"}  # source of replica opff-tgt`,
		`#       - {name: rpool/opf, description: "sanoid synced, recursive"}  # tgt/sanoid.conf:4`} {
		if !strings.Contains(y, want) {
			t.Errorf("YAML lacks %q:\n%s", want, y)
		}
	}
}

func TestReplicaNames(t *testing.T) {
	taken := map[string]bool{}
	for _, c := range []struct{ sn, sp, tn, want string }{
		{"off2", "zfs-hdd/off", "off1", "off-off1"},
		{"off2", "zfs-nvme/off", "off1", "zfs-nvme-off-off1"},
		{"off2", "rpool", "ovh3", "off2-rpool-ovh3"},
		{"off2", "zfs-nvme/off/products", "ovh3", "off-products-ovh3"},
		{"off2", "zfs-nvme/off/products", "ovh3", "zfs-nvme-off-products-ovh3"},
		{"off2", "zfs-nvme/off/products", "ovh3", "off2-zfs-nvme-off-products-ovh3"},
		{"off2", "zfs-nvme/off/products", "ovh3", "off2-zfs-nvme-off-products-ovh3-2"},
	} {
		got := replicaName(&Replica{SourceNode: c.sn, SourcePath: c.sp, TargetNode: c.tn}, taken)
		taken[got] = true
		if got != c.want {
			t.Errorf("%s:%s to %s: %s, want %s", c.sn, c.sp, c.tn, got, c.want)
		}
	}
}

func TestParseUnit(t *testing.T) {
	unit := "[Service]\nExecStart=/usr/sbin/syncoid --recursive 'op@h:tank/a' tank/b\nTimeoutStartSec=6h\n" +
		"ExecStart=/bin/bash -c 'grep -v ^# /etc/sanoid/syncoid-args.conf | while read -a a; do syncoid \"$${a[@]}\"; done'\n"
	syncs, probs, err := ParseUnit("u.service", strings.NewReader(unit))
	if err != nil {
		t.Fatal(err)
	}
	if len(syncs) != 1 || syncs[0].Source != (End{"op", "h", "tank/a"}) || !syncs[0].Recursive {
		t.Fatalf("syncs %+v", syncs)
	}
	got := ""
	for _, p := range probs {
		got += p.String() + "\n"
	}
	for _, want := range []string{"u.service:3: TimeoutStartSec: not mapped", "u.service:4: runs syncoid with each line of /etc/sanoid/syncoid-args.conf: import that file"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	_, probs, _ = ParseUnit("o.conf", strings.NewReader("[Unit]\nOnFailure=x\n"))
	if len(probs) != 2 || probs[1].Msg != "no syncoid command in this unit: nothing to import" {
		t.Errorf("sanoid override: %v", probs)
	}
}

func TestParseBounds(t *testing.T) {
	long := strings.Repeat("a", MaxLine+1)
	if _, err := ParseConf("x", strings.NewReader("[a]\n"+long+"\n")); err == nil || !strings.Contains(err.Error(), "x:2: a line longer") {
		t.Errorf("long line: %v", err)
	}
	many := strings.Repeat("-v ", MaxArgs+1) + "a b\n"
	if _, probs, _ := ParseArgsFile("y", strings.NewReader(many)); len(probs) != 1 || !strings.Contains(probs[0].Msg, "more than") {
		t.Errorf("many args: %v", probs)
	}
	c, _ := ParseConf("z", strings.NewReader("k = v\n[x\n[]\nnot a key\n"))
	if len(c.Problems) != 4 {
		t.Errorf("problems %v", c.Problems)
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add(srcConf)
	f.Add(tgtConf)
	f.Add("[a]\nrecursive=zfs\nuse_template=x,y\n[template_x]\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConf("f", strings.NewReader(s))
		if err != nil {
			return
		}
		im := &Importer{}
		im.Import([]*Node{{Name: "n", Conf: c}}).YAML(im)
	})
}

func FuzzParseArgsFile(f *testing.F) {
	f.Add("--no-sync-snap --recursive op@h:tank/a tank/b\n")
	f.Add("-o x a:b/c d\n--sshport\n-- a b\nh:x/y:z u@:q\n")
	f.Fuzz(func(t *testing.T, s string) {
		syncs, _, err := ParseArgsFile("f", strings.NewReader(s))
		if err != nil {
			return
		}
		for _, sy := range syncs {
			if !validDataset(sy.Source.Dataset) || !validDataset(sy.Target.Dataset) {
				t.Fatalf("invalid dataset accepted: %+v", sy)
			}
		}
		im := &Importer{Hosts: map[string]string{"h": "h"}}
		im.Import([]*Node{{Name: "n", Syncs: syncs}}).YAML(im)
		ParseUnit("u", strings.NewReader("ExecStart=syncoid "+s))
	})
}

// The reference: every sanoid and syncoid file of the Open Food Facts
// infrastructure repository parses, and the example inventory's zfs
// replicas are exactly what their syncoid args files say (ks1, which the
// inventory does not hold, apart), with every end a declared dataset.
func TestReference(t *testing.T) {
	ref := filepath.Join(testutil.RequireReference(t), "confs")
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(ref, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "sanoid") || strings.Contains(filepath.Base(p), "syncoid") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 10 {
		t.Fatalf("only %d sanoid/syncoid files in %s", len(files), ref)
	}
	nodes := map[string]*Node{}
	var order []*Node
	for _, p := range files {
		rel, _ := filepath.Rel(ref, p)
		host := strings.Split(rel, string(filepath.Separator))[0]
		n := nodes[host]
		if n == nil {
			n = &Node{Name: host}
			nodes[host] = n
			if m.Node(host) != nil {
				order = append(order, n)
			}
		}
		if err := Load(n, p); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	im := &Importer{Model: m}
	res := im.Import(order)
	for _, p := range res.Report {
		if strings.Contains(p.Msg, "no node for host") || strings.Contains(p.Msg, "want SOURCE TARGET") || strings.Contains(p.Msg, "not a dataset") {
			t.Errorf("%s", p)
		}
	}
	key := func(sn, sp, tn, tp string, rec bool) string {
		return sn + ":" + sp + " -> " + tn + ":" + tp + map[bool]string{true: " (recursive)"}[rec]
	}
	var imported, example []string
	for _, r := range res.Replicas {
		imported = append(imported, key(r.SourceNode, r.SourcePath, r.TargetNode, r.TargetPath, r.Recursive))
	}
	for _, r := range m.Replicas {
		if r.Kind != "zfs" {
			continue
		}
		example = append(example, key(r.Source.Node, r.Source.Path, r.Target.Node, r.Target.Path, r.Recursive))
		for _, e := range []*inventory.ReplicaEnd{r.Source, r.Target} {
			if n := m.Node(e.Node); n.Storage == nil || n.Storage.Dataset(e.Path) == nil {
				t.Errorf("replica %s: %s does not declare %s", r.Name, e.Node, e.Path)
			}
		}
	}
	sort.Strings(imported)
	sort.Strings(example)
	if strings.Join(imported, "\n") != strings.Join(example, "\n") {
		t.Errorf("the example's zfs replicas differ from the syncoid args files:\n%s", diff(example, imported))
	}
	// The example declares every dataset of the sanoid.conf files.
	for _, n := range order {
		for _, d := range res.Datasets[n.Name] {
			if m.Node(n.Name).Storage.Dataset(d.Name) == nil {
				t.Errorf("%s does not declare %s (%s)", n.Name, d.Name, d.From)
			}
		}
	}
}

func diff(have, want []string) string {
	h, w := map[string]bool{}, map[string]bool{}
	for _, s := range have {
		h[s] = true
	}
	for _, s := range want {
		w[s] = true
	}
	var b strings.Builder
	for _, s := range have {
		if !w[s] {
			b.WriteString("only in the example: " + s + "\n")
		}
	}
	for _, s := range want {
		if !h[s] {
			b.WriteString("only in syncoid: " + s + "\n")
		}
	}
	return b.String()
}
