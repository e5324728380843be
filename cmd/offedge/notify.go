package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier speaks systemd's notify protocol (sd_notify(3)) for a
// Type=notify unit: READY=1 once every listener is open, RELOADING=1 and
// READY=1 around a reload, STOPPING=1 when draining, a STATUS= line an
// operator sees in `systemctl status`, and WATCHDOG=1 pings while the
// runtime answers. Without NOTIFY_SOCKET (not under systemd) every call is
// a no-op.
type notifier struct {
	log *slog.Logger
}

func (n notifier) send(states ...string) {
	msg := ""
	for i, s := range states {
		if i > 0 {
			msg += "\n"
		}
		msg += s
	}
	if _, err := daemon.SdNotify(false, msg); err != nil {
		n.log.Warn("systemd notify failed", "err", err)
	}
}

func (n notifier) ready(status string) { n.send(daemon.SdNotifyReady, "STATUS="+status) }

// reloading says a reload has begun; systemd (253 and later) wants the
// monotonic time with it.
func (n notifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Sec*1e6 + ts.Nsec/1e3
	n.send(daemon.SdNotifyReloading, fmt.Sprintf("MONOTONIC_USEC=%d", usec))
}

func (n notifier) stopping() { n.send(daemon.SdNotifyStopping, "STATUS=draining") }

// watchdog pings systemd at half the WatchdogSec interval for as long as
// alive reports the runtime answering, so a wedged process is restarted
// rather than left holding its ports. It returns at once when the unit has
// no watchdog.
func (n notifier) watchdog(ctx context.Context, alive func() bool) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog settings unreadable", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive() {
				n.send(daemon.SdNotifyWatchdog)
			}
		}
	}
}
