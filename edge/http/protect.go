package httpedge

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/http/vars"
	"github.com/offedge/offedge/edge/protect"
)

// The HTTP side of edge/protect: a site's bot rules and jails, a route's
// rate zones. The zones, class maps, jails, ban list and tarpit are node
// resources (Resources); a chain only names them.

// siteProtect is what a site applies to every request.
type siteProtect struct {
	bots   []*protect.BotRule
	hits   map[*protect.BotRule]*atomic.Uint64 // the server's counter of each rule (kept across reloads)
	jails  []*protect.Jail
	tarpit *protect.Tarpit
	need4x bool // a jail counts 4xx answers
}

// routeLimit is one rate zone a route counts against.
type routeLimit struct {
	name    string
	zone    *protect.Zone
	m       *protect.Map // the class map, for class keys
	burst   int
	nodelay bool
}

func buildSiteProtect(sc *Site, res Resources) (*siteProtect, error) {
	if len(sc.Bots) == 0 && len(sc.Jails) == 0 {
		return nil, nil
	}
	sp := &siteProtect{tarpit: res.Tarpit, hits: map[*protect.BotRule]*atomic.Uint64{}}
	for i := range sc.Bots {
		bc := sc.Bots[i]
		if bc.PageFile != "" {
			page, err := os.ReadFile(bc.PageFile)
			if err != nil {
				return nil, fmt.Errorf("bot rule %q: page: %w", bc.Name, err)
			}
			bc.Page = string(page)
		}
		b, err := protect.NewBotRule(bc)
		if err != nil {
			return nil, err
		}
		if b.Action == protect.ActionTarpit && res.Tarpit == nil {
			return nil, fmt.Errorf("bot rule %q: the tarpit action needs the node's tarpit", b.Name)
		}
		sp.bots = append(sp.bots, b)
	}
	for _, name := range sc.Jails {
		j, ok := res.Jails[name]
		if !ok {
			return nil, fmt.Errorf("jail %q is not among the node's jails", name)
		}
		sp.jails = append(sp.jails, j)
		sp.need4x = sp.need4x || j.Counts(protect.Event4xx)
	}
	return sp, nil
}

func buildRouteLimits(rc *Route, res Resources) ([]routeLimit, error) {
	var out []routeLimit
	for _, lim := range rc.Limits {
		name := lim.Zone
		z, ok := res.Zones[name]
		if !ok {
			return nil, fmt.Errorf("limit zone %q is not among the node's zones", name)
		}
		if mb := z.Config().MaxBurst; lim.Burst < 0 || lim.Burst > mb {
			return nil, fmt.Errorf("limit zone %q: burst %d: must be from 0 to the zone's max_burst %d", name, lim.Burst, mb)
		}
		rl := routeLimit{name: name, zone: z, burst: lim.Burst, nodelay: lim.NoDelay}
		if m := z.Config().Map; m != "" {
			if rl.m, ok = res.Maps[m]; !ok {
				return nil, fmt.Errorf("limit zone %q: map %q is not among the node's maps", name, m)
			}
		}
		out = append(out, rl)
	}
	return out, nil
}

// protectRequest applies the site's bot rules and the route's zones; it
// reports whether the request goes on. A refusal has been answered (or the
// connection aborted, for 444) when it returns false.
func (s *Server) protectRequest(w *recorder, r *http.Request, st *site, rt *route) bool {
	pr := protectRequestOf(r, r.URL.Path)
	client := pr.Addr.String()
	if sp := st.protect; sp != nil && len(sp.bots) > 0 {
		if b := protect.FirstMatch(sp.bots, &pr); b != nil {
			b.Hit()
			if c := sp.hits[b]; c != nil {
				c.Add(1)
			}
			s.decisions.Log("bot "+b.Name, b.Action, client, "site", st.name, "path", pr.Path, "user_agent", pr.UserAgent)
			sp.observe(pr.Addr, protect.EventBot)
			s.botAction(w, r, st, b)
			return false
		}
	}
	for i := range rt.limits {
		l := &rt.limits[i]
		key := s.zoneKey(l, &pr)
		v := l.zone.TakeBurst(key, s.opts.Now(), l.burst, l.nodelay)
		if v.Limited {
			cfg := l.zone.Config()
			action := "refused"
			if cfg.DryRun {
				action = "dry-run"
			}
			s.decisions.Log("limit "+l.name, action, client, "site", st.name, "route", rt.path)
			if st.protect != nil && !cfg.DryRun {
				// A dry run only logs and counts: it feeds no jail.
				st.protect.observe(pr.Addr, protect.EventLimit)
			}
		}
		if v.Refuse {
			s.refuse(w, r, st, l.zone.Config().Status, v.RetryAfter, "too many requests")
			return false
		}
		if v.Delay > 0 {
			t := time.NewTimer(v.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				w.clientGone()
				w.status = statusClientClosed
				return false
			}
		}
	}
	return true
}

// zoneKey is what l counts the request by: its client, its class, or
// both; "" (a request of no class) is not counted.
func (s *Server) zoneKey(l *routeLimit, pr *protect.Request) string {
	switch l.zone.Config().Key {
	case protect.KeyClass:
		return l.m.Class(pr)
	case protect.KeyClassAddress:
		c := l.m.Class(pr)
		if c == "" {
			return ""
		}
		return c + "\x00" + protect.ClientKey(pr.Addr)
	}
	return protect.ClientKey(pr.Addr)
}

func (sp *siteProtect) observe(a netip.Addr, ev string) {
	for _, j := range sp.jails {
		j.Observe(a, ev)
	}
}

// observeAnswer feeds a site's jails the 4xx answers (fail2ban's log
// filters), once the status is known.
func (sp *siteProtect) observeAnswer(r *http.Request, status int) {
	if sp == nil || !sp.need4x || status < 400 || status > 499 {
		return
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return
	}
	sp.observe(ap.Addr().Unmap(), protect.Event4xx)
}

// refuse answers a refused request with status (429 or 503, with
// Retry-After), or closes the connection without an answer (444).
func (s *Server) refuse(w *recorder, r *http.Request, st *site, status int, retry time.Duration, msg string) {
	if status == protect.StatusClose {
		w.outcome = protect.StatusClose
		panic(http.ErrAbortHandler) // nginx 444: close, no answer
	}
	secs := max(1, int64(math.Ceil(retry.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	s.errorPage(w, r, st, status, msg)
}

// botAction answers a request a bot rule matched.
func (s *Server) botAction(w *recorder, r *http.Request, st *site, b *protect.BotRule) {
	switch b.Action {
	case protect.ActionPage:
		h := w.Header()
		h.Set("Content-Type", b.PageType)
		h.Set("Content-Length", strconv.Itoa(len(b.Page)))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write([]byte(b.Page))
		}
	case protect.ActionDeny:
		s.errorPage(w, r, st, http.StatusForbidden, "forbidden")
	case protect.ActionLimit:
		s.refuse(w, r, st, http.StatusTooManyRequests, time.Minute, "too many requests")
	case protect.ActionClose:
		s.refuse(w, r, st, protect.StatusClose, 0, "")
	case protect.ActionTarpit:
		st.protect.tarpit.Hold(r.Context())
		if r.Context().Err() != nil {
			w.status = statusClientClosed
			return
		}
		s.refuse(w, r, st, http.StatusTooManyRequests, time.Minute, "too many requests")
	}
}

// protectRequestOf is what maps and bot rules look at in r, with path as
// its path.
func protectRequestOf(r *http.Request, path string) protect.Request {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return protect.Request{
		Addr:      ap.Addr().Unmap(),
		UserAgent: r.Header.Get("User-Agent"),
		Referer:   r.Header.Get("Referer"),
		Path:      path,
		Header:    r.Header.Get,
	}
}

// classMapVariables are the node's class maps as variables ($NAME) of a
// site's templates, computed on the current URI when read.
func classMapVariables(res Resources) []vars.Computed {
	var out []vars.Computed
	for _, name := range slices.Sorted(maps.Keys(res.Maps)) {
		if !vars.IsName(name) {
			continue
		}
		m := res.Maps[name]
		out = append(out, vars.Computed{Name: name, Value: func(q *vars.Request) string {
			pr := protectRequestOf(q.R, q.URI)
			return m.Class(&pr)
		}})
	}
	return out
}
