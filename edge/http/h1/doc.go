// Package h1 is the HTTP/1.x server loop of the HTTP edge: it reads
// requests, hands them to an [http.Handler] and writes the responses, in
// place of net/http's server loop, which costs an edge too much per request
// and per idle connection (see docs/http-server.md).
//
// What differs from net/http's server, and why:
//
//   - An idle keep-alive connection holds no buffer and no goroutine: it is
//     parked on readiness (an epoll set polled through the runtime's network
//     poller) and gets a goroutine and pooled 4 KiB read and write buffers
//     only while a request is in flight. This is what nginx does, and it is
//     what lets 10,000 idle connections cost kilobytes, not 20 KB each.
//   - The request head is parsed in one pass over the bytes already read,
//     with one string allocation for all of its fields, and the decisions of
//     net/http's parser: what it refuses (400, 431, 501, 505, 417) is refused
//     here, and what it accepts is accepted with the same method, target,
//     URL, header fields, Host, length and framing. FuzzParseDifferential
//     holds the two parsers to that. Where the edge is stricter it says so:
//     Content-Length together with Transfer-Encoding is refused (400), where
//     net/http silently drops the length (request smuggling).
//   - The client going away while a request is in flight (a hang-up seen by
//     the same readiness poller) cancels the request's context, as net/http's
//     background read does, without a read or a goroutine per request.
//
// HTTP/2 is not spoken here: TLS connections that negotiate h2 by ALPN stay
// with net/http. HTTP/1 over TLS is served by [Server.ServeConn], with a
// goroutine per connection (crypto/tls keeps its own record buffers, so
// parking would save little).
package h1
