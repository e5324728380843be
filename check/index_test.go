package check

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

func models(t *testing.T) map[string]*inventory.Model {
	t.Helper()
	out := map[string]*inventory.Model{}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		out[filepath.Base(p)] = load(t, "testdata", filepath.Base(p))
	}
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out["openfoodfacts"] = m
	return out
}

// TestUsableAgreesWithPaths: the index's shortcut answers exactly what
// PathsToService answers — whether some path is not blocked — for every
// node and service of every fixture and of the Open Food Facts inventory.
func TestUsableAgreesWithPaths(t *testing.T) {
	pairs, usable := 0, 0
	for name, m := range models(t) {
		ix := newIndex(m)
		for _, n := range m.Nodes {
			for _, s := range m.Services {
				want := slices.ContainsFunc(m.PathsToService(n, s), func(p inventory.Path) bool { return p.Blocked == "" })
				if got := ix.usable(m, n, s); got != want {
					t.Errorf("%s: usable(%s, %s) = %t, PathsToService says %t", name, n.Name, s.Name, got, want)
				}
				pairs++
				if want {
					usable++
				}
			}
		}
	}
	if usable == 0 || usable == pairs {
		t.Fatalf("%d of %d pairs usable: the comparison does not exercise both answers", usable, pairs)
	}
}

// TestAdmitsAgreesWithModel: the cached admission agrees with
// inventory.Model.Admits for every allow list, network and node.
func TestAdmitsAgreesWithModel(t *testing.T) {
	yes, no := 0, 0
	for name, m := range models(t) {
		ix := newIndex(m)
		var lists [][]string
		for _, s := range m.Services {
			lists = append(lists, s.Allow)
		}
		for _, s := range m.Sites {
			lists = append(lists, s.Allow)
		}
		for _, tn := range m.Tunnels {
			lists = append(lists, tn.Allow)
		}
		for _, f := range m.Forwards {
			lists = append(lists, f.Allow)
		}
		for _, l := range lists {
			for _, nw := range m.Networks {
				for _, n := range m.Nodes {
					want := m.Admits(l, nw.Name, n)
					if got := ix.admits(m, l, nw.Name, n); got != want {
						t.Errorf("%s: admits(%v, %s, %s) = %t, Admits says %t", name, l, nw.Name, n.Name, got, want)
					}
					if want {
						yes++
					} else {
						no++
					}
				}
			}
		}
	}
	if yes == 0 || no == 0 {
		t.Fatalf("admitted %d, refused %d: both answers must be exercised", yes, no)
	}
}
