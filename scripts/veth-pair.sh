# veth-pair.sh, sourced by the comparison scripts: two network namespaces
# joined by a veth pair, and an XDP pass program to put on an end.
#
#   veth_pair NS_A IF_A IP_A NS_B IF_B IP_B   (addresses on a /30; lo up in NS_A)
#   veth_pair_del NS_A NS_B
#   xdp_pass_object DIR                        (compiles DIR/pass.o)

veth_pair() {
	ip netns add "$1"
	ip netns add "$4"
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
	ip -n "$1" addr add "$3/30" dev "$2"
	ip -n "$4" addr add "$6/30" dev "$5"
	ip -n "$1" link set "$2" up
	ip -n "$4" link set "$5" up
	ip -n "$1" link set lo up
}

veth_pair_del() {
	ip netns del "$1" 2>/dev/null || true
	ip netns del "$2" 2>/dev/null || true
}

xdp_pass_object() {
	cat >"$1/pass.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }
char _license[] SEC("license") = "GPL";
C
	clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$1/pass.c" -o "$1/pass.o"
}
