#!/usr/bin/env bash
# bench/http.sh — offedge's HTTP edge against Debian's nginx, side by side.
#
# Scenarios (wrk, keep-alive, $CONNS connections, $DUR per run):
#   proxy 1 KiB    reverse proxy to a backend nginx with upstream keep-alive
#   static 4 KiB   file from disk (sendfile)
#   static 100 KiB file from disk (sendfile)
# plus $IDLE idle keep-alive connections: resident memory per connection.
#
# Pinning (docs: DESIGN.md): the system under test on CPU 1 (taskset -c 1,
# GOMAXPROCS=1, nginx worker_processes 1); wrk and the backend on CPU 0.
# Runs interleave A B A B ..., the median of $RUNS is reported, with the
# CPU time the system under test used per 1,000 requests (/proc/PID/stat)
# and wrk's p99 latency. Access logs are off for both.
#
# Two ways to run offedge (MODE):
#   MODE=lib  (default) the edgebench harness: one httpedge.Server per
#             scenario, built from Go (add EDGEFLAGS=-nethttp1 for net/http's
#             HTTP/1 server loop)
#   MODE=run  the product's own path: `offedge run --node edge` from a
#             generated inventory (a proxy site and a static site on node
#             edge, the backend as a service of node app), one process
#
# Beside each ratio the table shows the load CPU's busy share during the
# runs (from /proc/stat): near 100 % the load side, not the system under
# test, bounds req/s, and only the CPU ratio compares the two.
#
# Usage: bench/http.sh            (MODE=lib DUR=5s RUNS=3 CONNS=64 IDLE=10000)
#        MODE=run bench/http.sh   (IDLE=2000: the plan's max_conns of a site,
#                                 4,096, would hold more in the backlog)
#        ONLY="proxy_1k" IDLE=0 MODE=run bench/http.sh   (one scenario, no idle test:
#                                 A/B of one change, or a profile beside it)
set -euo pipefail

MODE=${MODE:-lib}
EDGEFLAGS=${EDGEFLAGS:-}
DUR=${DUR:-5s}
RUNS=${RUNS:-3}
CONNS=${CONNS:-64}
# Run mode serves the site with the plan's max_conns (4,096): connections
# beyond it wait in the backlog, and idleconns would time out on them.
if [ "$MODE" = run ]; then IDLE=${IDLE:-2000}; else IDLE=${IDLE:-10000}; fi
ONLY=${ONLY:-} # scenarios to run, by name (default all)
# Upstream keep-alive pool of both proxies; as large as the client side so
# that neither churns upstream connections (the reference uses 16).
UPKEEP=${UPKEEP:-$CONNS}
SUT_CPU=${SUT_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
for bin in wrk nginx taskset go; do
	command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || { echo "bench/http.sh: $bin is required" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

. "$here/lib.sh"
bench_init offedge-bench-http

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" -lt $((IDLE + 1000)) ]; then
	echo "note: ulimit -n is $nofile; idle connections lowered" >&2
	IDLE=$((nofile - 1000))
fi

case "$MODE" in
lib | run) ;;
*) echo "bench/http.sh: MODE must be lib or run" >&2; exit 2 ;;
esac
echo "building edgebench, offedge and idleconns..."
(cd "$repo" && go build -o "$work/edgebench" ./bench/http/edgebench && go build -o "$work/offedge" ./cmd/offedge && go build -o "$work/idleconns" ./bench/http/idleconns)


mkdir -p "$work/www" "$work/logs"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$work/www/1k"
head -c 4096 /dev/urandom >"$work/www/4k.bin"
head -c 102400 /dev/urandom >"$work/www/100k.bin"
chmod -R a+rX "$work/www"

BPORT=$(freeport) NPROXY=$(freeport) NSTATIC=$(freeport) OPROXY=$(freeport) OSTATIC=$(freeport)
# Addresses: in run mode node edge is 127.0.0.61 and node app (the
# backend) 127.0.0.62, as the inventory says; in lib mode all 127.0.0.1.
BHOST=127.0.0.1 OHOST=127.0.0.1
if [ "$MODE" = run ]; then BHOST=127.0.0.62 OHOST=127.0.0.61; fi

# Backend: nginx on the load CPU, serving the 1 KiB body.
cat >"$work/backend.conf" <<CONF
worker_processes 1;
pid $work/backend.pid;
error_log $work/logs/backend.err warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 10000000;
	server { listen $BHOST:$BPORT; root $work/www; }
}
CONF
# System under test: nginx configured as offedge is (upstream keep-alive,
# forwarded headers, sendfile, no access log).
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $work/nginx.pid;
error_log $work/logs/nginx.err warn;
events { worker_connections $((nofile - 100)); }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 10000000;
	keepalive_timeout 75s;
	include /etc/nginx/mime.types;
	upstream backend { server $BHOST:$BPORT; keepalive $UPKEEP; keepalive_requests 10000000; }
	server {
		listen 127.0.0.1:$NPROXY;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Real-IP \$remote_addr;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
			proxy_set_header X-Forwarded-Host \$host;
		}
	}
	server { listen 127.0.0.1:$NSTATIC; root $work/www; etag on; }
}
CONF

taskset -c "$LOAD_CPU" "$NGINX" -p "$work" -c "$work/backend.conf" -g 'daemon off;' 2>>"$work/logs/backend.err" &
pids+=($!)
taskset -c "$SUT_CPU" "$NGINX" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' 2>>"$work/logs/nginx.err" &
nginx_master=$!
pids+=($nginx_master)
if [ "$MODE" = lib ]; then
	# shellcheck disable=SC2086 # EDGEFLAGS is a list of flags
	GOMAXPROCS=1 taskset -c "$SUT_CPU" "$work/edgebench" -mode proxy -listen "127.0.0.1:$OPROXY" -upstream "127.0.0.1:$BPORT" -keepalive "$UPKEEP" $EDGEFLAGS 2>>"$work/logs/edge.err" &
	edge_proxy=$!
	pids+=($edge_proxy)
	# shellcheck disable=SC2086
	GOMAXPROCS=1 taskset -c "$SUT_CPU" "$work/edgebench" -mode static -listen "127.0.0.1:$OSTATIC" -root "$work/www" $EDGEFLAGS 2>>"$work/logs/edge.err" &
	edge_static=$!
	pids+=($edge_static)
else
	mkdir -p "$work/inv"
	cat >"$work/inv/inventory.yaml" <<YAML
providers: [{name: local}]
networks: [{name: lan, kind: private, prefixes: [127.0.0.0/8]}]
servers:
  - {name: edge, provider: local, mode: bare-metal, addresses: [{network: lan, ip: $OHOST}]}
  - {name: app, provider: local, mode: bare-metal, addresses: [{network: lan, ip: $BHOST}]}
services:
  - {name: web, node: app, port: $BPORT, protocol: http, bind: [lan], allow: [edge]}
upstreams: [{name: web, servers: [{service: web}], keepalive: $UPKEEP}]
sites:
  - name: proxy
    node: edge
    default: true
    hosts: [proxy.example.org]
    listen: [{network: lan, port: $OPROXY}]
    routes: [{path: /, upstream: web}]
  - name: static
    node: edge
    default: true
    hosts: [static.example.org]
    listen: [{network: lan, port: $OSTATIC}]
    routes: [{path: /, static: {root: $work/www}}]
YAML
	"$work/offedge" check --inventory "$work/inv" >"$work/logs/check.out" 2>&1 || { cat "$work/logs/check.out" >&2; exit 1; }
	GOMAXPROCS=1 taskset -c "$SUT_CPU" "$work/offedge" run --node edge --inventory "$work/inv" 2>>"$work/logs/edge.err" &
	edge_proxy=$!
	edge_static=$edge_proxy
	pids+=($edge_proxy)
fi
waitport "$BPORT" "$BHOST"
for p in $NPROXY $NSTATIC; do waitport "$p"; done
for p in $OPROXY $OSTATIC; do waitport "$p" "$OHOST"; done
nginx_worker=$(nginx_worker "$nginx_master") || exit 1


all=("proxy_1k|$NPROXY|$OPROXY|/1k|$edge_proxy" "static_4k|$NSTATIC|$OSTATIC|/4k.bin|$edge_static" "static_100k|$NSTATIC|$OSTATIC|/100k.bin|$edge_static")
scenarios=()
for s in "${all[@]}"; do
	if [ -z "$ONLY" ] || [[ " $ONLY " == *" ${s%%|*} "* ]]; then scenarios+=("$s"); fi
done
[ ${#scenarios[@]} -gt 0 ] || { echo "bench/http.sh: ONLY=\"$ONLY\" names no scenario (proxy_1k static_4k static_100k)" >&2; exit 2; }
ourl() { echo "http://$OHOST:$1$2"; }

echo "warming up..."
for s in "${scenarios[@]}"; do
	IFS='|' read -r name np op path epid <<<"$s"
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$np$path" >/dev/null
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "$(ourl "$op" "$path")" >/dev/null
done

for s in "${scenarios[@]}"; do
	IFS='|' read -r name np op path epid <<<"$s"
	echo "running $name: $RUNS x (nginx, offedge), $DUR each..."
	for i in $(seq 1 "$RUNS"); do
		run "nginx_$name" "$nginx_worker" "http://127.0.0.1:$np$path"
		run "offedge_$name" "$epid" "$(ourl "$op" "$path")"
	done
done

# Zero-copy check: offedge's static server must call sendfile.
sendfile_calls="n/a"
if command -v strace >/dev/null && command -v curl >/dev/null; then
	strace -f -qq -e trace=sendfile -o "$work/strace.out" -p "$edge_static" &
	st=$!
	sleep 0.5 # give strace time to attach (not synchronisation of the system under test)
	for _ in 1 2 3; do curl -s -o /dev/null "$(ourl "$OSTATIC" /100k.bin)"; done
	kill "$st" 2>/dev/null || true
	wait "$st" 2>/dev/null || true
	sendfile_calls=$(grep -c sendfile "$work/strace.out" || true)
fi

# Idle keep-alive connections: resident memory per connection.
idle() {
	local pid=$1 addr=$2 path=$3 before after fifo
	before=$(rss_kb "$pid")
	fifo="$work/idle.fifo"
	rm -f "$fifo" && mkfifo "$fifo"
	taskset -c "$LOAD_CPU" "$work/idleconns" -addr "$addr" -n "$IDLE" -path "$path" -hold 120s <"$fifo" >"$work/idle.out" &
	local ic=$!
	exec 4>"$fifo"
	for _ in $(seq 1 1200); do grep -q ready "$work/idle.out" 2>/dev/null && break; sleep 0.05; done
	grep -q ready "$work/idle.out" || { echo "idleconns did not get ready" >&2; exec 4>&-; wait "$ic"; return 1; }
	after=$(rss_kb "$pid")
	exec 4>&-
	wait "$ic" || true
	echo $(((after - before) * 1024 / IDLE))
}
idle_nginx=- idle_edge=-
if [ "$IDLE" -gt 0 ]; then
	echo "holding $IDLE idle keep-alive connections on each..."
	idle_nginx=$(idle "$nginx_worker" "127.0.0.1:$NPROXY" /1k)
	idle_edge=$(idle "$edge_proxy" "$OHOST:$OPROXY" /1k)
fi


echo
echo "offedge HTTP edge ($MODE mode${EDGEFLAGS:+ $EDGEFLAGS}) vs nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')  (SUT on CPU $SUT_CPU, load on CPU $LOAD_CPU, $CONNS conns, median of $RUNS x $DUR)"
printf "%-12s | %12s %12s %6s | %9s %9s %6s | %9s %9s %6s | %10s\n" scenario "nginx req/s" "offedge" ratio "nginx p99" offedge ratio "nginx cpu" offedge ratio "load cpu %"
printf "%-12s | %12s %12s %6s | %9s %9s %6s | %9s %9s %6s | %10s\n" "" "" "" "" "ms" "ms" "" "ms/1k" "ms/1k" "" "ngx / off"
for s in "${scenarios[@]}"; do
	IFS='|' read -r name _ _ _ _ <<<"$s"
	nr=$(col "nginx_$name" 1) er=$(col "offedge_$name" 1)
	np=$(col "nginx_$name" 2) ep=$(col "offedge_$name" 2)
	nc=$(col "nginx_$name" 3) ec=$(col "offedge_$name" 3)
	nl=$(col "nginx_$name" 4) el=$(col "offedge_$name" 4)
	printf "%-12s | %12.0f %12.0f %6s | %9.2f %9.2f %6s | %9.1f %9.1f %6s | %4.0f / %3.0f\n" "$name" "$nr" "$er" "$(ratio "$er" "$nr")" "$np" "$ep" "$(ratio "$ep" "$np")" "$nc" "$ec" "$(ratio "$ec" "$nc")" "$nl" "$el"
done
echo
printf "idle keep-alive connections (%d): nginx %s B/conn, offedge %s B/conn, ratio %s\n" "$IDLE" "$idle_nginx" "$idle_edge" "$(ratio "$idle_edge" "$idle_nginx")"
echo "sendfile calls by offedge for 3 x 100 KiB static responses: $sendfile_calls"
echo "targets (issue 17): CPU ratio <= 1.20 proxy and static 4 KiB, <= 1.00 static 100 KiB; p99 ratio <= 1.50;"
echo "  req/s ratio >= 0.90 where the load CPU is not saturated; idle <= 4096 B/conn"
