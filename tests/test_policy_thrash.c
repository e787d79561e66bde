/* SPDX-License-Identifier: MIT */
/*
 * Thrashing detection (src/policy/uvm_thrash.c, spec section 1.4): one
 * test per transition, driven by explicit virtual times
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
#include <string.h>

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

	uvm_thrash_block_fini(&f->blk);
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
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(lazy_state_needs_two_processors_within_lapse),
		T(detection_at_threshold),
		T(threshold_is_a_parameter),
		T(gap_resets_thrashing_page),
		T(ignored_events),
		T(reset_events),
		T(disabled_does_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
