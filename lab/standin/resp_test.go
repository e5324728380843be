package standin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// redisCase is one command and the reply RedisCommand should return; a
// wantErr prefix expects an error reply.
type redisCase struct {
	args    []string
	want    any
	wantErr string
}

// commonRedisCases hold for the stand-in and for a real redis-server alike.
var commonRedisCases = []redisCase{
	{args: []string{"PING"}, want: "PONG"},
	{args: []string{"ping", "hello"}, want: "hello"},
	{args: []string{"ECHO", "a\r\nb"}, want: "a\r\nb"},
	{args: []string{"SET", "k", "v"}, want: "OK"},
	{args: []string{"GET", "k"}, want: "v"},
	{args: []string{"GET", "missing"}, want: nil},
	{args: []string{"SET", "n", "41"}, want: "OK"},
	{args: []string{"INCR", "n"}, want: int64(42)},
	{args: []string{"INCR", "fresh"}, want: int64(1)},
	{args: []string{"INCR", "k"}, wantErr: "ERR value is not an integer"},
	{args: []string{"EXISTS", "k", "n", "missing"}, want: int64(2)},
	{args: []string{"DEL", "k", "missing"}, want: int64(1)},
	{args: []string{"EXISTS", "k"}, want: int64(0)},
	{args: []string{"SET", "tmp", "x", "EX", "100"}, want: "OK"},
	{args: []string{"SET", "tmp", "x", "EX", "zz"}, wantErr: "ERR value is not an integer"},
	{args: []string{"SET", "tmp", "x", "EX", "0"}, wantErr: "ERR invalid expire time"},
	{args: []string{"KEYS", "*"}, want: []any{"fresh", "n", "tmp"}},
	{args: []string{"KEYS", "[fn]*"}, want: []any{"fresh", "n"}},
	{args: []string{"KEYS", "t?p"}, want: []any{"tmp"}},
	{args: []string{"SELECT", "0"}, want: "OK"},
	{args: []string{"CLIENT", "SETNAME", "offedge-test"}, want: "OK"},
	{args: []string{"GET"}, wantErr: "ERR wrong number of arguments"},
	{args: []string{"NOSUCHCOMMAND", "x"}, wantErr: "ERR unknown command"},
	{args: []string{"DEL", "n", "fresh", "tmp"}, want: int64(3)},
}

func runRedisCases(t *testing.T, c net.Conn, cases []redisCase) {
	t.Helper()
	ctx := testCtx(t)
	for _, tt := range cases {
		got, err := RedisCommand(ctx, c, tt.args...)
		if tt.wantErr != "" {
			var re RedisError
			if !errors.As(err, &re) || !strings.HasPrefix(string(re), tt.wantErr) {
				t.Errorf("%q: %v, %v; want error %q", tt.args, got, err, tt.wantErr)
			}
			continue
		}
		if keys, ok := got.([]any); ok && strings.EqualFold(tt.args[0], "KEYS") {
			slices.SortFunc(keys, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q = %#v, %v; want %#v", tt.args, got, err, tt.want)
		}
	}
}

func TestRedisStandin(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	_, addr := start(t, "redis", Info{Service: "redis", Node: "off2"}, Options{Now: clock})
	c := dial(t, addr)
	runRedisCases(t, c, commonRedisCases)
	runRedisCases(t, c, []redisCase{
		{args: []string{"SELECT", "1"}, wantErr: "ERR DB index is out of range"},
		{args: []string{"COMMAND"}, want: []any{}},
		{args: []string{"CLIENT", "LIST"}, wantErr: "ERR unknown subcommand"},
		{args: []string{"SET", "a", "b", "PX", "5"}, wantErr: "ERR syntax error"},
		{args: []string{"SET", "exp", "soon", "EX", "10"}, want: "OK"},
		{args: []string{"GET", "exp"}, want: "soon"},
	})
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	runRedisCases(t, c, []redisCase{
		{args: []string{"GET", "exp"}, want: nil},
		{args: []string{"KEYS", "*"}, want: []any{}},
	})
	info, err := RedisCommand(testCtx(t), c, "INFO")
	if s, _ := info.(string); err != nil || !strings.HasPrefix(s, "# Server\r\nredis_version:0.0.0-offedge-standin\r\n") || !strings.Contains(s, "redis@off2") {
		t.Errorf("INFO = %q, %v", info, err)
	}
	if got, err := RedisCommand(testCtx(t), c, "QUIT"); err != nil || got != "OK" {
		t.Errorf("QUIT = %v, %v", got, err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection open after QUIT")
	}
}

func TestRedisRaw(t *testing.T) {
	_, addr := start(t, "redis", testInfo, Options{})
	tests := []struct {
		name   string
		send   string
		want   []string // reply lines
		closed bool
	}{
		{"inline", "PING\r\n", []string{"+PONG"}, false},
		{"inline quoted", "SET \"a key\" 'a value'\r\nGET \"a key\"\r\n", []string{"+OK", "$7", "a value"}, false},
		{"inline LF only", "ECHO x\n", []string{"$1", "x"}, false},
		{"empty lines skipped", "\r\n\r\nPING\r\n", []string{"+PONG"}, false},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n", []string{"+PONG", "$2", "hi", "+PONG"}, false},
		{"unbalanced quotes", "ECHO \"abc\r\n", []string{"-ERR Protocol error: unbalanced quotes in request"}, true},
		{"bulk too big", "*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(MaxRedisBulk+1) + "\r\n", []string{"-ERR Protocol error: invalid bulk length (this stand-in refuses bulk strings over 1048576 bytes)"}, true},
		{"bulk 512 MiB", "*1\r\n$536870912\r\n", []string{"-ERR Protocol error: invalid bulk length (this stand-in refuses bulk strings over 1048576 bytes)"}, true},
		{"negative bulk", "*1\r\n$-5\r\n", []string{"-ERR Protocol error: invalid bulk length (this stand-in refuses bulk strings over 1048576 bytes)"}, true},
		{"array too long", "*100000\r\n", []string{"-ERR Protocol error: invalid multibulk length"}, true},
		{"array not a number", "*x\r\n", []string{"-ERR Protocol error: invalid multibulk length"}, true},
		{"no dollar", "*1\r\n+PING\r\n", []string{"-ERR Protocol error: expected '$', got '+'"}, true},
		{"bulk without CRLF", "*1\r\n$4\r\nPINGxx", []string{"-ERR Protocol error: bulk string not followed by CRLF"}, true},
		{"inline too long", strings.Repeat("A", 70<<10), []string{"-ERR Protocol error: too big inline request"}, true},
		{"binary garbage", "\x00\xff\xfe\r\n", []string{"-ERR unknown command '\x00\xff\xfe', with args beginning with: (offedge Redis stand-in)"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLineConn(t, addr)
			go l.c.Write([]byte(tt.send))
			for _, w := range tt.want {
				if got := l.line(); got != w {
					t.Fatalf("reply line %q, want %q", got, w)
				}
			}
			if tt.closed {
				l.expectClosed()
			} else {
				l.send("PING\r\n")
				if got := l.line(); got != "+PONG" {
					t.Fatalf("after the case, PING = %q", got)
				}
			}
		})
	}
	t.Run("command larger than the bound", func(t *testing.T) {
		l := newLineConn(t, addr)
		chunk := strings.Repeat("x", MaxRedisBulk)
		var b strings.Builder
		fmt.Fprintf(&b, "*6\r\n$4\r\nECHO\r\n")
		for range 5 {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(chunk), chunk)
		}
		go l.c.Write([]byte(b.String()))
		if got := l.line(); !strings.Contains(got, "command larger than") {
			t.Fatalf("reply %q", got)
		}
		l.expectClosed()
	})
	t.Run("idle connection is closed", func(t *testing.T) {
		_, addr := start(t, "redis", testInfo, Options{IdleTimeout: 50 * time.Millisecond})
		l := newLineConn(t, addr)
		l.expectClosed()
	})
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hallo", true},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"[", "a", false},
		{"*a", strings.Repeat("b", 10000), false},
		{strings.Repeat("*a", 50) + "b", strings.Repeat("a", 5000), false},
	}
	for _, tt := range tests {
		if got := globMatch([]byte(tt.p), []byte(tt.s)); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func FuzzRESPCommand(f *testing.F) {
	f.Add([]byte("*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n"))
	f.Add([]byte("PING \"a b\" 'c'\r\n"))
	f.Add([]byte("*1\r\n$-1\r\n"))
	f.Add([]byte("*99999999999999999999\r\n"))
	f.Add([]byte("$3\r\nabc\r\n"))
	srv := newRedis(testInfo, Options{}.withDefaults())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		for range 100 {
			args, err := readRESPCommand(r)
			if err != nil {
				break
			}
			if len(args) > MaxRedisArgs {
				t.Fatalf("%d args over the bound", len(args))
			}
			if len(args) > 0 && srv.exec(w, args) {
				break
			}
		}
		w.Flush()
		// Every reply the server wrote parses as RESP.
		rr := &exactReader{r: bytes.NewReader(out.Bytes())}
		for {
			if _, err := readRESPReply(rr, 0); err != nil {
				var re RedisError
				if errors.As(err, &re) {
					continue
				}
				if rr.r.(*bytes.Reader).Len() != 0 {
					t.Fatalf("unparsable reply in %q: %v", out.Bytes(), err)
				}
				break
			}
		}
	})
}

func FuzzRESPReply(f *testing.F) {
	f.Add([]byte("*3\r\n+OK\r\n:-5\r\n$3\r\nabc\r\n"))
	f.Add([]byte("*-1\r\n"))
	f.Add([]byte("-ERR x\r\n"))
	f.Add([]byte("$999999999999\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		readRESPReply(&exactReader{r: bytes.NewReader(b)}, 0)
	})
}

// TestRedisCommandAgainstRedisServer proves that RedisCommand speaks real
// RESP: the common cases give the same answers from redis-server.
func TestRedisCommandAgainstRedisServer(t *testing.T) {
	bin := testutil.RequireBinary(t, "redis-server")
	addr := testutil.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--bind", host, "--port", port, "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	testutil.WaitTCP(t, addr, 10*time.Second)
	c := dial(t, addr)
	// redis-server answers PING only once loaded; wait on the condition.
	testutil.Eventually(t, 10*time.Second, "redis-server to answer PING", func() bool {
		got, err := RedisCommand(testCtx(t), c, "PING")
		return err == nil && got == "PONG"
	})
	cases := slices.Clone(commonRedisCases)
	runRedisCases(t, c, cases)
	info, err := RedisCommand(testCtx(t), c, "INFO", "server")
	if s, _ := info.(string); err != nil || !strings.HasPrefix(s, "# Server\r\nredis_version:") {
		t.Errorf("INFO = %.80q, %v", info, err)
	}
	// Arrays with nested nil and error-free mixed types, as only a real
	// server makes them.
	got, err := RedisCommand(testCtx(t), c, "MGET", "nothing", "nothing2")
	if err != nil || !reflect.DeepEqual(got, []any{nil, nil}) {
		t.Errorf("MGET = %#v, %v", got, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "redis.log")); err == nil && t.Failed() {
		t.Logf("redis.log:\n%s", data)
	}
}
