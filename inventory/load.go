package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/offedge/offedge/internal/fastyaml"
)

// Limits that keep a hostile or mistaken inventory from exhausting memory.
const (
	maxFileSize  = 16 << 20
	maxFiles     = 10000
	maxErrors    = 200
	DefaultEntry = "inventory.yaml"
)

// LoadPath loads the inventory at p: a file, or a directory holding
// inventory.yaml. Positions in errors use p's directory as given.
func LoadPath(p string) (*Model, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading inventory: %w", err)
	}
	dir, name := filepath.Dir(p), filepath.Base(p)
	if st.IsDir() {
		dir, name = p, DefaultEntry
	}
	l := &loader{fsys: os.DirFS(dir), prefix: dir}
	return l.load(name)
}

// Load loads the inventory whose entry file is name inside fsys.
func Load(fsys fs.FS, name string) (*Model, error) {
	l := &loader{fsys: fsys}
	return l.load(name)
}

type loader struct {
	fsys   fs.FS
	prefix string // shown before file names in positions
	files  []*File
	names  []string
	loaded map[string]bool
	errs   Errors
}

func (l *loader) display(name string) string {
	if l.prefix == "" || l.prefix == "." {
		return name
	}
	return filepath.Join(l.prefix, filepath.FromSlash(name))
}

func (l *loader) load(entry string) (*Model, error) {
	l.loaded = map[string]bool{}
	l.loadFile(path.Clean(entry), nil, Pos{})
	if len(l.errs) > 0 {
		l.errs.sort()
		return nil, l.errs
	}
	m, errs := build(l.files, l.names)
	if len(errs) > 0 {
		errs.sort()
		if len(errs) > maxErrors {
			errs = errs[:maxErrors]
		}
		return nil, errs
	}
	return m, nil
}

func (l *loader) fail(pos Pos, object, hint, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: pos, Object: object, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// loadFile parses name and, depth first, the files it includes. stack holds
// the chain of including files, to report cycles.
func (l *loader) loadFile(name string, stack []string, from Pos) {
	for i, s := range stack {
		if s == name {
			chain := append(append([]string(nil), stack[i:]...), name)
			l.fail(from, "", "remove one of the includes", "include cycle: %s", strings.Join(chain, " -> "))
			return
		}
	}
	if l.loaded[name] {
		l.fail(from, "", "each file may be included once", "%s is included twice", name)
		return
	}
	if len(l.loaded) >= maxFiles {
		l.fail(from, "", "", "more than %d inventory files", maxFiles)
		return
	}
	l.loaded[name] = true
	data, err := readLimited(l.fsys, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			l.fail(from, "", "check the path; includes are relative to the including file", "cannot read %s: file does not exist", l.display(name))
		} else {
			l.fail(from, "", "", "cannot read %s: %v", l.display(name), err)
		}
		return
	}
	f, errs := parseFile(l.display(name), data)
	l.errs = append(l.errs, errs...)
	if f == nil {
		return
	}
	l.files = append(l.files, f)
	l.names = append(l.names, l.display(name))
	dir := path.Dir(name)
	for _, pattern := range f.Include {
		incPos := Pos{File: l.display(name)}
		full := path.Clean(path.Join(dir, pattern))
		if strings.HasPrefix(full, "../") || full == ".." || path.IsAbs(pattern) {
			l.fail(incPos, "", "keep included files inside the inventory directory", "include %q points outside the inventory directory", pattern)
			continue
		}
		matches, err := fs.Glob(l.fsys, full)
		if err != nil {
			l.fail(incPos, "", "", "include %q: bad pattern: %v", pattern, err)
			continue
		}
		if len(matches) == 0 && !strings.ContainsAny(pattern, "*?[") {
			l.fail(incPos, "", "check the path; includes are relative to the including file", "include %q: file does not exist", pattern)
			continue
		}
		for _, m := range matches {
			l.loadFile(m, append(stack, name), incPos)
		}
	}
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

// Parse decodes one inventory document. It never panics: malformed YAML,
// unknown fields and wrong types come back as positioned errors.
func Parse(file string, data []byte) (*File, error) {
	f, errs := parseFile(file, data)
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

func parseFile(file string, data []byte) (f *File, errs Errors) {
	defer func() {
		if r := recover(); r != nil {
			f = nil
			errs = Errors{{Pos: Pos{File: file}, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	// The fast parser takes the block-style YAML inventories are written
	// in and builds the tree yaml.v3's would convert to; anything else,
	// errors included, is yaml.v3's to parse and to explain.
	if root, ok := fastParse(data); ok {
		return decodeFile(file, root)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return &File{}, nil
		}
		return nil, Errors{yamlError(file, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		line := extra.Line
		return nil, Errors{{Pos: Pos{File: file, Line: line, Col: 1}, Msg: "more than one YAML document in a file", Hint: "split it into files and include them"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return &File{}, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return &File{}, nil
	}
	return decodeFile(file, fastyaml.FromYAML(root))
}

// fastParse is fastyaml.Parse; the tests switch it off to hold both
// parsers to the same result.
var fastParse = fastyaml.Parse

// decodeFile decodes a file's root node.
func decodeFile(file string, root *fastyaml.Node) (*File, Errors) {
	d := &decoder{file: file}
	out := new(File)
	d.decode(root, reflect.ValueOf(out).Elem())
	if len(d.errs) > 0 {
		return nil, Errors(d.errs)
	}
	return out, nil
}

// yamlError turns yaml.v3's "yaml: line N: msg" into a positioned Error.
// yaml.v3 names the line where the enclosing construct began (its context
// mark), not the offending character, and gives no column. Where the problem
// can be found from the text (a tab in indentation, yaml.v3's most common
// complaint), the error points at it exactly; otherwise it names the line
// yaml.v3 gave and no column rather than a made-up one.
func yamlError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			fmt.Sscanf(n, "%d", &line)
			msg = after
		}
	}
	pos := Pos{File: file, Line: line}
	if strings.Contains(msg, "tab character") {
		if l, c, ok := indentTab(data, line); ok {
			pos.Line, pos.Col = l, c
		}
	}
	return &Error{Pos: pos, Msg: "invalid YAML: " + msg, Hint: yamlHint(msg)}
}

// indentTab finds the first tab used as indentation on or after line from
// (1-based), returning its line and column.
func indentTab(data []byte, from int) (line, col int, ok bool) {
	for i, l := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		for j, r := range l {
			if r == '\t' {
				return i + 1, j + 1, true
			}
			if r != ' ' {
				break
			}
		}
	}
	return 0, 0, false
}

func yamlHint(msg string) string {
	if strings.Contains(msg, "tab character") {
		return "indent with spaces; YAML does not allow tabs in indentation"
	}
	return ""
}
