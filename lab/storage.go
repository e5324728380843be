package lab

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage"
	"github.com/offedge/offedge/storage/zfs"
	"github.com/offedge/offedge/storage/zfs/zfstest"
)

// The lab has no ZFS: each node that holds replicas runs its storage watch
// against its own zfs stand-in (storage/zfs/zfstest), seeded with a fresh
// copy of every replica: hourly snapshots, the newest ten minutes old. A
// drill stalls a replica (POST /api/replicas/NAME/stall): its newest
// snapshot becomes older than its max_lag, as when syncoid stops, and
// OffedgeReplicaStale fires.

// labStorageTimeout bounds each stand-in listing in the lab.
const labStorageTimeout = 5 * time.Second

// storageStandin returns (creating and seeding it on first use) the zfs
// stand-in of a node whose plan holds replicas; nil for the others.
func (l *Lab) storageStandin(ln *labNode) (*zfstest.Standin, error) {
	if ln.plan.Storage == nil {
		return nil, nil
	}
	if ln.zfs != nil {
		return ln.zfs, nil
	}
	s, err := zfstest.New(filepath.Join(l.dir, "zfs", ln.node.Name))
	if err != nil {
		return nil, err
	}
	for _, rp := range ln.plan.Storage.Replicas {
		if err := seedReplica(s, rp, false, time.Now()); err != nil {
			return nil, err
		}
	}
	for _, pool := range ln.plan.Storage.Pools {
		// 16 TB, half used: below any threshold.
		if err := s.SetPool(pool, 16e12, 8e12); err != nil {
			return nil, err
		}
	}
	ln.zfs = s
	return s, nil
}

// seedReplica writes a replica's snapshots: fresh, or stalled (the newest
// one an hour older than max_lag, a day when it has none).
func seedReplica(s *zfstest.Standin, rp plan.ReplicaWatch, stalled bool, now time.Time) error {
	newest := now.Add(-10 * time.Minute)
	if stalled {
		age := rp.MaxLag
		if age <= 0 {
			age = 24 * time.Hour
		}
		newest = now.Add(-age - time.Hour)
	}
	var snaps []zfstest.Snap
	for i := 2; i >= 0; i-- {
		at := newest.Add(-time.Duration(i) * time.Hour).Truncate(time.Second)
		snaps = append(snaps, zfstest.Snap{Name: "autosnap_" + at.UTC().Format("2006-01-02_15:04:05") + "_hourly", GUID: uint64(at.Unix()), Created: at})
	}
	return s.SetSnapshots(rp.Dataset, snaps)
}

// storageWatch returns the storage watch of a node (nil when it holds no
// replica), measuring at the lab's probe interval.
func (l *Lab) storageWatch(ln *labNode) (*storage.Watch, error) {
	s, err := l.storageStandin(ln)
	if s == nil || err != nil {
		return nil, err
	}
	p := *ln.plan.Storage
	p.Interval, p.Timeout = l.opts.ProbeInterval, labStorageTimeout
	if p.Interval <= 0 {
		p.Interval = plan.DefaultStorageInterval
	}
	return storage.New(func() *plan.Storage { return &p }, zfs.Runner{ZFS: s.ZFS, ZPool: s.ZPool}, l.log), nil
}

// StallReplica stalls (on) or resumes (off) a replica in the drill: its
// target's newest snapshot becomes older than its max_lag, or fresh again.
// The target node's watch sees it at its next measurement.
func (l *Lab) StallReplica(name string, on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.nodes {
		if ln.plan.Storage == nil {
			continue
		}
		for _, rp := range ln.plan.Storage.Replicas {
			if rp.Name != name {
				continue
			}
			s, err := l.storageStandin(ln)
			if err != nil {
				return err
			}
			return seedReplica(s, rp, on, time.Now())
		}
	}
	return fmt.Errorf("no zfs replica %q in the lab", name)
}
