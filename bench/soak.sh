#!/bin/bash
# bench/soak.sh — the lab under mixed load for DURATION (default 10m) while
# servers go down and come back every INTERVAL (default 20s); reports
# probes sent, failures where `offedge impact` predicts them and any that
# it does not, and memory at start and end. Exit status 1 when a failure
# was not predicted. Not run by CI: the lead runs it on a quiet machine.
#
#   bench/soak.sh                    # 10 minutes
#   DURATION=90s bench/soak.sh       # a short proof
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/soak -duration "${DURATION:-10m}" -interval "${INTERVAL:-20s}" ${SOAK_FLAGS:-}
