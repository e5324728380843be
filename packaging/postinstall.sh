#!/bin/sh
# offedge postinst: the service user, the directories the unit expects,
# and systemd told about the unit. The service is not started: it needs an
# inventory first (see /usr/share/doc/offedge/README.md, "First deployment").
set -e
if ! getent passwd offedge >/dev/null; then
	adduser --system --group --home /var/lib/offedge --no-create-home \
		--gecos "offedge network edge" offedge >/dev/null
fi
install -d -m 0750 -o root -g offedge /etc/offedge
install -d -m 0750 -o offedge -g offedge /etc/offedge/psk
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	# Upgrades restart a running service; a new install leaves it stopped.
	if systemctl is-active --quiet offedge; then
		systemctl try-restart offedge || true
	fi
fi
exit 0
