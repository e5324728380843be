package guard

import "errors"

// Errors of [CheckFraming].
var (
	ErrCLAndTE    = errors.New("Content-Length together with Transfer-Encoding")
	ErrTEOnHTTP10 = errors.New("Transfer-Encoding on HTTP/1.0")
)

// CheckFraming refuses the heads (requests, and upstream responses) whose
// body length two readers could read differently (request smuggling,
// response splitting), from the fields as the peer sent them:
// Content-Length together with Transfer-Encoding (RFC 9112 6.3 allows a
// proxy to refuse it; nginx does), and Transfer-Encoding on HTTP/1.0, which has no chunked coding (nginx refuses it too). hasCL and
// hasTE say whether the head carried the fields at all, whatever their
// values; http11 whether the start line says HTTP/1.1 or later.
func CheckFraming(hasCL, hasTE, http11 bool) error {
	switch {
	case hasTE && hasCL:
		return ErrCLAndTE
	case hasTE && !http11:
		return ErrTEOnHTTP10
	}
	return nil
}
