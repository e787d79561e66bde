/* SPDX-License-Identifier: MIT */
/*
 * Lifetimes under lockless readers, white-box: what a GUP-fast walker
 * holds a pointer to, without a reference, stays allocated until its read
 * section ends.
 *
 * The reader is stalled on purpose: gup_fast_hook runs between
 * pfn_to_page() and the speculative reference, the window in which the
 * walker holds a bare pointer to a frame's metadata. While it waits there:
 *
 *      reader (GUP-fast)                    main
 *      entry -> pfn -> page *p
 *      [stalled in the hook]  ----------->  munmap: the page is freed
 *                                           unregister its pgmap, then
 *                                           register + unregister 6 more
 *                                           rcu_barrier in a helper thread
 *                                           must still be waiting
 *      <-----------------------------------  go
 *      try to take a ref on *p: 0, so fall back; the slow path sees no VMA
 *
 * With the old "keep the last four retired pgmaps" rule, the metadata was
 * freed by the fifth later unregistration and the reader's reference
 * attempt was a use-after-free (ASan: heap-use-after-free in
 * try_grab_page).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "helpers.h"
#include "internal.h"
#include "testdrv.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct gfx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
};

static int gfx_setup(void **state)
{
	struct gfx *g = calloc(1, sizeof(*g));

	if (!g)
		return -1;
	g->sys = sys_new(4096);
	if (!g->sys || dmm_mm_create(g->sys, &g->mm)) {
		free(g);
		return -1;
	}
	rcu_barrier(); /* nothing of earlier tests pending: no batch drains mid-test */
	*state = g;
	return 0;
}

static int gfx_teardown(void **state)
{
	struct gfx *g = *state;

	dmm_system_destroy(g->sys);
	free(g);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* A GUP-fast reader stalled in the hook                                     */

static atomic_int stalled, go;

static void stall_on_device_page(struct dmm_page *p)
{
	if (!page_is_zone_device(p) || atomic_load(&stalled))
		return;
	atomic_store(&stalled, 1);
	while (!atomic_load(&go))
		sched_yield();
}

struct fast_reader {
	pthread_t t;
	struct dmm_mm *mm;
	uint64_t addr;
	unsigned long nr;
	long rc;
	uint64_t pfns[8];
};

static void *fast_reader_fn(void *arg)
{
	struct fast_reader *r = arg;

	r->rc = dmm_get_user_pages_fast(r->mm, r->addr, r->nr, DMM_FOLL_GET, r->pfns);
	return NULL;
}

static void stall_reader_start(struct fast_reader *r, void (*hook)(struct dmm_page *))
{
	atomic_store(&stalled, 0);
	atomic_store(&go, 0);
	atomic_store(&gup_fast_hook, hook);
	assert_int_equal(pthread_create(&r->t, NULL, fast_reader_fn, r), 0);
	while (!atomic_load(&stalled))
		sched_yield();
}

static void stall_reader_finish(struct fast_reader *r)
{
	atomic_store(&go, 1);
	pthread_join(r->t, NULL);
	atomic_store(&gup_fast_hook, NULL);
}

static atomic_int barrier_done;

static void *barrier_fn(void *arg)
{
	(void)arg;
	rcu_barrier();
	atomic_store(&barrier_done, 1);
	return NULL;
}

/* A coherent page of a fresh driver mapped (present) at addr. */
static struct testdrv *coherent_page_at(struct gfx *g, uint64_t addr)
{
	struct testdrv *drv;
	unsigned long moved = 0;

	OK(testdrv_create(g->sys, DMM_MEMORY_DEVICE_COHERENT, 16, &drv));
	OK(dmm_mmap(g->mm, addr, PG, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	OK(dmm_store32(g->mm, addr, 0x5eed));
	OK(testdrv_migrate_to_dev(drv, g->mm, addr, 1, &moved));
	EQ(moved, 1);
	return drv;
}

static void test_stalled_gup_fast_keeps_pgmap_metadata(void **state)
{
	struct gfx *g = *state;
	struct fast_reader r = { .mm = g->mm, .addr = TBASE, .nr = 1 };
	struct testdrv *drv = coherent_page_at(g, TBASE);
	pthread_t b;

	stall_reader_start(&r, stall_on_device_page);
	/* The reader holds a pointer into drv's pgmap and no reference. The
	 * page goes, then the pgmap, then enough others to push it out of
	 * any fixed-size ring of retired pgmaps. */
	OK(dmm_munmap(g->mm, TBASE, PG));
	EQ(testdrv_used(drv), 0);
	testdrv_destroy(drv);
	for (int i = 0; i < 6; i++) {
		struct testdrv *other;

		OK(testdrv_create(g->sys, DMM_MEMORY_DEVICE_COHERENT, 16, &other));
		testdrv_destroy(other);
	}
	/* Freeing what was unregistered waits for the stalled reader. */
	atomic_store(&barrier_done, 0);
	assert_int_equal(pthread_create(&b, NULL, barrier_fn, NULL), 0);
	sleep_ms(50);
	EQ(atomic_load(&barrier_done), 0);
	stall_reader_finish(&r);
	pthread_join(b, NULL);
	EQ(atomic_load(&barrier_done), 1);
	/* The page was free: no reference; the slow path found no VMA. */
	EXPECT_RC(-EFAULT, r.rc);
	CHECK_OK(g->sys);
}

/* A speculative driver reference by pfn (dmm_get_page) and page queries on
 * the pfns of a pgmap that is being unregistered and registered again. */
static atomic_int churn_stop;
static _Atomic uint64_t churn_first;
static atomic_long churn_refs; /* references wrongly obtained */

static void *pfn_prober(void *arg)
{
	struct gfx *g = arg;

	while (!atomic_load(&churn_stop)) {
		uint64_t first = atomic_load(&churn_first);

		for (uint64_t i = 0; i < 16; i++) {
			struct dmm_page_info pi;

			/* Free device pages: no reference can be had. */
			if (dmm_get_page(g->sys, first + i) != -EINVAL)
				atomic_fetch_add(&churn_refs, 1);
			(void)dmm_page_query(g->sys, first + i, &pi);
			(void)dmm_page_pgmap(g->sys, first + i);
		}
	}
	return NULL;
}

static void test_pfn_lookups_race_unregister(void **state)
{
	struct gfx *g = *state;
	pthread_t t;

	{
		struct testdrv *drv;

		OK(testdrv_create(g->sys, DMM_MEMORY_DEVICE_PRIVATE, 16, &drv));
		atomic_store(&churn_first, dmm_pgmap_pfn_first(drv->pgmap));
		testdrv_destroy(drv);
	}
	atomic_store(&churn_stop, 0);
	assert_int_equal(pthread_create(&t, NULL, pfn_prober, g), 0);
	for (int i = 0; i < 300; i++) {
		struct testdrv *drv;

		OK(testdrv_create(g->sys, i % 2 ? DMM_MEMORY_DEVICE_PRIVATE : DMM_MEMORY_DEVICE_COHERENT, 16,
				  &drv));
		EQ(dmm_pgmap_pfn_first(drv->pgmap), atomic_load(&churn_first));
		testdrv_destroy(drv);
	}
	atomic_store(&churn_stop, 1);
	pthread_join(t, NULL);
	EQ(atomic_load(&churn_refs), 0);
	CHECK_OK(g->sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stalled_gup_fast_keeps_pgmap_metadata, gfx_setup,
						gfx_teardown),
		cmocka_unit_test_setup_teardown(test_pfn_lookups_race_unregister, gfx_setup, gfx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
