// Package protect holds the node-level protections of the HTTP edge that do
// not depend on HTTP itself: request-rate zones (nginx limit_req_zone and
// limit_req, on golang.org/x/time/rate), class maps computed from a request
// (nginx map over the user agent, the path or a header), bot rules (match a
// user agent, referer, path or address to an action), the ban list checked
// at accept, before TLS, and the jails that fill it from the request stream
// as fail2ban does from logs.
//
// Each of them is built once per node from its plan declaration and shared
// by every listener of the node (the runtime's resource registry), so that
// a client's rate is counted once whichever port it uses. Every table an
// attacker can grow (keys of a zone, addresses a jail watches, bans) is
// bounded; when full, the oldest entry goes first, as nginx evicts from a
// full zone.
package protect
