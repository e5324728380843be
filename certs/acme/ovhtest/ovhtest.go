// Package ovhtest is a stand-in for the part of the OVH API that DNS-01
// needs, for tests: it checks every call's signature as OVH does (an
// unknown application key, an unknown consumer key, a wrong secret or a
// call the consumer key was not granted are refused with OVH's error
// codes), keeps the zones' records, publishes them when a zone is
// refreshed (to a callback: the tests feed pebble-challtestsrv, which
// pebble resolves against), and records every call. It also answers the
// SOA questions that find a name's zone, as OVH's nameservers would,
// relaying every other question to the DNS server the records are
// published to.
//
// The calls: GET /auth/time, GET /domain/zone (the account's zones), GET
// and POST /domain/zone/{zone}/record (the list takes fieldType and
// subDomain), GET and DELETE /domain/zone/{zone}/record/{id}, POST
// /domain/zone/{zone}/refresh.
//
// It is not OVH: what it checks is the request signing of go-ovh (the
// OVH SDK lego's provider uses) and the calls lego and offedge make.
package ovhtest

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Config describes the account the server stands for.
type Config struct {
	ApplicationKey, ApplicationSecret, ConsumerKey string
	// Zones are the DNS zones of the account ("example.test").
	Zones []string
	// Rules, when set, are the consumer key's access rules: a call that no
	// rule grants is refused with NOT_GRANTED_CALL. Empty grants all.
	Rules []Rule
	// Publish is called by a zone refresh for every name whose TXT values
	// changed since the last refresh, with all its values now (none when
	// its last record went).
	Publish func(fqdn string, values []string) error
	// MaxSkew is how far a call's timestamp may be from the server's clock
	// (default 5 minutes).
	MaxSkew time.Duration
}

// Rule is an OVH access rule: a method and a path where * matches any
// characters ("/domain/zone/example.test/*").
type Rule struct{ Method, Path string }

// Record is a zone record as the API shows it.
type Record struct {
	ID        int64  `json:"id"`
	Zone      string `json:"zone"`
	FieldType string `json:"fieldType"`
	SubDomain string `json:"subDomain"`
	Target    string `json:"target"`
	TTL       int    `json:"ttl"`
}

// Call is one API call received.
type Call struct {
	Method, Path string // Path includes the query, without /1.0
	Status       int
	ErrorCode    string // OVH's errorCode of a refused call
}

// Server is a running stand-in.
type Server struct {
	// URL is the API endpoint, for the credentials' dns_ovh_endpoint.
	URL string

	cfg  Config
	http *httptest.Server
	dns  *dns.Server

	mu        sync.Mutex
	next      int64
	records   map[string][]Record            // zone -> records
	published map[string]map[string][]string // zone -> fqdn -> TXT values
	calls     []Call
}

// maxRecords bounds a zone (OVH's own limit is higher; a test never
// needs more).
const maxRecords = 10000

// Start starts the API on a loopback port.
func Start(cfg Config) *Server {
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = 5 * time.Minute
	}
	s := &Server{cfg: cfg, next: 1000, records: map[string][]Record{}, published: map[string]map[string][]string{}}
	for _, z := range cfg.Zones {
		z = strings.ToLower(strings.TrimSuffix(z, "."))
		s.records[z] = nil
		s.published[z] = map[string][]string{}
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.http.URL + "/1.0"
	return s
}

// Close stops the API and the DNS server.
func (s *Server) Close() {
	s.http.Close()
	if s.dns != nil {
		s.dns.Shutdown()
	}
}

// Calls returns the calls received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Records returns the records of a zone (published or not).
func (s *Server) Records(zone string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records[zone])
}

// Seed adds a TXT record to a zone and publishes it, as one an earlier
// order left behind.
func (s *Server) Seed(zone, subDomain, target string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[zone]; !ok {
		return 0, fmt.Errorf("no zone %s", zone)
	}
	s.next++
	s.records[zone] = append(s.records[zone], Record{ID: s.next, Zone: zone, FieldType: "TXT", SubDomain: subDomain, Target: target, TTL: 60})
	return s.next, s.refresh(zone)
}

type apiError struct {
	status int
	code   string
	msg    string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.RequestURI(), "/1.0")
	call := Call{Method: r.Method, Path: path, Status: http.StatusOK}
	res, aerr := s.handle(r)
	if aerr != nil {
		call.Status, call.ErrorCode = aerr.status, aerr.code
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	n := len(s.calls)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Ovh-QueryID", "EU.ovhtest."+strconv.Itoa(n))
	if aerr != nil {
		w.WriteHeader(aerr.status)
		body := map[string]string{"message": aerr.msg}
		if aerr.code != "" {
			body["errorCode"] = aerr.code
			body["httpCode"] = fmt.Sprintf("%d %s", aerr.status, http.StatusText(aerr.status))
		}
		json.NewEncoder(w).Encode(body)
		return
	}
	json.NewEncoder(w).Encode(res)
}

func (s *Server) handle(r *http.Request) (any, *apiError) {
	if !strings.HasPrefix(r.URL.Path, "/1.0/") {
		return nil, &apiError{404, "", "Got an invalid (or empty) URL"}
	}
	path := strings.TrimPrefix(r.URL.Path, "/1.0")
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil || len(body) > 64<<10 {
		return nil, &apiError{400, "", "Invalid body"}
	}
	if r.Method == http.MethodGet && path == "/auth/time" {
		return time.Now().Unix(), nil
	}
	if aerr := s.authenticate(r, body); aerr != nil {
		return nil, aerr
	}
	if !s.granted(r.Method, path) {
		return nil, &apiError{403, "NOT_GRANTED_CALL", "This call has not been granted"}
	}
	if r.Method == http.MethodGet && (path == "/domain/zone" || path == "/domain/zone/") {
		s.mu.Lock()
		defer s.mu.Unlock()
		zones := []string{}
		for z := range s.records {
			zones = append(zones, z)
		}
		slices.Sort(zones)
		return zones, nil
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 4 || parts[0] != "domain" || parts[1] != "zone" {
		return nil, &apiError{404, "", "Got an invalid (or empty) URL"}
	}
	zone := strings.ToLower(parts[2])
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[zone]; !ok {
		return nil, &apiError{404, "", "This service does not exist"}
	}
	switch {
	case len(parts) == 4 && parts[3] == "refresh" && r.Method == http.MethodPost:
		if err := s.refresh(zone); err != nil {
			return nil, &apiError{500, "", "Internal server error: " + err.Error()}
		}
		return nil, nil
	case len(parts) == 4 && parts[3] == "record" && r.Method == http.MethodGet:
		q := r.URL.Query()
		ids := []int64{}
		for _, rec := range s.records[zone] {
			if ft := q.Get("fieldType"); ft != "" && ft != rec.FieldType {
				continue
			}
			if q.Has("subDomain") && q.Get("subDomain") != rec.SubDomain {
				continue
			}
			ids = append(ids, rec.ID)
		}
		return ids, nil
	case len(parts) == 4 && parts[3] == "record" && r.Method == http.MethodPost:
		var rec Record
		if err := json.Unmarshal(body, &rec); err != nil || rec.FieldType == "" || rec.Target == "" {
			return nil, &apiError{400, "", "Invalid body: a record needs fieldType and target"}
		}
		if len(s.records[zone]) >= maxRecords {
			return nil, &apiError{403, "", "Too many records in the zone"}
		}
		s.next++
		rec.ID, rec.Zone = s.next, zone
		if rec.TTL == 0 {
			rec.TTL = 3600
		}
		s.records[zone] = append(s.records[zone], rec)
		return rec, nil
	case len(parts) == 5 && parts[3] == "record":
		id, err := strconv.ParseInt(parts[4], 10, 64)
		i := slices.IndexFunc(s.records[zone], func(rec Record) bool { return rec.ID == id })
		if err != nil || i < 0 {
			return nil, &apiError{404, "", fmt.Sprintf("The requested object (id = %s) does not exist", parts[4])}
		}
		switch r.Method {
		case http.MethodGet:
			return s.records[zone][i], nil
		case http.MethodDelete:
			s.records[zone] = slices.Delete(s.records[zone], i, i+1)
			return nil, nil
		}
	}
	return nil, &apiError{405, "", "Method not allowed"}
}

// authenticate checks the headers go-ovh sends, as OVH does: the
// application key, the consumer key, the timestamp and the signature
// "$1$" + hex(sha1(secret+ck+method+url+body+timestamp), joined by "+").
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	if r.Header.Get("X-Ovh-Application") != s.cfg.ApplicationKey {
		return &apiError{403, "INVALID_KEY", "This application key is invalid"}
	}
	ck := r.Header.Get("X-Ovh-Consumer")
	if ck != s.cfg.ConsumerKey {
		return &apiError{403, "INVALID_CREDENTIAL", "This credential does not exist"}
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-Ovh-Timestamp"), 10, 64)
	if err != nil {
		return &apiError{400, "INVALID_SIGNATURE", "Invalid signature"}
	}
	if d := time.Since(time.Unix(ts, 0)); d > s.cfg.MaxSkew || d < -s.cfg.MaxSkew {
		return &apiError{400, "QUERY_TIME_OUT", "Query out of time"}
	}
	url := "http://" + r.Host + r.URL.RequestURI()
	sum := sha1.Sum([]byte(strings.Join([]string{s.cfg.ApplicationSecret, ck, r.Method, url, string(body), strconv.FormatInt(ts, 10)}, "+")))
	want := "$1$" + hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Ovh-Signature")), []byte(want)) != 1 {
		return &apiError{400, "INVALID_SIGNATURE", "Invalid signature"}
	}
	return nil
}

func (s *Server) granted(method, path string) bool {
	if len(s.cfg.Rules) == 0 {
		return true
	}
	for _, rule := range s.cfg.Rules {
		if rule.Method == method && match(rule.Path, path) {
			return true
		}
	}
	return false
}

// match reports whether path matches pattern, where * matches any run of
// characters.
func match(pattern, path string) bool {
	before, after, ok := strings.Cut(pattern, "*")
	if !ok {
		return pattern == path
	}
	if !strings.HasPrefix(path, before) {
		return false
	}
	rest := path[len(before):]
	for i := 0; i <= len(rest); i++ {
		if match(after, rest[i:]) {
			return true
		}
	}
	return false
}

// refresh publishes the zone's TXT records: Publish is told of every name
// whose values changed.
func (s *Server) refresh(zone string) error {
	now := map[string][]string{}
	for _, rec := range s.records[zone] {
		if rec.FieldType != "TXT" {
			continue
		}
		fqdn := zone + "."
		if rec.SubDomain != "" {
			fqdn = rec.SubDomain + "." + fqdn
		}
		now[fqdn] = append(now[fqdn], rec.Target)
	}
	old := s.published[zone]
	var errs []error
	for fqdn, vals := range now {
		if !slices.Equal(old[fqdn], vals) && s.cfg.Publish != nil {
			errs = append(errs, s.cfg.Publish(fqdn, vals))
		}
	}
	for fqdn := range old {
		if _, ok := now[fqdn]; !ok && s.cfg.Publish != nil {
			errs = append(errs, s.cfg.Publish(fqdn, nil))
		}
	}
	s.published[zone] = now
	return errors.Join(errs...)
}

// ServeDNS answers DNS on a loopback UDP port (returned as "host:port"):
// SOA questions for names in the account's zones as their authoritative
// servers would (the zone's SOA at its apex, an empty answer below it),
// and every other question relayed to upstream (refused when upstream is
// empty).
func (s *Server) ServeDNS(upstream string) (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.dns = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		s.answer(w, req, upstream)
	})}
	started := make(chan struct{})
	s.dns.NotifyStartedFunc = func() { close(started) }
	go s.dns.ActivateAndServe()
	<-started
	return pc.LocalAddr().String(), nil
}

func (s *Server) answer(w dns.ResponseWriter, req *dns.Msg, upstream string) {
	if len(req.Question) == 1 && req.Question[0].Qtype == dns.TypeSOA {
		name := strings.ToLower(req.Question[0].Name)
		for _, z := range s.cfg.Zones {
			apex := dns.Fqdn(strings.ToLower(z))
			if !dns.IsSubDomain(apex, name) {
				continue
			}
			m := new(dns.Msg)
			m.SetReply(req)
			m.Authoritative = true
			soa := &dns.SOA{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
				Ns: "ns1.ovhtest.", Mbox: "tech.ovh.net.", Serial: 1, Refresh: 86400, Retry: 3600, Expire: 3600000, Minttl: 60}
			if name == apex {
				m.Answer = append(m.Answer, soa)
			} else {
				m.Ns = append(m.Ns, soa)
			}
			w.WriteMsg(m)
			return
		}
	}
	if upstream == "" {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, _, err := (&dns.Client{Net: "udp"}).ExchangeContext(ctx, req, upstream)
	if err != nil {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		w.WriteMsg(m)
		return
	}
	w.WriteMsg(resp)
}
