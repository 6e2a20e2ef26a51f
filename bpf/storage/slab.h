/* SPDX-License-Identifier: GPL-2.0 */
/*
 * slab.h: value storage. A value of len bytes lives in one slot of the
 * smallest class that holds it (32 << class bytes), so a 100-byte value costs
 * 128 bytes, not BPFDB_MAX_VALUE_LEN. A version names its slot by ref; the
 * class follows from len, so it is not stored. Empty values and tombstones
 * use no slot.
 *
 * Allocation pops the class's free queue, and only when that is empty bumps
 * control.slab_next; a bump past control.slab_cap means the class is full.
 * A slot is freed when GC reclaims its version or when the transaction that
 * buffered it aborts; nothing else may free it.
 */
#ifndef BPFDB_SLAB_H
#define BPFDB_SLAB_H

#include "maps.h"
#include "expiry.h"

/* Lengths here are stored lengths (storage/expiry.h): a deadline is stored bytes too. */
static __always_inline int value_has_slot(__u32 len)
{
	return stored_len(len) != 0;
}

/* slab_class returns the class of a value of 1..BPFDB_MAX_VALUE_LEN stored bytes. */
static __always_inline __u32 slab_class(__u32 len)
{
	len = stored_len(len);
	if (len <= 32)
		return 0;
	if (len <= 64)
		return 1;
	if (len <= 128)
		return 2;
	if (len <= 256)
		return 3;
	if (len <= 512)
		return 4;
	return 5;
}

static __always_inline long slab_pop(__u32 class, __u32 *ref)
{
	switch (class) {
	case 0: return bpf_map_pop_elem(&slab_free_0, ref);
	case 1: return bpf_map_pop_elem(&slab_free_1, ref);
	case 2: return bpf_map_pop_elem(&slab_free_2, ref);
	case 3: return bpf_map_pop_elem(&slab_free_3, ref);
	case 4: return bpf_map_pop_elem(&slab_free_4, ref);
	default: return bpf_map_pop_elem(&slab_free_5, ref);
	}
}

/*
 * slab_alloc returns a free slot for a value of len bytes, or -1 when its
 * class is full. The slab functions are global (verified once, not at every
 * call site): each switches over the classes, which inlined would multiply
 * the verifier's paths by six wherever it is used.
 */
__attribute__((noinline)) long long slab_alloc(__u32 len)
{
	struct bpfdb_control *ctl = control_block();
	__u32 class = slab_class(len), ref = 0;
	__u64 next;

	if (slab_pop(class, &ref) == 0)
		return ref;
	if (!ctl || class >= BPFDB_SLAB_CLASSES)
		return -1;
	next = __sync_fetch_and_add(&ctl->slab_next[class], 1);
	if (next >= ctl->slab_cap[class])
		return -1;
	return next;
}

__attribute__((noinline)) int slab_free(__u32 len, __u32 ref)
{
	__u32 class;

	if (!value_has_slot(len))
		return 0;
	class = slab_class(len);
	switch (class) {
	case 0: bpf_map_push_elem(&slab_free_0, &ref, 0); break;
	case 1: bpf_map_push_elem(&slab_free_1, &ref, 0); break;
	case 2: bpf_map_push_elem(&slab_free_2, &ref, 0); break;
	case 3: bpf_map_push_elem(&slab_free_3, &ref, 0); break;
	case 4: bpf_map_push_elem(&slab_free_4, &ref, 0); break;
	default: bpf_map_push_elem(&slab_free_5, &ref, 0); break;
	}
	return 0;
}

/*
 * slab_store copies the class-sized prefix of src into slot ref of len's
 * class. Copying whole classes keeps every copy a constant size the
 * verifier can check; src is a whole value buffer (map memory).
 */
__attribute__((noinline)) int slab_store(const struct bpfdb_value *src, __u32 len, __u32 ref)
{
	void *dst;

	if (!src)
		return -1;
	switch (slab_class(len)) {
	case 0:
		dst = bpf_map_lookup_elem(&slab_0, &ref);
		if (!dst)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_0));
		return 0;
	case 1:
		dst = bpf_map_lookup_elem(&slab_1, &ref);
		if (!dst)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_1));
		return 0;
	case 2:
		dst = bpf_map_lookup_elem(&slab_2, &ref);
		if (!dst)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_2));
		return 0;
	case 3:
		dst = bpf_map_lookup_elem(&slab_3, &ref);
		if (!dst)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_3));
		return 0;
	case 4:
		dst = bpf_map_lookup_elem(&slab_4, &ref);
		if (!dst)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_4));
		return 0;
	default:
		dst = bpf_map_lookup_elem(&slab_5, &ref);
		if (!dst)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_5));
		return 0;
	}
}

/*
 * slab_copy_out copies the class-sized slot ref of a len-byte value into dst,
 * a BPFDB_MAX_VALUE_LEN-byte buffer in a map value.
 */
static __always_inline int slab_copy_out(__u32 len, __u32 ref, __u8 *dst)
{
	void *src;

	if (!value_has_slot(len))
		return 0;
	switch (slab_class(len)) {
	case 0:
		src = bpf_map_lookup_elem(&slab_0, &ref);
		if (!src)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_0));
		return 0;
	case 1:
		src = bpf_map_lookup_elem(&slab_1, &ref);
		if (!src)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_1));
		return 0;
	case 2:
		src = bpf_map_lookup_elem(&slab_2, &ref);
		if (!src)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_2));
		return 0;
	case 3:
		src = bpf_map_lookup_elem(&slab_3, &ref);
		if (!src)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_3));
		return 0;
	case 4:
		src = bpf_map_lookup_elem(&slab_4, &ref);
		if (!src)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_4));
		return 0;
	default:
		src = bpf_map_lookup_elem(&slab_5, &ref);
		if (!src)
			return -1;
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_5));
		return 0;
	}
}

/*
 * slab_load copies the value of len bytes in slot ref into dst (nothing for
 * an empty value or a tombstone). Global: verified once.
 */
__attribute__((noinline)) int slab_load(struct bpfdb_value *dst, __u32 len, __u32 ref)
{
	if (!dst)
		return -1;
	return slab_copy_out(len, ref, dst->b);
}

#define SLAB_SLOT(n, ref, p, mask)                         \
	do {                                               \
		p = bpf_map_lookup_elem(&slab_##n, &ref);  \
		mask = sizeof(struct bpfdb_slab_##n) - 1;  \
	} while (0)

/*
 * slab_deadline returns the deadline stored after the value of length len
 * in slot ref (storage/expiry.h), or 0 when it has none. Global: verified
 * once.
 */
__attribute__((noinline)) __u64 slab_deadline(__u32 len, __u32 ref)
{
	__u32 n = stored_len(len), mask, i;
	__u8 *p = NULL;
	__u64 d = 0;

	if (!len_expires(len) || n < BPFDB_DEADLINE_LEN || n > BPFDB_MAX_VALUE_LEN)
		return 0;
	switch (slab_class(len)) {
	case 0: SLAB_SLOT(0, ref, p, mask); break;
	case 1: SLAB_SLOT(1, ref, p, mask); break;
	case 2: SLAB_SLOT(2, ref, p, mask); break;
	case 3: SLAB_SLOT(3, ref, p, mask); break;
	case 4: SLAB_SLOT(4, ref, p, mask); break;
	default: SLAB_SLOT(5, ref, p, mask); break;
	}
	if (!p)
		return 0;
	for (i = 0; i < BPFDB_DEADLINE_LEN; i++)
		d |= (__u64)p[(n - BPFDB_DEADLINE_LEN + i) & mask] << (8 * i);
	return d;
}

/*
 * slab_put allocates a slot for a value of len bytes and copies src into
 * it: 0 with *ref set (nothing to do for an empty value or a tombstone),
 * BPFDB_ERR_STORE_FULL with *detail set to the class, or
 * BPFDB_ERR_INTERNAL.
 */
static __always_inline int slab_put(const struct bpfdb_value *src, __u32 len, __u32 *ref,
				    __u8 *detail)
{
	long long slot;

	*ref = 0;
	if (!value_has_slot(len))
		return BPFDB_OK;
	slot = slab_alloc(len);
	if (slot < 0) {
		*detail = slab_class(len);
		return BPFDB_ERR_STORE_FULL;
	}
	if (slab_store(src, len, slot)) {
		slab_free(len, slot);
		return BPFDB_ERR_INTERNAL;
	}
	*ref = slot;
	return BPFDB_OK;
}

#endif /* BPFDB_SLAB_H */
