package guard

import "testing"

func TestNormalizeHostPort(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"x", "x", true},
		{"x:", "x", true},
		{"x:80", "x", true},
		{"x:65535", "x", true},
		{"x:65536", "", false},
		{"x:99999", "", false},
		{"[2001:db8::1]:65535", "2001:db8::1", true},
		{"[2001:db8::1]:99999", "", false},
		{"x:8a", "", false},
	}
	for _, tt := range tests {
		if got, ok := NormalizeHost(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
