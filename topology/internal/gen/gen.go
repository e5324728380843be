// Package gen generates large, valid inventories for benchmarks: providers
// with private networks and NAT gateways, Proxmox servers, guests, services
// bound to private networks, tunnels between providers, forwards, sites on
// proxy guests, replicas and uses. The output depends only on the sizes.
package gen

import (
	"fmt"
	"io/fs"
	"strings"
	"testing/fstest"

	"github.com/offedge/offedge/inventory"
)

// Size is how big a generated inventory is.
type Size struct {
	Servers, Guests, Services int
}

// Providers is the number of providers of every generated inventory.
const Providers = 5

// Server names the i-th generated server (s0 is the NAT gateway of lan0).
func Server(i int) string { return fmt.Sprintf("s%d", i) }

// Guest names the j-th generated guest; it runs on server j mod Servers.
func Guest(j int) string { return fmt.Sprintf("g%d", j) }

// Service names the k-th generated service; it runs on guest k mod Guests,
// and every fifth one (svc0, svc5, ...) has a tunnel whose entrance is on
// guest k+1, at the next provider.
func Service(k int) string { return fmt.Sprintf("svc%d", k) }

func pubIPv4(i int) string {
	blocks := []string{"192.0.2", "198.51.100", "203.0.113"}
	return fmt.Sprintf("%s.%d", blocks[i/250%3], i%250+1)
}

// YAML renders the inventory as one document.
func YAML(sz Size) string {
	if sz.Servers < Providers {
		sz.Servers = Providers
	}
	if sz.Servers > 750 {
		sz.Servers = 750 // public IPv4 addresses in the documentation ranges
	}
	sz.Guests = max(sz.Guests, 1)
	sz.Services = max(sz.Services, 1)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	prov := func(server int) int { return server % Providers }
	guestHost := func(j int) int { return j % sz.Servers }
	svcNode := func(k int) int { return k % sz.Guests }

	w("providers:\n")
	for p := 0; p < Providers; p++ {
		w("  - {name: p%d, title: Provider %d}\n", p, p)
	}
	w("networks:\n  - {name: internet, kind: public}\n")
	for p := 0; p < Providers; p++ {
		w("  - {name: lan%d, kind: private, provider: p%d, prefixes: [10.0.0.0/8], gateway: %s}\n", p, p, Server(p))
	}
	w("policies:\n")
	for p := 0; p < Providers; p++ {
		w("  - {name: pol%d, allow: [provider:p%d]}\n", p, p)
	}
	w("servers:\n")
	for i := 0; i < sz.Servers; i++ {
		w("  - name: %s\n    provider: p%d\n    mode: proxmox\n    addresses:\n", Server(i), prov(i))
		if i < Providers || i%10 != 9 {
			w("      - {network: internet, ip: %s}\n", pubIPv4(i))
		}
		w("      - {network: internet, ip: \"2001:db8:1::%x\"}\n", i+1)
		w("      - {network: lan%d, ip: 10.0.%d.%d}\n", prov(i), i/250, i%250+1)
	}
	w("guests:\n")
	for j := 0; j < sz.Guests; j++ {
		h := guestHost(j)
		w("  - name: %s\n    host: %s\n    id: %d\n    kind: %s\n    addresses:\n", Guest(j), Server(h), 100+j/sz.Servers, []string{"ct", "vm"}[j%2])
		w("      - {network: lan%d, ip: 10.%d.%d.%d}\n", prov(h), 1+j/62500, j/250%250, j%250+1)
		if j%4 == 0 {
			w("      - {network: internet, ip: \"2001:db8:2::%x\"}\n", j+1)
		}
		w("    uses: [%s, %s]\n", Service((j*7+3)%sz.Services), Service((j*13+5)%sz.Services))
	}
	w("services:\n")
	for k := 0; k < sz.Services; k++ {
		g := svcNode(k)
		h := guestHost(g)
		w("  - {name: %s, node: %s, protocol: %s, port: %d, bind: [lan%d], allow: [policy:pol%d, %s]}\n",
			Service(k), Guest(g), []string{"http", "tcp", "redis"}[k%3], 10000+k%50000, prov(h), prov(h), Server(h))
	}
	// Tunnels: every 5th service gets one from a guest of the next provider.
	w("tunnels:\n")
	tunnels := 0
	for k := 0; k < sz.Services; k += 5 {
		g := svcNode(k)
		h := guestHost(g)
		ent := (g + 1) % sz.Guests // on the next server, hence the next provider
		w("  - name: t%d\n    service: %s\n    entrance: {node: %s, network: lan%d, port: %d}\n", k, Service(k), Guest(ent), prov(guestHost(ent)), 20000+k%40000)
		w("    exits:\n      - {node: %s, network: internet, port: %d}\n", Server(h), 20000+k%40000)
		w("    auth: {pki: true}\n    allow: [policy:pol%d]\n", prov(guestHost(ent)))
		tunnels++
	}
	w("forwards:\n")
	for k := 1; k < sz.Services; k += 20 {
		h := guestHost(svcNode(k))
		w("  - {name: f%d, node: %s, listen: {network: internet, port: %d}, service: %s, allow: [any]}\n", k, Server(h), 30000+k%30000, Service(k))
	}
	// Sites: on the proxy guests (those with a public IPv6 address), one
	// per 10 services, proxying to a service on the same private network.
	w("upstreams:\n")
	var sites []string
	for k := 2; k < sz.Services; k += 10 {
		g := svcNode(k)
		proxy := g - g%4
		if guestHost(proxy)%Providers != guestHost(g)%Providers {
			continue
		}
		w("  - {name: u%d, servers: [{service: %s}]}\n", k, Service(k))
		sites = append(sites, fmt.Sprintf("  - {name: site%d, node: %s, hosts: [site%d.example.org], listen: [{network: internet, port: 443, tls: true}], routes: [{path: /, upstream: u%d}]}\n", k, Guest(proxy), k, k))
	}
	w("sites:\n%s", strings.Join(sites, ""))
	w("replicas:\n")
	for i := 0; i < sz.Servers; i++ {
		w("  - {name: r%d, kind: zfs, source: {node: %s, path: tank/data}, target: {node: %s, path: tank/copy%d}}\n", i, Server(i), Server((i+1)%sz.Servers), i)
	}
	return b.String()
}

// Model loads a generated inventory.
func Model(sz Size) (*inventory.Model, error) {
	fsys := fstest.MapFS{"inventory.yaml": {Data: []byte(YAML(sz))}}
	return inventory.Load(fs.FS(fsys), "inventory.yaml")
}
