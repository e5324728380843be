package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/internal/secretfile"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/stunnelconf"
)

// hostMap is a repeatable --host NAME=NODE flag.
type hostMap map[string]string

func (h hostMap) String() string { return fmt.Sprint(map[string]string(h)) }
func (h hostMap) Set(v string) error {
	name, node, ok := strings.Cut(v, "=")
	if !ok || name == "" || node == "" {
		return fmt.Errorf("want NAME=NODE, got %q", v)
	}
	h[strings.ToLower(name)] = node
	return nil
}

var _ flag.Value = hostMap(nil)

// cmdImport turns a stunnel4 configuration into inventory YAML: client =
// yes sections become tunnel entrances on --node, client = no sections
// tunnel exits. Secrets stay files, referenced by path. A duplicated section
// name is reported and kept apart, never merged.
func cmdImport(e *env, args []string) error {
	fs := e.newFlags("import")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node this stunnel config runs on (required)")
	network := fs.String("network", "", "`NETWORK` of the node's accept addresses when the inventory cannot tell")
	hosts := hostMap{}
	fs.Var(hosts, "host", "the node behind a hostname in connect lines, as `NAME=NODE` (repeatable)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "stunnel" {
		return usageError("offedge import stunnel FILE --node NAME")
	}
	if *node == "" {
		return usageError("--node is required: the node this stunnel config runs on")
	}
	f, err := os.Open(pos[1])
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := stunnelconf.Parse(pos[1], f)
	if err != nil {
		return err
	}
	// Like every other command, the embedded inventory unless --inventory
	// names another: it names the nodes behind the config's addresses.
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	im := importer{m: m, node: *node, network: *network, hosts: hosts}
	out, problems := im.convert(cfg)
	fmt.Fprint(e.stdout, out)
	for _, p := range problems {
		fmt.Fprintf(e.stderr, "offedge import: %s\n", p)
	}
	if len(problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) to resolve by hand; see the FIXME comments", len(problems))}
	}
	return nil
}

type importer struct {
	m       *inventory.Model
	node    string
	network string
	hosts   hostMap
}

// endpoint renders an endpoint for an address: the node that owns it (from
// the inventory or --host), its network and port.
func (im importer) endpoint(addr string, own bool) (string, []string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", []string{fmt.Sprintf("cannot read address %q: %v", addr, err)}
	}
	p, _ := strconv.Atoi(port)
	if own {
		switch host {
		case "127.0.0.1", "localhost", "::1":
			return fmt.Sprintf("{node: %s, loopback: true, port: %d}", im.node, p), nil
		case "", "0.0.0.0", "::":
			nw := im.network
			if nw == "" {
				return fmt.Sprintf("{node: %s, network: FIXME, port: %d}", im.node, p), []string{fmt.Sprintf("%s listens on every address; name the network with --network", addr)}
			}
			return fmt.Sprintf("{node: %s, network: %s, port: %d}", im.node, nw, p), nil
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil && im.m != nil {
		for _, nw := range im.m.Networks {
			if n := im.m.NodeAt(nw.Name, ip); n != nil && (!own || n.Name == im.node) {
				return fmt.Sprintf("{node: %s, network: %s, address: %q, port: %d}", n.Name, nw.Name, ip, p), nil
			}
		}
	}
	if n, ok := im.hosts[strings.ToLower(host)]; ok {
		nw := im.network
		if nw == "" {
			nw = "internet"
		}
		return fmt.Sprintf("{node: %s, network: %s, port: %d}", n, nw, p), nil
	}
	if own && im.network != "" {
		if ip, err := netip.ParseAddr(host); err == nil {
			return fmt.Sprintf("{node: %s, network: %s, address: %q, port: %d}", im.node, im.network, ip, p), nil
		}
	}
	return fmt.Sprintf("{node: FIXME, network: FIXME, port: %d}  # was %s", p, addr),
		[]string{fmt.Sprintf("no node for %s: pass --inventory, or --host %s=NODE", addr, host)}
}

// serviceAt names the inventory service an exit section connects to, when
// the inventory knows the address ("" otherwise, and for entrances, whose
// service is behind the other end).
func (im importer) serviceAt(connects []string, client bool) string {
	if im.m == nil || client || len(connects) == 0 {
		return ""
	}
	addr, err := stunnelconf.Address(connects[0])
	if err != nil {
		return ""
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ""
	}
	for _, nw := range im.m.Networks {
		n := im.m.NodeAt(nw.Name, ap.Addr())
		if n == nil {
			continue
		}
		for _, s := range im.m.Services {
			if s.Node == n.Name && s.Port == int(ap.Port()) {
				return s.Name
			}
		}
	}
	return ""
}

func (im importer) convert(cfg *stunnelconf.Config) (string, []string) {
	var b strings.Builder
	var problems []string
	fmt.Fprintf(&b, "# Imported by offedge from %s for node %s. Review every line.\n", cfg.Name, im.node)
	b.WriteString("# stunnel PSKsecrets files hold IDENTITY:KEY lines; an offedge psk file holds the key alone:\n")
	b.WriteString("# keep only what follows the colon, one line, mode 0600.\n")
	b.WriteString("tunnels:\n")
	globalClient, _ := stunnelconf.Get(cfg.Global, "client")
	dup := map[int]stunnelconf.Finding{}
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
			psk, _ = stunnelconf.Get(cfg.Global, "PSKsecrets")
		}
		fmt.Fprintf(&b, "  - name: %s  # [%s] at %s:%d\n", name, s.Name, cfg.Name, s.Line)
		isClient := strings.EqualFold(client, "yes")
		if svc := im.serviceAt(connects, isClient); svc != "" {
			fmt.Fprintf(&b, "    service: %s\n", svc)
		} else {
			fmt.Fprintf(&b, "    service: %s  # FIXME: the service behind the exit\n", name)
		}
		acceptAddr, err := stunnelconf.Address(accept)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: accept: %v", cfg.Name, s.Line, err))
		}
		if isClient {
			ep, p := im.endpoint(acceptAddr, true)
			problems = append(problems, p...)
			fmt.Fprintf(&b, "    entrance: %s\n    exits:\n", ep)
			for _, c := range connects {
				ca, err := stunnelconf.Address(c)
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
		if psk != "" {
			fmt.Fprintf(&b, "    auth: {psk: %s}\n", psk)
		} else {
			b.WriteString("    auth: {pki: true}\n")
		}
	}
	return b.String(), problems
}

// cmdExport writes the stunnel4 configuration (and the derived certificate
// and key of each psk tunnel) that lets a host still on stunnel4 run its
// side of the node's tunnels, interoperating with offedge on the other side.
func cmdExport(e *env, args []string) error {
	if len(args) > 0 && args[0] == "prometheus" {
		return cmdExportPrometheus(e, args[1:])
	}
	fs := e.newFlags("export")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node whose tunnels to export (required)")
	dir := fs.String("dir", "/etc/stunnel/offedge", "`DIR` where the config expects the derived certificates; export writes them there")
	root := fs.String("root", "", "`DIR` prefixed to the secret files the plan reads")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "stunnel" {
		return usageError("offedge export stunnel --node NAME, or offedge export prometheus --out DIR")
	}
	if *node == "" {
		return usageError("--node is required")
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	if err := checkNode(m, *node); err != nil {
		return err
	}
	p, err := plan.Compile(m, *node, plan.Options{Root: *root})
	if err != nil {
		return err
	}
	cfg := &stunnelconf.Config{Name: *node + ".conf", Comment: fmt.Sprintf("stunnel4 side of node %s, exported by offedge; interoperates with offedge tunnels (TLS 1.3, mutual, keys derived from each tunnel's secret)", *node)}
	cfg.Global = []stunnelconf.Option{{Key: "foreground", Value: "no"}}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	material := func(name string, a tunnel.Auth) (cert, key, ca string, err error) {
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
		cert, key = filepath.Join(*dir, name+".crt"), filepath.Join(*dir, name+".key")
		if err := os.WriteFile(cert, k.CertPEM, 0o644); err != nil {
			return "", "", "", err
		}
		if err := os.WriteFile(key, k.KeyPEM, 0o600); err != nil {
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
				return err
			}
			for i, exit := range l.Entrance.Exits {
				s := tunnel.StunnelSection{Name: l.Entrance.Name, Client: true, Accept: l.Addr.String(), Connect: exit, CertFile: cert, KeyFile: key, CAFile: ca}.Section()
				if i > 0 {
					// stunnel takes several connect lines in one section as
					// failover, in order.
					last := &cfg.Sections[len(cfg.Sections)-1]
					last.Options = append(last.Options, stunnelconf.Option{Key: "connect", Value: exit})
					continue
				}
				cfg.Sections = append(cfg.Sections, s)
			}
		case l.Exit != nil:
			primary := ""
			for _, t := range l.Exit.Tunnels {
				cert, key, ca, err := material(t.Name, t.Auth)
				if err != nil {
					return err
				}
				s := tunnel.StunnelSection{Name: t.Name, Accept: l.Addr.String(), Connect: t.Target, CertFile: cert, KeyFile: key, CAFile: ca}.Section()
				if primary == "" {
					primary = t.Name
				} else {
					// Further tunnels on the same socket are stunnel SNI
					// services of the first one.
					for i, o := range s.Options {
						if o.Key == "accept" {
							s.Options[i] = stunnelconf.Option{Key: "sni", Value: primary + ":" + t.Name}
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
		return fmt.Errorf("node %q has no tunnel end to export", *node)
	}
	out, err := stunnelconf.Render(cfg)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}
