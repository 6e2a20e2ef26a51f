/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ops.h: the operations of strict two-phase locking (no-wait), on a slot of
 * the transaction table. One implementation serves the chain (the Go
 * engine's transactions, bpf/chain.c) and BPF programs (bpfdb_api.h); the
 * operations take a key, a value buffer and its length, and answer in
 * plain out-parameters, never in a request slot.
 *
 *   txn_get     read under a shared lock, or exclusive for update; in a
 *               read-only transaction, at its snapshot with no lock
 *   txn_write   lock exclusively, buffer the value (a slab slot) and
 *               reserve the version slot it will be installed in
 *   txn_commit  log (wal/wal.h), take the commit timestamp inside the lock
 *               point, install every buffered write, advance visible
 *   txn_end     release every lock (freeing the buffered values on abort),
 *               unregister the snapshot, free the slot
 *
 * A failure other than BPFDB_ERR_NOT_FOUND leaves the transaction to be
 * aborted by its caller (no-wait: a conflict is never waited out).
 */
#ifndef BPFDB_TXN_OPS_H
#define BPFDB_TXN_OPS_H

#include "maps.h"
#include "../storage/slab.h"
#include "../storage/record.h"
#include "../storage/version.h"
#include "clock.h"
#include "lock.h"
#include "table.h"
#include "../wal/wal.h"

/*
 * txn_lock finds or makes t's entry for key (at most max_keys entries) and
 * takes the lock mode on its record: *recp and *idx are set on success.
 */
static __always_inline int txn_lock(struct bpfdb_txn *t, __u32 tslot, const struct bpfdb_key *key,
				    __u32 mode, __u32 max_keys, struct bpfdb_record **recp, int *idx,
				    __u8 *detail)
{
	struct bpfdb_record *rec;
	int status = BPFDB_OK, i = txn_find(t, key);
	__u32 n;

	if (i >= 0 && i < BPFDB_MAX_TXN_KEYS) {
		struct bpfdb_txn_entry *e = &t->e[i];

		rec = bpf_map_lookup_elem(&records, &e->key);
		if (!rec)
			return BPFDB_ERR_INTERNAL;
		if (mode == BPFDB_LOCK_EXCLUSIVE && e->lock_mode == BPFDB_LOCK_SHARED) {
			if (lock_exclusive(rec, tslot, 1) != BPFDB_OK)
				return BPFDB_ERR_CONFLICT;
			e->lock_mode = BPFDB_LOCK_EXCLUSIVE;
		}
		*recp = rec;
		*idx = i;
		return BPFDB_OK;
	}
	n = t->nkeys;
	if (n >= max_keys || n >= BPFDB_MAX_TXN_KEYS)
		return BPFDB_ERR_WRITE_SET_FULL;
	rec = record_get_or_create(key, &status);
	if (!rec) {
		if (status == BPFDB_ERR_STORE_FULL)
			*detail = BPFDB_FULL_INDEX;
		return status;
	}
	if (mode == BPFDB_LOCK_EXCLUSIVE)
		status = lock_exclusive(rec, tslot, 0);
	else
		status = lock_shared(rec);
	if (status != BPFDB_OK)
		return status;
	if (!record_valid(key, rec)) { /* removed and reused since the lookup (record.h) */
		if (mode == BPFDB_LOCK_EXCLUSIVE)
			unlock_exclusive(rec);
		else
			unlock_shared(rec);
		return BPFDB_ERR_RETRY;
	}
	__builtin_memcpy(&t->e[n].key, key, sizeof(*key));
	t->e[n].lock_mode = mode;
	t->e[n].write = 0;
	t->e[n].len = 0;
	t->nkeys = n + 1;
	*recp = rec;
	*idx = n;
	return BPFDB_OK;
}

/* txn_now is transaction t's time for deadlines: its begin (storage/expiry.h, invariant 2). */
static __always_inline __u64 txn_now(struct bpfdb_txn *t)
{
	struct bpfdb_control *ctl = control_block();

	return ctl ? clock_ms(ctl, t->start_ns) : 0;
}

/*
 * txn_get reads key in transaction t (slot tslot) into dst; out says what
 * was found (struct bpfdb_found). A read-write transaction locks the key,
 * exclusively when for_update: two read-modify-writes of one key then
 * conflict once, at the read, instead of both holding shared locks and
 * both failing to upgrade.
 */
static __always_inline int txn_get(struct bpfdb_txn *t, __u32 tslot, const struct bpfdb_key *key,
				   int for_update, __u32 max_keys, struct bpfdb_value *dst,
				   struct bpfdb_found *out, __u8 *detail)
{
	struct version_view vv = {};
	struct bpfdb_record *rec;
	int status, i = -1;

	stat_add(BPFDB_STAT_GETS, 1);
	out->ts = 0;
	if (t->state == BPFDB_TXN_ACTIVE_RO) {
		rec = record_lookup(key);
		if (!rec) {
			out->ts = removed_version(key);
			return BPFDB_ERR_NOT_FOUND;
		}
		status = read_at(rec, t->snap_ts, txn_now(t), &vv);
		out->ts = vv.begin_ts;
		out->expired = vv.expired;
		if (status == BPFDB_ERR_NOT_FOUND && !vv.begin_ts)
			out->ts = removed_version(key);
		if (status != BPFDB_OK)
			return status;
	} else {
		status = txn_lock(t, tslot, key, for_update ? BPFDB_LOCK_EXCLUSIVE : BPFDB_LOCK_SHARED,
				  max_keys, &rec, &i, detail);
		if (status != BPFDB_OK)
			return status;
		if (i < 0 || i >= BPFDB_MAX_TXN_KEYS)
			return BPFDB_ERR_INTERNAL;
		if (t->e[i].write) { /* its own write: timestamp 0 */
			vv.len = t->e[i].len;
			vv.ref = t->e[i].ref;
			if (vv.len == BPFDB_TOMBSTONE || version_expired(&vv, txn_now(t)))
				return BPFDB_ERR_NOT_FOUND;
		} else {
			status = read_latest(rec, txn_now(t), &vv);
			out->ts = vv.begin_ts; /* a deletion's, or 0, when not found */
			out->expired = vv.expired;
			if (status == BPFDB_ERR_NOT_FOUND && !vv.begin_ts)
				out->ts = removed_version(key);
			if (status != BPFDB_OK)
				return status;
		}
	}
	out->len = vv.len;
	if (slab_load(dst, vv.len, vv.ref))
		return BPFDB_ERR_INTERNAL;
	return BPFDB_OK;
}

/*
 * txn_write buffers in t a write of key: the len bytes of src, or a
 * deletion when len is BPFDB_TOMBSTONE (src unused), which of a key with no
 * live value is BPFDB_ERR_NOT_FOUND and changes nothing.
 */
static __always_inline int txn_write(struct bpfdb_txn *t, __u32 tslot, const struct bpfdb_key *key,
				     const struct bpfdb_value *src, __u32 len, __u32 max_keys,
				     __u8 *detail)
{
	struct version_view vv = {};
	struct bpfdb_txn_entry *e;
	struct bpfdb_record *rec;
	int status, i = -1, vslot;
	__u32 ref = 0;

	stat_add(len == BPFDB_TOMBSTONE ? BPFDB_STAT_DELS : BPFDB_STAT_SETS, 1);
	if (t->state == BPFDB_TXN_ACTIVE_RO)
		return BPFDB_ERR_READ_ONLY;
	status = txn_lock(t, tslot, key, BPFDB_LOCK_EXCLUSIVE, max_keys, &rec, &i, detail);
	if (status != BPFDB_OK)
		return status;
	if (i < 0 || i >= BPFDB_MAX_TXN_KEYS)
		return BPFDB_ERR_INTERNAL;
	e = &t->e[i];
	if (len == BPFDB_TOMBSTONE) {
		int live;

		if (e->write) { /* its own write, live unless deleted or past its deadline */
			vv.len = e->len;
			vv.ref = e->ref;
			live = vv.len != BPFDB_TOMBSTONE && !version_expired(&vv, txn_now(t));
		} else {
			live = read_latest(rec, txn_now(t), &vv) == BPFDB_OK;
		}

		if (!live)
			return BPFDB_ERR_NOT_FOUND;
	}
	if (e->write) {
		slab_free(e->len, e->ref);
		e->len = 0;
	} else {
		vslot = reserve_version(rec);
		if (vslot < 0)
			return BPFDB_ERR_VERSIONS_FULL;
		e->vslot = vslot;
		e->len = 0;
		e->write = 1;
	}
	status = slab_put(src, len, &ref, detail);
	if (status != BPFDB_OK)
		return status;
	e->ref = ref;
	e->len = len;
	return BPFDB_OK;
}

struct txn_loop_ctx {
	__u32 tslot;
	__u32 abort;
	__u64 ts;
};

static long txn_install_cb(__u32 i, void *data)
{
	struct txn_loop_ctx *c = data;
	struct bpfdb_txn *t = txn_slot(c->tslot);
	struct bpfdb_txn_entry *e;
	struct bpfdb_record *rec;

	if (!t || i >= BPFDB_MAX_TXN_KEYS)
		return 1;
	e = &t->e[i];
	if (!e->write)
		return 0;
	rec = bpf_map_lookup_elem(&records, &e->key);
	if (rec) /* records are never deleted (storage/record.h) */
		install_version(rec, INSTALL_AT(e->vslot, e->key.db), c->ts, e->ref, e->len);
	return 0;
}

/*
 * txn_commit commits the read-write transaction in slot tslot, whose locks
 * are all still held, so the timestamp is taken inside the lock point: logs
 * it, installs its writes and advances visible. Returns the commit
 * timestamp (0: it wrote nothing, or is read-only); 0 with *status set
 * when nothing was applied and the caller must abort.
 */
static __always_inline __u64 txn_commit(struct bpfdb_control *ctl, struct bpfdb_txn *t, __u32 tslot,
					int *status)
{
	struct txn_loop_ctx c = { .tslot = tslot };

	if (t->state == BPFDB_TXN_ACTIVE)
		c.ts = wal_commit_txn(ctl, t, tslot, status);
	if (*status != BPFDB_OK)
		return 0;
	if (c.ts) {
		bpf_loop(t->nkeys, txn_install_cb, &c, 0);
		mark_done(ctl, c.ts);
		maybe_refresh_low_hint(ctl, c.ts);
	}
	stat_add(BPFDB_STAT_COMMITS, 1);
	return c.ts;
}

static long txn_release_cb(__u32 i, void *data)
{
	struct txn_loop_ctx *c = data;
	struct bpfdb_txn *t = txn_slot(c->tslot);
	struct bpfdb_txn_entry *e;
	struct bpfdb_record *rec;

	if (!t || i >= BPFDB_MAX_TXN_KEYS)
		return 1;
	e = &t->e[i];
	if (c->abort && e->write)
		slab_free(e->len, e->ref);
	rec = bpf_map_lookup_elem(&records, &e->key);
	if (!rec)
		return 0;
	/* A key this transaction deleted gives its record back when it can. */
	if (e->lock_mode == BPFDB_LOCK_EXCLUSIVE && !c->abort && e->write && e->len == BPFDB_TOMBSTONE &&
	    record_collect(&e->key, rec))
		return 0;
	if (e->lock_mode == BPFDB_LOCK_EXCLUSIVE)
		unlock_exclusive(rec);
	else if (e->lock_mode == BPFDB_LOCK_SHARED)
		unlock_shared(rec);
	return 0;
}

/* txn_count_abort counts an aborted transaction by why it aborted (0: asked to). */
static __always_inline void txn_count_abort(int status)
{
	switch (status) {
	case BPFDB_ERR_CONFLICT:
		stat_add(BPFDB_STAT_ABORTS_CONFLICT, 1);
		break;
	case BPFDB_ERR_VERSIONS_FULL:
		stat_add(BPFDB_STAT_ABORTS_VERSIONS_FULL, 1);
		break;
	case BPFDB_ERR_STORE_FULL:
		stat_add(BPFDB_STAT_ABORTS_STORE_FULL, 1);
		break;
	case BPFDB_ERR_WRITE_SET_FULL:
		stat_add(BPFDB_STAT_ABORTS_WRITE_SET_FULL, 1);
		break;
	case BPFDB_ERR_LOG_FULL:
	case BPFDB_ERR_LOG_REFUSED:
		break; /* counted where the ring was found full or the log refusing */
	case BPFDB_OK:
		stat_add(BPFDB_STAT_ABORTS_USER, 1);
		break;
	default:
		stat_add(BPFDB_STAT_ABORTS_OTHER, 1);
	}
}

/*
 * txn_end ends the transaction in slot tslot after its commit (abort == 0)
 * or on abort, which frees its buffered values: releases every lock,
 * unregisters its snapshot and frees the slot.
 */
static __always_inline void txn_end(struct bpfdb_control *ctl, struct bpfdb_txn *t, __u32 tslot,
				    int abort)
{
	struct txn_loop_ctx c = { .tslot = tslot, .abort = abort };

	bpf_loop(t->nkeys, txn_release_cb, &c, 0);
	if (t->state == BPFDB_TXN_ACTIVE_RO)
		unregister_snapshot(ctl, tslot);
	t->nkeys = 0;
	__sync_lock_test_and_set(&t->state, BPFDB_TXN_FREE);
}

/* ---- kernel transactions (txn/table.h, invariants 1-4) ------------------ */

/*
 * ktxn_begin claims a kernel slot and opens a transaction in it, read-only
 * (a registered snapshot at visible) or read-write: its slot, and in *gen
 * the generation the caller must present; or minus a status.
 */
static __always_inline int ktxn_begin(struct bpfdb_control *ctl, int read_only, __u32 *gen)
{
	struct bpfdb_txn *t;
	int tslot = ktxn_claim(ctl);

	if (tslot < 0)
		return -BPFDB_ERR_TXN_TABLE_FULL;
	t = txn_slot(tslot);
	if (!t) {
		ktxn_unclaim(ctl, tslot);
		return -BPFDB_ERR_INTERNAL;
	}
	if (ktxn_busy(t)) { /* the reaper is looking at the slot's last transaction */
		ktxn_unclaim(ctl, tslot);
		return -BPFDB_ERR_RETRY;
	}
	t->gen++;
	t->nkeys = 0;
	t->start_ns = bpf_ktime_get_ns();
	if (read_only) {
		t->snap_ts = register_snapshot(ctl, tslot);
		t->state = BPFDB_TXN_ACTIVE_RO;
	} else {
		t->snap_ts = 0;
		t->state = BPFDB_TXN_ACTIVE;
	}
	*gen = t->gen;
	ktxn_idle(t);
	return tslot;
}

/*
 * ktxn_finish ends kernel transaction t (busy, in slot tslot): a new
 * generation, so its handle is stale, then idle and unclaimed.
 */
static __always_inline void ktxn_finish(struct bpfdb_control *ctl, struct bpfdb_txn *t, __u32 tslot,
					int abort, int status)
{
	txn_end(ctl, t, tslot, abort);
	if (abort)
		txn_count_abort(status);
	t->gen++;
	ktxn_idle(t);
	ktxn_unclaim(ctl, tslot);
}

struct ktxn_reap_ctx {
	__u64 now;
	__u64 timeout;
	__u32 reaped;
	__u32 busy;
};

/*
 * ktxn_reap_cb aborts the transaction of kernel slot BPFDB_MAX_TXNS + k if
 * it began more than timeout ns ago (invariant 4). A slot busy with a call
 * is left for the next round.
 */
static __attribute__((unused)) long ktxn_reap_cb(__u32 k, void *data)
{
	struct ktxn_reap_ctx *c = data;
	struct bpfdb_control *ctl = control_block();
	__u32 tslot = BPFDB_MAX_TXNS + k;
	struct bpfdb_txn *t = txn_slot(tslot);

	if (!t || !ctl)
		return 1;
	if (!(READ_ONCE_U64(ctl->ktxn_claimed) & (1ULL << (k & 63))))
		return 0;
	if (ktxn_busy(t)) {
		c->busy++;
		return 0;
	}
	if (t->state == BPFDB_TXN_FREE || c->now - t->start_ns < c->timeout) {
		ktxn_idle(t);
		return 0;
	}
	ktxn_finish(ctl, t, tslot, 1, BPFDB_ERR_TXN_INVALID);
	c->reaped++;
	return 0;
}

#endif /* BPFDB_TXN_OPS_H */
