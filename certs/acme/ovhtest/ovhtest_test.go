package ovhtest

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signed makes a call signed by hand with OVH's documented formula
// ("$1$" + SHA1_HEX(AS+"+"+CK+"+"+METHOD+"+"+QUERY+"+"+BODY+"+"+TSTAMP)),
// independently of go-ovh.
func signed(t *testing.T, s *Server, secret, method, path, body string, ts int64) (int, map[string]any) {
	return signedSent(t, s, secret, method, path, body, body, ts)
}

// signedSent signs body and sends sent.
func signedSent(t *testing.T, s *Server, secret, method, path, body, sent string, ts int64) (int, map[string]any) {
	t.Helper()
	u := s.URL + path
	req, _ := http.NewRequest(method, u, strings.NewReader(sent))
	sum := sha1.Sum([]byte(strings.Join([]string{secret, "ck", method, u, body, strconv.FormatInt(ts, 10)}, "+")))
	req.Header.Set("X-Ovh-Application", "ak")
	req.Header.Set("X-Ovh-Consumer", "ck")
	req.Header.Set("X-Ovh-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Ovh-Signature", fmt.Sprintf("$1$%x", sum))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestSignatureAndRules(t *testing.T) {
	var published []string
	s := Start(Config{ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck", Zones: []string{"example.test"},
		Rules: []Rule{{Method: "GET", Path: "/domain/zone/"}, {Method: "GET", Path: "/domain/zone/example.test/*"}, {Method: "POST", Path: "/domain/zone/example.test/*"}},
		Publish: func(fqdn string, v []string) error {
			published = append(published, fqdn+"="+strings.Join(v, ","))
			return nil
		}})
	defer s.Close()
	now := time.Now().Unix()
	if code, _ := signed(t, s, "as", "GET", "/domain/zone/example.test/record?fieldType=TXT", "", now); code != 200 {
		t.Fatalf("a correctly signed call: %d", code)
	}
	body := `{"fieldType":"TXT","subDomain":"_acme-challenge","target":"v1","ttl":60}`
	if code, rec := signed(t, s, "as", "POST", "/domain/zone/example.test/record", body, now); code != 200 || rec["id"] == nil {
		t.Fatalf("create: %d %v", code, rec)
	}
	if code, _ := signed(t, s, "as", "POST", "/domain/zone/example.test/refresh", "", now); code != 200 || len(published) != 1 || published[0] != "_acme-challenge.example.test.=v1" {
		t.Fatalf("refresh: %d, published %q", code, published)
	}
	for name, tc := range map[string]struct {
		secret, method, path, body string
		ts                         int64
		status                     int
		code                       string
	}{
		"wrong secret":       {"as2", "GET", "/domain/zone/example.test/record", "", now, 400, "INVALID_SIGNATURE"},
		"old timestamp":      {"as", "GET", "/domain/zone/example.test/record", "", now - 3600, 400, "QUERY_TIME_OUT"},
		"not granted":        {"as", "DELETE", "/domain/zone/example.test/record/1", "", now, 403, "NOT_GRANTED_CALL"},
		"other zone":         {"as", "GET", "/domain/zone/other.test/record", "", now, 403, "NOT_GRANTED_CALL"},
		"exact rule only":    {"as", "GET", "/domain/zone", "", now, 403, "NOT_GRANTED_CALL"},
		"exact rule matches": {"as", "GET", "/domain/zone/", "", now, 200, ""},
	} {
		code, out := signed(t, s, tc.secret, tc.method, tc.path, tc.body, tc.ts)
		if code != tc.status || (tc.code != "" && out["errorCode"] != tc.code) {
			t.Errorf("%s: %d %v, want %d %s", name, code, out, tc.status, tc.code)
		}
	}
	if code, out := signedSent(t, s, "as", "POST", "/domain/zone/example.test/record", body, strings.Replace(body, "v1", "v2", 1), now); code != 400 || out["errorCode"] != "INVALID_SIGNATURE" {
		t.Errorf("a body other than the signed one: %d %v", code, out)
	}
	req, _ := http.NewRequest("GET", s.URL+"/domain/zone/example.test/record", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("unsigned call: %d", resp.StatusCode)
	}
	calls := s.Calls()
	if len(calls) != 11 || calls[len(calls)-1].ErrorCode != "INVALID_KEY" {
		t.Fatalf("calls %+v", calls)
	}
}
