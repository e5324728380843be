package guard

import (
	"net/netip"
	"strings"
)

// NormalizeHost turns a Host header or SNI value into the lookup form: port
// removed, lower case, trailing dot removed, IPv6 brackets removed. ok is
// false for anything that is not a valid host name or IP literal; such a
// request is refused with 400.
func NormalizeHost(hostport string) (string, bool) {
	if hostport == "" {
		return "", false
	}
	host := hostport
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", false
		}
		rest := host[end+1:]
		if rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return "", false
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() {
			return "", false
		}
		return a.String(), true
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if !validPort(host[i+1:]) {
			return "", false
		}
		host = host[:i]
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if !ValidHostname(host) {
		return "", false
	}
	return lowerASCII(host), true
}

// validPort accepts a decimal port of at most 65535, or nothing ("host:"
// is tolerated as nginx does).
func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// ValidHostname reports whether h is a DNS name (letters, digits, '-', '_'
// and dots, labels of 1..63 bytes, 253 bytes in all) or an IPv4 literal,
// which has that shape.
func ValidHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
