package plan

import (
	"slices"
	"sort"

	"github.com/offedge/offedge/edge/tunnel"
)

// Secret kinds.
const (
	SecretPSK    = "psk"     // a tunnel's pre-shared secret (offedge secrets init makes it)
	SecretPKIKey = "pki-key" // a node's PKI private key (offedge pki issue makes it)
	// SecretAdminToken is the bearer token of the node's admin endpoint
	// (offedge secrets init makes it, as a PSK).
	SecretAdminToken = "admin-token"
)

// Secret is a file of key material the node's plan reads, with the tunnel
// ends that use it.
type Secret struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Uses are "TUNNEL entrance" or "TUNNEL exit", sorted.
	Uses []string `json:"uses"`
}

// Secrets lists the secret files the plan reads (its Resources.Secrets:
// the PSK files and the PKI key), each once, sorted by path: what must exist on the node before it can run (`offedge plan`
// marks the missing ones, `offedge secrets init` creates the PSKs).
func (p *Plan) Secrets() []Secret {
	byPath := map[string]*Secret{}
	for _, ts := range p.Resources.Secrets {
		path, kind := ts.PSKFile, SecretPSK
		if path == "" {
			path, kind = ts.KeyFile, SecretPKIKey
		}
		if path == "" {
			continue
		}
		s := byPath[path]
		if s == nil {
			s = &Secret{Path: path, Kind: kind}
			byPath[path] = s
		}
		s.Uses = append(s.Uses, ts.Uses...)
	}
	if p.Admin != nil && p.Admin.TokenFile != "" && byPath[p.Admin.TokenFile] == nil {
		byPath[p.Admin.TokenFile] = &Secret{Path: p.Admin.TokenFile, Kind: SecretAdminToken, Uses: []string{"admin endpoint"}}
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

// Files returns a with the files of the secret it names written out
// (PSKFile, or the PKI files beside its peer names), as a library caller
// would give them: for tools that read the files themselves (stunnel
// export, the lab writing its secrets). An auth that names no declared
// secret is returned as it is.
func (r *Resources) Files(a tunnel.Auth) tunnel.Auth {
	s, ok := r.Secrets[a.Secret]
	if a.Secret == "" || !ok {
		return a
	}
	out := tunnel.Auth{}
	if s.PSKFile != "" {
		out.PSKFile = s.PSKFile
		return out
	}
	out.PKI = &tunnel.PKIAuth{CAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile}
	if a.PKI != nil {
		out.PKI.PeerNames = slices.Clone(a.PKI.PeerNames)
	}
	return out
}
