package httpedge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// TestAccessLogTimesFromRequestReadings: the request's clock readings
// (its start, and its end) give both logged durations; the upstream's
// starts after a buffered body instead. A slow upstream's wait is in
// both; a slow client's upload is in the request time, not the
// upstream's.
func TestAccessLogTimesFromRequestReadings(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(150 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	})
	up := n.proxySite("u", []string{"u"}, be.addr())
	up.AccessLog = n.log(AccessLog{Path: filepath.Join(dir, "u.log"), FlushInterval: 10 * time.Millisecond}, "combined_upstream")
	px := n.proxySite("p", []string{"p"}, be.addr())
	px.AccessLog = n.log(AccessLog{Path: filepath.Join(dir, "p.log"), FlushInterval: 10 * time.Millisecond}, "combined_proxy")
	_, addr := n.start(Config{Sites: []Site{up, px}}, Options{})
	const upload = 300 * time.Millisecond
	trickle := func(host string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "POST /fast HTTP/1.1\r\nHost: "+host+"\r\nContent-Length: 10\r\n\r\nhello")
		time.Sleep(upload)
		io.WriteString(c, "world")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %s: %v %v", host, resp, err)
		}
	}
	cl := client(addr)
	for _, host := range []string{"u", "p"} {
		get(t, cl, "http://"+host+"/slow")
		trickle(host)
	}
	times := func(path string, re *regexp.Regexp) []time.Duration {
		var got []time.Duration
		testutil.Eventually(t, 5*time.Second, path+" flushed", func() bool {
			b, _ := os.ReadFile(path)
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(lines) != 2 {
				return false
			}
			got = got[:0]
			for _, l := range lines {
				m := re.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("%s: line %q", path, l)
				}
				s, _ := strconv.ParseFloat(m[1], 64)
				got = append(got, time.Duration(s*float64(time.Second)))
			}
			return true
		})
		return got
	}
	req := times(up.AccessLog.File, regexp.MustCompile(` t=(\d+\.\d{3})$`))
	ups := times(px.AccessLog.File, regexp.MustCompile(` \[(\d+\.\d{3})\]$`))
	if req[0] < 150*time.Millisecond || req[1] < upload {
		t.Errorf("request times %v: want at least the upstream's 150ms and the upload's %v", req, upload)
	}
	if ups[0] < 150*time.Millisecond || ups[1] >= upload {
		t.Errorf("upstream times %v: want at least 150ms for the slow upstream, under the upload's %v for the slow client", ups, upload)
	}
}

// TestUpstreamReadTimeoutOnReusedConn: the read timeout holds on a kept-
// alive connection's second request too, whose deadline refresh uses the
// request's clock reading, not a reading of its own: the answer that
// never comes is a 504 after about the timeout, on the same connection.
func TestUpstreamReadTimeoutOnReusedConn(t *testing.T) {
	n := newNode(t)
	release := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	})
	defer close(release)
	const timeout = 300 * time.Millisecond
	up := n.up(Upstream{Name: "b", ReadTimeout: timeout, Servers: []UpstreamServer{{Addr: be.addr()}}})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	c := client(addr)
	if resp, _ := get(t, c, "http://s/fast"); resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	start := time.Now()
	resp, _ := get(t, c, "http://s/hang")
	d := time.Since(start)
	if resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	// The refresh period (a tenth of the timeout) may shorten it.
	if d < timeout*8/10 || d > 3*time.Second {
		t.Errorf("read timeout after %v, want about %v", d, timeout)
	}
	if got := be.conns.Load(); got != 1 {
		t.Errorf("%d upstream connections, want the first one reused", got)
	}
}
