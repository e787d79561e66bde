/* SPDX-License-Identifier: MIT */
/*
 * The VMA bookkeeping of mremap (semantics.md §3.6, checked against the
 * live 6.18 kernel), seen through dmm_vma_query and through fork, which
 * copies the page table of a VMA only if it has an anon_vma (§3.3).
 */
#include "helpers.h"

#define MOVE (DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED)

/* The kind of the entry at addr in a fresh child of mm (the child exits). */
static enum dmm_pte_kind kind_in_a_child(struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_mm *child = NULL;
	enum dmm_pte_kind k;

	OK(dmm_fork(mm, &child));
	k = PTE(child, addr).kind;
	dmm_mm_exit(child);
	return k;
}

/*
 *   TBASE                 TBASE+16
 *   | X (never faulted) |  ...  | B0 written |   (hole)   | B2 |
 *        ---------------- mremap ------------>
 *                             | B0 written | X, pgoff 17 | B2 |   one VMA
 */
static void test_a_never_faulted_anon_vma_takes_the_pgoff_of_its_new_place(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;
	uint32_t w;

	MAP_ANON(f->mm, TBASE, 1);
	OK(dmm_load32(f->mm, TBASE, &w)); /* the zero page: still no anon_vma */
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 16), 3);
	FILL(f->mm, PAGE_ADDR(TBASE, 16), PG, 1);
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 17), PG));
	OK(dmm_mremap(f->mm, TBASE, PG, PG, MOVE, PAGE_ADDR(TBASE, 17)));
	CHECK_OK(f->sys);
	v = VMA(f->mm, PAGE_ADDR(TBASE, 17));
	EQ(v.start, PAGE_ADDR(TBASE, 16));
	EQ(v.end, PAGE_ADDR(TBASE, 19));
	EQ(v.pgoff, PAGE_ADDR(TBASE, 16) >> DMM_PAGE_SHIFT);
	/* It shares B's anon_vma now: fork copies its zero-page entry. */
	EQ(PTE(f->mm, PAGE_ADDR(TBASE, 17)).kind, DMM_PTE_PRESENT);
	EQ(kind_in_a_child(f->mm, PAGE_ADDR(TBASE, 17)), DMM_PTE_PRESENT);
	FILL(f->mm, PAGE_ADDR(TBASE, 17), 2 * PG, 5);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 16), PG, 1);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 17), 2 * PG, 5);
	CHECK_OK(f->sys);
}

/* Alone at its new place it still takes the new pgoff. */
static void test_a_never_faulted_anon_vma_moved_alone_gets_the_new_pgoff(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	OK(dmm_mremap(f->mm, TBASE, 2 * PG, 2 * PG, MOVE, PAGE_ADDR(TBASE, 32)));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 32)).pgoff, PAGE_ADDR(TBASE, 32) >> DMM_PAGE_SHIFT);
}

/* A VMA with anonymous pages keeps its pgoff (their indices) and stays
 * apart from neighbours whose pgoffs do not continue it. */
static void test_a_faulted_anon_vma_keeps_its_pgoff(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 9);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 16), 3);
	FILL(f->mm, PAGE_ADDR(TBASE, 16), PG, 1);
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 17), PG));
	OK(dmm_mremap(f->mm, TBASE, PG, PG, MOVE, PAGE_ADDR(TBASE, 17)));
	CHECK_OK(f->sys);
	v = VMA(f->mm, PAGE_ADDR(TBASE, 17));
	EQ(v.start, PAGE_ADDR(TBASE, 17));
	EQ(v.end, PAGE_ADDR(TBASE, 18));
	EQ(v.pgoff, TBASE >> DMM_PAGE_SHIFT);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 17), PG, 9);
}

/*
 * MREMAP_DONTUNMAP of a whole VMA: the old VMA stays, empty, without its
 * anon_vma (dontunmap_complete), so a fork does not copy what is mapped
 * there afterwards (only the zero page can be, without a write). It keeps
 * VM_ACCOUNT, as the live 6.18 kernel does, and merges with a fresh
 * writable mapping beside it.
 */
static void test_dontunmap_of_a_whole_vma_drops_its_anon_vma(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child = NULL;
	uint32_t w;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 3);
	OK(dmm_mremap(f->mm, TBASE, 2 * PG, 2 * PG, MOVE | DMM_MREMAP_DONTUNMAP, PAGE_ADDR(TBASE, 32)));
	CHECK_OK(f->sys);
	OK(dmm_load32(f->mm, TBASE, &w));
	EQ(w, 0);
	EQ(PTE(f->mm, TBASE).kind, DMM_PTE_PRESENT);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQ(PTE(child, TBASE).kind, DMM_PTE_NONE);
	EQ(PTE(child, PAGE_ADDR(TBASE, 32)).kind, DMM_PTE_PRESENT);
	VERIFY(child, PAGE_ADDR(TBASE, 32), 2 * PG, 3);
	dmm_mm_exit(child);
	FLAGS(VMA(f->mm, TBASE).flags, DMM_VM_ACCOUNT | DMM_VM_WRITE, 0);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 2), 1);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 3));
	CHECK_OK(f->sys);
}

/* Part of a VMA: the old VMA keeps its anon_vma (it may still have pages
 * outside the moved range), and fork copies its entries. */
static void test_dontunmap_of_part_of_a_vma_keeps_its_anon_vma(void **state)
{
	struct fx *f = *state;
	uint32_t w;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 3);
	OK(dmm_mremap(f->mm, TBASE, 2 * PG, 2 * PG, MOVE | DMM_MREMAP_DONTUNMAP, PAGE_ADDR(TBASE, 32)));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 4));
	OK(dmm_load32(f->mm, TBASE, &w));
	EQ(kind_in_a_child(f->mm, TBASE), DMM_PTE_PRESENT);
	EQ(kind_in_a_child(f->mm, PAGE_ADDR(TBASE, 2)), DMM_PTE_PRESENT);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG, 3 + 2 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
}

/*
 *   TBASE                                   TBASE+32
 *   | 0 RW | 1 R | 2 RW |   | 4 RW |        | . | . | X | . | . | Y |
 *   mremap(0..6) ------------------------->  | 0 | 1 | 2 | X | 4 | Y |
 *
 * A pure move across several VMAs and holes: each piece moves to the same
 * offset; what is mapped at the target beneath a hole (X) stays; a range
 * that runs past the last VMA is fine; Y lies beyond the range.
 */
static void test_a_move_spans_several_vmas_and_holes(void **state)
{
	struct fx *f = *state;
	uint64_t pfn[5];

	MAP_ANON(f->mm, TBASE, 5);
	FILL(f->mm, TBASE, 5 * PG, 0x100);
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_READ));
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 3), PG));
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 32), 3 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 35), PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 38), PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, PAGE_ADDR(TBASE, 35), PG, 0x900);
	FILL(f->mm, PAGE_ADDR(TBASE, 38), PG, 0xa00);
	for (int i = 0; i < 5; i++)
		pfn[i] = i == 3 ? 0 : PFN(f->mm, PAGE_ADDR(TBASE, i));
	CHECK_OK(f->sys);
	OK(dmm_mremap(f->mm, TBASE, 6 * PG, 6 * PG, MOVE, PAGE_ADDR(TBASE, 32)));
	CHECK_OK(f->sys);
	for (int i = 0; i < 5; i++)
		UNMAPPED(f->mm, PAGE_ADDR(TBASE, i));
	for (int i = 0; i < 5; i++)
		if (i != 3)
			EQ(PFN(f->mm, PAGE_ADDR(TBASE, 32 + i)), pfn[i]);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 32)).flags, DMM_VM_WRITE, 0);
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 32)).end, PAGE_ADDR(TBASE, 33));
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 33)).flags, DMM_VM_READ, DMM_VM_WRITE);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 34)).flags, DMM_VM_WRITE, DMM_VM_SHARED);
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 35)).type, DMM_VMA_SHMEM);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 36)).flags, DMM_VM_WRITE, DMM_VM_SHARED);
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 36)).end, PAGE_ADDR(TBASE, 37));
	UNMAPPED(f->mm, PAGE_ADDR(TBASE, 37));
	VERIFY(f->mm, PAGE_ADDR(TBASE, 32), 3 * PG, 0x100);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 35), PG, 0x900);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 36), PG, 0x100 + 4 * WORDS_PER_PAGE);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 38), PG, 0xa00);
	CHECK_OK(f->sys);
}

/* The range may start inside a VMA and end inside another; a DONTUNMAP
 * move works piece by piece too (the live 6.18 kernel allows it): a piece
 * that was a whole VMA loses its anon_vma, a partial one keeps it. */
static void test_a_dontunmap_move_spans_several_vmas(void **state)
{
	struct fx *f = *state;
	uint32_t w;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 2), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 3), 2);
	FILL(f->mm, TBASE, 2 * PG, 0x100);
	FILL(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, 0x300);
	OK(dmm_mremap(f->mm, PAGE_ADDR(TBASE, 1), 3 * PG, 3 * PG, MOVE | DMM_MREMAP_DONTUNMAP,
		      PAGE_ADDR(TBASE, 32)));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 2));
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 3)).end, PAGE_ADDR(TBASE, 5));
	VERIFY(f->mm, TBASE, PG, 0x100);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 32), PG, 0x100 + WORDS_PER_PAGE);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 33), PG);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 34), PG, 0x300);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 4), PG, 0x300 + WORDS_PER_PAGE);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 1), PG);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 3), PG);
	OK(dmm_load32(f->mm, PAGE_ADDR(TBASE, 2), &w));
	/* [0,2) and [3,5) were moved in part: they keep their anon_vma; the
	 * read-only VMA [2,3) was moved whole: it has none now. */
	EQ(kind_in_a_child(f->mm, PAGE_ADDR(TBASE, 1)), DMM_PTE_PRESENT);
	EQ(kind_in_a_child(f->mm, PAGE_ADDR(TBASE, 2)), DMM_PTE_NONE);
	EQ(kind_in_a_child(f->mm, PAGE_ADDR(TBASE, 3)), DMM_PTE_PRESENT);
	CHECK_OK(f->sys);
}

/* Shrinking needs one VMA only for the part that stays. */
static void test_a_shrink_needs_one_vma_for_what_stays(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 2), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	FILL(f->mm, TBASE, 2 * PG, 0x100);
	OK(dmm_mremap(f->mm, TBASE, 3 * PG, 2 * PG, MOVE, PAGE_ADDR(TBASE, 32)));
	CHECK_OK(f->sys);
	UNMAPPED(f->mm, TBASE);
	UNMAPPED(f->mm, PAGE_ADDR(TBASE, 2));
	VERIFY(f->mm, PAGE_ADDR(TBASE, 32), 2 * PG, 0x100);
	UNMAPPED(f->mm, PAGE_ADDR(TBASE, 34));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_a_never_faulted_anon_vma_takes_the_pgoff_of_its_new_place),
		T(test_a_never_faulted_anon_vma_moved_alone_gets_the_new_pgoff),
		T(test_a_faulted_anon_vma_keeps_its_pgoff),
		T(test_dontunmap_of_a_whole_vma_drops_its_anon_vma),
		T(test_dontunmap_of_part_of_a_vma_keeps_its_anon_vma),
		T(test_a_move_spans_several_vmas_and_holes),
		T(test_a_dontunmap_move_spans_several_vmas),
		T(test_a_shrink_needs_one_vma_for_what_stays),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
