package guard

import "errors"

// Errors of [CheckFraming].
var (
	ErrCLAndTE    = errors.New("request has both Content-Length and Transfer-Encoding")
	ErrTEOnHTTP10 = errors.New("HTTP/1.0 request with Transfer-Encoding")
)

// CheckFraming refuses the request heads whose body length two servers
// could read differently (request smuggling), from the fields as the client
// sent them: Content-Length together with Transfer-Encoding (RFC 9112 6.3
// allows a proxy to refuse it; nginx does), and Transfer-Encoding on
// HTTP/1.0, which has no chunked coding (nginx refuses it too). hasCL and
// hasTE say whether the head carried the fields at all, whatever their
// values; http11 whether the request line says HTTP/1.1 or later.
func CheckFraming(hasCL, hasTE, http11 bool) error {
	switch {
	case hasTE && hasCL:
		return ErrCLAndTE
	case hasTE && !http11:
		return ErrTEOnHTTP10
	}
	return nil
}
