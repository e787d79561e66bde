/* SPDX-License-Identifier: MIT */
/*
 * Anonymous mTHP faults (large-folios.md §1.5 "mTHP") and the PTE
 * operations on the PTE-mapped large folios they create: the order taken,
 * the fallbacks, and mprotect, mremap, fork and CoW keeping the folio
 * large and its counts right.
 */
#include "helpers.h"

#include "internal.h"

#define O(n) (1u << (n))

static struct dmm_page_info query(struct fx *f, uint64_t pfn)
{
	struct dmm_page_info pi;

	OK(dmm_page_query(f->sys, pfn, &pi));
	return pi;
}

static unsigned int order_at(struct fx *f, uint64_t addr)
{
	return query(f, PFN(f->mm, addr)).order;
}

static void test_set_mthp_accepts_orders_2_to_8_only(void **state)
{
	struct fx *f = *state;
	struct dmm_system_config cfg = { .nr_frames = 64, .mthp_orders = O(9) };
	struct dmm_system *sys = NULL;

	EXPECT_RC(-EINVAL, dmm_system_set_mthp(NULL, O(4)));
	EXPECT_RC(-EINVAL, dmm_system_set_mthp(f->sys, O(1)));
	EXPECT_RC(-EINVAL, dmm_system_set_mthp(f->sys, O(0) | O(4)));
	EXPECT_RC(-EINVAL, dmm_system_set_mthp(f->sys, O(9)));
	EXPECT_RC(-EINVAL, dmm_system_create(&cfg, &sys));
	OK(dmm_system_set_mthp(f->sys, DMM_MTHP_ORDERS_ALLOWED));
	OK(dmm_system_set_mthp(f->sys, 0));
}

static void test_a_write_fault_maps_the_highest_order_that_fits(void **state)
{
	struct fx *f = *state;
	uint64_t pfn;
	struct dmm_stats s0 = STATS(f->sys);

	OK(dmm_system_set_mthp(f->sys, O(2) | O(4)));
	MAP_ANON(f->mm, TBASE, 32);
	FILL(f->mm, TBASE + 21 * PG, 64, 0x500);
	pfn = PFN(f->mm, TBASE + 16 * PG);
	EQ(order_at(f, TBASE + 21 * PG), 4);
	EQ(pfn & 15, 0);
	for (int i = 0; i < 16; i++) {
		EQ(PFN(f->mm, TBASE + (16 + i) * PG), pfn + i);
		TRUE(PTE(f->mm, TBASE + (16 + i) * PG).write);
		FLAGS(query(f, pfn + i).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	}
	PTE_NONE(f->mm, TBASE + 15 * PG);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 16);
	EQ(STAT_DELTA(f->sys, s0, fault_mthp), 1);
	EQ(query(f, pfn).refcount, 16);
	EQS(query(f, pfn).folio_mapcount, 16);
	VERIFY(f->mm, TBASE + 21 * PG, 64, 0x500);
	VERIFY_ZERO(f->mm, TBASE + 16 * PG, 5 * PG);
	CHECK_OK(f->sys);
}

static void test_the_vma_and_present_ptes_lower_the_order(void **state)
{
	struct fx *f = *state;

	OK(dmm_system_set_mthp(f->sys, O(2) | O(4)));
	/* The 16-page range around page 5 leaves the VMA: order 2. */
	MAP_ANON(f->mm, TBASE + 2 * PG, 6);
	FILL(f->mm, TBASE + 5 * PG, 4, 1);
	EQ(order_at(f, TBASE + 5 * PG), 2);
	EQ(PFN(f->mm, TBASE + 4 * PG) + 1, PFN(f->mm, TBASE + 5 * PG));
	/* [2, 4) fits no enabled order: order 0. */
	FILL(f->mm, TBASE + 3 * PG, 4, 2);
	EQ(order_at(f, TBASE + 3 * PG), 0);
	/* A zero-page PTE inside the 16-page range: order 2 around it. */
	MAP_ANON(f->mm, TBASE + 32 * PG, 16);
	EQ(LOAD(f->mm, TBASE + 33 * PG), 0);
	FILL(f->mm, TBASE + 42 * PG, 4, 3);
	EQ(order_at(f, TBASE + 42 * PG), 2);
	EQ(PFN(f->mm, TBASE + 33 * PG), DMM_ZERO_PFN);
	CHECK_OK(f->sys);
}

static void test_read_faults_and_nohugepage_stay_small(void **state)
{
	struct fx *f = *state;

	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE, 32);
	EQ(LOAD(f->mm, TBASE + 3 * PG), 0);
	EQ(PFN(f->mm, TBASE + 3 * PG), DMM_ZERO_PFN);
	PTE_NONE(f->mm, TBASE + 4 * PG);
	OK(dmm_madvise(f->mm, TBASE + 16 * PG, 16 * PG, DMM_MADV_NOHUGEPAGE));
	FILL(f->mm, TBASE + 20 * PG, 4, 4);
	EQ(order_at(f, TBASE + 20 * PG), 0);
	PTE_NONE(f->mm, TBASE + 21 * PG);
	CHECK_OK(f->sys);
}

static void test_a_failed_allocation_falls_to_the_next_order(void **state)
{
	struct fx *f = *state;
	struct dmm_inject_config one = { .countdown = 1 };

	OK(dmm_system_set_mthp(f->sys, O(2) | O(4)));
	MAP_ANON(f->mm, TBASE, 32);
	OK(dmm_inject_set(f->sys, DMM_INJECT_THP_ALLOC, &one));
	FILL(f->mm, TBASE + 6 * PG, 4, 5);
	EQ(order_at(f, TBASE + 6 * PG), 2);
	/* The only enabled order fails: an order-0 page. */
	one.countdown = 1;
	OK(dmm_inject_set(f->sys, DMM_INJECT_THP_ALLOC, &one));
	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE + 64 * PG, 16);
	FILL(f->mm, TBASE + 65 * PG, 4, 7);
	EQ(order_at(f, TBASE + 65 * PG), 0);
	PTE_NONE(f->mm, TBASE + 64 * PG);
	EQ(dmm_inject_count(f->sys, DMM_INJECT_THP_ALLOC), 2);
	CHECK_OK(f->sys);
}

static void test_mprotect_and_mremap_keep_the_folio_large(void **state)
{
	struct fx *f = *state;
	uint64_t pfn, dst = TBASE + 256 * PG;

	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE, 16);
	FILL(f->mm, TBASE, 16 * PG, 0x700);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_mprotect(f->mm, TBASE + 4 * PG, 4 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	TRUE(!PTE(f->mm, TBASE + 5 * PG).write);
	OK(dmm_mprotect(f->mm, TBASE, 16 * PG, RW));
	/* Still exclusive: the write reuses the page in place. */
	FILL(f->mm, TBASE + 5 * PG, 4, 0x777);
	EQ(PFN(f->mm, TBASE + 5 * PG), pfn + 5);
	EQ(query(f, pfn).order, 4);
	/* Half of it moves elsewhere: PTEs move, the folio stays large. */
	OK(dmm_mremap(f->mm, TBASE + 8 * PG, 8 * PG, 8 * PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, dst));
	EQ(PFN(f->mm, dst + 3 * PG), pfn + 11);
	EQ(query(f, pfn).order, 4);
	EQS(query(f, pfn).folio_mapcount, 16);
	VERIFY(f->mm, dst, 8 * PG, 0x700 + 8 * PG / 4);
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, dst, 8 * PG));
	EQS(query(f, pfn).folio_mapcount, 8);
	FLAGS(query(f, pfn).flags, DMM_PAGE_PARTIALLY_MAPPED, 0);
	CHECK_OK(f->sys);
}

static void test_cow_after_fork_copies_one_small_page(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn;

	OK(dmm_system_set_mthp(f->sys, O(3)));
	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 0x900);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	EQS(query(f, pfn).folio_mapcount, 16);
	FILL(f->mm, TBASE + 2 * PG, 4, 0x999);
	/* One order-0 copy; the folio stays, partially mapped by the parent. */
	EQ(order_at(f, TBASE + 2 * PG), 0);
	NE(PFN(f->mm, TBASE + 2 * PG), pfn + 2);
	EQ(PFN(f->mm, TBASE + 3 * PG), pfn + 3);
	EQS(query(f, pfn).folio_mapcount, 15);
	VERIFY(child, TBASE, 8 * PG, 0x900);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	EQS(query(f, pfn).folio_mapcount, 7);
	FLAGS(query(f, pfn).flags, DMM_PAGE_PARTIALLY_MAPPED, 0);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* Two threads fault the same ranges at once: one folio per range wins.      */

struct racer {
	struct dmm_mm *mm;
	uint64_t first; /* page index of this thread's pages in each range */
	int rounds;
};

static void *race_main(void *arg)
{
	struct racer *r = arg;

	for (int k = 0; k < r->rounds; k++) {
		uint32_t v = 0x1000 + (uint32_t)(k * 16 + r->first);

		if (dmm_write(r->mm, TBASE + ((uint64_t)k * 16 + r->first) * PG, &v, sizeof(v)))
			return (void *)1;
	}
	return NULL;
}

static void test_racing_faults_map_one_folio_per_range(void **state)
{
	struct fx *f = *state;
	enum { ROUNDS = 64 };
	struct racer r[2] = { { f->mm, 3, ROUNDS }, { f->mm, 12, ROUNDS } };
	pthread_t th[2];
	void *rc;

	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE, ROUNDS * 16);
	for (int t = 0; t < 2; t++)
		TRUE(pthread_create(&th[t], NULL, race_main, &r[t]) == 0);
	for (int t = 0; t < 2; t++) {
		TRUE(pthread_join(th[t], &rc) == 0);
		TRUE(rc == NULL);
	}
	for (int k = 0; k < ROUNDS; k++) {
		uint64_t base = TBASE + (uint64_t)k * 16 * PG;

		/* Whichever thread won, both writes landed in one folio. */
		EQ(order_at(f, base + 3 * PG), 4);
		EQ(PFN(f->mm, base + 12 * PG), PFN(f->mm, base) + 12);
		EQ(LOAD(f->mm, base + 3 * PG), 0x1000 + k * 16 + 3);
		EQ(LOAD(f->mm, base + 12 * PG), 0x1000 + k * 16 + 12);
	}
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), ROUNDS * 16);
	CHECK_OK(f->sys);
}

static void test_the_last_mapper_reuses_a_page_of_a_large_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn;

	OK(dmm_system_set_mthp(f->sys, O(3)));
	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 0xa00);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	dmm_mm_exit(child);
	/* Mapped only here, no other reference: page 2 is reused in place,
	 * made exclusive and writable; its neighbours stay read-only. */
	FILL(f->mm, TBASE + 2 * PG, 4, 0xaaa);
	EQ(PFN(f->mm, TBASE + 2 * PG), pfn + 2);
	TRUE(PTE(f->mm, TBASE + 2 * PG).write);
	TRUE(!PTE(f->mm, TBASE + 3 * PG).write);
	FLAGS(query(f, pfn + 2).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	FLAGS(query(f, pfn + 3).flags, 0, DMM_PAGE_ANON_EXCLUSIVE);
	EQ(query(f, pfn).order, 3);
	CHECK_OK(f->sys);
}

static void test_a_shared_or_referenced_large_folio_is_copied(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn, got;

	OK(dmm_system_set_mthp(f->sys, O(3)));
	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 0xb00);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	/* The child unmapped a part only: still mapped by two processes. */
	OK(dmm_munmap(child, TBASE, 4 * PG));
	FILL(f->mm, TBASE + 1 * PG, 4, 0xbbb);
	NE(PFN(f->mm, TBASE + 1 * PG), pfn + 1);
	/* The child gone, a GET reference still blocks reuse. */
	dmm_mm_exit(child);
	EQ(dmm_get_user_pages(f->mm, TBASE + 6 * PG, 1, DMM_FOLL_GET, &got), 1);
	FILL(f->mm, TBASE + 2 * PG, 4, 0xbbc);
	NE(PFN(f->mm, TBASE + 2 * PG), pfn + 2);
	dmm_put_user_pages(f->sys, &got, 1);
	/* Without it, reuse. */
	FILL(f->mm, TBASE + 3 * PG, 4, 0xbbd);
	EQ(PFN(f->mm, TBASE + 3 * PG), pfn + 3);
	CHECK_OK(f->sys);
	/* A folio with one mapping left is copied (and so freed), not reused. */
	OK(dmm_munmap(f->mm, TBASE + 3 * PG, 5 * PG));
	EQS(query(f, pfn).folio_mapcount, 1);
	FILL(f->mm, TBASE, 4, 0xbbe);
	NE(PFN(f->mm, TBASE), pfn);
	FLAGS(query(f, pfn).flags, DMM_PAGE_FREE, 0);
	VERIFY(f->mm, TBASE + 4, PG - 4, 0xb00 + 1);
	CHECK_OK(f->sys);
}

/* MADV_FREE (large-folios.md §3.4): a range that covers the folio end to
 * end frees it whole, at once, as for an order-0 page. */
static void test_madv_free_of_the_whole_folio_frees_it(void **state)
{
	struct fx *f = *state;
	uint64_t free_before;

	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE, 16);
	FILL(f->mm, TBASE, 16 * PG, 0xa00);
	EQ(order_at(f, TBASE), 4);
	free_before = dmm_system_nr_free(f->sys);
	OK(dmm_madvise(f->mm, TBASE, 16 * PG, DMM_MADV_FREE));
	for (int i = 0; i < 16; i++)
		PTE_NONE(f->mm, TBASE + i * PG);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	EQ(dmm_system_nr_free(f->sys), free_before + 16);
	CHECK_OK(f->sys);
	VERIFY_ZERO(f->mm, TBASE, 16 * PG);
	CHECK_OK(f->sys);
}

/* What MADV_FREE leaves a large folio alone for: a range covering part of
 * it (Linux would split it first; devmm has no split_folio), a reference
 * or a pin someone else holds, sharing after fork. */
static void test_madv_free_leaves_a_held_or_shared_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn, pins[1];

	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE, 16);
	FILL(f->mm, TBASE, 16 * PG, 0xb00);
	pfn = PFN(f->mm, TBASE);
	/* Part of it, held: the split fails (failure ignored), nothing goes. */
	OK(dmm_get_page(f->sys, pfn + 2));
	OK(dmm_madvise(f->mm, TBASE + 4 * PG, 12 * PG, DMM_MADV_FREE));
	OK(dmm_madvise(f->mm, TBASE, 15 * PG, DMM_MADV_FREE));
	EQ(PFN(f->mm, TBASE + 4 * PG), pfn + 4);
	EQ(query(f, pfn).order, 4);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 16);
	VERIFY(f->mm, TBASE, 16 * PG, 0xb00);
	dmm_put_page(f->sys, pfn + 2);
	/* A driver's reference. */
	OK(dmm_get_page(f->sys, pfn + 7));
	OK(dmm_madvise(f->mm, TBASE, 16 * PG, DMM_MADV_FREE));
	EQ(PFN(f->mm, TBASE + 7 * PG), pfn + 7);
	dmm_put_page(f->sys, pfn + 7);
	/* A pin. */
	EQ(dmm_get_user_pages_fast(f->mm, TBASE + 9 * PG, 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, pins), 1);
	OK(dmm_madvise(f->mm, TBASE, 16 * PG, DMM_MADV_FREE));
	EQ(PFN(f->mm, TBASE + 9 * PG), pfn + 9);
	dmm_unpin_user_pages(f->sys, pins, 1);
	VERIFY(f->mm, TBASE, 16 * PG, 0xb00);
	CHECK_OK(f->sys);
	/* Shared with a child. */
	OK(dmm_fork(f->mm, &child));
	OK(dmm_madvise(f->mm, TBASE, 16 * PG, DMM_MADV_FREE));
	EQ(PFN(f->mm, TBASE), pfn);
	VERIFY(f->mm, TBASE, 16 * PG, 0xb00);
	VERIFY(child, TBASE, 16 * PG, 0xb00);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* A reference taken after the entries are cleared and before the count is
 * read (GUP-fast's window) keeps the folio: every entry comes back. */
static struct fx *lazy_fx;
static uint64_t lazy_pfn;

static void take_a_reference(void)
{
	OK(dmm_get_page(lazy_fx->sys, lazy_pfn));
}

static void test_madv_free_puts_the_folio_back_for_a_late_reference(void **state)
{
	struct fx *f = *state;

	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE, 16);
	FILL(f->mm, TBASE, 16 * PG, 0xc00);
	lazy_fx = f;
	lazy_pfn = PFN(f->mm, TBASE + 5 * PG);
	atomic_store(&lazyfree_hook, take_a_reference);
	OK(dmm_madvise(f->mm, TBASE, 16 * PG, DMM_MADV_FREE));
	atomic_store(&lazyfree_hook, NULL);
	for (int i = 0; i < 16; i++)
		EQ(PFN(f->mm, TBASE + i * PG), lazy_pfn - 5 + i);
	EQ(query(f, lazy_pfn).refcount, 17);
	dmm_put_page(f->sys, lazy_pfn);
	VERIFY(f->mm, TBASE, 16 * PG, 0xc00);
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_set_mthp_accepts_orders_2_to_8_only),
		T(test_a_write_fault_maps_the_highest_order_that_fits),
		T(test_the_vma_and_present_ptes_lower_the_order),
		T(test_read_faults_and_nohugepage_stay_small),
		T(test_a_failed_allocation_falls_to_the_next_order),
		T(test_mprotect_and_mremap_keep_the_folio_large),
		T(test_cow_after_fork_copies_one_small_page),
		T(test_racing_faults_map_one_folio_per_range),
		T(test_the_last_mapper_reuses_a_page_of_a_large_folio),
		T(test_a_shared_or_referenced_large_folio_is_copied),
		T(test_madv_free_of_the_whole_folio_frees_it),
		T(test_madv_free_leaves_a_held_or_shared_folio),
		T(test_madv_free_puts_the_folio_back_for_a_late_reference),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
