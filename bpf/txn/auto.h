/* SPDX-License-Identifier: GPL-2.0 */
/*
 * auto.h: autocommit, a one-key transaction in one call: lock the key's
 * record exclusively (no-wait), reserve a version, store the value, log it
 * and take the commit timestamp (wal/wal.h: ring space first), install,
 * advance visible, unlock. A one-key write has nothing to roll back: every
 * failure leaves the record as it was, and the Go engine retries the
 * retryable ones. The same functions serve the chain's autocommit stage
 * and BPF programs (bpfdb_api.h).
 *
 * Lock-free reads at visible are storage/version.h's read_stable.
 */
#ifndef BPFDB_TXN_AUTO_H
#define BPFDB_TXN_AUTO_H

#include "maps.h"
#include "../storage/slab.h"
#include "../storage/record.h"
#include "../storage/version.h"
#include "clock.h"
#include "lock.h"
#include "../wal/wal.h"

/* What a write did: its commit timestamp, or where the store was full. */
struct bpfdb_written {
	__u64 ts;       /* the commit timestamp, which is the LSN of its log record */
	__u64 deadline; /* an expirer's delete of a live value: the value's deadline */
	__u8 detail;    /* BPFDB_ERR_STORE_FULL: the slab class, or BPFDB_FULL_INDEX */
	__u8 _pad[7];
};

/*
 * auto_apply writes key's new version, the len bytes of val or a tombstone
 * (len BPFDB_TOMBSTONE, val unused and may be NULL), as a transaction of
 * its own. The caller holds rec's exclusive lock. Global: verified once.
 */
__attribute__((noinline)) int auto_apply(struct bpfdb_record *rec, const struct bpfdb_key *key,
					  const struct bpfdb_value *val, __u32 len,
					  struct bpfdb_written *res)
{
	struct bpfdb_control *ctl = control_block();
	int status = BPFDB_OK, vslot;
	__u32 ref = 0;
	__u8 detail = 0;
	__u64 ts;

	if (!rec || !ctl || !key || !res)
		return BPFDB_ERR_INTERNAL;
	vslot = reserve_version(rec);
	if (vslot < 0) {
		stat_add(BPFDB_STAT_ABORTS_VERSIONS_FULL, 1);
		return BPFDB_ERR_VERSIONS_FULL;
	}
	status = slab_put(val, len, &ref, &detail);
	if (status != BPFDB_OK) {
		if (status == BPFDB_ERR_STORE_FULL)
			stat_add(BPFDB_STAT_ABORTS_STORE_FULL, 1);
		res->detail = detail;
		return status;
	}
	ts = wal_commit_auto(ctl, key, val, len, &status);
	if (!ts) {
		slab_free(len, ref);
		return status;
	}
	install_version(rec, INSTALL_AT(vslot, key->db), ts, ref, len);
	mark_done(ctl, ts);
	maybe_refresh_low_hint(ctl, ts);
	stat_add(BPFDB_STAT_COMMITS, 1);
	res->ts = ts;
	return BPFDB_OK;
}

/*
 * auto_lock finds key's record, creating it when create, and takes its
 * exclusive lock for owner (txn/lock.h). BPFDB_ERR_NOT_FOUND when !create
 * and the key was never written.
 */
static __always_inline int auto_lock(const struct bpfdb_key *key, int create, __u32 owner,
				     struct bpfdb_record **recp, __u8 *detail)
{
	struct bpfdb_record *rec;
	int status = BPFDB_OK;

	if (create) {
		rec = record_get_or_create(key, &status);
		if (!rec) {
			if (status == BPFDB_ERR_STORE_FULL)
				*detail = BPFDB_FULL_INDEX;
			return status;
		}
	} else {
		rec = record_lookup(key);
		if (!rec)
			return BPFDB_ERR_NOT_FOUND;
	}
	status = lock_exclusive(rec, owner, 0);
	if (status != BPFDB_OK)
		return status;
	if (!record_valid(key, rec)) { /* removed and reused since the lookup (record.h) */
		unlock_exclusive(rec);
		return BPFDB_ERR_RETRY;
	}
	*recp = rec;
	return BPFDB_OK;
}

/*
 * auto_write sets key to the len bytes of val, or deletes it (len
 * BPFDB_TOMBSTONE), in a transaction of its own, at time now. Deleting a
 * key with no live value is BPFDB_ERR_NOT_FOUND and changes nothing; with
 * only_expired, deleting one whose value has not expired is too (the
 * expirer's logged deletion, storage/expiry.h invariant 3), and
 * res->deadline says when it will (0: never).
 */
static __always_inline int auto_write(const struct bpfdb_key *key, const struct bpfdb_value *val,
				      __u32 len, __u32 owner, __u64 now, int only_expired,
				      struct bpfdb_written *res)
{
	struct version_view vv = {};
	struct bpfdb_record *rec = NULL;
	int del = len == BPFDB_TOMBSTONE, status;

	stat_add(del ? BPFDB_STAT_DELS : BPFDB_STAT_SETS, 1);
	status = auto_lock(key, !del, owner, &rec, &res->detail);
	if (status == BPFDB_ERR_CONFLICT)
		stat_add(BPFDB_STAT_ABORTS_CONFLICT, 1);
	if (status != BPFDB_OK || !rec)
		return status;
	if (del && (read_latest(rec, now, &vv) == BPFDB_OK) == only_expired) {
		status = BPFDB_ERR_NOT_FOUND;
		if (only_expired)
			res->deadline = slab_deadline(vv.len, vv.ref);
	} else if (del && only_expired && !vv.expired)
		status = BPFDB_ERR_NOT_FOUND;
	else
		status = auto_apply(rec, key, val, len, res);
	/* A deleted key gives its record back at once when no snapshot needs it. */
	if (del && (status == BPFDB_OK || status == BPFDB_ERR_NOT_FOUND) && record_collect(key, rec))
		return status;
	unlock_exclusive(rec);
	return status;
}

/*
 * auto_load installs key's value (or a tombstone) at ts without logging it
 * or touching the clock: recovery replays checkpoints and the log this way,
 * in timestamp order, and sets clock and visible itself afterwards.
 */
static __always_inline int auto_load(const struct bpfdb_key *key, const struct bpfdb_value *val,
				     __u32 len, __u64 ts, __u32 owner, __u8 *detail)
{
	struct bpfdb_record *rec = NULL;
	int status, vslot;
	__u32 ref = 0;

	status = auto_lock(key, 1, owner, &rec, detail);
	if (status != BPFDB_OK || !rec)
		return status;
	vslot = reserve_version(rec);
	if (vslot < 0) {
		status = BPFDB_ERR_VERSIONS_FULL;
		goto unlock;
	}
	status = slab_put(val, len, &ref, detail);
	if (status == BPFDB_OK)
		install_version(rec, INSTALL_AT(vslot, key->db), ts, ref, len);
unlock:
	unlock_exclusive(rec);
	return status;
}

/* ---- values as decimal integers (INCRBY) -------------------------------- */

/* The longest decimal int64: "-9223372036854775808". */
#define BPFDB_INT_MAX_LEN 20

/*
 * int_parse reads the len bytes of buf as a decimal int64 as Redis does:
 * an optional '-', then digits with no leading zero (but "0"); nothing
 * else. 0 with *out set, or -1.
 */
static __always_inline int int_parse(const struct bpfdb_value *buf, __u32 len, __s64 *out)
{
	__u32 neg, i;
	__u64 v = 0;

	if (len == 0 || len > BPFDB_INT_MAX_LEN)
		return -1;
	neg = buf->b[0] == '-';
	if (neg && len == 1)
		return -1;
	if (buf->b[neg] == '0' && (len > 1 || neg))
		return -1;
	if (len - neg > BPFDB_INT_MAX_LEN - 1) /* 19 digits: below 2^64, no overflow here */
		return -1;
	for (i = 0; i < BPFDB_INT_MAX_LEN; i++) {
		__u8 c;

		if (i < neg)
			continue;
		if (i >= len)
			break;
		c = buf->b[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	if (neg) {
		if (v > (1ULL << 63))
			return -1;
		*out = (__s64)(0 - v);
	} else {
		if (v > (1ULL << 63) - 1)
			return -1;
		*out = (__s64)v;
	}
	return 0;
}

/* int_format writes v in decimal at the start of buf and returns its length. */
static __always_inline __u32 int_format(__s64 v, struct bpfdb_value *buf)
{
	__u8 tmp[32];
	__u64 u = v < 0 ? 0 - (__u64)v : (__u64)v;
	__u32 n = 0, neg = v < 0, i;

	for (i = 0; i < BPFDB_INT_MAX_LEN; i++) {
		tmp[n & 31] = '0' + u % 10;
		n++;
		u /= 10;
		if (!u)
			break;
	}
	if (neg)
		buf->b[0] = '-';
	for (i = 0; i < BPFDB_INT_MAX_LEN; i++) {
		if (i >= n)
			break;
		buf->b[(neg + i) & (BPFDB_MAX_VALUE_LEN - 1)] = tmp[(n - 1 - i) & 31];
	}
	return n + neg;
}

/*
 * int_with_deadline appends deadline d (0: none) to the n digits at the
 * start of buf and returns the stored length (storage/expiry.h).
 */
static __always_inline __u32 int_with_deadline(struct bpfdb_value *buf, __u32 n, __u64 d)
{
	__u32 i;

	if (!d)
		return n;
	for (i = 0; i < BPFDB_DEADLINE_LEN; i++)
		buf->b[(n + i) & (BPFDB_MAX_VALUE_LEN - 1)] = d >> (8 * i);
	return (n + BPFDB_DEADLINE_LEN) | BPFDB_LEN_EXPIRES;
}

/*
 * auto_incr adds delta to key's value read as a decimal int64 (absent or
 * expired at now: 0) and writes the sum back in decimal, keeping the
 * value's deadline as Redis does, under the record's exclusive lock, as
 * one transaction: no increment is lost to a concurrent one. buf is
 * scratch for the old value and holds the new one's digits after; *sum is
 * set. BPFDB_ERR_NOT_INTEGER, with nothing applied, when the value is not
 * an integer or the sum overflows (then res->detail is
 * BPFDB_DETAIL_OVERFLOW) or the value is not a string (then
 * BPFDB_DETAIL_WRONG_TYPE).
 */
static __always_inline int auto_incr(const struct bpfdb_key *key, __s64 delta,
				     struct bpfdb_value *buf, __u32 owner, __u64 now, __s64 *sum,
				     struct bpfdb_written *res)
{
	struct version_view vv = {};
	struct bpfdb_record *rec = NULL;
	__s64 cur = 0, next;
	__u64 deadline = 0;
	__u32 n;
	int status;

	stat_add(BPFDB_STAT_SETS, 1);
	status = auto_lock(key, 1, owner, &rec, &res->detail);
	if (status == BPFDB_ERR_CONFLICT)
		stat_add(BPFDB_STAT_ABORTS_CONFLICT, 1);
	if (status != BPFDB_OK || !rec)
		return status;
	status = read_latest(rec, now, &vv);
	if (status == BPFDB_OK && len_type(vv.len) != BPFDB_TYPE_STRING) {
		status = BPFDB_ERR_NOT_INTEGER;
		res->detail = BPFDB_DETAIL_WRONG_TYPE;
	} else if (status == BPFDB_OK) {
		n = user_len(vv.len);
		deadline = slab_deadline(vv.len, vv.ref);
		if (n > BPFDB_INT_MAX_LEN || slab_load(buf, vv.len, vv.ref) || int_parse(buf, n, &cur))
			status = BPFDB_ERR_NOT_INTEGER;
	} else if (status == BPFDB_ERR_NOT_FOUND) {
		status = BPFDB_OK;
	}
	if (status == BPFDB_OK && __builtin_add_overflow(cur, delta, &next)) {
		status = BPFDB_ERR_NOT_INTEGER;
		res->detail = BPFDB_DETAIL_OVERFLOW;
	}
	if (status == BPFDB_OK) {
		n = int_format(next, buf);
		status = auto_apply(rec, key, buf, int_with_deadline(buf, n, deadline), res);
		if (status == BPFDB_OK)
			*sum = next;
	}
	unlock_exclusive(rec);
	return status;
}

#endif /* BPFDB_TXN_AUTO_H */
