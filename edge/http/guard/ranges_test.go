package guard

import (
	"strconv"
	"strings"
	"testing"
)

func TestCoalesceRanges(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"bytes=0-99", "bytes=0-99", true},
		{"bytes=0-0," + strings.Repeat("0-0,", 3999) + "0-0", "bytes=0-0", true},
		{"bytes=0-9,5-20,21-30", "bytes=0-30", true},
		{"bytes=50-,0-9,60-70", "bytes=0-9,50-", true},
		{"bytes=-10,-500,0-1", "bytes=0-1,-500", true},
		{"bytes= 0-1 , 4-5", "bytes=0-1,4-5", true},
		{"BYTES=0-1", "bytes=0-1", true},
		{disjoint(MaxRanges + 1), "", false},
		{disjoint(MaxRanges), disjoint(MaxRanges), true},
		{"bytes=5-1", "bytes=5-1", true}, // invalid: left to the server (416)
		{"bytes=x-1", "bytes=x-1", true}, // invalid
		{"bytes=-0", "bytes=-0", true},   // unsatisfiable
		{"items=0-1", "items=0-1", true}, // other unit
		{"", "", true},
	}
	for _, tt := range tests {
		got, ok := CoalesceRanges(tt.in, MaxRanges)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CoalesceRanges(%.60q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// disjoint is a range set of n ranges that do not touch: 0-0,2-2,...
func disjoint(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = strconv.Itoa(2*i) + "-" + strconv.Itoa(2*i)
	}
	return "bytes=" + strings.Join(parts, ",")
}

// FuzzCoalesceRanges: coalescing is idempotent and never yields more than
// MaxRanges ranges.
func FuzzCoalesceRanges(f *testing.F) {
	for _, s := range []string{"bytes=0-0,0-0", "bytes=1-2,3-4,-5", "bytes=9-,0-", "bytes=-1,-2", "bytes=a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		out, ok := CoalesceRanges(h, MaxRanges)
		if !ok || out == h {
			return
		}
		if n := strings.Count(out, ",") + 1; n > MaxRanges {
			t.Fatalf("%q -> %q: %d ranges", h, out, n)
		}
		again, ok := CoalesceRanges(out, MaxRanges)
		if !ok || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", h, out, again)
		}
	})
}
