// Package nginx is offedge's interoperation with nginx: it reads nginx
// configuration files (Parse, Load) into a tree of directives, each with
// the file and line it was written at, follows `include` (globs, relative
// to a prefix as nginx does), prints a tree back in a form nginx reads
// (Print), and maps a tree onto inventory YAML (Importer), reporting every
// directive as mapped or unsupported.
//
// The tokenizer is nginx's own (ngx_conf_read_token): words separated by
// white space, `;` ending a directive, `{` opening a block and `}` closing
// it, `#` comments from the start of a word to the end of the line, single
// and double quotes, and backslash escapes (\", \', \\, \t, \r, \n; any
// other backslash is kept). `${name}` keeps its braces inside a word. A
// `{` elsewhere in an unquoted word opens a block, as in nginx: regexes
// with braces must be quoted.
package nginx

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Directive is one nginx directive: a name, its arguments and, for block
// directives, the directives inside the block.
type Directive struct {
	Name string
	Args []string
	// Block is the block's directives; nil for a simple directive. A
	// block directive with an empty block has a non-nil empty Block.
	Block []*Directive
	// File and Line say where the directive was written (the name's line).
	File string
	Line int
}

// IsBlock reports whether d has a block (`name args { ... }`).
func (d *Directive) IsBlock() bool { return d.Block != nil }

// Pos is "file:line".
func (d *Directive) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// Arg returns the i-th argument, or "".
func (d *Directive) Arg(i int) string {
	if i < len(d.Args) {
		return d.Args[i]
	}
	return ""
}

// Find returns the directives named name in block (not recursively).
func Find(block []*Directive, name string) []*Directive {
	var out []*Directive
	for _, d := range block {
		if d.Name == name {
			out = append(out, d)
		}
	}
	return out
}

// Limits bound what Load reads: a configuration is operator input, but a
// glob or a cycle in it must not make the importer read without end.
type Limits struct {
	// MaxFileSize is the largest file read (bytes).
	MaxFileSize int64
	// MaxDepth is the deepest nesting of blocks and includes together.
	MaxDepth int
	// MaxFiles is the most files read through include.
	MaxFiles int
	// MaxTokens is the most words in one directive.
	MaxTokens int
}

// DefaultLimits are generous for real configurations (Open Food Facts'
// largest file is under 200 lines).
var DefaultLimits = Limits{MaxFileSize: 4 << 20, MaxDepth: 32, MaxFiles: 1000, MaxTokens: 1024}

// Error is a syntax or include error at a position.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads one nginx configuration file from data without following
// includes: an `include` stays a directive. name is used in positions.
func Parse(name string, data []byte) ([]*Directive, error) {
	return parseBytes(name, data, DefaultLimits, 0)
}

func parseBytes(name string, data []byte, lim Limits, depth int) ([]*Directive, error) {
	if int64(len(data)) > lim.MaxFileSize {
		return nil, &Error{name, 1, fmt.Sprintf("file is %d bytes, more than the %d read", len(data), lim.MaxFileSize)}
	}
	p := &parser{lex: lexer{name: name, data: data, line: 1}, lim: lim}
	return p.block(depth, 0)
}

type parser struct {
	lex lexer
	lim Limits
}

// block reads directives until the matching `}` (open > 0: the line of the
// `{`) or the end of the file (open == 0).
func (p *parser) block(depth, open int) ([]*Directive, error) {
	if depth > p.lim.MaxDepth {
		return nil, &Error{p.lex.name, p.lex.line, fmt.Sprintf("blocks nested deeper than %d", p.lim.MaxDepth)}
	}
	out := []*Directive{}
	for {
		words, end, line, err := p.lex.directive(p.lim.MaxTokens)
		if err != nil {
			return nil, err
		}
		switch end {
		case endEOF:
			if len(words) > 0 {
				return nil, &Error{p.lex.name, p.lex.line, "unexpected end of file, expecting \";\" or \"}\""}
			}
			if open > 0 {
				return nil, &Error{p.lex.name, p.lex.line, fmt.Sprintf("unexpected end of file, expecting \"}\" (the block opened at line %d)", open)}
			}
			return out, nil
		case endClose:
			if len(words) > 0 {
				return nil, &Error{p.lex.name, p.lex.line, "unexpected \"}\": the directive before it lacks its \";\""}
			}
			if open == 0 {
				return nil, &Error{p.lex.name, p.lex.line, "unexpected \"}\""}
			}
			return out, nil
		}
		if len(words) == 0 {
			c := ";"
			if end == endBlock {
				c = "{"
			}
			return nil, &Error{p.lex.name, p.lex.line, fmt.Sprintf("unexpected %q", c)}
		}
		d := &Directive{Name: words[0], Args: words[1:], File: p.lex.name, Line: line}
		if end == endBlock {
			blk, err := p.block(depth+1, p.lex.line)
			if err != nil {
				return nil, err
			}
			d.Block = blk
		}
		out = append(out, d)
	}
}

const (
	endSemi = iota
	endBlock
	endClose
	endEOF
)

// lexer is ngx_conf_read_token.
type lexer struct {
	name string
	data []byte
	pos  int
	line int
}

// directive reads the words of one directive and what ended it. line is
// the line of its first word.
func (l *lexer) directive(maxWords int) (words []string, end int, line int, err error) {
	line = l.line
	for {
		// Between words.
		for l.pos < len(l.data) {
			c := l.data[l.pos]
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				if c == '\n' {
					l.line++
				}
				l.pos++
				continue
			}
			if c == '#' {
				for l.pos < len(l.data) && l.data[l.pos] != '\n' {
					l.pos++
				}
				continue
			}
			break
		}
		if l.pos >= len(l.data) {
			return words, endEOF, line, nil
		}
		switch l.data[l.pos] {
		case ';':
			l.pos++
			return words, endSemi, line, nil
		case '{':
			l.pos++
			return words, endBlock, line, nil
		case '}':
			l.pos++
			return words, endClose, line, nil
		}
		if len(words) == 0 {
			line = l.line
		}
		if len(words) >= maxWords {
			return nil, 0, 0, &Error{l.name, l.line, fmt.Sprintf("more than %d words in one directive", maxWords)}
		}
		w, err := l.word()
		if err != nil {
			return nil, 0, 0, err
		}
		words = append(words, w)
	}
}

// word reads one word at l.pos (not white space, not ; { }).
func (l *lexer) word() (string, error) {
	start := l.line
	var quote byte
	if c := l.data[l.pos]; c == '"' || c == '\'' {
		quote = c
		l.pos++
	}
	var b []byte
	variable := false
	for {
		if l.pos >= len(l.data) {
			if quote != 0 {
				return "", &Error{l.name, start, fmt.Sprintf("unexpected end of file inside a %c-quoted string", quote)}
			}
			return string(b), nil
		}
		c := l.data[l.pos]
		if c == '\\' && l.pos+1 < len(l.data) {
			n := l.data[l.pos+1]
			l.pos += 2
			switch n {
			case '"', '\'', '\\':
				b = append(b, n)
			case 't':
				b = append(b, '\t')
			case 'r':
				b = append(b, '\r')
			case 'n':
				b = append(b, '\n')
			default:
				if n == '\n' {
					l.line++
				}
				b = append(b, c, n)
			}
			variable = false
			continue
		}
		if quote != 0 {
			l.pos++
			if c == quote {
				// nginx wants white space, ";", "{" or ")" after a quote.
				if l.pos < len(l.data) {
					switch l.data[l.pos] {
					case ' ', '\t', '\r', '\n', ';', '{', ')':
					default:
						return "", &Error{l.name, l.line, fmt.Sprintf("unexpected %q after a quoted string", l.data[l.pos])}
					}
				}
				return string(b), nil
			}
			if c == '\n' {
				l.line++
			}
			b = append(b, c)
			continue
		}
		if c == '{' && variable {
			b = append(b, c)
			l.pos++
			continue
		}
		variable = c == '$'
		switch c {
		case ' ', '\t', '\r', '\n', ';', '{':
			return string(b), nil
		}
		b = append(b, c)
		l.pos++
	}
}

// Loader reads a configuration and the files its includes name.
type Loader struct {
	// Prefix is the directory relative include paths are resolved against
	// (nginx's conf prefix); when a relative pattern matches nothing
	// there, the including file's directory is tried. Absolute paths
	// under /etc/nginx/ are read under Prefix, so a checked-out copy of
	// /etc/nginx imports as it is. Empty: /etc/nginx.
	Prefix string
	Limits Limits

	files int
	// Includes are the include directives read, with the files each
	// matched (none: a pattern that matched nothing, or a missing file).
	Includes []Included
}

// Included is one include directive and the files it read.
type Included struct {
	Directive *Directive
	Files     []string
}

// Load reads the files at paths (a directory is its files, sorted, as
// `include DIR/*`), follows every include, and returns the directives of
// all of them in order, includes expanded in place (each directive keeps
// its own file and line).
func (ld *Loader) Load(paths ...string) ([]*Directive, error) {
	if ld.Limits == (Limits{}) {
		ld.Limits = DefaultLimits
	}
	if ld.Prefix == "" {
		ld.Prefix = "/etc/nginx"
	}
	var out []*Directive
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		files := []string{p}
		if fi.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			files = files[:0]
			for _, e := range ents {
				if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			sort.Strings(files)
		}
		for _, f := range files {
			ds, err := ld.file(f, nil, 0)
			if err != nil {
				return nil, err
			}
			out = append(out, ds...)
		}
	}
	return out, nil
}

func (ld *Loader) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, ld.Limits.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// file reads and parses one file, then expands its includes. chain is the
// stack of files being read (cycle detection).
func (ld *Loader) file(path string, chain []string, depth int) ([]*Directive, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for _, c := range chain {
		if c == abs {
			return nil, &Error{path, 1, "include cycle: " + strings.Join(append(chain, abs), " -> ")}
		}
	}
	ld.files++
	if ld.files > ld.Limits.MaxFiles {
		return nil, &Error{path, 1, fmt.Sprintf("more than %d files included", ld.Limits.MaxFiles)}
	}
	data, err := ld.read(path)
	if err != nil {
		return nil, err
	}
	ds, err := parseBytes(path, data, ld.Limits, depth)
	if err != nil {
		return nil, err
	}
	return ld.expand(ds, append(chain, abs), depth)
}

// expand replaces the include directives in ds (at any depth) by the
// directives of the files they name.
func (ld *Loader) expand(ds []*Directive, chain []string, depth int) ([]*Directive, error) {
	var out []*Directive
	for _, d := range ds {
		if d.Name == "include" && !d.IsBlock() {
			if len(d.Args) != 1 {
				return nil, &Error{d.File, d.Line, "include takes one file or pattern"}
			}
			if depth+1 > ld.Limits.MaxDepth {
				return nil, &Error{d.File, d.Line, fmt.Sprintf("includes nested deeper than %d", ld.Limits.MaxDepth)}
			}
			files, err := ld.resolve(d)
			if err != nil {
				return nil, err
			}
			ld.Includes = append(ld.Includes, Included{Directive: d, Files: files})
			for _, f := range files {
				inc, err := ld.file(f, chain, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, inc...)
			}
			continue
		}
		if d.IsBlock() {
			blk, err := ld.expand(d.Block, chain, depth+1)
			if err != nil {
				return nil, err
			}
			if blk == nil {
				blk = []*Directive{}
			}
			d.Block = blk
		}
		out = append(out, d)
	}
	return out, nil
}

// resolve returns the files an include names, sorted as nginx's glob; nil
// when it names none (a pattern may match nothing; a plain path that does
// not exist is reported by the caller, as nginx refuses it).
func (ld *Loader) resolve(d *Directive) ([]string, error) {
	pat := d.Args[0]
	var cands []string
	if filepath.IsAbs(pat) {
		cands = []string{pat}
		if rest, ok := strings.CutPrefix(pat, "/etc/nginx/"); ok && filepath.Clean(ld.Prefix) != "/etc/nginx" {
			// The prefix stands for /etc/nginx: a checked-out copy never
			// reads this machine's own configuration.
			cands = []string{filepath.Join(ld.Prefix, rest)}
		}
	} else {
		cands = []string{filepath.Join(ld.Prefix, pat), filepath.Join(filepath.Dir(d.File), pat)}
	}
	for _, c := range cands {
		ms, err := filepath.Glob(c)
		if err != nil {
			return nil, &Error{d.File, d.Line, fmt.Sprintf("include %q: %v", pat, err)}
		}
		var files []string
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
				files = append(files, m)
			}
		}
		if len(files) > 0 {
			sort.Strings(files)
			return files, nil
		}
	}
	return nil, nil
}

// Print writes ds in a form nginx reads back to the same tree: one
// directive a line, blocks indented, words quoted when they must be.
func Print(ds []*Directive) []byte {
	var b bytes.Buffer
	printBlock(&b, ds, 0)
	return b.Bytes()
}

func printBlock(b *bytes.Buffer, ds []*Directive, indent int) {
	for _, d := range ds {
		b.WriteString(strings.Repeat("    ", indent))
		b.WriteString(quoteWord(d.Name))
		for _, a := range d.Args {
			b.WriteByte(' ')
			b.WriteString(quoteWord(a))
		}
		if d.IsBlock() {
			b.WriteString(" {\n")
			printBlock(b, d.Block, indent+1)
			b.WriteString(strings.Repeat("    ", indent))
			b.WriteString("}\n")
		} else {
			b.WriteString(";\n")
		}
	}
}

// quoteWord returns w as nginx reads it back: bare when it can be, else
// double-quoted with " and \ escaped.
func quoteWord(w string) string {
	if !needsQuotes(w) {
		return w
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(w); i++ {
		if w[i] == '"' || w[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(w[i])
	}
	b.WriteByte('"')
	return b.String()
}

func needsQuotes(w string) bool {
	if w == "" || w[0] == '"' || w[0] == '\'' || w[0] == '#' {
		return true
	}
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case ' ', '\t', '\r', '\n', ';', '{', '}', '"', '\'':
			return true
		case '\\':
			// A bare backslash stays as written unless it starts one of
			// the escapes the tokenizer replaces.
			if i+1 == len(w) || strings.IndexByte("\"'\\trn\n \t;{}", w[i+1]) >= 0 {
				return true
			}
			i++
		}
	}
	return false
}
