package httpedge

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// logSink is one open access log file, shared by every site (and every
// chain across Updates) that names its path. It is buffered, flushed every
// interval, and reopened when the path no longer names the open file
// (logrotate's rename-and-create), so no signal is needed after rotation.
type logSink struct {
	path  string
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	ino   uint64
	stop  chan struct{}
	once  sync.Once
	drops uint64
}

type accessLogger struct {
	sink   *logSink
	format string
}

func newAccessLogger(cfg SiteLog, res Resources) (*accessLogger, error) {
	switch cfg.Format {
	case "combined", "combined_upstream", "combined_proxy", "json":
	default:
		return nil, fmt.Errorf("format %q: use combined, combined_upstream, combined_proxy or json", cfg.Format)
	}
	f, ok := res.AccessLogs[cfg.File]
	if !ok {
		return nil, fmt.Errorf("file %q is not among the node's access logs", cfg.File)
	}
	return &accessLogger{sink: f.s, format: cfg.Format}, nil
}

func (l *logSink) open(buf int) error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.w, l.ino = f, bufio.NewWriterSize(f, buf), inodeOf(fi)
	return nil
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func (l *logSink) flushLoop(every time.Duration, buf int) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if l.w != nil {
			l.w.Flush()
			if fi, err := os.Stat(l.path); err != nil || inodeOf(fi) != l.ino {
				l.f.Close()
				l.f, l.w = nil, nil
				_ = l.open(buf) // on failure lines are dropped until it works
			}
		} else {
			_ = l.open(buf)
		}
		l.mu.Unlock()
	}
}

func (l *logSink) write(b []byte) {
	l.mu.Lock()
	if l.w == nil {
		l.drops++
	} else {
		l.w.Write(b)
	}
	l.mu.Unlock()
}

func (l *logSink) close() {
	l.once.Do(func() { close(l.stop) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		l.w.Flush()
		l.f.Close()
		l.f, l.w = nil, nil
	}
}

var logBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// log writes one line: nginx "combined", the reference's
// "combined_upstream" (c=cache u=upstream t=seconds), its reverse proxies'
// "combined_proxy" ("X-Forwarded-For" cache [upstream seconds]) or one JSON object.
func (a *accessLogger) log(r *http.Request, w *recorder, start, end time.Time) {
	bp := logBufPool.Get().(*[]byte)
	b := (*bp)[:0]
	status := w.loggedStatus()
	ip := clientIP(r)
	user, _, _ := r.BasicAuth()
	if a.format == "json" {
		rec := struct {
			Time     string  `json:"time"`
			Remote   string  `json:"remote_addr"`
			User     string  `json:"remote_user,omitempty"`
			Host     string  `json:"host"`
			Method   string  `json:"method"`
			URI      string  `json:"uri"`
			Proto    string  `json:"protocol"`
			Status   int     `json:"status"`
			Sent     int     `json:"status_sent,omitempty"` // the status line written, when the response did not complete
			Bytes    int64   `json:"body_bytes_sent"`
			Referer  string  `json:"referer,omitempty"`
			UA       string  `json:"user_agent,omitempty"`
			Site     string  `json:"site,omitempty"`
			Upstream string  `json:"upstream,omitempty"`
			Cache    string  `json:"cache,omitempty"`
			Seconds  float64 `json:"request_time"`
		}{end.Format(time.RFC3339Nano), ip, user, r.Host, r.Method, r.RequestURI, r.Proto, status, 0, w.bytes,
			r.Referer(), r.UserAgent(), "", w.upstream, w.cache, end.Sub(start).Seconds()}
		if w.site != nil {
			rec.Site = w.site.name
		}
		if w.outcome != 0 {
			rec.Sent = w.status
		}
		j, _ := json.Marshal(rec)
		b = append(append(b, j...), '\n')
	} else {
		user = orDash(user)
		b = append(b, ip...)
		b = append(b, " - "...)
		b = append(b, escapeLog(user)...)
		b = append(b, " ["...)
		b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, "] \""...)
		b = append(b, escapeLog(r.Method+" "+r.RequestURI+" "+r.Proto)...)
		b = append(b, "\" "...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, w.bytes, 10)
		b = append(b, " \""...)
		b = append(b, escapeLog(orDash(r.Referer()))...)
		b = append(b, "\" \""...)
		b = append(b, escapeLog(orDash(r.UserAgent()))...)
		b = append(b, '"')
		if a.format == "combined_upstream" {
			b = append(b, " c="...)
			b = append(b, orDash(w.cache)...)
			b = append(b, " u="...)
			b = append(b, orDash(w.upstream)...)
			b = append(b, " t="...)
			b = strconv.AppendFloat(b, end.Sub(start).Seconds(), 'f', 3, 64)
		}
		if a.format == "combined_proxy" {
			// '"$http_x_forwarded_for" $upstream_cache_status [$upstream_response_time]'
			b = append(b, " \""...)
			b = append(b, escapeLog(orDash(strings.Join(r.Header["X-Forwarded-For"], ", ")))...)
			b = append(b, "\" "...)
			b = append(b, orDash(w.cache)...)
			b = append(b, " ["...)
			if w.upTime > 0 {
				b = strconv.AppendFloat(b, w.upTime.Seconds(), 'f', 3, 64)
			} else {
				b = append(b, '-')
			}
			b = append(b, ']')
		}
		b = append(b, '\n')
	}
	a.sink.write(b)
	*bp = b
	logBufPool.Put(bp)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// escapeLog escapes '"', '\' and non-printable bytes as nginx does (\xHH),
// so a hostile header cannot forge log lines.
func escapeLog(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// newErrorLogger is a site's error log: text records (slog's key=value
// lines) of at least level, written to a log file of the node.
func newErrorLogger(cfg SiteErrorLog, res Resources) (*slog.Logger, error) {
	var lv slog.Level
	switch cfg.Level {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("level %q: use debug, info, warn or error", cfg.Level)
	}
	f, ok := res.AccessLogs[cfg.File]
	if !ok {
		return nil, fmt.Errorf("file %q is not among the node's log files", cfg.File)
	}
	return slog.New(slog.NewTextHandler(sinkWriter{f.s}, &slog.HandlerOptions{Level: lv})), nil
}

// sinkWriter writes whole records (slog's handlers write one a call).
type sinkWriter struct{ s *logSink }

func (w sinkWriter) Write(p []byte) (int, error) {
	w.s.write(p)
	return len(p), nil
}
