/* SPDX-License-Identifier: MIT */
/*
 * The operations on PMD leaves that keep them whole (large-folios.md §3.2,
 * §3.3, §3.5, §3.6, §3.8, §3.9): write and unshare faults on the huge zero
 * PMD and on a read-only PMD_THP, fork, mprotect, mremap, GUP (slow and
 * fast) and hmm_range_fault; and where each one splits instead. What the
 * scenario language cannot see is checked here: the PMD slot word itself,
 * rss, the 2 MiB invalidation of a split, the hmm order bits.
 */
#include <pthread.h>

#include "helpers.h"

#include "internal.h"

#define NPMD 512
#define HSIZE ((uint64_t)NPMD * PG)
#define HB TBASE		/* 2 MiB aligned */
#define HB2 (TBASE + 4 * HSIZE) /* another aligned range, far enough */

/* Invalidations seen over a window: the CLEAR ones and their extent. */
struct nsub {
	struct dmm_mmu_interval_notifier sub;
	pthread_mutex_t lock;
	unsigned long clear;
	uint64_t start, end; /* the last CLEAR */
};

static bool nsub_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			    unsigned long cur_seq)
{
	struct nsub *n = (struct nsub *)sub;

	pthread_mutex_lock(&n->lock);
	if (r->event == DMM_MMU_NOTIFY_CLEAR) {
		n->clear++;
		n->start = r->start;
		n->end = r->end;
	}
	dmm_mmu_interval_set_seq(sub, cur_seq);
	pthread_mutex_unlock(&n->lock);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops nsub_ops = { .invalidate = nsub_invalidate };

static void nsub_insert(struct nsub *n, struct dmm_mm *mm, uint64_t start, uint64_t len)
{
	memset(n, 0, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
	OK(dmm_mmu_interval_notifier_insert(&n->sub, mm, start, len, &nsub_ops));
}

static int thp_setup(void **state)
{
	int r = fx_setup_frames(state, 16384);
	struct fx *f = *state;

	if (!r)
		r = dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0);
	return r;
}

/* The PMD slot word at @addr. */
static pte_t slot(struct dmm_mm *mm, uint64_t addr)
{
	pte_t pmd;

	h_mmap_read_lock(mm);
	pmd_lookup(mm, addr, &pmd);
	h_mmap_read_unlock(mm);
	return pmd;
}

#define IS_THP_PMD(pmd) TRUE(pmd_leaf_present(pmd) && !pte_special(pmd))

static struct dmm_page_info query(struct fx *f, uint64_t pfn)
{
	struct dmm_page_info pi;

	OK(dmm_page_query(f->sys, pfn, &pi));
	return pi;
}

/* A written THP at @addr (one PMD); its head pfn. */
static uint64_t thp_at(struct dmm_mm *mm, uint64_t addr, uint32_t seed)
{
	MAP_ANON(mm, addr, NPMD);
	FILL(mm, addr, HSIZE, seed);
	IS_THP_PMD(slot(mm, addr));
	return pte_pfn(slot(mm, addr));
}

static void test_gup_takes_pages_from_the_pmd(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1);
	static uint64_t got[NPMD];
	struct dmm_stats s0 = STATS(f->sys);

	EQ(dmm_get_user_pages(f->mm, HB, NPMD, DMM_FOLL_PIN | DMM_FOLL_WRITE, got), NPMD);
	IS_THP_PMD(slot(f->mm, HB));
	for (int i = 0; i < NPMD; i++)
		EQ(got[i], pfn + (uint64_t)i);
	EQ(query(f, pfn).refcount, 1 + NPMD);
	EQ(query(f, pfn).pincount, NPMD);
	dmm_unpin_user_pages(f->sys, got, NPMD);
	/* the fast path takes them from the PMD too */
	EQ(dmm_get_user_pages_fast(f->mm, HB + 5 * PG, 4, DMM_FOLL_PIN, got), 4);
	EQ(STAT_DELTA(f->sys, s0, gup_fast_fallback), 0);
	EQ(got[0], pfn + 5);
	EQ(query(f, pfn).pincount, 4);
	dmm_unpin_user_pages(f->sys, got, 4);
	EQ(query(f, pfn).refcount, 1);
	CHECK_OK(f->sys);
}

static int hmm_snap(struct dmm_mm *mm, uint64_t start, uint64_t npages, uint64_t *pfns, uint64_t req)
{
	struct nsub n;
	struct dmm_hmm_range range = { .notifier = &n.sub, .start = start, .end = start + npages * PG,
				       .hmm_pfns = pfns, .default_flags = req };
	int r;

	nsub_insert(&n, mm, start, npages * PG);
	do {
		range.notifier_seq = dmm_mmu_interval_read_begin(&n.sub);
		dmm_mmap_read_lock(mm);
		r = dmm_hmm_range_fault(&range);
		dmm_mmap_read_unlock(mm);
	} while (r == -EBUSY);
	dmm_mmu_interval_notifier_remove(&n.sub);
	return r;
}

static void test_hmm_reports_order_9_on_each_page_of_a_sub_range(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1), w[4], zpfn;

	OK(hmm_snap(f->mm, HB + 5 * PG, 4, w, 0));
	for (int i = 0; i < 4; i++) {
		EQ(dmm_hmm_pfn_to_pfn(w[i]), pfn + 5 + (uint64_t)i);
		EQ(dmm_hmm_pfn_to_map_order(w[i]), 9);
		TRUE((w[i] & DMM_HMM_PFN_VALID) && (w[i] & DMM_HMM_PFN_WRITE));
	}
	/* the huge zero PMD: its own pfns, read-only, order 9 */
	MAP_ANON(f->mm, HB2, NPMD);
	EQ(LOAD(f->mm, HB2), 0);
	zpfn = pte_pfn(slot(f->mm, HB2));
	OK(hmm_snap(f->mm, HB2 + 510 * PG, 2, w, 0));
	EQ(dmm_hmm_pfn_to_pfn(w[1]), zpfn + 511);
	EQ(dmm_hmm_pfn_to_map_order(w[1]), 9);
	TRUE((w[1] & DMM_HMM_PFN_VALID) && !(w[1] & DMM_HMM_PFN_WRITE));
	CHECK_OK(f->sys);
}

static void test_fork_shares_the_pmd(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1);
	struct dmm_mm *c;
	pte_t p, q;

	OK(dmm_fork(f->mm, &c));
	p = slot(f->mm, HB);
	q = slot(c, HB);
	IS_THP_PMD(p);
	IS_THP_PMD(q);
	EQ(pte_pfn(q), pfn);
	TRUE(!pte_write(p) && !pte_write(q) && !pte_young(q));
	EQ(query(f, pfn).refcount, 2);
	EQS(query(f, pfn).entire_mapcount, 2);
	EQS(query(f, pfn).folio_mapcount, 2);
	FLAGS(query(f, pfn).flags, 0, DMM_PAGE_ANON_EXCLUSIVE);
	EQ(dmm_mm_rss(c, DMM_MM_ANONPAGES), NPMD);
	VERIFY(c, HB, HSIZE, 1);
	CHECK_OK(f->sys);
	dmm_mm_exit(c);
	EQ(query(f, pfn).refcount, 1);
	CHECK_OK(f->sys);
}

static void test_fork_shares_the_huge_zero_pmd_uncounted(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *c;
	pte_t q;

	MAP_ANON(f->mm, HB, NPMD);
	EQ(LOAD(f->mm, HB), 0);
	OK(dmm_fork(f->mm, &c));
	q = slot(c, HB);
	TRUE(pmd_leaf_present(q) && pte_special(q));
	EQ(q, slot(f->mm, HB));
	EQ(dmm_mm_rss(c, DMM_MM_ANONPAGES), 0);
	CHECK_OK(f->sys);
	dmm_mm_exit(c);
	CHECK_OK(f->sys);
}

static void test_fork_of_a_pinned_thp_splits_and_copies(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1), got;
	struct dmm_stats s0;
	struct dmm_mm *c;

	EQ(dmm_get_user_pages(f->mm, HB + 3 * PG, 1, DMM_FOLL_PIN, &got), 1);
	s0 = STATS(f->sys);
	OK(dmm_fork(f->mm, &c));
	TRUE(pmd_is_table(slot(f->mm, HB)));
	TRUE(PTE(f->mm, HB + 3 * PG).write);
	EQ(PFN(f->mm, HB + 3 * PG), pfn + 3);
	EQ(STAT_DELTA(f->sys, s0, fork_page_copied), NPMD);
	TRUE(pmd_is_table(slot(c, HB)));
	for (int i = 0; i < NPMD; i += 73) {
		NE(PFN(c, HB + i * PG), pfn + i);
		EQ(query(f, PFN(c, HB + i * PG)).order, 0);
	}
	EQ(dmm_mm_rss(c, DMM_MM_ANONPAGES), NPMD);
	EQ(query(f, pfn).refcount, 513);
	VERIFY(c, HB, HSIZE, 1);
	dmm_unpin_user_pages(f->sys, &got, 1);
	dmm_mm_exit(c);
	CHECK_OK(f->sys);
}

static void test_a_write_on_the_huge_zero_pmd_installs_a_thp(void **state)
{
	struct fx *f = *state;
	struct nsub n;
	pte_t pmd;

	MAP_ANON(f->mm, HB, NPMD);
	EQ(LOAD(f->mm, HB + 9 * PG), 0);
	pmd = slot(f->mm, HB);
	TRUE(pmd_leaf_present(pmd) && pte_special(pmd));
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	nsub_insert(&n, f->mm, HB, HSIZE);
	FILL(f->mm, HB + 9 * PG, PG, 7);
	pmd = slot(f->mm, HB);
	IS_THP_PMD(pmd);
	TRUE(pte_write(pmd) && pte_dirty(pmd));
	EQ(query(f, pte_pfn(pmd)).order, 9);
	FLAGS(query(f, pte_pfn(pmd)).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), NPMD);
	/* NOTIFY(CLEAR) over the whole 2 MiB */
	EQ(n.clear, 1);
	EQ(n.start, HB);
	EQ(n.end, HB + HSIZE);
	VERIFY(f->mm, HB + 9 * PG, PG, 7);
	VERIFY_ZERO(f->mm, HB, 9 * PG);
	dmm_mmu_interval_notifier_remove(&n.sub);
	CHECK_OK(f->sys);
}

static void test_a_failed_thp_on_the_huge_zero_pmd_copies_one_small_page(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, HB, NPMD);
	EQ(LOAD(f->mm, HB), 0);
	OK(dmm_system_fail_thp_alloc(f->sys, 1));
	FILL(f->mm, HB + 3 * PG, PG, 5);
	TRUE(pmd_is_table(slot(f->mm, HB)));
	EQ(query(f, PFN(f->mm, HB + 3 * PG)).order, 0);
	TRUE(PTE(f->mm, HB + 3 * PG).write);
	TRUE(PTE(f->mm, HB + 2 * PG).special);
	TRUE(PTE(f->mm, HB + 511 * PG).special);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 1);
	VERIFY(f->mm, HB + 3 * PG, PG, 5);
	CHECK_OK(f->sys);
}

static void test_a_write_on_a_shared_thp_splits_only_the_writer(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1);
	struct dmm_mm *c;
	struct nsub n;

	OK(dmm_fork(f->mm, &c));
	nsub_insert(&n, f->mm, HB, HSIZE);
	FILL(f->mm, HB + 7 * PG, PG, 9);
	TRUE(pmd_is_table(slot(f->mm, HB)));
	EQ(n.clear, 2); /* the split's 2 MiB, then the copy's page */
	IS_THP_PMD(slot(c, HB));
	EQ(pte_pfn(slot(c, HB)), pfn);
	NE(PFN(f->mm, HB + 7 * PG), pfn + 7);
	EQ(PFN(f->mm, HB + 8 * PG), pfn + 8);
	EQ(query(f, pfn).refcount, 512);
	EQS(query(f, pfn).folio_mapcount, 512);
	EQS(query(f, pfn).entire_mapcount, 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), NPMD); /* one page replaced by its copy */
	dmm_mmu_interval_notifier_remove(&n.sub);
	dmm_mm_exit(c);
	CHECK_OK(f->sys);
}

static void test_the_only_mapper_reuses_its_pmd(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1);
	struct dmm_mm *c;
	struct nsub n;

	OK(dmm_fork(f->mm, &c));
	dmm_mm_exit(c);
	TRUE(!pte_write(slot(f->mm, HB)));
	nsub_insert(&n, f->mm, HB, HSIZE);
	FILL(f->mm, HB + 100 * PG, PG, 3);
	EQ(n.clear, 0);
	IS_THP_PMD(slot(f->mm, HB));
	TRUE(pte_write(slot(f->mm, HB)));
	EQ(pte_pfn(slot(f->mm, HB)), pfn);
	FLAGS(query(f, pfn).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	dmm_mmu_interval_notifier_remove(&n.sub);
	CHECK_OK(f->sys);
}

static void test_a_longterm_pin_of_the_huge_zero_pmd_installs_a_writable_thp(void **state)
{
	struct fx *f = *state;
	uint64_t got;
	pte_t pmd;

	MAP_ANON(f->mm, HB, NPMD);
	EQ(LOAD(f->mm, HB), 0);
	EQ(dmm_get_user_pages(f->mm, HB + 4 * PG, 1, DMM_FOLL_PIN | DMM_FOLL_LONGTERM, &got), 1);
	pmd = slot(f->mm, HB);
	IS_THP_PMD(pmd);
	TRUE(pte_write(pmd));
	EQ(got, pte_pfn(pmd) + 4);
	EQ(query(f, got).pincount, 1);
	dmm_unpin_user_pages(f->sys, &got, 1);
	CHECK_OK(f->sys);
}

static void test_a_pin_of_a_shared_thp_unshares_one_page(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1), got;
	struct dmm_mm *c;

	OK(dmm_fork(f->mm, &c));
	EQ(dmm_get_user_pages(f->mm, HB + 20 * PG, 1, DMM_FOLL_PIN, &got), 1);
	TRUE(pmd_is_table(slot(f->mm, HB)));
	NE(got, pfn + 20);
	EQ(query(f, got).order, 0);
	TRUE(!PTE(f->mm, HB + 20 * PG).write);
	IS_THP_PMD(slot(c, HB));
	dmm_unpin_user_pages(f->sys, &got, 1);
	dmm_mm_exit(c);
	CHECK_OK(f->sys);
}

/* dmm_hmm_range_fault over @npages from @start, every page asking @req,
 * with the caller protocol. */

static void test_hmm_write_on_a_shared_pmd_faults_and_reports_order_0(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1), w[2];
	struct dmm_mm *c;

	/* a write request on a shared PMD faults (§3.2): split, order 0 after */
	OK(dmm_fork(f->mm, &c));
	OK(hmm_snap(f->mm, HB + 5 * PG, 2, w, DMM_HMM_PFN_REQ_FAULT | DMM_HMM_PFN_REQ_WRITE));
	TRUE(pmd_is_table(slot(f->mm, HB)));
	EQ(dmm_hmm_pfn_to_map_order(w[0]), 0);
	TRUE(w[0] & DMM_HMM_PFN_WRITE);
	NE(dmm_hmm_pfn_to_pfn(w[0]), pfn + 5);
	dmm_mm_exit(c);
	CHECK_OK(f->sys);
}

static void test_mprotect_of_a_whole_pmd_keeps_it(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1);

	OK(dmm_mprotect(f->mm, HB, HSIZE, DMM_PROT_READ));
	IS_THP_PMD(slot(f->mm, HB));
	TRUE(!pte_write(slot(f->mm, HB)));
	OK(dmm_mprotect(f->mm, HB, HSIZE, RW));
	TRUE(pte_write(slot(f->mm, HB))); /* head exclusive: writable at once */
	EQ(pte_pfn(slot(f->mm, HB)), pfn);
	OK(dmm_mprotect(f->mm, HB + PG, PG, DMM_PROT_READ));
	TRUE(pmd_is_table(slot(f->mm, HB)));
	TRUE(!PTE(f->mm, HB + PG).write);
	TRUE(PTE(f->mm, HB + 2 * PG).write);
	EQ(query(f, pfn).order, 9);
	VERIFY(f->mm, HB, HSIZE, 1);
	CHECK_OK(f->sys);
}

static void test_mremap_moves_an_aligned_pmd_whole(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1);
	struct dmm_stats s0 = STATS(f->sys);

	OK(dmm_mremap(f->mm, HB, HSIZE, HSIZE, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, HB2));
	EQ(STAT_DELTA(f->sys, s0, mremap_pte), 1);
	IS_THP_PMD(slot(f->mm, HB2));
	EQ(pte_pfn(slot(f->mm, HB2)), pfn);
	TRUE(pmd_none(slot(f->mm, HB)));
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), NPMD);
	EQS(query(f, pfn).entire_mapcount, 1);
	VERIFY(f->mm, HB2, HSIZE, 1);
	CHECK_OK(f->sys);
}

static void test_mremap_to_an_unaligned_address_moves_ptes(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = thp_at(f->mm, HB, 1);

	OK(dmm_mremap(f->mm, HB, HSIZE, HSIZE, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, HB2 + PG));
	TRUE(pmd_is_table(slot(f->mm, HB2)));
	EQ(PFN(f->mm, HB2 + PG), pfn);
	EQ(PFN(f->mm, HB2 + HSIZE), pfn + 511);
	EQ(query(f, pfn).order, 9);
	EQS(query(f, pfn).folio_mapcount, 512);
	VERIFY(f->mm, HB2 + PG, HSIZE, 1);
	CHECK_OK(f->sys);
}

static void test_mremap_dontunmap_leaves_an_empty_slot(void **state)
{
	struct fx *f = *state;

	thp_at(f->mm, HB, 1);
	OK(dmm_mremap(f->mm, HB, HSIZE, HSIZE, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED | DMM_MREMAP_DONTUNMAP, HB2));
	TRUE(pmd_none(slot(f->mm, HB)));
	FILL(f->mm, HB, PG, 4); /* a THP again */
	IS_THP_PMD(slot(f->mm, HB));
	VERIFY(f->mm, HB2, HSIZE, 1);
	CHECK_OK(f->sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, thp_setup, fx_teardown)
		T(test_gup_takes_pages_from_the_pmd),
		T(test_hmm_reports_order_9_on_each_page_of_a_sub_range),
		T(test_fork_shares_the_pmd),
		T(test_fork_shares_the_huge_zero_pmd_uncounted),
		T(test_fork_of_a_pinned_thp_splits_and_copies),
		T(test_a_write_on_the_huge_zero_pmd_installs_a_thp),
		T(test_a_failed_thp_on_the_huge_zero_pmd_copies_one_small_page),
		T(test_a_write_on_a_shared_thp_splits_only_the_writer),
		T(test_the_only_mapper_reuses_its_pmd),
		T(test_a_longterm_pin_of_the_huge_zero_pmd_installs_a_writable_thp),
		T(test_a_pin_of_a_shared_thp_unshares_one_page),
		T(test_hmm_write_on_a_shared_pmd_faults_and_reports_order_0),
		T(test_mprotect_of_a_whole_pmd_keeps_it),
		T(test_mremap_moves_an_aligned_pmd_whole),
		T(test_mremap_to_an_unaligned_address_moves_ptes),
		T(test_mremap_dontunmap_leaves_an_empty_slot),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
