package fastyaml_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/offedge/offedge/internal/fastyaml"
	"github.com/offedge/offedge/internal/gen"
)

// reference parses data with yaml.v3 into the root node of its one
// document, converted.
func reference(data []byte) (*fastyaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, fmt.Errorf("more than one document (%v)", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("document node %v with %d nodes", doc.Kind, len(doc.Content))
	}
	return fastyaml.FromYAML(doc.Content[0]), nil
}

// diff says where two trees differ, "" when they do not.
func diff(path string, got, want *fastyaml.Node) string {
	if got.Kind != want.Kind || got.Null != want.Null || got.Anchor != want.Anchor || got.Value != want.Value ||
		got.Line != want.Line || got.Column != want.Column || len(got.Content) != len(want.Content) {
		return fmt.Sprintf("%s: got kind %v null %v %q at %d:%d with %d children; yaml.v3 has kind %v null %v %q at %d:%d with %d children",
			path, got.Kind, got.Null, got.Value, got.Line, got.Column, len(got.Content),
			want.Kind, want.Null, want.Value, want.Line, want.Column, len(want.Content))
	}
	for i := range got.Content {
		if d := diff(fmt.Sprintf("%s/%d", path, i), got.Content[i], want.Content[i]); d != "" {
			return d
		}
	}
	return ""
}

// agree holds Parse to yaml.v3 on data, and returns whether Parse took it.
func agree(t testing.TB, data []byte) bool {
	t.Helper()
	got, ok := fastyaml.Parse(data)
	if !ok {
		return false
	}
	want, err := reference(data)
	if err != nil {
		t.Fatalf("Parse took input yaml.v3 refuses (%v):\n%s", err, data)
	}
	if d := diff("", got, want); d != "" {
		t.Fatalf("%s\ninput:\n%s", d, data)
	}
	return true
}

// taken are inputs inside the subset: Parse must take them.
var taken = []string{
	"a: 1\n",
	"a: 1",
	"a:\nb: 1\n",
	"a: 1\nb:\n  c: 2\n  d: [x, 'y', \"z\"]\ne: {k: v, l: [1, 2]}\n",
	"# head\na: 1 # line\n\n  # indented comment\nb: two words\n",
	"servers:\n  - name: off1\n    kind: proxmox\n    addresses:\n      - {network: free-lan, ip: 10.0.0.1}\n  - name: off2\n",
	"list:\n- a\n- b\nnext: 1\n",
	"a:\n  -\n  - \n  - x\n  - # nothing\n",
	"- a: 1\n  b:\n- c\n",
	"- a:\n    b: 1\n  c: 2\n",
	"- a:\n  - x\n  - y\n",
	"a: http://example.org/x?y=1#frag\n",
	"a: 'it''s'\nb: \"quote \\\" and \\\\ and \\n and \\t\"\n",
	"a: []\nb: {}\nc: [[1, 2], [3]]\n",
	"ips: [192.0.2.1, 2001:db8::1, '::1']\n",
	"a: ~\nb: null\nc: Null\nd: NULL\ne: ''\nf: \"\"\n",
	"a: true\nb: yes\nc: 1.5\nd: 0x10\ne: 2026-12-04\nf: -1\ng: 1e3\nh: .inf\n",
	"key   : spaced\n",
	"  indented: root\n  second: 2\n",
	"a: x#y\nb: x # y\n",
	"a: 'x' # c\nb: [1] # c\n",
	"- 1\n- [a, {b: c}]\n- ''\n",
	"a: -x\nb: :x\nc: ?x\n",
	"a: { k : v }\n",
}

// refused are inputs outside the subset (or invalid): Parse must refuse
// them, and yaml.v3 decides.
var refused = []string{
	"",
	"# only a comment\n",
	"scalar\n",
	"---\na: 1\n",
	"a: 1\n---\nb: 2\n",
	"%YAML 1.2\n---\na: 1\n",
	"a:\t1\n",
	"a: 1\r\n",
	"a: caf\xc3\xa9\n",
	"a: &x 1\nb: *x\n",
	"a: !!str 1\n",
	"a: |\n  text\n",
	"a: >-\n  folded\n",
	"a: first\n  second\n",
	"a: \"open\n  close\"\n",
	"a: [1,\n  2]\n",
	"\"quoted key\": 1\n",
	"? complex\n: key\n",
	"- - nested\n",
	"a: b: c\n",
	"a: - x\n",
	"a: [1, 2,]\n",
	"a: [1,, 2]\n",
	"a: [a: b]\n",
	"a: \"\\x41\"\n",
	"a: 1\n b: 2\n",
	"a:\n  b: 1\n c: 2\n",
	"- a\nb: 1\n",
	"a: 'x' y\n",
	"a: [1] y\n",
	"a: [x #c]\n",
	"a: @x\n",
	"a: <<\n",
	"a: [0?]\n",
	"a: [x*y, a!b, {k: v#x}]\n",
	"<<: {a: 1}\n",
	"a: \"\\/\"\n",
}

func TestTaken(t *testing.T) {
	for _, in := range taken {
		if !agree(t, []byte(in)) {
			t.Errorf("Parse refused input inside the subset:\n%s", in)
		}
	}
}

func TestRefused(t *testing.T) {
	for _, in := range refused {
		if agree(t, []byte(in)) {
			t.Errorf("Parse took input outside the subset:\n%s", in)
		}
	}
}

// TestGeneratedInventory holds that the generated inventory, the one the
// scale benchmarks load, is inside the subset and parsed as yaml.v3 parses
// it: a file that falls back is parsed correctly but slowly.
func TestGeneratedInventory(t *testing.T) {
	fsys, err := gen.FS(gen.Config{Servers: 50, Guests: 200, Services: 500})
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		files++
		if !agree(t, data) {
			t.Errorf("%s: the generated inventory falls back to yaml.v3", path)
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("%d files: %v", files, err)
	}
}

// TestExample holds Parse to yaml.v3 on the example inventory, the files
// people copy from: each is either taken and equal or refused.
func TestExample(t *testing.T) {
	paths, _ := filepath.Glob("../../examples/openfoodfacts/*.yaml")
	more, _ := filepath.Glob("../../examples/openfoodfacts/inventory.d/*.yaml")
	paths = append(paths, more...)
	if len(paths) == 0 {
		t.Fatal("no example inventory")
	}
	took := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if agree(t, data) {
			took++
		}
	}
	t.Logf("%d of %d example files parsed by the fast path", took, len(paths))
	if took == 0 {
		t.Error("no example file is inside the subset")
	}
}

// TestDeepNesting: nesting is bounded, so 16 MiB of brackets is refused
// (yaml.v3 then refuses it at its own depth limit) instead of recursing
// until the stack limit kills the process.
func TestDeepNesting(t *testing.T) {
	for _, in := range []string{
		"a: " + strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20) + "\n",
		"a: " + strings.Repeat("{b: ", 1<<18) + "1" + strings.Repeat("}", 1<<18) + "\n",
	} {
		if _, ok := fastyaml.Parse([]byte(in)); ok {
			t.Errorf("%d bytes nested %d deep: taken", len(in), len(in)/2)
		}
	}
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", i), i)
	}
	if _, ok := fastyaml.Parse([]byte(b.String())); ok {
		t.Error("mappings nested 100 deep: taken")
	}
	if !agree(t, []byte("a: "+strings.Repeat("[", 60)+strings.Repeat("]", 60)+"\n")) {
		t.Error("60 nested lists refused")
	}
}

func FuzzParse(f *testing.F) {
	for _, in := range append(append([]string(nil), taken...), refused...) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree(t, data)
	})
}
