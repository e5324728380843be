package topology

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/gen"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
)

// The drawing's properties, read back from the SVG itself: the geometry
// of what was written, not of the layout's own structures.

type sbox struct{ x0, y0, x1, y1 float64 }

func (b sbox) String() string { return fmt.Sprintf("[%.1f,%.1f %.1f,%.1f]", b.x0, b.y0, b.x1, b.y1) }

func (b sbox) overlaps(o sbox) bool {
	return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1
}

func (b sbox) contains(o sbox) bool {
	return o.x0 >= b.x0-0.01 && o.x1 <= b.x1+0.01 && o.y0 >= b.y0-0.01 && o.y1 <= b.y1+0.01
}

func (b sbox) dist(x, y float64) float64 {
	dx := max(b.x0-x, 0, x-b.x1)
	dy := max(b.y0-y, 0, y-b.y1)
	return math.Hypot(dx, dy)
}

type stext struct {
	text  string
	box   sbox
	label string // data-edge of the label group it is in
}

type srect struct {
	box  sbox
	node string // data-node of the group whose box it is
}

type spath struct {
	edge, kind, from, to string
	pts                  [][2]float64
	dash, marker         string
}

type drawing struct {
	width, height float64
	texts         []stext
	rects         []srect // every rect but the background
	nodes         map[string]sbox
	nodeCount     map[string]int
	paths         []spath
	labels        map[string]sbox // data-edge -> the label's extent
	markers       map[string]string
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func fnum(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("bad number %q: %v", s, err)
	}
	return v
}

var classFont = map[string]float64{"sub": fontBody, "addr": fontAddr, "svc": fontBody, "host": fontBody, "nat": fontBody, "lbl": fontLabel, "tag": fontTag}

// parseDrawing reads back an SVG written by WriteSVG.
func parseDrawing(t *testing.T, svg []byte) *drawing {
	t.Helper()
	d := &drawing{nodes: map[string]sbox{}, nodeCount: map[string]int{}, labels: map[string]sbox{}, markers: map[string]string{}}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var stack []xml.StartElement
	inside := func(name, a string) string {
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].Name.Local == name {
				if v := attr(stack[i], a); v != "" {
					return v
				}
			}
		}
		return ""
	}
	var cur *xml.StartElement
	var text strings.Builder
	markerID := ""
	var markerBody strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if markerID != "" {
				fmt.Fprintf(&markerBody, "<%s", tk.Name.Local)
				for _, a := range tk.Attr {
					if a.Name.Local != "fill" && a.Name.Local != "stroke" {
						fmt.Fprintf(&markerBody, " %s=%q", a.Name.Local, a.Value)
					}
				}
				markerBody.WriteString(">")
			}
			switch tk.Name.Local {
			case "svg":
				d.width, d.height = fnum(t, attr(tk, "width")), fnum(t, attr(tk, "height"))
			case "marker":
				markerID = attr(tk, "id")
				markerBody.Reset()
			case "g":
				if n := attr(tk, "data-node"); n != "" {
					d.nodeCount[n]++
				}
			case "rect":
				if len(stack) > 0 && stack[len(stack)-1].Name.Local == "marker" {
					break
				}
				x, y := fnum(t, attr(tk, "x")), fnum(t, attr(tk, "y"))
				w, h := fnum(t, attr(tk, "width")), fnum(t, attr(tk, "height"))
				b := sbox{x, y, x + w, y + h}
				if x == 0 && y == 0 && w == d.width && h == d.height {
					break // the background
				}
				r := srect{box: b}
				if n := inside("g", "data-node"); n != "" && stack[len(stack)-1].Name.Local == "g" {
					if _, seen := d.nodes[n]; !seen {
						d.nodes[n] = b
						r.node = n
					}
				}
				if e := inside("g", "data-edge"); e != "" {
					d.labels[e] = union(d.labels, e, b)
				}
				d.rects = append(d.rects, r)
			case "text":
				c := tk
				cur = &c
				text.Reset()
			case "path":
				if k := attr(tk, "data-kind"); k != "" {
					p := spath{edge: attr(tk, "data-edge"), kind: k, from: attr(tk, "data-from"), to: attr(tk, "data-to"),
						dash: attr(tk, "stroke-dasharray"), marker: attr(tk, "marker-end")}
					p.pts = parsePath(t, attr(tk, "d"))
					d.paths = append(d.paths, p)
				}
			}
			stack = append(stack, tk)
		case xml.CharData:
			if cur != nil {
				text.Write(tk)
			}
		case xml.EndElement:
			if markerID != "" && tk.Name.Local != "marker" {
				fmt.Fprintf(&markerBody, "</%s>", tk.Name.Local)
			}
			if tk.Name.Local == "marker" {
				d.markers[markerID] = markerBody.String()
				markerID = ""
			}
			if tk.Name.Local == "text" && cur != nil {
				s := text.String()
				b := textBox(t, *cur, s)
				st := stext{text: s, box: b, label: inside("g", "data-edge")}
				if st.label != "" {
					d.labels[st.label] = union(d.labels, st.label, b)
				}
				d.texts = append(d.texts, st)
				cur = nil
			}
			stack = stack[:len(stack)-1]
		}
	}
	return d
}

func union(m map[string]sbox, k string, b sbox) sbox {
	o, ok := m[k]
	if !ok {
		return b
	}
	return sbox{min(o.x0, b.x0), min(o.y0, b.y0), max(o.x1, b.x1), max(o.y1, b.y1)}
}

// textBox is a text's extent, with the renderer's width estimate (held to
// Chromium's DejaVu Sans by the calibration in textW's comment).
func textBox(t *testing.T, se xml.StartElement, s string) sbox {
	size := classFont[attr(se, "class")]
	if v := attr(se, "font-size"); v != "" {
		size = fnum(t, v)
	}
	if size == 0 {
		t.Fatalf("text %q has no font size", s)
	}
	w := textW(s, size)
	bold := attr(se, "font-weight") == "bold" || attr(se, "class") == "tag" || attr(se, "class") == "nat"
	if bold {
		w = boldW(s, size)
	}
	if attr(se, "class") == "addr" {
		w = monoW(s, size)
	}
	x, y := fnum(t, attr(se, "x")), fnum(t, attr(se, "y"))
	if attr(se, "text-anchor") == "end" {
		x -= w
	}
	return sbox{x, y - 0.78*size, x + w, y + 0.22*size}
}

// parsePath reads the M, H, V commands the renderer writes.
func parsePath(t *testing.T, d string) [][2]float64 {
	t.Helper()
	f := strings.Fields(d)
	var pts [][2]float64
	var x, y float64
	for i := 0; i < len(f); i++ {
		c, v := f[i][0], f[i][1:]
		switch c {
		case 'M':
			x, y = fnum(t, v), fnum(t, f[i+1])
			i++
		case 'H':
			x = fnum(t, v)
		case 'V':
			y = fnum(t, v)
		default:
			t.Fatalf("unexpected path command in %q", d)
		}
		pts = append(pts, [2]float64{x, y})
	}
	return pts
}

func exampleModel(t testing.TB) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func drawSVG(t *testing.T, g *Graph, width float64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := g.WriteSVGOptions(&b, SVGOptions{Width: width}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkDrawing holds a drawing to the properties every picture must have.
func checkDrawing(t *testing.T, m *inventory.Model, svg []byte, maxWidth, labelDist float64) *drawing {
	t.Helper()
	d, problems := drawingProblems(t, m, svg, maxWidth, labelDist)
	for _, p := range problems {
		t.Error(p)
	}
	return d
}

// drawingProblems lists what is wrong with a drawing.
func drawingProblems(t *testing.T, m *inventory.Model, svg []byte, maxWidth, labelDist float64) (*drawing, []string) {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	d := parseDrawing(t, svg)
	g := Build(m)
	if d.width > maxWidth {
		bad("picture is %v px wide, want at most %v", d.width, maxWidth)
	}
	// Every node drawn exactly once, and nothing else drawn as a node.
	for _, n := range m.Nodes {
		if c := d.nodeCount[n.Name]; c != 1 {
			bad("node %s drawn %d times, want once", n.Name, c)
		}
	}
	if len(d.nodeCount) != len(m.Nodes) {
		bad("%d nodes drawn, the inventory has %d", len(d.nodeCount), len(m.Nodes))
	}
	// No text overlaps another text or crosses a box's border.
	for i, a := range d.texts {
		for _, b := range d.texts[i+1:] {
			if a.box.overlaps(b.box) {
				bad("text %q %v overlaps text %q %v", a.text, a.box, b.text, b.box)
			}
		}
		for _, r := range d.rects {
			if r.box.overlaps(a.box) && !r.box.contains(a.box) {
				bad("text %q %v crosses the border of box %v %s", a.text, a.box, r.box, r.node)
			}
		}
	}
	// Edges: one path per edge, from their source's side (the band for
	// ingress) to their destination's, through no other box, each on its
	// own track, each labelled near its source end.
	hosts := map[string]string{}
	for _, n := range g.Nodes {
		hosts[n.Name] = n.Host
	}
	if len(d.paths) != len(g.Edges) {
		bad("%d edges drawn, the graph has %d", len(d.paths), len(g.Edges))
	}
	type seg struct {
		edge string
		a, b [2]float64
	}
	var segs []seg
	for _, p := range d.paths {
		name := fmt.Sprintf("%s %s->%s", p.kind, p.from, p.to)
		if len(p.pts) < 2 {
			bad("%s: path of %d points", name, len(p.pts))
			continue
		}
		start, end := p.pts[0], p.pts[len(p.pts)-1]
		onSide := func(n string, pt [2]float64) bool {
			b, ok := d.nodes[n]
			return ok && (math.Abs(pt[0]-b.x0) < 0.06 || math.Abs(pt[0]-b.x1) < 0.06) && pt[1] > b.y0 && pt[1] < b.y1
		}
		if p.from != Internet && !onSide(p.from, start) {
			bad("%s starts at %v, not on a side of %s %v", name, start, p.from, d.nodes[p.from])
		}
		if !onSide(p.to, end) {
			bad("%s ends at %v, not on a side of %s %v", name, end, p.to, d.nodes[p.to])
		}
		ends := map[string]bool{p.from: true, p.to: true, hosts[p.from]: true, hosts[p.to]: true}
		for i := 1; i < len(p.pts); i++ {
			a, b := p.pts[i-1], p.pts[i]
			s := sbox{min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])}
			for n, nb := range d.nodes {
				inner := sbox{nb.x0 + 0.5, nb.y0 + 0.5, nb.x1 - 0.5, nb.y1 - 0.5}
				if !ends[n] && s.x0 <= inner.x1 && inner.x0 <= s.x1 && s.y0 <= inner.y1 && inner.y0 <= s.y1 {
					bad("%s crosses box %s: segment %v-%v", name, n, a, b)
				}
			}
			if a != b {
				segs = append(segs, seg{p.edge, a, b})
			}
		}
		lb, ok := d.labels[p.edge]
		if !ok {
			bad("%s has no label", name)
			continue
		}
		if dist := lb.dist(start[0], start[1]); dist > labelDist {
			bad("%s: label %v is %.0f px from the edge's source end %v, want at most %v", name, lb, dist, start, labelDist)
		}
	}
	for i, a := range segs {
		for _, b := range segs[i+1:] {
			if a.edge == b.edge {
				continue
			}
			av, bv := a.a[0] == a.b[0], b.a[0] == b.b[0]
			if av != bv {
				continue
			}
			k := 0 // the constant coordinate
			if !av {
				k = 1
			}
			if math.Abs(a.a[k]-b.a[k]) > 0.5 {
				continue
			}
			lo := max(min(a.a[1-k], a.b[1-k]), min(b.a[1-k], b.b[1-k]))
			hi := min(max(a.a[1-k], a.b[1-k]), max(b.a[1-k], b.b[1-k]))
			if hi-lo > 1 {
				bad("edges %s and %s run on one line: %v-%v and %v-%v", a.edge, b.edge, a.a, a.b, b.a, b.b)
			}
		}
	}
	return d, problems
}

// TestSVGExample holds the example's picture to a 1,400 px window at 1:1
// and its compact form to the README's 860 px.
func TestSVGExample(t *testing.T) {
	m := exampleModel(t)
	g := Build(m)
	for _, w := range []float64{0, 860} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			want := w
			if w == 0 {
				want = 1400
			}
			d := checkDrawing(t, m, drawSVG(t, g, w), want, 40)
			if t.Failed() {
				return
			}
			// Readable: nothing smaller than the tags' 8 px, body text at 10 px or more.
			for _, tx := range d.texts {
				if h := tx.box.y1 - tx.box.y0; h < 8-0.01 {
					t.Errorf("text %q is %.1f px high", tx.text, h)
				}
			}
		})
	}
}

// TestSVGOthers holds the fixture's and a generated inventory's pictures
// to the same properties (but the labels of many ingress edges, stacked
// in the band, may lie further from where they leave it).
func TestSVGOthers(t *testing.T) {
	t.Run("fixture", func(t *testing.T) {
		m := loadFixture(t)
		checkDrawing(t, m, drawSVG(t, Build(m), 0), 1400, 40)
	})
	t.Run("generated", func(t *testing.T) {
		m := genModel(t, gen.Config{Servers: 12, Guests: 48, Services: 80})
		checkDrawing(t, m, drawSVG(t, Build(m), 0), 1400, 120)
	})
}

// TestSVGKindsTold checks tunnels, replicas and forwards are told from
// every other kind by their line and end marker, not their colour alone,
// and every label starts with its kind's tag.
func TestSVGKindsTold(t *testing.T) {
	m := exampleModel(t)
	svg := drawSVG(t, Build(m), 0)
	d := parseDrawing(t, svg)
	sig := map[string]string{}
	for _, p := range d.paths {
		id := strings.TrimSuffix(strings.TrimPrefix(p.marker, "url(#"), ")")
		s := p.dash + "|" + d.markers[id]
		if d.markers[id] == "" {
			t.Errorf("%s: end marker %q not defined", p.kind, p.marker)
		}
		if o, ok := sig[p.kind]; ok && o != s {
			t.Errorf("%s drawn two ways", p.kind)
		}
		sig[p.kind] = s
	}
	for _, k := range []string{EdgeTunnel, EdgeReplica, EdgeForward} {
		if sig[k] == "" {
			t.Fatalf("the example has no %s edge", k)
		}
		for o, s := range sig {
			if o != k && s == sig[k] {
				t.Errorf("%s and %s have the same line and marker %q", k, o, s)
			}
		}
	}
	tags := map[string]bool{}
	for _, tx := range d.texts {
		if tx.label != "" {
			tags[tx.text] = true
		}
	}
	for _, k := range edgeKinds {
		if !tags[edgeStyle[k].tag] {
			t.Errorf("no label carries the %s tag %q", k, edgeStyle[k].tag)
		}
	}
	if err := Build(m).WriteSVGOptions(io.Discard, SVGOptions{Width: 100}); err == nil {
		t.Error("a 100 px picture: no error")
	}
}

// TestSVGCheckerFails makes sure the checks above can fail: a text moved
// across its box border, a node drawn twice, a picture too wide, a label missing.
func TestSVGCheckerFails(t *testing.T) {
	m := exampleModel(t)
	svg := string(drawSVG(t, Build(m), 0))
	cases := map[string]string{
		"overflow": strings.Replace(svg, `class="svc">`, `class="svc">xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx `, 1),
		"twice":    strings.Replace(svg, `<g data-node="off2">`, `<g data-node="off1">`, 1),
		"wide":     strings.Replace(svg, `<svg xmlns="http://www.w3.org/2000/svg" width="`, `<svg xmlns="http://www.w3.org/2000/svg" width="1`, 1),
		"label":    strings.Replace(svg, `class="elabel" data-edge="3"`, `class="elabel" data-edge="x3"`, 1),
	}
	for name, bad := range cases {
		if _, problems := drawingProblems(t, m, []byte(bad), 1400, 40); len(problems) == 0 {
			t.Errorf("%s: the checks pass a broken picture", name)
		}
	}
}

// TestSVGTextWidthsInChromium draws the example in Chromium and holds the
// renderer's width estimate (which the layout and the overlap checks use)
// to every text's real width there: the estimate is never narrower.
func TestSVGTextWidthsInChromium(t *testing.T) {
	chromium := testutil.RequireBinary(t, "chromium")
	m := exampleModel(t)
	for _, w := range []float64{0, 860} {
		svg := drawSVG(t, Build(m), w)
		d := parseDrawing(t, svg)
		dir := t.TempDir()
		page := filepath.Join(dir, "page.html")
		html := `<!doctype html><html><head><meta charset="utf-8"></head><body>` + string(svg) + `<pre id="out"></pre><script>
document.getElementById("out").textContent = JSON.stringify([...document.querySelectorAll("svg text")].map(e => [e.textContent, e.getBBox().x, e.getBBox().width]));
</script></body></html>`
		if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
			"--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+page).Output()
		cancel()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		_, js, ok := strings.Cut(string(out), `<pre id="out">`)
		js, _, _ = strings.Cut(js, "</pre>")
		var real [][3]any
		if err := json.Unmarshal([]byte(html2text(js)), &real); !ok || err != nil {
			t.Fatalf("no measurements from chromium (%v): %.300s", err, out)
		}
		if len(real) != len(d.texts) {
			t.Fatalf("chromium measured %d texts, the SVG has %d", len(real), len(d.texts))
		}
		worst := 0.0
		for i, r := range real {
			x, rw := r[1].(float64), r[2].(float64)
			est := d.texts[i].box
			// Glyphs' side bearings reach a pixel past their advances.
			if x < est.x0-1.5 || x+rw > est.x1+1.5 {
				t.Errorf("width %v: text %q spans %.1f-%.1f in chromium, estimated %.1f-%.1f", w, r[0], x, x+rw, est.x0, est.x1)
			}
			worst = max(worst, rw/(est.x1-est.x0))
		}
		t.Logf("width %v: %d texts, widest real/estimate %.3f", w, len(real), worst)
	}
}

// html2text undoes the escaping --dump-dom applies to the <pre>'s text.
func html2text(s string) string {
	return strings.NewReplacer("&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#39;", "'").Replace(s)
}
