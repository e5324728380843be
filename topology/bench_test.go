package topology

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/topology/internal/gen"
)

var sizes = []struct {
	name string
	sz   gen.Size
}{
	{"tenth", gen.Size{Servers: 50, Guests: 200, Services: 500}},
	{"full", gen.Size{Servers: 500, Guests: 2000, Services: 5000}},
}

func genModel(tb testing.TB, sz gen.Size) *inventory.Model {
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
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// g1's second use goes through a tunnel from another provider.
				if _, err := Why(m, gen.Guest(1), gen.Service(0)); err != nil {
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
				if _, err := Impact(m, gen.Server(0)); err != nil {
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
	timed("Why", func() (err error) { e, err = Why(m, gen.Guest(1), gen.Service(0)); return })
	if !e.Reachable() || e.Destinations[0].Paths[0].Title != "via tunnel t0" {
		t.Errorf("g1 -> svc0 should go through tunnel t0: %+v", e.Destinations[0])
	}
	var r *ImpactReport
	timed("Impact", func() (err error) { r, err = Impact(m, gen.Server(0)); return })
	if len(r.DownNodes) != 1+2000/500 || len(r.LostServices) == 0 || len(r.LostTunnels) == 0 || len(r.Unreachable) == 0 {
		t.Errorf("impact of s0: %d down, %d services, %d tunnels, %d unreachable",
			len(r.DownNodes), len(r.LostServices), len(r.LostTunnels), len(r.Unreachable))
	}
	timed("Build+WriteSVG", func() error { return Build(m).WriteSVG(io.Discard) })
	fmt.Fprint(io.Discard, r)
}
