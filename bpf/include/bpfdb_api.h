/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpfdb_api.h: the bpfdb store for other BPF programs.
 *
 * A BPF program includes this header and is loaded against a running
 * store's maps: the header declares them (maps.h), by the names the store
 * uses, and the loader must hand it the live ones instead of creating new
 * ones:
 *
 *   - cilium/ebpf in a Go program that embeds the engine:
 *     ebpf.CollectionOptions{MapReplacements: db.MapReplacements()}, after
 *     db.FitSpec(spec), which sizes the spec's maps as the store's (a
 *     replacement must match type, sizes, max_entries and flags);
 *   - any loader (libbpf, bpftool, cilium/ebpf) against `bpfdb serve --pin
 *     DIR`: reuse the maps pinned in DIR by name (libbpf:
 *     bpf_map__reuse_fd or __uint(pinning, LIBBPF_PIN_BY_NAME) with
 *     pin_root_path), after checking DIR's bpfdb_owner (engine.OpenPinned).
 *
 * Build with the include paths the chain uses: -I bpf/include -I bpf. The
 * header defines the library's global (noinline) functions, so include it
 * in one .c file per object.
 *
 * Layout. Every call first checks control.layout, which the engine sets at
 * Open, against BPFDB_LAYOUT_VERSION (bpfdb.h, a hash of the limits and
 * struct sizes this program was compiled with), and fails with
 * BPFDB_ERR_LAYOUT on a mismatch (or before the store is open), touching
 * nothing. A loader should refuse earlier: the owner pin records the
 * layout, and bpfdb_layout_ok() lets a program check once.
 *
 * Results. Every call returns 0 (BPFDB_OK) or an enum bpfdb_status. The
 * retryable ones (BPFDB_ERR_CONFLICT, _RETRY, _VERSIONS_FULL, _LOG_FULL,
 * _TXN_TABLE_FULL) applied nothing; a program cannot sleep, so it retries
 * a bounded number of times or reports the failure. No call waits.
 *
 * Writes. Every write is a logged commit exactly like the engine's: its
 * record goes through the same WAL ring, reserved before the commit
 * timestamp is taken (wal/wal.h), so logd persists it, recovery replays
 * it, checkpoints include it and `bpfdb wal dump` shows it. A full ring
 * (BPFDB_ERR_LOG_FULL) or a log refusing writes (BPFDB_ERR_LOG_REFUSED:
 * control.log_refused, a full or failing disk) fails the write with
 * nothing applied. With control.wal_on clear (an engine without a data
 * directory) writes are not logged, as the engine's are not. The LSN of a
 * write is its commit timestamp. A BPF program cannot wait for the disk:
 * its writes become durable asynchronously, once bpfdb_durable_lsn()
 * reaches their LSN (the engine updates it after every fsync).
 *
 * Values. Calls that carry a value take a struct bpfdb_value (bpfdb.h):
 * BPFDB_MAX_VALUE_LEN bytes, because values are copied by whole size
 * class. A value the engine stored as a blob (storage/blob.h: more than
 * BPFDB_MAX_VALUE_LEN bytes, deadline included) does not fit one: a read
 * of it is BPFDB_ERR_VALUE_TOO_LARGE with *len set to its length, and a
 * BPF program cannot write one. A struct bpfdb_value is larger than the
 * 512-byte BPF stack: it must be map memory of the caller's (an array or
 * per-CPU array element; a per-CPU buffer is only safe where the program
 * cannot be preempted by another user of the same buffer on that CPU).
 * Only strings are values to a BPF program: a key the server keeps
 * another type in (a hash: enum bpfdb_value_type) reads as
 * BPFDB_ERR_WRONG_TYPE, as Redis answers GET of a hash, and incr of it is
 * BPFDB_ERR_NOT_INTEGER; a write replaces it with a string, as SET does.
 * Keys are struct bpfdb_key, len bytes of data followed by zeros up to
 * BPFDB_MAX_KEY_LEN (the key is hashed whole). A key of the Go engine's
 * longer than BPFDB_MAX_KEY_LEN is held by its SHA-256 (bpfdb.h), which a
 * BPF program cannot compute: such keys are out of its reach, and a
 * program's key of more than BPFDB_MAX_KEY_LEN bytes is
 * BPFDB_ERR_KEY_TOO_LONG. key.db picks the database (Redis's SELECT): 0
 * when zeroed; a write to one at or above BPFDB_DATABASES is
 * BPFDB_ERR_BAD_REQUEST (a read of one finds nothing). A key fits on the stack,
 * but the deepest path of a write (its GC freeing a value) takes about
 * 200 bytes of the 512 across its calls: a program with large frames of
 * its own keeps keys in map memory too (examples/flowcount does).
 *
 * Program types. The functions use map lookups and updates (a
 * preallocated hash map), queue push and pop, the ring buffer, bpf_loop,
 * atomics (compare-and-swap lock words: no bpf_spin_lock), global
 * functions and bpf_ktime_get_ns. Supported, each loaded with every
 * function by the engine's tests (TestAPIProgramTypes; the XDP ones also
 * run): XDP, tc (sched_cls), cgroup_skb, sockops, tp_btf, kprobe and
 * tracepoint programs. kprobe cannot take bpf_spin_lock, but bpfdb takes
 * no spin lock: a lock held by another is a conflict, never a wait, so a
 * program that interrupts a lock holder on its CPU fails instead of
 * deadlocking. Not supported: sleepable programs (the lock-free reads
 * assume a reader is not put to sleep mid-read for long; untested), and
 * types that lack bpf_loop, the ring buffer or global functions in this
 * kernel (unverified: socket filters and cgroup sysctl/sockopt hooks may
 * load, but are not tested). A program that runs in NMI context
 * (perf_event) may find the ring buffer's lock taken and get
 * BPFDB_ERR_LOG_FULL. Tail calls cannot reach the chain from another
 * program type (they only reach programs of the same type), which is why
 * this is a library over the shared maps, not an entry into the chain.
 *
 * Transactions. bpfdb_txn_begin claims one of BPFDB_KERNEL_TXNS slots of
 * the transaction table reserved for BPF programs (the engine never hands
 * them out) and returns a handle {slot, generation}; the handle can be
 * kept in a map and used by later runs. Read-write transactions lock
 * every key they touch (strict two-phase locking, no-wait): any failure
 * but BPFDB_ERR_NOT_FOUND aborts the transaction at once and releases
 * every lock, and later calls on the handle return BPFDB_ERR_TXN_INVALID.
 * A transaction locks at most BPFDB_KERNEL_TXN_KEYS keys
 * (BPFDB_ERR_WRITE_SET_FULL). One call at a time per handle: a call made
 * while another uses the handle fails with BPFDB_ERR_TXN_INVALID and
 * changes nothing. An abandoned transaction is aborted by the engine's
 * reaper once it is older than Options.TxnTimeout (control.ktxn_timeout_ns,
 * from its begin: bpf_txn.start_ns), releasing its locks.
 */
#ifndef BPFDB_API_H
#define BPFDB_API_H

#include "bpfdb.h"
#include "maps.h"
#include "../storage/slab.h"
#include "../storage/record.h"
#include "../storage/version.h"
#include "../txn/clock.h"
#include "../txn/lock.h"
#include "../txn/table.h"
#include "../txn/ops.h"
#include "../txn/auto.h"
#include "../wal/wal.h"

/* How often bpfdb_get rereads a record that writers keep changing under it. */
#define BPFDB_API_READ_TRIES 4

/*
 * BPFDB_TEST_AFTER_LOOKUP runs in bpfdb_get between finding the record and
 * reading it: tests define it to stall a reader there, where a removal and
 * a reuse of the record by another key must be detected (record.h, 3).
 */
#ifndef BPFDB_TEST_AFTER_LOOKUP
#define BPFDB_TEST_AFTER_LOOKUP() do {} while (0)
#endif

/* A kernel transaction, as bpfdb_txn_begin returns it. */
struct bpfdb_txn_handle {
	__u32 slot; /* in the transaction table, BPFDB_MAX_TXNS and above */
	__u32 gen;  /* its generation: a handle of an ended transaction is stale */
};

/* bpfdb_store returns the control block of a store of this layout, or NULL. */
static __always_inline struct bpfdb_control *bpfdb_store(void)
{
	struct bpfdb_control *ctl = control_block();

	if (!ctl || READ_ONCE_U64(ctl->layout) != BPFDB_LAYOUT_VERSION)
		return NULL;
	return ctl;
}

/* bpfdb_layout_ok: 1 when the maps are a store of this program's layout, open. */
static __always_inline int bpfdb_layout_ok(void)
{
	return bpfdb_store() != NULL;
}

/*
 * bpfdb_durable_lsn returns the LSN up to which every commit is on disk
 * (0 without a store, or before the first fsync). A write is durable once
 * this reaches the LSN its call returned.
 */
static __always_inline __u64 bpfdb_durable_lsn(void)
{
	struct bpfdb_control *ctl = bpfdb_store();

	return ctl ? READ_ONCE_U64(ctl->durable_lsn) : 0;
}

/*
 * bpfdb_now returns the store's clock, the Unix time in ms that deadlines
 * are compared with (storage/expiry.h): 0 without a store.
 */
static __always_inline __u64 bpfdb_now(void)
{
	struct bpfdb_control *ctl = bpfdb_store();

	return ctl ? store_now_ms(ctl) : 0;
}

/* bpfdb_value_deadline returns the deadline stored after the len-byte value in buf, or 0. */
static __always_inline __u64 bpfdb_value_deadline(const struct bpfdb_value *buf, __u32 stored)
{
	__u32 n = user_len(stored), i;
	__u64 d = 0;

	if (!len_expires(stored))
		return 0;
	for (i = 0; i < BPFDB_DEADLINE_LEN; i++)
		d |= (__u64)buf->b[(n + i) & (BPFDB_MAX_VALUE_LEN - 1)] << (8 * i);
	return d;
}

static __always_inline int bpfdb_check_key(const struct bpfdb_key *key)
{
	return key->len > BPFDB_MAX_KEY_LEN ? BPFDB_ERR_KEY_TOO_LONG : BPFDB_OK;
}

/*
 * bpfdb_check_write_key is bpfdb_check_key for a write, which must also
 * name one of the store's databases: its log record must be one recovery
 * takes. A read of a key of no database finds nothing. Global: verified
 * once, so its branches do not multiply the states of every caller (they
 * cost a program calling many writes a tenth more).
 */
__attribute__((noinline)) int bpfdb_check_write_key(const struct bpfdb_key *key)
{
	if (!key || key->db >= BPFDB_DATABASES)
		return BPFDB_ERR_BAD_REQUEST;
	return key->len > BPFDB_MAX_KEY_LEN ? BPFDB_ERR_KEY_TOO_LONG : BPFDB_OK;
}

/*
 * bpfdb_write_refused: BPFDB_ERR_LOG_REFUSED when the log refuses writes,
 * checked before a write creates a record (a refusal takes no index
 * space) and again at its commit.
 */
static __always_inline int bpfdb_write_refused(struct bpfdb_control *ctl)
{
	if (wal_on(ctl) && wal_refused(ctl)) {
		stat_add(BPFDB_STAT_ABORTS_LOG_REFUSED, 1);
		return BPFDB_ERR_LOG_REFUSED;
	}
	return BPFDB_OK;
}

/*
 * bpfdb_write_check is what every autocommit write checks first: the store
 * is open and of this layout, the key fits, and the log takes writes.
 */
static __always_inline int bpfdb_write_check(const struct bpfdb_key *key)
{
	struct bpfdb_control *ctl = bpfdb_store();
	int status;

	if (!ctl)
		return BPFDB_ERR_LAYOUT;
	status = bpfdb_check_write_key(key);
	if (status != BPFDB_OK)
		return status;
	return bpfdb_write_refused(ctl);
}

/* ---- autocommit --------------------------------------------------------- */

/*
 * bpfdb_get_deadline is bpfdb_get_version that also returns the value's
 * deadline, the Unix time in ms after which it reads as absent (0: none).
 * A key whose deadline has passed is BPFDB_ERR_NOT_FOUND (storage/expiry.h).
 */
static __always_inline int bpfdb_get_deadline(const struct bpfdb_key *key, struct bpfdb_value *buf,
					      __u32 *len, __u64 *version, __u64 *deadline)
{
	struct bpfdb_control *ctl = bpfdb_store();
	struct bpfdb_found found = {};
	struct bpfdb_record *rec;
	int status = BPFDB_ERR_RETRY;
	__u64 removals;
	__u32 i;

	if (!ctl)
		return BPFDB_ERR_LAYOUT;
	if (bpfdb_check_key(key))
		return BPFDB_ERR_KEY_TOO_LONG;
	stat_add(BPFDB_STAT_GETS, 1);
	removals = READ_ONCE_U64(ctl->removals);
	rec = record_lookup(key);
	if (!rec)
		return BPFDB_ERR_NOT_FOUND;
	BPFDB_TEST_AFTER_LOOKUP();
	for (i = 0; i < BPFDB_API_READ_TRIES && status == BPFDB_ERR_RETRY; i++)
		status = read_stable(rec, EXPIRY_NOW, buf, &found);
	if (reader_lost_record(ctl, removals, key, rec, &found)) /* reused under the read */
		return BPFDB_ERR_RETRY;
	if (status == BPFDB_OK && len_type(found.len) != BPFDB_TYPE_STRING)
		return BPFDB_ERR_WRONG_TYPE;
	if (status == BPFDB_OK && value_is_blob(found.len)) { /* too large for buf */
		*len = user_len(found.len);
		return BPFDB_ERR_VALUE_TOO_LARGE;
	}
	if (status == BPFDB_OK) {
		*len = user_len(found.len);
		*deadline = bpfdb_value_deadline(buf, found.len);
		if (version)
			*version = found.ts;
	}
	return status;
}

/*
 * bpfdb_get_version copies key's value into buf and its length into *len,
 * as of a snapshot at control.visible, and its version into *version (if
 * not NULL): the commit timestamp (LSN) that wrote it, the engine's
 * Op.Version, which changes with every write of the key. Lock-free, never
 * part of a commit (nor half of a multi-key one), and never a value that
 * is not committed. BPFDB_ERR_NOT_FOUND when the key has no value;
 * BPFDB_ERR_RETRY if writers changed the record under every try. Two
 * calls are two snapshots: to read several keys at one instant, use a
 * read-only transaction (bpfdb_txn_begin(tx, 1), bpfdb_txn_get).
 */
static __always_inline int bpfdb_get_version(const struct bpfdb_key *key, struct bpfdb_value *buf,
					     __u32 *len, __u64 *version)
{
	__u64 deadline;

	return bpfdb_get_deadline(key, buf, len, version, &deadline);
}

/* bpfdb_get is bpfdb_get_version without the version. */
static __always_inline int bpfdb_get(const struct bpfdb_key *key, struct bpfdb_value *buf,
				     __u32 *len)
{
	return bpfdb_get_version(key, buf, len, NULL);
}

/*
 * bpfdb_set sets key to the len bytes of buf, a transaction of its own,
 * logged; *lsn (if lsn is not NULL) is its commit's LSN.
 */
static __always_inline int bpfdb_set(const struct bpfdb_key *key, const struct bpfdb_value *buf,
				     __u32 len, __u64 *lsn)
{
	struct bpfdb_written res = {};
	int status;

	if (len > BPFDB_MAX_VALUE_LEN)
		return BPFDB_ERR_VALUE_TOO_LARGE;
	status = bpfdb_write_check(key);
	if (status != BPFDB_OK)
		return status;
	status = auto_write(key, buf, len, OWNER_API, 0, 0, &res);
	if (status == BPFDB_OK && lsn)
		*lsn = res.ts;
	return status;
}

/*
 * bpfdb_set_deadline is bpfdb_set of a value that expires: it reads as
 * absent once the store's clock (bpfdb_now) passes deadline, the Unix time
 * in ms, and the engine's expirer then deletes it, logged. It writes the
 * deadline into buf after the value, so len is at most
 * BPFDB_MAX_EXPIRING_LEN; deadline 0 is bpfdb_set.
 */
static __always_inline int bpfdb_set_deadline(const struct bpfdb_key *key, struct bpfdb_value *buf,
					      __u32 len, __u64 deadline, __u64 *lsn)
{
	struct bpfdb_written res = {};
	int status;
	__u32 i;

	if (!deadline)
		return bpfdb_set(key, buf, len, lsn);
	if (len > BPFDB_MAX_EXPIRING_LEN)
		return BPFDB_ERR_VALUE_TOO_LARGE;
	status = bpfdb_write_check(key);
	if (status != BPFDB_OK)
		return status;
	for (i = 0; i < BPFDB_DEADLINE_LEN; i++)
		buf->b[(len + i) & (BPFDB_MAX_VALUE_LEN - 1)] = deadline >> (8 * i);
	status = auto_write(key, buf, (len + BPFDB_DEADLINE_LEN) | BPFDB_LEN_EXPIRES, OWNER_API, 0, 0,
			    &res);
	if (status == BPFDB_OK && lsn)
		*lsn = res.ts;
	return status;
}

/* bpfdb_delete deletes key (BPFDB_ERR_NOT_FOUND: it had no value), logged. */
static __always_inline int bpfdb_delete(const struct bpfdb_key *key, __u64 *lsn)
{
	struct bpfdb_written res = {};
	int status;

	status = bpfdb_write_check(key);
	if (status != BPFDB_OK)
		return status;
	status = auto_write(key, NULL, BPFDB_TOMBSTONE, OWNER_API, EXPIRY_NOW, 0, &res);
	if (status == BPFDB_OK && lsn)
		*lsn = res.ts;
	return status;
}

/*
 * bpfdb_incr adds delta to key's value, read as a decimal int64 as Redis
 * INCRBY does (an absent key is 0), and writes the sum in decimal: one
 * logged transaction under the key's exclusive lock, so concurrent
 * increments, the engine's included, lose no update. *sum is the new
 * value; buf is scratch (it holds the sum's digits after). Errors:
 * BPFDB_ERR_NOT_INTEGER (not an integer, or the sum overflows), and those
 * of bpfdb_set; nothing is applied on any.
 */
static __always_inline int bpfdb_incr(const struct bpfdb_key *key, __s64 delta,
				      struct bpfdb_value *buf, __s64 *sum, __u64 *lsn)
{
	struct bpfdb_written res = {};
	int status;

	status = bpfdb_write_check(key);
	if (status != BPFDB_OK)
		return status;
	status = auto_incr(key, delta, buf, OWNER_API, EXPIRY_NOW, sum, &res);
	if (status == BPFDB_OK && lsn)
		*lsn = res.ts;
	return status;
}

/* bpfdb_parse_int reads the len bytes of buf as a decimal int64 (0), or -1. */
static __always_inline int bpfdb_parse_int(const struct bpfdb_value *buf, __u32 len, __s64 *out)
{
	return int_parse(buf, len, out);
}

/* bpfdb_format_int writes v in decimal at the start of buf; returns its length. */
static __always_inline __u32 bpfdb_format_int(__s64 v, struct bpfdb_value *buf)
{
	return int_format(v, buf);
}

/* ---- transactions -------------------------------------------------------- */

/*
 * bpfdb_txn_begin opens a transaction: read-only (read_only != 0: reads at
 * a snapshot of its begin, no locks, no writes) or read-write. Fills *tx.
 * BPFDB_ERR_TXN_TABLE_FULL when every kernel slot is in use.
 */
static __always_inline int bpfdb_txn_begin(struct bpfdb_txn_handle *tx, int read_only)
{
	struct bpfdb_control *ctl = bpfdb_store();
	__u32 gen = 0;
	int slot;

	if (!ctl)
		return BPFDB_ERR_LAYOUT;
	slot = ktxn_begin(ctl, read_only, &gen);
	if (slot < 0)
		return -slot;
	tx->slot = slot;
	tx->gen = gen;
	return BPFDB_OK;
}

/* bpfdb_txn_done ends a call on t: aborts it after a failure (no-wait). */
static __always_inline int bpfdb_txn_done(struct bpfdb_control *ctl, struct bpfdb_txn *t,
					  __u32 slot, int status)
{
	/* A value too large to read, or not a string, leaves the transaction as it was. */
	if (status == BPFDB_OK || status == BPFDB_ERR_NOT_FOUND || status == BPFDB_ERR_VALUE_TOO_LARGE ||
	    status == BPFDB_ERR_WRONG_TYPE)
		ktxn_idle(t);
	else
		ktxn_finish(ctl, t, slot, 1, status);
	return status;
}

static __always_inline int bpfdb_txn_read(struct bpfdb_txn_handle *tx, const struct bpfdb_key *key,
					  int for_update, struct bpfdb_value *buf, __u32 *len,
					  __u64 *version)
{
	struct bpfdb_found found = {};
	struct bpfdb_control *ctl = bpfdb_store();
	struct bpfdb_txn *t;
	__u8 detail = 0;
	int status;

	if (!ctl)
		return BPFDB_ERR_LAYOUT;
	if (bpfdb_check_key(key))
		return BPFDB_ERR_KEY_TOO_LONG;
	t = ktxn_enter(tx->slot, tx->gen);
	if (!t)
		return BPFDB_ERR_TXN_INVALID;
	status = txn_get(t, tx->slot, key, for_update, BPFDB_KERNEL_TXN_KEYS, buf, &found, &detail);
	if (status == BPFDB_OK && len_type(found.len) != BPFDB_TYPE_STRING)
		status = BPFDB_ERR_WRONG_TYPE;
	else if (status == BPFDB_OK && value_is_blob(found.len)) { /* too large for buf */
		*len = user_len(found.len);
		status = BPFDB_ERR_VALUE_TOO_LARGE;
	}
	if (status == BPFDB_OK) {
		*len = user_len(found.len);
		if (version)
			*version = found.ts;
	}
	return bpfdb_txn_done(ctl, t, tx->slot, status);
}

/*
 * bpfdb_txn_get reads key into buf (*len its length) as transaction tx
 * sees it: its own writes, else the latest committed value under a shared
 * lock, or in a read-only transaction its snapshot's, with no lock.
 */
static __always_inline int bpfdb_txn_get(struct bpfdb_txn_handle *tx, const struct bpfdb_key *key,
					 struct bpfdb_value *buf, __u32 *len)
{
	return bpfdb_txn_read(tx, key, 0, buf, len, NULL);
}

/*
 * bpfdb_txn_get_version is bpfdb_txn_get that also returns the version
 * read (see bpfdb_get_version; a value the transaction wrote itself has
 * version 0 until it commits).
 */
static __always_inline int bpfdb_txn_get_version(struct bpfdb_txn_handle *tx,
						 const struct bpfdb_key *key,
						 struct bpfdb_value *buf, __u32 *len, __u64 *version)
{
	return bpfdb_txn_read(tx, key, 0, buf, len, version);
}

/*
 * bpfdb_txn_get_for_update is bpfdb_txn_get under the exclusive lock: read
 * what you will write with it, so that two read-modify-writes of one key
 * conflict at the read rather than both failing to upgrade.
 */
static __always_inline int bpfdb_txn_get_for_update(struct bpfdb_txn_handle *tx,
						    const struct bpfdb_key *key,
						    struct bpfdb_value *buf, __u32 *len)
{
	return bpfdb_txn_read(tx, key, 1, buf, len, NULL);
}

static __always_inline int bpfdb_txn_write(struct bpfdb_txn_handle *tx, const struct bpfdb_key *key,
					   const struct bpfdb_value *buf, __u32 len)
{
	struct bpfdb_control *ctl = bpfdb_store();
	struct bpfdb_txn *t;
	__u8 detail = 0;
	int status;

	if (!ctl)
		return BPFDB_ERR_LAYOUT;
	status = bpfdb_check_write_key(key);
	if (status != BPFDB_OK)
		return status;
	if (len != BPFDB_TOMBSTONE && len > BPFDB_MAX_VALUE_LEN)
		return BPFDB_ERR_VALUE_TOO_LARGE;
	t = ktxn_enter(tx->slot, tx->gen);
	if (!t)
		return BPFDB_ERR_TXN_INVALID;
	status = bpfdb_write_refused(ctl);
	if (status == BPFDB_OK)
		status = txn_write(t, tx->slot, key, buf, len, BPFDB_KERNEL_TXN_KEYS, &detail);
	return bpfdb_txn_done(ctl, t, tx->slot, status);
}

/* bpfdb_txn_set buffers a write of the len bytes of buf under key; visible at commit. */
static __always_inline int bpfdb_txn_set(struct bpfdb_txn_handle *tx, const struct bpfdb_key *key,
					 const struct bpfdb_value *buf, __u32 len)
{
	return bpfdb_txn_write(tx, key, buf, len);
}

/* bpfdb_txn_delete buffers a deletion of key (BPFDB_ERR_NOT_FOUND: it has no value). */
static __always_inline int bpfdb_txn_delete(struct bpfdb_txn_handle *tx, const struct bpfdb_key *key)
{
	return bpfdb_txn_write(tx, key, NULL, BPFDB_TOMBSTONE);
}

/*
 * bpfdb_txn_commit commits tx: logs its writes and installs them at one
 * commit timestamp, all visible at once; *lsn (if not NULL) is that
 * timestamp, 0 when it wrote nothing. On failure (a full ring, a log
 * refusing writes) nothing is applied. Either way the transaction is over
 * and its locks released.
 */
static __always_inline int bpfdb_txn_commit(struct bpfdb_txn_handle *tx, __u64 *lsn)
{
	struct bpfdb_control *ctl = bpfdb_store();
	struct bpfdb_txn *t;
	int status = BPFDB_OK;
	__u64 ts;

	if (!ctl)
		return BPFDB_ERR_LAYOUT;
	t = ktxn_enter(tx->slot, tx->gen);
	if (!t)
		return BPFDB_ERR_TXN_INVALID;
	ts = txn_commit(ctl, t, tx->slot, &status);
	ktxn_finish(ctl, t, tx->slot, status != BPFDB_OK, status);
	if (status == BPFDB_OK && lsn)
		*lsn = ts;
	return status;
}

/* bpfdb_txn_abort aborts tx: nothing it wrote is applied; its locks are released. */
static __always_inline int bpfdb_txn_abort(struct bpfdb_txn_handle *tx)
{
	struct bpfdb_control *ctl = bpfdb_store();
	struct bpfdb_txn *t;

	if (!ctl)
		return BPFDB_ERR_LAYOUT;
	t = ktxn_enter(tx->slot, tx->gen);
	if (!t)
		return BPFDB_ERR_TXN_INVALID;
	ktxn_finish(ctl, t, tx->slot, 1, BPFDB_OK);
	return BPFDB_OK;
}

#endif /* BPFDB_API_H */
