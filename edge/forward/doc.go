// Package forward relays TCP connections from a listener to a fixed target,
// replacing the iptables DNAT port forwards of the Open Food Facts hosts.
// Between two TCP sockets the copy is zero-copy on Linux (splice through
// net.TCPConn.ReadFrom), and the idle timeout reads the kernel's own
// last-data timestamps (TCP_INFO) so that it does not have to sit in the
// data path. A PROXY protocol v2 header can carry the client address to the
// target. IP filtering is done by edge/acl on the listener before a
// connection reaches this package.
package forward
