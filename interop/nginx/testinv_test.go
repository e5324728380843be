package nginx

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/offedge/offedge/check"
	"github.com/offedge/offedge/inventory"
)

// testNet is the inventory a test imports against, derived from the
// configuration itself (never written per file): the proxy node "edge",
// one backend node per address the configuration proxies to, with a
// service on each port it uses, and one node per hostname it proxies to
// (named through Importer.Hosts).
type testNet struct {
	edgeIP   string // the edge's address on the private network
	publicIP string // and on the public one ("" for none)
	// backends maps a proxied host (IP or name) to the address the test
	// gives it; identity when the test runs no backends.
	backends map[string]string
	ports    map[string]map[int]string // backend address → port → scheme
	hosts    map[string]string         // hostname → node
	nodes    map[string]string         // backend address → node name
}

// targets lists every host:port the configuration proxies to, with its
// scheme: proxy_pass URLs and upstream block servers.
func targets(ds []*Directive) map[string]string {
	blocks := map[string]*Directive{}
	walk(ds, func(d *Directive) {
		if d.Name == "upstream" && d.IsBlock() && len(d.Args) == 1 {
			blocks[d.Args[0]] = d
		}
	})
	out := map[string]string{}
	walk(ds, func(d *Directive) {
		if d.Name != "proxy_pass" || strings.Contains(d.Arg(0), "$") {
			return
		}
		scheme, rest, ok := strings.Cut(d.Arg(0), "://")
		if !ok {
			return
		}
		hp, _, _ := strings.Cut(rest, "/")
		if b := blocks[hp]; b != nil {
			for _, s := range Find(b.Block, "server") {
				out[withPort(s.Arg(0), scheme)] = scheme
			}
			return
		}
		out[withPort(hp, scheme)] = scheme
	})
	return out
}

func withPort(hp, scheme string) string {
	if _, _, err := net.SplitHostPort(hp); err == nil {
		return hp
	}
	if scheme == "https" {
		return net.JoinHostPort(hp, "443")
	}
	return net.JoinHostPort(hp, "80")
}

// newTestNet places the configuration's targets: with loopback true,
// every backend gets a 127.0.1.N address (the differential test runs
// servers there); else private addresses stay as written and hostnames
// get documentation addresses.
func newTestNet(ds []*Directive, loopback bool) *testNet {
	tn := &testNet{backends: map[string]string{}, ports: map[string]map[int]string{}, hosts: map[string]string{}, nodes: map[string]string{}}
	if loopback {
		tn.edgeIP = "127.0.0.32"
	} else {
		tn.edgeIP, tn.publicIP = "10.254.0.1", "203.0.113.10"
	}
	var hps []string
	ts := targets(ds)
	for hp := range ts {
		hps = append(hps, hp)
	}
	sort.Strings(hps)
	n := 0
	for _, hp := range hps {
		h, p, _ := net.SplitHostPort(hp)
		port, _ := strconv.Atoi(p)
		addr, ok := tn.backends[h]
		if !ok {
			n++
			ip, err := netip.ParseAddr(h)
			switch {
			case loopback:
				addr = fmt.Sprintf("127.0.1.%d", n)
			case err == nil:
				addr = ip.String()
			default:
				addr = fmt.Sprintf("198.51.100.%d", n)
			}
			tn.backends[h] = addr
			tn.nodes[addr] = fmt.Sprintf("backend%d", n)
			if err != nil {
				tn.hosts[strings.ToLower(h)] = tn.nodes[addr]
			}
		}
		if tn.ports[addr] == nil {
			tn.ports[addr] = map[int]string{}
		}
		tn.ports[addr][port] = ts[hp]
	}
	return tn
}

// inventory renders the test inventory.
func (tn *testNet) inventory() string {
	var b strings.Builder
	b.WriteString("providers: [{name: test}]\nnetworks:\n  - {name: lan, kind: private, prefixes: [10.0.0.0/8, 127.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12]}\n  - {name: internet, kind: public}\nservers:\n")
	fmt.Fprintf(&b, "  - name: edge\n    provider: test\n    mode: bare-metal\n    addresses:\n      - {network: lan, ip: %s}\n", tn.edgeIP)
	if tn.publicIP != "" {
		fmt.Fprintf(&b, "      - {network: internet, ip: %s}\n", tn.publicIP)
	}
	var addrs []string
	for a := range tn.nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		nw := "lan"
		if ip := netip.MustParseAddr(a); !ip.IsPrivate() && !ip.IsLoopback() {
			nw = "internet"
		}
		fmt.Fprintf(&b, "  - name: %s\n    provider: test\n    mode: bare-metal\n    addresses: [{network: %s, ip: %s}]\n", tn.nodes[a], nw, a)
	}
	b.WriteString("services:\n")
	for _, a := range addrs {
		var ports []int
		for p := range tn.ports[a] {
			ports = append(ports, p)
		}
		sort.Ints(ports)
		for _, p := range ports {
			fmt.Fprintf(&b, "  - {name: %s-%d, node: %s, port: %d, protocol: %s, allow: [edge]}\n", tn.nodes[a], p, tn.nodes[a], p, tn.ports[a][p])
		}
	}
	return b.String()
}

// importChecked imports ds against the test inventory in dir, loads the
// inventory with the fragment and runs offedge check: a load error or an
// error-level finding fails the test.
func importChecked(t *testing.T, ds []*Directive, incs []Included, tn *testNet, dir string) (*inventory.Model, []byte, *Report) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(tn.inventory()), 0o644); err != nil {
		t.Fatal(err)
	}
	base, err := inventory.LoadPath(dir)
	if err != nil {
		t.Fatalf("test inventory: %v\n%s", err, tn.inventory())
	}
	im := &Importer{Model: base, Node: "edge", Hosts: tn.hosts, Includes: incs}
	out, rep, err := im.Import(ds)
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadWith(os.DirFS(dir), "inventory.yaml", out)
	if err != nil {
		t.Fatalf("the imported inventory does not load: %v\n%s", err, out)
	}
	for _, f := range check.Run(m) {
		if f.Severity == check.Error && f.Suppressed == "" {
			t.Errorf("offedge check: %s\n%s", f, out)
		}
	}
	return m, out, rep
}
