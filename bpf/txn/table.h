/* SPDX-License-Identifier: GPL-2.0 */
/*
 * table.h: the transaction table.
 *
 * A transaction slot holds one entry per key the transaction has locked, in
 * the order it locked them, with its buffered write (value in a slab slot,
 * version slot reserved in the record). Nothing a transaction writes is
 * visible before commit installs it; abort frees the slabs and releases the
 * locks, and leaves every record as it was.
 *
 * Slots below BPFDB_MAX_TXNS belong to the Go engine, which hands them out
 * and serializes the calls on each. The BPFDB_KERNEL_TXNS slots above are
 * for BPF programs (bpfdb_api.h), which have no such owner, so:
 *
 *  1. A kernel slot is claimed by setting its bit in control.ktxn_claimed
 *     (an atomic compare-and-swap) and given back by clearing it, after
 *     the slot is FREE again.
 *  2. Every use of a kernel slot, by a call of its transaction or by the
 *     reaper, holds its busy word (0 -> 1 by compare-and-swap, back to 0 by
 *     an exchange, so the slot's stores are ordered before it). A call that
 *     finds it taken fails; nobody waits.
 *  3. Under busy, a call checks the state and the generation of its handle:
 *     the end of a transaction (commit, abort, reaping) bumps the generation,
 *     so a stale handle never touches a later transaction of the slot.
 *  4. begin records start_ns; the reaper (txn/ops.h, ktxn_reap) aborts, under
 *     busy, a transaction older than control.ktxn_timeout_ns, so an
 *     abandoned kernel transaction never holds its locks for longer.
 */
#ifndef BPFDB_TABLE_H
#define BPFDB_TABLE_H

#include "maps.h"
#include "../storage/record.h"

struct txn_find_ctx {
	struct bpfdb_txn *t;
	const struct bpfdb_key *key;
	int found;
};

static long txn_find_cb(__u32 i, void *data)
{
	struct txn_find_ctx *c = data;

	if (i >= BPFDB_MAX_TXN_KEYS || !key_eq(&c->t->e[i].key, c->key))
		return 0;
	c->found = i;
	return 1;
}

/*
 * txn_find returns the entry index of key in t, or -1. A bpf_loop, not a
 * bounded loop: the verifier walks a bounded loop once per iteration, and
 * BPFDB_MAX_TXN_KEYS iterations would cost every program that uses the
 * table that many times the body. Global: verified once.
 */
__attribute__((noinline)) int txn_find(struct bpfdb_txn *t, const struct bpfdb_key *key)
{
	struct txn_find_ctx c = { .t = t, .key = key, .found = -1 };
	__u32 n;

	if (!t || !key)
		return -1;
	n = t->nkeys;
	if (n > BPFDB_MAX_TXN_KEYS)
		n = BPFDB_MAX_TXN_KEYS;
	bpf_loop(n, txn_find_cb, &c, 0);
	return c.found;
}

static __always_inline struct bpfdb_txn *txn_slot(__u32 k)
{
	return bpf_map_lookup_elem(&txn_table, &k);
}

static __always_inline int ktxn_is_kernel_slot(__u32 tslot)
{
	return tslot >= BPFDB_MAX_TXNS && tslot < BPFDB_TXN_SLOTS;
}

#define KTXN_MASK ((BPFDB_KERNEL_TXNS == 64) ? ~0ULL : (1ULL << BPFDB_KERNEL_TXNS) - 1)
#define KTXN_CLAIM_TRIES 4

/* ktxn_claim takes a free kernel slot (invariant 1): its index, or -1. */
static __always_inline int ktxn_claim(struct bpfdb_control *ctl)
{
	__u32 i;

	for (i = 0; i < KTXN_CLAIM_TRIES; i++) {
		__u64 old = READ_ONCE_U64(ctl->ktxn_claimed);
		__u64 free = ~old & KTXN_MASK, bit;

		if (!free)
			return -1;
		bit = free & -free;
		if (__sync_val_compare_and_swap(&ctl->ktxn_claimed, old, old | bit) == old) {
			__u64 k = __builtin_popcountll(bit - 1);

			/* Hidden from the compiler, so the check stays for the verifier. */
			asm volatile("" : "+r"(k));
			if (k >= BPFDB_KERNEL_TXNS)
				return -1;
			return BPFDB_MAX_TXNS + k;
		}
	}
	return -1;
}

static __always_inline void ktxn_unclaim(struct bpfdb_control *ctl, __u32 tslot)
{
	__u32 k = tslot - BPFDB_MAX_TXNS;

	if (k < BPFDB_KERNEL_TXNS)
		__sync_fetch_and_and(&ctl->ktxn_claimed, ~(1ULL << k));
}

/* ktxn_busy takes slot t's busy word (invariant 2); 0 when it did. */
static __always_inline int ktxn_busy(struct bpfdb_txn *t)
{
	return __sync_val_compare_and_swap(&t->busy, 0, 1) != 0;
}

static __always_inline void ktxn_idle(struct bpfdb_txn *t)
{
	__sync_lock_test_and_set(&t->busy, 0);
}

/*
 * ktxn_enter returns kernel slot tslot, busy, if it holds the open
 * transaction of generation gen (invariant 3); else NULL, and the slot is
 * left as it was.
 */
static __always_inline struct bpfdb_txn *ktxn_enter(__u32 tslot, __u32 gen)
{
	struct bpfdb_txn *t;

	if (!ktxn_is_kernel_slot(tslot))
		return NULL;
	t = txn_slot(tslot);
	if (!t || ktxn_busy(t))
		return NULL;
	if (t->state == BPFDB_TXN_FREE || t->gen != gen) {
		ktxn_idle(t);
		return NULL;
	}
	return t;
}

#endif /* BPFDB_TABLE_H */
