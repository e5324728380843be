package protect

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Request is what maps and bot rules look at, taken from a request once.
type Request struct {
	Addr      netip.Addr
	UserAgent string
	Referer   string
	Path      string
	// Header returns the first value of a request header ("" when absent).
	Header func(name string) string
}

// Field sources of a map or a bot rule.
const (
	SourceUserAgent = "user_agent"
	SourceReferer   = "referer"
	SourcePath      = "path"
	SourceAddress   = "address"
	sourceHeader    = "header:"
)

// ValidSource reports whether s names a request field: user_agent,
// referer, path, address, or header:NAME.
func ValidSource(s string) bool {
	switch s {
	case SourceUserAgent, SourceReferer, SourcePath, SourceAddress:
		return true
	}
	return strings.HasPrefix(s, sourceHeader) && len(s) > len(sourceHeader)
}

// value returns the field source names. A user agent the client did not
// send is "-", as nginx logs it and as the reference configuration matches
// it ("if ($http_user_agent = "-")" blocks such clients).
func (r *Request) value(source string) string {
	switch source {
	case SourceUserAgent:
		if r.UserAgent == "" {
			return "-"
		}
		return r.UserAgent
	case SourceReferer:
		return r.Referer
	case SourcePath:
		return r.Path
	case SourceAddress:
		if !r.Addr.IsValid() {
			return ""
		}
		return r.Addr.String()
	}
	if r.Header != nil && strings.HasPrefix(source, sourceHeader) {
		return r.Header(source[len(sourceHeader):])
	}
	return ""
}

// Pattern matches one string: exactly (Exact), or by a regular expression
// (Regex, RE2 syntax; "(?i)" for case-insensitive as nginx's "~*").
// Exactly one is set.
type Pattern struct {
	Exact string `json:"exact,omitempty"`
	Regex string `json:"regex,omitempty"`
}

type pattern struct {
	exact string
	re    *regexp.Regexp
}

func compilePattern(p Pattern) (pattern, error) {
	switch {
	case p.Exact != "" && p.Regex != "":
		return pattern{}, fmt.Errorf("exact %q and regex %q: set only one", p.Exact, p.Regex)
	case p.Regex != "":
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return pattern{}, fmt.Errorf("regex %q: %w", p.Regex, err)
		}
		return pattern{re: re}, nil
	case p.Exact != "":
		return pattern{exact: p.Exact}, nil
	}
	return pattern{}, fmt.Errorf("a pattern needs exact or regex")
}

func (p *pattern) match(s string) bool {
	if p.re != nil {
		return p.re.MatchString(s)
	}
	return s == p.exact
}

// MapConfig declares a class map (nginx map): the value of Source, tested
// against each rule in order, gives the class of the first rule that
// matches, else Default. An empty class means "no class": zones keyed by
// this map do not count the request.
type MapConfig struct {
	Source  string    `json:"source"`
	Rules   []MapRule `json:"rules"`
	Default string    `json:"default,omitempty"`
}

// MapRule is one line of a map: a pattern (Exact or Regex) and the class
// it gives.
type MapRule struct {
	Exact string `json:"exact,omitempty"`
	Regex string `json:"regex,omitempty"`
	Class string `json:"class"`
}

// Map is a built class map.
type Map struct {
	source string
	rules  []mapRule
	def    string
}

type mapRule struct {
	p     pattern
	class string
}

// NewMap compiles c.
func NewMap(c MapConfig) (*Map, error) {
	if !ValidSource(c.Source) {
		return nil, fmt.Errorf("source %q: must be user_agent, referer, path, address or header:NAME", c.Source)
	}
	m := &Map{source: c.Source, def: c.Default}
	for i, r := range c.Rules {
		p, err := compilePattern(Pattern{Exact: r.Exact, Regex: r.Regex})
		if err != nil {
			return nil, fmt.Errorf("rule #%d: %w", i+1, err)
		}
		m.rules = append(m.rules, mapRule{p, r.Class})
	}
	return m, nil
}

// Class returns the class of r.
func (m *Map) Class(r *Request) string {
	v := r.value(m.source)
	for i := range m.rules {
		if m.rules[i].p.match(v) {
			return m.rules[i].class
		}
	}
	return m.def
}
