// Package standin provides small, honest stand-ins for the applications
// behind Open Food Facts' edge, so that `offedge lab` can run the whole
// infrastructure on one machine when the real applications (Product Opener,
// MongoDB, the Proxmox Mail Gateway, ...) are not installed.
//
// A stand-in never pretends to be the real thing: every HTTP response carries
// the header
//
//	X-Offedge-Standin: <service>@<node>
//
// and every TCP protocol says so in its banner or in its replies (the SMTP
// greeting, the MongoDB hello reply's offedgeStandin field, the Redis INFO
// section, the banner line of the generic TCP echo).
//
// The stand-ins are:
//
//   - Product Opener (New("http", Info{Flavor: "off"}, ...)): a home page,
//     product pages, the /api/v2/product JSON API and the product images of a
//     small synthetic product set (see Products);
//   - a generic HTTP application (blog, wiki, odoo, monitoring, ...) and an
//     InfluxDB stand-in answering /ping;
//   - a MongoDB server speaking the wire protocol (OP_MSG and legacy
//     OP_QUERY) for a handful of commands, with its own BSON codec (Doc);
//   - a Redis server speaking RESP2 for the commands the lab needs;
//   - an SMTP server recording the messages it accepts (Messages);
//   - a generic TCP line echo for every other protocol (nfs, ...).
//
// Every HTTP stand-in also serves the lab endpoints the proxy tests use:
// /lab/request (what the application saw, see RequestInfo), /lab/slow (a
// bounded slow download) and /lab/ws (a WebSocket echo).
//
// The package also holds the tiny clients the tests use against both the
// stand-ins and the real engines: MongoCommand, RedisCommand and
// DialWebSocket.
//
// Every parser is bounded (line lengths, frame and message sizes, nesting
// depth) and every connection has an idle deadline: hostile input gets an
// error reply or a closed connection, never a panic or unbounded memory.
package standin
