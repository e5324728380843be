package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/offedge/offedge/internal/linediff"
	"github.com/offedge/offedge/inventory"
)

var update = flag.Bool("update", false, "rewrite docs/checks.md from the rule table")

// want is one expected finding: a rule on a line, and optionally its
// severity or that it is suppressed ("OE101:warning", "OE304:suppressed").
type want struct {
	line       int
	rule       string
	severity   string
	suppressed bool
}

func (w want) String() string {
	s := fmt.Sprintf("line %d: %s", w.line, w.rule)
	if w.severity != "" {
		s += ":" + w.severity
	}
	if w.suppressed {
		s += ":suppressed"
	}
	return s
}

var wantRE = regexp.MustCompile(`#\s*want\s+(.+)$`)

// wants reads the "# want ID[:modifier]..." comments of a fixture.
func wants(t *testing.T, path string) []want {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []want
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		m := wantRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		for _, tok := range strings.Fields(m[1]) {
			parts := strings.Split(tok, ":")
			w := want{line: line, rule: parts[0]}
			if !regexp.MustCompile(`^OE\d{3}$`).MatchString(w.rule) {
				t.Fatalf("%s:%d: bad want %q", path, line, tok)
			}
			for _, mod := range parts[1:] {
				switch mod {
				case "error", "warning":
					w.severity = mod
				case "suppressed":
					w.suppressed = true
				default:
					t.Fatalf("%s:%d: bad want modifier %q", path, line, mod)
				}
			}
			out = append(out, w)
		}
	}
	return out
}

func load(t testing.TB, dir, name string) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(os.DirFS(dir), name)
	if err != nil {
		t.Fatalf("loading %s:\n%v", name, err)
	}
	return m
}

// TestFixtures runs every rule over testdata/*.yaml and requires exactly the
// findings annotated with "# want" comments: same rule, same line, nothing
// more, nothing less.
func TestFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			ws := wants(t, path)
			own := strings.SplitN(strings.TrimSuffix(name, ".yaml"), "-", 2)[0]
			for _, w := range ws {
				if w.rule == own {
					covered[own] = true
				}
			}
			fs := Run(load(t, "testdata", name))
			var unexpected []Finding
			for _, f := range fs {
				if f.Pos.File != name {
					t.Errorf("finding at %s, want a position in %s", f.Pos, name)
				}
				i := slices.IndexFunc(ws, func(w want) bool {
					return w.line == f.Pos.Line && w.rule == f.Rule &&
						(w.severity == "" || w.severity == f.Severity.String()) &&
						w.suppressed == (f.Suppressed != "")
				})
				if i < 0 {
					unexpected = append(unexpected, f)
					continue
				}
				ws = slices.Delete(ws, i, i+1)
			}
			for _, f := range unexpected {
				t.Errorf("unexpected finding: %s (suppressed %q)", f, f.Suppressed)
			}
			for _, w := range ws {
				t.Errorf("missing finding: %s", w)
			}
		})
	}
	for _, r := range Rules() {
		if !covered[r.ID] {
			t.Errorf("rule %s has no fixture testdata/%s.yaml with a # want %s", r.ID, r.ID, r.ID)
		}
	}
}

// TestMessages pins the exact text of a few findings: the ones whose
// wording an operator acts on.
func TestMessages(t *testing.T) {
	tests := []struct {
		fixture, rule, object, message string
	}{
		{
			"OE101.yaml", "OE101", `tunnel "mongodb"`,
			`entrance accepts clear text on public address 192.0.2.1:27017 on internet: whoever passes allow [proxy] reaches service "mongodb" from the internet; put the entrance on a private network or loopback`,
		},
		{
			"OE203.yaml", "OE203", `server "v4-host"`,
			`uses service "api", but api on v6-host is reachable from outside lan only over IPv6 ([2001:db8::6]:5500) and v4-host has no IPv6 route to the internet (no public IPv6 address, no gateway with one); no tunnel or forward leads to it; give v4-host IPv6 or add a tunnel entrance it can reach`,
		},
		{
			"OE204.yaml", "OE204", `server "app"`,
			`uses service "mongodb", but every path to it is blocked: service "mongodb" allows [backup, db-host]; app (10.0.0.3) is not admitted`,
		},
		{
			"OE303.yaml", "OE303", `tunnel "mongodb-moji"`,
			`shares its secret /etc/offedge/psk/mongodb.psk with tunnel "mongodb-ovh": a leak at either end opens both, and neither can be rotated alone; give each tunnel its own file`,
		},
		{
			"OE503.yaml", "OE503", `replica "products"`,
			`max_lag 1h is not longer than the schedule 1h: the alert fires on every healthy cycle; allow a few missed runs`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			fs := Run(load(t, "testdata", tt.fixture))
			for _, f := range fs {
				if f.Rule == tt.rule && f.Object == tt.object {
					if f.Message != tt.message {
						t.Errorf("message:\ngot  %s\nwant %s", f.Message, tt.message)
					}
					return
				}
			}
			t.Fatalf("no %s finding for %s in %s; got %v", tt.rule, tt.object, tt.fixture, fs)
		})
	}
}

// TestUnknownAllowAgreesWithResolve: the index's map-lookup resolution of
// allow entries reports the same unknown names as inventory.ResolveAllow,
// for every list of the fixtures that includes no policy.
func TestUnknownAllowAgreesWithResolve(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	lists := 0
	for _, path := range files {
		m := load(t, "testdata", filepath.Base(path))
		ix := newIndex(m)
		var all [][]string
		for _, s := range m.Services {
			all = append(all, s.Allow)
		}
		for _, s := range m.Sites {
			all = append(all, s.Allow)
		}
		for _, tn := range m.Tunnels {
			all = append(all, tn.Allow)
		}
		for _, f := range m.Forwards {
			all = append(all, f.Allow)
		}
		for _, l := range all {
			if slices.ContainsFunc(l, func(e string) bool { return strings.HasPrefix(e, "policy:") }) {
				continue
			}
			lists++
			got := ix.unknownAllow(m, l)
			want := m.ResolveAllow(l, "internet").Unknown
			if !slices.Equal(got, want) {
				t.Errorf("%s: allow %v: unknown %v, ResolveAllow says %v", path, l, got, want)
			}
		}
	}
	if lists < 20 {
		t.Fatalf("compared only %d lists", lists)
	}
}

func TestRulesTable(t *testing.T) {
	rules := Rules()
	idRE := regexp.MustCompile(`^OE[1-9]\d{2}$`)
	for i, r := range rules {
		if !idRE.MatchString(r.ID) {
			t.Errorf("rule %q: ID must be OE and three digits", r.ID)
		}
		if i > 0 && rules[i-1].ID >= r.ID {
			t.Errorf("rules not sorted or duplicated at %s", r.ID)
		}
		if r.Title == "" || r.Why == "" || r.Example == "" || r.Since == "" {
			t.Errorf("%s: title, why, example and since are all required", r.ID)
		}
		if r.Title != strings.ToLower(r.Title[:1])+r.Title[1:] {
			t.Errorf("%s: title %q should start lowercase", r.ID, r.Title)
		}
		got, ok := Lookup(r.ID)
		if !ok || got.ID != r.ID {
			t.Errorf("Lookup(%s) = %v, %v", r.ID, got, ok)
		}
	}
	if _, ok := Lookup("OE000"); ok {
		t.Error("Lookup(OE000) found a rule")
	}
}

// TestSuppression: a suppressed finding stays, marked with the reason, and
// no longer counts as an error; the bare-name and kind "name" forms match.
func TestSuppression(t *testing.T) {
	fs := Run(load(t, "testdata", "suppressed.yaml"))
	e, w, s := Counts(fs)
	if e != 0 || w != 0 || s != 2 {
		t.Fatalf("counts: got %d errors, %d warnings, %d suppressed; want 0, 0, 2\n%v", e, w, s, fs)
	}
	for _, f := range fs {
		if f.Suppressed == "" || len(f.Related) == 0 || !strings.HasPrefix(f.Related[len(f.Related)-1].Message, "suppressed here") {
			t.Errorf("finding %s: want suppressed with a related position", f)
		}
	}
	for _, tt := range []struct {
		supp, obj string
		want      bool
	}{
		{`tunnel "a"`, `tunnel "a"`, true},
		{`tunnel a`, `tunnel "a"`, true},
		{`a`, `tunnel "a"`, true},
		{`a`, `site "a"`, true},
		{`site "a"`, `tunnel "a"`, false},
		{`tunnel "b"`, `tunnel "a"`, false},
		{`ab`, `tunnel "a"`, false},
	} {
		if got := objectMatches(tt.supp, tt.obj); got != tt.want {
			t.Errorf("objectMatches(%q, %q) = %t, want %t", tt.supp, tt.obj, got, tt.want)
		}
	}
}

func TestWriteText(t *testing.T) {
	fs := Run(load(t, "testdata", "OE303.yaml"))
	var b bytes.Buffer
	if err := WriteText(&b, fs); err != nil {
		t.Fatal(err)
	}
	want := `OE303.yaml:47:7: error OE303 tunnel "mongodb-moji": shares its secret /etc/offedge/psk/mongodb.psk with tunnel "mongodb-ovh": a leak at either end opens both, and neither can be rotated alone; give each tunnel its own file
	OE303.yaml:40:7: tunnel "mongodb-ovh" uses it
1 error, 0 warnings
`
	if b.String() != want {
		t.Errorf("text output:\ngot:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteText(&b, nil); err != nil || b.String() != "no findings\n" {
		t.Errorf("empty text output: got %q, %v", b.String(), err)
	}
}

func TestWriteJSON(t *testing.T) {
	fs := Run(load(t, "testdata", "suppressed.yaml"))
	fs = append(fs, Run(load(t, "testdata", "OE101.yaml"))...)
	var b bytes.Buffer
	if err := WriteJSON(&b, fs); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Findings []struct {
			Rule, Severity, Pos, Object, Message, Suppressed string
			Related                                          []struct{ Pos, Message string }
		}
		Errors, Warnings, Suppressed int
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Errors != 1 || got.Warnings != 1 || got.Suppressed != 2 || len(got.Findings) != 4 {
		t.Fatalf("counts: %+v", got)
	}
	posRE := regexp.MustCompile(`^[A-Za-z0-9_.-]+\.yaml:\d+:\d+$`)
	for _, f := range got.Findings {
		if !posRE.MatchString(f.Pos) {
			t.Errorf("pos %q is not file:line:col", f.Pos)
		}
		if f.Severity != "error" && f.Severity != "warning" {
			t.Errorf("severity %q is not a word", f.Severity)
		}
		for _, r := range f.Related {
			if !posRE.MatchString(r.Pos) {
				t.Errorf("related pos %q is not file:line:col", r.Pos)
			}
		}
	}
	var sev Severity
	if err := sev.UnmarshalText([]byte("warning")); err != nil || sev != Warning {
		t.Errorf("UnmarshalText(warning) = %v, %v", sev, err)
	}
	if err := sev.UnmarshalText([]byte("fatal")); err == nil {
		t.Error("UnmarshalText(fatal) succeeded")
	}
	b.Reset()
	if err := WriteJSON(&b, nil); err != nil || !strings.Contains(b.String(), `"findings": []`) {
		t.Errorf("empty JSON output: %s, %v", b.String(), err)
	}
}

func TestExplain(t *testing.T) {
	var b bytes.Buffer
	if err := Explain(&b, "oe303"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OE303: tunnel secret shared by two tunnels", "Severity: error", "mongodb-psk.txt", "    tunnels:", "rule: OE303"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, b.String())
		}
	}
	if err := Explain(&b, "OE999"); err == nil {
		t.Error("Explain(OE999) succeeded")
	}
}

// TestDocs keeps docs/checks.md generated from the rule table; run
// go test ./check -run TestDocs -update to rewrite it.
func TestDocs(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDocs(&b); err != nil {
		t.Fatal(err)
	}
	const path = "../docs/checks.md"
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run go test ./check -run TestDocs -update", err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Errorf("docs/checks.md is stale; run go test ./check -run TestDocs -update\n%s", linediff.Unified("docs/checks.md", "generated", string(got), b.String(), 2))
	}
	for _, r := range Rules() {
		if !strings.Contains(string(got), "\n## "+r.ID+"\n") {
			t.Errorf("docs/checks.md has no section for %s", r.ID)
		}
	}
}

// lineDiff shows the first lines where two texts differ.
// TestInventoryTestdata: Run on the loader's own test inventory (owned by
// the inventory package, so its findings are not pinned here) is
// deterministic and reports only known rules.
func TestInventoryTestdata(t *testing.T) {
	m, err := inventory.LoadPath("../inventory/testdata/small")
	if err != nil {
		t.Fatal(err)
	}
	a, b := Run(m), Run(m)
	if !slices.EqualFunc(a, b, func(x, y Finding) bool { return x.String() == y.String() }) {
		t.Errorf("two runs differ:\n%v\n%v", a, b)
	}
	for _, f := range a {
		if _, ok := Lookup(f.Rule); !ok {
			t.Errorf("finding of unknown rule: %s", f)
		}
	}
}

// TestNilModel: Run on nothing finds nothing and does not panic.
func TestNilModel(t *testing.T) {
	if fs := Run(nil); fs != nil {
		t.Errorf("Run(nil) = %v", fs)
	}
}
