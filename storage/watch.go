// Package storage measures, on the node that holds them, the replicas its
// plan lists (docs/storage.md): it runs the real zfs command through
// storage/zfs and exports what it finds as Prometheus metrics.
package storage

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage/zfs"
)

// Watch measures a node's replicas. It reads the storage section of the
// plan in force at every pass (a reload that adds or removes a replica is
// followed) and never the inventory.
type Watch struct {
	plan   func() *plan.Storage
	runner zfs.Runner
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	results map[string]result   // by replica name
	pools   map[string]zfs.Pool // by pool name, the last measured
}

// result is the last measurement of one replica.
type result struct {
	dataset  string
	measured time.Time
	newest   time.Time // zero: the target has no snapshot
	count    int
	err      error
	missing  bool // zfs said the dataset does not exist
}

// New returns a Watch of the storage section current() returns (nil: no
// replica). A zero Runner runs zfs from PATH; its timeout is the plan's.
func New(current func() *plan.Storage, r zfs.Runner, log *slog.Logger) *Watch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watch{plan: current, runner: r, log: log, now: time.Now, results: map[string]result{}, pools: map[string]zfs.Pool{}}
}

// Measure lists every replica's snapshots once, one command at a time (a
// node's zfs is not asked for more than one listing at once).
func (w *Watch) Measure(ctx context.Context) {
	st := w.plan()
	if st == nil {
		return
	}
	r := w.runner
	if r.Timeout == 0 {
		r.Timeout = st.Timeout
	}
	for _, rp := range st.Replicas {
		if ctx.Err() != nil {
			return
		}
		snaps, err := r.Snapshots(ctx, rp.Dataset)
		res := result{dataset: rp.Dataset, measured: w.now(), err: err}
		var nd *zfs.NoDatasetError
		res.missing = errors.As(err, &nd)
		if err == nil {
			res.count = len(snaps)
			if f := zfs.Fresh(snaps, nil); f.Newest != nil {
				res.newest = f.Newest.Created
			}
		} else {
			w.log.Warn("replica not measured", "replica", rp.Name, "dataset", rp.Dataset, "err", err)
		}
		w.mu.Lock()
		if err != nil {
			// Keep the newest snapshot known: the lag goes on growing
			// while the measurement fails.
			prev := w.results[rp.Name]
			if prev.dataset == rp.Dataset {
				res.newest, res.count = prev.newest, prev.count
			}
		}
		w.results[rp.Name] = res
		w.mu.Unlock()
	}
	for _, name := range st.Pools {
		if ctx.Err() != nil {
			return
		}
		p, err := r.Pool(ctx, name)
		w.mu.Lock()
		if err != nil {
			delete(w.pools, name)
		} else {
			w.pools[name] = p
		}
		w.mu.Unlock()
		if err != nil {
			w.log.Warn("pool not measured", "pool", name, "err", err)
		}
	}
}

// Run measures at start and then every plan interval until ctx ends.
func (w *Watch) Run(ctx context.Context) {
	for {
		w.Measure(ctx)
		every := plan.DefaultStorageInterval
		if st := w.plan(); st != nil && st.Interval > 0 {
			every = st.Interval
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

var (
	replicaLabels  = []string{"replica", "dataset"}
	descLag        = prometheus.NewDesc("offedge_replica_lag_seconds", "Age of the newest snapshot of the replica's dataset on this node (its target): now minus its creation; grows while measurements fail; +Inf when no snapshot is known.", replicaLabels, nil)
	descNewest     = prometheus.NewDesc("offedge_replica_newest_snapshot_timestamp_seconds", "Creation (Unix time) of the newest snapshot of the replica's dataset on this node.", replicaLabels, nil)
	descSnapshots  = prometheus.NewDesc("offedge_replica_snapshots", "Snapshots of the replica's dataset on this node (the dataset itself, not its children).", replicaLabels, nil)
	descUp         = prometheus.NewDesc("offedge_replica_up", "1 when the last listing of the replica's dataset succeeded, 0 when zfs failed, timed out or the dataset does not exist.", replicaLabels, nil)
	descMissing    = prometheus.NewDesc("offedge_replica_dataset_missing", "1 when zfs said the replica's dataset does not exist on this node (a typo in the inventory, or a dataset never created or destroyed).", replicaLabels, nil)
	descMeasuredAt = prometheus.NewDesc("offedge_replica_last_measured_timestamp_seconds", "When (Unix time) the replica's dataset was last listed, successfully or not.", replicaLabels, nil)
	descPoolSize   = prometheus.NewDesc("offedge_pool_size_bytes", "Size of a pool holding replicas on this node (zpool list -Hp).", []string{"pool"}, nil)
	descPoolAlloc  = prometheus.NewDesc("offedge_pool_allocated_bytes", "Allocated bytes of a pool holding replicas on this node; absent while zpool fails.", []string{"pool"}, nil)
	watchDescs     = []*prometheus.Desc{descLag, descNewest, descSnapshots, descUp, descMissing, descMeasuredAt, descPoolSize, descPoolAlloc}
)

// Describe implements prometheus.Collector.
func (w *Watch) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range watchDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one series set per replica of
// the plan in force that has been measured.
func (w *Watch) Collect(ch chan<- prometheus.Metric) {
	st := w.plan()
	if st == nil {
		return
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range st.Pools {
		if p, ok := w.pools[name]; ok {
			ch <- prometheus.MustNewConstMetric(descPoolSize, prometheus.GaugeValue, float64(p.Size), name)
			ch <- prometheus.MustNewConstMetric(descPoolAlloc, prometheus.GaugeValue, float64(p.Allocated), name)
		}
	}
	for _, rp := range st.Replicas {
		res, ok := w.results[rp.Name]
		if !ok || res.dataset != rp.Dataset {
			continue
		}
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, rp.Name, rp.Dataset)
		}
		up, missing := 1.0, 0.0
		if res.err != nil {
			up = 0
		}
		if res.missing {
			missing = 1
		}
		g(descUp, up)
		g(descMissing, missing)
		g(descMeasuredAt, float64(res.measured.Unix()))
		if res.newest.IsZero() {
			// No copy known (none on the target, or never listed): as old
			// as can be, so the max_lag alert fires.
			g(descLag, math.Inf(1))
		} else {
			g(descLag, max(now.Sub(res.newest), 0).Seconds())
			g(descNewest, float64(res.newest.Unix()))
		}
		if res.err == nil || !res.newest.IsZero() {
			g(descSnapshots, float64(res.count))
		}
	}
}
