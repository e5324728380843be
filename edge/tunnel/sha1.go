package tunnel

import "crypto/sha1"

// sha1Sum is the RFC 5280 §4.2.1.2 method (1) key identifier. SHA-1 is used
// as an identifier here, not for security.
func sha1Sum(b []byte) []byte {
	s := sha1.Sum(b)
	return s[:]
}
