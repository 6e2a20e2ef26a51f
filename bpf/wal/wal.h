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
 * of txn_id, assembled in request slot's scratch. Returns 1 when logged, 0
 * when the entry has no write, -1 when the ring is full.
 */
__attribute__((noinline)) int wal_log_entry(__u32 slot, __u32 tslot, __u32 i, __u64 txn_id)
{
	struct bpfdb_wal_write *w = bpf_map_lookup_elem(&wal_scratch, &slot);
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
	if (slab_copy_out(e->len, e->ref, w->value))
		return -1;
	vlen = value_has_slot(e->len) ? e->len : 0;
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

static __always_inline struct bpfdb_wal_write *wal_reserve_auto(__u32 len, const __u8 *value)
{
	struct bpfdb_wal_write *w;

	switch (value_has_slot(len) ? slab_class(len) : 0) {
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

#endif /* BPFDB_WAL_H */
