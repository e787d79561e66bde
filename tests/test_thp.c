/* SPDX-License-Identifier: MIT */
/*
 * PMD-size THP (large-folios.md §1.5, §2, §3): enablement and the PMD
 * fault decision, first-touch PMD faults, the huge zero folio and
 * split_huge_pmd.
 */
#include "helpers.h"

#include "internal.h"

#define HP (512 * PG) /* one PMD range */

static bool allowable(struct fx *f, uint64_t addr)
{
	struct dmm_vma *v;
	bool ok;

	mmap_read_lock(f->mm);
	v = find_vma(f->mm, addr);
	ok = v && v->start <= addr && thp_vma_allowable_pmd(v, addr);
	mmap_read_unlock(f->mm);
	return ok;
}

static void test_set_thp_checks_its_arguments(void **state)
{
	struct fx *f = *state;
	struct dmm_system_config cfg = { .nr_frames = 64, .thp_mode = 3 };
	struct dmm_system *sys = NULL;

	EXPECT_RC(-EINVAL, dmm_system_set_thp(NULL, DMM_THP_ALWAYS, 0));
	EXPECT_RC(-EINVAL, dmm_system_set_thp(f->sys, (enum dmm_thp_mode)3, 0));
	EXPECT_RC(-EINVAL, dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0x2));
	EXPECT_RC(-EINVAL, dmm_system_create(&cfg, &sys));
	cfg.thp_mode = DMM_THP_ALWAYS;
	cfg.thp_flags = 0x4;
	EXPECT_RC(-EINVAL, dmm_system_create(&cfg, &sys));
	EXPECT_RC(-EINVAL, dmm_system_fail_thp_alloc(NULL, 1));
	OK(dmm_system_set_thp(f->sys, DMM_THP_MADVISE, DMM_THP_NO_HUGE_ZERO));
	OK(dmm_system_set_thp(f->sys, DMM_THP_NEVER, 0));
}

static void test_the_default_is_never(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 1024);
	OK(dmm_madvise(f->mm, TBASE, 1024 * PG, DMM_MADV_HUGEPAGE));
	TRUE(!(allowable(f, TBASE)));
}

static void test_always_and_madvise_follow_the_vma_flags(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 1536);
	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	TRUE(allowable(f, TBASE + 5 * PG));
	TRUE(allowable(f, TBASE + HP + 511 * PG));
	OK(dmm_madvise(f->mm, TBASE + HP, HP, DMM_MADV_NOHUGEPAGE));
	TRUE(allowable(f, TBASE));
	TRUE(!(allowable(f, TBASE + HP)));
	TRUE(allowable(f, TBASE + 2 * HP));
	OK(dmm_system_set_thp(f->sys, DMM_THP_MADVISE, 0));
	TRUE(!(allowable(f, TBASE)));
	OK(dmm_madvise(f->mm, TBASE, HP, DMM_MADV_HUGEPAGE));
	TRUE(allowable(f, TBASE));
	TRUE(!(allowable(f, TBASE + HP)));
	TRUE(!(allowable(f, TBASE + 2 * HP)));
	/* MADV_HUGEPAGE clears VM_NOHUGEPAGE, and the other way round. */
	OK(dmm_madvise(f->mm, TBASE + HP, HP, DMM_MADV_HUGEPAGE));
	TRUE(allowable(f, TBASE + HP));
	OK(dmm_madvise(f->mm, TBASE, HP, DMM_MADV_NOHUGEPAGE));
	TRUE(!(allowable(f, TBASE)));
	OK(dmm_system_set_thp(f->sys, DMM_THP_NEVER, 0));
	TRUE(!(allowable(f, TBASE + HP)));
}

static void test_the_pmd_range_must_lie_inside_the_vma(void **state)
{
	struct fx *f = *state;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE + 8 * PG, 1024);
	TRUE(!(allowable(f, TBASE + 8 * PG)));
	TRUE(allowable(f, TBASE + HP));
	TRUE(allowable(f, TBASE + HP + 511 * PG));
	TRUE(!(allowable(f, TBASE + 2 * HP)));
	MAP_ANON(f->mm, TBASE + 4 * HP, 512);
	TRUE(allowable(f, TBASE + 4 * HP));
}

static void test_shared_and_file_mappings_never_get_a_pmd(void **state)
{
	struct fx *f = *state;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_FIXED(f->mm, TBASE, HP, RW, DMM_MAP_SHARED | DMM_MAP_ANONYMOUS, NULL, 0);
	TRUE(!(allowable(f, TBASE)));
	OK(dmm_file_create(f->sys, 512, &f->file));
	MAP_FIXED(f->mm, TBASE + HP, HP, RW, DMM_MAP_PRIVATE, f->file, 0);
	TRUE(!(allowable(f, TBASE + HP)));
}

static void test_fail_thp_alloc_fails_the_next_n_order_9_allocations(void **state)
{
	struct fx *f = *state;
	uint64_t before = dmm_inject_count(f->sys, DMM_INJECT_THP_ALLOC);
	struct dmm_page *p;

	OK(dmm_system_fail_thp_alloc(f->sys, 2));
	p = folio_alloc(f->sys, 4, 0); /* other orders are not affected */
	TRUE(p);
	put_page(f->sys, p);
	TRUE(!folio_alloc(f->sys, 9, 0));
	TRUE(!folio_alloc(f->sys, 9, 0));
	p = folio_alloc(f->sys, 9, 0);
	TRUE(p);
	put_page(f->sys, p);
	EQ(dmm_inject_count(f->sys, DMM_INJECT_THP_ALLOC), before + 2);
	OK(dmm_system_fail_thp_alloc(f->sys, 5));
	OK(dmm_system_fail_thp_alloc(f->sys, 0)); /* disarms */
	p = folio_alloc(f->sys, 9, 0);
	TRUE(p);
	put_page(f->sys, p);
	CHECK_OK(f->sys);
}

static struct dmm_page_info query(struct fx *f, uint64_t addr)
{
	struct dmm_page_info pi;

	OK(dmm_page_query(f->sys, PFN(f->mm, addr), &pi));
	return pi;
}

static void test_a_write_fault_maps_a_thp_by_a_pmd(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi;
	uint64_t pfn;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 512);
	FILL(f->mm, TBASE + 100 * PG, 8, 0x77);
	pfn = PFN(f->mm, TBASE);
	EQ(pfn & 511, 0);
	EQ(PFN(f->mm, TBASE + 511 * PG), pfn + 511);
	TRUE(PTE(f->mm, TBASE + 7 * PG).pmd && PTE(f->mm, TBASE + 7 * PG).write && PTE(f->mm, TBASE).dirty);
	pi = query(f, TBASE + 5 * PG);
	EQ(pi.order, 9);
	EQ(pi.refcount, 1);
	EQS(pi.mapcount, 1);
	EQS(pi.folio_mapcount, 1);
	EQS(pi.entire_mapcount, 1);
	FLAGS(query(f, TBASE).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 512);
	EQ(STATS(f->sys).fault_thp, 1);
	VERIFY(f->mm, TBASE + 100 * PG, 8, 0x77);
	VERIFY_ZERO(f->mm, TBASE, 100 * PG);
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, TBASE, 512 * PG));
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	CHECK_OK(f->sys);
}

static void test_a_read_fault_maps_the_huge_zero_folio(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 1024);
	VERIFY_ZERO(f->mm, TBASE + 3 * PG, PG);
	VERIFY_ZERO(f->mm, TBASE + 515 * PG, PG);
	TRUE(PTE(f->mm, TBASE).pmd && PTE(f->mm, TBASE).special && !PTE(f->mm, TBASE).write);
	/* One huge zero folio for every PMD; nothing counted. */
	EQ(PTE(f->mm, TBASE + 512 * PG).pfn, PTE(f->mm, TBASE).pfn + 0);
	OK(dmm_page_query(f->sys, PTE(f->mm, TBASE + 9 * PG).pfn, &pi));
	EQ(pi.location, DMM_LOC_HUGE_ZERO);
	EQ(pi.refcount, 0);
	EQS(pi.mapcount, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	EQ(STATS(f->sys).fault_huge_zero, 2);
	CHECK_OK(f->sys);
	/* hzero=off: a read allocates. */
	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, DMM_THP_NO_HUGE_ZERO));
	MAP_ANON(f->mm, TBASE + 4 * HP, 512);
	VERIFY_ZERO(f->mm, TBASE + 4 * HP, PG);
	TRUE(PTE(f->mm, TBASE + 4 * HP).pmd && PTE(f->mm, TBASE + 4 * HP).write);
	EQ(query(f, TBASE + 4 * HP).order, 9);
	CHECK_OK(f->sys);
}

static void test_split_huge_pmd_keeps_the_folio_large(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi;
	uint64_t pfn;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 1024);
	FILL(f->mm, TBASE, HP, 0x99);
	pfn = PFN(f->mm, TBASE);
	/* mprotect of one page splits the VMA inside the PMD: the PMD splits. */
	OK(dmm_mprotect(f->mm, TBASE + 10 * PG, PG, DMM_PROT_READ));
	TRUE(!PTE(f->mm, TBASE).pmd && PTE(f->mm, TBASE).write);
	TRUE(!PTE(f->mm, TBASE + 10 * PG).write);
	EQ(PFN(f->mm, TBASE + 300 * PG), pfn + 300);
	pi = query(f, TBASE + 300 * PG);
	EQ(pi.order, 9);
	EQ(pi.refcount, 512);
	EQS(pi.mapcount, 1);
	EQS(pi.folio_mapcount, 512);
	EQS(pi.entire_mapcount, 0);
	FLAGS(pi.flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 512);
	EQ(STATS(f->sys).thp_split_pmd, 1);
	VERIFY(f->mm, TBASE, HP, 0x99);
	CHECK_OK(f->sys);
	/* The huge zero PMD splits into small-zero-page PTEs on a write that
	 * cannot have a THP (§3.2; with one, test_thp_pmd). */
	VERIFY_ZERO(f->mm, TBASE + HP, PG);
	OK(dmm_system_fail_thp_alloc(f->sys, 1));
	FILL(f->mm, TBASE + HP + 7 * PG, PG, 0x5);
	TRUE(!PTE(f->mm, TBASE + HP).pmd);
	EQ(PTE(f->mm, TBASE + HP).pfn, DMM_ZERO_PFN);
	EQ(query(f, TBASE + HP + 7 * PG).order, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 513);
	CHECK_OK(f->sys);
}

/* A VMA split at an address inside a PMD leaf splits the PMD first
 * (vma_adjust_trans_huge): madvise flag changes, munmap. */
static void test_a_vma_split_inside_a_pmd_splits_it(void **state)
{
	struct fx *f = *state;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 1536);
	FILL(f->mm, TBASE, 3 * HP, 0x31);
	TRUE(PTE(f->mm, TBASE).pmd && PTE(f->mm, TBASE + HP).pmd && PTE(f->mm, TBASE + 2 * HP).pmd);
	OK(dmm_madvise(f->mm, TBASE + 8 * PG, PG, DMM_MADV_NOHUGEPAGE));
	TRUE(!PTE(f->mm, TBASE).pmd);
	TRUE(PTE(f->mm, TBASE + HP).pmd);
	CHECK_OK(f->sys);
	/* An aligned boundary leaves the PMD alone. */
	OK(dmm_madvise(f->mm, TBASE + HP, HP, DMM_MADV_NOHUGEPAGE));
	TRUE(PTE(f->mm, TBASE + HP).pmd);
	OK(dmm_munmap(f->mm, TBASE + 2 * HP + 500 * PG, 12 * PG));
	TRUE(!PTE(f->mm, TBASE + 2 * HP).pmd);
	PTE_NONE(f->mm, TBASE + 2 * HP + 500 * PG);
	EQ(query(f, TBASE + 2 * HP).order, 9);
	FLAGS(query(f, TBASE + 2 * HP).flags, DMM_PAGE_PARTIALLY_MAPPED, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 3 * 512 - 12);
	VERIFY(f->mm, TBASE, 2 * HP + 500 * PG, 0x31);
	CHECK_OK(f->sys);
}

/* A zap of a whole PMD range empties the slot (§3.4). */
static void test_a_whole_pmd_zap_empties_the_slot(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys);
	struct dmm_pte_table *t;
	pte_t pmd;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 1024);
	FILL(f->mm, TBASE, PG, 0x3);
	VERIFY_ZERO(f->mm, TBASE + HP, PG);
	OK(dmm_madvise(f->mm, TBASE, 2 * HP, DMM_MADV_DONTNEED));
	t = pmd_lookup(f->mm, TBASE, &pmd);
	TRUE(t && pmd_none(pmd));
	t = pmd_lookup(f->mm, TBASE + HP, &pmd);
	TRUE(t && pmd_none(pmd));
	EQ(STATS(f->sys).zap_pmd - s0.zap_pmd, 2);
	EQ(STATS(f->sys).thp_split_pmd - s0.thp_split_pmd, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 512); /* the huge zero folio stays */
	CHECK_OK(f->sys);
	/* The empty slot takes a PMD again. */
	FILL(f->mm, TBASE + 9 * PG, PG, 0x4);
	TRUE(PTE(f->mm, TBASE).pmd);
	VERIFY_ZERO(f->mm, TBASE, PG);
	VERIFY(f->mm, TBASE + 9 * PG, PG, 0x4);
	CHECK_OK(f->sys);
	dmm_mm_exit(f->mm);
	f->mm = NULL;
	EQ(dmm_system_nr_free(f->sys), f->free0 - 512);
	OK(dmm_mm_create(f->sys, &f->mm));
	CHECK_OK(f->sys);
}

/* dmm_check on PMD leaves (§4.2, §4.3, §4.5, §4.6, §4.7, §1.3): each
 * corruption is reported, and undoing it makes the system clean again. */
static void expect_report(struct fx *f, const char *what)
{
	static char report[4096];

	report[0] = '\0';
	EXPECT_RC(-EUCLEAN, dmm_check(f->sys, report, sizeof(report)));
	if (!strstr(report, what))
		fail_msg("expected \"%s\" in:\n%s", what, report);
}

static void test_check_reports_bad_pmd_leaves(void **state)
{
	struct fx *f = *state;
	struct dmm_pte_table *t, *z;
	struct dmm_page *head;
	pte_t pmd, zpmd;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 1024);
	FILL(f->mm, TBASE, PG, 0x8);
	VERIFY_ZERO(f->mm, TBASE + HP, PG);
	t = pmd_lookup(f->mm, TBASE, &pmd);
	z = pmd_lookup(f->mm, TBASE + HP, &zpmd);
	head = pfn_to_page(f->sys, pte_pfn(pmd));
	CHECK_OK(f->sys);

	/* §4.3: the entire mapcount must match the PMD leaves. */
	atomic_fetch_add(&head[1].entire_mapcount, 1);
	expect_report(f, "entire mapcount 2 but 1 PMD entries map it");
	atomic_fetch_sub(&head[1].entire_mapcount, 1);
	/* §4.6: a writable PMD needs the head exclusive. */
	page_clear(head, PG_anon_exclusive);
	expect_report(f, "writable PMD on a shared or non-exclusive THP");
	page_set(head, PG_anon_exclusive);
	/* §4.5: 512 rss per THP PMD. */
	add_mm_counter(f->mm, DMM_MM_ANONPAGES, -1);
	expect_report(f, "rss[");
	add_mm_counter(f->mm, DMM_MM_ANONPAGES, 1);
	/* §4.2: a leaf's deposited table is all none. */
	pte_set(&t->ent[5], pfn_pte(DMM_ZERO_PFN, _PTE_SPECIAL));
	expect_report(f, "PMD leaf over a table with entries");
	pte_set(&t->ent[5], 0);
	/* §4.7: the huge zero PMD is never writable. */
	pmd_set(z, pte_mkwrite(zpmd));
	expect_report(f, "bad huge zero PMD");
	pmd_set(z, zpmd);
	/* §1.3: the mm holding the huge zero folio is counted once. */
	atomic_fetch_add(&f->sys->huge_zero_mms, 1);
	expect_report(f, "huge zero folio: 1 mms hold it, the count says 2");
	atomic_fetch_sub(&f->sys->huge_zero_mms, 1);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, PG, 0x8);
}

/* GUP-fast never splits a PMD (it runs in an RCU read section and may
 * take no lock, nor notify): it stops at the leaf and the slow path (which
 * splits, until GUP is ported) takes over. The split's notification must
 * come from outside the RCU read section. */
static int invalidations_in_rcu, invalidations;

static bool note_rcu(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *range,
		     unsigned long cur_seq)
{
	(void)range;
	invalidations++;
	invalidations_in_rcu += rcu_read_lock_held();
	dmm_mmu_interval_set_seq(sub, cur_seq);
	return true;
}

static void test_gup_fast_leaves_a_pmd_to_the_slow_path(void **state)
{
	static const struct dmm_mmu_interval_notifier_ops ops = { .invalidate = note_rcu };
	struct dmm_mmu_interval_notifier sub;
	struct fx *f = *state;
	uint64_t pfns[4];

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, 0));
	MAP_ANON(f->mm, TBASE, 512);
	FILL(f->mm, TBASE, PG, 0x6);
	OK(dmm_mmu_interval_notifier_insert(&sub, f->mm, TBASE, HP, &ops));
	EQ(dmm_get_user_pages_fast(f->mm, TBASE + 4 * PG, 4, DMM_FOLL_WRITE | DMM_FOLL_GET, pfns), 4);
	EQ(pfns[3], PFN(f->mm, TBASE) + 7);
	EQ(invalidations, 0); /* taken from the PMD, no split (§3.8, test_thp_pmd) */
	EQ(invalidations_in_rcu, 0);
	TRUE(PTE(f->mm, TBASE).pmd);
	for (int i = 0; i < 4; i++)
		dmm_put_page(f->sys, pfns[i]);
	dmm_mmu_interval_notifier_remove(&sub);
	CHECK_OK(f->sys);
}

static void test_a_failed_allocation_falls_back_to_ptes(void **state)
{
	struct fx *f = *state;

	OK(dmm_system_set_thp(f->sys, DMM_THP_ALWAYS, DMM_THP_NO_HUGE_ZERO));
	OK(dmm_system_fail_thp_alloc(f->sys, 1));
	MAP_ANON(f->mm, TBASE, 512);
	FILL(f->mm, TBASE + 3 * PG, PG, 0x1);
	TRUE(!PTE(f->mm, TBASE + 3 * PG).pmd);
	EQ(query(f, TBASE + 3 * PG).order, 0);
	PTE_NONE(f->mm, TBASE);
	/* The slot has a PTE table now: never a PMD by fault again. */
	FILL(f->mm, TBASE + 4 * PG, PG, 0x2);
	EQ(query(f, TBASE + 4 * PG).order, 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 2);
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_set_thp_checks_its_arguments),
		T(test_the_default_is_never),
		T(test_always_and_madvise_follow_the_vma_flags),
		T(test_the_pmd_range_must_lie_inside_the_vma),
		T(test_shared_and_file_mappings_never_get_a_pmd),
		T(test_fail_thp_alloc_fails_the_next_n_order_9_allocations),
		T(test_a_write_fault_maps_a_thp_by_a_pmd),
		T(test_a_read_fault_maps_the_huge_zero_folio),
		T(test_split_huge_pmd_keeps_the_folio_large),
		T(test_a_vma_split_inside_a_pmd_splits_it),
		T(test_a_whole_pmd_zap_empties_the_slot),
		T(test_check_reports_bad_pmd_leaves),
		T(test_gup_fast_leaves_a_pmd_to_the_slow_path),
		T(test_a_failed_allocation_falls_back_to_ptes),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
