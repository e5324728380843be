package runtime

import (
	"syscall"

	"github.com/offedge/offedge/plan"
)

// Descriptor budget. Every connection a listener holds costs descriptors
// (the client's, and the upstream, exit or target it is relayed to), and
// every listener of the process draws on one RLIMIT_NOFILE: without a
// budget, 700 idle HTTP keep-alive connections took every descriptor and
// a tunnel entrance in the same process spun on EMFILE while its client
// hung. At start the soft limit is raised to the hard one; a reserve is
// kept for files, logs, sockets and idle upstream connections; the rest is
// shared between the node's listeners by weight, and each listener's
// connection cap is its share divided by the descriptors a connection
// costs. A listener at its cap leaves new connections in the kernel's
// backlog, which holds no descriptor.
const (
	// fdPerConn is what one relayed or proxied connection costs.
	fdPerConn = 2
	// fdReserveMin, plus an eighth of the limit, is kept for everything
	// that is not a client's connection.
	fdReserveMin = 64
	// fdStaticRoot is reserved per static root: its open-file cache
	// keeps up to 1,024 descriptors.
	fdStaticRoot = 1024
	// httpWeight: an HTTP listener's share against a tunnel's or a
	// forward's.
	httpWeight = 2
)

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit and returns
// the limit in force.
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	if rl.Cur < rl.Max {
		up := rl
		up.Cur = up.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			rl = up
		}
	}
	return rl.Cur
}

// connCaps is each listener's connection cap (by Listener.Key) for a
// process allowed limit descriptors.
func connCaps(limit uint64, ls []plan.Listener) map[string]int {
	reserve := uint64(fdReserveMin) + limit/8
	weights := 0
	for _, l := range ls {
		reserve += 2 // the listening sockets
		weights += weight(l)
		if l.HTTP != nil {
			for _, s := range l.HTTP.Sites {
				for _, r := range s.Routes {
					if r.Static != nil {
						reserve += fdStaticRoot
					}
				}
			}
		}
	}
	caps := make(map[string]int, len(ls))
	avail := uint64(0)
	if limit > reserve {
		avail = limit - reserve
	}
	for _, l := range ls {
		n := 1
		if weights > 0 {
			n = max(int(avail*uint64(weight(l))/uint64(weights)/fdPerConn), 1)
		}
		caps[l.Key()] = n
	}
	return caps
}

func weight(l plan.Listener) int {
	if l.HTTP != nil {
		return httpWeight
	}
	return 1
}

// budgeted returns spec with the connection caps of a tunnel or forward
// (in all and per client) lowered to its descriptor budget (an HTTP listener gets its budget as
// httpedge.Options.MaxConns).
func (n *Node) budgeted(spec plan.Listener) plan.Listener {
	b := n.caps[spec.Key()]
	switch {
	case b <= 0:
	case spec.Entrance != nil:
		c := *spec.Entrance
		c.MaxConns = capConns(c.MaxConns, plan.DefaultMaxConns, b)
		c.MaxConnsPerClient = min(c.MaxConnsPerClient, c.MaxConns)
		spec.Entrance = &c
	case spec.Exit != nil:
		c := *spec.Exit
		c.MaxConns = capConns(c.MaxConns, plan.DefaultMaxConns, b)
		c.MaxConnsPerClient = min(c.MaxConnsPerClient, c.MaxConns)
		spec.Exit = &c
	case spec.Forward != nil:
		c := *spec.Forward
		c.MaxConns = capConns(c.MaxConns, plan.DefaultMaxConns, b)
		c.MaxConnsPerClient = min(c.MaxConnsPerClient, c.MaxConns)
		spec.Forward = &c
	}
	return spec
}

// capConns lowers a configured connection cap (0: the role's default
// def) to the budget.
func capConns(configured, def, budget int) int {
	if configured <= 0 {
		configured = def
	}
	if budget > 0 && budget < configured {
		return budget
	}
	return configured
}
