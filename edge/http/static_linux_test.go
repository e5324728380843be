package httpedge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dataSegsIn is the count of data-carrying TCP segments the socket
// received (pure ACKs not counted).
func dataSegsIn(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return info.Data_segs_in
}

// A small file's answer, head and body, leaves in one TCP segment (the
// head is written with MSG_MORE ahead of the sendfile), as nginx's
// tcp_nopush gives: a write then a sendfile were two segments, each
// handled by both ends' stacks.
func TestStaticHeadAndFileOneSegment(t *testing.T) {
	addr, root, _ := staticSetup(t, newNode(t), "", "")
	body := strings.Repeat("0123456789abcdef", 256) // 4 KiB
	writeFile(t, filepath.Join(root, "4k.txt"), body)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	// Several requests, the fewest segments counted: an ACK delayed on a
	// loaded machine carries no data and is not counted anyway.
	fewest := uint32(1 << 31)
	for range 5 {
		before := dataSegsIn(t, c)
		if _, err := io.WriteString(c, "GET /4k.txt HTTP/1.1\r\nHost: images.openfoodfacts.org\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != body || resp.StatusCode != 200 {
			t.Fatalf("GET: %d %d bytes %v", resp.StatusCode, len(b), err)
		}
		fewest = min(fewest, dataSegsIn(t, c)-before)
	}
	if fewest != 1 {
		t.Fatalf("a 4 KiB file's answer came in %d data segments, want 1", fewest)
	}
}

// A cached file that shrank under the server: the head (held back for
// the body) still reaches the client, then the cut body and the close.
// (A file larger than smallFileMax: a small one is answered from the copy
// read when it was opened.)
func TestStaticFileShrunkHeadArrives(t *testing.T) {
	addr, root, _ := staticSetup(t, newNode(t), "", "")
	size := smallFileMax + 8192
	path := writeFile(t, filepath.Join(root, "shrinks.txt"), strings.Repeat("x", size))
	if resp, b := raw(t, addr, "GET /shrinks.txt HTTP/1.1\r\nHost: images.openfoodfacts.org\r\n\r\n"); resp.StatusCode != 200 || len(b) != size {
		t.Fatalf("first GET: %d, %d bytes", resp.StatusCode, len(b))
	}
	// Same inode, now empty: the open-file cache still says size bytes.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /shrinks.txt HTTP/1.1\r\nHost: images.openfoodfacts.org\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(c) // to the close: a hold that never ended would time out here
	if err != nil {
		t.Fatalf("reading to the close: %v (got %q)", err, all)
	}
	if !strings.HasPrefix(string(all), "HTTP/1.1 200 OK\r\n") || !strings.Contains(string(all), fmt.Sprintf("Content-Length: %d\r\n", size)) {
		t.Fatalf("answer: %q", all)
	}
	if _, rest, _ := strings.Cut(string(all), "\r\n\r\n"); len(rest) >= size {
		t.Fatalf("body of %d bytes from an empty file", len(rest))
	}
}
