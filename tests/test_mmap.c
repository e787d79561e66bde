/* SPDX-License-Identifier: MIT */
/*
 * The mapping system calls: mmap (argument checks, placement, FIXED,
 * FIXED_NOREPLACE, merging), munmap (partial, holes, splits), mprotect
 * (splits, merges, holes, permission faults), madvise (DONTNEED, FREE,
 * DONTFORK/DOFORK, HUGEPAGE) and mremap (moves, DONTUNMAP, resizing, errors),
 * and random mmap/munmap/mprotect over hundreds of VMAs against a model.
 *
 * Failing calls must change nothing: they are checked against a snapshot of
 * the VMA list and of the free-frame count taken before the call.
 */
#include <time.h>

#include "helpers.h"

/* Assert that a call fails with `expected` and leaves the VMAs, the frames
 * and the invariants as they were. */
#define FAILS_CLEANLY(f, expected, expr)                                                   \
	do {                                                                               \
		struct vma_list before_;                                                   \
		uint64_t free_before_ = dmm_system_nr_free((f)->sys);                      \
		VMAS((f)->mm, &before_);                                                   \
		EXPECT_RC(expected, expr);                                                 \
		VMAS_UNCHANGED((f)->mm, &before_);                                         \
		EQ(dmm_system_nr_free((f)->sys), free_before_);                            \
		CHECK_OK((f)->sys);                                                        \
	} while (0)

/* The number of VMAs in mm. */
static int nr_vmas(struct dmm_mm *mm)
{
	struct vma_list l;

	VMAS(mm, &l);
	return l.n;
}

/* A 4-page anon mapping at TBASE with data (word k = 1 + k), used as
 * the "something is already there" of the error tests. */
static void populate(struct fx *f)
{
	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* mmap argument errors                                                      */

static void test_mmap_rejects_zero_length(void **state)
{
	struct fx *f = *state;
	uint64_t out = 0;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE + 64 * PG, 0, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, &out));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, 0, 0, RW, ANON_PRIVATE, NULL, 0, &out));
	/* Even over an existing mapping: a zero-length FIXED map unmaps nothing. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE, 0, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0,
					   &out));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

static void test_mmap_fixed_rejects_unaligned_address(void **state)
{
	struct fx *f = *state;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE + 64 * PG + 8, PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	/* Unaligned over an existing mapping must not unmap it either. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE + 1, PG, RW, ANON_PRIVATE | DMM_MAP_FIXED,
					   NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE + 0x800, PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL, 0, NULL));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

static void test_mmap_needs_exactly_one_of_shared_and_private(void **state)
{
	struct fx *f = *state;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE, PG, RW,
					   DMM_MAP_SHARED | DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS |
						   DMM_MAP_FIXED,
					   NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE, PG, RW,
					   DMM_MAP_ANONYMOUS | DMM_MAP_FIXED, NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, 0, PG, RW, DMM_MAP_ANONYMOUS, NULL, 0, NULL));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

static void test_mmap_rejects_unknown_prot_bits(void **state)
{
	struct fx *f = *state;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE, PG, RW | 0x10, ANON_PRIVATE | DMM_MAP_FIXED,
					   NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, 0, PG, 0x100, ANON_PRIVATE, NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, 0, PG, -1, ANON_PRIVATE, NULL, 0, NULL));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

static void test_mmap_rejects_file_with_anonymous_and_missing_file(void **state)
{
	struct fx *f = *state;

	populate(f);
	OK(dmm_file_create(f->sys, 4, &f->file));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE + 64 * PG, PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED, f->file, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE + 64 * PG, PG, RW,
					   ANON_SHARED | DMM_MAP_FIXED, f->file, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE + 64 * PG, PG, RW,
					   DMM_MAP_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE, PG, RW, DMM_MAP_SHARED | DMM_MAP_FIXED, NULL,
					   0, NULL));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_mmap_rejects_overflow_and_ranges_outside_user_space(void **state)
{
	struct fx *f = *state;
	const uint64_t huge = UINT64_MAX & DMM_PAGE_MASK;

	populate(f);
	/* addr + len wraps around. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, TBASE, huge, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL,
					   0, NULL));
	/* Below DMM_MMAP_MIN. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, 0, PG, RW, ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0,
					   NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, DMM_MMAP_MIN - PG, 2 * PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	/* At or across DMM_TASK_SIZE. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, DMM_TASK_SIZE, PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, DMM_TASK_SIZE - PG, 2 * PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED, NULL, 0, NULL));
	FAILS_CLEANLY(f, -EINVAL, dmm_mmap(f->mm, DMM_TASK_SIZE - PG, 2 * PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL, 0, NULL));
	/* The last page and the first page of user space are fine. */
	MAP_ANON(f->mm, DMM_TASK_SIZE - PG, 1);
	MAP_ANON(f->mm, DMM_MMAP_MIN, 1);
	CHECK_OK(f->sys);
	OK(dmm_store32(f->mm, DMM_TASK_SIZE - 4, 0xfeed));
	OK(dmm_store32(f->mm, DMM_MMAP_MIN, 0xbeef));
	CHECK_OK(f->sys);
	EQ(LOAD(f->mm, DMM_TASK_SIZE - 4), 0xfeed);
	EQ(LOAD(f->mm, DMM_MMAP_MIN), 0xbeef);
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

/*
 *   TBASE-2     TBASE            TBASE+4
 *   |  |  |     | 0 | 1 | 2 | 3 |    |    |
 *         [------- NOREPLACE overlapping the start ---]
 */
static void test_mmap_fixed_noreplace_over_a_mapping_is_eexist(void **state)
{
	struct fx *f = *state;
	uint64_t out = 0;

	populate(f);
	FAILS_CLEANLY(f, -EEXIST, dmm_mmap(f->mm, TBASE, 4 * PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL, 0, &out));
	FAILS_CLEANLY(f, -EEXIST, dmm_mmap(f->mm, TBASE - 2 * PG, 3 * PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL, 0, &out));
	FAILS_CLEANLY(f, -EEXIST, dmm_mmap(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, RW,
					   ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL, 0, &out));
	FAILS_CLEANLY(f, -EEXIST, dmm_mmap(f->mm, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_READ,
					   ANON_SHARED | DMM_MAP_FIXED_NOREPLACE, NULL, 0, &out));
	VERIFY(f->mm, TBASE, 4 * PG, 1);

	/* Right after the mapping there is room. */
	OK(dmm_mmap(f->mm, PAGE_ADDR(TBASE, 4), 2 * PG, DMM_PROT_READ,
		    ANON_PRIVATE | DMM_MAP_FIXED_NOREPLACE, NULL, 0, &out));
	CHECK_OK(f->sys);
	EQ(out, PAGE_ADDR(TBASE, 4));
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 5)).start, PAGE_ADDR(TBASE, 4));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

/* ------------------------------------------------------------------------ */
/* mmap placement, MAP_FIXED, merging                                        */

static void test_mmap_without_fixed_picks_a_free_aligned_range(void **state)
{
	struct fx *f = *state;
	uint64_t got[8];

	populate(f);
	for (int i = 0; i < 8; i++) {
		uint64_t hint = i == 0 ? TBASE : 0; /* a hint on a mapped range is only a hint */

		got[i] = 0;
		OK(dmm_mmap(f->mm, hint, (uint64_t)(i + 1) * PG, RW, ANON_PRIVATE, NULL, 0, &got[i]));
		CHECK_OK(f->sys);
		EQ(got[i] & ~DMM_PAGE_MASK, 0);
		TRUE(got[i] >= DMM_MMAP_MIN);
		TRUE(got[i] + (uint64_t)(i + 1) * PG <= DMM_TASK_SIZE);
		/* It does not overlap the populated mapping... */
		TRUE(got[i] + (uint64_t)(i + 1) * PG <= TBASE || got[i] >= TBASE + 4 * PG);
		/* ...nor any of the previous ones. */
		for (int j = 0; j < i; j++)
			TRUE(got[i] + (uint64_t)(i + 1) * PG <= got[j] ||
			     got[i] >= got[j] + (uint64_t)(j + 1) * PG);
		FILL(f->mm, got[i], (uint64_t)(i + 1) * PG, 1000u * (uint32_t)i);
		CHECK_OK(f->sys);
	}
	for (int i = 0; i < 8; i++)
		VERIFY(f->mm, got[i], (uint64_t)(i + 1) * PG, 1000u * (uint32_t)i);
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

/*
 *   TBASE
 *   | 0 | 1 | 2 | 3 |      before: data 1 + k
 *   | 0 |new|new| 3 |      MAP_FIXED over pages 1-2: those read zero
 */
static void test_mmap_fixed_replaces_what_was_mapped(void **state)
{
	struct fx *f = *state;
	uint64_t free_before;

	populate(f);
	free_before = dmm_system_nr_free(f->sys);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 1), 2);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), free_before + 2);
	VERIFY(f->mm, TBASE, PG, 1);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 3), PG, 1 + 3 * WORDS_PER_PAGE);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 2);
	CHECK_OK(f->sys);

	/* A read-only shared mapping replacing page 0. */
	MAP_FIXED(f->mm, TBASE, PG, DMM_PROT_READ, ANON_SHARED, NULL, 0);
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).type, DMM_VMA_SHMEM);
	EQ(VMA(f->mm, TBASE).end, PAGE_ADDR(TBASE, 1));
	VERIFY_ZERO(f->mm, TBASE, PG);
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE, 1));
	CHECK_OK(f->sys);
}

static void test_adjacent_compatible_anon_mmaps_merge_into_one_vma(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;

	MAP_ANON(f->mm, TBASE, 2);
	CHECK_OK(f->sys);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 2), 2);
	CHECK_OK(f->sys);
	/* ...and one placed before the first. */
	MAP_ANON(f->mm, TBASE - 2 * PG, 2);
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 1);
	v = VMA(f->mm, TBASE);
	EQ(v.start, TBASE - 2 * PG);
	EQ(v.end, PAGE_ADDR(TBASE, 4));
	EQ(v.type, DMM_VMA_ANON);
	FILL(f->mm, TBASE - 2 * PG, 6 * PG, 3);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE - 2 * PG, 6 * PG, 3);
}

static void test_adjacent_incompatible_mmaps_stay_separate(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 4), 2 * PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 6), 2 * PG, RW, ANON_SHARED, NULL, 0); /* another object */
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 4);
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 2)).start, PAGE_ADDR(TBASE, 2));
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 4)).type, DMM_VMA_SHMEM);
	NE((uintptr_t)VMA(f->mm, PAGE_ADDR(TBASE, 4)).file, (uintptr_t)VMA(f->mm, PAGE_ADDR(TBASE, 6)).file);
}

/*
 * A file of 8 pages mapped in two pieces. Contiguous file offsets merge,
 * a gap in the offsets does not:
 *
 *   TBASE: pgoff 0..1 | pgoff 2..3   -> one VMA, pgoff 0
 *   TBASE+16: pgoff 4 | pgoff 6      -> two VMAs
 */
static void test_adjacent_file_mmaps_merge_only_with_contiguous_offsets(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;

	OK(dmm_file_create(f->sys, 8, &f->file));
	FILE_FILL(f->file, 0, 8 * PG, 500);
	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG, RW, DMM_MAP_SHARED, f->file, 2);
	CHECK_OK(f->sys);
	v = VMA(f->mm, TBASE);
	EQ(v.start, TBASE);
	EQ(v.end, PAGE_ADDR(TBASE, 4));
	EQ(v.pgoff, 0);
	EQ(v.type, DMM_VMA_FILE);
	TRUE(v.file == f->file);
	FLAGS(v.flags, DMM_VM_SHARED | DMM_VM_MAYSHARE | DMM_VM_READ | DMM_VM_WRITE, 0);

	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 16), PG, RW, DMM_MAP_SHARED, f->file, 4);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 17), PG, RW, DMM_MAP_SHARED, f->file, 6);
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 3);
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 17)).pgoff, 6);
	VERIFY(f->mm, TBASE, 4 * PG, 500);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 16), PG, 500 + 4 * WORDS_PER_PAGE);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 17), PG, 500 + 6 * WORDS_PER_PAGE);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* munmap                                                                    */

static void test_munmap_rejects_bad_arguments(void **state)
{
	struct fx *f = *state;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_munmap(f->mm, TBASE + 8, PG));
	FAILS_CLEANLY(f, -EINVAL, dmm_munmap(f->mm, TBASE, 0));
	FAILS_CLEANLY(f, -EINVAL, dmm_munmap(f->mm, TBASE, UINT64_MAX & DMM_PAGE_MASK));
	FAILS_CLEANLY(f, -EINVAL, dmm_munmap(f->mm, DMM_TASK_SIZE, PG));
	FAILS_CLEANLY(f, -EINVAL, dmm_munmap(f->mm, DMM_TASK_SIZE - PG, 2 * PG));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

/*
 *   TBASE
 *   | 0 | 1 | 2 | 3 |
 *   munmap page 0:  [1, 4)   pgoff + 1
 *   munmap page 3:  [1, 3)
 */
static void test_munmap_of_the_edges_shrinks_the_vma(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info before, v;
	uint64_t free_before;

	populate(f);
	before = VMA(f->mm, TBASE);
	free_before = dmm_system_nr_free(f->sys);

	OK(dmm_munmap(f->mm, TBASE, PG));
	CHECK_OK(f->sys);
	v = VMA(f->mm, PAGE_ADDR(TBASE, 1));
	EQ(v.start, PAGE_ADDR(TBASE, 1));
	EQ(v.end, PAGE_ADDR(TBASE, 4));
	EQ(v.pgoff, before.pgoff + 1);
	UNMAPPED(f->mm, TBASE);
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, TBASE, &(uint32_t){ 0 }));
	CHECK_OK(f->sys);

	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 3), PG));
	CHECK_OK(f->sys);
	v = VMA(f->mm, PAGE_ADDR(TBASE, 1));
	EQ(v.end, PAGE_ADDR(TBASE, 3));
	EQ(dmm_system_nr_free(f->sys), free_before + 2);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 2);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG, 1 + WORDS_PER_PAGE);
}

/*
 *   TBASE
 *   | 0 | 1 | 2 | 3 | 4 | 5 |
 *   munmap 2-3:  | 0 | 1 |       | 4 | 5 |
 *   two VMAs; the right one's pgoff = left pgoff + 4
 */
static void test_munmap_of_the_middle_splits_the_vma(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info l, r;
	uint32_t v;

	MAP_ANON(f->mm, TBASE, 6);
	FILL(f->mm, TBASE, 6 * PG, 10);
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG));
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 2);
	l = VMA(f->mm, TBASE);
	r = VMA(f->mm, PAGE_ADDR(TBASE, 4));
	EQ(l.start, TBASE);
	EQ(l.end, PAGE_ADDR(TBASE, 2));
	EQ(r.start, PAGE_ADDR(TBASE, 4));
	EQ(r.end, PAGE_ADDR(TBASE, 6));
	EQ(r.pgoff, l.pgoff + 4);
	EQ(r.flags, l.flags);
	VERIFY(f->mm, TBASE, 2 * PG, 10);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 4), 2 * PG, 10 + 4 * WORDS_PER_PAGE);
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, PAGE_ADDR(TBASE, 2), &v));
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, PAGE_ADDR(TBASE, 3) + 4, 1));
	CHECK_OK(f->sys);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 4);
}

static void test_munmap_of_a_file_mapping_keeps_file_offsets(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info r;

	OK(dmm_file_create(f->sys, 8, &f->file));
	FILE_FILL(f->file, 0, 8 * PG, 0x100);
	/* File pages 2..7 at TBASE; unmap file pages 3..4. */
	MAP_FIXED(f->mm, TBASE, 6 * PG, RW, DMM_MAP_PRIVATE, f->file, 2);
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, TBASE).pgoff, 2);
	r = VMA(f->mm, PAGE_ADDR(TBASE, 3));
	EQ(r.start, PAGE_ADDR(TBASE, 3));
	EQ(r.pgoff, 5);
	VERIFY(f->mm, TBASE, PG, 0x100 + 2 * WORDS_PER_PAGE);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 3), 3 * PG, 0x100 + 5 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 *   TBASE
 *   | A A |   hole   | B B |     munmap of everything, holes included
 */
static void test_munmap_spanning_holes_is_fine(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 8), 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	FILL(f->mm, PAGE_ADDR(TBASE, 8), 2 * PG, 2);
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, TBASE - 4 * PG, 20 * PG));
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 0);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	/* Unmapping nothing at all is fine too. */
	OK(dmm_munmap(f->mm, TBASE, 64 * PG));
	OK(dmm_munmap(f->mm, DMM_MMAP_MIN, PG));
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* mprotect                                                                  */

/*
 *   TBASE
 *   | 0 | 1 | 2 | 3 | 4 |    RW
 *   mprotect(1..2, READ):
 *   | 0 | 1   2 | 3   4 |    RW | R | RW    three VMAs
 *   mprotect(1..2, RW):      one VMA again
 */
static void test_mprotect_of_the_middle_splits_into_three_vmas(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	struct dmm_vma_info a, b, c;

	MAP_ANON(f->mm, TBASE, 5);
	FILL(f->mm, TBASE, 5 * PG, 20);
	CHECK_OK(f->sys);
	s0 = STATS(f->sys);
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 3);
	a = VMA(f->mm, TBASE);
	b = VMA(f->mm, PAGE_ADDR(TBASE, 1));
	c = VMA(f->mm, PAGE_ADDR(TBASE, 3));
	EQ(a.end, PAGE_ADDR(TBASE, 1));
	EQ(b.start, PAGE_ADDR(TBASE, 1));
	EQ(b.end, PAGE_ADDR(TBASE, 3));
	EQ(c.start, PAGE_ADDR(TBASE, 3));
	EQ(c.end, PAGE_ADDR(TBASE, 5));
	EQ(b.pgoff, a.pgoff + 1);
	EQ(c.pgoff, a.pgoff + 3);
	FLAGS(a.flags, DMM_VM_READ | DMM_VM_WRITE, 0);
	FLAGS(b.flags, DMM_VM_READ | DMM_VM_MAYWRITE, DMM_VM_WRITE);
	FLAGS(c.flags, DMM_VM_READ | DMM_VM_WRITE, 0);
	EQ(STAT_DELTA(f->sys, s0, vma_split), 2);
	EQ(STAT_DELTA(f->sys, s0, mprotect), 1);
	EQ(STAT_DELTA(f->sys, s0, mprotect_pte), 2);
	TRUE(!PTE(f->mm, PAGE_ADDR(TBASE, 1)).write);
	TRUE(!PTE(f->mm, PAGE_ADDR(TBASE, 2)).write);
	TRUE(PTE(f->mm, PAGE_ADDR(TBASE, 3)).write);

	s0 = STATS(f->sys);
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG, RW));
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 1);
	a = VMA(f->mm, TBASE);
	EQ(a.start, TBASE);
	EQ(a.end, PAGE_ADDR(TBASE, 5));
	TRUE(STAT_DELTA(f->sys, s0, vma_merge) >= 1);
	VERIFY(f->mm, TBASE, 5 * PG, 20);
}

/*
 *   TBASE
 *   | 0 | 1 |   | 3 | 4 |      mprotect from the hole at 2, or from below 0
 *
 * A range that starts in a hole changes nothing (one that runs into a hole
 * after a mapped part is in test_vma_mprotect).
 */
static void test_mprotect_starting_in_a_hole_is_enomem_and_changes_nothing(void **state)
{
	struct fx *f = *state;
	uint64_t pfn0;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 3), 2);
	FILL(f->mm, TBASE, 2 * PG, 30);
	FILL(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, 40);
	CHECK_OK(f->sys);
	pfn0 = PFN(f->mm, TBASE);
	FAILS_CLEANLY(f, -ENOMEM, dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 2), 3 * PG, DMM_PROT_READ));
	FAILS_CLEANLY(f, -ENOMEM, dmm_mprotect(f->mm, TBASE - PG, 2 * PG, DMM_PROT_READ));
	/* Still writable in place, everywhere. */
	TRUE(PTE(f->mm, TBASE).write);
	OK(dmm_store32(f->mm, TBASE, 0x55));
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, 4), 0x66));
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), pfn0);
	EQ(LOAD(f->mm, TBASE), 0x55);
	EQ(LOAD(f->mm, PAGE_ADDR(TBASE, 4)), 0x66);
}

static void test_mprotect_rejects_bad_arguments(void **state)
{
	struct fx *f = *state;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_mprotect(f->mm, TBASE + 4, PG, DMM_PROT_READ));
	FAILS_CLEANLY(f, -EINVAL, dmm_mprotect(f->mm, TBASE, PG, 0x10));
	FAILS_CLEANLY(f, -EINVAL, dmm_mprotect(f->mm, TBASE, PG, RW | 0x8000));
	FAILS_CLEANLY(f, -EINVAL, dmm_mprotect(f->mm, TBASE, UINT64_MAX & DMM_PAGE_MASK,
					       DMM_PROT_READ));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
	TRUE(PTE(f->mm, TBASE).write);
}

static void test_write_after_mprotect_read_only_is_efault(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	struct dmm_pte_info pte;
	uint64_t pfn;
	uint32_t old;

	populate(f);
	pfn = PFN(f->mm, TBASE);
	OK(dmm_mprotect(f->mm, TBASE, 4 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	pte = PTE(f->mm, TBASE);
	EQ(pte.kind, DMM_PTE_PRESENT);
	EQ(pte.pfn, pfn);
	TRUE(!pte.write);
	s0 = STATS(f->sys);
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE, 0));
	EXPECT_RC(-EFAULT, dmm_write(f->mm, PAGE_ADDR(TBASE, 1), "x", 1));
	EXPECT_RC(-EFAULT, dmm_cmpxchg32(f->mm, TBASE + 4, 2, 3, &old));
	EXPECT_RC(-EFAULT, dmm_fetch_add32(f->mm, TBASE + 8, 1, &old));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, fault_segv), 4);
	VERIFY(f->mm, TBASE, 4 * PG, 1);
	EQ(PFN(f->mm, TBASE), pfn);
}

static void test_read_after_mprotect_none_is_efault_and_data_survives(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[4];
	uint32_t v;
	char c;

	populate(f);
	for (int i = 0; i < 4; i++)
		pfns[i] = PFN(f->mm, PAGE_ADDR(TBASE, i));
	OK(dmm_mprotect(f->mm, TBASE, 4 * PG, DMM_PROT_NONE));
	CHECK_OK(f->sys);
	FLAGS(VMA(f->mm, TBASE).flags, DMM_VM_MAYREAD | DMM_VM_MAYWRITE, DMM_VM_READ | DMM_VM_WRITE);
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, TBASE, &v));
	EXPECT_RC(-EFAULT, dmm_read(f->mm, PAGE_ADDR(TBASE, 3) + 7, &c, 1));
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE, 1));
	CHECK_OK(f->sys);

	OK(dmm_mprotect(f->mm, TBASE, 4 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, 4 * PG, 1);
	OK(dmm_mprotect(f->mm, TBASE, 4 * PG, RW));
	CHECK_OK(f->sys);
	/* Writable again, in place: the pages were never shared. */
	FILL(f->mm, TBASE, 4 * PG, 99);
	CHECK_OK(f->sys);
	for (int i = 0; i < 4; i++)
		EQ(PFN(f->mm, PAGE_ADDR(TBASE, i)), pfns[i]);
	VERIFY(f->mm, TBASE, 4 * PG, 99);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 4);
}

static void test_mprotect_of_a_shared_mapping_keeps_sharing(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 2, &f->file));
	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	FILL(f->mm, TBASE, 2 * PG, 7);
	CHECK_OK(f->sys);
	OK(dmm_mprotect(f->mm, TBASE, 2 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE, 1));
	OK(dmm_mprotect(f->mm, TBASE, 2 * PG, RW));
	CHECK_OK(f->sys);
	OK(dmm_store32(f->mm, TBASE, 0x77));
	CHECK_OK(f->sys);
	uint32_t w = 0;
	OK(dmm_file_pread(f->file, &w, 4, 0));
	EQ(w, 0x77);
	FILE_VERIFY(f->file, 4, 2 * PG - 4, 8);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* madvise                                                                   */

static void test_madvise_dontneed_makes_anon_private_memory_read_zero(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	uint64_t free_before;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 50);
	CHECK_OK(f->sys);
	free_before = dmm_system_nr_free(f->sys);
	s0 = STATS(f->sys);
	OK(dmm_madvise(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, zap_page), 2);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 1));
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 2));
	EQ(dmm_system_nr_free(f->sys), free_before + 2);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 2);
	EQS(nr_vmas(f->mm), 1); /* DONTNEED does not split */
	VERIFY(f->mm, TBASE, PG, 50);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 3), PG, 50 + 3 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
}

static void test_madvise_dontneed_keeps_shmem_data(void **state)
{
	struct fx *f = *state;
	uint64_t pfn;

	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, TBASE, 2 * PG, 60);
	CHECK_OK(f->sys);
	pfn = PFN(f->mm, TBASE);
	EQ(dmm_mm_rss(f->mm, DMM_MM_SHMEMPAGES), 2);
	OK(dmm_madvise(f->mm, TBASE, 2 * PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	PTE_NONE(f->mm, TBASE);
	EQ(dmm_mm_rss(f->mm, DMM_MM_SHMEMPAGES), 0);
	/* The shmem object still holds the page: it refaults with the data. */
	VERIFY(f->mm, TBASE, 2 * PG, 60);
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), pfn);
}

static void test_madvise_dontneed_keeps_shared_file_data(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 2, &f->file));
	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	FILL(f->mm, TBASE, 2 * PG, 70);
	CHECK_OK(f->sys);
	OK(dmm_madvise(f->mm, TBASE, 2 * PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	PTE_NONE(f->mm, TBASE);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 0);
	FILE_VERIFY(f->file, 0, 2 * PG, 70);
	VERIFY(f->mm, TBASE, 2 * PG, 70);
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 * A private file mapping: page 0 written (a private anon copy), page 1
 * only read (the page-cache page). DONTNEED drops the copy: page 0 shows the
 * file's data again.
 */
static void test_madvise_dontneed_on_private_file_mapping_shows_file_data_again(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 2, &f->file));
	FILE_FILL(f->file, 0, 2 * PG, 80);
	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	FILL(f->mm, TBASE, PG, 90);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 1), PG, 80 + WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 1);
	OK(dmm_madvise(f->mm, TBASE, 2 * PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 0);
	VERIFY(f->mm, TBASE, 2 * PG, 80);
	FILE_VERIFY(f->file, 0, 2 * PG, 80);
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 *   TBASE
 *   | A A |  hole  | B B |     DONTNEED over all: -ENOMEM, but A and B are
 *                              advised anyway (as in Linux)
 */
static void test_madvise_over_a_hole_is_enomem_but_advises_the_mapped_parts(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 4), 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	FILL(f->mm, PAGE_ADDR(TBASE, 4), 2 * PG, 2);
	CHECK_OK(f->sys);
	EXPECT_RC(-ENOMEM, dmm_madvise(f->mm, TBASE, 6 * PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	VERIFY_ZERO(f->mm, TBASE, 2 * PG);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 4), 2 * PG);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_madvise_rejects_unknown_advice_and_unaligned_ranges(void **state)
{
	struct fx *f = *state;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_madvise(f->mm, TBASE, PG, 999));
	FAILS_CLEANLY(f, -EINVAL, dmm_madvise(f->mm, TBASE, PG, -1));
	FAILS_CLEANLY(f, -EINVAL, dmm_madvise(f->mm, TBASE + 12, PG, DMM_MADV_DONTNEED));
	FAILS_CLEANLY(f, -EINVAL, dmm_madvise(f->mm, TBASE, UINT64_MAX & DMM_PAGE_MASK,
					      DMM_MADV_DONTNEED));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

/* MADV_FREE frees private anonymous pages (at once in devmm, as reclaim
 * would). A shared VMA in the range fails with EINVAL, as in Linux, after
 * the VMAs before it have been advised; shmem keeps its data. */
static void test_madvise_free_frees_anon_private_pages_and_refuses_shmem(void **state)
{
	struct fx *f = *state;
	uint64_t free_before;

	MAP_ANON(f->mm, TBASE, 3);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, TBASE, 5 * PG, 3);
	CHECK_OK(f->sys);
	free_before = dmm_system_nr_free(f->sys);
	OK(dmm_madvise(f->mm, TBASE, PG, DMM_MADV_FREE));
	EQ(dmm_system_nr_free(f->sys), free_before + 1);
	EXPECT_RC(-EINVAL, dmm_madvise(f->mm, TBASE, 5 * PG, DMM_MADV_FREE));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), free_before + 3);
	PTE_NONE(f->mm, TBASE);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 2));
	EQ(PTE(f->mm, PAGE_ADDR(TBASE, 3)).kind, DMM_PTE_PRESENT);
	VERIFY_ZERO(f->mm, TBASE, 3 * PG);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, 3 + 3 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
}

static void test_madvise_hugepage_is_recorded_on_the_vma(void **state)
{
	struct fx *f = *state;

	populate(f);
	OK(dmm_madvise(f->mm, TBASE, 4 * PG, DMM_MADV_HUGEPAGE));
	CHECK_OK(f->sys);
	FLAGS(VMA(f->mm, TBASE).flags, DMM_VM_HUGEPAGE, DMM_VM_NOHUGEPAGE);
	OK(dmm_madvise(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG, DMM_MADV_NOHUGEPAGE));
	CHECK_OK(f->sys);
	EQS(nr_vmas(f->mm), 2);
	FLAGS(VMA(f->mm, TBASE).flags, DMM_VM_HUGEPAGE, DMM_VM_NOHUGEPAGE);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 2)).flags, DMM_VM_NOHUGEPAGE, DMM_VM_HUGEPAGE);
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

/*
 *   TBASE
 *   | 0 | 1 | 2 | 3 |     DONTFORK on 2-3: that part is left out of forks
 */
static void test_madvise_dontfork_leaves_the_range_out_of_the_child(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child, *child2;
	uint32_t v;

	populate(f);
	OK(dmm_madvise(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG, DMM_MADV_DONTFORK));
	CHECK_OK(f->sys);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 2)).flags, DMM_VM_DONTCOPY, 0);
	FLAGS(VMA(f->mm, TBASE).flags, 0, DMM_VM_DONTCOPY);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	VERIFY(child, TBASE, 2 * PG, 1);
	UNMAPPED(child, PAGE_ADDR(TBASE, 2));
	UNMAPPED(child, PAGE_ADDR(TBASE, 3));
	EXPECT_RC(-EFAULT, dmm_load32(child, PAGE_ADDR(TBASE, 2), &v));
	EXPECT_RC(-EFAULT, dmm_store32(child, PAGE_ADDR(TBASE, 3), 1));
	CHECK_OK(f->sys);
	/* The parent's DONTFORK pages were not shared: still writable in place. */
	TRUE(PTE(f->mm, PAGE_ADDR(TBASE, 2)).write);
	COUNTS(f->sys, PFN(f->mm, PAGE_ADDR(TBASE, 2)), 1, 1);
	VERIFY(f->mm, TBASE, 4 * PG, 1);

	OK(dmm_madvise(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG, DMM_MADV_DOFORK));
	CHECK_OK(f->sys);
	FLAGS(VMA(f->mm, PAGE_ADDR(TBASE, 2)).flags, 0, DMM_VM_DONTCOPY);
	EQS(nr_vmas(f->mm), 1); /* merged back */
	OK(dmm_fork(f->mm, &child2));
	CHECK_OK(f->sys);
	VERIFY(child2, TBASE, 4 * PG, 1);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	dmm_mm_exit(child2);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* mremap                                                                    */

#define MOVE (DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED)
#define NEWBASE (TBASE + 0x10000000UL)

/*
 *   TBASE               NEWBASE
 *   | 0 | 1 | 2 | 3 |   |   |   |   |   |
 *          ------ mremap ------->
 *   |   (unmapped)  |   | 0 | 1 | 2 | 3 |   same frames, same data
 */
static void test_mremap_moves_pages_with_their_data(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[4];
	struct dmm_vma_info v;
	uint32_t w;

	populate(f);
	for (int i = 0; i < 4; i++)
		pfns[i] = PFN(f->mm, PAGE_ADDR(TBASE, i));
	OK(dmm_mremap(f->mm, TBASE, 4 * PG, 4 * PG, MOVE, NEWBASE));
	CHECK_OK(f->sys);
	UNMAPPED(f->mm, TBASE);
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, TBASE, &w));
	v = VMA(f->mm, NEWBASE);
	EQ(v.start, NEWBASE);
	EQ(v.end, NEWBASE + 4 * PG);
	for (int i = 0; i < 4; i++) {
		struct dmm_pte_info p = PTE(f->mm, PAGE_ADDR(NEWBASE, i));

		EQ(p.kind, DMM_PTE_PRESENT);
		EQ(p.pfn, pfns[i]);
		TRUE(p.write);
		COUNTS(f->sys, pfns[i], 1, 1);
	}
	VERIFY(f->mm, NEWBASE, 4 * PG, 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 4);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 4);
	/* Still exclusive: written in place. */
	FILL(f->mm, NEWBASE, 4 * PG, 2);
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, NEWBASE), pfns[0]);
}

static void test_mremap_dontunmap_leaves_the_old_range_mapped_and_empty(void **state)
{
	struct fx *f = *state;
	uint64_t pfn0;
	struct dmm_vma_info v;

	populate(f);
	pfn0 = PFN(f->mm, TBASE);
	OK(dmm_mremap(f->mm, TBASE, 4 * PG, 4 * PG, MOVE | DMM_MREMAP_DONTUNMAP, NEWBASE));
	CHECK_OK(f->sys);
	v = VMA(f->mm, TBASE);
	EQ(v.start, TBASE);
	EQ(v.end, PAGE_ADDR(TBASE, 4));
	PTE_NONE(f->mm, TBASE);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 3));
	EQ(PFN(f->mm, NEWBASE), pfn0);
	VERIFY(f->mm, NEWBASE, 4 * PG, 1);
	VERIFY_ZERO(f->mm, TBASE, 4 * PG);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 4);
	/* The old range is usable memory. */
	FILL(f->mm, TBASE, PG, 5);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, PG, 5);
	VERIFY(f->mm, NEWBASE, PG, 1);
}

static void test_mremap_to_a_larger_size_extends_with_empty_pages(void **state)
{
	struct fx *f = *state;

	populate(f);
	OK(dmm_mremap(f->mm, TBASE, 4 * PG, 6 * PG, MOVE, NEWBASE));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, NEWBASE).end, NEWBASE + 6 * PG);
	VERIFY(f->mm, NEWBASE, 4 * PG, 1);
	VERIFY_ZERO(f->mm, PAGE_ADDR(NEWBASE, 4), 2 * PG);
	FILL(f->mm, PAGE_ADDR(NEWBASE, 5), PG, 6);
	CHECK_OK(f->sys);
	VERIFY(f->mm, PAGE_ADDR(NEWBASE, 5), PG, 6);
}

static void test_mremap_to_a_smaller_size_unmaps_the_tail(void **state)
{
	struct fx *f = *state;
	uint32_t w;

	populate(f);
	OK(dmm_mremap(f->mm, TBASE, 4 * PG, 2 * PG, MOVE, NEWBASE));
	CHECK_OK(f->sys);
	EQ(VMA(f->mm, NEWBASE).end, NEWBASE + 2 * PG);
	UNMAPPED(f->mm, TBASE);
	UNMAPPED(f->mm, PAGE_ADDR(TBASE, 3));
	UNMAPPED(f->mm, PAGE_ADDR(NEWBASE, 2));
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, PAGE_ADDR(NEWBASE, 2), &w));
	VERIFY(f->mm, NEWBASE, 2 * PG, 1);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 2);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 2);
	CHECK_OK(f->sys);
}

static void test_mremap_replaces_what_was_mapped_at_the_target(void **state)
{
	struct fx *f = *state;

	populate(f);
	MAP_ANON(f->mm, NEWBASE - PG, 6);
	FILL(f->mm, NEWBASE - PG, 6 * PG, 0x900);
	CHECK_OK(f->sys);
	OK(dmm_mremap(f->mm, TBASE, 4 * PG, 4 * PG, MOVE, NEWBASE));
	CHECK_OK(f->sys);
	VERIFY(f->mm, NEWBASE - PG, PG, 0x900);
	VERIFY(f->mm, NEWBASE, 4 * PG, 1);
	VERIFY(f->mm, PAGE_ADDR(NEWBASE, 4), PG, 0x900 + 5 * WORDS_PER_PAGE);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 6);
	CHECK_OK(f->sys);
}

/* Moving the middle of a VMA splits it; a file mapping keeps its offsets. */
static void test_mremap_of_part_of_a_file_mapping_keeps_its_file_offset(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;

	OK(dmm_file_create(f->sys, 8, &f->file));
	FILE_FILL(f->file, 0, 8 * PG, 0x4000);
	MAP_FIXED(f->mm, TBASE, 8 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	VERIFY(f->mm, TBASE, 8 * PG, 0x4000);
	CHECK_OK(f->sys);
	OK(dmm_mremap(f->mm, PAGE_ADDR(TBASE, 2), 3 * PG, 3 * PG, MOVE, NEWBASE));
	CHECK_OK(f->sys);
	v = VMA(f->mm, NEWBASE);
	EQ(v.pgoff, 2);
	EQ(v.type, DMM_VMA_FILE);
	TRUE(v.file == f->file);
	EQ(VMA(f->mm, PAGE_ADDR(TBASE, 5)).pgoff, 5);
	UNMAPPED(f->mm, PAGE_ADDR(TBASE, 2));
	VERIFY(f->mm, NEWBASE, 3 * PG, 0x4000 + 2 * WORDS_PER_PAGE);
	OK(dmm_store32(f->mm, NEWBASE, 0xabcd));
	CHECK_OK(f->sys);
	uint32_t w = 0;
	OK(dmm_file_pread(f->file, &w, 4, 2 * PG));
	EQ(w, 0xabcd);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_mremap_rejects_overlapping_ranges(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 8);
	FILL(f->mm, TBASE, 8 * PG, 1);
	CHECK_OK(f->sys);
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, 4 * PG, 4 * PG, MOVE, PAGE_ADDR(TBASE, 2)));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, PAGE_ADDR(TBASE, 2), 4 * PG, 4 * PG, MOVE, TBASE));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, 4 * PG, 4 * PG, MOVE, TBASE));
	/* The new, larger range would overlap the old one. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, PAGE_ADDR(TBASE, 4), 2 * PG, 4 * PG, MOVE,
					     PAGE_ADDR(TBASE, 1)));
	VERIFY(f->mm, TBASE, 8 * PG, 1);
}

/*
 *   TBASE
 *   | 0 RW | 1 RW | 2 R | 3 R |    two VMAs
 *
 * A resize across them, or a range that starts in a hole, is EFAULT (a
 * pure move across them works: test_vma_mremap).
 */
static void test_mremap_resizing_across_two_vmas_or_from_a_hole_is_efault(void **state)
{
	struct fx *f = *state;

	populate(f);
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 2), 2 * PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	FAILS_CLEANLY(f, -EFAULT, dmm_mremap(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG, 3 * PG, MOVE, NEWBASE));
	/* Shrinking: what stays, [1, 3), spans both. */
	FAILS_CLEANLY(f, -EFAULT, dmm_mremap(f->mm, PAGE_ADDR(TBASE, 1), 3 * PG, 2 * PG, MOVE, NEWBASE));
	FAILS_CLEANLY(f, -EFAULT, dmm_mremap(f->mm, PAGE_ADDR(TBASE, 16), PG, PG, MOVE, NEWBASE));
	FAILS_CLEANLY(f, -EFAULT, dmm_mremap(f->mm, PAGE_ADDR(TBASE, 4), 2 * PG, 2 * PG, MOVE, NEWBASE));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

static void test_mremap_rejects_bad_flags_and_lengths(void **state)
{
	struct fx *f = *state;

	populate(f);
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, PG, DMM_MREMAP_FIXED, NEWBASE));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, PG, DMM_MREMAP_MAYMOVE, NEWBASE));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, PG, 0, NEWBASE));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, PG, MOVE | 0x8, NEWBASE));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, PG, DMM_MREMAP_DONTUNMAP, NEWBASE));
	/* DONTUNMAP needs old_len == new_len. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, 2 * PG, MOVE | DMM_MREMAP_DONTUNMAP,
					     NEWBASE));
	/* Unaligned addresses, zero lengths. */
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE + 4, PG, PG, MOVE, NEWBASE));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, PG, MOVE, NEWBASE + 4));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, 0, PG, MOVE, NEWBASE));
	FAILS_CLEANLY(f, -EINVAL, dmm_mremap(f->mm, TBASE, PG, 0, MOVE, NEWBASE));
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

/* ------------------------------------------------------------------------ */
/* Many VMAs                                                                 */

#define MANY_PAGES 3000

static uint64_t many_rng;

static unsigned int many_below(unsigned int n)
{
	many_rng ^= many_rng >> 12;
	many_rng ^= many_rng << 25;
	many_rng ^= many_rng >> 27;
	return (unsigned int)((many_rng * 2685821657736338717ull) % n);
}

/* The VMAs over [TBASE, +MANY_PAGES) are exactly the maximal runs of
 * pages with one protection (prot[i] < 0: unmapped). */
static void many_expect_runs(uint64_t seed, struct dmm_mm *mm, const int *prot, int step)
{
	struct dmm_vma_info v;
	uint64_t a = TBASE;
	int i = 0;

	while (i < MANY_PAGES) {
		int j = i;

		if (prot[i] < 0) {
			i++;
			continue;
		}
		while (j < MANY_PAGES && prot[j] == prot[i])
			j++;
		if (dmm_vma_query(mm, a, &v) || v.start != PAGE_ADDR(TBASE, i) || v.end != PAGE_ADDR(TBASE, j) ||
		    !(v.flags & DMM_VM_READ) != !(prot[i] & DMM_PROT_READ) ||
		    !(v.flags & DMM_VM_WRITE) != !(prot[i] & DMM_PROT_WRITE))
			fail_msg("seed %" PRIu64 " step %d: pages [%d, %d) prot %d: VMA [%#" PRIx64 ", %#" PRIx64
				 ") flags %#lx", seed, step, i, j, prot[i], v.start, v.end, v.flags);
		a = v.end;
		i = j;
	}
	EQ(dmm_vma_query(mm, a, &v), -ENOENT);
}

/*
 * Hundreds of VMAs (a VMA tree several levels deep): random mmap, munmap
 * and mprotect over a 3000-page range, each checked against a model of
 * per-page protections (anonymous VMAs without pages merge exactly when
 * adjacent with equal protections: never faulted, they are charged,
 * VM_ACCOUNT, exactly when writable), with dmm_check along the way and a
 * fork at the end. The seed is printed; DEVMM_SEED repeats it.
 */
static void test_many_vmas_split_merge_and_unmap_like_a_page_model(void **state)
{
	struct fx *f = *state;
	const char *env = getenv("DEVMM_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	static int prot[MANY_PAGES];
	struct dmm_mm *child;
	int peak = 0;

	print_message("many VMAs: seed %" PRIu64 " (DEVMM_SEED repeats it)\n", seed);
	many_rng = seed | 1;
	/* Start from alternating protections: MANY_PAGES / 2 VMAs. */
	for (int i = 0; i < MANY_PAGES; i++) {
		prot[i] = i % 2 ? DMM_PROT_READ : RW;
		MAP_FIXED(f->mm, PAGE_ADDR(TBASE, i), PG, prot[i], ANON_PRIVATE, NULL, 0);
	}
	many_expect_runs(seed, f->mm, prot, -1);
	for (int step = 0; step < 1500; step++) {
		int i = (int)many_below(MANY_PAGES), n = 1 + (int)many_below(step % 10 ? 4 : 300);
		int p = (int)many_below(3) == 0 ? DMM_PROT_NONE : many_below(2) ? DMM_PROT_READ : RW;
		unsigned int op = many_below(3);
		int mapped = 0; /* pages mapped from i on, up to the first hole */

		if (i + n > MANY_PAGES)
			n = MANY_PAGES - i;
		while (mapped < n && prot[i + mapped] >= 0)
			mapped++;
		if (op == 0) {
			MAP_FIXED(f->mm, PAGE_ADDR(TBASE, i), (uint64_t)n * PG, p, ANON_PRIVATE, NULL, 0);
		} else if (op == 1) {
			OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, i), (uint64_t)n * PG));
			p = -1;
		} else {
			/* Linux: the VMAs before a hole change, then ENOMEM. */
			EXPECT_RC(mapped == n ? 0 : -ENOMEM,
				  dmm_mprotect(f->mm, PAGE_ADDR(TBASE, i), (uint64_t)n * PG, p));
			n = mapped;
		}
		for (int k = i; k < i + n; k++)
			prot[k] = p;
		many_expect_runs(seed, f->mm, prot, step);
		if (step % 100 == 0)
			CHECK_OK(f->sys);
		{
			int runs = 0;

			for (int k = 0; k < MANY_PAGES; k++)
				runs += prot[k] >= 0 && (k == 0 || prot[k - 1] != prot[k]);
			peak = runs > peak ? runs : peak;
		}
	}
	TRUE(peak > 16 * 15); /* more than two levels of the tree */
	CHECK_OK(f->sys);
	OK(dmm_fork(f->mm, &child));
	many_expect_runs(seed, child, prot, 1500);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_mmap_rejects_zero_length),
		T(test_mmap_fixed_rejects_unaligned_address),
		T(test_mmap_needs_exactly_one_of_shared_and_private),
		T(test_mmap_rejects_unknown_prot_bits),
		T(test_mmap_rejects_file_with_anonymous_and_missing_file),
		T(test_mmap_rejects_overflow_and_ranges_outside_user_space),
		T(test_mmap_fixed_noreplace_over_a_mapping_is_eexist),
		T(test_mmap_without_fixed_picks_a_free_aligned_range),
		T(test_mmap_fixed_replaces_what_was_mapped),
		T(test_adjacent_compatible_anon_mmaps_merge_into_one_vma),
		T(test_adjacent_incompatible_mmaps_stay_separate),
		T(test_adjacent_file_mmaps_merge_only_with_contiguous_offsets),
		T(test_munmap_rejects_bad_arguments),
		T(test_munmap_of_the_edges_shrinks_the_vma),
		T(test_munmap_of_the_middle_splits_the_vma),
		T(test_munmap_of_a_file_mapping_keeps_file_offsets),
		T(test_munmap_spanning_holes_is_fine),
		T(test_mprotect_of_the_middle_splits_into_three_vmas),
		T(test_mprotect_starting_in_a_hole_is_enomem_and_changes_nothing),
		T(test_mprotect_rejects_bad_arguments),
		T(test_write_after_mprotect_read_only_is_efault),
		T(test_read_after_mprotect_none_is_efault_and_data_survives),
		T(test_mprotect_of_a_shared_mapping_keeps_sharing),
		T(test_madvise_dontneed_makes_anon_private_memory_read_zero),
		T(test_madvise_dontneed_keeps_shmem_data),
		T(test_madvise_dontneed_keeps_shared_file_data),
		T(test_madvise_dontneed_on_private_file_mapping_shows_file_data_again),
		T(test_madvise_over_a_hole_is_enomem_but_advises_the_mapped_parts),
		T(test_madvise_rejects_unknown_advice_and_unaligned_ranges),
		T(test_madvise_free_frees_anon_private_pages_and_refuses_shmem),
		T(test_madvise_hugepage_is_recorded_on_the_vma),
		T(test_madvise_dontfork_leaves_the_range_out_of_the_child),
		T(test_mremap_moves_pages_with_their_data),
		T(test_mremap_dontunmap_leaves_the_old_range_mapped_and_empty),
		T(test_mremap_to_a_larger_size_extends_with_empty_pages),
		T(test_mremap_to_a_smaller_size_unmaps_the_tail),
		T(test_mremap_replaces_what_was_mapped_at_the_target),
		T(test_mremap_of_part_of_a_file_mapping_keeps_its_file_offset),
		T(test_mremap_rejects_overlapping_ranges),
		T(test_mremap_resizing_across_two_vmas_or_from_a_hole_is_efault),
		T(test_mremap_rejects_bad_flags_and_lengths),
		T(test_many_vmas_split_merge_and_unmap_like_a_page_model),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
