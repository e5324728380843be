package standin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// MaxTCPLine is the longest line the generic TCP stand-in echoes, line
// ending included; a longer line closes the connection with an error line.
const MaxTCPLine = 4096

// tcpServer is the generic TCP stand-in: a banner naming what it stands
// for, then an echo of every line.
type tcpServer struct {
	*connServer
	protocol string
}

func newTCP(protocol string, info Info, opts Options) *tcpServer {
	s := &tcpServer{connServer: newConnServer("tcp", info, opts), protocol: protocol}
	s.handle = s.serveConn
	return s
}

// Banner is the first line the generic TCP stand-in sends.
func Banner(info Info, protocol string) string {
	return fmt.Sprintf("offedge stand-in for %s on %s (%s)\r\n", info.Service, info.Node, protocol)
}

func (s *tcpServer) serveConn(ctx context.Context, c net.Conn) {
	br := bufio.NewReaderSize(c, 4096)
	write := func(b []byte) error {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write(b)
		return err
	}
	if err := write([]byte(Banner(s.info, s.protocol))); err != nil {
		s.logConnErr(c, err)
		return
	}
	for ctx.Err() == nil {
		c.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		line, err := readLine(br, MaxTCPLine)
		if errors.Is(err, errLineTooLong) {
			write(fmt.Appendf(nil, "error: line longer than %d bytes; closing\r\n", MaxTCPLine))
			return
		}
		if err != nil {
			s.logConnErr(c, err)
			return
		}
		if err := write(append(line, '\r', '\n')); err != nil {
			s.logConnErr(c, err)
			return
		}
	}
}
