package storage

// ReplicaState is one replica as last measured, for the dashboard: the
// same numbers as the offedge_replica_* metrics.
type ReplicaState struct {
	Name    string `json:"name"`
	Dataset string `json:"dataset"`
	// Lag is the age of the newest snapshot in seconds (the
	// offedge_replica_lag_seconds gauge); nil when no snapshot is known.
	Lag *float64 `json:"lag_seconds"`
	// MaxLag is the replica's max_lag in seconds.
	MaxLag float64 `json:"max_lag_seconds"`
	// Stale is true when Lag exceeds MaxLag or no snapshot is known: what
	// OffedgeReplicaStale alerts on.
	Stale bool `json:"stale"`
	// Error is why the last listing failed, empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Replicas returns the state of every measured replica of the plan in
// force, in plan order; nil for a nil Watch.
func (w *Watch) Replicas() []ReplicaState {
	if w == nil {
		return nil
	}
	st := w.plan()
	if st == nil {
		return nil
	}
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ReplicaState
	for _, rp := range st.Replicas {
		res, ok := w.results[rp.Name]
		if !ok || res.dataset != rp.Dataset {
			continue
		}
		s := ReplicaState{Name: rp.Name, Dataset: rp.Dataset, MaxLag: rp.MaxLag.Seconds(), Stale: true}
		if !res.newest.IsZero() {
			lag := max(now.Sub(res.newest), 0).Seconds()
			s.Lag = &lag
			s.Stale = rp.MaxLag > 0 && lag > s.MaxLag
		}
		if res.err != nil {
			s.Error = res.err.Error()
		}
		out = append(out, s)
	}
	return out
}
