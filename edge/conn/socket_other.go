//go:build !linux

package conn

import "net"

// rawSocket is Linux's (rawsocket_linux.go); elsewhere reads and
// writes go through net.Conn.
type rawSocket struct{ net.Conn }

func newRawSocket(net.Conn) *rawSocket { return nil }
