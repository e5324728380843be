package inventory

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/offedge/offedge/internal/fastyaml"
)

func TestLoadSmall(t *testing.T) {
	m, err := LoadPath("testdata/small")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Nodes); got != 5 {
		t.Fatalf("got %d nodes; want 5", got)
	}
	// Same private address, two networks, two nodes: scoping works.
	a := m.NodeAt("alpha-lan", netip.MustParseAddr("10.0.0.1"))
	b := m.NodeAt("beta-lan", netip.MustParseAddr("10.0.0.1"))
	if a == nil || b == nil || a.Name != "a1" || b.Name != "b1" {
		t.Fatalf("NodeAt: got %v, %v; want a1, b1", a, b)
	}
	db := m.Node("a-db")
	if db.Provider != "alpha" || db.Host.Name != "a1" || db.Cluster != "alpha" {
		t.Fatalf("guest inherits from host: got provider %q host %v cluster %q", db.Provider, db.Host, db.Cluster)
	}
	if m.Forward("smtp").Listen.Node != "b1" {
		t.Fatal("forward listen node not set from the forward")
	}
}

func TestReach(t *testing.T) {
	m, err := LoadPath("testdata/small")
	if err != nil {
		t.Fatal(err)
	}
	app, db, a1 := m.Node("b-app"), m.Service("db"), m.Node("a1")
	// b-app is on beta-lan; the db binds alpha-lan only: no direct path.
	if tg, ok := m.ReachService(app, db); ok {
		t.Fatalf("b-app reaches db directly via %v; want no path (different private networks)", tg)
	}
	// a1 shares alpha-lan with the db.
	tg, ok := m.ReachService(a1, db)
	if !ok || tg.Network != "alpha-lan" || tg.Addr.String() != "10.1.0.102:27017" || tg.Source.String() != "10.0.0.1" {
		t.Fatalf("a1 -> db: got %v, %v", tg, ok)
	}
	// b-client reaches a1's public exit through b1's NAT.
	tg, ok = m.ReachEndpoint(m.Node("b-client"), m.Tunnel("db-beta").Exits[0])
	if !ok || tg.Via == nil || tg.Via.Name != "b1" || tg.Source.String() != "198.51.100.1" {
		t.Fatalf("b-client -> exit: got %v, %v; want NAT via b1 from 198.51.100.1", tg, ok)
	}
	// Nobody at alpha has IPv6, so b1's IPv6 address is out of reach for a-db.
	if _, _, ok := m.SourceFor(m.Node("a-db"), "internet", 6); ok {
		t.Fatal("a-db has an IPv6 source on the internet; want none")
	}
}

func TestResolveAllow(t *testing.T) {
	m, err := LoadPath("testdata/small")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		entries []string
		network string
		want    []string
		unknown []string
		any     bool
	}{
		{"node on its own network", []string{"b-app"}, "beta-lan", []string{"10.1.0.201/32"}, nil, false},
		{"guest NATed to the internet", []string{"b-app"}, "internet", []string{"198.51.100.1/32"}, nil, false},
		{"guest not on a private network", []string{"b-app"}, "alpha-lan", nil, nil, false},
		{"provider", []string{"provider:alpha"}, "alpha-lan", []string{"10.0.0.1/32", "10.1.0.102/32"}, nil, false},
		{"cidr", []string{"203.0.113.0/24"}, "internet", []string{"203.0.113.0/24"}, nil, false},
		{"unknown", []string{"nosuch", "provider:gamma"}, "internet", nil, []string{"nosuch", "provider:gamma"}, false},
		{"any", []string{"any"}, "internet", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := m.ResolveAllow(tt.entries, tt.network)
			var got []string
			for _, s := range res.Sources {
				got = append(got, s.Prefix.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || strings.Join(res.Unknown, ",") != strings.Join(tt.unknown, ",") || res.Any != tt.any {
				t.Fatalf("got %v unknown %v any %v; want %v unknown %v any %v", got, res.Unknown, res.Any, tt.want, tt.unknown, tt.any)
			}
		})
	}
}

// loadErrorBase is the valid start the cases of loadErrorCases add to.
const loadErrorBase = `providers: [{name: p, locations: [{name: l}]}]
networks:
  - {name: internet, kind: public}
  - {name: lan, kind: private}
servers:
  - name: s1
    provider: p
    mode: proxmox
    addresses: [{network: lan, ip: 10.0.0.1}, {network: internet, ip: 192.0.2.1}]
`

// loadErrorCases are inventories with one mistake each and the line
// Load must report.
var loadErrorCases = []struct {
	name  string
	files map[string]string
	want  string
}{
	{"unknown field", map[string]string{"inventory.yaml": loadErrorBase + "    adresses: []\n"},
		`inventory.yaml:10:5: server "s1": unknown field "adresses" (did you mean "addresses"?)`},
	{"wrong type", map[string]string{"inventory.yaml": loadErrorBase + "services: [{name: x, node: s1, port: eighty, protocol: http}]\n"},
		`inventory.yaml:10:38: service "x": port: want a whole number, got "eighty"`},
	{"bad ip", map[string]string{"inventory.yaml": loadErrorBase + "guests: [{name: g, host: s1, id: 1, kind: ct, addresses: [{network: lan, ip: 10.0.0.300}]}]\n"},
		`inventory.yaml:10:78: guest "g": addresses[0]: ip: invalid IP address "10.0.0.300" (want an IP address (192.0.2.1 or 2001:db8::1))`},
	{"dangling host", map[string]string{"inventory.yaml": loadErrorBase + "guests: [{name: g, host: s2, id: 1, kind: ct}]\n"},
		`inventory.yaml:10:10: guest "g": host names unknown node "s2" (did you mean "s1"?)`},
	{"dangling tunnel service", map[string]string{"inventory.yaml": loadErrorBase + "tunnels: [{name: t, service: nope, entrance: {node: s1, network: lan, port: 1}, exits: [{node: s1, network: internet, port: 2}], auth: {pki: true}}]\n"},
		`inventory.yaml:10:11: tunnel "t": service names unknown service "nope" (none is defined)`},
	{"duplicate node across servers and guests", map[string]string{"inventory.yaml": loadErrorBase + "guests: [{name: s1, host: s1, id: 1, kind: ct}]\n"},
		`inventory.yaml:10:10: node "s1": duplicate node name (first defined at inventory.yaml:6:5; rename one)`},
	{"duplicate key", map[string]string{"inventory.yaml": loadErrorBase + "    mode: bare-metal\n"},
		`inventory.yaml:10:5: server "s1": duplicate field "mode" (first set at line 8; keep one)`},
	{"duplicate address", map[string]string{"inventory.yaml": loadErrorBase + "guests: [{name: g, host: s1, id: 1, kind: ct, addresses: [{network: lan, ip: 10.0.0.1}]}]\n"},
		`inventory.yaml:10:59: guest "g": address 0: address 10.0.0.1 is already used on network "lan" (s1 has it at inventory.yaml:6:5)`},
	{"gateway address on no node", map[string]string{"inventory.yaml": loadErrorBase + "guests: [{name: g, host: s1, id: 1, kind: ct, addresses: [{network: lan, ip: 10.1.0.1, gateway: 10.0.0.9}]}]\n"},
		`inventory.yaml:10:59: guest "g": address 0: gateway 10.0.0.9 is no address on network "lan" (give the gateway's address on lan, or name the gateway node)`},
	{"gateway is itself", map[string]string{"inventory.yaml": loadErrorBase + "guests: [{name: g, host: s1, id: 1, kind: ct, addresses: [{network: lan, ip: 10.1.0.1, gateway: 10.1.0.1}]}]\n"},
		`inventory.yaml:10:59: guest "g": address 0: gateway 10.1.0.1 is this node's own address (a node is not its own gateway; write gateway: none for no default route)`},
	{"gateway names no node", map[string]string{"inventory.yaml": loadErrorBase + "guests: [{name: g, host: s1, id: 1, kind: ct, addresses: [{network: lan, ip: 10.1.0.1, gateway: s2}]}]\n"},
		`inventory.yaml:10:59: guest "g": address 0: gateway names unknown node "s2" (did you mean "s1"?)`},
	{"include cycle", map[string]string{"inventory.yaml": "include: [a.yaml]\n", "a.yaml": "include: [b.yaml]\n", "b.yaml": "include: [a.yaml]\n"},
		`b.yaml: include cycle: a.yaml -> b.yaml -> a.yaml (remove one of the includes)`},
	{"missing include", map[string]string{"inventory.yaml": "include: [nope.yaml]\n"},
		`inventory.yaml: include "nope.yaml": file does not exist (check the path; includes are relative to the including file)`},
	{"include outside", map[string]string{"inventory.yaml": "include: [../x.yaml]\n"},
		`inventory.yaml: include "../x.yaml" points outside the inventory directory (keep included files inside the inventory directory)`},
	{"duplicate across files", map[string]string{"inventory.yaml": loadErrorBase + "include: [more.yaml]\n", "more.yaml": "services:\n  - {name: a, node: s1, port: 1, protocol: tcp}\n  - {name: a, node: s1, port: 2, protocol: tcp}\n"},
		`more.yaml:3:5: service "a": duplicate service name (first defined at more.yaml:2:5; rename one)`},
	{"invalid yaml", map[string]string{"inventory.yaml": "servers: [\n"},
		`inventory.yaml:1: invalid YAML: did not find expected node content`},
	// yaml.v3 names line 2 (where the mapping began) and no column; the
	// tab is on line 3, column 1.
	{"tab in indentation", map[string]string{"inventory.yaml": "servers:\n  - name: a\n\t  provider: x\n"},
		`inventory.yaml:3:1: invalid YAML: found a tab character that violates indentation (indent with spaces; YAML does not allow tabs in indentation)`},
	{"alias", map[string]string{"inventory.yaml": "policies:\n  - &p {name: a, allow: [any]}\n  - *p\n"},
		`inventory.yaml:2:5: policies[0]: YAML anchors and aliases are not supported (write the value out; inventories are meant to be read top to bottom)`},
	{"route action", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], routes: [{path: /}]}]\n"},
		`inventory.yaml:10:99: site "w": route 0 (/): a route has exactly one action (set one of upstream, static or redirect)`},
	{"bad allow", map[string]string{"inventory.yaml": loadErrorBase + "policies: [{name: x, allow: [\"10.0.0.1/8\"]}]\n"},
		`inventory.yaml:10:12: policy "x": allow entry "10.0.0.1/8": prefix 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?) (use any, NODE, provider:NAME, cluster:NAME, network:NAME, policy:NAME or a CIDR)`},
	{"guest on bare-metal", map[string]string{"inventory.yaml": strings.Replace(loadErrorBase, "mode: proxmox", "mode: bare-metal", 1) + "guests: [{name: g, host: s1, id: 1, kind: ct}]\n"},
		`inventory.yaml:10:10: guest "g": host "s1" is bare-metal and cannot run guests (set mode: proxmox on the host)`},
	{"unknown location", map[string]string{"inventory.yaml": loadErrorBase + "    location: nowhere\n"},
		`inventory.yaml:6:5: server "s1": location "nowhere" is not a location of provider "p" (known: l)`},
	{"queue without max_conns", map[string]string{"inventory.yaml": loadErrorBase + "upstreams: [{name: u, queue: 5, servers: [{node: s1, port: 80}]}]\n"},
		`inventory.yaml:10:13: upstream "u": queue without max_conns on any server: nothing would wait (set max_conns on the servers requests should wait for)`},
	{"negative max_conns", map[string]string{"inventory.yaml": loadErrorBase + "upstreams: [{name: u, servers: [{node: s1, port: 80, max_conns: -1}]}]\n"},
		`inventory.yaml:10:33: upstream "u": server 0: negative max_conns (omit max_conns for no cap)`},
	{"header in both lists", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], headers: {X-A: a}, headers_always: {X-A: b}, routes: [{path: /, redirect: /x}]}]\n"},
		`inventory.yaml:10:9: site "w": header "X-A" is in both headers and headers_always (keep it in one of headers and headers_always)`},
	{"bad header name", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], routes: [{path: /, redirect: /x, headers: {\"X A\": a}}]}]\n"},
		`inventory.yaml:10:99: site "w": route 0 (/): header "X A": not a valid header name`},
	{"bad expires", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], expires: 1 hour, routes: [{path: /, redirect: /x}]}]\n"},
		`expires: invalid expires "1 hour"`},
	{"unknown log format", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], access_log: {path: /var/log/w.log, format: fancy}, routes: [{path: /, redirect: /x}]}]\n"},
		`unknown format "fancy" (use "combined", "combined_upstream", "combined_proxy", "json")`},
	{"unknown header variable", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], headers: {X-Cache: $upstream_cache_stat}, routes: [{path: /, redirect: /x}]}]\n"},
		`site "w": header "X-Cache": "$upstream_cache_stat": unknown variable $upstream_cache_stat`},
	{"old TLS", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 443, tls: true}], tls: {certbot: a.example, min_version: \"1.0\", ciphers: [TLS_RSA_WITH_RC4_128_SHA], curves: [P-224]}, routes: [{path: /, redirect: /x}]}]\n"},
		`site "w": tls: min_version 1.0 (offedge offers TLS 1.2 and 1.3 only`},
	{"unknown cipher", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 443, tls: true}], tls: {certbot: a.example, ciphers: [EECDH+AESGCM], curves: [P-224]}, routes: [{path: /, redirect: /x}]}]\n"},
		`site "w": tls: unknown cipher "EECDH+AESGCM"`},
	{"unknown curve", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 443, tls: true}], tls: {certbot: a.example, curves: [P-224]}, routes: [{path: /, redirect: /x}]}]\n"},
		`site "w": tls: unknown curve "P-224"`},
	{"bad compress", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], compress: {level: 10, types: [html]}, routes: [{path: /, redirect: /x, compress: {gzip_static: true}}]}]\n"},
		`site "w": compress: level 10 (gzip levels are 1 (fastest) to 9 (smallest))`},
	{"compress type", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], compress: {types: [html]}, routes: [{path: /, redirect: /x}]}]\n"},
		`site "w": compress: type "html" (use a media type (text/html), a family (text/*) or *)`},
	{"gzip_static on a proxied route", map[string]string{"inventory.yaml": loadErrorBase + "sites: [{name: w, node: s1, hosts: [a.example], listen: [{network: internet, port: 80}], routes: [{path: /, redirect: /x, compress: {gzip_static: true}}]}]\n"},
		`site "w": route 0 (/): compress: gzip_static on a route without static`},
	{"two documents", map[string]string{"inventory.yaml": loadErrorBase + "---\nservers: []\n"},
		`inventory.yaml:10:1: more than one YAML document in a file (split it into files and include them)`},
}

// TestLoadErrors pins the message and the position of every load error.
func TestLoadErrors(t *testing.T) {
	for _, tt := range loadErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			_, err := Load(fsys, "inventory.yaml")
			if err == nil {
				t.Fatalf("no error; want %s", tt.want)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T; want Errors", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got:\n%s\nwant a line:\n%s", err, tt.want)
			}
		})
	}
}

func TestLoadPathDirAndPrefix(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte("servers: [{name: x, bogus: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPath(dir)
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "inventory.yaml")+":1:21:") {
		t.Fatalf("got %v; want an error positioned in %s", err, filepath.Join(dir, "inventory.yaml"))
	}
}

func TestValuesParse(t *testing.T) {
	var d Duration
	for in, want := range map[string]string{"7d": "7d", "90s": "1m30s", "1.5h": "1h30m0s"} {
		if err := d.UnmarshalText([]byte(in)); err != nil || d.String() != want {
			t.Errorf("Duration(%q) = %s, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1s", "1y"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("Duration(%q) parsed; want error", bad)
		}
	}
	var e Expires
	for in, want := range map[string]Expires{"off": {Mode: "off"}, "epoch": {Mode: "epoch"}, "max": {Mode: "max"},
		"1h": {"access", 3600}, "30d": {"access", 30 * 86400}, "-1": {"access", -1}, "0": {"access", 0}, "1h30m": {"access", 5400},
		"1M": {"access", 30 * 86400}, "1y": {"access", 365 * 86400}, "1500ms": {"access", 1}, "modified 1h": {"modified", 3600}, "modified  -10m": {"modified", -600}} {
		if err := e.UnmarshalText([]byte(in)); err != nil || e != want {
			t.Errorf("Expires(%q) = %+v, %v; want %+v", in, e, err, want)
		}
	}
	for _, bad := range []string{"", "1 hour", "h", "1x", "@15h30m", "modified", "modifiedx 1h", "11y", "99999999999", "--1", "1h-1"} {
		if err := e.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("Expires(%q) parsed as %+v; want error", bad, e)
		}
	}
	var s Size
	for in, want := range map[string]int64{"256k": 256 << 10, "1m": 1 << 20, "10g": 10 << 30, "512": 512} {
		if err := s.UnmarshalText([]byte(in)); err != nil || int64(s) != want {
			t.Errorf("Size(%q) = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "k", "-1", "99999999999999g"} {
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("Size(%q) parsed; want error", bad)
		}
	}
}

// FuzzParse feeds arbitrary bytes to the loader (which parses, decodes
// and resolves references): it must return errors, never panic. The seed
// corpus (run by plain `go test`) holds each top-level section of the test
// inventories on its own, one small complete inventory, and the error
// cases above. Seeds are kept small on purpose: the fuzzer's speed (and
// the time it spends minimising what it finds) grows with the size of
// what it mutates, and whole files made it crawl at a few hundred
// executions a second.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/small/inventory.yaml", "testdata/small/inventory.d/nodes.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, sec := range topLevelSections(data) {
			f.Add(sec)
		}
	}
	f.Add([]byte(`providers: [{name: p}]
networks: [{name: internet, kind: public}, {name: lan, kind: private, gateway: h}]
servers: [{name: h, provider: p, mode: proxmox, addresses: [{network: lan, ip: 10.0.0.1}, {network: internet, ip: 192.0.2.1}]}]
guests: [{name: g, host: h, id: 100, kind: ct, addresses: [{network: lan, ip: 10.1.0.100}]}]
services: [{name: db, node: g, port: 27017, protocol: mongodb, bind: [lan], allow: [h]}]
`))
	for _, s := range []string{"servers: [", "&a [*a, *a]", "policies: [{name: a, allow: [\"::/0\", \"provider:\"]}]", "include: [\"*\"]", "{", "sites: [{listen: [{port: 99999999999}]}]", "a: !!binary AAAA"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"inventory.yaml": &fstest.MapFile{Data: data}}
		m, err := Load(fsys, "inventory.yaml")
		if err == nil && m == nil {
			t.Fatal("nil model without error")
		}
		sameWithoutFastPath(t, "inventory.yaml", data)
	})
}

// sameWithoutFastPath holds that a file parses to the same File, or the
// same errors, whether the fast parser takes it or yaml.v3 does.
func sameWithoutFastPath(t *testing.T, name string, data []byte) {
	t.Helper()
	fast, fastErrs := parseFile(name, data)
	fastParse = func([]byte) (*fastyaml.Node, bool) { return nil, false }
	slow, slowErrs := parseFile(name, data)
	fastParse = fastyaml.Parse
	if fastErrs.Error() != slowErrs.Error() {
		t.Fatalf("%s: errors differ\nfast path: %v\nyaml.v3:   %v", name, fastErrs, slowErrs)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s: the fast path and yaml.v3 decode different files", name)
	}
}

// TestFastPathSameAsYAMLv3 decodes the example inventory, the test
// inventory and every input of TestLoadErrors with and without the fast
// parser: the same File or the same messages, to the column.
func TestFastPathSameAsYAMLv3(t *testing.T) {
	var paths []string
	for _, g := range []string{"../examples/openfoodfacts/*.yaml", "../examples/openfoodfacts/inventory.d/*.yaml", "testdata/small/*.yaml", "testdata/small/inventory.d/*.yaml"} {
		m, _ := filepath.Glob(g)
		paths = append(paths, m...)
	}
	if len(paths) < 4 {
		t.Fatalf("found %d files", len(paths))
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sameWithoutFastPath(t, p, data)
	}
	for _, tc := range loadErrorCases {
		for name, data := range tc.files {
			sameWithoutFastPath(t, tc.name+"/"+name, []byte(data))
		}
	}
}

// topLevelSections splits a YAML file at its top-level keys.
func topLevelSections(data []byte) [][]byte {
	var out [][]byte
	start := -1
	lines := bytes.SplitAfter(data, []byte("\n"))
	off := 0
	for _, l := range lines {
		if len(l) > 0 && l[0] != ' ' && l[0] != '#' && l[0] != '\n' {
			if start >= 0 {
				out = append(out, data[start:off])
			}
			start = off
		}
		off += len(l)
	}
	if start >= 0 {
		out = append(out, data[start:])
	}
	return out
}

// TestPerAddressGateway: an address's own gateway (a node, or an address on
// the network as Proxmox writes it) replaces the network's for its traffic
// to the internet, and gateway: none leaves it without one.
func TestPerAddressGateway(t *testing.T) {
	src := `providers: [{name: p}]
networks:
  - {name: internet, kind: public}
  - {name: lan, kind: private, gateway: h1}
servers:
  - {name: h1, provider: p, mode: proxmox, addresses: [{network: lan, ip: 10.0.0.1}, {network: internet, ip: 192.0.2.1}]}
  - {name: h2, provider: p, mode: proxmox, addresses: [{network: lan, ip: 10.0.0.2}, {network: internet, ip: 192.0.2.2}]}
guests:
  - {name: on-h1, host: h1, id: 100, kind: ct, addresses: [{network: lan, ip: 10.1.0.100}]}
  - {name: by-addr, host: h2, id: 101, kind: ct, addresses: [{network: lan, ip: 10.1.0.101, gateway: 10.0.0.2}]}
  - {name: by-name, host: h2, id: 102, kind: ct, addresses: [{network: lan, ip: 10.1.0.102, gateway: h2}]}
  - {name: no-gw, host: h2, id: 103, kind: ct, addresses: [{network: lan, ip: 10.1.0.103, gateway: none}]}
`
	m, err := Load(fstest.MapFS{"inventory.yaml": &fstest.MapFile{Data: []byte(src)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ node, via, src string }{
		{"on-h1", "h1", "192.0.2.1"},
		{"by-addr", "h2", "192.0.2.2"},
		{"by-name", "h2", "192.0.2.2"},
		{"no-gw", "", ""},
	} {
		n := m.Node(tt.node)
		src, via, ok := m.SourceFor(n, "internet", 4)
		switch {
		case tt.via == "" && ok:
			t.Errorf("%s: reaches the internet from %s via %v; want no egress", tt.node, src, via.Name)
		case tt.via != "" && (!ok || via == nil || via.Name != tt.via || src.String() != tt.src):
			t.Errorf("%s: source %v via %v (ok %t); want %s via %s", tt.node, src, via, ok, tt.src, tt.via)
		}
		if g := m.GatewayOf(n.Addresses[0]); (g == nil) != (tt.via == "") || (g != nil && g.Name != tt.via) {
			t.Errorf("%s: GatewayOf = %v; want %q", tt.node, g, tt.via)
		}
	}
	// Down gateways are per address too: h1 down leaves by-addr its egress.
	live := m.Live(func(n *Node) bool { return n.Name == "h1" })
	if _, _, ok := live.SourceFor(m.Node("by-addr"), "internet", 4); !ok {
		t.Error("by-addr lost the internet with h1 down; it leaves through h2")
	}
	if _, _, ok := live.SourceFor(m.Node("on-h1"), "internet", 4); ok {
		t.Error("on-h1 kept the internet with its gateway h1 down")
	}
}

// TestSiteForHost: exact names win over wildcards, the longest wildcard
// wins over shorter ones, and the hostname is matched without case or a
// trailing dot.
func TestSiteForHost(t *testing.T) {
	src := `providers: [{name: p}]
networks: [{name: internet, kind: public}]
servers: [{name: s, provider: p, addresses: [{network: internet, ip: 192.0.2.1}]}]
sites:
  - {name: exact, node: s, hosts: [www.example.org], listen: [{network: internet, port: 80}], routes: [{path: /, redirect: "https://example.org"}]}
  - {name: wide, node: s, hosts: ["*.example.org"], listen: [{network: internet, port: 80}], routes: [{path: /, redirect: "https://example.org"}]}
  - {name: narrow, node: s, hosts: ["*.api.example.org"], listen: [{network: internet, port: 80}], routes: [{path: /, redirect: "https://example.org"}]}
`
	m, err := Load(fstest.MapFS{"inventory.yaml": &fstest.MapFile{Data: []byte(src)}}, "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"www.example.org": "exact", "WWW.Example.org.": "exact", "world.example.org": "wide",
		"v2.api.example.org": "narrow", "api.example.org": "wide", "example.org": "", "other.org": "",
	} {
		got := ""
		if s := m.SiteForHost(host); len(s) == 1 {
			got = s[0].Name
		} else if len(s) > 1 {
			got = "several"
		}
		if got != want {
			t.Errorf("SiteForHost(%q) = %q; want %q", host, got, want)
		}
	}
}
