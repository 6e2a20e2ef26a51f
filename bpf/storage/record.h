/* SPDX-License-Identifier: GPL-2.0 */
/*
 * record.h: the index, a hash map from a key to its record (lock word, seq
 * and version array; storage/version.h).
 *
 * Records are never deleted: a deleted key's record stays, empty once GC
 * has reclaimed its versions, and the next write of the key reuses it. So
 * a pointer to a record stays valid, and a lock taken on it means the same
 * record to everyone. A key is zero-padded to its full size: it is hashed
 * and compared whole, so "a" and "a\0" differ by their length.
 */
#ifndef BPFDB_RECORD_H
#define BPFDB_RECORD_H

#include "maps.h"

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
 * record_get_or_create returns the record of key, creating an empty one (no
 * versions, unlocked) when absent; NULL with *status set when the index is
 * full (BPFDB_ERR_STORE_FULL) or a lookup that cannot fail did.
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
	rec = bpf_map_lookup_elem(&records, key);
	if (!rec)
		*status = BPFDB_ERR_INTERNAL;
	return rec;
}

#endif /* BPFDB_RECORD_H */
