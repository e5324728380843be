package httpedge

import (
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Open-file cache (nginx open_file_cache): the descriptor, size, time and
// precomputed header values of recently served files, so that a hit costs
// no open, fstat or close. Entries are looked up again through os.Root
// after openFileTTL, so a replaced or removed file is seen within that time
// and traversal safety is the same as without the cache (only what
// os.Root opened is ever cached). Bounded by openFileMax entries: when
// full, expired entries are swept (at most once per TTL) and a file that
// still does not fit is served uncached.
//
// A file of at most smallFileMax bytes is also read into the entry when it
// is opened: its answer is written from memory, head and body in one
// writev (edgeConn.WriteHeadBody), not a write then a sendfile. At most
// openFileMax × smallFileMax (16 MiB) are held so.
const (
	openFileTTL  = time.Second
	openFileMax  = 1024
	smallFileMax = 16 << 10
)

type fileCache struct {
	mu        sync.Mutex
	m         map[string]*openFile
	lastSweep time.Time
}

// openFile is one open regular file. It is shared by concurrent requests,
// which read it at explicit offsets (pread, sendfile with an offset), never
// through the file position. It is closed when the cache has dropped it and
// the last request using it is done.
type openFile struct {
	f       *os.File
	fd      int
	name    string // as opened (a directory's index.html included)
	size    int64
	modTime time.Time
	etag    []string // header values, len == cap so that no append writes into them
	ctype   []string
	lastMod []string // Last-Modified, nil for a zero time (as http.ServeContent)
	length  []string // Content-Length of the whole file
	fields  []byte   // the 200 answer's fields but Content-Length, serialised (presetFields)
	data    []byte   // the content of a small file (smallFileMax), nil otherwise
	expires time.Time
	refs    atomic.Int32
	rd      openFileReader // the ReaderAt over f that responses read through
}

func (e *openFile) release() {
	if e.refs.Add(-1) == 0 {
		e.f.Close()
	}
}

// acquire returns the open file for name (cleaned, relative to the root),
// opening it when it is not cached or expired. The caller releases it.
func (c *fileCache) acquire(name string, open func(string) (*os.File, fs.FileInfo, error)) (*openFile, error) {
	now := time.Now()
	c.mu.Lock()
	e := c.m[name]
	if e != nil {
		if now.Before(e.expires) {
			e.refs.Add(1)
			c.mu.Unlock()
			return e, nil
		}
		delete(c.m, name)
	}
	c.mu.Unlock()
	if e != nil {
		e.release() // the cache's reference
	}
	f, fi, err := open(name)
	if err != nil {
		return nil, err
	}
	e = &openFile{f: f, name: fi.Name(), size: fi.Size(), modTime: fi.ModTime(), expires: now.Add(openFileTTL)}
	e.rd.e = e
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { e.fd = int(fd) })
	}
	e.etag = []string{etagFor(fi)}
	e.length = []string{strconv.FormatInt(e.size, 10)}
	if mt := e.modTime; !mt.IsZero() && !mt.Equal(time.Unix(0, 0)) {
		e.lastMod = []string{mt.UTC().Format(http.TimeFormat)}
	}
	if e.size <= smallFileMax {
		// Read whole or not at all: a file that shrank meanwhile is sent
		// from its descriptor, as a large one (and cut short).
		if b := make([]byte, e.size); len(b) == 0 {
			e.data = b
		} else if n, _ := f.ReadAt(b, 0); n == len(b) {
			e.data = b
		}
	}
	if ct := mime.TypeByExtension(path.Ext(e.name)); ct != "" {
		e.ctype = []string{ct}
	} else if e.data != nil {
		e.ctype = []string{http.DetectContentType(e.data)}
	} else {
		var buf [512]byte
		n, _ := f.ReadAt(buf[:], 0)
		e.ctype = []string{http.DetectContentType(buf[:n])}
	}
	e.fields = e.appendFields(nil)
	e.refs.Store(1) // the caller's
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]*openFile)
	}
	if len(c.m) >= openFileMax && now.Sub(c.lastSweep) >= openFileTTL {
		c.lastSweep = now
		var drop []*openFile
		for k, x := range c.m {
			if !now.Before(x.expires) {
				delete(c.m, k)
				drop = append(drop, x)
			}
		}
		defer func() {
			for _, x := range drop {
				x.release()
			}
		}()
	}
	if _, dup := c.m[name]; !dup && len(c.m) < openFileMax {
		e.refs.Add(1)
		c.m[strings.Clone(name)] = e // name may be part of a request's head
	}
	c.mu.Unlock()
	return e, nil
}

// appendFields serialises the fields of a plain 200 answer with the
// whole file (serveOpenFile's), but Content-Length, which the connection
// writes from the length: the head a hit sends without building a header
// map. A value with a line break (none of these can have one) gives nil:
// the answer goes through the map, where the writer blanks it.
func (e *openFile) appendFields(b []byte) []byte {
	for _, f := range [...]struct {
		k string
		v []string
	}{{"Etag", e.etag}, {"Content-Type", e.ctype}, {"Last-Modified", e.lastMod}, {"Accept-Ranges", acceptRanges}} {
		if len(f.v) == 0 {
			continue
		}
		if strings.ContainsAny(f.v[0], "\r\n") {
			return nil
		}
		b = append(b, f.k...)
		b = append(b, ": "...)
		b = append(b, f.v[0]...)
		b = append(b, "\r\n"...)
	}
	return b
}

// closeAll drops every cached file (on Shutdown); files in use are closed
// by their last request.
func (c *fileCache) closeAll() {
	c.mu.Lock()
	m := c.m
	c.m = nil
	c.mu.Unlock()
	for _, e := range m {
		e.release()
	}
}

// fileSection is the part of an open file that a response sends: served
// with sendfile at an explicit offset when the connection is plain TCP,
// read with pread otherwise.
func fileSection(src io.Reader) (fd int, off, n int64, ok bool) {
	lr, isLR := src.(*io.LimitedReader)
	if !isLR {
		return 0, 0, 0, false
	}
	sr, isSR := lr.R.(*io.SectionReader)
	if !isSR {
		return 0, 0, 0, false
	}
	ra, base, size := sr.Outer()
	of, isOF := ra.(*openFileReader)
	if !isOF {
		return 0, 0, 0, false
	}
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, 0, 0, false
	}
	return of.e.fd, base + pos, min(lr.N, size-pos), true
}

// openFileReader gives a shared open file to io.SectionReader (ReadAt).
type openFileReader struct{ e *openFile }

func (r *openFileReader) ReadAt(p []byte, off int64) (int, error) { return r.e.f.ReadAt(p, off) }

// advance moves a LimitedReader over a SectionReader past n bytes sent
// without reading them.
func advance(src io.Reader, n int64) {
	lr := src.(*io.LimitedReader)
	lr.N -= n
	lr.R.(*io.SectionReader).Seek(n, io.SeekCurrent)
}
