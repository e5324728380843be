package vars

import (
	"sort"
	"strings"
)

// Locations chooses among a site's routes as nginx chooses a location
// (ngx_http_core_find_location): an exact route wins; else the longest
// matching prefix is remembered, and if it is a priority prefix ("^~") it
// wins; else the regex routes are tried in declaration order and the first
// that matches wins; else the remembered prefix. The edge routes with it
// and offedge check reasons with it, so both agree.
type Locations[T any] struct {
	exact    map[string]T
	prefixes []location[T] // longest first (Sort)
	regexes  []location[T] // declaration order
}

type location[T any] struct {
	path     string
	priority bool
	re       *Regex
	v        T
}

// AddExact adds an exact route ("location = PATH").
func (l *Locations[T]) AddExact(path string, v T) {
	if l.exact == nil {
		l.exact = map[string]T{}
	}
	l.exact[path] = v
}

// AddPrefix adds a prefix route, a priority one ("location ^~ PATH") when
// priority. Call Sort once all are added.
func (l *Locations[T]) AddPrefix(path string, priority bool, v T) {
	l.prefixes = append(l.prefixes, location[T]{path: path, priority: priority, v: v})
}

// AddRegex adds a regex route ("location ~ RE" / "~*"), after the others.
func (l *Locations[T]) AddRegex(re *Regex, v T) {
	l.regexes = append(l.regexes, location[T]{re: re, v: v})
}

// Sort orders the prefixes longest first (declaration order among equals).
func (l *Locations[T]) Sort() {
	sort.SliceStable(l.prefixes, func(i, j int) bool { return len(l.prefixes[i].path) > len(l.prefixes[j].path) })
}

// Match chooses the route of path; a regex route's match records its
// captures in q (nil: none recorded).
func (l *Locations[T]) Match(path string, q *Request) (T, bool) {
	if v, ok := l.exact[path]; ok {
		return v, true
	}
	longest := -1
	for i := range l.prefixes {
		if strings.HasPrefix(path, l.prefixes[i].path) {
			longest = i
			break
		}
	}
	if longest >= 0 && l.prefixes[longest].priority {
		return l.prefixes[longest].v, true
	}
	for i := range l.regexes {
		if l.regexes[i].re.Match(path, q) {
			return l.regexes[i].v, true
		}
	}
	if longest >= 0 {
		return l.prefixes[longest].v, true
	}
	var zero T
	return zero, false
}

// HasRegex reports whether a regex route was added.
func (l *Locations[T]) HasRegex() bool { return len(l.regexes) > 0 }
