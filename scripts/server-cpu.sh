# server-cpu.sh, sourced by redis-compare.sh and size-compare.sh: what both
# need to run bpfdb serve beside redis-server and charge each its CPU.
#
#   compare_setup               checks the tools, makes $work, builds bpfdb
#                               (or takes BPFDB=path) into $bpfdb, and stops
#                               both servers and removes $work at exit
#                               (needs bpfdb_port, redis_port, cpu_per_op)
#   wait_port PORT              until a RESP server answers PING there
#   idle_rate                   $idle: $pid's CPU at rest, in % of one core
#   settle                      waits until $pid is at rest again (at most
#                               $idle + 5% of a core over a second, at most
#                               $settle_max s): $tail_ticks over $tail_s s

compare_setup() {
	for tool in redis-server redis-cli redis-benchmark; do
		command -v $tool >/dev/null || { echo "$tool is missing: apt-get install -y redis-server redis-tools" >&2; exit 1; }
	done
	[ -x "$cpu_per_op" ] || { echo "no $cpu_per_op (set CPU_PER_OP)" >&2; exit 1; }
	work=$(mktemp -d)
	bpfdb_pid=
	trap compare_cleanup EXIT
	if [ -n "${BPFDB:-}" ]; then
		bpfdb=$BPFDB
	else
		bpfdb=$work/bpfdb-bin
		go build -ldflags "-X main.version=$(git describe --always --dirty)" -o "$bpfdb" ./cmd/bpfdb
	fi
	hz=$(getconf CLK_TCK)
}

compare_cleanup() {
	redis-cli -p "$bpfdb_port" shutdown >/dev/null 2>&1 || true
	redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
	if [ -n "$bpfdb_pid" ]; then
		for _ in $(seq 100); do kill -0 "$bpfdb_pid" 2>/dev/null || break; sleep 0.1; done
		kill "$bpfdb_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}

wait_port() {
	for _ in $(seq 200); do
		redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "port $1 did not answer" >&2
	exit 1
}

# ticks: the server's ($pid's) utime+stime in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

idle_rate() {
	local a
	sleep 1; a=$(ticks); sleep 2
	idle=$(awk -v d="$(($(ticks) - a))" -v hz="$hz" 'BEGIN {printf "%.1f", d / hz / 2 * 100}')
}

settle() {
	local a b c t0 limit
	limit=$(awk -v i="$idle" -v hz="$hz" 'BEGIN {print int((i + 5) / 100 * hz)}')
	a=$(ticks) t0=$(date +%s.%N) b=$a
	for _ in $(seq "$settle_max"); do
		sleep 1
		c=$(ticks)
		[ $((c - b)) -le "$limit" ] && { b=$c; break; }
		b=$c
	done
	tail_ticks=$((b - a)) tail_s=$(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.1f", t1 - t0}')
}
