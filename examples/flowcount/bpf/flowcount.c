// SPDX-License-Identifier: GPL-2.0
/*
 * flowcount.c: an XDP program that counts, per IPv4 source address, the
 * packets and bytes an interface receives, as bpfdb keys
 *
 *   pkts:<a.b.c.d>   bytes:<a.b.c.d>
 *
 * whose values are decimal integers, increased in the kernel with
 * bpfdb_incr (bpf/include/bpfdb_api.h): each increment is an autocommit
 * transaction of the store, logged through its WAL like a RESP INCR, so
 * the counters survive a crash of the process that serves them and race
 * correctly with INCRs from clients. The two keys of a packet are two
 * commits, not one: a reader may see a packet's count before its bytes.
 *
 * Every packet passes (XDP_PASS): counting never drops traffic. A packet
 * whose increment fails (a full log ring, a refused log, a full store) is
 * passed uncounted and the failure is counted in flow_failed by status, so
 * the user-space half can say what was not counted and why.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bpfdb_api.h"

char _license[] SEC("license") = "GPL";

/*
 * How many times an increment is tried when it fails with a transient
 * status: enough to outlast a lock another CPU holds within one run, not
 * one held by a run this program interrupted on its own CPU (that one
 * cannot finish until the program returns: the packet is passed uncounted
 * and the failure counted).
 */
#define FLOW_TRIES 32

/* flow_stats indexes. */
enum flow_stat {
	FLOW_PACKETS = 0,  /* IPv4 packets counted (both keys increased) */
	FLOW_OTHER = 1,    /* packets passed uncounted: not IPv4 */
	FLOW_RETRIES = 2,  /* increments tried again after a transient failure */
	FLOW_FAILED = 3,   /* increments that failed for good (flow_failed says why) */
	FLOW_STAT_COUNT = 4,
};

/* flow_failed holds one counter per enum bpfdb_status, up to this. */
#define FLOW_STATUSES 32
_Static_assert(BPFDB_ERR_TXN_TABLE_FULL < FLOW_STATUSES, "every status has a failure counter");

/* "bytes:" and the longest dotted quad fit a key. */
#define FLOW_PREFIX_MAX 6
#define FLOW_ADDR_MAX 15
_Static_assert(FLOW_PREFIX_MAX + FLOW_ADDR_MAX <= BPFDB_MAX_KEY_LEN, "a counter's key fits");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} flow_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOW_STATUSES);
	__type(key, __u32);
	__type(value, __u64);
} flow_failed SEC(".maps");

/*
 * flow_scratch is bpfdb_incr's value buffer, larger than the BPF stack.
 * Per CPU is safe: XDP runs in softirq, so no other run of this program
 * can interrupt one on the same CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpfdb_value);
} flow_scratch SEC(".maps");

/*
 * flow_key_scratch holds the key being counted, per CPU as flow_scratch:
 * off the stack, since the library's deepest path (a write whose GC
 * frees a value) leaves a program little of the 512 bytes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpfdb_key);
} flow_key_scratch SEC(".maps");

static __always_inline void flow_count(void *map, __u32 index)
{
	__u64 *n = bpf_map_lookup_elem(map, &index);

	if (n)
		*n += 1;
}

/*
 * flow_put writes c at key->data[pos]. The barrier hides pos's range from
 * the compiler, which would otherwise fold the stack address and a small
 * pos with a bitwise or, which the verifier refuses on a pointer; the mask
 * bounds it for the verifier.
 */
static __always_inline void flow_put(struct bpfdb_key *key, __u32 pos, __u8 c)
{
	pos &= BPFDB_MAX_KEY_LEN - 1;
	asm volatile("" : "+r"(pos));
	key->data[pos] = c;
}

/* flow_put_octet writes v in decimal at key->data[pos]; returns the new pos. */
static __always_inline __u32 flow_put_octet(struct bpfdb_key *key, __u32 pos, __u8 v)
{
	if (v >= 100)
		flow_put(key, pos++, '0' + v / 100);
	if (v >= 10)
		flow_put(key, pos++, '0' + v / 10 % 10);
	flow_put(key, pos++, '0' + v % 10);
	return pos;
}

/*
 * flow_key ends key, whose first pos bytes hold its prefix, with the
 * source address saddr as a dotted quad.
 */
static __always_inline void flow_key(struct bpfdb_key *key, __u32 pos, __be32 saddr)
{
	__u32 addr = bpf_ntohl(saddr);

	pos = flow_put_octet(key, pos, addr >> 24);
	flow_put(key, pos++, '.');
	pos = flow_put_octet(key, pos, addr >> 16);
	flow_put(key, pos++, '.');
	pos = flow_put_octet(key, pos, addr >> 8);
	flow_put(key, pos++, '.');
	pos = flow_put_octet(key, pos, addr);
	key->len = pos;
}

/* flow_transient: the statuses after which nothing was applied and a retry may succeed. */
static __always_inline int flow_transient(int status)
{
	return status == BPFDB_ERR_CONFLICT || status == BPFDB_ERR_RETRY ||
	       status == BPFDB_ERR_VERSIONS_FULL;
}

/*
 * flow_try_incr makes one attempt at adding delta to key's counter: a
 * global function, verified once, however many times flow_incr calls it.
 */
__noinline int flow_try_incr(const struct bpfdb_key *key, __s64 delta)
{
	__u32 zero = 0;
	struct bpfdb_value *buf = bpf_map_lookup_elem(&flow_scratch, &zero);
	__s64 sum = 0;

	if (!buf || !key)
		return BPFDB_ERR_INTERNAL;
	return bpfdb_incr(key, delta, buf, &sum, NULL);
}

/*
 * flow_incr adds delta to key's counter, retrying transient failures: a
 * lock held by a writer on another CPU (a RESP INCR's chain run) is held
 * for about a microsecond, so a few dozen tries outlast it.
 */
static __always_inline int flow_incr(const struct bpfdb_key *key, __s64 delta)
{
	int status = BPFDB_ERR_RETRY;
	int i;

	for (i = 0; i < FLOW_TRIES; i++) {
		status = flow_try_incr(key, delta);
		if (!flow_transient(status))
			break;
		flow_count(&flow_stats, FLOW_RETRIES);
	}
	if (status != BPFDB_OK) {
		flow_count(&flow_stats, FLOW_FAILED);
		flow_count(&flow_failed, (__u32)status < FLOW_STATUSES ? (__u32)status : 0);
	}
	return status;
}

SEC("xdp")
int flow_count_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct bpfdb_key *key;
	__u32 zero = 0;
	__be32 saddr;
	int status;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		flow_count(&flow_stats, FLOW_OTHER);
		return XDP_PASS;
	}
	key = bpf_map_lookup_elem(&flow_key_scratch, &zero);
	if (!key)
		return XDP_PASS;
	saddr = ip->saddr;
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->data, "pkts:", 5);
	flow_key(key, 5, saddr);
	status = flow_incr(key, 1);
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->data, "bytes:", 6);
	flow_key(key, 6, saddr);
	status |= flow_incr(key, (__s64)(data_end - data));
	if (status == BPFDB_OK)
		flow_count(&flow_stats, FLOW_PACKETS);
	return XDP_PASS;
}
