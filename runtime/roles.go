package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/offedge/offedge/edge/forward"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/plan"
)

// Role is what serves one listener of a plan: an HTTP server, a tunnel
// entrance or exit, or a forward. The runtime drives every role the same
// way and never needs to know which it is.
type Role interface {
	// Serve accepts connections on ln (already filtered by the listener's
	// access list) until Shutdown.
	Serve(ln net.Listener) error
	// Update builds the listener's new configuration (on the resources of
	// the new plan's generation) without changing what is served, and returns the
	// function that swaps it in; commit cannot fail. Apply prepares every
	// role before it commits any, so a reload applies in full or not at all.
	Update(spec plan.Listener, g *generation) (commit func(), err error)
	// Shutdown stops accepting and drains open connections until ctx ends.
	Shutdown(ctx context.Context) error
	// Stats is a snapshot of the role's counters.
	Stats() RoleStats
}

// RoleStats is the snapshot one role reports: exactly one field is set,
// as the listener's kind says. The counters run from the role's start
// (a listener updated in place keeps counting; one replaced starts at 0).
// It is the per-listener part of [Status], which metrics read.
type RoleStats struct {
	// HTTP: requests by status class, upstream errors, cache hits and
	// misses, open connections and WebSockets, and the state of each server
	// of the pools its routes use (pools are node-wide: every listener using
	// one reports the same state).
	HTTP *httpedge.Stats `json:"http,omitempty"`
	// Tunnel entrances and exits: connections accepted and open, handshake,
	// authentication and dial failures, bytes each way.
	Tunnel *tunnel.Stats `json:"tunnel,omitempty"`
	// Forwards: connections accepted and open, dial failures, idle closes,
	// bytes each way.
	Forward *forward.Stats `json:"forward,omitempty"`
}

// newRole builds the role of spec; nothing is served until Serve.
func (n *Node) newRole(spec plan.Listener, g *generation) (Role, error) {
	spec = n.budgeted(spec)
	res := g.http
	switch spec.Kind {
	case plan.KindHTTP:
		if spec.HTTP != nil {
			s, err := httpedge.NewServer(*spec.HTTP, res, httpedge.Options{Logger: n.log, Dial: n.dial, RootCAs: n.opts.RootCAs,
				MaxConns: n.caps[spec.Key()]})
			if err != nil {
				return nil, err
			}
			return httpRole{s}, nil
		}
	case plan.KindTunnelEntrance:
		if spec.Entrance != nil {
			e, err := tunnel.NewEntrance(entranceOn(spec, g), tunnel.Options{Logger: n.log, Dial: n.dial, Keys: n.opts.Keys, ListenKeepAlive: listenKeepAlive(spec)})
			if err != nil {
				return nil, err
			}
			return entranceRole{e}, nil
		}
	case plan.KindTunnelExit:
		if spec.Exit != nil {
			x, err := tunnel.NewExit(exitOn(spec, g), tunnel.Options{Logger: n.log, Dial: n.dial, Keys: n.opts.Keys, ListenKeepAlive: listenKeepAlive(spec)})
			if err != nil {
				return nil, err
			}
			return exitRole{x}, nil
		}
	case plan.KindForward:
		if spec.Forward != nil {
			f, err := forward.New(*spec.Forward, forward.Options{Logger: n.log, Route: n.route})
			if err != nil {
				return nil, err
			}
			return forwardRole{f}, nil
		}
	}
	return nil, fmt.Errorf("listener of kind %q has no configuration for it", spec.Kind)
}

// errKind is returned by Update when the new spec is of another kind.
var errKind = errors.New("the listener changed kind")

type httpRole struct{ s *httpedge.Server }

func (r httpRole) Serve(ln net.Listener) error        { return r.s.Serve(ln) }
func (r httpRole) Shutdown(ctx context.Context) error { return r.s.Shutdown(ctx) }
func (r httpRole) Stats() RoleStats                   { st := r.s.Stats(); return RoleStats{HTTP: &st} }
func (r httpRole) Update(spec plan.Listener, g *generation) (func(), error) {
	if spec.HTTP == nil {
		return nil, errKind
	}
	return r.s.Prepare(*spec.HTTP, g.http)
}

// entranceOn and exitOn are the tunnel configurations of spec on the
// secrets of generation g (the plan names them; the registry loaded them).
func entranceOn(spec plan.Listener, g *generation) tunnel.EntranceConfig {
	c := *spec.Entrance
	c.Secrets = g.secrets
	return c
}

func exitOn(spec plan.Listener, g *generation) tunnel.ExitConfig {
	c := *spec.Exit
	c.Secrets = g.secrets
	return c
}

type entranceRole struct{ e *tunnel.Entrance }

// opener is a role that opens its tunnel for the node itself (a tunnel
// entrance, for probes).
type opener interface {
	Open(ctx context.Context) (net.Conn, error)
}

func (r entranceRole) Open(ctx context.Context) (net.Conn, error) { return r.e.Open(ctx) }

func (r entranceRole) Serve(ln net.Listener) error        { return r.e.Serve(ln) }
func (r entranceRole) Shutdown(ctx context.Context) error { return r.e.Shutdown(ctx) }
func (r entranceRole) Stats() RoleStats                   { st := r.e.Stats(); return RoleStats{Tunnel: &st} }
func (r entranceRole) Update(spec plan.Listener, g *generation) (func(), error) {
	if spec.Entrance == nil {
		return nil, errKind
	}
	return r.e.Prepare(entranceOn(spec, g))
}

type exitRole struct{ x *tunnel.Exit }

func (r exitRole) Serve(ln net.Listener) error        { return r.x.Serve(ln) }
func (r exitRole) Shutdown(ctx context.Context) error { return r.x.Shutdown(ctx) }
func (r exitRole) Stats() RoleStats                   { st := r.x.Stats(); return RoleStats{Tunnel: &st} }
func (r exitRole) Update(spec plan.Listener, g *generation) (func(), error) {
	if spec.Exit == nil {
		return nil, errKind
	}
	return r.x.Prepare(exitOn(spec, g))
}

type forwardRole struct{ f *forward.Forwarder }

func (r forwardRole) Serve(ln net.Listener) error        { return r.f.Serve(ln) }
func (r forwardRole) Shutdown(ctx context.Context) error { return r.f.Shutdown(ctx) }
func (r forwardRole) Stats() RoleStats                   { st := r.f.Stats(); return RoleStats{Forward: &st} }
func (r forwardRole) Update(spec plan.Listener, _ *generation) (func(), error) {
	if spec.Forward == nil {
		return nil, errKind
	}
	return r.f.Prepare(*spec.Forward)
}
