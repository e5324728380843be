package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/stunnelconf"
)

// startProcess starts cmd, kills it at the end of the test, and keeps its
// output for the failure report.
func startProcess(t *testing.T, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), out)
		}
	})
	return out
}

// startRedis runs redis-server on a free loopback port without persistence.
func startRedis(t *testing.T) string {
	bin := testutil.RequireBinary(t, "redis-server")
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", t.TempDir(), "--protected-mode", "yes")
	startProcess(t, cmd)
	testutil.WaitTCP(t, addr, 10*time.Second)
	return addr
}

// respCommand sends one RESP command and returns the raw reply line(s).
func respCommand(r *bufio.Reader, w io.Writer, args ...string) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$") {
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil || n < 0 {
			return line, err
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	}
	return strings.TrimSpace(line), nil
}

// redisSession runs a short Redis session through addr: PING, SET of a
// 256 KiB value, GET, INCR, and checks every reply.
func redisSession(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	big := strings.Repeat("0123456789abcdef", 16<<10)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"SET", "offedge:k", big}, "+OK"},
		{[]string{"GET", "offedge:k"}, big},
		{[]string{"DEL", "offedge:n"}, ""},
		{[]string{"INCR", "offedge:n"}, ":1"},
		{[]string{"INCR", "offedge:n"}, ":2"},
	}
	for _, s := range steps {
		got, err := respCommand(r, c, s.args...)
		if err != nil {
			t.Fatalf("redis %s: %v", s.args[0], err)
		}
		if s.want != "" && got != s.want {
			t.Fatalf("redis %s: got %.40q (%d bytes); want %.40q", s.args[0], got, len(got), s.want)
		}
	}
}

func TestRedisThroughTunnel(t *testing.T) {
	redis := startRedis(t)
	p := startPair(t, "redis", redis, secretA, secretA, nil)
	redisSession(t, p.entranceAddr)
}

// startPostgres initialises a cluster in a temporary directory owned by the
// postgres (or nobody) user and runs postgres on a free loopback port.
func startPostgres(t *testing.T) string {
	initdb := testutil.RequireBinary(t, "initdb")
	postgres := testutil.RequireBinary(t, "postgres")
	testutil.RequireBinary(t, "psql")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			t.Fatalf("running as root and no postgres or nobody user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	base, err := os.MkdirTemp("", "offedge-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	data := filepath.Join(base, "data")
	sock := filepath.Join(base, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			os.Chown(d, int(cred.Uid), int(cred.Gid))
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Dir = base
		cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return cmd
	}
	if out, err := run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := run(postgres, "-D", data, "-p", port, "-k", sock, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=20")
	startProcess(t, cmd)
	testutil.WaitTCP(t, addr, 30*time.Second)
	return addr
}

func TestPostgresThroughTunnel(t *testing.T) {
	pg := startPostgres(t)
	p := startPair(t, "postgres", pg, secretA, secretA, nil)
	host, port, _ := net.SplitHostPort(p.entranceAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sql := `CREATE TABLE t (id int primary key, v text);
INSERT INTO t SELECT g, repeat('x', 100) || g FROM generate_series(1, 5000) g;
SELECT count(*), sum(length(v)) FROM t;`
	out, err := exec.CommandContext(ctx, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql through the tunnel: %v\n%s", err, out)
	}
	// 5000 rows of 100 'x' plus the decimal id: 500000 + 18893 digits.
	if got := strings.TrimSpace(string(out)); got != "5000|518893" {
		t.Fatalf("psql returned %q; want 5000|518893", got)
	}
	if s := p.exit.Stats(); s.BytesDown == 0 || s.BytesUp == 0 {
		t.Fatalf("no bytes counted: %+v", s)
	}
}

// stunnelEnd writes the derived PSK certificate and key for name/secret and
// a stunnel4 config rendered by stunnelconf for one section, starts
// stunnel4, and waits for its accept port.
func stunnelEnd(t *testing.T, sec StunnelSection, secret string) *syncBuffer {
	t.Helper()
	bin := testutil.RequireBinary(t, "stunnel4")
	dir := t.TempDir()
	k, err := DerivePSKKey(sec.Name, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	sec.CertFile = filepath.Join(dir, sec.Name+".pem")
	sec.KeyFile = filepath.Join(dir, sec.Name+"-key.pem")
	if err := os.WriteFile(sec.CertFile, k.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sec.KeyFile, k.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := stunnelconf.Render(&stunnelconf.Config{
		Comment:  "test stunnel4 end, as `offedge export stunnel` writes it",
		Global:   []stunnelconf.Option{{Key: "foreground", Value: "yes"}, {Key: "pid", Value: ""}, {Key: "debug", Value: "info"}},
		Sections: []stunnelconf.Section{sec.Section()},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "stunnel.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	out := startProcess(t, exec.Command(bin, path))
	testutil.WaitTCP(t, sec.Accept, 10*time.Second)
	return out
}

func TestStunnelInterop(t *testing.T) {
	redis := startRedis(t)

	t.Run("stunnel4 entrance to offedge exit", func(t *testing.T) {
		xlog, xbuf := newLogger(t)
		xln := listen(t)
		x, err := NewExit(ExitConfig{Listener: xln.Addr().String(), Tunnels: []ExitTunnel{
			{Name: "OffRedis", Target: redis, Auth: Auth{PSKFile: writeSecret(t, secretA)}},
			{Name: "other", Target: "127.0.0.1:1", Auth: Auth{PSKFile: writeSecret(t, secretB)}},
		}}, Options{Logger: xlog})
		if err != nil {
			t.Fatal(err)
		}
		serve(t, x, xln)
		accept := testutil.FreeAddr(t)
		stunnelEnd(t, StunnelSection{Name: "OffRedis", Client: true, Accept: accept, Connect: xln.Addr().String()}, secretA)
		redisSession(t, accept)
		if s := x.Stats(); s.AuthFailures != 0 || s.Accepted == 0 {
			t.Fatalf("exit stats %+v", s)
		}

		// The same stunnel4 entrance with a wrong secret is refused, and the
		// exit says why.
		bad := testutil.FreeAddr(t)
		stunnelEnd(t, StunnelSection{Name: "OffRedis", Client: true, Accept: bad, Connect: xln.Addr().String()}, secretB)
		if got, _ := roundTrip(t, bad, "*1\r\n$4\r\nPING\r\n"); strings.Contains(got, "PONG") {
			t.Fatal("stunnel4 with a wrong secret reached redis")
		}
		testutil.Eventually(t, 10*time.Second, "exit logs the wrong secret", func() bool {
			return strings.Contains(xbuf.String(), "peer key does not match the tunnel's pre-shared secret")
		})
	})

	t.Run("offedge entrance to stunnel4 exit", func(t *testing.T) {
		accept := testutil.FreeAddr(t)
		sout := stunnelEnd(t, StunnelSection{Name: "redis", Client: false, Accept: accept, Connect: redis}, secretA)
		e, err := NewEntrance(EntranceConfig{Name: "redis", Exits: []string{accept}, Auth: Auth{PSKFile: writeSecret(t, secretA)}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		eln := listen(t)
		serve(t, e, eln)
		redisSession(t, eln.Addr().String())
		redisSession(t, eln.Addr().String()) // resumes the TLS session with stunnel
		if !strings.Contains(sout.String(), "TLS accepted") {
			t.Fatalf("stunnel4 did not log the TLS session:\n%s", sout)
		}

		// Wrong secret on the offedge side: refused with a clear line.
		elog, ebuf := newLogger(t)
		bad, err := NewEntrance(EntranceConfig{Name: "redis", Exits: []string{accept}, Auth: Auth{PSKFile: writeSecret(t, secretB)}}, Options{Logger: elog})
		if err != nil {
			t.Fatal(err)
		}
		bln := listen(t)
		serve(t, bad, bln)
		if got, _ := roundTrip(t, bln.Addr().String(), "*1\r\n$4\r\nPING\r\n"); got != "" {
			t.Fatalf("wrong secret got %q", got)
		}
		testutil.Eventually(t, 5*time.Second, "entrance logs the wrong secret", func() bool {
			return strings.Contains(ebuf.String(), "peer key does not match the tunnel's pre-shared secret")
		})
	})
}
