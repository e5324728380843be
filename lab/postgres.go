package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// findPostgres returns Debian's initdb and postgres binaries (newest major
// version), or "" when PostgreSQL is not installed.
func findPostgres() (initdb, postgres string) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if _, err := os.Stat(i); err == nil {
			if _, err := os.Stat(p); err == nil {
				return i, p
			}
		}
	}
	return "", ""
}

// pgCredential is who runs PostgreSQL: it refuses root, so a lab started as
// root runs it as the postgres (or nobody) user.
func pgCredential() (*syscall.Credential, int, int, error) {
	if os.Getuid() != 0 {
		return nil, os.Getuid(), os.Getgid(), nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
	}
	return nil, 0, 0, fmt.Errorf("running as root and there is no postgres or nobody user to run PostgreSQL as")
}

// startPostgres initialises (once) and starts a real PostgreSQL bound to the
// service's IPv4 lab addresses, in the background: ready closes when it
// accepts connections or has failed (the label says which).
func (a *app) startPostgres(initdb, postgres, dir string, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.ready = make(chan struct{})
	a.label = "postgres (real engine, starting)"
	go func() {
		defer close(a.ready)
		if err := a.runPostgres(ctx, initdb, postgres, dir); err != nil {
			if ctx.Err() == nil {
				log.Warn("PostgreSQL did not start", "service", a.svc.Name, "err", err)
			}
			a.setLabel("postgres (real engine) failed: " + err.Error())
		}
	}()
}

func (a *app) runPostgres(ctx context.Context, initdb, postgres, dir string) error {
	var listen []string
	port := uint16(0)
	for _, ap := range a.addrs {
		if ap.Addr().Is4() {
			listen = append(listen, ap.Addr().String())
			port = ap.Port()
		}
	}
	if len(listen) == 0 {
		return fmt.Errorf("no IPv4 address to bind")
	}
	cred, uid, gid, err := pgCredential()
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	// The lab directory may sit under a private temporary directory:
	logFile := filepath.Join(dir, "postgres.log")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		cmd := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("initdb: %v: %s", err, strings.TrimSpace(lastLine(string(out))))
		}
		// Lab clients come from their nodes' loopback addresses, anywhere
		// in 127.0.0.0/8 (initdb trusts 127.0.0.1 alone), or in the
		// namespace lab from their inventory addresses; who may connect is
		// the lab's access lists' and the node's firewall's business, as it
		// is the firewall's in production.
		hba := filepath.Join(data, "pg_hba.conf")
		conf := "# written by offedge lab\nlocal all all trust\nhost all all all trust\n"
		if err := os.WriteFile(hba, []byte(conf), 0o600); err != nil {
			return err
		}
		if err := os.Chown(hba, uid, gid); err != nil {
			return err
		}
	}
	cmd := exec.Command(postgres, "-D", data, "-k", dir, "-p", fmt.Sprint(port),
		"-c", "listen_addresses="+strings.Join(listen, ","), "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "logging_collector=off")
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		return err
	}
	a.mu.Lock()
	a.cmd = cmd
	a.exited = make(chan struct{})
	exited := a.exited
	a.mu.Unlock()
	go func() { cmd.Wait(); close(exited) }()
	target := netip.AddrPortFrom(netip.MustParseAddr(listen[0]), port).String()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		// Listening is not ready: during recovery PostgreSQL accepts and
		// answers "the database system is starting up". Ready is a
		// completed start-up exchange.
		if pgReady(target) {
			a.setLabel("postgres " + pgVersion(postgres) + " (real engine)")
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited at start; see %s", logFile)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("postgres did not listen within 30s; see %s", logFile)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func pgVersion(postgres string) string {
	return filepath.Base(filepath.Dir(filepath.Dir(postgres)))
}

// WaitReady waits until every application started in the background (a
// real PostgreSQL) listens or has failed.
func (l *Lab) WaitReady(ctx context.Context) error {
	l.mu.Lock()
	var waits []chan struct{}
	for _, ln := range l.nodes {
		for _, a := range ln.apps {
			if a.ready != nil {
				waits = append(waits, a.ready)
			}
		}
	}
	l.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pgDir returns the directory of a PostgreSQL service, the same across a
// node going down and up. It lives outside the lab directory, in a fresh
// temporary directory owned by PostgreSQL's user, because the lab directory
// may not be traversable by that user; Close removes it.
func (l *Lab) pgDir(service string) (string, error) {
	if d, ok := l.pgDirs[service]; ok {
		return d, nil
	}
	d, err := os.MkdirTemp("", "offedge-lab-pg-")
	if err != nil {
		return "", err
	}
	l.pgDirs[service] = d
	return d, nil
}

// pgReady reports whether a PostgreSQL at target completes a start-up
// exchange.
func pgReady(target string) bool {
	c, err := net.DialTimeout("tcp", target, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	return pgHello(c) == nil
}

// pgHello speaks the start of PostgreSQL's protocol on c: a StartupMessage
// for user postgres, which a real server (trust authentication in the lab)
// answers with AuthenticationOk.
func pgHello(c net.Conn) error {
	params := "user\x00postgres\x00database\x00postgres\x00\x00"
	msg := make([]byte, 8+len(params))
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	binary.BigEndian.PutUint32(msg[4:], 3<<16) // protocol 3.0
	copy(msg[8:], params)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	head := make([]byte, 9)
	if _, err := io.ReadFull(c, head); err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	if head[0] != 'R' || binary.BigEndian.Uint32(head[5:]) != 0 {
		return fmt.Errorf("answer %q; want AuthenticationOk", head)
	}
	return nil
}
