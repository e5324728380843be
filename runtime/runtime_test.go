package runtime

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// fixture is the test inventory with free ports filled in, and the backends
// behind it: an HTTP app and a line-echo TCP service on app's address.
type fixture struct {
	t                 *testing.T
	appPort, dbPort   string
	httpPort, fwdPort string
	httpAddr, fwdAddr string
}

func freePort(t *testing.T, ip string) string {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, appPort: freePort(t, "127.0.0.22"), dbPort: freePort(t, "127.0.0.22"), httpPort: freePort(t, "127.0.0.21"), fwdPort: freePort(t, "127.0.0.21")}
	f.httpAddr, f.fwdAddr = "127.0.0.21:"+f.httpPort, "127.0.0.21:"+f.fwdPort
	app, err := net.Listen("tcp", "127.0.0.22:"+f.appPort)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			// A long download: a line every 20ms until the client goes.
			fl := w.(http.Flusher)
			for i := 0; i < 500; i++ {
				if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
					return
				}
				fl.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			return
		}
		fmt.Fprintln(w, "hello from app")
	})}
	go srv.Serve(app)
	t.Cleanup(func() { srv.Close() })
	db, err := net.Listen("tcp", "127.0.0.22:"+f.dbPort)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := db.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { db.Close() })
	return f
}

// compile writes the inventory with version and allow filled in and
// compiles the edge node's plan.
func (f *fixture) compile(version, allow string) *plan.Plan {
	f.t.Helper()
	r := strings.NewReplacer("PORT_APP", f.appPort, "PORT_DB", f.dbPort, "PORT_HTTP", f.httpPort, "PORT_FWD", f.fwdPort, "VERSION", version, "ALLOW", allow)
	m := loadTestdata(f.t, "web", f.t.TempDir(), r)
	p, err := plan.Compile(m, "edge", plan.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// loadTestdata writes testdata/NAME/inventory.yaml with r's placeholders
// replaced into dir and loads it.
func loadTestdata(t *testing.T, name, dir string, r *strings.Replacer) *inventory.Model {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name, "inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(r.Replace(string(src))), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := inventory.LoadPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func dialFrom(t *testing.T, src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

func httpClient(src string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext,
	}}
}

func getVersion(c *http.Client, addr string) (string, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "www.example.org"
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "hello from app") {
		return "", fmt.Errorf("status %d body %q", resp.StatusCode, body)
	}
	return resp.Header.Get("X-Version"), nil
}

func echo(c net.Conn, msg string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestStartServeAndFilter(t *testing.T) {
	f := newFixture(t)
	n, err := Start(f.compile("1", "client"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	if v, err := getVersion(httpClient("127.0.0.23"), f.httpAddr); err != nil || v != "1" {
		t.Fatalf("GET through the site: version %q, %v", v, err)
	}
	c, err := dialFrom(t, "127.0.0.23", f.fwdAddr)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echo(c, "ping"); err != nil || got != "ping" {
		t.Fatalf("forward from an allowed source: %q, %v", got, err)
	}
	c.Close()
	// 127.0.0.24 is nobody in the inventory: refused at accept.
	c, err = dialFrom(t, "127.0.0.24", f.fwdAddr)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echo(c, "ping"); err == nil {
		t.Fatalf("forward from a denied source answered %q", got)
	}
	c.Close()
	st := n.Status()
	var denied uint64
	for _, l := range st.Listeners {
		denied += l.Denied
	}
	if len(st.Listeners) != 2 || denied != 1 {
		t.Fatalf("status %+v; want 2 listeners and 1 denial", st)
	}
}

func TestStartRefusesTakenAddress(t *testing.T) {
	f := newFixture(t)
	busy, err := net.Listen("tcp", f.fwdAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = Start(f.compile("1", "client"), Options{})
	if err == nil || !strings.Contains(err.Error(), "forward db") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("got %v; want the forward's listen error", err)
	}
	// Nothing is left listening: the site's port is free again.
	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		t.Fatalf("the site's port is still taken after a failed start: %v", err)
	}
	ln.Close()
}

// TestApplyChangesOnlyWhatDiffers: a reload that changes the site's headers
// keeps a long download open, a reload that only changes who may use the
// forward keeps an open forwarded connection, and the new rules apply to new
// connections.
func TestApplyChangesOnlyWhatDiffers(t *testing.T) {
	f := newFixture(t)
	n, err := Start(f.compile("1", "client"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	req, _ := http.NewRequest("GET", "http://"+f.httpAddr+"/stream", nil)
	req.Host = "www.example.org"
	resp, err := httpClient("127.0.0.23").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stream := bufio.NewReader(resp.Body)
	if _, err := stream.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fwd, err := dialFrom(t, "127.0.0.23", f.fwdAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	if got, err := echo(fwd, "before"); err != nil || got != "before" {
		t.Fatalf("echo before: %q %v", got, err)
	}

	// Version 2, and the forward now admits 127.0.0.22 (app) instead of client.
	if err := n.Apply(context.Background(), f.compile("2", "app")); err != nil {
		t.Fatal(err)
	}
	if v, err := getVersion(httpClient("127.0.0.23"), f.httpAddr); err != nil || v != "2" {
		t.Fatalf("after reload: version %q, %v; want 2", v, err)
	}
	for i := 0; i < 5; i++ {
		if _, err := stream.ReadString('\n'); err != nil {
			t.Fatalf("the download opened before the reload broke: %v", err)
		}
	}
	if got, err := echo(fwd, "after"); err != nil || got != "after" {
		t.Fatalf("the forwarded connection opened before the reload broke: %q %v", got, err)
	}
	c, _ := dialFrom(t, "127.0.0.23", f.fwdAddr)
	if got, err := echo(c, "x"); err == nil {
		t.Fatalf("new connection from client after its removal from allow: %q", got)
	}
	c.Close()
	c, _ = dialFrom(t, "127.0.0.22", f.fwdAddr)
	if got, err := echo(c, "y"); err != nil || got != "y" {
		t.Fatalf("new connection from app after its addition: %q %v", got, err)
	}
	c.Close()
	if st := n.Status(); st.Reloads != 1 || st.FailedReloads != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestReloadsUnderLoad: 20 reloads while clients keep requesting; not one
// request may fail.
func TestReloadsUnderLoad(t *testing.T) {
	f := newFixture(t)
	plans := []*plan.Plan{f.compile("a", "client"), f.compile("b", "client")}
	n, err := Start(plans[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpClient("127.0.0.23")
			for j := 0; j < 20000; j++ { // bounded; stopped by the reload loop
				select {
				case <-stop:
					return
				default:
				}
				if _, err := getVersion(c, f.httpAddr); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond) // spread the reloads over the load
		if err := n.Apply(context.Background(), plans[(i+1)%2]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Fatalf("%d requests ok, %d failed (first: %v) across 20 reloads; want none failed", ok.Load(), failed.Load(), firstErr.Load())
	}
	t.Logf("%d requests across 20 reloads, none failed", ok.Load())
}

func TestShutdownDrains(t *testing.T) {
	f := newFixture(t)
	n, err := Start(f.compile("1", "client"), Options{ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the listeners to close", func() bool {
		c, err := net.DialTimeout("tcp", f.httpAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// TestDialFromPlanSource: a tunnel entrance dials its exit from the source
// address the plan shows (the node's inventory address), not the one the
// kernel would choose (127.0.0.1 for every loopback destination), so the
// exit, which admits only the entrance node's address, lets it in.
func TestDialFromPlanSource(t *testing.T) {
	db, err := net.Listen("tcp", "127.0.0.43:0")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	go func() {
		for {
			c, err := db.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	_, dbPort, _ := net.SplitHostPort(db.Addr().String())
	dir := t.TempDir()
	psk := filepath.Join(dir, "db.psk")
	if err := os.WriteFile(psk, []byte("Eev1ieghoo4Ahsh7aiph9ootheeZ3eiF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	entPort := freePort(t, "127.0.0.41")
	r := strings.NewReplacer("PORT_DB", dbPort, "PORT_ENT", entPort, "PORT_EXIT", freePort(t, "127.0.0.42"), "PSK_FILE", psk)
	m := loadTestdata(t, "tunnel", dir, r)
	for _, node := range []string{"ext", "ent"} {
		p, err := plan.Compile(m, node, plan.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := Start(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Shutdown(context.Background())
	}
	c, err := dialFrom(t, "127.0.0.44", "127.0.0.41:"+entPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := echo(c, "through the tunnel"); err != nil || got != "through the tunnel" {
		t.Fatalf("echo through the tunnel: %q, %v; want the exit to admit the entrance from 127.0.0.41", got, err)
	}
}
