package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"time"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/inventory"
)

// Defaults of the protections (docs/protection.md), with the defaults
// table's other values.
const (
	DefaultZonePer      = time.Second
	DefaultZoneStatus   = 429
	DefaultZoneMaxKeys  = 160_000 // nginx's 10m zone holds about 160,000 states
	DefaultMaxBans      = 100_000
	DefaultJailBanTime  = 10 * time.Minute // fail2ban's bantime
	DefaultJailClients  = 100_000
	DefaultCacheMinUses = 1
)

// DefaultBanStateFile keeps a node's bans across restarts, in the node's
// state directory (offedge run --state-dir; the packaged unit's
// StateDirectory, /var/lib/offedge).
const DefaultBanStateFile = "bans.json"

// banStateFile is where the node's bans are kept: the inventory's
// state_file or the default, relative to the state directory unless
// absolute; "" for none (memory only).
func (c *compiler) banStateFile(b *inventory.Bans) string {
	f := DefaultBanStateFile
	if b != nil && b.StateFile != "" {
		f = b.StateFile
	}
	switch {
	case f == "none":
		return ""
	case path.IsAbs(f):
		return c.opts.file(f)
	}
	return f
}

// DefaultCacheKey is the key of a route cache that lists none (nginx's
// $scheme$proxy_host$request_uri, with the client's host).
var DefaultCacheKey = []string{"scheme", "host", "uri"}

// Jail is a jail of the node and the site whose requests it counts.
type Jail struct {
	protect.JailConfig
	Site string `json:"site"`
}

// protection declares the node's protections among its resources.
func (c *compiler) protection() {
	p := c.m.ProtectionOf(c.node.Name)
	res := &c.plan.Resources
	if p == nil {
		// Bans can be added by hand on any node (offedge ban add): their
		// list is always declared, with its state file.
		res.Bans = &protect.BanListConfig{MaxBans: DefaultMaxBans, StateFile: c.banStateFile(nil)}
		return
	}
	for _, nc := range p.Caches {
		res.Caches[nc.Name] = httpedge.Cache{Dir: c.opts.file(nc.Dir), MaxBytes: int64(nc.MaxSize), TTL: map[int]time.Duration{}, Inactive: or(nc.Inactive.D(), DefaultCacheInactive)}
	}
	if len(p.Maps) > 0 {
		res.Maps = map[string]protect.MapConfig{}
	}
	for _, m := range p.Maps {
		mc := protect.MapConfig{Source: m.Source, Default: m.Default}
		for _, r := range m.Rules {
			mc.Rules = append(mc.Rules, protect.MapRule{Exact: r.Exact, Regex: r.Regex, Class: r.Class})
		}
		res.Maps[m.Name] = mc
	}
	if len(p.LimitZones) > 0 {
		res.Zones = map[string]protect.ZoneConfig{}
	}
	for _, z := range p.LimitZones {
		per := or(z.Per.D(), DefaultZonePer)
		zc := protect.ZoneConfig{Rate: float64(z.Rate) / per.Seconds(), Burst: z.Burst, NoDelay: z.NoDelay, DryRun: z.DryRun,
			Status: orInt(z.Status, DefaultZoneStatus), MaxKeys: orInt(z.MaxKeys, DefaultZoneMaxKeys), Key: z.Key, Map: z.Map}
		if zc.Key == "" {
			zc.Key = protect.KeyAddress
		}
		zc.MaxBurst = zc.Burst
		res.Zones[z.Name] = zc
	}
	// Each route may say its own burst (nginx limit_req burst=): the
	// zone's state holds the largest.
	for _, s := range c.m.SitesOn(c.node.Name) {
		for _, r := range s.Routes {
			for _, l := range r.Limits {
				if zc, ok := res.Zones[l.Zone]; ok && l.Burst != nil && *l.Burst > zc.MaxBurst {
					zc.MaxBurst = *l.Burst
					res.Zones[l.Zone] = zc
				}
			}
		}
	}
	bans := protect.BanListConfig{MaxBans: DefaultMaxBans, StateFile: c.banStateFile(p.Bans)}
	if b := p.Bans; b != nil {
		bans.MaxBans = orInt(b.MaxBans, DefaultMaxBans)
		bans.Allow = c.clientPrefixes(b.Allow, fmt.Sprintf("protection of %q: bans", p.Node))
		for _, j := range b.Jails {
			if res.Jails == nil {
				res.Jails = map[string]Jail{}
			}
			res.Jails[j.Name] = Jail{Site: j.Site, JailConfig: protect.JailConfig{Name: j.Name, Events: j.Events, MaxEvents: j.MaxEvents,
				Window: j.Window.D(), BanTime: or(j.BanTime.D(), DefaultJailBanTime), MaxClients: orInt(j.MaxClients, DefaultJailClients)}}
		}
	}
	res.Bans = &bans
	if t := p.Tarpit; t != nil {
		res.Tarpit = &protect.TarpitConfig{Max: t.Max, Hold: t.Hold.D()}
	}
}

// clientPrefixes resolves allow entries to the addresses clients come
// from, on every network the node has an address on.
func (c *compiler) clientPrefixes(allow []string, object string) []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	nets := map[string]bool{}
	for _, a := range c.node.Addresses {
		nets[a.Network] = true
	}
	for _, network := range slices.Sorted(maps.Keys(nets)) {
		r := c.m.ResolveAllow(allow, network)
		if len(r.Unknown) > 0 {
			c.fail("%s: allow names unknown %v", object, r.Unknown)
			return nil
		}
		for _, s := range r.Sources {
			seen[s.Prefix] = true
		}
	}
	return slices.SortedFunc(maps.Keys(seen), func(a, b netip.Prefix) int {
		if x := a.Addr().Compare(b.Addr()); x != 0 {
			return x
		}
		return a.Bits() - b.Bits()
	})
}

// siteProtection fills the bot rules and jails of a site.
func (c *compiler) siteProtection(s *inventory.Site, out *httpedge.Site, network string) {
	for _, b := range s.Bots {
		bc := protect.BotRuleConfig{Name: b.Name, Action: b.Action, PageFile: c.opts.file(b.Page)}
		for _, list := range []struct {
			in  []*inventory.Pattern
			out *[]protect.Pattern
		}{{b.UserAgent, &bc.UserAgent}, {b.Referer, &bc.Referer}, {b.Path, &bc.Path}} {
			for _, pt := range list.in {
				*list.out = append(*list.out, protect.Pattern{Exact: pt.Exact, Regex: pt.Regex})
			}
		}
		if len(b.Addr) > 0 {
			r := c.m.ResolveAllow(b.Addr, network)
			if len(r.Unknown) > 0 {
				c.fail("site %q: bot rule %q: addr names unknown %v", s.Name, b.Name, r.Unknown)
			}
			for _, src := range r.Sources {
				bc.Addr = append(bc.Addr, src.Prefix)
			}
		}
		out.Bots = append(out.Bots, bc)
	}
	if p := c.m.ProtectionOf(s.Node); p != nil && p.Bans != nil {
		for _, j := range p.Bans.Jails {
			if j.Site == s.Name {
				out.Jails = append(out.Jails, j.Name)
			}
		}
	}
}

// routeCache compiles a route's cache policy.
func routeCache(rc *inventory.RouteCache) *httpedge.CachePolicy {
	pc := &httpedge.CachePolicy{Cache: rc.Cache, Key: rc.Key, Valid: map[int]time.Duration{}, MinUses: orInt(rc.MinUses, DefaultCacheMinUses),
		IgnoreCacheControl: rc.IgnoreCacheControl, Bypass: rc.Bypass, NoStore: rc.NoStore, UseStale: rc.UseStale, BackgroundUpdate: rc.BackgroundUpdate}
	if len(pc.Key) == 0 {
		pc.Key = DefaultCacheKey
	}
	for status, d := range rc.Valid {
		code := 0
		if status != "any" {
			code, _ = strconv.Atoi(status) // checked by the inventory
		}
		pc.Valid[code] = d.D()
	}
	return pc
}

// routeLimits resolves a route's limits: its own burst and nodelay, or the
// zone's.
func (c *compiler) routeLimits(ls []*inventory.RouteLimit) []httpedge.RouteLimit {
	var out []httpedge.RouteLimit
	for _, l := range ls {
		zc := c.plan.Resources.Zones[l.Zone]
		rl := httpedge.RouteLimit{Zone: l.Zone, Burst: zc.Burst, NoDelay: zc.NoDelay}
		if l.Burst != nil {
			rl.Burst = *l.Burst
		}
		if l.NoDelay != nil {
			rl.NoDelay = *l.NoDelay
		}
		out = append(out, rl)
	}
	return out
}
