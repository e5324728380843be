package stunnel

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/offedge/offedge/internal/testutil"
)

// fixture is written from the documented facts (not copied from the
// reference files): one global block and two services, one with IPv6.
const fixture = "\xef\xbb\xbf# stunnel for offedge tests\r\n" +
	"foreground = yes\n" +
	"setuid = stunnel4\n" +
	"debug=warning\n" +
	"\n" +
	"; entrance towards the exit\n" +
	"[redis]\n" +
	"client = yes\n" +
	"accept = 198.51.100.13:6379\n" +
	"connect = 203.0.113.2:6379\n" +
	"   ciphers   =   PSK  \n" +
	"PSKsecrets = /etc/stunnel/psk/redis-psk.txt\n" +
	"[query]\n" +
	"client = no\n" +
	"accept = :::16001\n" +
	"connect = 2001:db8::102:5511\n" +
	"options = a=b\n"

func TestParse(t *testing.T) {
	cfg, err := Parse("fixture.conf", strings.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	wantGlobal := []Option{{"foreground", "yes", 2}, {"setuid", "stunnel4", 3}, {"debug", "warning", 4}}
	if !reflect.DeepEqual(cfg.Global, wantGlobal) {
		t.Fatalf("global = %+v; want %+v", cfg.Global, wantGlobal)
	}
	if len(cfg.Sections) != 2 || cfg.Sections[0].Name != "redis" || cfg.Sections[0].Line != 7 || cfg.Sections[1].Line != 13 {
		t.Fatalf("sections = %+v", cfg.Sections)
	}
	if v, _ := cfg.Sections[0].Get("CIPHERS"); v != "PSK" {
		t.Fatalf("ciphers = %q", v)
	}
	if v, _ := cfg.Section("QUERY").Get("options"); v != "a=b" {
		t.Fatalf("options = %q; the value keeps its '='", v)
	}
	if len(cfg.Findings) != 0 {
		t.Fatalf("findings: %v", cfg.Findings)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"no equals", "foreground = yes\njunk line\n", 2, "expected 'key = value'"},
		{"unclosed section", "[redis\n", 1, "does not end with ']'"},
		{"empty section", "[ ]\n", 1, "empty section name"},
		{"empty key", "[a]\n = yes\n", 2, "empty name"},
		{"binary", "a = b\n\xff\xfe\n", 2, "UTF-8"},
		{"lone CR", "0\r0=\n", 1, "control character"},
		{"too long", "a = " + strings.Repeat("x", MaxLineLen+10) + "\n", 1, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.conf", strings.NewReader(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v; want *ParseError", err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Error(), tt.msg) || !strings.HasPrefix(pe.Error(), "x.conf:") {
				t.Fatalf("err %q (line %d); want line %d containing %q", pe, pe.Line, tt.line, tt.msg)
			}
		})
	}
}

func TestDuplicateSection(t *testing.T) {
	in := "[Robotoff]\naccept = :::16000\n\n[other]\naccept = 1\n[robotoff]\naccept = :::16001\n"
	cfg, err := Parse("dup.conf", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sections) != 3 {
		t.Fatalf("sections merged: %+v", cfg.Sections)
	}
	if len(cfg.Findings) != 1 {
		t.Fatalf("findings = %v; want 1", cfg.Findings)
	}
	f := cfg.Findings[0]
	if f.Line != 6 || !strings.Contains(f.Message, "first at line 1") || !strings.HasPrefix(f.String(), "dup.conf:6: section [robotoff]") {
		t.Fatalf("finding = %q", f)
	}
}

func TestRenderRoundTrip(t *testing.T) {
	cfg, err := Parse("fixture.conf", strings.NewReader(fixture))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Comment = "generated\nby a test"
	cfg.Sections[0].Comment = "the redis tunnel"
	out, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("; generated\n; by a test\n\nforeground = yes\n")) || !bytes.Contains(out, []byte("; the redis tunnel\n[redis]\nclient = yes\n")) {
		t.Fatalf("render:\n%s", out)
	}
	back, err := Parse("back.conf", bytes.NewReader(out))
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if !sameContent(cfg, back) {
		t.Fatalf("round trip changed the content:\n%s", out)
	}
}

func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"newline in value", Config{Global: []Option{{Key: "a", Value: "b\nc = d"}}}},
		{"equals in key", Config{Global: []Option{{Key: "a=b", Value: "c"}}}},
		{"comment key", Config{Global: []Option{{Key: ";a", Value: "c"}}}},
		{"empty section", Config{Sections: []Section{{Name: " "}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := Render(&tt.cfg); err == nil {
				t.Fatalf("Render accepted it:\n%s", out)
			}
		})
	}
}

func sameContent(a, b *Config) bool {
	strip := func(opts []Option) []Option {
		var r []Option
		for _, o := range opts {
			r = append(r, Option{Key: o.Key, Value: o.Value})
		}
		return r
	}
	if !reflect.DeepEqual(strip(a.Global), strip(b.Global)) || len(a.Sections) != len(b.Sections) {
		return false
	}
	for i := range a.Sections {
		if a.Sections[i].Name != b.Sections[i].Name || !reflect.DeepEqual(strip(a.Sections[i].Options), strip(b.Sections[i].Options)) {
			return false
		}
	}
	return true
}

func TestAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"27017", ":27017"},
		{"10.3.0.101:27017", "10.3.0.101:27017"},
		{":::16000", "[::]:16000"},
		{"2001:db8::102:16001", "[2001:db8::102]:16001"},
		{"[2001:db8::102]:16001", "[2001:db8::102]:16001"},
		{"proxy2.example.org:6379", "proxy2.example.org:6379"},
		{"0.0.0.0:8087", "0.0.0.0:8087"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Address(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("Address(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "host:", "smtp"} {
		if got, err := Address(bad); err == nil {
			t.Errorf("Address(%q) = %q; want error", bad, got)
		}
	}
}

// TestReferenceConfigs parses every stunnel config of the Open Food Facts
// infrastructure where it stands, and finds the duplicated [Robotoff]
// section of the Moji server.
func TestReferenceConfigs(t *testing.T) {
	ref := testutil.RequireReference(t)
	files, err := filepath.Glob(filepath.Join(ref, "confs", "*", "stunnel", "off.conf"))
	if err != nil || len(files) < 6 {
		t.Fatalf("found %d stunnel configs (%v); want at least 6", len(files), err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(ref, f)
		t.Run(rel, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(rel, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Sections) == 0 {
				t.Fatal("no sections")
			}
			if v, _ := Get(cfg.Global, "setuid"); v != "stunnel4" {
				t.Errorf("setuid = %q", v)
			}
			for _, s := range cfg.Sections {
				for _, k := range []string{"client", "accept", "connect", "PSKsecrets"} {
					if _, ok := s.Get(k); !ok {
						t.Errorf("[%s] line %d: no %s", s.Name, s.Line, k)
					}
				}
				for _, k := range []string{"accept", "connect"} {
					v, _ := s.Get(k)
					if _, err := Address(v); err != nil {
						t.Errorf("[%s] %s: %v", s.Name, k, err)
					}
				}
			}
			wantDup := strings.Contains(rel, "moji-stunnel-server")
			if wantDup {
				if len(cfg.Findings) != 1 || !strings.Contains(cfg.Findings[0].Message, "[Robotoff] is defined again (first at line 13)") || cfg.Findings[0].Line != 23 {
					t.Fatalf("findings = %v; want the duplicate [Robotoff] at line 23 (first at 13)", cfg.Findings)
				}
				if len(cfg.Sections) != 2 {
					t.Fatalf("the two [Robotoff] sections were merged: %d sections", len(cfg.Sections))
				}
				a, _ := cfg.Sections[0].Get("connect")
				b, _ := cfg.Sections[1].Get("connect")
				if a != "10.3.0.200:5500" || b != "10.3.0.200:5511" {
					t.Fatalf("connects %q %q", a, b)
				}
			} else if len(cfg.Findings) != 0 {
				t.Fatalf("unexpected findings: %v", cfg.Findings)
			}
			// What Render writes, Parse reads back identically.
			out, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("rendered", bytes.NewReader(out))
			if err != nil || !sameContent(cfg, back) {
				t.Fatalf("round trip: %v\n%s", err, out)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fixture))
	f.Add([]byte("[a]\n[a]\nk=v\n"))
	f.Add([]byte("k\n"))
	f.Add([]byte("[\n"))
	f.Add([]byte("=\n"))
	f.Add([]byte("a = b = c\r\n; c\n# d\n[ s ]\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg, err := Parse("fuzz", bytes.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		out, err := Render(cfg)
		if err != nil {
			t.Fatalf("Render of a parsed config: %v", err)
		}
		back, err := Parse("rendered", bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-parse: %v\n%q", err, out)
		}
		if !sameContent(cfg, back) {
			t.Fatalf("round trip changed content:\nin  %q\nout %q", in, out)
		}
		if len(back.Findings) != len(cfg.Findings) {
			t.Fatalf("findings %d → %d", len(cfg.Findings), len(back.Findings))
		}
	})
}
