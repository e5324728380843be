//go:build !linux

package h1

import "errors"

// poller is Linux-only (epoll); elsewhere idle connections keep their
// goroutine, as with net/http.
type poller struct{}

func newPoller(*Server) (*poller, error)  { return nil, errors.New("no epoll on this system") }
func (p *poller) add(*conn) error         { return errors.New("no poller") }
func (p *poller) watchHangUp(*conn) error { return errors.New("no poller") }
func (p *poller) remove(*conn, bool)      {}
func (p *poller) close()                  {}
