// SPDX-License-Identifier: GPL-2.0
/*
 * chain.c: the programs of the bpfdb chain.
 *
 * Go writes a request into its request slot (req_hdr, req_ops; both mmapped)
 * and runs bpfdb_entry through BPF_PROG_RUN with a 16-byte packet naming the
 * slot. The entry validates every op and tail-calls the stages through
 * chain_progs; each stage processes the whole batch with bpf_loop (a
 * callback is verified once, not per op) and names the next stage, like a
 * vectorized pipeline:
 *
 *   autocommit:  entry -> auto
 *   transaction: entry -> txn_open -> txn_ops -> [txn_commit ->] txn_release
 *
 * State between stages lives in the request slot's header, which the caller
 * owns for the whole run. It is not per-CPU: an XDP test run only disables
 * migration, so another run can preempt it on the same CPU (docs/DESIGN.md).
 * State that outlives a run (an interactive transaction) lives in txn_table.
 *
 * Every run returns XDP_PASS once it has found its request slot; outcomes are
 * in the slot's statuses. Any other return means the packet was malformed.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpfdb.h"
#include "maps.h"
#include "storage/slab.h"
#include "storage/record.h"
#include "storage/version.h"
#include "txn/clock.h"
#include "txn/lock.h"
#include "txn/table.h"
#include "txn/ops.h"
#include "txn/auto.h"
#include "wal/wal.h"

char _license[] SEC("license") = "GPL";

/* Build id, reported in every reply; the engine sets it when loading a build. */
const volatile __u32 bpfdb_build = 1;

static __always_inline int run_slot(struct xdp_md *ctx, __u32 *slot)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpfdb_run *run = data;

	if ((void *)(run + 1) > data_end)
		return -1;
	if (run->magic != BPFDB_RUN_MAGIC || run->slot >= BPFDB_REQ_SLOTS)
		return -1;
	*slot = run->slot;
	return 0;
}

static __always_inline struct bpfdb_req *req_header(__u32 slot)
{
	return bpf_map_lookup_elem(&req_hdr, &slot);
}

/*
 * stage_enter finds what every stage works on: the request slot the packet
 * names, its header and the control block. Nonzero for a malformed packet.
 */
static __always_inline int stage_enter(struct xdp_md *ctx, __u32 *slot, struct bpfdb_req **req,
				       struct bpfdb_control **ctl)
{
	if (run_slot(ctx, slot))
		return -1;
	*req = req_header(*slot);
	*ctl = control_block();
	return !*req || !*ctl;
}

static __always_inline struct bpfdb_op *req_op(__u32 slot, __u32 i)
{
	__u32 k = slot * BPFDB_MAX_BATCH + i;

	if (i >= BPFDB_MAX_BATCH)
		return NULL;
	return bpf_map_lookup_elem(&req_ops, &k);
}

/* ---- entry: validate, then dispatch ---------------------------------- */

struct validate_ctx {
	__u32 slot;
	__u32 mode;
	__u32 nops;
	__s32 first_error;
	__u32 gate;        /* the quiesce gate is closed: refuse new writers */
	__u32 log_refused; /* the log cannot take writes: refuse them (wal/wal.h) */
};

static __always_inline int validate_op(struct bpfdb_op *op, __u32 i, struct validate_ctx *c)
{
	switch (op->kind) {
	case BPFDB_OP_GET:
		break;
	case BPFDB_OP_INCR:
		if (c->mode != BPFDB_MODE_AUTOCOMMIT)
			return BPFDB_ERR_BAD_REQUEST;
		/* fall through */
	case BPFDB_OP_SET:
		if (!value_len_ok(op->val_len))
			return BPFDB_ERR_VALUE_TOO_LARGE;
		/* fall through */
	case BPFDB_OP_DEL:
		/* Refused before the record is even created: a refusal must not
		 * take index space. (Commit checks again, for a flag set since.) */
		if (c->log_refused)
			return BPFDB_ERR_LOG_REFUSED;
		if (c->gate && c->mode == BPFDB_MODE_AUTOCOMMIT)
			return BPFDB_ERR_QUIESCED;
		break;
	case BPFDB_OP_LOAD:
		if (c->mode != BPFDB_MODE_AUTOCOMMIT)
			return BPFDB_ERR_BAD_REQUEST;
		if (!(op->flags & BPFDB_LOAD_DELETE) && !value_len_ok(op->val_len))
			return BPFDB_ERR_VALUE_TOO_LARGE;
		break;
	case BPFDB_OP_BEGIN:
		if (c->mode != BPFDB_MODE_TXN || i != 0)
			return BPFDB_ERR_BAD_REQUEST;
		if (c->gate && !(op->flags & BPFDB_BEGIN_READ_ONLY))
			return BPFDB_ERR_QUIESCED;
		return BPFDB_OK;
	case BPFDB_OP_COMMIT:
	case BPFDB_OP_ABORT:
		return c->mode == BPFDB_MODE_TXN && i == c->nops - 1 ? BPFDB_OK : BPFDB_ERR_BAD_REQUEST;
	default:
		return BPFDB_ERR_BAD_REQUEST;
	}
	if (op->key.len > BPFDB_MAX_LONG_KEY_LEN)
		return BPFDB_ERR_KEY_TOO_LONG;
	if (op->key.db >= BPFDB_DATABASES)
		return BPFDB_ERR_BAD_REQUEST;
	return BPFDB_OK;
}

/* count_refusal counts an op validate_op refused at a gate. */
static __always_inline void count_refusal(int status)
{
	if (status == BPFDB_ERR_QUIESCED)
		stat_add(BPFDB_STAT_QUIESCED, 1);
	else if (status == BPFDB_ERR_LOG_REFUSED)
		stat_add(BPFDB_STAT_ABORTS_LOG_REFUSED, 1);
}

static long validate_cb(__u32 i, void *data)
{
	struct validate_ctx *c = data;
	struct bpfdb_op *op = req_op(c->slot, i);
	int status;

	if (!op) {
		c->first_error = BPFDB_ERR_INTERNAL;
		return 1;
	}
	status = validate_op(op, i, c);
	count_refusal(status);
	op->status = status;
	op->detail = 0;
	if (status != BPFDB_OK && c->first_error == BPFDB_OK)
		c->first_error = status;
	return 0;
}

SEC("xdp")
int bpfdb_entry(struct xdp_md *ctx)
{
	struct validate_ctx c = {};
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	__u32 slot;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	stat_add(BPFDB_STAT_RUNS, 1);
	req->build = bpfdb_build;
	req->status = BPFDB_OK;
	req->commit_ts = 0;
	req->end_kind = 0;
	if (req->nops == 0 || req->nops > BPFDB_MAX_BATCH) {
		req->status = BPFDB_ERR_BAD_REQUEST;
		return XDP_PASS;
	}
	switch (req->mode) {
	case BPFDB_MODE_AUTOCOMMIT:
		/* The auto stage validates each op as it reaches it (one pass). */
		bpf_tail_call(ctx, &chain_progs, BPFDB_STAGE_AUTO);
		break;
	case BPFDB_MODE_TXN:
		c.slot = slot;
		c.mode = req->mode;
		c.nops = req->nops;
		c.gate = READ_ONCE_U64(ctl->gate) != 0;
		c.log_refused = wal_on(ctl) && wal_refused(ctl);
		bpf_loop(c.nops, validate_cb, &c, 0);
		/* A malformed op aborts its transaction: txn_open sees the status. */
		req->status = c.first_error;
		bpf_tail_call(ctx, &chain_progs, BPFDB_STAGE_TXN_OPEN);
		break;
	default:
		req->status = BPFDB_ERR_BAD_REQUEST;
		return XDP_PASS;
	}
	req->status = BPFDB_ERR_INTERNAL;
	return XDP_PASS;
}

/* ---- autocommit: every op its own transaction -------------------------- */

struct auto_ctx {
	__u32 slot;
	__u32 stopped; /* an op must be retried: later ops are left for the retry */
	__u64 max_ts;
	struct validate_ctx v;
};

/* Statuses after which an autocommit op is retried by the engine. */
static __always_inline int retryable(int status)
{
	return status == BPFDB_ERR_CONFLICT || status == BPFDB_ERR_RETRY ||
	       status == BPFDB_ERR_VERSIONS_FULL || status == BPFDB_ERR_LOG_FULL ||
	       status == BPFDB_ERR_QUIESCED;
}

/*
 * auto_get reads op's key at visible (read_stable). A GET flagged
 * BPFDB_GET_LATEST (an earlier op of this batch wrote the key) must see
 * that write: while visible lags behind this batch's commits (another CPU
 * is installing an older one) it stops the batch with a retry, and the
 * engine runs it again once visible has caught up. A GET that found no
 * value reports the commit timestamp of the deletion it saw (0: none
 * kept), so that WATCH notices a key deleted, or created and deleted
 * again, since it looked.
 */
static __always_inline int auto_get(struct bpfdb_control *ctl, struct bpfdb_op *op,
				    struct auto_ctx *c)
{
	struct bpfdb_found found = {};
	struct bpfdb_record *rec;
	__u64 removals;
	int status;

	stat_add(BPFDB_STAT_GETS, 1);
	if ((op->flags & BPFDB_GET_LATEST) && READ_ONCE_U64(ctl->visible) < c->max_ts)
		return BPFDB_ERR_RETRY;
	op->ts = 0;
	removals = READ_ONCE_U64(ctl->removals);
	rec = record_lookup(&op->key);
	if (!rec) {
		op->ts = removed_version(&op->key);
		return BPFDB_ERR_NOT_FOUND;
	}
	status = read_stable(rec, EXPIRY_NOW, (struct bpfdb_value *)op->value, &found);
	if (reader_lost_record(ctl, removals, &op->key, rec, &found)) /* reused under the read */
		return BPFDB_ERR_RETRY;
	if (found.expired) /* the engine's expirer deletes it (storage/expiry.h) */
		op->detail = BPFDB_DETAIL_EXPIRED;
	if (status == BPFDB_OK)
		op->val_len = found.len;
	if (status == BPFDB_OK || status == BPFDB_ERR_NOT_FOUND)
		op->ts = found.ts;
	if (status == BPFDB_ERR_NOT_FOUND && !found.ts)
		op->ts = removed_version(&op->key);
	return status;
}

/* auto_set_del runs op, a SET or DEL, as a one-key transaction (txn/auto.h). */
static __always_inline int auto_set_del(struct bpfdb_op *op, __u32 slot, struct auto_ctx *c)
{
	struct bpfdb_written res = {};
	int status;

	status = auto_write(&op->key, (struct bpfdb_value *)op->value,
			    op->kind == BPFDB_OP_DEL ? BPFDB_TOMBSTONE : op->val_len, OWNER_AUTO(slot), EXPIRY_NOW,
			    op->kind == BPFDB_OP_DEL && (op->flags & BPFDB_DEL_EXPIRED), &res);
	op->detail = res.detail;
	if (status == BPFDB_OK && res.ts > c->max_ts)
		c->max_ts = res.ts;
	if (status == BPFDB_OK)
		op->ts = res.ts; /* its commit's LSN: the engine orders expiry by it */
	if (status == BPFDB_ERR_NOT_FOUND)
		op->ts = res.deadline; /* BPFDB_DEL_EXPIRED of a live value: when it expires */
	return status;
}

/* The arguments and results of chain_incr. */
struct chain_incr_io {
	__s64 delta;              /* in */
	__u32 owner;              /* in: the lock owner */
	__u32 len;                /* out: the sum's digits, at the start of buf */
	struct bpfdb_written res; /* out */
};

/*
 * chain_incr is auto_incr (txn/auto.h) for an INCR op, the sum left in buf
 * as digits: a global function, verified once, not in every state of the
 * autocommit loop, whose budget its integer loops would exhaust.
 */
__noinline int chain_incr(const struct bpfdb_key *key, struct bpfdb_value *buf,
			  struct chain_incr_io *io)
{
	__s64 sum = 0;
	int status;

	if (!key || !buf || !io)
		return BPFDB_ERR_INTERNAL;
	status = auto_incr(key, io->delta, buf, io->owner, EXPIRY_NOW, &sum, &io->res);
	if (status == BPFDB_OK)
		io->len = int_format(sum, buf);
	return status;
}

/*
 * auto_incr_op runs op, an INCR, as a one-key transaction: the lock is held
 * only within this run, so a kernel-side increment (bpfdb_incr) racing it
 * is delayed by nanoseconds, not by a round trip to user space.
 */
static __always_inline int auto_incr_op(struct bpfdb_op *op, __u32 slot, struct auto_ctx *c)
{
	struct chain_incr_io io = {.delta = (__s64)op->ts, .owner = OWNER_AUTO(slot)};
	int status;

	status = chain_incr(&op->key, (struct bpfdb_value *)op->value, &io);
	op->detail = io.res.detail;
	if (status != BPFDB_OK)
		return status;
	op->val_len = io.len;
	if (io.res.ts > c->max_ts)
		c->max_ts = io.res.ts;
	return status;
}

static long auto_op_cb(__u32 i, void *data)
{
	struct auto_ctx *c = data;
	struct bpfdb_control *ctl = control_block();
	struct bpfdb_op *op = req_op(c->slot, i);

	if (!op || !ctl)
		return 1;
	op->detail = 0;
	op->status = validate_op(op, i, &c->v);
	count_refusal(op->status);
	if (op->status == BPFDB_ERR_QUIESCED)
		c->stopped = 1;
	if (op->status != BPFDB_OK)
		return 0;
	/* Pipeline order: nothing runs after an op that will be retried. */
	if (c->stopped) {
		op->status = BPFDB_ERR_ABORTED;
		return 0;
	}
	if (op->kind == BPFDB_OP_GET)
		op->status = auto_get(ctl, op, c);
	else if (op->kind == BPFDB_OP_LOAD)
		op->status = auto_load(&op->key, (struct bpfdb_value *)op->value,
				       op->flags & BPFDB_LOAD_DELETE ? BPFDB_TOMBSTONE : op->val_len,
				       op->ts, OWNER_AUTO(c->slot), &op->detail);
	else if (op->kind == BPFDB_OP_INCR)
		op->status = auto_incr_op(op, c->slot, c);
	else
		op->status = auto_set_del(op, c->slot, c);
	if (retryable(op->status))
		c->stopped = 1;
	return 0;
}

SEC("xdp")
int bpfdb_auto(struct xdp_md *ctx)
{
	struct auto_ctx c = {};
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	__u32 slot;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	c.slot = slot;
	c.v.slot = slot;
	c.v.mode = BPFDB_MODE_AUTOCOMMIT;
	c.v.nops = req->nops;
	c.v.gate = READ_ONCE_U64(ctl->gate) != 0;
	c.v.log_refused = wal_on(ctl) && wal_refused(ctl);
	bpf_loop(req->nops, auto_op_cb, &c, 0);
	req->commit_ts = c.max_ts;
	req->visible = READ_ONCE_U64(ctl->visible);
	return XDP_PASS;
}

/* ---- transactions ------------------------------------------------------ */

static __always_inline void end_txn(struct xdp_md *ctx, struct bpfdb_req *req, __u32 kind)
{
	req->end_kind = kind;
	if (kind == BPFDB_OP_COMMIT)
		bpf_tail_call(ctx, &chain_progs, BPFDB_STAGE_TXN_COMMIT);
	else
		bpf_tail_call(ctx, &chain_progs, BPFDB_STAGE_TXN_RELEASE);
}

SEC("xdp")
int bpfdb_txn_open(struct xdp_md *ctx)
{
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	struct bpfdb_txn *t;
	struct bpfdb_op *op0;
	__u32 slot, tslot;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	tslot = req->txn_slot;
	t = tslot < BPFDB_MAX_TXNS ? txn_slot(tslot) : NULL;
	op0 = req_op(slot, 0);
	if (!t || !op0) {
		req->status = BPFDB_ERR_TXN_INVALID;
		return XDP_PASS;
	}
	if (op0->kind == BPFDB_OP_BEGIN) {
		if (t->state != BPFDB_TXN_FREE) {
			req->status = BPFDB_ERR_TXN_INVALID;
			return XDP_PASS;
		}
		t->gen = req->txn_gen;
		t->nkeys = 0;
		t->start_ns = bpf_ktime_get_ns();
		if (op0->flags & BPFDB_BEGIN_READ_ONLY) {
			t->snap_ts = register_snapshot(ctl, tslot);
			t->state = BPFDB_TXN_ACTIVE_RO;
			req->visible = t->snap_ts;
		} else {
			t->snap_ts = 0;
			t->state = BPFDB_TXN_ACTIVE;
		}
	} else if (t->state == BPFDB_TXN_FREE || t->gen != req->txn_gen) {
		req->status = BPFDB_ERR_TXN_INVALID;
		return XDP_PASS;
	}
	if (req->status != BPFDB_OK)
		end_txn(ctx, req, BPFDB_OP_ABORT);
	else
		bpf_tail_call(ctx, &chain_progs, BPFDB_STAGE_TXN_OPS);
	req->status = BPFDB_ERR_INTERNAL;
	return XDP_PASS;
}

struct txn_ops_ctx {
	__u32 slot;
	__u32 tslot;
	__s32 status;
	__u32 _pad;
};

/* txn_op runs GET, SET or DEL op in transaction t (txn/ops.h), answering in op. */
static __always_inline int txn_op(struct bpfdb_txn *t, __u32 tslot, struct bpfdb_op *op)
{
	struct bpfdb_value *val = (struct bpfdb_value *)op->value;
	struct bpfdb_found found = {};
	int status;

	if (op->kind == BPFDB_OP_SET)
		return txn_write(t, tslot, &op->key, val, op->val_len, BPFDB_MAX_TXN_KEYS, &op->detail);
	if (op->kind == BPFDB_OP_DEL)
		return txn_write(t, tslot, &op->key, val, BPFDB_TOMBSTONE, BPFDB_MAX_TXN_KEYS,
				 &op->detail);
	status = txn_get(t, tslot, &op->key, op->flags & BPFDB_GET_FOR_UPDATE, BPFDB_MAX_TXN_KEYS,
			 val, &found, &op->detail);
	op->ts = found.ts;
	if (found.expired)
		op->detail = BPFDB_DETAIL_EXPIRED;
	if (status == BPFDB_OK)
		op->val_len = found.len;
	return status;
}

static long txn_op_cb(__u32 i, void *data)
{
	struct txn_ops_ctx *c = data;
	struct bpfdb_op *op = req_op(c->slot, i);
	struct bpfdb_txn *t = txn_slot(c->tslot);
	int status;

	if (!op || !t) {
		c->status = BPFDB_ERR_INTERNAL;
		return 1;
	}
	if (c->status != BPFDB_OK) {
		op->status = BPFDB_ERR_ABORTED;
		return 0;
	}
	if (op->kind == BPFDB_OP_GET || op->kind == BPFDB_OP_SET || op->kind == BPFDB_OP_DEL)
		status = txn_op(t, c->tslot, op);
	else
		return 0;
	op->status = status;
	if (status != BPFDB_OK && status != BPFDB_ERR_NOT_FOUND)
		c->status = status;
	return 0;
}

SEC("xdp")
int bpfdb_txn_ops(struct xdp_md *ctx)
{
	struct txn_ops_ctx c = {};
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	struct bpfdb_op *last;
	__u32 slot;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	c.slot = slot;
	c.tslot = req->txn_slot;
	bpf_loop(req->nops, txn_op_cb, &c, 0);
	if (c.status != BPFDB_OK) {
		req->status = c.status;
		end_txn(ctx, req, BPFDB_OP_ABORT);
		req->status = BPFDB_ERR_INTERNAL;
		return XDP_PASS;
	}
	last = req_op(slot, req->nops - 1);
	if (!last)
		return XDP_DROP;
	if (last->kind == BPFDB_OP_COMMIT || last->kind == BPFDB_OP_ABORT) {
		end_txn(ctx, req, last->kind);
		req->status = BPFDB_ERR_INTERNAL;
	}
	return XDP_PASS;
}

SEC("xdp")
int bpfdb_txn_commit(struct xdp_md *ctx)
{
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	struct bpfdb_txn *t;
	int status = BPFDB_OK;
	__u32 slot;
	__u64 ts;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	t = req->txn_slot < BPFDB_MAX_TXNS ? txn_slot(req->txn_slot) : NULL;
	if (!t)
		return XDP_DROP;
	ts = txn_commit(ctl, t, req->txn_slot, &status);
	if (status != BPFDB_OK) {
		req->status = status;
		req->end_kind = BPFDB_OP_ABORT;
	}
	req->commit_ts = ts;
	bpf_tail_call(ctx, &chain_progs, BPFDB_STAGE_TXN_RELEASE);
	req->status = BPFDB_ERR_INTERNAL;
	return XDP_PASS;
}

SEC("xdp")
int bpfdb_txn_release(struct xdp_md *ctx)
{
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	struct bpfdb_txn *t;
	__u32 slot;
	int abort;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	t = req->txn_slot < BPFDB_MAX_TXNS ? txn_slot(req->txn_slot) : NULL;
	if (!t)
		return XDP_DROP;
	abort = req->end_kind != BPFDB_OP_COMMIT;
	txn_end(ctl, t, req->txn_slot, abort);
	if (abort)
		txn_count_abort(req->status);
	req->visible = READ_ONCE_U64(ctl->visible);
	return XDP_PASS;
}

/* ---- collect: GC of the keys nobody writes -------------------------------- */

struct collect_ctx {
	__u32 slot;
	__u32 _pad;
	__u64 low;
	__u64 busy;
};

/*
 * collect_key reclaims what no snapshot at or above low can see of key's
 * record and removes the record if the key is deleted; a record someone
 * holds is theirs to collect. Returns 0, BPFDB_ERR_NOT_FOUND (no record),
 * BPFDB_ERR_CONFLICT (held) or BPFDB_ERR_RETRY (reused for another key
 * since the lookup). Global: verified once, not in the loop's states.
 */
__noinline int collect_key(const struct bpfdb_key *key, __u64 low)
{
	struct bpfdb_record *rec;

	if (!key)
		return BPFDB_ERR_INTERNAL;
	rec = record_lookup(key);
	if (!rec)
		return BPFDB_ERR_NOT_FOUND;
	if (lock_exclusive(rec, OWNER_VACUUM, 0) != BPFDB_OK)
		return BPFDB_ERR_CONFLICT;
	if (!record_valid(key, rec)) { /* removed and reused since the lookup (record.h) */
		unlock_exclusive(rec);
		return BPFDB_ERR_RETRY;
	}
	reclaim(rec, low);
	if (record_deleted(rec) && record_collect(key, rec))
		return BPFDB_OK;
	unlock_exclusive(rec);
	return BPFDB_OK;
}

static long collect_cb(__u32 i, void *data)
{
	struct collect_ctx *c = data;
	struct bpfdb_op *op = req_op(c->slot, i);

	if (!op)
		return 1;
	if (op->key.len > BPFDB_MAX_LONG_KEY_LEN)
		op->status = BPFDB_ERR_KEY_TOO_LONG;
	else if (op->key.db >= BPFDB_DATABASES)
		op->status = BPFDB_ERR_BAD_REQUEST;
	else
		op->status = collect_key(&op->key, c->low);
	if (op->status == BPFDB_ERR_CONFLICT)
		c->busy++;
	return 0;
}

/*
 * bpfdb_collect reclaims, in the records of the keys of its request slot
 * (at most BPFDB_MAX_BATCH), the versions no snapshot can see, and removes
 * deleted keys' records. Cooperative GC collects only the keys being
 * written; the engine's vacuum walks the index from user space and sends
 * the others here a batch at a time, so no run is longer than a batch's
 * (a walk of the whole index in one run took about 300 ms at 1M keys).
 * With no keys it only refreshes the low-water hint, which the walk then
 * reads. Reports the records skipped as held in the slot's header
 * (visible); the records removed count in BPFDB_STAT_RECORDS_FREED.
 */
SEC("xdp")
int bpfdb_collect(struct xdp_md *ctx)
{
	struct collect_ctx c = {};
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	__u32 slot;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	req->build = bpfdb_build;
	c.slot = slot;
	c.low = refresh_low_hint(ctl);
	if (req->nops <= BPFDB_MAX_BATCH)
		bpf_loop(req->nops, collect_cb, &c, 0);
	req->status = BPFDB_OK;
	req->commit_ts = 0;
	req->visible = c.busy;
	return XDP_PASS;
}

/*
 * bpfdb_ktxn_reap aborts the kernel transactions (bpfdb_api.h) that began
 * more than control.ktxn_timeout_ns ago, releasing their locks (txn/table.h,
 * invariant 4). The engine runs it while any kernel slot is claimed.
 * Reports the transactions reaped and the slots skipped because a call was
 * using them in the slot's header (commit_ts, visible).
 */
SEC("xdp")
int bpfdb_ktxn_reap(struct xdp_md *ctx)
{
	struct ktxn_reap_ctx c = {};
	struct bpfdb_control *ctl;
	struct bpfdb_req *req;
	__u32 slot;

	if (stage_enter(ctx, &slot, &req, &ctl))
		return XDP_DROP;
	req->build = bpfdb_build;
	c.now = bpf_ktime_get_ns();
	c.timeout = READ_ONCE_U64(ctl->ktxn_timeout_ns);
	if (c.timeout)
		bpf_loop(BPFDB_KERNEL_TXNS, ktxn_reap_cb, &c, 0);
	req->status = BPFDB_OK;
	req->commit_ts = c.reaped;
	req->visible = c.busy;
	return XDP_PASS;
}

/* The floor every benchmark is measured against: a run that does nothing. */
SEC("xdp")
int bpfdb_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/*
 * bpfdb_abi names every enum the Go engine imports through bpf2go. Clang emits
 * BTF only for types something uses; this unreferenced function uses them
 * without creating a map or a program.
 */
struct bpfdb_abi {
	enum bpfdb_limit limit;
	enum bpfdb_status status;
	enum bpfdb_op_kind op_kind;
	enum bpfdb_mode mode;
	enum bpfdb_stat stat;
	enum bpfdb_stage stage;
	enum bpfdb_begin_flag begin_flag;
	enum bpfdb_full_detail full_detail;
	enum bpfdb_len_flag len_flag;
	enum bpfdb_value_type value_type;
	enum bpfdb_lock_mode lock_mode;
	enum bpfdb_txn_state txn_state;
	enum bpfdb_wal_kind wal_kind;
	enum bpfdb_layout layout;
	struct bpfdb_wal_write wal_write;
	struct bpfdb_run run;
	struct bpfdb_snapshots snapshots;
};

__attribute__((noinline)) int bpfdb_abi_types(struct bpfdb_abi *abi)
{
	return abi != 0;
}
