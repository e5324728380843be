package plan

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/offedge/offedge/inventory"
)

// Storage watch defaults (docs/storage.md).
const (
	// DefaultStorageInterval is how often a node lists its replicas'
	// snapshots and its pools' allocation.
	DefaultStorageInterval = time.Minute
	// DefaultDatasetInterval is how often a node reads its datasets'
	// used/available bytes and sharenfs: they change slowly, and a host
	// with a hundred datasets stays under two commands a second.
	DefaultDatasetInterval = 5 * time.Minute
	// DefaultStorageTimeout bounds each zfs command.
	DefaultStorageTimeout = 30 * time.Second
	// DefaultBackupMaxEntries bounds the directory entries read per
	// backup directory and pass.
	DefaultBackupMaxEntries = 10000

	// Pool capacity defaults (docs/storage.md#capacity says why):
	// warn at 80% used, critical at 90%, and warn when the growth of the
	// last half-horizon, extrapolated, fills the pool within 7 days.
	DefaultPoolWarn        = 80
	DefaultPoolCritical    = 90
	DefaultPoolFillsWithin = 7 * 24 * time.Hour
)

// Storage is what a node measures of the storage it holds
// (docs/storage.md): the zfs and pvesr replicas it receives and sends, its
// pools and datasets, and its file backups. The runtime reads only this,
// never the inventory.
type Storage struct {
	Interval        time.Duration `json:"interval"`
	DatasetInterval time.Duration `json:"dataset_interval"`
	Timeout         time.Duration `json:"timeout"`
	// Replicas are the zfs and pvesr replicas this node is the target of.
	Replicas []ReplicaWatch `json:"replicas"`
	// Sources are the zfs and pvesr replicas this node is the source of:
	// their source datasets' snapshots are exported so that the newest
	// snapshot common to both ends can be computed where both are scraped.
	Sources []ReplicaWatch `json:"sources,omitempty"`
	// Pools are the pools holding the node's declared datasets and the
	// datasets of the replicas it receives, with their thresholds.
	Pools []PoolWatch `json:"pools"`
	// Datasets are the declared datasets and the replicas' target
	// datasets, whose used/available bytes (and, when declared, NFS
	// export) are measured.
	Datasets []DatasetWatch `json:"datasets,omitempty"`
	// Backups are the directories of file backups, with their maximum age.
	Backups []BackupWatch `json:"backups,omitempty"`
	// MaxEntries bounds the entries read per backup directory and pass.
	MaxEntries int `json:"max_entries,omitempty"`
}

// ReplicaWatch is one replica measured on one of its ends.
type ReplicaWatch struct {
	Name string `json:"name"`
	// Dataset is the replica's dataset on this node.
	Dataset string `json:"dataset"`
	// Source is where it is copied from, NODE:DATASET (for the text); on
	// a source watch, Target is where it goes.
	Source string        `json:"source,omitempty"`
	Target string        `json:"target,omitempty"`
	MaxLag time.Duration `json:"max_lag"`
}

// PoolWatch is one pool and its capacity thresholds, defaults resolved.
type PoolWatch struct {
	Name string `json:"name"`
	// Warn and Critical are used percentages (allocated / size).
	Warn     float64 `json:"warn"`
	Critical float64 `json:"critical"`
	// FillsWithin is the horizon of the growth alert.
	FillsWithin time.Duration `json:"fills_within"`
}

// DatasetWatch is one dataset whose space is measured. With NFSDeclared,
// its live sharenfs is compared with NFS.
type DatasetWatch struct {
	Name        string    `json:"name"`
	NFSDeclared bool      `json:"nfs_declared,omitempty"`
	NFS         NFSExport `json:"nfs,omitempty"`
}

// NFSExport is a dataset's declared NFS export, resolved.
type NFSExport struct {
	// Clients are the prefixes the export admits (an address is its /32 or
	// /128); "*" admits everyone. Empty: not exported.
	Clients []string `json:"clients,omitempty"`
	// InheritedFrom is the parent whose sharenfs the dataset shares (set
	// for nfs_inherit, and for a dataset declaring nothing under an
	// exported parent, which OE506 reports).
	InheritedFrom string `json:"inherited_from,omitempty"`
}

// BackupWatch is one directory of file backups.
type BackupWatch struct {
	Name   string        `json:"name"`
	Dir    string        `json:"dir"`
	Glob   string        `json:"glob,omitempty"`
	MaxAge time.Duration `json:"max_age"`
}

// storage plans the node's storage watch.
func (c *compiler) storage() *Storage { return StorageOf(c.m, c.node.Name) }

// StorageOf is the storage section of node's plan: nil when the node
// receives and sends no zfs or pvesr replica and declares no storage.
// offedge export prometheus generates the storage alerts from it, so that
// the rules and the measurements share one resolution of the defaults.
func StorageOf(m *inventory.Model, node string) *Storage {
	n := m.Node(node)
	if n == nil {
		return nil
	}
	var st Storage
	end := func(e *inventory.ReplicaEnd) string {
		if e == nil {
			return ""
		}
		return e.Node + ":" + e.Path
	}
	for _, r := range m.ReplicasAt(node) {
		// pvesr (Proxmox storage replication) copies zfs volumes too: its
		// __replicate_ snapshots are measured the same way.
		if r.Kind != "zfs" && r.Kind != "pvesr" {
			continue
		}
		if r.Target != nil && r.Target.Node == node {
			st.Replicas = append(st.Replicas, ReplicaWatch{Name: r.Name, Dataset: r.Target.Path, Source: end(r.Source), MaxLag: r.MaxLag.D()})
		}
		if r.Source != nil && r.Source.Node == node && r.Target != nil {
			st.Sources = append(st.Sources, ReplicaWatch{Name: r.Name, Dataset: r.Source.Path, Target: end(r.Target), MaxLag: r.MaxLag.D()})
		}
	}
	ns := n.Storage
	if len(st.Replicas) == 0 && len(st.Sources) == 0 && (ns == nil || len(ns.Datasets)+len(ns.Pools)+len(ns.Backups) == 0) {
		return nil
	}
	byName := func(a, b ReplicaWatch) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(st.Replicas, byName)
	slices.SortFunc(st.Sources, byName)

	datasets := map[string]bool{}
	addDataset := func(d DatasetWatch) {
		if !datasets[d.Name] {
			datasets[d.Name] = true
			st.Datasets = append(st.Datasets, d)
		}
	}
	if ns != nil {
		for _, d := range ns.Datasets {
			addDataset(DatasetWatch{Name: d.Name, NFSDeclared: true, NFS: declaredExport(ns, d)})
		}
	}
	for _, r := range st.Replicas {
		addDataset(DatasetWatch{Name: r.Dataset})
	}
	sort.Slice(st.Datasets, func(i, j int) bool { return st.Datasets[i].Name < st.Datasets[j].Name })

	pools := map[string]bool{}
	for _, d := range st.Datasets {
		pools[inventory.PoolOf(d.Name)] = true
	}
	if ns != nil {
		for _, p := range ns.Pools {
			pools[p.Name] = true
		}
	}
	for name := range pools {
		pw := PoolWatch{Name: name, Warn: DefaultPoolWarn, Critical: DefaultPoolCritical, FillsWithin: DefaultPoolFillsWithin}
		if p := ns.Pool(name); p != nil {
			if p.Warn > 0 {
				pw.Warn = float64(p.Warn)
			}
			if p.Critical > 0 {
				pw.Critical = float64(p.Critical)
			}
			if p.FillsWithin > 0 {
				pw.FillsWithin = p.FillsWithin.D()
			}
			// Only one of the two set: keep the order warn < critical.
			if pw.Warn >= pw.Critical {
				if p.Warn > 0 {
					pw.Critical = min(100, pw.Warn+10)
				} else {
					pw.Warn = max(0, pw.Critical-10)
				}
			}
		}
		st.Pools = append(st.Pools, pw)
	}
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].Name < st.Pools[j].Name })

	if ns != nil {
		for _, b := range ns.Backups {
			st.Backups = append(st.Backups, BackupWatch{Name: b.Name, Dir: path.Clean(b.Dir), Glob: b.Glob, MaxAge: b.MaxAge.D()})
		}
	}
	st.Interval, st.DatasetInterval, st.Timeout = DefaultStorageInterval, DefaultDatasetInterval, DefaultStorageTimeout
	st.MaxEntries = DefaultBackupMaxEntries
	return &st
}

// declaredExport resolves what the inventory says d's sharenfs is.
func declaredExport(ns *inventory.NodeStorage, d *inventory.Dataset) NFSExport {
	if d.NFSOff {
		return NFSExport{}
	}
	if len(d.NFS) > 0 {
		return NFSExport{Clients: NFSClients(d.NFS)}
	}
	if p := ns.ExportedParent(d); p != nil {
		return NFSExport{Clients: NFSClients(p.NFS), InheritedFrom: p.Name}
	}
	return NFSExport{}
}

// NFSClients normalises NFS client entries: an address becomes its
// single-address prefix, a prefix is masked, "*" and /0 stay "*"; sorted,
// without duplicates.
func NFSClients(entries []string) []string {
	var out []string
	for _, e := range entries {
		if inventory.OpenNFSClient(e) {
			out = append(out, "*")
			continue
		}
		if p, err := parsePrefixOrAddr(e); err == nil {
			out = append(out, p)
			continue
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *Storage) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "\nstorage: every %s (datasets every %s), zfs commands time out after %s\n", s.Interval, s.DatasetInterval, s.Timeout)
	for _, p := range s.Pools {
		fmt.Fprintf(b, "  pool %s: warn at %g%% used, critical at %g%%, warn when it fills within %s\n", p.Name, p.Warn, p.Critical, durText(p.FillsWithin))
	}
	for _, r := range s.Replicas {
		lag := "no max_lag"
		if r.MaxLag > 0 {
			lag = "max_lag " + r.MaxLag.String()
		}
		fmt.Fprintf(b, "  replica %s: %s from %s, %s\n", r.Name, r.Dataset, r.Source, lag)
	}
	for _, r := range s.Sources {
		fmt.Fprintf(b, "  replica %s: source %s, copied to %s\n", r.Name, r.Dataset, r.Target)
	}
	for _, d := range s.Datasets {
		if !d.NFSDeclared || len(d.NFS.Clients) == 0 {
			continue // not exported: not worth a line
		}
		var exp string
		switch {
		case d.NFS.InheritedFrom != "":
			exp = "exported to [" + strings.Join(d.NFS.Clients, ", ") + "] inherited from " + d.NFS.InheritedFrom
		default:
			exp = "exported to [" + strings.Join(d.NFS.Clients, ", ") + "]"
		}
		fmt.Fprintf(b, "  dataset %s: %s\n", d.Name, exp)
	}
	for _, bk := range s.Backups {
		glob := bk.Glob
		if glob == "" {
			glob = "*"
		}
		age := "no max_age"
		if bk.MaxAge > 0 {
			age = "max_age " + durText(bk.MaxAge)
		}
		fmt.Fprintf(b, "  backup %s: newest of %s/%s, %s\n", bk.Name, bk.Dir, glob, age)
	}
}

// parsePrefixOrAddr renders an address or prefix as a masked prefix.
func parsePrefixOrAddr(s string) (string, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", err
	}
	return netip.PrefixFrom(a, a.BitLen()).String(), nil
}

// durText renders a duration as the inventory writes it: 7d, 36h, 90m.
func durText(d time.Duration) string { return inventory.Duration(d).String() }
