/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lock.h: no-wait record locks for strict two-phase locking.
 *
 * The lock word is 0 when free, the count of shared holders, or
 * BPFDB_LOCK_EXCL | owner. Nobody ever waits: a request that cannot
 * take a lock at once fails with BPFDB_ERR_CONFLICT and its transaction
 * aborts (no-wait 2PL needs no deadlock detection). CAS retries below only
 * absorb races between compatible shared lockers.
 *
 * LOCK_DEAD marks a record being removed from the index (storage/record.h,
 * record_remove): it is never taken again, and a locker that meets it gets
 * BPFDB_ERR_RETRY, not a conflict: the key has no record any more, and the
 * next attempt looks it up afresh.
 */
#ifndef BPFDB_LOCK_H
#define BPFDB_LOCK_H

#include "maps.h"

#define LOCK_CAS_TRIES 4

/*
 * Owner ids in an exclusive lock word: a transaction's slot (below
 * BPFDB_TXN_SLOTS), an autocommit op of request slot s, the vacuum, or an
 * autocommit call of a BPF program through bpfdb_api.h. Nobody reads them
 * to decide anything; they tell a person reading a stuck lock who holds it.
 */
#define OWNER_AUTO(s) (BPFDB_TXN_SLOTS + (s))
#define OWNER_VACUUM (BPFDB_TXN_SLOTS + BPFDB_REQ_SLOTS)
#define OWNER_API (BPFDB_TXN_SLOTS + BPFDB_REQ_SLOTS + 1)
#define OWNER_DEAD (BPFDB_TXN_SLOTS + BPFDB_REQ_SLOTS + 2)
#define LOCK_DEAD (BPFDB_LOCK_EXCL | OWNER_DEAD)

/* lock_refusal is why a lock word of old cannot be taken. */
static __always_inline int lock_refusal(__u32 old)
{
	return old == LOCK_DEAD ? BPFDB_ERR_RETRY : BPFDB_ERR_CONFLICT;
}

/* How many times a locker retries a lock the vacuum holds. */
#define LOCK_VACUUM_SPINS 256
#define LOCK_VACUUM (BPFDB_LOCK_EXCL | OWNER_VACUUM)

/*
 * lock_past_vacuum retries a lock the vacuum holds: the vacuum holds a
 * record for the few hundred nanoseconds of one record's collection, in a
 * run that is not preempted, so a transaction should not abort on it as
 * on another transaction's lock. shared: take it shared, else exclusive
 * for word excl (from free). A global function: verified once.
 */
__attribute__((noinline)) int lock_past_vacuum(struct bpfdb_record *rec, __u32 excl, int shared)
{
	__u32 old = LOCK_VACUUM;
	__u32 i;

	if (!rec)
		return BPFDB_ERR_INTERNAL;
	for (i = 0; i < LOCK_VACUUM_SPINS && old == LOCK_VACUUM; i++) {
		old = READ_ONCE_U32(rec->lock);
		if (old == LOCK_VACUUM)
			continue;
		if (shared && !(old & BPFDB_LOCK_EXCL) &&
		    __sync_val_compare_and_swap(&rec->lock, old, old + 1) == old)
			return BPFDB_OK;
		if (!shared && __sync_val_compare_and_swap(&rec->lock, 0, excl) == 0)
			return BPFDB_OK;
		return BPFDB_ERR_CONFLICT;
	}
	return lock_refusal(old);
}

static __always_inline int lock_shared(struct bpfdb_record *rec)
{
	__u32 i;

	for (i = 0; i < LOCK_CAS_TRIES; i++) {
		__u32 old = READ_ONCE_U32(rec->lock);

		if (old == LOCK_VACUUM)
			return lock_past_vacuum(rec, 0, 1);
		if (old & BPFDB_LOCK_EXCL)
			return lock_refusal(old);
		if (__sync_val_compare_and_swap(&rec->lock, old, old + 1) == old)
			return BPFDB_OK;
	}
	return BPFDB_ERR_CONFLICT;
}

/*
 * lock_exclusive takes the lock for owner; a caller that holds it shared
 * (held_shared) upgrades, which succeeds only while it is the sole holder.
 */
static __always_inline int lock_exclusive(struct bpfdb_record *rec, __u32 owner, int held_shared)
{
	__u32 expect = held_shared ? 1 : 0, old;

	old = __sync_val_compare_and_swap(&rec->lock, expect, BPFDB_LOCK_EXCL | owner);
	if (old == expect)
		return BPFDB_OK;
	if (old == LOCK_VACUUM && !held_shared && owner != OWNER_VACUUM)
		return lock_past_vacuum(rec, BPFDB_LOCK_EXCL | owner, 0);
	return lock_refusal(old);
}

static __always_inline void unlock_shared(struct bpfdb_record *rec)
{
	__sync_fetch_and_add(&rec->lock, -1);
}

static __always_inline void unlock_exclusive(struct bpfdb_record *rec)
{
	/* An atomic exchange, so every version store is ordered before it. */
	__sync_lock_test_and_set(&rec->lock, 0);
}

#endif /* BPFDB_LOCK_H */
