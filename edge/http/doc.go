// Package httpedge is offedge's HTTP edge: one [Server] per listening socket
// serving virtual hosts (chosen by Host and, on TLS, by SNI, with nginx's
// server_name rules), each with routes chosen by longest path prefix that
// reverse-proxy to upstream pools (smooth weighted round robin, backups,
// passive and active health, retries, keep-alive, WebSocket), serve static
// files with a caching fallback (nginx try_files $uri @upstream with
// proxy_cache), or redirect. It is configured by plain data ([Config]),
// compiled once into an immutable handler chain and swapped atomically by
// [Server.Update]; hostile clients are held to header, body, idle and send
// timeouts and size limits. See docs/http.md for the operator's view.
package httpedge
