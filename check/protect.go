package check

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/offedge/offedge/inventory"
)

// Protection rules (7xx): rate zones, dry runs and ban lists of the HTTP
// edge (docs/protection.md), and the admin endpoint that reloads, bans and
// purges (docs/dashboard.md).
var protectRules = []checker{
	{
		Rule: Rule{
			ID:       "OE701",
			Title:    "limit zone no route uses",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `A limit zone counts only the requests of the routes that name it in limits:. One that no route of its node names limits nothing, while the inventory reads as if the site were rate limited: a zone left behind when a route was renamed, or a limit_req line lost in the move from nginx (the reference declares its zones at the top of a file and applies them in a location far below). Name it in the routes it is meant for, or remove it.`,
			Example: `protection:
  - node: web
    limit_zones:
      - {name: api, rate: 10}
sites:
  - name: www
    node: web
    routes:
      - {path: /, upstream: app}     # no limits: [api]`,
		},
		run: checkUnusedZones,
	},
	{
		Rule: Rule{
			ID:       "OE702",
			Title:    "limit zone left in dry run",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `A dry run counts and logs what a zone would refuse and refuses nothing: the way to learn what a limit would do before enforcing it, as the reference did with limit_req_dry_run on ("DRY RUN until we decide to activate it", static-off). Left on, it is a limit in name only, and a scraper that takes the backend down goes through it. So a dry run says when it is meant to end (dry_run_until), and check warns once that date has passed, or when a dry run has none.`,
			Example: `limit_zones:
  - {name: off, rate: 240, per: 1m, dry_run: true}   # until when?`,
		},
		run: checkDryRuns,
	},
	{
		Rule: Rule{
			ID:       "OE703",
			Title:    "ban allow list misses the node's monitoring",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `A jail bans a client that makes too many refused or 4xx requests; the monitoring probes a node often, and a probe of a site under maintenance or of a rate-limited route is exactly that. Once the monitoring is banned, the node looks down from the one place meant to see it, and every alert about it is wrong. A node with jails lists its monitoring nodes in bans: allow: — those the inventory names under monitoring:, or, when it names none, those named or titled monitoring or running a prometheus or blackbox service.`,
			Example: `monitoring: [prometheus-vm]
protection:
  - node: web
    bans:
      jails: [{name: abuse, site: www, events: [4xx], max_events: 20, window: 1m}]
      # allow: [prometheus-vm]`,
		},
		run: checkBanAllowMonitoring,
	},
	{
		Rule: Rule{
			ID:       "OE704",
			Title:    "admin endpoint off loopback without authentication",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `The admin endpoint reloads the node, bans and unbans clients, purges caches and renews certificates by POST, and tells whoever asks the node's plan, listeners and probes. On loopback only the node's own users reach it; on any other address, everyone who can route to it could take the node over: the same mistake as the MongoDB left open on a public address in 2023, one port higher. So an admin endpoint off loopback names a token file under auth:, and offedge run refuses to start such an endpoint without one.`,
			Example: `admin:
  - node: off2
    listen: 10.0.0.2:9901
    # auth: {token_file: /etc/offedge/secrets/admin.token}`,
		},
		run: checkAdminAuth,
	},
}

func checkAdminAuth(p *pass) {
	for _, a := range p.m.Admins {
		if a.IsLoopback() || (a.Auth != nil && a.Auth.TokenFile != "") {
			continue
		}
		p.report(a.Pos, fmt.Sprintf("admin of %q", a.Node), nil,
			"admin endpoint of %s listens on %s, off loopback, with no auth: anyone who reaches it can reload, ban and purge; add auth: {token_file: PATH} or listen on 127.0.0.1", a.Node, a.Listen)
	}
}

func checkUnusedZones(p *pass) {
	for _, pr := range p.m.Protection {
		used := map[string]bool{}
		for _, s := range p.m.Sites {
			if s.Node != pr.Node {
				continue
			}
			for _, r := range s.Routes {
				for _, l := range r.Limits {
					used[l.Zone] = true
				}
			}
		}
		for _, z := range pr.LimitZones {
			if !used[z.Name] {
				p.report(z.Pos, fmt.Sprintf("limit zone %q of %s", z.Name, pr.Node), nil,
					"no route of %s names limit zone %q in limits:, so it limits nothing", pr.Node, z.Name)
			}
		}
	}
}

// checkNow is the day OE702 compares dry_run_until with.
var checkNow = time.Now

func checkDryRuns(p *pass) {
	today := checkNow().UTC().Format(time.DateOnly)
	for _, pr := range p.m.Protection {
		for _, z := range pr.LimitZones {
			if !z.DryRun {
				continue
			}
			obj := fmt.Sprintf("limit zone %q of %s", z.Name, pr.Node)
			switch {
			case z.DryRunUntil == "":
				p.report(z.Pos, obj, nil, "limit zone %q is in dry run with no end: it refuses nothing; set dry_run_until: YYYY-MM-DD, or enforce it", z.Name)
			case z.DryRunUntil < today:
				p.report(z.Pos, obj, nil, "limit zone %q was to leave dry run on %s: it still refuses nothing; enforce it (dry_run: false) or move the date", z.Name, z.DryRunUntil)
			}
		}
	}
}

// monitoringNodes are the inventory's monitoring: nodes named or titled
// "monitoring", or running a prometheus or blackbox service.
// monitoringNodes are the nodes the inventory names under monitoring:, or,
// when it names none, those that look like monitoring (named or titled so,
// or running a prometheus or blackbox service).
func monitoringNodes(m *inventory.Model) []*inventory.Node {
	if mons := m.MonitoringNodes(); len(mons) > 0 {
		return mons
	}
	var out []*inventory.Node
	for _, n := range m.Nodes {
		mon := strings.Contains(strings.ToLower(n.Name+" "+n.Title()), "monitoring")
		// The node's own services (the model's index), not every service
		// for every node: that was quadratic (issue 17).
		for _, s := range m.ServicesOn(n.Name) {
			if s.Protocol == "prometheus" || s.Protocol == "blackbox" {
				mon = true
			}
		}
		if mon {
			out = append(out, n)
		}
	}
	return out
}

func checkBanAllowMonitoring(p *pass) {
	var mons []*inventory.Node
	found := false
	for _, pr := range p.m.Protection {
		if pr.Bans == nil || len(pr.Bans.Jails) == 0 {
			continue
		}
		if !found { // only when a node has jails
			mons, found = monitoringNodes(p.m), true
		}
		n := p.m.Node(pr.Node)
		if n == nil {
			continue
		}
		var missing []string
		for _, mon := range mons {
			if mon.Name == n.Name {
				continue
			}
			if !allowCovers(p.m, n, pr.Bans.Allow, mon) {
				missing = append(missing, mon.Name)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			p.report(pr.Bans.Pos, fmt.Sprintf("bans of %s", pr.Node), nil,
				"%s has jails but its ban allow list %s does not cover its monitoring %s: a burst of failing probes would ban it; add it to bans: allow:",
				pr.Node, listText(pr.Bans.Allow), strings.Join(missing, ", "))
		}
	}
}

// allowCovers reports whether allow admits every address mon reaches n
// from, on every network of n.
func allowCovers(m *inventory.Model, n *inventory.Node, allow []string, mon *inventory.Node) bool {
	seen := map[string]bool{}
	for _, a := range n.Addresses {
		if seen[a.Network] {
			continue
		}
		seen[a.Network] = true
		res := m.ResolveAllow(allow, a.Network)
		if res.Any {
			return true
		}
		want := m.ResolveAllow([]string{mon.Name}, a.Network)
		for _, w := range want.Sources {
			covered := false
			for _, s := range res.Sources {
				if s.Prefix.Contains(w.Prefix.Addr()) {
					covered = true
				}
			}
			if !covered {
				return false
			}
		}
	}
	return true
}
