package httpedge

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// hostTable maps host names to sites the way nginx's server_name does:
// an exact name wins over any wildcard, and among leading wildcards
// ("*.example.org", matching every name below example.org but not
// example.org itself) the longest wins.
type hostTable[T any] struct {
	exact     map[string]T
	wildcards []wildcardEntry[T] // sorted by suffix length, longest first
}

type wildcardEntry[T any] struct {
	suffix string // ".example.org"
	v      T
}

func newHostTable[T any]() *hostTable[T] {
	return &hostTable[T]{exact: make(map[string]T)}
}

// add registers a configured name; it fails on a malformed name or a
// duplicate.
func (h *hostTable[T]) add(name string, v T) error {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	if strings.HasPrefix(n, "*.") {
		if !validHostname(n[2:]) {
			return fmt.Errorf("host %q: not a valid wildcard name", name)
		}
		for _, w := range h.wildcards {
			if w.suffix == n[1:] {
				return fmt.Errorf("host %q: listed twice", name)
			}
		}
		h.wildcards = append(h.wildcards, wildcardEntry[T]{suffix: n[1:], v: v})
		sort.SliceStable(h.wildcards, func(i, j int) bool { return len(h.wildcards[i].suffix) > len(h.wildcards[j].suffix) })
		return nil
	}
	if strings.Contains(n, "*") {
		return fmt.Errorf("host %q: only a leading wildcard (*.example.org) is supported", name)
	}
	if _, err := netip.ParseAddr(strings.Trim(n, "[]")); err == nil {
		n = strings.Trim(n, "[]")
	} else if !validHostname(n) {
		return fmt.Errorf("host %q: not a valid host name", name)
	}
	if _, dup := h.exact[n]; dup {
		return fmt.Errorf("host %q: listed twice", name)
	}
	h.exact[n] = v
	return nil
}

// lookup finds the entry for a normalised host name (see normalizeHost).
func (h *hostTable[T]) lookup(host string) (T, bool) {
	if v, ok := h.exact[host]; ok {
		return v, true
	}
	for _, w := range h.wildcards {
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			return w.v, true
		}
	}
	var zero T
	return zero, false
}

// normalizeHost turns a Host header or SNI value into the lookup form: port
// removed, lower case, trailing dot removed, IPv6 brackets removed. ok is
// false for anything that is not a valid host name or IP literal; such a
// request is refused with 400.
func normalizeHost(hostport string) (string, bool) {
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
	if !validHostname(host) {
		return "", false
	}
	return lowerASCII(host), true
}

func validPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return len(p) == 0 // "host:" is tolerated as nginx does
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// validHostname accepts DNS names (letters, digits, '-', '_' and dots, labels
// of 1..63 bytes, 253 bytes in all) and IPv4 literals, which have that shape.
func validHostname(h string) bool {
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
