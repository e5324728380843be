package vars

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newReq(target string, hdr map[string][]string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = "192.0.2.7:40000"
	for k, v := range hdr {
		r.Header[k] = v
	}
	return r
}

func TestTemplateVariables(t *testing.T) {
	r := newReq("/images/products/123/front.jpg?lc=fr&Size=400&x", map[string][]string{
		"User-Agent":      {"Mozilla/5.0"},
		"X-Multi":         {"a", "b"},
		"Cookie":          {"session=abc; Lang=fr", "other=1"},
		"X-Forwarded-For": {"198.51.100.9"},
	})
	sc, err := NewScope([]MapConfig{{Name: "kind", Source: "$uri", Entries: []MapEntry{{Regex: `\.jpg$`, Value: "image"}}, Default: "other"}}, []string{"mine"}, []string{"upstream_addr"})
	if err != nil {
		t.Fatal(err)
	}
	var q Request
	q.Reset(r, sc)
	q.Host, q.ServerName, q.Scheme, q.ServerPort = "world.openfoodfacts.org", "openfoodfacts.org", "https", "8443"
	q.Set(sc.SetSlot("mine"), "set-value")
	q.SetExtern(sc.ExternSlot("upstream_addr"), "198.51.100.1:80")
	for tmpl, want := range map[string]string{
		"$host":                      "world.openfoodfacts.org",
		"${host}x":                   "world.openfoodfacts.orgx",
		"$uri":                       "/images/products/123/front.jpg",
		"$document_uri":              "/images/products/123/front.jpg",
		"$request_uri":               "/images/products/123/front.jpg?lc=fr&Size=400&x",
		"$args":                      "lc=fr&Size=400&x",
		"$is_args$args":              "?lc=fr&Size=400&x",
		"$arg_lc":                    "fr",
		"$arg_size":                  "400", // names compared ignoring case, as nginx
		"$arg_x":                     "",
		"$arg_missing":               "",
		"$http_user_agent":           "Mozilla/5.0",
		"$http_x_multi":              "a, b",
		"$http_cookie":               "session=abc; Lang=fr; other=1",
		"$cookie_lang":               "fr",
		"$cookie_other":              "1",
		"$cookie_nope":               "",
		"$remote_addr":               "192.0.2.7",
		"$remote_port":               "40000",
		"$scheme://$server_name/":    "https://openfoodfacts.org/",
		"$https":                     "on",
		"$request_method":            "GET",
		"$binary_remote_addr":        "\xc0\x00\x02\x07",
		"$server_port":               "8443",
		"$request":                   "GET /images/products/123/front.jpg?lc=fr&Size=400&x HTTP/1.1",
		"$server_protocol":           "HTTP/1.1",
		"$proxy_add_x_forwarded_for": "198.51.100.9, 192.0.2.7",
		"$kind":                      "image",
		"$mine":                      "set-value",
		"$upstream_addr":             "198.51.100.1:80",
		"no variables at all":        "no variables at all",
		"":                           "",
		"a$1b":                       "ab", // no match yet: empty, as nginx
		"price: 5 euros, 100% sure.": "price: 5 euros, 100% sure.",
	} {
		tp, err := Parse(tmpl, sc)
		if err != nil {
			t.Errorf("Parse(%q): %v", tmpl, err)
			continue
		}
		got, err := tp.Eval(&q)
		if err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", tmpl, got, err, want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"$":           "at the end",
		"a$":          "at the end",
		"${host":      "without",
		"${}":         "invalid variable name",
		"$-x":         "names no variable",
		"$nosuchvar":  "unknown variable $nosuchvar",
		"$arg_":       "unknown variable",
		"${ho st}":    "invalid variable name",
		"$http_":      "unknown variable",
		"x${cookie_}": "unknown variable",
	} {
		_, err := Parse(tmpl, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want an error with %q", tmpl, err, want)
		}
	}
}

func TestCapturesAndBounds(t *testing.T) {
	re, err := CompileRegex(`^/images/products/(..)(....)/([^/]*)$`, false)
	if err != nil {
		t.Fatal(err)
	}
	var q Request
	q.Reset(newReq("/", nil), nil)
	if !re.Match("/images/products/123456/1.jpg", &q) {
		t.Fatal("no match")
	}
	tp, _ := Parse("/images/products/000/000/0$1/$2/$3", nil)
	if tp.MaxCapture != 3 {
		t.Errorf("MaxCapture %d", tp.MaxCapture)
	}
	if got, _ := tp.Eval(&q); got != "/images/products/000/000/012/3456/1.jpg" {
		t.Errorf("got %q", got)
	}
	// A failed match keeps the previous captures (nginx).
	if re.Match("/nope", &q) || q.Capture(1) != "12" {
		t.Errorf("a failed match changed the captures: %q", q.Capture(1))
	}
	// An output beyond MaxValueBytes is refused, whatever the input.
	big := strings.Repeat("a", 4000)
	re2, _ := CompileRegex("^(.*)$", false)
	re2.Match(big, &q)
	tp2, _ := Parse("$1$1$1$1$1", nil)
	if _, err := tp2.Eval(&q); err != ErrTooLong {
		t.Errorf("5 x 4000 bytes: %v; want ErrTooLong", err)
	}
}

func TestRegexRefusesPCRE(t *testing.T) {
	for src, want := range map[string]string{
		`^/(a)\1$`:                           `backreference \1`,
		`^/(?=x)`:                            "lookahead",
		`^/(?!x)`:                            "negative lookahead",
		`(?<=a)b`:                            "lookbehind",
		`(?<!a)b`:                            "negative lookbehind",
		`(?>a+)b`:                            "atomic group",
		`a*+`:                                "possessive",
		`a\Kb`:                               `\K`,
		`(?<n>a)\k<n>`:                       "named backreference",
		`(?P<n>a)(?P=n)`:                     "named backreference",
		strings.Repeat("a", MaxRegexBytes+1): "at most",
		`(a{1000}){1000}`:                    "",
		`[`:                                  "missing closing ]",
	} {
		_, err := CompileRegex(src, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileRegex(%.40q) = %v; want an error with %q", src, err, want)
		}
	}
	// Literals and classes that look like PCRE tokens are fine.
	for _, src := range []string{`\(\?=`, `[*+]`, `[?+]x`, `^/api/(?P<v>v[0-9]+)/`, `(?<name>x)`, `[[:alpha:]]+`, `\.(jpg|png)$`} {
		if _, err := CompileRegex(src, true); err != nil {
			t.Errorf("CompileRegex(%q): %v", src, err)
		}
	}
}

func TestMapPrecedence(t *testing.T) {
	sc, err := NewScope([]MapConfig{{
		Name: "site", Source: "$host", Hostnames: true, Default: "none",
		Entries: []MapEntry{
			{Regex: `^(www)\.`, Value: "regex-$1"},
			{Exact: "*.example.org", Value: "wild"},
			{Exact: "*.a.example.org", Value: "wild-longer"},
			{Exact: ".example.net", Value: "dot"},
			{Exact: "mail.*", Value: "suffix"},
			{Exact: "WWW.Example.ORG", Value: "exact"},
		},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"www.example.org":   "exact", // exact beats the regex declared before it
		"x.example.org":     "wild",
		"x.a.example.org":   "wild-longer",
		"example.org":       "none",
		"example.net":       "dot",
		"b.example.net":     "dot",
		"mail.example.com":  "suffix",
		"www.other.test":    "regex-www",
		"nothing.else.test": "none",
	} {
		var q Request
		q.Reset(newReq("/", nil), sc)
		q.Host = host
		tp, _ := Parse("$site", sc)
		if got, err := tp.Eval(&q); err != nil || got != want {
			t.Errorf("host %s: %q, %v; want %q", host, got, err, want)
		}
	}
}

func TestScopeErrors(t *testing.T) {
	for name, c := range map[string]struct {
		maps []MapConfig
		sets []string
		want string
	}{
		"builtin":  {maps: []MapConfig{{Name: "host", Source: "$uri"}}, want: "built-in"},
		"prefix":   {sets: []string{"http_x"}, want: "request variables"},
		"twice":    {maps: []MapConfig{{Name: "a", Source: "$uri"}}, sets: []string{"a"}, want: "declared twice"},
		"cycle":    {maps: []MapConfig{{Name: "a", Source: "$b"}, {Name: "b", Source: "$uri", Default: "$a"}}, want: "cycle: $a -> $b -> $a"},
		"self":     {maps: []MapConfig{{Name: "a", Source: "$a"}}, want: "cycle"},
		"capture":  {maps: []MapConfig{{Name: "a", Source: "$uri", Entries: []MapEntry{{Regex: "^/(x)", Value: "$2"}}}}, want: "names $2 but the regex has 1 groups"},
		"both":     {maps: []MapConfig{{Name: "a", Source: "$uri", Entries: []MapEntry{{Exact: "x", Regex: "y"}}}}, want: "set exact or regex"},
		"nosource": {maps: []MapConfig{{Name: "a"}}, want: "no source"},
		"badre":    {maps: []MapConfig{{Name: "a", Source: "$uri", Entries: []MapEntry{{Regex: `(?=x)`}}}}, want: "lookahead"},
	} {
		_, err := NewScope(c.maps, c.sets, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", name, err, c.want)
		}
	}
}

func TestCond(t *testing.T) {
	r := newReq("/x", map[string][]string{"User-Agent": {"Mozilla BadBot/1.0"}, "Referer": {"https://jobothoniel.com/x"}})
	for _, c := range []struct {
		left, op, right string
		want            bool
	}{
		{"$http_referer", "~*", "(jobothoniel.com)", true},
		{"$http_referer", "~", "JOBOTHONIEL", false},
		{"$http_referer", "!~*", "JOBOTHONIEL", false},
		{"$http_user_agent", "=", "-", false},
		{"$http_user_agent", "!=", "-", true},
		{"$http_user_agent", "", "", true},
		{"$http_x_none", "", "", false},
		{"$uri", "=", "/x", true},
	} {
		cond, err := NewCond(c.left, c.op, c.right, nil)
		if err != nil {
			t.Fatal(err)
		}
		var q Request
		q.Reset(r, nil)
		if got, err := cond.True(&q); err != nil || got != c.want {
			t.Errorf("%s %s %s: %v, %v", c.left, c.op, c.right, got, err)
		}
	}
	for _, c := range [][3]string{{"$uri", "-f", ""}, {"uri", "=", "x"}, {"$uri", "", "x"}, {"$uri", "~", `(?=x)`}} {
		if _, err := NewCond(c[0], c[1], c[2], nil); err == nil {
			t.Errorf("NewCond%q accepted", c)
		}
	}
}

// FuzzTemplate: parsing never panics, and a parsed template evaluates
// within MaxValueBytes.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"$host$request_uri", "${uri}x$1$9", "$", "${", "$arg_a$http_b$cookie_c", "a$$b", "$m"} {
		f.Add(s, "/p?a=1")
	}
	sc, _ := NewScope([]MapConfig{{Name: "m", Source: "$uri", Entries: []MapEntry{{Regex: "^/(p)", Value: "$1$1"}}}}, []string{"s"}, nil)
	f.Fuzz(func(t *testing.T, tmpl, target string) {
		tp, err := Parse(tmpl, sc)
		if err != nil {
			return
		}
		var q Request
		r := newReq("/", nil)
		r.URL.Path, r.URL.RawQuery, r.RequestURI = "/"+target, target, "/"+target
		q.Reset(r, sc)
		v, err := tp.Eval(&q)
		if len(v) > MaxValueBytes || (err != nil && err != ErrTooLong) {
			t.Fatalf("%q: %d bytes, %v", tmpl, len(v), err)
		}
	})
}

// FuzzRegex: compiling never panics; what compiles matches without panicking.
func FuzzRegex(f *testing.F) {
	for _, s := range []string{`^/images/products/(....)/([^/]*)$`, `(?=x)`, `[*+]`, `\1`, `(?i)a`, `[[:alpha:]`, `a{2,1}`} {
		f.Add(s, "/images/products/1234/1.jpg")
	}
	f.Fuzz(func(t *testing.T, src, s string) {
		re, err := CompileRegex(src, false)
		if err != nil {
			return
		}
		var q Request
		q.Reset(newReq("/", nil), nil)
		if re.Match(s, &q) {
			for i := 0; i <= MaxCaptures; i++ {
				_ = q.Capture(i)
			}
		}
	})
}

// FuzzMap: any map that compiles answers any source value without panicking.
func FuzzMap(f *testing.F) {
	f.Add("*.example.org", `^(a)`, "a.example.org")
	f.Add(".x", `(?i)b`, "x")
	f.Add("mail.*", "", "mail.test")
	f.Fuzz(func(t *testing.T, exact, regex, host string) {
		entries := []MapEntry{{Exact: exact, Value: "e"}}
		if regex != "" {
			entries = append(entries, MapEntry{Regex: regex, Value: "r$1"})
		}
		sc, err := NewScope([]MapConfig{{Name: "m", Source: "$host", Hostnames: true, Entries: entries}}, nil, nil)
		if err != nil {
			return
		}
		var q Request
		q.Reset(newReq("/", nil), sc)
		q.Host = host
		tp, _ := Parse("$m", sc)
		if _, err := tp.Eval(&q); err != nil && err != ErrTooLong {
			t.Fatal(err)
		}
	})
}

// FuzzRewrite: any rewrite that compiles runs on any URI without
// panicking; a rewritten URI is normalised and at most MaxValueBytes.
func FuzzRewrite(f *testing.F) {
	f.Add(`^/images/products/(....)/([^/]*)$`, "/images/products/000/000/000/$1/$2", "break", "/images/products/1234/1.jpg", "a=1")
	f.Add(`^/(.*)$`, "/$1$1$1$1$1$1?x=$1", "", "/abc", "")
	f.Add(`^`, "https://example.org$uri?", "redirect", "/a/../b", "q")
	f.Add(`(.)`, "/..$1/..", "last", "/x", "")
	f.Fuzz(func(t *testing.T, re, repl, flag, uri, args string) {
		p, err := CompileSteps([]Step{{Rewrite: &Rewrite{Regex: re, Replacement: repl, Flag: flag}}}, nil, 0)
		if err != nil {
			return
		}
		var q Request
		q.Reset(newReq("/", nil), nil)
		q.URI, q.Args = "/"+uri, args
		changed := false
		o, a, err := p.Run(&q, &changed)
		if err != nil {
			return
		}
		if o == Answered && a.Code != 301 && a.Code != 302 {
			t.Fatalf("answer %d", a.Code)
		}
		if changed && (len(q.URI) > MaxValueBytes*3 || !strings.HasPrefix(q.URI, "/") || strings.Contains(q.URI, "/../") || strings.Contains(q.URI, "//")) {
			t.Fatalf("rewritten to %q", q.URI)
		}
	})
}

func TestStepsCompileErrors(t *testing.T) {
	for name, c := range map[string]struct {
		steps []Step
		want  string
	}{
		"none":     {[]Step{{}}, "exactly one of"},
		"then":     {[]Step{{Set: &SetVar{Name: "x"}, Then: []Step{{}}}}, "then belongs to an if"},
		"capture":  {[]Step{{Rewrite: &Rewrite{Regex: "^/(a)", Replacement: "/$3"}}}, "names $3, but only 1 groups"},
		"return":   {[]Step{{Return: &Return{Code: 302}}}, "a redirect needs a url"},
		"url":      {[]Step{{Return: &Return{Code: 200, URL: "/x"}}}, "only 301, 302"},
		"444":      {[]Step{{Return: &Return{Code: 444, Body: "x"}}}, "closes the connection"},
		"code":     {[]Step{{Return: &Return{Code: 99}}}, "200-599"},
		"flag":     {[]Step{{Rewrite: &Rewrite{Regex: "^", Replacement: "/", Flag: "stop"}}}, `flag "stop"`},
		"empty":    {[]Step{{If: &Condition{Variable: "$uri"}}}, "nothing in then"},
		"ifcap":    {[]Step{{If: &Condition{Variable: "$uri", Op: "~", Value: "^/(x)"}, Then: []Step{{Return: &Return{Code: 200, Body: "$2"}}}}}, "names $2"},
		"unknown":  {[]Step{{Set: &SetVar{Name: "nope", Value: "1"}}}, "not a set variable"},
		"template": {[]Step{{Return: &Return{Code: 200, Body: "$"}}}, "names no variable"},
	} {
		sc, _ := NewScope(nil, []string{"x"}, nil)
		if _, err := CompileSteps(c.steps, sc, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
}
