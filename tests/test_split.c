/* SPDX-License-Identifier: MIT */
/*
 * Folio split (large-folios.md §2.4) of PTE-mapped anonymous large folios
 * (mTHP): the checks and their errnos, the pieces' metadata, the remap
 * (each PTE to its own page, zero-filled pages to the shared zero page),
 * the references left, and the deferred-split queue.
 */
#include "helpers.h"

#include "internal.h"

#define O(n) (1u << (n))

static struct dmm_page_info query(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page_info pi;

	OK(dmm_page_query(sys, pfn, &pi));
	return pi;
}

/* split_folio as a caller does it: a reference and the folio lock. */
static int do_split(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *folio = page_folio(pfn_to_page(sys, pfn));
	int r;

	get_page(folio);
	lock_page(sys, folio);
	r = split_folio(sys, folio);
	unlock_page(sys, folio);
	put_page(sys, folio);
	return r;
}

/* An order-4 folio at TBASE, its first @filled pages written. */
static uint64_t make_folio(struct fx *f, int filled)
{
	OK(dmm_system_set_mthp(f->sys, O(4)));
	MAP_ANON(f->mm, TBASE, 16);
	FILL(f->mm, TBASE, (uint64_t)filled * PG, 0x5100);
	EQ(query(f->sys, PFN(f->mm, TBASE)).order, 4);
	return PFN(f->mm, TBASE);
}

static void test_a_split_leaves_small_independent_pages(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = make_folio(f, 16);
	struct dmm_stats s0 = STATS(f->sys);

	OK(do_split(f->sys, pfn));
	EQ(STAT_DELTA(f->sys, s0, thp_split), 1);
	for (int i = 0; i < 16; i++) {
		struct dmm_page_info pi = query(f->sys, pfn + i);
		struct dmm_page *p = pfn_to_page(f->sys, pfn + i);

		EQ(PFN(f->mm, TBASE + i * PG), pfn + i);
		TRUE(PTE(f->mm, TBASE + i * PG).write);
		EQ(pi.order, 0);
		EQ(pi.head_pfn, pfn + i);
		EQ(pi.refcount, 1);
		EQS(pi.mapcount, 1);
		EQS(pi.folio_mapcount, 1);
		FLAGS(pi.flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED | DMM_PAGE_PARTIALLY_MAPPED);
		EQ(page_index(p), page_index(pfn_to_page(f->sys, pfn)) + (uint64_t)i);
		TRUE(page_mapping(p) == page_mapping(pfn_to_page(f->sys, pfn)));
	}
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 16);
	VERIFY(f->mm, TBASE, 16 * PG, 0x5100);
	CHECK_OK(f->sys);
	/* Each piece goes on its own. */
	OK(dmm_munmap(f->mm, TBASE + 3 * PG, PG));
	FLAGS(query(f->sys, pfn + 3).flags, DMM_PAGE_FREE, 0);
	FLAGS(query(f->sys, pfn + 4).flags, 0, DMM_PAGE_FREE);
	CHECK_OK(f->sys);
}

static void test_zero_filled_pages_map_the_shared_zero_page(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = make_folio(f, 5);

	OK(do_split(f->sys, pfn));
	for (int i = 0; i < 16; i++) {
		struct dmm_pte_info pte = PTE(f->mm, TBASE + i * PG);

		if (i < 5) {
			EQ(pte.pfn, pfn + i);
			TRUE(pte.write);
			continue;
		}
		EQ(pte.pfn, DMM_ZERO_PFN);
		TRUE(pte.special && !pte.write);
		FLAGS(query(f->sys, pfn + i).flags, DMM_PAGE_FREE, 0);
	}
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 5);
	VERIFY(f->mm, TBASE, 5 * PG, 0x5100);
	VERIFY_ZERO(f->mm, TBASE + 5 * PG, 11 * PG);
	CHECK_OK(f->sys);
	/* A write to one of them faults in a fresh page. */
	FILL(f->mm, TBASE + 9 * PG, PG, 0x77);
	VERIFY(f->mm, TBASE + 9 * PG, PG, 0x77);
	CHECK_OK(f->sys);
}

static void test_a_shared_folio_splits_with_its_sharing_kept(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = make_folio(f, 16);
	struct dmm_mm *child;

	OK(dmm_fork(f->mm, &child));
	OK(do_split(f->sys, pfn));
	for (int i = 0; i < 16; i++) {
		struct dmm_page_info pi = query(f->sys, pfn + i);

		EQ(pi.order, 0);
		EQ(pi.refcount, 2);
		EQS(pi.mapcount, 2);
		FLAGS(pi.flags, DMM_PAGE_ANON, DMM_PAGE_ANON_EXCLUSIVE);
		EQ(PFN(child, TBASE + i * PG), pfn + i);
	}
	CHECK_OK(f->sys);
	/* CoW now copies one small page, and the other process keeps the old one. */
	FILL(child, TBASE, PG, 0x99);
	VERIFY(f->mm, TBASE, 16 * PG, 0x5100);
	dmm_mm_exit(child);
	EQ(query(f->sys, pfn).refcount, 1);
	CHECK_OK(f->sys);
}

static void test_extra_references_fail_with_eagain_and_change_nothing(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = make_folio(f, 16);
	uint64_t pinned = pfn + 7;

	OK(dmm_get_page(f->sys, pinned));
	EXPECT_RC(-EAGAIN, do_split(f->sys, pfn));
	EQ(query(f->sys, pfn + 3).order, 4);
	EQ(query(f->sys, pfn).refcount, 17);
	for (int i = 0; i < 16; i++)
		EQ(PFN(f->mm, TBASE + i * PG), pfn + i);
	CHECK_OK(f->sys);
	dmm_put_page(f->sys, pinned);
	EQ(dmm_get_user_pages(f->mm, TBASE + 2 * PG, 1, DMM_FOLL_WRITE | DMM_FOLL_PIN, &pinned), 1);
	EXPECT_RC(-EAGAIN, do_split(f->sys, pfn));
	EQ(query(f->sys, pfn).order, 4);
	dmm_unpin_user_pages(f->sys, &pinned, 1);
	OK(do_split(f->sys, pfn));
	EQ(query(f->sys, pfn + 2).order, 0);
	VERIFY(f->mm, TBASE, 16 * PG, 0x5100);
	CHECK_OK(f->sys);
}

static void test_what_may_not_split_says_why(void **state)
{
	struct fx *f = *state;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE + 64 * PG, 1);
	FILL(f->mm, TBASE + 64 * PG, PG, 1); /* mTHP off: an order-0 page */
	EXPECT_RC(-EINVAL, do_split(f->sys, PFN(f->mm, TBASE + 64 * PG)));
	pfn = make_folio(f, 16);
	/* Without an anon_vma the folio cannot be found to unmap. */
	{
		struct dmm_page *folio = pfn_to_page(f->sys, pfn);
		void *av = folio->mapping;

		get_page(folio);
		lock_page(f->sys, folio);
		folio->mapping = NULL;
		EXPECT_RC(-EBUSY, split_folio(f->sys, folio));
		folio->mapping = av;
		unlock_page(f->sys, folio);
		put_page(f->sys, folio);
	}
	EQ(query(f->sys, pfn).order, 4);
	CHECK_OK(f->sys);
}

static void test_a_split_takes_the_folio_off_the_deferred_queue(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = make_folio(f, 16);

	OK(dmm_munmap(f->mm, TBASE + 8 * PG, 8 * PG));
	FLAGS(query(f->sys, pfn).flags, DMM_PAGE_PARTIALLY_MAPPED, 0);
	EQ(f->sys->deferred_split.len, 1);
	OK(do_split(f->sys, pfn));
	EQ(f->sys->deferred_split.len, 0);
	for (int i = 0; i < 16; i++) {
		struct dmm_page_info pi = query(f->sys, pfn + i);

		EQ(pi.order, 0);
		FLAGS(pi.flags, i < 8 ? 0 : DMM_PAGE_FREE, DMM_PAGE_PARTIALLY_MAPPED | (i < 8 ? DMM_PAGE_FREE : 0));
	}
	VERIFY(f->mm, TBASE, 8 * PG, 0x5100);
	CHECK_OK(f->sys);
}

static void test_the_deferred_queue_runs_on_demand(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = make_folio(f, 16), held;
	unsigned long n = 99;

	EXPECT_RC(-EINVAL, dmm_deferred_split_scan(NULL, &n));
	OK(dmm_deferred_split_scan(f->sys, &n));
	EQ(n, 0);
	OK(dmm_munmap(f->mm, TBASE, 4 * PG));
	EQ(f->sys->deferred_split.len, 1);
	/* A reference beyond the mappings: it stays queued, untouched. */
	held = pfn + 9;
	OK(dmm_get_page(f->sys, held));
	OK(dmm_deferred_split_scan(f->sys, &n));
	EQ(n, 0);
	EQ(f->sys->deferred_split.len, 1);
	EQ(query(f->sys, pfn).order, 4);
	dmm_put_page(f->sys, held);
	/* A locked folio is skipped (trylock), and stays queued too. */
	lock_page(f->sys, pfn_to_page(f->sys, pfn));
	OK(dmm_deferred_split_scan(f->sys, &n));
	EQ(n, 0);
	unlock_page(f->sys, pfn_to_page(f->sys, pfn));
	OK(dmm_deferred_split_scan(f->sys, NULL));
	EQ(f->sys->deferred_split.len, 0);
	for (int i = 0; i < 16; i++)
		FLAGS(query(f->sys, pfn + i).flags, i < 4 ? DMM_PAGE_FREE : 0, i < 4 ? 0 : DMM_PAGE_FREE);
	VERIFY(f->mm, TBASE + 4 * PG, 12 * PG, 0x5100 + 4 * PG / 4);
	CHECK_OK(f->sys);
}

/* Without contents nothing can be seen to be zero: every page stays mapped. */
static void test_contents_none_keeps_every_page(void **state)
{
	struct dmm_system_config cfg = { .nr_frames = 256, .flags = DMM_SYS_NO_CONTENTS };
	struct dmm_system *sys = NULL;
	struct dmm_mm *mm;
	uint64_t pfn;

	(void)state;
	OK(dmm_system_create(&cfg, &sys));
	OK(dmm_system_set_mthp(sys, O(4)));
	OK(dmm_mm_create(sys, &mm));
	MAP_ANON(mm, TBASE, 16);
	OK(dmm_touch(mm, TBASE, PG, true));
	pfn = PFN(mm, TBASE);
	EQ(query(sys, pfn).order, 4);
	OK(do_split(sys, pfn));
	for (int i = 0; i < 16; i++)
		EQ(PFN(mm, TBASE + i * PG), pfn + i);
	EQ(dmm_mm_rss(mm, DMM_MM_ANONPAGES), 16);
	CHECK_OK(sys);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_a_split_leaves_small_independent_pages),
		T(test_zero_filled_pages_map_the_shared_zero_page),
		T(test_a_shared_folio_splits_with_its_sharing_kept),
		T(test_extra_references_fail_with_eagain_and_change_nothing),
		T(test_what_may_not_split_says_why),
		T(test_a_split_takes_the_folio_off_the_deferred_queue),
		T(test_the_deferred_queue_runs_on_demand),
		cmocka_unit_test(test_contents_none_keeps_every_page),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
