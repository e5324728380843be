package httpedge

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBufferedEntry bounds the body kept in memory while a fallback answer
// is fetched for the cache; larger answers are streamed uncached.
const maxBufferedEntry = 64 << 20

// MaxCacheKeyBytes is the longest request URI the fallback cache stores;
// longer ones are proxied uncached (X-Cache-Status: BYPASS). Keys are kept
// as their SHA-256, so the bound is on what one client can make the cache
// index, not on memory per key.
const MaxCacheKeyBytes = 2048

// Accounted bookkeeping per entry, on top of its body and header bytes: the
// entry struct, its LRU element, its index slot and key (32 bytes), each
// rounded up to Go's allocation size classes; and per stored header field,
// its slice slot and two string headers. TestCacheBoundsMemory checks these
// against the heap.
const (
	entryOverhead       = 384
	headerFieldOverhead = 48
)

// cacheKey is the index key of a request URI: its SHA-256, as a string.
func cacheKey(uri string) string {
	sum := sha256.Sum256([]byte(uri))
	return string(sum[:])
}

// cache is an LRU of fallback responses bounded by MaxBytes, in memory or
// on disk (one body file and one meta file per entry, so that disk hits go
// out by sendfile). Concurrent misses for one key make one upstream
// request (flight). The bound counts each entry's cost: body, kept header
// fields and bookkeeping (entryCost), so that many tiny entries cannot
// take more memory than it says.
type cache struct {
	dir  string
	max  int64
	ttl  map[int]time.Duration
	now  func() time.Time
	mu   sync.Mutex
	ll   *list.List               // front = most recent
	m    map[string]*list.Element // by cacheKey
	size int64                    // sum of entry costs
	uses map[string]int           // requests per key, for min_uses
	// inactive drops entries unused for that long (0: never).
	inactive time.Duration

	flight flightGroup
	counts cacheCounts
}

// cacheResults are the answers a cache counts, as X-Cache-Status says them
// (nginx's $upstream_cache_status).
var cacheResults = [...]string{"HIT", "MISS", "EXPIRED", "STALE", "UPDATING", "BYPASS"}

// cacheCounts count a cache's answers by result and its removals.
type cacheCounts struct {
	results  [len(cacheResults)]atomic.Uint64
	evicted  atomic.Uint64 // removed to make room (max_size)
	inactive atomic.Uint64 // removed unused (inactive)
}

// mark records the cache's answer for the access log and the cache's
// counters.
func (c *cache) mark(w *recorder, status string) {
	w.cache = status
	for i, r := range cacheResults {
		if r == status {
			c.counts.results[i].Add(1)
			return
		}
	}
}

// CacheStats are a cache's contents and counters.
type CacheStats struct {
	Entries  int               `json:"entries"`
	Bytes    int64             `json:"bytes"`
	MaxBytes int64             `json:"max_bytes"`
	Results  map[string]uint64 `json:"results"`
	Evicted  uint64            `json:"evicted"`
	Inactive uint64            `json:"inactive"`
}

func (c *cache) fullStats() CacheStats {
	n, size := c.stats()
	st := CacheStats{Entries: n, Bytes: size, MaxBytes: c.max, Results: make(map[string]uint64, len(cacheResults)),
		Evicted: c.counts.evicted.Load(), Inactive: c.counts.inactive.Load()}
	for i, r := range cacheResults {
		st.Results[r] = c.counts.results[i].Load()
	}
	return st
}

// sweepLocked drops the entries unused for inactive: the list is in order
// of use, so they are at its back.
func (c *cache) sweepLocked(now time.Time) {
	if c.inactive <= 0 {
		return
	}
	for el := c.ll.Back(); el != nil; el = c.ll.Back() {
		if now.Sub(el.Value.(*entry).used) < c.inactive {
			return
		}
		c.removeLocked(el)
		c.counts.inactive.Add(1)
	}
}

// newCache builds the cache cfg describes, loading a disk cache's entries.
func newCache(cfg Cache, now func() time.Time) (*cache, error) {
	if cfg.MaxBytes <= 0 {
		return nil, errors.New("max_bytes must be positive")
	}
	for code, d := range cfg.TTL {
		if code < 100 || code > 599 || d <= 0 {
			return nil, fmt.Errorf("ttl for %d: a status and a positive duration", code)
		}
	}
	if cfg.Inactive < 0 {
		return nil, fmt.Errorf("inactive %v: must not be negative", cfg.Inactive)
	}
	c := &cache{dir: cfg.Dir, max: cfg.MaxBytes, ttl: cfg.TTL, now: now, ll: list.New(), m: map[string]*list.Element{}, inactive: cfg.Inactive}
	if c.dir != "" {
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, err
		}
		if err := c.loadDisk(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *cache) entryLimit() int64 { return min(c.max, maxBufferedEntry) }

// get returns a fresh entry, or nil; expired entries are dropped.
func (c *cache) get(key string) *entry {
	e, fresh := c.lookup(key, false)
	if !fresh {
		return nil
	}
	return e
}

// lookup returns the entry of key and whether it is fresh. An expired
// entry is returned (not fresh) when keepStale, for use_stale; otherwise it
// is dropped and lookup returns nil.
func (c *cache) lookup(key string, keepStale bool) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	el, ok := c.m[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	e.used = now
	if !now.Before(e.expires) {
		if !keepStale {
			c.removeLocked(el)
			return nil, false
		}
		c.ll.MoveToFront(el)
		return e, false
	}
	c.ll.MoveToFront(el)
	return e, true
}

// put stores e when its status has a TTL and the response allows caching
// (the static fallback's rules); it reports whether it did.
func (c *cache) put(e *entry, resp *http.Response) bool {
	c.mu.Lock()
	ttl, ok := c.ttl[e.status]
	c.mu.Unlock()
	if !ok || !cacheable(resp) {
		return false
	}
	return c.store(e, ttl)
}

// store keeps e for ttl; it reports whether it did (an entry larger than
// the whole cache, or a disk write that failed, is not kept).
func (c *cache) store(e *entry, ttl time.Duration) bool {
	e.cost = e.entryCost()
	if e.cost > c.max || ttl <= 0 {
		return false
	}
	now := c.now()
	e.expires, e.used = now.Add(ttl), now
	if c.dir != "" {
		if err := c.writeDisk(e); err != nil {
			return false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[e.key]; ok {
		c.removeLocked(old)
	}
	c.m[e.key] = c.ll.PushFront(e)
	c.size += e.cost
	c.sweepLocked(now)
	for c.size > c.max && c.ll.Len() > 0 {
		c.removeLocked(c.ll.Back())
		c.counts.evicted.Add(1)
	}
	return true
}

// maxUseCounts bounds the keys whose requests are counted for min_uses
// (nginx counts them in the keys zone); when full the counts start over.
const maxUseCounts = 1 << 16

// use counts one request of key and returns the count so far (min_uses).
func (c *cache) use(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.uses == nil || len(c.uses) >= maxUseCounts {
		c.uses = map[string]int{}
	}
	c.uses[key]++
	n := c.uses[key]
	return n
}

// purge drops the entry of key; it reports whether there was one.
func (c *cache) purge(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return false
	}
	c.removeLocked(el)
	delete(c.uses, key)
	return true
}

func (c *cache) removeLocked(el *list.Element) {
	e := el.Value.(*entry)
	c.ll.Remove(el)
	delete(c.m, e.key)
	c.size -= e.cost
	if e.file != "" {
		os.Remove(e.file)
		os.Remove(strings.TrimSuffix(e.file, ".body") + ".meta")
	}
}

// len and bytes are for tests and stats.
func (c *cache) stats() (n int, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(c.now())
	return c.ll.Len(), c.size
}

type diskMeta struct {
	Key     string      `json:"key,omitempty"`  // the request URI (older versions)
	Hash    string      `json:"hash,omitempty"` // hex SHA-256 of the request URI
	Status  int         `json:"status"`
	Header  http.Header `json:"header"`
	Size    int64       `json:"size"`
	Expires time.Time   `json:"expires"`
	ModTime time.Time   `json:"mod_time"`
}

func (c *cache) paths(key string) (body, meta string) {
	h := hex.EncodeToString([]byte(key))
	base := filepath.Join(c.dir, h[:2], h)
	return base + ".body", base + ".meta"
}

// writeDisk writes body then meta (each by rename), so a crash leaves no
// meta without its body; the in-memory copy of the body is dropped.
func (c *cache) writeDisk(e *entry) error {
	bodyPath, metaPath := c.paths(e.key)
	if err := os.MkdirAll(filepath.Dir(bodyPath), 0o700); err != nil {
		return err
	}
	if err := writeFileAtomic(bodyPath, e.body); err != nil {
		return err
	}
	meta, _ := json.Marshal(diskMeta{Hash: hex.EncodeToString([]byte(e.key)), Status: e.status, Header: e.httpHeader(), Size: e.size, Expires: e.expires, ModTime: e.modTime})
	if err := writeFileAtomic(metaPath, meta); err != nil {
		os.Remove(bodyPath)
		return err
	}
	e.file = bodyPath
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadDisk indexes the entries a previous run left, oldest first, dropping
// expired or broken ones. Only files of our own naming are touched.
func (c *cache) loadDisk() error {
	type found struct {
		e   *entry
		mod time.Time
	}
	var all []found
	now := c.now()
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".meta") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var m diskMeta
		bodyPath := strings.TrimSuffix(path, ".meta") + ".body"
		fi, statErr := os.Stat(bodyPath)
		bad := json.Unmarshal(raw, &m) != nil
		key := ""
		if m.Hash != "" {
			if h, err := hex.DecodeString(m.Hash); err == nil && len(h) == sha256.Size {
				key = string(h)
			}
		} else if m.Key != "" {
			key = cacheKey(m.Key)
		}
		if bad || key == "" || statErr != nil || fi.Size() != m.Size || !now.Before(m.Expires) {
			if bp, _ := c.paths(key); key == "" || bp == bodyPath {
				os.Remove(path)
				os.Remove(bodyPath)
			}
			return nil
		}
		e := &entry{key: key, status: m.Status, header: metaFields(m.Header), size: m.Size, expires: m.Expires, modTime: m.ModTime, file: bodyPath, used: now}
		e.cost = e.entryCost()
		all = append(all, found{e, fi.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.Before(all[j].mod) })
	for _, f := range all {
		if old, ok := c.m[f.e.key]; ok {
			c.removeLocked(old)
		}
		c.m[f.e.key] = c.ll.PushFront(f.e)
		c.size += f.e.cost
	}
	for c.size > c.max && c.ll.Len() > 0 {
		c.removeLocked(c.ll.Back())
	}
	return nil
}

// serve writes an entry: a 200 goes through http.ServeContent (Range,
// conditionals; sendfile for disk entries), others as they were.
func (c *cache) serve(w *recorder, r *http.Request, e *entry, status string) {
	h := w.Header()
	for _, kv := range e.header {
		h[kv.k] = append(h[kv.k], kv.v)
	}
	h.Set("X-Cache-Status", status)
	if e.file != "" {
		f, err := os.Open(e.file)
		if err != nil { // evicted between lookup and open
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		defer f.Close()
		if e.status == http.StatusOK {
			http.ServeContent(w, r, "", e.modTime, f)
			return
		}
		h.Set("Content-Length", strconv.FormatInt(e.size, 10))
		w.WriteHeader(e.status)
		if r.Method != http.MethodHead {
			w.ReadFrom(f)
		}
		return
	}
	if e.status == http.StatusOK {
		http.ServeContent(w, r, "", e.modTime, bytes.NewReader(e.body))
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		w.Write(e.body)
	}
}

// fetchResult is what one flight produced for every caller of a key.
type fetchResult struct {
	entry  *entry
	stored bool
	tooBig bool
	err    error
	server *backend
	took   time.Duration // asking the upstream, until its body was read
}

// flightGroup runs one fetch per key at a time; callers arriving while it
// runs wait for its result (nginx proxy_cache_lock).
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	res  *fetchResult
}

// running reports whether a fetch of key is under way.
func (g *flightGroup) running(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.calls[key]
	return ok
}

func (g *flightGroup) do(key string, fn func() *fetchResult) (res *fetchResult, shared bool) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flightCall{}
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		<-c.done
		return c.res, true
	}
	c := &flightCall{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()
	defer func() {
		if c.res == nil { // fn panicked
			c.res = &fetchResult{err: errors.New("cache fill aborted")}
		}
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.res = fn()
	return c.res, false
}

// metaFields are the fields a disk entry's meta file kept: every one of
// them (a fallback entry kept storedHeaders, a proxied one its end-to-end
// fields), in a stable order.
func metaFields(h http.Header) []headerKV {
	var out []headerKV
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			out = append(out, headerKV{k, v})
		}
	}
	return slices.Clip(out)
}
