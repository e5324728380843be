package inventory

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"time"
)

// datasetRE is a ZFS dataset name: POOL[/CHILD...], no snapshot or bookmark.
var datasetRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)*$`)

// PoolOf returns the pool a dataset is on: its first component.
func PoolOf(dataset string) string {
	pool, _, _ := strings.Cut(dataset, "/")
	return pool
}

// Pool returns the node's declared pool of that name, or nil.
func (s *NodeStorage) Pool(name string) *Pool {
	if s == nil {
		return nil
	}
	for _, p := range s.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Dataset returns the node's declared dataset of that name, or nil.
func (s *NodeStorage) Dataset(name string) *Dataset {
	if s == nil {
		return nil
	}
	for _, d := range s.Datasets {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// DatasetNames lists the declared datasets' names.
func (s *NodeStorage) DatasetNames() []string {
	var names []string
	if s != nil {
		for _, d := range s.Datasets {
			names = append(names, d.Name)
		}
	}
	return names
}

// ExportedParent is the nearest declared ancestor of d with an NFS export,
// the one whose sharenfs d inherits when it has none of its own.
func (s *NodeStorage) ExportedParent(d *Dataset) *Dataset {
	name := d.Name
	for {
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
		if p := s.Dataset(name); p != nil && len(p.NFS) > 0 {
			return p
		}
	}
}

// OpenNFSClient says an NFS client entry admits everyone: "*" or a /0.
func OpenNFSClient(c string) bool {
	if c == "*" {
		return true
	}
	p, err := netip.ParsePrefix(c)
	return err == nil && p.Bits() == 0
}

func (b *builder) validateStorage(n *Node, obj string) {
	st := n.Storage
	if st == nil {
		return
	}
	pools := map[string]bool{}
	for i, p := range st.Pools {
		pobj := fmt.Sprintf("%s: storage: pool %d", obj, i)
		switch {
		case p.Name == "":
			b.errf(p.Pos, pobj, "e.g. name: zfs-hdd", "missing name")
			continue
		case !datasetRE.MatchString(p.Name) || strings.Contains(p.Name, "/"):
			b.errf(p.Pos, pobj, "a pool is the first part of a dataset name: zfs-hdd, rpool", "invalid pool name %q", p.Name)
			continue
		case pools[p.Name]:
			b.errf(p.Pos, pobj, "declare each pool once", "pool %q is declared twice", p.Name)
		}
		pools[p.Name] = true
		pobj = fmt.Sprintf("%s: storage: pool %q", obj, p.Name)
		for _, v := range []struct {
			name string
			p    Percent
		}{{"warn", p.Warn}, {"critical", p.Critical}} {
			if v.p < 0 || v.p > 100 {
				b.errf(p.Pos, pobj, "a used percentage between 1 and 100, e.g. 80%", "%s %v%% is not a percentage of the pool", v.name, float64(v.p))
			}
		}
		if p.Warn > 0 && p.Critical > 0 && p.Warn >= p.Critical {
			b.errf(p.Pos, pobj, "warn below critical, e.g. warn: 80%, critical: 90%", "warn %v%% is not below critical %v%%", float64(p.Warn), float64(p.Critical))
		}
		if p.FillsWithin != 0 && p.FillsWithin.D() < time.Hour {
			b.errf(p.Pos, pobj, "a horizon of hours or days, e.g. fills_within: 7d", "fills_within %s is shorter than an hour", p.FillsWithin)
		}
	}
	backups := map[string]bool{}
	for i, bk := range st.Backups {
		bobj := fmt.Sprintf("%s: storage: backup %d", obj, i)
		if bk.Name == "" {
			b.errf(bk.Pos, bobj, "e.g. name: vzdump", "missing name")
			continue
		}
		if backups[bk.Name] {
			b.errf(bk.Pos, bobj, "give each backup its own name", "backup %q is declared twice", bk.Name)
		}
		backups[bk.Name] = true
		bobj = fmt.Sprintf("%s: storage: backup %q", obj, bk.Name)
		switch {
		case bk.Dir == "":
			b.errf(bk.Pos, bobj, "e.g. dir: /zfs-hdd/backups/dump", "missing dir")
		case !path.IsAbs(bk.Dir) || path.Clean(bk.Dir) != strings.TrimSuffix(bk.Dir, "/") && bk.Dir != "/":
			b.errf(bk.Pos, bobj, "write an absolute path without .. or //, e.g. /zfs-hdd/backups/dump", "dir %q is not a clean absolute path", bk.Dir)
		}
		if bk.Glob != "" {
			if _, err := path.Match(bk.Glob, ""); err != nil || strings.Contains(bk.Glob, "/") {
				b.errf(bk.Pos, bobj, `a file name pattern without /, e.g. glob: "vzdump-*.zst"`, "glob %q is not a file name pattern", bk.Glob)
			}
		}
	}
	seen := map[string]bool{}
	for i, d := range st.Datasets {
		dobj := fmt.Sprintf("%s: storage: dataset %d", obj, i)
		switch {
		case d.Name == "":
			b.errf(d.Pos, dobj, "e.g. name: zfs-hdd/off", "missing name")
			continue
		case !datasetRE.MatchString(d.Name):
			b.errf(d.Pos, dobj, "write POOL/PATH, without a leading / or an @snapshot", "invalid dataset name %q", d.Name)
			continue
		case seen[d.Name]:
			b.errf(d.Pos, dobj, "declare each dataset once", "dataset %q is declared twice", d.Name)
		}
		seen[d.Name] = true
		for _, c := range d.NFS {
			if c == "*" {
				continue // refused by offedge check (OE505), with its why
			}
			if _, err := netip.ParsePrefix(c); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(c); err == nil {
				continue
			}
			b.errf(d.Pos, dobj, "write an address or a prefix (192.0.2.0/28)", "NFS client %q is not an address or a prefix", c)
		}
		if n := btoi(len(d.NFS) > 0) + btoi(d.NFSInherit) + btoi(d.NFSOff); n > 1 {
			b.errf(d.Pos, dobj, "keep one of nfs, nfs_inherit and nfs_off", "nfs, nfs_inherit and nfs_off contradict each other")
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
