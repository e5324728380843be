package inventory

import (
	"fmt"
	"net/netip"
	"path"
)

// Admin declares one node's admin endpoint (`offedge run --admin`, the
// dashboard, docs/dashboard.md): the address it listens on and how a
// client proves it may use it. Peers' admin endpoints are what a node's
// dashboard asks for the estate's live state.
type Admin struct {
	Pos  Pos    `yaml:"-"`
	Node string `yaml:"node"`
	// Listen is the endpoint's address and port: loopback (127.0.0.1:9901,
	// the default of the packaged unit), or an address of the node, which
	// then needs Auth (offedge check OE704, and `offedge run` refuses to
	// start without it).
	Listen netip.AddrPort `yaml:"listen"`
	Auth   *AdminAuth     `yaml:"auth"`
	// Allow is who may connect besides the node itself and the nodes of
	// the other admin entries (whose dashboards ask this one): the
	// operators' browsers, a monitoring host. Decided at accept, and the
	// node's firewall admits the same sources; empty: only those.
	Allow []string `yaml:"allow"`
}

// AdminAuth says how clients of an admin endpoint authenticate. Files are
// read at start and on every reload, and compared in constant time.
type AdminAuth struct {
	Pos Pos `yaml:"-"`
	// TokenFile holds the endpoint's bearer token (mode 0600, at least 16
	// bytes): a client sends "Authorization: Bearer TOKEN", or basic auth
	// with TOKEN as the password (what a browser prompts for). Other nodes'
	// dashboards read the same path on their own machine to ask this one
	// for its state.
	TokenFile string `yaml:"token_file"`
}

// IsLoopback reports whether the endpoint listens on loopback only.
func (a *Admin) IsLoopback() bool { return a.Listen.Addr().IsLoopback() }

// Admin returns the admin endpoint declared for node, or nil.
func (m *Model) Admin(node string) *Admin {
	for _, a := range m.Admins {
		if a.Node == node {
			return a
		}
	}
	return nil
}

func (b *builder) validateAdmin(a *Admin, seen map[string]Pos) {
	m := b.m
	obj := fmt.Sprintf("admin of %q", a.Node)
	if !ref(b, m.nodes, a.Pos, obj, "node", "node", a.Node) {
		return
	}
	if prev, dup := seen[a.Node]; dup {
		b.errf(a.Pos, obj, fmt.Sprintf("first declared at %s; keep one", prev), "two admin endpoints for one node")
	}
	seen[a.Node] = a.Pos
	if !a.Listen.IsValid() || a.Listen.Port() == 0 {
		b.errf(a.Pos, obj, "e.g. listen: 127.0.0.1:9901", "listen: missing or without a port")
		return
	}
	ip := a.Listen.Addr()
	if !ip.IsLoopback() && !ip.IsUnspecified() {
		own := false
		for _, ad := range m.nodes[a.Node].Addresses {
			own = own || ad.IP == ip
		}
		if !own {
			b.errf(a.Pos, obj, "use loopback or one of the node's addresses", "listen: %s is not an address of %s", ip, a.Node)
		}
	}
	b.validateAllow(a.Allow, a.Pos, obj)
	if au := a.Auth; au != nil {
		if au.TokenFile == "" {
			b.errf(au.Pos, obj, "e.g. token_file: /etc/offedge/secrets/admin.token", "auth: no token_file")
		} else if !path.IsAbs(au.TokenFile) {
			b.errf(au.Pos, obj, "", "auth: token_file %q must be an absolute path", au.TokenFile)
		}
	}
}
