package suggest

import "testing"

func TestClosest(t *testing.T) {
	tests := []struct {
		name  string
		cands []string
		max   int
		want  string
	}{
		{"adress", []string{"addresses", "address", "name"}, 2, "address"},
		{"chek", []string{"check", "plan"}, 2, "check"},
		{"zzz", []string{"check", "plan"}, 2, ""},
		{"", []string{"a"}, 1, "a"},
		{"off1", nil, 2, ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.name, tt.cands, tt.max); got != tt.want {
			t.Errorf("Closest(%q, %v, %d) = %q; want %q", tt.name, tt.cands, tt.max, got, tt.want)
		}
	}
	if d := Distance("kitten", "sitting"); d != 3 {
		t.Errorf("Distance(kitten, sitting) = %d; want 3", d)
	}
}
