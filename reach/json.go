package reach

import (
	"encoding/json"
	"net/netip"
)

// hopJSON is a hop for JSON output: nodes by name, addresses as text.
type hopJSON struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Kind     string `json:"kind"`
	Via      string `json:"via,omitempty"`
	Network  string `json:"network"`
	Addr     string `json:"addr"`
	Source   string `json:"source,omitempty"`
	NAT      string `json:"nat,omitempty"`
	Loopback bool   `json:"loopback,omitempty"`
}

// MarshalJSON renders the hop with its nodes by name: {"from", "to",
// "kind", "via", "network", "addr", "source", "nat" (the NAT gateway),
// "loopback"}.
func (h Hop) MarshalJSON() ([]byte, error) {
	j := hopJSON{Kind: h.Kind, Via: h.Via, Network: h.Target.Network, Addr: h.Target.Addr.String(), Loopback: h.Target.Loopback}
	if h.From != nil {
		j.From = h.From.Name
	}
	if h.To != nil {
		j.To = h.To.Name
	}
	if h.Target.Source.IsValid() && !h.Target.Source.IsUnspecified() {
		j.Source = h.Target.Source.String()
	}
	if h.Target.Via != nil {
		j.NAT = h.Target.Via.Name
	}
	return json.Marshal(j)
}

// MarshalJSON renders the block as data and as text: {"kind", "name",
// "object", "pos" ("file:line:col"), "allow", "node", "source",
// "network", "reason"}.
func (b *Block) MarshalJSON() ([]byte, error) {
	j := struct {
		Kind    string   `json:"kind"`
		Name    string   `json:"name"`
		Object  string   `json:"object"`
		Pos     string   `json:"pos,omitempty"`
		Allow   []string `json:"allow"`
		Node    string   `json:"node"`
		Source  string   `json:"source,omitempty"`
		Network string   `json:"network"`
		Reason  string   `json:"reason"`
	}{Kind: b.Kind, Name: b.Name, Object: b.Object(), Allow: b.Allow, Network: b.Network, Reason: b.String()}
	if j.Allow == nil {
		j.Allow = []string{}
	}
	if !b.Pos.IsZero() {
		j.Pos = b.Pos.String()
	}
	if b.Node != nil {
		j.Node = b.Node.Name
	}
	if b.Source != (netip.Addr{}) && !b.Source.IsUnspecified() {
		j.Source = b.Source.String()
	}
	return json.Marshal(j)
}

// MarshalJSON renders the path: {"title", "open", "hops", "blocked"}.
func (p Path) MarshalJSON() ([]byte, error) {
	hops := p.Hops
	if hops == nil {
		hops = []Hop{}
	}
	return json.Marshal(struct {
		Title   string `json:"title"`
		Open    bool   `json:"open"`
		Hops    []Hop  `json:"hops"`
		Blocked *Block `json:"blocked,omitempty"`
	}{p.Title, p.Open(), hops, p.Blocked})
}
