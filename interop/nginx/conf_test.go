package nginx

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTokenizer(t *testing.T) {
	tests := []struct {
		in   string
		want string // directives as name|arg|arg, blocks in [ ]
	}{
		{"a b c;", "a|b|c"},
		{"a 'b c' \"d;e\";", "a|b c|d;e"},
		{`a "x\"y" 'it\'s' \\ "\t";`, "a|x\"y|it's|\\|\t"},
		{`rewrite ^/(\d+)\.jpg$ /x/$1 break;`, `rewrite|^/(\d+)\.jpg$|/x/$1|break`},
		{"a ${host}x;", "a|${host}x"},
		{"a b#c; # comment\n", "a|b#c"},
		{"# only\nserver { listen 80; }", "server[listen|80]"},
		{`if ($http_user_agent = "-"){ return 403; }`, `if|($http_user_agent|=|-|)[return|403]`},
		{`if ($http_referer ~* (jobothoniel.com) ) { return 403; }`, `if|($http_referer|~*|(jobothoniel.com)|)[return|403]`},
		{"map $a $b { default 0; \"~*x\" 1; '' 2; }", "map|$a|$b[default|0;~*x|1;|2]"},
		{"a\n  b\n  c;", "a|b|c"},
		{"e {}", "e[]"},
		{`a x\;y;`, `a|x\;y`},
	}
	for _, tt := range tests {
		ds, err := Parse("t", []byte(tt.in))
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := flat(ds); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

func flat(ds []*Directive) string {
	var parts []string
	for _, d := range ds {
		s := strings.Join(append([]string{d.Name}, d.Args...), "|")
		if d.IsBlock() {
			s += "[" + flat(d.Block) + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ";")
}

func TestLines(t *testing.T) {
	ds, err := Parse("f.conf", []byte("# c\nserver {\n  listen\n    80;\n  location / {\n\n   return 404;\n  }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := ds[0]
	if s.Pos() != "f.conf:2" || s.Block[0].Line != 3 || s.Block[1].Line != 5 || s.Block[1].Block[0].Line != 7 {
		t.Fatalf("positions: %s %d %d %d", s.Pos(), s.Block[0].Line, s.Block[1].Line, s.Block[1].Block[0].Line)
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a", "t:1: unexpected end of file, expecting \";\" or \"}\""},
		{"server {\n a;\n", "t:3: unexpected end of file, expecting \"}\" (the block opened at line 1)"},
		{"}", "t:1: unexpected \"}\""},
		{"a {\n b }", "t:2: unexpected \"}\": the directive before it lacks its \";\""},
		{";", "t:1: unexpected \";\""},
		{"a \"b", "t:1: unexpected end of file inside a \"-quoted string"},
		{"a \"b\"c;", "t:1: unexpected 'c' after a quoted string"},
		{strings.Repeat("a{", 40), "t:1: blocks nested deeper than 32"},
		{"a" + strings.Repeat(" b", 2000) + ";", "t:1: more than 1024 words in one directive"},
	}
	for _, tt := range tests {
		_, err := Parse("t", []byte(tt.in))
		var e *Error
		if !errors.As(err, &e) || err.Error() != tt.want {
			t.Errorf("%.30q: got %v, want %s", tt.in, err, tt.want)
		}
	}
}

func write(t *testing.T, path, data string) string {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	main := write(t, filepath.Join(dir, "nginx.conf"), "http {\n  include conf.d/*.conf;\n  include /etc/nginx/snippets/x.conf;\n  include none/*.conf;\n}\n")
	write(t, filepath.Join(dir, "conf.d/b.conf"), "server { listen 81; }\n")
	write(t, filepath.Join(dir, "conf.d/a.conf"), "\nserver { listen 80; }\n")
	write(t, filepath.Join(dir, "snippets/x.conf"), "gzip on;\n")
	ld := &Loader{Prefix: dir}
	ds, err := ld.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := flat(ds), "http[server[listen|80];server[listen|81];gzip|on]"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if p := ds[0].Block[0].Pos(); p != filepath.Join(dir, "conf.d/a.conf")+":2" {
		t.Fatalf("included directive at %s", p)
	}
	if len(ld.Includes) != 3 || len(ld.Includes[0].Files) != 2 || len(ld.Includes[1].Files) != 1 || ld.Includes[2].Files != nil || ld.Includes[2].Directive.Line != 4 {
		t.Fatalf("includes: %+v", ld.Includes)
	}
	// A directory is its files in order.
	ds, err = (&Loader{Prefix: dir}).Load(filepath.Join(dir, "conf.d"))
	if err != nil || flat(ds) != "server[listen|80];server[listen|81]" {
		t.Fatalf("directory: %v %s", err, flat(ds))
	}
	// Relative to the including file when the prefix has no match.
	sub := write(t, filepath.Join(dir, "other/site"), "include part.conf;\n")
	write(t, filepath.Join(dir, "other/part.conf"), "return 404;\n")
	ds, err = (&Loader{Prefix: dir}).Load(sub)
	if err != nil || flat(ds) != "return|404" {
		t.Fatalf("relative to the file: %v %s", err, flat(ds))
	}
}

func TestIncludeBounds(t *testing.T) {
	dir := t.TempDir()
	a := write(t, filepath.Join(dir, "a.conf"), "include b.conf;\n")
	write(t, filepath.Join(dir, "b.conf"), "include a.conf;\n")
	_, err := (&Loader{Prefix: dir}).Load(a)
	if err == nil || !strings.Contains(err.Error(), "include cycle") {
		t.Fatalf("cycle: %v", err)
	}
	self := write(t, filepath.Join(dir, "self.conf"), "include *.many;\n")
	for i := 0; i < 5; i++ {
		write(t, filepath.Join(dir, strings.Repeat("x", i+1)+".many"), "a;\n")
	}
	_, err = (&Loader{Prefix: dir, Limits: Limits{MaxFileSize: 1 << 10, MaxDepth: 8, MaxFiles: 3, MaxTokens: 10}}).Load(self)
	if err == nil || !strings.Contains(err.Error(), "more than 3 files included") {
		t.Fatalf("file count: %v", err)
	}
	big := write(t, filepath.Join(dir, "big.conf"), strings.Repeat("a;\n", 1000))
	_, err = (&Loader{Prefix: dir, Limits: Limits{MaxFileSize: 1 << 10, MaxDepth: 8, MaxFiles: 3, MaxTokens: 10}}).Load(big)
	if err == nil || !strings.Contains(err.Error(), "more than the 1024 read") {
		t.Fatalf("file size: %v", err)
	}
}

func TestPrintRoundTrip(t *testing.T) {
	in := "map $a $b {\n default '';\n \"~*\\.full\\.jpg\" big;\n}\nserver {\n add_header Link \"<http://x>; rel='license'\";\n if ($a = \"\") { return 403 \"no {way}\"; }\n rewrite ^/(\\d+)$ /x/$1 break;\n}\n"
	ds, err := Parse("t", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out := Print(ds)
	back, err := Parse("t", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !sameTree(ds, back) {
		t.Fatalf("round trip:\n%s\n%s", flat(ds), flat(back))
	}
}

func sameTree(a, b []*Directive) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !reflect.DeepEqual(a[i].Args, b[i].Args) || a[i].IsBlock() != b[i].IsBlock() || !sameTree(a[i].Block, b[i].Block) {
			return false
		}
	}
	return true
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("server { listen 80; location ~* \\.(jpg|png)$ { return 301 https://$host$request_uri; } }"))
	f.Add([]byte("map $a $b { default ''; \"~x\" 1; }\nif ($a = \"-\"){ rewrite ^ /s last; }"))
	f.Add([]byte("a 'b\\'c' \"d\\\"e\" ${x}y \\t;"))
	f.Add([]byte("a b#c;\n# d\n}"))
	f.Add([]byte("a \"\n\";"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := Parse("fuzz", in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		out := Print(ds)
		back, err := Parse("printed", out)
		if err != nil {
			t.Fatalf("re-parse: %v\nin  %q\nout %q", err, in, out)
		}
		if !sameTree(ds, back) {
			t.Fatalf("round trip changed the tree:\nin  %q\nout %q", in, out)
		}
	})
}
