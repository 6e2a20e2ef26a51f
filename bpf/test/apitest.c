// SPDX-License-Identifier: GPL-2.0
/*
 * apitest.c: BPF programs that use the store through bpfdb_api.h, for the
 * engine's tests (engine/api_test.go), loaded against an open engine's maps.
 *
 * The XDP programs are run with BPF_PROG_RUN; the 16-byte packet names a
 * slot of api_slots, which holds the call's arguments and receives its
 * results (one slot per concurrent caller). Each program makes one attempt:
 * the test retries, so no program loops. The programs of other types are
 * loaded (verified) only, to show which program types can use the API.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/*
 * api_read_stall[0] iterations of an empty loop stall every bpfdb_get
 * between its lookup and its read (BPFDB_TEST_AFTER_LOOKUP): the window in
 * which a record can be removed and reused by another key, made wide.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} api_read_stall SEC(".maps");

static long api_stall_cb(__u32 i, void *ctx)
{
	return 0;
}

static __always_inline void api_stall(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&api_read_stall, &zero);
	int unused = 0;

	if (n && *n)
		bpf_loop(*n, api_stall_cb, &unused, 0);
}

#define BPFDB_TEST_AFTER_LOOKUP() api_stall()

/*
 * api_create_stall[0] iterations stall every record_get_or_create between
 * its insert and its lookup (BPFDB_TEST_AFTER_CREATE): the window in which
 * a DEL can remove the new record, still empty and unlocked, made wide. A
 * global function: verified once, not at every call site.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} api_create_stall SEC(".maps");

__attribute__((noinline)) int api_create_wait(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&api_create_stall, &zero);
	int unused = 0;

	if (n && *n)
		bpf_loop(*n, api_stall_cb, &unused, 0);
	return 0;
}

#define BPFDB_TEST_AFTER_CREATE() api_create_wait()

#include "bpfdb_api.h"

char _license[] SEC("license") = "GPL";

#define API_SLOTS 64

/* Steps of api_step. */
enum api_step_kind {
	API_BEGIN = 1,   /* read_only from the slot */
	API_GET_FOR_UPDATE = 2,
	API_SET = 3,
	API_COMMIT = 4,
	API_ABORT = 5,
	API_DELETE = 6,
	API_GET = 7,
};

struct api_slot {
	/* in */
	__u32 step;      /* api_step: enum api_step_kind */
	__u32 val_len;
	__s64 delta;
	__u32 read_only;
	__u32 _pad0;
	struct bpfdb_key keys[2];
	/* in and out: the transaction of api_step */
	struct bpfdb_txn_handle tx;
	/* out */
	__s32 status;
	__u32 len;
	__u64 lsn;
	__s64 sum;
	__s64 vals[2];  /* api_snapshot2: the two keys as integers (absent: 0) */
	__u64 durable;
	struct bpfdb_value in;  /* the value to write */
	struct bpfdb_value buf; /* the value read; scratch */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, API_SLOTS);
	__type(key, __u32);
	__type(value, struct api_slot);
} api_slots SEC(".maps");

struct api_packet {
	__u32 slot;
	__u32 _pad;
	__u64 _pad1;
};

static __always_inline struct api_slot *slot_of(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct api_packet *p = data;
	__u32 k;

	if ((void *)(p + 1) > data_end)
		return NULL;
	k = p->slot;
	return bpf_map_lookup_elem(&api_slots, &k);
}

SEC("xdp")
int api_get(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);

	if (!s)
		return XDP_DROP;
	s->len = 0;
	s->status = bpfdb_get(&s->keys[0], &s->buf, &s->len);
	return XDP_PASS;
}

SEC("xdp")
int api_set(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);

	if (!s)
		return XDP_DROP;
	s->status = bpfdb_set(&s->keys[0], &s->in, s->val_len, &s->lsn);
	return XDP_PASS;
}

/* api_set_deadline: bpfdb_set_deadline with delta as the deadline. */
SEC("xdp")
int api_set_deadline(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);

	if (!s)
		return XDP_DROP;
	s->status = bpfdb_set_deadline(&s->keys[0], &s->in, s->val_len, s->delta, &s->lsn);
	return XDP_PASS;
}

/* api_get_deadline: bpfdb_get_deadline, the deadline out in sum. */
SEC("xdp")
int api_get_deadline(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);
	__u64 deadline = 0;

	if (!s)
		return XDP_DROP;
	s->len = 0;
	s->status = bpfdb_get_deadline(&s->keys[0], &s->buf, &s->len, &s->lsn, &deadline);
	s->sum = deadline;
	return XDP_PASS;
}

SEC("xdp")
int api_delete(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);

	if (!s)
		return XDP_DROP;
	s->status = bpfdb_delete(&s->keys[0], &s->lsn);
	return XDP_PASS;
}

SEC("xdp")
int api_incr(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);

	if (!s)
		return XDP_DROP;
	s->status = bpfdb_incr(&s->keys[0], s->delta, &s->buf, &s->sum, &s->lsn);
	return XDP_PASS;
}

SEC("xdp")
int api_durable(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);

	if (!s)
		return XDP_DROP;
	s->durable = bpfdb_durable_lsn();
	s->status = bpfdb_layout_ok() ? BPFDB_OK : BPFDB_ERR_LAYOUT;
	return XDP_PASS;
}

/* read_int reads key i of s in tx as an integer into s->vals[i] (absent: 0). */
static __always_inline int read_int(struct api_slot *s, struct bpfdb_txn_handle *tx, int i,
				    int for_update)
{
	struct bpfdb_key *key = &s->keys[i & 1];
	__u32 len = 0;
	int status;

	status = for_update ? bpfdb_txn_get_for_update(tx, key, &s->buf, &len)
			    : bpfdb_txn_get(tx, key, &s->buf, &len);
	s->vals[i & 1] = 0;
	if (status == BPFDB_ERR_NOT_FOUND)
		return BPFDB_OK;
	if (status != BPFDB_OK)
		return status;
	if (bpfdb_parse_int(&s->buf, len, &s->vals[i & 1])) {
		bpfdb_txn_abort(tx);
		return BPFDB_ERR_NOT_INTEGER;
	}
	return BPFDB_OK;
}

/*
 * transfer moves s->delta from keys[0] to keys[1] (decimal integers) in
 * one read-write transaction.
 */
static __always_inline int transfer(struct api_slot *s)
{
	struct bpfdb_txn_handle tx = {};
	__u32 len;
	int status;

	status = bpfdb_txn_begin(&tx, 0);
	if (status != BPFDB_OK)
		return status;
	status = read_int(s, &tx, 0, 1);
	if (status != BPFDB_OK)
		return status;
	status = read_int(s, &tx, 1, 1);
	if (status != BPFDB_OK)
		return status;
	len = bpfdb_format_int(s->vals[0] - s->delta, &s->buf);
	status = bpfdb_txn_set(&tx, &s->keys[0], &s->buf, len);
	if (status != BPFDB_OK)
		return status;
	len = bpfdb_format_int(s->vals[1] + s->delta, &s->buf);
	status = bpfdb_txn_set(&tx, &s->keys[1], &s->buf, len);
	if (status != BPFDB_OK)
		return status;
	return bpfdb_txn_commit(&tx, &s->lsn);
}

SEC("xdp")
int api_transfer(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);

	if (!s)
		return XDP_DROP;
	s->status = transfer(s);
	return XDP_PASS;
}

/* api_snapshot2 reads both keys as integers at one snapshot (a read-only transaction). */
SEC("xdp")
int api_snapshot2(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);
	struct bpfdb_txn_handle tx = {};
	int status;

	if (!s)
		return XDP_DROP;
	status = bpfdb_txn_begin(&tx, 1);
	if (status == BPFDB_OK)
		status = read_int(s, &tx, 0, 0);
	if (status == BPFDB_OK)
		status = read_int(s, &tx, 1, 0);
	if (status == BPFDB_OK)
		status = bpfdb_txn_commit(&tx, NULL);
	s->status = status;
	return XDP_PASS;
}

/* api_step runs one call of a transaction kept in s->tx across runs. */
SEC("xdp")
int api_step(struct xdp_md *ctx)
{
	struct api_slot *s = slot_of(ctx);
	int status;

	if (!s)
		return XDP_DROP;
	switch (s->step) {
	case API_BEGIN:
		status = bpfdb_txn_begin(&s->tx, s->read_only);
		break;
	case API_GET_FOR_UPDATE:
		status = bpfdb_txn_get_for_update(&s->tx, &s->keys[0], &s->buf, &s->len);
		break;
	case API_GET:
		status = bpfdb_txn_get(&s->tx, &s->keys[0], &s->buf, &s->len);
		break;
	case API_SET:
		status = bpfdb_txn_set(&s->tx, &s->keys[0], &s->in, s->val_len);
		break;
	case API_DELETE:
		status = bpfdb_txn_delete(&s->tx, &s->keys[0]);
		break;
	case API_COMMIT:
		status = bpfdb_txn_commit(&s->tx, &s->lsn);
		break;
	case API_ABORT:
		status = bpfdb_txn_abort(&s->tx);
		break;
	default:
		status = BPFDB_ERR_BAD_REQUEST;
	}
	s->status = status;
	return XDP_PASS;
}

/*
 * Programs of other types, loaded only: each increments a counter and
 * runs a transfer and a snapshot get through slot 0.
 */
static __always_inline int every_call(void)
{
	__u32 k = 0;
	struct api_slot *s = bpf_map_lookup_elem(&api_slots, &k);
	__u32 len = 0;

	if (!s)
		return 0;
	s->status = bpfdb_incr(&s->keys[0], 1, &s->buf, &s->sum, &s->lsn);
	s->status |= bpfdb_get(&s->keys[0], &s->buf, &len);
	s->status |= bpfdb_set(&s->keys[0], &s->in, s->val_len & 1023, NULL);
	s->status |= bpfdb_delete(&s->keys[1], NULL);
	s->status |= transfer(s);
	s->durable = bpfdb_durable_lsn();
	return 0;
}

SEC("tc")
int api_type_tc(struct __sk_buff *skb)
{
	every_call();
	return 0; /* TC_ACT_OK */
}

SEC("cgroup_skb/ingress")
int api_type_cgroup_skb(struct __sk_buff *skb)
{
	every_call();
	return 1;
}

SEC("sockops")
int api_type_sockops(struct bpf_sock_ops *ops)
{
	every_call();
	return 1;
}

SEC("kprobe/do_nanosleep")
int api_type_kprobe(void *ctx)
{
	every_call();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_nanosleep")
int api_type_tracepoint(void *ctx)
{
	every_call();
	return 0;
}

SEC("tp_btf/sched_switch")
int api_type_tp_btf(void *ctx)
{
	every_call();
	return 0;
}

struct apitest_abi {
	struct api_slot slot;
	struct api_packet packet;
	enum api_step_kind step;
};

__attribute__((noinline)) int apitest_abi_types(struct apitest_abi *abi)
{
	return abi != 0;
}
