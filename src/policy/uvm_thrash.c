/* SPDX-License-Identifier: MIT */
/*
 * NVIDIA's thrashing detection and mitigation (shared/spec/managed-memory.md
 * section 1.4; uvm_perf_thrashing.c). Detection counts, per page, the
 * MIGRATION and REVOCATION events that follow each other within the lapse;
 * a page whose count reaches the threshold thrashes. Times are virtual
 * nanoseconds given by the caller.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uvm.h"

_Static_assert(sizeof(struct uvm_thrash_page) <= 48, "per-page thrashing state over budget");


void uvm_thrash_space_init(struct uvm_thrash_space *sp, const struct uvm_params *params)
{
	memset(sp, 0, sizeof(*sp));
	sp->lapse_ns = (uint64_t)params->thrashing_lapse_usec * 1000;
}

void uvm_thrash_block_init(struct uvm_thrash_block *blk, unsigned int npages)
{
	memset(blk, 0, sizeof(*blk));
	blk->npages = npages > PMASK_PAGES ? PMASK_PAGES : npages;
	blk->last_proc = UVM_PROC_NONE;
}

static void page_init(struct uvm_thrash_page *pg)
{
	memset(pg, 0, sizeof(*pg));
	pg->pin_deadline = UVM_THRASH_NO_DEADLINE;
	pg->pinned_residency = UVM_PROC_NONE;
	pg->do_not_throttle = UVM_PROC_NONE;
}

/* Free the per-page state and forget the thrashing and pinned pages. */
static void block_reset(struct uvm_thrash_block *blk)
{
	free(blk->pages);
	blk->pages = NULL;
	pmask_zero(&blk->thrashing);
	pmask_zero(&blk->pinned);
	blk->num_thrashing = 0;
	blk->num_pinned = 0;
}

void uvm_thrash_block_fini(struct uvm_thrash_block *blk)
{
	block_reset(blk);
}

static uint64_t stamp_ns(const struct uvm_thrash_page *pg)
{
	return (uint64_t)pg->last_stamp << UVM_THRASH_STAMP_SHIFT;
}

static bool has_events(const struct uvm_thrash_page *pg)
{
	return pg->has_migration_events || pg->has_revocation_events;
}

/* Forget everything about page i, its pin included. */
static void page_reset(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk, unsigned int i)
{
	struct uvm_thrash_page *pg = &blk->pages[i];

	if (pg->pinned) {
		pmask_clear(&blk->pinned, i);
		blk->num_pinned--;
		sp->unpins++;
	}
	if (pmask_test(&blk->thrashing, i)) {
		pmask_clear(&blk->thrashing, i);
		blk->num_thrashing--;
	}
	page_init(pg);
}

/* Events that reset their pages rather than count (detection step 2). */
static bool event_resets(const struct uvm_thrash_event *ev)
{
	bool counted = ev->cause == UVM_CAUSE_REPLAYABLE_FAULT || ev->cause == UVM_CAUSE_ACCESS_COUNTER ||
		       ev->cause == UVM_CAUSE_PREFETCH;

	return !counted || ev->copy || ev->read_dup_enabled;
}

/* Detection step 3: whether the block needs (and now has) per-page state. */
static int block_track(struct uvm_thrash_block *blk, const struct uvm_thrash_event *ev, uint64_t lapse)
{
	bool pair = blk->has_last && blk->last_proc != ev->proc && ev->t - blk->last_ns <= lapse;

	blk->has_last = true;
	blk->last_proc = ev->proc;
	blk->last_ns = ev->t;
	if (blk->pages || !pair)
		return 0;
	blk->pages = malloc(sizeof(*blk->pages) * (blk->npages ? blk->npages : 1));
	if (!blk->pages)
		return -ENOMEM;
	for (unsigned int i = 0; i < blk->npages; i++)
		page_init(&blk->pages[i]);
	blk->last_thrashing_ns = ev->t;
	return 0;
}

/* Detection step 4 for one page. */
static void page_event(const struct uvm_params *params, struct uvm_thrash_space *sp,
		       struct uvm_thrash_block *blk, unsigned int i, const struct uvm_thrash_event *ev)
{
	struct uvm_thrash_page *pg = &blk->pages[i];
	bool within = has_events(pg) && ev->t >= stamp_ns(pg) && ev->t - stamp_ns(pg) <= sp->lapse_ns;

	if (within) {
		if (pg->num_thrashing_events < UVM_THRASH_COUNT_MAX)
			pg->num_thrashing_events++;
		if (pg->num_thrashing_events >= params->thrashing_threshold) {
			if (!pmask_test(&blk->thrashing, i)) {
				pmask_set(&blk->thrashing, i);
				blk->num_thrashing++;
				sp->pages_detected++;
			}
			blk->last_thrashing_ns = ev->t;
		}
	} else if (pmask_test(&blk->thrashing, i) && !pg->pinned) {
		page_reset(sp, blk, i);
	}
	pg->processors |= UVM_PROCMASK(ev->proc);
	pg->last_stamp = ev->t >> UVM_THRASH_STAMP_SHIFT;
	if (ev->kind == UVM_THRASH_EV_MIGRATION)
		pg->has_migration_events = 1;
	else
		pg->has_revocation_events = 1;
}

int uvm_thrash_event(const struct uvm_params *params, struct uvm_thrash_space *sp,
		     struct uvm_thrash_block *blk, const struct uvm_thrash_event *ev)
{
	unsigned int i;
	int err;

	if (!params->thrashing_enable || ev->proc >= UVM_MAX_PROCS)
		return 0;
	if (ev->cause == UVM_CAUSE_EVICTION || ev->staged_first_hop)
		return 0;
	if (event_resets(ev)) {
		if (blk->pages)
			pmask_for_each(ev->pages, i)
				if (i < blk->npages)
					page_reset(sp, blk, i);
		return 0;
	}
	err = block_track(blk, ev, sp->lapse_ns);
	if (err || !blk->pages)
		return err;
	pmask_for_each(ev->pages, i)
		if (i < blk->npages)
			page_event(params, sp, blk, i, ev);
	return 0;
}

bool uvm_thrash_block_check(const struct uvm_thrash_block *blk)
{
	struct pmask outside;

	if (!blk->pages)
		return pmask_empty(&blk->thrashing) && pmask_empty(&blk->pinned);
	pmask_andnot(&outside, &blk->pinned, &blk->thrashing);
	if (!pmask_empty(&outside) || pmask_count(&blk->thrashing) != blk->num_thrashing ||
	    pmask_count(&blk->pinned) != blk->num_pinned)
		return false;
	for (unsigned int i = 0; i < blk->npages; i++) {
		const struct uvm_thrash_page *pg = &blk->pages[i];

		if ((pg->throttled & ~pg->processors) || pg->pinned != pmask_test(&blk->pinned, i))
			return false;
	}
	pmask_zero(&outside);
	pmask_set_range(&outside, blk->npages, PMASK_PAGES - blk->npages);
	pmask_and(&outside, &outside, &blk->thrashing);
	return pmask_empty(&outside);
}
