#!/usr/bin/env bash
# bench/http/count.sh [BIN...] — counts, not times, what one request costs
# the system under test: nginx (configured as bench/http.sh configures it)
# and each binary given (default: one built from this tree), in turn.
# SCENARIO (proxy): proxy, a proxied 1 KiB answer (upstream keep-alive,
# against one backend nginx `return 200` with 1 KiB on CPU 0); static4k
# or static100k, a file from disk (nginx with sendfile, tcp_nopush, etag).
# The binaries are edgebench harnesses (-mode proxy or static), or with
# RUN=1 offedge binaries run as `offedge run --node edge` from a one-node
# inventory with a proxy site and a static site (bench/http.sh MODE=run).
#
# Per request, from perf software events and syscall tracepoints over one
# bounded wrk run (wrk -t1 -c$CONNS -d$DUR on CPU 0; the SUT on CPU 1,
# GOMAXPROCS=1, nginx with one worker): context switches (voluntary and
# involuntary, all threads), syscalls by name, the kernel's TCP segments
# (nstat, both ends, loopback). Timings are not printed: the machine is
# shared. Run inside a private network namespace (/work/tools/iso, or
# unshare -n with lo up). Environment: CONNS (64), DUR (3s), ROUNDS (1:
# each SUT once per round, interleaved), PERFREC=DIR: also `perf record -g`
# each SUT's run into DIR (kernel and user stacks), CALLGRIND=1: user
# instructions per request instead (valgrind callgrind,
# GODEBUG=asyncpreemptoff=1, nginx with master_process off; counting on
# after 2 s of wrk -c4, then 5 s of wrk -t1 -c4), the outputs kept in
# CGDIR (default: removed with the work directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CONNS=${CONNS:-64}
DUR=${DUR:-3s}
ROUNDS=${ROUNDS:-1}
SCENARIO=${SCENARIO:-proxy}
RUN=${RUN:-}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
case $SCENARIO in
proxy) path=/ ;;
static4k) path=/4k.bin ;;
static100k) path=/100k.bin ;;
*) echo "count.sh: SCENARIO must be proxy, static4k or static100k" >&2; exit 2 ;;
esac
. "$here/../lib.sh"
bench_init offedge-count
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
	if [ -n "$RUN" ]; then
		(cd "$repo" && go build -o "$work/offedge" ./cmd/offedge)
		bins=("$work/offedge")
	else
		(cd "$repo" && go build -o "$work/edgebench" ./bench/http/edgebench)
		bins=("$work/edgebench")
	fi
fi
mkdir -p "$work/logs" "$work/www"
head -c 4096 /dev/urandom >"$work/www/4k.bin"
head -c 102400 /dev/urandom >"$work/www/100k.bin"
chmod -R a+rX "$work/www"
body=$(head -c 768 /dev/urandom | base64 -w0 | head -c 1024)
BPORT=$(freeport) NPORT=$(freeport)
# Addresses: with RUN=1 node edge is 127.0.0.61 and node app (the
# backend) 127.0.0.62, as the inventory says; otherwise all 127.0.0.1.
BHOST=127.0.0.1 OHOST=127.0.0.1
[ -n "$RUN" ] && BHOST=127.0.0.62 OHOST=127.0.0.61
cat >"$work/backend.conf" <<CONF
worker_processes 1;
pid $work/backend.pid;
error_log $work/logs/backend.err warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 10000000;
	server { listen $BHOST:$BPORT; location / { return 200 "$body"; } }
}
CONF
if [ "$SCENARIO" = proxy ]; then
	server="location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
			proxy_set_header Host \$host;
			proxy_set_header X-Real-IP \$remote_addr;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
			proxy_set_header X-Forwarded-Host \$host;
		}"
else
	server="root $work/www; etag on; sendfile on; tcp_nopush on; include /etc/nginx/mime.types;"
fi
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/nginx.err warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 10000000;
	keepalive_timeout 75s;
	upstream backend { server $BHOST:$BPORT; keepalive $CONNS; keepalive_requests 10000000; }
	server {
		listen 127.0.0.1:$NPORT;
		$server
	}
}
CONF
taskset -c 0 "$NGINX" -p "$work" -c "$work/backend.conf" -g 'daemon off;' 2>>"$work/logs/backend.err" &
pids+=($!)
taskset -c 1 "$NGINX" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' 2>>"$work/logs/nginx.err" &
nmaster=$!
pids+=($nmaster)
waitport "$BPORT" "$BHOST"
waitport "$NPORT"
nworker=$(nginx_worker "$nmaster")

# sutargs BIN PORT: the command line of an edge binary serving the
# scenario on PORT (with RUN=1, its inventory written first).
sutargs() {
	local bin=$1 port=$2
	if [ -z "$RUN" ]; then
		if [ "$SCENARIO" = proxy ]; then
			args=("$bin" -mode proxy -listen "127.0.0.1:$port" -upstream "127.0.0.1:$BPORT" -keepalive "$CONNS")
		else
			args=("$bin" -mode static -listen "127.0.0.1:$port" -root "$work/www")
		fi
		return
	fi
	local inv="$work/inv.$port" route="{path: /, upstream: web}"
	[ "$SCENARIO" = proxy ] || route="{path: /, static: {root: $work/www}}"
	mkdir -p "$inv"
	cat >"$inv/inventory.yaml" <<YAML
providers: [{name: local}]
networks: [{name: lan, kind: private, prefixes: [127.0.0.0/8]}]
servers:
  - {name: edge, provider: local, mode: bare-metal, addresses: [{network: lan, ip: $OHOST}]}
  - {name: app, provider: local, mode: bare-metal, addresses: [{network: lan, ip: $BHOST}]}
services:
  - {name: web, node: app, port: $BPORT, protocol: http, bind: [lan], allow: [edge]}
upstreams: [{name: web, servers: [{service: web}], keepalive: $CONNS}]
sites:
  - name: bench
    node: edge
    default: true
    hosts: [bench.example.org]
    listen: [{network: lan, port: $port}]
    routes: [$route]
YAML
	"$bin" check --inventory "$inv" >"$work/logs/check.out" 2>&1 || { cat "$work/logs/check.out" >&2; exit 1; }
	args=("$bin" run --node edge --inventory "$inv")
}

sys=(read write readv writev recvfrom sendto recvmsg sendmsg sendfile64 epoll_wait epoll_pwait epoll_ctl futex nanosleep getpid tgkill rt_sigreturn setsockopt getsockopt openat newfstatat newfstat statx close lseek fcntl)
events=task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter
for s in "${sys[@]}"; do events+=",syscalls:sys_enter_$s"; done

# count NAME PID URL: one measured run, per-request figures on one line.
count() {
	local name=$1 pid=$2 url=$3 out reqs
	taskset -c 0 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null # warm-up
	nstat -n
	perf stat -x, -e "$events" -e syscalls:sys_exit_read --filter 'ret == -11' -e syscalls:sys_exit_recvfrom --filter 'ret == -11' -p "$pid" -o "$work/perf.$name" &
	local ps=$!
	local rec=""
	if [ -n "${PERFREC:-}" ]; then
		mkdir -p "$PERFREC"
		perf record -q -g -p "$pid" -o "$PERFREC/$name.data" >/dev/null 2>&1 &
		rec=$!
	fi
	sleep 0.2
	out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"$DUR" "$url")
	kill -INT $ps
	[ -n "$rec" ] && kill -INT $rec
	wait $ps 2>/dev/null || true
	[ -n "$rec" ] && { wait $rec 2>/dev/null || true; }
	local segs
	segs=$(nstat -z TcpOutSegs | awk '$1 == "TcpOutSegs" {print $2}')
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	grep -h "Non-2xx\|Socket errors" <<<"$out" >&2 || true
	awk -F, -v n="$reqs" -v name="$name" -v segs="$segs" '
		$3 == "context-switches" {cs = $1} $3 == "cpu-migrations" {mig = $1}
		$3 == "raw_syscalls:sys_enter" {tot = $1}
		$3 ~ /^syscalls:sys_exit_/ && $1 > 0 {s = $3; sub(/syscalls:sys_exit_/, "", s); by = by sprintf(" %s-EAGAIN=%.2f", s, $1 / n)}
		$3 ~ /^syscalls:sys_enter_/ && $1 > 0 {s = $3; sub(/syscalls:sys_enter_/, "", s); by = by sprintf(" %s=%.2f", s, $1 / n)}
		END {printf "%-28s reqs=%d ctxsw=%.3f migr=%.4f syscalls=%.2f segs=%.2f |%s\n", name, n, cs / n, mig / n, tot / n, segs / n, by}
	' "$work/perf.$name"
}

# callgrind NAME HOST CMD...: user instructions per request of CMD, serving on HOST:$CPORT.
callgrind() {
	local name=$1 host=$2 out reqs tot vp
	shift 2
	local dir=${CGDIR:-$work/cg}
	mkdir -p "$dir"
	GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 taskset -c 1 valgrind --tool=callgrind --instr-atstart=no -q \
		--callgrind-out-file="$dir/$name.%p" "$@" 2>>"$work/logs/cg.err" &
	vp=$!
	pids+=($vp)
	for _ in $(seq 1 300); do
		(exec 3<>"/dev/tcp/$host/$CPORT") 2>/dev/null && break
		sleep 0.1
	done
	taskset -c 0 wrk -t1 -c4 -d2s "http://$host:$CPORT$path" >/dev/null
	callgrind_control -i on "$vp" >/dev/null 2>&1
	out=$(taskset -c 0 wrk -t1 -c4 -d5s "http://$host:$CPORT$path")
	callgrind_control -d "$vp" >/dev/null 2>&1
	sleep 1
	kill "$vp"
	wait "$vp" 2>/dev/null || true
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	tot=$(cat "$dir/$name".*.1 | awk '/^(summary|totals):/ {print $2}' | sort -n | tail -1)
	echo "$name: $reqs requests, $(awk -v t="$tot" -v n="$reqs" 'BEGIN {printf "%.0f", t / n}') user instructions per request"
}

if [ -n "${CALLGRIND:-}" ]; then
	for r in $(seq 1 "$ROUNDS"); do
		CPORT=$(freeport)
		sed -e "s/^worker_processes 1;/worker_processes 1; master_process off; daemon off;/" \
			-e "s/listen 127.0.0.1:$NPORT;/listen 127.0.0.1:$CPORT;/" -e "s|pid $work/nginx.pid|pid $work/cg-nginx.pid|" \
			"$work/nginx.conf" >"$work/cg-nginx.conf"
		callgrind "nginx-r$r" 127.0.0.1 "$NGINX" -p "$work" -c "$work/cg-nginx.conf"
		i=0
		for b in "${bins[@]}"; do
			i=$((i + 1))
			CPORT=$(freeport)
			sutargs "$b" "$CPORT"
			callgrind "edge$i-r$r" "$OHOST" "${args[@]}"
		done
	done
	exit 0
fi

for r in $(seq 1 "$ROUNDS"); do
	count "nginx" "$nworker" "http://127.0.0.1:$NPORT$path"
	i=0
	for b in "${bins[@]}"; do
		i=$((i + 1))
		EPORT=$(freeport)
		sutargs "$b" "$EPORT"
		GOMAXPROCS=1 taskset -c 1 "${args[@]}" 2>>"$work/logs/edge.err" &
		epid=$!
		pids+=($epid)
		waitport "$EPORT" "$OHOST"
		count "edge$i($(basename "$(dirname "$b")"))" "$epid" "http://$OHOST:$EPORT$path"
		kill "$epid"
		wait "$epid" 2>/dev/null || true
	done
done
