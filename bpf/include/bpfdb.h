/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpfdb.h: the one header shared by every BPF stage and, through bpf2go, by
 * the Go engine. It holds the limits, the op and error codes, the layout of
 * the request area, records, the transaction table and the control block.
 *
 * Every limit is a member of enum bpfdb_limit so that bpf2go exports it to Go
 * as a constant; Go never restates a number that lives here.
 */
#ifndef BPFDB_H
#define BPFDB_H

#include <linux/types.h>

enum bpfdb_limit {
	BPFDB_MAX_KEY_LEN = 64,      /* bytes of a key the index holds as itself; BPF programs' longest */
	BPFDB_KEY_DIGEST_LEN = 32,   /* bytes of a longer key's SHA-256 in its index key (struct bpfdb_key) */
	BPFDB_MAX_LONG_KEY_LEN = 65536, /* the longest key the Go engine stores by its digest */
	BPFDB_DATABASES = 16,        /* keyspaces (Redis's SELECT 0..15): struct bpfdb_key.db */
	BPFDB_MAX_VALUE_LEN = 1024,  /* bytes in a value */
	BPFDB_MAX_VERSIONS = 8,      /* versions kept per key */
	BPFDB_MAX_BATCH = 64,        /* operations in one request (one chain run) */
	BPFDB_MAX_TXNS = 256,        /* transaction slots the Go engine hands out */
	BPFDB_KERNEL_TXNS = 16,      /* slots above them for BPF programs (bpfdb_api.h) */
	BPFDB_TXN_SLOTS = 272,       /* the transaction table: BPFDB_MAX_TXNS + BPFDB_KERNEL_TXNS */
	BPFDB_MAX_TXN_KEYS = 1024,   /* distinct keys one transaction may lock */
	BPFDB_KERNEL_TXN_KEYS = 16,  /* distinct keys one kernel transaction may lock */
	BPFDB_REQ_SLOTS = 64,        /* requests that may run at once */
	BPFDB_SLAB_CLASSES = 6,      /* value size classes: 32, 64, ..., 1024 */
	BPFDB_MIN_SLAB_SHIFT = 5,    /* the smallest class holds 1 << 5 bytes */
	BPFDB_PAGE_SHIFT = 12,       /* value pages of 1 << 12 bytes, carved into slots (storage/slab.h) */
	BPFDB_PAGE_SIZE = 4096,      /* 1 << BPFDB_PAGE_SHIFT */
	BPFDB_SLAB_CAS_TRIES = 4,    /* compare-and-swaps an allocation may lose in a row (then: retry) */
	BPFDB_SLAB_PUSH_TRIES = 64,  /* compare-and-swaps a free may lose in a row (then: lost) */
	BPFDB_DONE_RING = 1024,      /* commit timestamps tracked while installing */
	BPFDB_SNAP_SLOTS = 272,      /* one per transaction slot (BPFDB_TXN_SLOTS) */
	BPFDB_REMOVED_BUCKETS = 4096, /* removed_versions: keys hash into this many */
	BPFDB_RUN_MAGIC = 0x62706664, /* "bpfd": first word of every run's packet */
	BPFDB_DEADLINE_LEN = 8,       /* bytes of an expiring value's deadline (storage/expiry.h) */
	BPFDB_MAX_EXPIRING_LEN = 1016, /* the longest value with a deadline in a slot */
	BPFDB_BLOB_HEAD = 32,          /* bytes of a blob's header (struct bpfdb_blob) */
	BPFDB_BLOB_MAX_PAGES = 1016,   /* data pages a blob's head page lists */
	BPFDB_MAX_BLOB_LEN = 4161536,  /* stored bytes of the largest blob: BPFDB_BLOB_MAX_PAGES pages */
};

/*
 * A value length (bpfdb_op.val_len, bpfdb_version.len, a WAL record's
 * val_len) is BPFDB_TOMBSTONE or the stored bytes, flagged with
 * BPFDB_LEN_EXPIRES when the last BPFDB_DEADLINE_LEN of them are the key's
 * deadline (storage/expiry.h), and with the value's type (enum
 * bpfdb_value_type) in BPFDB_LEN_TYPE. A value of more than BPFDB_MAX_VALUE_LEN
 * stored bytes is a blob (storage/blob.h): where the bytes of a value go
 * (an op's value, a WRITE record's, a GET's answer), a blob's are its
 * struct bpfdb_blob.
 */
enum bpfdb_len_flag {
	BPFDB_LEN_EXPIRES = 0x40000000,
	BPFDB_LEN_TYPE = 0x38000000,
	BPFDB_LEN_TYPE_SHIFT = 27,
	BPFDB_LEN_MASK = 0x07ffffff,
};

/*
 * What a value's bytes are. The store keeps them as it keeps a string's
 * (one version, one value): the type says how the server reads them. A
 * string is the bytes; a hash is its fields and values, encoded by the
 * server (server/hash.go). Only strings are integers (INCR) and only
 * strings are read by the API for BPF programs (BPFDB_ERR_WRONG_TYPE).
 */
enum bpfdb_value_type {
	BPFDB_TYPE_STRING = 0,
	BPFDB_TYPE_HASH = 1,
	BPFDB_TYPES = 2, /* types in use; BPFDB_LEN_TYPE holds up to 8 */
};

/* Operation kinds, in bpfdb_op.kind. */
enum bpfdb_op_kind {
	BPFDB_OP_NONE = 0,
	BPFDB_OP_GET = 1,
	BPFDB_OP_SET = 2,
	BPFDB_OP_DEL = 3,
	BPFDB_OP_BEGIN = 4,  /* first op of a transaction request only */
	BPFDB_OP_COMMIT = 5, /* last op of a transaction request only */
	BPFDB_OP_ABORT = 6,  /* last op of a transaction request only */
	BPFDB_OP_LOAD = 7,   /* recovery: install a version at op.ts, unlogged (autocommit only) */
	BPFDB_OP_INCR = 8,   /* add op.ts (an int64) to the key's decimal value (autocommit only);
			      * out: value and val_len hold the sum's digits */
};

/* Flags on an op. */
enum bpfdb_begin_flag {
	BPFDB_BEGIN_READ_ONLY = 1, /* BEGIN: a read-only snapshot transaction */
	BPFDB_GET_LATEST = 2,      /* autocommit GET of a key an earlier op of the batch wrote */
	BPFDB_LOAD_DELETE = 4,     /* LOAD: install a tombstone */
	BPFDB_GET_FOR_UPDATE = 8,  /* GET in a read-write transaction: take the exclusive lock */
	BPFDB_DEL_EXPIRED = 16,    /* autocommit DEL only of a value that has expired (the expirer) */
};

/* Request modes, in bpfdb_req.mode. */
enum bpfdb_mode {
	BPFDB_MODE_AUTOCOMMIT = 1, /* every op is its own transaction */
	BPFDB_MODE_TXN = 2,        /* all ops belong to the transaction in txn_slot */
};

/*
 * Status codes, in bpfdb_op.status and bpfdb_req.status. 0 is success;
 * the Go engine maps each to a typed error.
 */
enum bpfdb_status {
	BPFDB_OK = 0,
	BPFDB_ERR_NOT_FOUND = 1,
	BPFDB_ERR_CONFLICT = 2,       /* no-wait lock conflict: transaction aborted */
	BPFDB_ERR_KEY_TOO_LONG = 3,
	BPFDB_ERR_VALUE_TOO_LARGE = 4,
	BPFDB_ERR_STORE_FULL = 5,     /* index or a value slab is full; detail says which */
	BPFDB_ERR_VERSIONS_FULL = 6,  /* no version slot could be reclaimed */
	BPFDB_ERR_WRITE_SET_FULL = 7, /* more than BPFDB_MAX_TXN_KEYS keys */
	BPFDB_ERR_ABORTED = 8,        /* skipped: an earlier op aborted the transaction,
				       * or (autocommit) an earlier op must be retried first */
	BPFDB_ERR_TXN_INVALID = 9,    /* slot, generation or state does not match */
	BPFDB_ERR_READ_ONLY = 10,     /* write in a read-only transaction */
	BPFDB_ERR_BAD_REQUEST = 11,   /* malformed request */
	BPFDB_ERR_RETRY = 12,         /* transient race; nothing applied, try again */
	BPFDB_ERR_INTERNAL = 13,      /* a tail call or map lookup that cannot fail did */
	BPFDB_ERR_LOG_FULL = 14,      /* the WAL ring has no room; nothing applied, retry */
	BPFDB_ERR_QUIESCED = 15,      /* the gate is closed for a checkpoint; retry */
	BPFDB_ERR_LOG_REFUSED = 16,   /* the log cannot take writes (a full or failing
				       * disk, a stalled write): nothing applied */
	/* Returned only by the API for BPF programs (bpfdb_api.h): */
	BPFDB_ERR_NOT_INTEGER = 17,   /* incr: the value is not a decimal int64, or
				       * the result would overflow; nothing applied */
	BPFDB_ERR_LAYOUT = 18,        /* control.layout is not this build's
				       * BPFDB_LAYOUT_VERSION: the store is not open,
				       * or of another layout */
	BPFDB_ERR_TXN_TABLE_FULL = 19,/* every kernel transaction slot is in use */
	BPFDB_ERR_WRONG_TYPE = 20,    /* the key holds a value that is not a string */
};

/* bpfdb_op.detail for BPFDB_ERR_STORE_FULL: the slab class, or this for the index. */
enum bpfdb_full_detail {
	BPFDB_FULL_INDEX = 255,
	BPFDB_DETAIL_OVERFLOW = 254, /* on BPFDB_ERR_NOT_INTEGER: the sum would overflow */
	BPFDB_DETAIL_EXPIRED = 253,  /* on BPFDB_ERR_NOT_FOUND: the key's value has expired */
	BPFDB_DETAIL_WRONG_TYPE = 252, /* on BPFDB_ERR_NOT_INTEGER: the value is not a string */
};

/* Special values of version fields. */
#define BPFDB_TS_INF 0xffffffffffffffffULL  /* end_ts of the newest version */
#define BPFDB_TOMBSTONE 0xffffffffU          /* len of a deletion version */
#define BPFDB_SNAP_PENDING 0xffffffffffffffffULL /* snapshot being registered */

/* Lock word: 0 free; the count of shared holders; or exclusive (this bit
 * and the owner, txn/lock.h). */
#define BPFDB_LOCK_EXCL (1U << 31)

/*
 * A key, zero-padded to its full size so it can be a hash-map key. A key of
 * up to BPFDB_MAX_KEY_LEN bytes is held as itself. A longer one (only the
 * Go engine writes those: engine/longkey.go) is held by its index key: len
 * is its real length, data its SHA-256 then its first BPFDB_KEY_DIGEST_LEN
 * bytes; the engine keeps the whole key for the log, scans and
 * checkpoints. The chain treats both alike: it hashes and compares the
 * whole struct. db is the key's keyspace, below BPFDB_DATABASES: the same
 * bytes in two databases are two keys (a zeroed key is database 0's).
 */
struct bpfdb_key {
	__u32 len;
	__u32 db;
	__u8 data[BPFDB_MAX_KEY_LEN];
} __attribute__((aligned(8)));

/*
 * One operation of a request, written by Go into the request area
 * (req_ops, BPF_F_MMAPABLE) and answered in place by the chain.
 */
struct bpfdb_op {
	__u8 kind;         /* enum bpfdb_op_kind */
	__u8 flags;        /* enum bpfdb_begin_flag on BEGIN */
	__u8 detail;       /* out: enum bpfdb_full_detail or slab class */
	__u8 _pad0;
	__s32 status;      /* out: enum bpfdb_status */
	__u32 val_len;     /* in for SET, out for GET */
	__u32 _pad1;
	__u64 ts;          /* LOAD: in, GET: out: the version's commit timestamp;
			    * INCR: in, the delta; SET, DEL: out, the commit's
			    * LSN; DEL with BPFDB_DEL_EXPIRED of a live value:
			    * out, its deadline (0: none) */
	/* val_len and value of SET, LOAD and GET hold the stored form: with
	 * BPFDB_LEN_EXPIRES, the value then its deadline (storage/expiry.h). */
	struct bpfdb_key key;
	__u8 value[BPFDB_MAX_VALUE_LEN] __attribute__((aligned(8)));
};

/* The header of a request slot, in req_hdr (BPF_F_MMAPABLE). */
struct bpfdb_req {
	__u32 mode;      /* enum bpfdb_mode */
	__u32 nops;      /* ops in use, 1..BPFDB_MAX_BATCH */
	__u32 txn_slot;  /* BPFDB_MODE_TXN: slot in the transaction table */
	__u32 txn_gen;   /* BPFDB_MODE_TXN: generation the caller holds */
	__s32 status;    /* out: BPFDB_MODE_TXN: outcome for the transaction */
	__u32 build;     /* out: build id of the entry program that ran */
	__u64 commit_ts; /* out: commit timestamp, 0 if nothing was committed */
	__u64 visible;   /* out: visible timestamp after the run; a read-only
			  * BEGIN's snapshot */
	/* Continuation state between stages. */
	__u32 end_kind;  /* BPFDB_OP_COMMIT or BPFDB_OP_ABORT when the transaction ends */
	__u32 _pad;
};

/* The packet a chain run carries: which request slot to execute. */
struct bpfdb_run {
	__u32 magic; /* BPFDB_RUN_MAGIC */
	__u32 slot;  /* request slot, < BPFDB_REQ_SLOTS */
	__u64 _pad;
};

/*
 * One version of a key. begin_ts == 0 marks a free slot. A version is seen by
 * a snapshot at S when begin_ts <= S < end_ts.
 */
struct bpfdb_version {
	__u64 begin_ts;
	__u64 end_ts;
	__u32 ref; /* slot in the slab of the class of len */
	__u32 len; /* value length, or BPFDB_TOMBSTONE */
};

/*
 * A record: the value of the index hash map. lock is its lock word
 * (txn/lock.h); seq is odd while the lock holder changes the versions
 * (storage/version.h, invariant 2). Both are 32 bits, so that a key of
 * 16 bytes with a value of 100 costs its index entry and one 128-byte
 * slot, 464 bytes. seq may wrap: a reader compares it around one copy,
 * which would need 2^31 changes of the record in between to be fooled.
 */
struct bpfdb_record {
	__u32 lock;
	__u32 seq;
	struct bpfdb_version v[BPFDB_MAX_VERSIONS];
};

/* Lock modes in a transaction entry. */
enum bpfdb_lock_mode {
	BPFDB_LOCK_NONE = 0,
	BPFDB_LOCK_SHARED = 1,
	BPFDB_LOCK_EXCLUSIVE = 2,
};

/* A key a transaction has locked, and its buffered write if any. */
struct bpfdb_txn_entry {
	struct bpfdb_key key;
	__u8 lock_mode; /* enum bpfdb_lock_mode */
	__u8 write;     /* 1 when a write is buffered */
	__u8 vslot;     /* version slot reserved in the record for the write */
	__u8 _pad;
	__u32 ref;      /* slab slot of the buffered value */
	__u32 len;      /* buffered value length, or BPFDB_TOMBSTONE */
	__u32 _pad1;
};

/* Transaction states. */
enum bpfdb_txn_state {
	BPFDB_TXN_FREE = 0,
	BPFDB_TXN_ACTIVE = 1,
	BPFDB_TXN_ACTIVE_RO = 2,
};

/*
 * A slot of the transaction table. Slots below BPFDB_MAX_TXNS are the Go
 * engine's; the BPFDB_KERNEL_TXNS above are claimed by BPF programs
 * through control.ktxn_claimed (txn/table.h), which use busy and start_ns.
 */
struct bpfdb_txn {
	__u32 state; /* enum bpfdb_txn_state */
	__u32 gen;   /* generation given at BEGIN; later requests must match */
	__u64 snap_ts;
	__u32 nkeys;
	__u32 busy;     /* kernel slots: 1 while a call (or the reaper) uses it */
	__u64 start_ns; /* bpf_ktime_get_ns() at begin: the transaction's time for deadlines
			 * (storage/expiry.h), and the reaper's for kernel slots */
	struct bpfdb_txn_entry e[BPFDB_MAX_TXN_KEYS];
};

/*
 * The control block (one element, BPF_F_MMAPABLE so Go reads visible without
 * a syscall). clock is the last commit timestamp handed out; visible is the
 * newest timestamp below which every commit is fully installed.
 */
struct bpfdb_control {
	__u64 clock;
	__u64 visible;
	__u64 low_hint; /* a low-water mark; never above the true one (storage/version.h) */
	__u64 wal_on;   /* 1: commits are logged to wal_ring (set by Go) */
	__u64 gate;     /* 1: closed for a checkpoint; new transactions are refused */
	__u64 txn_seq;  /* transaction ids of logged multi-write commits */
	/* The value store (storage/slab.h): per class, its free list's head
	 * (a tagged slot reference), the page it carves and the next slot
	 * in it, and its slots in use; the pages handed out, of page_cap
	 * (set by Go at Open), and the free list of pages given back. */
	__u64 slab_free[BPFDB_SLAB_CLASSES];
	__u64 slab_cursor[BPFDB_SLAB_CLASSES];
	__u64 slab_used[BPFDB_SLAB_CLASSES];
	__u64 page_next;
	__u64 page_cap;
	__u64 page_free;
	__u64 blob_pages; /* pages blobs hold (storage/blob.h): Go adds, the chain and Go subtract */
	__u64 done[BPFDB_DONE_RING];         /* commit ts fully installed, by ts % ring */
	__u64 snap_active; /* snapshots registered or registering (txn/clock.h) */
	__u64 log_refused; /* 1: the log cannot take writes; commits are refused (wal/wal.h) */
	__u64 layout;      /* BPFDB_LAYOUT_VERSION, set by Go at Open; API calls check it */
	__u64 durable_lsn; /* every commit at or below it is on disk (set by Go after each fsync) */
	__u64 ktxn_claimed;    /* bit k: kernel transaction slot BPFDB_MAX_TXNS + k is taken */
	__u64 ktxn_timeout_ns; /* set by Go: kernel transactions older than this are reaped */
	__u64 removals;        /* records removed from the index so far (storage/record.h) */
	__u64 wall_offset_ns;  /* set by Go: bpf_ktime_get_ns() plus this is the Unix time, in
				* ns, that deadlines are compared with (storage/expiry.h) */
};

/*
 * A value buffer: what value-carrying functions of the library read from and
 * copy into. Copies are whole slab classes, so a buffer is always this
 * large, whatever the value's length; it lives in map memory (larger than
 * the 512-byte BPF stack), e.g. an op's value or a BPF program's own array.
 */
struct bpfdb_value {
	__u8 b[BPFDB_MAX_VALUE_LEN];
} __attribute__((aligned(8)));

/*
 * A blob: a value too large for a slot, in pages of value_pages that Go
 * takes and fills through the mmapped array (storage/blob.h). Its head
 * page starts with this header, then the npages data pages' numbers, then
 * the first of the value's bytes; the data pages hold the rest in order.
 * The header is also what stands for the blob's bytes in an op, a WAL
 * record and a GET's answer.
 */
struct bpfdb_blob {
	__u32 page;     /* the head page */
	__u32 npages;   /* data pages after the head page */
	__u64 id;       /* unique among blobs (Go's counter): the WAL's handle on the bytes */
	__u64 deadline; /* a copy of the value's deadline, Unix ms (0: none) */
	__u32 len;      /* the value's stored length, flags included */
	__u32 adopted;  /* in an op's value: set by the chain when it takes the blob */
};

/* Kinds of WAL ring records. */
enum bpfdb_wal_kind {
	BPFDB_WAL_WRITE = 1,        /* a write of a transaction still committing */
	BPFDB_WAL_COMMIT = 2,       /* commits the count writes of txn_id, at lsn */
	BPFDB_WAL_WRITE_COMMIT = 3, /* a one-write transaction, committed at lsn */
	BPFDB_WAL_ABORT = 4,        /* txn_id will not commit: drop its writes */
};

/*
 * The header of every WAL ring record. A COMMIT or ABORT record is just
 * this; a WRITE record is struct bpfdb_wal_write, of which logd reads
 * sizeof header + key + val_len bytes.
 */
struct bpfdb_wal_hdr {
	__u32 kind;    /* enum bpfdb_wal_kind */
	__u32 count;   /* COMMIT: writes of the transaction logged before it */
	__u64 txn_id;
	__u64 lsn;     /* the commit timestamp; 0 in a WRITE */
	__u32 val_len; /* WRITE*: value length, or BPFDB_TOMBSTONE */
	__u32 _pad;
};

struct bpfdb_wal_write {
	struct bpfdb_wal_hdr hdr;
	struct bpfdb_key key;
	__u8 value[BPFDB_MAX_VALUE_LEN] __attribute__((aligned(8)));
};

/* Registered snapshots of read-only transactions, by transaction slot. */
struct bpfdb_snapshots {
	__u64 snap[BPFDB_SNAP_SLOTS];
};

/* Kernel-side counters, per CPU. */
enum bpfdb_stat {
	BPFDB_STAT_RUNS = 0,
	BPFDB_STAT_GETS,
	BPFDB_STAT_SETS,
	BPFDB_STAT_DELS,
	BPFDB_STAT_COMMITS,
	BPFDB_STAT_ABORTS_CONFLICT,
	BPFDB_STAT_ABORTS_VERSIONS_FULL,
	BPFDB_STAT_ABORTS_STORE_FULL,
	BPFDB_STAT_ABORTS_WRITE_SET_FULL,
	BPFDB_STAT_ABORTS_USER,
	BPFDB_STAT_ABORTS_OTHER,
	BPFDB_STAT_GC_RECLAIMED,
	BPFDB_STAT_ABORTS_LOG_FULL,
	BPFDB_STAT_QUIESCED,
	BPFDB_STAT_ABORTS_LOG_REFUSED,
	BPFDB_STAT_RECORDS_FREED, /* deleted keys' records removed from the index */
	BPFDB_STAT_SLOTS_LOST,    /* value slots or pages a contended free list could not take back */
	/* Keys whose newest version is a value, in database 0; database d's
	 * count is at BPFDB_STAT_LIVE_KEYS + d. Kept by install_version
	 * (storage/version.h); a value past its deadline counts until the
	 * expirer deletes it (as Redis's DBSIZE). Per CPU, as every stat: a
	 * CPU's count may be negative, their sum is not. */
	BPFDB_STAT_LIVE_KEYS,
	BPFDB_STAT_COUNT = BPFDB_STAT_LIVE_KEYS + BPFDB_DATABASES,
};

/*
 * Relations between the limits that the code relies on.
 */
_Static_assert(BPFDB_TXN_SLOTS == BPFDB_MAX_TXNS + BPFDB_KERNEL_TXNS, "the table is both ranges");
_Static_assert(BPFDB_KERNEL_TXNS <= 64, "control.ktxn_claimed is a 64-bit bitmap");
_Static_assert(BPFDB_KERNEL_TXN_KEYS <= BPFDB_MAX_TXN_KEYS, "a kernel transaction fits a slot");
_Static_assert(BPFDB_SNAP_SLOTS == BPFDB_TXN_SLOTS, "a snapshot slot per transaction slot");
_Static_assert((BPFDB_DONE_RING & (BPFDB_DONE_RING - 1)) == 0, "done ring indexed by a mask");
_Static_assert(BPFDB_MAX_VALUE_LEN == 1 << (BPFDB_MIN_SLAB_SHIFT + BPFDB_SLAB_CLASSES - 1),
	       "the largest slab class holds the largest value");
_Static_assert(BPFDB_PAGE_SIZE == 1 << BPFDB_PAGE_SHIFT, "a page is 1 << BPFDB_PAGE_SHIFT bytes");
_Static_assert(BPFDB_MAX_VALUE_LEN <= BPFDB_PAGE_SIZE, "a page holds a slot of every class");
_Static_assert(BPFDB_PAGE_SHIFT - BPFDB_MIN_SLAB_SHIFT < 32, "a page's slot index fits a cursor's low word");
_Static_assert(BPFDB_MAX_KEY_LEN % 8 == 0, "keys compare as 64-bit words (key_eq)");
_Static_assert(sizeof(struct bpfdb_key) == 8 + BPFDB_MAX_KEY_LEN, "a key is its length and bytes");
_Static_assert(2 * BPFDB_KEY_DIGEST_LEN == BPFDB_MAX_KEY_LEN, "a long key's index key is its digest and a prefix");
_Static_assert(BPFDB_MAX_LONG_KEY_LEN > BPFDB_MAX_KEY_LEN, "long keys are the longer ones");
_Static_assert(sizeof(struct bpfdb_value) == BPFDB_MAX_VALUE_LEN, "a value buffer holds any value");
_Static_assert(sizeof(struct bpfdb_record) == 8 + BPFDB_MAX_VERSIONS * sizeof(struct bpfdb_version),
	       "a record is its lock, seq and versions");
_Static_assert(BPFDB_MAX_VERSIONS <= 256 && BPFDB_DATABASES <= (1 << 24), "txn_entry.vslot is a byte; INSTALL_AT packs a slot and a database");
_Static_assert(BPFDB_MAX_EXPIRING_LEN + BPFDB_DEADLINE_LEN == BPFDB_MAX_VALUE_LEN,
	       "an expiring value and its deadline fit where any value does");
_Static_assert(sizeof(struct bpfdb_blob) == BPFDB_BLOB_HEAD, "a blob's header");
_Static_assert(BPFDB_BLOB_HEAD <= 1 << BPFDB_MIN_SLAB_SHIFT, "a blob's header fits the smallest slot");
_Static_assert(BPFDB_BLOB_HEAD + 4 * BPFDB_BLOB_MAX_PAGES <= BPFDB_PAGE_SIZE, "the head page lists every data page");
_Static_assert(BPFDB_MAX_BLOB_LEN ==
	       BPFDB_PAGE_SIZE - BPFDB_BLOB_HEAD + BPFDB_BLOB_MAX_PAGES * (BPFDB_PAGE_SIZE - 4),
	       "the largest blob: its head page's room after the header and a full page list, and the data pages");
_Static_assert(BPFDB_MAX_BLOB_LEN <= BPFDB_LEN_MASK, "a blob's length fits below the flags");
_Static_assert(BPFDB_MAX_VALUE_LEN <= BPFDB_LEN_MASK && (BPFDB_TOMBSTONE & BPFDB_LEN_EXPIRES) != 0,
	       "lengths fit below the flag; a tombstone is told apart first");
_Static_assert((BPFDB_LEN_MASK & BPFDB_LEN_TYPE) == 0 && (BPFDB_LEN_EXPIRES & (BPFDB_LEN_MASK | BPFDB_LEN_TYPE)) == 0 &&
	       BPFDB_LEN_TYPE >> BPFDB_LEN_TYPE_SHIFT == 7 && BPFDB_TYPES <= 8,
	       "a length's bytes, type and deadline flag are apart; every type fits");
_Static_assert((BPFDB_REMOVED_BUCKETS & (BPFDB_REMOVED_BUCKETS - 1)) == 0, "buckets are masked");
_Static_assert(BPFDB_MAX_TXNS + BPFDB_KERNEL_TXNS + BPFDB_REQ_SLOTS + 3 < BPFDB_LOCK_EXCL,
	       "lock owner ids (txn/lock.h) fit below BPFDB_LOCK_EXCL");

/*
 * The layout version: a hash of every limit and of the size of every
 * struct the maps hold (FNV-1a, 31 bits so it is an enum constant bpf2go
 * exports). Go stores it in control.layout at Open and in the owner pin;
 * a BPF program built against this header refuses a store whose
 * control.layout differs (BPFDB_ERR_LAYOUT), and a loader should too.
 * Bump BPFDB_LAYOUT_EPOCH when a meaning changes with no size (a lock word's
 * encoding, a field's unit).
 */
#define BPFDB_LAYOUT_EPOCH 6
#define BPFDB_LAYOUT_MIX(h, v) ((((h) ^ (unsigned long long)(v)) * 1099511628211ULL))
#define BPFDB_LAYOUT_HASH                                                                          \
	BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(         \
	BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(         \
	BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(         \
	BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(BPFDB_LAYOUT_MIX(         \
	14695981039346656037ULL, BPFDB_LAYOUT_EPOCH), BPFDB_MAX_KEY_LEN), BPFDB_MAX_VALUE_LEN),      \
	BPFDB_MAX_VERSIONS), BPFDB_MAX_BATCH), BPFDB_MAX_TXNS), BPFDB_KERNEL_TXNS),                  \
	BPFDB_MAX_TXN_KEYS), BPFDB_REQ_SLOTS), BPFDB_SLAB_CLASSES), BPFDB_MIN_SLAB_SHIFT),           \
	BPFDB_DONE_RING), sizeof(struct bpfdb_key)), sizeof(struct bpfdb_record)),                   \
	sizeof(struct bpfdb_txn)), sizeof(struct bpfdb_control)), sizeof(struct bpfdb_op)),          \
	sizeof(struct bpfdb_req)), sizeof(struct bpfdb_wal_write)), sizeof(struct bpfdb_snapshots))

enum bpfdb_layout {
	BPFDB_LAYOUT_VERSION = (int)(BPFDB_LAYOUT_HASH & 0x7fffffffULL),
};

#endif /* BPFDB_H */
