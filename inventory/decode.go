package inventory

import (
	"encoding"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/offedge/offedge/internal/fastyaml"
	"github.com/offedge/offedge/internal/suggest"
)

// decoder turns a YAML node tree into inventory values strictly: unknown
// fields, duplicate keys, wrong kinds of value, anchors and aliases are all
// errors that carry the file, line and column and the object they are about.
// It is written against fastyaml's node tree (not yaml.v3's struct decoder)
// so that every value keeps its position and no message ever names a Go type.
type decoder struct {
	file string
	errs []*Error
	// structs caches what decodeStruct needs of each struct type, and
	// text whether a type decodes itself from text: an inventory holds
	// tens of thousands of objects of a dozen types.
	structs map[reflect.Type]*structFields
	text    map[reflect.Type]bool
	// path is where the value being decoded sits (see step).
	path []step
}

// textual says whether *t is an encoding.TextUnmarshaler.
func (d *decoder) textual(t reflect.Type) bool {
	is, ok := d.text[t]
	if !ok {
		if d.text == nil {
			d.text = map[reflect.Type]bool{}
		}
		is = reflect.PointerTo(t).Implements(textUnmarshalerType)
		d.text[t] = is
	}
	return is
}

// step is one level of where a value sits, for messages: the decoder
// pushes one as it descends into a field, a list entry or a map entry, and
// renders the path (`server "off1": guests[2]`) only when an error names
// it: an inventory holds hundreds of thousands of values and almost never
// an error.
type step struct {
	kind stepKind
	key  string // stepField, stepKey; stepNamed: the whole name
	idx  int    // stepIndex
}

type stepKind uint8

const (
	stepField stepKind = iota // parent: key
	stepIndex                 // parent[idx]
	stepKey                   // parent[key], a map entry
	stepNamed                 // a named object, `server "off1"`, whatever its parent
)

func (d *decoder) push(s step) { d.path = append(d.path, s) }
func (d *decoder) pop()        { d.path = d.path[:len(d.path)-1] }

// where renders the path: from the last named object, if any.
func (d *decoder) where() string {
	var b strings.Builder
	start := 0
	for i := len(d.path) - 1; i >= 0; i-- {
		if d.path[i].kind == stepNamed {
			start = i
			break
		}
	}
	for _, s := range d.path[start:] {
		switch s.kind {
		case stepField:
			if b.Len() > 0 {
				b.WriteString(": ")
			}
			b.WriteString(s.key)
		case stepIndex:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
		case stepKey:
			b.WriteByte('[')
			b.WriteString(s.key)
			b.WriteByte(']')
		case stepNamed:
			b.WriteString(s.key)
		}
	}
	return b.String()
}

func (d *decoder) errorf(n *fastyaml.Node, hint, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		Pos:    Pos{File: d.file, Line: int(n.Line), Col: int(n.Column)},
		Object: d.where(),
		Msg:    fmt.Sprintf(format, args...),
		Hint:   hint,
	})
}

var (
	posType             = reflect.TypeOf(Pos{})
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	addrType            = reflect.TypeOf(netip.Addr{})
	prefixType          = reflect.TypeOf(netip.Prefix{})
	durationType        = reflect.TypeOf(Duration(0))
	sizeType            = reflect.TypeOf(Size(0))
	percentType         = reflect.TypeOf(Percent(0))
)

// singular names list entries in messages: `server "off1"`.
var singular = map[string]string{
	"providers": "provider", "networks": "network", "servers": "server",
	"guests": "guest", "services": "service", "upstreams": "upstream",
	"sites": "site", "tunnels": "tunnel", "forwards": "forward",
	"policies": "policy", "replicas": "replica", "pools": "pool", "backups": "backup", "suppress": "suppression",
	"locations": "location", "addresses": "address", "routes": "route",
	"listen": "listen", "exits": "exit", "servers_": "server",
}

// describe says in plain words what kind of value a type wants.
func describe(t reflect.Type) string {
	switch t {
	case addrType:
		return "an IP address (192.0.2.1 or 2001:db8::1)"
	case prefixType:
		return "a CIDR prefix (192.0.2.0/24)"
	case durationType:
		return "a duration (30s, 5m, 2h, 7d)"
	case sizeType:
		return "a size (512, 256k, 1m, 10g)"
	case percentType:
		return "a percentage (80 or 80%)"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Struct:
		return "a mapping of fields"
	case reflect.Slice:
		return "a list"
	case reflect.Map:
		return "a mapping"
	case reflect.String:
		return "text"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	}
	return t.Kind().String()
}

func nodeKind(n *fastyaml.Node) string {
	switch n.Kind {
	case fastyaml.Mapping:
		return "a mapping"
	case fastyaml.Sequence:
		return "a list"
	case fastyaml.Scalar:
		if n.Null {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case fastyaml.Alias:
		return "an alias"
	}
	return "a document"
}

// decode fills v (addressable) from n; d.path says where it sits.
func (d *decoder) decode(n *fastyaml.Node, v reflect.Value) {
	if n.Kind == fastyaml.Alias || n.Anchor {
		d.errorf(n, "write the value out; inventories are meant to be read top to bottom", "YAML anchors and aliases are not supported")
		return
	}
	t := v.Type()
	if n.Kind == fastyaml.Scalar && n.Null {
		v.Set(reflect.Zero(t))
		return
	}
	if t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem())
		v.Set(p)
		return
	}
	if d.textual(t) {
		if n.Kind != fastyaml.Scalar {
			d.errorf(n, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			msg := err.Error()
			switch t {
			case addrType:
				msg = fmt.Sprintf("invalid IP address %q", n.Value)
			case prefixType:
				msg = fmt.Sprintf("invalid CIDR prefix %q", n.Value)
			}
			d.errorf(n, "want "+describe(t), "%s", msg)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v)
	case reflect.Slice:
		if n.Kind != fastyaml.Sequence {
			d.errorf(n, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if c.Kind == fastyaml.Scalar && c.Null && t.Elem().Kind() == reflect.Pointer {
				d.push(step{kind: stepIndex, idx: i})
				d.errorf(c, "remove the dash or fill the entry in", "empty list entry")
				d.pop()
				continue
			}
			d.push(step{kind: stepIndex, idx: i})
			d.decode(c, s.Index(i))
			d.pop()
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v)
	case reflect.String:
		if n.Kind != fastyaml.Scalar {
			d.errorf(n, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Kind != fastyaml.Scalar || err != nil || i < -1<<31 || i > 1<<31-1 {
			d.errorf(n, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != fastyaml.Scalar || (n.Value != "true" && n.Value != "false") {
			d.errorf(n, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		v.SetBool(n.Value == "true")
	default:
		d.errorf(n, "", "cannot decode into %s", describe(t))
	}
}

func (d *decoder) decodeMap(n *fastyaml.Node, v reflect.Value) {
	t := v.Type()
	if n.Kind != fastyaml.Mapping {
		d.errorf(n, "", "want %s, got %s", describe(t), nodeKind(n))
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != fastyaml.Scalar {
			d.errorf(kn, "", "map keys must be plain values, got %s", nodeKind(kn))
			continue
		}
		if line, dup := seen[kn.Value]; dup {
			d.errorf(kn, fmt.Sprintf("first set at line %d", line), "duplicate key %q", kn.Value)
			continue
		}
		seen[kn.Value] = int(kn.Line)
		k := reflect.New(t.Key()).Elem()
		d.decode(kn, k)
		e := reflect.New(t.Elem()).Elem()
		d.push(step{kind: stepKey, key: kn.Value})
		d.decode(vn, e)
		d.pop()
		m.SetMapIndex(k, e)
	}
	v.Set(m)
}

// structFields maps the yaml names of a struct type to field indexes, and
// says where its Pos field is (nil when it has none).
type structFields struct {
	idx   map[string]fieldRef
	names []string
	pos   []int
	// short is the field a plain value fills when the struct is written
	// as one (`limits: [off]` for `limits: [{zone: off}]`): the field
	// tagged `yaml:"NAME,short"`; -1 when there is none.
	short int
}

// fieldRef is a yaml field: its struct field and its place in names.
type fieldRef struct{ index, ord int }

// maxFields bounds a struct's yaml fields (decodeStruct's set of seen
// fields is a 256-bit set).
const maxFields = 256

// fieldsOf returns the yaml fields of a struct type, computed once per type.
func (d *decoder) fieldsOf(t reflect.Type) *structFields {
	if sf, ok := d.structs[t]; ok {
		return sf
	}
	sf := &structFields{idx: map[string]fieldRef{}, short: -1}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "short" {
			sf.short = i
		}
		sf.idx[name] = fieldRef{index: i, ord: len(sf.names)}
		sf.names = append(sf.names, name)
	}
	if len(sf.names) > maxFields {
		panic(fmt.Sprintf("inventory: %s has more than %d yaml fields", t, maxFields))
	}
	if f, ok := t.FieldByName("Pos"); ok && f.Type == posType {
		sf.pos = f.Index
	}
	if d.structs == nil {
		d.structs = map[reflect.Type]*structFields{}
	}
	d.structs[t] = sf
	return sf
}

func (d *decoder) decodeStruct(n *fastyaml.Node, v reflect.Value) {
	t := v.Type()
	sf := d.fieldsOf(t)
	if n.Kind == fastyaml.Scalar && sf.short >= 0 {
		if sf.pos != nil {
			v.FieldByIndex(sf.pos).Set(reflect.ValueOf(Pos{File: d.file, Line: int(n.Line), Col: int(n.Column)}))
		}
		d.decode(n, v.Field(sf.short))
		return
	}
	if n.Kind != fastyaml.Mapping {
		d.errorf(n, "", "want %s, got %s", describe(t), nodeKind(n))
		return
	}
	if sf.pos != nil {
		v.FieldByIndex(sf.pos).Set(reflect.ValueOf(Pos{File: d.file, Line: int(n.Line), Col: int(n.Column)}))
	}
	idx, names := sf.idx, sf.names
	// Name the object in messages as soon as its name is known: an entry
	// of a top-level list (`servers[3]`) becomes `server "off1"`.
	named := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == fastyaml.Scalar {
			at := d.where()
			if named != "" {
				at = named
			}
			if kind, _, ok := strings.Cut(at, "["); ok {
				if s, ok := singular[kind]; ok {
					named = s + " " + strconv.Quote(n.Content[i+1].Value)
				}
			}
		}
	}
	if named != "" {
		d.push(step{kind: stepNamed, key: named})
		defer d.pop()
	}
	// seen holds the fields set so far, by their place in sf.names.
	var seen [4]uint64
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != fastyaml.Scalar {
			d.errorf(kn, "", "field names must be plain words, got %s", nodeKind(kn))
			continue
		}
		key := kn.Value
		f, ok := idx[key]
		if ok && seen[f.ord/64]&(1<<(f.ord%64)) == 0 {
			seen[f.ord/64] |= 1 << (f.ord % 64)
			d.push(step{kind: stepField, key: key})
			d.decode(vn, v.Field(f.index))
			d.pop()
			continue
		}
		if line, dup := firstKey(n.Content[:i], key); dup {
			d.errorf(kn, fmt.Sprintf("first set at line %d; keep one", line), "duplicate field %q", key)
			continue
		}
		d.errorf(kn, suggestField(key, names), "unknown field %q", key)
	}
}

// firstKey finds key among the keys of a mapping's content (key, value,
// key, value...) and returns its line.
func firstKey(content []*fastyaml.Node, key string) (int, bool) {
	for i := 0; i+1 < len(content); i += 2 {
		if k := content[i]; k.Kind == fastyaml.Scalar && k.Value == key {
			return int(k.Line), true
		}
	}
	return 0, false
}

// suggestField proposes the closest known field name, or lists them all.
func suggestField(key string, names []string) string {
	if best := suggest.Closest(key, names, 2); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return "known fields: " + strings.Join(sorted, ", ")
}
