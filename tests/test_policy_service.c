/* SPDX-License-Identifier: MIT */
/*
 * The uvm policy's plan for one block's faults (src/policy/uvm_service.c):
 * thrashing hint, residency and prefetch composed as NVIDIA's block service
 * does. A small simulator in this file carries plans out on a block's
 * masks (it migrates by moving bits, maps remotely by setting mapped bits)
 * and reports migrations back to the thrashing module, as the engine will:
 * - the worked example of spec section 1.3 end to end;
 * - a CPU <-> GPU ping-pong on 64 pages, changing hands every 100 us
 *   (detected, throttled, pinned; far fewer migrations than with
 *   thrashing_enable = 0) and every 1 ms (no thrashing state at all).
 * The block's invariants (one copy per page without read duplication; the
 * thrashing validator) are checked after every batch.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/uvm.h"

#define CPU 0
#define G1 1
#define G2 2
#define W (1u << UVM_ACCESS_WRITE)
#define R (1u << UVM_ACCESS_READ)

struct sim {
	struct uvm_params params;
	struct uvm_topology topo;
	struct uvm_policy_attrs pol;
	struct uvm_thrash_space sp;
	struct uvm_block_policy_state st;
	struct pmask resident[3], mapped[3], read_dup;
	struct uvm_block_view v;
	struct uvm_service_plan plan;
	uint64_t migrated, throttled;
};

static struct sim *sim_new(unsigned int npages, unsigned int ndevs)
{
	struct sim *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	uvm_params_default(&s->params);
	uvm_topology_pcie(&s->topo, ndevs);
	s->pol.preferred = UVM_PROC_NONE;
	uvm_thrash_space_init(&s->sp, &s->params);
	uvm_prefetch_info_init(&s->st.prefetch);
	uvm_thrash_block_init(&s->st.thrash, npages);
	s->v.nprocs = ndevs + 1;
	s->v.npages = npages;
	s->v.resident = s->resident;
	s->v.mapped = s->mapped;
	s->v.read_dup = &s->read_dup;
	return s;
}

static void sim_free(struct sim *s)
{
	uvm_thrash_block_fini(&s->sp, &s->st.thrash);
	free(s);
}

/* Each populated page has exactly one copy (no read duplication here),
 * each processor maps what it holds, and the thrashing state is sound. */
static void sim_check(const struct sim *s)
{
	for (unsigned int i = 0; i < s->v.npages; i++) {
		uvm_procmask_t res = uvm_block_residents(&s->v, i);

		assert_true((res & (res - 1)) == 0);
	}
	for (unsigned int p = 0; p < s->v.nprocs; p++) {
		struct pmask m;

		pmask_andnot(&m, &s->resident[p], &s->mapped[p]);
		assert_true(pmask_empty(&m));
	}
	assert_true(uvm_thrash_block_check(&s->st.thrash));
}

/* Move `pages` to d (those not there yet), as the engine would, and report
 * the migration. The requester maps them (remotely when d is elsewhere). */
static unsigned int sim_migrate(struct sim *s, uvm_proc_t req, uvm_proc_t d, const struct pmask *pages,
				enum uvm_migration_cause cause, uint64_t t)
{
	struct pmask moving;
	struct uvm_thrash_event ev = { .kind = UVM_THRASH_EV_MIGRATION, .cause = cause, .proc = d,
				       .pages = &moving, .t = t };

	pmask_andnot(&moving, pages, &s->resident[d]);
	for (unsigned int o = 0; o < s->v.nprocs; o++) {
		if (o == d)
			continue;
		pmask_andnot(&s->resident[o], &s->resident[o], &moving);
		pmask_andnot(&s->mapped[o], &s->mapped[o], &moving);
	}
	pmask_or(&s->resident[d], &s->resident[d], &moving);
	pmask_or(&s->mapped[d], &s->mapped[d], pages);
	if (req != d) {
		assert_true(uvm_can_access(&s->topo, req, d));
		pmask_or(&s->mapped[req], &s->mapped[req], pages);
	}
	if (!pmask_empty(&moving))
		assert_int_equal(uvm_thrash_event(&s->params, &s->sp, &s->st.thrash, &ev), 0);
	s->migrated += pmask_count(&moving);
	return pmask_count(&moving);
}

/* One batch: `req` faults on every page of `touch` it does not map. The
 * pages moved (faulted and prefetched). */
static unsigned int sim_batch(struct sim *s, uvm_proc_t req, const struct pmask *touch, unsigned int access,
			      uint64_t t)
{
	struct uvm_fault_page faults[PMASK_PAGES];
	struct uvm_service_query q = { .requester = req, .faults = faults, .t = t };
	struct pmask need, unpinned;
	unsigned int i, moved = 0;

	/* The unpin worker: pinned pages past their deadline lose their
	 * remote mappings. */
	uvm_thrash_unpin_due(&s->sp, &s->st.thrash, t, &unpinned);
	for (unsigned int p = 0; p < s->v.nprocs; p++) {
		struct pmask remote;

		pmask_andnot(&remote, &unpinned, &s->resident[p]);
		pmask_andnot(&s->mapped[p], &s->mapped[p], &remote);
	}
	pmask_andnot(&need, touch, &s->mapped[req]);
	pmask_for_each(&need, i)
		faults[q.nfaults++] = (struct uvm_fault_page){ .page = i, .access_mask = access };
	if (!q.nfaults)
		return 0;
	uvm_service_block(&s->params, &s->topo, &s->pol, &s->sp, &s->st, &s->v, &q, &s->plan);
	s->throttled += pmask_count(&s->plan.throttled);
	for (unsigned int d = 0; d < s->v.nprocs; d++) {
		struct pmask *faulted = &s->plan.new_residency[d];

		if (pmask_empty(faulted))
			continue;
		moved += sim_migrate(s, req, (uvm_proc_t)d, faulted, UVM_CAUSE_REPLAYABLE_FAULT, t);
		if (s->plan.has_prefetch && s->plan.prefetch.residency == d)
			moved += sim_migrate(s, req, (uvm_proc_t)d, &s->plan.prefetch.pages, UVM_CAUSE_PREFETCH, t);
	}
	sim_check(s);
	return moved;
}

static unsigned int sim_touch(struct sim *s, uvm_proc_t req, unsigned int page, uint64_t t)
{
	struct pmask touch;

	pmask_zero(&touch);
	pmask_set(&touch, page);
	return sim_batch(s, req, &touch, R, t);
}

/* Spec 1.3's worked example through the block service, then a CPU fault. */
static void worked_example_end_to_end(void **state)
{
	static const unsigned int touched[] = { 0, 1, 2, 4, 8, 16 };
	static const unsigned int kib[] = { 64, 64, 128, 256, 512, 1024 };
	struct sim *s = sim_new(512, 1);

	(void)state;
	for (unsigned int i = 0; i < 6; i++) {
		assert_int_equal(sim_touch(s, G1, touched[i] * 16, (uint64_t)i * 1000000) * 4, kib[i]);
		assert_int_equal(s->plan.rule[touched[i] * 16], UVM_RES_FIRST_TOUCH);
	}
	assert_int_equal(pmask_count(&s->resident[G1]), 512);
	/* A CPU fault pulls back 4K + 60K. */
	assert_int_equal(sim_touch(s, CPU, 100, 7000000), 16);
	assert_int_equal(pmask_count_range(&s->resident[CPU], 96, 16), 16);
	assert_int_equal(s->plan.prefetch.residency, CPU);
	sim_free(s);
}

/* The prefetcher runs only when every serviced fault goes to one
 * processor: here page 0 stays on the CPU (AccessedBy, mapped only) and
 * page 100 goes to G1 (first touch). */
static void two_destinations_no_prefetch(void **state)
{
	struct sim *s = sim_new(512, 1);
	struct pmask touch;

	(void)state;
	s->pol.accessed_by = UVM_PROCMASK(G1);
	pmask_set(&s->resident[CPU], 0);
	pmask_set(&s->mapped[CPU], 0);
	pmask_zero(&touch);
	pmask_set(&touch, 0);
	pmask_set(&touch, 100);
	assert_int_equal(sim_batch(s, G1, &touch, R, 0), 1);
	assert_false(s->plan.has_prefetch);
	assert_true(pmask_test(&s->plan.keep, 0));
	assert_int_equal(s->plan.rule[0], UVM_RES_ACCESSED_BY);
	assert_int_equal(s->plan.rule[100], UVM_RES_FIRST_TOUCH);
	assert_true(pmask_test(&s->mapped[G1], 0));
	assert_true(pmask_test(&s->resident[CPU], 0));
	/* One destination: prefetch. */
	assert_int_equal(sim_touch(s, G1, 200, 1000), 16);
	sim_free(s);
}

/* Read-mostly: a read copies (rule 2) and the prefetch is a duplicate. */
static void read_mostly_duplicates(void **state)
{
	struct sim *s = sim_new(512, 1);
	struct uvm_fault_page f = { .page = 3, .access_mask = R };
	struct uvm_service_query q = { .requester = G1, .faults = &f, .nfaults = 1 };

	(void)state;
	s->pol.read_dup = UVM_READ_DUP_ENABLED;
	pmask_set_range(&s->resident[CPU], 0, 512);
	pmask_set_range(&s->mapped[CPU], 0, 512);
	uvm_service_block(&s->params, &s->topo, &s->pol, &s->sp, &s->st, &s->v, &q, &s->plan);
	assert_true(pmask_test(&s->plan.read_dup, 3));
	assert_true(pmask_test(&s->plan.new_residency[G1], 3));
	assert_true(s->plan.has_prefetch);
	assert_true(s->plan.prefetch_read_dup);
	sim_free(s);
}

/* 64 pages change hands between G1 and the CPU every `period` ns for
 * `rounds` rounds; each side writes every page it does not map. */
static struct sim *ping_pong(uint64_t period, unsigned int rounds, bool thrashing)
{
	struct sim *s = sim_new(64, 1);
	struct pmask all;

	s->params.thrashing_enable = thrashing;
	s->params.prefetch_enable = 0;
	pmask_zero(&all);
	pmask_set_range(&all, 0, 64);
	for (unsigned int k = 0; k < rounds; k++)
		sim_batch(s, k % 2 ? CPU : G1, &all, W, k * period);
	return s;
}

/*
 * Every 100 us (within the 500 us lapse): the pages are detected, the
 * faults throttled, then pinned (at the CPU, which the GPU maps
 * remotely), unpinned after 150 ms, and pinned again; the pages move far
 * less than without thrashing mitigation, where every round moves all 64.
 */
static void ping_pong_100us_thrashes(void **state)
{
	const unsigned int rounds = 4000; /* 400 ms: two pin periods and more */
	struct sim *on = ping_pong(100000, rounds, true);
	struct sim *off = ping_pong(100000, rounds, false);

	(void)state;
	print_message("ping-pong 100 us, %u rounds: %llu pages migrated with thrashing mitigation, %llu without; "
		      "%llu detected, %llu throttles, %llu pins, %llu unpins\n",
		      rounds, (unsigned long long)on->migrated, (unsigned long long)off->migrated,
		      (unsigned long long)on->sp.pages_detected, (unsigned long long)on->sp.throttles,
		      (unsigned long long)on->sp.pins, (unsigned long long)on->sp.unpins);
	assert_int_equal(off->migrated, 64ull * rounds);
	assert_int_equal(off->throttled, 0);
	assert_int_equal(on->sp.pages_detected >= 64, true);
	assert_true(on->sp.throttles > 0);
	assert_true(on->throttled > 0);
	assert_true(on->sp.pins >= 64);
	assert_true(on->sp.unpins >= 64);
	assert_true(on->migrated * 10 < off->migrated);
	sim_free(on);
	sim_free(off);
}

/* Every 1 ms (over the lapse): no per-page state, no throttling. */
static void ping_pong_1ms_does_not(void **state)
{
	const unsigned int rounds = 1000;
	struct sim *on = ping_pong(1000000, rounds, true);

	(void)state;
	assert_null(on->st.thrash.pages);
	assert_int_equal(on->sp.pages_detected, 0);
	assert_int_equal(on->sp.throttles, 0);
	assert_int_equal(on->sp.pins, 0);
	assert_int_equal(on->migrated, 64ull * rounds);
	sim_free(on);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(worked_example_end_to_end),
		cmocka_unit_test(two_destinations_no_prefetch),
		cmocka_unit_test(read_mostly_duplicates),
		cmocka_unit_test(ping_pong_100us_thrashes),
		cmocka_unit_test(ping_pong_1ms_does_not),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
