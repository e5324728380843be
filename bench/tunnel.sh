#!/usr/bin/env bash
# bench/tunnel.sh — offedge tunnels and forwards against stunnel4, HAProxy,
# socat and raw loopback, on one machine, in one command.
#
# Pinning (docs/DESIGN.md): every system under test on CPU 1 with
# GOMAXPROCS=1; the load generator and the sink on CPU 0. Runs are
# interleaved (A B C A B C ...) and the median of ROUNDS is reported, with
# the CPU time the system under test used (utime+stime+cutime+cstime from
# /proc/PID/stat, all its processes) per GiB and per 1,000 connections.
#
# Environment: ROUNDS (3), BULK_BYTES (2 GiB), CONN_SECS (3), CONC (16),
# SOURCES (16: the clients connect from 127.0.1.1 … 127.0.1.16, so that
# TIME_WAIT on the load side, 60 s of it per source address and
# destination, does not run the load side out of ports; 0: from 127.0.0.1),
# ONLY (an extended regexp on system names: ONLY='forward|haproxy' runs only
# those; the ratio lines of systems left out print "-"), BASE (a commit: its
# tunnelbench runs beside this tree's as base-tunnel and base-forward, in
# the same interleaved rounds, so before/after is measured in one run),
# MODE (below), SUT_QUOTA (a percentage of one CPU, say 40: every system
# under test runs in a cgroup of its own capped at that share, so that it,
# not the load side, bounds the connection rate; needs root and the cgroup
# cpu controller, v1 or v2).
#
# Two ways to run offedge (MODE):
#   MODE=lib  (default) the tunnelbench harness: one process per tunnel end
#             and per forward, built from Go with the plan's defaults
#   MODE=run  the product's own path: `offedge run` from a generated
#             inventory, one process per node: node ent holds the three
#             tunnel entrances (multiplexed, one connection per client,
#             x25519), node exit their one exit listener, node fwd the
#             forward; the sink is a service of node app (127.0.0.74) and
#             the load side is node load (127.0.0.1), the one client the
#             entrances and the forward admit
set -euo pipefail
MODE=${MODE:-lib}
case "$MODE" in
lib | run) ;;
*) echo "bench/tunnel.sh: MODE must be lib or run" >&2; exit 2 ;;
esac

ROUNDS=${ROUNDS:-3}
BULK_BYTES=${BULK_BYTES:-$((2 << 30))}
CONN_SECS=${CONN_SECS:-3}
CONC=${CONC:-16}
SOURCES=${SOURCES:-16}

cd "$(dirname "$0")/.."
for bin in stunnel4 haproxy socat taskset; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || { echo "missing $bin" >&2; exit 1; }
done
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs for pinning" >&2; exit 1; }

T=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_TMP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT

echo "building..." >&2
go build -o "$T/" ./bench/tunnel/tunnelbench ./bench/tunnel/tunnelload
[ "$MODE" = lib ] || go build -o "$T/" ./cmd/offedge
LOAD="$T/tunnelload"
TB="$T/tunnelbench"
if [ -n "${BASE:-}" ]; then
  git worktree add -q --detach "$T/base" "$BASE"
  (cd "$T/base" && go build -o "$T/base-bin/" ./bench/tunnel/tunnelbench)
  git worktree remove --force "$T/base"
fi
TICK=$(getconf CLK_TCK)
port() { "$LOAD" freeport; }

# bg NAME CPU CMD...: start CMD pinned to CPU, remember its pid in PID_NAME.
bg() {
  local name=$1 cpu=$2; shift 2
  GOMAXPROCS=1 taskset -c "$cpu" "$@" >"$T/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_${name}=$!"
}
# listen_addr NAME: the address a Go tool printed ("listening ADDR").
listen_addr() {
  local i
  for i in $(seq 1 200); do
    if grep -q '^listening ' "$T/$1.log" 2>/dev/null; then
      awk '/^listening /{print $2; exit}' "$T/$1.log"; return
    fi
    sleep 0.05
  done
  echo "$1 did not start:" >&2; cat "$T/$1.log" >&2; exit 1
}
# cpustat CPU -> "busy total" jiffies of that CPU from /proc/stat; busy
# A B -> the busy share (%) between two readings: the load side's CPU 0
# near 100 % bounds the figure, and only the CPU columns compare then.
cpustat() { awk -v c="cpu$1" '$1 == c {t=0; for (i=2; i<=NF; i++) t+=$i; print t-$5-$6, t}' /proc/stat; }
busy() { awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " "); d=y[2]-x[2]; if (d <= 0) print 0; else printf "%.0f", 100 * (y[1]-x[1]) / d}'; }
ticks() { # total CPU ticks of the given pids (children included)
  local s=0 p
  for p in "$@"; do
    s=$((s + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12+$13+$14+$15}')))
  done
  echo "$s"
}

# The sink, on CPU 0: in run mode the address of node app's service.
SINKHOST=127.0.0.1
[ "$MODE" = lib ] || SINKHOST=127.0.0.74
bg sink 0 "$LOAD" sink -listen "$SINKHOST:0"
SINK=$(listen_addr sink)

head -c 24 /dev/urandom | base64 >"$T/psk"
chmod 600 "$T/psk"
if [ "$MODE" = lib ]; then
  # offedge tunnel: exit and entrance, two processes on CPU 1.
  bg oexit 1 "$TB" -mode exit -name bench -target "$SINK" -psk "$T/psk"
  OEXIT=$(listen_addr oexit)
  # The default entrance multiplexes its clients over sessions to the exit
  # (offedge-mux/1); -mux=false is one TLS connection per client, as with a
  # stunnel4 peer or before multiplexing.
  bg oent 1 "$TB" -mode entrance -name bench -target "$OEXIT" -psk "$T/psk"
  OENT=$(listen_addr oent)
  bg oentn 1 "$TB" -mode entrance -name bench -target "$OEXIT" -psk "$T/psk" -mux=false
  OENTN=$(listen_addr oentn)
  bg oentx 1 "$TB" -mode entrance -name bench -target "$OEXIT" -psk "$T/psk" -mux=false -kx x25519
  OENTX=$(listen_addr oentx)
  bg ofwd 1 "$TB" -mode forward -name bench -target "$SINK"
  OFWD=$(listen_addr ofwd)
else
  # One secret per tunnel, as check requires.
  for t in mux nomux x25519; do cp "$T/psk" "$T/psk-$t"; chmod 600 "$T/psk-$t"; done
  OENT=127.0.0.71:$(port) OENTN=127.0.0.71:$(port) OENTX=127.0.0.71:$(port)
  OEXITP=$(port) OFWD=127.0.0.73:$(port)
  mkdir -p "$T/inv"
  cat >"$T/inv/inventory.yaml" <<YAML
providers: [{name: local}]
networks: [{name: lan, kind: private, prefixes: [127.0.0.0/8]}]
servers:
  - {name: load, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.1}]}
  - {name: ent, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.71}]}
  - {name: exit, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.72}]}
  - {name: fwd, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.73}]}
  - {name: app, provider: local, mode: bare-metal, addresses: [{network: lan, ip: $SINKHOST}]}
services:
  - {name: sink, node: app, port: ${SINK##*:}, protocol: tcp, bind: [lan], allow: [exit, fwd]}
tunnels:
  - name: bench
    service: sink
    entrance: {node: ent, network: lan, port: ${OENT##*:}}
    exits: [{node: exit, network: lan, port: $OEXITP}]
    auth: {psk: $T/psk-mux}
    allow: [load, 127.0.1.0/24]
  - name: bench-nomux
    service: sink
    entrance: {node: ent, network: lan, port: ${OENTN##*:}}
    exits: [{node: exit, network: lan, port: $OEXITP}]
    auth: {psk: $T/psk-nomux}
    allow: [load, 127.0.1.0/24]
    mux: false
  - name: bench-x25519
    service: sink
    entrance: {node: ent, network: lan, port: ${OENTX##*:}}
    exits: [{node: exit, network: lan, port: $OEXITP}]
    auth: {psk: $T/psk-x25519}
    allow: [load, 127.0.1.0/24]
    mux: false
    key_exchange: x25519
forwards:
  - {name: bench, node: fwd, listen: {network: lan, port: ${OFWD##*:}}, service: sink, allow: [load, 127.0.1.0/24]}
YAML
  "$T/offedge" check --inventory "$T/inv" >"$T/check.out" 2>&1 || { cat "$T/check.out" >&2; exit 1; }
  for n in exit ent fwd; do
    bg "run$n" 1 "$T/offedge" run --node "$n" --inventory "$T/inv"
  done
  for a in "$OENT" "$OENTN" "$OENTX" "$OFWD"; do "$LOAD" wait -addr "$a" || { cat "$T"/run*.log >&2; exit 1; }; done
  PID_oent=$PID_runent PID_oentn=$PID_runent PID_oentx=$PID_runent PID_oexit=$PID_runexit PID_ofwd=$PID_runfwd
fi

if [ -n "${BASE:-}" ]; then
  bg bexit 1 "$T/base-bin/tunnelbench" -mode exit -name bench -target "$SINK" -psk "$T/psk"
  BEXIT=$(listen_addr bexit)
  bg bent 1 "$T/base-bin/tunnelbench" -mode entrance -name bench -target "$BEXIT" -psk "$T/psk"
  BENT=$(listen_addr bent)
  bg bfwd 1 "$T/base-bin/tunnelbench" -mode forward -name bench -target "$SINK"
  BFWD=$(listen_addr bfwd)
fi

# stunnel4 pair with its own PSK, as Open Food Facts runs it today.
echo "bench:$(cat "$T/psk")" >"$T/stunnel-psk.txt"
chmod 600 "$T/stunnel-psk.txt"
SSRV=127.0.0.1:$(port)
SCLI=127.0.0.1:$(port)
for side in server client; do
  if [ $side = server ]; then c=no; a=$SSRV; k=$SINK; else c=yes; a=$SCLI; k=$SSRV; fi
  cat >"$T/stunnel-$side.conf" <<CONF
foreground = yes
pid =
debug = 3
[bench]
client = $c
accept = $a
connect = $k
ciphers = PSK
PSKsecrets = $T/stunnel-psk.txt
CONF
done
bg ssrv 1 stunnel4 "$T/stunnel-server.conf"
bg scli 1 stunnel4 "$T/stunnel-client.conf"
"$LOAD" wait -addr "$SSRV"; "$LOAD" wait -addr "$SCLI"

# Forwards: HAProxy (tcp mode, splice), socat.
HAP=127.0.0.1:$(port)
cat >"$T/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen bench
  bind $HAP
  server sink $SINK
CONF
bg hap 1 "$HAPROXY" -f "$T/haproxy.cfg" -db
SOC=127.0.0.1:$(port)
bg soc 1 socat "TCP-LISTEN:${SOC##*:},bind=127.0.0.1,reuseaddr,fork,backlog=4096" "TCP:$SINK"
"$LOAD" wait -addr "$HAP"; "$LOAD" wait -addr "$SOC"

# system name, address, pids of the system under test
SYSTEMS=(
  "raw|$SINK|"
  "offedge-tunnel|$OENT|$PID_oent $PID_oexit"
  "offedge-tun-nomux|$OENTN|$PID_oentn $PID_oexit"
  "offedge-tun-x25519|$OENTX|$PID_oentx $PID_oexit"
  "stunnel4-psk|$SCLI|$PID_scli $PID_ssrv"
  "offedge-forward|$OFWD|$PID_ofwd"
  "haproxy-splice|$HAP|$PID_hap"
  "socat|$SOC|$PID_soc"
)
if [ -n "${BASE:-}" ]; then
  SYSTEMS+=("base-tunnel|$BENT|$PID_bent $PID_bexit" "base-forward|$BFWD|$PID_bfwd")
fi

if [ -n "${ONLY:-}" ]; then
  KEPT=()
  for s in "${SYSTEMS[@]}"; do
    if grep -Eq -- "$ONLY" <<<"${s%%|*}"; then KEPT+=("$s"); fi
  done
  [ "${#KEPT[@]}" -gt 0 ] || { echo "ONLY=$ONLY matches no system" >&2; exit 1; }
  SYSTEMS=("${KEPT[@]}")
fi

# SUT_QUOTA: one cgroup per system under test (all its processes; threads
# they start later stay in it), cpu quota SUT_QUOTA % of one CPU.
CGROUPS=()
if [ -n "${SUT_QUOTA:-}" ]; then
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGV=2; CGROOT=/sys/fs/cgroup; else CGV=1; CGROOT=/sys/fs/cgroup/cpu; fi
  [ -w "$CGROOT" ] || { echo "SUT_QUOTA needs root and a writable $CGROOT" >&2; exit 1; }
  [ "$CGV" = 1 ] || grep -qw cpu "$CGROOT/cgroup.subtree_control" || echo +cpu >"$CGROOT/cgroup.subtree_control"
  for s in "${SYSTEMS[@]}"; do
    IFS='|' read -r name addr pids <<<"$s"
    [ -n "$pids" ] || continue
    cg="$CGROOT/offedge-bench-$$-$name"
    mkdir "$cg"
    CGROUPS+=("$cg")
    if [ "$CGV" = 2 ]; then
      echo "$((SUT_QUOTA * 1000)) 100000" >"$cg/cpu.max"
    else
      echo 100000 >"$cg/cpu.cfs_period_us"
      echo "$((SUT_QUOTA * 1000))" >"$cg/cpu.cfs_quota_us"
    fi
    for p in $pids; do echo "$p" >"$cg/cgroup.procs"; done
  done
  uncgroup() {
    local cg p
    for cg in "${CGROUPS[@]}"; do
      while read -r p; do echo "$p" >"$CGROOT/cgroup.procs" 2>/dev/null || true; done <"$cg/cgroup.procs"
      rmdir "$cg" 2>/dev/null || true
    done
  }
  trap 'uncgroup; cleanup' EXIT
fi

declare -A BULK CONNS BCPU CCPU BLOAD CLOAD
for r in $(seq 1 "$ROUNDS"); do
  for s in "${SYSTEMS[@]}"; do
    IFS='|' read -r name addr pids <<<"$s"
    # shellcheck disable=SC2086
    t0=$( [ -n "$pids" ] && ticks $pids || echo 0 ); l0=$(cpustat 0)
    out=$(taskset -c 0 env GOMAXPROCS=1 "$LOAD" bulk -addr "$addr" -bytes "$BULK_BYTES")
    # shellcheck disable=SC2086
    t1=$( [ -n "$pids" ] && ticks $pids || echo 0 ); l1=$(cpustat 0)
    BLOAD[$name]+="$(busy "$l0" "$l1") "
    mibs=$(sed 's/.*mib_per_s=//' <<<"$out")
    BULK[$name]+="$mibs "
    BCPU[$name]+="$(awk -v t=$((t1 - t0)) -v hz="$TICK" -v b="$BULK_BYTES" 'BEGIN{printf "%.3f", t/hz/(b/2^30)}') "
    # shellcheck disable=SC2086
    t0=$( [ -n "$pids" ] && ticks $pids || echo 0 ); l0=$(cpustat 0)
    out=$(taskset -c 0 env GOMAXPROCS=2 "$LOAD" conns -addr "$addr" -duration "${CONN_SECS}s" -c "$CONC" -sources "$SOURCES" 2>"$T/conns.err")
    # shellcheck disable=SC2086
    t1=$( [ -n "$pids" ] && ticks $pids || echo 0 ); l1=$(cpustat 0)
    CLOAD[$name]+="$(busy "$l0" "$l1") "
    n=$(sed 's/^conns=\([0-9]*\).*/\1/' <<<"$out")
    failed=$(sed 's/.*failed=\([0-9]*\).*/\1/' <<<"$out")
    cps=$(sed 's/.*conns_per_s=//' <<<"$out")
    CONNS[$name]+="$cps "
    CCPU[$name]+="$(awk -v t=$((t1 - t0)) -v hz="$TICK" -v n="$n" 'BEGIN{printf "%.1f", t/hz*1000/(n/1000)}') "
    printf 'round %d %-18s bulk %8.1f MiB/s  conns %8.1f/s (failed %s)\n' "$r" "$name" "$mibs" "$cps" "$failed" >&2
    [ "$failed" = 0 ] || { echo "  first error: $(cat "$T/conns.err")" >&2; }
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a != "" && b>0) printf "%.2f×", a/b; else print "-" }'; }

echo
echo "offedge $MODE mode; bulk: $((BULK_BYTES >> 20)) MiB per run; conns: ${CONN_SECS}s, $CONC concurrent, 1-byte echo per connection; median of $ROUNDS interleaved rounds"
echo "system under test on CPU 1 (GOMAXPROCS=1), load and sink on CPU 0; CPU = system under test only; load cpu = CPU 0 busy share (near 100: the load side bounds the rate)"
[ -z "${SUT_QUOTA:-}" ] || echo "each system under test capped at ${SUT_QUOTA} % of one CPU (SUT_QUOTA): it bounds the rate, and the load side has room"
echo
printf '%-18s %12s %14s %12s %16s %20s\n' system "bulk MiB/s" "CPU s/GiB" "conn/s" "CPU ms/1k conn" "load cpu % bulk/conn"
for s in "${SYSTEMS[@]}"; do
  name=${s%%|*}
  printf '%-18s %12.1f %14s %12.1f %16s %14s / %3s\n' "$name" "$(median "${BULK[$name]}")" "$(median "${BCPU[$name]}")" \
    "$(median "${CONNS[$name]}")" "$(median "${CCPU[$name]}")" "$(median "${BLOAD[$name]}")" "$(median "${CLOAD[$name]}")"
done
m() { median "${1}"; }
echo
echo "ratios (targets in brackets):"
echo "  tunnel  bulk   offedge/stunnel4 $(ratio "$(m "${BULK[offedge-tunnel]:-}")" "$(m "${BULK[stunnel4-psk]:-}")") [≥1.5×]   offedge/raw $(ratio "$(m "${BULK[offedge-tunnel]:-}")" "$(m "${BULK[raw]:-}")") [≥0.4×]   stunnel4/raw $(ratio "$(m "${BULK[stunnel4-psk]:-}")" "$(m "${BULK[raw]:-}")")"
echo "  tunnel  conn/s offedge/stunnel4 $(ratio "$(m "${CONNS[offedge-tunnel]:-}")" "$(m "${CONNS[stunnel4-psk]:-}")") [≥2.5×] (multiplexed, the default)   one TLS connection per client (hybrid ML-KEM) $(ratio "$(m "${CONNS[offedge-tun-nomux]:-}")" "$(m "${CONNS[stunnel4-psk]:-}")")   with key_exchange x25519 $(ratio "$(m "${CONNS[offedge-tun-x25519]:-}")" "$(m "${CONNS[stunnel4-psk]:-}")")"
echo "  tunnel  bulk   multiplexed/one connection per client $(ratio "$(m "${BULK[offedge-tunnel]:-}")" "$(m "${BULK[offedge-tun-nomux]:-}")")   CPU/GiB $(ratio "$(m "${BCPU[offedge-tunnel]:-}")" "$(m "${BCPU[offedge-tun-nomux]:-}")")"
echo "  tunnel  CPU/GiB stunnel4/offedge $(ratio "$(m "${BCPU[stunnel4-psk]:-}")" "$(m "${BCPU[offedge-tunnel]:-}")")   CPU/1k conn stunnel4/offedge $(ratio "$(m "${CCPU[stunnel4-psk]:-}")" "$(m "${CCPU[offedge-tunnel]:-}")")"
echo "  forward bulk   offedge/haproxy $(ratio "$(m "${BULK[offedge-forward]:-}")" "$(m "${BULK[haproxy-splice]:-}")") [≥1.0×]   offedge/socat $(ratio "$(m "${BULK[offedge-forward]:-}")" "$(m "${BULK[socat]:-}")")"
echo "  forward conn/s offedge/haproxy $(ratio "$(m "${CONNS[offedge-forward]:-}")" "$(m "${CONNS[haproxy-splice]:-}")") [≥1.0×]   offedge/socat $(ratio "$(m "${CONNS[offedge-forward]:-}")" "$(m "${CONNS[socat]:-}")")"
echo "  forward CPU/GiB haproxy/offedge $(ratio "$(m "${BCPU[haproxy-splice]:-}")" "$(m "${BCPU[offedge-forward]:-}")")   CPU/1k conn haproxy/offedge $(ratio "$(m "${CCPU[haproxy-splice]:-}")" "$(m "${CCPU[offedge-forward]:-}")")"
if [ -n "${BASE:-}" ]; then
  echo "  against $BASE: tunnel bulk $(ratio "$(m "${BULK[offedge-tunnel]:-}")" "$(m "${BULK[base-tunnel]:-}")")  CPU/GiB $(ratio "$(m "${BCPU[offedge-tunnel]:-}")" "$(m "${BCPU[base-tunnel]:-}")")  conn/s $(ratio "$(m "${CONNS[offedge-tunnel]:-}")" "$(m "${CONNS[base-tunnel]:-}")")  CPU/1k conn $(ratio "$(m "${CCPU[offedge-tunnel]:-}")" "$(m "${CCPU[base-tunnel]:-}")")"
  echo "  against $BASE: forward bulk $(ratio "$(m "${BULK[offedge-forward]:-}")" "$(m "${BULK[base-forward]:-}")")  CPU/GiB $(ratio "$(m "${BCPU[offedge-forward]:-}")" "$(m "${BCPU[base-forward]:-}")")  conn/s $(ratio "$(m "${CONNS[offedge-forward]:-}")" "$(m "${CONNS[base-forward]:-}")")  CPU/1k conn $(ratio "$(m "${CCPU[offedge-forward]:-}")" "$(m "${CCPU[base-forward]:-}")")"
fi
