package inventory

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestStorageLoad(t *testing.T) {
	base := `providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers:
  - name: s1
    provider: p
    addresses: [{network: internet, ip: 192.0.2.1}]
    storage:
      datasets:
`
	ok := base + `        - {name: zfs-hdd/off, nfs: [192.0.2.0/28, 198.51.100.7]}
        - {name: zfs-hdd/off/images, nfs_inherit: true}
        - {name: zfs-hdd/off/private, nfs_off: true}
        - {name: rpool}
`
	m, err := Load(fstest.MapFS{"inventory.yaml": {Data: []byte(ok)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := m.Node("s1").Storage
	if st == nil || len(st.Datasets) != 4 {
		t.Fatalf("storage = %+v", st)
	}
	if p := st.ExportedParent(st.Dataset("zfs-hdd/off/images")); p == nil || p.Name != "zfs-hdd/off" {
		t.Errorf("exported parent = %+v", p)
	}
	if st.ExportedParent(st.Dataset("zfs-hdd/off")) != nil || st.ExportedParent(st.Dataset("rpool")) != nil {
		t.Error("exported parent of a top dataset")
	}
	for _, tt := range []struct{ yaml, want string }{
		{"        - {name: /zfs-hdd/off}\n", `invalid dataset name "/zfs-hdd/off"`},
		{"        - {name: zfs-hdd/off@snap}\n", `invalid dataset name "zfs-hdd/off@snap"`},
		{"        - {nfs: [192.0.2.1]}\n", "storage: dataset 0: missing name"},
		{"        - {name: a/b}\n        - {name: a/b}\n", `dataset "a/b" is declared twice`},
		{"        - {name: a/b, nfs: [everyone]}\n", `NFS client "everyone" is not an address or a prefix`},
		{"        - {name: a/b, nfs: [192.0.2.1], nfs_off: true}\n", "contradict each other"},
		{"        - {name: a/b, nfs_inherit: true, nfs_off: true}\n", "contradict each other"},
		{"        - {name: a/b, sharenfs: on}\n", `unknown field "sharenfs"`},
	} {
		_, err := Load(fstest.MapFS{"inventory.yaml": {Data: []byte(base + tt.yaml)}}, "inventory.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

func TestOpenNFSClient(t *testing.T) {
	for c, want := range map[string]bool{"*": true, "0.0.0.0/0": true, "::/0": true, "192.0.2.0/24": false, "192.0.2.1": false, "": false} {
		if OpenNFSClient(c) != want {
			t.Errorf("OpenNFSClient(%q) = %v", c, !want)
		}
	}
}

func TestPoolsAndBackupsLoad(t *testing.T) {
	base := `providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers:
  - name: s1
    provider: p
    addresses: [{network: internet, ip: 192.0.2.1}]
    storage:
`
	ok := base + `      pools:
        - {name: rpool, warn: 85%, critical: "95", fills_within: 14d}
        - {name: zfs-hdd, warn: 70}
      backups:
        - {name: vzdump, dir: /rpool/backups/dump, glob: "vzdump-*.zst", max_age: 4d, schedule: 3d}
`
	m, err := Load(fstest.MapFS{"inventory.yaml": {Data: []byte(ok)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := m.Node("s1").Storage
	if p := st.Pool("rpool"); p == nil || p.Warn != 85 || p.Critical != 95 || p.FillsWithin.D() != 14*24*time.Hour {
		t.Errorf("pool rpool = %+v", p)
	}
	if b := st.Backups[0]; b.Dir != "/rpool/backups/dump" || b.Glob != "vzdump-*.zst" || b.MaxAge.D() != 96*time.Hour {
		t.Errorf("backup = %+v", b)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"      pools: [{name: rpool, warn: 90%, critical: 80%}]\n", `warn 90% is not below critical 80%`},
		{"      pools: [{name: rpool, critical: 120%}]\n", `critical 120% is not a percentage of the pool`},
		{"      pools: [{name: rpool, warn: lots}]\n", `invalid percentage "lots"`},
		{"      pools: [{name: rpool/off}]\n", `invalid pool name "rpool/off"`},
		{"      pools: [{name: rpool}, {name: rpool}]\n", `pool "rpool" is declared twice`},
		{"      pools: [{name: rpool, fills_within: 10m}]\n", `fills_within 10m0s is shorter than an hour`},
		{"      backups: [{name: b, dir: rpool/dump}]\n", `dir "rpool/dump" is not a clean absolute path`},
		{"      backups: [{name: b, dir: /rpool/../etc}]\n", `dir "/rpool/../etc" is not a clean absolute path`},
		{"      backups: [{name: b}]\n", `backup "b": missing dir`},
		{"      backups: [{name: b, dir: /d, glob: \"[\"}]\n", `glob "[" is not a file name pattern`},
		{"      backups: [{name: b, dir: /d, glob: \"x/*\"}]\n", `glob "x/*" is not a file name pattern`},
		{"      backups: [{name: b, dir: /d}, {name: b, dir: /e}]\n", `backup "b" is declared twice`},
	} {
		_, err := Load(fstest.MapFS{"inventory.yaml": {Data: []byte(base + tt.yaml)}}, "inventory.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
