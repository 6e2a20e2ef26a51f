/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maps.h: every map of the chain. The database lives in these maps, not in
 * the programs, so a new build of the programs can be swapped into
 * chain_progs without losing data. Sizes marked "set at Open" are
 * placeholders the Go engine overrides before loading.
 */
#ifndef BPFDB_MAPS_H
#define BPFDB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bpfdb.h"

/* Stages reached by tail call, in chain_progs. */
enum bpfdb_stage {
	BPFDB_STAGE_AUTO = 0,        /* autocommit batch */
	BPFDB_STAGE_TXN_OPEN = 1,    /* check or begin the transaction */
	BPFDB_STAGE_TXN_OPS = 2,     /* lock, read, buffer writes */
	BPFDB_STAGE_TXN_COMMIT = 3,  /* install buffered writes at a commit timestamp */
	BPFDB_STAGE_TXN_RELEASE = 4, /* release locks, free the slot */
	BPFDB_STAGE_COUNT = 5,
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, BPFDB_STAGE_COUNT);
	__type(key, __u32);
	__type(value, __u32);
} chain_progs SEC(".maps");

/* Request area: headers and ops, written by Go through mmap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BPFDB_REQ_SLOTS);
	__type(key, __u32);
	__type(value, struct bpfdb_req);
} req_hdr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BPFDB_REQ_SLOTS * BPFDB_MAX_BATCH);
	__type(key, __u32);
	__type(value, struct bpfdb_op);
} req_ops SEC(".maps");

/* The index: key to record (lock word and version array). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* set at Open: max keys */
	__type(key, struct bpfdb_key);
	__type(value, struct bpfdb_record);
} records SEC(".maps");

/*
 * removed_versions: per bucket of keys (storage/record.h, key_bucket), the
 * commit timestamp of the newest deletion whose record was removed. A key
 * with no record reports it as its version, so WATCH still notices a key
 * created and deleted again once its record is gone.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFDB_REMOVED_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} removed_versions SEC(".maps");

/* An all-zero record, the initial value of a new key. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpfdb_record);
} empty_record SEC(".maps");

/* Transactions: the Go engine's slots, then the kernel's (txn/table.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFDB_TXN_SLOTS);
	__type(key, __u32);
	__type(value, struct bpfdb_txn);
} txn_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpfdb_control);
} control SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpfdb_snapshots);
} snapshots SEC(".maps");

/* The write-ahead log: committed transactions, drained by the Go logger. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); /* set at Open */
} wal_ring SEC(".maps");

/*
 * Where a committing transaction assembles a WAL write record before it is
 * output, by transaction slot: a slot has one committer at a time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFDB_TXN_SLOTS);
	__type(key, __u32);
	__type(value, struct bpfdb_wal_write);
} wal_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFDB_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/*
 * The value store (storage/slab.h): pages that the size classes carve into
 * slots as they need them, so the classes share one budget (page_cap
 * pages). Mmapped by Go, which reads values from it to write checkpoints.
 */
/* The slot of each class, as a type: copies of a class are of its size. */
struct bpfdb_slab_0 { __u8 b[32]; } __attribute__((aligned(8)));
struct bpfdb_slab_1 { __u8 b[64]; } __attribute__((aligned(8)));
struct bpfdb_slab_2 { __u8 b[128]; } __attribute__((aligned(8)));
struct bpfdb_slab_3 { __u8 b[256]; } __attribute__((aligned(8)));
struct bpfdb_slab_4 { __u8 b[512]; } __attribute__((aligned(8)));
struct bpfdb_slab_5 { __u8 b[1024]; } __attribute__((aligned(8)));

_Static_assert(sizeof(struct bpfdb_slab_0) == 1 << BPFDB_MIN_SLAB_SHIFT, "class 0 size");
_Static_assert(sizeof(struct bpfdb_slab_5) == sizeof(struct bpfdb_value), "class 5 holds any value");

struct bpfdb_page {
	__u8 b[BPFDB_PAGE_SIZE];
} __attribute__((aligned(8)));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* set at Open */
	__type(key, __u32);
	__type(value, struct bpfdb_page);
} value_pages SEC(".maps");

static __always_inline void stat_add(__u32 which, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &which);

	if (c)
		__sync_fetch_and_add(c, n);
}

static __always_inline struct bpfdb_control *control_block(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&control, &zero);
}

#define READ_ONCE_U64(x) (*(volatile __u64 *)&(x))
#define WRITE_ONCE_U64(x, v) (*(volatile __u64 *)&(x) = (v))
#define READ_ONCE_U32(x) (*(volatile __u32 *)&(x))
#define WRITE_ONCE_U32(x, v) (*(volatile __u32 *)&(x) = (v))
#define barrier() asm volatile("" ::: "memory")

#endif /* BPFDB_MAPS_H */
