package httpedge

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// tlsSite is a one-route TLS site with a self-signed certificate for host.
func tlsSite(t *testing.T, n *testNode, name, host, backend string) Site {
	cf, kf := writeCert(t, filepath.Join(t.TempDir(), name), host)
	s := n.proxySite(name, []string{host}, backend)
	s.Certificate = n.cert(cf, kf)
	return s
}

// TestTLS12OffersAEADOnly: a TLS 1.2 client offering only CBC suites is
// refused; one offering every suite gets an AEAD one (issue 9 finding 9).
func TestTLS12OffersAEADOnly(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("ok"))
	_, addr := n.start(Config{TLS: true, Sites: []Site{tlsSite(t, n, "s", "s.example.org", be.addr())}}, Options{})
	var cbc, all []uint16
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		all = append(all, cs.ID)
		if cs.Name != "" && !isAEAD(cs.ID) {
			cbc = append(cbc, cs.ID)
		}
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "s.example.org", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: cbc})
	if err == nil {
		st := c.ConnectionState()
		c.Close()
		t.Fatalf("TLS 1.2 with CBC suites only: negotiated %s", tls.CipherSuiteName(st.CipherSuite))
	}
	c, err = tls.Dial("tcp", addr, &tls.Config{ServerName: "s.example.org", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: all})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cs := c.ConnectionState().CipherSuite; !isAEAD(cs) {
		t.Fatalf("negotiated %s", tls.CipherSuiteName(cs))
	}
}

func isAEAD(id uint16) bool {
	for _, s := range tls12Suites {
		if s == id {
			return true
		}
	}
	return false
}

// TestSessionTicketsExpire: a session resumes with its ticket, but not once
// the ticket keys have rotated out (at most a day), for TLS 1.2 and 1.3.
func TestSessionTicketsExpire(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("ok"))
	clk := newClock()
	_, addr := n.start(Config{TLS: true, Sites: []Site{tlsSite(t, n, "s", "s.example.org", be.addr())}}, Options{Now: clk.Now})
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			resumed := func(cache tls.ClientSessionCache) bool {
				c := client(addr)
				c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true, ClientSessionCache: cache,
					MinVersion: version, MaxVersion: version, Time: clk.Now}
				c.Transport.(*http.Transport).DisableKeepAlives = true
				resp, err := c.Get("https://s.example.org/")
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.TLS.DidResume
			}
			young := tls.NewLRUClientSessionCache(8)
			resumed(young)
			if !resumed(young) {
				t.Fatal("second connection did not resume")
			}
			old := tls.NewLRUClientSessionCache(8)
			resumed(old) // a ticket under the current key
			clk.Add(TicketKeyRotation * (TicketKeysKept - 2))
			if !resumed(young) {
				t.Fatal("a ticket less than a day old was refused")
			}
			clk.Add(TicketKeyRotation * 3)
			if resumed(old) {
				t.Fatalf("resumed with a ticket older than %v", TicketKeyRotation*TicketKeysKept)
			}
			if !resumed(old) {
				t.Fatal("the new ticket does not resume")
			}
		})
	}
}

// TestHSTS: a TLS site sends Strict-Transport-Security on every answer,
// errors included; a site with HSTS "" (opted out) and a plain listener
// send none; a site header of the same name wins on 2xx/3xx.
func TestHSTS(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("ok"))
	on := tlsSite(t, n, "on", "on.example.org", be.addr())
	on.HSTS = DefaultHSTS
	off := tlsSite(t, n, "off", "off.example.org", be.addr())
	own := tlsSite(t, n, "own", "own.example.org", be.addr())
	own.HSTS = DefaultHSTS
	own.Headers = map[string]string{"Strict-Transport-Security": "max-age=60"}
	_, addr := n.start(Config{TLS: true, Sites: []Site{on, off, own}}, Options{})
	plain := n.proxySite("on", []string{"on.example.org"}, be.addr())
	plain.HSTS = DefaultHSTS
	_, paddr := n.start(Config{Sites: []Site{plain}}, Options{})
	tests := []struct{ addr, url, want string }{
		{addr, "https://on.example.org/", DefaultHSTS},
		{addr, "https://on.example.org/%2e%2e/x", DefaultHSTS}, // 400 from the path rules
		{addr, "https://off.example.org/", ""},
		{addr, "https://own.example.org/", "max-age=60"},
		{paddr, "http://on.example.org/", ""},
	}
	for _, tt := range tests {
		resp, _ := get(t, client(tt.addr), tt.url)
		if got := resp.Header.Get("Strict-Transport-Security"); got != tt.want {
			t.Errorf("%s (%d): Strict-Transport-Security %q, want %q", tt.url, resp.StatusCode, got, tt.want)
		}
	}
}
