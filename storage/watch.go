// Package storage measures, on the node that holds them, the storage its
// plan lists (docs/storage.md): the replicas it receives and sends, its
// pools and datasets, their NFS exports and its file backups. It runs the
// real zfs command through storage/zfs, reads backup directories itself,
// and exports what it finds as Prometheus metrics.
package storage

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage/zfs"
)

// MaxSnapshotSeries bounds the snapshots of one replica end exported as
// offedge_replica_snapshot_timestamp_seconds (the newest ones): sanoid's
// own check alerts above 150 snapshots a dataset.
const MaxSnapshotSeries = 256

// Watch measures a node's storage. It reads the storage section of the
// plan in force at every pass (a reload that adds or removes a replica is
// followed) and never the inventory.
type Watch struct {
	plan   func() *plan.Storage
	runner zfs.Runner
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	results  map[string]result   // by replica name, the target side
	sources  map[string]result   // by replica name, the source side
	pools    map[string]zfs.Pool // by pool name, the last measured
	datasets map[string]datasetResult
	backups  map[string]backupResult
	// datasetsAt is when the datasets were last read (Measure may run
	// from two goroutines: the schedule and a lab drill).
	datasetsAt time.Time
}

// result is the last measurement of one replica end.
type result struct {
	dataset  string
	measured time.Time
	newest   time.Time // zero: the dataset has no snapshot
	count    int
	err      error
	missing  bool           // zfs said the dataset does not exist
	snaps    []zfs.Snapshot // the newest MaxSnapshotSeries, oldest first
}

// datasetResult is the last reading of one dataset.
type datasetResult struct {
	space    zfs.Space
	spaceOK  bool
	share    zfs.Property
	shareOK  bool
	drift    bool
	declared string // the declared clients, for the metric's label
}

// New returns a Watch of the storage section current() returns (nil:
// nothing to measure). A zero Runner runs zfs from PATH; its timeout is
// the plan's.
func New(current func() *plan.Storage, r zfs.Runner, log *slog.Logger) *Watch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watch{plan: current, runner: r, log: log, now: time.Now,
		results: map[string]result{}, sources: map[string]result{}, pools: map[string]zfs.Pool{},
		datasets: map[string]datasetResult{}, backups: map[string]backupResult{}}
}

// Measure runs one pass, one command at a time (a node's zfs is not asked
// for more than one listing at once): every replica end's snapshots,
// every pool, the backup directories, and the datasets when
// DatasetInterval has passed since they were last read.
func (w *Watch) Measure(ctx context.Context) {
	st := w.plan()
	if st == nil {
		return
	}
	r := w.runner
	if r.Timeout == 0 {
		r.Timeout = st.Timeout
	}
	w.measureEnds(ctx, r, st.Replicas, w.results, "replica not measured")
	w.measureEnds(ctx, r, st.Sources, w.sources, "replica source not measured")
	for _, pw := range st.Pools {
		if ctx.Err() != nil {
			return
		}
		p, err := r.Pool(ctx, pw.Name)
		w.mu.Lock()
		if err != nil {
			delete(w.pools, pw.Name)
		} else {
			w.pools[pw.Name] = p
		}
		w.mu.Unlock()
		if err != nil {
			w.log.Warn("pool not measured", "pool", pw.Name, "err", err)
		}
	}
	w.measureBackups(ctx, st)
	every := st.DatasetInterval
	if every <= 0 {
		every = plan.DefaultDatasetInterval
	}
	now := w.now()
	w.mu.Lock()
	due := w.datasetsAt.IsZero() || now.Sub(w.datasetsAt) >= every
	if due {
		w.datasetsAt = now
	}
	w.mu.Unlock()
	if due {
		w.measureDatasets(ctx, r, st)
	}
}

func (w *Watch) measureEnds(ctx context.Context, r zfs.Runner, ends []plan.ReplicaWatch, into map[string]result, warn string) {
	for _, rp := range ends {
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
			res.snaps = snaps[max(0, len(snaps)-MaxSnapshotSeries):]
		} else {
			w.log.Warn(warn, "replica", rp.Name, "dataset", rp.Dataset, "err", err)
		}
		w.mu.Lock()
		if err != nil {
			// Keep the newest snapshot known: the lag goes on growing
			// while the measurement fails.
			prev := into[rp.Name]
			if prev.dataset == rp.Dataset {
				res.newest, res.count = prev.newest, prev.count
			}
		}
		into[rp.Name] = res
		w.mu.Unlock()
	}
}

// measureDatasets reads every dataset's space and compares the declared
// NFS exports with the live sharenfs, logging each change of drift.
func (w *Watch) measureDatasets(ctx context.Context, r zfs.Runner, st *plan.Storage) {
	for _, d := range st.Datasets {
		if ctx.Err() != nil {
			return
		}
		var res datasetResult
		sp, err := r.Space(ctx, d.Name)
		if err != nil {
			w.log.Warn("dataset not measured", "dataset", d.Name, "err", err)
		} else {
			res.space, res.spaceOK = sp, true
		}
		if d.NFSDeclared {
			prop, err := r.ShareNFS(ctx, d.Name)
			if err != nil {
				w.log.Warn("sharenfs not read", "dataset", d.Name, "err", err)
			} else {
				res.share, res.shareOK = prop, true
				live := plan.NFSClients(zfs.ShareNFSClients(prop.Value))
				res.drift = !slices.Equal(live, d.NFS.Clients)
				res.declared = declaredText(d.NFS)
			}
		}
		w.mu.Lock()
		prev, seen := w.datasets[d.Name]
		w.datasets[d.Name] = res
		w.mu.Unlock()
		if res.shareOK && (!seen || prev.drift != res.drift || prev.share.Value != res.share.Value) {
			if res.drift {
				w.log.Warn("nfs export drift", "dataset", d.Name, "declared", res.declared,
					"sharenfs", res.share.Value, "source", res.share.Source)
			} else if seen && prev.drift {
				w.log.Info("nfs export as declared again", "dataset", d.Name, "sharenfs", res.share.Value)
			}
		}
	}
}

// declaredText renders a declared export as the drift metric's label.
func declaredText(e plan.NFSExport) string {
	if len(e.Clients) == 0 {
		return "off"
	}
	return strings.Join(e.Clients, ",")
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
	descSnapshot   = prometheus.NewDesc("offedge_replica_snapshot_timestamp_seconds", "Creation (Unix time) of one snapshot of a replica's dataset, by GUID, on its target (side=target) or its source (side=source); the newest 256 of each end. The generated rules join both ends on the GUID: the newest common snapshot.", []string{"replica", "dataset", "side", "guid"}, nil)
	descSourceUp   = prometheus.NewDesc("offedge_replica_source_up", "1 when the last listing of the replica's source dataset on this node (its source) succeeded.", replicaLabels, nil)
	descSourceMiss = prometheus.NewDesc("offedge_replica_source_dataset_missing", "1 when zfs said the replica's source dataset does not exist on this node.", replicaLabels, nil)
	descPoolSize   = prometheus.NewDesc("offedge_pool_size_bytes", "Size of a pool this node watches (zpool list -Hp).", []string{"pool"}, nil)
	descPoolAlloc  = prometheus.NewDesc("offedge_pool_allocated_bytes", "Allocated bytes of a pool this node watches; absent while zpool fails.", []string{"pool"}, nil)
	descPoolFree   = prometheus.NewDesc("offedge_pool_free_bytes", "Free bytes of a pool this node watches; absent while zpool fails.", []string{"pool"}, nil)
	descDSUsed     = prometheus.NewDesc("offedge_dataset_used_bytes", "Bytes used by a dataset and its descendants (zfs list -Hp -o used); absent while zfs fails.", []string{"dataset"}, nil)
	descDSAvail    = prometheus.NewDesc("offedge_dataset_available_bytes", "Bytes available to a dataset (its pool's free space, less quotas and reservations); absent while zfs fails.", []string{"dataset"}, nil)
	descDrift      = prometheus.NewDesc("offedge_nfs_export_drift", "1 when the dataset's live sharenfs exports to other clients than the inventory declares (declared: the clients, or off), 0 when they agree; absent while zfs fails.", []string{"dataset", "declared", "sharenfs"}, nil)
	watchDescs     = []*prometheus.Desc{descLag, descNewest, descSnapshots, descUp, descMissing, descMeasuredAt,
		descSnapshot, descSourceUp, descSourceMiss, descPoolSize, descPoolAlloc, descPoolFree, descDSUsed, descDSAvail, descDrift}
)

// Describe implements prometheus.Collector.
func (w *Watch) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range watchDescs {
		ch <- d
	}
	describeBackups(ch)
}

// Collect implements prometheus.Collector: the series of what the plan in
// force lists and has been measured.
func (w *Watch) Collect(ch chan<- prometheus.Metric) {
	st := w.plan()
	if st == nil {
		return
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, pw := range st.Pools {
		if p, ok := w.pools[pw.Name]; ok {
			gauge(descPoolSize, float64(p.Size), pw.Name)
			gauge(descPoolAlloc, float64(p.Allocated), pw.Name)
			gauge(descPoolFree, float64(p.Free), pw.Name)
		}
	}
	for _, d := range st.Datasets {
		res, ok := w.datasets[d.Name]
		if !ok {
			continue
		}
		if res.spaceOK {
			gauge(descDSUsed, float64(res.space.Used), d.Name)
			gauge(descDSAvail, float64(res.space.Available), d.Name)
		}
		if d.NFSDeclared && res.shareOK {
			gauge(descDrift, b2f(res.drift), d.Name, res.declared, truncate(res.share.Value, 256))
		}
	}
	for _, rp := range st.Replicas {
		res, ok := w.results[rp.Name]
		if !ok || res.dataset != rp.Dataset {
			continue
		}
		g := func(d *prometheus.Desc, v float64) { gauge(d, v, rp.Name, rp.Dataset) }
		g(descUp, b2f(res.err == nil))
		g(descMissing, b2f(res.missing))
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
		snapshotSeries(gauge, rp, res, "target")
	}
	for _, rp := range st.Sources {
		res, ok := w.sources[rp.Name]
		if !ok || res.dataset != rp.Dataset {
			continue
		}
		gauge(descSourceUp, b2f(res.err == nil), rp.Name, rp.Dataset)
		gauge(descSourceMiss, b2f(res.missing), rp.Name, rp.Dataset)
		snapshotSeries(gauge, rp, res, "source")
	}
	w.collectBackups(st, now, gauge)
}

// snapshotSeries exports one series per snapshot of the last successful
// listing (none while listings fail: a stale listing must not pass for a
// common snapshot).
func snapshotSeries(gauge func(*prometheus.Desc, float64, ...string), rp plan.ReplicaWatch, res result, side string) {
	if res.err != nil {
		return
	}
	seen := make(map[uint64]bool, len(res.snaps))
	for _, s := range res.snaps {
		if seen[s.GUID] {
			continue // one series per GUID
		}
		seen[s.GUID] = true
		gauge(descSnapshot, float64(s.Created.Unix()), rp.Name, rp.Dataset, side, strconv.FormatUint(s.GUID, 10))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
