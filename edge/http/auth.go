package httpedge

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// basicAuth checks HTTP Basic credentials against an htpasswd file of
// bcrypt entries. bcrypt is slow by design, so a successful check is
// remembered (by SHA-256 of the credentials) in a small bounded set; a
// changed file takes effect on the next Update.
type basicAuth struct {
	realm string
	users map[string][]byte // user -> bcrypt hash
	dummy []byte            // hash of a random password, same cost

	mu sync.Mutex
	ok map[[32]byte]struct{}
}

const authCacheSize = 1024

func loadHtpasswd(path, realm string) (*basicAuth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("basic auth file: %w", err)
	}
	defer f.Close()
	a := &basicAuth{realm: realm, users: map[string][]byte{}, ok: map[[32]byte]struct{}{}}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, found := strings.Cut(t, ":")
		if !found || user == "" {
			return nil, fmt.Errorf("basic auth file %s:%d: expected user:hash", path, line)
		}
		if !strings.HasPrefix(hash, "$2y$") && !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") {
			return nil, fmt.Errorf("basic auth file %s:%d: user %q: only bcrypt entries ($2y$, $2a$, $2b$) are accepted; recreate it with htpasswd -B", path, line, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("basic auth file %s:%d: user %q: %w", path, line, user, err)
		}
		if _, dup := a.users[user]; dup {
			return nil, fmt.Errorf("basic auth file %s:%d: user %q listed twice", path, line, user)
		}
		a.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("basic auth file %s: %w", path, err)
	}
	if len(a.users) == 0 {
		return nil, fmt.Errorf("basic auth file %s: no users", path)
	}
	cost := bcrypt.DefaultCost
	for _, h := range a.users {
		cost, _ = bcrypt.Cost(h)
		break
	}
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	if a.dummy, err = bcrypt.GenerateFromPassword(rnd[:], cost); err != nil {
		return nil, fmt.Errorf("basic auth file %s: %w", path, err)
	}
	return a, nil
}

func (a *basicAuth) check(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, ok := a.users[user]
	if !ok {
		// Spend the same time as for a known user.
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(pass))
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass + "\x00" + string(hash)))
	a.mu.Lock()
	_, cached := a.ok[key]
	a.mu.Unlock()
	if cached {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.ok) >= authCacheSize {
		clear(a.ok)
	}
	a.ok[key] = struct{}{}
	a.mu.Unlock()
	return true
}
