#!/usr/bin/env bash
# redis-compare.sh: redis-benchmark against bpfdb serve and redis-server in
# the same run, interleaved, on loopback ports (issue 4's measurement).
#
#   scripts/redis-compare.sh [rounds]      (as root; needs go, redis-server, redis-cli, redis-benchmark)
#
# Builds bpfdb once into a temporary directory (or takes BPFDB=path).
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
#
# Server CPU per request (issue 18): ../shared/tools/cpu-per-op
# (CPU_PER_OP=path) is wrapped around every redis-benchmark run, so each
# result also gets proc_us, the server process's utime+stime (all its
# threads) per request during the run, and tail_us, what it spent after the
# run until at rest again (at most idle + 5% of a core over a second, at
# most SETTLE_MAX s, default 10; bpfdb: the log's pebble flushes), net of
# its idle rate (measured over 2 s after each start), per request. The
# client shares the two cores, so compare servers by these as well as by
# requests per second; the last table gives both servers' during + after
# and the bpfdb/redis ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
requests=${REQUESTS:-200000}
pipelined_requests=${PIPELINED_REQUESTS:-$requests}
settle_max=${SETTLE_MAX:-10}
cpu_per_op=${CPU_PER_OP:-../shared/tools/cpu-per-op}
bpfdb_port=16380 redis_port=16381 metrics_port=19380
. scripts/server-cpu.sh
compare_setup
results="$work/results"

bench() { # label port
	for p in 1 16; do
		n=$requests
		[ "$p" = 1 ] || n=$pipelined_requests
		for t in set get; do
			# One test per run, so that bash's time gives the client's own
			# CPU share (user+sys over elapsed) for this cell alone.
			# cpu-per-op around it gives the server's CPU per request.
			sc=$("$cpu_per_op" "$pid" "$n" -- bash -c 'TIMEFORMAT=%P; { time redis-benchmark -p "$1" -t "$2" -n "$3" -c 50 -P "$4" -q >"$5" 2>/dev/null; } 2>"$6"' \
				_ "$2" "$t" "$n" "$p" "$work/out" "$work/client" | awk '{printf "%s ", $2}')
			cpu=$(cat "$work/client")
			settle
			server=$(echo "$sc" | awk -v t="$tail_ticks" -v s="$tail_s" -v i="$idle" -v hz="$hz" -v n="$n" '{
				x = (t - i / 100 * hz * s) / hz * 1e6 / n
				printf "proc_us=%s tail_us=%.3f softirq_us=%s wall_s=%s tail_s=%s idle_cpu=%s", $1, (x < 0 ? 0 : x), $2, $3, s, i }')
			tr '\r' '\n' <"$work/out" | grep 'requests per second' | while read -r name rps _; do
				echo "$1 P=$p ${name%:} $rps client_cpu=$cpu% $server" | tee -a "$results"
			done
		done
	done
}

start_bpfdb() { # durability
	rm -rf "$work/bpfdb"
	"$bpfdb" serve --dir "$work/bpfdb" --durability "$1" --listen 127.0.0.1:$bpfdb_port --metrics 127.0.0.1:$metrics_port >>"$work/bpfdb.log" 2>&1 &
	bpfdb_pid=$!
	wait_port $bpfdb_port
	pid=$bpfdb_pid
	idle_rate
}

stop_bpfdb() {
	redis-cli -p $bpfdb_port shutdown >/dev/null 2>&1 || true
	wait "$bpfdb_pid" 2>/dev/null || true
	bpfdb_pid=
}

start_redis() { # extra args
	rm -rf "$work/redis" && mkdir -p "$work/redis"
	(cd "$work/redis" && redis-server --port $redis_port --bind 127.0.0.1 --daemonize yes "$@" >/dev/null)
	wait_port $redis_port
	pid=$(redis-cli -p $redis_port info server | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}')
	idle_rate
}

stop_redis() {
	redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

echo "== $(nproc) CPUs, $(uname -r), $(redis-server --version | awk '{print $3}'), bpfdb $(git describe --always --dirty), $(date -u '+%Y-%m-%d %H:%M UTC')"
for r in $(seq "$rounds"); do
	echo "== round $r of $rounds, $(date -u +%T)"
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

# f label P test field: the median of field=value over the rounds
f() { grep "^$1 P=$2 $3 " "$results" | tr ' ' '\n' | awk -F= -v f="$4" '$1 == f {print $2 + 0}' | median; }
echo
echo "Server CPU per request (issue 18): the server process's utime+stime per request, during the run + after it until at rest (net of its idle rate), µs, median of $rounds:"
echo
echo "| server CPU µs/request, during + after | SET | GET | SET -P 16 | GET -P 16 |"
echo "|---|---:|---:|---:|---:|"
for label in bpfdb-async redis-nopersist bpfdb-sync redis-always; do
	printf "| %s |" "$label"
	for pt in "1 SET" "1 GET" "16 SET" "16 GET"; do printf " %.2f + %.2f |" "$(f $label $pt proc_us)" "$(f $label $pt tail_us)"; done
	echo
done
for pair in "bpfdb-async redis-nopersist" "bpfdb-sync redis-always"; do
	set -- $pair
	printf "| %s / %s: total (during only) |" "$1" "$2"
	for pt in "1 SET" "1 GET" "16 SET" "16 GET"; do
		set -- $pair
		printf " %s (%s) |" "$(awk -v a="$(f "$1" $pt proc_us)" -v at="$(f "$1" $pt tail_us)" -v b="$(f "$2" $pt proc_us)" -v bt="$(f "$2" $pt tail_us)" 'BEGIN {printf "%.2f", (a + at) / (b + bt)}')" \
			"$(awk -v a="$(f "$1" $pt proc_us)" -v b="$(f "$2" $pt proc_us)" 'BEGIN {printf "%.2f", a / b}')"
	done
	echo
done
echo
echo "At rest (2 s after each start, median): bpfdb $(grep '^bpfdb' "$results" | tr ' ' '\n' | awk -F= '$1 == "idle_cpu" {print $2}' | median)% of a core, redis-server $(grep '^redis' "$results" | tr ' ' '\n' | awk -F= '$1 == "idle_cpu" {print $2}' | median)%."
if grep -qiE 'error|panic|refus' "$work/bpfdb.log"; then
	echo "== bpfdb's log has errors:"
	grep -iE 'error|panic|refus' "$work/bpfdb.log" | sort | uniq -c | head -20
fi
