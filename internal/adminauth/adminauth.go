// Package adminauth authenticates the clients of a node's admin endpoint
// (`offedge run --admin`, docs/dashboard.md): a bearer token read from a
// secret file, presented as "Authorization: Bearer TOKEN" or as the password
// of basic auth (what a browser prompts for), compared in constant time.
// Read-only requests (GET, HEAD) from loopback need no token; the rest do.
package adminauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/offedge/offedge/internal/secretfile"
)

// Token is the SHA-256 digest of a bearer token: what the guard keeps, so
// that comparing takes the same time whatever the length of the guess.
type Token [sha256.Size]byte

// ReadToken reads the token in path (a secret file: mode 0600 or 0400, at
// least secretfile.MinLen bytes) and returns its digest. The error names the
// path and the fix, never the content.
func ReadToken(path string) (*Token, error) {
	b, err := secretfile.Read(path)
	if err != nil {
		return nil, err
	}
	t := Token(sha256.Sum256(b))
	return &t, nil
}

// ReadClientToken reads the token in path for a client to send (a peer's
// dashboard, the CLI), checked as ReadToken checks it.
func ReadClientToken(path string) (string, error) {
	b, err := secretfile.Read(path)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Guard admits a request that carries the token. Its zero value admits
// every request: an endpoint without a token, which the caller keeps on
// loopback. The token can be replaced while serving (a reload).
type Guard struct {
	token atomic.Pointer[Token]
	// Log receives one line per refused request: its address, method and
	// path, never what it sent. Nil: slog.Default().
	Log *slog.Logger
}

// SetToken makes t the token requests must carry; nil admits everyone.
func (g *Guard) SetToken(t *Token) { g.token.Store(t) }

// Token returns the token the guard asks for, nil for none.
func (g *Guard) Token() *Token { return g.token.Load() }

// HasToken reports whether the guard asks for a token.
func (g *Guard) HasToken() bool { return g.token.Load() != nil }

// Wrap returns h behind the guard.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := g.token.Load()
		if want == nil || (readOnly(r.Method) && fromLoopback(r.RemoteAddr)) || matches(want, credential(r)) {
			h.ServeHTTP(w, r)
			return
		}
		log := g.Log
		if log == nil {
			log = slog.Default()
		}
		_, presented := r.Header["Authorization"]
		log.Warn("admin request refused: no valid token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "credential_presented", presented)
		w.Header().Set("WWW-Authenticate", `Basic realm="offedge admin", charset="UTF-8"`)
		http.Error(w, "401 unauthorized: send Authorization: Bearer TOKEN (the node's admin token_file)", http.StatusUnauthorized)
	})
}

func readOnly(method string) bool { return method == http.MethodGet || method == http.MethodHead }

func fromLoopback(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// credential is the token the request presents: a bearer token, or the
// password of basic auth; empty when none.
func credential(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest)
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	return ""
}

// matches compares digests, so the time taken says nothing of the token's
// length or of how much of a guess was right.
func matches(want *Token, got string) bool {
	if got == "" {
		return false
	}
	d := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], d[:]) == 1
}

// IsLoopback reports whether a listen address (host:port) is on loopback
// only: 127.0.0.0/8, ::1 or localhost. An empty host (":9901") listens on
// every address and is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Transport adds the bearer token to every request it sends through base
// (nil: http.DefaultTransport).
func Transport(base http.RoundTripper, token string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return bearer{base: base, token: token}
}

type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}
