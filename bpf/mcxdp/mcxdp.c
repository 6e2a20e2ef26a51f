// SPDX-License-Identifier: GPL-2.0
/*
 * mcxdp.c: memcached's UDP get and gets, answered in XDP from the store.
 *
 * A datagram to mcxdp_port (Ethernet, IPv4 without options, unfragmented
 * UDP) carrying one "get <key>*" or "gets <key>*" line is answered where
 * it arrives: the program reads every key (one key: a lock-free snapshot
 * get; several: a read-only kernel transaction, one snapshot for all, so
 * never half of a commit), writes memcached's reply ("VALUE <key> 0
 * <bytes>[ <cas>]" and the data per hit, then "END") over the request,
 * swaps the addresses and sends it back out of the interface (XDP_TX).
 * The cas of gets is the version's commit timestamp, as in user space.
 *
 * Everything else passes (XDP_PASS) to the kernel's stack and so to
 * bpfdb's user-space UDP server (package mcudp), which answers it: other
 * commands, a reply larger than one datagram, a key longer than the
 * store's limit, more than MCXDP_KEYS keys, a request longer than
 * MCXDP_REQ_MAX, a malformed frame or line (answered with memcached's
 * error there), a store that cannot answer now, a packet that cannot grow.
 * The packet is left untouched until the reply is complete in the
 * scratch buffer and the packet has grown to fit it: a request passed up
 * is the request that arrived. Each outcome is counted (mcxdp_stats).
 *
 * Memcached's flags are always 0 (bpfdb keeps none; mcudp refuses others).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <stddef.h>

#include "bpfdb_api.h"
#include "mcxdp/mcxdp.h"

char _license[] SEC("license") = "GPL";

/* The UDP port answered, set by the loader before loading. */
volatile const __u16 mcxdp_port = 11211;

/* Where the UDP payload (the frame header) starts: no IP options. */
#define MCXDP_PAYLOAD_OFF (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MCXDP_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} mcxdp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mcxdp_scratch);
} mcxdp_scratch SEC(".maps");

static __always_inline void mc_count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&mcxdp_stats, &stat);

	if (v)
		*v += n;
}

static __always_inline struct mcxdp_scratch *mc_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mcxdp_scratch, &zero);
}

/* mc_pass counts why a request goes up to user space, and lets it. */
static __always_inline int mc_pass(__u32 why)
{
	mc_count(why, 1);
	return XDP_PASS;
}

/* ---- parsing the command line ------------------------------------------- */

struct mc_parse {
	struct mcxdp_scratch *s;
	__u32 start; /* the first byte after the command's name */
};

/*
 * mc_parse_cb reads byte start+idx of the request: keys are separated by
 * spaces, and any other byte is part of a key (as in memcached, whose
 * clients use control bytes in keys); the line ends with "\r\n" (or
 * "\n"), which must end the text.
 */
static long mc_parse_cb(__u64 idx, void *ctx)
{
	struct mc_parse *p = ctx;
	struct mcxdp_scratch *s = p->s;
	__u32 i = p->start + (__u32)idx, n;
	__u8 c;

	if (!s)
		return 1;
	if (i >= s->req_len) {
		s->pass = MCXDP_PASS_BAD; /* no end of line */
		return 1;
	}
	c = s->req[i & (MCXDP_REQ_MAX - 1)];
	if (c == ' ') {
		s->in_key = 0;
		return 0;
	}
	if (c == '\r' || c == '\n') {
		if (c == '\r' && (i + 2 != s->req_len || s->req[(i + 1) & (MCXDP_REQ_MAX - 1)] != '\n'))
			s->pass = MCXDP_PASS_BAD;
		else if (c == '\n' && i + 1 != s->req_len)
			s->pass = MCXDP_PASS_BAD;
		else
			s->done = 1;
		return 1;
	}
	if (!s->in_key) {
		if (s->nkeys >= MCXDP_KEYS) {
			s->pass = MCXDP_PASS_KEYS;
			return 1;
		}
		n = s->nkeys & (MCXDP_KEYS - 1);
		s->keys[n].off = i;
		s->keys[n].len = 0;
		s->nkeys++;
		s->in_key = 1;
	}
	n = (s->nkeys - 1) & (MCXDP_KEYS - 1);
	if (++s->keys[n].len > BPFDB_MAX_KEY_LEN) {
		s->pass = MCXDP_PASS_KEY;
		return 1;
	}
	return 0;
}

/* ---- building the reply -------------------------------------------------- */

static __always_inline void mc_put(struct mcxdp_scratch *s, __u32 off, __u8 c)
{
	s->reply[off & (MCXDP_REPLY_BUF - 1)] = c;
}

/* A number in decimal: its digits end at b[MCXDP_NUM_LEN - 1]. */
#define MCXDP_NUM_LEN 24
struct mcxdp_num {
	__u8 b[MCXDP_NUM_LEN];
};

/*
 * mcxdp_format_uint writes v's digits at the end of num and returns how
 * many. A global function: verified once, not once per caller's state.
 */
__noinline int mcxdp_format_uint(__u64 v, struct mcxdp_num *num)
{
	int n = 0, i;

	if (!num)
		return 0;
	for (i = 0; i < 20; i++) {
		num->b[MCXDP_NUM_LEN - 1 - i] = '0' + v % 10;
		n++;
		v /= 10;
		if (!v)
			break;
	}
	return n;
}

/* mc_put_uint writes v in decimal at reply[off]; returns the offset after it. */
static __always_inline __u32 mc_put_uint(struct mcxdp_scratch *s, __u32 off, __u64 v)
{
	struct mcxdp_num num;
	int n = mcxdp_format_uint(v, &num);

	if (n < 1 || n > 20)
		return off;
	bpf_probe_read_kernel(s->reply + (off & MCXDP_REPLY_MASK), n, &num.b[MCXDP_NUM_LEN - n]);
	return off + n;
}

struct mc_items {
	struct mcxdp_scratch *s;
	struct bpfdb_txn_handle tx;
	__u32 multi;  /* several keys: read in the transaction tx */
	__u32 pass;   /* an enum mcxdp_stat to pass up with, or 0 */
	__u32 hits;
	__u32 misses;
};

/* mc_item_cb reads key idx and appends its item to the reply if it has a value. */
static long mc_item_cb(__u64 idx, void *ctx)
{
	struct mc_items *c = ctx;
	struct mcxdp_scratch *s = c->s;
	struct bpfdb_key key = {};
	__u32 off, len, vlen = 0, r;
	__u64 version = 0;
	int status;

	if (!s || idx >= s->nkeys)
		return 1;
	off = s->keys[idx & (MCXDP_KEYS - 1)].off & (MCXDP_REQ_MAX - 1);
	len = s->keys[idx & (MCXDP_KEYS - 1)].len;
	if (len == 0 || len > BPFDB_MAX_KEY_LEN) {
		c->pass = MCXDP_PASS_BAD;
		return 1;
	}
	key.len = len;
	bpf_probe_read_kernel(key.data, len, s->req + off);
	if (c->multi)
		status = bpfdb_txn_get_version(&c->tx, &key, &s->val, &vlen, &version);
	else
		status = bpfdb_get_version(&key, &s->val, &vlen, &version);
	if (status == BPFDB_ERR_NOT_FOUND) {
		c->misses++;
		return 0;
	}
	if (status != BPFDB_OK || vlen > BPFDB_MAX_VALUE_LEN) {
		c->pass = MCXDP_PASS_STORE;
		return 1;
	}
	r = s->reply_len;
	if (r + MCXDP_ITEM_LINE + len + vlen + 2 + 5 > MCXDP_DATAGRAM) {
		c->pass = MCXDP_PASS_TOO_BIG;
		return 1;
	}
	r &= MCXDP_REPLY_MASK;
	mc_put(s, r, 'V');
	mc_put(s, r + 1, 'A');
	mc_put(s, r + 2, 'L');
	mc_put(s, r + 3, 'U');
	mc_put(s, r + 4, 'E');
	mc_put(s, r + 5, ' ');
	r += 6;
	bpf_probe_read_kernel(s->reply + (r & MCXDP_REPLY_MASK), len, key.data);
	r += len;
	mc_put(s, r, ' ');
	mc_put(s, r + 1, '0');
	mc_put(s, r + 2, ' ');
	r = mc_put_uint(s, r + 3, vlen);
	if (s->with_cas) {
		mc_put(s, r, ' ');
		r = mc_put_uint(s, r + 1, version);
	}
	mc_put(s, r, '\r');
	mc_put(s, r + 1, '\n');
	r += 2;
	if (vlen > 0)
		bpf_probe_read_kernel(s->reply + (r & MCXDP_REPLY_MASK), vlen, s->val.b);
	r += vlen;
	mc_put(s, r, '\r');
	mc_put(s, r + 1, '\n');
	s->reply_len = r + 2;
	c->hits++;
	return 0;
}

/*
 * mc_reply reads the keys of the parsed get into the reply: 0, or an enum
 * mcxdp_stat to pass the request up with.
 */
static __always_inline __u32 mc_reply(struct mcxdp_scratch *s, struct mc_items *items)
{
	__u32 r;

	items->multi = s->nkeys > 1;
	if (items->multi && bpfdb_txn_begin(&items->tx, 1) != BPFDB_OK)
		return MCXDP_PASS_STORE;
	bpf_loop(MCXDP_KEYS, mc_item_cb, items, 0);
	if (items->multi)
		bpfdb_txn_commit(&items->tx, NULL); /* read-only: ends it, writes nothing */
	if (items->pass)
		return items->pass;
	r = s->reply_len;
	if (r + 5 > MCXDP_DATAGRAM)
		return MCXDP_PASS_TOO_BIG;
	mc_put(s, r, 'E');
	mc_put(s, r + 1, 'N');
	mc_put(s, r + 2, 'D');
	mc_put(s, r + 3, '\r');
	mc_put(s, r + 4, '\n');
	s->reply_len = r + 5;
	return 0;
}

/* ---- the packet ------------------------------------------------------------ */

/*
 * The headers of a request, and of its reply, on the stack: two bytes of
 * padding first align the IP header for the checksum.
 */
struct mc_hdrs {
	__u16 _align;
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
};

#define MC_HDRS_LEN (sizeof(struct mc_hdrs) - offsetof(struct mc_hdrs, eth))
_Static_assert(MC_HDRS_LEN == MCXDP_PAYLOAD_OFF, "the headers are contiguous, the payload follows");

static __always_inline __u16 mc_ip_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* mc_reply_hdrs turns a request's headers into its reply's, of total bytes of payload. */
static __always_inline void mc_reply_hdrs(struct mc_hdrs *h, __u32 total)
{
	__u8 mac[ETH_ALEN];
	__be32 addr;
	__be16 port;

	__builtin_memcpy(mac, h->eth.h_source, ETH_ALEN);
	__builtin_memcpy(h->eth.h_source, h->eth.h_dest, ETH_ALEN);
	__builtin_memcpy(h->eth.h_dest, mac, ETH_ALEN);
	addr = h->ip.saddr;
	h->ip.saddr = h->ip.daddr;
	h->ip.daddr = addr;
	h->ip.tot_len = bpf_htons(sizeof(h->ip) + sizeof(h->udp) + total);
	h->ip.ttl = 64;
	h->ip.check = 0;
	h->ip.check = mc_ip_csum(&h->ip);
	port = h->udp.source;
	h->udp.source = h->udp.dest;
	h->udp.dest = port;
	h->udp.len = bpf_htons(sizeof(h->udp) + total);
	h->udp.check = 0; /* optional in IPv4 */
}

/*
 * mc_send turns the request packet into the reply of total bytes of UDP
 * payload (s->reply). The packet grows at its tail where the buffer has
 * room, else at its head (XDP guarantees headroom; a veth's buffers have
 * little tailroom), shrinks at its tail; then the reply's headers and
 * payload are written over it. Returns XDP_TX, or XDP_PASS with the
 * packet untouched when it cannot grow enough.
 */
static __always_inline int mc_send(struct xdp_md *ctx, struct mcxdp_scratch *s, __u32 total)
{
	int delta = (int)(MCXDP_PAYLOAD_OFF + total) - (int)(ctx->data_end - ctx->data);
	struct mc_hdrs h;

	if (total < MCXDP_FRAME_HDR || total > MCXDP_DATAGRAM)
		return mc_pass(MCXDP_PASS_TOO_BIG);
	if (bpf_xdp_load_bytes(ctx, 0, &h.eth, MC_HDRS_LEN))
		return mc_pass(MCXDP_PASS_BAD);
	if (delta && bpf_xdp_adjust_tail(ctx, delta) && (delta < 0 || bpf_xdp_adjust_head(ctx, -delta)))
		return mc_pass(MCXDP_PASS_ROOM);
	/* From here the request is gone: the reply is complete and fits. */
	mc_reply_hdrs(&h, total);
	if (bpf_xdp_store_bytes(ctx, 0, &h.eth, MC_HDRS_LEN) ||
	    bpf_xdp_store_bytes(ctx, MCXDP_PAYLOAD_OFF, s->reply, total))
		return XDP_DROP; /* cannot happen: the packet was just sized to it */
	return XDP_TX;
}

SEC("xdp")
int mcxdp_get(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct mc_items items = {};
	struct mc_parse parse = {};
	struct mcxdp_scratch *s;
	__u8 *frame = (void *)(udp + 1);
	__u32 ulen, plen, why;

	if ((void *)(frame + MCXDP_FRAME_HDR) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x3fff)) || udp->dest != bpf_htons(mcxdp_port))
		return XDP_PASS; /* not a request to us that we can read: the stack decides */
	ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) + MCXDP_FRAME_HDR || (void *)udp + ulen > data_end)
		return mc_pass(MCXDP_PASS_BAD);
	/* One datagram per request: sequence 0 of 1 (0 from some clients). */
	if (frame[2] || frame[3] || frame[4] || frame[5] > 1)
		return mc_pass(MCXDP_PASS_BAD);
	plen = ulen - sizeof(*udp) - MCXDP_FRAME_HDR;
	if (plen > MCXDP_REQ_MAX)
		return mc_pass(MCXDP_PASS_LONG);
	if (plen < 4)
		return mc_pass(MCXDP_PASS_COMMAND);
	s = mc_scratch();
	if (!s || bpf_xdp_load_bytes(ctx, MCXDP_PAYLOAD_OFF + MCXDP_FRAME_HDR, s->req, plen))
		return mc_pass(MCXDP_PASS_BAD);
	if (s->req[0] != 'g' || s->req[1] != 'e' || s->req[2] != 't')
		return mc_pass(MCXDP_PASS_COMMAND);
	if (s->req[3] == ' ') {
		parse.start = 4;
		s->with_cas = 0;
	} else if (s->req[3] == 's' && plen > 4 && s->req[4] == ' ') {
		parse.start = 5;
		s->with_cas = 1;
	} else {
		return mc_pass(MCXDP_PASS_COMMAND);
	}
	parse.s = s;
	items.s = s;
	s->req_len = plen;
	s->nkeys = 0;
	s->in_key = 0;
	s->done = 0;
	s->pass = 0;
	bpf_loop(MCXDP_REQ_MAX, mc_parse_cb, &parse, 0);
	if (s->pass)
		return mc_pass(s->pass);
	if (!s->done || s->nkeys == 0)
		return mc_pass(MCXDP_PASS_BAD);
	/* The reply's frame header: the request's id, datagram 0 of 1. */
	s->reply[0] = frame[0];
	s->reply[1] = frame[1];
	s->reply[2] = 0;
	s->reply[3] = 0;
	s->reply[4] = 0;
	s->reply[5] = 1;
	s->reply[6] = 0;
	s->reply[7] = 0;
	s->reply_len = MCXDP_FRAME_HDR;
	why = mc_reply(s, &items);
	if (why)
		return mc_pass(why);
	why = mc_send(ctx, s, s->reply_len);
	if (why == XDP_TX) {
		mc_count(MCXDP_ANSWERED, 1);
		mc_count(MCXDP_HITS, items.hits);
		mc_count(MCXDP_MISSES, items.misses);
	}
	return why;
}

/* mcxdp_abi names the enums Go imports through bpf2go (clang emits BTF
 * only for types something uses); never called. */
struct mcxdp_abi {
	enum mcxdp_limit limit;
	enum mcxdp_stat stat;
};

__attribute__((noinline)) int mcxdp_abi_types(struct mcxdp_abi *abi)
{
	return abi != 0;
}
