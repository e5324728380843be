//go:build !linux

package conn

import (
	"errors"
	"net"
	"syscall"
)

// Socket is Linux's (socket_linux.go); elsewhere NewSocket returns nil and
// reads and writes go through net.Conn.
type Socket struct{}

func NewSocket(net.Conn) *Socket { return nil }

var errNoSocket = errors.New("conn: raw sockets are Linux's")

func (*Socket) Read([]byte) (int, error)                  { return 0, errNoSocket }
func (*Socket) Write([]byte) (int, error)                 { return 0, errNoSocket }
func (*Socket) WriteMore([]byte) (int, error)             { return 0, errNoSocket }
func (*Socket) WriteV(_, _ []byte) (int, error)           { return 0, errNoSocket }
func (*Socket) SendFile(int, int64, int64) (int64, error) { return 0, errNoSocket }

// Recv is one read on the socket fd.
func Recv(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
