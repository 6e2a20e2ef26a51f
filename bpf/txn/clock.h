/* SPDX-License-Identifier: GPL-2.0 */
/*
 * clock.h: commit timestamps and the visible watermark.
 *
 * A committer takes ts = ++clock while holding the exclusive locks of
 * everything it writes, so timestamp order is a serialization order. It then
 * installs its versions and marks ts done. visible is the largest ts such
 * that every commit at or below it is done; snapshots read at visible, so
 * no reader ever sees part of a commit. Commits finish out of order on
 * different CPUs (and a run may be preempted), so every committer advances
 * visible over all consecutive done timestamps, not just its own: whoever
 * finishes last moves it past everyone. done is a ring of BPFDB_DONE_RING
 * slots; a slot holds the ts that last used it, and timestamps never repeat.
 */
#ifndef BPFDB_CLOCK_H
#define BPFDB_CLOCK_H

#include "maps.h"

#define CLOCK_CAS_TRIES 8

/*
 * next_commit_ts hands out the next commit timestamp, or 0 when that would
 * run BPFDB_DONE_RING - 1 ahead of visible: its done slot would still
 * belong to an unfinished commit (one preempted mid-install, say), and
 * overwriting it would lose that commit's mark and stall visible forever.
 * The caller then aborts with BPFDB_ERR_RETRY. Also 0 after CAS races.
 */
static __always_inline __u64 next_commit_ts(struct bpfdb_control *ctl)
{
	__u32 i;

	for (i = 0; i < CLOCK_CAS_TRIES; i++) {
		/* visible first: it never passes clock, so c - v cannot underflow. */
		__u64 v = READ_ONCE_U64(ctl->visible);
		__u64 c = READ_ONCE_U64(ctl->clock);

		if (c + 1 - v >= BPFDB_DONE_RING)
			return 0;
		if (__sync_val_compare_and_swap(&ctl->clock, c, c + 1) == c)
			return c + 1;
	}
	return 0;
}

static long advance_visible_cb(__u32 i, void *data)
{
	struct bpfdb_control *ctl = control_block();
	__u64 vis, next;

	if (!ctl)
		return 1;
	vis = READ_ONCE_U64(ctl->visible);
	next = vis + 1;
	if (READ_ONCE_U64(ctl->done[next & (BPFDB_DONE_RING - 1)]) != next)
		return 1;
	__sync_val_compare_and_swap(&ctl->visible, vis, next);
	return 0;
}

/* mark_done records that ts is fully installed (or abandoned) and advances visible. */
static __always_inline void mark_done(struct bpfdb_control *ctl, __u64 ts)
{
	__sync_lock_test_and_set(&ctl->done[ts & (BPFDB_DONE_RING - 1)], ts);
	__u32 unused = 0;

	bpf_loop(BPFDB_DONE_RING, advance_visible_cb, &unused, 0);
}

/*
 * register_snapshot publishes a reader's snapshot in slot k of the snapshots
 * map and returns it (see invariant 3 in storage/version.h). It counts the
 * snapshot in control.snap_active first, before it reads visible, so GC
 * that finds the count at zero may take visible as the low-water mark
 * without scanning the slots (low_water).
 *
 * The increment's result is unused, so it compiles to an atomic add
 * without BPF_FETCH, which orders nothing on arm64. What orders it before
 * the read of visible is the PENDING exchange after it, which is fully
 * ordered: keep that exchange an atomic one, and after the increment.
 */
static __always_inline __u64 register_snapshot(struct bpfdb_control *ctl, __u32 k)
{
	struct bpfdb_snapshots *s;
	__u32 zero = 0;
	__u64 snap;

	s = bpf_map_lookup_elem(&snapshots, &zero);
	if (!s || k >= BPFDB_SNAP_SLOTS)
		return 0;
	__sync_fetch_and_add(&ctl->snap_active, 1);
	__sync_lock_test_and_set(&s->snap[k], BPFDB_SNAP_PENDING);
	snap = READ_ONCE_U64(ctl->visible);
	__sync_lock_test_and_set(&s->snap[k], snap);
	return snap;
}

/* unregister_snapshot clears slot k, then uncounts it (register_snapshot). */
static __always_inline void unregister_snapshot(struct bpfdb_control *ctl, __u32 k)
{
	struct bpfdb_snapshots *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&snapshots, &zero);
	if (!s || k >= BPFDB_SNAP_SLOTS)
		return;
	__sync_lock_test_and_set(&s->snap[k], 0);
	__sync_fetch_and_add(&ctl->snap_active, -1);
}

#endif /* BPFDB_CLOCK_H */
