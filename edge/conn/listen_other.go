//go:build !linux

package conn

import "time"

// acceptInherits is false: outside Linux, Go sets keepalive on each
// accepted connection.
const acceptInherits = false

// SetKeepAliveFD does nothing outside Linux (see listen_linux.go).
func SetKeepAliveFD(int, time.Duration) error { return nil }
