/* SPDX-License-Identifier: MIT */
/*
 * The engine executes what a policy returns: a scripted policy (its hooks
 * answer from a table the test fills) checks THROTTLE (the stream resumes
 * at the throttle's end, the batch counts as throttled), PIN (the page
 * moves and stays pinned until its deadline, then an UNPIN event), SKIP,
 * a refused action (DUPLICATE: the fault is cancelled), a MIGRATE to
 * another processor than the requester, and the prefetch hook, whose
 * answer the engine trims (faulted pages, pages already there, pages
 * outside the range), and the block view on_event gets. Both validators
 * run after every batch.
 */
#include "policy_helpers.h"

struct script {
	struct dmm_action next;        /* what fault answers (type SKIP+1.. via use) */
	bool use;                      /* answer with next instead of the default */
	struct dmm_pmask prefetch;     /* what prefetch answers */
	bool do_prefetch;
	unsigned int events[DMM_NR_EVENTS];
	unsigned int with_block[DMM_NR_EVENTS]; /* events that came with a block view */
	unsigned int bad_view;                  /* a view that is not the event's block */
	bool tag;                               /* fault sets the block's policy_data to &S */
	unsigned int tagged_migrations;         /* MIGRATE events whose block carried the tag */
};

static struct script S;

static int s_init(struct dmm_engine *eng, void **ctx)
{
	(void)eng;
	*ctx = &S;
	return 0;
}

static void s_fault(void *ctx, const struct dmm_block_view *blk, const struct dmm_fault_info *f,
		    struct dmm_action *act)
{
	struct script *s = ctx;

	(void)f;
	if (s->tag)
		*blk->policy_data = s;
	if (s->use) {
		act->type = s->next.type;
		act->dst = s->next.dst;
		act->until = s->next.until;
		act->cause = s->next.cause;
		act->origin.rule = 42;
	}
}

static uint32_t s_prefetch(void *ctx, const struct dmm_block_view *blk, unsigned int dst,
			   const struct dmm_pmask *faulted, struct dmm_pmask *out)
{
	struct script *s = ctx;

	(void)blk;
	(void)dst;
	(void)faulted;
	if (s->do_prefetch)
		*out = s->prefetch;
	return 7;
}

static void s_event(void *ctx, const struct dmm_block_view *blk, const struct dmm_event *ev)
{
	struct script *s = ctx;

	s->events[ev->type]++;
	if (!blk)
		return;
	s->with_block[ev->type]++;
	if (ev->addr < blk->start + (uint64_t)blk->first * PG ||
	    ev->addr + ev->npages * PG > blk->start + (uint64_t)(blk->first + blk->npages) * PG ||
	    blk->now != ev->t)
		s->bad_view++;
	if (ev->type == DMM_EV_MIGRATE && *blk->policy_data == s)
		s->tagged_migrations++;
}

static const struct dmm_policy_ops scripted = {
	.name = "scripted",
	.init = s_init,
	.fault = s_fault,
	.prefetch = s_prefetch,
	.on_event = s_event,
};

static int setup(void **state)
{
	struct pfx *p = calloc(1, sizeof(*p));
	struct dmm_engine_config cfg = { .policy = &scripted };

	memset(&S, 0, sizeof(S));
	if (!p)
		return -1;
	p->sys = sys_new(PFX_FRAMES);
	if (!p->sys || dmm_mm_create(p->sys, &p->mm) || dmm_engine_create(p->mm, &cfg, &p->eng) ||
	    managed_dev_create(p->sys, p->eng, PFX_DEV_PAGES, 0, &p->dev) ||
	    dmm_engine_set(p->eng, "fault_max_batches_per_service", 1))
		return -1;
	p->gpu = managed_dev_proc(p->dev);
	MAP_ANON(p->mm, TBASE, PFX_RANGE_PAGES);
	OK(dmm_engine_range_add(p->eng, TBASE, 16 * PG)); /* pages 0..15 of block 0 */
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	pfx_free(*state);
	return 0;
}

static void test_throttle(void **state)
{
	struct pfx *p = *state;
	struct dmm_service_result res;
	struct dmm_stream_info si;
	uint32_t v = 1;

	S.use = true;
	S.next = (struct dmm_action){ .type = DMM_ACT_THROTTLE, .until = 500000, .cause = DMM_CAUSE_FAULT };
	EXPECT_RC(-EAGAIN, managed_access(p->dev, 2, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.throttled, 1);
	EQ(res.throttled_batches, 1);
	EQ(stats_of(p->eng).far_faults, 0);
	OK(dmm_engine_stream(p->eng, p->gpu, 2, &si));
	EQ(si.clock, 500000); /* slept until the throttle's end */
	TRUE(!si.stalled);
	EQ(S.events[DMM_EV_THROTTLE], 1);
	EQ(stats_of(p->eng).t_throttle, 500000 - (11600 + 0));
	S.use = false;
	OK(GPU_RUN(p, 2, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	EQ(stats_of(p->eng).far_faults, 1);
}

static void test_pin_until_deadline(void **state)
{
	struct pfx *p = *state;
	uint32_t v = 1;

	S.use = true;
	S.next = (struct dmm_action){ .type = DMM_ACT_PIN, .dst = p->gpu, .until = 1000000,
				      .cause = DMM_CAUSE_THRASH_PIN };
	OK(GPU_RUN(p, 0, TBASE + 3 * PG, DMM_ACCESS_WRITE, &v, sizeof(v)));
	EQ(stats_of(p->eng).pins, 1);
	EQ(stats_of(p->eng).pages_by_cause[DMM_CAUSE_THRASH_PIN], 1);
	EQ(stats_of(p->eng).far_faults, 1); /* a pin that moves the page is a far fault */
	EQ(PTE(p->mm, TBASE + 3 * PG).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	/* The next batch after the deadline unpins it. */
	S.use = false;
	OK(dmm_engine_compute(p->eng, p->gpu, 1, 2000000));
	OK(GPU_RUN(p, 1, TBASE + 4 * PG, DMM_ACCESS_WRITE, &v, sizeof(v)));
	EQ(stats_of(p->eng).unpins, 1);
	EQ(S.events[DMM_EV_UNPIN], 1);
}

/* A CPU fault on a page pinned on the device must still be served: the
 * page comes back and its pin ends (an UNPIN event), so that no page is
 * pinned where it is not. */
static void test_cpu_fault_ends_pin(void **state)
{
	struct pfx *p = *state;
	uint32_t v = 9;

	S.use = true;
	S.next = (struct dmm_action){ .type = DMM_ACT_PIN, .dst = p->gpu, .until = 1000000000,
				      .cause = DMM_CAUSE_THRASH_PIN };
	OK(GPU_RUN(p, 0, TBASE + 3 * PG, DMM_ACCESS_WRITE, &v, sizeof(v)));
	EQ(stats_of(p->eng).pins, 1);
	EQ(LOAD(p->mm, TBASE + 3 * PG), 9);
	EQ(PTE(p->mm, TBASE + 3 * PG).kind, DMM_PTE_PRESENT);
	EQ(stats_of(p->eng).unpins, 1);
	EQ(S.events[DMM_EV_UNPIN], 1);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

static void test_skip_and_refused(void **state)
{
	struct pfx *p = *state;
	struct dmm_service_result res;
	uint32_t v = 1;

	S.use = true;
	S.next = (struct dmm_action){ .type = DMM_ACT_SKIP };
	EXPECT_RC(-EAGAIN, managed_access(p->dev, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	SERVICE_CHECKED(p);
	EQ(stats_of(p->eng).far_faults, 0);
	EXPECT_RC(-EAGAIN, managed_access(p->dev, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	S.next = (struct dmm_action){ .type = DMM_ACT_DUPLICATE, .dst = p->gpu };
	OK(dmm_engine_service(p->eng, p->gpu, &res));
	EQ(res.cancelled, 1);
	EQ(stats_of(p->eng).refused, 1);
	EXPECT_RC(-EOPNOTSUPP, managed_access(p->dev, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

/* A device fault the policy sends to the CPU: the page stays (it is on
 * the CPU already); one resident on the device comes back. */
static void test_migrate_elsewhere(void **state)
{
	struct pfx *p = *state;
	uint32_t v = 5;

	OK(GPU_RUN(p, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	EQ(PTE(p->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	/* Drop the device's mapping (mprotect to the same protection is a
	 * no-op; a CLEAR through madvise would free the page): fork does it. */
	{
		struct dmm_mm *child;

		OK(dmm_fork(p->mm, &child));
		dmm_mm_exit(child);
	}
	S.use = true;
	S.next = (struct dmm_action){ .type = DMM_ACT_MIGRATE, .dst = DMM_PROC_CPU, .cause = DMM_CAUSE_COHERENCE };
	EXPECT_RC(-EAGAIN, managed_access(p->dev, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	SERVICE_CHECKED(p);
	EQ(PTE(p->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(stats_of(p->eng).pages_by_cause[DMM_CAUSE_COHERENCE], 1);
	EQ(LOAD(p->mm, TBASE), 5);
}

/* The prefetch answer, trimmed: the faulted page, a page already on the
 * device and pages outside the range (16..) are dropped. */
static void test_prefetch_trimmed(void **state)
{
	struct pfx *p = *state;
	uint32_t v = 0;

	OK(GPU_RUN(p, 0, TBASE + 2 * PG, DMM_ACCESS_READ, &v, sizeof(v)));
	S.do_prefetch = true;
	for (unsigned int i = 0; i < 64; i++)
		S.prefetch.w[i / 64] |= 1ULL << (i % 64);
	OK(GPU_RUN(p, 0, TBASE, DMM_ACCESS_READ, &v, sizeof(v)));
	/* 16 pages in the range: page 2 was there, page 0 faulted, 14 prefetched. */
	EQ(stats_of(p->eng).pages_by_cause[DMM_CAUSE_PREFETCH], 14);
	EQ(stats_of(p->eng).pages_by_cause[DMM_CAUSE_FAULT], 2);
	EQ(stats_of(p->eng).far_faults, 2);
	for (unsigned int i = 0; i < 16; i++)
		EQ(PTE(p->mm, TBASE + i * PG).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	EQ(PTE(p->mm, TBASE + 16 * PG).kind, DMM_PTE_NONE);
	EQ(managed_dev_used(p->dev), 16);
	/* The second batch moved 15 pages: page 0 and the 14 prefetched. */
	{
		uint64_t b[2];

		EQ(dmm_engine_batch_htod(p->eng, b, 2), 2);
		EQ(b[1], 15 * PG);
	}
}

/* on_event gets the view of the event's block, with the policy_data the
 * fault hook left there (the thrashing detector's per-block state); the
 * events not about one block (batch, replay) get none. */
static void test_event_block_view(void **state)
{
	struct pfx *p = *state;
	uint32_t v = 1;

	S.tag = true;
	S.do_prefetch = true;
	S.prefetch.w[0] = 0xf0; /* pages 4..7 along with the fault on page 0 */
	OK(GPU_RUN(p, 0, TBASE, DMM_ACCESS_WRITE, &v, sizeof(v)));
	EQ(S.events[DMM_EV_MIGRATE], 5);
	EQ(S.with_block[DMM_EV_MIGRATE], 5);
	EQ(S.tagged_migrations, 5);
	EQ(S.with_block[DMM_EV_FAULT], 1);
	TRUE(S.events[DMM_EV_BATCH] >= 1);
	TRUE(S.events[DMM_EV_REPLAY] >= 1);
	EQ(S.with_block[DMM_EV_BATCH], 0);
	EQ(S.with_block[DMM_EV_REPLAY], 0);
	/* The CPU takes page 0 back: its MIGRATE and CPU_FAULT come with the block. */
	S.do_prefetch = false;
	EQ(LOAD(p->mm, TBASE), 1);
	EQ(S.with_block[DMM_EV_CPU_FAULT], 1);
	EQ(S.tagged_migrations, 6);
	EQ(S.bad_view, 0);
	ENGINE_CHECK(p->eng);
	CHECK_OK(p->sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_until_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpu_fault_ends_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skip_and_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_trimmed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_block_view, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
