package reach

import (
	"net/netip"

	"github.com/offedge/offedge/inventory"
)

// InternetClient is the name of the pseudo-node [Engine.Internet] returns.
const InternetClient = "internet"

// Internet returns a node standing for any client on the internet: one
// address of each family on every public network, unspecified, so that an
// allow list admits it only when it admits every source (any, 0.0.0.0/0,
// ::/0; a site with no list). It is not part of the model: `offedge why
// internet world.openfoodfacts.org` asks how the public reaches a site.
func (e *Engine) Internet() *inventory.Node {
	n := &inventory.Node{Name: InternetClient}
	for _, nw := range e.ix.publicNets {
		n.Addresses = append(n.Addresses,
			&inventory.Address{Network: nw, IP: netip.IPv4Unspecified()},
			&inventory.Address{Network: nw, IP: netip.IPv6Unspecified()})
	}
	return n
}
