package reach

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

// models loads every fixture the rules and topology are tested on, and the
// Open Food Facts inventory.
func models(t *testing.T) map[string]*inventory.Model {
	t.Helper()
	out := map[string]*inventory.Model{}
	files, _ := filepath.Glob("../check/testdata/*.yaml")
	for _, p := range files {
		m, err := inventory.Load(os.DirFS(filepath.Dir(p)), filepath.Base(p))
		if err != nil {
			t.Fatalf("loading %s:\n%v", p, err)
		}
		out[filepath.Base(p)] = m
	}
	for name, dir := range map[string]string{"topology": "../topology/testdata/fixture", "small": "../inventory/testdata/small"} {
		m, err := inventory.LoadPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = m
	}
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out["openfoodfacts"] = m
	return out
}

// TestUsableAgreesWithPaths: the shortcuts answer exactly what ServicePaths
// answers — whether some path is open, and the first hop of the first open
// one — for every node and service of every fixture, with every node up and
// with a few servers down in turn.
func TestUsableAgreesWithPaths(t *testing.T) {
	pairs, usable := 0, 0
	for name, m := range models(t) {
		e := New(m)
		views := []*Engine{e}
		for _, n := range m.Nodes {
			if n.Server != nil && len(views) < 4 {
				down := map[*inventory.Node]bool{n: true}
				for _, g := range e.GuestsOf(n.Name) {
					down[g] = true
				}
				views = append(views, e.Without(down))
			}
		}
		for _, v := range views {
			for _, n := range m.Nodes {
				for _, s := range m.Services {
					paths, _ := v.ServicePaths(n, s)
					want := AnyOpen(paths)
					if got := v.Usable(n, s); got != want {
						t.Errorf("%s: Usable(%s, %s) = %t, ServicePaths says %t", name, n.Name, s.Name, got, want)
					}
					if h, ok := v.FirstHop(n, s); ok {
						i := slices.IndexFunc(paths, Path.Open)
						if i < 0 || paths[i].Hops[0] != h {
							t.Errorf("%s: FirstHop(%s, %s) = %v, ServicePaths' first open path: %v", name, n.Name, s.Name, h, paths)
						}
					}
					pairs++
					if want {
						usable++
					}
				}
			}
		}
	}
	if usable == 0 || usable == pairs {
		t.Fatalf("%d of %d pairs usable: the comparison does not exercise both answers", usable, pairs)
	}
}

// TestAdmitsNodeAgreesWithModel: the cached admission agrees with
// inventory.Model.Admits for every allow list, network and node.
func TestAdmitsNodeAgreesWithModel(t *testing.T) {
	yes, no := 0, 0
	for name, m := range models(t) {
		e := New(m)
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
					if got := e.AdmitsNode(l, nw.Name, n); got != want {
						t.Errorf("%s: AdmitsNode(%v, %s, %s) = %t, Admits says %t", name, l, nw.Name, n.Name, got, want)
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

// TestSourcesAgreeWithResolveAllow: the address set handed to the firewall
// is the allow list's resolution, prefix for prefix.
func TestSourcesAgreeWithResolveAllow(t *testing.T) {
	checked := 0
	for name, m := range models(t) {
		e := New(m)
		for _, s := range m.Services {
			for _, nw := range m.Networks {
				want := m.ResolveAllow(s.Allow, nw.Name)
				got := e.Sources(s.Allow, nw.Name)
				if got.Any != want.Any || !slices.Equal(got.Sources, want.Sources) {
					t.Errorf("%s: service %s on %s: Sources = %+v, ResolveAllow = %+v", name, s.Name, nw.Name, got, want)
				}
				checked += len(got.Sources)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no allow list resolved to any address")
	}
}

func TestServicePaths(t *testing.T) {
	m, err := inventory.LoadPath("../inventory/testdata/small")
	if err != nil {
		t.Fatal(err)
	}
	e := New(m)
	paths, _ := e.ServicePaths(m.Node("b-app"), m.Service("db"))
	if len(paths) != 1 {
		t.Fatalf("got %d paths; want 1 (through the tunnel):\n%v", len(paths), paths)
	}
	p := paths[0]
	var kinds []string
	for _, h := range p.Hops {
		kinds = append(kinds, h.Kind+":"+h.To.Name)
	}
	if got, want := strings.Join(kinds, " "), "entrance:b-client tunnel:a1 tcp:a-db"; got != want || !p.Open() {
		t.Fatalf("hops %q blocked %v; want %q, not blocked", got, p.Blocked, want)
	}
	// b-client itself is not in the tunnel's allow list.
	paths, _ = e.ServicePaths(m.Node("b1"), m.Service("db"))
	blocked := 0
	for _, p := range paths {
		if !p.Open() {
			blocked++
		}
	}
	if blocked == 0 {
		t.Fatalf("b1 reaches db unblocked; want the entrance or forward allow list to block it:\n%v", paths)
	}
}

// TestBlockIsData: a refusal names its object, position, list and refused
// node as fields; the two renderings come from them.
func TestBlockIsData(t *testing.T) {
	m, err := inventory.Load(os.DirFS("../check/testdata"), "OE204.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := New(m)
	paths, _ := e.ServicePaths(m.Node("app"), m.Service("mongodb"))
	if len(paths) != 1 || paths[0].Open() {
		t.Fatalf("want one blocked path, got %v", paths)
	}
	b := paths[0].Blocked
	svc := m.Service("mongodb")
	if b.Kind != BlockService || b.Name != "mongodb" || b.Pos != svc.Pos || b.Node != m.Node("app") || b.Network != "lan" || b.Source.String() != "10.0.0.3" {
		t.Errorf("block %+v: want service mongodb at %s refusing app (10.0.0.3 on lan)", b, svc.Pos)
	}
	if got, want := b.Reason(), `service "mongodb" allows [backup, db-host]; app (10.0.0.3) is not admitted`; got != want {
		t.Errorf("Reason:\ngot  %s\nwant %s", got, want)
	}
	if got, want := b.String(), `service "mongodb" at `+svc.Pos.String()+` allows [backup, db-host]; app (10.0.0.3 on lan) is not admitted`; got != want {
		t.Errorf("String:\ngot  %s\nwant %s", got, want)
	}
	// The tunnel's entrance refuses remote-app: the block says so as a kind.
	paths, _ = e.ServicePaths(m.Node("remote-app"), svc)
	if len(paths) == 0 || paths[0].Blocked == nil || paths[0].Blocked.Kind != BlockTunnel || paths[0].Blocked.Pos != m.Tunnel("mongodb").Pos {
		t.Fatalf("remote-app: want the tunnel entrance's block, got %v", paths)
	}
	if got := paths[0].Blocked.Object(); got != `tunnel "mongodb" entrance` {
		t.Errorf("Object = %q", got)
	}
}

func TestExpandAllow(t *testing.T) {
	m, err := inventory.LoadPath("../topology/testdata/fixture")
	if err != nil {
		t.Fatal(err)
	}
	e := New(m)
	if got, want := e.expandAllow([]string{"h1", "policy:cloud-nodes"}), "[h1, policy:cloud-nodes = [provider:cloud]]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := e.expandAllow(nil); !strings.Contains(got, "nobody") {
		t.Errorf("empty list: %q", got)
	}
}
