#!/usr/bin/env bash
# bench/tunnel/bulkstat.sh BIN_DIR [SYSTEMS] — perf software events of a
# tunnel's two ends per MiB of bulk (docs/benchmarks.md, "fifth session:
# tunnel"): task-clock, context switches, page faults and CPU time from
# /proc (utime+stime) of both ends, offedge multiplexed, offedge one TLS
# connection per client and stunnel4 (PSK, as bench/tunnel.sh runs it) in
# the same harness, rounds interleaved. Both ends on CPU 1 (offedge with
# GOMAXPROCS=1), tunnelload bulk and its sink on CPU 0, after a 16 MiB
# warm-up. Counts of a shared machine: compare within one invocation.
#
# Run it under /work/tools/iso (or unshare --net) for the segment counts
# to be the tunnel's alone.
#
# BIN_DIR holds tunnelbench and tunnelload. SYSTEMS is a list of mux,
# nomux, stunnel (default all three), and base, basenomux: the same from
# the tunnelbench in $BASE (another build, in the same rounds).
# Environment: MIB per round (256), ROUNDS (3), CONNS a duration of
# connections (16 concurrent 1-byte echoes) after each bulk round, as
# bench/tunnel.sh runs between its bulk rounds (not counted in the
# figures). Needs perf, taskset, stunnel4.
set -euo pipefail
B=$1; SYSTEMS=${2:-mux nomux stunnel}
MIB=${MIB:-256}; ROUNDS=${ROUNDS:-3}
T=$(mktemp -d); cd "$T"
head -c 24 /dev/urandom | base64 >psk; chmod 600 psk
echo "bench:$(cat psk)" >stunnel-psk.txt; chmod 600 stunnel-psk.txt
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
addr() { for i in $(seq 1 600); do grep -q '^listening ' "$1" 2>/dev/null && { awk '/^listening /{print $2; exit}' "$1"; return; }; sleep 0.1; done; echo "no listen in $1" >&2; cat "$1" >&2; exit 1; }
taskset -c 0 "$B/tunnelload" sink >sink.log 2>&1 & PIDS+=($!)
SINK=$(addr sink.log)
declare -A ENT PP
start_offedge() { # name mux [bin dir]
  local d=${3:-$B}
  GOMAXPROCS=1 taskset -c 1 "$d/tunnelbench" -mode exit -name bench -target "$SINK" -psk psk >"x$1.log" 2>&1 & PIDS+=($!); local xp=$!
  local x; x=$(addr "x$1.log")
  GOMAXPROCS=1 taskset -c 1 "$d/tunnelbench" -mode entrance -name bench -target "$x" -psk psk -mux="$2" >"e$1.log" 2>&1 & PIDS+=($!)
  ENT[$1]=$(addr "e$1.log"); PP[$1]="$xp,$!"
}
start_stunnel() {
  local srv cli
  srv=127.0.0.1:$("$B/tunnelload" freeport); cli=127.0.0.1:$("$B/tunnelload" freeport)
  for side in server client; do
    if [ $side = server ]; then c=no; a=$srv; k=$SINK; else c=yes; a=$cli; k=$srv; fi
    printf 'foreground = yes\npid =\ndebug = 3\n[bench]\nclient = %s\naccept = %s\nconnect = %s\nciphers = PSK\nPSKsecrets = %s\n' \
      $c "$a" "$k" "$T/stunnel-psk.txt" >"stunnel-$side.conf"
    taskset -c 1 stunnel4 "stunnel-$side.conf" >"stunnel-$side.log" 2>&1 & PIDS+=($!)
    [ $side = server ] && PP[stunnel]=$! || PP[stunnel]="${PP[stunnel]},$!"
  done
  "$B/tunnelload" wait -addr "$srv"; "$B/tunnelload" wait -addr "$cli"
  ENT[stunnel]=$cli
}
for s in $SYSTEMS; do
  case $s in
  mux) start_offedge mux true ;; nomux) start_offedge nomux false ;; stunnel) start_stunnel ;;
  base) start_offedge base true "$BASE" ;; basenomux) start_offedge basenomux false "$BASE" ;;
  *) echo "unknown system $s" >&2; exit 2 ;;
  esac
  taskset -c 0 "$B/tunnelload" bulk -addr "${ENT[$s]}" -bytes $((16 << 20)) >/dev/null
done
# TCP segments sent in this network namespace: both ends, the load and the sink.
segs() { awk '/^Tcp:/ && ++n == 2 {print $12}' /proc/net/snmp; }
cpu() { local t=0; for p in ${1//,/ }; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
tck=$(getconf CLK_TCK)
echo "per MiB, both ends: task-clock ms, context switches, page faults, CPU ms (/proc), TCP segments sent (netns); $MIB MiB per round"
for r in $(seq 1 "$ROUNDS"); do
  for s in $SYSTEMS; do
    c0=$(cpu "${PP[$s]}"); g0=$(segs)
    perf stat -x, -e task-clock,context-switches,page-faults -p "${PP[$s]}" -o ps 2>/dev/null & S=$!
    sleep 0.2
    taskset -c 0 "$B/tunnelload" bulk -addr "${ENT[$s]}" -bytes $((MIB << 20)) >load.out
    kill -INT $S; wait $S 2>/dev/null || true
    c1=$(cpu "${PP[$s]}"); g1=$(segs)
    awk -F, -v m="$MIB" -v s="$s" -v r="$r" -v cpu=$(( (c1 - c0) * 1000 / tck )) -v segs=$((g1 - g0)) -v load="$(cat load.out)" '
      $3=="task-clock"{tc=$1} $3=="context-switches"{cs=$1} $3=="page-faults"{pf=$1}
      END{printf "round %d %-8s task-clock %.3f  cs %.1f  faults %.2f  cpu %.3f  segs %.1f   [%s]\n", r, s, tc/m, cs/m, pf/m, cpu/m, segs/m, load}' ps
    [ -n "${CONNS:-}" ] && {  taskset -c 0 "$B/tunnelload" conns -addr "${ENT[$s]}" -c 16 -duration "$CONNS" >/dev/null; }
  done
done
