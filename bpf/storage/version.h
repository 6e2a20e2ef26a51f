/* SPDX-License-Identifier: GPL-2.0 */
/*
 * version.h: bounded, unordered version arrays and cooperative GC.
 *
 * Invariants, and why they make lock-free readers safe:
 *
 *  1. Only the holder of a record's exclusive lock writes its versions:
 *     it installs at commit and reclaims during GC. Readers take no lock.
 *  2. A slot is free when begin_ts == 0. Reclaiming writes begin_ts = 0
 *     first; installing writes every other field first and begin_ts last.
 *     Every change of the versions is bracketed by the record's seq (odd
 *     while it lasts: record_change_begin/end). A lock-free reader samples
 *     seq before it scans and checks it after it has copied the value, and
 *     retries on a change, whatever it found, not-found included: a scan
 *     racing an install and a reclaim can otherwise miss every version.
 * 3. A version is reclaimed only when end_ts <= a low-water mark: the
 *     smallest snapshot registered in the snapshots map, and never above
 *     control.visible. A reader registers its snapshot before it reads, so
 *     a version it can see (end_ts > snapshot) is never reclaimed under it,
 *     slab contents included. Registration stores BPFDB_SNAP_PENDING first;
 *     GC that meets a pending slot reclaims nothing (see low_water_cb).
 *     While no snapshot is registered or registering (control.snap_active
 *     is 0), the mark is visible itself (low_water).
 *  4. The newest version (end_ts == BPFDB_TS_INF) is never reclaimed unless
 *     it is a tombstone every snapshot already sees: the key reads as absent
 *     either way.
 */
#ifndef BPFDB_VERSION_H
#define BPFDB_VERSION_H

#include "maps.h"
#include "../storage/slab.h"
#include "../storage/record.h"

/* How often a lock-free reader rereads a record that changed under it. */
#define READ_RETRIES 4

/*
 * What a read found: the value's length, and the commit timestamp of the
 * version read: a deletion's when the key reads as absent (0 when none is
 * kept), 0 for a transaction's own buffered write. WATCH compares it.
 */
struct bpfdb_found {
	__u64 ts;
	__u32 len;
	__u32 expired; /* not found: the key's value has expired (storage/expiry.h) */
	__u32 slot;    /* ts != 0: where the version was, in the record's array */
	__u32 _pad;
};

/* record_change_begin/end bracket every change of rec's versions (invariant 2). */
static __always_inline void record_change_begin(struct bpfdb_record *rec)
{
	WRITE_ONCE_U32(rec->seq, rec->seq + 1);
	barrier();
}

static __always_inline void record_change_end(struct bpfdb_record *rec)
{
	barrier();
	WRITE_ONCE_U32(rec->seq, rec->seq + 1);
}

/* A version as read, with the record it came from. */
struct version_view {
	__u64 begin_ts;
	__u32 ref;
	__u32 len;
	__u32 slot;    /* index in the record's version array */
	__u32 ended;   /* read_latest: the newest version has an end_ts */
	__u32 expired; /* the version found has a deadline the reader's time is past */
	__u32 _pad;
};

/* version_expired: the value vv found has expired at now (storage/expiry.h). */
static __always_inline int version_expired(struct version_view *vv, __u64 now)
{
	if (!len_expires(vv->len))
		return 0;
	vv->expired = deadline_passed(slab_deadline(vv->len, vv->ref), now);
	return vv->expired;
}

/*
 * read_latest finds the newest installed version, as a reader at time now
 * sees it (an expired value is not found). Readers under a lock see no
 * installer; lock-free autocommit readers may race one and so recheck
 * begin_ts (invariant 2). Returns 0, BPFDB_ERR_NOT_FOUND or BPFDB_ERR_RETRY.
 */
__attribute__((noinline)) int read_latest(struct bpfdb_record *rec, __u64 now,
					  struct version_view *out)
{
	__u64 best = 0;
	__u32 j;

	if (!rec || !out)
		return BPFDB_ERR_INTERNAL;
	for (j = 0; j < BPFDB_MAX_VERSIONS; j++) {
		__u64 b = READ_ONCE_U64(rec->v[j].begin_ts);
		__u32 ref, len;

		if (b <= best)
			continue;
		ref = rec->v[j].ref;
		len = rec->v[j].len;
		barrier();
		if (READ_ONCE_U64(rec->v[j].begin_ts) != b)
			return BPFDB_ERR_RETRY;
		best = b;
		out->begin_ts = b;
		out->ref = ref;
		out->len = len;
		out->slot = j;
		out->ended = READ_ONCE_U64(rec->v[j].end_ts) != BPFDB_TS_INF;
	}
	/*
	 * An ended newest version means its successor, a tombstone, was
	 * reclaimed while an older snapshot kept this one: the key is deleted.
	 */
	if (best == 0 || out->len == BPFDB_TOMBSTONE || out->ended || version_expired(out, now))
		return BPFDB_ERR_NOT_FOUND;
	return BPFDB_OK;
}

/*
 * read_at finds the version seen by a snapshot at snap (begin_ts <= snap <
 * end_ts), read at time now (an expired value is not found).
 */
__attribute__((noinline)) int read_at(struct bpfdb_record *rec, __u64 snap, __u64 now,
				      struct version_view *out)
{
	__u32 j;

	if (!rec || !out)
		return BPFDB_ERR_INTERNAL;
	for (j = 0; j < BPFDB_MAX_VERSIONS; j++) {
		__u64 b = READ_ONCE_U64(rec->v[j].begin_ts);
		__u64 e;
		__u32 ref, len;

		if (b == 0 || b > snap)
			continue;
		e = READ_ONCE_U64(rec->v[j].end_ts);
		if (e <= snap)
			continue;
		ref = rec->v[j].ref;
		len = rec->v[j].len;
		barrier();
		/*
		 * Reused under us: it was not a version this snapshot could see
		 * (those are never reclaimed while it is registered); skip it.
		 * Unregistered readers catch the rest with seq.
		 */
		if (READ_ONCE_U64(rec->v[j].begin_ts) != b)
			continue;
		out->begin_ts = b; /* a tombstone's too: WATCH sees deletions */
		if (len == BPFDB_TOMBSTONE)
			return BPFDB_ERR_NOT_FOUND;
		out->ref = ref;
		out->len = len;
		out->slot = j;
		return version_expired(out, now) ? BPFDB_ERR_NOT_FOUND : BPFDB_OK;
	}
	return BPFDB_ERR_NOT_FOUND;
}

/*
 * read_stable copies into dst the value of rec that a snapshot at
 * control.visible sees at time now, taking no lock and registering no snapshot, so it
 * never sees part of a commit: it samples the record's seq, reads, copies
 * the value, and retries if seq changed (invariants 2 and 3), whatever it
 * found. Returns 0, BPFDB_ERR_NOT_FOUND or (after READ_RETRIES races)
 * BPFDB_ERR_RETRY; out says what was found. Global: verified once.
 */
__attribute__((noinline)) int read_stable(struct bpfdb_record *rec, __u64 now,
					  struct bpfdb_value *dst, struct bpfdb_found *out)
{
	struct bpfdb_control *ctl = control_block();
	struct version_view vv = {};
	int status = BPFDB_ERR_RETRY;
	__u32 i;

	if (!rec || !ctl || !dst || !out)
		return BPFDB_ERR_INTERNAL;
	for (i = 0; i < READ_RETRIES && status == BPFDB_ERR_RETRY; i++) {
		__u32 seq = READ_ONCE_U32(rec->seq);

		if (seq & 1)
			continue;
		barrier();
		vv.begin_ts = 0;
		vv.expired = 0;
		status = read_at(rec, READ_ONCE_U64(ctl->visible), now, &vv);
		if (status == BPFDB_OK && slab_load(dst, vv.len, vv.ref))
			return BPFDB_ERR_INTERNAL;
		barrier();
		if (READ_ONCE_U32(rec->seq) != seq)
			status = BPFDB_ERR_RETRY;
	}
	out->ts = vv.begin_ts;
	out->slot = vv.slot;
	out->len = status == BPFDB_OK ? vv.len : 0;
	out->expired = status == BPFDB_ERR_NOT_FOUND && vv.expired;
	return status;
}

/*
 * reader_lost_record: a lock-free read_stable of key's record rec, which
 * read control.removals as before before its lookup, may have read another
 * key's record, or a value slot reused under it (record.h, invariant 3):
 * the caller retries from the lookup. Only when a record was removed
 * meanwhile does it pay for a second lookup. The version check follows the
 * lookup: a reuse of rec after the lookup check clears the version too.
 */
static __always_inline int reader_lost_record(struct bpfdb_control *ctl, __u64 before,
					      const struct bpfdb_key *key, struct bpfdb_record *rec,
					      const struct bpfdb_found *found)
{
	barrier();
	if (READ_ONCE_U64(ctl->removals) == before)
		return 0;
	if (!record_valid(key, rec))
		return 1;
	barrier();
	if (!found->ts)
		return 0;
	return found->slot >= BPFDB_MAX_VERSIONS ||
	       READ_ONCE_U64(rec->v[found->slot].begin_ts) != found->ts;
}

struct low_water_ctx {
	__u64 low;
	__u32 pending;
};

/*
 * registered_snapshot returns the snapshot registered in slot k: 0 for none,
 * or BPFDB_SNAP_PENDING while one is being registered.
 */
static __always_inline __u64 registered_snapshot(__u32 k)
{
	struct bpfdb_snapshots *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&snapshots, &zero);
	if (!s || k >= BPFDB_SNAP_SLOTS)
		return 0;
	return READ_ONCE_U64(s->snap[k]);
}

static long low_water_cb(__u32 k, void *data)
{
	struct low_water_ctx *c = data;
	__u64 snap = registered_snapshot(k);

	if (snap == BPFDB_SNAP_PENDING) {
		/* Its owner may have read an older visible than ours: reclaim nothing. */
		c->pending = 1;
		return 1;
	}
	if (snap != 0 && snap < c->low)
		c->low = snap;
	return 0;
}

/*
 * low_water returns the timestamp at or below which no registered snapshot
 * can need an ended version, or 0 when that cannot be known right now.
 * visible is read before the snapshots (invariant 3).
 *
 * With no snapshot counted in control.snap_active the mark is visible
 * itself, found without scanning the BPFDB_SNAP_SLOTS slots (which, for a
 * key written over and over, ran every few writes). A reader counts itself
 * before it reads visible (register_snapshot), and the count is read here
 * after visible, by a fully ordered atomic: a reader this read misses
 * reads visible after it, so its snapshot is at or above the mark.
 */
static __always_inline __u64 low_water(struct bpfdb_control *ctl)
{
	struct low_water_ctx c = { .low = READ_ONCE_U64(ctl->visible), .pending = 0 };

	if (__sync_fetch_and_add(&ctl->snap_active, 0) == 0)
		return c.low;
	bpf_loop(BPFDB_SNAP_SLOTS, low_water_cb, &c, 0);
	return c.pending ? 0 : c.low;
}

/*
 * refresh_low_hint recomputes the low-water mark and publishes it in
 * control.low_hint. The true mark never decreases (a snapshot registers at
 * the current visible, which is at or above every earlier mark), so any
 * published hint is a safe, if stale, bound for reclaiming.
 */
static __always_inline __u64 refresh_low_hint(struct bpfdb_control *ctl)
{
	__u64 low = low_water(ctl), old;

	if (low == 0)
		return READ_ONCE_U64(ctl->low_hint);
	old = READ_ONCE_U64(ctl->low_hint);
	if (low > old)
		__sync_val_compare_and_swap(&ctl->low_hint, old, low);
	return low;
}

/* reclaim frees the versions of rec that no snapshot at or above low can see. */
static __always_inline __u32 reclaim(struct bpfdb_record *rec, __u64 low)
{
	__u32 j, reclaimed = 0;

	record_change_begin(rec);
	for (j = 0; j < BPFDB_MAX_VERSIONS; j++) {
		struct bpfdb_version *v = &rec->v[j];
		__u64 b = v->begin_ts, e = v->end_ts;
		int dead = e != BPFDB_TS_INF && e <= low;
		int dead_tombstone = e == BPFDB_TS_INF && v->len == BPFDB_TOMBSTONE && b <= low;

		if (b == 0 || (!dead && !dead_tombstone))
			continue;
		WRITE_ONCE_U64(v->begin_ts, 0);
		slab_free(v->len, v->ref);
		reclaimed++;
	}
	record_change_end(rec);
	if (reclaimed)
		stat_add(BPFDB_STAT_GC_RECLAIMED, reclaimed);
	return reclaimed;
}

static __always_inline int free_version(struct bpfdb_record *rec)
{
	__u32 j;

	for (j = 0; j < BPFDB_MAX_VERSIONS; j++)
		if (rec->v[j].begin_ts == 0)
			return j;
	return -1;
}

/* One version, and whether a registered snapshot sees it. */
struct seen_ctx {
	__u64 begin;
	__u64 end;
	__u32 seen;    /* some registered snapshot is in [begin, end) */
	__u32 pending; /* a snapshot is being registered: decide nothing */
};

static long seen_cb(__u32 k, void *data)
{
	struct seen_ctx *c = data;
	__u64 snap = registered_snapshot(k);

	if (snap == BPFDB_SNAP_PENDING) {
		c->pending = 1;
		return 1;
	}
	if (snap != 0 && c->begin <= snap && snap < c->end) {
		c->seen = 1;
		return 1;
	}
	return 0;
}

/*
 * reclaim_precise frees every version of rec that no registered snapshot
 * sees and no future one can: its end_ts is at or below visible (read
 * before the snapshots, invariant 3), and no registered snapshot falls in
 * [begin_ts, end_ts). Snapshots between two versions keep only the version
 * they see, so a few long readers pin a few versions, not all of them.
 * The newest version stays unless it is a tombstone (invariant 4). One
 * snapshot scan per version keeps the verifier's state to a bit.
 */
__attribute__((noinline)) int reclaim_precise(struct bpfdb_record *rec)
{
	struct bpfdb_control *ctl = control_block();
	__u32 j, reclaimed = 0;
	__u64 visible;

	if (!rec || !ctl)
		return 0;
	/*
	 * A fully ordered read (an atomic fetch-add of 0): visible must be read
	 * before the snapshot slots (invariant 3), and plain loads may be
	 * reordered on arm64. This path is rare (reserve_version's last resort),
	 * so the atomic on a hot line costs little.
	 */
	visible = __sync_fetch_and_add(&ctl->visible, 0);
	record_change_begin(rec);
	for (j = 0; j < BPFDB_MAX_VERSIONS; j++) {
		struct bpfdb_version *v = &rec->v[j];
		struct seen_ctx c = { .begin = v->begin_ts, .end = v->end_ts };
		int ended = c.end != BPFDB_TS_INF && c.end <= visible;
		int tombstone = c.end == BPFDB_TS_INF && v->len == BPFDB_TOMBSTONE && c.begin <= visible;

		if (c.begin == 0 || (!ended && !tombstone))
			continue;
		bpf_loop(BPFDB_SNAP_SLOTS, seen_cb, &c, 0);
		if (c.pending)
			break;
		if (c.seen)
			continue;
		WRITE_ONCE_U64(v->begin_ts, 0);
		slab_free(v->len, v->ref);
		reclaimed++;
	}
	record_change_end(rec);
	if (reclaimed)
		stat_add(BPFDB_STAT_GC_RECLAIMED, reclaimed);
	return reclaimed;
}

/* record_empty: every version slot of rec is free. */
static __always_inline int record_empty(struct bpfdb_record *rec)
{
	__u32 j;

	for (j = 0; j < BPFDB_MAX_VERSIONS; j++)
		if (READ_ONCE_U64(rec->v[j].begin_ts) != 0)
			return 0;
	return 1;
}

/* record_deleted: rec's newest version is a tombstone (or it has none). */
static __always_inline int record_deleted(struct bpfdb_record *rec)
{
	__u32 j;

	for (j = 0; j < BPFDB_MAX_VERSIONS; j++) {
		struct bpfdb_version *v = &rec->v[j];

		if (v->begin_ts != 0 && v->end_ts == BPFDB_TS_INF && v->len != BPFDB_TOMBSTONE)
			return 0;
	}
	return 1;
}

/*
 * record_collect frees every version of key's record rec that no one can
 * see and, when none is left, removes the record (record.h): it returns 1
 * then, the caller's exclusive lock gone with the record, else 0 with the
 * lock still held. Called on a deleted key: a record with a live value
 * keeps it. A global function, verified once for its callers.
 */
__attribute__((noinline)) int record_collect(const struct bpfdb_key *key, struct bpfdb_record *rec)
{
	struct bpfdb_control *ctl = control_block();

	__u64 del_ts = 0;
	__u32 j;

	if (!key || !rec || !ctl || !record_deleted(rec))
		return 0;
	for (j = 0; j < BPFDB_MAX_VERSIONS; j++)
		if (rec->v[j].begin_ts != 0 && rec->v[j].end_ts == BPFDB_TS_INF)
			del_ts = rec->v[j].begin_ts; /* the tombstone's */
	reclaim(rec, low_water(ctl));
	if (!record_empty(rec) && __sync_fetch_and_add(&ctl->snap_active, 0))
		reclaim_precise(rec); /* snapshots below this key's life keep nothing of it */
	if (!record_empty(rec))
		return 0;
	record_remove(key, rec, del_ts);
	return 1;
}

/*
 * reserve_version returns a free version slot of rec, or -1 when every
 * version may still be read. It is cooperative GC: every writer first
 * reclaims what the cached low-water hint allows, so a key keeps few
 * versions (and slab slots); only when that leaves no slot does it rescan
 * the snapshots, first for a fresh hint, then precisely. The caller holds
 * rec's exclusive lock; the slot stays free, and so reserved, until the
 * caller installs into it.
 */
__attribute__((noinline)) int reserve_version(struct bpfdb_record *rec)
{
	struct bpfdb_control *ctl = control_block();
	int slot;

	if (!rec || !ctl)
		return -1;
	reclaim(rec, READ_ONCE_U64(ctl->low_hint));
	slot = free_version(rec);
	if (slot >= 0)
		return slot;
	reclaim(rec, refresh_low_hint(ctl));
	slot = free_version(rec);
	if (slot >= 0)
		return slot;
	reclaim_precise(rec);
	return free_version(rec);
}

/* Every this many commits a writer refreshes the low-water hint. */
#define LOW_HINT_REFRESH_MASK 63

static __always_inline void maybe_refresh_low_hint(struct bpfdb_control *ctl, __u64 ts)
{
	if ((ts & LOW_HINT_REFRESH_MASK) == 0)
		refresh_low_hint(ctl);
}

/*
 * INSTALL_AT names version slot vslot of a key of database db for
 * install_version, which takes both in one argument: a global function
 * takes at most five.
 */
#define INSTALL_AT(vslot, db) ((__u32)(vslot) | (__u32)(db) << 8)

/*
 * install_version makes slot vslot (of at: INSTALL_AT) the newest version
 * at ts and ends the version it replaces, and keeps the count of live keys
 * of the key's database (BPFDB_STAT_LIVE_KEYS): one more when a value
 * replaces nothing or a tombstone, one fewer when a tombstone replaces a
 * value. The caller holds
 * the exclusive lock and has reserved vslot; ts is not yet visible, so no
 * snapshot reader can see either change. Global: verified once, not in
 * every caller.
 */
__attribute__((noinline)) int install_version(struct bpfdb_record *rec, __u32 at, __u64 ts,
					       __u32 ref, __u32 len)
{
	__u32 j, vslot = at & 0xff, db = at >> 8;
	struct bpfdb_version *nv;
	__s64 live = len != BPFDB_TOMBSTONE;

	if (!rec || vslot >= BPFDB_MAX_VERSIONS)
		return -1;
	nv = &rec->v[vslot];
	record_change_begin(rec);
	WRITE_ONCE_U64(nv->end_ts, BPFDB_TS_INF);
	nv->ref = ref;
	nv->len = len;
	barrier();
	WRITE_ONCE_U64(nv->begin_ts, ts);
	for (j = 0; j < BPFDB_MAX_VERSIONS; j++) {
		struct bpfdb_version *v = &rec->v[j];

		if (j != vslot && v->begin_ts != 0 && v->end_ts == BPFDB_TS_INF) {
			live -= v->len != BPFDB_TOMBSTONE;
			WRITE_ONCE_U64(v->end_ts, ts);
		}
	}
	record_change_end(rec);
	if (live && db < BPFDB_DATABASES) /* callers checked it: never uncounted */
		stat_add(BPFDB_STAT_LIVE_KEYS + db, (__u64)live);
	return 0;
}

#endif /* BPFDB_VERSION_H */
