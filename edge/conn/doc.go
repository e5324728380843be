// Package conn is the connection layer shared by offedge's TCP forwards and
// tunnels, after ghostunnel's proxy:
//
//   - [Server], the accept loop: a concurrency limit taken before Accept
//     (excess connections wait in the kernel backlog), a per-client bound
//     (a client over it is reset at once, so that one client cannot fill
//     the limit), backoff on temporary accept errors, tracking of every open
//     connection, and a Shutdown that stops accepting, drains until a
//     deadline, then closes what is left;
//   - [Relay], the byte relay: both directions copied until both end,
//     half-closes carried across, an error on either side resetting both,
//     an idle timeout; zero-copy (splice) between two TCP sockets on Linux,
//     otherwise a small buffer that a busy direction trades for a big one
//     while its reads fill it ([BigBufferSize]), a multiplexed stream's
//     frames written from its own buffers ([FrameWriter]), and, over TLS,
//     records batched per write ([BatchConn]);
//   - [Dialer], outgoing connections from the source address the plan
//     shows, with typed failures ([DialError]);
//   - [BufferPool], [LogLimiter]: the pieces both use; idle timeouts
//     and the forward's late keepalive on shared timer queues (idle.go).
//
// It knows nothing of what a connection carries.
package conn
