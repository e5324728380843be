package plan

import (
	"sort"

	"github.com/offedge/offedge/edge/tunnel"
)

// Secret kinds.
const (
	SecretPSK    = "psk"     // a tunnel's pre-shared secret (offedge secrets init makes it)
	SecretPKIKey = "pki-key" // a node's PKI private key (offedge pki issue makes it)
)

// Secret is a file of key material the node's plan reads, with the tunnel
// ends that use it.
type Secret struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Uses are "TUNNEL entrance" or "TUNNEL exit", sorted.
	Uses []string `json:"uses"`
}

// Secrets lists the secret files the plan reads, each once, sorted by
// path: what must exist on the node before it can run (`offedge plan`
// marks the missing ones, `offedge secrets init` creates the PSKs).
func (p *Plan) Secrets() []Secret {
	byPath := map[string]*Secret{}
	add := func(a tunnel.Auth, use string) {
		path, kind := a.PSKFile, SecretPSK
		if a.PKI != nil {
			path, kind = a.PKI.KeyFile, SecretPKIKey
		}
		if path == "" {
			return
		}
		s := byPath[path]
		if s == nil {
			s = &Secret{Path: path, Kind: kind}
			byPath[path] = s
		}
		s.Uses = append(s.Uses, use)
	}
	for _, l := range p.Listeners {
		if e := l.Entrance; e != nil {
			add(e.Auth, e.Name+" entrance")
		}
		if x := l.Exit; x != nil {
			for _, t := range x.Tunnels {
				add(t.Auth, t.Name+" exit")
			}
		}
	}
	out := make([]Secret, 0, len(byPath))
	for _, s := range byPath {
		sort.Strings(s.Uses)
		s.Uses = compactStrings(s.Uses)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
