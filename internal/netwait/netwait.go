// Package netwait waits for a TCP port to accept connections: for the
// tests' engines and for the processes the lab starts (pebble).
package netwait

import (
	"context"
	"net"
	"time"
)

// TCP waits until addr accepts a TCP connection, the timeout expires or
// ctx ends, polling with a backoff from 5 ms to 100 ms.
func TCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for delay := 5 * time.Millisecond; time.Now().Before(deadline); delay = min(delay*2, 100*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	return last
}
