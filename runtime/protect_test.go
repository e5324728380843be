package runtime

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// A banned address is refused at accept by every listener of the node,
// the HTTP site and the forward alike, before any byte (so before TLS);
// another client is still served, and lifting the ban serves it again.
func TestBannedAddressRefusedAtAccept(t *testing.T) {
	f := newFixture(t)
	n, err := Start(f.compile("1", "client"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	client := httpClient("127.0.0.23")
	if _, err := getVersion(client, f.httpAddr); err != nil {
		t.Fatalf("before the ban: %v", err)
	}
	client.CloseIdleConnections()
	if _, err := n.Bans().Add(netip.MustParsePrefix("127.0.0.23/32"), time.Hour, "manual"); err != nil {
		t.Fatal(err)
	}
	if v, err := getVersion(httpClient("127.0.0.23"), f.httpAddr); err == nil {
		t.Fatalf("a banned client was served (version %q)", v)
	}
	c, err := dialFrom(t, "127.0.0.23", f.fwdAddr)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echo(c, "ping"); err == nil {
		t.Fatalf("the forward answered a banned client: %q", got)
	}
	c.Close()
	st := n.Status()
	if st.Protection.Bans.Bans != 1 || st.Protection.Bans.Refused != 2 {
		t.Fatalf("protection status %+v; want 1 ban that refused 2 connections", st.Protection)
	}
	n.Bans().Del(netip.MustParsePrefix("127.0.0.23/32"))
	if _, err := getVersion(httpClient("127.0.0.23"), f.httpAddr); err != nil {
		t.Fatalf("after the ban was lifted: %v", err)
	}
}
