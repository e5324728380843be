package guard

import (
	"errors"
	"strings"
)

// Errors of [NormalizePath]. Each is answered with 400.
var (
	ErrPathNotAbsolute = errors.New("path does not start with /")
	ErrPathEscape      = errors.New("path is malformed: a % not followed by two hexadecimal digits")
	ErrPathAboveRoot   = errors.New("path has a .. segment that climbs above the root")
	ErrPathSlash       = errors.New("path contains an encoded slash or a backslash")
	ErrPathControl     = errors.New("path contains a NUL or control byte")
)

// NormalizePath returns the one form of a request path that the edge
// routes, checks and forwards, from the path as received (still
// percent-encoded, without the query):
//
//   - percent-encoded unreserved characters (letters, digits, "-", ".", "_",
//     "~") are decoded, other percent-encodings get upper-case hex digits,
//     and bytes that may not appear raw in a path are percent-encoded
//     (RFC 3986 6.2.2);
//   - "." and ".." segments are resolved (RFC 3986 5.2.4) — after decoding,
//     so that %2e%2e is "..";
//   - repeated slashes are merged, as nginx's merge_slashes.
//
// nginx resolves the same way before it chooses a location. Refused: a ".."
// that would climb above the root (nginx answers 400 too), a malformed
// percent-encoding, an encoded slash (%2F) or any backslash (a backend that
// decodes them would see separators the routing did not; Apache httpd and
// Tomcat refuse %2F by default), and NUL or control bytes, raw or encoded.
//
// Because no separator or dot can hide in what stays encoded, decoding the
// result ([DecodePath]) yields the same segments: route prefixes may be
// matched against the decoded form. NormalizePath is idempotent.
func NormalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", ErrPathNotAbsolute
	}
	if clean(p) {
		return p, nil
	}
	// Pass 1: one canonical encoding.
	dec := make([]byte, 0, len(p)+8)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || !IsHex(p[i+1]) || !IsHex(p[i+2]) {
				return "", ErrPathEscape
			}
			v := Unhex(p[i+1])<<4 | Unhex(p[i+2])
			i += 2
			switch {
			case v == '/' || v == '\\':
				return "", ErrPathSlash
			case v < 0x20 || v == 0x7f:
				return "", ErrPathControl
			case isUnreserved(v):
				dec = append(dec, v)
			default:
				dec = append(dec, '%', hexUpper[v>>4], hexUpper[v&15])
			}
			continue
		}
		switch {
		case c == '\\':
			return "", ErrPathSlash
		case c < 0x20 || c == 0x7f:
			return "", ErrPathControl
		case c == '/' || isPathChar(c):
			dec = append(dec, c)
		default:
			dec = append(dec, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	// Pass 2: segments. out always starts with "/".
	out := make([]byte, 0, len(dec))
	s := string(dec)
	for len(s) > 0 {
		// s starts with "/"; seg is what follows up to the next "/".
		s = s[1:]
		end := strings.IndexByte(s, '/')
		last := end < 0
		if last {
			end = len(s)
		}
		seg := s[:end]
		s = s[end:]
		switch seg {
		case "", ".":
			if last {
				out = append(out, '/')
			}
		case "..":
			if len(out) == 0 {
				return "", ErrPathAboveRoot
			}
			out = out[:strings.LastIndexByte(string(out), '/')]
			if last {
				out = append(out, '/')
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
	}
	if len(out) == 0 {
		return "/", nil
	}
	return string(out), nil
}

// clean reports whether p is already normal: only path characters, no
// percent sign, no empty or dot segment (a trailing slash is fine). Most
// request paths are, and take no allocation.
func clean(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c != '/' {
				if !isPathChar(c) {
					return false
				}
				continue
			}
		}
		seg := p[segStart:i]
		switch seg {
		case ".", "..":
			return false
		case "":
			if i < len(p) { // "//": an empty segment before the end
				return false
			}
		}
		segStart = i + 1
	}
	return true
}

// DecodePath decodes the percent-encodings left in a normalised path (see
// [NormalizePath]): the form route prefixes are matched against and static
// file names are taken from. It does not allocate when there are none.
func DecodePath(norm string) string {
	i := strings.IndexByte(norm, '%')
	if i < 0 {
		return norm
	}
	b := make([]byte, 0, len(norm))
	b = append(b, norm[:i]...)
	for ; i < len(norm); i++ {
		c := norm[i]
		if c == '%' && i+2 < len(norm) && IsHex(norm[i+1]) && IsHex(norm[i+2]) {
			b = append(b, Unhex(norm[i+1])<<4|Unhex(norm[i+2]))
			i += 2
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

const hexUpper = "0123456789ABCDEF"

// IsHex reports whether c is a hexadecimal digit (percent-encoding, chunk sizes).
func IsHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// Unhex is the value of the hexadecimal digit c (IsHex(c) must hold).
func Unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// isUnreserved: RFC 3986 unreserved.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar: RFC 3986 pchar without pct-encoded (unreserved, sub-delims,
// ":" and "@").
func isPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}
