package stunnel

import (
	"github.com/offedge/offedge/internal/atomicfile"

	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/internal/secretfile"
	"github.com/offedge/offedge/plan"
)

// Export returns the stunnel4 configuration that lets a host still on
// stunnel4 run its side of the tunnels of node plan p, interoperating with
// offedge on the other side. For each psk tunnel it writes into dir the
// certificate (0644) and key (0600) derived from the tunnel's secret, which
// the configuration names; pki tunnels use the node's PKI files as they are.
func Export(p *plan.Plan, dir string) (*Config, error) {
	cfg := &Config{Name: p.Node + ".conf", Comment: fmt.Sprintf("stunnel4 side of node %s, exported by offedge; interoperates with offedge tunnels (TLS 1.3, mutual, keys derived from each tunnel's secret)", p.Node)}
	cfg.Global = []Option{{Key: "foreground", Value: "no"}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	material := func(name string, a tunnel.Auth) (cert, key, ca string, err error) {
		a = p.Resources.Files(a)
		if a.PKI != nil {
			return a.PKI.CertFile, a.PKI.KeyFile, a.PKI.CAFile, nil
		}
		secret, err := secretfile.Read(a.PSKFile)
		if err != nil {
			return "", "", "", fmt.Errorf("tunnel %q: %w", name, err)
		}
		k, err := tunnel.DerivePSKKey(name, secret)
		if err != nil {
			return "", "", "", err
		}
		cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := atomicfile.Write(cert, k.CertPEM, 0o644); err != nil {
			return "", "", "", err
		}
		if err := atomicfile.Write(key, k.KeyPEM, 0o600); err != nil {
			return "", "", "", err
		}
		return cert, key, "", nil
	}
	sort.SliceStable(p.Listeners, func(i, j int) bool { return p.Listeners[i].Name < p.Listeners[j].Name })
	for _, l := range p.Listeners {
		switch {
		case l.Entrance != nil:
			cert, key, ca, err := material(l.Entrance.Name, l.Entrance.Auth)
			if err != nil {
				return nil, err
			}
			for i, exit := range l.Entrance.Exits {
				s := End{Name: l.Entrance.Name, Client: true, Accept: l.Addr.String(), Connect: exit, CertFile: cert, KeyFile: key, CAFile: ca}.Section()
				s.Comment = pskMark(p.Resources.Files(l.Entrance.Auth))
				if i > 0 {
					// stunnel takes several connect lines in one section as
					// failover, in order.
					last := &cfg.Sections[len(cfg.Sections)-1]
					last.Options = append(last.Options, Option{Key: "connect", Value: exit})
					continue
				}
				cfg.Sections = append(cfg.Sections, s)
			}
		case l.Exit != nil:
			primary := ""
			for _, t := range l.Exit.Tunnels {
				cert, key, ca, err := material(t.Name, t.Auth)
				if err != nil {
					return nil, err
				}
				s := End{Name: t.Name, Accept: l.Addr.String(), Connect: t.Target, CertFile: cert, KeyFile: key, CAFile: ca}.Section()
				s.Comment = pskMark(p.Resources.Files(t.Auth))
				if primary == "" {
					primary = t.Name
				} else {
					// Further tunnels on the same socket are stunnel SNI
					// services of the first one.
					for i, o := range s.Options {
						if o.Key == "accept" {
							s.Options[i] = Option{Key: "sni", Value: primary + ":" + t.Name}
						}
					}
				}
				cfg.Sections = append(cfg.Sections, s)
			}
		case l.Forward != nil || l.HTTP != nil:
			// Not stunnel's job.
		}
	}
	if len(cfg.Sections) == 0 {
		return nil, fmt.Errorf("node %q has no tunnel end to export", p.Node)
	}
	return cfg, nil
}

// PSKMarker starts the comment Export writes above a psk tunnel's section,
// naming the secret its certificate and key were derived from; Import reads
// it back, so export then import keeps `auth: {psk: FILE}` (the
// configuration itself only shows a certificate).
const PSKMarker = "offedge psk: "

func pskMark(a tunnel.Auth) string {
	if a.PSKFile == "" {
		return ""
	}
	return PSKMarker + a.PSKFile + "\n(certificate and key derived from this secret; re-export after changing it)"
}

// pskFromComment returns the secret path of an exported psk section, or "".
func pskFromComment(comment string) string {
	for _, l := range strings.Split(comment, "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(l), PSKMarker); ok {
			return strings.TrimSpace(p)
		}
	}
	return ""
}
