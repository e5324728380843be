package adminauth

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "s3cret-token-of-thirty-two-bytes"

func writeToken(t *testing.T, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(p, []byte(secret+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGuard(t *testing.T) {
	tok, err := ReadToken(writeToken(t, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	g := &Guard{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	basic := func(pw string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth("anyone", pw)
		return r.Header.Get("Authorization")
	}
	for _, tt := range []struct {
		name, method, remote, auth string
		noToken                    bool
		want                       int
	}{
		{"no token configured admits all", "POST", "192.0.2.7:4000", "", true, 200},
		{"no credential", "GET", "192.0.2.7:4000", "", false, 401},
		{"wrong bearer", "POST", "192.0.2.7:4000", "Bearer " + secret[:len(secret)-1] + "x", false, 401},
		{"prefix of the token", "POST", "192.0.2.7:4000", "Bearer " + secret[:10], false, 401},
		{"right bearer", "POST", "192.0.2.7:4000", "Bearer " + secret, false, 200},
		{"right bearer, scheme in lower case", "GET", "192.0.2.7:4000", "bearer " + secret, false, 200},
		{"basic auth with the token as password", "GET", "192.0.2.7:4000", basic(secret), false, 200},
		{"basic auth, wrong password", "GET", "192.0.2.7:4000", basic("nope"), false, 401},
		{"GET from loopback", "GET", "127.0.0.1:4000", "", false, 200},
		{"GET from IPv6 loopback", "GET", "[::1]:4000", "", false, 200},
		{"POST from loopback still needs the token", "POST", "127.0.0.1:4000", "", false, 401},
		{"POST from loopback with the token", "POST", "127.0.0.1:4000", "Bearer " + secret, false, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noToken {
				g.SetToken(nil)
			} else {
				g.SetToken(tok)
			}
			logs.Reset()
			r := httptest.NewRequest(tt.method, "/-/reload", nil)
			r.RemoteAddr = tt.remote
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if tt.want == 401 {
				if !strings.Contains(w.Header().Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 without a basic challenge: %q", w.Header().Get("WWW-Authenticate"))
				}
				if !strings.Contains(logs.String(), "admin request refused") || !strings.Contains(logs.String(), tt.remote) {
					t.Errorf("refusal not logged with its address: %q", logs.String())
				}
			}
			// Neither the token nor what the client sent reaches the log or the answer.
			for _, leak := range []string{secret, secret[:10], "nope"} {
				if strings.Contains(logs.String(), leak) || strings.Contains(w.Body.String(), leak) {
					t.Errorf("%q leaked: log %q, body %q", leak, logs.String(), w.Body.String())
				}
			}
		})
	}
}

func TestReadTokenRefusesOpenOrShortFiles(t *testing.T) {
	if _, err := ReadToken(writeToken(t, 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable token file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "short")
	os.WriteFile(p, []byte("short"), 0o600)
	if _, err := ReadToken(p); err == nil || strings.Contains(err.Error(), "short\n") {
		t.Errorf("a short token: %v", err)
	}
	if s, err := ReadClientToken(writeToken(t, 0o400)); err != nil || s != secret {
		t.Errorf("client token %q, %v", s, err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9901": true, "127.0.0.2:9901": true, "[::1]:9901": true, "localhost:9901": true,
		":9901": false, "0.0.0.0:9901": false, "10.0.0.2:9901": false, "[2001:db8::1]:9901": false,
		"admin.example.org:9901": false, "garbage": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTransportSendsTheToken(t *testing.T) {
	tok, _ := ReadToken(writeToken(t, 0o600))
	g := &Guard{}
	g.SetToken(tok)
	srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	c := &http.Client{Transport: Transport(nil, secret)}
	resp, err := c.Post(srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the token: %s", resp.Status)
	}
	resp, err = http.Post(srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without the token: %s", resp.Status)
	}
}
