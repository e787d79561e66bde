/* SPDX-License-Identifier: MIT */
/*
 * mprotect over a range with a hole (semantics.md §3.5, scenario language
 * §3.3): as Linux's VMA loop does, the VMAs before the first hole get the
 * new protection, then the call fails with -ENOMEM; the VMAs after the
 * hole are left alone. Checked against the live 6.18 kernel.
 */
#include "helpers.h"

/*
 *   TBASE
 *   | 0 | 1 |   | 3 | 4 |      mprotect(0..5, READ): [0,2) read-only, ENOMEM
 */
static void test_mprotect_into_a_hole_changes_the_vmas_before_it(void **state)
{
	struct fx *f = *state;
	uint64_t pfn0;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 3), 2);
	FILL(f->mm, TBASE, 2 * PG, 30);
	FILL(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, 40);
	pfn0 = PFN(f->mm, TBASE);
	CHECK_OK(f->sys);
	EXPECT_RC(-ENOMEM, dmm_mprotect(f->mm, TBASE, 5 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	FLAGS(VMA(f->mm, TBASE).flags, DMM_VM_READ, DMM_VM_WRITE);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 2));
	TRUE(!PTE(f->mm, TBASE).write);
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE, 1));
	/* After the hole: untouched. */
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 3)).flags, DMM_VM_READ | DMM_VM_WRITE, 0);
	TRUE(PTE(f->mm, PAGE_ADDR(TBASE, 3)).write);
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, 4), 0x66));
	EQ(PFN(f->mm, TBASE), pfn0);
	VERIFY(f->mm, TBASE, 2 * PG, 30);
	CHECK_OK(f->sys);
}

/* The changed part may be a piece of a VMA: it is split off. */
static void test_mprotect_into_a_hole_splits_the_changed_piece_off(void **state)
{
	struct fx *f = *state;
	uint32_t w;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 3), 2);
	FILL(f->mm, TBASE, 2 * PG, 30);
	EXPECT_RC(-ENOMEM, dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG, DMM_PROT_NONE));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 1));
	FLAGS(VMA(f->mm, TBASE).flags, DMM_VM_READ | DMM_VM_WRITE, 0);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 1)).flags, 0, DMM_VM_READ | DMM_VM_WRITE);
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, PAGE_ADDR(TBASE, 1), &w));
	OK(dmm_load32(f->mm, TBASE, &w));
	EQ(w, 30);
	/* Back to RW over the mapped part only: the pieces merge again. */
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 1), PG, RW));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 2));
	VERIFY(f->mm, TBASE, 2 * PG, 30);
}

/* Several VMAs before the hole are all changed; a no-op part stays as is. */
static void test_mprotect_into_a_hole_changes_every_vma_before_it(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 1);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 1), PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 2), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EXPECT_RC(-ENOMEM, dmm_mprotect(f->mm, TBASE, 6 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	FLAGS(VMA(f->mm, TBASE).flags, DMM_VM_READ, DMM_VM_WRITE);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 1)).flags, DMM_VM_READ | DMM_VM_SHARED, DMM_VM_WRITE);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 2)).flags, DMM_VM_READ, DMM_VM_WRITE);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_mprotect_into_a_hole_changes_the_vmas_before_it),
		T(test_mprotect_into_a_hole_splits_the_changed_piece_off),
		T(test_mprotect_into_a_hole_changes_every_vma_before_it),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
