package topology

import (
	"bufio"
	"container/heap"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// The SVG layout: the internet as a band on top; below it one column per
// server, grouped in a band per provider, each server a box with its guests
// stacked inside; between columns, gutters. Edges are routed orthogonally:
// out of a box's side into the gutter facing the other end, along the gutter
// on their own vertical track, and, when the two ends face different
// gutters, through a bus of horizontal lanes under every box. So no edge
// crosses a box other than the host box of a guest it starts or ends at.

const (
	svgFont     = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
	margin      = 20.0
	colW        = 300.0
	guestInset  = 12.0
	bandPad     = 8.0
	gutterPad   = 14.0
	trackSp     = 7.0
	laneSp      = 15.0
	lineH       = 12.5
	smallFont   = 10.0
	captionFont = 13.0
	labelFont   = 10.0
	internetTop = 50.0
	internetH   = 56.0
	portSp      = 7.0
)

// textW estimates the rendered width of s at a font size (no font metrics
// at hand; generous so text stays inside its box).
func textW(s string, size float64) float64 { return float64(len([]rune(s))) * size * 0.6 }

// xmlEscape escapes text and attribute values.
func xmlEscape(s string) string {
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

// f formats a coordinate with at most one decimal, for stable output.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func rnum(v float64) string { return strconv.FormatFloat(float64(int64(v*10+0.5))/10, 'f', -1, 64) }

// wrap lays items out in lines no wider than width, separated by sep.
func wrap(prefix string, items []string, sep string, width, size float64) []string {
	var lines []string
	cur := prefix
	for i, it := range items {
		piece := it
		if i < len(items)-1 {
			piece += sep
		}
		if cur != "" && cur != prefix && textW(cur+piece, size) > width {
			lines = append(lines, strings.TrimRight(cur, " "))
			cur = "  "
		}
		cur += piece
	}
	if strings.TrimSpace(cur) != "" {
		lines = append(lines, strings.TrimRight(cur, " "))
	}
	return lines
}

type textLine struct {
	text   string
	size   float64
	class  string
	indent float64
}

type lbox struct{ x, y, w, h float64 }

type lnode struct {
	gn    *GraphNode
	col   int
	box   lbox
	lines []textLine
	ports [2][]*lend // 0 left, 1 right
}

type lend struct {
	e     *ledge
	n     *lnode
	side  int
	y     float64
	other float64 // sort key: the other end's rough position
}

type ledge struct {
	e          *Edge
	i          int
	src, dst   *lend
	srcG, dstG int
	srcT, dstT int // track index in the gutter
	lane       int
	label      string
	lines      []string // the label in lines, for gutter-only edges
	lock       bool
	ingress    bool
}

func (le *ledge) vertical() bool { return le.srcG == le.dstG }

// svgLabel is the edge text drawn in the picture (HTTP, uses and tunnel-exit
// edges stay unlabelled: their ends' boxes name the service).
func svgLabel(e *Edge) string {
	switch e.Kind {
	case EdgeTunnel, EdgeForward:
		return strings.Join(e.Labels, ", ")
	case EdgeReplica:
		if len(e.Labels) == 1 {
			return e.Labels[0]
		}
		return fmt.Sprintf("%d replicas", len(e.Labels))
	}
	return ""
}

type laneItem struct {
	end  float64
	lane int
}
type laneHeap []laneItem

func (h laneHeap) Len() int { return len(h) }
func (h laneHeap) Less(i, j int) bool {
	if h[i].end != h[j].end {
		return h[i].end < h[j].end
	}
	return h[i].lane < h[j].lane
}
func (h laneHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *laneHeap) Push(x any)   { *h = append(*h, x.(laneItem)) }
func (h *laneHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// WriteSVG draws the graph as a standalone SVG: providers as bands, servers
// as boxes with their guests inside, HTTP routes, tunnels, forwards,
// replicas and uses as routed edges, and a legend. Output is deterministic.
func (g *Graph) WriteSVG(w io.Writer) error {
	// Columns: the servers, provider by provider.
	var cols []*lnode
	nodes := map[string]*lnode{}
	type band struct {
		grp        *Group
		first, end int
	}
	var bands []band
	for _, grp := range g.Groups {
		b := band{grp: grp, first: len(cols)}
		for _, s := range grp.Servers {
			ln := &lnode{gn: s, col: len(cols)}
			cols = append(cols, ln)
			nodes[s.Name] = ln
			for _, gu := range s.Guests {
				nodes[gu.Name] = &lnode{gn: gu, col: ln.col}
			}
		}
		b.end = len(cols)
		bands = append(bands, b)
	}
	C := len(cols)

	// Edge ends: sides and gutters.
	var edges []*ledge
	gutterItems := make([][]*ledge, C+1)
	for i, e := range g.Edges {
		dn := nodes[e.To]
		if dn == nil {
			continue
		}
		le := &ledge{e: e, i: i, label: svgLabel(e), lock: e.Kind == EdgeTunnel}
		if le.label != "" {
			le.lines = []string{le.label}
			if e.Kind == EdgeTunnel || e.Kind == EdgeForward {
				le.lines = e.Labels
			}
		}
		if e.From == Internet {
			le.ingress = true
			le.srcG, le.dstG = dn.col, dn.col
			le.dst = &lend{e: le, n: dn, side: 0, other: -1}
		} else {
			sn := nodes[e.From]
			if sn == nil {
				continue
			}
			switch {
			case sn.col < dn.col:
				le.srcG, le.dstG = sn.col+1, dn.col
				le.src = &lend{e: le, n: sn, side: 1}
				le.dst = &lend{e: le, n: dn, side: 0}
			case sn.col > dn.col:
				le.srcG, le.dstG = sn.col, dn.col+1
				le.src = &lend{e: le, n: sn, side: 0}
				le.dst = &lend{e: le, n: dn, side: 1}
			default:
				le.srcG, le.dstG = sn.col+1, sn.col+1
				le.src = &lend{e: le, n: sn, side: 1}
				le.dst = &lend{e: le, n: dn, side: 1}
			}
			sn.ports[le.src.side] = append(sn.ports[le.src.side], le.src)
		}
		dn.ports[le.dst.side] = append(dn.ports[le.dst.side], le.dst)
		edges = append(edges, le)
	}
	// Tracks: per gutter, unlabelled and bus edges first, labelled
	// gutter-only edges last (their labels sit right of every track).
	for _, le := range edges {
		gutterItems[le.srcG] = append(gutterItems[le.srcG], le)
		if !le.vertical() {
			gutterItems[le.dstG] = append(gutterItems[le.dstG], le)
		}
	}
	labelZone := make([]float64, C+1)
	for gi, items := range gutterItems {
		slices.SortStableFunc(items, func(a, b *ledge) int {
			ka, kb := 0, 0
			if a.vertical() && a.label != "" {
				ka = 1
			}
			if b.vertical() && b.label != "" {
				kb = 1
			}
			return ka - kb
		})
		for t, le := range items {
			if le.srcG == gi {
				le.srcT = t
			}
			if le.dstG == gi {
				le.dstT = t
			}
			if le.vertical() && le.label != "" {
				for _, l := range le.lines {
					labelZone[gi] = max(labelZone[gi], textW(l, labelFont)+lockW(le)+10)
				}
			}
		}
	}
	gutterW := make([]float64, C+1)
	gutterX := make([]float64, C+1)
	colX := make([]float64, C)
	x := margin
	for gi := 0; gi <= C; gi++ {
		gutterX[gi] = x
		gutterW[gi] = 2*gutterPad + float64(max(1, len(gutterItems[gi])))*trackSp + labelZone[gi]
		x += gutterW[gi]
		if gi < C {
			colX[gi] = x
			x += colW
		}
	}
	width := x + margin
	trackX := func(gi, t int) float64 { return gutterX[gi] + gutterPad + float64(t)*trackSp + trackSp/2 }

	// Box contents and heights.
	colTop := internetTop + internetH + 64
	bottom := colTop
	for ci, sn := range cols {
		sn.box = lbox{x: colX[ci], y: colTop, w: colW}
		sn.lines = nodeLines(sn.gn, colW-16)
		y := colTop + boxTextH(sn) + 6
		y = max(y, colTop+portsH(sn))
		for _, gu := range sn.gn.Guests {
			gn := nodes[gu.Name]
			gn.lines = nodeLines(gu, colW-2*guestInset-16)
			h := max(boxTextH(gn)+4, portsH(gn))
			gn.box = lbox{x: colX[ci] + guestInset, y: y, w: colW - 2*guestInset, h: h}
			y += h + 8
		}
		sn.box.h = y - colTop + 4
		bottom = max(bottom, y+4)
	}
	bandBottom := bottom + bandPad + 10

	// Ports: spread along each side, ordered by the other end's height.
	allNodes := make([]*lnode, 0, len(nodes))
	for _, sn := range cols {
		allNodes = append(allNodes, sn)
		for _, gu := range sn.gn.Guests {
			allNodes = append(allNodes, nodes[gu.Name])
		}
	}
	for _, ln := range allNodes {
		for side := 0; side < 2; side++ {
			for _, p := range ln.ports[side] {
				o := p.e.src
				if o == p {
					o = p.e.dst
				}
				if o == nil {
					p.other = -1
				} else {
					p.other = o.n.box.y
					if !p.e.vertical() {
						p.other = 1e9 + float64(p.e.i) // to the bus, below
					}
				}
			}
			ports := ln.ports[side]
			slices.SortStableFunc(ports, func(a, b *lend) int {
				switch {
				case a.other < b.other:
					return -1
				case a.other > b.other:
					return 1
				}
				return 0
			})
			top := ln.box.y + 9
			avail := ln.box.h - 14
			sp := portSp
			if len(ports) > 1 {
				sp = min(avail/float64(len(ports)-1), 11)
			}
			for i, p := range ports {
				p.y = top + float64(i)*sp
			}
		}
	}

	// Bus lanes, first fit by left end.
	var bus []*ledge
	for _, le := range edges {
		if !le.vertical() {
			bus = append(bus, le)
		}
	}
	span := func(le *ledge) (float64, float64) {
		a, b := trackX(le.srcG, le.srcT), trackX(le.dstG, le.dstT)
		if a > b {
			a, b = b, a
		}
		if le.label != "" {
			b = max(b, a+8+textW(le.label, labelFont)+lockW(le))
		}
		return a, b + 8
	}
	slices.SortStableFunc(bus, func(a, b *ledge) int {
		a0, _ := span(a)
		b0, _ := span(b)
		switch {
		case a0 < b0:
			return -1
		case a0 > b0:
			return 1
		}
		return a.i - b.i
	})
	lanes := 0
	var free laneHeap
	for _, le := range bus {
		a, b := span(le)
		if len(free) > 0 && free[0].end < a {
			it := heap.Pop(&free).(laneItem)
			le.lane = it.lane
		} else {
			le.lane = lanes
			lanes++
		}
		heap.Push(&free, laneItem{end: b, lane: le.lane})
	}
	busTop := bandBottom + 18
	laneY := func(l int) float64 { return busTop + float64(l)*laneSp }
	legendTop := busTop + float64(lanes)*laneSp + 16
	legendRows := 1.0
	for lx, k := margin, 0; k < len(edgeKinds); k++ {
		itemW := legendItemW(edgeKinds[k])
		if lx > margin && lx+itemW > width-margin {
			lx, legendRows = margin, legendRows+1
		}
		lx += itemW
	}
	noteLines := float64(len(wrap("", legendNotes, " ", width-2*margin, smallFont)))
	height := legendTop + 38 + (legendRows-1)*22 + 28 + noteLines*lineH + margin

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="%s">`+"\n",
		rnum(width), rnum(height), rnum(width), rnum(height), xmlEscape(svgFont))
	p(`<style>.cap{font-weight:bold;font-size:%spx;fill:#1a1a1a}.sub{font-size:%spx;fill:#555}.addr{font-size:%spx;fill:#666;font-family:DejaVu Sans Mono, Menlo, monospace}.svc{font-size:%spx;fill:#222}.host{font-size:%spx;fill:#1f5fa0}.nat{font-size:%spx;fill:#b35900;font-weight:bold}.lbl{font-size:%spx}</style>`+"\n",
		num(captionFont), num(smallFont), num(smallFont-0.5), num(smallFont), num(smallFont), num(smallFont), num(labelFont))
	p("<defs>\n")
	for _, k := range edgeKinds {
		st := edgeStyle[k]
		p(`<marker id="arrow-%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" fill="%s"/></marker>`+"\n", k, st.color)
	}
	p("</defs>\n")
	p(`<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", rnum(width), rnum(height))
	nServers, nGuests, nSvc := 0, 0, 0
	for _, n := range g.Nodes {
		if n.Kind == "server" {
			nServers++
		} else {
			nGuests++
		}
		nSvc += len(n.Services)
	}
	p(`<text x="%s" y="32" font-size="18" font-weight="bold" fill="#1a1a1a">offedge topology</text>`+"\n", num(margin))
	p(`<text x="%s" y="32" font-size="12" fill="#555">%d servers, %d guests, %d services, %d providers</text>`+"\n",
		rnum(margin+textW("offedge topology", 18)*1.12+12), nServers, nGuests, nSvc, len(g.Groups))

	// Internet band.
	p(`<rect x="%s" y="%s" width="%s" height="%s" rx="10" fill="#e8f1fb" stroke="#1f77b4" stroke-width="1.2"/>`+"\n",
		num(margin), num(internetTop), rnum(width-2*margin), num(internetH))
	p(`<text x="%s" y="%s" font-size="16" font-weight="bold" fill="#1f5fa0">Internet</text>`+"\n", num(margin+14), num(internetTop+24))
	p(`<text x="%s" y="%s" class="sub">public clients of the HTTPS sites; tunnels and forwards between providers cross it</text>`+"\n", num(margin+14), num(internetTop+42))

	// Provider bands and boxes.
	palette := []string{"#fbf3e6", "#eef6ee", "#f3eefa", "#eef3f8", "#f8eeee"}
	for bi, b := range bands {
		if b.first == b.end {
			continue
		}
		x0 := colX[b.first] - bandPad
		x1 := colX[b.end-1] + colW + bandPad
		top := colTop - 44
		p(`<rect x="%s" y="%s" width="%s" height="%s" rx="12" fill="%s" stroke="#999" stroke-width="1"/>`+"\n",
			rnum(x0), num(top), rnum(x1-x0), rnum(bandBottom-top), palette[bi%len(palette)])
		p(`<text x="%s" y="%s" font-size="15" font-weight="bold" fill="#333">%s</text>`+"\n", rnum(x0+12), num(top+24), xmlEscape(b.grp.Title))
	}
	for _, sn := range cols {
		drawBox(bw, sn, true)
		for _, gu := range sn.gn.Guests {
			drawBox(bw, nodes[gu.Name], false)
		}
	}

	// Edges.
	type placed struct{ y0, y1 float64 }
	gutterLabels := make([][]placed, C+1)
	var labels []string
	for _, le := range edges {
		st := edgeStyle[le.e.Kind]
		var d strings.Builder
		dx := le.dst.n.box.x
		if le.dst.side == 1 {
			dx += le.dst.n.box.w
		}
		if le.ingress {
			tx := trackX(le.dstG, le.dstT)
			fmt.Fprintf(&d, "M%s %s V%s H%s", rnum(tx), num(internetTop+internetH), rnum(le.dst.y), rnum(dx))
		} else {
			sx := le.src.n.box.x
			if le.src.side == 1 {
				sx += le.src.n.box.w
			}
			t1 := trackX(le.srcG, le.srcT)
			if le.vertical() {
				fmt.Fprintf(&d, "M%s %s H%s V%s H%s", rnum(sx), rnum(le.src.y), rnum(t1), rnum(le.dst.y), rnum(dx))
			} else {
				t2 := trackX(le.dstG, le.dstT)
				ly := laneY(le.lane)
				fmt.Fprintf(&d, "M%s %s H%s V%s H%s V%s H%s", rnum(sx), rnum(le.src.y), rnum(t1), rnum(ly), rnum(t2), rnum(le.dst.y), rnum(dx))
			}
		}
		dash := ""
		if st.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		p(`<path data-kind="%s" data-from="%s" data-to="%s" data-names="%s" d="%s" fill="none" stroke="%s" stroke-width="%s"%s marker-end="url(#arrow-%s)"><title>%s</title></path>`+"\n",
			le.e.Kind, xmlEscape(le.e.From), xmlEscape(le.e.To), xmlEscape(edgeNames(le.e)), d.String(), st.color, num(st.width), dash, le.e.Kind, xmlEscape(edgeTitle(le.e)))
		if le.label == "" {
			continue
		}
		var lx, ly float64
		switch {
		case le.vertical():
			gi := le.srcG
			tx := trackX(gi, le.srcT)
			lx = gutterX[gi] + gutterPad + float64(len(gutterItems[gi]))*trackSp + 6
			y0, y1 := le.dst.y, le.dst.y
			if le.src != nil {
				y0 = min(le.src.y, le.dst.y)
				y1 = max(le.src.y, le.dst.y)
			}
			blockH := 14 * float64(len(le.lines))
			ly = (y0+y1)/2 + 4 - blockH/2 + 7
			for moved := true; moved; {
				moved = false
				for _, pl := range gutterLabels[gi] {
					if ly > pl.y0-2 && ly-12 < pl.y1+2 || ly+blockH-14 > pl.y0-2 && ly < pl.y1 {
						ly = pl.y1 + 14
						moved = true
					}
				}
			}
			gutterLabels[gi] = append(gutterLabels[gi], placed{ly - 12, ly + blockH - 14})
			labels = append(labels, fmt.Sprintf(`<path d="M%s %s H%s" stroke="%s" stroke-width="0.8" stroke-dasharray="1 2" fill="none"/>`,
				rnum(tx), rnum(ly-4), rnum(lx), st.color))
			for i, l := range le.lines {
				labels = append(labels, labelSVG(le, l, lx, ly+14*float64(i), st.color))
			}
			continue
		default:
			lx = min(trackX(le.srcG, le.srcT), trackX(le.dstG, le.dstT)) + 8
			ly = laneY(le.lane) - 3
		}
		labels = append(labels, labelSVG(le, le.label, lx, ly, st.color))
	}
	for _, l := range labels {
		p("%s\n", l)
	}

	// Legend, wrapped to the picture's width.
	p(`<text x="%s" y="%s" font-size="13" font-weight="bold" fill="#333">Legend</text>`+"\n", num(margin), num(legendTop+14))
	lx := margin
	ly := legendTop + 38
	for _, k := range edgeKinds {
		st := edgeStyle[k]
		itemW := legendItemW(k)
		if lx > margin && lx+itemW > width-margin {
			lx, ly = margin, ly+22
		}
		dash := ""
		if st.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		p(`<path d="M%s %s H%s" stroke="%s" stroke-width="%s"%s marker-end="url(#arrow-%s)"/>`+"\n", rnum(lx), rnum(ly), rnum(lx+40), st.color, num(st.width), dash, k)
		tx := lx + 48
		if k == EdgeTunnel {
			p("%s\n", lockIcon(tx, ly-9, st.color))
			tx += 14
		}
		p(`<text x="%s" y="%s" class="lbl" fill="#333">%s</text>`+"\n", rnum(tx), rnum(ly+4), xmlEscape(st.title))
		lx += itemW
	}
	notes := wrap("", legendNotes, " ", width-2*margin, smallFont)
	for i, l := range notes {
		p(`<text x="%s" y="%s" class="sub">%s</text>`+"\n", num(margin), rnum(ly+28+float64(i)*lineH), xmlEscape(l))
	}
	p("</svg>\n")
	return bw.Flush()
}

func legendItemW(kind string) float64 {
	w := 48 + textW(edgeStyle[kind].title, labelFont) + 24
	if kind == EdgeTunnel {
		w += 14
	}
	return w
}

// legendNotes explain the boxes, word by word so they wrap.
var legendNotes = strings.Fields("Boxes: a server per column (provider, hardware, location), its Proxmox guests inside " +
	"(ct = LXC container, vm = QEMU VM, with the Proxmox id). Addresses in grey with their network; " +
	"● services :port; HTTPS: hostnames the node serves; NAT: the private networks it masquerades to the internet.")

var edgeKinds = []string{EdgeIngress, EdgeHTTP, EdgeTunnel, EdgeTunnelExit, EdgeForward, EdgeReplica, EdgeUses}

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

func lockW(le *ledge) float64 {
	if le.lock {
		return 13
	}
	return 0
}

func labelSVG(le *ledge, text string, x, y float64, color string) string {
	w := textW(text, labelFont) + lockW(le) + 6
	var b strings.Builder
	fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="13" rx="3" fill="#ffffff" fill-opacity="0.9" stroke="%s" stroke-width="0.6"/>`,
		rnum(x-3), rnum(y-10.5), rnum(w), color)
	tx := x
	if le.lock {
		b.WriteString(lockIcon(x, y-9.5, color))
		tx += 13
	}
	fmt.Fprintf(&b, `<text x="%s" y="%s" class="lbl" fill="%s">%s</text>`, rnum(tx), rnum(y), color, xmlEscape(text))
	return b.String()
}

// lockIcon draws a 9x10 padlock with its top-left corner at x, y.
func lockIcon(x, y float64, color string) string {
	return fmt.Sprintf(`<g><path d="M%s %s v-2.5 a3 3 0 0 1 6 0 v2.5" fill="none" stroke="%s" stroke-width="1.3"/><rect x="%s" y="%s" width="9" height="6" rx="1" fill="%s"/></g>`,
		rnum(x+1.5), rnum(y+4), color, rnum(x), rnum(y+4), color)
}

func boxTextH(n *lnode) float64 {
	return 22 + float64(len(n.lines))*lineH + 4
}

func portsH(n *lnode) float64 {
	k := max(len(n.ports[0]), len(n.ports[1]))
	return 18 + float64(k)*portSp
}

// nodeLines are the text lines under a box's caption.
func nodeLines(n *GraphNode, width float64) []textLine {
	var out []textLine
	add := func(class string, lines []string) {
		for _, l := range lines {
			out = append(out, textLine{text: l, size: smallFont, class: class})
		}
	}
	var sub []string
	if n.Title != "" && n.Title != n.Name {
		sub = append(sub, n.Title)
	}
	if n.Kind == "server" {
		var hw []string
		for _, s := range []string{n.Hardware, n.Location} {
			if s != "" {
				hw = append(hw, s)
			}
		}
		if len(hw) > 0 {
			sub = append(sub, strings.Join(hw, " · "))
		}
	}
	if len(sub) > 0 {
		add("sub", wrap("", sub, " — ", width, smallFont))
	}
	if len(n.Addresses) > 0 {
		add("addr", wrap("", n.Addresses, "  ", width, smallFont-0.5))
	}
	if len(n.Gateway) > 0 {
		add("nat", []string{"NAT gateway of " + strings.Join(n.Gateway, ", ")})
	}
	if len(n.Services) > 0 {
		items := make([]string, len(n.Services))
		for i, s := range n.Services {
			items[i] = "● " + s
		}
		add("svc", wrap("", items, "   ", width, smallFont))
	}
	if len(n.Hosts) > 0 {
		add("host", wrap("HTTPS: ", n.Hosts, ", ", width, smallFont))
	}
	return out
}

func drawBox(w *bufio.Writer, n *lnode, server bool) {
	b := n.box
	fill, stroke, sw := "#ffffff", "#666", "1"
	if server {
		fill, stroke, sw = "#fdfdfd", "#333", "1.6"
	}
	fmt.Fprintf(w, `<g data-node="%s"><title>%s</title><rect x="%s" y="%s" width="%s" height="%s" rx="6" fill="%s" stroke="%s" stroke-width="%s"/>`+"\n",
		xmlEscape(n.gn.Name), xmlEscape(n.gn.Name), rnum(b.x), rnum(b.y), rnum(b.w), rnum(b.h), fill, stroke, sw)
	cap := n.gn.Name
	x := b.x + 8
	if !server {
		badge := fmt.Sprintf("%s %d", n.gn.Kind, n.gn.ID)
		bwid := textW(badge, 10)*1.12 + 8
		fmt.Fprintf(w, `<rect x="%s" y="%s" width="%s" height="15" rx="3" fill="#555"/><text x="%s" y="%s" font-size="10" font-weight="bold" fill="#fff">%s</text>`+"\n",
			rnum(x), rnum(b.y+5), rnum(bwid), rnum(x+4), rnum(b.y+16), xmlEscape(badge))
		x += bwid + 6
	} else {
		fmt.Fprintf(w, `<rect x="%s" y="%s" width="%s" height="24" rx="6" fill="#3c4a5c"/>`+"\n", rnum(b.x), rnum(b.y), rnum(b.w))
	}
	color := "#1a1a1a"
	if server {
		color = "#ffffff"
	}
	fmt.Fprintf(w, `<text x="%s" y="%s" font-size="%s" font-weight="bold" fill="%s">%s</text>`+"\n", rnum(x), rnum(b.y+17), num(captionFont), color, xmlEscape(cap))
	if server {
		fmt.Fprintf(w, `<text x="%s" y="%s" font-size="10" fill="#dde" text-anchor="end">server</text>`+"\n", rnum(b.x+b.w-8), rnum(b.y+16))
	}
	y := b.y + 22 + lineH
	if server {
		y += 3
	}
	for _, l := range n.lines {
		fmt.Fprintf(w, `<text x="%s" y="%s" class="%s">%s</text>`+"\n", rnum(b.x+8+l.indent), rnum(y), l.class, xmlEscape(l.text))
		y += lineH
	}
	w.WriteString("</g>\n")
}
