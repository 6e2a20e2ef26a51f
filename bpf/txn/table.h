/* SPDX-License-Identifier: GPL-2.0 */
/*
 * table.h: the transaction table and the index records it locks.
 *
 * A transaction slot holds one entry per key the transaction has locked, in
 * the order it locked them, with its buffered write (value in a slab slot,
 * version slot reserved in the record). Nothing a transaction writes is
 * visible before commit installs it; abort frees the slabs and releases the
 * locks, and leaves every record as it was.
 */
#ifndef BPFDB_TABLE_H
#define BPFDB_TABLE_H

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

/* txn_find returns the entry index of key in t, or -1. Global: verified once. */
__attribute__((noinline)) int txn_find(struct bpfdb_txn *t, const struct bpfdb_key *key)
{
	__u32 n, i;

	if (!t || !key)
		return -1;
	n = t->nkeys;
	for (i = 0; i < BPFDB_MAX_TXN_KEYS; i++) {
		if (i >= n)
			break;
		if (key_eq(&t->e[i].key, key))
			return i;
	}
	return -1;
}

static __always_inline struct bpfdb_txn *txn_slot(__u32 k)
{
	return bpf_map_lookup_elem(&txn_table, &k);
}

/*
 * record_get_or_create returns the record of key, creating an empty one (no
 * versions, unlocked) when absent; NULL with *status set when the index is full.
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

#endif /* BPFDB_TABLE_H */
