/* SPDX-License-Identifier: MIT */
/*
 * A device's fault buffer and the first three steps of NVIDIA's service
 * loop (managed-memory.md §1.1): the ring the device writes, fetching at
 * most a batch, coalescing entries on the same page, sorting the
 * representatives. Pure data structure code: eng->lock is held by callers.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

int faultbuf_init(struct dmm_engine *eng, struct faultbuf *fb, unsigned int cap)
{
	fb->ring = eng_calloc(eng, cap, sizeof(*fb->ring));
	if (!fb->ring)
		return -ENOMEM;
	fb->cap = cap;
	fb->get = fb->put = fb->count = 0;
	return 0;
}

void faultbuf_fini(struct faultbuf *fb)
{
	free(fb->ring);
	fb->ring = NULL;
	fb->cap = fb->count = 0;
}

/* -ENOSPC when the ring is full: the entry is lost (a hardware overflow). */
int faultbuf_push(struct faultbuf *fb, const struct fentry *e)
{
	if (fb->count == fb->cap)
		return -ENOSPC;
	fb->ring[fb->put] = *e;
	fb->put = (fb->put + 1) % fb->cap;
	fb->count++;
	return 0;
}

/* Move up to @max entries, oldest first, to @out. */
unsigned int faultbuf_fetch(struct faultbuf *fb, struct fentry *out, unsigned int max)
{
	unsigned int n = 0;

	while (n < max && fb->count) {
		out[n++] = fb->ring[fb->get];
		fb->get = (fb->get + 1) % fb->cap;
		fb->count--;
	}
	return n;
}

/* BATCH_FLUSH: drop what was not fetched (the stalled accesses fault
 * again after the replay). Returns the entries dropped. */
unsigned int faultbuf_flush(struct faultbuf *fb)
{
	unsigned int n = fb->count;

	fb->get = fb->put;
	fb->count = 0;
	return n;
}

static void merge_into(struct fentry *rep, struct fentry *e)
{
	if (e->access > rep->access)
		rep->access = e->access;
	rep->access_mask |= e->access_mask;
	rep->instances += e->instances;
	e->filtered = true;
}

/*
 * Coalesce in fetch order: an entry merges into the last representative
 * from its uTLB when both are on the same page, or else into the batch's
 * last representative on the same page when it is no more intrusive. The
 * representatives are compacted to the front, in order; returns how many.
 * @scratch holds 2 * n words (the caller's, through the POLICY injection
 * site); NULL, no scratch memory: every entry is kept (correct, slower).
 */
unsigned int fault_coalesce(struct fentry *e, unsigned int n, uint32_t *scratch)
{
	uint32_t *utlb = scratch, *last = scratch ? scratch + n : NULL;
	unsigned int nu = 0, lastrep = n, k = 0;

	if (!scratch)
		return n;
	for (unsigned int i = 0; i < n; i++) {
		unsigned int u;

		for (u = 0; u < nu && utlb[u] != e[i].utlb; u++)
			;
		if (u < nu && e[last[u]].addr == e[i].addr) {
			merge_into(&e[last[u]], &e[i]);
		} else if (lastrep < n && e[lastrep].addr == e[i].addr && e[i].access <= e[lastrep].access) {
			merge_into(&e[lastrep], &e[i]);
		} else {
			if (u == nu)
				utlb[nu++] = e[i].utlb;
			last[u] = i;
			lastrep = i;
		}
	}
	for (unsigned int i = 0; i < n; i++) {
		/* Indexes in last[] are no longer needed: compact. */
		if (!e[i].filtered)
			e[k++] = e[i];
	}
	return k;
}

static int fentry_cmp(const void *a, const void *b)
{
	const struct fentry *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->access != y->access)
		return x->access > y->access ? -1 : 1; /* most intrusive first */
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Sort by (address, access most intrusive first, fault id): one VA space
 * per engine, so NVIDIA's (VA space, GPU, address, access) order. */
void fault_sort(struct fentry *e, unsigned int n)
{
	qsort(e, n, sizeof(*e), fentry_cmp);
}
