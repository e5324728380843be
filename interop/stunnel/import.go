package stunnel

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Importer turns a stunnel4 configuration into inventory YAML: client =
// yes sections become tunnel entrances on Node, client = no sections
// tunnel exits. Secrets stay files, referenced by path. A duplicated
// section name is reported and kept apart, never merged.
type Importer struct {
	// Model, when set, names the nodes and services behind addresses.
	Model *inventory.Model
	// Node is the node the stunnel configuration runs on.
	Node string
	// Network is the network of Node's accept addresses when the
	// inventory cannot tell.
	Network string
	// Hosts names the node behind a hostname in connect lines (lower-case
	// hostname → node).
	Hosts map[string]string
}

// endpoint renders an endpoint for an address: the node that owns it (from
// the inventory or --host), its network and port.
func (im Importer) endpoint(addr string, own bool) (string, []string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", []string{fmt.Sprintf("cannot read address %q: %v", addr, err)}
	}
	p, _ := strconv.Atoi(port)
	if own {
		switch host {
		case "127.0.0.1", "localhost", "::1":
			return fmt.Sprintf("{node: %s, loopback: true, port: %d}", im.Node, p), nil
		case "", "0.0.0.0", "::":
			nw := im.Network
			if nw == "" {
				return fmt.Sprintf("{node: %s, network: FIXME, port: %d}", im.Node, p), []string{fmt.Sprintf("%s listens on every address; name the network with --network", addr)}
			}
			return fmt.Sprintf("{node: %s, network: %s, port: %d}", im.Node, nw, p), nil
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil && im.Model != nil {
		for _, nw := range im.Model.Networks {
			if n := im.Model.NodeAt(nw.Name, ip); n != nil && (!own || n.Name == im.Node) {
				return fmt.Sprintf("{node: %s, network: %s, address: %q, port: %d}", n.Name, nw.Name, ip, p), nil
			}
		}
	}
	if n, ok := im.Hosts[strings.ToLower(host)]; ok {
		nw := im.Network
		if nw == "" {
			nw = "internet"
		}
		return fmt.Sprintf("{node: %s, network: %s, port: %d}", n, nw, p), nil
	}
	if own && im.Network != "" {
		if ip, err := netip.ParseAddr(host); err == nil {
			return fmt.Sprintf("{node: %s, network: %s, address: %q, port: %d}", im.Node, im.Network, ip, p), nil
		}
	}
	return fmt.Sprintf("{node: FIXME, network: FIXME, port: %d}  # was %s", p, addr),
		[]string{fmt.Sprintf("no node for %s: pass --inventory, or --host %s=NODE", addr, host)}
}

// serviceAt names the inventory service an exit section connects to, when
// the inventory knows the address ("" otherwise, and for entrances, whose
// service is behind the other end).
func (im Importer) serviceAt(connects []string, client bool) string {
	if im.Model == nil || client || len(connects) == 0 {
		return ""
	}
	addr, err := Address(connects[0])
	if err != nil {
		return ""
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ""
	}
	for _, nw := range im.Model.Networks {
		n := im.Model.NodeAt(nw.Name, ap.Addr())
		if n == nil {
			continue
		}
		for _, s := range im.Model.Services {
			if s.Node == n.Name && s.Port == int(ap.Port()) {
				return s.Name
			}
		}
	}
	return ""
}

// Convert returns the inventory YAML for cfg and the problems left to
// resolve by hand (each also a FIXME comment in the YAML).
func (im Importer) Convert(cfg *Config) (string, []string) {
	var b strings.Builder
	var problems []string
	fmt.Fprintf(&b, "# Imported by offedge from %s for node %s. Review every line.\n", cfg.Name, im.Node)
	b.WriteString("# A psk file is used whole as the tunnel's secret (minus one trailing newline), so a\n")
	b.WriteString("# stunnel PSKsecrets file (IDENTITY:KEY) works as is, when both ends read the same file\n")
	b.WriteString("# (mode 0600; one file per tunnel). See docs/tunnels.md.\n")
	b.WriteString("tunnels:\n")
	globalClient, _ := Get(cfg.Global, "client")
	dup := map[int]Finding{}
	for _, f := range cfg.Findings {
		dup[f.Line] = f
	}
	seen := map[string]int{}
	for _, s := range cfg.Sections {
		name := strings.ToLower(s.Name)
		if first, ok := seen[name]; ok {
			msg := fmt.Sprintf("%s:%d: section [%s] is defined again (first at line %d); stunnel runs both, offedge needs one name each: imported as %s-line%d", cfg.Name, s.Line, s.Name, first, name, s.Line)
			problems = append(problems, msg)
			fmt.Fprintf(&b, "  # FIXME duplicate section [%s] at line %d (first at line %d): rename or remove\n", s.Name, s.Line, first)
			name = fmt.Sprintf("%s-line%d", name, s.Line)
		} else {
			seen[name] = s.Line
		}
		client, ok := s.Get("client")
		if !ok {
			client = globalClient
		}
		accept, _ := s.Get("accept")
		var connects []string
		for _, o := range s.Options {
			if o.Key == "connect" {
				connects = append(connects, o.Value)
			}
		}
		psk, _ := s.Get("PSKsecrets")
		if psk == "" {
			psk, _ = Get(cfg.Global, "PSKsecrets")
		}
		fmt.Fprintf(&b, "  - name: %s  # [%s] at %s:%d\n", name, s.Name, cfg.Name, s.Line)
		isClient := strings.EqualFold(client, "yes")
		if svc := im.serviceAt(connects, isClient); svc != "" {
			fmt.Fprintf(&b, "    service: %s\n", svc)
		} else {
			fmt.Fprintf(&b, "    service: %s  # FIXME: the service behind the exit\n", name)
		}
		acceptAddr, err := Address(accept)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: accept: %v", cfg.Name, s.Line, err))
		}
		if isClient {
			ep, p := im.endpoint(acceptAddr, true)
			problems = append(problems, p...)
			fmt.Fprintf(&b, "    entrance: %s\n    exits:\n", ep)
			for _, c := range connects {
				ca, err := Address(c)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s:%d: connect: %v", cfg.Name, s.Line, err))
					continue
				}
				ep, p := im.endpoint(ca, false)
				problems = append(problems, p...)
				fmt.Fprintf(&b, "      - %s\n", ep)
			}
		} else {
			ep, p := im.endpoint(acceptAddr, true)
			problems = append(problems, p...)
			fmt.Fprintf(&b, "    entrance: {node: FIXME, network: FIXME, port: 0}  # the client side is in another stunnel config\n")
			fmt.Fprintf(&b, "    exits:\n      - %s\n", ep)
			fmt.Fprintf(&b, "    # the exit connected to %s\n", strings.Join(connects, ", "))
		}
		switch exported := pskFromComment(s.Comment); {
		case psk != "":
			fmt.Fprintf(&b, "    auth: {psk: %s}\n", psk)
		case exported != "":
			// Written by offedge export: a certificate derived from this
			// secret, not a PKI certificate.
			fmt.Fprintf(&b, "    auth: {psk: %s}  # from the offedge export marker\n", exported)
		case derivedPair(s):
			problems = append(problems, fmt.Sprintf("%s:%d: [%s] pins one self-signed certificate (cert = CAfile), as offedge export writes for a psk tunnel, but names no secret: set auth.psk to the tunnel's secret file", cfg.Name, s.Line, s.Name))
			b.WriteString("    auth: {psk: FIXME}  # cert = CAfile: a certificate derived from a tunnel secret; name that secret's file\n")
		default:
			b.WriteString("    auth: {pki: true}\n")
		}
	}
	return b.String(), problems
}

// derivedPair reports whether section s trusts exactly its own certificate
// (cert = CAfile with verifyPeer): the shape of a psk tunnel's derived
// certificate, never of a PKI node certificate.
func derivedPair(s Section) bool {
	cert, _ := s.Get("cert")
	ca, _ := s.Get("CAfile")
	return cert != "" && cert == ca
}
