package standin

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// MongoDB wire protocol opcodes.
const (
	opReply = 1
	opQuery = 2004
	opMsg   = 2013
)

// OP_MSG flag bits.
const (
	msgChecksumPresent = 1 << 0
	msgMoreToCome      = 1 << 1
)

// MaxMongoMessage is the largest wire message the MongoDB stand-in reads;
// a larger declared length closes the connection before anything is
// allocated.
const MaxMongoMessage = 16 << 20

// maxClientMessage bounds replies MongoCommand reads (the hello reply's
// maxMessageSizeBytes).
const maxClientMessage = 48000000

// ErrMongoWire is wrapped by every wire protocol violation.
var ErrMongoWire = errors.New("invalid MongoDB wire message")

func wireErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMongoWire}, args...)...)
}

// msgHeader is the standard header of every wire message.
type msgHeader struct {
	length, requestID, responseTo, opCode int32
}

// readWire reads one message: the header, then the body, once the declared
// length has been checked against max.
func readWire(r io.Reader, max int) (msgHeader, []byte, error) {
	var hb [16]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return msgHeader{}, nil, err
	}
	h := msgHeader{
		length:     int32(binary.LittleEndian.Uint32(hb[0:])),
		requestID:  int32(binary.LittleEndian.Uint32(hb[4:])),
		responseTo: int32(binary.LittleEndian.Uint32(hb[8:])),
		opCode:     int32(binary.LittleEndian.Uint32(hb[12:])),
	}
	if h.length < 16+5 || int64(h.length) > int64(max) {
		return h, nil, wireErr("message length %d outside [21, %d]", h.length, max)
	}
	body := make([]byte, h.length-16)
	if _, err := io.ReadFull(r, body); err != nil {
		return h, nil, fmt.Errorf("reading a %d-byte message: %w", h.length, err)
	}
	return h, body, nil
}

// appendHeader appends a header; its length is patched by finishWire.
func appendHeader(b []byte, requestID, responseTo, opCode int32) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(requestID))
	b = binary.LittleEndian.AppendUint32(b, uint32(responseTo))
	return binary.LittleEndian.AppendUint32(b, uint32(opCode))
}

func finishWire(b []byte) []byte {
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// opMsgParsed is a parsed OP_MSG: its flags and its body (section kind 0).
type opMsgParsed struct {
	flags uint32
	body  Doc
}

// parseOpMsg parses an OP_MSG body (after the header hdr, which the
// checksum covers). Kind 1 document sequences are checked and ignored.
func parseOpMsg(hdr [16]byte, b []byte) (opMsgParsed, error) {
	var m opMsgParsed
	if len(b) < 5 {
		return m, wireErr("OP_MSG shorter than its flags and one section")
	}
	m.flags = binary.LittleEndian.Uint32(b)
	if unknown := m.flags & 0xffff &^ (msgChecksumPresent | msgMoreToCome); unknown != 0 {
		return m, wireErr("OP_MSG has unknown required flag bits %#x", unknown)
	}
	sections := b[4:]
	if m.flags&msgChecksumPresent != 0 {
		if len(sections) < 4 {
			return m, wireErr("OP_MSG announces a checksum it does not have")
		}
		want := binary.LittleEndian.Uint32(sections[len(sections)-4:])
		sections = sections[:len(sections)-4]
		crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		crc.Write(hdr[:])
		crc.Write(b[:len(b)-4])
		if got := crc.Sum32(); got != want {
			return m, wireErr("OP_MSG checksum %#x, computed %#x", want, got)
		}
	}
	seenBody := false
	for len(sections) > 0 {
		kind := sections[0]
		sections = sections[1:]
		switch kind {
		case 0:
			if seenBody {
				return m, wireErr("OP_MSG has two body sections")
			}
			d, n, err := decodeDoc(sections, 0)
			if err != nil {
				return m, fmt.Errorf("OP_MSG body: %w", err)
			}
			m.body, seenBody = d, true
			sections = sections[n:]
		case 1:
			if len(sections) < 4 {
				return m, wireErr("OP_MSG document sequence without a size")
			}
			size := int64(int32(binary.LittleEndian.Uint32(sections)))
			if size < 5 || size > int64(len(sections)) {
				return m, wireErr("OP_MSG document sequence size %d does not fit the %d bytes left", size, len(sections))
			}
			seq := sections[4:size]
			_, idn, err := readCString(seq)
			if err != nil {
				return m, wireErr("OP_MSG document sequence without an identifier")
			}
			for docs := seq[idn:]; len(docs) > 0; {
				_, n, err := decodeDoc(docs, 0)
				if err != nil {
					return m, fmt.Errorf("OP_MSG document sequence: %w", err)
				}
				docs = docs[n:]
			}
			sections = sections[size:]
		default:
			return m, wireErr("OP_MSG section kind %d", kind)
		}
	}
	if !seenBody {
		return m, wireErr("OP_MSG without a body section")
	}
	return m, nil
}

// opQueryParsed is a parsed legacy OP_QUERY.
type opQueryParsed struct {
	ns    string
	query Doc
}

func parseOpQuery(b []byte) (opQueryParsed, error) {
	var q opQueryParsed
	if len(b) < 4 {
		return q, wireErr("OP_QUERY without flags")
	}
	ns, n, err := readCString(b[4:])
	if err != nil {
		return q, wireErr("OP_QUERY without a collection name")
	}
	q.ns = ns
	rest := b[4+n:]
	if len(rest) < 8 {
		return q, wireErr("OP_QUERY without numberToSkip and numberToReturn")
	}
	rest = rest[8:]
	d, n, err := decodeDoc(rest, 0)
	if err != nil {
		return q, fmt.Errorf("OP_QUERY query: %w", err)
	}
	q.query = d
	rest = rest[n:]
	if len(rest) > 0 { // returnFieldsSelector
		_, n, err := decodeDoc(rest, 0)
		if err != nil {
			return q, fmt.Errorf("OP_QUERY field selector: %w", err)
		}
		if n != len(rest) {
			return q, wireErr("%d trailing bytes after OP_QUERY", len(rest)-n)
		}
	}
	return q, nil
}

// appendOpMsg appends a whole OP_MSG with one body section.
func appendOpMsg(b []byte, requestID, responseTo int32, flags uint32, body Doc) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, requestID, responseTo, opMsg)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(b, 0)
	b, err := appendDoc(b, body, 0)
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// appendOpQuery appends a legacy OP_QUERY, as old drivers send commands to
// "<db>.$cmd".
func appendOpQuery(b []byte, requestID int32, ns string, query Doc) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, requestID, 0, opQuery)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b, err := appendCString(b, ns)
	if err != nil {
		return nil, err
	}
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(0xffffffff)) // numberToReturn -1
	if b, err = appendDoc(b, query, 0); err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// appendOpReply appends a legacy OP_REPLY carrying one document.
func appendOpReply(b []byte, requestID, responseTo int32, flags uint32, doc Doc) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, requestID, responseTo, opReply)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint64(b, 0) // cursorID
	b = binary.LittleEndian.AppendUint32(b, 0) // startingFrom
	b = binary.LittleEndian.AppendUint32(b, 1) // numberReturned
	b, err := appendDoc(b, doc, 0)
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// mongoServer is the MongoDB stand-in.
type mongoServer struct {
	*connServer
	nextID   atomic.Int32
	nextConn atomic.Int32
}

func newMongo(info Info, opts Options) *mongoServer {
	s := &mongoServer{connServer: newConnServer("mongodb", info, opts)}
	s.handle = s.serveConn
	return s
}

func (s *mongoServer) serveConn(ctx context.Context, c net.Conn) {
	connID := s.nextConn.Add(1)
	br := bufio.NewReaderSize(c, 64<<10)
	for ctx.Err() == nil {
		c.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		h, body, err := readWire(br, MaxMongoMessage)
		if err != nil {
			s.logConnErr(c, err)
			return
		}
		reply, err := s.answer(h, body, connID)
		if err != nil {
			s.logConnErr(c, err)
			return
		}
		if reply == nil {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(reply); err != nil {
			s.logConnErr(c, err)
			return
		}
	}
}

// answer returns the reply to one message, nil when none is due
// (moreToCome), or an error that closes the connection.
func (s *mongoServer) answer(h msgHeader, body []byte, connID int32) ([]byte, error) {
	var hb [16]byte
	binary.LittleEndian.PutUint32(hb[0:], uint32(h.length))
	binary.LittleEndian.PutUint32(hb[4:], uint32(h.requestID))
	binary.LittleEndian.PutUint32(hb[8:], uint32(h.responseTo))
	binary.LittleEndian.PutUint32(hb[12:], uint32(h.opCode))
	switch h.opCode {
	case opMsg:
		m, err := parseOpMsg(hb, body)
		if err != nil {
			return nil, err
		}
		var reply Doc
		if db, ok := m.body.Get("$db").(string); !ok || db == "" {
			reply = cmdError(40571, "Location40571", "OP_MSG requests require a $db argument")
		} else {
			reply = s.command(db, m.body, connID)
		}
		if m.flags&msgMoreToCome != 0 {
			return nil, nil
		}
		return appendOpMsg(nil, s.nextID.Add(1), h.requestID, 0, reply)
	case opQuery:
		q, err := parseOpQuery(body)
		if err != nil {
			return nil, err
		}
		db, coll, _ := strings.Cut(q.ns, ".")
		if coll != "$cmd" || db == "" {
			return appendOpReply(nil, s.nextID.Add(1), h.requestID, 2, /* QueryFailure */
				Doc{{"$err", "offedge MongoDB stand-in: legacy OP_QUERY is only supported for commands on <db>.$cmd"}, {"code", int32(352)}, {"ok", 0.0}})
		}
		cmd := q.query
		if inner, ok := cmd.Get("$query").(Doc); ok && len(cmd) > 0 && cmd[0].Key == "$query" {
			cmd = inner
		}
		return appendOpReply(nil, s.nextID.Add(1), h.requestID, 0, s.command(db, cmd, connID))
	}
	return nil, wireErr("unsupported opcode %d", h.opCode)
}

func cmdError(code int32, codeName, msg string) Doc {
	return Doc{{"ok", 0.0}, {"errmsg", msg}, {"code", code}, {"codeName", codeName}}
}

// command runs one command against database db.
func (s *mongoServer) command(db string, cmd Doc, connID int32) Doc {
	if len(cmd) == 0 {
		return cmdError(59, "CommandNotFound", "offedge MongoDB stand-in: empty command document")
	}
	name := cmd[0].Key
	label := s.info.label()
	switch {
	case name == "hello" || strings.EqualFold(name, "isMaster"):
		primary := "ismaster"
		if name == "hello" {
			primary = "isWritablePrimary"
		}
		return Doc{
			{"helloOk", true},
			{primary, true},
			{"maxBsonObjectSize", int32(16777216)},
			{"maxMessageSizeBytes", int32(48000000)},
			{"maxWriteBatchSize", int32(100000)},
			{"localTime", s.opts.Now().UTC()},
			{"logicalSessionTimeoutMinutes", int32(30)},
			{"connectionId", connID},
			{"minWireVersion", int32(0)},
			{"maxWireVersion", int32(17)},
			{"readOnly", false},
			{"offedgeStandin", label},
			{"ok", 1.0},
		}
	case name == "ping":
		return Doc{{"ok", 1.0}}
	case name == "buildInfo" || name == "buildinfo":
		return Doc{{"version", "0.0.0-offedge-standin"}, {"versionArray", []any{int32(0), int32(0), int32(0), int32(0)}},
			{"offedgeStandin", label}, {"ok", 1.0}}
	case name == "endSessions":
		return Doc{{"ok", 1.0}}
	case name == "find":
		return s.find(db, cmd)
	}
	if len(name) > 64 {
		name = name[:64] + "..."
	}
	return cmdError(59, "CommandNotFound", fmt.Sprintf("offedge MongoDB stand-in: command %s is not supported", name))
}

// find answers find on "products" with an empty filter or {code: X}; other
// collections are empty. The products are those of the flavor named like
// the database (off, obf, opf, opff, off-pro), off's otherwise.
func (s *mongoServer) find(db string, cmd Doc) Doc {
	coll, ok := cmd[0].Value.(string)
	if !ok || coll == "" {
		return cmdError(73, "InvalidNamespace", fmt.Sprintf("collection name has invalid type %T", cmd[0].Value))
	}
	var filter Doc
	if v, ok := cmd.Lookup("filter"); ok && v != nil {
		f, ok := v.(Doc)
		if !ok {
			return cmdError(14, "TypeMismatch", fmt.Sprintf("BSON field 'find.filter' is the wrong type '%T', expected type 'object'", v))
		}
		filter = f
	}
	var code any
	hasCode := false
	for _, e := range filter {
		if e.Key != "code" {
			return cmdError(2, "BadValue", fmt.Sprintf("offedge MongoDB stand-in: find supports only an empty filter or {code: ...}, not %q", e.Key))
		}
		code, hasCode = e.Value, true
	}
	limit := int64(0)
	if v, ok := cmd.Lookup("limit"); ok {
		n, ok := number(v)
		if !ok || n < 0 {
			return cmdError(2, "BadValue", "limit must be a non-negative number")
		}
		limit = int64(n)
	}
	flavorName := db
	if _, ok := flavors[flavorName]; !ok {
		flavorName = "off"
	}
	batch := []any{}
	if coll == "products" {
		for _, p := range flavors[flavorName].Products {
			if hasCode && code != p.Code {
				continue
			}
			if limit > 0 && int64(len(batch)) >= limit {
				break
			}
			batch = append(batch, productDoc(p))
		}
	}
	return Doc{
		{"cursor", Doc{{"firstBatch", batch}, {"id", int64(0)}, {"ns", db + "." + coll}}},
		{"ok", 1.0},
	}
}

// productDoc is a product as stored in Product Opener's MongoDB.
func productDoc(p Product) Doc {
	cats := make([]any, len(p.Categories))
	for i, c := range p.Categories {
		cats[i] = c
	}
	return Doc{{"_id", p.Code}, {"code", p.Code}, {"product_name", p.Name}, {"brands", p.Brands},
		{"quantity", p.Quantity}, {"categories_tags", cats}}
}

// number converts the numeric BSON types to float64.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}

// MongoError is a command that failed (ok is not 1): the server's code,
// codeName and errmsg.
type MongoError struct {
	Code     int32
	CodeName string
	Message  string
}

func (e *MongoError) Error() string {
	return fmt.Sprintf("mongodb: %s (%d %s)", e.Message, e.Code, e.CodeName)
}

// MongoCommand runs one command on database db over c with OP_MSG and
// returns the reply. cmd's first key is the command name; "$db" is added
// unless present. When the reply's ok is not 1 the reply is returned with a
// *MongoError. ctx bounds the exchange. It works against the stand-in and
// against a real mongod.
func MongoCommand(ctx context.Context, c net.Conn, db string, cmd Doc) (Doc, error) {
	if len(cmd) == 0 {
		return nil, errors.New("mongodb: empty command")
	}
	body := cmd
	if _, ok := cmd.Lookup("$db"); !ok {
		body = append(append(Doc{}, cmd...), Elem{"$db", db})
	}
	reqID := int32(rand.Uint32() >> 1)
	msg, err := appendOpMsg(nil, reqID, 0, 0, body)
	if err != nil {
		return nil, fmt.Errorf("mongodb %s: %w", cmd[0].Key, err)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	if _, err := c.Write(msg); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("mongodb %s: %w", cmd[0].Key, err))
	}
	for {
		h, rb, err := readWire(c, maxClientMessage)
		if err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("mongodb %s: reading the reply: %w", cmd[0].Key, err))
		}
		if h.responseTo != reqID {
			continue // a stale reply to an earlier, abandoned request
		}
		if h.opCode != opMsg {
			return nil, fmt.Errorf("mongodb %s: reply has opcode %d, want OP_MSG", cmd[0].Key, h.opCode)
		}
		var hb [16]byte
		binary.LittleEndian.PutUint32(hb[0:], uint32(h.length))
		binary.LittleEndian.PutUint32(hb[4:], uint32(h.requestID))
		binary.LittleEndian.PutUint32(hb[8:], uint32(h.responseTo))
		binary.LittleEndian.PutUint32(hb[12:], uint32(h.opCode))
		m, err := parseOpMsg(hb, rb)
		if err != nil {
			return nil, fmt.Errorf("mongodb %s: %w", cmd[0].Key, err)
		}
		if ok, _ := number(m.body.Get("ok")); ok != 1 {
			e := &MongoError{}
			e.Code, _ = m.body.Get("code").(int32)
			e.CodeName, _ = m.body.Get("codeName").(string)
			e.Message, _ = m.body.Get("errmsg").(string)
			return m.body, e
		}
		return m.body, nil
	}
}

// ctxErr prefers the context's error when the context ended the exchange.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	// The connection's deadline, set from the context's, may fire an
	// instant before the context's own timer.
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}
