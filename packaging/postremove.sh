#!/bin/sh
# offedge postrm: systemd forgets the unit; purge leaves the inventory and
# secrets under /etc/offedge in place (they are the operator's) but removes
# the state directory.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/offedge /var/log/offedge
fi
exit 0
