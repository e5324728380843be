package standin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBSONRoundTrip(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	d := Doc{
		{"double", 3.5},
		{"string", "Crème"},
		{"empty", ""},
		{"doc", Doc{{"a", int32(1)}, {"b", Doc{}}}},
		{"array", []any{"x", int64(2), nil, Doc{{"k", true}}}},
		{"binary", Binary{Subtype: 4, Data: []byte{1, 2, 3}}},
		{"oid", ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"true", true},
		{"false", false},
		{"date", when},
		{"null", nil},
		{"int32", int32(-7)},
		{"ts", Timestamp{T: 1700000000, I: 3}},
		{"int64", int64(math.MaxInt64)},
	}
	b, err := EncodeBSON(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, d)
	}
	// Conveniences normalise to the canonical types.
	b, err = EncodeBSON(Doc{{"int", 5}, {"bigint", 1 << 40}, {"f32", float32(0.5)}, {"bytes", []byte("z")},
		{"strings", []string{"a"}}, {"docs", []Doc{{{"x", int32(1)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = DecodeBSON(b)
	want := Doc{{"int", int32(5)}, {"bigint", int64(1 << 40)}, {"f32", 0.5}, {"bytes", Binary{Data: []byte("z")}},
		{"strings", []any{"a"}}, {"docs", []any{Doc{{"x", int32(1)}}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conveniences:\n got %#v\nwant %#v", got, want)
	}
	// The spec's example: {"hello": "world"}.
	b, _ = EncodeBSON(Doc{{"hello", "world"}})
	if want := "\x16\x00\x00\x00\x02hello\x00\x06\x00\x00\x00world\x00\x00"; string(b) != want {
		t.Errorf("encoding = %q, want %q", b, want)
	}
	if d.Get("int32") != int32(-7) || d.Get("missing") != nil {
		t.Error("Doc.Get")
	}
}

func TestBSONEncodeErrors(t *testing.T) {
	deep := Doc{}
	for range 150 {
		deep = Doc{{"d", deep}}
	}
	for name, d := range map[string]Doc{
		"unsupported type": {{"c", complex(1, 2)}},
		"NUL in key":       {{"a\x00b", int32(1)}},
		"too deep":         deep,
		"too big":          {{"s", strings.Repeat("x", MaxBSONSize)}},
	} {
		if _, err := EncodeBSON(d); err == nil {
			t.Errorf("%s: EncodeBSON succeeded", name)
		}
	}
}

func TestBSONDecodeErrors(t *testing.T) {
	valid, _ := EncodeBSON(Doc{{"s", "abc"}})
	patch := func(i int, v byte) []byte { b := bytes.Clone(valid); b[i] = v; return b }
	// 150 nested documents, built inside out.
	deep := []byte{5, 0, 0, 0, 0}
	for range 150 {
		inner := deep
		n := 4 + 1 + 2 + len(inner) + 1
		deep = binary.LittleEndian.AppendUint32(nil, uint32(n))
		deep = append(append(append(deep, 0x03, 'd', 0), inner...), 0)
	}
	tests := map[string][]byte{
		"empty":              {},
		"short":              {5, 0, 0},
		"length too big":     patch(0, 200),
		"length too small":   {4, 0, 0, 0, 0},
		"negative length":    {0xff, 0xff, 0xff, 0xff, 0},
		"no final NUL":       patch(len(valid)-1, 1),
		"string length long": patch(7, 100),
		"string length zero": patch(7, 0),
		"string no NUL":      patch(len(valid)-2, 'x'),
		"unknown type":       patch(4, 0x13),
		"minkey":             patch(4, 0xff),
		"unterminated key":   {8, 0, 0, 0, 0x0a, 'a', 'b', 0},
		"trailing bytes":     append(bytes.Clone(valid), 0),
		"bad bool":           {9, 0, 0, 0, 0x08, 'b', 0, 2, 0},
		"short double":       {9, 0, 0, 0, 0x01, 'd', 0, 1, 0},
		"binary too long":    {13, 0, 0, 0, 0x05, 'b', 0, 9, 0, 0, 0, 0, 0},
		"too deep":           deep,
		"array key":          {20, 0, 0, 0, 0x04, 'a', 0, 12, 0, 0, 0, 0x10, '1', 0, 1, 0, 0, 0, 0, 0},
	}
	for name, b := range tests {
		if d, err := DecodeBSON(b); err == nil || !errors.Is(err, ErrBSON) {
			t.Errorf("%s: DecodeBSON(%q) = %v, %v; want an ErrBSON", name, b, d, err)
		}
	}
}

func FuzzDecodeBSON(f *testing.F) {
	seed, _ := EncodeBSON(Doc{{"find", "products"}, {"filter", Doc{{"code", "3017620422003"}}}, {"a", []any{int32(1), 2.5, nil}},
		{"t", time.Unix(0, 0)}, {"b", Binary{Data: []byte{1}}}, {"o", ObjectID{}}, {"ts", Timestamp{}}, {"i", int64(1)}, {"x", true}})
	f.Add(seed)
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeBSON(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		again, err := EncodeBSON(d)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", d, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %q\nout %q", b, again)
		}
	})
}

func FuzzMongoMessage(f *testing.F) {
	msg, _ := appendOpMsg(nil, 1, 0, 0, Doc{{"hello", int32(1)}, {"$db", "admin"}})
	f.Add(msg)
	q, _ := appendOpQuery(nil, 2, "admin.$cmd", Doc{{"isMaster", int32(1)}})
	f.Add(q)
	seq := withSequence(Doc{{"insert", "c"}, {"$db", "d"}}, "documents", Doc{{"a", int32(1)}})
	f.Add(seq)
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0})
	srv := newMongo(testInfo, Options{}.withDefaults())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, body, err := readWire(bytes.NewReader(b), 1<<16)
		if err != nil {
			return
		}
		if _, err := srv.answer(h, body, 1); err != nil && !errors.Is(err, ErrMongoWire) && !errors.Is(err, ErrBSON) {
			t.Fatalf("error of an unexpected kind: %v", err)
		}
	})
}

// withSequence builds an OP_MSG with a body and a kind 1 document sequence.
func withSequence(body Doc, id string, docs ...Doc) []byte {
	b := appendHeader(nil, 9, 0, opMsg)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, 1)
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(append(b, id...), 0)
	for _, d := range docs {
		b, _ = appendDoc(b, d, 0)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start))
	b = append(b, 0)
	b, _ = appendDoc(b, body, 0)
	return finishWire(b)
}

// exchange writes raw bytes and reads one reply message.
func exchange(t *testing.T, c net.Conn, msg []byte) (msgHeader, []byte) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	h, body, err := readWire(c, maxClientMessage)
	if err != nil {
		t.Fatal(err)
	}
	return h, body
}

func TestMongoCommands(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	_, addr := start(t, "mongodb", Info{Service: "mongodb", Node: "off3"}, Options{Now: func() time.Time { return now }})
	c := dial(t, addr)
	ctx := testCtx(t)
	tests := []struct {
		name  string
		db    string
		cmd   Doc
		check func(t *testing.T, r Doc, err error)
	}{
		{"hello", "admin", Doc{{"hello", int32(1)}}, func(t *testing.T, r Doc, err error) {
			if err != nil || r.Get("helloOk") != true || r.Get("isWritablePrimary") != true || r.Get("maxWireVersion") != int32(17) ||
				r.Get("maxBsonObjectSize") != int32(16777216) || r.Get("offedgeStandin") != "mongodb@off3" || r.Get("ok") != 1.0 ||
				r.Get("localTime") != now || r.Get("maxMessageSizeBytes") != int32(48000000) || r.Get("minWireVersion") != int32(0) {
				t.Errorf("%v %v", r, err)
			}
		}},
		{"isMaster", "admin", Doc{{"isMaster", int32(1)}}, func(t *testing.T, r Doc, err error) {
			if err != nil || r.Get("ismaster") != true || r.Get("maxWriteBatchSize") != int32(100000) {
				t.Errorf("%v %v", r, err)
			}
		}},
		{"ISMASTER", "admin", Doc{{"ISMASTER", true}}, func(t *testing.T, r Doc, err error) {
			if err != nil || r.Get("ismaster") != true {
				t.Errorf("%v %v", r, err)
			}
		}},
		{"ping", "admin", Doc{{"ping", 1.0}}, func(t *testing.T, r Doc, err error) {
			if err != nil || !reflect.DeepEqual(r, Doc{{"ok", 1.0}}) {
				t.Errorf("%v %v", r, err)
			}
		}},
		{"buildInfo", "admin", Doc{{"buildInfo", int32(1)}}, func(t *testing.T, r Doc, err error) {
			if err != nil || r.Get("version") != "0.0.0-offedge-standin" {
				t.Errorf("%v %v", r, err)
			}
		}},
		{"find by code", "off", Doc{{"find", "products"}, {"filter", Doc{{"code", "3017620422003"}}}}, func(t *testing.T, r Doc, err error) {
			cur, _ := r.Get("cursor").(Doc)
			batch, _ := cur.Get("firstBatch").([]any)
			if err != nil || len(batch) != 1 || cur.Get("id") != int64(0) || cur.Get("ns") != "off.products" {
				t.Fatalf("%v %v", r, err)
			}
			p := batch[0].(Doc)
			if p.Get("_id") != "3017620422003" || p.Get("product_name") != "Nutella" || p.Get("brands") != "Ferrero" ||
				!reflect.DeepEqual(p.Get("categories_tags"), []any{"en:spreads", "en:sweet-spreads", "en:hazelnut-spreads"}) {
				t.Errorf("product %v", p)
			}
		}},
		{"find all", "off", Doc{{"find", "products"}, {"filter", Doc{}}}, func(t *testing.T, r Doc, err error) {
			batch := r.Get("cursor").(Doc).Get("firstBatch").([]any)
			if err != nil || len(batch) != len(Products("off")) {
				t.Errorf("%d products, %v", len(batch), err)
			}
		}},
		{"find with limit", "off", Doc{{"find", "products"}, {"limit", int64(2)}}, func(t *testing.T, r Doc, err error) {
			if batch := r.Get("cursor").(Doc).Get("firstBatch").([]any); err != nil || len(batch) != 2 {
				t.Errorf("%d products, %v", len(batch), err)
			}
		}},
		{"find on obf", "obf", Doc{{"find", "products"}}, func(t *testing.T, r Doc, err error) {
			batch := r.Get("cursor").(Doc).Get("firstBatch").([]any)
			if err != nil || len(batch) != len(Products("obf")) || batch[0].(Doc).Get("brands") != "Nivea" {
				t.Errorf("%v, %v", batch, err)
			}
		}},
		{"find unknown code", "off", Doc{{"find", "products"}, {"filter", Doc{{"code", "0"}}}}, func(t *testing.T, r Doc, err error) {
			if batch := r.Get("cursor").(Doc).Get("firstBatch").([]any); err != nil || len(batch) != 0 {
				t.Errorf("%v, %v", batch, err)
			}
		}},
		{"find other collection", "off", Doc{{"find", "users"}}, func(t *testing.T, r Doc, err error) {
			cur := r.Get("cursor").(Doc)
			if batch := cur.Get("firstBatch").([]any); err != nil || len(batch) != 0 || cur.Get("ns") != "off.users" {
				t.Errorf("%v, %v", r, err)
			}
		}},
		{"find other filter", "off", Doc{{"find", "products"}, {"filter", Doc{{"brands", "Ferrero"}}}}, func(t *testing.T, r Doc, err error) {
			var me *MongoError
			if !errors.As(err, &me) || me.Code != 2 {
				t.Errorf("%v, %v", r, err)
			}
		}},
		{"find bad filter", "off", Doc{{"find", "products"}, {"filter", "x"}}, func(t *testing.T, r Doc, err error) {
			var me *MongoError
			if !errors.As(err, &me) || me.CodeName != "TypeMismatch" {
				t.Errorf("%v, %v", r, err)
			}
		}},
		{"endSessions", "admin", Doc{{"endSessions", []any{}}}, func(t *testing.T, r Doc, err error) {
			if err != nil || r.Get("ok") != 1.0 {
				t.Errorf("%v %v", r, err)
			}
		}},
		{"unknown", "admin", Doc{{"dropDatabase", int32(1)}}, func(t *testing.T, r Doc, err error) {
			var me *MongoError
			if !errors.As(err, &me) || me.Code != 59 || me.CodeName != "CommandNotFound" ||
				me.Message != "offedge MongoDB stand-in: command dropDatabase is not supported" || r.Get("ok") != 0.0 {
				t.Errorf("%v %v", r, err)
			}
		}},
		{"hello is case sensitive", "admin", Doc{{"Hello", int32(1)}}, func(t *testing.T, r Doc, err error) {
			var me *MongoError
			if !errors.As(err, &me) || me.Code != 59 {
				t.Errorf("%v %v", r, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := MongoCommand(ctx, c, tt.db, tt.cmd)
			tt.check(t, r, err)
		})
	}
}

func TestMongoWire(t *testing.T) {
	_, addr := start(t, "mongodb", Info{Service: "mongodb", Node: "off3"}, Options{})
	t.Run("legacy OP_QUERY isMaster", func(t *testing.T) {
		c := dial(t, addr)
		q, _ := appendOpQuery(nil, 42, "admin.$cmd", Doc{{"isMaster", int32(1)}, {"client", Doc{{"driver", "old"}}}})
		h, body := exchange(t, c, q)
		if h.opCode != opReply || h.responseTo != 42 {
			t.Fatalf("reply header %+v", h)
		}
		if n := binary.LittleEndian.Uint32(body[16:]); n != 1 {
			t.Fatalf("numberReturned %d", n)
		}
		d, err := DecodeBSON(body[20:])
		if err != nil || d.Get("ismaster") != true || d.Get("ok") != 1.0 {
			t.Errorf("%v %v", d, err)
		}
	})
	t.Run("legacy OP_QUERY with $query", func(t *testing.T) {
		c := dial(t, addr)
		q, _ := appendOpQuery(nil, 43, "off.$cmd", Doc{{"$query", Doc{{"find", "products"}, {"filter", Doc{{"code", "5449000000996"}}}}}})
		_, body := exchange(t, c, q)
		d, err := DecodeBSON(body[20:])
		if err != nil || len(d.Get("cursor").(Doc).Get("firstBatch").([]any)) != 1 {
			t.Errorf("%v %v", d, err)
		}
	})
	t.Run("legacy OP_QUERY on a collection", func(t *testing.T) {
		c := dial(t, addr)
		q, _ := appendOpQuery(nil, 44, "off.products", Doc{})
		_, body := exchange(t, c, q)
		if flags := binary.LittleEndian.Uint32(body); flags&2 == 0 {
			t.Errorf("flags %#x, want QueryFailure", flags)
		}
	})
	t.Run("kind 1 sequence is ignored", func(t *testing.T) {
		c := dial(t, addr)
		h, body := exchange(t, c, withSequence(Doc{{"ping", int32(1)}, {"$db", "admin"}}, "documents", Doc{{"a", int32(1)}}, Doc{}))
		m, err := parseOpMsg([16]byte{}, body)
		if err != nil || h.opCode != opMsg || m.body.Get("ok") != 1.0 {
			t.Errorf("%v %v", m.body, err)
		}
	})
	t.Run("checksum", func(t *testing.T) {
		c := dial(t, addr)
		msg, _ := appendOpMsg(nil, 7, 0, msgChecksumPresent, Doc{{"ping", int32(1)}, {"$db", "admin"}})
		msg = binary.LittleEndian.AppendUint32(msg, 0)
		msg = finishWire(msg)
		sum := crc32.Checksum(msg[:len(msg)-4], crc32.MakeTable(crc32.Castagnoli))
		binary.LittleEndian.PutUint32(msg[len(msg)-4:], sum)
		_, body := exchange(t, c, msg)
		if m, err := parseOpMsg([16]byte{}, body); err != nil || m.body.Get("ok") != 1.0 {
			t.Errorf("%v %v", m.body, err)
		}
		// A wrong checksum closes the connection.
		msg[len(msg)-1] ^= 0xff
		c.Write(msg)
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("wrong checksum answered")
		}
	})
	t.Run("moreToCome gets no reply", func(t *testing.T) {
		c := dial(t, addr)
		msg, _ := appendOpMsg(nil, 8, 0, msgMoreToCome, Doc{{"ping", int32(1)}, {"$db", "admin"}})
		c.Write(msg)
		// The next reply is the ping's, not the moreToCome one's.
		r, err := MongoCommand(testCtx(t), c, "admin", Doc{{"buildinfo", int32(1)}})
		if err != nil || r.Get("version") == nil {
			t.Errorf("%v %v", r, err)
		}
	})
	t.Run("missing $db", func(t *testing.T) {
		c := dial(t, addr)
		msg, _ := appendOpMsg(nil, 9, 0, 0, Doc{{"ping", int32(1)}})
		_, body := exchange(t, c, msg)
		if m, _ := parseOpMsg([16]byte{}, body); m.body.Get("code") != int32(40571) {
			t.Errorf("%v", m.body)
		}
	})

	closes := map[string][]byte{
		"garbage":            []byte("GET / HTTP/1.1\r\nHost: mongodb\r\n\r\n"),
		"oversized":          append(binary.LittleEndian.AppendUint32(nil, MaxMongoMessage+1), 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0),
		"negative length":    {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0},
		"unknown opcode":     finishWire(append(appendHeader(nil, 1, 0, 2012), make([]byte, 16)...)),
		"OP_MSG bad flags":   mustMsg(appendOpMsg(nil, 1, 0, 1<<4, Doc{{"ping", int32(1)}})),
		"OP_MSG bad section": finishWire(append(appendHeader(nil, 1, 0, opMsg), 0, 0, 0, 0, 7, 5, 0, 0, 0, 0)),
		"OP_MSG no body":     withoutBody(),
		"OP_MSG bad BSON":    finishWire(append(appendHeader(nil, 1, 0, opMsg), 0, 0, 0, 0, 0, 9, 0, 0, 0, 0x13, 'a', 0, 0, 0)),
		"OP_MSG two bodies": func() []byte {
			b := mustMsg(appendOpMsg(nil, 1, 0, 0, Doc{{"ping", int32(1)}}))
			b = append(b, 0, 5, 0, 0, 0, 0)
			return finishWire(b)
		}(),
		"OP_QUERY truncated": finishWire(append(appendHeader(nil, 1, 0, opQuery), 0, 0, 0, 0, 'a', '.', '$', 'c', 'm', 'd', 0, 1)),
	}
	for name, raw := range closes {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr)
			go c.Write(raw)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := io.ReadFull(c, make([]byte, 1))
			if n != 0 || err == nil {
				t.Fatalf("server answered %q", raw)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection left open after %q", raw)
			}
		})
	}
}

func mustMsg(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func withoutBody() []byte {
	b := appendHeader(nil, 1, 0, opMsg)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, 1, 10, 0, 0, 0, 'i', 'd', 0)
	b = append(b, 5, 0, 0, 0, 0)
	// Pad so that the message is not shorter than the minimum.
	b = append(b, 1, 9, 0, 0, 0, 'x', 0, 5, 0, 0, 0, 0)
	return finishWire(b)
}

func TestMongoCommandContext(t *testing.T) {
	// A server that never answers: the context ends the exchange.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c := dial(t, ln.Addr().String())
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	if _, err := MongoCommand(ctx, c, "admin", Doc{{"ping", int32(1)}}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("MongoCommand on a silent server: %v", err)
	}
	if _, err := RedisCommand(ctx, c, "PING"); err == nil {
		t.Error("RedisCommand after the deadline succeeded")
	}
}
