package check

import (
	"fmt"
	"strconv"
	"strings"
)

// Meta rules (OE9xx): the check's own configuration, the inventory's
// suppress: entries.
var metaRules = []checker{
	{
		Rule: Rule{
			ID:       "OE901",
			Title:    "suppression names an unknown rule or no object",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A suppress: entry silences one rule for one object, with a reason. One naming a rule that does not exist (a typo, or a rule renumbered), or naming no object, silences nothing, so the finding it was written for is still there and the reason beside it misleads the reader; rules of the 9xx family cannot be suppressed. As staticcheck does for a //lint:ignore with a bad check name, the entry itself is reported.`,
			Example: `suppress:
  - rule: OE1O1         # letter O, not zero
    object: tunnel "mongodb"
    reason: entrance is firewalled upstream`,
		},
	},
	{
		Rule: Rule{
			ID:       "OE902",
			Title:    "suppression matches nothing",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `A suppression whose rule no longer fires for its object is stale: the problem was fixed or the object renamed. Left in place it would silently hide the problem if it came back, so it is reported, as staticcheck reports an ignore directive that matched nothing. Remove it.`,
			Example: `suppress:
  - rule: OE303
    object: tunnel "mongodb-ovh"      # the tunnels no longer share a secret
    reason: rotating the secrets next week`,
		},
	},
}

func isMeta(id string) bool { return strings.HasPrefix(id, "OE9") }

// splitObject parses `kind "name"`, `kind name` or `name`; kind is "" for a
// bare name.
func splitObject(s string) (kind, name string) {
	s = strings.TrimSpace(s)
	kind, rest, ok := strings.Cut(s, " ")
	if !ok {
		return "", s
	}
	rest = strings.TrimSpace(rest)
	if u, err := strconv.Unquote(rest); err == nil {
		rest = u
	}
	return kind, rest
}

// objectMatches reports whether a suppression's object names a finding's:
// `kind "name"` (or `kind name`) names exactly that object; a bare name
// names every object with that name, whatever its kind.
func objectMatches(suppressed, finding string) bool {
	sk, sn := splitObject(suppressed)
	fk, fn := splitObject(finding)
	if sn != fn {
		return false
	}
	return sk == "" || sk == fk
}

// checkSuppressions marks the findings each suppress: entry matches and
// reports malformed (OE901) and stale (OE902) entries.
func checkSuppressions(p *pass) {
	findings := *p.out
	var meta []Finding
	q := *p
	q.out = &meta
	bad, stale := q.as("OE901"), q.as("OE902")
	for _, s := range p.m.Suppress {
		id := strings.ToUpper(strings.TrimSpace(s.Rule))
		r, known := p.rules[id]
		switch {
		case !known:
			bad.report(s.Pos, "suppression", nil, "rule %q does not exist; run offedge check --explain ID, or see docs/checks.md", s.Rule)
			continue
		case isMeta(id):
			bad.report(s.Pos, "suppression", nil, "rule %s (%s) cannot be suppressed; fix the suppress: entries instead", id, r.Title)
			continue
		case strings.TrimSpace(s.Object) == "":
			bad.report(s.Pos, "suppression", nil, `suppression of %s names no object; add object: KIND "NAME", as the finding names it`, id)
			continue
		}
		matched := 0
		for i := range findings {
			f := &findings[i]
			if f.Rule != id || !objectMatches(s.Object, f.Object) {
				continue
			}
			matched++
			if f.Suppressed == "" {
				f.Suppressed = strings.TrimSpace(s.Reason)
				f.Related = append(f.Related, Related{s.Pos, "suppressed here: " + f.Suppressed})
			}
		}
		if matched == 0 {
			stale.report(s.Pos, "suppression", nil, "suppression of %s for %s matches no finding; remove it", id, describeObject(s.Object))
		}
	}
	*p.out = append(findings, meta...)
}

func describeObject(o string) string {
	kind, name := splitObject(o)
	if kind == "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%s %q", kind, name)
}
