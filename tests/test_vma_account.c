/* SPDX-License-Identifier: MIT */
/*
 * VM_ACCOUNT (semantics.md §3.6, "VMA merging"): which VMAs are charged for
 * committed memory, as dmm_vma_query reports it. A private writable
 * mapping is charged at mmap; a private mapping made writable by mprotect
 * is charged then; read-only and shared mappings are not; mprotect to
 * read-only keeps the charge except on an anonymous VMA with no anon_vma.
 * Checked against the live 6.18 kernel ("ac" in /proc/PID/smaps VmFlags).
 */
#include "helpers.h"

#define ACCT DMM_VM_ACCOUNT

static unsigned long flags_at(struct dmm_mm *mm, uint64_t addr)
{
	return VMA(mm, addr).flags;
}

static void test_mmap_charges_private_writable_mappings_only(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 4, &f->file));
	MAP_ANON(f->mm, TBASE, 2);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 16), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 32), PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 48), PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 64), PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 80), PG, DMM_PROT_READ, DMM_MAP_PRIVATE, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 96), PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	CHECK_OK(f->sys);
	FLAGS(flags_at(f->mm, TBASE), ACCT | DMM_VM_WRITE, DMM_VM_SHARED);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 16)), 0, ACCT);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 32)), DMM_VM_SHARED, ACCT);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 48)), ACCT, 0);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 64)), DMM_VM_SHARED, ACCT);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 80)), 0, ACCT);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 96)), 0, ACCT);
	dmm_file_put(f->file);
}

static void test_mprotect_charges_a_private_mapping_made_writable(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 4, &f->file));
	MAP_FIXED(f->mm, TBASE, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 16), PG, DMM_PROT_READ, DMM_MAP_PRIVATE, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 32), PG, DMM_PROT_READ, DMM_MAP_SHARED, f->file, 0);
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 1), PG, RW));
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 16), PG, RW));
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 32), PG, RW));
	CHECK_OK(f->sys);
	FLAGS(flags_at(f->mm, TBASE), 0, ACCT | DMM_VM_WRITE);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 1)), ACCT | DMM_VM_WRITE, 0);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 16)), ACCT, 0);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 32)), DMM_VM_WRITE, ACCT);
	dmm_file_put(f->file);
}

/* A VMA with anonymous pages keeps its charge when it becomes read-only;
 * writable again, it is not charged twice (the flag simply stays). */
static void test_mprotect_read_only_keeps_the_charge_of_a_vma_with_anon_pages(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, PG, 1);
	OK(dmm_mprotect(f->mm, TBASE, 2 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	FLAGS(flags_at(f->mm, TBASE), ACCT, DMM_VM_WRITE);
	OK(dmm_mprotect(f->mm, TBASE, 2 * PG, DMM_PROT_NONE));
	FLAGS(flags_at(f->mm, TBASE), ACCT, DMM_VM_WRITE | DMM_VM_READ);
	OK(dmm_mprotect(f->mm, TBASE, 2 * PG, RW));
	CHECK_OK(f->sys);
	FLAGS(flags_at(f->mm, TBASE), ACCT | DMM_VM_WRITE, 0);
	VERIFY(f->mm, TBASE, PG, 1);
}

/* No anon_vma yet (never written; a read maps only the zero page): the
 * charge is given back. A private file mapping keeps it (not anonymous). */
static void test_mprotect_read_only_uncharges_an_anon_vma_without_anon_pages(void **state)
{
	struct fx *f = *state;
	uint32_t w;

	OK(dmm_file_create(f->sys, 4, &f->file));
	MAP_ANON(f->mm, TBASE, 2);
	OK(dmm_load32(f->mm, TBASE, &w));
	EQ(PTE(f->mm, TBASE).kind, DMM_PTE_PRESENT);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 16), PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	OK(dmm_mprotect(f->mm, TBASE, 2 * PG, DMM_PROT_READ));
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 16), PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	FLAGS(flags_at(f->mm, TBASE), 0, ACCT | DMM_VM_WRITE);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 16)), ACCT, DMM_VM_WRITE);
	/* Writable again: charged again. */
	OK(dmm_mprotect(f->mm, TBASE, 2 * PG, RW));
	FLAGS(flags_at(f->mm, TBASE), ACCT | DMM_VM_WRITE, 0);
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
}

/* Splits, fork and mremap carry the flag with the VMA. */
static void test_split_fork_and_mremap_keep_the_charge(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child = NULL;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 1), PG));
	OK(dmm_mremap(f->mm, PAGE_ADDR(TBASE, 3), PG, PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED,
		      PAGE_ADDR(TBASE, 32)));
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	FLAGS(flags_at(f->mm, TBASE), ACCT, 0);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 2)), ACCT, 0);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 32)), ACCT, 0);
	FLAGS(flags_at(child, TBASE), ACCT, 0);
	FLAGS(flags_at(child, PAGE_ADDR(TBASE, 32)), ACCT, 0);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* An mprotect that does not change the protection changes nothing, not
 * even the charge of a VMA that lost its anon_vma (here through a
 * DONTUNMAP move of all of it): mprotect_fixup returns before it looks at
 * the charge. */
static void test_a_no_op_mprotect_keeps_the_charge(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 1);
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_READ));
	OK(dmm_mremap(f->mm, TBASE, PG, PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED | DMM_MREMAP_DONTUNMAP,
		      PAGE_ADDR(TBASE, 32)));
	FLAGS(flags_at(f->mm, TBASE), ACCT, DMM_VM_WRITE);
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	FLAGS(flags_at(f->mm, TBASE), ACCT, DMM_VM_WRITE);
	/* A real change does give the charge back (no anon_vma). */
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_NONE));
	FLAGS(flags_at(f->mm, TBASE), 0, ACCT | DMM_VM_READ);
	CHECK_OK(f->sys);
}

/*
 * find_mergeable_anon_vma: a VMA's first anonymous page reuses the
 * anon_vma of a neighbour that differs only in its access flags, so the
 * two merge once mprotect makes those equal. A VMA copied by fork is not
 * reused from (in Linux it is linked to two anon_vmas), so in a child the
 * two stay apart.
 *
 *   | 0: rw written, then r | 1: rw, written |  mprotect(0, rw): one VMA
 */
static void test_a_first_fault_reuses_a_compatible_neighbours_anon_vma(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child = NULL;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 1);
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_READ));
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 1), 1);
	FILL(f->mm, PAGE_ADDR(TBASE, 1), PG, 2);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 1));
	OK(dmm_fork(f->mm, &child));
	OK(dmm_mprotect(f->mm, TBASE, PG, RW));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 2));
	VERIFY(f->mm, TBASE, PG, 1);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 1), PG, 2);

	/* In the child: [1] (copied) made r, then a fresh [2] written. */
	OK(dmm_mprotect(child, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_READ));
	MAP_ANON(child, PAGE_ADDR(TBASE, 2), 1);
	FILL(child, PAGE_ADDR(TBASE, 2), PG, 3);
	OK(dmm_mprotect(child, PAGE_ADDR(TBASE, 1), PG, RW));
	CHECK_OK(f->sys);
	EQ(VMA(child, PAGE_ADDR(TBASE, 1)).end, PAGE_ADDR(TBASE, 2));
	EQ(VMA(child, PAGE_ADDR(TBASE, 2)).start, PAGE_ADDR(TBASE, 2));
	VERIFY(child, PAGE_ADDR(TBASE, 2), PG, 3);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* A child's entry at addr (DMM_PTE_NONE if fork did not copy it). */
static enum dmm_pte_kind child_kind(struct dmm_mm *child, uint64_t addr)
{
	return PTE(child, addr).kind;
}

/*
 *   TBASE
 *   | A rw, written | B r |   mprotect(A, r): A keeps its charge, B has none
 *   | A r  account  | B r |   two VMAs: B must not join A's anon_vma
 */
static void test_vmas_with_different_charges_do_not_merge(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child = NULL;
	uint32_t w;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 7);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 1));
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 1)).start, PAGE_ADDR(TBASE, 1));
	FLAGS(flags_at(f->mm, TBASE), ACCT, DMM_VM_WRITE);
	FLAGS(flags_at(f->mm, PAGE_ADDR(TBASE, 1)), 0, ACCT | DMM_VM_WRITE);
	/* Visible through fork: B maps the zero page but has no anon_vma,
	 * so the child does not get a copy of its page table. */
	OK(dmm_load32(f->mm, PAGE_ADDR(TBASE, 1), &w));
	EQ(PTE(f->mm, PAGE_ADDR(TBASE, 1)).kind, DMM_PTE_PRESENT);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	EQ(child_kind(child, TBASE), DMM_PTE_PRESENT);
	EQ(child_kind(child, PAGE_ADDR(TBASE, 1)), DMM_PTE_NONE);
	VERIFY(child, TBASE, PG, 7);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* The same charge merges: a read-only VMA made writable is charged and
 * joins its charged writable neighbour. */
static void test_vmas_charged_alike_merge(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;

	MAP_FIXED(f->mm, TBASE, PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 1), 1);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 1));
	OK(dmm_mprotect(f->mm, TBASE, PG, RW));
	CHECK_OK(f->sys);
	v = VMA(f->mm, TBASE);
	EQ(v.end, PAGE_ADDR(TBASE, 2));
	FLAGS(v.flags, ACCT | DMM_VM_WRITE, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_mmap_charges_private_writable_mappings_only),
		T(test_mprotect_charges_a_private_mapping_made_writable),
		T(test_mprotect_read_only_keeps_the_charge_of_a_vma_with_anon_pages),
		T(test_mprotect_read_only_uncharges_an_anon_vma_without_anon_pages),
		T(test_split_fork_and_mremap_keep_the_charge),
		T(test_vmas_with_different_charges_do_not_merge),
		T(test_vmas_charged_alike_merge),
		T(test_a_no_op_mprotect_keeps_the_charge),
		T(test_a_first_fault_reuses_a_compatible_neighbours_anon_vma),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
