package httpedge

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The benchmarks below drive the whole edge (server loop, routing,
// handler) with a client that writes raw requests and reads raw bytes, so
// that -benchmem counts the edge's allocations per request. -nethttp1 is
// BenchmarkStatic4KNetHTTP1's comparison with net/http's loop.

func benchEdge(b *testing.B, n *testNode, site Site, opts Options, path string) {
	_, addr := n.start(Config{Listener: "bench", Sites: []Site{site}}, opts)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: example.org\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 256<<10)
	// The first response gives the length of every response.
	read := func(want int) int {
		got := 0
		for want < 0 || got < want {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
			if want < 0 {
				if i := bytes.Index(buf[:got], []byte("\r\n\r\n")); i >= 0 {
					head := string(buf[:i])
					if !strings.HasPrefix(head, "HTTP/1.1 200") {
						b.Fatalf("response %q", head)
					}
					cl := 0
					for _, l := range strings.Split(head, "\r\n") {
						if v, ok := strings.CutPrefix(l, "Content-Length: "); ok {
							var n int
							for _, d := range v {
								n = n*10 + int(d-'0')
							}
							cl = n
						}
					}
					want = i + 4 + cl
				}
			}
		}
		return want
	}
	c.Write(req)
	want := read(-1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(req)
		read(want)
	}
}

func staticBenchSite(b *testing.B) Site {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "4k.bin"), bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	return Site{Name: "s", Hosts: []string{"example.org"}, Routes: []Route{{Path: "/", Static: &Static{Root: root}}}}
}

func BenchmarkStatic4K(b *testing.B) {
	benchEdge(b, newNode(b), staticBenchSite(b), Options{}, "/4k.bin")
}

func BenchmarkStatic4KNetHTTP1(b *testing.B) {
	benchEdge(b, newNode(b), staticBenchSite(b), Options{NetHTTP1: true}, "/4k.bin")
}

func proxyBenchSite(b *testing.B, n *testNode) Site {
	body := strings.Repeat("x", 1024)
	be := newBackend(b, textHandler(body))
	return n.proxySite("p", []string{"example.org"}, be.addr())
}

func BenchmarkProxy1K(b *testing.B) {
	n := newNode(b)
	benchEdge(b, n, proxyBenchSite(b, n), Options{}, "/1k")
}

func BenchmarkProxy1KNetHTTP1(b *testing.B) {
	n := newNode(b)
	benchEdge(b, n, proxyBenchSite(b, n), Options{NetHTTP1: true}, "/1k")
}
