package storage

import (
	"context"
	"testing"
	"time"

	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage/zfs"
	"github.com/offedge/offedge/storage/zfs/zfstest"
)

// Replicas gives the dashboard the lag the metric exports, and staleness
// against max_lag.
func TestReplicas(t *testing.T) {
	s, err := zfstest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1686220000, 0)
	s.SetSnapshots("rpool/fresh", []zfstest.Snap{{Name: "autosnap_a", GUID: 1, Created: now.Add(-time.Hour)}})
	s.SetSnapshots("rpool/old", []zfstest.Snap{{Name: "autosnap_b", GUID: 2, Created: now.Add(-10 * time.Hour)}})
	s.SetSnapshots("rpool/empty", nil)
	st := &plan.Storage{Timeout: time.Second, Replicas: []plan.ReplicaWatch{
		{Name: "fresh", Dataset: "rpool/fresh", MaxLag: 2 * time.Hour},
		{Name: "old", Dataset: "rpool/old", MaxLag: 2 * time.Hour},
		{Name: "empty", Dataset: "rpool/empty", MaxLag: 2 * time.Hour},
		{Name: "missing", Dataset: "rpool/nosuch", MaxLag: 2 * time.Hour},
	}}
	w := New(func() *plan.Storage { return st }, zfs.Runner{ZFS: s.ZFS, ZPool: s.ZPool}, nil)
	w.now = func() time.Time { return now }
	if got := w.Replicas(); len(got) != 0 {
		t.Errorf("before any measurement: %v", got)
	}
	w.Measure(context.Background())
	got := map[string]ReplicaState{}
	for _, r := range w.Replicas() {
		got[r.Name] = r
	}
	if r := got["fresh"]; r.Lag == nil || *r.Lag != 3600 || r.Stale || r.MaxLag != 7200 {
		t.Errorf("fresh: %+v", r)
	}
	if r := got["old"]; r.Lag == nil || *r.Lag != 36000 || !r.Stale {
		t.Errorf("old: %+v", r)
	}
	if r := got["empty"]; r.Lag != nil || !r.Stale {
		t.Errorf("empty: %+v", r)
	}
	if r := got["missing"]; !r.Stale || r.Error == "" {
		t.Errorf("missing: %+v", r)
	}
	if (*Watch)(nil).Replicas() != nil {
		t.Error("nil watch")
	}
}
