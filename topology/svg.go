package topology

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

const svgFont = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"

// SVGOptions tune [Graph.WriteSVGOptions].
type SVGOptions struct {
	// Width is the most the picture may be wide, in pixels: providers and
	// servers wrap into rows to fit (default 1400; 860 suits a README,
	// shown 1:1 there). A picture whose gutters cannot fit even one server
	// per row is wider.
	Width float64
}

// xmlEscape escapes text and attribute values.
func xmlEscape(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		c := s[i]
		clean = c >= 0x20 && c < 0x80 && c != '&' && c != '<' && c != '>' && c != '"' && c != '\''
	}
	if clean {
		return s // names and most labels: nothing to escape, nothing to copy
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&#39;")
		default:
			if r < 0x20 && r != '\t' && r != '\n' {
				b.WriteRune('\uFFFD')
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// put writes format with each %s replaced by the next of args. The
// drawing writes its boxes, labels and paths hundreds of thousands of
// times at scale, and fmt would box every argument.
func put(w io.StringWriter, format string, args ...string) {
	for _, a := range args {
		i := strings.Index(format, "%s")
		if i < 0 {
			panic("topology: put: more arguments than %s in " + format)
		}
		w.WriteString(format[:i])
		w.WriteString(a)
		format = format[i+2:]
	}
	w.WriteString(format)
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// round1 rounds to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// rnum formats a coordinate with at most one decimal, for stable output.
func rnum(v float64) string { return strconv.FormatFloat(round1(v), 'f', -1, 64) }

// rw is a width whose rounded ends are those of x and x+w.
func rw(x, w float64) string { return rnum(round1(x+w) - round1(x)) }

// WriteSVG draws the graph as a standalone SVG at most 1,400 px wide; see
// [Graph.WriteSVGOptions].
func (g *Graph) WriteSVG(w io.Writer) error { return g.WriteSVGOptions(w, SVGOptions{}) }

// WriteSVGOptions draws the graph as a standalone SVG: the Internet as a
// band, providers as boxes wrapped in rows, servers as columns with their
// guests inside, and HTTPS, HTTP routes, tunnels, forwards, replicas and
// uses as edges routed between the boxes, each labelled at its source; a
// legend at the bottom. Node groups carry data-node, edges data-kind,
// data-from, data-to, data-names (and data-edge, shared with their label).
// Output is deterministic.
func (g *Graph) WriteSVGOptions(w io.Writer, o SVGOptions) error {
	width := o.Width
	if width == 0 {
		width = defaultSVGWidth
	}
	if width < minSVGWidth || width > maxSVGWidth {
		return fmt.Errorf("SVG width %v: want %v to %v px", width, minSVGWidth, maxSVGWidth)
	}
	l := newLayout(g, width)
	legend, legendH := l.legend()
	l.height = l.legendTop + legendH + margin

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="%s">`+"\n",
		rnum(l.width), rnum(l.height), rnum(l.width), rnum(l.height), xmlEscape(svgFont))
	p(`<style>.sub{font-size:%spx;fill:#444}.addr{font-size:%spx;fill:#555;font-family:DejaVu Sans Mono, Menlo, monospace}.svc{font-size:%spx;fill:#1a1a1a}.host{font-size:%spx;fill:#1f5fa0}.nat{font-size:%spx;fill:#9a4d00;font-weight:bold}.lbl{font-size:%spx;fill:#1a1a1a}.tag{font-size:%spx;font-weight:bold;fill:#fff}</style>`+"\n",
		num(fontBody), num(fontAddr), num(fontBody), num(fontBody), num(fontBody), num(fontLabel), num(fontTag))
	p("<defs>\n")
	for _, k := range edgeKinds {
		p("%s\n", markerDef(k))
	}
	p("</defs>\n")
	p(`<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", rnum(l.width), rnum(l.height))
	nServers, nGuests, nSvc := 0, 0, 0
	for _, n := range g.Nodes {
		if n.Kind == "server" {
			nServers++
		} else {
			nGuests++
		}
		nSvc += len(n.Services)
	}
	p(`<text x="%s" y="26" font-size="18" font-weight="bold" fill="#1a1a1a">offedge topology</text>`+"\n", num(margin))
	sub := fmt.Sprintf("%d servers, %d guests, %d services, %d providers", nServers, nGuests, nSvc, len(l.provs))
	p(`<text x="%s" y="26" font-size="12" fill="#444">%s</text>`+"\n", rnum(margin+boldW("offedge topology", 18)+14), sub)

	// The Internet band.
	p(`<rect x="%s" y="%s" width="%s" height="%s" rx="8" fill="#e8f1fb" stroke="#1f5fa0" stroke-width="1.2"/>`+"\n",
		num(margin), num(l.bandTop), rnum(l.width-2*margin), rnum(l.bandBot-l.bandTop))
	p(`<text x="%s" y="%s" font-size="14" font-weight="bold" fill="#1f5fa0">Internet</text>`+"\n", num(margin+10), num(l.bandTop+16))
	p(`<text x="%s" y="%s" class="sub">public clients of the HTTPS sites; tunnels and forwards between providers cross it</text>`+"\n",
		rnum(margin+10+boldW("Internet", 14)+10), num(l.bandTop+16))

	// Providers, servers, guests.
	palette := []string{"#fbf3e6", "#eef6ee", "#f3eefa", "#eef3f8", "#f8eeee"}
	for i, pr := range l.provs {
		b := pr.box
		p(`<rect x="%s" y="%s" width="%s" height="%s" rx="10" fill="%s" stroke="#888" stroke-width="1"/>`+"\n",
			rnum(b.x), rnum(b.y), rnum(b.w), rnum(b.h), palette[i%len(palette)])
		for j, t := range pr.title {
			p(`<text x="%s" y="%s" font-size="%s" font-weight="bold" fill="#333">%s</text>`+"\n",
				rnum(b.x+provPad+2), rnum(b.y+18+float64(j)*17), num(fontProv), xmlEscape(t))
		}
	}
	for _, sn := range l.servers {
		drawBox(bw, sn, true)
		for _, gu := range sn.gn.Guests {
			drawBox(bw, l.nodes[gu.Name], false)
		}
	}

	// Edges, then their labels over them.
	for _, le := range l.edges {
		st := edgeStyle[le.e.Kind]
		dash := ""
		if st.dash != "" {
			dash = ` stroke-dasharray="` + st.dash + `"`
		}
		p(`<path data-edge="%d" data-kind="%s" data-from="%s" data-to="%s" data-names="%s" d="%s" fill="none" stroke="%s" stroke-width="%s"%s marker-start="url(#start-%s)" marker-end="url(#end-%s)"><title>%s</title></path>`+"\n",
			le.i, le.e.Kind, xmlEscape(le.e.From), xmlEscape(le.e.To), xmlEscape(edgeNames(le.e)), l.path(le),
			st.color, num(st.width), dash, le.e.Kind, le.e.Kind, xmlEscape(edgeTitle(le.e)))
	}
	for _, le := range l.edges {
		l.writeLabel(bw, le)
	}
	bw.WriteString(legend)
	p("</svg>\n")
	return bw.Flush()
}

// sideX is the x of a box's left (0) or right (1) side.
func sideX(n *lnode, side int) float64 {
	if side == 1 {
		return n.box.x + n.box.w
	}
	return n.box.x
}

// path is an edge's route: out of the source's side on its row, along the
// gutters' tracks and the channels' lanes, into the destination's side.
func (l *layout) path(le *ledge) string {
	var d strings.Builder
	v0 := le.vs[0]
	if le.src == nil {
		put(&d, "M%s %s", rnum(v0.x()), rnum(l.bandBot))
	} else {
		put(&d, "M%s %s H%s", rnum(sideX(le.src, v0.a.side)), rnum(v0.a.y), rnum(v0.x()))
	}
	for i, v := range le.vs {
		if v.b.kind == endPort {
			put(&d, " V%s H%s", rnum(v.b.y), rnum(sideX(v.b.node, v.b.side)))
			break
		}
		put(&d, " V%s H%s", rnum(v.b.h.y()), rnum(le.vs[i+1].x()))
	}
	return d.String()
}

// labelSVG names an edge at its source: in the source box, on the row
// where the edge leaves it, against the side it leaves by; an ingress edge
// in the band, beside where it leaves the band.
func (l *layout) writeLabel(b *bufio.Writer, le *ledge) {
	st := edgeStyle[le.e.Kind]
	put(b, `<g class="elabel" data-edge="%s">`, strconv.Itoa(le.i))
	if le.src == nil {
		x := le.band[0]
		y := l.bandBot - 8 - float64(le.bandRow)*15
		writeTag(b, le.e.Kind, x, y, st.color)
		put(b, `<text x="%s" y="%s" class="lbl">%s</text>`, rnum(x+tagW), rnum(y), xmlEscape(le.label))
		b.WriteString("</g>\n")
		return
	}
	n := le.src
	side := le.vs[0].a.side
	for i, line := range le.out.lines {
		y := n.box.y + le.out.dy + float64(i)*lineH
		tw := textW(line, fontLabel)
		if side == 1 {
			right := n.box.x + n.box.w - textPad
			if i == 0 {
				writeTag(b, le.e.Kind, right-tw-tagW, y, st.color)
			}
			put(b, `<text x="%s" y="%s" class="lbl" text-anchor="end">%s</text>`, rnum(right), rnum(y), xmlEscape(line))
			continue
		}
		x := n.box.x + textPad
		if i == 0 {
			writeTag(b, le.e.Kind, x, y, st.color)
		}
		put(b, `<text x="%s" y="%s" class="lbl">%s</text>`, rnum(x+tagW), rnum(y), xmlEscape(line))
	}
	b.WriteString("</g>\n")
}

// writeTag writes a kind's tag (a lock for tunnels) as a pill whose text
// baseline is y.
func writeTag(b io.StringWriter, kind string, x, y float64, color string) {
	st := edgeStyle[kind]
	put(b, `<rect x="%s" y="%s" width="%s" height="11" rx="2.5" fill="%s"/>`, rnum(x), rnum(y-8.5), num(tagW-4), color)
	tx := x + 3
	if kind == EdgeTunnel {
		b.WriteString(lockIcon(x+3, y-9, "#fff"))
		tx += 9
	}
	put(b, `<text x="%s" y="%s" class="tag">%s</text>`, rnum(tx), rnum(y), st.tag)
}

// lockIcon draws a 7x8 padlock with its top-left corner at x, y.
func lockIcon(x, y float64, color string) string {
	return fmt.Sprintf(`<path d="M%s %s v-1.8 a2.2 2.2 0 0 1 4.4 0 v1.8" fill="none" stroke="%s" stroke-width="1.1"/><rect x="%s" y="%s" width="6.4" height="4.6" rx="0.8" fill="%s"/>`,
		rnum(x+1), rnum(y+4.5), color, rnum(x), rnum(y+4.5), color)
}

func markerDef(kind string) string {
	st := edgeStyle[kind]
	c := st.color
	var shape string
	switch st.marker {
	case "open":
		shape = fmt.Sprintf(`<path d="M1,1 L9,5 L1,9" fill="none" stroke="%s" stroke-width="1.8"/>`, c)
	case "diamond":
		shape = fmt.Sprintf(`<path d="M1,5 L5,1.5 L9,5 L5,8.5 z" fill="#fff" stroke="%s" stroke-width="1.5"/>`, c)
	case "dot":
		shape = fmt.Sprintf(`<circle cx="6" cy="5" r="3.3" fill="%s"/>`, c)
	case "bar":
		shape = fmt.Sprintf(`<path d="M0,1 L8,5 L0,9 z" fill="%s"/><path d="M9.2,0.5 V9.5" stroke="%s" stroke-width="1.6"/>`, c, c)
	default:
		shape = fmt.Sprintf(`<path d="M0,1 L10,5 L0,9 z" fill="%s"/>`, c)
	}
	return fmt.Sprintf(`<marker id="end-%s" viewBox="0 0 10 10" refX="9.5" refY="5" markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto">%s</marker>`, kind, shape) +
		fmt.Sprintf(`<marker id="start-%s" viewBox="0 0 6 6" refX="3" refY="3" markerWidth="5" markerHeight="5" markerUnits="userSpaceOnUse"><circle cx="3" cy="3" r="2.6" fill="%s"/></marker>`, kind, c)
}

var edgeKinds = []string{EdgeIngress, EdgeHTTP, EdgeTunnel, EdgeTunnelExit, EdgeForward, EdgeReplica, EdgeUses}

// legendNotes explain the boxes, word by word so they wrap.
var legendNotes = strings.Fields("Boxes: a server per column (provider, hardware, location), its Proxmox guests inside " +
	"(ct = LXC container, vm = QEMU VM, with the Proxmox id). Addresses in grey with their network; " +
	"● services :port; HTTPS: hostnames the node serves; NAT: the private networks it masquerades to the internet. " +
	"Each edge starts at a dot on the row of its source that names it (its kind's tag first) and ends at its kind's marker.")

// legend draws the edge kinds, wrapped to the picture's width, and the
// notes; it returns the SVG and its height.
func (l *layout) legend() (string, float64) {
	var b strings.Builder
	top := l.legendTop
	fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="13" font-weight="bold" fill="#333">Legend</text>`+"\n", num(margin), rnum(top+12))
	x, y := margin, top+32
	for _, k := range edgeKinds {
		st := edgeStyle[k]
		itemW := 46 + tagW + textW(st.title, fontLabel) + 22
		if x > margin && x+itemW > l.width-margin {
			x, y = margin, y+20
		}
		dash := ""
		if st.dash != "" {
			dash = ` stroke-dasharray="` + st.dash + `"`
		}
		fmt.Fprintf(&b, `<path d="M%s %s H%s" stroke="%s" stroke-width="%s"%s fill="none" marker-start="url(#start-%s)" marker-end="url(#end-%s)"/>`+"\n",
			rnum(x+2), rnum(y-3.5), rnum(x+40), st.color, num(st.width), dash, k, k)
		writeTag(&b, k, x+46, y, st.color)
		fmt.Fprintf(&b, `<text x="%s" y="%s" class="lbl">%s</text>`+"\n", rnum(x+46+tagW), rnum(y), xmlEscape(st.title))
		x += itemW
	}
	notes := wrap("", legendNotes, " ", l.width-2*margin, fitW(fontBody))
	for i, n := range notes {
		fmt.Fprintf(&b, `<text x="%s" y="%s" class="sub">%s</text>`+"\n", num(margin), rnum(y+22+float64(i)*lineH), xmlEscape(n))
	}
	return b.String(), y + 22 + float64(len(notes))*lineH - top
}

// edgeNames are the names an edge carries (tunnels, forwards, replicas,
// uses, sites), without their ports, separated by spaces: the dashboard marks an
// edge lost by them.
func edgeNames(e *Edge) string {
	names := make([]string, 0, len(e.Labels))
	for _, l := range e.Labels {
		name, _, _ := strings.Cut(l, " ")
		names = append(names, name)
	}
	return strings.Join(names, " ")
}

func edgeTitle(e *Edge) string {
	return fmt.Sprintf("%s %s -> %s: %s", e.Kind, e.From, e.To, strings.Join(e.Labels, ", "))
}

func drawBox(w *bufio.Writer, n *lnode, server bool) {
	b := n.box
	fill, stroke, sw := "#ffffff", "#666", "1"
	if server {
		fill, stroke, sw = "#fdfdfd", "#333", "1.6"
	}
	put(w, `<g data-node="%s"><title>%s</title><rect x="%s" y="%s" width="%s" height="%s" rx="6" fill="%s" stroke="%s" stroke-width="%s"/>`+"\n",
		xmlEscape(n.gn.Name), xmlEscape(n.gn.Name), rnum(b.x), rnum(b.y), rw(b.x, b.w), rw(b.y, b.h), fill, stroke, sw)
	x := b.x + textPad
	capY := b.y + 15
	if server {
		put(w, `<rect x="%s" y="%s" width="%s" height="%s" rx="6" fill="#3c4a5c"/>`+"\n", rnum(b.x), rnum(b.y), rnum(b.w), num(headerH))
		put(w, `<text x="%s" y="%s" font-size="10" fill="#e8e8f0" text-anchor="end">server</text>`+"\n", rnum(b.x+b.w-8), rnum(b.y+16))
		capY = b.y + 17
	} else {
		badge := n.badge()
		bwid := boldW(badge, 10) + 7
		put(w, `<rect x="%s" y="%s" width="%s" height="14" rx="3" fill="#4a4a4a"/><text x="%s" y="%s" font-size="10" font-weight="bold" fill="#fff">%s</text>`+"\n",
			rnum(x), rnum(b.y+4), rnum(bwid), rnum(x+3.5), rnum(b.y+14.5), xmlEscape(badge))
		x += bwid + 5
		if n.capBelow {
			x, capY = b.x+textPad, b.y+gcapH+10
		}
	}
	color := "#1a1a1a"
	if server {
		color = "#ffffff"
	}
	put(w, `<text x="%s" y="%s" font-size="%s" font-weight="bold" fill="%s">%s</text>`+"\n", rnum(x), rnum(capY), num(n.capSize), color, xmlEscape(n.capText))
	y := b.y + n.capH() + 9
	if server {
		y = b.y + headerH + 12
	}
	for _, l := range n.lines {
		put(w, `<text x="%s" y="%s" class="%s">%s</text>`+"\n", rnum(b.x+textPad), rnum(y), l.class, xmlEscape(l.text))
		y += lineH
	}
	w.WriteString("</g>\n")
}
