package plan

import (
	"slices"
	"testing"
	"time"
)

// TestStorageOf: the pools watched are the union of the declared
// datasets', the received replicas' and the pools: entries, each with its
// thresholds resolved; a source node lists its replicas' sources; declared
// exports are resolved (own list, inherited from the exported parent, off).
func TestStorageOf(t *testing.T) {
	m := loadYAML(t, `providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers:
  - name: db
    provider: p
    addresses: [{network: internet, ip: 192.0.2.2}]
  - name: store
    provider: p
    addresses: [{network: internet, ip: 192.0.2.3}]
    storage:
      pools:
        - {name: rpool, warn: 85%}
        - {name: hot, warn: 92%}
        - {name: tank, critical: 75}
        - {name: spare, fills_within: 14d}
      datasets:
        - {name: zfs-hdd/backups, nfs: [198.51.100.7, 192.0.2.0/28]}
        - {name: zfs-hdd/backups/logs, nfs_inherit: true}
        - {name: zfs-hdd/backups/secret, nfs_off: true}
      backups:
        - {name: vzdump, dir: /zfs-hdd/backups/dump/, glob: "vzdump-*", max_age: 4d}
replicas:
  - {name: products, kind: zfs, source: {node: db, path: zfs-nvme/products}, target: {node: store, path: rpool/products}, max_lag: 7h}
  - {name: files, kind: rsync, source: {node: db, path: /srv}, target: {node: store, path: /srv}, max_lag: 1d}
`)
	st := StorageOf(m, "store")
	if st == nil {
		t.Fatal("no storage section for store")
	}
	var pools []PoolWatch
	pools = append(pools, st.Pools...)
	want := []PoolWatch{
		{Name: "hot", Warn: 92, Critical: 100, FillsWithin: DefaultPoolFillsWithin},
		{Name: "rpool", Warn: 85, Critical: DefaultPoolCritical, FillsWithin: DefaultPoolFillsWithin},
		{Name: "spare", Warn: DefaultPoolWarn, Critical: DefaultPoolCritical, FillsWithin: 14 * 24 * time.Hour},
		{Name: "tank", Warn: 65, Critical: 75, FillsWithin: DefaultPoolFillsWithin},
		{Name: "zfs-hdd", Warn: DefaultPoolWarn, Critical: DefaultPoolCritical, FillsWithin: DefaultPoolFillsWithin},
	}
	if !slices.Equal(pools, want) {
		t.Errorf("pools:\n got %+v\nwant %+v", pools, want)
	}
	exports := map[string]NFSExport{}
	for _, d := range st.Datasets {
		exports[d.Name] = d.NFS
		if d.Name == "rpool/products" && d.NFSDeclared {
			t.Error("a replica's target not declared by its server is compared with sharenfs")
		}
	}
	if e := exports["zfs-hdd/backups"]; !slices.Equal(e.Clients, []string{"192.0.2.0/28", "198.51.100.7/32"}) || e.InheritedFrom != "" {
		t.Errorf("own export: %+v", e)
	}
	if e := exports["zfs-hdd/backups/logs"]; len(e.Clients) != 2 || e.InheritedFrom != "zfs-hdd/backups" {
		t.Errorf("inherited export: %+v", e)
	}
	if e := exports["zfs-hdd/backups/secret"]; len(e.Clients) != 0 {
		t.Errorf("nfs_off: %+v", e)
	}
	if _, ok := exports["rpool/products"]; !ok {
		t.Error("the replica's target dataset is not measured")
	}
	if len(st.Replicas) != 1 || st.Replicas[0].Name != "products" || len(st.Sources) != 0 {
		t.Errorf("replicas %+v sources %+v", st.Replicas, st.Sources)
	}
	if len(st.Backups) != 1 || st.Backups[0].Dir != "/zfs-hdd/backups/dump" || st.Backups[0].MaxAge != 96*time.Hour {
		t.Errorf("backups %+v", st.Backups)
	}
	src := StorageOf(m, "db")
	if src == nil || len(src.Sources) != 1 || src.Sources[0].Dataset != "zfs-nvme/products" || src.Sources[0].Target != "store:rpool/products" {
		t.Fatalf("db's storage: %+v", src)
	}
	if len(src.Pools) != 0 || len(src.Replicas) != 0 {
		t.Errorf("db watches pools %+v / replicas %+v it does not hold", src.Pools, src.Replicas)
	}
}
