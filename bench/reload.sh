#!/usr/bin/env bash
# bench/reload.sh — 20 reloads of a running `offedge run` during a 30 s wrk
# run: not one request may fail. The upstream is Debian's nginx serving a
# 1 KiB file; each reload flips a response header, so every reload really
# changes the site's configuration.
#
# Usage: bench/reload.sh   (DUR=30 RELOADS=20 CONNS=32)
set -euo pipefail
DUR=${DUR:-30}
RELOADS=${RELOADS:-20}
CONNS=${CONNS:-32}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
for bin in wrk go python3; do
	command -v "$bin" >/dev/null || { echo "bench/reload.sh: $bin is required" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench/reload.sh: nginx is required" >&2; exit 1; }

. "$here/lib.sh"
bench_init offedge-bench-reload

(cd "$repo" && go build -o "$work/offedge" ./cmd/offedge)
app_port=$(freeport)
site_port=$(freeport)
admin_port=$(freeport)

mkdir -p "$work/www" "$work/inv"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$work/www/index.html"
cat > "$work/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
	access_log off;
	server { listen 127.0.0.42:$app_port; root $work/www; }
}
NGINX
"$NGINX" -p "$work" -c "$work/nginx.conf" &
pids+=($!)
waitport "$app_port" 127.0.0.42

inventory() { # $1: version
	cat > "$work/inv/inventory.yaml.tmp" <<YAML
providers: [{name: local}]
networks: [{name: lan, kind: private, prefixes: [127.0.0.0/8]}]
servers:
  - {name: edge, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.41}]}
  - {name: app, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.42}]}
services:
  - {name: web, node: app, port: $app_port, protocol: http, bind: [lan], allow: [edge]}
upstreams: [{name: web, servers: [{service: web}], keepalive: 64}]
sites:
  - name: www
    node: edge
    hosts: [www.example.org]
    listen: [{network: lan, port: $site_port}]
    headers: {X-Version: "$1"}
    routes: [{path: /, upstream: web}]
YAML
	mv "$work/inv/inventory.yaml.tmp" "$work/inv/inventory.yaml"
}
inventory 0
"$work/offedge" run --node edge --inventory "$work/inv" --admin "127.0.0.1:$admin_port" 2> "$work/offedge.log" &
off=$!
pids+=($off)
waitport "$site_port" 127.0.0.41

echo "wrk: $CONNS connections for ${DUR}s against offedge run, $RELOADS reloads meanwhile"
wrk -t1 -c"$CONNS" -d"${DUR}s" -H "Host: www.example.org" "http://127.0.0.41:$site_port/" > "$work/wrk.txt" &
wrk_pid=$!
interval=$(python3 -c "print(($DUR - 4) / $RELOADS)")
sleep 2
for i in $(seq 1 "$RELOADS"); do
	inventory "$i"
	kill -HUP "$off"
	sleep "$interval"
done
wait "$wrk_pid"
cat "$work/wrk.txt"
reloaded=$(grep -c '"reloaded"\|msg=reloaded' "$work/offedge.log" || true)
refused=$(grep -c 'reload refused' "$work/offedge.log" || true)
errors=$(grep -E 'Socket errors|Non-2xx' "$work/wrk.txt" || true)
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
echo
echo "requests: $requests, reloads applied: $reloaded of $RELOADS, refused: $refused"
if [ -n "$errors" ] || [ "$reloaded" -ne "$RELOADS" ]; then
	echo "FAIL: ${errors:-not every reload applied}"
	exit 1
fi
echo "PASS: zero failed requests across $RELOADS reloads"
