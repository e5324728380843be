package conn

import (
	"io"
	"net"
)

// DataPath returns what c's bytes go through: its [Socket] when c is a
// TCP socket (on Linux), c itself otherwise. Holders read and write
// through it without a branch per call.
func DataPath(c net.Conn) io.ReadWriter {
	if s := NewSocket(c); s != nil {
		return s
	}
	return c
}
