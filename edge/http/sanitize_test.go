package httpedge

import (
	"strings"
	"testing"
)

func TestCleanStaticPath(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"/", ".", nil},
		{"/images/products/123/1.jpg", "images/products/123/1.jpg", nil},
		{"//images///a.jpg", "images/a.jpg", nil},
		{"/dir/", "dir", nil},
		{"/..", "", errPathTraversal},
		{"/../etc/passwd", "", errPathTraversal},
		{"/a/../../etc/passwd", "", errPathTraversal},
		{"/a/./b", "", errPathTraversal},
		{"/a/..", "", errPathTraversal},
		{"/a\\..\\b", "", errPathBackslash},
		{"/a\x00b", "", errPathControl},
		{"/a\nb", "", errPathControl},
		{"relative", "", errPathNotAbsolute},
		{"/..foo/bar..", "..foo/bar..", nil}, // dots inside names are names
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := cleanStaticPath(tt.in)
			if err != tt.err || got != tt.want {
				t.Fatalf("cleanStaticPath(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

// A path that needs no merging is answered without a copy: a static
// request allocates nothing for its file name.
func TestCleanStaticPathNoCopy(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = cleanStaticPath("/images/products/123/1.jpg") }); n != 0 {
		t.Fatalf("%v allocations per clean path, want 0", n)
	}
}

// FuzzCleanStaticPath: an accepted path is relative, has no dot segment,
// backslash or NUL, and cleaning it again is the identity.
func FuzzCleanStaticPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/../x", "/a/%2e%2e/b", "/a\\b", "/a\x00", "//x//y/", "/./", "/...", "/a/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := cleanStaticPath(p)
		if err != nil {
			return
		}
		if got == "." {
			return
		}
		if strings.HasPrefix(got, "/") || strings.ContainsAny(got, "\\\x00") {
			t.Fatalf("%q -> %q", p, got)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q -> %q has segment %q", p, got, seg)
			}
		}
		if again, err := cleanStaticPath("/" + got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", p, got, again, err)
		}
	})
}
