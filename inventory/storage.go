package inventory

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// datasetRE is a ZFS dataset name: POOL[/CHILD...], no snapshot or bookmark.
var datasetRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.:-]+)*$`)

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
