// Package sanoid reads sanoid.conf and syncoid invocations (an args file
// of one syncoid command line per line, as Open Food Facts' syncoid.service
// reads it, or a systemd unit running syncoid) and turns them into the
// inventory's datasets and replicas (`offedge import sanoid`,
// docs/storage.md#importing-sanoid-and-syncoid).
package sanoid

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds on what a file may hold: the files are small (Open Food Facts'
// largest sanoid.conf has 268 lines); anything much larger is not one.
const (
	MaxLine  = 64 << 10
	MaxLines = 100000
	MaxArgs  = 64
)

// Problem is something the import could not map or found inconsistent,
// at a file and line (Line 0: the file as a whole).
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Section is one [NAME] section of sanoid.conf: a dataset, or a template
// when NAME starts with template_.
type Section struct {
	Name string
	Line int
	// Keys in the order written, lower-case names; Lines says where.
	Keys  []string
	Vals  map[string]string
	Lines map[string]int
}

// Get returns the section's own value of key.
func (s *Section) Get(key string) (string, bool) {
	v, ok := s.Vals[key]
	return v, ok
}

// Conf is a parsed sanoid.conf.
type Conf struct {
	File     string
	Sections []*Section
	// Problems are lines that are not sanoid syntax and duplicated sections.
	Problems []Problem
}

// Template returns the template section named NAME (without template_).
func (c *Conf) Template(name string) *Section {
	for _, s := range c.Sections {
		if s.Name == "template_"+name {
			return s
		}
	}
	return nil
}

// Datasets lists the sections that are datasets (not templates), in order.
func (c *Conf) Datasets() []*Section {
	var out []*Section
	for _, s := range c.Sections {
		if !strings.HasPrefix(s.Name, "template_") {
			out = append(out, s)
		}
	}
	return out
}

// lines reads r line by line within the bounds, calling fn with each line
// and its number.
func lines(name string, r io.Reader, fn func(n int, line string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxLine)
	n := 0
	for sc.Scan() {
		n++
		if n > MaxLines {
			return fmt.Errorf("%s: more than %d lines", name, MaxLines)
		}
		fn(n, sc.Text())
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: a line longer than %d bytes", name, n+1, MaxLine)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// ParseConf reads a sanoid.conf: [section] headers, key = value lines,
// # comments and blank lines (sanoid's Config::IniFiles syntax). A line
// that is none of these, or a key outside any section, is a problem; so is
// a section written twice (sanoid keeps one of them: Open Food Facts' off1
// has [zfs-hdd/off-backups] twice and says so in a comment).
func ParseConf(name string, r io.Reader) (*Conf, error) {
	c := &Conf{File: name}
	var cur *Section
	seen := map[string]int{}
	err := lines(name, r, func(n int, raw string) {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			return
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 || strings.TrimSpace(line[end+1:]) != "" && !strings.HasPrefix(strings.TrimSpace(line[end+1:]), "#") {
				c.Problems = append(c.Problems, Problem{name, n, fmt.Sprintf("not a section header: %q", line)})
				cur = nil
				return
			}
			sec := strings.TrimSpace(line[1:end])
			if sec == "" {
				c.Problems = append(c.Problems, Problem{name, n, "empty section name"})
				cur = nil
				return
			}
			if first, dup := seen[sec]; dup {
				c.Problems = append(c.Problems, Problem{name, n, fmt.Sprintf("section [%s] again (first at line %d): sanoid reads one of them; merge them", sec, first)})
			} else {
				seen[sec] = n
			}
			cur = &Section{Name: sec, Line: n, Vals: map[string]string{}, Lines: map[string]int{}}
			c.Sections = append(c.Sections, cur)
			return
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			c.Problems = append(c.Problems, Problem{name, n, fmt.Sprintf("not key = value: %q", line)})
			return
		}
		if cur == nil {
			c.Problems = append(c.Problems, Problem{name, n, fmt.Sprintf("%s outside any [section]", k)})
			return
		}
		v = strings.TrimSpace(v)
		if _, dup := cur.Vals[k]; dup {
			c.Problems = append(c.Problems, Problem{name, n, fmt.Sprintf("%s set again in [%s] (first at line %d); the last one counts", k, cur.Name, cur.Lines[k])})
		} else {
			cur.Keys = append(cur.Keys, k)
		}
		cur.Vals[k] = v
		cur.Lines[k] = n
	})
	return c, err
}

// Yes reads a sanoid boolean: yes/no, 1/0, true/false. recursive also
// takes "zfs" (zfs snapshot -r), which is recursive too.
func Yes(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "yes", "1", "true", "on", "zfs":
		return true, true
	case "no", "0", "false", "off", "":
		return false, true
	}
	return false, false
}
