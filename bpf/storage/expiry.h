/* SPDX-License-Identifier: GPL-2.0 */
/*
 * expiry.h: keys with a deadline.
 *
 * An expiring value is stored as its bytes followed by its deadline, the
 * Unix time in milliseconds as 8 little-endian bytes, and its length is
 * flagged with BPFDB_LEN_EXPIRES (bpfdb.h). The deadline is thus part of
 * the version: logged with the write, copied into checkpoints, seen by a
 * snapshot as of its version, and a key without one costs nothing more.
 *
 * Invariants:
 *
 *  1. One clock: bpf_ktime_get_ns() + control.wall_offset_ns (set by Go at
 *     Open, from the same two clocks), in ms. A version whose deadline is
 *     below a reader's time reads as absent (Redis: expired when now >
 *     deadline).
 *  2. A reader's time: an autocommit op's, the moment it meets a deadline
 *     (EXPIRY_NOW: a key without one reads no clock); a transaction's,
 *     taken at its begin (txn_table start_ns) and used for its every read,
 *     so a snapshot or a transaction sees one instant.
 *  3. An expired value stays a version until a logged deletion replaces it
 *     (BPFDB_DEL_EXPIRED, run by the engine's expirer): recovery replays
 *     the deletion, or the deadline with the value, and decides the same.
 */
#ifndef BPFDB_EXPIRY_H
#define BPFDB_EXPIRY_H

#include "maps.h"

#define NSEC_PER_MSEC 1000000ULL

/* A reader's time that is the store's clock when it meets a deadline (invariant 2). */
#define EXPIRY_NOW 0

/* len_expires: a stored value of length len carries a deadline. */
static __always_inline int len_expires(__u32 len)
{
	return len != BPFDB_TOMBSTONE && (len & BPFDB_LEN_EXPIRES);
}

/* stored_len is the bytes a value of length len occupies (deadline included). */
static __always_inline __u32 stored_len(__u32 len)
{
	return len == BPFDB_TOMBSTONE ? 0 : len & BPFDB_LEN_MASK;
}

/* len_type is the type (enum bpfdb_value_type) of a value of length len. */
static __always_inline __u32 len_type(__u32 len)
{
	return len == BPFDB_TOMBSTONE ? BPFDB_TYPE_STRING : (len & BPFDB_LEN_TYPE) >> BPFDB_LEN_TYPE_SHIFT;
}

/* user_len is the bytes of a value of length len without its deadline. */
static __always_inline __u32 user_len(__u32 len)
{
	__u32 n = stored_len(len);

	return len_expires(len) && n >= BPFDB_DEADLINE_LEN ? n - BPFDB_DEADLINE_LEN : n;
}

/*
 * value_len_ok: len is a length a write may carry: a value of at most
 * BPFDB_MAX_BLOB_LEN stored bytes (more than BPFDB_MAX_VALUE_LEN: a blob,
 * storage/blob.h), of a type in use, a flagged one at least its deadline.
 */
static __always_inline int value_len_ok(__u32 len)
{
	__u32 n = len & BPFDB_LEN_MASK;

	if (len & ~(__u32)(BPFDB_LEN_MASK | BPFDB_LEN_EXPIRES | BPFDB_LEN_TYPE) || len_type(len) >= BPFDB_TYPES)
		return 0;
	if (len & BPFDB_LEN_EXPIRES)
		return n >= BPFDB_DEADLINE_LEN && n <= BPFDB_MAX_BLOB_LEN;
	return n <= BPFDB_MAX_BLOB_LEN;
}

/* store_now_ms is the store's clock (invariant 1). */
static __always_inline __u64 store_now_ms(struct bpfdb_control *ctl)
{
	return (bpf_ktime_get_ns() + READ_ONCE_U64(ctl->wall_offset_ns)) / NSEC_PER_MSEC;
}

/* clock_ms is the store's clock at ns, a bpf_ktime_get_ns() reading. */
static __always_inline __u64 clock_ms(struct bpfdb_control *ctl, __u64 ns)
{
	return (ns + READ_ONCE_U64(ctl->wall_offset_ns)) / NSEC_PER_MSEC;
}

/*
 * deadline_passed: a value with deadline d (0: none) has expired at now
 * (EXPIRY_NOW: at the store's clock).
 */
static __always_inline int deadline_passed(__u64 d, __u64 now)
{
	struct bpfdb_control *ctl;

	if (d == 0)
		return 0;
	if (now == EXPIRY_NOW) {
		ctl = control_block();
		now = ctl ? store_now_ms(ctl) : 0;
	}
	return now > d;
}

#endif /* BPFDB_EXPIRY_H */
