#!/usr/bin/env bash
# bench/cache.sh — a proxy cache hit: offedge's against nginx's proxy_cache,
# side by side, through `offedge run` (the product's own path).
#
# Scenarios (wrk, keep-alive, $CONNS connections, $DUR per run), each on
# nginx and on offedge, both in front of one backend nginx:
#   hit_1k     GET /api/1k, answered from the micro-cache (valid any 5m, the
#              reference's key $host$request_uri$cookie_user)
#   proxy_1k   GET /1k on an uncached route of the same site: the proxied
#              request a hit saves (a hit should cost less CPU than it)
#
# Pinning, interleaving, medians and the CPU time per 1,000 requests as in
# bench/http.sh (lib.sh). The backend's request count is read before and
# after the hit runs: every hit run must leave it unchanged (the cache, not
# the backend, answered). Access logs off for both.
#
# Usage: bench/cache.sh            (DUR=5s RUNS=3 CONNS=64)
#        DUR=1s RUNS=1 bench/cache.sh   (a quick check that it works)
set -euo pipefail

DUR=${DUR:-5s}
RUNS=${RUNS:-3}
CONNS=${CONNS:-64}
UPKEEP=${UPKEEP:-$CONNS}
SUT_CPU=${SUT_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
for bin in wrk nginx taskset go curl; do
	command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || { echo "bench/cache.sh: $bin is required" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

. "$here/lib.sh"
bench_init offedge-bench-cache

echo "building offedge..."
(cd "$repo" && go build -o "$work/offedge" ./cmd/offedge)

mkdir -p "$work/www/api" "$work/logs" "$work/nginx-cache"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$work/www/1k"
cp "$work/www/1k" "$work/www/api/1k"
chmod -R a+rX "$work/www"
chmod 777 "$work/nginx-cache"

# Node edge is 127.0.0.61 and node app (the backend) 127.0.0.62, as the
# generated inventory says; nginx listens on 127.0.0.1.
BHOST=127.0.0.62 OHOST=127.0.0.61
BPORT=$(freeport) NPORT=$(freeport) OPORT=$(freeport)

# Backend: nginx on the load CPU; its access log counts what reaches it.
cat >"$work/backend.conf" <<CONF
worker_processes 1;
pid $work/backend.pid;
error_log $work/logs/backend.err warn;
events { worker_connections 4096; }
http {
	access_log $work/logs/backend.access;
	keepalive_requests 10000000;
	server { listen $BHOST:$BPORT; root $work/www; }
}
CONF
# nginx as the reference proxy configures its micro-cache (in memory:
# /dev/shm there, a tmpfs-backed work directory here when /tmp is one).
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/nginx.err warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 10000000;
	keepalive_timeout 75s;
	proxy_cache_path $work/nginx-cache levels=1:2 keys_zone=mycache:10m max_size=100m inactive=10m use_temp_path=off;
	upstream backend { server $BHOST:$BPORT; keepalive $UPKEEP; keepalive_requests 10000000; }
	server {
		listen 127.0.0.1:$NPORT;
		proxy_http_version 1.1;
		proxy_set_header Connection "";
		proxy_set_header Host \$host;
		proxy_set_header X-Real-IP \$remote_addr;
		proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
		location /api/ {
			proxy_cache mycache;
			proxy_cache_key \$host\$request_uri\$cookie_user;
			proxy_cache_valid any 5m;
			proxy_cache_lock on;
			add_header X-Cache-Status \$upstream_cache_status;
			proxy_pass http://backend;
		}
		location / { proxy_pass http://backend; }
	}
}
CONF

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
  - name: po
    node: edge
    default: true
    hosts: [po.example.org]
    listen: [{network: lan, port: $OPORT}]
    routes:
      - {path: /, upstream: web}
      - path: /api/
        upstream: web
        cache: {cache: micro, key: [host, uri, "cookie:user"], valid: {any: 5m}}
protection:
  - node: edge
    caches: [{name: micro, max_size: 100m}]
YAML
"$work/offedge" check --inventory "$work/inv" >"$work/logs/check.out" 2>&1 || { cat "$work/logs/check.out" >&2; exit 1; }

taskset -c "$LOAD_CPU" "$NGINX" -p "$work" -c "$work/backend.conf" -g 'daemon off;' 2>>"$work/logs/backend.err" &
pids+=($!)
taskset -c "$SUT_CPU" "$NGINX" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' 2>>"$work/logs/nginx.err" &
nginx_master=$!
pids+=($nginx_master)
GOMAXPROCS=1 taskset -c "$SUT_CPU" "$work/offedge" run --node edge --inventory "$work/inv" 2>>"$work/logs/edge.err" &
edge=$!
pids+=($edge)
waitport "$BPORT" "$BHOST"
waitport "$NPORT"
waitport "$OPORT" "$OHOST"
nginx_worker=$(nginx_worker "$nginx_master") || exit 1

# Fill both caches, and check that they answer from the cache.
for url in "http://127.0.0.1:$NPORT/api/1k" "http://$OHOST:$OPORT/api/1k"; do
	curl -s -o /dev/null "$url"
	st=$(curl -s -o /dev/null -D - "$url" | awk 'tolower($1) == "x-cache-status:" {print $2}' | tr -d '\r')
	[ "$st" = HIT ] || { echo "bench/cache.sh: $url answers X-Cache-Status: '$st', not HIT" >&2; exit 1; }
done
backend_requests() { wc -l <"$work/logs/backend.access"; }

echo "warming up..."
for url in "http://127.0.0.1:$NPORT/api/1k" "http://$OHOST:$OPORT/api/1k" "http://127.0.0.1:$NPORT/1k" "http://$OHOST:$OPORT/1k"; do
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null
done

# settled_requests reads the backend's count once it stops moving: requests
# a proxy run left in flight when wrk stopped are logged when they finish,
# and must not be counted against the hit run that follows.
settled_requests() {
	local a b
	a=$(backend_requests)
	while sleep 0.2; b=$(backend_requests); [ "$a" != "$b" ]; do a=$b; done
	echo "$b"
}
nginx_reached=0 offedge_reached=0
for i in $(seq 1 "$RUNS"); do
	echo "run $i of $RUNS: hit and proxy, nginx then offedge, $DUR each..."
	b0=$(settled_requests)
	run nginx_hit_1k "$nginx_worker" "http://127.0.0.1:$NPORT/api/1k"
	b1=$(settled_requests)
	run offedge_hit_1k "$edge" "http://$OHOST:$OPORT/api/1k"
	b2=$(settled_requests)
	nginx_reached=$((nginx_reached + b1 - b0))
	offedge_reached=$((offedge_reached + b2 - b1))
	run nginx_proxy_1k "$nginx_worker" "http://127.0.0.1:$NPORT/1k"
	run offedge_proxy_1k "$edge" "http://$OHOST:$OPORT/1k"
done

echo
echo "proxy cache hit: offedge vs nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')  (SUT on CPU $SUT_CPU, load on CPU $LOAD_CPU, $CONNS conns, median of $RUNS x $DUR)"
printf "%-10s | %12s %12s %6s | %9s %9s %6s | %9s %9s %6s | %10s\n" scenario "nginx req/s" "offedge" ratio "nginx p99" offedge ratio "nginx cpu" offedge ratio "load cpu %"
printf "%-10s | %12s %12s %6s | %9s %9s %6s | %9s %9s %6s | %10s\n" "" "" "" "" "ms" "ms" "" "ms/1k" "ms/1k" "" "ngx / off"
for name in hit_1k proxy_1k; do
	nr=$(col "nginx_$name" 1) er=$(col "offedge_$name" 1)
	np=$(col "nginx_$name" 2) ep=$(col "offedge_$name" 2)
	nc=$(col "nginx_$name" 3) ec=$(col "offedge_$name" 3)
	nl=$(col "nginx_$name" 4) el=$(col "offedge_$name" 4)
	printf "%-10s | %12.0f %12.0f %6s | %9.2f %9.2f %6s | %9.1f %9.1f %6s | %4.0f / %3.0f\n" "$name" "$nr" "$er" "$(ratio "$er" "$nr")" "$np" "$ep" "$(ratio "$ep" "$np")" "$nc" "$ec" "$(ratio "$ec" "$nc")" "$nl" "$el"
done
echo
echo "backend requests during the hit runs: nginx $nginx_reached, offedge $offedge_reached (0: every hit came from the cache)"
printf "offedge CPU per 1k requests, hit / proxied: %s (below 1: a hit costs less than the request it saves)\n" "$(ratio "$(col offedge_hit_1k 3)" "$(col offedge_proxy_1k 3)")"
printf "nginx CPU per 1k requests, hit / proxied: %s\n" "$(ratio "$(col nginx_hit_1k 3)" "$(col nginx_proxy_1k 3)")"
