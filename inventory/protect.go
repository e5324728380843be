package inventory

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// Protection declares one node's shared protections of its HTTP edge
// (docs/protection.md): caches of proxied routes, class maps, rate zones,
// the ban list with its jails, and the tarpit. Each is a node resource,
// built once and shared by every listener of the node.
type Protection struct {
	Pos        Pos          `yaml:"-"`
	Node       string       `yaml:"node"`
	Caches     []*NodeCache `yaml:"caches"`
	Maps       []*ClassMap  `yaml:"maps"`
	LimitZones []*LimitZone `yaml:"limit_zones"`
	Bans       *Bans        `yaml:"bans"`
	Tarpit     *Tarpit      `yaml:"tarpit"`
}

// NodeCache is a cache proxied routes name (nginx proxy_cache_path).
type NodeCache struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Dir keeps entries on disk; empty keeps them in memory.
	Dir     string `yaml:"dir"`
	MaxSize Size   `yaml:"max_size"`
	// Inactive drops entries unused that long, fresh or not (nginx's
	// inactive=).
	Inactive Duration `yaml:"inactive"`
}

// ClassMap computes a class from a request field (nginx map).
type ClassMap struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Source is user_agent, referer, path, address or header:NAME.
	Source  string     `yaml:"source"`
	Rules   []*MapRule `yaml:"rules"`
	Default string     `yaml:"default"`
}

// MapRule gives Class to a value matching Exact or Regex.
type MapRule struct {
	Pos   Pos    `yaml:"-"`
	Exact string `yaml:"exact"`
	Regex string `yaml:"regex"`
	Class string `yaml:"class"`
}

// LimitZone is a request-rate zone (nginx limit_req_zone + limit_req).
type LimitZone struct {
	Pos  Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Key is address (default), class or class+address.
	Key string `yaml:"key"`
	Map string `yaml:"map"`
	// Rate requests per Per (default 1s): rate 240, per 1m is 240r/m.
	Rate    int      `yaml:"rate"`
	Per     Duration `yaml:"per"`
	Burst   int      `yaml:"burst"`
	NoDelay bool     `yaml:"nodelay"`
	DryRun  bool     `yaml:"dry_run"`
	// DryRunUntil is the date (YYYY-MM-DD) the dry run is meant to end;
	// offedge check warns after it (OE702) or when a dry run has none.
	DryRunUntil string `yaml:"dry_run_until"`
	// Status answers a refused request: 429 (default), 503 or 444.
	Status  int `yaml:"status"`
	MaxKeys int `yaml:"max_keys"`
}

// Bans bound the node's ban list and declare its jails.
type Bans struct {
	Pos     Pos      `yaml:"-"`
	MaxBans int      `yaml:"max_bans"`
	Allow   []string `yaml:"allow"`
	Jails   []*Jail  `yaml:"jails"`
	// StateFile keeps the bans across restarts ("none": memory only).
	StateFile string `yaml:"state_file"`
}

// Jail bans a client after MaxEvents events of a site within Window.
type Jail struct {
	Pos        Pos      `yaml:"-"`
	Name       string   `yaml:"name"`
	Site       string   `yaml:"site"`
	Events     []string `yaml:"events"`
	MaxEvents  int      `yaml:"max_events"`
	Window     Duration `yaml:"window"`
	BanTime    Duration `yaml:"ban_time"`
	MaxClients int      `yaml:"max_clients"`
}

// Tarpit bounds the requests the tarpit action holds.
type Tarpit struct {
	Pos  Pos      `yaml:"-"`
	Max  int      `yaml:"max"`
	Hold Duration `yaml:"hold"`
}

// RouteCache is how a proxied route uses a node cache.
type RouteCache struct {
	Pos   Pos    `yaml:"-"`
	Cache string `yaml:"cache"`
	// Key parts: scheme, host, uri, path, arg:NAME, cookie:NAME, header:NAME.
	Key []string `yaml:"key"`
	// Valid maps a status ("200", or "any") to how long answers stay fresh.
	Valid              map[string]Duration `yaml:"valid"`
	MinUses            int                 `yaml:"min_uses"`
	IgnoreCacheControl bool                `yaml:"ignore_cache_control"`
	Bypass             []string            `yaml:"bypass"`
	NoStore            []string            `yaml:"no_store"`
	UseStale           []string            `yaml:"use_stale"`
	BackgroundUpdate   bool                `yaml:"background_update"`
}

// BotRule matches requests of a site to an action.
type BotRule struct {
	Pos       Pos        `yaml:"-"`
	Name      string     `yaml:"name"`
	UserAgent []*Pattern `yaml:"user_agent"`
	Referer   []*Pattern `yaml:"referer"`
	Path      []*Pattern `yaml:"path"`
	Addr      []string   `yaml:"addr"`
	// Action is page, deny, limit, tarpit or close.
	Action string `yaml:"action"`
	// Page is the file the page action answers with.
	Page string `yaml:"page"`
}

// Pattern matches a string exactly or by a regular expression.
type Pattern struct {
	Pos   Pos    `yaml:"-"`
	Exact string `yaml:"exact"`
	Regex string `yaml:"regex"`
}

// ProtectionOf returns the node's protection declaration, or nil.
func (m *Model) ProtectionOf(node string) *Protection {
	for _, p := range m.Protection {
		if p.Node == node {
			return p
		}
	}
	return nil
}

func (b *builder) checkPattern(p *Pattern, obj string) {
	switch {
	case (p.Exact == "") == (p.Regex == ""):
		b.errf(p.Pos, obj, "set exact or regex", "a pattern needs exactly one of exact and regex")
	case p.Regex != "":
		if _, err := regexp.Compile(p.Regex); err != nil {
			b.errf(p.Pos, obj, "RE2 syntax; (?i) for case-insensitive", "regex %q: %v", p.Regex, err)
		}
	}
}

func validSource(s string) bool {
	return oneOf(s, "user_agent", "referer", "path", "address") || (strings.HasPrefix(s, "header:") && len(s) > len("header:"))
}

func (b *builder) validateProtection(p *Protection, seenNode map[string]Pos) {
	m := b.m
	obj := fmt.Sprintf("protection of %q", p.Node)
	if !ref(b, m.nodes, p.Pos, obj, "node", "node", p.Node) {
		return
	}
	if prev, dup := seenNode[p.Node]; dup {
		b.errf(p.Pos, obj, fmt.Sprintf("first declared at %s; merge them", prev), "two protection blocks for one node")
	}
	seenNode[p.Node] = p.Pos
	names := map[string]bool{}
	uniq := func(kind, name string, pos Pos) {
		if name == "" || !nameRE.MatchString(name) {
			b.errf(pos, obj, "lowercase letters, digits, '.', '_' and '-'", "%s: invalid or missing name %q", kind, name)
			return
		}
		if names[kind+" "+name] {
			b.errf(pos, obj, "rename one", "duplicate %s %q", kind, name)
		}
		names[kind+" "+name] = true
	}
	for _, c := range p.Caches {
		uniq("cache", c.Name, c.Pos)
		if c.MaxSize <= 0 {
			b.errf(c.Pos, obj, "e.g. max_size: 100m (the reference micro-cache)", "cache %q: max_size must be positive", c.Name)
		}
	}
	for _, mp := range p.Maps {
		uniq("map", mp.Name, mp.Pos)
		if !validSource(mp.Source) {
			b.errf(mp.Pos, obj, "use user_agent, referer, path, address or header:NAME", "map %q: source %q", mp.Name, mp.Source)
		}
		for _, r := range mp.Rules {
			b.checkPattern(&Pattern{Pos: r.Pos, Exact: r.Exact, Regex: r.Regex}, fmt.Sprintf("%s: map %q", obj, mp.Name))
		}
	}
	for _, z := range p.LimitZones {
		uniq("limit zone", z.Name, z.Pos)
		zobj := fmt.Sprintf("%s: limit zone %q", obj, z.Name)
		if z.Rate <= 0 {
			b.errf(z.Pos, zobj, "e.g. rate: 240, per: 1m", "rate must be positive")
		}
		if z.Per < 0 || z.Burst < 0 || z.MaxKeys < 0 {
			b.errf(z.Pos, zobj, "", "per, burst and max_keys must not be negative")
		}
		if z.Key != "" && !oneOf(z.Key, "address", "class", "class+address") {
			b.errf(z.Pos, zobj, "use address, class or class+address", "unknown key %q", z.Key)
		}
		if (z.Key == "class" || z.Key == "class+address") != (z.Map != "") {
			b.errf(z.Pos, zobj, "a class key names a map; an address key none", "key %q with map %q", z.Key, z.Map)
		}
		if z.Map != "" && !names["map "+z.Map] {
			b.errf(z.Pos, zobj, "declare it under maps: of the same node", "unknown map %q", z.Map)
		}
		if z.Status != 0 && !oneOf(fmt.Sprint(z.Status), "429", "503", "444") {
			b.errf(z.Pos, zobj, "use 429, 503 or 444 (close without an answer)", "status %d", z.Status)
		}
		if z.DryRunUntil != "" {
			if _, err := time.Parse(time.DateOnly, z.DryRunUntil); err != nil {
				b.errf(z.Pos, zobj, "a date: 2027-01-31", "dry_run_until %q is not a date", z.DryRunUntil)
			}
		}
	}
	if bn := p.Bans; bn != nil {
		if bn.MaxBans < 0 {
			b.errf(bn.Pos, obj+": bans", "", "max_bans must not be negative")
		}
		if f := bn.StateFile; f != "" && f != "none" && !path.IsAbs(f) && (path.Clean(f) != f || strings.HasPrefix(f, "../") || f == "..") {
			b.errf(bn.Pos, obj+": bans", "a name in the state directory (bans.json), an absolute path, or none", "state_file %q leaves the state directory or is not clean", f)
		}
		b.validateAllow(bn.Allow, bn.Pos, obj+": bans")
		for _, j := range bn.Jails {
			uniq("jail", j.Name, j.Pos)
			jobj := fmt.Sprintf("%s: jail %q", obj, j.Name)
			if s, ok := m.sites[j.Site]; !ok {
				b.errf(j.Pos, jobj, "name a site of the node", "unknown site %q", j.Site)
			} else if s.Node != p.Node {
				b.errf(j.Pos, jobj, "a jail watches a site of its own node", "site %q is on %q", j.Site, s.Node)
			}
			if len(j.Events) == 0 {
				b.errf(j.Pos, jobj, "e.g. events: [limit, 4xx]", "no events")
			}
			for _, e := range j.Events {
				if !oneOf(e, "limit", "bot", "4xx") {
					b.errf(j.Pos, jobj, "use limit, bot or 4xx", "unknown event %q", e)
				}
			}
			if j.MaxEvents <= 0 || j.Window <= 0 || j.BanTime < 0 || j.MaxClients < 0 {
				b.errf(j.Pos, jobj, "e.g. max_events: 20, window: 1m, ban_time: 1h", "max_events and window must be positive")
			}
		}
	}
	if t := p.Tarpit; t != nil && (t.Max <= 0 || t.Hold <= 0) {
		b.errf(t.Pos, obj+": tarpit", "e.g. max: 64, hold: 30s", "max and hold must be positive")
	}
}

// validateSiteProtection checks a site's bot rules and its routes' caches
// and limits against its node's protection.
func (b *builder) validateSiteProtection(s *Site, obj string) {
	p := b.m.ProtectionOf(s.Node)
	has := func(kind, name string) bool {
		if p == nil {
			return false
		}
		switch kind {
		case "cache":
			for _, c := range p.Caches {
				if c.Name == name {
					return true
				}
			}
		case "limit zone":
			for _, z := range p.LimitZones {
				if z.Name == name {
					return true
				}
			}
		}
		return false
	}
	for _, r := range s.Routes {
		robj := fmt.Sprintf("%s: route %s", obj, r.Path)
		if c := r.Cache; c != nil {
			if r.Upstream == "" {
				b.errf(c.Pos, robj, "a static route's fallback names its cache under static:", "cache on a route that proxies nothing")
			}
			if !has("cache", c.Cache) {
				b.errf(c.Pos, robj, fmt.Sprintf("declare it under protection: caches: of node %q", s.Node), "unknown cache %q", c.Cache)
			}
			for status := range c.Valid {
				if status != "any" && !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(status) {
					b.errf(c.Pos, robj, `a status ("200") or "any"`, "valid: %q", status)
				}
			}
			if len(c.Valid) == 0 {
				b.errf(c.Pos, robj, "e.g. valid: {any: 5s}", "valid lists no status: nothing would be cached")
			}
		}
		for _, l := range r.Limits {
			if !has("limit zone", l.Zone) {
				b.errf(l.Pos, robj, fmt.Sprintf("declare it under protection: limit_zones: of node %q", s.Node), "unknown limit zone %q", l.Zone)
			}
			if l.Burst != nil && *l.Burst < 0 {
				b.errf(l.Pos, robj, "", "limit zone %q: burst must not be negative", l.Zone)
			}
		}
	}
	for _, br := range s.Bots {
		bobj := fmt.Sprintf("%s: bot rule %q", obj, br.Name)
		if br.Name == "" {
			b.errf(br.Pos, obj, "", "a bot rule needs a name")
		}
		if !oneOf(br.Action, "page", "deny", "limit", "tarpit", "close") {
			b.errf(br.Pos, bobj, "use page, deny, limit, tarpit or close", "action %q", br.Action)
		}
		if (br.Action == "page") != (br.Page != "") {
			b.errf(br.Pos, bobj, "the page action, and only it, names a page file", "action %q with page %q", br.Action, br.Page)
		}
		if br.Action == "tarpit" && (p == nil || p.Tarpit == nil) {
			b.errf(br.Pos, bobj, fmt.Sprintf("declare protection: tarpit: {max, hold} for node %q", s.Node), "tarpit action without the node's tarpit")
		}
		for _, list := range [][]*Pattern{br.UserAgent, br.Referer, br.Path} {
			for _, pt := range list {
				b.checkPattern(pt, bobj)
			}
		}
		b.validateAllow(br.Addr, br.Pos, bobj)
		if len(br.UserAgent)+len(br.Referer)+len(br.Path)+len(br.Addr) == 0 {
			b.errf(br.Pos, bobj, "set user_agent, referer, path or addr", "matches every request")
		}
	}
}
