// Package stunnel is offedge's interoperation with stunnel4: it reads and
// writes stunnel4 configuration files (Parse, Render): global
// options, then `[service]` sections of `key = value` options, with `;` and
// `#` comment lines. Parse keeps everything it does not know verbatim, in
// order and with line numbers, and reports what stunnel would silently
// accept but an operator should not (a service name used twice). Render
// writes a configuration stunnel4 reads back; `offedge export stunnel` uses
// it to emit configs interoperable with offedge tunnels.
package stunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"unicode/utf8"
)

// Option is one `key = value` line.
type Option struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Line  int    `json:"line,omitempty"`
}

// Section is one `[name]` service section.
type Section struct {
	Name string `json:"name"`
	Line int    `json:"line,omitempty"`
	// Comment, when set, is rendered as `;` lines above the section.
	Comment string   `json:"comment,omitempty"`
	Options []Option `json:"options"`
}

// Finding is something legal for stunnel but likely a mistake.
type Finding struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Message) }

// Config is a parsed stunnel configuration.
type Config struct {
	// Name is the file name used in findings and errors.
	Name string `json:"name"`
	// Comment, when set, is rendered as `;` lines at the top.
	Comment  string    `json:"comment,omitempty"`
	Global   []Option  `json:"global"`
	Sections []Section `json:"sections"`
	// Findings lists suspicious but accepted constructs, such as a section
	// name used twice (stunnel runs both services under one name).
	Findings []Finding `json:"findings,omitempty"`
}

// ParseError is a syntax error at a line.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// MaxLineLen bounds a configuration line (stunnel's own limit is 16 KiB).
const MaxLineLen = 16 << 10

// Parse reads a stunnel4 configuration. name is used in errors and
// findings. Syntax errors (a line that is neither a comment, a section
// header nor `key = value`) stop the parse with a *ParseError.
func Parse(name string, r io.Reader) (*Config, error) {
	cfg := &Config{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxLineLen+2)
	var cur *Section
	var comments []string    // comment lines since the last blank or option line
	seen := map[string]int{} // lower-cased section name → first line
	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := sc.Bytes()
		if lineNo == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		}
		if !utf8.Valid(raw) {
			return nil, &ParseError{name, lineNo, "line is not valid UTF-8"}
		}
		line := strings.TrimSpace(string(raw))
		if i := strings.IndexFunc(line, isControl); i >= 0 {
			return nil, &ParseError{name, lineNo, fmt.Sprintf("control character %q at column %d", line[i], i+1)}
		}
		switch {
		case line == "":
			comments = nil
			continue
		case line[0] == ';' || line[0] == '#':
			if len(comments) < 64 {
				comments = append(comments, strings.TrimSpace(line[1:]))
			}
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, &ParseError{name, lineNo, fmt.Sprintf("section header %q does not end with ']'", line)}
			}
			sname := strings.TrimSpace(line[1 : len(line)-1])
			if sname == "" {
				return nil, &ParseError{name, lineNo, "empty section name"}
			}
			key := strings.ToLower(sname)
			if first, dup := seen[key]; dup {
				cfg.Findings = append(cfg.Findings, Finding{File: name, Line: lineNo, Message: fmt.Sprintf(
					"section [%s] is defined again (first at line %d); stunnel runs both services under one name, so its logs cannot tell them apart: rename one",
					sname, first)})
			} else {
				seen[key] = lineNo
			}
			// The comment right above a header is the section's (Render
			// writes Section.Comment there), so a rendered config reads back
			// with its comments.
			cfg.Sections = append(cfg.Sections, Section{Name: sname, Line: lineNo, Comment: strings.Join(comments, "\n")})
			comments = nil
			cur = &cfg.Sections[len(cfg.Sections)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok {
				return nil, &ParseError{name, lineNo, fmt.Sprintf("expected 'key = value', '[section]' or a comment, got %q", truncate(line))}
			}
			if k == "" {
				return nil, &ParseError{name, lineNo, "option with an empty name"}
			}
			comments = nil
			opt := Option{Key: k, Value: v, Line: lineNo}
			if cur == nil {
				cfg.Global = append(cfg.Global, opt)
			} else {
				cur.Options = append(cur.Options, opt)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, &ParseError{name, lineNo + 1, fmt.Sprintf("line longer than %d bytes", MaxLineLen)}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

// isControl reports whether r is a control character other than tab.
func isControl(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// Get returns the value of the last option named key (stunnel option names
// are case-insensitive) and whether it was found.
func Get(opts []Option, key string) (string, bool) {
	for i := len(opts) - 1; i >= 0; i-- {
		if strings.EqualFold(opts[i].Key, key) {
			return opts[i].Value, true
		}
	}
	return "", false
}

// Get returns the section option named key (see [Get]).
func (s *Section) Get(key string) (string, bool) { return Get(s.Options, key) }

// Section returns the first section named name (case-insensitive), or nil.
func (c *Config) Section(name string) *Section {
	for i := range c.Sections {
		if strings.EqualFold(c.Sections[i].Name, name) {
			return &c.Sections[i]
		}
	}
	return nil
}

// Render writes cfg in stunnel4 syntax: header comment, global options,
// then each section. Line numbers and findings are ignored. Keys and values
// must not contain newlines, a key must not contain '=', and a section
// name must not be empty; Render returns an error otherwise rather than
// write a file stunnel would read differently.
func Render(cfg *Config) ([]byte, error) {
	var b bytes.Buffer
	comment := func(c string) {
		for _, l := range strings.Split(strings.TrimRight(c, "\n"), "\n") {
			b.WriteString("; " + l + "\n")
		}
	}
	opt := func(o Option) error {
		k, v := strings.TrimSpace(o.Key), strings.TrimSpace(o.Value)
		switch {
		case k == "" || strings.ContainsAny(k, "=\r\n") || k[0] == ';' || k[0] == '#' || k[0] == '[':
			return fmt.Errorf("stunnel: option name %q cannot be written", o.Key)
		case strings.ContainsAny(v, "\r\n"):
			return fmt.Errorf("stunnel: option %s: value contains a newline", k)
		}
		fmt.Fprintf(&b, "%s = %s\n", k, v)
		return nil
	}
	if cfg.Comment != "" {
		comment(cfg.Comment)
		b.WriteString("\n")
	}
	for _, o := range cfg.Global {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	for _, s := range cfg.Sections {
		name := strings.TrimSpace(s.Name)
		if name == "" || strings.ContainsAny(name, "\r\n") {
			return nil, fmt.Errorf("stunnel: section name %q cannot be written", s.Name)
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		if s.Comment != "" {
			comment(s.Comment)
		}
		fmt.Fprintf(&b, "[%s]\n", name)
		for _, o := range s.Options {
			if err := opt(o); err != nil {
				return nil, fmt.Errorf("section [%s]: %w", name, err)
			}
		}
	}
	return b.Bytes(), nil
}

// Address converts a stunnel `accept` or `connect` value to Go's host:port
// form: "27017" → ":27017", "10.3.0.101:27017" unchanged, ":::16000" →
// "[::]:16000", "2a06:c484:5::102:16001" → "[2a06:c484:5::102]:16001"
// (stunnel splits at the last colon).
func Address(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("empty address")
	}
	i := strings.LastIndexByte(v, ':')
	host, port := "", v
	if i >= 0 {
		host, port = v[:i], v[i+1:]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if port == "" {
		return "", fmt.Errorf("address %q: no port", v)
	}
	for _, r := range port {
		if r < '0' || r > '9' {
			if i < 0 {
				return "", fmt.Errorf("address %q: no port", v)
			}
			break // a service name such as "smtp"
		}
	}
	return net.JoinHostPort(host, port), nil
}
