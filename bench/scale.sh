#!/usr/bin/env bash
# bench/scale.sh — the inventory commands through the CLI, the product's
# path (process start, reading the files, a heap grown from nothing), on a
# generated inventory written to disk: for each command, ROUNDS runs of
# `offedge COMMAND --inventory DIR`, each with its wall time, its CPU time
# (user + system, GC on every core included) and its peak RSS, and the
# slowest wall time against the bound issue 17 sets (2 s at ten times).
# Environment: SIZE (tenx, the default: 5,000 servers, 20,000 guests,
# 50,000 services; full: a tenth of that), ROUNDS (3), KEEP_TMP=1 keeps the
# inventory. Needs /usr/bin/time (Debian package time).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_init offedge-scale
ROUNDS=${ROUNDS:-3}
case "${SIZE:-tenx}" in
tenx) SERVERS=5000 GUESTS=20000 SERVICES=50000 BOUND=2.0 ;;
full) SERVERS=500 GUESTS=2000 SERVICES=5000 BOUND=1.0 ;;
*) echo "bench/scale.sh: SIZE must be tenx or full" >&2; exit 2 ;;
esac
[ -x /usr/bin/time ] || { echo "bench/scale.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
echo "building..." >&2
go build -o "$work/" ./cmd/offedge ./bench/scale/geninv
"$work/geninv" -servers "$SERVERS" -guests "$GUESTS" -services "$SERVICES" -out "$work/inv"
echo "inventory: $SERVERS servers, $GUESTS guests, $SERVICES services, $(du -h "$work/inv/inventory.yaml" | cut -f1)B; $ROUNDS runs each; bound ${BOUND} s wall"
printf '%-22s %16s %16s %12s\n' command "wall s" "user+sys s" "peak RSS MB"
range() { printf '%s\n' "$@" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END{printf "%s-%s", lo, hi}'; }
worst_all=0
for cmd in "check" "plan --node g1" "why g2 g1" "impact s0" "graph"; do
	walls=() cpus=() rss=()
	for _ in $(seq 1 "$ROUNDS"); do
		# check and why exit 1 when they find something; the time is what counts.
		/usr/bin/time -f '%e %U %S %M' -o "$work/t" "$work/offedge" $cmd --inventory "$work/inv" >/dev/null 2>"$work/err" || true
		read -r e u s m < <(tail -1 "$work/t") # after "Command exited with non-zero status"
		walls+=("$e") cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')") rss+=("$((m / 1024))")
	done
	printf '%-22s %16s %16s %12s\n' "$cmd" "$(range "${walls[@]}")" "$(range "${cpus[@]}")" "$(range "${rss[@]}")"
	worst=$(printf '%s\n' "${walls[@]}" | sort -g | tail -1)
	worst_all=$(awk -v a="$worst_all" -v b="$worst" 'BEGIN{print (b>a)?b:a}')
done
verdict=$(awk -v w="$worst_all" -v b="$BOUND" 'BEGIN{print (w<b)?"met":"MISSED"}')
echo "slowest command: ${worst_all} s wall [< ${BOUND} s]: $verdict"
