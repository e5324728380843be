package linediff

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offedge/offedge/internal/testutil"
)

func TestUnified(t *testing.T) {
	tests := []struct {
		name, a, b, want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"one change", "a\nb\nc\n", "a\nB\nc\n", "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"append", "a\n", "a\nb\n", "--- x\n+++ y\n@@ -1 +1,2 @@\n a\n+b\n"},
		{"from empty", "", "a\n", "--- x\n+++ y\n@@ -0,0 +1 @@\n+a\n"},
		{"to empty", "a\nb\n", "", "--- x\n+++ y\n@@ -1,2 +0,0 @@\n-a\n-b\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\nX\n3\n4\n5\n6\n7\n8\nY\n10\n",
			"--- x\n+++ y\n@@ -1,3 +1,3 @@\n 1\n-2\n+X\n 3\n@@ -8,3 +8,3 @@\n 8\n-9\n+Y\n 10\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unified("x", "y", tt.a, tt.b, 1); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestPatchApplies checks the diffs against GNU patch: applying the output
// to a gives b, for texts with repeated lines where a wrong script shows.
func TestPatchApplies(t *testing.T) {
	patch := testutil.RequireBinary(t, "patch")
	cases := [][2]string{
		{"a\nb\nc\na\nb\nb\na\n", "c\nb\na\nb\na\nc\n"},
		{"x\nx\nx\ny\nx\nx\n", "x\ny\ny\nx\n"},
		{strings.Repeat("l\n", 30) + "m\n" + strings.Repeat("l\n", 30), strings.Repeat("l\n", 10) + "n\n" + strings.Repeat("l\n", 45) + "o\n"},
	}
	// And random texts over a small alphabet, where repeated lines make
	// many equally short scripts.
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		var b strings.Builder
		for range rng.IntN(25) {
			b.WriteString(string(rune('a'+rng.IntN(3))) + "\n")
		}
		return b.String()
	}
	for range 40 {
		cases = append(cases, [2]string{text(), text()})
	}
	for i, c := range cases {
		if c[0] == "" || c[0] == c[1] {
			continue // patch needs a file with content and a change
		}
		dir := t.TempDir()
		f := filepath.Join(dir, "f")
		os.WriteFile(f, []byte(c[0]), 0o644)
		d := Unified("f", "f", c[0], c[1], 3)
		cmd := exec.Command(patch, "-s", f)
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch: %v\n%s\n%s", i, err, out, d)
		}
		if got, _ := os.ReadFile(f); string(got) != c[1] {
			t.Errorf("case %d: patched text %q; want %q\n%s", i, got, c[1], d)
		}
	}
}
