package inventory

import (
	"fmt"
	"net/netip"
)

// NodeFirewall says that offedge owns the node's firewall: one nftables
// table (inet offedge) rendered from the inventory and applied by
// `offedge firewall apply` or `offedge run --firewall`. Tables other tools
// own (fail2ban, docker, Proxmox) are never touched.
type NodeFirewall struct {
	Pos Pos `yaml:"-"`
	// Input is the verdict for inbound traffic the inventory does not
	// declare: "drop" (the default) or "accept". With "accept" only the
	// declared services are filtered, and `offedge check` refuses it on a
	// node with a public address (everything else would be open to the
	// internet by omission).
	Input string `yaml:"input"`
}

// InputPolicy is the firewall's input verdict, "drop" unless set.
func (f *NodeFirewall) InputPolicy() string {
	if f == nil || f.Input == "" {
		return "drop"
	}
	return f.Input
}

// Management is one way operators or tools administer a node: ssh, the
// Proxmox web UI, IPMI. The node's firewall admits it before anything else,
// and `offedge check` refuses a firewall that would not.
type Management struct {
	Pos Pos `yaml:"-"`
	// Name says what it is: ssh, proxmox-ui, ipmi, or any other name.
	Name string `yaml:"name"`
	// Port defaults to 22 for ssh, 8006 for proxmox-ui and 623 (UDP) for ipmi.
	Port int `yaml:"port"`
	// Protocol is tcp (the default) or udp.
	Protocol string `yaml:"protocol"`
	// Address is where it answers when that is not one of the node's own
	// addresses: an IPMI/iDRAC controller has its own. The node's firewall
	// never sees that traffic and renders no rule for it.
	Address netip.Addr `yaml:"address"`
	// Allow is who may connect, as any allow list ("Access lists").
	Allow []string `yaml:"allow"`
}

// OutOfBand reports whether the entry answers on an address that is not the
// node's (a baseboard management controller).
func (m *Management) OutOfBand(n *Node) bool {
	if !m.Address.IsValid() {
		return false
	}
	for _, a := range n.Addresses {
		if a.IP == m.Address {
			return false
		}
	}
	return true
}

// DefaultPort is the management port when the inventory leaves it unset.
func (m *Management) DefaultPort() int {
	if m.Port != 0 {
		return m.Port
	}
	switch m.Name {
	case "ssh":
		return 22
	case "proxmox-ui":
		return 8006
	case "ipmi":
		return 623
	}
	return 0
}

// Transport is the management protocol, tcp unless set (udp for ipmi).
func (m *Management) Transport() string {
	if m.Protocol != "" {
		return m.Protocol
	}
	if m.Name == "ipmi" {
		return "udp"
	}
	return "tcp"
}

// IsKernel reports whether the forward is an nftables DNAT rule rather than
// a userspace relay.
func (f *Forward) IsKernel() bool { return f.Mode == "kernel" }

func (b *builder) validateFirewall(n *Node, obj string) {
	if f := n.Firewall; f != nil && f.Input != "" && !oneOf(f.Input, "drop", "accept") {
		b.errf(f.Pos, obj+": firewall", `use "drop" (the default) or "accept"`, "unknown input policy %q", f.Input)
	}
	seen := map[string]bool{}
	for i, mg := range n.Management {
		mobj := fmt.Sprintf("%s: management %d", obj, i)
		if mg.Name == "" {
			b.errf(mg.Pos, mobj, "e.g. name: ssh", "missing name")
		} else if !nameRE.MatchString(mg.Name) {
			b.errf(mg.Pos, mobj, "use lowercase letters, digits, '.', '_' and '-'", "invalid name %q", mg.Name)
		}
		port := mg.DefaultPort()
		if port < 1 || port > 65535 {
			b.errf(mg.Pos, mobj, "ssh, proxmox-ui and ipmi have default ports; others need port: N", "port %d is not in 1-65535", port)
		}
		if !oneOf(mg.Transport(), "tcp", "udp") {
			b.errf(mg.Pos, mobj, `use "tcp" or "udp"`, "unknown protocol %q", mg.Protocol)
		}
		key := fmt.Sprint(mg.Transport(), port)
		if seen[key] {
			b.errf(mg.Pos, mobj, "merge the two entries' allow lists", "%s port %d is declared twice", mg.Transport(), port)
		}
		seen[key] = true
		if len(mg.Allow) == 0 {
			b.errf(mg.Pos, mobj, "add allow: [...] naming who administers the node", "empty allow list: nobody could administer the node")
		}
		b.validateAllow(mg.Allow, mg.Pos, mobj)
	}
}

func (b *builder) validateForwardMode(f *Forward, obj string) {
	if f.Mode != "" && !oneOf(f.Mode, "userspace", "kernel") {
		b.errf(f.Pos, obj, `use "userspace" (the default) or "kernel"`, "unknown mode %q", f.Mode)
		return
	}
	if f.IsKernel() && f.ProxyProtocol {
		b.errf(f.Pos, obj, "a kernel DNAT keeps the client's address; drop proxy_protocol", "proxy_protocol needs mode: userspace")
	}
	if f.IsKernel() && f.Listen != nil && f.Listen.Loopback {
		b.errf(f.Pos, obj, "DNAT applies to traffic arriving from a network", "a kernel forward cannot listen on loopback")
	}
}
