#!/usr/bin/env bash
# bench/tunnel/fwdcount.sh BIN_DIR [offedge|haproxy] — counts, not times, what
# a forwarded connection costs (docs/benchmarks.md, "The forward's connection
# rate"): the system under test's syscalls by name (strace -f -c) and its
# software events (perf stat: task-clock, context switches, migrations, page
# faults), per connection of tunnelload's connection loop (16 concurrent
# 1-byte echoes), after a 200-connection warm-up. The forward (tunnelbench
# -mode forward) or HAProxy (tcp mode, splice-auto, nbthread 1, as
# bench/tunnel.sh sets it up) runs with GOMAXPROCS=1 on CPU 1, tunnelload on
# CPU 0. Environment: N connections (2000), KEEP a directory for the strace
# and perf outputs, PERF_RECORD=1 to add a perf record -g profile (kept in
# KEEP), CALLGRIND=1 to count user instructions per connection instead
# (valgrind callgrind, all threads, GC included; GODEBUG=asyncpreemptoff=1;
# N=1000 is plenty; the callgrind output is kept in KEEP). Needs strace,
# perf, taskset, haproxy (and valgrind for CALLGRIND).
set -euo pipefail
B=$1; SYS=${2:-offedge}
N=${N:-2000}
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
T=$(mktemp -d); cd "$T"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
addr() { for i in $(seq 1 600); do grep -q '^listening ' "$1" 2>/dev/null && { awk '/^listening /{print $2; exit}' "$1"; return; }; sleep 0.1; done; echo "no listen in $1" >&2; cat "$1" >&2; exit 1; }
taskset -c 0 "$B/tunnelload" sink >sink.log 2>&1 & PIDS+=($!)
SINK=$(addr sink.log)
if [ "$SYS" = haproxy ]; then
  ADDR=127.0.0.1:$("$B/tunnelload" freeport)
  cat >haproxy.cfg <<CONF
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
  bind $ADDR
  server sink $SINK
CONF
fi
VG=()
[ -n "${CALLGRIND:-}" ] && VG=(valgrind --tool=callgrind --instr-atstart=no -q --callgrind-out-file="$T/cg.%p")
if [ "$SYS" = haproxy ]; then
  taskset -c 1 "${VG[@]}" "$HAPROXY" -f haproxy.cfg -db >sut.log 2>&1 & PIDS+=($!); P=$!
  "$B/tunnelload" wait -addr "$ADDR"
else
  GODEBUG=${VG:+asyncpreemptoff=1} GOMAXPROCS=1 taskset -c 1 "${VG[@]}" "$B/tunnelbench" -mode forward -name bench -target "$SINK" >sut.log 2>&1 & PIDS+=($!); P=$!
  ADDR=$(addr sut.log)
fi
load() { taskset -c 0 "$B/tunnelload" conns -addr "$ADDR" -c 16 -duration 1h -max "$1"; }
done_units() { sed 's/^conns=\([0-9]*\).*/\1/' "$1"; }
load 200 >/dev/null

if [ -n "${CALLGRIND:-}" ]; then
  callgrind_control -i on $P >/dev/null
  load "$N" >load.out
  callgrind_control -d $P >/dev/null; sleep 1
  kill $P; wait $P 2>/dev/null || true
  sleep 1
  tot=$(cat cg.*.1 | awk '/^(summary|totals):/{print $2}' | sort -n | tail -1)
  echo "$SYS (callgrind): $(cat load.out)"
  echo "  user instructions per connection: $(awk -v t="$tot" -v u="$(done_units load.out)" 'BEGIN{printf "%.0f", t/u}')"
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp cg.* "$KEEP/"; fi
  exit 0
fi

strace -f -c -q -o st -p $P & S=$!
sleep 1
load "$N" >load1.out
sleep 0.5
kill -INT $S; wait $S 2>/dev/null || true
U=$(done_units load1.out)
echo "$SYS: $(cat load1.out)"
echo "  syscalls per connection (all, without futex/nanosleep/epoll_pwait waits):"
awk -v u="$U" '$1 ~ /^[0-9.]+$/ && $NF!="total" {printf "    %-16s %6.2f\n", $NF, $4/u; t += $4; if ($NF!="futex" && $NF!="nanosleep") io += $4}
  END {printf "    %-16s %6.2f\n    %-16s %6.2f\n", "total", t/u, "no futex/nslp", io/u}' st | sort -k2 -n -r

perf stat -x, -e task-clock,context-switches,cpu-migrations,page-faults -p $P -o ps 2>/dev/null & S=$!
sleep 0.5
load "$N" >load2.out
kill -INT $S; wait $S 2>/dev/null || true
U=$(done_units load2.out)
echo "  perf stat per connection [$(cat load2.out)]:"
awk -F, -v u="$U" '$3 ~ /task-clock|context-switches|cpu-migrations|page-faults/ {printf "    %-18s %8.3f %s\n", $3, $1/u, ($3=="task-clock" ? "ms" : "")}' ps
if [ -n "${PERF_RECORD:-}" ]; then
  perf record -q -g -o perf.data -p $P 2>/dev/null & S=$!
  sleep 0.5
  load "$N" >/dev/null
  kill -INT $S; wait $S 2>/dev/null || true
fi
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp st ps "$KEEP/" && { [ -f perf.data ] && cp perf.data "$KEEP/" || true; }; fi
