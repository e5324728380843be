//go:build !linux

package forward

import "net"

// loop is Linux-only (epoll, splice); elsewhere every listener is served
// by a goroutine per connection.
type loop struct{ drained chan struct{} }

type group struct{ loops []*loop }

func (f *Forwarder) serveLoop(net.Listener) (bool, error) { return false, nil }
func (g *group) stop()                                    {}
func (g *group) close()                                   {}
func (l *loop) resumeNow()                                {}

// useLoop is the Linux switch of the event loop (tests read it).
var useLoop = false
