// Package forward relays TCP connections from a listener to a fixed target,
// replacing the iptables DNAT port forwards of the Open Food Facts hosts.
// On Linux each TCP listener is served by an event loop of the package's
// own (loop_linux.go: accept4, connect, read/write and splice on
// non-blocking descriptors in an epoll set); elsewhere, and for other
// listeners, by a goroutine per connection (edge/conn's Server and Relay).
// A PROXY protocol v2 header can carry the client address to the target.
// IP filtering is edge/acl's, applied to every accepted connection before
// a byte is read.
package forward
