// Package zfstest is a stand-in for the zfs and zpool commands, for tests
// and the lab on machines without ZFS (docs/storage.md). It is a shell
// script that answers the exact command lines storage/zfs runs from files
// in a directory: snapshot listings, space, pools and sharenfs values set
// through this package, "dataset does not exist" for any other name, and
// a stall (a 600 s sleep) or a failure on demand.
package zfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Standin is one stand-in directory; ZFS and ZPool are the executables.
type Standin struct {
	Dir, ZFS, ZPool string
}

const script = `#!/bin/sh
d=%q
last=
for a in "$@"; do last=$a; done
k=$(printf '%%s' "$last" | tr / %%)
if [ -e "$d/stall/$k" ]; then exec sleep 600; fi
if [ -e "$d/fail/$k" ]; then cat "$d/fail/$k" >&2; exit 1; fi
case "$1 $4" in
"list snapshot") f=$d/snapshots/$k ;;
"list name,used,available") f=$d/space/$k ;;
"list name,size,allocated,free") f=$d/pool/$k ;;
"get name,value,source") f=$d/sharenfs/$k ;;
*) echo "zfs stand-in: unexpected command: $*" >&2; exit 2 ;;
esac
if [ ! -e "$f" ]; then
	case "$4" in
	name,size,allocated,free) echo "cannot open '$last': no such pool" >&2 ;;
	*) echo "cannot open '$last': dataset does not exist" >&2 ;;
	esac
	exit 1
fi
cat "$f"
`

// New writes a stand-in into dir (created if needed).
func New(dir string) (*Standin, error) {
	for _, sub := range []string{"snapshots", "space", "pool", "sharenfs", "stall", "fail"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	s := &Standin{Dir: dir, ZFS: filepath.Join(dir, "zfs"), ZPool: filepath.Join(dir, "zpool")}
	body := fmt.Sprintf(script, dir)
	for _, p := range []string{s.ZFS, s.ZPool} {
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func key(name string) string { return strings.ReplaceAll(name, "/", "%") }

// write replaces a file atomically: a listing running meanwhile reads the
// old or the new content, never half of one.
func (s *Standin) write(sub, name, content string) error {
	p := filepath.Join(s.Dir, sub, key(name))
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Snap is one snapshot of a listing.
type Snap struct {
	Name    string
	GUID    uint64
	Created time.Time
}

// SetSnapshots makes dataset exist with these snapshots, written in the
// shape of zfs list -Hp -t snapshot -o name,guid,creation.
func (s *Standin) SetSnapshots(dataset string, snaps []Snap) error {
	var b strings.Builder
	for _, sn := range snaps {
		fmt.Fprintf(&b, "%s@%s\t%d\t%d\n", dataset, sn.Name, sn.GUID, sn.Created.Unix())
	}
	return s.write("snapshots", dataset, b.String())
}

// SetSpace sets a dataset's used and available bytes.
func (s *Standin) SetSpace(dataset string, used, avail uint64) error {
	return s.write("space", dataset, fmt.Sprintf("%s\t%d\t%d\n", dataset, used, avail))
}

// SetPool sets a pool's size and allocated bytes.
func (s *Standin) SetPool(pool string, size, alloc uint64) error {
	return s.write("pool", pool, fmt.Sprintf("%s\t%d\t%d\t%d\n", pool, size, alloc, size-min(alloc, size)))
}

// SetShareNFS sets a dataset's sharenfs value and its source.
func (s *Standin) SetShareNFS(dataset, value, source string) error {
	return s.write("sharenfs", dataset, fmt.Sprintf("%s\t%s\t%s\n", dataset, value, source))
}

// Stall makes every command on name hang (on) or answer again (off).
func (s *Standin) Stall(name string, on bool) error {
	p := filepath.Join(s.Dir, "stall", key(name))
	if !on {
		err := os.Remove(p)
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	return os.WriteFile(p, nil, 0o644)
}

// Fail makes every command on name fail with msg on standard error
// (msg empty: answer again).
func (s *Standin) Fail(name, msg string) error {
	if msg == "" {
		err := os.Remove(filepath.Join(s.Dir, "fail", key(name)))
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	return s.write("fail", name, msg+"\n")
}
