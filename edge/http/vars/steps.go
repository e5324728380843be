package vars

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/offedge/offedge/edge/http/guard"
)

// Step is one directive of nginx's rewrite phase, in a site (server
// level: before a route is chosen) or a route (location level): exactly
// one of Rewrite, Return, Set and If.
type Step struct {
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	Return  *Return  `json:"return,omitempty"`
	Set     *SetVar  `json:"set,omitempty"`
	// If runs Then when the condition holds (nginx "if (...) { ... }",
	// with the directives offedge supports there: rewrite, return, set).
	If   *Condition `json:"if,omitempty"`
	Then []Step     `json:"then,omitempty"`
}

// Rewrite is nginx's "rewrite REGEX REPLACEMENT [FLAG]": when Regex finds
// the current URI, it becomes Replacement (a template; $1..$9 are Regex's
// groups). Flag is "" (go on with the next step; a changed URI chooses
// the route again at the end), "last" (stop, choose the route again),
// "break" (stop, stay in this route) or "redirect"/"permanent" (answer
// 302/301). A replacement starting with http://, https:// or $scheme is
// a redirect whatever the flag. The request's arguments are appended
// unless the replacement ends with "?".
type Rewrite struct {
	Regex       string `json:"regex"`
	Replacement string `json:"replacement"`
	Flag        string `json:"flag,omitempty"`
}

// Return is nginx's "return CODE [TEXT|URL]": a redirect (301, 302, 303,
// 307, 308) to URL, 444 (close without an answer), or Code with Body
// (templates both; no body: the site's error page for 4xx/5xx).
type Return struct {
	Code int    `json:"code"`
	URL  string `json:"url,omitempty"`
	Body string `json:"body,omitempty"`
}

// SetVar is nginx's "set $NAME VALUE".
type SetVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Condition is an nginx "if" condition: Variable (a template starting
// with "$") tested by Op ("" for not empty and not "0", "=", "!=", "~",
// "~*", "!~", "!~*") against Value.
type Condition struct {
	Variable string `json:"variable"`
	Op       string `json:"op,omitempty"`
	Value    string `json:"value,omitempty"`
}

// MaxURIChanges is nginx's limit of internal redirects by rewrites
// (NGX_HTTP_MAX_URI_CHANGES): the 11th is answered 500.
const MaxURIChanges = 10

// Program is compiled steps, built once, run per request.
type Program struct{ steps []step }

// Len is the number of top-level steps.
func (p *Program) Len() int {
	if p == nil {
		return 0
	}
	return len(p.steps)
}

type step struct {
	re      *Regex
	repl    *Template
	flag    string
	ret     *returnStep
	setSlot int
	setVal  *Template
	cond    *Cond
	then    []step
}

type returnStep struct {
	code int
	url  *Template
	body *Template
}

// CompileSteps compiles a site's or route's steps; groups is how many
// captures the enclosing route's regex gives (for $N in a step before
// any rewrite regex). Each step is checked: regexes, templates, captures
// named beyond the groups, flags and return codes.
func CompileSteps(in []Step, scope *Scope, groups int) (*Program, error) {
	steps, err := compileSteps(in, scope, groups)
	if err != nil {
		return nil, err
	}
	return &Program{steps}, nil
}

func compileSteps(in []Step, scope *Scope, groups int) ([]step, error) {
	out := make([]step, 0, len(in))
	for i, s := range in {
		cs, err := compileStep(s, scope, groups)
		if err != nil {
			return nil, fmt.Errorf("step #%d: %w", i+1, err)
		}
		out = append(out, cs)
	}
	return out, nil
}

func compileStep(s Step, scope *Scope, groups int) (step, error) {
	n := 0
	for _, set := range []bool{s.Rewrite != nil, s.Return != nil, s.Set != nil, s.If != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return step{}, errors.New("a step is exactly one of rewrite, return, set and if")
	}
	if s.If == nil && len(s.Then) > 0 {
		return step{}, errors.New("then belongs to an if")
	}
	capCheck := func(t *Template, groups int, what string) error {
		if t.MaxCapture > groups {
			return fmt.Errorf("%s %q names $%d, but only %d groups are captured there", what, t.String(), t.MaxCapture, groups)
		}
		return nil
	}
	switch {
	case s.Rewrite != nil:
		rw := s.Rewrite
		re, err := CompileRegex(rw.Regex, false)
		if err != nil {
			return step{}, fmt.Errorf("rewrite: %w", err)
		}
		repl, err := Parse(rw.Replacement, scope)
		if err != nil {
			return step{}, fmt.Errorf("rewrite: replacement: %w", err)
		}
		if rw.Replacement == "" {
			return step{}, errors.New("rewrite: empty replacement")
		}
		if err := capCheck(repl, re.Groups(), "rewrite: replacement"); err != nil {
			return step{}, err
		}
		switch rw.Flag {
		case "", "last", "break", "redirect", "permanent":
		default:
			return step{}, fmt.Errorf("rewrite: flag %q: use last, break, redirect or permanent", rw.Flag)
		}
		return step{re: re, repl: repl, flag: rw.Flag}, nil
	case s.Return != nil:
		rs := &returnStep{code: s.Return.Code}
		redirect := IsRedirectCode(rs.code)
		switch {
		case rs.code == 444:
			if s.Return.URL != "" || s.Return.Body != "" {
				return step{}, errors.New("return 444 closes the connection: no url or body")
			}
		case rs.code < 200 || rs.code > 599:
			return step{}, fmt.Errorf("return %d: a status in 200-599, or 444", rs.code)
		case redirect && s.Return.URL == "":
			return step{}, fmt.Errorf("return %d: a redirect needs a url", rs.code)
		case redirect && s.Return.Body != "":
			return step{}, fmt.Errorf("return %d: a redirect has a url, not a body", rs.code)
		case !redirect && s.Return.URL != "":
			return step{}, fmt.Errorf("return %d: only 301, 302, 303, 307 and 308 have a url", rs.code)
		}
		var err error
		if s.Return.URL != "" {
			if rs.url, err = Parse(s.Return.URL, scope); err != nil {
				return step{}, fmt.Errorf("return: url: %w", err)
			}
			if err := capCheck(rs.url, groups, "return: url"); err != nil {
				return step{}, err
			}
		}
		if s.Return.Body != "" {
			if rs.body, err = Parse(s.Return.Body, scope); err != nil {
				return step{}, fmt.Errorf("return: body: %w", err)
			}
			if err := capCheck(rs.body, groups, "return: body"); err != nil {
				return step{}, err
			}
		}
		return step{ret: rs}, nil
	case s.Set != nil:
		slot := scope.SetSlot(s.Set.Name)
		if slot < 0 {
			return step{}, fmt.Errorf("set: $%s is not a set variable of the site", s.Set.Name)
		}
		v, err := Parse(s.Set.Value, scope)
		if err != nil {
			return step{}, fmt.Errorf("set $%s: %w", s.Set.Name, err)
		}
		if err := capCheck(v, groups, "set: value"); err != nil {
			return step{}, err
		}
		return step{setSlot: slot, setVal: v}, nil
	}
	c, err := NewCond(s.If.Variable, s.If.Op, s.If.Value, scope)
	if err != nil {
		return step{}, fmt.Errorf("if: %w", err)
	}
	if len(s.Then) == 0 {
		return step{}, errors.New("if: nothing in then")
	}
	// After a matching regex condition, $N are its groups (nginx).
	inner := groups
	if c.Groups() > 0 || s.If.Op == "~" || s.If.Op == "~*" {
		inner = c.Groups()
	}
	then, err := compileSteps(s.Then, scope, inner)
	if err != nil {
		return step{}, fmt.Errorf("if: %w", err)
	}
	return step{cond: c, then: then}, nil
}

// SetNames lists the variables set by steps (nested ones included).
func SetNames(steps []Step, out []string) []string {
	for _, s := range steps {
		if s.Set != nil {
			out = append(out, s.Set.Name)
		}
		out = SetNames(s.Then, out)
	}
	return out
}

// IsRedirectCode reports whether c is 301, 302, 303, 307 or 308.
func IsRedirectCode(c int) bool {
	switch c {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// Outcome is how running steps ended.
type Outcome uint8

const (
	GoOn     Outcome = iota // steps done; a changed URI chooses the route again
	StopLast                // "last": stop, choose the route again
	StopHere                // "break": stop, stay in this route
	Answered                // answer the request with the Answer
)

// Answer is what a return or a redirecting rewrite answers: Code, with
// Location for a redirect (relative: the edge adds scheme and host), or
// Body when HasBody; Code 444 closes the connection.
type Answer struct {
	Code     int
	Location string
	Body     string
	HasBody  bool
}

// Run runs the program on q. changed reports whether the URI was
// rewritten (q.URI and q.Args hold the new ones). An error (a value too
// long, a rewritten URI that climbs above the root) is answered 500.
func (p *Program) Run(q *Request, changed *bool) (Outcome, Answer, error) {
	if p == nil {
		return GoOn, Answer{}, nil
	}
	return run(p.steps, q, changed)
}

func run(steps []step, q *Request, changed *bool) (Outcome, Answer, error) {
	for i := range steps {
		sp := &steps[i]
		switch {
		case sp.re != nil:
			if !sp.re.Match(q.URI, q) {
				continue
			}
			v, err := sp.repl.Eval(q)
			if err != nil {
				return Answered, Answer{}, fmt.Errorf("rewrite: %w", err)
			}
			path, args := splitArgs(v, q.Args)
			if strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") || sp.flag == "redirect" || sp.flag == "permanent" {
				code := 302
				if sp.flag == "permanent" {
					code = 301
				}
				if args != "" {
					path += "?" + args
				}
				return Answered, Answer{Code: code, Location: path}, nil
			}
			if len(path) > MaxValueBytes || len(args) > MaxValueBytes {
				return Answered, Answer{}, fmt.Errorf("rewrite: %w", ErrTooLong)
			}
			norm, err := NormalizeRewritten(path)
			if err != nil {
				return Answered, Answer{}, err
			}
			q.URI, q.Args = norm, args
			*changed = true
			switch sp.flag {
			case "last":
				return StopLast, Answer{}, nil
			case "break":
				return StopHere, Answer{}, nil
			}
		case sp.ret != nil:
			a := Answer{Code: sp.ret.code}
			var err error
			if sp.ret.url != nil {
				if a.Location, err = sp.ret.url.Eval(q); err != nil {
					return Answered, Answer{}, fmt.Errorf("return: %w", err)
				}
			}
			if sp.ret.body != nil {
				if a.Body, err = sp.ret.body.Eval(q); err != nil {
					return Answered, Answer{}, fmt.Errorf("return: %w", err)
				}
				a.HasBody = true
			}
			return Answered, a, nil
		case sp.setVal != nil:
			v, err := sp.setVal.Eval(q)
			if err != nil {
				return Answered, Answer{}, fmt.Errorf("set: %w", err)
			}
			q.Set(sp.setSlot, v)
		case sp.cond != nil:
			ok, err := sp.cond.True(q)
			if err != nil {
				return Answered, Answer{}, fmt.Errorf("if: %w", err)
			}
			if !ok {
				continue
			}
			if o, a, err := run(sp.then, q, changed); o != GoOn || err != nil {
				return o, a, err
			}
		}
	}
	return GoOn, Answer{}, nil
}

// splitArgs splits a rewrite's value into its path and the arguments the
// request goes on with: the value's own ("?a=1") followed by the
// request's, or only the value's when it ends with "?".
func splitArgs(v, args string) (string, string) {
	path, own, has := strings.Cut(v, "?")
	if !has {
		return path, args
	}
	if strings.HasSuffix(v, "?") {
		return path, strings.TrimSuffix(own, "?")
	}
	if args == "" {
		return path, own
	}
	if own == "" {
		return path, args
	}
	return path, own + "&" + args
}

// NormalizeRewritten checks a rewritten URI as the client's path is
// checked: it is the path routes, static files and the upstream see.
func NormalizeRewritten(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("rewritten URI %q does not start with /", p)
	}
	norm, err := guard.NormalizePath((&url.URL{Path: p}).EscapedPath())
	if err != nil {
		return "", fmt.Errorf("rewritten URI %q: %w", p, err)
	}
	return guard.DecodePath(norm), nil
}
