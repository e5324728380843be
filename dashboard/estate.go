package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/offedge/offedge/internal/adminauth"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/storage"
)

// Bounds on asking a peer: each answer within PeerTimeout and at most
// MaxPeerAnswer bytes; answers are reused for PeerCacheFor, so that a page
// polling every second (or ten of them) asks each peer once a second.
const (
	PeerTimeout   = 2 * time.Second
	MaxPeerAnswer = 4 << 20
	PeerCacheFor  = time.Second
)

// NodePath is where an admin endpoint serves its own node's state for the
// other nodes' dashboards (GET, the token of its auth when it has one).
const NodePath = "/api/node"

// NodeState is what NodePath answers: the node's runtime status, probe
// results and measured replicas.
type NodeState struct {
	Node     string                 `json:"node"`
	Runtime  any                    `json:"runtime"`
	Probes   any                    `json:"probes"`
	Replicas []storage.ReplicaState `json:"replicas,omitempty"`
}

// PeerAnswer is one peer's answer: its state, or why there is none.
type PeerAnswer struct {
	State json.RawMessage
	Err   string
}

// Estate asks the peers of the plan in force (plan.Admin.Peers) for their
// state. Their tokens are read on this node when the plan changes.
type Estate struct {
	admin  func() *plan.Admin
	client *http.Client

	mu     sync.Mutex
	at     time.Time
	last   map[string]PeerAnswer
	forAdm *plan.Admin
	tokens map[string]string // by peer node; absent: none
	tokErr map[string]string
}

// NewEstate returns an Estate of the peers admin() names (nil: none).
func NewEstate(admin func() *plan.Admin) *Estate {
	return &Estate{admin: admin, client: &http.Client{Timeout: PeerTimeout}}
}

// Gather returns every peer's answer, by node name, asking them all at
// once (or reusing answers younger than PeerCacheFor).
func (e *Estate) Gather(ctx context.Context) map[string]PeerAnswer {
	e.mu.Lock()
	defer e.mu.Unlock()
	adm := e.admin()
	if adm == nil || len(adm.Peers) == 0 {
		return nil
	}
	if adm == e.forAdm && time.Since(e.at) < PeerCacheFor {
		return e.last
	}
	if adm != e.forAdm {
		e.tokens, e.tokErr = map[string]string{}, map[string]string{}
		for _, p := range adm.Peers {
			if p.TokenFile == "" {
				continue
			}
			tok, err := adminauth.ReadClientToken(p.TokenFile)
			if err != nil {
				e.tokErr[p.Node] = "its token: " + err.Error()
				continue
			}
			e.tokens[p.Node] = tok
		}
		e.forAdm = adm
	}
	out := make(map[string]PeerAnswer, len(adm.Peers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range adm.Peers {
		if msg, bad := e.tokErr[p.Node]; bad {
			out[p.Node] = PeerAnswer{Err: msg}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := e.ask(ctx, p)
			a := PeerAnswer{State: st}
			if err != nil {
				a = PeerAnswer{Err: err.Error()}
			}
			mu.Lock()
			out[p.Node] = a
			mu.Unlock()
		}()
	}
	wg.Wait()
	e.at, e.last = time.Now(), out
	return out
}

func (e *Estate) ask(ctx context.Context, p plan.AdminPeer) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, PeerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+p.Addr.String()+NodePath, nil)
	if err != nil {
		return nil, err
	}
	if tok, ok := e.tokens[p.Node]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return nil, fmt.Errorf("%s did not answer within %s", p.Addr, PeerTimeout)
		}
		return nil, fmt.Errorf("%s: %v", p.Addr, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", p.Addr, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxPeerAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading its answer: %v", p.Addr, err)
	}
	if len(b) > MaxPeerAnswer {
		return nil, fmt.Errorf("%s: its answer is larger than %d bytes", p.Addr, MaxPeerAnswer)
	}
	var st NodeState
	if err := json.Unmarshal(b, &st); err != nil || st.Node != p.Node {
		return nil, fmt.Errorf("%s: not the state of node %s", p.Addr, p.Node)
	}
	return b, nil
}

// Replicas returns the replicas a peer's answer measured.
func (a PeerAnswer) Replicas() []storage.ReplicaState {
	var st NodeState
	if a.State == nil || json.Unmarshal(a.State, &st) != nil {
		return nil
	}
	return st.Replicas
}
