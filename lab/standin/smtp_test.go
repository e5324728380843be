package standin

import (
	"fmt"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func TestSMTPConversations(t *testing.T) {
	_, addr := start(t, "smtp", Info{Service: "pmg", Node: "ovh1"}, Options{})
	tests := []struct {
		name  string
		steps [][2]string // line sent, reply expected (prefix); "" sends nothing
	}{
		{"greeting and quit", [][2]string{{"QUIT", "221 2.0.0 Bye"}}},
		{"ehlo", [][2]string{{"EHLO client.example", "250-ovh1"}, {"", "250-PIPELINING"}, {"", "250-SIZE 10485760"}, {"", "250 8BITMIME"}}},
		{"helo", [][2]string{{"HELO client.example", "250 ovh1"}}},
		{"helo without name", [][2]string{{"HELO", "501 "}}},
		{"mail before helo", [][2]string{{"MAIL FROM:<a@b>", "503 "}}},
		{"rcpt before mail", [][2]string{{"HELO c", "250"}, {"RCPT TO:<a@b>", "503 "}}},
		{"data before rcpt", [][2]string{{"HELO c", "250"}, {"MAIL FROM:<a@b>", "250"}, {"DATA", "503 "}}},
		{"data before mail", [][2]string{{"HELO c", "250"}, {"DATA", "503 "}}},
		{"nested mail", [][2]string{{"HELO c", "250"}, {"MAIL FROM:<a@b>", "250"}, {"MAIL FROM:<a@b>", "503 "}}},
		{"bad mail syntax", [][2]string{{"HELO c", "250"}, {"MAIL a@b", "501 "}, {"MAIL FROM:a@b", "501 "}}},
		{"empty reverse path", [][2]string{{"HELO c", "250"}, {"MAIL FROM:<>", "250"}}},
		{"empty recipient", [][2]string{{"HELO c", "250"}, {"MAIL FROM:<>", "250"}, {"RCPT TO:<>", "501 "}}},
		{"size too big", [][2]string{{"EHLO c", "250-"}, {"", "250-"}, {"", "250-"}, {"", "250 "}, {"MAIL FROM:<a@b> SIZE=20000000", "552 "}}},
		{"size fits", [][2]string{{"EHLO c", "250-"}, {"", "250-"}, {"", "250-"}, {"", "250 "}, {"MAIL FROM:<a@b> SIZE=2000 BODY=8BITMIME", "250 "}}},
		{"rset", [][2]string{{"HELO c", "250"}, {"MAIL FROM:<a@b>", "250"}, {"RSET", "250 "}, {"RCPT TO:<a@b>", "503 "}}},
		{"noop vrfy", [][2]string{{"NOOP", "250 "}, {"VRFY postmaster", "252 "}}},
		{"unknown", [][2]string{{"STARTTLS", "502 "}, {"AUTH PLAIN x", "502 "}, {"\x00\xff garbage", "502 "}}},
		{"lowercase", [][2]string{{"helo c", "250"}, {"mail from:<a@b>", "250"}, {"rcpt to:<c@d>", "250"}}},
		{"line too long", [][2]string{{"HELO " + strings.Repeat("x", 2000), "500 5.5.2"}, {"NOOP", "250"}}},
		{"data with arg", [][2]string{{"HELO c", "250"}, {"DATA now", "501 "}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLineConn(t, addr)
			if got := l.line(); got != "220 ovh1 ESMTP offedge stand-in for pmg" {
				t.Fatalf("greeting %q", got)
			}
			for _, st := range tt.steps {
				if st[0] != "" {
					l.send(st[0] + "\r\n")
				}
				if st[1] == "" {
					continue
				}
				if got := l.line(); !strings.HasPrefix(got, st[1]) {
					t.Fatalf("after %q: %q, want %q...", st[0], got, st[1])
				}
			}
		})
	}
}

func TestSMTPData(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	srv, addr := start(t, "smtp", Info{Service: "pmg", Node: "ovh1"}, Options{Now: func() time.Time { return now }})
	smtpSrv := srv.(*SMTPServer)

	// The standard library's client: pipelined EHLO, MAIL, RCPT, DATA.
	body := "Subject: test\r\n\r\nhello\r\n.leading dot\r\n..two dots\r\n.\r\n"
	if err := smtp.SendMail(addr, nil, "off@openfoodfacts.org", []string{"a@example.org", "b@example.org"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	msgs := smtpSrv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "off@openfoodfacts.org" || strings.Join(m.To, ",") != "a@example.org,b@example.org" || m.Helo != "localhost" ||
		!m.Received.Equal(now) || !strings.HasPrefix(m.Remote, "127.0.0.1:") {
		t.Errorf("message %+v", m)
	}
	if want := "Subject: test\r\n\r\nhello\r\n.leading dot\r\n..two dots\r\n.\r\n"; string(m.Data) != want {
		t.Errorf("data %q, want %q", m.Data, want)
	}

	t.Run("raw pipelined session", func(t *testing.T) {
		l := newLineConn(t, addr)
		l.line()
		l.send("HELO c\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\n")
		for _, want := range []string{"250", "250", "250", "354"} {
			if got := l.line(); !strings.HasPrefix(got, want) {
				t.Fatalf("%q, want %s", got, want)
			}
		}
		l.send("line1\n..stuffed\r\n.\r\n")
		if got := l.line(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
			t.Fatalf("%q", got)
		}
		msgs := smtpSrv.Messages()
		if got := string(msgs[len(msgs)-1].Data); got != "line1\r\n.stuffed\r\n" {
			t.Errorf("data %q", got)
		}
		// The transaction is reset after DATA.
		l.send("RCPT TO:<z@w>\r\n")
		if got := l.line(); !strings.HasPrefix(got, "503") {
			t.Errorf("RCPT after DATA: %q", got)
		}
	})
	t.Run("message too big", func(t *testing.T) {
		l := newLineConn(t, addr)
		l.line()
		l.send("HELO c\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\n")
		for range 4 {
			l.line()
		}
		before := len(smtpSrv.Messages())
		line := strings.Repeat("x", 998) + "\r\n"
		go func() {
			for range MaxSMTPMessage/len(line) + 10 {
				if _, err := l.c.Write([]byte(line)); err != nil {
					return
				}
			}
			l.c.Write([]byte(".\r\n"))
		}()
		if got := l.line(); !strings.HasPrefix(got, "552 ") {
			t.Fatalf("%q", got)
		}
		if len(smtpSrv.Messages()) != before {
			t.Error("oversized message recorded")
		}
		l.send("NOOP\r\n")
		if got := l.line(); !strings.HasPrefix(got, "250") {
			t.Errorf("session after 552: %q", got)
		}
	})
	t.Run("data line too long", func(t *testing.T) {
		l := newLineConn(t, addr)
		l.line()
		l.send("HELO c\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\n")
		for range 4 {
			l.line()
		}
		l.send("ok\r\n" + strings.Repeat("y", 5000) + "\r\nafter\r\n.\r\n")
		if got := l.line(); !strings.HasPrefix(got, "500 ") {
			t.Fatalf("%q", got)
		}
	})
	t.Run("too many errors", func(t *testing.T) {
		l := newLineConn(t, addr)
		l.line()
		l.send(strings.Repeat("BOGUS\r\n", maxSMTPErrors))
		for range maxSMTPErrors {
			l.line()
		}
		if got := l.line(); !strings.HasPrefix(got, "421 ") {
			t.Fatalf("%q", got)
		}
		l.expectClosed()
	})
	t.Run("kept messages are bounded", func(t *testing.T) {
		l := newLineConn(t, addr)
		l.line()
		var b strings.Builder
		for i := range MaxSMTPKept + 5 {
			fmt.Fprintf(&b, "HELO c\r\nMAIL FROM:<n%d@y>\r\nRCPT TO:<z@w>\r\nDATA\r\nmsg %d\r\n.\r\n", i, i)
		}
		go l.c.Write([]byte(b.String()))
		for range (MaxSMTPKept + 5) * 5 {
			l.line()
		}
		msgs := smtpSrv.Messages()
		if len(msgs) != MaxSMTPKept || msgs[len(msgs)-1].From != fmt.Sprintf("n%d@y", MaxSMTPKept+4) {
			t.Errorf("%d messages, last from %s", len(msgs), msgs[len(msgs)-1].From)
		}
	})
}

func TestSMTPIdle(t *testing.T) {
	_, addr := start(t, "smtp", Info{Service: "pmg", Node: "ovh1"}, Options{IdleTimeout: 50 * time.Millisecond})
	l := newLineConn(t, addr)
	l.line()
	if got := l.line(); !strings.HasPrefix(got, "421 4.4.2") {
		t.Errorf("%q", got)
	}
	l.expectClosed()
}

func TestTCPEcho(t *testing.T) {
	_, addr := start(t, "nfs", Info{Service: "nfs-images", Node: "off3"}, Options{})
	l := newLineConn(t, addr)
	if got := l.line(); got != "offedge stand-in for nfs-images on off3 (nfs)" {
		t.Fatalf("banner %q", got)
	}
	for _, s := range []string{"hello", "", "\x00\xffbinary", strings.Repeat("z", MaxTCPLine-2)} {
		l.send(s + "\r\n")
		if got := l.line(); got != s {
			t.Errorf("echo %.40q, want %.40q", got, s)
		}
	}
	l.send(strings.Repeat("z", MaxTCPLine+10))
	if got := l.line(); !strings.HasPrefix(got, "error: line longer than") {
		t.Errorf("%q", got)
	}
	l.expectClosed()

	_, addr = start(t, "tcp", Info{Service: "x", Node: "y"}, Options{IdleTimeout: 50 * time.Millisecond})
	l = newLineConn(t, addr)
	if got := l.line(); got != "offedge stand-in for x on y (tcp)" {
		t.Fatalf("banner %q", got)
	}
	l.expectClosed()
}
