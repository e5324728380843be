package vars

import (
	"fmt"
	"net/http"
	"strings"
)

// Builtins are the request variables a template may name, beside the
// prefixed families arg_NAME, http_NAME and cookie_NAME, the captures
// $1..$9, and a scope's maps, set variables and external variables.
var Builtins = []string{
	"host", "uri", "document_uri", "request_uri", "args", "query_string", "is_args",
	"remote_addr", "remote_port", "binary_remote_addr", "scheme", "https", "server_name", "server_port",
	"request_method", "request", "server_protocol", "proxy_add_x_forwarded_for",
}

type kind uint8

const (
	kLit kind = iota
	kHost
	kURI
	kRequestURI
	kArgs
	kIsArgs
	kRemoteAddr
	kRemotePort
	kScheme
	kHTTPS
	kServerName
	kMethod
	kBinaryAddr
	kServerPort
	kRequest
	kProto
	kXFF
	kArg    // s: name
	kHeader // s: canonical header key
	kCookie // s: name
	kCapture
	kMap
	kSet
	kExtern
)

var builtinKinds = map[string]kind{
	"host": kHost, "uri": kURI, "document_uri": kURI, "request_uri": kRequestURI,
	"args": kArgs, "query_string": kArgs, "is_args": kIsArgs,
	"remote_addr": kRemoteAddr, "remote_port": kRemotePort, "scheme": kScheme, "https": kHTTPS,
	"server_name": kServerName, "request_method": kMethod, "binary_remote_addr": kBinaryAddr,
	"server_port": kServerPort, "request": kRequest, "server_protocol": kProto, "proxy_add_x_forwarded_for": kXFF,
}

type seg struct {
	k kind
	s string
	n int
}

// Template is a string with variables, parsed once ("https://$host$request_uri").
type Template struct {
	src  string
	segs []seg
	// MaxCapture is the highest $N the template names (0: none).
	MaxCapture int
	maps       []int // the maps it names (for cycle detection)
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// IsLiteral reports whether t names no variable.
func (t *Template) IsLiteral() bool {
	return len(t.segs) == 0 || len(t.segs) == 1 && t.segs[0].k == kLit
}

// Parse parses s as a template whose names scope resolves (nil: built-in
// variables and captures only). "$name" and "${name}" name a variable,
// "$1".."$9" a capture; a "$" followed by neither is an error, as in nginx.
func Parse(s string, scope *Scope) (*Template, error) {
	t := &Template{src: s}
	lit := strings.Builder{}
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, seg{k: kLit, s: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		i++
		if i >= len(s) {
			return nil, fmt.Errorf("%q: a \"$\" at the end names no variable", s)
		}
		if s[i] >= '1' && s[i] <= '9' {
			flush()
			n := int(s[i] - '0')
			t.segs = append(t.segs, seg{k: kCapture, n: n})
			t.MaxCapture = max(t.MaxCapture, n)
			i++
			continue
		}
		var name string
		if s[i] == '{' {
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return nil, fmt.Errorf("%q: \"${\" without \"}\"", s)
			}
			name = s[i+1 : i+j]
			i += j + 1
			if name == "" || !validName(name) {
				return nil, fmt.Errorf("%q: invalid variable name %q", s, name)
			}
			if len(name) == 1 && name[0] >= '1' && name[0] <= '9' {
				flush()
				n := int(name[0] - '0')
				t.segs = append(t.segs, seg{k: kCapture, n: n})
				t.MaxCapture = max(t.MaxCapture, n)
				continue
			}
		} else {
			j := i
			for j < len(s) && nameByte(s[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("%q: a \"$\" followed by %q names no variable (write ${name}, or avoid the \"$\")", s, s[i])
			}
			name = s[i:j]
			i = j
		}
		sg, err := resolve(name, scope)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		flush()
		if sg.k == kMap {
			t.maps = append(t.maps, sg.n)
		}
		t.segs = append(t.segs, sg)
	}
	flush()
	return t, nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// IsName reports whether n may name a variable (letters, digits, _).
func IsName(n string) bool { return validName(n) }

func validName(n string) bool {
	for i := 0; i < len(n); i++ {
		if !nameByte(n[i]) {
			return false
		}
	}
	return n != ""
}

func resolve(name string, scope *Scope) (seg, error) {
	if k, ok := builtinKinds[name]; ok {
		return seg{k: k}, nil
	}
	if scope != nil {
		if i, ok := scope.mapIdx[name]; ok {
			return seg{k: kMap, n: i, s: name}, nil
		}
		if i, ok := scope.setIdx[name]; ok {
			return seg{k: kSet, n: i, s: name}, nil
		}
		if i, ok := scope.externIdx[name]; ok {
			return seg{k: kExtern, n: i, s: name}, nil
		}
	}
	switch {
	case strings.HasPrefix(name, "arg_") && len(name) > 4:
		return seg{k: kArg, s: name[4:]}, nil
	case strings.HasPrefix(name, "http_") && len(name) > 5:
		return seg{k: kHeader, s: http.CanonicalHeaderKey(strings.ReplaceAll(name[5:], "_", "-"))}, nil
	case strings.HasPrefix(name, "cookie_") && len(name) > 7:
		return seg{k: kCookie, s: name[7:]}, nil
	}
	return seg{}, fmt.Errorf("unknown variable $%s (the edge knows %s, $arg_NAME, $http_NAME, $cookie_NAME, $1..$9, and the site's maps and set variables)", name, "$"+strings.Join(Builtins, ", $"))
}

// Append evaluates t on q and appends the value to dst.
func (t *Template) Append(dst []byte, q *Request) ([]byte, error) {
	for i := range t.segs {
		sg := &t.segs[i]
		var v string
		switch sg.k {
		case kLit:
			v = sg.s
		case kHost:
			v = q.Host
			if v == "" {
				v = q.ServerName
			}
		case kURI:
			v = q.URI
		case kRequestURI:
			v = q.requestURI()
		case kArgs:
			v = q.Args
		case kIsArgs:
			if q.Args != "" {
				v = "?"
			}
		case kRemoteAddr:
			v = q.clientAddr()
		case kRemotePort:
			v = q.clientPort()
		case kScheme:
			v = q.Scheme
		case kHTTPS:
			if q.Scheme == "https" {
				v = "on"
			}
		case kServerName:
			v = q.ServerName
		case kMethod:
			v = q.R.Method
		case kBinaryAddr:
			v = q.binaryAddr()
		case kServerPort:
			v = q.ServerPort
		case kRequest:
			v = q.R.Method + " " + q.requestURI() + " " + q.R.Proto
		case kProto:
			v = q.R.Proto
		case kXFF:
			v = q.clientAddr()
			if x := q.header("X-Forwarded-For"); x != "" {
				v = x + ", " + v
			}
		case kArg:
			v = q.arg(sg.s)
		case kHeader:
			v = q.header(sg.s)
		case kCookie:
			v = q.cookie(sg.s)
		case kCapture:
			v = q.Capture(sg.n)
		case kSet:
			if sg.n < len(q.sets) {
				v = q.sets[sg.n]
			}
		case kExtern:
			if sg.n < len(q.ext) {
				v = q.ext[sg.n]
			}
		case kMap:
			var err error
			v, err = q.mapValue(sg.n)
			if err != nil {
				return dst, err
			}
		}
		if len(dst)+len(v) > MaxValueBytes {
			return dst, ErrTooLong
		}
		dst = append(dst, v...)
	}
	return dst, nil
}

// Eval returns the value of t on q.
func (t *Template) Eval(q *Request) (string, error) {
	if len(t.segs) == 1 && t.segs[0].k == kLit {
		return t.segs[0].s, nil
	}
	if len(t.segs) == 0 {
		return "", nil
	}
	b, err := t.Append(make([]byte, 0, 64), q)
	return string(b), err
}
