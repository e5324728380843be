package observe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
)

// maxMongoReply bounds the hello reply a probe reads (a real server's is
// well under 1 KiB; its maxBsonObjectSize is 16 MiB, far more than needed).
const maxMongoReply = 64 << 10

// helloMongo sends the hello command as an OP_MSG and expects ok: 1.
func helloMongo(conn net.Conn, c *countingConn) error {
	doc := bsonDoc(
		bsonInt32("hello", 1),
		bsonString("$db", "admin"),
	)
	body := binary.LittleEndian.AppendUint32(nil, 0) // flagBits
	body = append(body, 0)                           // section kind 0: body
	body = append(body, doc...)
	msg := binary.LittleEndian.AppendUint32(nil, uint32(16+len(body)))
	msg = binary.LittleEndian.AppendUint32(msg, 1)    // requestID
	msg = binary.LittleEndian.AppendUint32(msg, 0)    // responseTo
	msg = binary.LittleEndian.AppendUint32(msg, 2013) // OP_MSG
	msg = append(msg, body...)
	if _, err := conn.Write(msg); err != nil {
		return answerErr(c, "sending hello", err)
	}
	var head [16]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return answerErr(c, "reading the hello reply", err)
	}
	size := binary.LittleEndian.Uint32(head[0:])
	op := binary.LittleEndian.Uint32(head[12:])
	if size < 16+5+5 || size > maxMongoReply {
		return fmt.Errorf("hello reply of %d bytes: not MongoDB", size)
	}
	if op != 2013 {
		return fmt.Errorf("hello answered opcode %d, want OP_MSG (2013)", op)
	}
	rest := make([]byte, size-16)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return fmt.Errorf("reading the hello reply: %w", err)
	}
	if rest[4] != 0 {
		return fmt.Errorf("hello reply section kind %d, want 0", rest[4])
	}
	ok, err := bsonOK(rest[5:])
	if err != nil {
		return fmt.Errorf("hello reply: %w", err)
	}
	if ok != 1 {
		return fmt.Errorf("hello answered ok: %v", ok)
	}
	return nil
}

func bsonDoc(elems ...[]byte) []byte {
	n := 4 + 1
	for _, e := range elems {
		n += len(e)
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(n))
	for _, e := range elems {
		out = append(out, e...)
	}
	return append(out, 0)
}

func bsonInt32(key string, v int32) []byte {
	out := append([]byte{0x10}, key...)
	out = append(out, 0)
	return binary.LittleEndian.AppendUint32(out, uint32(v))
}

func bsonString(key, v string) []byte {
	out := append([]byte{0x02}, key...)
	out = append(out, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(v)+1))
	out = append(out, v...)
	return append(out, 0)
}

var errBSON = errors.New("malformed BSON document")

// bsonOK walks the top level of a BSON document and returns its "ok" field
// as a number.
func bsonOK(doc []byte) (float64, error) {
	if len(doc) < 5 {
		return 0, errBSON
	}
	size := int(binary.LittleEndian.Uint32(doc))
	if size < 5 || size > len(doc) || doc[size-1] != 0 {
		return 0, errBSON
	}
	b := doc[4 : size-1]
	for len(b) > 0 {
		typ := b[0]
		end := 1
		for end < len(b) && b[end] != 0 {
			end++
		}
		if end == len(b) {
			return 0, errBSON
		}
		key := string(b[1:end])
		b = b[end+1:]
		var n int
		switch typ {
		case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
			n = 8
		case 0x02, 0x0D, 0x0E: // string, code, symbol
			if len(b) < 4 {
				return 0, errBSON
			}
			n = 4 + int(binary.LittleEndian.Uint32(b))
		case 0x03, 0x04: // document, array
			if len(b) < 4 {
				return 0, errBSON
			}
			n = int(binary.LittleEndian.Uint32(b))
		case 0x05: // binary
			if len(b) < 4 {
				return 0, errBSON
			}
			n = 5 + int(binary.LittleEndian.Uint32(b))
		case 0x07: // ObjectId
			n = 12
		case 0x08: // bool
			n = 1
		case 0x0A, 0xFF, 0x7F: // null, min key, max key
			n = 0
		case 0x10: // int32
			n = 4
		case 0x13: // decimal128
			n = 16
		default:
			return 0, fmt.Errorf("%w: element type 0x%02x", errBSON, typ)
		}
		if n < 0 || n > len(b) {
			return 0, errBSON
		}
		if key == "ok" {
			switch typ {
			case 0x01:
				return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
			case 0x10:
				return float64(int32(binary.LittleEndian.Uint32(b))), nil
			case 0x12:
				return float64(int64(binary.LittleEndian.Uint64(b))), nil
			case 0x08:
				if b[0] != 0 {
					return 1, nil
				}
				return 0, nil
			}
			return 0, fmt.Errorf("ok has BSON type 0x%02x", typ)
		}
		b = b[n:]
	}
	return 0, errors.New(`no "ok" field`)
}
