package standin

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Doc is an ordered BSON document, as MongoDB commands need (the command
// name is the first key).
type Doc []Elem

// Elem is one key and value of a Doc. Values are, by BSON type: float64
// (double), string, Doc (embedded document), []any (array), Binary, ObjectID,
// bool, time.Time (UTC datetime), nil (null), int32, Timestamp and int64.
// When encoding, int (as int32 when it fits, int64 otherwise), float32,
// []byte (binary subtype 0), []string and []Doc are accepted too.
type Elem struct {
	Key   string
	Value any
}

// Get returns the value of the first element named key, or nil.
func (d Doc) Get(key string) any {
	v, _ := d.Lookup(key)
	return v
}

// Lookup returns the value of the first element named key and whether there
// is one.
func (d Doc) Lookup(key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// ObjectID is a BSON ObjectId.
type ObjectID [12]byte

// String returns the ObjectId in hexadecimal, as the mongo shell shows it.
func (o ObjectID) String() string { return hex.EncodeToString(o[:]) }

// Binary is BSON binary data with its subtype.
type Binary struct {
	Subtype byte
	Data    []byte
}

// Timestamp is a BSON timestamp (MongoDB's internal replication clock).
type Timestamp struct {
	T uint32 // seconds since the epoch
	I uint32 // ordinal within the second
}

// BSON type tags the codec supports.
const (
	bsonDouble    = 0x01
	bsonString    = 0x02
	bsonDocument  = 0x03
	bsonArray     = 0x04
	bsonBinary    = 0x05
	bsonObjectID  = 0x07
	bsonBool      = 0x08
	bsonDatetime  = 0x09
	bsonNull      = 0x0A
	bsonInt32     = 0x10
	bsonTimestamp = 0x11
	bsonInt64     = 0x12
)

// Bounds of the BSON codec.
const (
	// MaxBSONSize is the largest document the codec decodes or encodes
	// (MongoDB's maxBsonObjectSize).
	MaxBSONSize = 16 << 20
	// maxBSONDepth bounds nesting of documents and arrays.
	maxBSONDepth = 100
)

// EncodeBSON encodes d, failing on values of unsupported types, on nesting
// deeper than 100 and on documents larger than MaxBSONSize.
func EncodeBSON(d Doc) ([]byte, error) {
	b, err := appendDoc(nil, d, 0)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBSONSize {
		return nil, fmt.Errorf("bson: document of %d bytes is larger than %d", len(b), MaxBSONSize)
	}
	return b, nil
}

func appendCString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, fmt.Errorf("bson: key %q contains a NUL byte", s)
		}
	}
	return append(append(b, s...), 0), nil
}

func appendDoc(b []byte, d Doc, depth int) ([]byte, error) {
	if depth > maxBSONDepth {
		return nil, fmt.Errorf("bson: nesting deeper than %d", maxBSONDepth)
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	var err error
	for _, e := range d {
		if b, err = appendElem(b, e.Key, e.Value, depth); err != nil {
			return nil, err
		}
		if len(b)-start > MaxBSONSize {
			return nil, fmt.Errorf("bson: document larger than %d bytes", MaxBSONSize)
		}
	}
	b = append(b, 0)
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

func appendArray(b []byte, vs []any, depth int) ([]byte, error) {
	d := make(Doc, len(vs))
	for i, v := range vs {
		d[i] = Elem{Key: strconv.Itoa(i), Value: v}
	}
	return appendDoc(b, d, depth)
}

func appendElem(b []byte, key string, v any, depth int) ([]byte, error) {
	tagAt := len(b)
	b = append(b, 0)
	b, err := appendCString(b, key)
	if err != nil {
		return nil, err
	}
	tag := byte(0)
	switch v := v.(type) {
	case float64:
		tag, b = bsonDouble, binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	case float32:
		tag, b = bsonDouble, binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(v)))
	case string:
		tag = bsonString
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)+1))
		b = append(append(b, v...), 0)
	case Doc:
		tag = bsonDocument
		if b, err = appendDoc(b, v, depth+1); err != nil {
			return nil, err
		}
	case []any:
		tag = bsonArray
		if b, err = appendArray(b, v, depth+1); err != nil {
			return nil, err
		}
	case []string:
		vs := make([]any, len(v))
		for i, s := range v {
			vs[i] = s
		}
		tag = bsonArray
		if b, err = appendArray(b, vs, depth+1); err != nil {
			return nil, err
		}
	case []Doc:
		vs := make([]any, len(v))
		for i, d := range v {
			vs[i] = d
		}
		tag = bsonArray
		if b, err = appendArray(b, vs, depth+1); err != nil {
			return nil, err
		}
	case Binary:
		tag = bsonBinary
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Data)))
		b = append(append(b, v.Subtype), v.Data...)
	case []byte:
		tag = bsonBinary
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(append(b, 0), v...)
	case ObjectID:
		tag, b = bsonObjectID, append(b, v[:]...)
	case bool:
		tag = bsonBool
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	case time.Time:
		tag, b = bsonDatetime, binary.LittleEndian.AppendUint64(b, uint64(v.UnixMilli()))
	case nil:
		tag = bsonNull
	case int32:
		tag, b = bsonInt32, binary.LittleEndian.AppendUint32(b, uint32(v))
	case int:
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			tag, b = bsonInt32, binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
		} else {
			tag, b = bsonInt64, binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	case Timestamp:
		tag = bsonTimestamp
		b = binary.LittleEndian.AppendUint32(b, v.I)
		b = binary.LittleEndian.AppendUint32(b, v.T)
	case int64:
		tag, b = bsonInt64, binary.LittleEndian.AppendUint64(b, uint64(v))
	default:
		return nil, fmt.Errorf("bson: key %q: cannot encode a value of type %T", key, v)
	}
	b[tagAt] = tag
	return b, nil
}

// ErrBSON is wrapped by every decoding error.
var ErrBSON = errors.New("invalid BSON")

func bsonErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBSON}, args...)...)
}

// DecodeBSON decodes exactly one document filling b. Every declared length
// is checked against the bytes there are before anything is allocated;
// unsupported types, array keys other than "0", "1", ..., nesting deeper
// than 100 and trailing bytes are errors wrapping ErrBSON.
func DecodeBSON(b []byte) (Doc, error) {
	d, n, err := decodeDoc(b, 0)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, bsonErr("%d trailing bytes after the document", len(b)-n)
	}
	return d, nil
}

// docLen reads and checks the declared length of the document at the start
// of b.
func docLen(b []byte) (int, error) {
	if len(b) < 5 {
		return 0, bsonErr("document shorter than 5 bytes")
	}
	n := int64(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > int64(len(b)) || n > MaxBSONSize {
		return 0, bsonErr("document length %d does not fit the %d bytes there are (or exceeds %d)", n, len(b), MaxBSONSize)
	}
	if b[n-1] != 0 {
		return 0, bsonErr("document does not end with a NUL byte")
	}
	return int(n), nil
}

func readCString(b []byte) (string, int, error) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), i + 1, nil
		}
	}
	return "", 0, bsonErr("unterminated key")
}

// decodeDoc decodes the document at the start of b and returns how many
// bytes it took.
func decodeDoc(b []byte, depth int) (Doc, int, error) {
	if depth > maxBSONDepth {
		return nil, 0, bsonErr("nesting deeper than %d", maxBSONDepth)
	}
	n, err := docLen(b)
	if err != nil {
		return nil, 0, err
	}
	body := b[4 : n-1]
	var d Doc
	for len(body) > 0 {
		tag := body[0]
		key, kn, err := readCString(body[1:])
		if err != nil {
			return nil, 0, err
		}
		rest := body[1+kn:]
		v, vn, err := decodeValue(tag, key, rest, depth)
		if err != nil {
			return nil, 0, err
		}
		d = append(d, Elem{Key: key, Value: v})
		body = rest[vn:]
	}
	if d == nil {
		d = Doc{}
	}
	return d, n, nil
}

func need(b []byte, n int, key string) error {
	if len(b) < n {
		return bsonErr("key %q: value needs %d bytes, %d left", key, n, len(b))
	}
	return nil
}

func decodeValue(tag byte, key string, b []byte, depth int) (any, int, error) {
	switch tag {
	case bsonDouble:
		if err := need(b, 8, key); err != nil {
			return nil, 0, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), 8, nil
	case bsonString:
		if err := need(b, 4, key); err != nil {
			return nil, 0, err
		}
		n := int64(int32(binary.LittleEndian.Uint32(b)))
		if n < 1 || n > int64(len(b)-4) {
			return nil, 0, bsonErr("key %q: string length %d does not fit the %d bytes left", key, n, len(b)-4)
		}
		if b[4+n-1] != 0 {
			return nil, 0, bsonErr("key %q: string does not end with a NUL byte", key)
		}
		return string(b[4 : 4+n-1]), int(4 + n), nil
	case bsonDocument:
		d, n, err := decodeDoc(b, depth+1)
		return d, n, err
	case bsonArray:
		d, n, err := decodeDoc(b, depth+1)
		if err != nil {
			return nil, 0, err
		}
		vs := make([]any, len(d))
		for i, e := range d {
			if e.Key != strconv.Itoa(i) {
				return nil, 0, bsonErr("key %q: array element %d has key %q", key, i, e.Key)
			}
			vs[i] = e.Value
		}
		return vs, n, nil
	case bsonBinary:
		if err := need(b, 5, key); err != nil {
			return nil, 0, err
		}
		n := int64(int32(binary.LittleEndian.Uint32(b)))
		if n < 0 || n > int64(len(b)-5) {
			return nil, 0, bsonErr("key %q: binary length %d does not fit the %d bytes left", key, n, len(b)-5)
		}
		return Binary{Subtype: b[4], Data: append([]byte(nil), b[5:5+n]...)}, int(5 + n), nil
	case bsonObjectID:
		if err := need(b, 12, key); err != nil {
			return nil, 0, err
		}
		var o ObjectID
		copy(o[:], b)
		return o, 12, nil
	case bsonBool:
		if err := need(b, 1, key); err != nil {
			return nil, 0, err
		}
		if b[0] > 1 {
			return nil, 0, bsonErr("key %q: boolean byte %d is neither 0 nor 1", key, b[0])
		}
		return b[0] == 1, 1, nil
	case bsonDatetime:
		if err := need(b, 8, key); err != nil {
			return nil, 0, err
		}
		return time.UnixMilli(int64(binary.LittleEndian.Uint64(b))).UTC(), 8, nil
	case bsonNull:
		return nil, 0, nil
	case bsonInt32:
		if err := need(b, 4, key); err != nil {
			return nil, 0, err
		}
		return int32(binary.LittleEndian.Uint32(b)), 4, nil
	case bsonTimestamp:
		if err := need(b, 8, key); err != nil {
			return nil, 0, err
		}
		return Timestamp{I: binary.LittleEndian.Uint32(b), T: binary.LittleEndian.Uint32(b[4:])}, 8, nil
	case bsonInt64:
		if err := need(b, 8, key); err != nil {
			return nil, 0, err
		}
		return int64(binary.LittleEndian.Uint64(b)), 8, nil
	}
	return nil, 0, bsonErr("key %q: unsupported BSON type %#02x", key, tag)
}
