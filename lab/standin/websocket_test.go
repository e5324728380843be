package standin

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func dialWS(t *testing.T, addr string) *WebSocket {
	t.Helper()
	c := dial(t, addr)
	ws, err := DialWebSocket(testCtx(t), c, "ws.example", "/lab/ws", http.Header{"Origin": {"http://ws.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func expectClose(t *testing.T, ws *WebSocket, code uint16) {
	t.Helper()
	_, _, err := ws.ReadMessage()
	var ce *WebSocketCloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("got %v, want a close with code %d", err, code)
	}
	// The server closes the TCP connection after its close frame.
	if _, err := ws.Conn().Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after the close frame")
	}
}

func TestWebSocketEcho(t *testing.T) {
	_, addr := start(t, "http", Info{Service: "po-off", Node: "off1", Flavor: "off"}, Options{})
	ws := dialWS(t, addr)
	if got := ws.Response.Header.Get(HeaderStandin); got != "po-off@off1" {
		t.Errorf("101 %s = %q", HeaderStandin, got)
	}
	big := bytes.Repeat([]byte("0123456789"), 20000) // 200 kB: 64-bit length
	tests := []struct {
		name string
		op   byte
		data []byte
	}{
		{"text", WSText, []byte("hello, stand-in")},
		{"empty", WSText, nil},
		{"binary", WSBinary, []byte{0, 1, 2, 0xff}},
		{"16-bit length", WSBinary, bytes.Repeat([]byte{7}, 300)},
		{"64-bit length", WSBinary, big},
		{"utf-8", WSText, []byte("Crème brûlée 🍮")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ws.WriteMessage(tt.op, tt.data); err != nil {
				t.Fatal(err)
			}
			op, data, err := ws.ReadMessage()
			if err != nil || op != tt.op || !bytes.Equal(data, tt.data) {
				t.Fatalf("echo = %d, %d bytes, %v; want %d, %d bytes", op, len(data), err, tt.op, len(tt.data))
			}
		})
	}
	t.Run("fragmented with a ping between", func(t *testing.T) {
		ws.WriteFrame(false, WSText, []byte("frag"))
		ws.WriteFrame(true, WSPing, []byte("are you there"))
		ws.WriteFrame(false, WSContinuation, []byte("men"))
		ws.WriteFrame(true, WSContinuation, []byte("ted"))
		fin, op, p, err := ws.ReadFrame()
		if err != nil || !fin || op != WSPong || string(p) != "are you there" {
			t.Fatalf("pong = %v %d %q %v", fin, op, p, err)
		}
		op, data, err := ws.ReadMessage()
		if err != nil || op != WSText || string(data) != "fragmented" {
			t.Fatalf("reassembled = %d %q %v", op, data, err)
		}
	})
	t.Run("pong is ignored", func(t *testing.T) {
		ws.WriteFrame(true, WSPong, []byte("unsolicited"))
		ws.WriteMessage(WSText, []byte("after pong"))
		if _, data, err := ws.ReadMessage(); err != nil || string(data) != "after pong" {
			t.Fatalf("%q %v", data, err)
		}
	})
	t.Run("close is answered", func(t *testing.T) {
		ws.WriteFrame(true, WSClose, closePayload(1001, "going away"))
		expectClose(t, ws, 1001)
	})
}

func TestWebSocketViolations(t *testing.T) {
	_, addr := start(t, "http", testInfo, Options{})
	tests := []struct {
		name string
		raw  func() []byte // bytes written after the handshake
		code uint16
	}{
		{"unmasked", func() []byte { return appendFrame(nil, true, WSText, []byte("hi"), nil) }, 1002},
		{"reserved bits", func() []byte {
			b := appendFrame(nil, true, WSText, []byte("hi"), []byte{1, 2, 3, 4})
			b[0] |= 0x40
			return b
		}, 1002},
		{"unknown opcode", func() []byte { return appendFrame(nil, true, 0x3, nil, []byte{1, 2, 3, 4}) }, 1002},
		{"fragmented ping", func() []byte { return appendFrame(nil, false, WSPing, nil, []byte{1, 2, 3, 4}) }, 1002},
		{"long ping", func() []byte { return appendFrame(nil, true, WSPing, make([]byte, 126), []byte{1, 2, 3, 4}) }, 1002},
		{"oversized frame", func() []byte {
			b := []byte{0x82, 0x80 | 127}
			return binary.BigEndian.AppendUint64(b, MaxWebSocketFrame+1) // no payload sent: refused before reading it
		}, 1009},
		{"huge length", func() []byte { return binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, 1<<63) }, 1002},
		{"oversized message", func() []byte {
			k := []byte{1, 2, 3, 4}
			b := appendFrame(nil, false, WSBinary, make([]byte, MaxWebSocketFrame), k)
			return appendFrame(b, true, WSContinuation, []byte{1}, k)
		}, 1009},
		{"continuation first", func() []byte { return appendFrame(nil, true, WSContinuation, []byte("x"), []byte{1, 2, 3, 4}) }, 1002},
		{"new message inside one", func() []byte {
			b := appendFrame(nil, false, WSText, []byte("a"), []byte{1, 2, 3, 4})
			return appendFrame(b, true, WSText, []byte("b"), []byte{1, 2, 3, 4})
		}, 1002},
		{"invalid utf-8", func() []byte { return appendFrame(nil, true, WSText, []byte{0xff, 0xfe}, []byte{1, 2, 3, 4}) }, 1007},
		{"close with 1 byte", func() []byte { return appendFrame(nil, true, WSClose, []byte{3}, []byte{1, 2, 3, 4}) }, 1002},
		{"close with code 1005", func() []byte { return appendFrame(nil, true, WSClose, closePayload(1005, ""), []byte{1, 2, 3, 4}) }, 1002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := dialWS(t, addr)
			go ws.Conn().Write(tt.raw())
			expectClose(t, ws, tt.code)
		})
	}
	t.Run("empty close", func(t *testing.T) {
		ws := dialWS(t, addr)
		ws.WriteFrame(true, WSClose, nil)
		expectClose(t, ws, 0)
	})
	t.Run("garbage then EOF", func(t *testing.T) {
		ws := dialWS(t, addr)
		ws.Conn().Write([]byte{0x81})
		ws.Conn().(interface{ CloseWrite() error }).CloseWrite()
		if _, err := ws.Conn().Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("got %v, want EOF", err)
		}
	})
}

func TestWebSocketHandshakeErrors(t *testing.T) {
	_, addr := start(t, "http", testInfo, Options{})
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	tests := []struct {
		name   string
		method string
		header http.Header
		status int
	}{
		{"plain GET", "GET", nil, 426},
		{"no Connection", "GET", http.Header{"Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {key}}, 426},
		{"old version", "GET", http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {key}}, 426},
		{"bad key", "GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"short"}}, 400},
		{"POST", "POST", nil, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := httpDo(t, tt.method, "http://"+addr+"/lab/ws", tt.header)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if resp.Header.Get(HeaderStandin) == "" {
				t.Error("error response not labelled")
			}
		})
	}
	// RFC 6455's own example.
	if got := wsAccept(key); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("wsAccept = %q", got)
	}
	// The client reports a refused handshake.
	_, err := DialWebSocket(testCtx(t), dial(t, addr), "x", "/nope", nil)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("DialWebSocket on a non-WebSocket path: %v", err)
	}
}

// TestWebSocketClientChecksAccept runs the client against a server that
// answers 101 with a wrong Sec-WebSocket-Accept.
func TestWebSocketClientChecksAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n")
		io.Copy(io.Discard, c)
	}()
	_, err = DialWebSocket(testCtx(t), dial(t, ln.Addr().String()), "x", "/", nil)
	if err == nil || !strings.Contains(err.Error(), "Sec-WebSocket-Accept") {
		t.Errorf("DialWebSocket accepted a wrong Sec-WebSocket-Accept: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	k := []byte{9, 8, 7, 6}
	f.Add(appendFrame(nil, true, WSText, []byte("hello"), k))
	f.Add(appendFrame(nil, false, WSBinary, make([]byte, 300), k))
	f.Add(appendFrame(nil, true, WSClose, closePayload(1000, "bye"), k))
	f.Add(binary.BigEndian.AppendUint64([]byte{0x82, 0xff}, 1<<40))
	f.Add([]byte{0x8f, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mask := range []bool{true, false} {
			r := bytes.NewReader(data)
			for {
				fr, err := readFrame(r, 4096, mask)
				if err != nil {
					break
				}
				if len(fr.payload) > 4096 {
					t.Fatalf("payload of %d bytes over the bound", len(fr.payload))
				}
				if fr.opcode >= WSClose && (len(fr.payload) > 125 || !fr.fin) {
					t.Fatalf("invalid control frame accepted: %+v", fr)
				}
				// What was read re-encodes to a frame that reads back the same.
				key := []byte(nil)
				if mask {
					key = []byte{1, 2, 3, 4}
				}
				again, err := readFrame(bytes.NewReader(appendFrame(nil, fr.fin, fr.opcode, fr.payload, key)), 4096, mask)
				if err != nil || again.fin != fr.fin || again.opcode != fr.opcode || !bytes.Equal(again.payload, fr.payload) {
					t.Fatalf("round trip of %+v: %+v, %v", fr, again, err)
				}
			}
		}
	})
}
