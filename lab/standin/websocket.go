package standin

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	WSContinuation byte = 0x0
	WSText         byte = 0x1
	WSBinary       byte = 0x2
	WSClose        byte = 0x8
	WSPing         byte = 0x9
	WSPong         byte = 0xA
)

// Bounds of the WebSocket echo.
const (
	// MaxWebSocketFrame is the largest frame payload /lab/ws accepts; a
	// larger frame gets close code 1009.
	MaxWebSocketFrame = 1 << 20
	// MaxWebSocketMessage is the largest reassembled message /lab/ws echoes.
	MaxWebSocketMessage = 1 << 20
	// maxClientFrame bounds what the test client accepts from a server.
	maxClientFrame = 16 << 20
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsAccept is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsFrame is one WebSocket frame, payload unmasked.
type wsFrame struct {
	fin     bool
	opcode  byte
	payload []byte
}

// wsError is a protocol violation and the close code that answers it.
type wsError struct {
	code uint16
	msg  string
}

func (e *wsError) Error() string { return fmt.Sprintf("websocket: %s (close %d)", e.msg, e.code) }

// readFrame reads one frame. Masked frames are required from clients
// (wantMask) and refused from servers; a payload larger than maxPayload is
// refused before anything is allocated. Protocol violations are *wsError.
func readFrame(r io.Reader, maxPayload int, wantMask bool) (wsFrame, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return wsFrame{}, err
	}
	f := wsFrame{fin: hdr[0]&0x80 != 0, opcode: hdr[0] & 0x0f}
	if hdr[0]&0x70 != 0 {
		return f, &wsError{1002, "reserved bits set without a negotiated extension"}
	}
	switch f.opcode {
	case WSContinuation, WSText, WSBinary, WSClose, WSPing, WSPong:
	default:
		return f, &wsError{1002, fmt.Sprintf("unknown opcode %#x", f.opcode)}
	}
	masked := hdr[1]&0x80 != 0
	if masked != wantMask {
		if wantMask {
			return f, &wsError{1002, "client frame is not masked"}
		}
		return f, &wsError{1002, "server frame is masked"}
	}
	length := uint64(hdr[1] & 0x7f)
	switch length {
	case 126:
		if _, err := io.ReadFull(r, hdr[:2]); err != nil {
			return f, err
		}
		length = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return f, err
		}
		length = binary.BigEndian.Uint64(hdr[:8])
		if length>>63 != 0 {
			return f, &wsError{1002, "payload length has its most significant bit set"}
		}
	}
	if f.opcode >= WSClose {
		if !f.fin {
			return f, &wsError{1002, "fragmented control frame"}
		}
		if length > 125 {
			return f, &wsError{1002, "control frame payload longer than 125 bytes"}
		}
	}
	if length > uint64(maxPayload) {
		return f, &wsError{1009, fmt.Sprintf("frame payload of %d bytes is larger than %d", length, maxPayload)}
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, length)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// appendFrame appends a complete frame to b, masked with key when key is
// not nil.
func appendFrame(b []byte, fin bool, opcode byte, payload []byte, key []byte) []byte {
	first := opcode & 0x0f
	if fin {
		first |= 0x80
	}
	b = append(b, first)
	var maskBit byte
	if key != nil {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if key == nil {
		return append(b, payload...)
	}
	b = append(b, key[:4]...)
	start := len(b)
	b = append(b, payload...)
	for i := range payload {
		b[start+i] ^= key[i%4]
	}
	return b
}

// validCloseCode reports whether a close code may appear in a close frame.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1011:
		return code != 1004 && code != 1005 && code != 1006
	}
	return false
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// hasToken reports whether a comma-separated header contains token.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// labWebSocket is /lab/ws: the RFC 6455 handshake, then an echo of every
// text and binary message, pongs for pings and a close answering a close.
func (s *httpServer) labWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "a WebSocket handshake is a GET", http.StatusMethodNotAllowed)
		return
	}
	if !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		http.Error(w, "/lab/ws is a WebSocket echo: send Connection: Upgrade and Upgrade: websocket", http.StatusUpgradeRequired)
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported Sec-WebSocket-Version; want 13", http.StatusUpgradeRequired)
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		http.Error(w, "Sec-WebSocket-Key must be 16 bytes in base64", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "this connection cannot be upgraded: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.conns[conn] = struct{}{}
	if s.closed {
		conn.Close()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	conn.SetDeadline(time.Time{})
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s: %s\r\n\r\n",
		wsAccept(key), HeaderStandin, s.info.label())
	if err := brw.Flush(); err != nil {
		return
	}
	if err := wsEcho(conn, brw.Reader, s.opts.IdleTimeout); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
		s.opts.Logger.Debug("stand-in websocket ended", "standin", s.info.label(), "remote", conn.RemoteAddr().String(), "err", err)
	}
}

// wsEcho runs the server side of the echo until a close, an error or idle.
func wsEcho(c net.Conn, br *bufio.Reader, idle time.Duration) error {
	write := func(opcode byte, payload []byte) error {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write(appendFrame(nil, true, opcode, payload, nil))
		return err
	}
	fail := func(err error) error {
		var we *wsError
		if errors.As(err, &we) {
			write(WSClose, closePayload(we.code, we.msg))
		}
		return err
	}
	var (
		msg   []byte
		msgOp byte
		inMsg bool
	)
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		f, err := readFrame(br, MaxWebSocketFrame, true)
		if err != nil {
			return fail(err)
		}
		switch f.opcode {
		case WSPing:
			if err := write(WSPong, f.payload); err != nil {
				return err
			}
			continue
		case WSPong:
			continue
		case WSClose:
			switch {
			case len(f.payload) == 0:
				write(WSClose, nil)
				return nil
			case len(f.payload) == 1:
				return fail(&wsError{1002, "close payload of 1 byte"})
			case !validCloseCode(binary.BigEndian.Uint16(f.payload)):
				return fail(&wsError{1002, fmt.Sprintf("invalid close code %d", binary.BigEndian.Uint16(f.payload))})
			case !utf8.Valid(f.payload[2:]):
				return fail(&wsError{1007, "close reason is not UTF-8"})
			}
			write(WSClose, f.payload)
			return nil
		case WSText, WSBinary:
			if inMsg {
				return fail(&wsError{1002, "new message before the end of a fragmented one"})
			}
			msgOp, msg, inMsg = f.opcode, append(msg[:0], f.payload...), true
		case WSContinuation:
			if !inMsg {
				return fail(&wsError{1002, "continuation frame outside a message"})
			}
			if len(msg)+len(f.payload) > MaxWebSocketMessage {
				return fail(&wsError{1009, fmt.Sprintf("message larger than %d bytes", MaxWebSocketMessage)})
			}
			msg = append(msg, f.payload...)
		}
		if !f.fin {
			continue
		}
		inMsg = false
		if msgOp == WSText && !utf8.Valid(msg) {
			return fail(&wsError{1007, "text message is not UTF-8"})
		}
		if err := write(msgOp, msg); err != nil {
			return err
		}
	}
}

// WebSocket is a minimal RFC 6455 client, for tests of /lab/ws directly and
// through proxies. It is not safe for concurrent use.
type WebSocket struct {
	conn net.Conn
	br   *bufio.Reader
	// Response is the server's 101 response (its headers say which
	// stand-in answered).
	Response *http.Response
}

// WebSocketCloseError is the close frame that ended a WebSocket.
type WebSocketCloseError struct {
	Code   uint16 // 0 when the close frame had no payload
	Reason string
}

func (e *WebSocketCloseError) Error() string {
	return fmt.Sprintf("websocket closed by peer: code %d %q", e.Code, e.Reason)
}

// DialWebSocket performs the opening handshake for path on the connection c
// (plain or TLS, already connected), with host as the Host header and extra
// headers added to the request. ctx bounds the handshake.
func DialWebSocket(ctx context.Context, c net.Conn, host, path string, extra http.Header) (*WebSocket, error) {
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+path, nil)
	if err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	for k, vs := range extra {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := req.Write(c); err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("websocket handshake: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wsAccept(key) {
		return nil, fmt.Errorf("websocket handshake: Sec-WebSocket-Accept %q, want %q", got, wsAccept(key))
	}
	if !stop() {
		return nil, fmt.Errorf("websocket handshake: %w", ctx.Err())
	}
	c.SetDeadline(time.Time{})
	return &WebSocket{conn: c, br: br, Response: resp}, nil
}

// Conn returns the underlying connection (for deadlines, or raw bytes).
func (w *WebSocket) Conn() net.Conn { return w.conn }

// WriteFrame writes one masked frame, as a client must.
func (w *WebSocket) WriteFrame(fin bool, opcode byte, payload []byte) error {
	var key [4]byte
	rand.Read(key[:])
	_, err := w.conn.Write(appendFrame(nil, fin, opcode, payload, key[:]))
	return err
}

// ReadFrame reads one frame from the server (at most 16 MiB of payload).
func (w *WebSocket) ReadFrame() (fin bool, opcode byte, payload []byte, err error) {
	f, err := readFrame(w.br, maxClientFrame, false)
	return f.fin, f.opcode, f.payload, err
}

// WriteMessage writes a whole message in one frame.
func (w *WebSocket) WriteMessage(opcode byte, payload []byte) error {
	return w.WriteFrame(true, opcode, payload)
}

// ReadMessage reads the next text or binary message, reassembling
// fragments, answering pings and skipping pongs. A close frame from the
// server is returned as *WebSocketCloseError.
func (w *WebSocket) ReadMessage() (opcode byte, payload []byte, err error) {
	var msg []byte
	started := false
	for {
		fin, op, p, err := w.ReadFrame()
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case WSPing:
			if err := w.WriteFrame(true, WSPong, p); err != nil {
				return 0, nil, err
			}
			continue
		case WSPong:
			continue
		case WSClose:
			ce := &WebSocketCloseError{}
			if len(p) >= 2 {
				ce.Code, ce.Reason = binary.BigEndian.Uint16(p), string(p[2:])
			}
			return 0, nil, ce
		case WSText, WSBinary:
			if started {
				return 0, nil, errors.New("websocket: new message inside a fragmented one")
			}
			opcode, started = op, true
		case WSContinuation:
			if !started {
				return 0, nil, errors.New("websocket: continuation frame outside a message")
			}
		}
		if len(msg)+len(p) > maxClientFrame {
			return 0, nil, fmt.Errorf("websocket: message larger than %d bytes", maxClientFrame)
		}
		msg = append(msg, p...)
		if fin {
			return opcode, msg, nil
		}
	}
}

// Close sends a normal close frame (best effort) and closes the connection.
func (w *WebSocket) Close() error {
	w.conn.SetWriteDeadline(time.Now().Add(time.Second))
	w.WriteFrame(true, WSClose, closePayload(1000, ""))
	return w.conn.Close()
}
