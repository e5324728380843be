package topology

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The SVG layout. Providers are boxes packed in rows no wider than the
// picture (a provider with more servers than fit in a row gets rows of its
// own); each server is a column holding its guests. Between columns run
// gutters, between rows channels. An edge leaves its source box through the
// side facing the way it goes, at a row of the box that names it (its label
// is at its source end), runs in a gutter on a track of its own, crosses a
// channel on a lane of its own only when its ends are in different gutters,
// and enters the destination box's side. Edges never cross a box other
// than the servers holding their ends. The Internet is a band on top;
// ingress edges drop from it straight into a gutter, labelled in the band
// where they leave it.
//
// Everything is computed in linear time in the size of the graph and of
// the drawn paths (each edge's route is chosen among a few candidates, not
// searched), so the picture of a 10x inventory stays fast to draw.

const (
	defaultSVGWidth = 1400.0
	minSVGWidth     = 400.0
	maxSVGWidth     = 20000.0

	margin     = 10.0
	provPad    = 8.0  // provider border to its columns
	gutGap     = 5.0  // track area to a border or a box
	trackSp    = 6.0  // between tracks of a gutter
	laneSp     = 6.0  // between lanes of a channel
	guestInset = 7.0  // server border to its guests
	textPad    = 6.0  // box border to its text
	lineH      = 13.0 // text line height
	portSp     = 6.0  // least distance between two ports on a side

	fontBody  = 10.5
	fontAddr  = 10.0
	fontCap   = 13.0
	fontLabel = 10.0
	fontProv  = 13.0
	fontTag   = 8.0

	minColW = 178.0
	maxColW = 250.0

	headerH  = 24.0 // a server's dark caption bar
	gcapH    = 21.0 // a guest's caption line
	titleH   = 40.0 // the picture's title
	bandHead = 22.0 // the Internet band's own line

	far = 1e7 // a channel end, for ordering intervals in a gutter
)

// dejaVu are DejaVu Sans advance widths in thousandths of an em, the font
// the picture asks for first (Chromium on Debian draws it with it).
var dejaVu = func() map[rune]float64 {
	w := map[rune]float64{' ': 318, '.': 318, ',': 318, ':': 337, ';': 337, '-': 361, '(': 390, ')': 390,
		'[': 390, ']': 390, '*': 500, '/': 337, '_': 500, '@': 1000, '\'': 275, '"': 460, '&': 780, '<': 838,
		'>': 838, '|': 337, '#': 838, '%': 950, '+': 838, '=': 838, '?': 531, '!': 400, '·': 318, '—': 1000,
		'●': 770, '…': 1000, '~': 838, '$': 636}
	lower := []float64{613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525}
	upper := []float64{684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685}
	for i := range 26 {
		w['a'+rune(i)] = lower[i]
		w['A'+rune(i)] = upper[i]
	}
	for r := '0'; r <= '9'; r++ {
		w[r] = 636
	}
	return w
}()

// textW estimates the rendered width of s at a font size: DejaVu Sans'
// advances plus 3% (other glyphs count 1 em), so text stays inside its
// box; TestSVGTextWidthsInChromium holds it to what Chromium draws.
func textW(s string, size float64) float64 {
	w := 0.0
	for _, r := range s {
		switch {
		case r < 128 && asciiW[r] > 0:
			w += asciiW[r]
		default:
			if v, ok := dejaVu[r]; ok {
				w += v
			} else {
				w += 1000
			}
		}
	}
	return w / 1000 * size * 1.03
}

// asciiW is dejaVu for ASCII, looked up without hashing.
var asciiW = func() (a [128]float64) {
	for r, v := range dejaVu {
		if r < 128 {
			a[r] = v
		}
	}
	return a
}()

func boldW(s string, size float64) float64 { return textW(s, size) * 1.12 }
func monoW(s string, size float64) float64 { return float64(len([]rune(s))) * size * 0.61 }

// breakItem splits one item wider than width after a space, dot, dash,
// comma or slash ("monitoring." / "openfoodfacts.org,"), else anywhere.
func breakItem(s string, width float64, w func(string) float64) []string {
	var out []string
	for w(s) > width {
		runes := []rune(s)
		cut := 0
		for i := range runes {
			if w(string(runes[:i+1])) > width {
				break
			}
			cut = i + 1
		}
		cut = max(cut, 1)
		// Of the places that leave the rest on one line, the one that
		// balances the two lines best (a space counts a little less),
		// else the last place that fits.
		best, bestCost := -1, math.Inf(1)
		for i := 1; i < cut; i++ {
			r := runes[i-1]
			if r != ' ' && r != '.' && r != '-' && r != ',' && r != '/' {
				continue
			}
			rest := w(strings.TrimLeft(string(runes[i:]), " "))
			if rest > width {
				if best < 0 || bestCost == math.Inf(1) {
					best = i
				}
				continue
			}
			c := max(w(string(runes[:i])), rest)
			if r == ' ' {
				c *= 0.85
			}
			if c < bestCost {
				best, bestCost = i, c
			}
		}
		if best > 0 {
			cut = best
		}
		if head := strings.TrimRight(string(runes[:cut]), " "); head != "" {
			out = append(out, head)
		}
		s = strings.TrimLeft(string(runes[cut:]), " ")
	}
	return append(out, s)
}

// wrap lays items out in lines no wider than width, separated by sep; an
// item wider than a line is broken.
func wrap(prefix string, items []string, sep string, width float64, w func(string) float64) []string {
	var lines []string
	cur := prefix
	for i, it := range items {
		piece := it
		if i < len(items)-1 {
			piece += sep
		}
		if strings.TrimSpace(cur) != "" && w(strings.TrimRight(cur+piece, " ")) > width {
			lines = append(lines, strings.TrimRight(cur, " "))
			cur = ""
		}
		if w(strings.TrimRight(cur+piece, " ")) > width {
			parts := breakItem(strings.TrimRight(cur+piece, " "), width, w)
			lines = append(lines, parts[:len(parts)-1]...)
			cur = parts[len(parts)-1]
			if strings.HasSuffix(piece, " ") {
				cur += " "
			}
			continue
		}
		cur += piece
	}
	if strings.TrimSpace(cur) != "" {
		lines = append(lines, strings.TrimRight(cur, " "))
	}
	return lines
}

func fitW(size float64) func(string) float64 { return func(s string) float64 { return textW(s, size) } }

type textLine struct {
	text  string
	class string
}

type lbox struct{ x, y, w, h float64 }

// lnode is a server or guest box.
type lnode struct {
	gn       *GraphNode
	server   *lnode // the server holding it; itself for a server
	row      int
	col      int // column within the row
	box      lbox
	capText  string  // the caption, shortened to fit
	capSize  float64 // its font size
	capBelow bool    // a guest's caption is below its badge, not beside it
	lines    []textLine
	zone     float64 // caption and text height: where edges come in
	outs     []*outRow
	ins      [2][]*vend // incoming ends on the left (0) and right (1) side
	nIn      int        // incoming edges
}

// outRow is a row of a box naming an edge that leaves it there.
type outRow struct {
	e     *ledge
	lines []string
	dy    float64 // first baseline, from the box top
}

const tagW = 42.0 // the kind tag before an edge's label

func (o *outRow) portDY() float64 { return o.dy - 3.5 }

// vend is one end of a vertical segment.
type vend struct {
	kind int // endPort, endChan, endBand
	node *lnode
	side int     // the port's side, for endPort
	y    float64 // the port's y, absolute once placed
	out  bool    // the port is the edge's source
	h    *hseg   // the lane, for endChan
	up   bool    // for endChan: the channel is above the segment
	ch   int     // for endChan: the channel's index
	v    *vseg
}

const (
	endPort = iota
	endChan
	endBand
)

type vseg struct {
	e      *ledge
	g      *gutter
	a, b   *vend // a towards the source
	right  bool  // in the gutter's right-hand track set
	track  int
	lo, hi float64 // the interval in row-relative coordinates
}

func (v *vseg) x() float64 {
	if v.right {
		return v.g.tx1 - (float64(v.track)+0.5)*trackSp
	}
	return v.g.tx0 + (float64(v.track)+0.5)*trackSp
}

type hseg struct {
	e      *ledge
	ch     *channel
	a, b   *vseg
	bottom bool // in the channel's bottom lane set
	lane   int
}

func (h *hseg) y() float64 {
	if h.bottom {
		return h.ch.y1 - gutGap - (float64(h.lane)+0.5)*laneSp
	}
	return h.ch.y0 + gutGap + (float64(h.lane)+0.5)*laneSp
}

type ledge struct {
	e        *Edge
	i        int
	src, dst *lnode // src is nil for an ingress edge
	tag      string
	label    string
	out      *outRow
	vs       []*vseg
	hs       []*hseg
	band     [2]float64 // ingress label position in the band
	bandRow  int
}

type gutter struct {
	row, i int
	segs   []*vseg
	nL, nR int
	tx0    float64
	tx1    float64
	use    int
}

type channel struct {
	segs   []*hseg
	nT, nB int
	y0, y1 float64
}

type lrow struct {
	cols   []*lnode
	provs  []*lprov // in order, with their column ranges
	group  int      // rows of one provider share a group (aligned gutters)
	gut    []*gutter
	top    float64 // y of the providers' top border
	hdr    float64 // title height above the boxes
	boxTop float64
	h      float64
	bottom float64
	width  float64
}

type lprov struct {
	grp        *Group
	title      []string
	rows       []int
	first, end map[int]int // per row: column range
	box        lbox
}

type layout struct {
	corr      [2]*gutter // the corridors left and right of every row, for edges spanning rows
	g         *Graph
	W         float64
	colW      float64
	width     float64
	height    float64
	nodes     map[string]*lnode
	servers   []*lnode
	all       []*lnode
	rows      []*lrow
	provs     []*lprov
	chans     []*channel
	edges     []*ledge
	bandTop   float64
	bandBot   float64
	bandRows  int
	legendTop float64
}

// svgLabel is the text naming an edge at its source.
func svgLabel(e *Edge) string {
	if e.Kind == EdgeReplica && len(e.Labels) > 1 {
		return strconv.Itoa(len(e.Labels)) + " replicas"
	}
	return strings.Join(e.Labels, ", ")
}

// newLayout lays g out no wider than width: it tries the most columns per
// row that leave columns wide enough, and fewer when the routed gutters
// make a row too wide.
func newLayout(g *Graph, width float64) *layout {
	nServers := 0
	for _, grp := range g.Groups {
		nServers += len(grp.Servers)
	}
	k := max(1, min(nServers, int((width-2*margin)/(minColW+2*gutGap+2*provPad/2+trackSp))))
	var best *layout
	builds := 0
	for ; k >= 1 && builds < 8; k-- {
		over := 2*margin + float64(k+1)*(2*gutGap+2*trackSp) + float64(k)*provPad*2
		colW := min(maxColW, (width-over)/float64(k))
		if colW < minColW && k > 1 {
			continue
		}
		colW = max(colW, minColW)
		// The routed gutters may take more room than estimated: narrow
		// the columns by the overflow, a few times, before trying fewer.
		for try := 0; try < 4; try++ {
			l := buildLayout(g, width, k, colW)
			builds++
			if l.width <= width {
				return l
			}
			if best == nil || l.width < best.width {
				best = l
			}
			colW -= (l.width-width)/float64(k) + 1
			if colW < minColW {
				break
			}
		}
		// Fewer columns only help a picture that nearly fits: one much
		// too wide has gutters or corridors full of edges, which more
		// rows do not thin.
		if best.width > 1.25*width {
			break
		}
	}
	return best
}

func buildLayout(g *Graph, W float64, k int, colW float64) *layout {
	l := &layout{g: g, W: W, colW: colW, nodes: map[string]*lnode{}}
	for _, grp := range g.Groups {
		for _, s := range grp.Servers {
			sn := &lnode{gn: s}
			sn.server = sn
			l.nodes[s.Name] = sn
			l.servers = append(l.servers, sn)
			l.all = append(l.all, sn)
			for _, gu := range s.Guests {
				gn := &lnode{gn: gu, server: sn}
				l.nodes[gu.Name] = gn
				l.all = append(l.all, gn)
			}
		}
	}
	l.makeEdges()
	l.sizeBoxes()
	l.packRows(k)
	l.route()
	l.assignTracks()
	l.placeX()
	l.assignLanes()
	l.placeY()
	return l
}

func (l *layout) makeEdges() {
	for i, e := range l.g.Edges {
		dn := l.nodes[e.To]
		if dn == nil {
			continue
		}
		le := &ledge{e: e, i: i, dst: dn, tag: edgeStyle[e.Kind].tag, label: svgLabel(e)}
		if e.From != Internet {
			sn := l.nodes[e.From]
			if sn == nil {
				continue
			}
			le.src = sn
			le.out = &outRow{e: le}
			sn.outs = append(sn.outs, le.out)
		}
		dn.nIn++
		l.edges = append(l.edges, le)
	}
}

// sizeBoxes wraps each box's text to the column width and sets the boxes'
// heights and their positions relative to their server's top.
func (l *layout) sizeBoxes() {
	inW := l.colW - 2*textPad
	gInW := l.colW - 2*guestInset - 2*textPad
	for _, sn := range l.servers {
		sn.fit(inW, true)
		y := headerH + float64(len(sn.lines))*lineH + 6
		y = max(y, sn.portZone())
		sn.zone = y
		y = sn.placeOuts(y)
		y += 2
		for _, gu := range sn.gn.Guests {
			gn := l.nodes[gu.Name]
			gn.fit(gInW, false)
			h := gn.capH() + float64(len(gn.lines))*lineH + 4
			h = max(h, gn.portZone())
			gn.zone = h
			h = gn.placeOuts(h) + 3
			gn.box = lbox{x: guestInset, y: y, w: l.colW - 2*guestInset, h: h}
			y += h + 6
		}
		sn.box = lbox{w: l.colW, h: y + 3}
	}
}

// portZone is the least caption-and-text height that spreads every
// incoming edge (on one side, at worst) portSp apart.
func (n *lnode) portZone() float64 { return 11 + float64(n.nIn)*portSp }

func (n *lnode) placeOuts(y float64) float64 {
	for _, o := range n.outs {
		o.dy = y + 10
		y += float64(len(o.lines))*lineH + 2
	}
	if len(n.outs) > 0 {
		y += 3
	}
	return y
}

func (n *lnode) fit(width float64, server bool) {
	// Caption: beside the badge (a guest's), smaller if need be; below it
	// when it would be too small; shortened as a last resort.
	avail := width
	if server {
		avail -= textW("server", 10) + 8
	} else {
		avail -= boldW(n.badge(), 10) + 12
	}
	n.capText = n.gn.Name
	n.capSize = fontCap
	for n.capSize > 11 && boldW(n.capText, n.capSize) > avail {
		n.capSize -= 0.5
	}
	if !server && boldW(n.capText, n.capSize) > avail {
		n.capBelow, n.capSize, avail = true, 12, width
	}
	if boldW(n.capText, n.capSize) > avail {
		r := []rune(n.capText)
		for len(r) > 1 && boldW(string(r)+"…", n.capSize) > avail {
			r = r[:len(r)-1]
		}
		n.capText = string(r) + "…"
	}
	n.lines = nodeLines(n.gn, width)
	for _, o := range n.outs {
		o.lines = wrap("", strings.Split(o.e.label, ", "), ", ", width-tagW, fitW(fontLabel))
		if len(o.lines) == 0 {
			o.lines = []string{""}
		}
	}
}

// capH is the height of a guest's caption.
func (n *lnode) capH() float64 {
	if n.capBelow {
		return gcapH + 14
	}
	return gcapH
}

func (n *lnode) badge() string { return n.gn.Kind + " " + strconv.Itoa(n.gn.ID) }

// nodeLines are the text lines under a box's caption.
func nodeLines(n *GraphNode, width float64) []textLine {
	var out []textLine
	add := func(class string, lines []string) {
		for _, l := range lines {
			out = append(out, textLine{text: l, class: class})
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
		add("sub", wrap("", sub, " — ", width, fitW(fontBody)))
	}
	if len(n.Addresses) > 0 {
		add("addr", wrap("", n.Addresses, "  ", width, func(s string) float64 { return monoW(s, fontAddr) }))
	}
	if len(n.Gateway) > 0 {
		add("nat", wrap("NAT gateway of ", n.Gateway, ", ", width, func(s string) float64 { return boldW(s, fontBody) }))
	}
	if len(n.Services) > 0 {
		items := make([]string, len(n.Services))
		for i, s := range n.Services {
			items[i] = "● " + s
		}
		add("svc", wrap("", items, "   ", width, fitW(fontBody)))
	}
	if len(n.Hosts) > 0 {
		add("host", wrap("HTTPS: ", n.Hosts, ", ", width, fitW(fontBody)))
	}
	return out
}

// packRows puts providers in rows of at most k columns, first fit in
// inventory order; a provider wider than a row gets rows of its own.
func (l *layout) packRows(k int) {
	type open struct {
		row  *lrow
		free int
	}
	var opens []*open
	group := 0
	for _, grp := range l.g.Groups {
		if len(grp.Servers) == 0 {
			continue
		}
		p := &lprov{grp: grp, first: map[int]int{}, end: map[int]int{}}
		l.provs = append(l.provs, p)
		n := len(grp.Servers)
		place := func(r *lrow, ri int, servers []*GraphNode) {
			p.rows = append(p.rows, ri)
			p.first[ri] = len(r.cols)
			for _, s := range servers {
				sn := l.nodes[s.Name]
				sn.row, sn.col = ri, len(r.cols)
				r.cols = append(r.cols, sn)
			}
			p.end[ri] = len(r.cols)
			r.provs = append(r.provs, p)
		}
		if n <= k {
			var o *open
			for _, c := range opens {
				if c.free >= n {
					o = c
					break
				}
			}
			if o == nil {
				r := &lrow{group: group}
				group++
				l.rows = append(l.rows, r)
				o = &open{row: r, free: k}
				opens = append(opens, o)
			}
			place(o.row, slices.Index(l.rows, o.row), grp.Servers)
			o.free -= n
			continue
		}
		for i := 0; i < n; i += k {
			r := &lrow{group: group}
			l.rows = append(l.rows, r)
			place(r, len(l.rows)-1, grp.Servers[i:min(n, i+k)])
		}
		group++
	}
	for ri, r := range l.rows {
		for _, sn := range r.cols {
			r.h = max(r.h, sn.box.h)
		}
		r.gut = make([]*gutter, len(r.cols)+1)
		for i := range r.gut {
			r.gut[i] = &gutter{row: ri, i: i}
		}
		for _, sn := range r.cols {
			for _, gu := range sn.gn.Guests {
				gn := l.nodes[gu.Name]
				gn.row, gn.col = sn.row, sn.col
			}
		}
	}
	l.corr = [2]*gutter{{row: -1}, {row: -1, i: 1}}
	l.chans = make([]*channel, len(l.rows)+1)
	for i := range l.chans {
		l.chans[i] = &channel{}
	}
	for _, p := range l.provs {
		title := wrap("", strings.Fields(p.grp.Title), " ", l.colW-6, func(s string) float64 { return boldW(s, fontProv) })
		p.title = title
	}
}

// relY is a port's y relative to its row's box top: the middle of the
// zone where edges come in, before ports are placed.
func (n *lnode) relY() float64 {
	off := 0.0
	if n.server != n {
		off = n.box.y
	}
	return off + n.zone/2
}

func (n *lnode) relTop() float64 {
	if n.server != n {
		return n.box.y
	}
	return 0
}

// colX is a rough x of a gutter, for choosing routes before x placement.
func (l *layout) gutX(g *gutter) float64 { return float64(g.i) * (l.colW + 30) }

// route chooses each edge's gutters and channels.
func (l *layout) route() {
	for _, le := range l.edges {
		if le.src == nil {
			l.routeIngress(le)
			continue
		}
		l.routeEdge(le)
	}
}

func (l *layout) sideGutter(n *lnode, side int) *gutter {
	return l.rows[n.row].gut[n.col+side]
}

func (l *layout) routeEdge(le *ledge) {
	s, d := le.src, le.dst
	sy := s.relTop() + le.out.portDY()
	dy := d.relY()
	rs, rd := l.rows[s.row], l.rows[d.row]
	best := math.Inf(1)
	var pick func()
	try := func(cost float64, f func()) {
		if cost < best-1e-9 {
			best, pick = cost, f
		}
	}
	for ss := 1; ss >= 0; ss-- {
		for ds := 1; ds >= 0; ds-- {
			gs, gd := l.sideGutter(s, ss), l.sideGutter(d, ds)
			ss, ds := ss, ds
			use := 2 * float64(gs.use+gd.use)
			if gs == gd {
				try(math.Abs(sy-dy)+use, func() {
					le.vs = []*vseg{l.vertical(le, gs, l.port(le, s, ss, true), l.port(le, d, ds, false))}
				})
				continue
			}
			if s.row == d.row {
				// Over the top or under the bottom of the row.
				gx := math.Abs(l.gutX(gs) - l.gutX(gd))
				try(sy+dy+gx+60+use, func() { l.viaChannels(le, ss, ds, true) })
				try((rs.h-sy)+(rd.h-dy)+gx+60+use+1, func() { l.viaChannels(le, ss, ds, false) })
				continue
			}
			gx := math.Abs(l.gutX(gs) - l.gutX(gd))
			if s.row < d.row {
				try((rs.h-sy)+dy+gx+60+use, func() { l.viaChannels(le, ss, ds, false) })
			} else {
				try(sy+(rd.h-dy)+gx+60+use, func() { l.viaChannels(le, ss, ds, true) })
			}
		}
	}
	pick()
	for _, v := range le.vs {
		v.g.use++
	}
}

func (l *layout) port(le *ledge, n *lnode, side int, out bool) *vend {
	e := &vend{kind: endPort, node: n, side: side, out: out}
	if out {
		e.y = n.relTop() + le.out.portDY()
	} else {
		e.y = n.relY()
		n.ins[side] = append(n.ins[side], e)
	}
	return e
}

func (l *layout) vertical(le *ledge, g *gutter, a, b *vend) *vseg {
	v := &vseg{e: le, g: g, a: a, b: b}
	a.v, b.v = v, v
	g.segs = append(g.segs, v)
	return v
}

func (l *layout) horizontal(le *ledge, ch *channel, a, b *vseg) *hseg {
	h := &hseg{e: le, ch: ch, a: a, b: b}
	ch.segs = append(ch.segs, h)
	le.hs = append(le.hs, h)
	return h
}

// viaChannels routes an edge between different gutters: out of the source
// gutter into the channel above (up) or below it, along it, and into the
// destination's gutter, in the same row or the next. Edges between rows
// further apart take a corridor beside the rows.
func (l *layout) viaChannels(le *ledge, ss, ds int, up bool) {
	s, d := le.src, le.dst
	gs, gd := l.sideGutter(s, ss), l.sideGutter(d, ds)
	start := l.port(le, s, ss, true)
	end := l.port(le, d, ds, false)
	ch := s.row + 1
	if up {
		ch = s.row
	}
	first := &vend{kind: endChan, up: up, ch: ch}
	v0 := l.vertical(le, gs, start, first)
	in := &vend{kind: endChan, up: !up}
	if s.row == d.row {
		in.up = up
	}
	if s.row-d.row > 1 || d.row-s.row > 1 {
		dch := d.row
		if up {
			dch = d.row + 1
		}
		in.ch = dch
		c := l.corridor(gs, gd)
		ca := &vend{kind: endChan, up: !up, ch: ch}
		cb := &vend{kind: endChan, up: up, ch: dch}
		cv := l.vertical(le, c, ca, cb)
		v1 := l.vertical(le, gd, in, end)
		h0 := l.horizontal(le, l.chans[ch], v0, cv)
		h1 := l.horizontal(le, l.chans[dch], cv, v1)
		first.h, ca.h, cb.h, in.h = h0, h0, h1, h1
		le.vs = append(le.vs, v0, cv, v1)
		return
	}
	in.ch = ch
	v1 := l.vertical(le, gd, in, end)
	h := l.horizontal(le, l.chans[ch], v0, v1)
	first.h, in.h = h, h
	le.vs = append(le.vs, v0, v1)
}

// corridor is the corridor on the side of the rows nearer two gutters.
func (l *layout) corridor(a, b *gutter) *gutter {
	side := 0
	if a.i+b.i > len(l.rows[a.row].gut)-1+len(l.rows[b.row].gut)-1 {
		side = 1
	}
	return l.corr[side]
}

func (l *layout) nearestGutter(r *lrow, x float64) *gutter {
	best := r.gut[0]
	for _, g := range r.gut {
		if math.Abs(l.gutX(g)-x) < math.Abs(l.gutX(best)-x) {
			best = g
		}
	}
	return best
}

// routeIngress drops an ingress edge from the band: straight down the
// destination's gutter in the first row, else down the gutter of each row
// above nearest the destination's.
func (l *layout) routeIngress(le *ledge) {
	d := le.dst
	ds := 0
	if l.sideGutter(d, 1).use < l.sideGutter(d, 0).use {
		ds = 1
	}
	gd := l.sideGutter(d, ds)
	end := l.port(le, d, ds, false)
	if d.row == 0 {
		le.vs = []*vseg{l.vertical(le, gd, &vend{kind: endBand}, end)}
		gd.use++
		return
	}
	in := &vend{kind: endChan, up: true, ch: d.row}
	v := l.vertical(le, gd, in, end)
	var top *vseg
	if d.row == 1 {
		top = l.vertical(le, l.nearestGutter(l.rows[0], l.gutX(gd)), &vend{kind: endBand}, &vend{kind: endChan, ch: 1})
	} else {
		top = l.vertical(le, l.corridor(gd, gd), &vend{kind: endBand}, &vend{kind: endChan, ch: d.row})
	}
	h := l.horizontal(le, l.chans[d.row], top, v)
	top.b.h, in.h = h, h
	le.vs = append(le.vs, top, v)
	for _, v := range le.vs {
		v.g.use++
	}
}

// endY is where a vertical end lies relative to its row's box top, for
// ordering: channels and the band beyond every port.
func (e *vend) relOrder() float64 {
	switch e.kind {
	case endBand:
		return -2 * far
	case endChan:
		if e.up {
			return -far
		}
		return far
	}
	return e.y
}

// stubSide says from which side of the gutter a port's stub comes: the
// box to the left of the gutter (0) or to its right (1).
func (v *vseg) stub(e *vend) int {
	if e.kind != endPort {
		return -1
	}
	if e.node.col == v.g.i { // the gutter left of the box
		return 1
	}
	return 0
}

// placePorts spreads the incoming ends of every box side over its zone,
// ordered by where they come from, so they do not cross each other.
func (l *layout) placePorts() {
	for _, n := range l.all {
		for side := 0; side < 2; side++ {
			ins := n.ins[side]
			key := func(e *vend) float64 {
				o := e.v.a
				if o == e {
					o = e.v.b
				}
				return o.relOrder()
			}
			slices.SortStableFunc(ins, func(a, b *vend) int { return cmp.Compare(key(a), key(b)) })
			top := n.relTop() + 7
			zone := n.zone - 11
			for i, e := range ins {
				e.y = top + (float64(i)+0.5)*zone/float64(len(ins))
			}
		}
	}
}

// assignTracks gives every vertical segment of a gutter a track: segments
// whose stubs all come from the left take the left-hand tracks, those from
// the right the right-hand ones; shorter segments lie nearer the boxes, so
// nested segments do not cross.
func (l *layout) assignTracks() {
	l.placePorts()
	for _, r := range l.rows {
		for _, g := range r.gut {
			l.separateStubs(g)
		}
		for _, g := range r.gut {
			var left, right []*vseg
			for _, v := range g.segs {
				a, b := v.a.relOrder(), v.b.relOrder()
				v.lo, v.hi = min(a, b), max(a, b)
				sa, sb := v.stub(v.a), v.stub(v.b)
				if (sa == 1 || sa == -1) && (sb == 1 || sb == -1) && (sa == 1 || sb == 1) {
					v.right = true
					right = append(right, v)
				} else {
					left = append(left, v)
				}
			}
			g.nL = colour(left, func(v *vseg) (float64, float64) { return v.lo, v.hi }, func(v *vseg, t int) { v.track = t })
			g.nR = colour(right, func(v *vseg) (float64, float64) { return v.lo, v.hi }, func(v *vseg, t int) { v.track = t })
		}
	}
	// Corridors: intervals in channel indices; segments meeting in one
	// channel take different tracks. The left corridor's outer tracks
	// are the longer segments, and so are the right one's.
	for side, c := range l.corr {
		for _, v := range c.segs {
			a, b := float64(v.a.ch)*100, float64(v.b.ch)*100
			if v.a.kind == endBand {
				a = -100
			}
			v.lo, v.hi = min(a, b), max(a, b)
			v.right = side == 0
		}
		n := colour(c.segs, func(v *vseg) (float64, float64) { return v.lo, v.hi }, func(v *vseg, t int) { v.track = t })
		if side == 0 {
			c.nR = n
		} else {
			c.nL = n
		}
	}
}

// separateStubs moves an incoming port off the height of a stub coming
// into the same gutter from the other side, so two stubs never run on
// one line.
func (l *layout) separateStubs(g *gutter) {
	var sides [2][]*vend
	for _, v := range g.segs {
		for _, e := range []*vend{v.a, v.b} {
			if s := v.stub(e); s >= 0 {
				sides[s] = append(sides[s], e)
			}
		}
	}
	// Right-hand in-ports step off the left-hand out-ports, then
	// left-hand in-ports off everything on the right.
	step := func(move []*vend, off []*vend) {
		var ys []float64
		for _, e := range off {
			ys = append(ys, e.y)
		}
		slices.Sort(ys)
		for _, e := range move {
			if e.out {
				continue
			}
			for tries := 0; tries < 4; tries++ {
				i, _ := slices.BinarySearch(ys, e.y-2.5)
				if i == len(ys) || ys[i] >= e.y+2.5 {
					break
				}
				e.y = ys[i] + 3
			}
		}
	}
	var outs0 []*vend
	for _, e := range sides[0] {
		if e.out {
			outs0 = append(outs0, e)
		}
	}
	step(sides[1], outs0)
	step(sides[0], sides[1])
}

// colour assigns each interval the lowest slot free over it, shortest
// intervals first; it returns the number of slots.
func colour[T any](items []T, span func(T) (float64, float64), set func(T, int)) int {
	type iv struct{ lo, hi float64 }
	order := slices.Clone(items)
	slices.SortStableFunc(order, func(a, b T) int {
		a0, a1 := span(a)
		b0, b1 := span(b)
		return cmp.Compare(a1-a0, b1-b0)
	})
	var slots [][]iv // sorted by lo, disjoint
	for _, it := range order {
		lo, hi := span(it)
		lo -= 4
		hi += 4
		placed := false
		for si, s := range slots {
			i, _ := slices.BinarySearchFunc(s, lo, func(x iv, t float64) int { return cmp.Compare(x.lo, t) })
			if i > 0 && s[i-1].hi > lo {
				continue
			}
			if i < len(s) && s[i].lo < hi {
				continue
			}
			slots[si] = slices.Insert(s, i, iv{lo, hi})
			set(it, si)
			placed = true
			break
		}
		if !placed {
			slots = append(slots, []iv{{lo, hi}})
			set(it, len(slots)-1)
		}
	}
	return len(slots)
}

// placeX sets the x of gutters, columns and boxes; rows of one provider
// share gutter widths so their columns line up.
func (l *layout) placeX() {
	groupW := map[[2]int]float64{}
	for _, r := range l.rows {
		for i, g := range r.gut {
			k := [2]int{r.group, i}
			groupW[k] = max(groupW[k], float64(g.nL+g.nR)*trackSp)
		}
	}
	l.width = 0
	left := margin
	if n := l.corr[0].nR; n > 0 {
		l.corr[0].tx0 = margin
		l.corr[0].tx1 = margin + float64(n)*trackSp
		left = l.corr[0].tx1 + gutGap
	}
	for ri, r := range l.rows {
		starts := map[int]bool{}
		ends := map[int]bool{}
		for _, p := range r.provs {
			starts[p.first[ri]] = true
			ends[p.end[ri]-1] = true
		}
		x := left
		for i, g := range r.gut {
			if i > 0 {
				x += gutGap
				if ends[i-1] {
					x += provPad
				}
			}
			g.tx0 = x
			x += groupW[[2]int{r.group, i}]
			g.tx1 = x
			if i < len(r.cols) {
				x += gutGap
				if starts[i] {
					x += provPad
				}
				sn := r.cols[i]
				sn.box.x = x
				for _, gu := range sn.gn.Guests {
					l.nodes[gu.Name].box.x = x + guestInset
				}
				x += l.colW
			}
		}
		r.width = x + margin
		l.width = max(l.width, r.width)
	}
	if n := l.corr[1].nL; n > 0 {
		l.corr[1].tx0 = l.width - margin + gutGap
		l.corr[1].tx1 = l.corr[1].tx0 + float64(n)*trackSp
		l.width = l.corr[1].tx1 + margin
	}
}

// assignLanes gives each channel crossing a lane: crossings between
// segments going up take the top lanes, the others the bottom ones,
// shorter nearer their rows.
func (l *layout) assignLanes() {
	for _, ch := range l.chans {
		var top, bot []*hseg
		for _, h := range ch.segs {
			// a segment whose both verticals come from the row above
			// (they reach the channel going down) lies on top.
			if !h.a.endAt(h).up && !h.b.endAt(h).up {
				top = append(top, h)
			} else {
				h.bottom = true
				bot = append(bot, h)
			}
		}
		span := func(h *hseg) (float64, float64) {
			a, b := h.a.x(), h.b.x()
			return min(a, b), max(a, b)
		}
		ch.nT = colour(top, span, func(h *hseg, t int) { h.lane = t })
		ch.nB = colour(bot, span, func(h *hseg, t int) { h.lane = t })
	}
}

// endAt is the end of v on lane h. up means the channel is above v.
func (v *vseg) endAt(h *hseg) *vend {
	if v.a.h == h {
		return v.a
	}
	return v.b
}

// placeY sets every y: the title, the band, channels and rows.
func (l *layout) placeY() {
	l.bandTop = titleH
	l.placeBandLabels()
	l.bandBot = l.bandTop + bandHead + float64(l.bandRows)*15 + 6
	y := l.bandBot
	firstRow := map[int]bool{}
	for _, p := range l.provs {
		firstRow[p.rows[0]] = true
	}
	for ri, r := range l.rows {
		ch := l.chans[ri]
		ch.y0 = y
		ch.y1 = y + 2*gutGap + float64(ch.nT+ch.nB)*laneSp
		if ri == 0 {
			ch.y1 = max(ch.y1, y+10)
		}
		r.top = ch.y1
		r.hdr = provPad
		for _, p := range r.provs {
			if p.rows[0] == ri {
				r.hdr = max(r.hdr, 10+float64(len(p.title))*17)
			}
		}
		r.boxTop = r.top + r.hdr
		r.bottom = r.boxTop + r.h + provPad
		y = r.bottom
	}
	last := l.chans[len(l.rows)]
	last.y0 = y
	last.y1 = y + 2*gutGap + float64(last.nT+last.nB)*laneSp
	l.legendTop = last.y1 + 10
	// Absolute boxes and ports.
	for _, r := range l.rows {
		for _, sn := range r.cols {
			sn.box.y = r.boxTop
			for _, gu := range sn.gn.Guests {
				l.nodes[gu.Name].box.y += r.boxTop
			}
		}
	}
	for _, le := range l.edges {
		for _, v := range le.vs {
			for _, e := range []*vend{v.a, v.b} {
				if e.kind == endPort {
					e.y += l.rows[e.node.row].boxTop
				}
			}
		}
	}
	for _, p := range l.provs {
		x0, x1 := math.Inf(1), math.Inf(-1)
		for _, ri := range p.rows {
			r := l.rows[ri]
			x0 = min(x0, r.cols[p.first[ri]].box.x-provPad)
			x1 = max(x1, r.cols[p.end[ri]-1].box.x+l.colW+provPad)
		}
		top := l.rows[p.rows[0]].top
		bot := l.rows[p.rows[len(p.rows)-1]].bottom
		p.box = lbox{x: x0, y: top, w: x1 - x0, h: bot - top}
	}
}

// placeBandLabels puts each ingress edge's label in the band right of
// where the edge leaves it, on the first row of the band where it fits.
func (l *layout) placeBandLabels() {
	type span struct{ x0, x1 float64 }
	var rows [][]span
	for _, le := range l.edges {
		if le.src != nil {
			continue
		}
		x := le.vs[0].x()
		w := tagW + textW(le.label, fontLabel) + 4
		x0 := x + 4
		if x0+w > l.width-margin-6 {
			x0 = x - 4 - w
		}
		x0 = max(x0, margin+6)
		r := 0
		for ; r < len(rows); r++ {
			ok := true
			for _, s := range rows[r] {
				if x0 < s.x1+6 && s.x0 < x0+w+6 {
					ok = false
					break
				}
			}
			if ok {
				break
			}
		}
		if r == len(rows) {
			rows = append(rows, nil)
		}
		rows[r] = append(rows[r], span{x0, x0 + w})
		le.band = [2]float64{x0, 0}
		le.bandRow = r
	}
	l.bandRows = max(1, len(rows))
}
