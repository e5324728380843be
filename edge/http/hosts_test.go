package httpedge

import (
	"strings"
	"testing"
)

func TestHostTable(t *testing.T) {
	h := newHostTable[string]()
	for _, n := range []string{"openfoodfacts.org", "*.openfoodfacts.org", "*.pro.openfoodfacts.org", "pro.openfoodfacts.org", "static.openfoodfacts.org", "2001:db8::1", "192.0.2.10"} {
		if err := h.add(n, n); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ host, want string }{
		{"openfoodfacts.org", "openfoodfacts.org"},
		{"world.openfoodfacts.org", "*.openfoodfacts.org"},
		{"a.b.openfoodfacts.org", "*.openfoodfacts.org"},
		{"pro.openfoodfacts.org", "pro.openfoodfacts.org"},       // exact over wildcard
		{"fr.pro.openfoodfacts.org", "*.pro.openfoodfacts.org"},  // longest wildcard
		{"static.openfoodfacts.org", "static.openfoodfacts.org"}, // exact over wildcard
		{"xopenfoodfacts.org", ""},
		{"openfoodfacts.org.evil", ""},
		{"2001:db8::1", "2001:db8::1"},
		{"192.0.2.10", "192.0.2.10"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, _ := h.lookup(tt.host)
			if got != tt.want {
				t.Fatalf("lookup(%q) = %q, want %q", tt.host, got, tt.want)
			}
		})
	}
}

func TestHostTableRefusesBadNames(t *testing.T) {
	for _, n := range []string{"", "*", "a.*.org", "*example.org", "ex ample.org", "a..b", "*.", strings.Repeat("a", 64) + ".org"} {
		t.Run(n, func(t *testing.T) {
			if err := newHostTable[int]().add(n, 1); err == nil {
				t.Fatalf("add(%q) accepted", n)
			}
		})
	}
	h := newHostTable[int]()
	h.add("a.example.org", 1)
	if err := h.add("A.example.org.", 2); err == nil {
		t.Fatal("duplicate accepted")
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Example.ORG", "example.org", true},
		{"example.org:443", "example.org", true},
		{"example.org.", "example.org", true},
		{"[2001:DB8::1]:8443", "2001:db8::1", true},
		{"[2001:db8::1]", "2001:db8::1", true},
		{"192.0.2.1:80", "192.0.2.1", true},
		{"", "", false},
		{"exa mple.org", "", false},
		{"example.org:http", "", false},
		{"[2001:db8::1", "", false},
		{"[192.0.2.1]", "", false},
		{"a/b", "", false},
		{"a..b", "", false},
		{"exa\x00mple", "", false},
		{"example.org:99999999", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := normalizeHost(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("normalizeHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzHostMatch checks that normalisation and lookup never panic, that a
// normalised host is stable, and that a match is always justified: the name
// is configured exactly or ends with a configured wildcard's suffix.
func FuzzHostMatch(f *testing.F) {
	for _, s := range []string{"openfoodfacts.org", "WORLD.openfoodfacts.org:443", "[::1]:80", "a.pro.openfoodfacts.org.", "", "..", "[", "*.openfoodfacts.org", "x:"} {
		f.Add(s)
	}
	h := newHostTable[string]()
	for _, n := range []string{"openfoodfacts.org", "*.openfoodfacts.org", "*.pro.openfoodfacts.org", "::1"} {
		h.add(n, n)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, ok := normalizeHost(in)
		if !ok {
			return
		}
		if n2, ok2 := normalizeHost(n); !ok2 && !strings.Contains(n, ":") || ok2 && n2 != n {
			t.Fatalf("normalizeHost not stable: %q -> %q -> %q", in, n, n2)
		}
		v, hit := h.lookup(n)
		if !hit {
			return
		}
		if strings.HasPrefix(v, "*.") {
			if !strings.HasSuffix(n, v[1:]) || len(n) <= len(v)-1 {
				t.Fatalf("%q matched %q without the suffix", n, v)
			}
		} else if v != n {
			t.Fatalf("%q matched exact %q", n, v)
		}
	})
}
