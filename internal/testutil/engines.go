package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SyncBuffer is a goroutine-safe output sink (a process's output, a log).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProcess starts cmd, kills it at the end of the test, and keeps its
// output for the failure report.
func StartProcess(t *testing.T, cmd *exec.Cmd) *SyncBuffer {
	t.Helper()
	out := new(SyncBuffer)
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

// StartRedis runs redis-server on a free loopback port without persistence.
func StartRedis(t *testing.T) string {
	bin := RequireBinary(t, "redis-server")
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", t.TempDir(), "--protected-mode", "yes")
	StartProcess(t, cmd)
	WaitTCP(t, addr, 10*time.Second)
	return addr
}

// RESPCommand sends one RESP command and returns the raw reply line(s).
func RESPCommand(r *bufio.Reader, w io.Writer, args ...string) (string, error) {
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

// RedisSession runs a short Redis session through addr: PING, SET of a
// 256 KiB value, GET, INCR, and checks every reply.
func RedisSession(t *testing.T, addr string) {
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
		got, err := RESPCommand(r, c, s.args...)
		if err != nil {
			t.Fatalf("redis %s: %v", s.args[0], err)
		}
		if s.want != "" && got != s.want {
			t.Fatalf("redis %s: got %.40q (%d bytes); want %.40q", s.args[0], got, len(got), s.want)
		}
	}
}

// Logger returns a debug-level text logger writing into a buffer, printed
// if the test fails.
func Logger(t testing.TB) (*slog.Logger, *SyncBuffer) {
	buf := new(SyncBuffer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// Listen opens a listener on a free port of 127.0.0.1, closed at the end
// of the test.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
