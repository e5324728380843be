package vars

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// MaxRegexBytes bounds a regex's source; MaxRegexInsts its compiled
// program (RE2 matches in time linear in the input, times the program).
const (
	MaxRegexBytes = 4096
	MaxRegexInsts = 20000
)

// Regex is a compiled nginx regex ("~" or "~*"), in RE2 syntax.
type Regex struct {
	re  *regexp.Regexp
	src string
	ci  bool
}

// pcreOnly lists PCRE constructs RE2 does not have, as nginx configs write
// them, with what to say.
var pcreOnly = []struct{ tok, what string }{
	{"(?=", "lookahead (?=...)"},
	{"(?!", "negative lookahead (?!...)"},
	{"(?<=", "lookbehind (?<=...)"},
	{"(?<!", "negative lookbehind (?<!...)"},
	{"(?>", "atomic group (?>...)"},
	{"(?|", "branch reset (?|...)"},
	{"(?(", "conditional (?(...)...)"},
	{"(?R)", "recursion (?R)"},
	{"(?&", "subroutine call (?&name)"},
	{"\\K", "match reset \\K"},
	{"\\g", "backreference \\g"},
	{"\\k<", "named backreference \\k<name>"},
	{"\\k{", "named backreference \\k{name}"},
	{"\\k'", "named backreference \\k'name'"},
	{"(?P=", "named backreference (?P=name)"},
	{"*+", "possessive quantifier *+"},
	{"++", "possessive quantifier ++"},
	{"?+", "possessive quantifier ?+"},
	{"}+", "possessive quantifier {n}+"},
}

// CompileRegex compiles an nginx regex: src in RE2 syntax, matched ignoring
// case when ci ("~*"). PCRE features RE2 lacks are refused by name.
func CompileRegex(src string, ci bool) (*Regex, error) {
	if src == "" {
		return nil, fmt.Errorf("empty regex")
	}
	if len(src) > MaxRegexBytes {
		return nil, fmt.Errorf("regex of %d bytes: at most %d", len(src), MaxRegexBytes)
	}
	if what := pcreFeature(src); what != "" {
		return nil, fmt.Errorf("regex %q uses %s, a PCRE feature RE2 (Go's regexp) does not have; rewrite it without", src, what)
	}
	full := src
	if ci {
		full = "(?i)" + src
	}
	re, err := regexp.Compile(full)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %v", src, err)
	}
	p, err := syntax.Parse(full, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %v", src, err)
	}
	prog, err := syntax.Compile(p.Simplify())
	if err != nil {
		return nil, fmt.Errorf("regex %q: %v", src, err)
	}
	if len(prog.Inst) > MaxRegexInsts {
		return nil, fmt.Errorf("regex %q compiles to %d instructions: at most %d", src, len(prog.Inst), MaxRegexInsts)
	}
	return &Regex{re: re, src: src, ci: ci}, nil
}

// pcreFeature names the first PCRE-only construct of src, outside escapes
// ("\(?=" is a literal), or "".
func pcreFeature(src string) string {
	for i := 0; i < len(src); i++ {
		if src[i] == '\\' && i+1 < len(src) {
			c := src[i+1]
			if c >= '1' && c <= '9' {
				return fmt.Sprintf("backreference \\%c", c)
			}
			rest := src[i:]
			for _, p := range pcreOnly {
				if p.tok[0] == '\\' && strings.HasPrefix(rest, p.tok) {
					return p.what
				}
			}
			i++ // the escaped byte is a literal
			continue
		}
		if src[i] == '[' {
			i = classEnd(src, i)
			continue
		}
		rest := src[i:]
		for _, p := range pcreOnly {
			if p.tok[0] != '\\' && strings.HasPrefix(rest, p.tok) {
				return p.what
			}
		}
	}
	return ""
}

// classEnd returns the index of the "]" closing the character class
// opened at src[i] (or the last index: the compiler reports the error).
func classEnd(src string, i int) int {
	j := i + 1
	if j < len(src) && src[j] == '^' {
		j++
	}
	if j < len(src) && src[j] == ']' {
		j++ // a leading "]" is a literal
	}
	for ; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case '[':
			if j+1 < len(src) && src[j+1] == ':' { // [:alpha:]
				if k := strings.Index(src[j:], ":]"); k > 0 {
					j += k + 1
				}
			}
		case ']':
			return j
		}
	}
	return len(src) - 1
}

// Groups is the number of capturing groups ($1..$N are meaningful).
func (r *Regex) Groups() int { return r.re.NumSubexp() }

// String returns the regex as written (without the "(?i)" of "~*").
func (r *Regex) String() string { return r.src }

// CaseInsensitive reports whether the regex was compiled as "~*".
func (r *Regex) CaseInsensitive() bool { return r.ci }

// Match reports whether s matches; on a match it records the captures in q
// (nil: none recorded), as nginx's regexes replace $1..$9.
func (r *Regex) Match(s string, q *Request) bool {
	if q == nil || r.re.NumSubexp() == 0 {
		if !r.re.MatchString(s) {
			return false
		}
		if q != nil {
			q.SetCaptures(s, nil)
		}
		return true
	}
	// A failed match is the common case (rewrites tried in turn): find
	// it without the cost of tracking groups.
	if !r.re.MatchString(s) {
		return false
	}
	var buf [2 * (MaxCaptures + 1)]int
	idx := r.re.FindStringSubmatchIndex(s)
	if idx == nil {
		return false
	}
	n := copy(buf[:], idx)
	q.SetCaptures(s, buf[:n])
	return true
}
