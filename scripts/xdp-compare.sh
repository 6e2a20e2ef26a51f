#!/usr/bin/env bash
# xdp-compare.sh: memcached UDP GETs answered in XDP (bpfdb serve --xdp)
# against the same GETs answered by bpfdb's user-space UDP server, GET over
# RESP (redis-benchmark), and memcached 1.6 over UDP: one run, the same veth
# pair between two network namespaces the script makes, the same 10,000
# records of 100 bytes (key:%012d, as redis-benchmark -r 10000 names them).
#
#   scripts/xdp-compare.sh [rounds]     (as root; needs bin/bpfdb, memcached,
#                                        redis-benchmark, clang for the peer's
#                                        XDP pass program)
#
# The client runs in the client namespace, on the same 2 cores: the figure
# to compare is the CPU each server spends per GET, printed by
# ../shared/tools/cpu-per-op: proc_us_per_op is the server process's
# utime+stime, softirq_us_per_op the whole machine's softirq time (where XDP
# runs, and the network stack of both ends). XDP_TX on a veth needs an XDP
# program on the peer: a pass program stays on the client's end in every run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/veth-pair.sh
rounds=${1:-3}
n=${REQUESTS:-200000}
cpu=../shared/tools/cpu-per-op
srv=bpfdb-xc-s cli=bpfdb-xc-c
sip=10.213.0.1 cip=10.213.0.2
work=$(mktemp -d)
cleanup() {
	pkill -f "bpfdb serve --dir $work" 2>/dev/null || true
	pkill -f "memcached -U 11211 -p 0 -l $sip" 2>/dev/null || true
	sleep 0.5
	veth_pair_del $srv $cli
	rm -rf "$work"
}
trap cleanup EXIT
veth_pair $srv xc0 $sip $cli xc1 $cip
xdp_pass_object "$work"
# The floor of any XDP responder here: answers every get "END" (a miss)
# without looking at the store; what mcxdp costs above it is its own.
cat > "$work/floor.c" <<'C'
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
SEC("xdp") int floor_end(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data; struct iphdr *ip = (void *)(eth + 1); struct udphdr *udp = (void *)(ip + 1);
	unsigned char mac[ETH_ALEN], *f = (void *)(udp + 1);
	__u32 a, sum = 0; __u16 *w; __be16 port; int i;
	if ((void *)(f + 13) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(11211))
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, (int)(14 + 20 + 8 + 13) - (int)(end - data)))
		return XDP_PASS;
	data = (void *)(long)ctx->data; end = (void *)(long)ctx->data_end;
	eth = data; ip = (void *)(eth + 1); udp = (void *)(ip + 1); f = (void *)(udp + 1);
	if ((void *)(f + 13) > end)
		return XDP_DROP;
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN); __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	a = ip->saddr; ip->saddr = ip->daddr; ip->daddr = a;
	ip->tot_len = bpf_htons(20 + 8 + 13); ip->check = 0; w = (void *)ip;
	for (i = 0; i < 10; i++) sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16); sum = (sum & 0xffff) + (sum >> 16); ip->check = ~sum;
	port = udp->source; udp->source = udp->dest; udp->dest = port; udp->len = bpf_htons(8 + 13); udp->check = 0;
	f[2] = 0; f[3] = 0; f[4] = 0; f[5] = 1; f[6] = 0; f[7] = 0;
	f[8] = 'E'; f[9] = 'N'; f[10] = 'D'; f[11] = '\r'; f[12] = '\n';
	return XDP_TX;
}
char _license[] SEC("license") = "GPL";
C
clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$work/floor.c" -o "$work/floor.o"
ip -n $cli link set dev xc1 xdpdrv obj "$work/pass.o" sec xdp

in_cli() { ip netns exec $cli "$@"; }
mcget=(ip netns exec $cli bin/bpfdb bench mcget --addr $sip:11211 --keys 10000)

# serve [args]: starts bpfdb serve in the server namespace, prints its pid.
serve() {
	rm -rf "$work/data"
	ip netns exec $srv bin/bpfdb serve --dir "$work/data" --listen $sip:6380 --metrics "" --durability async "$@" \
		>"$work/serve.log" 2>&1 &
	for _ in $(seq 100); do
		pid=$(pgrep -f "bpfdb serve --dir $work" || true)
		[ -n "$pid" ] && in_cli redis-cli -h $sip -p 6380 ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	echo "$pid"
}
stop() { kill "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; }
row() { # row NAME PID -- COMMAND: one measured cell
	local name=$1 pid=$2
	shift 3
	local out
	out=$($cpu "$pid" "$n" -- "$@")
	echo "$name $(echo $out | tr '\n' ' ')"
}

for r in $(seq "$rounds"); do
	echo "== round $r"
	pid=$(serve --xdp xc0)
	"${mcget[@]}" --load-only 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled=1
	row "bpfdb-xdp" "$pid" -- "${mcget[@]}" -n "$n"
	# The program's own run time per run (bpf_stats; the rest of the
	# softirq figure is the veths' and both ends' network stacks).
	bpftool prog show name mcxdp_get | grep -o 'run_time_ns [0-9]* run_cnt [0-9]*' |
		awk '{printf "bpfdb-xdp program_us_per_run %.3f over %d runs\n", $2/$4/1000, $4}'
	sysctl -qw kernel.bpf_stats_enabled=0
	in_cli redis-cli -h $sip -p 6380 info stats | grep -E "memcache_xdp_(answered|passed_no_room)|memcache_udp_gets" | tr -d '\r' | tr '\n' ' '; echo
	row "bpfdb-resp-get" "$pid" -- ip netns exec $cli redis-benchmark -h $sip -p 6380 -t get -n "$n" -c 50 -r 10000 -d 100 -q
	stop "$pid"
	ip -n $srv link set dev xc0 xdpdrv obj "$work/floor.o" sec xdp
	row "xdp-floor-always-END" 1 -- "${mcget[@]}" -n "$n"
	ip -n $srv link set dev xc0 xdpdrv off
	pid=$(serve --udp-port 11211)
	"${mcget[@]}" --load-only 2>/dev/null
	row "bpfdb-udp-userspace" "$pid" -- "${mcget[@]}" -n "$n"
	stop "$pid"
	ip netns exec $srv memcached -U 11211 -p 0 -l $sip -u root >/dev/null 2>&1 &
	sleep 0.5
	pid=$(pgrep -f "memcached -U 11211 -p 0 -l $sip")
	"${mcget[@]}" --load-only 2>/dev/null
	row "memcached-udp" "$pid" -- "${mcget[@]}" -n "$n"
	stop "$pid"
done
