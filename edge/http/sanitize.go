package httpedge

import (
	"errors"
	"strings"
)

var (
	errPathNotAbsolute = errors.New("path does not start with /")
	errPathTraversal   = errors.New("path contains a . or .. segment")
	errPathBackslash   = errors.New("path contains a backslash")
	errPathControl     = errors.New("path contains a NUL or control byte")
)

// cleanStaticPath turns a decoded URL path into a name relative to a static
// root, or refuses it. Nothing is resolved against ".." (nginx refuses what
// would climb above the root; we refuse every dot segment so that no
// encoding trick—%2e%2e, %2e., overlong forms decoded by the URL parser—can
// reach a parent). Backslashes, NUL and control bytes are refused; repeated
// slashes are merged as nginx's merge_slashes does. The root itself is ".".
// A path without repeated or trailing slashes (nearly all) is answered with
// a substring of p, not a copy.
func cleanStaticPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errPathNotAbsolute
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			return "", errPathBackslash
		case c < 0x20 || c == 0x7f:
			return "", errPathControl
		}
	}
	clean := true // no empty segment: the name is p without its slash
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch seg {
		case "":
			clean = false
		case ".", "..":
			return "", errPathTraversal
		}
	}
	if clean {
		return p[1:], nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return ".", nil
	}
	return b.String(), nil
}
