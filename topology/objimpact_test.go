package topology

import (
	"slices"
	"strings"
	"testing"
)

// The tunnel docker-prod reaches MongoDB by is the only way there: with it
// down docker-prod loses mongodb (and nothing loses redis, another
// tunnel); a site down loses its hosts; a replica down loses no path.
func TestImpactOf(t *testing.T) {
	m := loadOFF(t)
	r, err := ImpactOf(m, "tunnel", "mongodb-ovh")
	if err != nil {
		t.Fatal(err)
	}
	lost := map[string]bool{}
	for _, u := range r.Unreachable {
		lost[u.Client+" "+u.Target] = true
		if !strings.Contains(u.Reason, "tunnel mongodb-ovh") {
			t.Errorf("reason %q does not name the tunnel", u.Reason)
		}
	}
	if !lost["docker-prod mongodb"] || lost["docker-prod redis"] {
		t.Errorf("tunnel mongodb-ovh down: lost %v; want docker-prod mongodb, not redis", lost)
	}
	if !slices.Contains(r.LostTunnels, "mongodb-ovh") {
		t.Errorf("lost tunnels %v", r.LostTunnels)
	}

	site := m.Sites[0]
	r, err = ImpactOf(m, "site", site.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range site.Hosts {
		if !slices.Contains(r.LostSites, h) {
			t.Errorf("site %s down: host %s not lost (%v)", site.Name, h, r.LostSites)
		}
	}

	rp := m.Replicas[0]
	r, err = ImpactOf(m, "replica", rp.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unreachable) != 0 || !slices.Contains(r.StaleReplicas, rp.Name) {
		t.Errorf("replica down: %+v", r)
	}

	if _, err := ImpactOf(m, "tunnel", "nosuch"); err == nil {
		t.Error("unknown tunnel: no error")
	}
	if _, err := ImpactOf(m, "bogus", "x"); err == nil {
		t.Error("unknown kind: no error")
	}
	if r, err := ImpactOf(m, "node", "ovh1"); err != nil || len(r.LostSites) == 0 {
		t.Errorf("node ovh1: %v %v", r, err)
	}
}
