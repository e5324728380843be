package tunnel

import (
	"context"
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
)

func TestRedisThroughTunnel(t *testing.T) {
	redis := testutil.StartRedis(t)
	p := startPair(t, "redis", redis, secretA, secretA, nil)
	testutil.RedisSession(t, p.entranceAddr)
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
	testutil.StartProcess(t, cmd)
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
