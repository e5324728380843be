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
	gone := prefix + "4194305-1"         // above PID_MAX_LIMIT (4,194,304): no such process
	goneLab := prefix + "4194305-switch" // a lab test's node namespace
	alive := prefix + strconv.Itoa(os.Getpid()) + "-999"
	other := prefix + "keep"
	noRest := prefix + "4194305-"
	for _, name := range []string{gone, goneLab, alive, other, noRest} {
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
	for _, del := range []string{gone, goneLab} {
		if slices.Contains(names, del) {
			t.Errorf("%s (process gone) was not deleted: %v", del, names)
		}
	}
	for _, keep := range []string{alive, other, noRest, ns.Name} {
		if !slices.Contains(names, keep) {
			t.Errorf("%s was deleted: %v", keep, names)
		}
	}
}
