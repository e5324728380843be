package inventory

import (
	"fmt"

	"github.com/offedge/offedge/edge/http/vars"
)

// Step is one directive of nginx's rewrite phase (docs/routing.md), in a
// site (before the route is chosen) or a route: exactly one of rewrite,
// return, set and if.
type Step struct {
	Pos     Pos          `yaml:"-"`
	Rewrite *RewriteRule `yaml:"rewrite"`
	Return  *ReturnRule  `yaml:"return"`
	Set     *SetRule     `yaml:"set"`
	// If runs Then when the condition holds.
	If   *Condition `yaml:"if"`
	Then []*Step    `yaml:"then"`
}

// RewriteRule is nginx's "rewrite REGEX REPLACEMENT [FLAG]".
type RewriteRule struct {
	Pos         Pos    `yaml:"-"`
	Regex       string `yaml:"regex"`
	Replacement string `yaml:"replacement"`
	// Flag is last, break, redirect, permanent, or empty.
	Flag string `yaml:"flag"`
}

// ReturnRule is nginx's "return CODE [TEXT|URL]".
type ReturnRule struct {
	Pos  Pos    `yaml:"-"`
	Code int    `yaml:"code"`
	URL  string `yaml:"url"`
	Body string `yaml:"body"`
}

// SetRule is nginx's "set $NAME VALUE".
type SetRule struct {
	Pos   Pos    `yaml:"-"`
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// Condition is an nginx "if" condition.
type Condition struct {
	Pos      Pos    `yaml:"-"`
	Variable string `yaml:"variable"`
	Op       string `yaml:"op"`
	Value    string `yaml:"value"`
}

// VarMap is a site's nginx map: the value of Source looked up among the
// entries gives $NAME.
type VarMap struct {
	Pos       Pos            `yaml:"-"`
	Name      string         `yaml:"name"`
	Source    string         `yaml:"source"`
	Hostnames bool           `yaml:"hostnames"`
	Entries   []*VarMapEntry `yaml:"entries"`
	Default   string         `yaml:"default"`
}

// VarMapEntry is one line of a VarMap: exact (a mask with hostnames) or
// regex, and the value it gives.
type VarMapEntry struct {
	Pos             Pos    `yaml:"-"`
	Exact           string `yaml:"exact"`
	Regex           string `yaml:"regex"`
	CaseInsensitive bool   `yaml:"case_insensitive"`
	Value           string `yaml:"value"`
}

// Config is the step as the edge runs it.
func (s *Step) Config() vars.Step {
	out := vars.Step{}
	if r := s.Rewrite; r != nil {
		out.Rewrite = &vars.Rewrite{Regex: r.Regex, Replacement: r.Replacement, Flag: r.Flag}
	}
	if r := s.Return; r != nil {
		out.Return = &vars.Return{Code: r.Code, URL: r.URL, Body: r.Body}
	}
	if r := s.Set; r != nil {
		out.Set = &vars.SetVar{Name: r.Name, Value: r.Value}
	}
	if c := s.If; c != nil {
		out.If = &vars.Condition{Variable: c.Variable, Op: c.Op, Value: c.Value}
	}
	out.Then = StepConfigs(s.Then)
	return out
}

// StepConfigs is Config of each step.
func StepConfigs(steps []*Step) []vars.Step {
	if len(steps) == 0 {
		return nil
	}
	out := make([]vars.Step, len(steps))
	for i, s := range steps {
		out[i] = s.Config()
	}
	return out
}

// Config is the map as the edge runs it.
func (m *VarMap) Config() vars.MapConfig {
	out := vars.MapConfig{Name: m.Name, Source: m.Source, Hostnames: m.Hostnames, Default: m.Default}
	for _, e := range m.Entries {
		out.Entries = append(out.Entries, vars.MapEntry{Exact: e.Exact, Regex: e.Regex, CaseInsensitive: e.CaseInsensitive, Value: e.Value})
	}
	return out
}

// MapConfigs is Config of each map.
func MapConfigs(maps []*VarMap) []vars.MapConfig {
	var out []vars.MapConfig
	for _, m := range maps {
		out = append(out, m.Config())
	}
	return out
}

// RoutingScope is the names a site's templates may read beyond the
// built-in variables: its maps, the variables its steps set, and its
// node's class maps (protection: maps:, whose names are variable names),
// as the edge declares them.
func (m *Model) RoutingScope(s *Site) (*vars.Scope, error) {
	sets := vars.SetNames(StepConfigs(s.Rewrites), nil)
	for _, r := range s.Routes {
		sets = vars.SetNames(StepConfigs(r.Rewrites), sets)
	}
	return vars.NewScope(MapConfigs(s.Maps), sets, vars.ResponseVariables, ClassMapVariables(m.ProtectionOf(s.Node), nil)...)
}

// ClassMapVariables lists the class maps of p whose names are variable
// names (letters, digits, _), each computed by value(name) (nil: names only).
func ClassMapVariables(p *Protection, value func(name string) func(*vars.Request) string) []vars.Computed {
	if p == nil {
		return nil
	}
	var out []vars.Computed
	for _, mp := range p.Maps {
		if !vars.IsName(mp.Name) {
			continue
		}
		c := vars.Computed{Name: mp.Name}
		if value != nil {
			c.Value = value(mp.Name)
		}
		out = append(out, c)
	}
	return out
}

// validateRouting compiles the site's maps, rewrite steps and upstream
// paths with the edge's own compiler, so that what loads is what runs.
func (b *builder) validateRouting(s *Site, obj string) {
	scope, err := b.m.RoutingScope(s)
	if err != nil {
		pos := s.Pos
		if len(s.Maps) > 0 {
			pos = s.Maps[0].Pos
		}
		b.errf(pos, obj, "docs/routing.md#maps", "%v", err)
		return
	}
	b.validateHeaderValues(s, scope, obj)
	stepsPos := func(steps []*Step, def Pos) Pos {
		if len(steps) > 0 {
			return steps[0].Pos
		}
		return def
	}
	if _, err := vars.CompileSteps(StepConfigs(s.Rewrites), scope, 0); err != nil {
		b.errf(stepsPos(s.Rewrites, s.Pos), obj+": rewrites", "docs/routing.md#rewrite-phase", "%v", err)
	}
	for i, r := range s.Routes {
		robj := fmt.Sprintf("%s: route %d (%s)", obj, i, r.Path)
		groups := 0
		if r.IsRegex() {
			re, err := vars.CompileRegex(r.Path, r.Kind() == MatchRegexCI)
			if err != nil {
				continue // reported with the route
			}
			groups = re.Groups()
		}
		if _, err := vars.CompileSteps(StepConfigs(r.Rewrites), scope, groups); err != nil {
			b.errf(stepsPos(r.Rewrites, r.Pos), robj+": rewrites", "docs/routing.md#rewrite-phase", "%v", err)
		}
		if r.UpstreamPath == "" {
			continue
		}
		t, err := vars.Parse(r.UpstreamPath, scope)
		switch {
		case r.Upstream == "":
			b.errf(r.Pos, robj, "upstream_path is proxy_pass's URI: set upstream too", "upstream_path without upstream")
		case err != nil:
			b.errf(r.Pos, robj, "docs/routing.md#variables", "upstream_path: %v", err)
		case r.UpstreamPath[0] != '/':
			b.errf(r.Pos, robj, "e.g. upstream_path: /api/v2/", "upstream_path %q must start with /", r.UpstreamPath)
		case t.MaxCapture > groups:
			b.errf(r.Pos, robj, "name only the route regex's groups", "upstream_path names $%d; the route captures %d groups", t.MaxCapture, groups)
		case r.IsRegex() && t.IsLiteral():
			b.errf(r.Pos, robj, "name the captures ($1) or drop upstream_path (nginx refuses a URI part in a regex location)", "upstream_path on a regex route without variables")
		}
	}
}
