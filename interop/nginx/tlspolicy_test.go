package nginx

import (
	"slices"
	"testing"
)

func TestOpenSSLSuites(t *testing.T) {
	for _, tc := range []struct {
		expr           string
		names, unknown []string
		empty          []string
	}{
		// The reference proxies' list: ECDHE with AES-GCM from the first
		// term; the DHE terms admit nothing the edge offers; AES256+EECDH
		// adds no new suite (its CBC suites are not offered either).
		{"EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH",
			[]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
			nil, []string{"EDH+AESGCM", "AES256+EDH"}},
		// Mozilla's intermediate list, OpenSSL names with DHE at the end.
		{"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256",
			[]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
			nil, []string{"DHE-RSA-AES128-GCM-SHA256"}},
		{"HIGH:!aNULL:!MD5:!aECDSA",
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
			nil, nil},
		{"FROBNICATE:HIGH", []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
			[]string{"FROBNICATE"}, nil},
	} {
		names, unknown, empty := opensslSuites(tc.expr)
		if !slices.Equal(names, tc.names) || !slices.Equal(unknown, tc.unknown) || !slices.Equal(empty, tc.empty) {
			t.Errorf("%s:\n names %v\n want  %v\n unknown %v want %v\n empty %v want %v", tc.expr, names, tc.names, unknown, tc.unknown, empty, tc.empty)
		}
	}
}

// The reference proxies' TLS lines become the site's tls: policy; what the
// edge does not offer (TLS 1.0/1.1, DHE suites) is reported approximate.
func TestImportTLSPolicy(t *testing.T) {
	ds, err := Parse("tls.conf", []byte(`server {
    listen 443 ssl;
    server_name www.example.org;
    ssl_certificate /etc/letsencrypt/live/example.org/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/example.org/privkey.pem;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve secp384r1;
    ssl_session_tickets off;
    ssl_ciphers "EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH";
    location / { return 200 "hi"; }
}
server {
    listen 443 ssl;
    server_name modern.example.org;
    ssl_certificate /etc/letsencrypt/live/modern.example.org/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/modern.example.org/privkey.pem;
    ssl_protocols TLSv1.3;
    location / { return 200 "hi"; }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, out, rep := importChecked(t, ds, nil, newTestNet(ds, false), t.TempDir())
	s := m.Site("www.example.org")
	if s == nil || s.TLS == nil || !slices.Equal(s.TLS.Curves, []string{"secp384r1"}) || s.TLS.SessionTickets == nil || *s.TLS.SessionTickets ||
		len(s.TLS.Ciphers) != 4 || s.TLS.MinVersion != "" {
		t.Fatalf("www tls:\n%s", out)
	}
	if s := m.Site("modern.example.org"); s == nil || s.TLS == nil || s.TLS.MinVersion != "1.3" {
		t.Fatalf("modern tls:\n%s", out)
	}
	if rep.Count(Approximate) != 2 || rep.Count(Unsupported) != 0 {
		t.Fatalf("report:\n%s", rep)
	}
}
