package httpedge

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DurationBuckets are the upper bounds of the request duration histogram
// kept per site and route (Prometheus' default buckets).
var DurationBuckets = []time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// routeStats counts the requests of one route of one site (or of a site
// outside its routes), resolved when the chain is built: the request path
// adds to it with a few atomic operations and no lookup.
type routeStats struct {
	status  [6]atomic.Uint64 // by status class; 0: none of 1xx-5xx
	bytes   atomic.Uint64
	sumNs   atomic.Uint64
	buckets [12]atomic.Uint64 // per DurationBuckets bound, then +Inf; not cumulative
}

func (rs *routeStats) observe(code int, bytes int64, d time.Duration) {
	i := code / 100
	if i < 1 || i > 5 {
		i = 0
	}
	rs.status[i].Add(1)
	if bytes > 0 {
		rs.bytes.Add(uint64(bytes))
	}
	if d < 0 {
		d = 0
	}
	rs.sumNs.Add(uint64(d))
	b := 0
	for b < len(DurationBuckets) && d > DurationBuckets[b] {
		b++
	}
	rs.buckets[b].Add(1)
}

// RouteStats is a snapshot of one route's counters. Route is the route's
// path as the inventory writes it ("" for requests answered by the site
// outside its routes, or, with Site "", by no site).
type RouteStats struct {
	Site  string `json:"site"`
	Route string `json:"route"`
	// Status counts responses by class: Status[1] is 1xx ... Status[5] 5xx.
	Status [6]uint64 `json:"status"`
	Bytes  uint64    `json:"bytes"`
	// Buckets[i] counts the requests that took at most DurationBuckets[i]
	// (cumulative, as Prometheus wants it); Count is all of them.
	Buckets    []uint64 `json:"buckets"`
	Count      uint64   `json:"count"`
	SumSeconds float64  `json:"sum_seconds"`
}

func (rs *routeStats) snapshot(site, route string) RouteStats {
	out := RouteStats{Site: site, Route: route, Bytes: rs.bytes.Load(), SumSeconds: time.Duration(rs.sumNs.Load()).Seconds(),
		Buckets: make([]uint64, len(DurationBuckets))}
	for i := range out.Status {
		out.Status[i] = rs.status[i].Load()
	}
	var cum uint64
	for i := range rs.buckets {
		cum += rs.buckets[i].Load()
		if i < len(DurationBuckets) {
			out.Buckets[i] = cum
		}
	}
	out.Count = cum
	return out
}

type routeKey struct{ site, route string }

// routeStatsSet keeps a server's route counters across updates, so that
// they only ever grow while the route exists in some configuration.
type routeStatsSet struct {
	mu sync.Mutex
	m  map[routeKey]*routeStats
}

func (s *routeStatsSet) get(site, route string) *routeStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := routeKey{site, route}
	rs := s.m[k]
	if rs == nil {
		if s.m == nil {
			s.m = map[routeKey]*routeStats{}
		}
		rs = new(routeStats)
		s.m[k] = rs
	}
	return rs
}

func (s *routeStatsSet) snapshot() []RouteStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RouteStats, 0, len(s.m))
	for k, rs := range s.m {
		out = append(out, rs.snapshot(k.site, k.route))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Route < out[j].Route
	})
	return out
}

// hitSet keeps counters by site and name (bot rules) across updates, like
// routeStatsSet: a reload keeps counting where it was.
type hitSet struct {
	mu sync.Mutex
	m  map[routeKey]*atomic.Uint64
}

func (s *hitSet) get(site, name string) *atomic.Uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := routeKey{site, name}
	c := s.m[k]
	if c == nil {
		if s.m == nil {
			s.m = map[routeKey]*atomic.Uint64{}
		}
		c = new(atomic.Uint64)
		s.m[k] = c
	}
	return c
}

// BotStats counts the requests a site's bot rule matched.
type BotStats struct {
	Site string `json:"site"`
	Rule string `json:"rule"`
	Hits uint64 `json:"hits"`
}

func (s *hitSet) snapshot() []BotStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]BotStats, 0, len(s.m))
	for k, c := range s.m {
		out = append(out, BotStats{Site: k.site, Rule: k.route, Hits: c.Load()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}
