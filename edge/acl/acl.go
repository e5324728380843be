// Package acl decides, at accept time and before any byte is read, whether a
// peer address may use a listener. Every listener offedge opens (HTTP sites,
// tunnel entrances and exits, forwards) goes through the same [List] and the
// same [Listener] wrapper, so one mechanism answers "who may connect".
package acl

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rule is one line of an access list: a prefix, whether it allows or denies,
// and where it came from in the inventory (a node, provider or CIDR), so that
// a denial can be explained.
type Rule struct {
	Prefix netip.Prefix `json:"prefix"`
	Allow  bool         `json:"allow"`
	// From names the inventory entry this rule was resolved from
	// ("ovh1", "provider:ovh", "10.0.0.0/8").
	From string `json:"from,omitempty"`
}

// List is an ordered access list: the first rule whose prefix contains the
// address decides. When no rule matches, Default decides. The zero List denies
// everything, which is the safe default for TCP services.
type List struct {
	Rules   []Rule `json:"rules,omitempty"`
	Default bool   `json:"default_allow"`
}

// AllowAll returns a list that admits every address (public HTTP sites).
func AllowAll() List { return List{Default: true} }

// Decide reports whether addr may connect and which rule decided ("default"
// when none matched). IPv4-mapped IPv6 addresses are unmapped first, so a rule
// for 192.0.2.1/32 matches a peer seen as ::ffff:192.0.2.1 on a dual-stack socket.
func (l *List) Decide(addr netip.Addr) (bool, string) {
	addr = addr.Unmap().WithZone("")
	for _, r := range l.Rules {
		if r.Prefix.Contains(addr) {
			if r.From != "" {
				return r.Allow, r.From
			}
			return r.Allow, r.Prefix.String()
		}
	}
	return l.Default, "default"
}

// Allowed reports whether addr may connect.
func (l *List) Allowed(addr netip.Addr) bool {
	ok, _ := l.Decide(addr)
	return ok
}

// String renders the list the way `offedge plan` prints it.
func (l *List) String() string {
	var b strings.Builder
	for i, r := range l.Rules {
		if i > 0 {
			b.WriteString(", ")
		}
		verb := "deny"
		if r.Allow {
			verb = "allow"
		}
		fmt.Fprintf(&b, "%s %s", verb, r.Prefix)
		if r.From != "" && r.From != r.Prefix.String() {
			fmt.Fprintf(&b, " (%s)", r.From)
		}
	}
	if len(l.Rules) > 0 {
		b.WriteString(", ")
	}
	if l.Default {
		b.WriteString("allow all others")
	} else {
		b.WriteString("deny all others")
	}
	return b.String()
}

// Stats counts what a filtered listener admitted and refused.
type Stats struct {
	Accepted atomic.Uint64
	Denied   atomic.Uint64
}

// ListenerOptions configure [Wrap].
type ListenerOptions struct {
	// Name identifies the listener in log lines ("tunnel mongodb-ovh exit").
	Name string
	// Logger receives denial lines, at most one per LogEvery per listener; the
	// count of suppressed lines is reported with the next one. Nil: no logs.
	Logger *slog.Logger
	// LogEvery is the minimum interval between two denial log lines. Zero means 1s.
	LogEvery time.Duration
	// Stats, if not nil, is updated for every accepted or denied connection.
	Stats *Stats
	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time
	// Gate, when set, is asked about every connection the list admits
	// (the node's ban list): a refusal is counted and logged as a denial,
	// with the rule the gate names.
	Gate Gate
}

// Gate refuses connections the access list admits: banned clients. Refuse
// returns the rule that decided.
type Gate interface {
	Refuse(addr netip.Addr) (rule string, refused bool)
}

// Wrap returns a listener whose Accept only returns connections that list
// allows. Denied connections are closed immediately, before any byte is read
// or written, counted, and logged with rate limiting.
func Wrap(ln net.Listener, list List, opts ListenerOptions) *Listener {
	if opts.LogEvery <= 0 {
		opts.LogEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Stats == nil {
		opts.Stats = new(Stats)
	}
	l := &Listener{Listener: ln, opts: opts}
	l.list.Store(&list)
	return l
}

// Listener is a net.Listener filtered by an access list that can be
// replaced while it serves (a reload that only changes who may connect keeps
// the socket and every open connection).
type Listener struct {
	net.Listener
	list atomic.Pointer[List]
	opts ListenerOptions

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

// SetList replaces the access list for connections accepted from now on.
func (l *Listener) SetList(list List) { l.list.Store(&list) }

// List returns the access list in force.
func (l *Listener) List() List { return *l.list.Load() }

// Stats returns the listener's counters.
func (l *Listener) Stats() *Stats { return l.opts.Stats }

// Accept returns the next connection the access list allows.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.Admit(PeerAddr(c)) {
			return c, nil
		}
		c.Close()
	}
}

// Admit decides on a connection from peer as Accept does (the list, then
// the gate), counts the decision and logs a denial. A caller that accepts
// from the listener under l itself (the forward's event loop) calls it for
// every connection and closes at once, before any byte is read or written,
// those it refuses.
func (l *Listener) Admit(peer netip.AddrPort) bool {
	ok, by := l.list.Load().Decide(peer.Addr())
	if ok && l.opts.Gate != nil {
		if rule, refused := l.opts.Gate.Refuse(peer.Addr()); refused {
			ok, by = false, rule
		}
	}
	if ok {
		l.opts.Stats.Accepted.Add(1)
		return true
	}
	// Counted before the caller's close, so that a client that has seen
	// its connection refused also sees it counted.
	l.opts.Stats.Denied.Add(1)
	l.logDenied(peer, by)
	return false
}

func (l *Listener) logDenied(peer netip.AddrPort, by string) {
	if l.opts.Logger == nil {
		return
	}
	l.mu.Lock()
	now := l.opts.Now()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < l.opts.LogEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.suppressed = 0
	l.lastLog = now
	l.mu.Unlock()
	l.opts.Logger.Warn("connection denied", "listener", l.opts.Name, "peer", peer.String(), "rule", by, "suppressed_since_last", n)
}

// PeerAddr returns the remote address of c as a netip.AddrPort (unmapped), or
// the zero value when c has no IP peer (a unix socket).
func PeerAddr(c net.Conn) netip.AddrPort {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return netip.AddrPort{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
}
