/* SPDX-License-Identifier: MIT */
/*
 * The system frame allocator.
 *
 * Free frames sit on NR_SHARDS free lists, each with its own lock; a thread
 * allocates from and frees to its own shard (dmm_shard()), so threads on
 * different CPUs rarely meet. Frames that were never used are handed out
 * from a bump pointer (next_fresh) before anything is stolen from another
 * shard: they are still zero and untouched, so a fresh frame needs no
 * clearing and the arena is only ever touched where it is used. Running
 * out is a normal result: frame_alloc() returns NULL and callers turn it
 * into -ENOMEM / VM_FAULT_OOM.
 */
#include "internal.h"

void frames_init(struct dmm_system *sys)
{
	for (unsigned int i = 0; i < NR_SHARDS; i++) {
		pthread_mutex_init(&sys->shards[i].lock, NULL);
		sys->shards[i].head = 0;
		sys->shards[i].count = 0;
	}
	atomic_store(&sys->next_fresh, 1);
	atomic_store(&sys->nr_used, 0);
}

static struct dmm_page *shard_pop(struct dmm_system *sys, struct dmm_frame_shard *sh)
{
	struct dmm_page *p = NULL;

	pthread_mutex_lock(&sh->lock);
	if (sh->head) {
		p = &sys->frames[sh->head];
		sh->head = p->next_free;
		sh->count--;
	}
	pthread_mutex_unlock(&sh->lock);
	return p;
}

static struct dmm_page *fresh_frame(struct dmm_system *sys)
{
	uint64_t pfn = atomic_load_explicit(&sys->next_fresh, memory_order_relaxed);

	while (pfn <= sys->nr_frames) {
		if (atomic_compare_exchange_weak(&sys->next_fresh, &pfn, pfn + 1))
			return &sys->frames[pfn];
	}
	return NULL;
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
	p = shard_pop(sys, &sys->shards[me]);
	if (!p) {
		p = fresh_frame(sys);
		fresh = p != NULL;
	}
	for (unsigned int i = 1; !p && i < NR_SHARDS; i++)
		p = shard_pop(sys, &sys->shards[(me + i) % NR_SHARDS]);
	if (!p) {
		dmm_stat_inc(sys, frames_alloc_fail);
		return NULL;
	}
	atomic_fetch_add_explicit(&sys->nr_used, 1, memory_order_relaxed);
	dmm_stat_inc(sys, frames_alloc);
	DMM_BUG_ON(page_ref_count(p) != 0 || page_mapcount(p) != 0);
	p->mapping = NULL;
	p->index = 0;
	p->next_free = 0;
	atomic_store_explicit(&p->pincount, 0, memory_order_relaxed);
	atomic_store_explicit(&p->flags, 0, memory_order_relaxed);
	atomic_store_explicit(&p->refcount, 1, memory_order_release);
	if ((gfp & GFP_ZERO) && !fresh)
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
	atomic_fetch_sub_explicit(&sys->nr_used, 1, memory_order_relaxed);
	dmm_stat_inc(sys, frames_free);
}

void frame_for_each_free(struct dmm_system *sys, void (*fn)(uint64_t pfn, void *arg), void *arg)
{
	for (unsigned int i = 0; i < NR_SHARDS; i++) {
		struct dmm_frame_shard *sh = &sys->shards[i];
		uint64_t n = 0;

		pthread_mutex_lock(&sh->lock);
		for (uint64_t pfn = sh->head; pfn && n <= sys->nr_frames; pfn = sys->frames[pfn].next_free, n++)
			fn(pfn, arg);
		pthread_mutex_unlock(&sh->lock);
	}
	/* Never-used frames are free too. */
	for (uint64_t pfn = atomic_load(&sys->next_fresh); pfn <= sys->nr_frames; pfn++)
		fn(pfn, arg);
}

uint64_t frame_nr_listed(struct dmm_system *sys)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < NR_SHARDS; i++) {
		pthread_mutex_lock(&sys->shards[i].lock);
		n += sys->shards[i].count;
		pthread_mutex_unlock(&sys->shards[i].lock);
	}
	return n + (sys->nr_frames + 1 - atomic_load(&sys->next_fresh));
}
