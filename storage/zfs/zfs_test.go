package zfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSnapshots(t *testing.T) {
	snaps, err := ParseSnapshots(fixture(t, "target-snapshots.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 {
		t.Fatalf("%d snapshots, want 3", len(snaps))
	}
	s := snaps[2]
	if s.Dataset != "zfs-hdd/off/products" || s.Name != "autosnap_2023-06-08_09:15:00_frequently" || s.GUID != 1681692777 || s.Created.Unix() != 1686215700 {
		t.Errorf("newest = %+v", s)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"zfs-hdd/off/products\t1\t2\n",         // no @
		"a@b\t1\n",                             // two fields
		"a@b\t1\tThu Jun  8 09:15 2023\n",      // creation without -p
		"a@b\tx\t1\n",                          // guid not a number
		"a@b\t1\t99999999999999999999999999\n", // overflow
		"a@b\t1\t1099511627777\n",              // out of range
	} {
		if _, err := ParseSnapshots([]byte(in)); err == nil {
			t.Errorf("ParseSnapshots(%q): no error", in)
		}
	}
	if _, err := ParseSpace([]byte("other\t1\t2\n"), "zfs-hdd/off/products"); err == nil {
		t.Error("ParseSpace of another dataset: no error")
	}
	if _, err := ParseSpace([]byte("d\t1.5T\t2\n"), "d"); err == nil {
		t.Error("ParseSpace without -p: no error")
	}
}

func TestParseSpacePoolProperty(t *testing.T) {
	sp, err := ParseSpace(fixture(t, "space.txt"), "zfs-hdd/off/products")
	if err != nil || sp.Used != 1099511627776 || sp.Available != 219902325555 {
		t.Errorf("space = %+v, %v", sp, err)
	}
	p, err := ParsePool(fixture(t, "pool.txt"), "zfs-hdd")
	if err != nil || p.Size != 15994458210304 || p.Allocated != 14394958004224 || p.Free != 1599500206080 {
		t.Errorf("pool = %+v, %v", p, err)
	}
	pr, err := ParseProperty(fixture(t, "sharenfs.txt"), "zfs-hdd/off/images")
	if err != nil || pr.Value != "rw=@192.0.2.0/28,no_root_squash" {
		t.Fatalf("property = %+v, %v", pr, err)
	}
	if parent, ok := pr.Inherited(); !ok || parent != "zfs-hdd/off" {
		t.Errorf("Inherited() = %q, %v", parent, ok)
	}
}

func TestFresh(t *testing.T) {
	target, _ := ParseSnapshots(fixture(t, "target-snapshots.txt"))
	source, _ := ParseSnapshots(fixture(t, "source-snapshots.txt"))
	now := time.Unix(1686216600+600, 0)
	f := Fresh(target, source)
	if lag, ok := f.Lag(now); !ok || lag != 900*time.Second+600*time.Second {
		t.Errorf("lag = %v, %v", lag, ok)
	}
	if f.Common == nil || f.Common.GUID != 1681692777 || f.NoCommon() {
		t.Errorf("common = %+v", f.Common)
	}
	// The source pruned every snapshot the target has (2023-06-08).
	f = Fresh(target, source[2:])
	if !f.NoCommon() {
		t.Error("no common snapshot not reported")
	}
	if _, ok := f.CommonAge(now); ok {
		t.Error("common age without a common snapshot")
	}
	// Same names, other GUIDs: not common (a recreated dataset).
	other := append([]Snapshot(nil), source...)
	for i := range other {
		other[i].GUID++
	}
	if !Fresh(target, other).NoCommon() {
		t.Error("snapshots matched by name, not GUID")
	}
	// Source not listed: lag only.
	f = Fresh(target, nil)
	if f.NoCommon() || f.SourceListed {
		t.Error("unlisted source reported as no common snapshot")
	}
	if _, ok := Fresh(nil, source).Lag(now); ok {
		t.Error("lag of an empty target")
	}
}

// standin writes a zfs (and zpool) stand-in on a fresh PATH entry: it
// replays the fixtures for the exact commands the Runner runs, stalls when
// ZFS_STANDIN_STALL is set, and answers as zfs does for a missing dataset.
func standin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	td, _ := filepath.Abs("testdata")
	script := `#!/bin/sh
if [ -n "$ZFS_STANDIN_STALL" ]; then sleep 600; fi
case "$*" in
"list -Hp -t snapshot -o name,guid,creation -s creation -d 1 zfs-hdd/off/products") cat ` + td + `/target-snapshots.txt ;;
"list -Hp -t snapshot -o name,guid,creation -s creation -d 1 zfs-nvme/off/products") cat ` + td + `/source-snapshots.txt ;;
"list -Hp -o name,used,available zfs-hdd/off/products") cat ` + td + `/space.txt ;;
"get -Hp -o name,value,source sharenfs zfs-hdd/off/images") cat ` + td + `/sharenfs.txt ;;
"list -Hp -o name,size,allocated,free zfs-hdd") cat ` + td + `/pool.txt ;;
"list -Hp -o name,size,allocated,free "*) echo "cannot open '$5': no such pool" >&2; exit 1 ;;
"list -Hp -t snapshot -o name,guid,creation -s creation -d 1 "*) echo "cannot open '${11}': dataset does not exist" >&2; exit 1 ;;
*) echo "unexpected: $*" >&2; exit 2 ;;
esac
`
	for _, name := range []string{"zfs", "zpool"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func TestRunnerStandin(t *testing.T) {
	standin(t)
	ctx := context.Background()
	var r Runner
	target, err := r.Snapshots(ctx, "zfs-hdd/off/products")
	if err != nil || len(target) != 3 {
		t.Fatalf("target: %d, %v", len(target), err)
	}
	source, err := r.Snapshots(ctx, "zfs-nvme/off/products")
	if err != nil || Fresh(target, source).Common == nil {
		t.Fatalf("source: %v", err)
	}
	if sp, err := r.Space(ctx, "zfs-hdd/off/products"); err != nil || sp.Available != 219902325555 {
		t.Errorf("space: %+v, %v", sp, err)
	}
	if p, err := r.Pool(ctx, "zfs-hdd"); err != nil || p.Free != 1599500206080 {
		t.Errorf("pool: %+v, %v", p, err)
	}
	if pr, err := r.ShareNFS(ctx, "zfs-hdd/off/images"); err != nil || pr.Value == "" {
		t.Errorf("sharenfs: %+v, %v", pr, err)
	}
	// The opf typo: the dataset does not exist, and the error names it.
	_, err = r.Snapshots(ctx, "zfs-hdd/opf")
	var nd *NoDatasetError
	if !errors.As(err, &nd) || nd.Dataset != "zfs-hdd/opf" || !strings.Contains(err.Error(), "zfs-hdd/opf") {
		t.Errorf("missing dataset: %v", err)
	}
	if _, err = r.Pool(ctx, "rpool"); !errors.As(err, &nd) || nd.Dataset != "rpool" {
		t.Errorf("missing pool: %v", err)
	}
	// Any other failure keeps zfs's own message.
	if _, err = r.Space(ctx, "zfs-hdd/other"); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Errorf("failure: %v", err)
	}
}

func TestRunnerTimeout(t *testing.T) {
	standin(t)
	t.Setenv("ZFS_STANDIN_STALL", "1")
	r := Runner{Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err := r.Snapshots(context.Background(), "zfs-hdd/off/products")
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("stalled zfs: %v", err)
	}
	// The stall is 600s: returning at all proves the kill of the whole
	// process group (the shell and its sleep).
	if d := time.Since(start); d > time.Minute {
		t.Errorf("returned after %v", d)
	}
}

func TestRunnerOutputBound(t *testing.T) {
	standin(t)
	r := Runner{MaxOutput: 100}
	_, err := r.Snapshots(context.Background(), "zfs-hdd/off/products")
	if err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
		t.Fatalf("long output: %v", err)
	}
}

func FuzzParseSnapshots(f *testing.F) {
	f.Add(string(fixtureF(f, "target-snapshots.txt")))
	f.Add("a@b\t1\t2\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		snaps, err := ParseSnapshots([]byte(in))
		if err != nil {
			return
		}
		for i := 1; i < len(snaps); i++ {
			if snaps[i].Created.Before(snaps[i-1].Created) {
				t.Fatal("not oldest first")
			}
		}
		_ = Fresh(snaps, snaps)
	})
}

func fixtureF(f *testing.F, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}
