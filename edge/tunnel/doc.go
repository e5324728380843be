// Package tunnel carries TCP services between servers over mutually
// authenticated TLS 1.3, replacing stunnel4's `client = yes` (an [Entrance]:
// clear text in, TLS out, exits tried in order) and `client = no` (an
// [Exit]: TLS in from authenticated peers only, one listener serving several
// tunnels chosen by SNI = tunnel name, clear text out to the service). Peers
// authenticate either with a pre-shared secret from which both ends derive
// the same Ed25519 key and pin it (see [DerivePSKKey]; the derived
// certificate also configures stunnel4 for interoperation), or with an
// internal CA and node names (package pki). Listeners are opened and
// filtered by the caller (edge/acl); this package handles connections:
// concurrency limit, handshake timeout before dialing, half-closing copies,
// idle timeout, and Update/Shutdown without dropping open connections.
package tunnel
