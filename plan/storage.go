package plan

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Storage watch defaults (docs/storage.md).
const (
	// DefaultStorageInterval is how often a node lists its replicas'
	// snapshots.
	DefaultStorageInterval = time.Minute
	// DefaultStorageTimeout bounds each zfs command.
	DefaultStorageTimeout = 30 * time.Second
)

// Storage is what a node measures of the storage it holds: the zfs and
// pvesr replicas whose target is this node (docs/storage.md). The runtime reads
// only this, never the inventory.
type Storage struct {
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	// Replicas are the zfs and pvesr replicas this node is the target of.
	Replicas []ReplicaWatch `json:"replicas"`
	// Pools are the pools holding those replicas' datasets, whose size
	// and allocation are measured too.
	Pools []string `json:"pools"`
}

// ReplicaWatch is one replica measured on its target.
type ReplicaWatch struct {
	Name string `json:"name"`
	// Dataset is the replica's dataset on this node.
	Dataset string `json:"dataset"`
	// Source is where it is copied from, NODE:DATASET (for the text).
	Source string        `json:"source"`
	MaxLag time.Duration `json:"max_lag"`
}

// storage plans the node's storage watch: nil when it is the target of no
// zfs replica.
func (c *compiler) storage() *Storage {
	var st Storage
	for _, r := range c.m.Replicas {
		// pvesr (Proxmox storage replication) copies zfs volumes too: its
		// __replicate_ snapshots are measured the same way.
		if (r.Kind != "zfs" && r.Kind != "pvesr") || r.Target == nil || r.Target.Node != c.node.Name {
			continue
		}
		src := ""
		if r.Source != nil {
			src = r.Source.Node + ":" + r.Source.Path
		}
		st.Replicas = append(st.Replicas, ReplicaWatch{Name: r.Name, Dataset: r.Target.Path, Source: src, MaxLag: r.MaxLag.D()})
	}
	if len(st.Replicas) == 0 {
		return nil
	}
	sort.Slice(st.Replicas, func(i, j int) bool { return st.Replicas[i].Name < st.Replicas[j].Name })
	seen := map[string]bool{}
	for _, r := range st.Replicas {
		pool, _, _ := strings.Cut(r.Dataset, "/")
		if !seen[pool] {
			seen[pool] = true
			st.Pools = append(st.Pools, pool)
		}
	}
	sort.Strings(st.Pools)
	st.Interval, st.Timeout = DefaultStorageInterval, DefaultStorageTimeout
	return &st
}

func (s *Storage) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "\nstorage: every %s, zfs commands time out after %s\n", s.Interval, s.Timeout)
	fmt.Fprintf(b, "  pools: %s\n", strings.Join(s.Pools, ", "))
	for _, r := range s.Replicas {
		lag := "no max_lag"
		if r.MaxLag > 0 {
			lag = "max_lag " + r.MaxLag.String()
		}
		fmt.Fprintf(b, "  replica %s: %s from %s, %s\n", r.Name, r.Dataset, r.Source, lag)
	}
}
