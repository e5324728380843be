package observe

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage"
	"github.com/offedge/offedge/storage/zfs"
	"github.com/offedge/offedge/storage/zfs/zfstest"
)

// storageInventory: products copied from db to store; store declares a
// pool with its own thresholds, an NFS export and a vzdump directory.
const storageInventory = `providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers:
  - name: db
    provider: p
    addresses: [{network: internet, ip: 192.0.2.2}]
    storage:
      datasets: [{name: zfs-nvme/off/products}]
  - name: store
    provider: p
    addresses: [{network: internet, ip: 192.0.2.3}]
    storage:
      pools:
        - {name: rpool, warn: 70%, critical: 85%, fills_within: 2d}
      datasets:
        - {name: rpool/off/products}
        - {name: rpool/backups, nfs: [198.51.100.0/28]}
      backups:
        - {name: vzdump, dir: /rpool/backups/dump, glob: "vzdump-*", max_age: 4d, schedule: 3d}
replicas:
  - name: products
    kind: zfs
    source: {node: db, path: zfs-nvme/off/products}
    target: {node: store, path: rpool/off/products}
    schedule: 15m
    max_lag: 7h
`

func loadStorage(t *testing.T) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(fstest.MapFS{"inventory.yaml": {Data: []byte(storageInventory)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func storageExport(t *testing.T, m *inventory.Model) (ExportOptions, string, ruleFile) {
	t.Helper()
	opts := ExportOptions{Targets: map[string]string{"db": "192.0.2.2:9901", "store": "192.0.2.3:9901"},
		StorageFor: 5 * time.Minute, TrendFor: 30 * time.Minute}
	files, err := Export(m, Generate(m), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	if err := yaml.Unmarshal(files[RulesFile], &rules); err != nil {
		t.Fatal(err)
	}
	return opts.withDefaults(), dir, rules
}

func promtoolTest(t *testing.T, dir, test string) {
	t.Helper()
	promtool := testutil.RequireBinary(t, "promtool")
	if err := os.WriteFile(filepath.Join(dir, "test.yml"), []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "test.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, test)
	}
}

// TestStorageRulesFire: on synthetic series, each pool threshold fires
// alone in its band, predict_linear fires for a pool whose growth fills it
// within fills_within and not for a pool that does not grow, a stale
// backup and a drifted export fire.
func TestStorageRulesFire(t *testing.T) {
	m := loadStorage(t)
	opts, dir, _ := storageExport(t, m)
	// rpool on store: size 1000, 60% used growing 0.1 point a minute:
	// above warn (70%) from 101m, above critical (85%) from 251m; its
	// growth fills it within 2 days from the start. db's zfs-nvme: still.
	test := `rule_files: [` + RulesFile + `]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'offedge_pool_size_bytes{node="store", pool="rpool"}'
        values: '1000x300'
      - series: 'offedge_pool_allocated_bytes{node="store", pool="rpool"}'
        values: '600+1x300'
      - series: 'offedge_pool_size_bytes{node="db", pool="zfs-nvme"}'
        values: '1000x300'
      - series: 'offedge_pool_allocated_bytes{node="db", pool="zfs-nvme"}'
        values: '100x300'
      - series: 'offedge_backup_newest_file_age_seconds{node="store", backup="vzdump", dir="/rpool/backups/dump"}'
        values: '345000+60x300'
      - series: 'offedge_nfs_export_drift{node="store", dataset="rpool/backups", declared="198.51.100.0/28", sharenfs="on"}'
        values: '0 0 1x300'
    alert_rule_test:
      - eval_time: 20m
        alertname: ` + AlertPoolFillsSoon + `
        exp_alerts: []
      - eval_time: 60m
        alertname: ` + AlertPoolFillsSoon + `
        exp_alerts:
          - exp_labels: {severity: warning, node: store, pool: rpool}
            exp_annotations:
              summary: pool rpool on store fills within 2d at its current growth
              description: The growth of pool rpool on store over the last 1d, extrapolated, reaches its size within 2d.
              runbook_url: ` + opts.runbook("offedgepoolfillssoon") + `
      - eval_time: 60m
        alertname: ` + AlertPoolSpaceLow + `
        exp_alerts: []
      - eval_time: 130m
        alertname: ` + AlertPoolSpaceLow + `
        exp_alerts:
          - exp_labels: {severity: warning, node: store, pool: rpool}
            exp_annotations:
              summary: pool rpool on store is above 70% used
              description: Pool rpool on store is 73.0% used (allocated / size, zpool's CAPACITY). Warning at 70%, critical at 85%.
              runbook_url: ` + opts.runbook("offedgepoolspacelow-offedgepoolspacecritical") + `
      - eval_time: 130m
        alertname: ` + AlertPoolSpaceCritical + `
        exp_alerts: []
      - eval_time: 270m
        alertname: ` + AlertPoolSpaceLow + `
        exp_alerts: []
      - eval_time: 270m
        alertname: ` + AlertPoolSpaceCritical + `
        exp_alerts:
          - exp_labels: {severity: critical, node: store, pool: rpool}
            exp_annotations:
              summary: pool rpool on store is above 85% used
              description: "Pool rpool on store is 87.0% used (allocated / size, zpool's CAPACITY). Writes are about to fail: free space now."
              runbook_url: ` + opts.runbook("offedgepoolspacelow-offedgepoolspacecritical") + `
      - eval_time: 5m
        alertname: ` + AlertBackupStale + `
        exp_alerts: []
      - eval_time: 30m
        alertname: ` + AlertBackupStale + `
        exp_alerts:
          - exp_labels: {severity: warning, node: store, backup: vzdump, dir: /rpool/backups/dump}
            exp_annotations:
              summary: backup vzdump on store is older than its max_age (4d)
              description: "The newest file of /rpool/backups/dump/vzdump-* on store is 4d 0h 20m 0s old; max_age is 4d."
              runbook_url: ` + opts.runbook("offedgebackupstale") + `
      - eval_time: 10m
        alertname: ` + AlertNFSExportDrift + `
        exp_alerts:
          - exp_labels: {severity: critical, node: store, dataset: rpool/backups, declared: 198.51.100.0/28, sharenfs: "on"}
            exp_annotations:
              summary: rpool/backups on store is exported over NFS other than declared
              description: "sharenfs of rpool/backups on store is on; the inventory declares 198.51.100.0/28."
              runbook_url: ` + opts.runbook("offedgenfsexportdrift") + `
`
	promtoolTest(t, dir, test)
}

// sideSeries measures one node's storage once (its plan's section, from
// the same inventory) against its zfs stand-in and renders every sample
// as a promtool input series scraped from that node.
func sideSeries(t *testing.T, m *inventory.Model, node string, s *zfstest.Standin) []string {
	t.Helper()
	st := plan.StorageOf(m, node)
	st.Timeout = 5 * time.Second
	w := storage.New(func() *plan.Storage { return st }, zfs.Runner{ZFS: s.ZFS, ZPool: s.ZPool}, nil)
	w.Measure(context.Background())
	reg := prometheus.NewRegistry()
	reg.MustRegister(w)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "offedge_replica_") {
			continue
		}
		for _, mt := range mf.GetMetric() {
			labels := []string{fmt.Sprintf("node=%q", node)}
			for _, l := range mt.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := strconv.FormatFloat(mt.GetGauge().GetValue(), 'f', -1, 64)
			out = append(out, fmt.Sprintf("      - series: '%s{%s}'\n        values: '%sx30'", mf.GetName(), strings.Join(labels, ", "), v))
		}
	}
	sort.Strings(out)
	return out
}

// TestCommonSnapshotBothSides runs the storage watch of both ends of a
// replica against zfs stand-ins, feeds what they export to the generated
// rules, and checks the newest common snapshot (by GUID) and the alert
// when the source has pruned it (2023-06-08).
func TestCommonSnapshotBothSides(t *testing.T) {
	m := loadStorage(t)
	_, dir, rules := storageExport(t, m)
	var causes string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == AlertReplicaNoCommon {
				causes = r.Labels["causes"]
			}
		}
	}
	base := time.Unix(1686200000, 0)
	snaps := func(guids ...uint64) []zfstest.Snap {
		var out []zfstest.Snap
		for _, g := range guids {
			at := base.Add(time.Duration(g) * time.Hour)
			out = append(out, zfstest.Snap{Name: fmt.Sprintf("autosnap_%d_hourly", g), GUID: g, Created: at})
		}
		return out
	}
	scenario := func(source, target []zfstest.Snap) string {
		src, err := zfstest.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		dst, err := zfstest.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := src.SetSnapshots("zfs-nvme/off/products", source); err != nil {
			t.Fatal(err)
		}
		if err := dst.SetSnapshots("rpool/off/products", target); err != nil {
			t.Fatal(err)
		}
		lines := append(sideSeries(t, m, "db", src), sideSeries(t, m, "store", dst)...)
		for _, want := range []string{`side="source"`, `side="target"`} {
			if !strings.Contains(strings.Join(lines, "\n"), want) {
				t.Fatalf("no %s series from the watches:\n%s", want, strings.Join(lines, "\n"))
			}
		}
		return strings.Join(lines, "\n")
	}
	// 1: the target holds 3 and 4, the source 1 to 6 (and a snapshot of
	// the same name as the target's 4 but another GUID would not count).
	// 2: the source pruned everything up to 4: nothing in common.
	fresh := scenario(snaps(1, 2, 3, 4, 5, 6), snaps(3, 4))
	pruned := scenario(snaps(5, 6, 7, 8), snaps(3, 4))
	causesLine := ""
	if causes != "" {
		causesLine = ", causes: \"" + causes + "\""
	}
	test := `rule_files: [` + RulesFile + `]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
` + fresh + `
    promql_expr_test:
      - expr: ` + RecordCommonSnapshot + `
        eval_time: 10m
        exp_samples:
          - labels: '` + RecordCommonSnapshot + `{replica="products"}'
            value: ` + strconv.FormatInt(base.Add(4*time.Hour).Unix(), 10) + `
    alert_rule_test:
      - eval_time: 10m
        alertname: ` + AlertReplicaNoCommon + `
        exp_alerts: []
  - interval: 1m
    input_series:
` + pruned + `
    promql_expr_test:
      - expr: ` + RecordCommonSnapshot + `
        eval_time: 10m
        exp_samples: []
    alert_rule_test:
      - eval_time: 10m
        alertname: ` + AlertReplicaNoCommon + `
        exp_alerts:
          - exp_labels: {severity: critical, replica: products` + causesLine + `}
            exp_annotations:
              summary: "replica products: db and store share no snapshot"
              description: "No snapshot of rpool/off/products on store has the GUID of one of zfs-nvme/off/products on db: the next incremental send cannot run, and the copy stays as old as it is until it is resynchronised."
              runbook_url: https://github.com/offedge/offedge/blob/main/docs/observability.md#offedgereplicanocommonsnapshot
`
	promtoolTest(t, dir, test)
}
