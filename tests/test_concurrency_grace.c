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
 *
 * The same stall shows that a page-table page munmap unlinks stays until
 * the reader, who holds a pointer to it, is done. Without a reader,
 * munmap gives back every page-table page no VMA needs any more (the
 * counts: the mm's, the pgtable_alloc/free statistics, dmm_check's).
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

static void stall_on_any_page(struct dmm_page *p)
{
	(void)p;
	if (atomic_load(&stalled))
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
	unsigned int flags; /* 0: DMM_FOLL_GET */
	long rc;
	uint64_t pfns[8];
};

static void *fast_reader_fn(void *arg)
{
	struct fast_reader *r = arg;

	r->rc = dmm_get_user_pages_fast(r->mm, r->addr, r->nr, r->flags ? r->flags : DMM_FOLL_GET, r->pfns);
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

/* ------------------------------------------------------------------------ */
/* Page-table pages                                                          */

static long nr_tables(struct gfx *g)
{
	return atomic_load(&g->mm->nr_pgtables);
}

/* The tables the statistics say are allocated, over every mm. */
static long stat_tables(struct gfx *g)
{
	struct dmm_stats st;

	OK(dmm_stats_get(g->sys, &st));
	return (long)(st.pgtable_alloc - st.pgtable_free);
}

/* Touch one page in each 2 MiB of [addr, addr + len). */
static void touch_each_table(struct gfx *g, uint64_t addr, uint64_t len)
{
	for (uint64_t a = addr; a < addr + len; a += PTE_TABLE_SPAN)
		OK(dmm_store32(g->mm, a, 1));
}

#define MiB (1UL << 20)
#define GiB (1UL << 30)

/*
 *   TBASE (1 GiB aligned)                                 + 64 MiB
 *   |<--------------------------- VMA ---------------------------->|
 *   one page touched per 2 MiB: 32 PTE tables, one PMD table, one PUD
 *
 *   munmap [+1 MiB, +3 MiB): two PTE tables half under each remaining
 *   piece stay; munmap [+16 MiB, +48 MiB): the 16 tables wholly inside go;
 *   munmap all: everything goes.
 */
static void test_munmap_frees_page_tables(void **state)
{
	struct gfx *g = *state;
	uint64_t base = TBASE, len = 64 * MiB;
	long before = nr_tables(g);

	EQ(before, 0);
	OK(dmm_mmap(g->mm, base, len, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	touch_each_table(g, base, len);
	EQ(nr_tables(g), 32 + 2);
	EQ(stat_tables(g), nr_tables(g));
	CHECK_OK(g->sys);

	OK(dmm_munmap(g->mm, base + 1 * MiB, 2 * MiB));
	EQ(nr_tables(g), 34);
	OK(dmm_munmap(g->mm, base + 16 * MiB, 32 * MiB));
	EQ(nr_tables(g), 34 - 16);
	CHECK_OK(g->sys);

	OK(dmm_munmap(g->mm, base, len));
	EQ(nr_tables(g), 0);
	EQ(stat_tables(g), 0);
	CHECK_OK(g->sys);
	rcu_barrier(); /* and the memory is really given back (ASan's leak check) */
}

/* Many map/touch/unmap rounds leave nothing behind. */
static void test_map_unmap_rounds_keep_no_tables(void **state)
{
	struct gfx *g = *state;

	for (int i = 0; i < 200; i++) {
		uint64_t addr = TBASE + (uint64_t)(i % 7) * GiB + (uint64_t)(i % 5) * 3 * MiB;

		OK(dmm_mmap(g->mm, addr, 8 * MiB, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
		touch_each_table(g, addr, 8 * MiB);
		OK(dmm_munmap(g->mm, addr, 8 * MiB));
		EQ(nr_tables(g), 0);
	}
	EQ(stat_tables(g), 0);
	CHECK_OK(g->sys);
}

/* A table shared with a neighbouring VMA stays; the neighbour's entries
 * with it. */
static void test_munmap_keeps_tables_of_neighbours(void **state)
{
	struct gfx *g = *state;
	uint64_t a = TBASE, b = TBASE + 2 * MiB - PG; /* b's first page shares a's table */
	uint32_t v = 0;

	OK(dmm_mmap(g->mm, a, PG, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	OK(dmm_mmap(g->mm, b, 4 * PG, DMM_PROT_READ, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	OK(dmm_store32(g->mm, a, 42));
	OK(dmm_load32(g->mm, b + 3 * PG, &v)); /* the zero page, in the next table */
	EQ(nr_tables(g), 2 + 2);
	OK(dmm_munmap(g->mm, b, 4 * PG));
	EQ(nr_tables(g), 1 + 2); /* the second table went, a's stays */
	OK(dmm_load32(g->mm, a, &v));
	EQ(v, 42);
	CHECK_OK(g->sys);
	OK(dmm_munmap(g->mm, a, PG));
	EQ(nr_tables(g), 0);
	CHECK_OK(g->sys);
}

/* mremap moves the entries and frees the source's tables. */
static void test_mremap_frees_source_tables(void **state)
{
	struct gfx *g = *state;
	uint32_t v = 0;

	OK(dmm_mmap(g->mm, TBASE, 4 * MiB, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	touch_each_table(g, TBASE, 4 * MiB);
	OK(dmm_mremap(g->mm, TBASE, 4 * MiB, 4 * MiB, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED,
		      TBASE + 4 * GiB));
	EQ(nr_tables(g), 2 + 2); /* only the target's: 2 PTE, its PMD and PUD */
	OK(dmm_load32(g->mm, TBASE + 4 * GiB + 2 * MiB, &v));
	EQ(v, 1);
	CHECK_OK(g->sys);
}

/*
 * A GUP-fast reader stalled with a pointer to a PTE table that munmap
 * unlinks: the table is freed only after the reader is done. The page
 * keeps an extra reference, so the reader gets its reference and then
 * re-reads the entry through its (unlinked) table: it finds it cleared and
 * lets go.
 */
static void test_stalled_gup_fast_keeps_pte_table(void **state)
{
	struct gfx *g = *state;
	struct fast_reader r = { .mm = g->mm, .addr = TBASE, .nr = 1 };
	struct dmm_pte_info pi;
	struct dmm_page_info page;
	pthread_t b;

	OK(dmm_mmap(g->mm, TBASE, PG, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	OK(dmm_store32(g->mm, TBASE, 7));
	OK(dmm_pte_query(g->mm, TBASE, &pi));
	OK(dmm_get_page(g->sys, pi.pfn));
	stall_reader_start(&r, stall_on_any_page);
	OK(dmm_munmap(g->mm, TBASE, PG));
	EQ(nr_tables(g), 0); /* unlinked */
	atomic_store(&barrier_done, 0);
	assert_int_equal(pthread_create(&b, NULL, barrier_fn, NULL), 0);
	sleep_ms(50);
	EQ(atomic_load(&barrier_done), 0);
	stall_reader_finish(&r);
	pthread_join(b, NULL);
	EQ(atomic_load(&barrier_done), 1);
	EXPECT_RC(-EFAULT, r.rc);
	OK(dmm_page_query(g->sys, pi.pfn, &page));
	EQ(page.refcount, 1); /* ours only: the reader let go */
	dmm_put_page(g->sys, pi.pfn);
	CHECK_OK(g->sys);
}

/*
 * A GUP-fast reader stalled in try_get_folio, after it read the folio of
 * the page it found and before it counted on that folio:
 *
 *      reader (GUP-fast)                    main
 *      entry -> page p (page 8 of an
 *      order-4 folio F), folio = F
 *      [stalled in the hook]  ----------->  munmap: F is freed whole
 *                                           order 2 at F's head (G), order 3
 *                                           at p (H): F's block is split
 *      <-----------------------------------  go
 *      count on "F": that is G now
 *
 * Before the fix the reference (or pin) landed on G, the entry recheck
 * failed, and the reader gave back what it took to page_folio(p), H: G
 * kept a leaked count and H lost one (freed under its owner; a pin
 * underflowed H's pincount). try_get_folio sees p is no longer G's, gives
 * G back exactly what it added, and takes H instead, which the entry
 * recheck then gives back.
 */
static void stall_in_try_get_folio(struct dmm_page *page, struct dmm_page *folio)
{
	(void)page;
	(void)folio;
	if (atomic_load(&stalled))
		return;
	atomic_store(&stalled, 1);
	while (!atomic_load(&go))
		sched_yield();
}

static void folio_reused_under_gup_fast(struct gfx *g, unsigned int flags)
{
	struct fast_reader r = { .mm = g->mm, .addr = TBASE + 8 * PG, .nr = 1, .flags = flags };
	struct dmm_pte_info pte;
	struct dmm_page_info pi;
	struct dmm_page *p, *G, *H;
	uint64_t head;

	OK(dmm_system_set_mthp(g->sys, 1u << 4));
	OK(dmm_mmap(g->mm, TBASE, 16 * PG, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	OK(dmm_store32(g->mm, TBASE + 8 * PG, 7));
	OK(dmm_pte_query(g->mm, TBASE + 8 * PG, &pte));
	OK(dmm_page_query(g->sys, pte.pfn, &pi));
	EQ(pi.order, 4);
	head = pi.head_pfn;
	p = pfn_to_page(g->sys, head + 8);

	atomic_store(&stalled, 0);
	atomic_store(&go, 0);
	atomic_store(&try_get_folio_hook, stall_in_try_get_folio);
	assert_int_equal(pthread_create(&r.t, NULL, fast_reader_fn, &r), 0);
	while (!atomic_load(&stalled))
		sched_yield();
	OK(dmm_munmap(g->mm, TBASE, 16 * PG));
	G = folio_alloc(g->sys, 2, 0);
	H = folio_alloc(g->sys, 3, 0);
	assert_non_null(G);
	assert_non_null(H);
	EQ(page_to_pfn(g->sys, G), head); /* the reader's folio pointer, now G */
	TRUE(H == p);			  /* the reader's page, now H's head */
	atomic_store(&go, 1);
	pthread_join(r.t, NULL);
	atomic_store(&try_get_folio_hook, NULL);

	EXPECT_RC(-EFAULT, r.rc); /* the entry was gone: the slow path found no VMA */
	EQ(page_ref_count(G), 1);
	EQ(page_ref_count(H), 1);
	EQ(folio_pincount(G), 0);
	EQ(folio_pincount(H), 0);
	CHECK_OK(g->sys);
	put_page(g->sys, G);
	put_page(g->sys, H);
	CHECK_OK(g->sys);
}

static void test_gup_fast_get_recheck_the_folio_it_counted_on(void **state)
{
	folio_reused_under_gup_fast(*state, DMM_FOLL_GET);
}

static void test_gup_fast_pin_recheck_the_folio_it_counted_on(void **state)
{
	folio_reused_under_gup_fast(*state, DMM_FOLL_PIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stalled_gup_fast_keeps_pgmap_metadata, gfx_setup,
						gfx_teardown),
		cmocka_unit_test_setup_teardown(test_pfn_lookups_race_unregister, gfx_setup, gfx_teardown),
		cmocka_unit_test_setup_teardown(test_munmap_frees_page_tables, gfx_setup, gfx_teardown),
		cmocka_unit_test_setup_teardown(test_map_unmap_rounds_keep_no_tables, gfx_setup, gfx_teardown),
		cmocka_unit_test_setup_teardown(test_munmap_keeps_tables_of_neighbours, gfx_setup, gfx_teardown),
		cmocka_unit_test_setup_teardown(test_mremap_frees_source_tables, gfx_setup, gfx_teardown),
		cmocka_unit_test_setup_teardown(test_stalled_gup_fast_keeps_pte_table, gfx_setup, gfx_teardown),
		cmocka_unit_test_setup_teardown(test_gup_fast_get_recheck_the_folio_it_counted_on, gfx_setup,
						gfx_teardown),
		cmocka_unit_test_setup_teardown(test_gup_fast_pin_recheck_the_folio_it_counted_on, gfx_setup,
						gfx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
