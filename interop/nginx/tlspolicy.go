package nginx

import (
	"strings"

	httpedge "github.com/offedge/offedge/edge/http"
)

// The TLS directives of a server, mapped onto a site's tls: min_version,
// ciphers, curves and session_tickets. The edge only ever asks for more
// than its policy (TLS 1.2+, ECDHE with AEAD): what a config allows beyond
// that is not offered, and the report says so (approximate).

// tlsPolicy reads sc's ssl_protocols, ssl_ciphers, ssl_ecdh_curve,
// ssl_session_tickets and ssl_prefer_server_ciphers into t.
func (r *run) tlsPolicy(sc *scope, t *outTLS) {
	if d := sc.get("ssl_protocols"); d != nil {
		has := map[string]bool{}
		for _, a := range d.Args {
			has[a] = true
		}
		switch {
		case has["TLSv1.3"] && !has["TLSv1.2"] && !has["TLSv1.1"] && !has["TLSv1"]:
			t.MinVersion = "1.3"
			r.mark(d, Mapped, "tls: min_version: 1.3")
		case has["TLSv1.2"]:
			if has["TLSv1"] || has["TLSv1.1"] || has["SSLv3"] || has["SSLv2"] {
				r.mark(d, Approximate, "TLS 1.2 and 1.3 only: clients that can only speak TLS 1.0/1.1 (deprecated, RFC 8996) are refused")
			} else {
				r.mark(d, Mapped, "TLS 1.2 and 1.3, the edge's policy")
			}
		default:
			r.mark(d, Unsupported, "only TLS 1.0/1.1 allowed: the edge offers nothing older than TLS 1.2")
		}
	}
	if d := sc.get("ssl_ciphers"); d != nil {
		names, unknown, empty := opensslSuites(strings.Join(d.Args, ":"))
		switch {
		case len(unknown) > 0:
			r.mark(d, Approximate, "cipher words offedge does not know (%s): the edge's ECDHE AEAD suites are kept", strings.Join(unknown, ", "))
		case len(names) == 0:
			r.mark(d, Unsupported, "the list allows none of the edge's suites (ECDHE with AES-GCM or ChaCha20-Poly1305)")
		default:
			if len(names) < len(httpedge.TLS12SuiteNames()) {
				t.Ciphers = names
			}
			if len(empty) > 0 {
				r.mark(d, Approximate, "TLS 1.2 suites: %s; %s allow only suites the edge does not offer (finite-field DH, CBC, RSA key exchange)", strings.Join(names, ", "), strings.Join(empty, ", "))
			} else {
				r.mark(d, Mapped, "TLS 1.2 suites: %s", strings.Join(names, ", "))
			}
		}
	}
	if d := sc.get("ssl_ecdh_curve"); d != nil {
		var curves []string
		for _, a := range d.Args {
			for _, c := range strings.Split(a, ":") {
				if c != "" {
					curves = append(curves, c)
				}
			}
		}
		if len(curves) == 1 && curves[0] == "auto" {
			r.mark(d, Builtin, "the edge's key exchanges (X25519MLKEM768, X25519, P-256, P-384)")
		} else if bad := unknownCurves(curves); len(bad) > 0 {
			r.mark(d, Unsupported, "curves the edge does not offer: %s", strings.Join(bad, ", "))
		} else {
			t.Curves = curves
			r.mark(d, Mapped, "tls: curves")
		}
	}
	if d := sc.get("ssl_session_tickets"); d != nil {
		if d.Arg(0) == "off" {
			f := false
			t.SessionTickets = &f
		}
		r.mark(d, Mapped, "tls: session_tickets")
	}
	if d := sc.get("ssl_prefer_server_ciphers"); d != nil {
		r.mark(d, Builtin, "Go's TLS server picks the suite (AES-GCM or ChaCha20 by the client's hardware); there is no server order to prefer")
	}
}

// opensslCurves are the curve names the inventory's tls: curves takes.
var opensslCurves = map[string]bool{"X25519MLKEM768": true, "X25519": true, "x25519": true, "P-256": true, "prime256v1": true,
	"secp256r1": true, "P-384": true, "secp384r1": true, "P-521": true, "secp521r1": true}

func unknownCurves(cs []string) []string {
	var bad []string
	for _, c := range cs {
		if !opensslCurves[c] {
			bad = append(bad, c)
		}
	}
	return bad
}

// suiteAttrs are the OpenSSL cipher-string words each of the edge's TLS
// 1.2 suites answers to.
func suiteAttrs(iana string) map[string]bool {
	a := map[string]bool{"ALL": true, "DEFAULT": true, "HIGH": true, "ECDHE": true, "EECDH": true, "kECDHE": true,
		"kEECDH": true, "ECDH": true, "kECDH": true, "AEAD": true, "TLSv1.2": true}
	switch {
	case strings.Contains(iana, "_RSA_"):
		a["aRSA"] = true
	case strings.Contains(iana, "_ECDSA_"):
		a["aECDSA"], a["ECDSA"] = true, true
	}
	switch {
	case strings.Contains(iana, "AES_128_GCM"):
		a["AES"], a["AES128"], a["AESGCM"] = true, true, true
	case strings.Contains(iana, "AES_256_GCM"):
		a["AES"], a["AES256"], a["AESGCM"] = true, true, true
	case strings.Contains(iana, "CHACHA20"):
		a["CHACHA20"] = true
	}
	switch {
	case strings.HasSuffix(iana, "SHA256"):
		a["SHA256"] = true
	case strings.HasSuffix(iana, "SHA384"):
		a["SHA384"] = true
	}
	return a
}

// opensslName is OpenSSL's name of an edge suite
// (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 is ECDHE-RSA-AES128-GCM-SHA256).
func opensslName(iana string) string {
	auth := "RSA"
	if strings.Contains(iana, "_ECDSA_") {
		auth = "ECDSA"
	}
	switch {
	case strings.Contains(iana, "AES_128_GCM"):
		return "ECDHE-" + auth + "-AES128-GCM-SHA256"
	case strings.Contains(iana, "AES_256_GCM"):
		return "ECDHE-" + auth + "-AES256-GCM-SHA384"
	}
	return "ECDHE-" + auth + "-CHACHA20-POLY1305"
}

// knownWords are the OpenSSL words no edge suite answers to but that a
// cipher string may use: they select nothing here, which is not an error.
var knownWords = map[string]bool{"DHE": true, "EDH": true, "kDHE": true, "kEDH": true, "DH": true, "kRSA": true, "RSA": true,
	"aNULL": true, "eNULL": true, "NULL": true, "MD5": true, "RC4": true, "3DES": true, "DES": true, "EXPORT": true, "EXP": true,
	"LOW": true, "MEDIUM": true, "SHA1": true, "SHA": true, "PSK": true, "SRP": true, "CAMELLIA": true, "ARIA": true,
	"IDEA": true, "SEED": true, "DSS": true, "aDSS": true, "kPSK": true, "ADH": true, "AECDH": true, "COMPLEMENTOFDEFAULT": true}

// opensslSuites evaluates an OpenSSL cipher string over the edge's TLS 1.2
// suites (OpenSSL's words, + to join them, ! and - to remove; ordering
// words and @ directives change no membership, and Go orders suites by
// itself). It returns the IANA names admitted, in the edge's order, the
// words it does not know, and the added terms that admitted none of the
// edge's suites.
func opensslSuites(expr string) (names, unknown, empty []string) {
	suites := httpedge.TLS12SuiteNames()
	in, banned := map[string]bool{}, map[string]bool{}
	for _, term := range strings.FieldsFunc(expr, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		op := byte(0)
		if strings.ContainsRune("!-+", rune(term[0])) {
			op, term = term[0], term[1:]
		}
		if term == "" || strings.HasPrefix(term, "@") {
			continue
		}
		match := func(s string) (bool, bool) { // matches, known
			if term == opensslName(s) || term == s {
				return true, true
			}
			attrs := suiteAttrs(s)
			known := true
			all := true
			for _, w := range strings.Split(term, "+") {
				if !attrs[w] {
					all = false
					if !knownWords[w] && !isEdgeWord(w) && !looksLikeSuiteName(w) {
						known = false
					}
				}
			}
			return all, known
		}
		any := false
		for _, s := range suites {
			m, known := match(s)
			if !known {
				unknown = append(unknown, term)
				break
			}
			if !m {
				continue
			}
			any = true
			switch op {
			case '!':
				banned[s] = true
				delete(in, s)
			case '-':
				delete(in, s)
			case '+':
				// ordering only
			default:
				if !banned[s] {
					in[s] = true
				}
			}
		}
		if !any && op == 0 && !containsStr(unknown, term) {
			empty = append(empty, term)
		}
	}
	for _, s := range suites {
		if in[s] {
			names = append(names, s)
		}
	}
	return names, unknown, empty
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isEdgeWord reports whether w is a word some edge suite answers to.
func isEdgeWord(w string) bool {
	for _, s := range httpedge.TLS12SuiteNames() {
		if suiteAttrs(s)[w] {
			return true
		}
	}
	return false
}

// looksLikeSuiteName is an OpenSSL suite name (ECDHE-RSA-AES128-SHA,
// DHE-RSA-AES256-GCM-SHA384): known, though not an edge suite.
func looksLikeSuiteName(w string) bool {
	return strings.Count(w, "-") >= 2 || strings.HasPrefix(w, "TLS_")
}
