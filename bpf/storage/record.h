/* SPDX-License-Identifier: GPL-2.0 */
/*
 * record.h: the index, a hash map from a key to its record (lock word, seq
 * and version array; storage/version.h).
 *
 * A deleted key's record is removed once no snapshot can see any of its
 * versions (record_remove, under its exclusive lock): the index holds live
 * keys, and keys some snapshot still reads. The hash map reuses a removed
 * element at once, for any key, so a record pointer from a lookup may come
 * to be another key's record before its holder uses it. Hence:
 *
 *  1. A record is removed only by the holder of its exclusive lock, which
 *     it leaves as LOCK_DEAD (txn/lock.h): no one takes it again, and a
 *     locker that meets it retries from the lookup.
 *  2. Whoever takes a lock checks, with the lock held, that the record is
 *     still its key's (record_valid): a removed element reused for another
 *     key fails the check and the lock is given back. Held, the lock keeps
 *     the record its key's (1).
 *  3. A lock-free reader at control.visible checks the same after reading,
 *     when a record was removed meanwhile (control.removals moved), and
 *     then also that the version it read is still in the record (its
 *     begin_ts, a commit's LSN, unique to that version): a record can be
 *     removed, reused by other keys and created for its key again within
 *     one read (the reuse is LIFO, and a vCPU can be descheduled mid-read),
 *     which the lookup alone and the record's seq (reset by the reuse)
 *     cannot tell, but a reuse clears the versions, so the LSN can.
 *     (version.h, reader_lost_record). A reader at a registered snapshot
 *     needs no check: a reused element holds only versions committed after
 *     the reuse, above every registered snapshot, so it reads as absent, as
 *     the removed record did (nothing in it was visible to any snapshot).
 *
 * A key is zero-padded to its full size: it is hashed and compared whole,
 * so "a" and "a\0" differ by their length.
 */
#ifndef BPFDB_RECORD_H
#define BPFDB_RECORD_H

#include "maps.h"
#include "../txn/lock.h"

#define EEXIST 17

static __always_inline int key_eq(const struct bpfdb_key *a, const struct bpfdb_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 diff = 0;
	__u32 i;

#pragma unroll
	for (i = 0; i < sizeof(struct bpfdb_key) / 8; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* record_lookup returns the record of key, or NULL when the key was never written. */
static __always_inline struct bpfdb_record *record_lookup(const struct bpfdb_key *key)
{
	return bpf_map_lookup_elem(&records, key);
}

/*
 * BPFDB_TEST_AFTER_CREATE runs in record_get_or_create between the insert
 * and the lookup that finds what it inserted: tests define it to stall
 * there, where the record can be removed (record_get_or_create).
 */
#ifndef BPFDB_TEST_AFTER_CREATE
#define BPFDB_TEST_AFTER_CREATE() do {} while (0)
#endif

/*
 * record_get_or_create returns the record of key, creating an empty one (no
 * versions, unlocked) when absent; NULL with *status set when the index is
 * full (BPFDB_ERR_STORE_FULL), when the record was removed between the
 * insert and the lookup after it (BPFDB_ERR_RETRY: the caller retries from
 * the lookup, as after LOCK_DEAD), or when a lookup that cannot fail did.
 * That removal is no bug: the record, ours or one another CPU inserted
 * first, is empty and unlocked until its caller locks it, so a DEL of the
 * key (record_collect) or the vacuum may take it out of the index first.
 */
static __always_inline struct bpfdb_record *record_get_or_create(const struct bpfdb_key *key,
								 int *status)
{
	struct bpfdb_record *rec, *empty;
	__u32 zero = 0;
	long err;

	rec = bpf_map_lookup_elem(&records, key);
	if (rec)
		return rec;
	empty = bpf_map_lookup_elem(&empty_record, &zero);
	if (!empty) {
		*status = BPFDB_ERR_INTERNAL;
		return NULL;
	}
	err = bpf_map_update_elem(&records, key, empty, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		*status = BPFDB_ERR_STORE_FULL;
		return NULL;
	}
	BPFDB_TEST_AFTER_CREATE();
	rec = bpf_map_lookup_elem(&records, key);
	if (!rec)
		*status = BPFDB_ERR_RETRY;
	return rec;
}

/*
 * record_valid: rec, found by a lookup of key before, is still key's record
 * (invariants 2 and 3 above).
 */
static __always_inline int record_valid(const struct bpfdb_key *key, struct bpfdb_record *rec)
{
	return bpf_map_lookup_elem(&records, key) == rec;
}

/* key_bucket hashes key into removed_versions. */
static __always_inline __u32 key_bucket(const struct bpfdb_key *key)
{
	const __u64 *w = (const __u64 *)key;
	__u64 h = 0;
	__u32 i;

#pragma unroll
	for (i = 0; i < sizeof(struct bpfdb_key) / 8; i++)
		h = (h ^ w[i]) * 0x9E3779B97F4A7C15ULL;
	return (__u32)(h >> 40) & (BPFDB_REMOVED_BUCKETS - 1);
}

/*
 * removed_version is the version a key with no version kept reports: the
 * newest removed deletion of its bucket. It only grows, and equals the
 * key's own deletion when nothing else of its bucket was removed since, so
 * WATCH sees a change when the key was written (and removed) again, and at
 * worst a change that was another key's.
 */
static __always_inline __u64 removed_version(const struct bpfdb_key *key)
{
	__u32 b = key_bucket(key);
	__u64 *v = bpf_map_lookup_elem(&removed_versions, &b);

	return v ? READ_ONCE_U64(*v) : 0;
}

/*
 * record_remove removes key's record, whose exclusive lock the caller holds
 * and whose versions are all reclaimed, deleted at del_ts (0: never
 * written): the lock becomes LOCK_DEAD (never released), the element leaves
 * the index, and del_ts is kept in the key's bucket of removed_versions.
 */
static __always_inline void record_remove(const struct bpfdb_key *key, struct bpfdb_record *rec,
					  __u64 del_ts)
{
	__u32 b = key_bucket(key), i;
	__u64 *v = bpf_map_lookup_elem(&removed_versions, &b);

	for (i = 0; v && del_ts && i < LOCK_CAS_TRIES; i++) {
		__u64 old = READ_ONCE_U64(*v);

		if (old >= del_ts || __sync_val_compare_and_swap(v, old, del_ts) == old)
			break;
	}
	struct bpfdb_control *ctl = control_block();

	__sync_lock_test_and_set(&rec->lock, LOCK_DEAD);
	if (ctl) /* counted before the element can be reused (invariant 3) */
		__sync_fetch_and_add(&ctl->removals, 1);
	bpf_map_delete_elem(&records, key);
	stat_add(BPFDB_STAT_RECORDS_FREED, 1);
}

#endif /* BPFDB_RECORD_H */
