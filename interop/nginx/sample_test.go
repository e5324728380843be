package nginx

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
)

// sample returns a string the regex re matches, built from its syntax
// tree (the first alternative, one repetition, the first rune of a
// class), for generating request paths that reach regex locations; ok is
// false when the string built does not match (anchors in odd places).
func sample(re string, caseInsensitive bool) (string, bool) {
	flags := syntax.Perl
	if caseInsensitive {
		flags |= syntax.FoldCase
	}
	tree, err := syntax.Parse(re, flags)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	gen(&b, tree.Simplify())
	s := b.String()
	if !strings.HasPrefix(s, "/") {
		s = "/" + s
	}
	prefix := ""
	if caseInsensitive {
		prefix = "(?i)"
	}
	m, err := regexp.Compile(prefix + re)
	if err != nil || !m.MatchString(s) {
		return "", false
	}
	return s, true
}

func gen(b *strings.Builder, re *syntax.Regexp) {
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		r := 'a'
		if len(re.Rune) > 0 {
			r = re.Rune[0]
			// Prefer a letter or digit inside the class for readable paths.
			for i := 0; i+1 < len(re.Rune); i += 2 {
				lo, hi := re.Rune[i], re.Rune[i+1]
				if lo <= 'a' && 'a' <= hi {
					r = 'a'
					break
				}
				if lo <= '0' && '0' <= hi {
					r = '0'
				}
			}
		}
		b.WriteRune(r)
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		b.WriteByte('x')
	case syntax.OpCapture:
		gen(b, re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			gen(b, s)
		}
	case syntax.OpAlternate:
		gen(b, re.Sub[0])
	case syntax.OpPlus:
		gen(b, re.Sub[0])
	case syntax.OpRepeat:
		for i := 0; i < max(re.Min, 1) && i < 8; i++ {
			gen(b, re.Sub[0])
		}
	case syntax.OpStar, syntax.OpQuest, syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
	}
}

func TestSample(t *testing.T) {
	for _, tt := range []struct {
		re string
		ci bool
	}{
		{`^/(css/|js/|fonts/|images/(attributes|favicon)/|.well-known/|api/v./(preferences|attribute_groups)|data/i18n)`, false},
		{`502\.(html|jpg)`, true},
		{`^/images/products/(.)(....)/([^/]*)$`, false},
		{`\.(gif|ico|jpg)$`, false},
		{`/\.ht`, false},
	} {
		s, ok := sample(tt.re, tt.ci)
		if !ok {
			t.Errorf("%s: no sample (%q)", tt.re, s)
		}
	}
}
