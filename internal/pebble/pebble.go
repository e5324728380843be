// Package pebble runs Debian's pebble (a small ACME CA that really
// validates) with pebble-challtestsrv as its DNS server, on loopback: for
// the tests of ACME issue and for `offedge lab`, which issues its sites'
// certificates from it.
package pebble

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/internal/netwait"
)

// Options say how to run pebble.
type Options struct {
	// Dir holds pebble's configuration and TLS files.
	Dir string
	// Pebble and ChallTestSrv are the binaries; empty: looked up in PATH.
	Pebble, ChallTestSrv string
	// HTTPPort and TLSPort are the ports pebble validates HTTP-01 and
	// TLS-ALPN-01 on, at the address each name resolves to.
	HTTPPort, TLSPort int
	// DefaultIPv4 is where every name resolves (challtestsrv's default
	// answer) unless SetA says otherwise; empty: 127.0.0.1.
	DefaultIPv4 string
	// Validity of the certificates pebble issues; zero: pebble's default
	// (about five years).
	Validity time.Duration
	// Output receives the processes' output; nil discards it.
	Output io.Writer
}

// Server is a running pebble and challtestsrv.
type Server struct {
	// Directory is pebble's ACME directory URL.
	Directory string
	// Client trusts pebble's own TLS certificate (not its issuing root).
	Client *http.Client
	// Mgmt is pebble's management address, Chall challtestsrv's and DNS
	// its DNS server's (host:port).
	Mgmt, Chall, DNS string
	dir              string
	dns              challDNS
	procs            []*exec.Cmd
	waits            []chan struct{}
	tails            []*tailBuffer
	once             sync.Once
}

// Dir is the directory holding pebble's files: tls/fullchain.pem is the
// certificate of its HTTPS API (what a client of the directory trusts).
func (s *Server) Dir() string { return s.dir }

// LookPath reports where pebble and challtestsrv are, or why they are not.
func LookPath() (pebble, chall string, err error) {
	pebble, err1 := exec.LookPath("pebble")
	chall, err2 := exec.LookPath("pebble-challtestsrv")
	if err := errors.Join(err1, err2); err != nil {
		return "", "", fmt.Errorf("pebble is not installed (apt install pebble): %w", err)
	}
	return pebble, chall, nil
}

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start runs challtestsrv, then pebble validating against it, and waits
// until both answer. The ports are picked free a moment before the
// processes bind them, so another process may take one in between (the
// test packages run in parallel): a process that exits before its ports
// answer is started again on fresh ports, up to three times, and its
// own last words are in the error when it still fails.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Pebble == "" || o.ChallTestSrv == "" {
		p, c, err := LookPath()
		if err != nil {
			return nil, err
		}
		o.Pebble, o.ChallTestSrv = p, c
	}
	if o.DefaultIPv4 == "" {
		o.DefaultIPv4 = "127.0.0.1"
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	var errs []error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		s, err := startOnce(ctx, o)
		if err == nil {
			return s, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
		var exited *exitedError
		if !errors.As(err, &exited) || ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// startAttempts bounds the restarts on fresh ports; startWait is how long
// a started process has to answer on its ports (pebble makes its keys
// first, which takes seconds on a loaded machine).
const (
	startAttempts = 3
	startWait     = 60 * time.Second
)

// exitedError is a process that ended before its ports answered.
type exitedError struct {
	name  string
	state string
	tail  string
}

func (e *exitedError) Error() string {
	return fmt.Sprintf("%s exited before answering (%s); its last output:\n%s", e.name, e.state, e.tail)
}

// startOnce starts challtestsrv and pebble on fresh ports, once.
func startOnce(ctx context.Context, o Options) (*Server, error) {
	s := &Server{dir: o.Dir}
	s.dns = challDNS{s: s, pending: map[string]int{}}
	var err error
	listen := ""
	for _, p := range []*string{&s.DNS, &s.Chall, &s.Mgmt, &listen} {
		if *p, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	ch := exec.Command(o.ChallTestSrv, "-dns01", s.DNS, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", s.Chall, "-defaultIPv4", o.DefaultIPv4, "-defaultIPv6", "")
	if err := s.start(ch, o.Output); err != nil {
		return nil, err
	}
	cf, kf, err := certs.WriteSelfSigned(filepath.Join(o.Dir, "tls"), certs.SelfSignedOptions{Names: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		s.Close()
		return nil, err
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        s.Mgmt,
		"certificate":                    cf,
		"privateKey":                     kf,
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      uint64(o.Validity / time.Second),
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(o.Dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		s.Close()
		return nil, err
	}
	cmd := exec.Command(o.Pebble, "-config", cfgFile, "-dnsserver", s.DNS)
	// Really validate (Debian's pebble may have PEBBLE_VA_ALWAYS_VALID
	// set by a caller); no artificial sleeps, no nonce rejection, no
	// authorisation reuse (each order validates again).
	cmd.Env = append(withoutEnv(os.Environ(), "PEBBLE_VA_ALWAYS_VALID"),
		"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	if err := s.start(cmd, o.Output); err != nil {
		s.Close()
		return nil, err
	}
	for _, w := range []struct {
		addr string
		proc int
	}{{s.Chall, 0}, {listen, 1}, {s.Mgmt, 1}} {
		if err := s.wait(ctx, w.addr, w.proc); err != nil {
			s.Close()
			return nil, err
		}
	}
	pemBytes, err := os.ReadFile(cf)
	if err != nil {
		s.Close()
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	s.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	s.Directory = "https://" + listen + "/dir"
	return s, nil
}

// wait waits until addr answers, giving up as soon as process i (the one
// meant to listen there) exits.
func (s *Server) wait(ctx context.Context, addr string, i int) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.waits[i]:
			cancel()
		case <-wctx.Done():
		}
	}()
	err := netwait.TCP(wctx, addr, startWait)
	if err == nil {
		return nil
	}
	select {
	case <-s.waits[i]:
		p := s.procs[i]
		return &exitedError{name: filepath.Base(p.Path), state: p.ProcessState.String(), tail: s.tails[i].String()}
	default:
	}
	return fmt.Errorf("pebble: waiting for %s: %w", addr, err)
}

func (s *Server) start(cmd *exec.Cmd, out io.Writer) error {
	tail := &tailBuffer{max: 4096}
	w := io.MultiWriter(out, tail)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.procs = append(s.procs, cmd)
	s.waits = append(s.waits, done)
	s.tails = append(s.tails, tail)
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Close stops pebble and challtestsrv.
func (s *Server) Close() error {
	s.once.Do(func() {
		for i, p := range s.procs {
			p.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.waits[i]:
			case <-time.After(10 * time.Second):
				p.Process.Kill()
				<-s.waits[i]
			}
		}
	})
	return nil
}

// RootPEM fetches pebble's issuing root (made at start), PEM encoded:
// what a client trusts to verify the certificates pebble issues.
func (s *Server) RootPEM(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+s.Mgmt+"/roots/0", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("pebble root: %q", b)
	}
	return b, nil
}

// Roots is [Server.RootPEM] as a pool.
func (s *Server) Roots(ctx context.Context) (*x509.CertPool, error) {
	b, err := s.RootPEM(ctx)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool, nil
}

// SetA makes challtestsrv answer host with ip (where pebble validates it).
func (s *Server) SetA(host, ip string) error {
	return s.chall("add-a", map[string]any{"host": strings.TrimSuffix(host, ".") + ".", "addresses": []string{ip}})
}

// ClearA takes back SetA: challtestsrv answers host with its default
// address again.
func (s *Server) ClearA(host string) error {
	return s.chall("clear-a", map[string]any{"host": strings.TrimSuffix(host, ".") + "."})
}

// chall calls a challtestsrv management endpoint.
func (s *Server) chall(path string, body any) error {
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+s.Chall+"/"+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("challtestsrv %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}

// DNSProvider is a lego DNS-01 provider writing the _acme-challenge TXT
// records to challtestsrv, the DNS server pebble validates against. It is
// one for the server, shared by every client: challtestsrv can only clear
// all of a name's values, so a name's values are cleared when the last
// challenge presented there is cleaned up (two nodes of the lab ordering
// one name at once would otherwise remove each other's).
func (s *Server) DNSProvider() challenge.Provider { return &s.dns }

type challDNS struct {
	s       *Server
	mu      sync.Mutex
	pending map[string]int // fqdn -> challenges presented, not cleaned up
}

func (c *challDNS) Present(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.s.chall("set-txt", map[string]any{"host": info.EffectiveFQDN, "value": info.Value}); err != nil {
		return err
	}
	c.pending[info.EffectiveFQDN]++
	return nil
}

func (c *challDNS) CleanUp(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[info.EffectiveFQDN]--; c.pending[info.EffectiveFQDN] > 0 {
		return nil
	}
	delete(c.pending, info.EffectiveFQDN)
	return c.s.chall("clear-txt", map[string]any{"host": info.EffectiveFQDN})
}
