#!/usr/bin/env bash
# bench/http/profile.sh — profile offedge's HTTP edge on one scenario.
#
# Starts a backend nginx (load CPU) and edgebench (SUT CPU, GOMAXPROCS=1)
# with -cpuprofile and -memprofile, loads it with wrk for $DUR, and prints
# req/s, p99, the SUT's CPU time per 1,000 requests and the top of both
# profiles. The profiles stay in $OUT (default /tmp/offedge-prof) for
# `go tool pprof`.
#
# Usage: bench/http/profile.sh proxy|static4k|static100k
#        (DUR=5s CONNS=64 RUNS=1 OUT=/tmp/offedge-prof MEMRATE=4096;
#         NOPROF=1: no profiles; EDGEBENCH=path: a prebuilt edgebench)
set -euo pipefail

SCEN=${1:-proxy}
DUR=${DUR:-5s}
CONNS=${CONNS:-64}
RUNS=${RUNS:-1}
OUT=${OUT:-/tmp/offedge-prof}
MEMRATE=${MEMRATE:-4096}
SUT_CPU=${SUT_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
NOPROF=${NOPROF:-}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
mkdir -p "$OUT"
. "$here/../lib.sh"
bench_init offedge-prof-run

if [ -n "${EDGEBENCH:-}" ]; then
	cp "$EDGEBENCH" "$work/edgebench" # a prebuilt binary (A/B against another tree)
else
	(cd "$repo" && go build -o "$work/edgebench" ./bench/http/edgebench)
fi
mkdir -p "$work/www" "$work/logs"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$work/www/1k"
head -c 4096 /dev/urandom >"$work/www/4k.bin"
head -c 102400 /dev/urandom >"$work/www/100k.bin"
chmod -R a+rX "$work/www"
BPORT=$(freeport) EPORT=$(freeport)
cat >"$work/backend.conf" <<CONF
worker_processes 1;
pid $work/backend.pid;
error_log $work/logs/backend.err warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 10000000;
	server { listen 127.0.0.1:$BPORT; root $work/www; }
}
CONF
taskset -c "$LOAD_CPU" "$NGINX" -p "$work" -c "$work/backend.conf" -g 'daemon off;' 2>>"$work/logs/backend.err" &
pids+=($!)

prof=()
[ -z "$NOPROF" ] && prof=(-cpuprofile "$OUT/$SCEN.cpu" -memprofile "$OUT/$SCEN.mem" -memprofilerate "$MEMRATE")
case $SCEN in
proxy) args=(-mode proxy -upstream "127.0.0.1:$BPORT" -keepalive "$CONNS") path=/1k ;;
static4k) args=(-mode static -root "$work/www") path=/4k.bin ;;
static100k) args=(-mode static -root "$work/www") path=/100k.bin ;;
*) echo "scenario: proxy | static4k | static100k" >&2; exit 2 ;;
esac
GOMAXPROCS=1 taskset -c "$SUT_CPU" "$work/edgebench" -listen "127.0.0.1:$EPORT" "${args[@]}" "${prof[@]}" 2>>"$work/logs/edge.err" &
edge=$!
pids+=($edge)
waitport "$BPORT"
waitport "$EPORT"
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$EPORT$path" >/dev/null
hz=$(getconf CLK_TCK)
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$RUNS"); do
	t0=$(cputicks "$edge")
	out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DUR" --latency "http://127.0.0.1:$EPORT$path")
	t1=$(cputicks "$edge")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	grep -h "Non-2xx\|Socket errors" <<<"$out" >&2 || true
	echo "$SCEN: $rps req/s, p99 $p99, cpu $(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.1f", d * 1000 / hz / (n / 1000)}') ms/1k req"
done
kill -TERM "$edge"
wait "$edge" 2>/dev/null || true
if [ -z "$NOPROF" ]; then
	echo "--- cpu ($OUT/$SCEN.cpu)"
	(cd "$repo" && go tool pprof -top -nodecount=35 "$work/edgebench" "$OUT/$SCEN.cpu" 2>/dev/null | sed -n '1,45p')
	echo "--- alloc_objects ($OUT/$SCEN.mem)"
	(cd "$repo" && go tool pprof -top -sample_index=alloc_objects -nodecount=25 "$work/edgebench" "$OUT/$SCEN.mem" 2>/dev/null | sed -n '1,35p')
	cp "$work/edgebench" "$OUT/edgebench"
fi
