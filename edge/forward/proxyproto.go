package forward

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ProxyV2Signature starts every PROXY protocol version 2 header.
const ProxyV2Signature = "\r\n\r\n\x00\r\nQUIT\n"

// ProxyHeader is a decoded PROXY protocol v2 header.
type ProxyHeader struct {
	// Local is true for the LOCAL command (health checks: no addresses).
	Local bool
	// Source and Dest are the client's address and the address it connected to.
	Source, Dest netip.AddrPort
	// TLVs holds the raw type-length-value extensions, if any.
	TLVs []byte
}

// AppendProxyV2 appends a PROXY v2 header for a TCP connection from src to
// dst. Both must be valid and of the same family after unmapping IPv4-mapped
// IPv6; otherwise a LOCAL header (no addresses) is written, as the
// specification asks for connections whose addresses cannot be expressed.
func AppendProxyV2(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, ProxyV2Signature...)
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	switch {
	case src.IsValid() && dst.IsValid() && s.Is4() && d.Is4():
		b = append(b, 0x21, 0x11, 0, 12)
		b = append(b, s.AsSlice()...)
		b = append(b, d.AsSlice()...)
	case src.IsValid() && dst.IsValid() && s.Is6() && d.Is6():
		b = append(b, 0x21, 0x21, 0, 36)
		b = append(b, s.AsSlice()...)
		b = append(b, d.AsSlice()...)
	default:
		return append(b, 0x20, 0x00, 0, 0)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// ErrNotProxyV2 is returned by ParseProxyV2 when the input does not start
// with the PROXY v2 signature.
var ErrNotProxyV2 = errors.New("not a PROXY protocol v2 header")

// ErrShortHeader is returned by ParseProxyV2 when more bytes are needed.
var ErrShortHeader = errors.New("PROXY v2 header incomplete")

// ParseProxyV2 decodes a PROXY v2 header at the start of b and returns it
// with the number of bytes it used. It is strict: unknown versions,
// commands, families or a length too short for the family are errors.
func ParseProxyV2(b []byte) (ProxyHeader, int, error) {
	var h ProxyHeader
	if len(b) < len(ProxyV2Signature) {
		if !bytes.HasPrefix([]byte(ProxyV2Signature), b) {
			return h, 0, ErrNotProxyV2
		}
		return h, 0, ErrShortHeader
	}
	if !bytes.HasPrefix(b, []byte(ProxyV2Signature)) {
		return h, 0, ErrNotProxyV2
	}
	if len(b) < 16 {
		return h, 0, ErrShortHeader
	}
	verCmd, fam := b[12], b[13]
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return h, 0, fmt.Errorf("PROXY header: version %d, want 2", verCmd>>4)
	}
	if len(b) < 16+n {
		return h, 0, ErrShortHeader
	}
	body := b[16 : 16+n]
	switch verCmd & 0x0f {
	case 0x0: // LOCAL: addresses, if any, are to be ignored
		h.Local = true
		return h, 16 + n, nil
	case 0x1: // PROXY
	default:
		return h, 0, fmt.Errorf("PROXY header: unknown command %#x", verCmd&0x0f)
	}
	var alen int
	switch fam {
	case 0x11: // TCP over IPv4
		alen = 4
	case 0x21: // TCP over IPv6
		alen = 16
	default:
		return h, 0, fmt.Errorf("PROXY header: unsupported family/protocol %#x", fam)
	}
	if n < 2*alen+4 {
		return h, 0, fmt.Errorf("PROXY header: length %d too short for family %#x", n, fam)
	}
	sa, _ := netip.AddrFromSlice(body[:alen])
	da, _ := netip.AddrFromSlice(body[alen : 2*alen])
	sp := binary.BigEndian.Uint16(body[2*alen:])
	dp := binary.BigEndian.Uint16(body[2*alen+2:])
	h.Source = netip.AddrPortFrom(sa, sp)
	h.Dest = netip.AddrPortFrom(da, dp)
	if rest := body[2*alen+4:]; len(rest) > 0 {
		h.TLVs = bytes.Clone(rest)
	}
	return h, 16 + n, nil
}
