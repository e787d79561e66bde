/* SPDX-License-Identifier: MIT */
/*
 * The 2 MiB managed blocks (NVIDIA's VA blocks, managed-memory.md §1.0):
 * per processor a residency and a mapping mask, the populated and pinned
 * masks, pin deadlines, the policy's per-block data; a hash table keyed by
 * the block's range and 2 MiB index (two small ranges may share a 2 MiB
 * block of addresses: each has its own, smaller, block); the read-only view the policy hooks get. A
 * block exists from the first fault in it until its range goes away.
 * Everything here runs under eng->lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

static size_t slot_of(const struct block_table *t, const struct mrange *r, uint64_t start)
{
	uint64_t h = ((start >> DMM_MBLOCK_SHIFT) ^ ((uintptr_t)r >> 4)) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 7) & (t->cap - 1);
}

/* The block of range @r holding @addr, or NULL. */
struct mblock *block_lookup(struct dmm_engine *eng, const struct mrange *r, uint64_t addr)
{
	struct block_table *t = &eng->blocks;
	uint64_t start = addr & ~(DMM_MBLOCK_SIZE - 1);

	if (!t->cap)
		return NULL;
	for (size_t i = slot_of(t, r, start);; i = (i + 1) & (t->cap - 1)) {
		if (!t->slots[i])
			return NULL;
		if (t->slots[i]->start == start && t->slots[i]->range == r)
			return t->slots[i];
	}
}

static void table_insert(struct block_table *t, struct mblock *b)
{
	size_t i = slot_of(t, b->range, b->start);

	while (t->slots[i])
		i = (i + 1) & (t->cap - 1);
	t->slots[i] = b;
	t->nr++;
}

static int table_grow(struct dmm_engine *eng)
{
	struct block_table *t = &eng->blocks, n = { 0 };

	if ((t->nr + 1) * 2 <= t->cap)
		return 0;
	n.cap = t->cap ? t->cap * 2 : 64;
	n.slots = eng_calloc(eng, n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i])
			table_insert(&n, t->slots[i]);
	free(t->slots);
	*t = n;
	return 0;
}

/* The block of @addr in range @r, created on first use. NULL: no memory. */
struct mblock *block_get(struct dmm_engine *eng, struct mrange *r, uint64_t addr)
{
	uint64_t start = addr & ~(DMM_MBLOCK_SIZE - 1), end = start + DMM_MBLOCK_SIZE;
	struct mblock *b = block_lookup(eng, r, addr);

	if (b)
		return b;
	if (table_grow(eng))
		return NULL;
	b = eng_calloc(eng, 1, sizeof(*b) + 2 * eng->nr_procs * sizeof(struct dmm_pmask));
	if (!b)
		return NULL;
	b->start = start;
	b->range = r;
	b->first = (unsigned int)(((r->start > start ? r->start : start) - start) / DMM_PAGE_SIZE);
	b->npages = (unsigned int)(((r->end < end ? r->end : end) - start) / DMM_PAGE_SIZE) - b->first;
	b->pin_until = UINT64_MAX;
	b->stale = true; /* learn where its pages are from the page tables */
	table_insert(&eng->blocks, b);
	return b;
}

static void block_free(struct dmm_engine *eng, struct mblock *b)
{
	if (b->policy_data && eng->ops->block_free)
		eng->ops->block_free(eng->pctx, b->policy_data);
	free(b->pin_deadline);
	free(b->pin_proc);
	free(b);
}

void block_remove(struct dmm_engine *eng, struct mblock *b)
{
	struct block_table *t = &eng->blocks;
	size_t i = slot_of(t, b->range, b->start), j;

	while (t->slots[i] != b)
		i = (i + 1) & (t->cap - 1);
	t->slots[i] = NULL;
	t->nr--;
	/* Re-place the rest of the cluster (linear probing deletion). */
	for (j = (i + 1) & (t->cap - 1); t->slots[j]; j = (j + 1) & (t->cap - 1)) {
		struct mblock *x = t->slots[j];

		t->slots[j] = NULL;
		t->nr--;
		table_insert(t, x);
	}
	if (b->users)
		b->removed = true; /* a CPU fault still uses it: block_put frees it */
	else
		block_free(eng, b);
}

/* Drop a reference a CPU fault took (b->users++) under eng->lock. */
void block_put(struct dmm_engine *eng, struct mblock *b)
{
	if (!--b->users && b->removed)
		block_free(eng, b);
}

void blocks_free(struct dmm_engine *eng)
{
	struct mblock *b;
	size_t i;

	blocks_for_each(eng, b, i)
		block_free(eng, b);
	free(eng->blocks.slots);
	memset(&eng->blocks, 0, sizeof(eng->blocks));
}

void block_view(struct dmm_engine *eng, struct mblock *b, uint64_t now, struct dmm_block_view *v)
{
	v->start = b->start;
	v->first = b->first;
	v->npages = b->npages;
	v->nr_procs = eng->nr_procs;
	v->resident = &b->masks[0];
	v->mapped = &b->masks[eng->nr_procs];
	v->populated = &b->populated;
	v->pinned = &b->pinned;
	v->attrs = &b->range->attrs;
	v->tunables = b->range->tun;
	v->policy_data = &b->policy_data;
	v->now = now;
}

/* Pin @page at @proc until @until. -ENOMEM: the caller demotes the PIN to
 * a THROTTLE, as NVIDIA does when it cannot allocate a pin. */
int block_pin(struct dmm_engine *eng, struct mblock *b, unsigned int page, unsigned int proc, uint64_t until)
{
	if (!b->pin_deadline) {
		b->pin_deadline = eng_calloc(eng, DMM_MBLOCK_PAGES, sizeof(*b->pin_deadline));
		b->pin_proc = eng_calloc(eng, DMM_MBLOCK_PAGES, sizeof(*b->pin_proc));
		if (!b->pin_deadline || !b->pin_proc) {
			free(b->pin_deadline);
			free(b->pin_proc);
			b->pin_deadline = NULL;
			b->pin_proc = NULL;
			return -ENOMEM;
		}
	}
	dpm_set(&b->pinned, page);
	b->pin_deadline[page] = until;
	b->pin_proc[page] = (unsigned char)proc;
	if (until < b->pin_until)
		b->pin_until = until;
	return 0;
}

void block_unpin(struct mblock *b, unsigned int page)
{
	dpm_clear(&b->pinned, page);
	b->pin_until = UINT64_MAX;
	for (unsigned int i = dpm_next(&b->pinned, 0); i < DMM_MBLOCK_PAGES; i = dpm_next(&b->pinned, i + 1))
		if (b->pin_deadline[i] < b->pin_until)
			b->pin_until = b->pin_deadline[i];
}

/* The processor holding @page, or DMM_PROC_NONE. */
unsigned int block_where(struct dmm_engine *eng, struct mblock *b, unsigned int page)
{
	for (unsigned int p = 0; p < eng->nr_procs; p++)
		if (dmm_pmask_test(blk_res(b, p), page))
			return p;
	return DMM_PROC_NONE;
}
