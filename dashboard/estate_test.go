package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/adminauth"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage"
)

func peerServer(t *testing.T, h http.HandlerFunc) netip.AddrPort {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
}

// The estate view asks each peer with its token, within a time and size
// bound; a peer that does not answer, refuses, answers too much or
// answers for another node is unknown with why, never down.
func TestEstate(t *testing.T) {
	m := offModel(t)
	tokFile := filepath.Join(t.TempDir(), "off2.token")
	const tok = "the-token-of-off2-is-long-enough"
	os.WriteFile(tokFile, []byte(tok+"\n"), 0o600)
	digest, err := adminauth.ReadToken(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	g := &adminauth.Guard{}
	g.SetToken(digest)
	lag := 120.0
	good := peerServer(t, func(w http.ResponseWriter, r *http.Request) {
		g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != NodePath {
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(NodeState{Node: "off2", Runtime: map[string]any{"listeners": []any{}},
				Replicas: []storage.ReplicaState{{Name: "r1", Lag: &lag, MaxLag: 60, Stale: true}}})
		})).ServeHTTP(w, &http.Request{Method: "POST", URL: r.URL, Header: r.Header, RemoteAddr: "192.0.2.9:1"}) // as from afar
	})
	refusing := peerServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) })
	huge := peerServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"node":"ovh1","x":"`))
		w.Write([]byte(strings.Repeat("a", MaxPeerAnswer+10)))
	})
	other := peerServer(t, func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(NodeState{Node: "off1"}) })
	release := make(chan struct{})
	slow := peerServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	adm := &plan.Admin{Peers: []plan.AdminPeer{
		{Node: "off2", Addr: good, TokenFile: tokFile},
		{Node: "ovh2", Addr: refusing},
		{Node: "ovh1", Addr: huge},
		{Node: "ovh3", Addr: other},
		{Node: "osm45", Addr: slow},
		{Node: "off1", Addr: good, TokenFile: filepath.Join(t.TempDir(), "missing")},
	}}
	e := NewEstate(func() *plan.Admin { return adm })
	start := time.Now()
	got := e.Gather(context.Background())
	if d := time.Since(start); d > PeerTimeout+time.Second {
		t.Errorf("gathering took %v, beyond the %v bound", d, PeerTimeout)
	}
	if got["off2"].Err != "" || len(got["off2"].Replicas()) != 1 {
		t.Errorf("off2: %+v", got["off2"])
	}
	for node, want := range map[string]string{"ovh2": "401", "ovh1": "larger than", "ovh3": "not the state of node ovh3", "osm45": "did not answer within", "off1": "its token"} {
		if !strings.Contains(got[node].Err, want) {
			t.Errorf("%s: err %q, want %q", node, got[node].Err, want)
		}
	}
	// A second gather within PeerCacheFor asks nobody.
	if again := e.Gather(context.Background()); again["off2"].Err != "" || time.Since(start) > 2*PeerTimeout {
		t.Errorf("cached gather: %+v", again)
	}

	status := map[string]any{"ovh-proxy": map[string]any{}, "off2": got["off2"].State}
	unknown := map[string]string{}
	for n, a := range got {
		if a.Err != "" {
			unknown[n] = a.Err
		}
	}
	st, err := Compute(m, Live{Status: status, Unknown: unknown, Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	nodes := byName(st)
	if nodes["off2"].State != "up" || nodes["ovh-proxy"].State != "up" {
		t.Errorf("answering nodes: off2 %s, ovh-proxy %s", nodes["off2"].State, nodes["ovh-proxy"].State)
	}
	for _, n := range []string{"ovh2", "ovh1", "osm45", "docker-prod"} {
		if nodes[n].State != "unknown" || nodes[n].Unknown == "" {
			t.Errorf("%s: %s (%q), want unknown with why", n, nodes[n].State, nodes[n].Unknown)
		}
	}
	if st.Impact != nil {
		t.Errorf("unknown nodes counted as down: %v", st.Causes)
	}
}
