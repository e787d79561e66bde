/* SPDX-License-Identifier: MIT */
/*
 * NVIDIA's thrashing detection and mitigation (shared/spec/managed-memory.md
 * section 1.4; uvm_perf_thrashing.c). Detection counts, per page, the
 * MIGRATION and REVOCATION events that follow each other within the lapse;
 * a page whose count reaches the threshold thrashes. Mitigation answers
 * each fault with NONE, THROTTLE (the requester naps) or PIN (the page
 * stays at one place and the others map it) and unpins at the pin
 * deadline. Times are virtual nanoseconds given by the caller; the nap,
 * epoch and pin times are multiples of the current lapse.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uvm.h"

_Static_assert(sizeof(struct uvm_thrash_page) <= 48, "per-page thrashing state over budget");

#define LAPSE_MIN_NS 5000ULL
#define LAPSE_MAX_NS 500000000ULL
#define LAPSE_STEP_MAX_NS 50000000ULL

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

static void *pages_alloc(struct uvm_thrash_space *sp, size_t size)
{
	return sp->alloc ? sp->alloc(sp->alloc_ctx, size) : calloc(1, size);
}

static void pages_free(struct uvm_thrash_space *sp, void *p)
{
	if (sp->free)
		sp->free(sp->alloc_ctx, p);
	else
		free(p);
}

/* Free the per-page state and forget the thrashing and pinned pages. */
static void block_reset(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk)
{
	if (blk->pages)
		pages_free(sp, blk->pages);
	blk->pages = NULL;
	pmask_zero(&blk->thrashing);
	pmask_zero(&blk->pinned);
	blk->num_thrashing = 0;
	blk->num_pinned = 0;
}

void uvm_thrash_block_fini(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk)
{
	block_reset(sp, blk);
}

static uint64_t stamp_ns(const struct uvm_thrash_page *pg)
{
	return (uint64_t)pg->last_stamp << UVM_THRASH_STAMP_SHIFT;
}

static bool has_events(const struct uvm_thrash_page *pg)
{
	return pg->has_migration_events || pg->has_revocation_events;
}

/*
 * Reset page i: forget its event history (stamp, flags, count, processors),
 * its throttled processors and its pin. The throttling history (count, end
 * of the current period, the "do not throttle" processor) stays: a page
 * throttled once per nap sees a gap of a nap (one lapse) after each
 * throttling and is reset by it, and must still reach the pin threshold.
 * Only a block reset (the epoch) forgets it.
 */
static void page_reset(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk, unsigned int i)
{
	struct uvm_thrash_page *pg = &blk->pages[i];
	uint64_t end = pg->throttling_end;
	uint8_t count = pg->throttling_count;
	uvm_proc_t dnt = pg->do_not_throttle;

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
	pg->throttling_end = end;
	pg->throttling_count = count;
	pg->do_not_throttle = dnt;
}

/* Events that reset their pages rather than count (detection step 2). */
static bool event_resets(const struct uvm_thrash_event *ev)
{
	bool counted = ev->cause == UVM_CAUSE_REPLAYABLE_FAULT || ev->cause == UVM_CAUSE_ACCESS_COUNTER ||
		       ev->cause == UVM_CAUSE_PREFETCH;

	return !counted || ev->copy || ev->read_dup_enabled;
}

/* Detection step 3: whether the block needs (and now has) per-page state. */
static int block_track(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk,
		       const struct uvm_thrash_event *ev)
{
	bool pair = blk->has_last && blk->last_proc != ev->proc && ev->t - blk->last_ns <= sp->lapse_ns;

	blk->has_last = true;
	blk->last_proc = ev->proc;
	blk->last_ns = ev->t;
	if (blk->pages || !pair)
		return 0;
	blk->pages = pages_alloc(sp, sizeof(*blk->pages) * (blk->npages ? blk->npages : 1));
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
	err = block_track(sp, blk, ev);
	if (err || !blk->pages)
		return err;
	pmask_for_each(ev->pages, i)
		if (i < blk->npages)
			page_event(params, sp, blk, i, ev);
	return 0;
}

/* Mitigation step 4, as intended: votes move the lapse both ways. */
static void adapt_lapse(const struct uvm_params *params, struct uvm_thrash_space *sp, uint64_t gap)
{
	int vote = sp->vote + (gap >= sp->lapse_ns ? 1 : -1);
	int limit = (int)params->lapse_vote_threshold;
	uint64_t step;

	sp->vote = (int8_t)(vote > 127 ? 127 : vote < -128 ? -128 : vote);
	step = sp->lapse_ns / 8 < LAPSE_STEP_MAX_NS ? sp->lapse_ns / 8 : LAPSE_STEP_MAX_NS;
	if (sp->vote >= limit) {
		sp->lapse_ns = sp->lapse_ns + step > LAPSE_MAX_NS ? LAPSE_MAX_NS : sp->lapse_ns + step;
		sp->vote /= 2;
	} else if (sp->vote <= -limit) {
		sp->lapse_ns = sp->lapse_ns - step < LAPSE_MIN_NS ? LAPSE_MIN_NS : sp->lapse_ns - step;
		sp->vote /= 2;
	}
}

static bool all_can_access(const struct uvm_topology *topo, uvm_procmask_t procs, uvm_proc_t to)
{
	for (unsigned int p = 0; p < UVM_MAX_PROCS; p++)
		if (uvm_procmask_test(procs, (uvm_proc_t)p) && !uvm_can_access(topo, (uvm_proc_t)p, to))
			return false;
	return to != UVM_PROC_NONE;
}

static bool all_fast_access(const struct uvm_topology *topo, uvm_procmask_t procs, uvm_proc_t to)
{
	for (unsigned int p = 0; p < UVM_MAX_PROCS; p++) {
		if (!uvm_procmask_test(procs, (uvm_proc_t)p) || p == to)
			continue;
		if (p >= topo->nprocs || !uvm_procmask_test(topo->fast_access[p], to))
			return false;
	}
	return to != UVM_PROC_NONE;
}

/* The location every processor of procs can access that is closest to p:
 * p, its fast peers, the CPU, then the lowest; the CPU when none is. */
static uvm_proc_t common_closest(const struct uvm_topology *topo, uvm_proc_t p, uvm_procmask_t procs)
{
	uvm_procmask_t cands = 0;

	for (unsigned int c = 0; c < topo->nprocs; c++)
		if (uvm_procmask_test(topo->has_memory, (uvm_proc_t)c) && all_can_access(topo, procs, (uvm_proc_t)c))
			cands |= UVM_PROCMASK(c);
	return cands ? uvm_closest_resident(topo, p, cands) : UVM_PROC_CPU;
}

static void hint_pin(struct uvm_thrash_hint *out, enum uvm_thrash_step step, uvm_proc_t at)
{
	out->type = UVM_THRASH_HINT_PIN;
	out->step = step;
	out->pin_residency = at;
}

static void hint_throttle(struct uvm_thrash_hint *out, enum uvm_thrash_step step)
{
	out->type = UVM_THRASH_HINT_THROTTLE;
	out->step = step;
}

static bool pin_threshold_met(const struct uvm_params *params, const struct uvm_thrash_page *pg)
{
	return pg->throttling_count >= params->thrashing_pin_threshold;
}

/* Mitigation step 8: a page thrashing by migrations. */
static void migration_hint(const struct uvm_params *params, const struct uvm_topology *topo,
			   const struct uvm_thrash_page *pg, const struct uvm_thrash_query *q,
			   struct uvm_thrash_hint *out)
{
	uvm_proc_t p = q->requester, pref = q->preferred, dnt = pg->do_not_throttle;
	uvm_proc_t closest = uvm_closest_resident(topo, p, q->resident);

	out->step = UVM_THRASH_STEP_OTHER;
	if (pref != UVM_PROC_NONE && all_can_access(topo, pg->processors, pref)) {
		hint_pin(out, UVM_THRASH_STEP_PREFERRED_ALL, pref);
	} else if ((pref == UVM_PROC_NONE || !uvm_procmask_test(pg->processors, pref)) &&
		   all_fast_access(topo, pg->processors, closest)) {
		hint_pin(out, UVM_THRASH_STEP_FAST_ACCESS, closest == UVM_PROC_CPU ? p : closest);
	} else if (p == pref) {
		out->step = UVM_THRASH_STEP_REQ_PREFERRED;
		if (pg->pinned) {
			if (pg->pinned_residency == pref || p == dnt)
				hint_pin(out, UVM_THRASH_STEP_REQ_PREFERRED, pref);
			else
				hint_throttle(out, UVM_THRASH_STEP_REQ_PREFERRED);
		} else if (p != dnt) {
			hint_throttle(out, UVM_THRASH_STEP_REQ_PREFERRED);
		} else if (pin_threshold_met(params, pg)) {
			hint_pin(out, UVM_THRASH_STEP_REQ_PREFERRED, pref);
		}
	} else if (pg->pinned) {
		if (p == dnt)
			hint_pin(out, UVM_THRASH_STEP_PINNED,
				 all_can_access(topo, pg->processors, p) ? p : common_closest(topo, p, pg->processors));
		else if (uvm_can_access(topo, p, pg->pinned_residency))
			hint_pin(out, UVM_THRASH_STEP_PINNED, pg->pinned_residency);
		else
			hint_throttle(out, UVM_THRASH_STEP_PINNED);
	} else if (p != dnt) {
		hint_throttle(out, UVM_THRASH_STEP_OTHER);
	} else if (pin_threshold_met(params, pg)) {
		hint_pin(out, UVM_THRASH_STEP_OTHER, p);
	}
}

static uint64_t lapses(const struct uvm_thrash_space *sp, uint32_t n)
{
	return sp->lapse_ns * n;
}

/* Mitigation steps 9 and 10: record what the hint does to the page. */
static void hint_apply(const struct uvm_params *params, struct uvm_thrash_space *sp,
		       const struct uvm_topology *topo, struct uvm_thrash_block *blk,
		       const struct uvm_thrash_query *q, struct uvm_thrash_hint *out)
{
	struct uvm_thrash_page *pg = &blk->pages[q->page];

	if (out->type == UVM_THRASH_HINT_THROTTLE) {
		pg->throttled |= UVM_PROCMASK(q->requester);
		if (pg->throttling_count < UINT8_MAX)
			pg->throttling_count++;
		out->throttle_end = pg->throttling_end;
		sp->throttles++;
		return;
	}
	if (out->type != UVM_THRASH_HINT_PIN)
		return;
	if (out->pin_residency >= topo->nprocs || !uvm_procmask_test(topo->has_memory, out->pin_residency))
		out->pin_residency = UVM_PROC_CPU;
	if (!pg->pinned) {
		pg->pinned = 1;
		pg->pin_deadline = params->thrashing_pin ? q->t + lapses(sp, params->thrashing_pin)
							 : UVM_THRASH_NO_DEADLINE;
		pmask_set(&blk->pinned, q->page);
		blk->num_pinned++;
		sp->pins++;
	}
	pg->pinned_residency = out->pin_residency;
	out->pin_deadline = pg->pin_deadline;
}

/* Steps 1 to 3; true when one of them decided. */
static bool hint_early(const struct uvm_params *params, struct uvm_thrash_space *sp,
		       struct uvm_thrash_block *blk, const struct uvm_thrash_query *q,
		       struct uvm_thrash_hint *out)
{
	struct uvm_thrash_page *pg;

	if (q->t - blk->last_thrashing_ns >= lapses(sp, params->thrashing_epoch) && q->t >= blk->last_thrashing_ns &&
	    !blk->num_pinned && blk->num_resets < params->thrashing_max_resets) {
		block_reset(sp, blk);
		blk->num_resets++;
		sp->block_resets++;
		out->step = UVM_THRASH_STEP_EPOCH_RESET;
		return true;
	}
	pg = &blk->pages[q->page];
	if (pg->num_thrashing_events < params->thrashing_threshold) {
		out->step = UVM_THRASH_STEP_BELOW_THRESHOLD;
		return true;
	}
	if (uvm_procmask_test(pg->throttled, q->requester)) {
		if (q->t < pg->throttling_end && q->requester != pg->do_not_throttle) {
			out->type = UVM_THRASH_HINT_THROTTLE;
			out->step = UVM_THRASH_STEP_THROTTLE_WINDOW;
			out->throttle_end = pg->throttling_end;
			return true;
		}
		pg->throttled &= ~UVM_PROCMASK(q->requester);
	}
	return false;
}

void uvm_thrash_get_hint(const struct uvm_params *params, struct uvm_thrash_space *sp,
			 const struct uvm_topology *topo, struct uvm_thrash_block *blk,
			 const struct uvm_thrash_query *q, struct uvm_thrash_hint *out)
{
	struct uvm_thrash_page *pg;
	uint64_t gap;

	memset(out, 0, sizeof(*out));
	out->type = UVM_THRASH_HINT_NONE;
	out->pin_residency = UVM_PROC_NONE;
	if (!params->thrashing_enable || !blk->pages || q->page >= blk->npages || q->requester >= UVM_MAX_PROCS)
		return;
	if (hint_early(params, sp, blk, q, out))
		return;
	pg = &blk->pages[q->page];
	gap = q->t >= stamp_ns(pg) ? q->t - stamp_ns(pg) : 0;
	if (params->lapse_adapt)
		adapt_lapse(params, sp, gap);
	if (gap > sp->lapse_ns && !pg->pinned) {
		out->step = UVM_THRASH_STEP_GAP;
		return;
	}
	pg->processors |= UVM_PROCMASK(q->requester);
	if (q->t >= pg->throttling_end) {
		pg->throttling_end = q->t + lapses(sp, params->thrashing_nap);
		pg->do_not_throttle = pg->do_not_throttle == q->requester ? UVM_PROC_NONE : q->requester;
	}
	if (pg->pinned && pg->has_revocation_events && q->requester != pg->do_not_throttle)
		hint_throttle(out, UVM_THRASH_STEP_REVOCATION);
	else
		migration_hint(params, topo, pg, q, out);
	hint_apply(params, sp, topo, blk, q, out);
}

uint64_t uvm_thrash_next_deadline(const struct uvm_thrash_block *blk)
{
	uint64_t next = UVM_THRASH_NO_DEADLINE;
	unsigned int i;

	if (!blk->pages)
		return next;
	pmask_for_each(&blk->pinned, i)
		if (blk->pages[i].pin_deadline < next)
			next = blk->pages[i].pin_deadline;
	return next;
}

unsigned int uvm_thrash_unpin_due(struct uvm_thrash_space *sp, struct uvm_thrash_block *blk,
				  uint64_t t, struct pmask *unpinned)
{
	struct pmask pinned = blk->pinned;
	unsigned int i, n = 0;

	pmask_zero(unpinned);
	if (!blk->pages)
		return 0;
	pmask_for_each(&pinned, i) {
		if (blk->pages[i].pin_deadline > t)
			continue;
		page_reset(sp, blk, i);
		pmask_set(unpinned, i);
		n++;
	}
	return n;
}

void uvm_thrash_cpu_nap(const struct uvm_thrash_hint *hint, uint64_t t, uint64_t *lo, uint64_t *hi)
{
	uint64_t rest = hint->throttle_end > t ? hint->throttle_end - t : 0;

	*lo = rest;
	*hi = rest + rest / 2;
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
