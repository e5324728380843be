#!/bin/sh
# offedge prerm: stop the service before its binary goes away (not on upgrade).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop offedge >/dev/null 2>&1 || true
	systemctl disable offedge >/dev/null 2>&1 || true
fi
exit 0
