package observe

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

func loadOFF(t *testing.T) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGenerate checks that nothing declared goes unprobed, from the right
// vantage point.
func TestGenerate(t *testing.T) {
	m := loadOFF(t)
	probes := Generate(m)
	byName := map[string]Probe{}
	for _, p := range probes {
		if _, dup := byName[p.Name]; dup {
			t.Errorf("two probes named %s", p.Name)
		}
		byName[p.Name] = p
	}
	for _, s := range m.Sites {
		for _, h := range s.Hosts {
			h = strings.Replace(h, "*.", "www.", 1)
			p, ok := byName["site/"+h]
			if strings.HasPrefix(h, "www.") && len(s.Hosts) > 1 {
				continue // a wildcard beside exact hosts
			}
			if !ok {
				t.Errorf("site host %s has no probe", h)
			} else if p.From != Internet || p.Protocol != ProtoHTTPS {
				t.Errorf("site host %s probed from %s over %s, want internet over https", h, p.From, p.Protocol)
			}
		}
	}
	for _, tn := range m.Tunnels {
		if p, ok := byName["tunnel/"+tn.Name]; !ok || p.From != tn.Entrance.Node || p.Tunnel != tn.Name {
			t.Errorf("tunnel %s: probe %+v, want one from its entrance %s opening the tunnel", tn.Name, p, tn.Entrance.Node)
		}
	}
	for _, n := range m.Nodes {
		for _, u := range n.Uses {
			if m.Service(u) == nil {
				continue
			}
			if _, ok := byName["service/"+n.Name+"/"+u]; !ok {
				t.Errorf("%s uses %s but has no probe of it", n.Name, u)
			}
		}
	}
	for _, f := range m.Forwards {
		if _, ok := byName["forward/"+f.Name]; !ok {
			t.Errorf("forward %s has no probe", f.Name)
		}
	}
	want := []Probe{
		{Name: "service/docker-prod/mongodb", From: "docker-prod", Kind: KindService, Object: "mongodb", Protocol: ProtoMongoDB,
			Network: "ovh-lan", Addr: netip.MustParseAddrPort("10.1.0.113:27017"), Host: "mongodb", Path: "/", MaxStatus: 500, Via: "tunnel mongodb-ovh"},
		{Name: "upstream/ovh3/off1-images/node:off1:443", From: "ovh3", Kind: KindUpstream, Object: "off1-images", Protocol: ProtoHTTPS,
			Network: "internet", Addr: netip.MustParseAddrPort("213.36.253.206:443"), Host: "images.openfoodfacts.org",
			ServerName: "off1.openfoodfacts.org", Path: "/", MaxStatus: 500, Via: "node off1:443"},
		{Name: "upstream/ovh-proxy/robotoff/tunnel:robotoff", From: "ovh-proxy", Kind: KindUpstream, Object: "robotoff", Protocol: ProtoHTTP,
			Network: LoopbackNetwork, Addr: netip.MustParseAddrPort("127.0.0.1:16000"), Host: "robotoff.openfoodfacts.org", Path: "/", MaxStatus: 500, Via: "tunnel robotoff"},
		{Name: "forward/pmg-smtp", From: "off1", Kind: KindForward, Object: "pmg-smtp", Protocol: ProtoSMTP,
			Network: "internet", Addr: netip.MustParseAddrPort("146.59.148.140:26"), Host: "pmg-smtp", Path: "/", MaxStatus: 500, Via: "forward pmg-smtp"},
	}
	for _, w := range want {
		if got := byName[w.Name]; got != w {
			t.Errorf("probe %s:\n got %+v\nwant %+v", w.Name, got, w)
		}
	}
	if got := len(For(probes, "ovh-proxy")); got < 9 {
		t.Errorf("ovh-proxy runs %d probes, want its 8 upstream servers, its tunnel and its use", got)
	}
}
