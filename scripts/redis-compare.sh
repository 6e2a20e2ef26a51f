#!/usr/bin/env bash
# redis-compare.sh: redis-benchmark against bpfdb serve and redis-server in
# the same run, interleaved, on loopback ports (issue 4's measurement).
#
#   scripts/redis-compare.sh [rounds]      (as root; needs bin/bpfdb, redis-server, redis-benchmark)
#
# REQUESTS (default 200000, the issue's -n) sets the requests of each run,
# PIPELINED_REQUESTS (default REQUESTS) those of the -P 16 runs: a larger
# count measures past the first second, while every server is still
# warming up (bpfdb's log: pebble's first memtables).
#
# Each round runs, one after the other: bpfdb --durability async, redis-server
# without persistence, bpfdb --durability sync, redis-server with appendonly
# yes + appendfsync always; each with `redis-benchmark -n 200000 -c 50`
# without and with -P 16, `-t set` then `-t get` (the issue's `-t set,get`,
# one test per run so that the client's CPU share is per cell). Prints every
# result, then Markdown tables of the medians, of the two ratios the issue
# sets targets for, of redis-benchmark's own CPU share (near 100% of a core
# the single-threaded client is what limits the cell, whatever the server),
# and of the sync target against the most the client issued in any run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
requests=${REQUESTS:-200000}
pipelined_requests=${PIPELINED_REQUESTS:-$requests}
bpfdb_port=16380 redis_port=16381 metrics_port=19380
work=$(mktemp -d)
trap 'redis-cli -p $bpfdb_port shutdown >/dev/null 2>&1 || true; redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
results="$work/results"

wait_port() {
	for _ in $(seq 100); do
		redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "port $1 did not answer" >&2
	exit 1
}

bench() { # label port
	for p in 1 16; do
		n=$requests
		[ "$p" = 1 ] || n=$pipelined_requests
		for t in set get; do
			# One test per run, so that bash's time gives the client's own
			# CPU share (user+sys over elapsed) for this cell alone.
			cpu=$( { TIMEFORMAT=%P; time redis-benchmark -p "$2" -t "$t" -n "$n" -c 50 -P "$p" -q >"$work/out" 2>/dev/null; } 2>&1 )
			tr '\r' '\n' <"$work/out" | grep 'requests per second' | while read -r name rps _; do
				echo "$1 P=$p ${name%:} $rps client_cpu=$cpu%" | tee -a "$results"
			done
		done
	done
}

start_bpfdb() { # durability
	rm -rf "$work/bpfdb"
	./bin/bpfdb serve --dir "$work/bpfdb" --durability "$1" --listen 127.0.0.1:$bpfdb_port --metrics 127.0.0.1:$metrics_port >"$work/bpfdb.log" 2>&1 &
	wait_port $bpfdb_port
}

stop_bpfdb() {
	redis-cli -p $bpfdb_port shutdown >/dev/null 2>&1 || true
	for _ in $(seq 100); do pgrep -f "listen 127.0.0.1:$bpfdb_port" >/dev/null || return 0; sleep 0.1; done
}

start_redis() { # extra args
	rm -rf "$work/redis" && mkdir -p "$work/redis"
	(cd "$work/redis" && redis-server --port $redis_port --bind 127.0.0.1 --daemonize yes "$@" >/dev/null)
	wait_port $redis_port
}

stop_redis() { redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true; sleep 0.3; }

echo "== $(nproc) CPUs, $(uname -r), $(redis-server --version | awk '{print $3}'), bpfdb $(git describe --always --dirty)"
for r in $(seq "$rounds"); do
	echo "== round $r of $rounds"
	start_bpfdb async; bench bpfdb-async $bpfdb_port; stop_bpfdb
	start_redis --save '' --appendonly no; bench redis-nopersist $redis_port; stop_redis
	start_bpfdb sync; bench bpfdb-sync $bpfdb_port; stop_bpfdb
	start_redis --save '' --appendonly yes --appendfsync always; bench redis-always $redis_port; stop_redis
done

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
m() { grep "^$1 P=$2 $3 " "$results" | awk '{print $4}' | median; }
cpu() { grep "^$1 P=$2 $3 " "$results" | awk '{sub("client_cpu=", "", $5); print $5+0}' | median; }
highest() { grep " P=$1 $2 " "$results" | awk '$4 > h {h = $4} END {print h}'; }
echo
echo "| requests/s (median of $rounds; -n $requests, with -P 16 -n $pipelined_requests) | SET | GET | SET -P 16 | GET -P 16 |"
echo "|---|---:|---:|---:|---:|"
for label in bpfdb-async redis-nopersist bpfdb-sync redis-always; do
	printf "| %s | %.0f | %.0f | %.0f | %.0f |\n" "$label" "$(m $label 1 SET)" "$(m $label 1 GET)" "$(m $label 16 SET)" "$(m $label 16 GET)"
done
for pair in "bpfdb-async redis-nopersist 1.0" "bpfdb-sync redis-always 1.5"; do
	set -- $pair
	printf "| %s / %s (target %s) |" "$1" "$2" "$3"
	for pt in "1 SET" "1 GET" "16 SET" "16 GET"; do
		set -- $pair
		a=$(m "$1" $pt) b=$(m "$2" $pt)
		printf " %.2f |" "$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')"
	done
	echo
done
echo
echo "redis-benchmark's own CPU (% of one core, median): at about 100% the client, not the server, sets the cell's number"
echo
echo "| client CPU % | SET | GET | SET -P 16 | GET -P 16 |"
echo "|---|---:|---:|---:|---:|"
for label in bpfdb-async redis-nopersist bpfdb-sync redis-always; do
	printf "| %s | %.0f | %.0f | %.0f | %.0f |\n" "$label" "$(cpu $label 1 SET)" "$(cpu $label 1 GET)" "$(cpu $label 16 SET)" "$(cpu $label 16 GET)"
done
echo
echo "The sync target against the most the client issued in any run, against any server:"
echo
echo "| | SET | GET | SET -P 16 | GET -P 16 |"
echo "|---|---:|---:|---:|---:|"
printf "| 1.5x redis-always (median) |"
for pt in "1 SET" "1 GET" "16 SET" "16 GET"; do printf " %.0f |" "$(awk -v a="$(m redis-always $pt)" 'BEGIN {print 1.5 * a}')"; done
echo
printf "| highest rate of any run, any server |"
for pt in "1 SET" "1 GET" "16 SET" "16 GET"; do printf " %.0f |" "$(highest $pt)"; done
echo
