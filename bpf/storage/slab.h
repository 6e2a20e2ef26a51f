/* SPDX-License-Identifier: GPL-2.0 */
/*
 * slab.h: value storage. A value of len bytes lives in one slot of the
 * smallest class that holds it (32 << class bytes), so a 100-byte value costs
 * 128 bytes, not BPFDB_MAX_VALUE_LEN. A version names its slot by ref; the
 * class follows from len, so it is not stored. Empty values and tombstones
 * use no slot.
 *
 * The slots are carved from one array of pages (value_pages), as each
 * class needs them, so the classes share one budget: a class is full only
 * when no page is left. Slot ref of class c is the (32 << c)-byte slot at
 * byte ref << (5 + c) of the array: page (ref << (5 + c)) >> 12.
 *
 * Invariants:
 *
 *  1. A slot is in use (a version's, or a transaction's buffered write),
 *     on its class's free list, or not yet carved; a page is carved by one
 *     class, on the page free list, or not yet handed out (below
 *     control.page_next, at most control.page_cap). Nothing else.
 *  2. The free lists are lock-free stacks (Treiber): the head is a 64-bit
 *     word, a tag in the high half that every successful push and pop
 *     raises, and ref + 1 of the top in the low half (0: empty); a free
 *     slot's first 4 bytes hold the head's low half below it. A pop that
 *     read a slot some other CPU popped and rewrote meanwhile fails its
 *     compare-and-swap, the tag having moved, so the garbage it read is
 *     never installed.
 *  3. A class carves its current page through control.slab_cursor: page + 1
 *     in the high half, the next slot in the low half; a compare-and-swap
 *     takes a slot or installs a fresh page. A page taken for a cursor
 *     another CPU replaced first is given back (the page free list).
 *  4. A slot (or a blob, storage/blob.h) is freed when GC reclaims its version or when the transaction
 *     that buffered it aborts; nothing else may free it. Pages are not
 *     given back by classes: a class keeps what it carved (its free slots
 *     are reused by its values only).
 */
#ifndef BPFDB_SLAB_H
#define BPFDB_SLAB_H

#include "maps.h"
#include "expiry.h"

/* What the free-list and carving functions return besides a ref. */
enum slab_miss {
	SLAB_EMPTY = -1,     /* nothing free: the class, or the store, is full */
	SLAB_CONTENDED = -2, /* BPFDB_SLAB_CAS_TRIES compare-and-swaps lost in a row */
};

/* Lengths here are stored lengths (storage/expiry.h): a deadline is stored bytes too.
 * Empty values and tombstones have no slot, nor have blobs (storage/blob.h). */
static __always_inline int value_has_slot(__u32 len)
{
	__u32 n = stored_len(len);

	return n != 0 && n <= BPFDB_MAX_VALUE_LEN;
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

/* slab_word returns the first 4 bytes of slot ref of class, or NULL. */
static __always_inline __u32 *slab_word(__u32 class, __u32 ref)
{
	__u64 off;
	__u32 page;
	__u8 *p;

	if (class >= BPFDB_SLAB_CLASSES)
		return NULL;
	off = (__u64)ref << (BPFDB_MIN_SLAB_SHIFT + class);
	page = off >> BPFDB_PAGE_SHIFT;
	p = bpf_map_lookup_elem(&value_pages, &page);
	if (!p)
		return NULL;
	barrier_var(p); /* keeps the add after the null check, as the verifier needs */
	return (__u32 *)(p + (off & (BPFDB_PAGE_SIZE - 8)));
}

/* page_word returns the first 4 bytes of page, or NULL. */
static __always_inline __u32 *page_word(__u32 page)
{
	return bpf_map_lookup_elem(&value_pages, &page);
}

/* stack_tagged is the head that puts top (a ref + 1) over head h (invariant 2). */
static __always_inline __u64 stack_tagged(__u64 h, __u32 top)
{
	return (((h >> 32) + 1) << 32) | top;
}

/* The context of stack_push_cb, and of blob_link_cb before it (slab_free
 * uses one for both: the stack of its deepest callers has little room). */
struct stack_push_ctx {
	__u64 *head;
	__u32 *word;
	__u32 ref;
	__u32 pushed; /* blob_link_cb: the chain's tail so far (storage/blob.h) */
};

static long stack_push_cb(__u32 i, void *data)
{
	struct stack_push_ctx *c = data;
	__u64 h = READ_ONCE_U64(*c->head);

	*(volatile __u32 *)c->word = (__u32)h;
	if (__sync_val_compare_and_swap(c->head, h, stack_tagged(h, c->ref + 1)) != h)
		return 0;
	c->pushed = 1;
	return 1;
}

/*
 * stack_push pushes ref, whose first 4 bytes are word, on the stack whose
 * head is *head (invariant 2): 0, or SLAB_CONTENDED. A bpf_loop: a slot
 * not pushed is lost, so it tries many times, and the verifier walks the
 * body once.
 */
static __always_inline int stack_push_with(struct stack_push_ctx *c)
{
	c->pushed = 0;
	bpf_loop(BPFDB_SLAB_PUSH_TRIES, stack_push_cb, c, 0);
	return c->pushed ? 0 : SLAB_CONTENDED;
}

static __always_inline int stack_push(__u64 *head, __u32 *word, __u32 ref)
{
	struct stack_push_ctx c = { .head = head, .word = word, .ref = ref };

	return stack_push_with(&c);
}

/* slab_pop pops a free slot of class: its ref, SLAB_EMPTY or
 * SLAB_CONTENDED. Global: verified once. */
__attribute__((noinline)) long long slab_pop(__u32 class)
{
	struct bpfdb_control *ctl = control_block();
	__u32 i;

	if (!ctl || class >= BPFDB_SLAB_CLASSES)
		return SLAB_EMPTY;
	for (i = 0; i < BPFDB_SLAB_CAS_TRIES; i++) {
		__u64 h = READ_ONCE_U64(ctl->slab_free[class]);
		__u32 top = (__u32)h, *w;

		if (!top)
			return SLAB_EMPTY;
		w = slab_word(class, top - 1);
		if (!w)
			return SLAB_EMPTY;
		if (__sync_val_compare_and_swap(&ctl->slab_free[class], h,
						stack_tagged(h, *(volatile __u32 *)w)) == h)
			return top - 1;
	}
	return SLAB_CONTENDED;
}

/* page_take takes a page: from the page free list, else a new one
 * (invariant 1). Global: verified once. */
__attribute__((noinline)) long long page_take(void)
{
	struct bpfdb_control *ctl = control_block();
	__u64 next;
	__u32 i;

	if (!ctl)
		return SLAB_EMPTY;
	for (i = 0; i < BPFDB_SLAB_CAS_TRIES; i++) {
		__u64 h = READ_ONCE_U64(ctl->page_free);
		__u32 top = (__u32)h, *w;

		if (!top)
			break;
		w = page_word(top - 1);
		if (!w)
			return SLAB_EMPTY;
		if (__sync_val_compare_and_swap(&ctl->page_free, h, stack_tagged(h, *(volatile __u32 *)w)) == h)
			return top - 1;
	}
	if (READ_ONCE_U64(ctl->page_next) >= READ_ONCE_U64(ctl->page_cap))
		return SLAB_EMPTY; /* checked first, so page_next stays near page_cap */
	next = __sync_fetch_and_add(&ctl->page_next, 1);
	if (next >= READ_ONCE_U64(ctl->page_cap))
		return SLAB_EMPTY;
	return next;
}

/* page_give puts page, taken and never carved, on the page free list. */
static __always_inline void page_give(struct bpfdb_control *ctl, __u32 page)
{
	__u32 *w = page_word(page);

	if (!w || stack_push(&ctl->page_free, w, page))
		stat_add(BPFDB_STAT_SLOTS_LOST, 1);
}

#include "blob.h"

/* slab_carve carves a slot of class from its page, taking a page when
 * that is used up (invariant 3): its ref, SLAB_EMPTY or SLAB_CONTENDED.
 * Global: verified once. */
__attribute__((noinline)) long long slab_carve(__u32 class)
{
	struct bpfdb_control *ctl = control_block();
	__u32 shift, i;

	if (!ctl || class >= BPFDB_SLAB_CLASSES)
		return SLAB_EMPTY;
	shift = BPFDB_PAGE_SHIFT - BPFDB_MIN_SLAB_SHIFT - class; /* slots per page: 1 << shift */
	for (i = 0; i < BPFDB_SLAB_CAS_TRIES; i++) {
		__u64 cur = READ_ONCE_U64(ctl->slab_cursor[class]);
		__u64 pg = cur >> 32;
		__u32 idx = (__u32)cur;
		long long p;

		if (pg && idx < (1U << shift)) {
			if (__sync_val_compare_and_swap(&ctl->slab_cursor[class], cur, cur + 1) == cur)
				return ((pg - 1) << shift) | idx;
			continue;
		}
		p = page_take();
		if (p < 0)
			return p;
		if (__sync_val_compare_and_swap(&ctl->slab_cursor[class], cur, ((__u64)(p + 1) << 32) | 1) == cur)
			return (__u64)p << shift;
		page_give(ctl, p);
	}
	return SLAB_CONTENDED;
}

/*
 * slab_alloc returns a free slot for a value of len bytes: its ref,
 * SLAB_EMPTY when no page is left, or SLAB_CONTENDED. The slab functions
 * are global (verified once, not at every call site): each switches over
 * the classes, which inlined would multiply the verifier's paths by six
 * wherever it is used.
 */
__attribute__((noinline)) long long slab_alloc(__u32 len)
{
	struct bpfdb_control *ctl = control_block();
	__u32 class = slab_class(len);
	long long ref;

	if (!ctl || class >= BPFDB_SLAB_CLASSES)
		return SLAB_EMPTY;
	ref = slab_pop(class);
	if (ref < 0)
		ref = slab_carve(class);
	if (ref >= 0)
		__sync_fetch_and_add(&ctl->slab_used[class], 1);
	return ref;
}

/*
 * slab_free puts slot ref of len's class back on its free list, or the
 * pages of the blob whose head page is ref on the page free list
 * (storage/blob.h), in one push either way.
 */
__attribute__((noinline)) int slab_free(__u32 len, __u32 ref)
{
	struct bpfdb_control *ctl = control_block();
	struct stack_push_ctx c = { .ref = ref };
	__u32 class;

	if (!ctl)
		return 0;
	if (value_is_blob(len)) {
		c.word = blob_chain(ctl, &c);
		c.head = &ctl->page_free;
	} else {
		if (!value_has_slot(len))
			return 0;
		class = slab_class(len);
		if (class >= BPFDB_SLAB_CLASSES)
			return 0;
		__sync_fetch_and_add(&ctl->slab_used[class], -1);
		c.word = slab_word(class, ref);
		c.head = &ctl->slab_free[class];
	}
	if (!c.word || stack_push_with(&c))
		stat_add(BPFDB_STAT_SLOTS_LOST, 1);
	return 0;
}

/* slab_slot returns slot ref of the class whose slots are 1 << shift bytes
 * (NULL if out of the array); the offset is masked so that the verifier
 * sees a whole slot within the page. */
static __always_inline __u8 *slab_slot(__u32 ref, const __u32 shift)
{
	__u64 off = (__u64)ref << shift;
	__u32 page = off >> BPFDB_PAGE_SHIFT;
	__u8 *p = bpf_map_lookup_elem(&value_pages, &page);

	if (!p)
		return NULL;
	barrier_var(p); /* keeps the add after the null check, as the verifier needs */
	return p + (off & (BPFDB_PAGE_SIZE - (1U << shift)));
}

#define SLAB_SLOT(n, ref, p) p = slab_slot(ref, BPFDB_MIN_SLAB_SHIFT + n)

/*
 * slab_store copies the class-sized prefix of src into slot ref of len's
 * class. Copying whole classes keeps every copy a constant size the
 * verifier can check; src is a whole value buffer (map memory).
 */
#define SLAB_STORE_CASE(n)                                       \
	case n:                                                  \
		SLAB_SLOT(n, ref, dst);                    \
		if (!dst)                                        \
			return -1;                               \
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_##n));    \
		return 0

__attribute__((noinline)) int slab_store(const struct bpfdb_value *src, __u32 len, __u32 ref)
{
	__u8 *dst;

	if (!src)
		return -1;
	switch (slab_class(len)) {
	SLAB_STORE_CASE(0);
	SLAB_STORE_CASE(1);
	SLAB_STORE_CASE(2);
	SLAB_STORE_CASE(3);
	SLAB_STORE_CASE(4);
	default:
	SLAB_STORE_CASE(5);
	}
}

#define SLAB_LOAD_CASE(n)                                        \
	case n:                                                  \
		SLAB_SLOT(n, ref, src);                    \
		if (!src)                                        \
			return -1;                               \
		__builtin_memcpy(dst, src, sizeof(struct bpfdb_slab_##n));    \
		return 0

/*
 * slab_copy_out copies the class-sized slot ref of a len-byte value into dst,
 * a BPFDB_MAX_VALUE_LEN-byte buffer in a map value.
 */
static __always_inline int slab_copy_out(__u32 len, __u32 ref, __u8 *dst)
{
	__u8 *src;

	if (!value_has_slot(len))
		return 0;
	switch (slab_class(len)) {
	SLAB_LOAD_CASE(0);
	SLAB_LOAD_CASE(1);
	SLAB_LOAD_CASE(2);
	SLAB_LOAD_CASE(3);
	SLAB_LOAD_CASE(4);
	default:
	SLAB_LOAD_CASE(5);
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
	if (len != BPFDB_TOMBSTONE && value_is_blob(len))
		return blob_load(dst, ref);
	return slab_copy_out(len, ref, dst->b);
}

/*
 * slab_deadline returns the deadline stored after the value of length len
 * in slot ref (storage/expiry.h), or 0 when it has none. Global: verified
 * once.
 */
__attribute__((noinline)) __u64 slab_deadline(__u32 len, __u32 ref)
{
	__u32 n = stored_len(len), size, i;
	__u8 *p = NULL;
	__u64 d = 0;

	if (len_expires(len) && n > BPFDB_MAX_VALUE_LEN)
		return blob_deadline(ref);
	if (!len_expires(len) || n < BPFDB_DEADLINE_LEN || n > BPFDB_MAX_VALUE_LEN)
		return 0;
	switch (slab_class(len)) {
	case 0: SLAB_SLOT(0, ref, p); size = sizeof(struct bpfdb_slab_0); break;
	case 1: SLAB_SLOT(1, ref, p); size = sizeof(struct bpfdb_slab_1); break;
	case 2: SLAB_SLOT(2, ref, p); size = sizeof(struct bpfdb_slab_2); break;
	case 3: SLAB_SLOT(3, ref, p); size = sizeof(struct bpfdb_slab_3); break;
	case 4: SLAB_SLOT(4, ref, p); size = sizeof(struct bpfdb_slab_4); break;
	default: SLAB_SLOT(5, ref, p); size = sizeof(struct bpfdb_slab_5); break;
	}
	if (!p)
		return 0;
	for (i = 0; i < BPFDB_DEADLINE_LEN; i++)
		d |= (__u64)p[(n - BPFDB_DEADLINE_LEN + i) & (size - 1)] << (8 * i);
	return d;
}

/*
 * slab_put allocates a slot for a value of len bytes and copies src into
 * it, or adopts the blob whose header src holds (storage/blob.h): 0 with *ref set (nothing to do for an empty value or a tombstone),
 * BPFDB_ERR_STORE_FULL with *detail set to the class (no page is left),
 * BPFDB_ERR_RETRY (other CPUs kept winning the free list), or
 * BPFDB_ERR_INTERNAL.
 */
static __always_inline int slab_put(const struct bpfdb_value *src, __u32 len, __u32 *ref,
				    __u8 *detail)
{
	long long slot;

	*ref = 0;
	if (len != BPFDB_TOMBSTONE && value_is_blob(len)) {
		slot = blob_adopt((struct bpfdb_value *)src, len);
		if (slot < 0)
			return -slot;
		*ref = slot;
		return BPFDB_OK;
	}
	if (!value_has_slot(len))
		return BPFDB_OK;
	slot = slab_alloc(len);
	if (slot == SLAB_CONTENDED)
		return BPFDB_ERR_RETRY;
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
