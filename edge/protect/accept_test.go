package protect_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/protect"
)

// A banned address is refused at accept, before any byte is read or
// written (so before TLS): the client sees its connection closed, the
// listener counts a denial; once the ban is lifted it is served.
func TestBanRefusedAtAccept(t *testing.T) {
	bans, err := protect.NewBanList(protect.BanListConfig{MaxBans: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stats := new(acl.Stats)
	fl := acl.Wrap(ln, acl.AllowAll(), acl.ListenerOptions{Name: "test", Stats: stats, Gate: bans})
	defer fl.Close()
	go func() {
		for {
			c, err := fl.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	read := func() (string, error) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		return string(b), err
	}
	if got, err := read(); got != "hello\n" {
		t.Fatalf("before the ban: %q, %v", got, err)
	}
	if _, err := bans.Add(netip.MustParsePrefix("127.0.0.1/32"), time.Hour, "manual"); err != nil {
		t.Fatal(err)
	}
	got, err := read()
	if got != "" && !errors.Is(err, io.EOF) {
		t.Fatalf("banned: read %q, %v; want the connection closed unanswered", got, err)
	}
	if stats.Denied.Load() != 1 || bans.Stats().Refused != 1 {
		t.Fatalf("denied %d, refused %d; want 1 and 1", stats.Denied.Load(), bans.Stats().Refused)
	}
	bans.Del(netip.MustParsePrefix("127.0.0.1/32"))
	if got, err := read(); got != "hello\n" {
		t.Fatalf("after the ban was lifted: %q, %v", got, err)
	}
}
