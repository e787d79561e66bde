/* SPDX-License-Identifier: MIT */
/*
 * PMD-size THP (large-folios.md §1.5, §2, §3): enablement and the PMD
 * fault decision.
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
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
