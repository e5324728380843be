//go:build !linux

package conn

import "time"

// acceptInherits is false: outside Linux, Go sets keepalive on each
// accepted connection.
const acceptInherits = false

func setKeepAlive(int, time.Duration) error { return nil }
