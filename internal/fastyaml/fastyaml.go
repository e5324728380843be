// Package fastyaml parses the block-style YAML an inventory is written in
// into a compact node tree, several times faster than gopkg.in/yaml.v3
// builds its own (six times on the ten-times benchmark inventory of
// bench/scale): it reads one line at a time, takes scalars as substrings of
// one copy of the input and allocates nodes in slabs. A Node is 56 bytes
// (yaml.v3's is 152) and carries what a decoder reads: kind, value,
// nullness, position, children. Values decoded from a tree share the copy
// of the input, so a model built from it holds the file's text (its size
// in memory) as long as it holds any of its values.
//
// Parse covers a subset: block mappings and sequences, one-line plain and
// quoted scalars, one-line flow sequences and mappings, comments. Anything
// else — tabs, carriage returns, non-ASCII bytes, document markers and
// directives, anchors, aliases, tags, block scalars (| and >), multi-line
// scalars and flow collections, quoted or complex keys, escapes other than
// the common ones, and every syntax error — makes Parse report false: the
// caller parses with yaml.v3, which builds its tree or says what is wrong,
// and converts the tree with FromYAML. Parse never reports an error of its
// own.
//
// Where Parse succeeds, its tree equals FromYAML of yaml.v3's in every
// field; the differential tests and the fuzz target hold it to that.
// Comments are not kept.
package fastyaml

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind is what a node is.
type Kind uint8

const (
	Scalar Kind = iota + 1
	Mapping
	Sequence
	// Alias is a yaml.v3 alias (*x), from FromYAML only: Parse leaves
	// anchors and aliases to yaml.v3.
	Alias
)

// Node is one node of a YAML tree.
type Node struct {
	Kind Kind
	// Null says a scalar is YAML's null: plain ~, null, Null, NULL or
	// nothing (a quoted "null" is text), or tagged !!null.
	Null bool
	// Anchor says the node carries an anchor (&x): FromYAML only.
	Anchor bool
	// Line and Column are 1-based; columns count characters.
	Line, Column int32
	// Value is a scalar's text, escapes resolved.
	Value string
	// Content is a mapping's keys and values (key, value, key, value...)
	// or a sequence's entries.
	Content []*Node
}

// FromYAML converts a tree yaml.v3 built (not its document node).
func FromYAML(n *yaml.Node) *Node {
	out := &Node{
		Null:   n.Kind == yaml.ScalarNode && n.Tag == "!!null",
		Anchor: n.Anchor != "",
		Line:   int32(n.Line),
		Column: int32(n.Column),
		Value:  n.Value,
	}
	switch n.Kind {
	case yaml.MappingNode:
		out.Kind = Mapping
	case yaml.SequenceNode:
		out.Kind = Sequence
	case yaml.AliasNode:
		out.Kind = Alias
	default:
		out.Kind = Scalar
	}
	if len(n.Content) > 0 {
		out.Content = make([]*Node, len(n.Content))
		for i, c := range n.Content {
			out.Content[i] = FromYAML(c)
		}
	}
	return out
}

// Parse returns the root node of data, or false when data is outside the
// subset or not valid YAML: then parse it with yaml.v3. A root that is not
// a block mapping or sequence is outside the subset.
func Parse(data []byte) (root *Node, ok bool) {
	src := string(data)
	p := &parser{src: src}
	if !p.split() || len(p.lines) == 0 {
		return nil, false
	}
	defer func() {
		if r := recover(); r != nil {
			if _, is := r.(bail); !is {
				panic(r)
			}
			root, ok = nil, false
		}
	}()
	root = p.block(-1)
	if p.i != len(p.lines) {
		return nil, false
	}
	return root, true
}

// maxDepth bounds the nesting of collections: an inventory nests half a
// dozen deep, and a file of 16 MiB of "[" must not recurse 16 M frames
// deep (yaml.v3 stops at 10,000 and says so).
const maxDepth = 64

// bail is the panic that unwinds the parse when the input leaves the
// subset; Parse recovers it and reports false.
type bail struct{}

// line is a line that holds content (blank and comment-only lines are
// dropped): content runs from start+ind to eol.
type line struct {
	num   int // 1-based
	start int // offset of the line in src
	ind   int // column of the first content byte; a compact mapping in a sequence entry moves it
	eol   int // offset of the newline, or len(src)
}

type parser struct {
	src   string
	lines []line
	i     int // the line being parsed

	depth int // collections open; see maxDepth

	slab  []Node  // nodes are taken from here
	kids  []*Node // Content slices are cut from here
	stack []*Node // Content being gathered
}

// split cuts src into content lines, and reports false on a byte or a
// line outside the subset.
func (p *parser) split() bool {
	src := p.src
	// Room for the lines of a typical file (tens of bytes a line); a file
	// of blank lines must not reserve a line for each of its bytes.
	p.lines = make([]line, 0, min(strings.Count(src, "\n")+1, len(src)/16+1))
	num := 0
	for start := 0; start < len(src); {
		num++
		eol := strings.IndexByte(src[start:], '\n')
		if eol < 0 {
			eol = len(src)
		} else {
			eol += start
		}
		ind := 0
		for start+ind < eol && src[start+ind] == ' ' {
			ind++
		}
		for j := start; j < eol; j++ {
			if c := src[j]; c < ' ' || c >= 0x7f {
				return false // tab, CR, control, non-ASCII (yaml.v3 counts columns in runes)
			}
		}
		if ind == 0 && eol > start {
			switch src[start] {
			case '%':
				return false // a directive
			case '-', '.':
				if strings.HasPrefix(src[start:eol], "---") || strings.HasPrefix(src[start:eol], "...") {
					return false // a document marker
				}
			}
		}
		if start+ind < eol && src[start+ind] != '#' {
			p.lines = append(p.lines, line{num: num, start: start, ind: ind, eol: eol})
		}
		start = eol + 1
	}
	return true
}

// open starts a collection of kind at off on l: it counts its depth (the
// caller defers leave) and marks where its content starts on the stack.
func (p *parser) open(kind Kind, l *line, off int) (n *Node, mark int) {
	if p.depth++; p.depth > maxDepth {
		panic(bail{})
	}
	return p.node(kind, l, off), len(p.stack)
}

func (p *parser) leave() { p.depth-- }

// node takes a node from the slab.
func (p *parser) node(kind Kind, l *line, off int) *Node {
	if len(p.slab) == 0 {
		p.slab = make([]Node, 1024)
	}
	n := &p.slab[0]
	p.slab = p.slab[1:]
	n.Kind = kind
	n.Line = int32(l.num)
	n.Column = int32(off - l.start + 1)
	return n
}

// scalar is a scalar node holding v, found at off on l.
func (p *parser) scalar(l *line, off int, v string, plain bool) *Node {
	if v == "<<" && plain {
		panic(bail{}) // the merge key: yaml.v3 reads it its own way
	}
	n := p.node(Scalar, l, off)
	n.Value = v
	n.Null = plain && isNull(v)
	return n
}

func isNull(v string) bool {
	return v == "" || v == "~" || v == "null" || v == "Null" || v == "NULL"
}

// content moves the nodes gathered since mark into a Content slice.
func (p *parser) content(mark int) []*Node {
	got := p.stack[mark:]
	n := len(got)
	if n == 0 {
		return nil
	}
	if len(p.kids) < n {
		p.kids = make([]*Node, max(4096, n))
	}
	c := p.kids[:n:n]
	p.kids = p.kids[n:]
	copy(c, got)
	clear(got)
	p.stack = p.stack[:mark]
	return c
}

func (p *parser) rest(l *line) string { return p.src[l.start+l.ind : l.eol] }

// block parses the block that starts on the current line, indented more
// than parent.
func (p *parser) block(parent int) *Node {
	l := &p.lines[p.i]
	if l.ind <= parent {
		panic(bail{})
	}
	r := p.rest(l)
	if isEntry(r) {
		return p.sequence(l.ind)
	}
	if keyEnd(r) < 0 {
		panic(bail{}) // a scalar on a line of its own: multi-line, or a scalar root
	}
	return p.mapping(l.ind)
}

// isEntry says whether r, a line's content, is a block sequence entry.
func isEntry(r string) bool { return r[0] == '-' && (len(r) == 1 || r[1] == ' ') }

// keyEnd returns the index in r of the colon that ends r's implicit key,
// or -1 when r does not start with a plain key.
func keyEnd(r string) int {
	if strings.IndexByte("-?:,[]{}#&*!|>'\"%@`", r[0]) >= 0 {
		return -1
	}
	for i := 1; i < len(r); i++ {
		switch r[i] {
		case ':':
			if i+1 == len(r) || r[i+1] == ' ' {
				if i > 1000 {
					return -1 // yaml.v3 limits an implicit key to 1024 characters
				}
				return i
			}
		case '#':
			if r[i-1] == ' ' {
				return -1
			}
		}
	}
	return -1
}

// mapping parses a block mapping whose keys are at column col.
func (p *parser) mapping(col int) *Node {
	first := &p.lines[p.i]
	m, mark := p.open(Mapping, first, first.start+col)
	defer p.leave()
	for p.i < len(p.lines) {
		l := &p.lines[p.i]
		if l.ind < col {
			break
		}
		if l.ind > col {
			panic(bail{})
		}
		r := p.rest(l)
		k := keyEnd(r)
		if k < 0 {
			panic(bail{}) // an entry, or a line that is not a key, among keys
		}
		keyOff := l.start + l.ind
		key := strings.TrimRight(r[:k], " ")
		p.stack = append(p.stack, p.scalar(l, keyOff, key, true))
		p.stack = append(p.stack, p.value(l, keyOff+k, col))
	}
	m.Content = p.content(mark)
	return m
}

// value parses what follows the indicator (a key's colon, an entry's dash)
// at off on l, in a block whose column is col, and moves past it.
func (p *parser) value(l *line, off, col int) *Node {
	v := p.space(l, off+1)
	if v == l.eol || p.src[v] == '#' {
		// Nothing on this line: the value is the block below, or null.
		p.i++
		if p.i < len(p.lines) {
			next := &p.lines[p.i]
			if next.ind > col {
				return p.block(col)
			}
			if next.ind == col && p.src[off] == ':' && isEntry(p.rest(next)) {
				return p.sequence(col) // a mapping's list may sit at its keys' column
			}
		}
		return p.scalar(l, off+1, "", true)
	}
	r := p.src[v:l.eol]
	if p.src[off] == '-' {
		if isEntry(r) {
			panic(bail{}) // "- - x"
		}
		if keyEnd(r) >= 0 {
			// A compact mapping in a sequence entry: its keys are at v's column.
			l.ind = v - l.start
			return p.mapping(l.ind)
		}
	}
	n := p.inline(l, v)
	p.i++
	if p.i < len(p.lines) && p.lines[p.i].ind > col {
		panic(bail{}) // a continuation line, or a block under a scalar
	}
	return n
}

// sequence parses a block sequence whose dashes are at column col.
func (p *parser) sequence(col int) *Node {
	first := &p.lines[p.i]
	s, mark := p.open(Sequence, first, first.start+col)
	defer p.leave()
	for p.i < len(p.lines) {
		l := &p.lines[p.i]
		if l.ind != col || !isEntry(p.rest(l)) {
			if l.ind > col {
				panic(bail{})
			}
			break
		}
		p.stack = append(p.stack, p.value(l, l.start+col, col))
	}
	s.Content = p.content(mark)
	return s
}

// inline parses the one-line value at off on l; only a comment may follow.
func (p *parser) inline(l *line, off int) *Node {
	var (
		n   *Node
		end int
	)
	switch p.src[off] {
	case '"', '\'':
		n, end = p.quoted(l, off)
	case '[', '{':
		n, end = p.flow(l, off)
	default:
		if !plainStart(p.src[off:l.eol]) {
			panic(bail{})
		}
		end = off
		for end < l.eol {
			c := p.src[end]
			if c == '#' && p.src[end-1] == ' ' {
				break
			}
			if c == ':' && (end+1 == l.eol || p.src[end+1] == ' ') {
				panic(bail{}) // a mapping in a value's place
			}
			end++
		}
		v := strings.TrimRight(p.src[off:end], " ")
		return p.scalar(l, off, v, true)
	}
	p.tail(l, end)
	return n
}

// tail holds that only spaces and a comment follow off on l.
func (p *parser) tail(l *line, off int) {
	sp := p.space(l, off)
	if sp < l.eol && (sp == off || p.src[sp] != '#') {
		panic(bail{})
	}
}

// plainStart says whether r may start a plain scalar.
func plainStart(r string) bool {
	c := r[0]
	if strings.IndexByte(",[]{}#&*!|>'\"%@`", c) >= 0 {
		return false
	}
	if c == '-' || c == '?' || c == ':' {
		return len(r) > 1 && r[1] != ' '
	}
	return true
}

// quoted parses the one-line quoted scalar at off and returns it with the
// offset past its closing quote.
func (p *parser) quoted(l *line, off int) (*Node, int) {
	q := p.src[off]
	var b []byte // nil while the value is a plain substring
	i := off + 1
	for ; i < l.eol; i++ {
		c := p.src[i]
		switch {
		case c == q && q == '\'' && i+1 < l.eol && p.src[i+1] == '\'':
			if b == nil {
				b = append([]byte(nil), p.src[off+1:i]...)
			}
			b = append(b, '\'')
			i++
		case c == q:
			v := p.src[off+1 : i]
			if b != nil {
				v = string(b)
			}
			return p.scalar(l, off, v, false), i + 1
		case c == '\\' && q == '"':
			if i+1 == l.eol {
				panic(bail{})
			}
			e := escape(p.src[i+1])
			if e == 0 {
				panic(bail{})
			}
			if b == nil {
				b = append([]byte(nil), p.src[off+1:i]...)
			}
			b = append(b, e)
			i++
		default:
			if b != nil {
				b = append(b, c)
			}
		}
	}
	panic(bail{}) // no closing quote on the line: multi-line
}

// escape is the byte a double-quoted \c stands for, 0 outside the subset.
func escape(c byte) byte {
	switch c {
	case '"', '\\':
		return c
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return 0
}

// flow parses the one-line flow sequence or mapping at off and returns it
// with the offset past its closing bracket.
func (p *parser) flow(l *line, off int) (*Node, int) {
	kind, closer := Sequence, byte(']')
	if p.src[off] == '{' {
		kind, closer = Mapping, '}'
	}
	n, mark := p.open(kind, l, off)
	defer p.leave()
	i := p.space(l, off+1)
	if i < l.eol && p.src[i] == closer {
		n.Content = p.content(mark)
		return n, i + 1
	}
	for {
		var item *Node
		item, i = p.flowItem(l, i)
		p.stack = append(p.stack, item)
		i = p.space(l, i)
		if kind == Mapping {
			if i+1 >= l.eol || p.src[i] != ':' || p.src[i+1] != ' ' || item.Kind != Scalar {
				panic(bail{})
			}
			item, i = p.flowItem(l, p.space(l, i+1))
			p.stack = append(p.stack, item)
			i = p.space(l, i)
		}
		if i >= l.eol {
			panic(bail{}) // continues on the next line
		}
		switch p.src[i] {
		case closer:
			n.Content = p.content(mark)
			return n, i + 1
		case ',':
			i = p.space(l, i+1)
			if i >= l.eol || p.src[i] == closer || p.src[i] == ',' {
				panic(bail{}) // a trailing or doubled comma
			}
		default:
			panic(bail{})
		}
	}
}

// space skips spaces from i on l.
func (p *parser) space(l *line, i int) int {
	for i < l.eol && p.src[i] == ' ' {
		i++
	}
	return i
}

// flowItem parses one scalar or nested collection of a flow collection.
func (p *parser) flowItem(l *line, i int) (*Node, int) {
	if i >= l.eol {
		panic(bail{})
	}
	switch p.src[i] {
	case '"', '\'':
		return p.quoted(l, i)
	case '[', '{':
		return p.flow(l, i)
	}
	if c := p.src[i]; c == ':' || c == '?' || !plainStart(p.src[i:l.eol]) {
		panic(bail{})
	}
	// A flow scalar is held to letters, digits, spaces and a few marks
	// (names, numbers, addresses, paths): yaml.v3 reads the other
	// characters of a flow context its own way.
	end := i
	for end < l.eol {
		c := p.src[end]
		if c == ',' || c == ']' || c == '}' {
			break
		}
		if c == ':' {
			if end+1 < l.eol && flowSafe(p.src[end+1]) {
				end++
				continue
			}
			break // a key's colon
		}
		if c != ' ' && !flowSafe(c) {
			panic(bail{})
		}
		end++
	}
	v := strings.TrimRight(p.src[i:end], " ")
	if v == "" {
		panic(bail{})
	}
	return p.scalar(l, i, v, true), i + len(v)
}

// flowSafe says whether c may be part of a plain flow scalar.
func flowSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._/+=@~:", c) >= 0
}
