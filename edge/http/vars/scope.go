package vars

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// MapConfig declares a map (nginx map): the value of Source, looked up
// among the entries, gives the value of the entry that matches, else
// Default. As nginx: exact strings first (ignoring case), then with
// Hostnames the longest "*.example.org" / ".example.org" mask, then the
// longest "www.example.*" mask, then the regexes in order.
type MapConfig struct {
	Name string `json:"name"`
	// Source is a template ("$http_user_agent", "$host$uri").
	Source string `json:"source"`
	// Hostnames makes entries with a leading "*." or "." or a trailing
	// ".*" masks of host names.
	Hostnames bool       `json:"hostnames,omitempty"`
	Entries   []MapEntry `json:"entries"`
	// Default is the value when no entry matches ("" when unset).
	Default string `json:"default,omitempty"`
}

// MapEntry is one line of a map: a string (Exact, or a mask with
// Hostnames) or a regex (Regex, matched ignoring case when CaseInsensitive),
// and the value it gives (a template: captures of the regex may appear).
type MapEntry struct {
	Exact           string `json:"exact,omitempty"`
	Regex           string `json:"regex,omitempty"`
	CaseInsensitive bool   `json:"case_insensitive,omitempty"`
	Value           string `json:"value"`
}

// Map is a compiled map.
type Map struct {
	name     string
	computed func(q *Request) string // a Computed variable: no entries
	source   *Template
	exact    map[string]*Template
	prefixes []maskEntry // "*.example.org" -> ".example.org", longest first
	suffixes []maskEntry // "www.example.*" -> "www.example.", longest first
	regexes  []regexEntry
	def      *Template
}

type maskEntry struct {
	mask  string
	value *Template
	apex  string // ".example.org" also matches "example.org"
}

type regexEntry struct {
	re    *Regex
	value *Template
}

// Scope resolves the names a site's templates may use beyond the built-in
// variables: its maps, its set variables and the edge's external variables.
type Scope struct {
	maps      []*Map
	mapIdx    map[string]int
	sets      []string
	setIdx    map[string]int
	externs   []string
	externIdx map[string]int
}

// Computed is a variable whose value a function computes, at most once a
// request, when a template reads it: the node's class maps
// (docs/protection.md) are read this way. Value may be nil where only the
// name matters (loading, checking).
type Computed struct {
	Name  string
	Value func(q *Request) string
}

// NewScope compiles maps and declares the set variables, the external
// variables (names the edge fills in while serving) and the computed
// ones. A name may be declared once, and never as a built-in variable;
// maps whose values depend on each other in a cycle are refused.
func NewScope(maps []MapConfig, sets, externs []string, computed ...Computed) (*Scope, error) {
	sc := &Scope{mapIdx: map[string]int{}, setIdx: map[string]int{}, externIdx: map[string]int{}}
	taken := func(name string) error {
		if !validName(name) {
			return fmt.Errorf("%q is not a variable name (letters, digits and _)", name)
		}
		if _, ok := builtinKinds[name]; ok {
			return fmt.Errorf("$%s is a built-in variable", name)
		}
		for _, p := range []string{"arg_", "http_", "cookie_"} {
			if strings.HasPrefix(name, p) {
				return fmt.Errorf("$%s: names starting with %s are request variables", name, p)
			}
		}
		if name[0] >= '0' && name[0] <= '9' {
			return fmt.Errorf("$%s: a name starting with a digit is a capture", name)
		}
		_, m := sc.mapIdx[name]
		_, s := sc.setIdx[name]
		_, e := sc.externIdx[name]
		if m || s || e {
			return fmt.Errorf("$%s is declared twice", name)
		}
		return nil
	}
	for _, n := range externs {
		if err := taken(n); err != nil {
			return nil, err
		}
		sc.externIdx[n] = len(sc.externs)
		sc.externs = append(sc.externs, n)
	}
	for _, c := range computed {
		if err := taken(c.Name); err != nil {
			return nil, fmt.Errorf("computed variable: %w", err)
		}
		sc.mapIdx[c.Name] = len(sc.maps)
		sc.maps = append(sc.maps, &Map{name: c.Name, computed: c.Value})
	}
	nComputed := len(sc.maps)
	for _, c := range maps {
		if err := taken(c.Name); err != nil {
			return nil, fmt.Errorf("map: %w", err)
		}
		sc.mapIdx[c.Name] = len(sc.maps)
		sc.maps = append(sc.maps, &Map{name: c.Name})
	}
	for _, n := range sets {
		if _, dup := sc.setIdx[n]; dup {
			continue // set in several places: one variable
		}
		if err := taken(n); err != nil {
			return nil, fmt.Errorf("set: %w", err)
		}
		sc.setIdx[n] = len(sc.sets)
		sc.sets = append(sc.sets, n)
	}
	for i, c := range maps {
		if err := sc.compileMap(sc.maps[nComputed+i], c); err != nil {
			return nil, fmt.Errorf("map $%s: %w", c.Name, err)
		}
	}
	if err := sc.checkCycles(); err != nil {
		return nil, err
	}
	return sc, nil
}

// SetSlot returns the slot of set variable name, or -1.
func (sc *Scope) SetSlot(name string) int {
	if i, ok := sc.setIdx[name]; ok {
		return i
	}
	return -1
}

// ExternSlot returns the slot of external variable name, or -1.
func (sc *Scope) ExternSlot(name string) int {
	if sc == nil {
		return -1
	}
	if i, ok := sc.externIdx[name]; ok {
		return i
	}
	return -1
}

// HasMaps reports whether the scope declares a map.
func (sc *Scope) HasMaps() bool { return sc != nil && len(sc.maps) > 0 }

func (sc *Scope) compileMap(m *Map, c MapConfig) error {
	src, err := Parse(c.Source, sc)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if c.Source == "" {
		return errors.New("no source")
	}
	m.source, m.exact = src, map[string]*Template{}
	if m.def, err = Parse(c.Default, sc); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	for i, e := range c.Entries {
		v, err := Parse(e.Value, sc)
		if err != nil {
			return fmt.Errorf("entry #%d: value: %w", i+1, err)
		}
		switch {
		case (e.Exact == "") == (e.Regex == ""):
			return fmt.Errorf("entry #%d: set exact or regex", i+1)
		case e.Regex != "":
			re, err := CompileRegex(e.Regex, e.CaseInsensitive)
			if err != nil {
				return fmt.Errorf("entry #%d: %w", i+1, err)
			}
			if v.MaxCapture > re.Groups() {
				return fmt.Errorf("entry #%d: value names $%d but the regex has %d groups", i+1, v.MaxCapture, re.Groups())
			}
			m.regexes = append(m.regexes, regexEntry{re, v})
		default:
			if v.MaxCapture > 0 {
				return fmt.Errorf("entry #%d: value names $%d but a string entry captures nothing", i+1, v.MaxCapture)
			}
			k := strings.ToLower(e.Exact)
			if c.Hostnames {
				switch {
				case strings.HasPrefix(k, "*."):
					m.prefixes = append(m.prefixes, maskEntry{mask: k[1:], value: v})
					continue
				case strings.HasPrefix(k, "."):
					m.prefixes = append(m.prefixes, maskEntry{mask: k, value: v, apex: k[1:]})
					continue
				case strings.HasSuffix(k, ".*"):
					m.suffixes = append(m.suffixes, maskEntry{mask: k[:len(k)-1], value: v})
					continue
				}
			}
			if _, dup := m.exact[k]; dup {
				return fmt.Errorf("entry #%d: %q listed twice", i+1, e.Exact)
			}
			m.exact[k] = v
		}
	}
	byLen := func(l []maskEntry) {
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].mask) > len(l[j].mask) })
	}
	byLen(m.prefixes)
	byLen(m.suffixes)
	return nil
}

func (m *Map) templates() []*Template {
	if m.source == nil {
		return nil // computed
	}
	out := []*Template{m.source, m.def}
	for _, v := range m.exact {
		out = append(out, v)
	}
	for _, l := range [][]maskEntry{m.prefixes, m.suffixes} {
		for _, e := range l {
			out = append(out, e.value)
		}
	}
	for _, e := range m.regexes {
		out = append(out, e.value)
	}
	return out
}

// checkCycles refuses maps whose evaluation would need their own value.
func (sc *Scope) checkCycles() error {
	state := make([]int, len(sc.maps)) // 0 new, 1 visiting, 2 done
	var visit func(i int, path []string) error
	visit = func(i int, path []string) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("maps depend on each other in a cycle: $%s", strings.Join(append(path, sc.maps[i].name), " -> $"))
		case 2:
			return nil
		}
		state[i] = 1
		for _, t := range sc.maps[i].templates() {
			for _, j := range t.maps {
				if err := visit(j, append(slices.Clip(path), sc.maps[i].name)); err != nil {
					return err
				}
			}
		}
		state[i] = 2
		return nil
	}
	for i := range sc.maps {
		if err := visit(i, nil); err != nil {
			return err
		}
	}
	return nil
}

// mapValue evaluates map i once per request (nginx caches a map's value
// for the request too).
func (q *Request) mapValue(i int) (string, error) {
	if q.scope == nil || i >= len(q.maps) {
		return "", nil
	}
	if q.maps[i].done {
		return q.maps[i].v, nil
	}
	v, err := q.scope.maps[i].lookup(q)
	if err != nil {
		return "", err
	}
	q.maps[i] = mapMemo{done: true, v: v}
	return v, nil
}

func (m *Map) lookup(q *Request) (string, error) {
	if m.source == nil {
		if m.computed == nil {
			return "", nil
		}
		return m.computed(q), nil
	}
	key, err := m.source.Eval(q)
	if err != nil {
		return "", err
	}
	lk := strings.ToLower(key)
	if v, ok := m.exact[lk]; ok {
		return v.Eval(q)
	}
	if len(m.prefixes) > 0 || len(m.suffixes) > 0 {
		h := strings.TrimSuffix(lk, ".")
		for _, e := range m.prefixes {
			if (len(h) > len(e.mask) && strings.HasSuffix(h, e.mask)) || (e.apex != "" && h == e.apex) {
				return e.value.Eval(q)
			}
		}
		for _, e := range m.suffixes {
			if len(h) > len(e.mask) && strings.HasPrefix(h, e.mask) {
				return e.value.Eval(q)
			}
		}
	}
	for _, e := range m.regexes {
		if e.re.Match(key, q) {
			return e.value.Eval(q)
		}
	}
	return m.def.Eval(q)
}

// Cond is an nginx "if" condition on a variable: true when the value is
// neither "" nor "0" (no operator), equal or not (= !=, the right side a
// template), or matching a regex or not (~ ~* !~ !~*; a match sets the
// captures).
type Cond struct {
	left  *Template
	op    string
	right *Template
	re    *Regex
}

// CondOps are the operators of a condition ("" tests the value itself).
var CondOps = []string{"", "=", "!=", "~", "~*", "!~", "!~*"}

// NewCond compiles the condition "left op right".
func NewCond(left, op, right string, scope *Scope) (*Cond, error) {
	l, err := Parse(left, scope)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(left, "$") {
		return nil, fmt.Errorf("condition on %q: the left side is a variable ($http_user_agent)", left)
	}
	c := &Cond{left: l, op: op}
	switch op {
	case "":
		if right != "" {
			return nil, fmt.Errorf("condition on %s: a value without an operator", left)
		}
	case "=", "!=":
		if c.right, err = Parse(right, scope); err != nil {
			return nil, err
		}
	case "~", "~*", "!~", "!~*":
		if c.re, err = CompileRegex(right, strings.HasSuffix(op, "*")); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("condition on %s: operator %q (use =, !=, ~, ~*, !~ or !~*; file tests -f/-d/-e/-x are not supported)", left, op)
	}
	return c, nil
}

// Groups is the number of groups the condition's regex captures (0 without one).
func (c *Cond) Groups() int {
	if c.re == nil {
		return 0
	}
	return c.re.Groups()
}

// True evaluates the condition on q.
func (c *Cond) True(q *Request) (bool, error) {
	v, err := c.left.Eval(q)
	if err != nil {
		return false, err
	}
	switch c.op {
	case "":
		return v != "" && v != "0", nil
	case "=", "!=":
		r, err := c.right.Eval(q)
		if err != nil {
			return false, err
		}
		return (v == r) == (c.op == "="), nil
	case "~", "~*":
		return c.re.Match(v, q), nil
	default:
		return !c.re.Match(v, nil), nil
	}
}
