package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage"
	"github.com/offedge/offedge/storage/zfs"
	"github.com/offedge/offedge/storage/zfs/zfstest"
)

// The lab has no ZFS: each node whose plan has a storage section runs its
// storage watch against its own zfs stand-in (storage/zfs/zfstest), seeded
// on one hourly grid shared by every node, so that a replica's target and
// source hold snapshots of the same GUIDs:
//
//   - a replica's target: the three newest grid snapshots, the newest ten
//     minutes older than the lab's start;
//   - a replica's source: 72 hours of grid snapshots (the common snapshot
//     is the target's newest);
//   - every pool 16 TB, half used; every dataset 1 TB used; every declared
//     NFS export as the inventory says (no drift).
//
// Drills: POST /api/replicas/NAME/stall makes the target's newest snapshot
// older than max_lag (syncoid stopped; the source still holds it), /prune
// makes the source hold none of the target's snapshots, /hang makes the
// target's zfs hang, /resume makes both fresh (and answering) again; POST /api/pools/NODE/POOL/fill fills the pool to
// 95% (above the default critical 90%), /drain brings it back to half.

// labStorageTimeout bounds each stand-in listing in the lab.
const labStorageTimeout = 5 * time.Second

// labStorageMinInterval keeps the stand-ins' forks (a hundred listings a
// pass over the example) from taking a core at a short probe interval.
const labStorageMinInterval = 5 * time.Second

// gridAt is the grid snapshot k hours before the newest one.
func (l *Lab) gridAt(k int) time.Time {
	return l.started.Truncate(time.Second).Add(-10*time.Minute - time.Duration(k)*time.Hour)
}

// gridSnaps returns the grid snapshots from,...,to hours back, oldest first.
func (l *Lab) gridSnaps(from, to int) []zfstest.Snap {
	var snaps []zfstest.Snap
	for k := to; k >= from; k-- {
		at := l.gridAt(k)
		snaps = append(snaps, zfstest.Snap{Name: "autosnap_" + at.UTC().Format("2006-01-02_15:04:05") + "_hourly", GUID: uint64(at.Unix()), Created: at})
	}
	return snaps
}

// storageStandin returns (creating and seeding it on first use) the zfs
// stand-in of a node whose plan has a storage section; nil for the others.
func (l *Lab) storageStandin(ln *labNode) (*zfstest.Standin, error) {
	st := ln.plan.Storage
	if st == nil {
		return nil, nil
	}
	if ln.zfs != nil {
		return ln.zfs, nil
	}
	s, err := zfstest.New(filepath.Join(l.dir, "zfs", ln.node.Name))
	if err != nil {
		return nil, err
	}
	for _, rp := range st.Sources {
		if err := s.SetSnapshots(rp.Dataset, l.gridSnaps(0, 71)); err != nil {
			return nil, err
		}
	}
	for _, rp := range st.Replicas {
		if err := l.seedReplica(s, rp, false); err != nil {
			return nil, err
		}
	}
	for _, pool := range st.Pools {
		if err := s.SetPool(pool.Name, 16e12, 8e12); err != nil {
			return nil, err
		}
	}
	for _, d := range st.Datasets {
		if err := s.SetSpace(d.Name, 1e12, 7e12); err != nil {
			return nil, err
		}
		if d.NFSDeclared {
			value, source := shareNFSOf(d.NFS)
			if err := s.SetShareNFS(d.Name, value, source); err != nil {
				return nil, err
			}
		}
	}
	ln.zfs = s
	return s, nil
}

// shareNFSOf renders a declared export as zfs get shows it.
func shareNFSOf(e plan.NFSExport) (value, source string) {
	if len(e.Clients) == 0 {
		return "off", "default"
	}
	var opts []string
	for _, c := range e.Clients {
		opts = append(opts, "rw=@"+c)
	}
	value = strings.Join(opts, ",") + ",no_root_squash"
	if e.InheritedFrom != "" {
		return value, "inherited from " + e.InheritedFrom
	}
	return value, "local"
}

// seedReplica writes a replica's target snapshots: the newest three of
// the grid, or (stalled) three whose newest is an hour older than max_lag
// (a day when it has none), still held by the source.
func (l *Lab) seedReplica(s *zfstest.Standin, rp plan.ReplicaWatch, stalled bool) error {
	k := 0
	if stalled {
		age := rp.MaxLag
		if age <= 0 {
			age = 24 * time.Hour
		}
		k = int((age + time.Hour + time.Hour - 1) / time.Hour)
	}
	return s.SetSnapshots(rp.Dataset, l.gridSnaps(k, k+2))
}

// storageWatch returns the storage watch of a node (nil when its plan has
// no storage section), measuring at the lab's probe interval (at least
// labStorageMinInterval), its datasets every 30 s.
func (l *Lab) storageWatch(ln *labNode) (*storage.Watch, error) {
	s, err := l.storageStandin(ln)
	if s == nil || err != nil {
		return nil, err
	}
	p := *ln.plan.Storage
	p.Interval, p.Timeout, p.DatasetInterval = max(l.opts.ProbeInterval, labStorageMinInterval), labStorageTimeout, 30*time.Second
	return storage.New(func() *plan.Storage { return &p }, zfs.Runner{ZFS: s.ZFS, ZPool: s.ZPool}, l.log), nil
}

// StallReplica stalls (on) or resumes (off) a replica in the drill:
// stalled, its target's newest snapshot becomes older than its max_lag;
// resumed, the target is fresh again and its source holds the grid again
// (after a prune). The target's watch measures it at once (when the node is
// up), so its metrics and the dashboard show it without waiting for the
// schedule; the other nodes' watches see it at their next measurement.
func (l *Lab) StallReplica(name string, on bool) error {
	w, err := l.stallReplica(name, on)
	if err != nil || w == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), labStorageTimeout)
	defer cancel()
	w.Measure(ctx)
	return nil
}

// replicaEnds calls f for every end named name among the lab nodes'
// plans (the targets' Replicas, or with sources the Sources), with that
// node's zfs stand-in, and reports whether there was one. The caller holds
// l.mu.
func (l *Lab) replicaEnds(name string, sources bool, f func(ln *labNode, s *zfstest.Standin, rp plan.ReplicaWatch) error) (bool, error) {
	found := false
	for _, ln := range l.nodes {
		if ln.plan.Storage == nil {
			continue
		}
		ends := ln.plan.Storage.Replicas
		if sources {
			ends = ln.plan.Storage.Sources
		}
		for _, rp := range ends {
			if rp.Name != name {
				continue
			}
			s, err := l.storageStandin(ln)
			if err != nil {
				return found, err
			}
			found = true
			if err := f(ln, s, rp); err != nil {
				return found, err
			}
		}
	}
	return found, nil
}

// stallReplica seeds the stand-ins and returns the target's watch, nil
// when the target is down.
func (l *Lab) stallReplica(name string, on bool) (*storage.Watch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var target *storage.Watch
	found, err := l.replicaEnds(name, false, func(ln *labNode, s *zfstest.Standin, rp plan.ReplicaWatch) error {
		if err := l.seedReplica(s, rp, on); err != nil {
			return err
		}
		if !on {
			if err := s.Stall(rp.Dataset, false); err != nil { // after a hang
				return err
			}
		}
		if !ln.down && ln.obs != nil {
			target = ln.watch
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no zfs replica %q in the lab", name)
	}
	if !on { // the source holds the grid again, after a prune
		if _, err := l.replicaEnds(name, true, func(_ *labNode, s *zfstest.Standin, rp plan.ReplicaWatch) error {
			return s.SetSnapshots(rp.Dataset, l.gridSnaps(0, 71))
		}); err != nil {
			return nil, err
		}
	}
	return target, nil
}

// HangReplica makes every zfs command on a replica's target dataset hang
// (as syncoid and zfs hung in 2023-05-23): the target's listing is killed
// at the timeout, offedge_replica_up is 0 and the lag keeps growing from
// the last snapshot seen. /resume answers again.
func (l *Lab) HangReplica(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	found, err := l.replicaEnds(name, false, func(_ *labNode, s *zfstest.Standin, rp plan.ReplicaWatch) error {
		return s.Stall(rp.Dataset, true)
	})
	if err == nil && !found {
		err = fmt.Errorf("no zfs replica %q in the lab", name)
	}
	return err
}

// PruneReplica makes a replica's source hold only a snapshot taken now,
// none of the ones its target has: the source pruned the common snapshot
// (2023-06-08), and OffedgeReplicaNoCommonSnapshot fires. /resume restores
// it.
func (l *Lab) PruneReplica(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := time.Now().Truncate(time.Second)
	// GUIDs of the grid are Unix seconds; this one is not one.
	snap := zfstest.Snap{Name: "autosnap_" + at.UTC().Format("2006-01-02_15:04:05") + "_hourly", GUID: uint64(at.UnixNano()) | 1, Created: at}
	found, err := l.replicaEnds(name, true, func(_ *labNode, s *zfstest.Standin, rp plan.ReplicaWatch) error {
		return s.SetSnapshots(rp.Dataset, []zfstest.Snap{snap})
	})
	if err == nil && !found {
		err = fmt.Errorf("no zfs replica %q with a source in the lab", name)
	}
	return err
}

// FillPool fills (on) a node's pool to 95% or drains it back to half.
func (l *Lab) FillPool(node, pool string, on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.nodes {
		if ln.node.Name != node || ln.plan.Storage == nil {
			continue
		}
		for _, p := range ln.plan.Storage.Pools {
			if p.Name != pool {
				continue
			}
			s, err := l.storageStandin(ln)
			if err != nil {
				return err
			}
			alloc := uint64(8e12)
			if on {
				alloc = 15.2e12
			}
			return s.SetPool(pool, 16e12, alloc)
		}
		return fmt.Errorf("node %s watches no pool %q", node, pool)
	}
	return fmt.Errorf("no node %q with storage in the lab", node)
}
