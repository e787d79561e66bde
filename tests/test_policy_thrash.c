/* SPDX-License-Identifier: MIT */
/*
 * Thrashing detection and mitigation (src/policy/uvm_thrash.c, spec
 * section 1.4): one test per transition, driven by explicit virtual times
 * in nanoseconds. Defaults unless a test says otherwise: threshold 3,
 * lapse 500 us, nap 1 lapse, epoch 2000 lapses (1 s), pin 300 lapses
 * (150 ms), pin threshold 10, 4 resets. Events and hints are 128 us apart
 * (a multiple of the 64 ns stamp resolution, so that gaps are exact).
 * The block's invariants are checked after every step.
 *
 * Processors: 0 CPU, 1 and 2 GPUs; PCIe unless a test says otherwise.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy/uvm.h"

#define CPU 0
#define G1 1
#define G2 2
#define US(x) ((uint64_t)(x) * 1000u)
#define STEP US(128)
#define LAPSE US(500)

struct th {
	struct uvm_params params;
	struct uvm_topology topo;
	struct uvm_thrash_space sp;
	struct uvm_thrash_block blk;
	struct uvm_thrash_hint hint;
	uvm_proc_t preferred;
	uvm_procmask_t resident;
};

static int setup(void **state)
{
	static struct th f;

	memset(&f, 0, sizeof(f));
	uvm_params_default(&f.params);
	uvm_topology_pcie(&f.topo, 2);
	uvm_thrash_space_init(&f.sp, &f.params);
	uvm_thrash_block_init(&f.blk, 512);
	f.preferred = UVM_PROC_NONE;
	f.resident = UVM_PROCMASK(CPU);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct th *f = *state;

	uvm_thrash_block_fini(&f->sp, &f->blk);
	return 0;
}

static void ev_full(struct th *f, enum uvm_thrash_event_kind kind, enum uvm_migration_cause cause,
		    uvm_proc_t proc, unsigned int page, uint64_t t)
{
	struct pmask pages;
	struct uvm_thrash_event ev = { .kind = kind, .cause = cause, .proc = proc, .pages = &pages, .t = t };

	pmask_zero(&pages);
	pmask_set(&pages, page);
	assert_int_equal(uvm_thrash_event(&f->params, &f->sp, &f->blk, &ev), 0);
	assert_true(uvm_thrash_block_check(&f->blk));
}

/* A fault-driven migration of page to proc at t. */
static void ev(struct th *f, uvm_proc_t proc, unsigned int page, uint64_t t)
{
	ev_full(f, UVM_THRASH_EV_MIGRATION, UVM_CAUSE_REPLAYABLE_FAULT, proc, page, t);
}

static enum uvm_thrash_hint_type hint(struct th *f, uvm_proc_t requester, unsigned int page, uint64_t t)
{
	struct uvm_thrash_query q = {
		.page = page, .requester = requester, .preferred = f->preferred, .resident = f->resident, .t = t,
	};

	uvm_thrash_get_hint(&f->params, &f->sp, &f->topo, &f->blk, &q, &f->hint);
	assert_true(uvm_thrash_block_check(&f->blk));
	return f->hint.type;
}

static const struct uvm_thrash_page *pg(struct th *f, unsigned int page)
{
	assert_non_null(f->blk.pages);
	return &f->blk.pages[page];
}

/*
 * Make `page` thrash between G1 and the CPU, events STEP apart from t0:
 * the first pair creates the per-page state (the second event is the
 * page's first), then three events within the lapse reach the threshold.
 * Returns the time of the last event.
 */
static uint64_t make_thrashing(struct th *f, unsigned int page, uint64_t t0)
{
	uvm_proc_t who[] = { G1, CPU, G1, CPU, G1 };

	for (unsigned int i = 0; i < 5; i++)
		ev(f, who[i], page, t0 + i * STEP);
	assert_true(pmask_test(&f->blk.thrashing, page));
	return t0 + 4 * STEP;
}

/* ---- detection -------------------------------------------------------- */

/* Step 3: the per-page array appears only for two consecutive events on
 * the block from different processors within one lapse. */
static void lazy_state_needs_two_processors_within_lapse(void **state)
{
	struct th *f = *state;

	ev(f, G1, 0, 0);
	ev(f, G1, 1, STEP); /* same processor */
	assert_null(f->blk.pages);
	ev(f, CPU, 0, STEP + LAPSE + 64); /* another processor, too late */
	assert_null(f->blk.pages);
	ev(f, G1, 0, 2 * STEP + LAPSE + 64); /* another processor, in time */
	assert_non_null(f->blk.pages);
	/* The triggering event is the page's first. */
	assert_true(pg(f, 0)->has_migration_events);
	assert_int_equal(pg(f, 0)->processors, UVM_PROCMASK(G1));
	assert_int_equal(pg(f, 0)->num_thrashing_events, 0);
	assert_false(pg(f, 1)->has_migration_events);
}

struct counting_alloc {
	unsigned int fail_next; /* refuse this many allocations */
	unsigned int live, calls;
};

static void *counting_alloc_fn(void *ctx, size_t size)
{
	struct counting_alloc *a = ctx;

	a->calls++;
	if (a->fail_next) {
		a->fail_next--;
		return NULL;
	}
	a->live++;
	return calloc(1, size);
}

static void counting_free_fn(void *ctx, void *p)
{
	struct counting_alloc *a = ctx;

	a->live--;
	free(p);
}

/* The per-page array comes from the space's allocator. When it fails the
 * event reports -ENOMEM and changes nothing else; detection waits for the
 * next pair of events from different processors. The epoch reset and
 * fini give the array back. */
static void per_page_state_allocation(void **state)
{
	struct th *f = *state;
	struct counting_alloc a = { .fail_next = 1 };
	struct pmask pages;
	struct uvm_thrash_event e = { .kind = UVM_THRASH_EV_MIGRATION, .cause = UVM_CAUSE_REPLAYABLE_FAULT,
				      .pages = &pages };

	f->sp.alloc = counting_alloc_fn;
	f->sp.free = counting_free_fn;
	f->sp.alloc_ctx = &a;
	pmask_zero(&pages);
	pmask_set(&pages, 0);
	ev(f, G1, 0, 0);
	e.proc = CPU;
	e.t = STEP;
	assert_int_equal(uvm_thrash_event(&f->params, &f->sp, &f->blk, &e), -ENOMEM);
	assert_null(f->blk.pages);
	assert_true(uvm_thrash_block_check(&f->blk));
	assert_int_equal(a.calls, 1);
	/* The same processor again: no pair, no allocation. */
	ev(f, CPU, 0, 2 * STEP);
	assert_null(f->blk.pages);
	assert_int_equal(a.calls, 1);
	ev(f, G1, 0, 3 * STEP);
	assert_non_null(f->blk.pages);
	assert_int_equal(a.live, 1);
	/* Thrash, then stay quiet for an epoch: the block reset frees it. */
	make_thrashing(f, 1, 4 * STEP);
	struct uvm_thrash_hint h;
	struct uvm_thrash_query q = { .page = 1, .requester = G1, .preferred = UVM_PROC_NONE,
				      .t = 8 * STEP + 2000 * LAPSE };
	uvm_thrash_get_hint(&f->params, &f->sp, &f->topo, &f->blk, &q, &h);
	assert_int_equal(h.step, UVM_THRASH_STEP_EPOCH_RESET);
	assert_int_equal(a.live, 0);
	ev(f, CPU, 0, q.t + STEP);
	ev(f, G1, 0, q.t + 2 * STEP);
	assert_int_equal(a.live, 1);
	uvm_thrash_block_fini(&f->sp, &f->blk);
	assert_int_equal(a.live, 0);
	assert_null(f->blk.pages);
}

/* Step 4: within the lapse the count grows; at the threshold (3) the page
 * thrashes and the block records the time. The lapse bound is inclusive. */
static void detection_at_threshold(void **state)
{
	struct th *f = *state;

	ev(f, G1, 7, 0);
	ev(f, CPU, 7, STEP);
	ev(f, G1, 7, STEP + LAPSE); /* exactly one lapse: within */
	assert_int_equal(pg(f, 7)->num_thrashing_events, 1);
	ev(f, CPU, 7, 2 * STEP + LAPSE);
	assert_int_equal(pg(f, 7)->num_thrashing_events, 2);
	assert_false(pmask_test(&f->blk.thrashing, 7));
	assert_int_equal(f->sp.pages_detected, 0);
	ev(f, G1, 7, 3 * STEP + LAPSE);
	assert_int_equal(pg(f, 7)->num_thrashing_events, 3);
	assert_true(pmask_test(&f->blk.thrashing, 7));
	assert_int_equal(f->blk.num_thrashing, 1);
	assert_int_equal(f->sp.pages_detected, 1);
	assert_int_equal(f->blk.last_thrashing_ns, 3 * STEP + LAPSE);
	assert_int_equal(pg(f, 7)->processors, UVM_PROCMASK(G1) | UVM_PROCMASK(CPU));
	/* The count saturates at 7; detection is counted once. */
	for (unsigned int i = 4; i < 12; i++)
		ev(f, i % 2 ? CPU : G1, 7, i * STEP + LAPSE);
	assert_int_equal(pg(f, 7)->num_thrashing_events, 7);
	assert_int_equal(f->sp.pages_detected, 1);
	assert_int_equal(f->blk.last_thrashing_ns, 11 * STEP + LAPSE);
}

static void threshold_is_a_parameter(void **state)
{
	struct th *f = *state;

	assert_int_equal(uvm_param_set(&f->params, "thrashing_threshold", 1), 0);
	ev(f, G1, 3, 0);
	ev(f, CPU, 3, STEP);
	assert_false(pmask_test(&f->blk.thrashing, 3));
	ev(f, G1, 3, 2 * STEP);
	assert_true(pmask_test(&f->blk.thrashing, 3));
}

/* Step 4: a gap over the lapse resets a thrashing page that is not pinned;
 * a page below the threshold keeps its count. */
static void gap_resets_thrashing_page(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 2, 0);

	ev(f, CPU, 9, t - STEP);
	ev(f, G1, 9, t);
	assert_int_equal(pg(f, 9)->num_thrashing_events, 1);
	t += LAPSE + 64;
	ev(f, CPU, 2, t);
	assert_false(pmask_test(&f->blk.thrashing, 2));
	assert_int_equal(pg(f, 2)->num_thrashing_events, 0);
	assert_int_equal(pg(f, 2)->processors, UVM_PROCMASK(CPU));
	ev(f, CPU, 9, t);
	assert_int_equal(pg(f, 9)->num_thrashing_events, 1);
	/* The page starts again from its new stamp. */
	ev(f, G1, 2, t + STEP);
	assert_int_equal(pg(f, 2)->num_thrashing_events, 1);
}

/* A page reset forgets the events and the pin but keeps the throttling
 * history: a page throttled once per nap is reset by the nap-long gap each
 * time, and must still reach the pin threshold. */
static void reset_keeps_throttling_history(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;

	assert_int_equal(hint(f, G1, 0, t), UVM_THRASH_HINT_NONE);
	assert_int_equal(hint(f, CPU, 0, t + STEP), UVM_THRASH_HINT_THROTTLE);
	assert_int_equal(pg(f, 0)->throttling_count, 1);
	ev(f, CPU, 0, t + LAPSE + LAPSE);
	assert_false(pmask_test(&f->blk.thrashing, 0));
	assert_int_equal(pg(f, 0)->num_thrashing_events, 0);
	assert_int_equal(pg(f, 0)->throttled, 0);
	assert_int_equal(pg(f, 0)->throttling_count, 1);
	assert_int_equal(pg(f, 0)->do_not_throttle, G1);
	assert_int_equal(pg(f, 0)->throttling_end, t + LAPSE);
}

/* Step 1: evictions and first hops of staged copies are ignored. */
static void ignored_events(void **state)
{
	struct th *f = *state;
	struct pmask pages;
	struct uvm_thrash_event e = {
		.kind = UVM_THRASH_EV_MIGRATION, .cause = UVM_CAUSE_REPLAYABLE_FAULT, .proc = CPU,
		.pages = &pages, .t = 0, .staged_first_hop = true,
	};
	uint64_t t = make_thrashing(f, 4, US(1000));
	struct uvm_thrash_page before = *pg(f, 4);

	pmask_zero(&pages);
	pmask_set(&pages, 4);
	e.t = t + STEP;
	assert_int_equal(uvm_thrash_event(&f->params, &f->sp, &f->blk, &e), 0);
	ev_full(f, UVM_THRASH_EV_MIGRATION, UVM_CAUSE_EVICTION, CPU, 4, t + 2 * STEP);
	assert_memory_equal(pg(f, 4), &before, sizeof(before));
	assert_int_equal(f->blk.last_ns, t);
}

/* Step 2: other causes, duplicate copies and read-duplicated ranges reset
 * their pages. */
static void reset_events(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 1, 0);
	struct pmask pages;
	struct uvm_thrash_event e = {
		.kind = UVM_THRASH_EV_MIGRATION, .cause = UVM_CAUSE_PREFETCH, .proc = CPU, .pages = &pages,
	};

	make_thrashing(f, 2, 0);
	make_thrashing(f, 3, 0);
	make_thrashing(f, 5, 0);
	ev_full(f, UVM_THRASH_EV_MIGRATION, UVM_CAUSE_API, CPU, 1, t + STEP);
	assert_false(pmask_test(&f->blk.thrashing, 1));
	assert_int_equal(pg(f, 1)->num_thrashing_events, 0);
	assert_false(pg(f, 1)->has_migration_events);
	ev_full(f, UVM_THRASH_EV_MIGRATION, UVM_CAUSE_NON_REPLAYABLE_FAULT, CPU, 2, t + STEP);
	assert_false(pmask_test(&f->blk.thrashing, 2));
	pmask_zero(&pages);
	pmask_set(&pages, 3);
	e.copy = true;
	e.t = t + STEP;
	assert_int_equal(uvm_thrash_event(&f->params, &f->sp, &f->blk, &e), 0);
	assert_false(pmask_test(&f->blk.thrashing, 3));
	pmask_zero(&pages);
	pmask_set(&pages, 5);
	e.copy = false;
	e.read_dup_enabled = true;
	assert_int_equal(uvm_thrash_event(&f->params, &f->sp, &f->blk, &e), 0);
	assert_false(pmask_test(&f->blk.thrashing, 5));
	assert_int_equal(f->blk.num_thrashing, 0);
	/* Prefetch and access-counter migrations count. */
	e.read_dup_enabled = false;
	for (unsigned int i = 0; i < 4; i++) {
		e.cause = i % 2 ? UVM_CAUSE_PREFETCH : UVM_CAUSE_ACCESS_COUNTER;
		e.proc = i % 2 ? G1 : CPU;
		e.t = t + (2 + i) * STEP;
		assert_int_equal(uvm_thrash_event(&f->params, &f->sp, &f->blk, &e), 0);
	}
	assert_true(pmask_test(&f->blk.thrashing, 5));
}

static void disabled_does_nothing(void **state)
{
	struct th *f = *state;

	f->params.thrashing_enable = 0;
	ev(f, G1, 0, 0);
	ev(f, CPU, 0, STEP);
	assert_null(f->blk.pages);
	f->params.thrashing_enable = 1;
	make_thrashing(f, 0, US(10000));
	f->params.thrashing_enable = 0;
	assert_int_equal(hint(f, G1, 0, US(10000) + 5 * STEP), UVM_THRASH_HINT_NONE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_OFF);
}

/* ---- mitigation ------------------------------------------------------- */

/* Step 1: a block quiet for one epoch, with no pinned page and fewer than
 * max_resets resets, loses its per-page state. */
static void epoch_reset(void **state)
{
	struct th *f = *state;
	uint64_t epoch = 2000 * LAPSE, t = 0;

	for (unsigned int r = 0; r < 4; r++) {
		uint64_t last = make_thrashing(f, 0, t);

		assert_int_equal(hint(f, G1, 0, last + epoch - 64), UVM_THRASH_HINT_NONE);
		assert_int_not_equal(f->hint.step, UVM_THRASH_STEP_EPOCH_RESET);
		assert_non_null(f->blk.pages);
		assert_int_equal(hint(f, G1, 0, last + epoch), UVM_THRASH_HINT_NONE);
		assert_int_equal(f->hint.step, UVM_THRASH_STEP_EPOCH_RESET);
		assert_null(f->blk.pages);
		assert_int_equal(f->blk.num_thrashing, 0);
		assert_int_equal(f->blk.num_resets, r + 1);
		t = last + epoch + LAPSE + 64;
	}
	/* The fifth epoch keeps the state: max_resets is 4. */
	uint64_t last = make_thrashing(f, 0, t);
	hint(f, G1, 0, last + 3 * epoch);
	assert_non_null(f->blk.pages);
	assert_int_equal(f->sp.block_resets, 4);
}

static void epoch_reset_waits_for_pins(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0);

	f->preferred = CPU; /* step 8.1: PIN at the CPU */
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->blk.num_pinned, 1);
	hint(f, G1, 0, t + 2000 * LAPSE + STEP);
	assert_int_not_equal(f->hint.step, UVM_THRASH_STEP_EPOCH_RESET);
	assert_non_null(f->blk.pages);
}

/* Step 2: a page below the threshold gets NONE. */
static void below_threshold(void **state)
{
	struct th *f = *state;

	make_thrashing(f, 0, 0);
	ev(f, CPU, 1, 5 * STEP);
	ev(f, G1, 1, 6 * STEP);
	assert_int_equal(pg(f, 1)->num_thrashing_events, 1);
	assert_int_equal(hint(f, CPU, 1, 7 * STEP), UVM_THRASH_HINT_NONE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_BELOW_THRESHOLD);
}

/* Step 5: too long since the last event, and not pinned: NONE. */
static void gap_too_long(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0);

	assert_int_equal(hint(f, CPU, 0, t + LAPSE + 64), UVM_THRASH_HINT_NONE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_GAP);
	assert_int_equal(pg(f, 0)->processors, UVM_PROCMASK(G1) | UVM_PROCMASK(CPU));
}

/*
 * Steps 6 and 8.5 with steps 3 and 10: the first requester of a period is
 * the "do not throttle" processor and gets NONE (below the pin threshold);
 * another requester in the period is throttled until the period's end;
 * asking again within it is step 3; after it, the throttling ends.
 */
static void throttle_period(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;
	uint64_t lo, hi;

	assert_int_equal(hint(f, G1, 0, t), UVM_THRASH_HINT_NONE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_OTHER);
	assert_int_equal(pg(f, 0)->do_not_throttle, G1);
	assert_int_equal(pg(f, 0)->throttling_end, t + LAPSE);
	assert_int_equal(hint(f, CPU, 0, t + STEP), UVM_THRASH_HINT_THROTTLE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_OTHER);
	assert_int_equal(f->hint.throttle_end, t + LAPSE);
	assert_int_equal(pg(f, 0)->throttling_count, 1);
	assert_int_equal(pg(f, 0)->throttled, UVM_PROCMASK(CPU));
	assert_int_equal(f->sp.throttles, 1);
	/* The CPU sleeps from the rest of the nap to 1.5 times that. */
	uvm_thrash_cpu_nap(&f->hint, t + STEP, &lo, &hi);
	assert_int_equal(lo, LAPSE - STEP);
	assert_int_equal(hi, (LAPSE - STEP) * 3 / 2);
	/* Step 3: still in its window. */
	assert_int_equal(hint(f, CPU, 0, t + 2 * STEP), UVM_THRASH_HINT_THROTTLE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_THROTTLE_WINDOW);
	assert_int_equal(pg(f, 0)->throttling_count, 1);
	/* The window is over: throttling ends; a new period starts and the CPU,
	 * first in it, is the one not throttled. */
	ev(f, G1, 0, t + 2 * STEP);
	assert_int_equal(hint(f, CPU, 0, t + LAPSE), UVM_THRASH_HINT_NONE);
	assert_int_equal(pg(f, 0)->throttled, 0);
	assert_int_equal(pg(f, 0)->do_not_throttle, CPU);
	assert_int_equal(pg(f, 0)->throttling_end, t + 2 * LAPSE);
}

/* Step 6: the "do not throttle" processor alternates: the same processor
 * first in two periods in a row is not spared the second time. */
static void do_not_throttle_alternates(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;

	assert_int_equal(hint(f, G1, 0, t), UVM_THRASH_HINT_NONE);
	assert_int_equal(pg(f, 0)->do_not_throttle, G1);
	ev(f, CPU, 0, t + STEP);
	ev(f, G1, 0, t + 2 * STEP);
	ev(f, CPU, 0, t + 3 * STEP);
	assert_int_equal(hint(f, G1, 0, t + LAPSE), UVM_THRASH_HINT_THROTTLE);
	assert_int_equal(pg(f, 0)->do_not_throttle, UVM_PROC_NONE);
	assert_int_equal(hint(f, CPU, 0, t + LAPSE + STEP), UVM_THRASH_HINT_THROTTLE);
	ev(f, G1, 0, t + LAPSE + 2 * STEP);
	ev(f, CPU, 0, t + LAPSE + 3 * STEP);
	assert_int_equal(hint(f, CPU, 0, t + 2 * LAPSE), UVM_THRASH_HINT_NONE);
	assert_int_equal(pg(f, 0)->do_not_throttle, CPU);
	assert_int_equal(pg(f, 0)->throttled, UVM_PROCMASK(G1));
}

/*
 * Step 8.5 and 9: once the page was throttled pin_threshold (10) times,
 * the "do not throttle" processor pins it at itself. G1 asks first in
 * every period, so it is spared in every other one (step 6) and throttled
 * (counted) in the others. The CPU is throttled in period 0 (counted);
 * each later period extends the page's throttling end before the CPU asks,
 * so the CPU stays in its window (step 3, not counted again). Events keep
 * the page's stamp within the lapse.
 *
 *   period      0  1  2  3  ...  16  17  18
 *   G1          -  T  -  T  ...   -   T  PIN
 *   CPU         T  w  w  w  ...   w   w        (w: step 3)
 *   count       1  2  2  3  ...   9  10
 */
static void pin_after_pin_threshold(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;

	for (unsigned int k = 0; k < 18; k++) {
		uint64_t p0 = t + k * LAPSE;

		ev(f, CPU, 0, p0);
		assert_int_equal(hint(f, G1, 0, p0), k % 2 ? UVM_THRASH_HINT_THROTTLE : UVM_THRASH_HINT_NONE);
		assert_int_equal(hint(f, CPU, 0, p0 + STEP), UVM_THRASH_HINT_THROTTLE);
		assert_int_equal(f->hint.step, k ? UVM_THRASH_STEP_THROTTLE_WINDOW : UVM_THRASH_STEP_OTHER);
		assert_int_equal(pg(f, 0)->throttling_count, 1 + (k + 1) / 2);
		ev(f, G1, 0, p0 + 2 * STEP);
	}
	uint64_t p = t + 18 * LAPSE;
	ev(f, CPU, 0, p);
	assert_int_equal(hint(f, G1, 0, p), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_OTHER);
	assert_int_equal(f->hint.pin_residency, G1);
	assert_int_equal(f->hint.pin_deadline, p + 300 * LAPSE);
	assert_true(pmask_test(&f->blk.pinned, 0));
	assert_int_equal(f->sp.pins, 1);
	assert_int_equal(f->sp.throttles, 10);
}

/* Step 8.1: every thrashing processor can access the preferred location:
 * PIN there (the GPU maps system memory). */
static void pin_at_preferred_all_access(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0);

	f->preferred = CPU;
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_PREFERRED_ALL);
	assert_int_equal(f->hint.pin_residency, CPU);
	/* Not when one of them cannot (the CPU cannot map G1's memory). */
	f->preferred = G1;
	uvm_thrash_block_fini(&f->sp, &f->blk);
	uvm_thrash_block_init(&f->blk, 512);
	t = make_thrashing(f, 0, 0);
	hint(f, CPU, 0, t + STEP);
	assert_int_not_equal(f->hint.step, UVM_THRASH_STEP_PREFERRED_ALL);
}

/* Step 8.2: the preferred location is not thrashing and every thrashing
 * processor has fast access to the closest copy: PIN there; a CPU copy
 * pins to the requesting GPU instead. */
static void pin_at_fast_closest(void **state)
{
	struct th *f = *state;
	uint64_t t;

	f->topo.fast_access[G1] = UVM_PROCMASK(G2);
	f->topo.fast_access[G2] = UVM_PROCMASK(G1);
	f->topo.can_access[G1] |= UVM_PROCMASK(G2);
	f->topo.can_access[G2] |= UVM_PROCMASK(G1);
	for (unsigned int i = 0; i < 5; i++)
		ev(f, i % 2 ? G2 : G1, 0, i * STEP);
	t = 4 * STEP;
	f->resident = UVM_PROCMASK(G1);
	assert_int_equal(hint(f, G2, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_FAST_ACCESS);
	assert_int_equal(f->hint.pin_residency, G1);

	/* A coherent CPU with fast links: the copy is on the CPU, pin to G1. */
	uvm_thrash_block_fini(&f->sp, &f->blk);
	uvm_thrash_block_init(&f->blk, 512);
	f->topo.fast_access[G1] = UVM_PROCMASK(CPU);
	f->topo.fast_access[CPU] = UVM_PROCMASK(G1);
	t = make_thrashing(f, 0, 0);
	f->resident = UVM_PROCMASK(CPU);
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_FAST_ACCESS);
	assert_int_equal(f->hint.pin_residency, G1);
	/* Not when the preferred location is among the thrashing processors. */
	f->preferred = G2;
	pg(f, 0);
	f->blk.pages[0].processors |= UVM_PROCMASK(G2);
	hint(f, G1, 0, t + 2 * STEP);
	assert_int_not_equal(f->hint.step, UVM_THRASH_STEP_FAST_ACCESS);
}

/* Step 8.3: the requester is the preferred location (G1, which the CPU
 * cannot map: 8.1 does not apply). */
static void requester_is_preferred(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;

	f->preferred = G1;
	/* First in the period: the "do not throttle" one, below the pin threshold. */
	assert_int_equal(hint(f, G1, 0, t), UVM_THRASH_HINT_NONE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_REQ_PREFERRED);
	/* Not the "do not throttle" one: THROTTLE. */
	f->blk.pages[0].do_not_throttle = CPU;
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_THROTTLE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_REQ_PREFERRED);
	/* The "do not throttle" one at the pin threshold: PIN at preferred. */
	f->blk.pages[0].do_not_throttle = G1;
	f->blk.pages[0].throttled = 0;
	f->blk.pages[0].throttling_count = 10;
	assert_int_equal(hint(f, G1, 0, t + 2 * STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.pin_residency, G1);
	/* Pinned at the preferred location: PIN, "do not throttle" or not. */
	f->blk.pages[0].do_not_throttle = CPU;
	assert_int_equal(hint(f, G1, 0, t + 3 * STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.pin_residency, G1);
	/* Pinned elsewhere: THROTTLE, unless "do not throttle". */
	f->blk.pages[0].pinned_residency = CPU;
	assert_int_equal(hint(f, G1, 0, t + 3 * STEP), UVM_THRASH_HINT_THROTTLE);
	f->blk.pages[0].throttled = 0;
	f->blk.pages[0].do_not_throttle = G1;
	assert_int_equal(hint(f, G1, 0, t + 3 * STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.pin_residency, G1);
}

/* Step 8.4: the page is pinned and the requester is not the preferred
 * location. Topology: G1 and G2 on PCIe (no peer access). */
static void already_pinned(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;

	/* Pin at the CPU through 8.1, then drop the preference. */
	f->preferred = CPU;
	assert_int_equal(hint(f, G1, 0, t), UVM_THRASH_HINT_PIN);
	f->preferred = UVM_PROC_NONE;
	f->resident = UVM_PROCMASK(G2); /* no fast access: 8.2 does not apply */
	/* A requester that can access the pinned copy (G1 maps sysmem). */
	f->blk.pages[0].do_not_throttle = CPU;
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_PINNED);
	assert_int_equal(f->hint.pin_residency, CPU);
	/* One that cannot: THROTTLE. */
	f->blk.pages[0].pinned_residency = G2;
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_THROTTLE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_PINNED);
	/* The "do not throttle" requester: at itself when every thrashing
	 * processor can access it, else at the common location closest to it. */
	f->blk.pages[0].throttled = 0;
	f->blk.pages[0].do_not_throttle = G1;
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.pin_residency, CPU); /* the CPU cannot map G1 */
	f->topo.can_access[CPU] |= UVM_PROCMASK(G1);
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.pin_residency, G1);
	/* The deadline is the first pin's. */
	assert_int_equal(f->hint.pin_deadline, t + 300 * LAPSE);
	assert_int_equal(f->sp.pins, 1);
}

/* Step 7: a pinned page that still sees revocations throttles everyone
 * but the "do not throttle" processor. */
static void revocation_thrashing(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;

	f->preferred = CPU;
	assert_int_equal(hint(f, G1, 0, t), UVM_THRASH_HINT_PIN);
	ev_full(f, UVM_THRASH_EV_REVOCATION, UVM_CAUSE_REPLAYABLE_FAULT, CPU, 0, t + STEP);
	assert_true(pg(f, 0)->has_revocation_events);
	f->blk.pages[0].do_not_throttle = G1;
	assert_int_equal(hint(f, CPU, 0, t + 2 * STEP), UVM_THRASH_HINT_THROTTLE);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_REVOCATION);
	assert_int_equal(hint(f, G1, 0, t + 2 * STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.step, UVM_THRASH_STEP_PREFERRED_ALL);
}

/* A PIN target without memory becomes the CPU. */
static void pin_without_memory_goes_to_cpu(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0);

	f->topo.has_memory = UVM_PROCMASK(CPU) | UVM_PROCMASK(G1);
	f->preferred = G2;
	f->topo.can_access[CPU] |= UVM_PROCMASK(G2);
	f->topo.can_access[G1] |= UVM_PROCMASK(G2);
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.pin_residency, CPU);
}

/* Step 9: the unpin at the deadline resets the page; pin 0 is forever. */
static void unpin_at_deadline(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0) + STEP;
	struct pmask unpinned;

	f->preferred = CPU;
	assert_int_equal(uvm_thrash_next_deadline(&f->blk), UVM_THRASH_NO_DEADLINE);
	assert_int_equal(hint(f, G1, 0, t), UVM_THRASH_HINT_PIN);
	assert_int_equal(uvm_thrash_next_deadline(&f->blk), t + US(150000));
	assert_int_equal(uvm_thrash_unpin_due(&f->sp, &f->blk, t + US(150000) - 1, &unpinned), 0);
	assert_true(pmask_empty(&unpinned));
	/* A pinned page is not reset by a long gap. */
	ev(f, CPU, 0, t + US(100000));
	assert_true(pg(f, 0)->pinned);
	assert_true(pmask_test(&f->blk.thrashing, 0));
	assert_int_equal(uvm_thrash_unpin_due(&f->sp, &f->blk, t + US(150000), &unpinned), 1);
	assert_true(pmask_test(&unpinned, 0));
	assert_false(pg(f, 0)->pinned);
	assert_false(pmask_test(&f->blk.thrashing, 0));
	assert_int_equal(pg(f, 0)->num_thrashing_events, 0);
	assert_int_equal(f->blk.num_pinned, 0);
	assert_int_equal(f->sp.unpins, 1);
	/* thrashing_pin = 0: pinned forever. */
	f->params.thrashing_pin = 0;
	t = make_thrashing(f, 1, t + US(200000));
	assert_int_equal(hint(f, G1, 1, t + STEP), UVM_THRASH_HINT_PIN);
	assert_int_equal(f->hint.pin_deadline, UVM_THRASH_NO_DEADLINE);
	assert_int_equal(uvm_thrash_unpin_due(&f->sp, &f->blk, UINT64_MAX - 1, &unpinned), 0);
}

/* The lapse adapts only with lapse_adapt = 1: 32 votes of gaps at least
 * the lapse grow it by an eighth and halve the vote; 32 of shorter gaps
 * shrink it (devmm implements both directions). */
static void lapse_adaptation(void **state)
{
	struct th *f = *state;
	uint64_t t = make_thrashing(f, 0, 0);

	/* Off by default: a pinned page's long gaps change nothing. */
	f->preferred = CPU;
	assert_int_equal(hint(f, G1, 0, t + STEP), UVM_THRASH_HINT_PIN);
	for (unsigned int i = 0; i < 40; i++)
		hint(f, G1, 0, t + LAPSE + i);
	assert_int_equal(f->sp.lapse_ns, LAPSE);
	assert_int_equal(f->sp.vote, 0);
	f->params.lapse_adapt = 1;
	for (unsigned int i = 0; i < 31; i++)
		hint(f, G1, 0, t + LAPSE + i);
	assert_int_equal(f->sp.vote, 31);
	assert_int_equal(f->sp.lapse_ns, LAPSE);
	hint(f, G1, 0, t + LAPSE + 31);
	assert_int_equal(f->sp.lapse_ns, LAPSE + LAPSE / 8);
	assert_int_equal(f->sp.vote, 16);
	/* Shorter gaps vote down: 48 of them reach -32. */
	for (unsigned int i = 0; i < 48; i++)
		hint(f, G1, 0, t + STEP);
	assert_int_equal(f->sp.lapse_ns, LAPSE + LAPSE / 8 - (LAPSE + LAPSE / 8) / 8);
	assert_int_equal(f->sp.vote, -16);
}

/*
 * Random histories: events of every kind and cause and hints from three
 * processors on 8 pages, at random gaps around the lapse, with random
 * preferred locations and fast links. After every step the block's
 * invariants hold, a PIN leaves the page pinned at a processor with memory,
 * a THROTTLE leaves the requester among the page's throttled processors,
 * and the space's counters never go backwards. The seed is printed;
 * DEVMM_SEED repeats a run.
 */
static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1DULL;
}

static void random_histories(void **state)
{
	struct th *f = *state;
	const char *env = getenv("DEVMM_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) | 1;
	uint64_t x = seed, t = 0;
	struct pmask pages, unpinned;

	print_message("seed %llu (DEVMM_SEED repeats it)\n", (unsigned long long)seed);
	f->params.thrashing_pin = 20;
	f->params.lapse_adapt = rng_next(&x) % 2;
	f->topo.fast_access[G1] = UVM_PROCMASK(G2);
	for (unsigned int n = 0; n < 200000; n++) {
		uvm_proc_t p = (uvm_proc_t)(rng_next(&x) % 3);
		unsigned int page = rng_next(&x) % 8;
		uint64_t detected = f->sp.pages_detected, pins = f->sp.pins;

		t += rng_next(&x) % (2 * LAPSE / 3);
		if (rng_next(&x) % 1000 == 0)
			t += 2000 * LAPSE;
		if (rng_next(&x) % 2) {
			struct uvm_thrash_event e = {
				.kind = rng_next(&x) % 8 ? UVM_THRASH_EV_MIGRATION : UVM_THRASH_EV_REVOCATION,
				.cause = (enum uvm_migration_cause)(rng_next(&x) % 10 < 8 ? UVM_CAUSE_REPLAYABLE_FAULT
							       : rng_next(&x) % 6),
				.copy = rng_next(&x) % 50 == 0,
				.proc = p, .pages = &pages, .t = t,
			};

			pmask_zero(&pages);
			pmask_set(&pages, page);
			if (rng_next(&x) % 4 == 0)
				pmask_set_range(&pages, 0, 8);
			assert_int_equal(uvm_thrash_event(&f->params, &f->sp, &f->blk, &e), 0);
		} else {
			struct uvm_thrash_query q = { .page = page, .requester = p, .t = t,
						      .resident = UVM_PROCMASK(rng_next(&x) % 3) };

			q.preferred = rng_next(&x) % 3 ? UVM_PROC_NONE : (uvm_proc_t)(rng_next(&x) % 3);
			uvm_thrash_get_hint(&f->params, &f->sp, &f->topo, &f->blk, &q, &f->hint);
			if (f->hint.type == UVM_THRASH_HINT_PIN) {
				assert_true(pg(f, page)->pinned);
				assert_int_equal(pg(f, page)->pinned_residency, f->hint.pin_residency);
				assert_true(uvm_procmask_test(f->topo.has_memory, f->hint.pin_residency));
			}
			if (f->hint.type == UVM_THRASH_HINT_THROTTLE)
				assert_true(uvm_procmask_test(pg(f, page)->throttled, p));
		}
		uvm_thrash_unpin_due(&f->sp, &f->blk, t, &unpinned);
		assert_true(uvm_thrash_block_check(&f->blk));
		assert_true(f->sp.pages_detected >= detected && f->sp.pins >= pins);
		assert_true(f->sp.lapse_ns >= US(5) && f->sp.lapse_ns <= US(500000));
	}
	print_message("%llu detected, %llu throttles, %llu pins, %llu unpins, %llu block resets, lapse %llu ns\n",
		      (unsigned long long)f->sp.pages_detected, (unsigned long long)f->sp.throttles,
		      (unsigned long long)f->sp.pins, (unsigned long long)f->sp.unpins,
		      (unsigned long long)f->sp.block_resets, (unsigned long long)f->sp.lapse_ns);
	assert_true(f->sp.pages_detected > 0);
	assert_true(f->sp.throttles > 0);
	assert_true(f->sp.pins > 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(lazy_state_needs_two_processors_within_lapse),
		T(per_page_state_allocation),
		T(detection_at_threshold),
		T(threshold_is_a_parameter),
		T(gap_resets_thrashing_page),
		T(reset_keeps_throttling_history),
		T(ignored_events),
		T(reset_events),
		T(disabled_does_nothing),
		T(epoch_reset),
		T(epoch_reset_waits_for_pins),
		T(below_threshold),
		T(gap_too_long),
		T(throttle_period),
		T(do_not_throttle_alternates),
		T(pin_after_pin_threshold),
		T(pin_at_preferred_all_access),
		T(pin_at_fast_closest),
		T(requester_is_preferred),
		T(already_pinned),
		T(revocation_thrashing),
		T(pin_without_memory_goes_to_cpu),
		T(unpin_at_deadline),
		T(lapse_adaptation),
		T(random_histories),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
