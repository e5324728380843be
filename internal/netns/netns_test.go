package netns_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/testutil"
)

// A test binary killed at its timeout leaves its namespaces behind; the
// next New under the same prefix deletes those of processes that are
// gone, and only those.
func TestNewReapsOrphans(t *testing.T) {
	testutil.Netns(t, "oereap") // skips without root; fails in CI
	const prefix = "oereapt"
	gone := prefix + "4194305-1" // above PID_MAX_LIMIT (4,194,304): no such process
	alive := prefix + strconv.Itoa(os.Getpid()) + "-999"
	other := prefix + "keep"
	for _, name := range []string{gone, alive, other} {
		ns, err := netns.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := os.Stat(filepath.Join(netns.Dir, name)); err == nil {
				ns.Close()
			}
		})
	}
	ns, err := netns.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	names, err := netns.List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, gone) {
		t.Errorf("%s (process gone) was not deleted: %v", gone, names)
	}
	for _, keep := range []string{alive, other, ns.Name} {
		if !slices.Contains(names, keep) {
			t.Errorf("%s was deleted: %v", keep, names)
		}
	}
}
