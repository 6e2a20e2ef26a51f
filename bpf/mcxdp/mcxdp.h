/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mcxdp.h: the limits, counters and scratch space of the XDP memcached
 * front end (mcxdp.c), shared with Go (package mcxdp, by bpf2go).
 */
#ifndef BPFDB_MCXDP_H
#define BPFDB_MCXDP_H

#include "bpfdb.h"

enum mcxdp_limit {
	/* Bytes of request text (after the frame header) the program reads. */
	MCXDP_REQ_MAX = 512,
	/* Keys of one get the program answers; a get of more goes up. */
	MCXDP_KEYS = 16,
	/* The largest reply datagram, frame header included (memcached's
	 * UDP_MAX_PAYLOAD_SIZE, mcudp.MaxDatagram). */
	MCXDP_DATAGRAM = 1400,
	/* The frame header before every datagram's text. */
	MCXDP_FRAME_HDR = 8,
	/* The reply's scratch: a power of two that holds a datagram plus the
	 * largest item, so an append is bounded by masks before it is checked. */
	MCXDP_REPLY_BUF = 4096,
	/* The longest "VALUE <key> 0 <bytes> <cas>\r\n" line, key excluded. */
	MCXDP_ITEM_LINE = 6 + 3 + 10 + 1 + 20 + 2,
};

_Static_assert((MCXDP_REQ_MAX & (MCXDP_REQ_MAX - 1)) == 0, "request offsets are masked");
_Static_assert((MCXDP_REPLY_BUF & (MCXDP_REPLY_BUF - 1)) == 0, "reply offsets are masked");
/* Appends start below MCXDP_DATAGRAM, masked by MCXDP_REPLY_MASK. */
#define MCXDP_REPLY_MASK (MCXDP_REPLY_BUF / 2 - 1)
_Static_assert(MCXDP_DATAGRAM <= MCXDP_REPLY_MASK, "an append starts at an offset the mask keeps");
_Static_assert(MCXDP_REPLY_MASK + MCXDP_ITEM_LINE + BPFDB_MAX_KEY_LEN + BPFDB_MAX_VALUE_LEN + 2 <=
		       MCXDP_REPLY_BUF,
	       "an item appended below the datagram's end stays in the scratch");
_Static_assert(MCXDP_KEYS <= 255, "key counts fit the parse state");

/* The program's counters (mcxdp_stats, per CPU). */
enum mcxdp_stat {
	MCXDP_ANSWERED = 0,     /* gets answered in XDP (XDP_TX) */
	MCXDP_HITS = 1,         /* keys found, in answered gets */
	MCXDP_MISSES = 2,       /* keys not found, in answered gets */
	MCXDP_PASS_COMMAND = 3, /* passed up: not a get or gets */
	MCXDP_PASS_TOO_BIG = 4, /* passed up: the reply needs more than one datagram */
	MCXDP_PASS_KEY = 5,     /* passed up: a key over BPFDB_MAX_KEY_LEN */
	MCXDP_PASS_KEYS = 6,    /* passed up: more than MCXDP_KEYS keys */
	MCXDP_PASS_LONG = 7,    /* passed up: a request over MCXDP_REQ_MAX */
	MCXDP_PASS_BAD = 8,     /* passed up: a malformed frame or command line */
	MCXDP_PASS_STORE = 9,   /* passed up: the store could not answer now */
	MCXDP_PASS_ROOM = 10,   /* passed up: no room to grow the packet */
	MCXDP_STAT_COUNT = 11,
};

/* Where a get's keys are in mcxdp_scratch.req. */
struct mcxdp_keyref {
	__u16 off;
	__u16 len;
};

/* Per-CPU scratch of one run (XDP does not preempt itself on a CPU). */
struct mcxdp_scratch {
	__u8 req[MCXDP_REQ_MAX];
	__u8 reply[MCXDP_REPLY_BUF];
	struct bpfdb_value val;
	struct mcxdp_keyref keys[MCXDP_KEYS];
	__u32 req_len;
	__u32 nkeys;
	__u32 reply_len;
	__u32 with_cas;
	__s32 pass;    /* parse: an enum mcxdp_stat to pass up with, or 0 */
	__u32 in_key;  /* parse: a key is open */
	__u32 done;    /* parse: the line ended */
	__u32 _pad;
};

#endif /* BPFDB_MCXDP_H */
