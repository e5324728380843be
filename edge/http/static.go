package httpedge

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// staticHandler serves files below a root opened with os.Root, so that no
// path (dot segments, symlinks pointing outside) can leave it, and fetches
// missing files from a fallback pool, caching them.
type staticHandler struct {
	root     *os.Root
	rootPath string
	files    *fileCache // shared by the handlers of one root
	fallback *pool
	cache    *cache
	pol      *cachePolicy // the fallback's use of cache
}

func (s *Server) buildStatic(ch *chain, sc *Static, res Resources) (*staticHandler, error) {
	if sc.Root == "" {
		return nil, errors.New("root is empty")
	}
	root, err := s.rootFor(sc.Root)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	sh := &staticHandler{root: root, rootPath: sc.Root, files: s.fileCaches[sc.Root]}
	if sc.Fallback != "" {
		p, err := res.pool(sc.Fallback)
		if err != nil {
			return nil, fmt.Errorf("fallback: %w", err)
		}
		ch.usePool(p)
		sh.fallback = p
	}
	if sc.Cache != "" {
		if sc.Fallback == "" {
			return nil, errors.New("cache: a cache needs a fallback upstream to fill it")
		}
		c, ok := res.Caches[sc.Cache]
		if !ok {
			return nil, fmt.Errorf("cache %q is not among the node's caches", sc.Cache)
		}
		if len(c.c.ttl) == 0 {
			return nil, fmt.Errorf("cache %q: ttl lists no status: no fallback answer would be cached", sc.Cache)
		}
		sh.cache = c.c
		sh.pol = fallbackPolicy(c.c)
	}
	return sh, nil
}

// rootFor opens a static root once per server (shared across Updates, so
// requests of an old chain keep working); called with s.mu held.
func (s *Server) rootFor(path string) (*os.Root, error) {
	if r, ok := s.roots[path]; ok {
		return r, nil
	}
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	if s.roots == nil {
		s.roots = map[string]*os.Root{}
		s.fileCaches = map[string]*fileCache{}
	}
	s.roots[path] = r
	s.fileCaches[path] = &fileCache{}
	return r, nil
}

// etagFor is nginx's ETag: hex modification time and size.
func etagFor(fi fs.FileInfo) string {
	return `"` + strconv.FormatInt(fi.ModTime().Unix(), 16) + "-" + strconv.FormatInt(fi.Size(), 16) + `"`
}

func (h *staticHandler) serve(s *Server, w *recorder, r *http.Request, rt *route, _ *bodyReader) {
	limitRanges(r)
	name, err := cleanStaticPath(r.URL.Path)
	if err != nil {
		if ok, suppressed := s.refusedLog.allow(s.opts.Now()); ok {
			rt.site.log.Warn("static path refused", "site", rt.site.name, "route", rt.path, "path", r.URL.Path, "peer", r.RemoteAddr, "err", err, "suppressed", suppressed)
		}
		s.errorPage(w, r, rt.site, http.StatusBadRequest, "bad path")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if h.fallback != nil {
			s.proxy(w, r, rt, h.fallback, nil)
			return
		}
		w.Header().Set("Allow", "GET, HEAD")
		s.errorPage(w, r, rt.site, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if cp := rt.compress; cp != nil && cp.static && h.serveGzipStatic(w, r, name) {
		return
	}
	e, err := h.files.acquire(name, h.open)
	switch {
	case err == nil:
		defer e.release()
		if plainGet(r) && w.presetFields(e) {
			// The head fields serialised once per open file: no
			// header map to fill and write out per answer.
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				w.sendFile(e)
			}
			return
		}
		hdr := w.Header()
		hdr["Etag"] = e.etag
		hdr["Content-Type"] = e.ctype
		serveOpenFile(w, r, e)
		return
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errIsDir):
		// try_files $uri @fallback
	default:
		// Symlink escaping the root, permission denied, ...: never served
		// and never sent to the fallback.
		if ok, suppressed := s.refusedLog.allow(s.opts.Now()); ok {
			rt.site.log.Warn("static file refused", "site", rt.site.name, "route", rt.path, "path", name, "peer", r.RemoteAddr, "err", err, "suppressed", suppressed)
		}
		s.errorPage(w, r, rt.site, http.StatusForbidden, "forbidden")
		return
	}
	if h.fallback == nil {
		s.errorPage(w, r, rt.site, http.StatusNotFound, "not found")
		return
	}
	if h.cache == nil {
		s.proxy(w, r, rt, h.fallback, nil)
		return
	}
	s.serveCache(w, r, rt, h.fallback, h.pol)
}

// serveGzipStatic serves NAME.gz to a client that accepts gzip, as
// nginx's gzip_static: the precompressed file is answered as NAME
// (its type, Content-Encoding: gzip, the .gz's own ETag and length;
// ranges and conditions apply to the .gz). It reports whether it
// answered; without a .gz (or a client that does not take gzip) the
// file itself is served.
func (h *staticHandler) serveGzipStatic(w *recorder, r *http.Request, name string) bool {
	if negotiate(r.Header["Accept-Encoding"], true, false) != encGzip {
		return false
	}
	e, err := h.files.acquire(name+".gz", h.open)
	if err != nil {
		return false
	}
	defer e.release()
	hdr := w.Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	hdr["Content-Type"] = []string{ct}
	hdr["Content-Encoding"] = gzipToken
	hdr["Etag"] = e.etag
	addVary(hdr)
	if plainGet(r) {
		// http.ServeContent leaves Content-Length out of an encoded
		// answer; the .gz's length is the body's.
		hdr["Content-Length"] = e.length
	}
	serveOpenFile(w, r, e)
	return true
}

// serveOpenFile answers with an open file whose ETag and type are set.
func serveOpenFile(w *recorder, r *http.Request, e *openFile) {
	hdr := w.Header()
	if plainGet(r) {
		// What http.ServeContent answers to a request with no
		// Range and no condition, without its header lookups and
		// date formatting per request (a quarter of the static
		// path's instructions).
		if e.lastMod != nil {
			hdr["Last-Modified"] = e.lastMod
		}
		hdr["Accept-Ranges"] = acceptRanges
		if _, ok := hdr["Content-Encoding"]; !ok {
			hdr["Content-Length"] = e.length
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.sendFile(e)
		}
		return
	}
	w.fileSR = *io.NewSectionReader(&e.rd, 0, e.size)
	http.ServeContent(w, r, e.name, e.modTime, &w.fileSR)
}

// sendFile sends the whole open file as the body: a small file from
// memory (with the head, in one writev on a plain connection), a larger
// one by sendfile.
func (w *recorder) sendFile(e *openFile) {
	if e.data != nil {
		_, _ = w.Write(e.data)
		return
	}
	// The readers live in the (pooled) recorder: no allocation per file;
	// io.CopyN's LimitedReader, and its hand-over to ReadFrom.
	w.fileSR = *io.NewSectionReader(&e.rd, 0, e.size)
	w.fileLR = io.LimitedReader{R: &w.fileSR, N: e.size}
	_, _ = w.ReadFrom(&w.fileLR)
}

// presetFields hands the file's serialised fields to a connection writer
// that takes them (edge/http/h1's; not HTTP/2), when nothing on the way
// rewrites them: the route's compression policy does not compress the
// file's type (it would add Vary, drop the length and weaken the ETag),
// and no added field or expires "modified" replaces or reads one of them.
func (w *recorder) presetFields(e *openFile) bool {
	if e.fields == nil || w.cpol != nil && w.cpol.compressesType(e.ctype[0]) || w.resp != nil && w.resp.touchesFileFields() {
		return false
	}
	pw, ok := w.w.(fieldPresetter)
	if !ok {
		return false
	}
	pw.PresetFields(e.fields, e.size)
	return true
}

// fieldPresetter is edge/http/h1's response writer (h1.response.PresetFields).
type fieldPresetter interface {
	PresetFields(fields []byte, contentLength int64)
}

var gzipToken = []string{"gzip"}

var errIsDir = errors.New("is a directory")

var acceptRanges = []string{"bytes"}

// plainGet reports whether r has none of the fields that make
// http.ServeContent answer other than 200 with the whole file.
func plainGet(r *http.Request) bool {
	for _, k := range [...]string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"} {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	return true
}

// open opens a regular file (or a directory's index.html).
func (h *staticHandler) open(name string) (*os.File, fs.FileInfo, error) {
	f, err := h.root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if fi.IsDir() {
		f.Close()
		if name == "." {
			name = ""
		} else {
			name += "/"
		}
		f, err = h.root.Open(name + "index.html")
		if err != nil {
			return nil, nil, errIsDir
		}
		if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, nil, errIsDir
		}
		return f, fi, nil
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file", name)
	}
	return f, fi, nil
}

// cacheRequestHeaders are not forwarded when filling the cache: the entry
// must be the whole, unconditional response.
var cacheRequestHeaders = []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "Cookie", "Authorization"}

// entry is one cached response.
type entry struct {
	key     string // cacheKey of the request URI
	status  int
	header  []headerKV // storedHeaders fields, copied out of the response
	body    []byte     // memory cache
	file    string     // disk cache: body file
	size    int64      // body length
	cost    int64      // what the entry counts against max_bytes (entryCost)
	expires time.Time
	modTime time.Time
	used    time.Time // last stored or looked up (inactive)
}

// entryCost is what an entry counts against the cache's bound: its body
// (the allocation in memory, the file on disk), its header fields and the
// bookkeeping around it. For a disk entry, the body is on disk and the
// rest in memory: the bound covers both together.
func (e *entry) entryCost() int64 {
	n := int64(entryOverhead) + int64(cap(e.body))
	if e.body == nil {
		n += e.size
	}
	for _, kv := range e.header {
		n += headerFieldOverhead + int64(len(kv.k)+len(kv.v))
	}
	return n
}

func (e *entry) httpHeader() http.Header {
	h := http.Header{}
	for _, kv := range e.header {
		h[kv.k] = append(h[kv.k], kv.v)
	}
	return h
}

// storedFields copies the storedHeaders fields of h, detached from the
// response's buffers.
func storedFields(h http.Header) []headerKV {
	var out []headerKV
	for _, k := range storedHeaders {
		for _, v := range h[k] {
			out = append(out, headerKV{k, strings.Clone(v)})
		}
	}
	return slices.Clip(out)
}

// storedHeaders are the response fields kept with an entry.
var storedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Cache-Control", "Expires", "Etag", "Last-Modified", "Link", "Vary", "Content-Disposition"}

func newEntry(key string, resp *http.Response, body []byte, now time.Time) *entry {
	e := &entry{key: key, status: resp.StatusCode, header: storedFields(resp.Header), body: body, size: int64(len(body))}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		e.modTime = lm
	}
	return e
}

// cacheable reports whether a response may be stored, as nginx decides
// when proxy_cache_valid applies: not with Set-Cookie, no-store, private,
// no-cache or Vary: *.
func cacheable(resp *http.Response) bool {
	if len(resp.Header["Set-Cookie"]) > 0 {
		return false
	}
	cc := strings.ToLower(strings.Join(resp.Header["Cache-Control"], ","))
	if strings.Contains(cc, "no-store") || strings.Contains(cc, "private") || strings.Contains(cc, "no-cache") {
		return false
	}
	return resp.Header.Get("Vary") != "*"
}
