package storage

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage/zfs"
	"github.com/offedge/offedge/storage/zfs/zfstest"
)

// gather returns the watch's metrics as "name{replica} value" lines.
func gather(t *testing.T, w *Watch) map[string]float64 {
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
			var replica string
			for _, l := range m.GetLabel() {
				if l.GetName() == "replica" {
					replica = l.GetValue()
				}
			}
			out[mf.GetName()+"{"+replica+"}"] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 { return m.GetGauge().GetValue() }

func TestWatch(t *testing.T) {
	s, err := zfstest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1686220000, 0)
	if err := s.SetSnapshots("rpool/off/products", []zfstest.Snap{
		{Name: "autosnap_2023-06-08_09:00:01_hourly", GUID: 7, Created: now.Add(-2 * time.Hour)},
		{Name: "autosnap_2023-06-08_10:00:01_hourly", GUID: 8, Created: now.Add(-time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSnapshots("rpool/empty", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPool("rpool", 16e12, 14e12); err != nil {
		t.Fatal(err)
	}
	st := &plan.Storage{Interval: time.Minute, Timeout: 300 * time.Millisecond, Pools: []plan.PoolWatch{{Name: "rpool"}, {Name: "nopool"}}, Replicas: []plan.ReplicaWatch{
		{Name: "products", Dataset: "rpool/off/products", MaxLag: 7 * time.Hour},
		{Name: "opf", Dataset: "rpool/opff"}, // the typo: no such dataset
		{Name: "empty", Dataset: "rpool/empty"},
	}}
	w := New(func() *plan.Storage { return st }, zfs.Runner{ZFS: s.ZFS, ZPool: s.ZPool}, nil)
	w.now = func() time.Time { return now }
	w.Measure(context.Background())
	got := gather(t, w)
	if n := len(got); n != 19 {
		t.Errorf("%d series, want 19 (the missing pool exports none; the snapshot series of a replica share a key here): %v", n, got)
	}
	for k, want := range map[string]float64{
		"offedge_replica_lag_seconds{products}":                       3600,
		"offedge_replica_newest_snapshot_timestamp_seconds{products}": float64(now.Add(-time.Hour).Unix()),
		"offedge_replica_snapshots{products}":                         2,
		"offedge_replica_up{products}":                                1,
		"offedge_replica_dataset_missing{products}":                   0,
		"offedge_replica_up{opf}":                                     0,
		"offedge_replica_dataset_missing{opf}":                        1,
		"offedge_replica_lag_seconds{opf}":                            math.Inf(1),
		"offedge_replica_up{empty}":                                   1,
		"offedge_replica_snapshots{empty}":                            0,
		"offedge_replica_lag_seconds{empty}":                          math.Inf(1),
		"offedge_pool_size_bytes{}":                                   16e12,
		"offedge_pool_allocated_bytes{}":                              14e12,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}

	// A stalled zfs: the listing is killed at the plan's timeout, the
	// replica is down and its lag keeps growing from the last snapshot seen.
	if err := s.Stall("rpool/off/products", true); err != nil {
		t.Fatal(err)
	}
	now = now.Add(8 * time.Hour)
	start := time.Now()
	w.Measure(context.Background())
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("a stalled zfs held the watch %v", d)
	}
	got = gather(t, w)
	if got["offedge_replica_up{products}"] != 0 || got["offedge_replica_lag_seconds{products}"] != 9*3600 {
		t.Errorf("stalled: up %v lag %v", got["offedge_replica_up{products}"], got["offedge_replica_lag_seconds{products}"])
	}
	if got["offedge_replica_dataset_missing{products}"] != 0 {
		t.Error("a stall reported as a missing dataset")
	}

	// zfs failing with its own message: down, not missing.
	s.Stall("rpool/off/products", false)
	s.Fail("rpool/off/products", "internal error: out of memory")
	w.Measure(context.Background())
	got = gather(t, w)
	if got["offedge_replica_up{products}"] != 0 || got["offedge_replica_dataset_missing{products}"] != 0 {
		t.Errorf("failing zfs: %v", got)
	}

	// A reload that drops a replica drops its series.
	st = &plan.Storage{Replicas: st.Replicas[:1]}
	for k := range gather(t, w) {
		if strings.Contains(k, "{opf}") {
			t.Errorf("%s exported after the replica left the plan", k)
		}
	}
}

func TestWatchNoStorage(t *testing.T) {
	w := New(func() *plan.Storage { return nil }, zfs.Runner{}, nil)
	w.Measure(context.Background())
	if got := gather(t, w); len(got) != 0 {
		t.Errorf("metrics without a storage plan: %v", got)
	}
}
