// Package plan compiles the inventory into what one node runs: the
// listeners it opens and the handler configuration behind each, fully
// resolved (addresses, upstreams, secrets by path, access lists as prefix
// sets). Compile is a pure function: it opens no socket and reads no file,
// so `offedge plan` and `offedge check` have nothing to clean up, and the
// runtime builds its handlers from the Plan alone, never from the Model.
package plan

import (
	"net/netip"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/forward"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/edge/tunnel"
)

// Listener kinds.
const (
	KindHTTP           = "http"
	KindTunnelEntrance = "tunnel-entrance"
	KindTunnelExit     = "tunnel-exit"
	KindForward        = "forward"
)

// LoopbackNetwork is the network name of listeners bound to 127.0.0.1 on
// the node itself (a tunnel entrance used by a local proxy).
const LoopbackNetwork = "loopback"

// Plan is what one node runs: its resources, each declared once, and the
// listeners whose handlers name them.
type Plan struct {
	Node string `json:"node"`
	// Resources are built once per node by the runtime and shared by every
	// listener that names them.
	Resources Resources  `json:"resources"`
	Listeners []Listener `json:"listeners"`
	// Dials says, for every address the node's handlers connect to, which
	// network it is on and which source address the node presents there
	// (its own address, or its gateway's public address through NAT). The
	// runtime binds that source (the lab maps it to loopback), so that an
	// access list at the other end, written from the inventory, sees it; a
	// dial through NAT or on loopback lets the kernel choose.
	Dials map[netip.AddrPort]Dial `json:"dials"`
	// Firewall is the node's nftables ruleset, when the inventory gives the
	// node a firewall (see firewall.go).
	Firewall *Firewall `json:"firewall,omitempty"`
	// Storage is what the node measures of the replicas it holds (see
	// storage.go); nil when it holds none.
	Storage *Storage `json:"storage,omitempty"`
	// Admin is the node's admin endpoint and its peers' (see admin.go);
	// nil when the inventory declares no admin endpoint.
	Admin *Admin `json:"admin,omitempty"`
}

// Resources are the node-level objects routes refer to by name, each
// declared once with every default resolved: ovh-proxy's four listeners
// name the same upstreams, which the runtime builds once (one pool, one
// health check, one failure state per upstream).
type Resources struct {
	// Upstreams are HTTP upstream pools, by inventory name.
	Upstreams map[string]httpedge.Upstream `json:"upstreams"`
	// Caches are fallback caches of static routes, named "<site> <route path>".
	Caches map[string]httpedge.Cache `json:"caches"`
	// AccessLogs are the log files sites write to (access logs and error
	// logs), named by their path: one writer per file.
	AccessLogs map[string]httpedge.AccessLog `json:"access_logs"`
	// Certificates are TLS certificates of sites, named by certbot lineage
	// (or by certificate file, or "acme:" and the first name of an ACME
	// certificate: its files in the node's ACME state directory).
	Certificates map[string]httpedge.Certificate `json:"certificates"`
	// ACME says how the node obtains each of its ACME certificates (the
	// entries of Certificates named alike): see acme.go.
	ACME map[string]ACMECertificate `json:"acme,omitempty"`
	// Zones, Maps and Jails are the node's rate zones, class maps and
	// jails; Bans bounds its ban list (checked at accept on every
	// listener) and Tarpit the tarpit action (docs/protection.md).
	Zones  map[string]protect.ZoneConfig `json:"limit_zones,omitempty"`
	Maps   map[string]protect.MapConfig  `json:"maps,omitempty"`
	Jails  map[string]Jail               `json:"jails,omitempty"`
	Bans   *protect.BanListConfig        `json:"bans,omitempty"`
	Tarpit *protect.TarpitConfig         `json:"tarpit,omitempty"`
	// Secrets are the key material of the node's tunnel ends, named
	// "psk TUNNEL" (a tunnel's pre-shared secret, whose key is derived
	// for that tunnel) or "pki" (the node's PKI certificate, key and CA);
	// tunnel ends name them in auth.secret. The plan names the files,
	// never their content.
	Secrets map[string]TunnelSecret `json:"secrets,omitempty"`
}

// TunnelSecret is one declared secret and the tunnel ends that use it.
type TunnelSecret struct {
	// Source names the files the key material is read from.
	tunnel.Secret `json:"source"`
	// Uses are "TUNNEL entrance" or "TUNNEL exit", sorted.
	Uses []string `json:"uses"`
}

// Dial is how the node reaches one upstream address.
type Dial struct {
	Network string     `json:"network"`
	Source  netip.Addr `json:"source"`
	// Via is the NAT gateway, when there is one.
	Via string `json:"via,omitempty"`
}

// Listener is one socket a node opens and what serves it. Exactly one of
// HTTP, Entrance, Exit and Forward is set, as Kind says.
type Listener struct {
	Name    string         `json:"name"`
	Kind    string         `json:"kind"`
	Network string         `json:"network"`
	Addr    netip.AddrPort `json:"addr"`
	// Public is true when Network is the internet.
	Public bool `json:"public,omitempty"`
	// ACL is checked at accept, before any byte is read.
	ACL      acl.List               `json:"acl"`
	HTTP     *httpedge.Config       `json:"http,omitempty"`
	Entrance *tunnel.EntranceConfig `json:"entrance,omitempty"`
	Exit     *tunnel.ExitConfig     `json:"exit,omitempty"`
	Forward  *forward.Config        `json:"forward,omitempty"`
}

// Key identifies a listener's socket: network and address.
func (l *Listener) Key() string { return l.Network + " " + l.Addr.String() }

// Tunnel reports whether l is a tunnel entrance or exit (whose auth names
// the node's secrets).
func (l *Listener) Tunnel() bool { return l.Entrance != nil || l.Exit != nil }
