package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/offedge/offedge/internal/netns"
)

// nodeProc supervises the process of one node of a namespace lab: `offedge
// __lab-node` under `ip netns exec`, which execs into offedge without
// forking, so every thread of the node's process is born in its namespace
// (Go cannot move a running multi-threaded process between namespaces:
// setns applies to one thread, and the runtime starts threads at will).
// The process says READY=1 on a notify socket (sd_notify's protocol, the
// one offedge run speaks to systemd) once its listeners are open; an
// unexpected exit restarts it, at most maxRestarts times.
type nodeProc struct {
	name   string
	ns     *netns.NS
	argv   []string // the command after `ip netns exec NS`
	env    []string
	logOut io.Writer
	sock   *net.UnixConn

	mu        sync.Mutex
	cmd       *exec.Cmd
	running   bool // the lab wants it running
	restarts  int
	ready     chan struct{} // READY=1 from the current process
	appsReady chan struct{} // NotifyAppsReady from the current process
	exited    chan struct{} // the current process has exited
	failed    error         // restarts exhausted
}

// maxRestarts bounds the restarts of a crashing node process.
const maxRestarts = 3

func newNodeProc(name string, ns *netns.NS, argv, env []string, runDir string, logOut io.Writer) (*nodeProc, error) {
	path := filepath.Join(runDir, name+".notify")
	os.Remove(path)
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("lab --netns: node %s: notify socket: %w", name, err)
	}
	p := &nodeProc{name: name, ns: ns, argv: argv, env: append(env, "NOTIFY_SOCKET="+path), logOut: logOut, sock: sock}
	go p.readNotify()
	return p, nil
}

// readNotify reads the node's notify datagrams until the socket closes.
func (p *nodeProc) readNotify() {
	buf := make([]byte, 4096)
	for {
		n, _, err := p.sock.ReadFromUnix(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			switch line {
			case "READY=1":
				closeOnce(p.ready)
			case NotifyAppsReady:
				closeOnce(p.appsReady)
			}
		}
		p.mu.Unlock()
	}
}

func closeOnce(c chan struct{}) {
	if c == nil {
		return
	}
	select {
	case <-c:
	default:
		close(c)
	}
}

// start runs the process (p.mu held).
func (p *nodeProc) startLocked() error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.ns.Name}, p.argv...)...)
	cmd.Env = append(os.Environ(), p.env...)
	// Its own process group, so that stop reaches the engines it started;
	// and killed with the lab if the lab dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	p.ready, p.appsReady, p.exited = make(chan struct{}), make(chan struct{}), make(chan struct{})
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab --netns: node %s: %w", p.name, err)
	}
	p.cmd, p.running = cmd, true
	exited := p.exited
	go func() {
		// Every line the node writes, prefixed by its name.
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			fmt.Fprintf(p.logOut, "%s | %s\n", p.name, sc.Text())
		}
		io.Copy(io.Discard, out)
		err := cmd.Wait()
		p.exitedWith(cmd, err, exited)
	}()
	return nil
}

// exitedWith marks the process exited and restarts it if the lab wanted it
// running: waiters woken by exited see the new process, or failed.
func (p *nodeProc) exitedWith(cmd *exec.Cmd, err error, exited chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(exited)
	if p.cmd != cmd || !p.running {
		return
	}
	p.cmd = nil
	if p.restarts >= maxRestarts {
		p.running = false
		p.failed = fmt.Errorf("node %s exited (%v) and was restarted %d times already; left down", p.name, err, maxRestarts)
		fmt.Fprintf(p.logOut, "%s | lab: %v\n", p.name, p.failed)
		closeOnce(p.ready) // waiters see failed
		closeOnce(p.appsReady)
		return
	}
	p.restarts++
	fmt.Fprintf(p.logOut, "%s | lab: exited (%v); restart %d of %d\n", p.name, err, p.restarts, maxRestarts)
	if err := p.startLocked(); err != nil {
		p.running = false
		p.failed = err
		closeOnce(p.ready)
		closeOnce(p.appsReady)
	}
}

// Start starts the process unless it runs.
func (p *nodeProc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return nil
	}
	p.failed = nil
	return p.startLocked()
}

// wait waits for which (ready or appsReady) of the running process,
// across restarts, until the process is ready, has failed for good or is
// stopped, or ctx ends.
func (p *nodeProc) wait(ctx context.Context, which func(*nodeProc) chan struct{}) error {
	for {
		p.mu.Lock()
		ch, exited, running, failed := which(p), p.exited, p.running, p.failed
		p.mu.Unlock()
		if failed != nil {
			return failed
		}
		if !running || ch == nil {
			return fmt.Errorf("node %s is not running", p.name)
		}
		select {
		case <-ch:
			p.mu.Lock()
			failed = p.failed
			p.mu.Unlock()
			return failed
		case <-exited:
			// Restarted (new channels), failed or stopped: look again.
		case <-ctx.Done():
			return fmt.Errorf("node %s: %w", p.name, ctx.Err())
		}
	}
}

func (p *nodeProc) WaitReady(ctx context.Context) error {
	return p.wait(ctx, func(p *nodeProc) chan struct{} { return p.ready })
}

func (p *nodeProc) WaitApps(ctx context.Context) error {
	return p.wait(ctx, func(p *nodeProc) chan struct{} { return p.appsReady })
}

// Stop stops the process (SIGTERM to its group, SIGKILL after timeout)
// and keeps it stopped.
func (p *nodeProc) Stop(timeout time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.running, p.cmd = false, nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	return fmt.Errorf("node %s did not stop within %s; killed", p.name, timeout)
}

// Running reports whether the lab wants the process running and it has
// not given up on it.
func (p *nodeProc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// Pid is the current process's id, 0 when none runs.
func (p *nodeProc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Close stops the process and closes the notify socket.
func (p *nodeProc) Close() error {
	err := p.Stop(10 * time.Second)
	p.sock.Close()
	os.Remove(p.sock.LocalAddr().String())
	return errors.Join(err)
}
