/* SPDX-License-Identifier: MIT */
/*
 * The system frame allocator.
 *
 * Free frames sit on NR_SHARDS free lists, each with its own lock; a thread
 * allocates from and frees to its own shard (dmm_shard()), so threads on
 * different CPUs rarely meet. Frames that were never used are handed out
 * before anything is stolen from another shard: each shard takes them from
 * the global bump pointer (next_fresh) a batch at a time, so the pointer's
 * cache line is touched once per FRESH_BATCH allocations. Fresh frames are
 * still zero and untouched, so they need no clearing and the arena is only
 * ever touched where it is used. Running out is a normal result:
 * frame_alloc() returns NULL and callers turn it into -ENOMEM /
 * VM_FAULT_OOM.
 *
 * Large folios (order FOLIO_MIN_LARGE_ORDER..FOLIO_MAX_ORDER, see
 * docs/large-folios.md) come from free aligned blocks, in this order:
 *  1. a free block of the order, else the smallest larger one, split
 *     buddy-fashion (the unused halves go back as blocks of lower orders);
 *  2. never-used memory: the bump pointer moves up to the next aligned pfn
 *     and 2^order frames are taken; the frames skipped to get there go
 *     onto the caller's free list as order-0 frames.
 * A large folio is freed whole, onto the block list of its order. Blocks
 * are never merged and order-0 frames never gather into blocks (no
 * compaction): an order-0 allocation that finds every list and the fresh
 * memory empty breaks the smallest free block instead. Each allocation of
 * a large folio asks the THP_ALLOC injection site first, and an order-9
 * one also takes the failures armed by dmm_system_fail_thp_alloc.
 */
#include "internal.h"

#define FRESH_BATCH 64

void frames_init(struct dmm_system *sys)
{
	for (unsigned int i = 0; i < NR_SHARDS; i++) {
		pthread_mutex_init(&sys->shards[i].lock, NULL);
		sys->shards[i].head = 0;
		sys->shards[i].count = 0;
		sys->shards[i].fresh_next = sys->shards[i].fresh_end = 0;
		atomic_store(&sys->shards[i].used, 0);
	}
	atomic_store(&sys->next_fresh, 1);
	pthread_mutex_init(&sys->large_free.lock, NULL);
	pthread_mutex_init(&sys->deferred_split.lock, NULL);
	list_init(&sys->deferred_split.queue);
	sys->deferred_split.len = 0;
	memset(sys->large_free.head, 0, sizeof(sys->large_free.head));
	sys->large_free.frames = 0;
}

/* Large free blocks (large_free.lock held). A block is 2^order free frames
 * (PG_free, no compound data); its head's next_free links the list and its
 * index says the order. */
static void block_push(struct dmm_system *sys, uint64_t pfn, unsigned int order)
{
	struct dmm_page *h = &sys->frames[pfn];

	h->index = order;
	h->next_free = sys->large_free.head[order];
	sys->large_free.head[order] = pfn;
	sys->large_free.frames += 1ull << order;
}

/* Pop a block of order @order, splitting the smallest larger one; 0 = none. */
static uint64_t block_pop(struct dmm_system *sys, unsigned int order)
{
	unsigned int k = order;
	uint64_t pfn;

	while (k <= FOLIO_MAX_ORDER && !sys->large_free.head[k])
		k++;
	if (k > FOLIO_MAX_ORDER)
		return 0;
	pfn = sys->large_free.head[k];
	sys->large_free.head[k] = sys->frames[pfn].next_free;
	sys->large_free.frames -= 1ull << k;
	while (k > order) {
		k--;
		block_push(sys, pfn + (1ull << k), k);
	}
	sys->frames[pfn].index = 0;
	sys->frames[pfn].next_free = 0;
	return pfn;
}

/* Every list and the fresh memory are empty: break the smallest free block
 * for an order-0 frame; the rest of it goes onto @sh's list. */
static struct dmm_page *frame_break_block(struct dmm_system *sys, struct dmm_frame_shard *sh)
{
	uint64_t pfn, n = 0;
	unsigned int k;

	pthread_mutex_lock(&sys->large_free.lock);
	for (k = FOLIO_MIN_LARGE_ORDER; k <= FOLIO_MAX_ORDER && !sys->large_free.head[k]; k++)
		;
	pfn = k <= FOLIO_MAX_ORDER ? block_pop(sys, k) : 0;
	pthread_mutex_unlock(&sys->large_free.lock);
	if (!pfn)
		return NULL;
	n = 1ull << k;
	pthread_mutex_lock(&sh->lock);
	for (uint64_t i = 1; i < n; i++) {
		sys->frames[pfn + i].next_free = sh->head;
		sh->head = pfn + i;
		sh->count++;
	}
	pthread_mutex_unlock(&sh->lock);
	return &sys->frames[pfn];
}

/* Take a frame from the shard (lock held): its list, else its fresh run. */
static struct dmm_page *shard_take(struct dmm_system *sys, struct dmm_frame_shard *sh, bool *fresh)
{
	struct dmm_page *p;

	if (sh->head) {
		p = &sys->frames[sh->head];
		sh->head = p->next_free;
		sh->count--;
		*fresh = false;
		return p;
	}
	if (sh->fresh_next < sh->fresh_end) {
		*fresh = true;
		return &sys->frames[sh->fresh_next++];
	}
	return NULL;
}

/* Refill the shard's fresh run from the global bump pointer (lock held). */
static bool shard_refill(struct dmm_system *sys, struct dmm_frame_shard *sh)
{
	uint64_t first = atomic_fetch_add_explicit(&sys->next_fresh, FRESH_BATCH, memory_order_relaxed);

	if (first > sys->nr_frames)
		return false;
	sh->fresh_next = first;
	sh->fresh_end = DMM_MIN(first + FRESH_BATCH, sys->nr_frames + 1);
	return true;
}

static struct dmm_page *shard_alloc(struct dmm_system *sys, struct dmm_frame_shard *sh, bool refill, bool *fresh)
{
	struct dmm_page *p;

	pthread_mutex_lock(&sh->lock);
	p = shard_take(sys, sh, fresh);
	if (!p && refill && shard_refill(sys, sh))
		p = shard_take(sys, sh, fresh);
	pthread_mutex_unlock(&sh->lock);
	return p;
}

struct dmm_page *frame_alloc(struct dmm_system *sys, unsigned int gfp)
{
	unsigned int me = dmm_shard();
	struct dmm_page *p;
	bool fresh = false;

	if (should_fail(sys, DMM_INJECT_FRAME)) {
		dmm_stat_inc(sys, frames_alloc_fail);
		return NULL;
	}
	p = shard_alloc(sys, &sys->shards[me], true, &fresh);
	for (unsigned int i = 1; !p && i < NR_SHARDS; i++)
		p = shard_alloc(sys, &sys->shards[(me + i) % NR_SHARDS], false, &fresh);
	if (unlikely(!p))
		p = frame_break_block(sys, &sys->shards[me]);
	if (!p) {
		dmm_stat_inc(sys, frames_alloc_fail);
		return NULL;
	}
	atomic_fetch_add_explicit(&sys->shards[me].used, 1, memory_order_relaxed);
	dmm_stat_inc(sys, frames_alloc);
	DMM_BUG_ON(page_ref_count(p) != 0 || page_mapcount(p) != 0);
	p->mapping = NULL;
	p->index = 0;
	p->next_free = 0;
	atomic_store_explicit(&p->pincount, 0, memory_order_relaxed);
	atomic_store_explicit(&p->flags, 0, memory_order_relaxed);
	atomic_store_explicit(&p->refcount, 1, memory_order_release);
	if ((gfp & GFP_ZERO) && !fresh && sys->arena)
		clear_page_mem(page_address(sys, p));
	return p;
}

void frame_free(struct dmm_system *sys, struct dmm_page *p)
{
	struct dmm_frame_shard *sh = &sys->shards[dmm_shard()];
	uint64_t pfn = page_to_pfn(sys, p);

	DMM_BUG_ON(pfn == 0 || page_mapcount(p) != 0 || page_locked(p));
	p->mapping = NULL;
	p->index = 0;
	atomic_store_explicit(&p->flags, PG_free, memory_order_relaxed);
	pthread_mutex_lock(&sh->lock);
	p->next_free = sh->head;
	sh->head = pfn;
	sh->count++;
	pthread_mutex_unlock(&sh->lock);
	atomic_fetch_sub_explicit(&sh->used, 1, memory_order_relaxed);
	dmm_stat_inc(sys, frames_free);
}

int64_t frames_used(struct dmm_system *sys)
{
	int64_t n = 0;

	for (unsigned int i = 0; i < NR_SHARDS; i++)
		n += atomic_load_explicit(&sys->shards[i].used, memory_order_relaxed);
	return n;
}

void frame_for_each_free(struct dmm_system *sys, void (*fn)(uint64_t pfn, bool fresh, void *arg), void *arg)
{
	for (unsigned int i = 0; i < NR_SHARDS; i++) {
		struct dmm_frame_shard *sh = &sys->shards[i];
		uint64_t n = 0;

		pthread_mutex_lock(&sh->lock);
		for (uint64_t pfn = sh->head; pfn && n <= sys->nr_frames; pfn = sys->frames[pfn].next_free, n++)
			fn(pfn, false, arg);
		for (uint64_t pfn = sh->fresh_next; pfn < sh->fresh_end; pfn++)
			fn(pfn, true, arg);
		pthread_mutex_unlock(&sh->lock);
	}
	pthread_mutex_lock(&sys->large_free.lock);
	for (unsigned int k = 0; k <= FOLIO_MAX_ORDER; k++) {
		uint64_t n = 0;

		for (uint64_t pfn = sys->large_free.head[k]; pfn && n <= sys->nr_frames;
		     pfn = sys->frames[pfn].next_free, n += 1ull << k) {
			if (sys->frames[pfn].index != k)
				fn(0, false, arg); /* reported as a bad pfn */
			for (uint64_t i = 0; i < (1ull << k); i++)
				fn(pfn + i, false, arg);
		}
	}
	pthread_mutex_unlock(&sys->large_free.lock);
	/* Never-used frames not handed to a shard yet are free too. */
	for (uint64_t pfn = atomic_load(&sys->next_fresh); pfn <= sys->nr_frames; pfn++)
		fn(pfn, true, arg);
}

uint64_t frame_nr_listed(struct dmm_system *sys)
{
	uint64_t n = 0, next = atomic_load(&sys->next_fresh);

	for (unsigned int i = 0; i < NR_SHARDS; i++) {
		pthread_mutex_lock(&sys->shards[i].lock);
		n += sys->shards[i].count + (sys->shards[i].fresh_end - sys->shards[i].fresh_next);
		pthread_mutex_unlock(&sys->shards[i].lock);
	}
	pthread_mutex_lock(&sys->large_free.lock);
	n += sys->large_free.frames;
	pthread_mutex_unlock(&sys->large_free.lock);
	return n + (next <= sys->nr_frames ? sys->nr_frames + 1 - next : 0);
}

void frame_large_listed(struct dmm_system *sys, uint64_t *walked, uint64_t *counted)
{
	uint64_t n = 0;

	pthread_mutex_lock(&sys->large_free.lock);
	for (unsigned int k = 0; k <= FOLIO_MAX_ORDER; k++) {
		uint64_t blocks = 0;

		for (uint64_t pfn = sys->large_free.head[k]; pfn && blocks <= sys->nr_frames;
		     pfn = sys->frames[pfn].next_free, blocks++)
			n += 1ull << k;
	}
	*walked = n;
	*counted = sys->large_free.frames;
	pthread_mutex_unlock(&sys->large_free.lock);
}

/* Never-used frames [from, to) skipped by an aligned allocation: onto the
 * shard's list as ordinary free frames (they are still zero). */
static void shard_put_skipped(struct dmm_system *sys, struct dmm_frame_shard *sh, uint64_t from, uint64_t to)
{
	if (from >= to)
		return;
	pthread_mutex_lock(&sh->lock);
	for (uint64_t pfn = from; pfn < to; pfn++) {
		struct dmm_page *p = &sys->frames[pfn];

		atomic_store_explicit(&p->flags, PG_free, memory_order_relaxed);
		p->next_free = sh->head;
		sh->head = pfn;
		sh->count++;
	}
	pthread_mutex_unlock(&sh->lock);
}

void folio_prep_large(struct dmm_page *f, unsigned int order)
{
	uint64_t n = 1ull << order;

	DMM_BUG_ON(order < FOLIO_MIN_LARGE_ORDER || order > FOLIO_MAX_ORDER);
	for (uint64_t i = 1; i < n; i++) {
		struct dmm_page *t = &f[i];

		DMM_BUG_ON(atomic_load_explicit(&t->refcount, memory_order_relaxed) ||
			   atomic_load_explicit(&t->mapcount, memory_order_relaxed));
		t->mapping = NULL;
		t->index = 0;
		atomic_store_explicit(&t->pincount, 0, memory_order_relaxed);
		atomic_store_explicit(&t->flags, page_flags(t) & PG_zone_device, memory_order_relaxed);
		atomic_store_explicit(&t->compound_head, (uintptr_t)f | 1, memory_order_relaxed);
	}
	atomic_store_explicit(&f[1].large_mapcount, 0, memory_order_relaxed);
	atomic_store_explicit(&f[1].entire_mapcount, 0, memory_order_relaxed);
	atomic_store_explicit(&f[1].nr_pages_mapped, 0, memory_order_relaxed);
	list_init(&f[2].deferred_list);
	atomic_store_explicit(&f->compound_head, (uintptr_t)order << 1, memory_order_release);
}

/* dmm_system_fail_thp_alloc: take one of the armed order-9 failures. */
static bool thp_alloc_armed_fail(struct dmm_system *sys)
{
	unsigned int left = atomic_load_explicit(&sys->thp_fail_next, memory_order_relaxed);

	while (left)
		if (atomic_compare_exchange_weak_explicit(&sys->thp_fail_next, &left, left - 1,
							  memory_order_relaxed, memory_order_relaxed)) {
			atomic_fetch_add_explicit(&sys->inject[DMM_INJECT_THP_ALLOC].injected, 1,
						  memory_order_relaxed);
			return true;
		}
	return false;
}

struct dmm_page *folio_alloc(struct dmm_system *sys, unsigned int order, unsigned int gfp)
{
	uint64_t n = 1ull << order, old, start;
	struct dmm_page *f;
	bool fresh = false;

	if (likely(order == 0))
		return frame_alloc(sys, gfp);
	DMM_BUG_ON(order < FOLIO_MIN_LARGE_ORDER || order > FOLIO_MAX_ORDER);
	if (should_fail(sys, DMM_INJECT_THP_ALLOC) || (order == FOLIO_MAX_ORDER && thp_alloc_armed_fail(sys)))
		goto fail;
	pthread_mutex_lock(&sys->large_free.lock);
	start = block_pop(sys, order);
	pthread_mutex_unlock(&sys->large_free.lock);
	if (!start) {
		old = atomic_load_explicit(&sys->next_fresh, memory_order_relaxed);
		do {
			start = (old + n - 1) & ~(n - 1);
			if (start + n - 1 > sys->nr_frames)
				goto fail;
		} while (!atomic_compare_exchange_weak_explicit(&sys->next_fresh, &old, start + n,
								memory_order_relaxed, memory_order_relaxed));
		shard_put_skipped(sys, &sys->shards[dmm_shard()], old, start);
		fresh = true;
	}
	atomic_fetch_add_explicit(&sys->shards[dmm_shard()].used, (int64_t)n, memory_order_relaxed);
	dmm_stat_add(sys, frames_alloc, n);
	f = &sys->frames[start];
	f->mapping = NULL;
	f->index = 0;
	f->next_free = 0;
	atomic_store_explicit(&f->pincount, 0, memory_order_relaxed);
	atomic_store_explicit(&f->flags, 0, memory_order_relaxed);
	folio_prep_large(f, order);
	/* Never-used memory is zero already; a reused block is not. */
	if ((gfp & GFP_ZERO) && !fresh && sys->arena)
		for (uint64_t i = 0; i < n; i++)
			clear_page_mem(page_address(sys, &f[i]));
	atomic_store_explicit(&f->refcount, 1, memory_order_release);
	return f;
fail:
	dmm_stat_inc(sys, frames_alloc_fail);
	return NULL;
}

void folio_free_large(struct dmm_system *sys, struct dmm_page *f)
{
	unsigned int order = folio_order(f);
	uint64_t n = 1ull << order, pfn = page_to_pfn(sys, f);

	DMM_BUG_ON(folio_mapcount(f) || folio_entire_mapcount(f) || folio_pincount(f) || page_locked(f) ||
		   !list_empty(&f[2].deferred_list));
	for (uint64_t i = 0; i < n; i++) {
		DMM_BUG_ON(atomic_load_explicit(&f[i].mapcount, memory_order_relaxed));
		atomic_store_explicit(&f[i].compound_head, 0, memory_order_relaxed);
		f[i].mapping = NULL;
		f[i].index = 0;
		atomic_store_explicit(&f[i].flags, PG_free, memory_order_relaxed);
	}
	pthread_mutex_lock(&sys->large_free.lock);
	block_push(sys, pfn, order);
	pthread_mutex_unlock(&sys->large_free.lock);
	atomic_fetch_sub_explicit(&sys->shards[dmm_shard()].used, (int64_t)n, memory_order_relaxed);
	dmm_stat_add(sys, frames_free, n);
}
