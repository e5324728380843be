package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage/zfs"
	"github.com/offedge/offedge/storage/zfs/zfstest"
)

// series gathers the watch's metrics keyed by name and every label value.
func series(t *testing.T, w *Watch) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(w)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var lv []string
			for _, l := range m.GetLabel() {
				lv = append(lv, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(lv, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestWatchDatasetsAndExports(t *testing.T) {
	s, err := zfstest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetPool("rpool", 16e12, 15e12))
	must(s.SetSpace("rpool/backups", 4e12, 1e12))
	must(s.SetSpace("rpool/backups/robotoff", 1e11, 1e12))
	must(s.SetSpace("rpool/off", 9e12, 1e12))
	must(s.SetSpace("rpool/clone", 1e9, 1e12))
	// As declared: a prefix, written the way zfs shows it.
	must(s.SetShareNFS("rpool/backups", "rw=@10.0.0.0/28,no_root_squash", "local"))
	// Inherited, as declared (nfs_inherit).
	must(s.SetShareNFS("rpool/backups/robotoff", "rw=@10.0.0.0/28,no_root_squash", "inherited from rpool/backups"))
	// Declared not exported, live sharenfs=on: off2's products in 2023-06.
	must(s.SetShareNFS("rpool/off", "on", "local"))
	// Two clients in two rw= options, declared as addresses.
	must(s.SetShareNFS("rpool/clone", "rw=@10.0.0.1/32,rw=@10.1.0.200/32,no_root_squash", "local"))
	st := &plan.Storage{Timeout: 5 * time.Second, DatasetInterval: 5 * time.Minute,
		Pools: []plan.PoolWatch{{Name: "rpool", Warn: 80, Critical: 90}},
		Datasets: []plan.DatasetWatch{
			{Name: "rpool/backups", NFSDeclared: true, NFS: plan.NFSExport{Clients: []string{"10.0.0.0/28"}}},
			{Name: "rpool/backups/robotoff", NFSDeclared: true, NFS: plan.NFSExport{Clients: []string{"10.0.0.0/28"}, InheritedFrom: "rpool/backups"}},
			{Name: "rpool/off", NFSDeclared: true},
			{Name: "rpool/clone", NFSDeclared: true, NFS: plan.NFSExport{Clients: plan.NFSClients([]string{"10.1.0.200", "10.0.0.1"})}},
			{Name: "rpool/missing"}, // a replica's target, no NFS declared
		}}
	log, logs := testutil.Logger(t)
	w := New(func() *plan.Storage { return st }, zfs.Runner{ZFS: s.ZFS, ZPool: s.ZPool}, log)
	now := time.Unix(1700000000, 0)
	w.now = func() time.Time { return now }
	w.Measure(context.Background())
	got := series(t, w)
	for k, want := range map[string]float64{
		"offedge_pool_size_bytes{pool=rpool}":                                                                                                        16e12,
		"offedge_pool_allocated_bytes{pool=rpool}":                                                                                                   15e12,
		"offedge_pool_free_bytes{pool=rpool}":                                                                                                        1e12,
		"offedge_dataset_used_bytes{dataset=rpool/off}":                                                                                              9e12,
		"offedge_dataset_available_bytes{dataset=rpool/off}":                                                                                         1e12,
		"offedge_dataset_used_bytes{dataset=rpool/backups/robotoff}":                                                                                 1e11,
		"offedge_nfs_export_drift{dataset=rpool/backups,declared=10.0.0.0/28,sharenfs=rw=@10.0.0.0/28,no_root_squash}":                               0,
		"offedge_nfs_export_drift{dataset=rpool/backups/robotoff,declared=10.0.0.0/28,sharenfs=rw=@10.0.0.0/28,no_root_squash}":                      0,
		"offedge_nfs_export_drift{dataset=rpool/off,declared=off,sharenfs=on}":                                                                       1,
		"offedge_nfs_export_drift{dataset=rpool/clone,declared=10.0.0.1/32,10.1.0.200/32,sharenfs=rw=@10.0.0.1/32,rw=@10.1.0.200/32,no_root_squash}": 0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	for k := range got {
		if strings.Contains(k, "rpool/missing") {
			t.Errorf("%s exported for a dataset zfs does not have", k)
		}
	}
	if !strings.Contains(logs.String(), `msg="nfs export drift" dataset=rpool/off declared=off sharenfs=on source=local`) {
		t.Errorf("no drift log line:\n%s", logs)
	}
	if n := strings.Count(logs.String(), "nfs export drift"); n != 1 {
		t.Errorf("%d drift lines, want 1", n)
	}

	// Datasets are read every DatasetInterval, not every pass.
	must(s.SetShareNFS("rpool/off", "off", "default"))
	must(s.SetSpace("rpool/off", 10e12, 0))
	now = now.Add(time.Minute)
	w.Measure(context.Background())
	if got := series(t, w); got["offedge_dataset_used_bytes{dataset=rpool/off}"] != 9e12 {
		t.Errorf("datasets read again after a minute: %v", got["offedge_dataset_used_bytes{dataset=rpool/off}"])
	}
	now = now.Add(5 * time.Minute)
	w.Measure(context.Background())
	got = series(t, w)
	if got["offedge_dataset_used_bytes{dataset=rpool/off}"] != 10e12 || got["offedge_nfs_export_drift{dataset=rpool/off,declared=off,sharenfs=off}"] != 0 {
		t.Errorf("after the interval: %v", got)
	}
	if n := strings.Count(logs.String(), "nfs export drift"); n != 1 {
		t.Errorf("the drift was logged again: %d lines", n)
	}
	if !strings.Contains(logs.String(), "nfs export as declared again") {
		t.Errorf("the end of the drift was not logged:\n%s", logs)
	}
}

func TestShareNFSClients(t *testing.T) {
	for value, want := range map[string]string{
		"off":                               "",
		"-":                                 "",
		"on":                                "*",
		"rw,no_root_squash":                 "*", // no client list: exportfs exports to everyone
		"rw=@10.0.0.0/28,no_root_squash":    "10.0.0.0/28",
		"rw=@10.0.0.1/32:@10.1.0.200/32":    "10.0.0.1/32,10.1.0.200/32",
		"ro=@192.0.2.7,rw=@198.51.100.0/24": "192.0.2.7/32,198.51.100.0/24",
		"rw=@10.0.0.3/28":                   "10.0.0.0/28", // zfs keeps what was set; the prefix is what admits
		"sec=sys,rw=*":                      "*",
		"rw=@0.0.0.0/0":                     "*",
	} {
		if got := strings.Join(plan.NFSClients(zfs.ShareNFSClients(value)), ","); got != want {
			t.Errorf("%q: clients %q, want %q", value, got, want)
		}
	}
}

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	base := time.Unix(1700000000, 0)
	touch := func(name string, age time.Duration) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("dump"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, base.Add(-age), base.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	touch("vzdump-lxc-101-2024_03_10.tar.zst", 72*time.Hour)
	touch("vzdump-lxc-101-2024_03_13.tar.zst", 5*time.Hour)
	touch("vzdump-lxc-101-2024_03_13.log", time.Hour) // not a dump
	if err := os.Mkdir(filepath.Join(dir, "vzdump-newer-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "vzdump-link.tar.zst")); err != nil {
		t.Fatal(err)
	}
	r, err := ScanDir(context.Background(), dir, "vzdump-*.tar.zst", 100)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 2 || !r.Newest.Equal(base.Add(-5*time.Hour)) || r.Truncated {
		t.Errorf("glob: %+v", r)
	}
	r, err = ScanDir(context.Background(), dir, "", 100)
	if err != nil || r.Files != 3 || !r.Newest.Equal(base.Add(-time.Hour)) {
		t.Errorf("every file: %+v %v", r, err)
	}
	// The bound: 5 entries, 2 read, the rest not.
	r, err = ScanDir(context.Background(), dir, "", 2)
	if err != nil || !r.Truncated {
		t.Errorf("bounded to 2 of 5 entries: %+v %v", r, err)
	}
	if _, err := ScanDir(context.Background(), filepath.Join(dir, "nope"), "", 100); !os.IsNotExist(err) {
		t.Errorf("missing directory: %v", err)
	}
}

func TestWatchBackups(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().Truncate(time.Second)
	dump := filepath.Join(dir, "vzdump-qemu-200.vma.zst")
	if err := os.WriteFile(dump, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dump, now.Add(-50*time.Hour), now.Add(-50*time.Hour)); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	st := &plan.Storage{MaxEntries: 100, Backups: []plan.BackupWatch{
		{Name: "vzdump", Dir: dir, Glob: "vzdump-*", MaxAge: 96 * time.Hour},
		{Name: "rclone", Dir: empty, MaxAge: 48 * time.Hour},
	}}
	w := New(func() *plan.Storage { return st }, zfs.Runner{}, nil)
	w.now = func() time.Time { return now }
	w.Measure(context.Background())
	got := series(t, w)
	vz := "{backup=vzdump,dir=" + dir + "}"
	rc := "{backup=rclone,dir=" + empty + "}"
	for k, want := range map[string]float64{
		"offedge_backup_newest_file_age_seconds" + vz:       50 * 3600,
		"offedge_backup_newest_file_timestamp_seconds" + vz: float64(now.Add(-50 * time.Hour).Unix()),
		"offedge_backup_files" + vz:                         1,
		"offedge_backup_up" + vz:                            1,
		"offedge_backup_scan_truncated" + vz:                0,
		"offedge_backup_up" + rc:                            1,
		"offedge_backup_files" + rc:                         0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if v := got["offedge_backup_newest_file_age_seconds"+rc]; v < 1e300 {
		t.Errorf("empty directory: age %v, want +Inf", v)
	}
	// The directory disappears (an unmounted dataset): down, and the age
	// keeps growing from the newest file seen.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Hour)
	w.Measure(context.Background())
	got = series(t, w)
	if got["offedge_backup_up"+vz] != 0 || got["offedge_backup_newest_file_age_seconds"+vz] != 60*3600 {
		t.Errorf("missing directory: up %v age %v", got["offedge_backup_up"+vz], got["offedge_backup_newest_file_age_seconds"+vz])
	}
	if _, ok := got["offedge_backup_files"+vz]; ok {
		t.Error("a file count exported for a directory that could not be read")
	}
}
