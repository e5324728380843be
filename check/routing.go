package check

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/offedge/offedge/edge/http/vars"
	"github.com/offedge/offedge/inventory"
)

// Request routing rules (OE82x): which route a request reaches and what
// the rewrite phase does to it (docs/routing.md). They reason with the
// edge's own location matcher and rewrite programs (edge/http/vars).
var routingRules = []checker{
	{
		Rule: Rule{
			ID:       "OE821",
			Title:    "route unreachable behind a catch-all regex",
			Severity: Error,
			Since:    "0.2.0",
			Why:      `Routes are chosen as nginx chooses locations: an exact route, else the longest prefix if it is a priority prefix (^~), else the first regex route that matches in declaration order, else the longest prefix. A regex route that matches every path (~ ^/, ~ .*, ~* /) therefore wins over every later regex route and over every plain prefix route, wherever they are declared: those routes can never be chosen, and whatever they were meant to do (a cache, a body limit, authentication) never happens. Only exact routes and priority prefixes still win. A regex shadowing an exact route is not reported: the exact route wins. Fix it by narrowing the regex, declaring it last among the regexes and making the prefixes priority_prefix, or removing what it hides.`,
			Example: `routes:
  - {path: '^/', match: regex, upstream: app}
  - {path: /api/, upstream: api}      # never chosen
  - {path: '\.php$', match: regex, upstream: php}   # never chosen`,
		},
		run: checkShadowedRoutes,
	},
	{
		Rule: Rule{
			ID:       "OE822",
			Title:    "rewrite loop",
			Severity: Error,
			Since:    "0.2.0",
			Why:      `A rewrite with flag last (or no flag) makes the edge choose the route again for the new URI; when that route rewrites it again, and again, nginx and offedge stop after 10 changes and answer 500 ("rewrite or internal redirection cycle"). A loop is always a configuration mistake: a rewrite whose result matches its own regex and comes back to the same route (rewrite ^/a/(.*)$ /a/$1 last), or two routes sending requests to each other. check replays, for each route with such a rewrite, requests for paths the route matches through the site's routes and their rewrites, and reports the ones answered 500 by the loop limit. Use break to stay in the route, make the result leave the regex, or anchor the regex so that the rewritten URI no longer matches.`,
			Example: `routes:
  - path: /img/
    upstream: images
    rewrites:
      - rewrite: {regex: '^/img/(.*)$', replacement: '/img/$1', flag: last}`,
		},
		run: checkRewriteLoops,
	},
}

// catchAllProbes are paths a regex must all match to count as matching
// every path (every request path starts with "/").
var catchAllProbes = []string{"/", "/a", "/A/b.c", "/index.html", "/.well-known/x", "/9/_-~", "/é", "/" + strings.Repeat("z", 300)}

func catchAll(re *vars.Regex) bool {
	for _, p := range catchAllProbes {
		if !re.Match(p, nil) {
			return false
		}
	}
	return true
}

func routeObject(s *inventory.Site, r *inventory.Route) string {
	return object("site", s.Name) + ": route " + r.Path
}

func checkShadowedRoutes(p *pass) {
	for _, s := range p.m.Sites {
		var by *inventory.Route
		for _, r := range s.Routes {
			if !r.IsRegex() {
				continue
			}
			re, err := vars.CompileRegex(r.Path, r.Kind() == inventory.MatchRegexCI)
			if err != nil {
				continue
			}
			if by != nil {
				p.report(r.Pos, routeObject(s, r), []Related{{Pos: by.Pos, Message: "the catch-all regex"}},
					"regex route %q comes after %q, which matches every path: it is never chosen", r.Path, by.Path)
				continue
			}
			if catchAll(re) {
				by = r
			}
		}
		if by == nil {
			continue
		}
		for _, r := range s.Routes {
			if r.Kind() == inventory.MatchPrefix {
				p.report(r.Pos, routeObject(s, r), []Related{{Pos: by.Pos, Message: "the catch-all regex"}},
					"prefix route %q is never chosen: the regex %q matches every path and regexes win over prefixes that are not priority_prefix", r.Path, by.Path)
			}
		}
	}
}

// loopProbes are the paths replayed for route r: its own path and paths
// below it for a prefix, the path for an exact route, generic paths for a
// regex (the replay keeps those the route actually gets).
func loopProbes(r *inventory.Route) []string {
	switch r.Kind() {
	case inventory.MatchExact:
		return []string{r.Path}
	case inventory.MatchRegex, inventory.MatchRegexCI:
		return catchAllProbes
	}
	base := r.Path
	out := []string{base, base + "x", base + "x/y.jpg"}
	if !strings.HasSuffix(base, "/") {
		out = append(out, base+"/x")
	}
	return out
}

func checkRewriteLoops(p *pass) {
	for _, s := range p.m.Sites {
		scope, err := p.m.RoutingScope(s)
		if err != nil {
			continue // a load error
		}
		var locs vars.Locations[int]
		progs := make([]*vars.Program, len(s.Routes))
		loops := map[int]bool{}
		for i, r := range s.Routes {
			groups := 0
			switch r.Kind() {
			case inventory.MatchExact:
				locs.AddExact(r.Path, i)
			case inventory.MatchRegex, inventory.MatchRegexCI:
				re, err := vars.CompileRegex(r.Path, r.Kind() == inventory.MatchRegexCI)
				if err != nil {
					continue
				}
				groups = re.Groups()
				locs.AddRegex(re, i)
			default:
				locs.AddPrefix(r.Path, r.Kind() == inventory.MatchPriorityPrefix, i)
			}
			progs[i], _ = vars.CompileSteps(inventory.StepConfigs(r.Rewrites), scope, groups)
			for _, st := range r.Rewrites {
				if rw := st.Rewrite; rw != nil && (rw.Flag == "" || rw.Flag == "last") {
					loops[i] = true
				}
			}
		}
		locs.Sort()
		host := s.Name
		if len(s.Hosts) > 0 {
			host = strings.TrimPrefix(s.Hosts[0], "*.")
		}
		for i, r := range s.Routes {
			if !loops[i] {
				continue
			}
			for _, probe := range loopProbes(r) {
				if first, ok := locs.Match(probe, nil); !ok || first != i {
					continue
				}
				if trail, looped := replayRewrites(&locs, progs, scope, host, probe); looped {
					p.report(r.Pos, routeObject(s, r), nil,
						"GET %s is rewritten more than %d times (%s ...) and answered 500: a rewrite loop", probe, vars.MaxURIChanges, strings.Join(trail, " -> "))
					break
				}
			}
		}
	}
}

// replayRewrites runs the route choice and the routes' steps for path as
// the edge does, and reports whether the loop limit ends it.
func replayRewrites(locs *vars.Locations[int], progs []*vars.Program, scope *vars.Scope, host, path string) ([]string, bool) {
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}, Header: http.Header{}, Host: host, RemoteAddr: "192.0.2.1:1", RequestURI: path}
	var q vars.Request
	q.Reset(r, scope)
	q.Host, q.ServerName, q.Scheme = host, host, "https"
	trail := []string{path}
	for changes := 0; ; changes++ {
		i, ok := locs.Match(q.URI, &q)
		if !ok || progs[i] == nil {
			return trail, false
		}
		changed := false
		o, _, err := progs[i].Run(&q, &changed)
		if err != nil || o == vars.Answered || o == vars.StopHere || !changed {
			return trail, false
		}
		if len(trail) < 4 {
			trail = append(trail, q.URI)
		}
		if changes+1 > vars.MaxURIChanges {
			return trail, true
		}
	}
}
