//go:build !linux

package conn

import (
	"net"
	"time"
)

// sinceLastRecv is only available on Linux; elsewhere the forwarder uses a
// counting copy for the idle timeout.
func sinceLastRecv(*net.TCPConn) (time.Duration, bool) { return 0, false }

// haveTCPInfo: without TCP_INFO the idle timeout needs the counting copy.
const haveTCPInfo = false

// capLocalBuffers leaves socket buffers to the kernel outside Linux.
func capLocalBuffers(*net.TCPConn) {}
