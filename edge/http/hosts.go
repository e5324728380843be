package httpedge

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/offedge/offedge/edge/http/guard"
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

// normalizeHost is guard.NormalizeHost: the rule is shared with every HTTP
// server of the edge.
func normalizeHost(hostport string) (string, bool) { return guard.NormalizeHost(hostport) }

func validHostname(h string) bool { return guard.ValidHostname(h) }
