#!/usr/bin/env bash
# bench/tunnel/count.sh BIN_DIR conns|bulk MUX [KX] — counts, not times, what
# a tunnel costs per connection or per MiB (docs/benchmarks.md, "Multiplexed
# tunnels"): user-space instructions of both ends (callgrind, all threads,
# GC included) and, in a second run without valgrind, their syscalls
# (strace -f -c), after a warm-up (50 connections, or 16 MiB). Exit and
# entrance run with GOMAXPROCS=1 on CPU 1, tunnelload on CPU 0, as
# bench/tunnel.sh does; counts hold on a busy machine, timings do not.
#
# BIN_DIR holds tunnelbench and tunnelload (go build -o DIR/
# ./bench/tunnel/tunnelbench ./bench/tunnel/tunnelload; an older commit's
# tunnelbench without -mux works too). MUX is true or false (the entrance's
# -mux), KX "" (hybrid) or x25519. Environment: N connections (1000), MIB
# bulk MiB (256), KEEP a directory to copy the callgrind and strace outputs
# to. Needs valgrind, strace, taskset.
set -euo pipefail
B=$1; MODE=$2; MUX=$3; KX=${4:-}
N=${N:-1000}; MIB=${MIB:-256}
T=$(mktemp -d); cd "$T"
head -c 24 /dev/urandom | base64 >psk; chmod 600 psk
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
addr() { for i in $(seq 1 600); do grep -q '^listening ' "$1" 2>/dev/null && { awk '/^listening /{print $2; exit}' "$1"; return; }; sleep 0.1; done; echo "no listen in $1" >&2; cat "$1" >&2; exit 1; }
taskset -c 0 "$B/tunnelload" sink >sink.log 2>&1 & PIDS+=($!)
SINK=$(addr sink.log)
# An older tunnelbench has no -mux. (Not `-h | grep -q`: under pipefail,
# tunnelbench killed by SIGPIPE after grep's match dropped -mux=false at
# random, and the "one connection per client" runs were multiplexed.)
muxf=(-mux="$MUX"); help=$("$B/tunnelbench" -h 2>&1 || true)
case $help in *-mux*) ;; *) muxf=() ;; esac
echo "entrance flags: ${muxf[*]:-(no -mux: one TLS connection per client)} ${KX:+-kx $KX}"
kxf=(); [ -n "$KX" ] && kxf=(-kx "$KX")
load() {
  if [ "$MODE" = conns ]; then taskset -c 0 "$B/tunnelload" conns -addr "$ENT" -c 16 -duration 1h -max "$1"
  else taskset -c 0 "$B/tunnelload" bulk -addr "$ENT" -bytes $(( $1 << 20 )); fi
}
units() { [ "$MODE" = conns ] && echo "$N" || echo "$MIB"; }
done_units() { [ "$MODE" = conns ] && sed 's/^conns=\([0-9]*\).*/\1/' "$1" || echo "$MIB"; }
warm() { [ "$MODE" = conns ] && echo 50 || echo 16; }

# 1. callgrind
export GODEBUG=asyncpreemptoff=1
VG=(valgrind --tool=callgrind --instr-atstart=no -q)
GOMAXPROCS=1 taskset -c 1 "${VG[@]}" --callgrind-out-file="$T/cg.exit.%p" "$B/tunnelbench" -mode exit -name bench -target "$SINK" -psk psk >exit.log 2>&1 & PIDS+=($!); XP=$!
EXIT=$(addr exit.log)
GOMAXPROCS=1 taskset -c 1 "${VG[@]}" --callgrind-out-file="$T/cg.ent.%p" "$B/tunnelbench" -mode entrance -name bench -target "$EXIT" -psk psk "${muxf[@]}" "${kxf[@]}" >ent.log 2>&1 & PIDS+=($!); EP=$!
ENT=$(addr ent.log)
load "$(warm)" >/dev/null
callgrind_control -i on $XP >/dev/null; callgrind_control -i on $EP >/dev/null
load "$(units)" >load.out
callgrind_control -d $XP >/dev/null; callgrind_control -d $EP >/dev/null; sleep 1
kill $XP $EP; wait $XP $EP 2>/dev/null || true
sleep 1
tot=0
for f in cg.exit.*.1 cg.ent.*.1; do
  s=$(awk '/^(summary|totals):/{print $2}' "$f" | sort -n | tail -1); tot=$((tot + ${s:-0}))
done
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp cg.* "$KEEP/"; fi
echo "callgrind $MODE mux=$MUX kx=${KX:-hybrid}: $(cat load.out)"
echo "  instructions per unit (both ends): $(awk -v t=$tot -v u=$(done_units load.out) 'BEGIN{printf "%.0f", t/u}')"

unset GODEBUG
# 2. strace syscall counts
GOMAXPROCS=1 taskset -c 1 "$B/tunnelbench" -mode exit -name bench -target "$SINK" -psk psk >exit2.log 2>&1 & PIDS+=($!); XP=$!
EXIT=$(addr exit2.log)
GOMAXPROCS=1 taskset -c 1 "$B/tunnelbench" -mode entrance -name bench -target "$EXIT" -psk psk "${muxf[@]}" "${kxf[@]}" >ent2.log 2>&1 & PIDS+=($!); EP=$!
ENT=$(addr ent2.log)
load "$(warm)" >/dev/null
strace -f -c -q -o st.exit -p $XP & S1=$!
strace -f -c -q -o st.ent -p $EP & S2=$!
sleep 1
load "$(units)" >load2.out
sleep 0.5
kill -INT $S1 $S2; wait $S1 $S2 2>/dev/null || true
sc=0
# strace -c columns: % time, seconds, usecs/call, calls, [errors], syscall
for f in st.exit st.ent; do c=$(awk '$NF=="total"{print $4}' "$f"); sc=$((sc + ${c:-0})); done
io=0
for f in st.exit st.ent; do c=$(awk '$1 ~ /^[0-9.]+$/ && $NF!="total" && $NF!="futex" && $NF!="nanosleep" {n += $4} END{print n+0}' "$f"); io=$((io + c)); done
echo "  syscalls per unit without futex/nanosleep: $(awk -v t=$io -v u=$(done_units load2.out) 'BEGIN{printf "%.1f", t/u}')"
echo "  syscalls per unit (both ends): $(awk -v t=$sc -v u=$(done_units load2.out) 'BEGIN{printf "%.1f", t/u}')   [$(cat load2.out)]"
if [ -n "${KEEP:-}" ]; then cp st.exit st.ent "$KEEP/"; fi
