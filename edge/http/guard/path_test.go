package guard

import (
	"net/url"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"", "/", nil},
		{"/", "/", nil},
		{"/a/b", "/a/b", nil},
		{"/a/b/", "/a/b/", nil},
		{"//admin/secret", "/admin/secret", nil},
		{"/admin//secret", "/admin/secret", nil},
		{"/admin///", "/admin/", nil},
		{"/./admin/secret", "/admin/secret", nil},
		{"/x/../admin/secret", "/admin/secret", nil},
		{"/x/./../admin/./secret/.", "/admin/secret/", nil},
		{"/admin/x/..", "/admin/", nil},
		{"/%2e%2e/admin/secret", "", ErrPathAboveRoot},
		{"/x/%2e%2e/admin/secret", "/admin/secret", nil},
		{"/x/%2E./admin", "/admin", nil},
		{"/%61dmin/secret", "/admin/secret", nil},
		{"/a%7eb", "/a~b", nil},
		{"/a%3fb", "/a%3Fb", nil},
		{"/caf%c3%a9", "/caf%C3%A9", nil},
		{"/café", "/caf%C3%A9", nil},
		{"/a b", "/a%20b", nil},
		{"/a;b=c:d@e!$&'()*+,", "/a;b=c:d@e!$&'()*+,", nil},
		{"/..", "", ErrPathAboveRoot},
		{"/a/../..", "", ErrPathAboveRoot},
		{"/../etc/passwd", "", ErrPathAboveRoot},
		{"/..foo/bar..", "/..foo/bar..", nil},
		{"/...", "/...", nil},
		{"/a%2fb", "", ErrPathSlash},
		{"/a%2Fb", "", ErrPathSlash},
		{"/a%5cb", "", ErrPathSlash},
		{"/a\\b", "", ErrPathSlash},
		{"/a%00", "", ErrPathControl},
		{"/a\x01", "", ErrPathControl},
		{"/a%7f", "", ErrPathControl},
		{"/a%", "", ErrPathEscape},
		{"/a%2", "", ErrPathEscape},
		{"/a%zz", "", ErrPathEscape},
		{"a/b", "", ErrPathNotAbsolute},
		{"*", "", ErrPathNotAbsolute},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizePath(tt.in)
			if err != tt.err || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestNormalizePathCleanAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePath("/images/products/301/762/042/2003/1.jpg") }); n != 0 {
		t.Fatalf("%v allocations for a normal path", n)
	}
}

func TestDecodePath(t *testing.T) {
	for in, want := range map[string]string{"/a": "/a", "/a%3Fb": "/a?b", "/caf%C3%A9/": "/café/"} {
		if got := DecodePath(in); got != want {
			t.Errorf("DecodePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// reference resolves a path the way nginx does before choosing a location:
// decode every percent-encoding first, then merge slashes and resolve dot
// segments. ok is false where nginx and NormalizePath refuse differently
// (an encoded slash or backslash, control bytes, climbing above the root).
func reference(p string) (string, bool) {
	d, err := url.PathUnescape(p)
	if err != nil || strings.ContainsAny(p, "\\") || strings.Contains(strings.ToLower(p), "%2f") || strings.Contains(strings.ToLower(p), "%5c") {
		return "", false
	}
	var out []string
	segs := strings.Split(d, "/")[1:]
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/"), true
}

// FuzzNormalizePath: normalisation is idempotent, its result has no empty
// (but a trailing) or dot segment and no separator hidden in an encoding,
// and decoding it gives what nginx's decode-then-resolve gives.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "//admin/secret", "/./admin/secret", "/x/../admin/secret", "/%2e%2e/admin/secret",
		"/x/%2E%2e/a", "/a%2fb", "/caf%c3%a9", "/a/..", "/a//b/./", "/%41%42", "/a%", "/a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		n, err := NormalizePath(p)
		if err != nil {
			return
		}
		again, err := NormalizePath(n)
		if err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", p, n, again, err)
		}
		segs := strings.Split(n, "/")
		for i, s := range segs[1:] {
			if (s == "" && i != len(segs)-2) || s == "." || s == ".." {
				t.Fatalf("%q -> %q has segment %q", p, n, s)
			}
		}
		d := DecodePath(n)
		if strings.Count(d, "/") != strings.Count(n, "/") || strings.ContainsAny(d, "\\\x00") {
			t.Fatalf("%q -> %q decodes to %q: a separator was hidden", p, n, d)
		}
		if ref, ok := reference(p); ok && ref != d {
			t.Fatalf("%q: decoded %q, nginx would route %q", p, d, ref)
		}
	})
}
