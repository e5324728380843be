package topology

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/gen"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
)

var sizes = []struct {
	name string
	sz   gen.Config
}{
	{"tenth", gen.Config{Servers: 50, Guests: 200, Services: 500}},
	{"full", gen.Large},
}

// tunneledUse returns a guest that uses a service through the model's first
// tunnel, for Why.
func tunneledUse(tb testing.TB, m *inventory.Model) (string, string) {
	tb.Helper()
	t := m.Tunnels[0]
	e := reach.New(m)
	for _, n := range m.Nodes {
		for _, u := range n.Uses {
			if u == t.Service && n.Name != t.Entrance.Node {
				if p, _ := e.ServicePaths(n, m.Service(u)); len(p) > 0 && p[0].Hops[0].Via == t.Name {
					return n.Name, u
				}
			}
		}
	}
	tb.Fatal("no node uses a service through the first tunnel")
	return "", ""
}

func genModel(tb testing.TB, sz gen.Config) *inventory.Model {
	tb.Helper()
	m, err := gen.Model(sz)
	if err != nil {
		tb.Fatalf("generated inventory does not load:\n%v", err)
	}
	return m
}

func BenchmarkWhy(b *testing.B) {
	for _, s := range sizes {
		m := genModel(b, s.sz)
		from, to := tunneledUse(b, m)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Why(m, from, to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkImpact(b *testing.B) {
	for _, s := range sizes {
		m := genModel(b, s.sz)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Impact(m, "s0"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuildSVG(b *testing.B) {
	for _, s := range sizes {
		m := genModel(b, s.sz)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Build(m).WriteSVG(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestGeneratedFullSize checks the generated model is meaningful (paths
// through tunnels, impacts) and that each operation stays under a second at
// full size.
func TestGeneratedFullSize(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size model in -short mode")
	}
	m := genModel(t, sizes[1].sz)
	timed := func(what string, fn func() error) {
		t.Helper()
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s took %v, want under 1s", what, d)
		}
	}
	var e *Explanation
	from, to := tunneledUse(t, m)
	timed("Why", func() (err error) { e, err = Why(m, from, to); return })
	if !e.Reachable() || e.Destinations[0].Paths[0].Title != "via tunnel t0" {
		t.Errorf("%s -> %s should go through tunnel t0: %+v", from, to, e.Destinations[0])
	}
	var r *ImpactReport
	timed("Impact", func() (err error) { r, err = Impact(m, "s0"); return })
	if len(r.DownNodes) != 1+2000/500 || len(r.LostServices) == 0 || len(r.LostTunnels) == 0 || len(r.Unreachable) == 0 {
		t.Errorf("impact of s0: %d down, %d services, %d tunnels, %d unreachable",
			len(r.DownNodes), len(r.LostServices), len(r.LostTunnels), len(r.Unreachable))
	}
	timed("Build+WriteSVG", func() error { return Build(m).WriteSVG(io.Discard) })
	fmt.Fprint(io.Discard, r)
}
