# bench/lib.sh — what every bench script needs, sourced by them:
#   bench_init PREFIX   a work directory $work (readable by nginx's workers),
#                       $pids killed and $work removed on exit (kept, and
#                       named on stderr, with KEEP_TMP=1)
#   freeport            a free loopback port
#   waitport PORT [HOST] wait until something listens (default 127.0.0.1)
# and, for scripts that measure with wrk ($work, $LOAD_CPU, $CONNS, $DUR set):
#   run NAME PID URL    one wrk run; appends "rps p99ms cpu_ms_per_1k load_cpu_%"
#                       to $work/res.NAME (PID: the system under test)
#   col NAME N          the median of column N of $work/res.NAME
#   ratio A B           A / B, two decimals
#   nginx_worker MASTER the pid of the (single) worker of an nginx master

bench_init() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$work" # nginx workers run as nobody and must read the files
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "kept $work" >&2
	else
		rm -rf "$work"
	fi
}

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

waitport() {
	local host=${2:-127.0.0.1}
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/$host/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on $host:$1" >&2
	exit 1
}

cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

# cpustat CPU -> "busy total" jiffies of that CPU from /proc/stat
cpustat() { awk -v c="cpu$1" '$1 == c {t=0; for (i=2; i<=NF; i++) t+=$i; print t-$5-$6, t}' /proc/stat; }

# run NAME PID URL -> appends "rps p99ms cpu_ms_per_1k load_cpu_%" to $work/res.NAME
run() {
	local name=$1 pid=$2 url=$3 out t0 t1 rps p99 reqs l0 l1 load
	t0=$(cputicks "$pid")
	l0=$(cpustat "$LOAD_CPU")
	out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DUR" --latency "$url")
	l1=$(cpustat "$LOAD_CPU")
	t1=$(cputicks "$pid")
	load=$(awk -v a="$l0" -v b="$l1" 'BEGIN {split(a, x, " "); split(b, y, " "); d=y[2]-x[2]; if (d <= 0) print 0; else printf "%.0f", 100 * (y[1]-x[1]) / d}')
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
		echo "warning: $name: $(grep 'Non-2xx\|Socket errors' <<<"$out")" >&2
	fi
	echo "$rps $p99 $(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.1f", d * 1000 / hz / (n / 1000)}') $load" >>"$work/res.$name"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { awk -v c="$2" '{print $c}' "$work/res.$1" | median; }
ratio() { case "$1$2" in *-*) echo -; return ;; esac; awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "n/a"; else printf "%.2f", a / b}'; }

nginx_worker() {
	local w=""
	for _ in $(seq 1 100); do
		w=$(pgrep -P "$1" | head -1 || true)
		[ -n "$w" ] && { echo "$w"; return 0; }
		sleep 0.05
	done
	echo "nginx worker not found" >&2
	exit 1
}
