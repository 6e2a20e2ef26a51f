/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wal.h: logical log records of committed transactions, into wal_ring.
 *
 * The rule: a committer reserves ring space for its commit record before it
 * takes its commit timestamp, and so before anything it writes can become
 * visible. A full ring aborts the transaction (BPFDB_ERR_LOG_FULL, nothing
 * applied, nothing logged as committed); a committed record is never
 * dropped. Because the timestamp is taken only after the reservation
 * succeeded, every commit timestamp belongs to exactly one logged commit,
 * and LSN = commit timestamp is dense: recovery can check continuity.
 *
 * bpf_ringbuf_reserve needs a constant size, and a reservation cannot
 * outlive a bpf_loop callback, so a multi-write transaction logs each write
 * as a WRITE record (bpf_ringbuf_output of its actual size from
 * wal_scratch) and then reserves a small COMMIT record. WRITE records whose
 * COMMIT never comes (the ring filled up in between) are dropped by logd.
 * An autocommit write is one WRITE_COMMIT record, reserved at the smallest
 * value slab class that holds its value (wal_reserve_auto): one constant
 * size per class, since a full-size record cost a 1 KiB copy and 1.1 KiB of
 * ring for each SET of a few bytes.
 *
 * A commit that writes is refused (BPFDB_ERR_LOG_REFUSED) before it reserves
 * anything while control.log_refused is set: Go sets it when the log cannot
 * take writes (a full or failing disk, a write stalled past its bound), so
 * nothing is applied that could not become durable, and clears it once the
 * log writes again. Commits that passed the check just before it was set
 * are applied; the engine reports them as not durable.
 *
 * Records are submitted with BPF_RB_NO_WAKEUP: a wakeup is an irq_work per
 * record, which cost about 5µs of a 5.5µs autocommit SET here. The engine
 * wakes its reader itself after every run that logged (engine/wal.go).
 */
#ifndef BPFDB_WAL_H
#define BPFDB_WAL_H

#include "maps.h"
#include "../storage/slab.h"
#include "../txn/clock.h"
#include "../txn/table.h"

static __always_inline int wal_on(struct bpfdb_control *ctl)
{
	return READ_ONCE_U64(ctl->wal_on) != 0;
}

/* wal_refused says whether a commit that writes must be refused (see above). */
static __always_inline int wal_refused(struct bpfdb_control *ctl)
{
	return READ_ONCE_U64(ctl->log_refused) != 0;
}

/*
 * wal_log_entry outputs entry i of transaction slot tslot as a WRITE record
 * of txn_id, assembled in the slot's scratch (wal_scratch: a slot has one
 * committer at a time). Returns 1 when logged, 0 when the entry has no
 * write, -1 when the ring is full.
 */
__attribute__((noinline)) int wal_log_entry(__u32 tslot, __u32 i, __u64 txn_id)
{
	struct bpfdb_wal_write *w = bpf_map_lookup_elem(&wal_scratch, &tslot);
	struct bpfdb_txn *t = bpf_map_lookup_elem(&txn_table, &tslot);
	struct bpfdb_txn_entry *e;
	__u32 vlen;

	if (!w || !t || i >= BPFDB_MAX_TXN_KEYS)
		return -1;
	e = &t->e[i];
	if (!e->write)
		return 0;
	w->hdr.kind = BPFDB_WAL_WRITE;
	w->hdr.count = 0;
	w->hdr.txn_id = txn_id;
	w->hdr.lsn = 0;
	w->hdr.val_len = e->len;
	__builtin_memcpy(&w->key, &e->key, sizeof(w->key));
	if (slab_load((struct bpfdb_value *)w->value, e->len, e->ref))
		return -1;
	vlen = stored_len(e->len);
	if (value_is_blob(e->len))
		vlen = BPFDB_BLOB_HEAD; /* the header stands for the bytes (storage/blob.h) */
	if (vlen > BPFDB_MAX_VALUE_LEN)
		return -1;
	if (bpf_ringbuf_output(&wal_ring, w, sizeof(w->hdr) + sizeof(w->key) + vlen, BPF_RB_NO_WAKEUP))
		return -1;
	return 1;
}

/* The size of a WRITE record whose value part holds n bytes. */
#define WAL_WRITE_SIZE(n) (__builtin_offsetof(struct bpfdb_wal_write, value) + (n))

/*
 * wal_reserve_auto reserves the WRITE_COMMIT record of an autocommit write
 * of len bytes (or a tombstone) and copies the value in, at the size of
 * len's slab class (slab_class, and the class sizes of maps.h, which a
 * value's slot has too): bpf_ringbuf_reserve and the copy need constant sizes.
 * Returns NULL when the ring is full. The caller fills the header and key
 * and submits.
 */
_Static_assert(sizeof(struct bpfdb_slab_5) == sizeof(((struct bpfdb_wal_write *)0)->value),
	       "the largest slab class is a full WRITE record's value");

static __always_inline struct bpfdb_wal_write *wal_reserve_auto(__u32 len,
								 const struct bpfdb_value *value)
{
	struct bpfdb_wal_write *w;

	if (!value || (!value_has_slot(len) && !value_is_blob(len))) /* a tombstone or "" */
		return bpf_ringbuf_reserve(&wal_ring, WAL_WRITE_SIZE(sizeof(struct bpfdb_slab_0)), 0);
	/* A blob's header stands for its bytes (storage/blob.h): class 0's size. */
	switch (value_is_blob(len) ? 0 : slab_class(len)) {
	case 0:
		w = bpf_ringbuf_reserve(&wal_ring, WAL_WRITE_SIZE(sizeof(struct bpfdb_slab_0)), 0);
		if (w)
			__builtin_memcpy(w->value, value, sizeof(struct bpfdb_slab_0));
		return w;
	case 1:
		w = bpf_ringbuf_reserve(&wal_ring, WAL_WRITE_SIZE(sizeof(struct bpfdb_slab_1)), 0);
		if (w)
			__builtin_memcpy(w->value, value, sizeof(struct bpfdb_slab_1));
		return w;
	case 2:
		w = bpf_ringbuf_reserve(&wal_ring, WAL_WRITE_SIZE(sizeof(struct bpfdb_slab_2)), 0);
		if (w)
			__builtin_memcpy(w->value, value, sizeof(struct bpfdb_slab_2));
		return w;
	case 3:
		w = bpf_ringbuf_reserve(&wal_ring, WAL_WRITE_SIZE(sizeof(struct bpfdb_slab_3)), 0);
		if (w)
			__builtin_memcpy(w->value, value, sizeof(struct bpfdb_slab_3));
		return w;
	case 4:
		w = bpf_ringbuf_reserve(&wal_ring, WAL_WRITE_SIZE(sizeof(struct bpfdb_slab_4)), 0);
		if (w)
			__builtin_memcpy(w->value, value, sizeof(struct bpfdb_slab_4));
		return w;
	default:
		w = bpf_ringbuf_reserve(&wal_ring, sizeof(*w), 0);
		if (w)
			__builtin_memcpy(w->value, value, sizeof(w->value));
		return w;
	}
}

/* wal_abort tells logd, if the ring has room, to drop the writes of txn_id. */
static __always_inline void wal_abort(__u64 txn_id)
{
	struct bpfdb_wal_hdr h = { .kind = BPFDB_WAL_ABORT, .txn_id = txn_id };

	bpf_ringbuf_output(&wal_ring, &h, sizeof(h), BPF_RB_NO_WAKEUP);
}

/*
 * wal_take_ts is the rule of this file, written once: it takes the commit
 * timestamp only once the commit's record is reserved. rec is that record
 * (NULL: the ring had no room) when logged, and ignored otherwise. Returns
 * the timestamp, with rec's lsn set (the caller fills the rest and submits);
 * or 0 with *status set and rec discarded: nothing may be applied.
 */
static __always_inline __u64 wal_take_ts(struct bpfdb_control *ctl, int logged,
					 struct bpfdb_wal_hdr *rec, int *status)
{
	__u64 ts;

	if (logged && !rec) {
		stat_add(BPFDB_STAT_ABORTS_LOG_FULL, 1);
		*status = BPFDB_ERR_LOG_FULL;
		return 0;
	}
	ts = next_commit_ts(ctl);
	if (!ts) {
		if (logged && rec)
			bpf_ringbuf_discard(rec, 0);
		*status = BPFDB_ERR_RETRY;
		return 0;
	}
	if (logged && rec)
		rec->lsn = ts;
	return ts;
}

/* wal_check_refused: 1, counted and with *status set, when the log refuses writes. */
static __always_inline int wal_check_refused(struct bpfdb_control *ctl, int *status)
{
	if (!wal_refused(ctl))
		return 0;
	stat_add(BPFDB_STAT_ABORTS_LOG_REFUSED, 1);
	*status = BPFDB_ERR_LOG_REFUSED;
	return 1;
}

/*
 * wal_commit_auto logs the one-write transaction of key (value val of len
 * bytes, or a tombstone) as a WRITE_COMMIT record and returns its commit
 * timestamp; 0 with *status set when nothing may be applied (the log
 * refuses writes, the ring is full, the clock is too far ahead).
 */
static __always_inline __u64 wal_commit_auto(struct bpfdb_control *ctl, const struct bpfdb_key *key,
					     const struct bpfdb_value *val, __u32 len, int *status)
{
	struct bpfdb_wal_write *w;
	__u64 ts;

	if (!wal_on(ctl))
		return wal_take_ts(ctl, 0, NULL, status);
	if (wal_check_refused(ctl, status))
		return 0;
	w = wal_reserve_auto(len, val);
	ts = wal_take_ts(ctl, 1, (struct bpfdb_wal_hdr *)w, status);
	if (!ts || !w)
		return 0;
	w->hdr.kind = BPFDB_WAL_WRITE_COMMIT;
	w->hdr.count = 1;
	w->hdr.txn_id = ts;
	w->hdr.val_len = len;
	w->hdr._pad = 0;
	__builtin_memcpy(&w->key, key, sizeof(w->key));
	bpf_ringbuf_submit(w, BPF_RB_NO_WAKEUP);
	return ts;
}

struct wal_log_ctx {
	__u32 tslot;
	__u32 logged; /* WRITE records output, or writes counted */
	__u64 txn_id;
	__u32 full;
	__u32 _pad;
};

static long wal_log_cb(__u32 i, void *data)
{
	struct wal_log_ctx *c = data;
	int r = wal_log_entry(c->tslot, i, c->txn_id);

	if (r < 0) {
		c->full = 1;
		return 1;
	}
	c->logged += r;
	return 0;
}

static long wal_count_writes_cb(__u32 i, void *data)
{
	struct wal_log_ctx *c = data;
	struct bpfdb_txn *t = txn_slot(c->tslot);

	if (!t || i >= BPFDB_MAX_TXN_KEYS)
		return 1;
	c->logged += t->e[i].write;
	return 0;
}

/*
 * wal_commit_txn logs the writes of transaction slot tslot and its COMMIT
 * record and returns its commit timestamp; 0 when it wrote nothing, or 0
 * with *status set when nothing may be applied (the log refuses writes,
 * the ring is full, the clock is too far ahead).
 */
static __always_inline __u64 wal_commit_txn(struct bpfdb_control *ctl, struct bpfdb_txn *t,
					    __u32 tslot, int *status)
{
	struct wal_log_ctx lc = { .tslot = tslot };
	struct bpfdb_wal_hdr *commit;
	__u64 ts;
	int on = wal_on(ctl), refused = on && wal_refused(ctl);

	if (!on || refused) {
		bpf_loop(t->nkeys, wal_count_writes_cb, &lc, 0);
		if (!lc.logged)
			return 0;
		if (refused) {
			stat_add(BPFDB_STAT_ABORTS_LOG_REFUSED, 1);
			*status = BPFDB_ERR_LOG_REFUSED;
			return 0;
		}
		return wal_take_ts(ctl, 0, NULL, status);
	}
	lc.txn_id = __sync_fetch_and_add(&ctl->txn_seq, 1) + 1;
	bpf_loop(t->nkeys, wal_log_cb, &lc, 0);
	if (lc.full) {
		wal_abort(lc.txn_id);
		stat_add(BPFDB_STAT_ABORTS_LOG_FULL, 1);
		*status = BPFDB_ERR_LOG_FULL;
		return 0;
	}
	if (!lc.logged)
		return 0;
	commit = bpf_ringbuf_reserve(&wal_ring, sizeof(*commit), 0);
	ts = wal_take_ts(ctl, 1, commit, status);
	if (!ts || !commit) {
		wal_abort(lc.txn_id);
		return 0;
	}
	commit->kind = BPFDB_WAL_COMMIT;
	commit->count = lc.logged;
	commit->txn_id = lc.txn_id;
	commit->val_len = 0;
	commit->_pad = 0;
	bpf_ringbuf_submit(commit, BPF_RB_NO_WAKEUP);
	return ts;
}

#endif /* BPFDB_WAL_H */
