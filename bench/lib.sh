# bench/lib.sh — what every bench script needs, sourced by them:
#   bench_init PREFIX   a work directory $work (readable by nginx's workers),
#                       $pids killed and $work removed on exit
#   freeport            a free loopback port
#   waitport PORT [HOST] wait until something listens (default 127.0.0.1)

bench_init() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$work" # nginx workers run as nobody and must read the files
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
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
