/* SPDX-License-Identifier: GPL-2.0 */
/*
 * blob.h: values too large for a slot (more than BPFDB_MAX_VALUE_LEN
 * stored bytes), held in whole pages of value_pages, the store slots are
 * carved from, so they share its one budget. A blob is a head page (its
 * struct bpfdb_blob header, the numbers of its npages data pages, then the
 * value's first bytes) and the data pages, in order. The Go engine builds
 * blobs: it takes the pages from the page free list or control.page_next
 * with the same compare-and-swaps as page_take, writes them through the
 * mmapped array, and passes the header in place of the value's bytes
 * (engine/blob.go). Included by slab.h, whose stack and page functions
 * it uses.
 *
 * Invariants:
 *
 *  1. A blob's pages are Go's until the chain adopts the blob (blob_adopt,
 *     which checks the head page against the header passed and marks the
 *     op's copy adopted), and the store's after: an adopted blob is freed
 *     like a slot (slab_free: GC of its version, an abort or a later write
 *     of the same key in its transaction, a commit that failed after the
 *     adoption). Go frees a blob the chain did not adopt, and only then.
 *  2. The pages of an adopted blob are not written until it is freed, so
 *     a reader that copied them and then found its version still in the
 *     key's record (the version's LSN, unique to it) read them whole: the
 *     version leaves the record before its blob is freed.
 *  3. A blob's pages go back to the page free list together (one push
 *     of the chain they are linked into), and control.blob_pages counts
 *     the pages blobs hold.
 */
#ifndef BPFDB_BLOB_H
#define BPFDB_BLOB_H

#ifndef BPFDB_SLAB_H
#error "blob.h is included by slab.h"
#endif

/* value_is_blob: a value of length len (not a tombstone) is held in a blob. */
static __always_inline int value_is_blob(__u32 len)
{
	return stored_len(len) > BPFDB_MAX_VALUE_LEN;
}

/* blob_head returns the header of the blob whose head page is page, or NULL. */
static __always_inline struct bpfdb_blob *blob_head(__u32 page)
{
	return bpf_map_lookup_elem(&value_pages, &page);
}

/* blob_data_pages is how many data pages a blob of stored bytes needs: the
 * head page holds BPFDB_PAGE_SIZE - BPFDB_BLOB_HEAD of them less 4 for
 * each data page's number, and a data page BPFDB_PAGE_SIZE. */
static __always_inline __u32 blob_data_pages(__u32 stored)
{
	const __u32 head_room = BPFDB_PAGE_SIZE - BPFDB_BLOB_HEAD;

	if (stored <= head_room)
		return 0;
	return (stored - head_room + BPFDB_PAGE_SIZE - 4 - 1) / (BPFDB_PAGE_SIZE - 4);
}

/*
 * blob_adopt takes the blob whose header src holds for a write of len
 * bytes (invariant 1): its head page, or minus BPFDB_ERR_BAD_REQUEST when
 * the header does not describe a blob Go built for that length. Global:
 * verified once.
 */
__attribute__((noinline)) long long blob_adopt(struct bpfdb_value *src, __u32 len)
{
	struct bpfdb_control *ctl = control_block();
	struct bpfdb_blob *b, *h;

	if (!ctl || !src)
		return -BPFDB_ERR_INTERNAL;
	b = (struct bpfdb_blob *)src->b;
	if (b->len != len || b->adopted || stored_len(len) > BPFDB_MAX_BLOB_LEN ||
	    b->npages != blob_data_pages(stored_len(len)) || b->page >= READ_ONCE_U64(ctl->page_cap))
		return -BPFDB_ERR_BAD_REQUEST;
	h = blob_head(b->page);
	if (!h || h->page != b->page || h->id != b->id || h->len != len || h->npages != b->npages ||
	    h->deadline != b->deadline)
		return -BPFDB_ERR_BAD_REQUEST;
	b->adopted = 1;
	return b->page;
}

/* blob_link_cb links the chain's tail, c->pushed, to data page i of the
 * blob whose head page is c->ref (invariant 3); BLOB_BROKEN: a page
 * number was out of the store. */
#define BLOB_BROKEN 0xffffffffU

static long blob_link_cb(__u32 i, void *data)
{
	struct stack_push_ctx *c = data;
	struct bpfdb_blob *h = blob_head(c->ref);
	__u32 *list, *w, next;

	if (!h || i >= BPFDB_BLOB_MAX_PAGES)
		return 1;
	barrier_var(h); /* keeps the add after the null check, as the verifier needs */
	list = (__u32 *)((__u8 *)h + BPFDB_BLOB_HEAD);
	next = list[i];
	w = page_word(c->pushed);
	if (!w || !page_word(next)) {
		c->pushed = BLOB_BROKEN;
		return 1;
	}
	*(volatile __u32 *)w = next + 1;
	c->pushed = next;
	return 0;
}

/*
 * blob_chain links the pages of the adopted blob whose head page is c->ref
 * into one chain, head first (invariant 3), for slab_free to push on the
 * page free list at once, and returns the first 4 bytes of the chain's
 * tail, or NULL (pages out of the store: lost). It counts the pages out of
 * control.blob_pages first (a chain it then fails to push is lost).
 * Inlined in slab_free, a global function, with slab_free's push context:
 * a call of its own would be one BPF call frame too many for the deepest
 * path (GC in an autocommit write, 8 frames), and a context of its own
 * more stack than its deepest callers have left.
 */
static __always_inline __u32 *blob_chain(struct bpfdb_control *ctl, struct stack_push_ctx *c)
{
	struct bpfdb_blob *h = blob_head(c->ref);
	__u32 npages;

	if (!h || h->npages > BPFDB_BLOB_MAX_PAGES)
		return NULL;
	npages = h->npages;
	__sync_fetch_and_add(&ctl->blob_pages, -(__s64)(npages + 1));
	c->pushed = c->ref;
	bpf_loop(npages, blob_link_cb, c, 0);
	if (c->pushed == BLOB_BROKEN)
		return NULL;
	return page_word(c->pushed);
}

/* blob_deadline returns the deadline in the header of the blob at page (0: none). */
static __always_inline __u64 blob_deadline(__u32 page)
{
	struct bpfdb_blob *h = blob_head(page);

	return h ? h->deadline : 0;
}

/* blob_load copies the header of the blob at page into dst: what stands for its bytes. */
static __always_inline int blob_load(struct bpfdb_value *dst, __u32 page)
{
	struct bpfdb_blob *h = blob_head(page);

	if (!h)
		return -1;
	__builtin_memcpy(dst->b, h, sizeof(*h));
	return 0;
}

#endif /* BPFDB_BLOB_H */
