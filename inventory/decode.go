package inventory

import (
	"github.com/offedge/offedge/internal/suggest"

	"encoding"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder turns a YAML node tree into inventory values strictly: unknown
// fields, duplicate keys, wrong kinds of value, anchors and aliases are all
// errors that carry the file, line and column and the object they are about.
// It is written against yaml.Node (not yaml.v3's struct decoder) so that every
// value keeps its position and no message ever names a Go type.
type decoder struct {
	file string
	errs []*Error
	// structs caches what decodeStruct needs of each struct type: an
	// inventory holds tens of thousands of objects of a dozen types.
	structs map[reflect.Type]*structFields
}

func (d *decoder) errorf(n *yaml.Node, object, hint, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		Pos:    Pos{File: d.file, Line: n.Line, Col: n.Column},
		Object: object,
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

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// decode fills v (addressable) from n. object names the inventory object the
// value belongs to, for messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, object string) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.errorf(n, object, "write the value out; inventories are meant to be read top to bottom", "YAML anchors and aliases are not supported")
		return
	}
	t := v.Type()
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.Set(reflect.Zero(t))
		return
	}
	if t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), object)
		v.Set(p)
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, object, "", "want %s, got %s", describe(t), nodeKind(n))
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
			d.errorf(n, object, "want "+describe(t), "%s", msg)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, object)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, object, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if c.Kind == yaml.ScalarNode && c.Tag == "!!null" && t.Elem().Kind() == reflect.Pointer {
				d.errorf(c, fmt.Sprintf("%s[%d]", object, i), "remove the dash or fill the entry in", "empty list entry")
				continue
			}
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", object, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, object)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, object, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil || i < -1<<31 || i > 1<<31-1 {
			d.errorf(n, object, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			d.errorf(n, object, "", "want %s, got %s", describe(t), nodeKind(n))
			return
		}
		v.SetBool(n.Value == "true")
	default:
		d.errorf(n, object, "", "cannot decode into %s", describe(t))
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, object string) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.errorf(n, object, "", "want %s, got %s", describe(t), nodeKind(n))
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			d.errorf(kn, object, "", "map keys must be plain values, got %s", nodeKind(kn))
			continue
		}
		if line, dup := seen[kn.Value]; dup {
			d.errorf(kn, object, fmt.Sprintf("first set at line %d", line), "duplicate key %q", kn.Value)
			continue
		}
		seen[kn.Value] = kn.Line
		k := reflect.New(t.Key()).Elem()
		d.decode(kn, k, object)
		e := reflect.New(t.Elem()).Elem()
		d.decode(vn, e, fmt.Sprintf("%s[%s]", object, kn.Value))
		m.SetMapIndex(k, e)
	}
	v.Set(m)
}

// structFields maps the yaml names of a struct type to field indexes, and
// says where its Pos field is (nil when it has none).
type structFields struct {
	idx   map[string]int
	names []string
	pos   []int
	// short is the field a plain value fills when the struct is written
	// as one (`limits: [off]` for `limits: [{zone: off}]`): the field
	// tagged `yaml:"NAME,short"`; -1 when there is none.
	short int
}

// fieldsOf returns the yaml fields of a struct type, computed once per type.
func (d *decoder) fieldsOf(t reflect.Type) *structFields {
	if sf, ok := d.structs[t]; ok {
		return sf
	}
	sf := &structFields{idx: map[string]int{}, short: -1}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "short" {
			sf.short = i
		}
		sf.idx[name] = i
		sf.names = append(sf.names, name)
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

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, object string) {
	t := v.Type()
	sf := d.fieldsOf(t)
	if n.Kind == yaml.ScalarNode && sf.short >= 0 {
		if sf.pos != nil {
			v.FieldByIndex(sf.pos).Set(reflect.ValueOf(Pos{File: d.file, Line: n.Line, Col: n.Column}))
		}
		d.decode(n, v.Field(sf.short), object)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, object, "", "want %s, got %s", describe(t), nodeKind(n))
		return
	}
	if sf.pos != nil {
		v.FieldByIndex(sf.pos).Set(reflect.ValueOf(Pos{File: d.file, Line: n.Line, Col: n.Column}))
	}
	idx, names := sf.idx, sf.names
	// Name the object in messages as soon as its name is known.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
			if kind, _, ok := strings.Cut(object, "["); ok {
				if s, ok := singular[kind]; ok {
					object = fmt.Sprintf("%s %q", s, n.Content[i+1].Value)
				}
			}
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			d.errorf(kn, object, "", "field names must be plain words, got %s", nodeKind(kn))
			continue
		}
		key := kn.Value
		if line, dup := seen[key]; dup {
			d.errorf(kn, object, fmt.Sprintf("first set at line %d; keep one", line), "duplicate field %q", key)
			continue
		}
		seen[key] = kn.Line
		fi, ok := idx[key]
		if !ok {
			d.errorf(kn, object, suggestField(key, names), "unknown field %q", key)
			continue
		}
		sub := key
		if object != "" {
			sub = object + ": " + key
		}
		d.decode(vn, v.Field(fi), sub)
	}
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
