#!/usr/bin/env bash
# flowcount-compare.sh: the CPU of one kernel-side increment, made by the
# example XDP program (examples/flowcount: two bpfdb_incr per packet) on a
# veth, against RESP INCR on bpfdb serve, in one run (issue 14's measure).
#
#   scripts/flowcount-compare.sh [rounds]    (as root, after make; needs
#                                             clang, python3, redis-benchmark)
#
# Each round: 200,000 UDP datagrams of 64 bytes from a Python loop in one
# namespace to the other with no XDP program, with an XDP_PASS program, and
# with flowcount (--async, as bpfdb serve below: the log fsynced every
# 10ms); then redis-benchmark INCR against bpfdb serve --durability async,
# unpipelined and -P 16. ../shared/tools/cpu-per-op prints the process CPU
# (flowcount's is its log writer) and the machine's softirq per operation:
# the program's share is flowcount's softirq less the XDP_PASS round's.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/veth-pair.sh
rounds=${1:-3}
n=200000
cpu=../shared/tools/cpu-per-op
a=bpfdb-fc-a b=bpfdb-fc-b
work=$(mktemp -d)
cleanup() {
	pkill -f "bin/flowcount --iface fc0" 2>/dev/null || true
	pkill -f "bpfdb serve --dir $work" 2>/dev/null || true
	sleep 0.5
	veth_pair_del $a $b
	rm -rf "$work"
}
trap cleanup EXIT
veth_pair $a fc0 10.214.0.1 $b fc1 10.214.0.2
xdp_pass_object "$work"
cat > "$work/send.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b'x' * 64, ('10.214.0.1', 9))
PY
send=(ip netns exec $b python3 "$work/send.py" $n)
ip netns exec $b python3 "$work/send.py" 1 # ARP
row() { local name=$1 pid=$2; shift 3; echo "$name $($cpu "$pid" "$n" -- "$@" | tr '\n' ' ')"; }
for r in $(seq "$rounds"); do
	echo "== round $r"
	row no-program 1 -- "${send[@]}"
	ip -n $a link set dev fc0 xdpdrv obj "$work/pass.o" sec xdp
	row xdp-pass 1 -- "${send[@]}"
	ip -n $a link set dev fc0 xdpdrv off
	rm -rf "$work/fc"
	ip netns exec $a bin/flowcount --iface fc0 --dir "$work/fc" --report 0 --async >"$work/fc.log" 2>&1 &
	for _ in $(seq 100); do ip netns exec $a redis-cli -p 6380 ping >/dev/null 2>&1 && break; sleep 0.1; done
	pid=$(pgrep -f "bin/flowcount --iface fc0")
	row flowcount-per-packet "$pid" -- "${send[@]}"
	sleep 0.5
	echo "counted: $(ip netns exec $a redis-cli -p 6380 mget pkts:10.214.0.2 bytes:10.214.0.2 | tr '\n' ' ')"
	kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	bin/bpfdb serve --dir "$work/serve" --durability async --listen 127.0.0.1:16411 --metrics "" 2>/dev/null &
	for _ in $(seq 100); do redis-cli -p 16411 ping >/dev/null 2>&1 && break; sleep 0.1; done
	pid=$(pgrep -f "bpfdb serve --dir $work")
	row resp-incr "$pid" -- redis-benchmark -p 16411 -t incr -n $n -c 50 -q
	row resp-incr-P16 "$pid" -- redis-benchmark -p 16411 -t incr -n $n -c 50 -P 16 -q
	kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	rm -rf "$work/serve"
done
