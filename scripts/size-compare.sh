#!/usr/bin/env bash
# size-compare.sh: GET and SET of 100 B, 4 KiB, 64 KiB and 1 MiB values
# against bpfdb serve and redis-server in the same run, on loopback ports,
# and the memory each server spends per key at each size (issue 17's
# measurement).
#
#   scripts/size-compare.sh [rounds]      (as root; needs go, redis-server, redis-cli, redis-benchmark)
#
# Builds bpfdb once (or takes BPFDB=path). Each round, for each size, one
# after the other: a fresh bpfdb serve --durability async and a fresh
# redis-server without persistence (--save '' --appendonly no), each driven
# by `redis-benchmark -c 50 -d SIZE -r KEYS`, `-t set` then `-t get` (one
# test per run, so that the CPU is per cell). Requests and keyspace (-r,
# the same for both servers) shrink with the size:
#
#   size      requests  keys (-r)
#   100       200,000   10,000
#   4096      100,000   10,000
#   65536      20,000    1,000
#   1048576     2,000      100
#
# (SCALE=n divides the requests, for a quick try.) The VM is shared: every
# cell also gets other_cpu, the user+system time of every other process
# during it in % of the machine, and the tables take the medians of the
# rounds where it was at most OTHER_MAX (default 5) and say how many. ../shared/tools/cpu-per-op
# (CPU_PER_OP=path) is wrapped around every redis-benchmark run: proc_us is
# the server process's utime+stime per request (the client shares the two
# cores, so compare servers by this, not by requests per second alone);
# softirq_us is the whole machine's softirq time per request (loopback's
# network stack, both ends). bash's time gives redis-benchmark's own CPU.
#
# Then, per size, memory: a fresh server of each kind is loaded with KEYS
# keys (the table above) of 16 bytes (key:%012d, redis-benchmark's names)
# through `redis-cli --pipe`, and INFO memory's used_memory is read before
# and after. redis-server's used_memory is its allocator's total. bpfdb's
# (engine.MemoryUse) is the index preallocated for --max-keys (a constant,
# --max-keys x the estimated bytes of a record) plus the value slots in use
# (a whole slot of the value's class, 32 to 1,024 bytes) plus the 4 KiB
# pages of blobs (values over 1,024 bytes): so its delta is the value store
# alone, and the script adds the index's share per key (used_memory before
# the load / --max-keys). bpfdb's used_memory_kernel, the memlock of every
# map reserved at start-up, does not move with the load.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
sizes=${SIZES:-100 4096 65536 1048576}
scale=${SCALE:-1}
other_max=${OTHER_MAX:-5}
cpu_per_op=${CPU_PER_OP:-../shared/tools/cpu-per-op}
settle_max=60
bpfdb_port=16390 redis_port=16391
max_keys=65536 maxmemory=1gb max_value_len=1mb
. scripts/server-cpu.sh
compare_setup
results="$work/results"

requests_for() { case $1 in 100) echo 200000;; 4096) echo 100000;; 65536) echo 20000;; 1048576) echo 2000;; *) echo 20000;; esac; }
keys_for() { case $1 in 100|4096) echo 10000;; 65536) echo 1000;; 1048576) echo 100;; *) echo 1000;; esac; }

info() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f {print $2}'; }

start_bpfdb() {
	rm -rf "$work/bpfdb-data"
	"$bpfdb" serve --dir "$work/bpfdb-data" --durability async --listen 127.0.0.1:$bpfdb_port --metrics "" \
		--max-keys $max_keys --maxmemory $maxmemory --max-value-len $max_value_len >>"$work/bpfdb.log" 2>&1 &
	bpfdb_pid=$!
	wait_port $bpfdb_port
	pid=$bpfdb_pid port=$bpfdb_port
	[ "${1:-}" = noidle ] || idle_rate
}

stop_bpfdb() {
	redis-cli -p $bpfdb_port shutdown >/dev/null 2>&1 || true
	wait "$bpfdb_pid" 2>/dev/null || true
	bpfdb_pid=
}

start_redis() {
	rm -rf "$work/redis" && mkdir -p "$work/redis"
	(cd "$work/redis" && redis-server --port $redis_port --bind 127.0.0.1 --daemonize yes --save '' --appendonly no >/dev/null)
	wait_port $redis_port
	pid=$(info $redis_port server process_id) port=$redis_port
	[ "${1:-}" = noidle ] || idle_rate
}

stop_redis() {
	redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# busy: the machine's user, nice and system time (not irq and softirq,
# which no process is charged with), in clock ticks.
busy() { awk '/^cpu /{print $2 + $3 + $4}' /proc/stat; }
ncpu=$(nproc)

# commits: bpfdb's commit LSN (INFO master_repl_offset): a SET run must add
# one a request, so a refused SET shows even if redis-benchmark says nothing.
commits() { info "$1" replication master_repl_offset; }

bench() { # label size
	local label=$1 size=$2 n r t out rps c0 c1 note
	n=$(($(requests_for "$size") / scale)) r=$(keys_for "$size")
	for t in set get; do
		c0=$(commits "$port") b0=$(busy)
		out=$("$cpu_per_op" "$pid" "$n" -- bash -c 'TIMEFORMAT=%P; { time redis-benchmark -p "$1" -t "$2" -n "$3" -c 50 -d "$4" -r "$5" -q >"$6" 2>&1; } 2>"$7"' \
			_ "$port" "$t" "$n" "$size" "$r" "$work/out" "$work/client" | tr '\n' ' ')
		c1=$(commits "$port") b1=$(busy)
		settle
		rps=$(tr '\r' '\n' <"$work/out" | awk '/requests per second/ {print $2; exit}')
		note=
		if grep -qi 'error' "$work/out"; then
			note="errors:$(grep -i -m 3 'error' "$work/out" | tr '\n' '|' | tr ' ' '_')"
		fi
		if [ "$label" = bpfdb ] && [ "$t" = set ] && [ $((c1 - c0)) -ne "$n" ]; then
			note="${note}commits:$((c1 - c0))_of_$n"
		fi
		echo "$label $size ${t^^} n=$n r=$r rps=${rps:-0} $(echo "$out" | awk -v n="$n" -v b="$((b1 - b0))" -v hz="$hz" -v ncpu="$ncpu" -v c="$(cat "$work/client")" '{
			# other_cpu: the user+system time of everything but this server and
			# the client, in % of the machine (ncpu x wall)
			o = (b / hz - $2 * n / 1e6 - c / 100 * $6) / (ncpu * $6) * 100
			printf "proc_us=%s softirq_us=%s wall_s=%s client_cpu=%s other_cpu=%.1f", $2, $4, $6, c, (o < 0 ? 0 : o) }') $(awk -v t="$tail_ticks" -v s="$tail_s" -v i="$idle" -v hz="$hz" -v n="$n" 'BEGIN {
			# tail_us: the CPU the server spent after the run, until at rest,
			# less its idle rate, per request
			x = (t - i / 100 * hz * s) / hz * 1e6 / n
			printf "tail_us=%.2f tail_s=%.1f idle_cpu=%s", (x < 0 ? 0 : x), s, i }') at=$(date -u +%T) ${note:+note=$note}" | tee -a "$results"
	done
}

# gen writes n RESP SETs of size-byte values under key:%012d to a file.
gen() { # size n file
	awk -v size="$1" -v n="$2" 'BEGIN {
		v = "x"; while (length(v) < size) v = v v; v = substr(v, 1, size)
		for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$%d\r\n%s\r\n", i, size, v
	}' >"$3"
}

memory() { # label size
	local label=$1 size=$2 n before after pipe dbsize index extra=
	n=$(keys_for "$size")
	before=$(info "$port" memory used_memory)
	pipe=$(redis-cli -p "$port" --pipe <"$work/load-$size" 2>&1 | tr '\r\n' '  ')
	sleep 1
	after=$(info "$port" memory used_memory)
	dbsize=$(redis-cli -p "$port" dbsize)
	if [ "$label" = bpfdb ]; then
		index=$(awk -v b="$before" -v k=$max_keys 'BEGIN {print b / k}')
		extra="index_per_key=$index value_pages_used=$(info "$port" memory value_pages_used) used_memory_kernel=$(info "$port" memory used_memory_kernel)"
	else
		index=0
	fi
	echo "mem $label $size keys=$n dbsize=$dbsize before=$before after=$after delta_per_key=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}') per_key=$(awk -v a="$after" -v b="$before" -v n="$n" -v i="$index" 'BEGIN {printf "%.1f", (a - b) / n + i}') $extra pipe=[$pipe]" | tee -a "$results"
}

echo "== $(nproc) CPUs, $(uname -r), redis-server $(redis-server --version | awk '{print $3}'), bpfdb $(git describe --always --dirty), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== bpfdb serve --durability async --max-keys $max_keys --maxmemory $maxmemory --max-value-len $max_value_len; redis-server --save '' --appendonly no"
for r in $(seq "$rounds"); do
	echo "== round $r of $rounds, $(date -u +%T)"
	for size in $sizes; do
		start_bpfdb; bench bpfdb "$size"; stop_bpfdb
		start_redis; bench redis "$size"; stop_redis
	done
done
echo "== memory per key"
for size in $sizes; do
	gen "$size" "$(keys_for "$size")" "$work/load-$size"
	start_bpfdb noidle; memory bpfdb "$size"; stop_bpfdb
	start_redis noidle; memory redis "$size"; stop_redis
	rm -f "$work/load-$size"
done
if grep -qiE 'error|panic|refus' "$work/bpfdb.log"; then
	echo "== bpfdb's log has errors:"
	grep -iE 'error|panic|refus' "$work/bpfdb.log" | sort | uniq -c | head -20
fi

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print 0; else print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
# quiet label size test: the cell's results of the rounds in which other
# processes took at most OTHER_MAX % of the machine
quiet() { grep "^$1 $2 $3 " "$results" | awk -v max="$other_max" '{for (i = 1; i <= NF; i++) if ($i ~ /^other_cpu=/ && substr($i, 11) + 0 > max) next; print}'; }
# m label size test field: the median over the quiet rounds
m() { quiet "$1" "$2" "$3" | tr ' ' '\n' | awk -F= -v f="$4" '$1 == f {print $2 + 0}' | median; }
kept() { quiet "$1" "$2" "$3" | wc -l; }
human() { case $1 in 100) echo "100 B";; 4096) echo "4 KiB";; 65536) echo "64 KiB";; 1048576) echo "1 MiB";; *) echo "$1 B";; esac; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2f", a / b}'; }
echo
echo "Medians over the rounds in which other processes took at most $other_max% of the machine (other_cpu); rounds kept of $rounds:"
echo
echo "| rounds kept | bpfdb SET | redis SET | bpfdb GET | redis GET |"
echo "|---|---:|---:|---:|---:|"
for size in $sizes; do
	printf "| %s | %s | %s | %s | %s |\n" "$(human "$size")" "$(kept bpfdb "$size" SET)" "$(kept redis "$size" SET)" "$(kept bpfdb "$size" GET)" "$(kept redis "$size" GET)"
done
echo
echo "| requests/s, median | requests, keys (-r) | bpfdb SET | redis SET | bpfdb/redis | bpfdb GET | redis GET | bpfdb/redis |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for size in $sizes; do
	printf "| %s | %s, %s |" "$(human "$size")" "$(($(requests_for "$size") / scale))" "$(keys_for "$size")"
	for t in SET GET; do
		a=$(m bpfdb "$size" $t rps) b=$(m redis "$size" $t rps)
		printf " %.0f | %.0f | %s |" "$a" "$b" "$(ratio "$a" "$b")"
	done
	echo
done
echo
echo "| server CPU µs/request (the server process's utime+stime: during the run + after it, until at rest), median | bpfdb SET | redis SET | bpfdb/redis | bpfdb GET | redis GET | bpfdb/redis |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for size in $sizes; do
	printf "| %s |" "$(human "$size")"
	for t in SET GET; do
		ad=$(m bpfdb "$size" $t proc_us) at=$(m bpfdb "$size" $t tail_us)
		bd=$(m redis "$size" $t proc_us) bt=$(m redis "$size" $t tail_us)
		a=$(awk -v x="$ad" -v y="$at" 'BEGIN {print x + y}') b=$(awk -v x="$bd" -v y="$bt" 'BEGIN {print x + y}')
		printf " %.1f + %.1f | %.1f + %.1f | %s (%s during) |" "$ad" "$at" "$bd" "$bt" "$(ratio "$a" "$b")" "$(ratio "$ad" "$bd")"
	done
	echo
done
echo
echo "At rest (2 s after each start, median): bpfdb $(grep '^bpfdb ' "$results" | tr ' ' '\n' | awk -F= '$1 == "idle_cpu" {print $2}' | median)% of a core, redis-server $(grep '^redis ' "$results" | tr ' ' '\n' | awk -F= '$1 == "idle_cpu" {print $2}' | median)%; the columns after the + are net of it."
echo
echo "| machine softirq µs/request (loopback, both ends) / redis-benchmark's CPU %, median | bpfdb SET | redis SET | bpfdb GET | redis GET |"
echo "|---|---:|---:|---:|---:|"
for size in $sizes; do
	printf "| %s |" "$(human "$size")"
	for l in "bpfdb SET" "redis SET" "bpfdb GET" "redis GET"; do
		set -- $l
		printf " %.2f / %.0f%% |" "$(m "$1" "$size" "$2" softirq_us)" "$(m "$1" "$size" "$2" client_cpu)"
	done
	echo
done
echo
echo "| memory per key, 16-byte keys | keys | bpfdb value store (used_memory delta / keys) | bpfdb with its index share | redis (used_memory delta / keys) | bpfdb/redis | bpfdb / value size | redis / value size |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for size in $sizes; do
	b=$(grep "^mem bpfdb $size " "$results") rd=$(grep "^mem redis $size " "$results")
	f() { echo "$1" | tr ' ' '\n' | awk -F= -v f="$2" '$1 == f {print $2}'; }
	bd=$(f "$b" delta_per_key) bp=$(f "$b" per_key) rp=$(f "$rd" per_key)
	printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$(human "$size")" "$(f "$b" keys)" "$bd" "$bp" "$rp" "$(ratio "$bp" "$rp")" "$(ratio "$bp" "$size")" "$(ratio "$rp" "$size")"
done
