package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HeaderStandin is the response header every HTTP stand-in sets, with the
// value "<service>@<node>".
const HeaderStandin = "X-Offedge-Standin"

// Bounds of the HTTP stand-ins.
const (
	maxHeaderBytes  = 64 << 10
	maxRequestBody  = 10 << 20 // /lab/request reads and counts at most this much
	maxSlowBytes    = 10 << 20
	maxSlowInterval = time.Second
	maxSlowTotal    = 60 * time.Second
	maxSlowChunk    = 1 << 20
)

// httpServer is the stand-in for HTTP applications: Product Opener, a
// generic web application or InfluxDB, depending on kind.
type httpServer struct {
	kind   string
	info   Info
	opts   Options
	srv    *http.Server
	mux    *http.ServeMux
	images map[string][]byte // Product Opener: image path → JPEG

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{} // open connections, hijacked ones included
	serving  sync.WaitGroup        // Serve calls
	connsWG  sync.WaitGroup        // connections owned by net/http
	handlers sync.WaitGroup        // handlers running, WebSocket echoes included
}

func newHTTP(kind string, info Info, opts Options) *httpServer {
	ctx, cancel := context.WithCancel(context.Background())
	s := &httpServer{kind: kind, info: info, opts: opts, ctx: ctx, cancel: cancel,
		mux: http.NewServeMux(), conns: map[net.Conn]struct{}{}}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState:         s.connState,
	}
	switch kind {
	case "product-opener":
		s.routeProductOpener()
	case "influxdb":
		s.mux.HandleFunc("/ping", s.influxPing)
		s.mux.HandleFunc("/health", s.influxHealth)
		s.mux.HandleFunc("/{$}", s.genericHome)
	default:
		s.mux.HandleFunc("/health", s.health)
		// Grafana's health endpoint, which the monitoring upstream's
		// health check (and its probe) ask for.
		s.mux.HandleFunc("/api/health", s.health)
		s.mux.HandleFunc("/{$}", s.genericHome)
	}
	s.mux.HandleFunc("/", s.notFound)
	s.mux.HandleFunc("/lab/request", s.labRequest)
	s.mux.HandleFunc("/lab/request/", s.labRequest)
	s.mux.HandleFunc("/lab/slow", s.labSlow)
	s.mux.HandleFunc("/lab/ws", s.labWebSocket)
	return s
}

func (s *httpServer) Kind() string { return s.kind }

func (s *httpServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("standin %s: serving %s: %w", s.info.label(), ln.Addr(), err)
}

func (s *httpServer) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	err := s.srv.Close()
	s.serving.Wait() // no connection is accepted after this
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.connsWG.Wait()
	s.handlers.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil // the lab closed the listener first
	}
	return err
}

// connState tracks net/http's connections so that Close can wait for them.
// StateNew runs in the Serve goroutine, before Serve can return.
func (s *httpServer) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.connsWG.Add(1)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		if s.closed {
			c.Close()
		}
		s.mu.Unlock()
	case http.StateClosed:
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.connsWG.Done()
	case http.StateHijacked:
		// The WebSocket handler owns the connection now; it stays in
		// s.conns so that Close closes it, and the handler is waited for.
		s.connsWG.Done()
	}
}

// ServeHTTP labels every response and tracks the handler.
func (s *httpServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		w.Header().Set(HeaderStandin, s.info.label())
		w.Header().Set("Connection", "close")
		http.Error(w, "offedge stand-in is shutting down", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	w.Header().Set(HeaderStandin, s.info.label())
	s.mux.ServeHTTP(w, r)
}

// getOrHead answers 405 unless the request is a GET or a HEAD.
func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func (s *httpServer) writeHTML(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageData is what every HTML page shows about the stand-in.
type pageData struct {
	Title, Service, Node, Label, Kind string
	Flavor, FlavorName, Site          string
	Products                          []productView
	Product                           *productView
	Path                              string
}

type productView struct {
	Product
	Link     string
	ImageURL string
}

func (s *httpServer) page() pageData {
	d := pageData{Title: s.info.title(), Service: s.info.Service, Node: s.info.Node, Label: s.info.label(), Kind: s.kind}
	if f, ok := flavors[s.info.Flavor]; ok {
		d.Flavor, d.FlavorName, d.Site = s.info.Flavor, f.Name, f.Site
	}
	return d
}

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · offedge stand-in</title></head>
<body>
<p><em>offedge stand-in for {{.Service}} on {{.Node}} ({{.Kind}}), not the real application.</em></p>
{{end}}
{{define "foot"}}<p><a href="/lab/request">what this stand-in saw of your request</a></p>
</body></html>
{{end}}
{{define "generic"}}{{template "head" .}}<h1>{{.Title}}</h1>
<p>Service <code>{{.Service}}</code> on node <code>{{.Node}}</code>.</p>
{{template "foot" .}}{{end}}
{{define "notfound"}}{{template "head" .}}<h1>Not found</h1>
<p>{{.Path}} is not a page of this stand-in.</p>
{{template "foot" .}}{{end}}
{{define "po-home"}}{{template "head" .}}<h1>{{.FlavorName}} ({{.Flavor}})</h1>
<p>Stand-in for {{.Site}}: {{len .Products}} products.</p>
<ul>
{{range .Products}}<li><a href="{{.Link}}">{{.Name}}</a> — {{.Brands}}, {{.Quantity}} ({{.Code}})</li>
{{end}}</ul>
{{template "foot" .}}{{end}}
{{define "po-product"}}{{template "head" .}}{{with .Product}}<h1>{{.Name}}</h1>
<p>Barcode: <code>{{.Code}}</code></p>
<p>Brands: {{.Brands}}</p>
<p>Quantity: {{.Quantity}}</p>
<ul>{{range .Categories}}<li>{{.}}</li>{{end}}</ul>
<img src="{{.ImageURL}}" alt="{{.Name}}" width="64" height="64">
{{end}}<p><a href="/">{{.FlavorName}}</a></p>
{{template "foot" .}}{{end}}
{{define "po-notfound"}}{{template "head" .}}<h1>Product not found</h1>
<p>No product with barcode <code>{{.Path}}</code> on this {{.FlavorName}} stand-in.</p>
{{template "foot" .}}{{end}}
`))

func (s *httpServer) notFound(w http.ResponseWriter, r *http.Request) {
	d := s.page()
	d.Path = r.URL.Path
	s.writeHTML(w, http.StatusNotFound, "notfound", d)
}

func (s *httpServer) genericHome(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	s.writeHTML(w, http.StatusOK, "generic", s.page())
}

func (s *httpServer) health(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": s.info.Service, "node": s.info.Node, "standin": s.info.label()})
}

func (s *httpServer) influxPing(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	w.Header().Set("X-Influxdb-Version", "offedge-standin")
	w.Header().Set("X-Influxdb-Build", "OSS")
	w.WriteHeader(http.StatusNoContent)
}

func (s *httpServer) influxHealth(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	w.Header().Set("X-Influxdb-Version", "offedge-standin")
	writeJSON(w, http.StatusOK, map[string]any{"name": "influxdb", "message": "ready for queries and writes (offedge stand-in)",
		"status": "pass", "checks": []any{}, "version": "offedge-standin", "service": s.info.Service, "standin": s.info.label()})
}

// RequestInfo is the JSON /lab/request answers: what the application saw of
// the request, for tests of the proxies in front of it.
type RequestInfo struct {
	Standin         string              `json:"standin"` // "<service>@<node>"
	Method          string              `json:"method"`
	Host            string              `json:"host"`
	Path            string              `json:"path"`
	Query           string              `json:"query"`
	Proto           string              `json:"proto"` // e.g. "HTTP/1.1"
	TLS             bool                `json:"tls"`   // the stand-in's own listener was TLS
	RemoteAddr      string              `json:"remote_addr"`
	XForwardedFor   string              `json:"x_forwarded_for"`
	XRealIP         string              `json:"x_real_ip"`
	XForwardedProto string              `json:"x_forwarded_proto"`
	XForwardedHost  string              `json:"x_forwarded_host"`
	Headers         map[string][]string `json:"headers"`    // every request header
	BodyBytes       int64               `json:"body_bytes"` // length of the request body read
}

func (s *httpServer) labRequest(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", maxRequestBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, RequestInfo{
		Standin:         s.info.label(),
		Method:          r.Method,
		Host:            r.Host,
		Path:            r.URL.Path,
		Query:           r.URL.RawQuery,
		Proto:           r.Proto,
		TLS:             r.TLS != nil,
		RemoteAddr:      r.RemoteAddr,
		XForwardedFor:   strings.Join(r.Header.Values("X-Forwarded-For"), ", "),
		XRealIP:         r.Header.Get("X-Real-IP"),
		XForwardedProto: r.Header.Get("X-Forwarded-Proto"),
		XForwardedHost:  r.Header.Get("X-Forwarded-Host"),
		Headers:         r.Header,
		BodyBytes:       n,
	})
}

// slowParams are the parameters of /lab/slow.
type slowParams struct {
	bytes, chunk int
	interval     time.Duration
}

// parseSlow reads bytes (default 65536, at most 10 MiB), interval (a Go
// duration or milliseconds, default 100ms, at most 1s) and chunk (default
// 16384, at most 1 MiB); the whole download must last at most 60 s.
func parseSlow(q map[string][]string) (slowParams, error) {
	p := slowParams{bytes: 64 << 10, chunk: 16 << 10, interval: 100 * time.Millisecond}
	get := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	if v, ok := get("bytes"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxSlowBytes {
			return p, fmt.Errorf("bytes=%q: want an integer from 0 to %d", v, maxSlowBytes)
		}
		p.bytes = n
	}
	if v, ok := get("chunk"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSlowChunk {
			return p, fmt.Errorf("chunk=%q: want an integer from 1 to %d", v, maxSlowChunk)
		}
		p.chunk = n
	}
	if v, ok := get("interval"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			ms, err2 := strconv.Atoi(v)
			if err2 != nil {
				return p, fmt.Errorf("interval=%q: want a duration such as 250ms", v)
			}
			d = time.Duration(ms) * time.Millisecond
		}
		if d < 0 || d > maxSlowInterval {
			return p, fmt.Errorf("interval=%q: want a duration from 0 to %v", v, maxSlowInterval)
		}
		p.interval = d
	}
	chunks := (p.bytes + p.chunk - 1) / p.chunk
	if chunks > 1 && time.Duration(chunks-1)*p.interval > maxSlowTotal {
		return p, fmt.Errorf("%d chunks every %v would last longer than %v; raise chunk or lower interval", chunks, p.interval, maxSlowTotal)
	}
	return p, nil
}

// slowByte is the content of /lab/slow at offset i: a repeating alphabet, so
// that a test can check every byte arrived in order.
func slowByte(i int) byte { return 'a' + byte(i%26) }

func (s *httpServer) labSlow(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	p, err := parseSlow(r.URL.Query())
	if err != nil {
		http.Error(w, "/lab/slow: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(p.bytes))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	buf := make([]byte, min(p.chunk, max(p.bytes, 1)))
	for off := 0; off < p.bytes; {
		if off > 0 && p.interval > 0 {
			t := time.NewTimer(p.interval)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		n := min(p.chunk, p.bytes-off)
		for i := range n {
			buf[i] = slowByte(off + i)
		}
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.Write(buf[:n]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		off += n
	}
}

// Product Opener.

func (s *httpServer) routeProductOpener() {
	s.images = map[string][]byte{}
	for _, p := range flavors[s.info.Flavor].Products {
		for n := 1; n <= p.Images; n++ {
			if data, err := ImageJPEG(p.Code, n); err == nil {
				s.images[ImagePath(p.Code, n)] = data
			}
		}
	}
	s.mux.HandleFunc("/{$}", s.poHome)
	s.mux.HandleFunc("/product/{code}", s.poProduct)
	s.mux.HandleFunc("/product/{code}/{slug}", s.poProduct)
	s.mux.HandleFunc("/api/v2/product/{code}", s.poAPI)
	s.mux.HandleFunc("/images/products/", s.poImage)
	s.mux.HandleFunc("/health", s.health)
}

// slug is Product Opener's URL slug of a product name, close enough.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch r {
		case 'à', 'â', 'ä':
			r = 'a'
		case 'é', 'è', 'ê', 'ë':
			r = 'e'
		case 'î', 'ï':
			r = 'i'
		case 'ô', 'ö':
			r = 'o'
		case 'ù', 'û', 'ü':
			r = 'u'
		case 'ç':
			r = 'c'
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func (s *httpServer) view(p Product) productView {
	return productView{Product: p, Link: "/product/" + p.Code + "/" + slug(p.Name), ImageURL: imageURL(s.info.Flavor, p.Code, 1)}
}

func (s *httpServer) poHome(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	d := s.page()
	for _, p := range flavors[s.info.Flavor].Products {
		d.Products = append(d.Products, s.view(p))
	}
	s.writeHTML(w, http.StatusOK, "po-home", d)
}

func (s *httpServer) poProduct(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	d := s.page()
	code := r.PathValue("code")
	p, ok := findProduct(s.info.Flavor, code)
	if !ok {
		d.Path = code
		s.writeHTML(w, http.StatusNotFound, "po-notfound", d)
		return
	}
	v := s.view(p)
	d.Product = &v
	d.Title = p.Name + " – " + d.FlavorName
	s.writeHTML(w, http.StatusOK, "po-product", d)
}

// apiProduct is the product object of Product Opener's API v2.
type apiProduct struct {
	Code           string   `json:"code"`
	ProductName    string   `json:"product_name"`
	Brands         string   `json:"brands"`
	Quantity       string   `json:"quantity"`
	CategoriesTags []string `json:"categories_tags"`
	ImageFrontURL  string   `json:"image_front_url,omitempty"`
	Images         int      `json:"offedge_images"`
}

type apiAnswer struct {
	Code          string      `json:"code"`
	Product       *apiProduct `json:"product,omitempty"`
	Status        int         `json:"status"`
	StatusVerbose string      `json:"status_verbose"`
}

func (s *httpServer) poAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"status": 0, "status_verbose": "method not allowed", "method": r.Method})
		return
	}
	code := strings.TrimSuffix(r.PathValue("code"), ".json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	p, ok := findProduct(s.info.Flavor, code)
	if !ok || !validBarcode(code) {
		writeJSON(w, http.StatusNotFound, apiAnswer{Code: code, Status: 0, StatusVerbose: "product not found"})
		return
	}
	ap := &apiProduct{Code: p.Code, ProductName: p.Name, Brands: p.Brands, Quantity: p.Quantity,
		CategoriesTags: p.Categories, Images: p.Images}
	if p.Images > 0 {
		ap.ImageFrontURL = imageURL(s.info.Flavor, p.Code, 1)
	}
	writeJSON(w, http.StatusOK, apiAnswer{Code: p.Code, Product: ap, Status: 1, StatusVerbose: "product found"})
}

// poImage serves the generated product images, as Product Opener's origin
// does for the images servers' fallback.
func (s *httpServer) poImage(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	data, ok := s.images[r.URL.Path]
	if !ok {
		http.Error(w, "image not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}
