package firewall

import (
	"net/netip"
	"slices"
	"testing"
)

// FuzzIntervalRoundTrip: prefixes encoded as interval elements (in any
// order the kernel returns them) decode back to the same prefixes.
func FuzzIntervalRoundTrip(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1, 32, 10, 0, 0, 2, 32, 192, 0, 2, 0, 28})
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 32, 128, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var ps []netip.Prefix
		for i := 0; i+5 <= len(data) && len(ps) < 16; i += 5 {
			a := netip.AddrFrom4([4]byte(data[i : i+4]))
			ps = append(ps, netip.PrefixFrom(a, int(data[i+4])%33).Masked())
		}
		// Sets hold disjoint intervals, as plan.mergePrefixes makes them.
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		var disjoint []netip.Prefix
		for _, p := range ps {
			if len(disjoint) > 0 && disjoint[len(disjoint)-1].Overlaps(p) {
				continue
			}
			disjoint = append(disjoint, p)
		}
		els := elements(disjoint)
		slices.Reverse(els) // the kernel lists them in its own order
		got := prefixesFromElements(els, true)
		// Touching prefixes may come back merged differently; compare the
		// addresses they cover by their first and last address.
		if cover(got) != cover(disjoint) {
			t.Fatalf("%v encoded and decoded as %v", disjoint, got)
		}
	})
}

func cover(ps []netip.Prefix) string {
	var s string
	for _, p := range ps {
		last := maxAddr(p.Addr())
		if end, ok := afterPrefix(p); ok {
			last = end.Prev()
		}
		s += p.Addr().String() + "-" + last.String() + " "
	}
	return s
}

func TestRangePrefixes(t *testing.T) {
	for _, tc := range []struct {
		first, last string
		want        []string
	}{
		{"10.0.0.1", "10.0.0.1", []string{"10.0.0.1/32"}},
		{"10.0.0.0", "10.255.255.255", []string{"10.0.0.0/8"}},
		{"10.0.0.1", "10.0.0.6", []string{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"}},
		{"0.0.0.0", "255.255.255.255", []string{"0.0.0.0/0"}},
		{"fd00::", "fd00::ffff", []string{"fd00::/112"}},
	} {
		var got []string
		for _, p := range rangePrefixes(netip.MustParseAddr(tc.first), netip.MustParseAddr(tc.last)) {
			got = append(got, p.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s-%s: %v, want %v", tc.first, tc.last, got, tc.want)
		}
	}
	// A prefix reaching the top of the space has no end element.
	if els := elements([]netip.Prefix{netip.MustParsePrefix("128.0.0.0/1")}); len(els) != 1 {
		t.Fatalf("elements of 128.0.0.0/1: %v", els)
	}
}
