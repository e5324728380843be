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

// TestSiteTLSPolicy: a site's own policy applies to clients whose SNI names
// it (TLS 1.3 only, tickets off, one cipher, one curve), the other site on
// the listener keeps the edge's, and the site's tickets (when on) follow
// the listener's key rotation.
func TestSiteTLSPolicy(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("ok"))
	clk := newClock()
	strict := tlsSite(t, n, "strict", "strict.example.org", be.addr())
	strict.TLSPolicy = &TLSPolicy{MinVersion: "1.3", NoSessionTickets: true}
	narrow := tlsSite(t, n, "narrow", "narrow.example.org", be.addr())
	narrow.TLSPolicy = &TLSPolicy{Ciphers: []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}, Curves: []string{"secp384r1"}}
	plain := tlsSite(t, n, "plain", "plain.example.org", be.addr())
	_, addr := n.start(Config{TLS: true, Sites: []Site{strict, narrow, plain}}, Options{Now: clk.Now})
	dial := func(name string, cfg *tls.Config) (tls.ConnectionState, error) {
		cfg.ServerName, cfg.InsecureSkipVerify, cfg.Time = name, true, clk.Now
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		// Read the answer to a request, so that a TLS 1.3 ticket (sent
		// after the handshake) reaches the session cache.
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+name+"\r\nConnection: close\r\n\r\n")
		io.ReadAll(c)
		return c.ConnectionState(), nil
	}
	if _, err := dial("strict.example.org", &tls.Config{MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("TLS 1.2 accepted by a site that asks for 1.3")
	}
	if _, err := dial("plain.example.org", &tls.Config{MaxVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("TLS 1.2 refused by a site with the edge's policy: %v", err)
	}
	for _, site := range []string{"strict.example.org", "plain.example.org"} {
		cache := tls.NewLRUClientSessionCache(4)
		dial(site, &tls.Config{ClientSessionCache: cache})
		st, err := dial(site, &tls.Config{ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		if want := site == "plain.example.org"; st.DidResume != want {
			t.Errorf("%s: resumed %v, want %v", site, st.DidResume, want)
		}
	}
	st, err := dial("narrow.example.org", &tls.Config{MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	if st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 && st.CipherSuite != tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("narrow: negotiated %s", tls.CipherSuiteName(st.CipherSuite))
	}
	if st.CurveID != tls.CurveP384 {
		t.Errorf("narrow: key exchange %v, want P-384", st.CurveID)
	}
	if _, err := dial("narrow.example.org", &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.X25519}}); err == nil {
		t.Error("narrow: X25519 accepted")
	}
	// Tickets of a site with its own policy rotate out with the
	// listener's keys.
	cache := tls.NewLRUClientSessionCache(4)
	dial("narrow.example.org", &tls.Config{ClientSessionCache: cache})
	if st, _ := dial("narrow.example.org", &tls.Config{ClientSessionCache: cache}); !st.DidResume {
		t.Fatal("narrow: no resumption")
	}
	clk.Add(TicketKeyRotation * (TicketKeysKept + 1))
	dial("plain.example.org", &tls.Config{}) // a handshake rotates the keys
	if st, _ := dial("narrow.example.org", &tls.Config{ClientSessionCache: cache}); st.DidResume {
		t.Fatal("narrow: resumed with a ticket whose key rotated out")
	}
	for _, bad := range []*TLSPolicy{{MinVersion: "1.1"}, {Ciphers: []string{"TLS_RSA_WITH_AES_128_CBC_SHA"}}, {Curves: []string{"P-224"}}} {
		s := tlsSite(t, n, "bad", "bad.example.org", be.addr())
		s.TLSPolicy = bad
		if _, err := n.newServer(Config{TLS: true, Sites: []Site{s}}, Options{}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
