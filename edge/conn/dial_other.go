//go:build !linux

package conn

import "syscall"

// bindNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (dial_linux.go); elsewhere
// a bound dial takes its port at bind time.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
