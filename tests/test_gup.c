/* SPDX-License-Identifier: MIT */
/*
 * get_user_pages / pin_user_pages: reference arithmetic (GET +1, PIN +1024
 * and one exact pin), flag errors, faulting in, permission errors, partial
 * success, release, unsharing of pages shared after fork, and pins that
 * outlive their mapping.
 */
#include "helpers.h"

#define GET DMM_FOLL_GET
#define PIN DMM_FOLL_PIN
#define WR DMM_FOLL_WRITE

static void test_get_takes_one_reference_per_page(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	uint64_t pfns[4] = { 0 };

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	CHECK_OK(f->sys);
	s0 = STATS(f->sys);
	EQS(dmm_get_user_pages(f->mm, TBASE, 4, GET, pfns), 4);
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, gup_pages), 4);
	for (int i = 0; i < 4; i++) {
		struct dmm_page_info pi = PAGE(f->sys, pfns[i]);

		EQ(pfns[i], PFN(f->mm, PAGE_ADDR(TBASE, i)));
		EQ(pi.refcount, 2);
		EQS(pi.mapcount, 1);
		EQ(pi.pincount, 0);
	}
	dmm_put_user_pages(f->sys, pfns, 4);
	CHECK_OK(f->sys);
	for (int i = 0; i < 4; i++)
		COUNTS(f->sys, pfns[i], 1, 1);
	VERIFY(f->mm, TBASE, 4 * PG, 1);
}

static void test_pin_adds_the_bias_and_counts_each_pin(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	uint64_t a[2] = { 0 }, b[2] = { 0 };

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	s0 = STATS(f->sys);
	EQS(dmm_get_user_pages(f->mm, TBASE, 2, PIN | WR, a), 2);
	CHECK_OK(f->sys);
	for (int i = 0; i < 2; i++) {
		COUNTS(f->sys, a[i], 1 + 1024, 1);
		EQ(PAGE(f->sys, a[i]).pincount, 1);
		FLAGS(PAGE(f->sys, a[i]).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	}
	EQS(dmm_get_user_pages(f->mm, TBASE, 2, PIN, b), 2);
	CHECK_OK(f->sys);
	EQ(b[0], a[0]);
	EQ(b[1], a[1]);
	COUNTS(f->sys, a[0], 1 + 2048, 1);
	EQ(PAGE(f->sys, a[0]).pincount, 2);
	EQ(STAT_DELTA(f->sys, s0, pin_pages), 4);

	dmm_unpin_user_pages(f->sys, a, 2);
	CHECK_OK(f->sys);
	COUNTS(f->sys, a[1], 1 + 1024, 1);
	EQ(PAGE(f->sys, a[1]).pincount, 1);
	dmm_unpin_user_pages(f->sys, b, 2);
	CHECK_OK(f->sys);
	for (int i = 0; i < 2; i++) {
		COUNTS(f->sys, a[i], 1, 1);
		EQ(PAGE(f->sys, a[i]).pincount, 0);
	}
	EQ(STAT_DELTA(f->sys, s0, unpin_pages), 4);
	VERIFY(f->mm, TBASE, 2 * PG, 1);
}

static void test_gup_rejects_bad_flags_and_arguments(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[2] = { 0 };
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	CHECK_OK(f->sys);
	pfn = PFN(f->mm, TBASE);
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE, 1, GET | PIN, pfns));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE, 1, 0, pfns));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE, 1, WR, pfns));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE, 1, GET, NULL));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE, 1, PIN | WR, NULL));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE, 0, GET, pfns));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE + 4, 1, GET, pfns));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE + 0x800, 1, PIN, pfns));
	/* FOLL_LONGTERM is for pins only. */
	EXPECT_RC(-EINVAL, dmm_get_user_pages(f->mm, TBASE, 1, GET | DMM_FOLL_LONGTERM, pfns));
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 1, 1);
	EQ(PAGE(f->sys, pfn).pincount, 0);
}

static void test_gup_faults_in_unpopulated_pages(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[3] = { 0 };

	MAP_ANON(f->mm, TBASE, 3);
	EQS(dmm_get_user_pages(f->mm, TBASE, 3, PIN | WR, pfns), 3);
	CHECK_OK(f->sys);
	for (int i = 0; i < 3; i++) {
		struct dmm_pte_info pte = PTE(f->mm, PAGE_ADDR(TBASE, i));

		NE(pfns[i], DMM_ZERO_PFN);
		EQ(pte.kind, DMM_PTE_PRESENT);
		EQ(pte.pfn, pfns[i]);
		TRUE(pte.write);
		COUNTS(f->sys, pfns[i], 1 + 1024, 1);
		FLAGS(PAGE(f->sys, pfns[i]).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	}
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 3);
	VERIFY_ZERO(f->mm, TBASE, 3 * PG);
	/* The pinned pages are the ones the CPU writes. */
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, 2), 0x42));
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, PAGE_ADDR(TBASE, 2)), pfns[2]);
	dmm_unpin_user_pages(f->sys, pfns, 3);
	CHECK_OK(f->sys);
	for (int i = 0; i < 3; i++)
		COUNTS(f->sys, pfns[i], 1, 1);
}

static void test_gup_of_file_pages_returns_the_page_cache_pages(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[2] = { 0 }, wp[2] = { 0 };

	OK(dmm_file_create(f->sys, 2, &f->file));
	FILE_FILL(f->file, 0, 2 * PG, 0x100);
	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 8), 2 * PG, RW, DMM_MAP_PRIVATE, f->file, 0);

	/* Shared: the page-cache pages, for reading and for writing. */
	EQS(dmm_get_user_pages(f->mm, TBASE, 2, GET | WR, pfns), 2);
	CHECK_OK(f->sys);
	for (int i = 0; i < 2; i++) {
		FLAGS(PAGE(f->sys, pfns[i]).flags, DMM_PAGE_PAGECACHE, DMM_PAGE_ANON);
		EQ(PFN(f->mm, PAGE_ADDR(TBASE, i)), pfns[i]);
		COUNTS(f->sys, pfns[i], 3, 1); /* cache + mapping + GET */
	}

	/* Private, read: the same page-cache pages, mapped read-only. */
	uint64_t rp[2] = { 0 };
	EQS(dmm_get_user_pages(f->mm, PAGE_ADDR(TBASE, 8), 2, GET, rp), 2);
	CHECK_OK(f->sys);
	EQ(rp[0], pfns[0]);
	EQ(rp[1], pfns[1]);
	TRUE(!PTE(f->mm, PAGE_ADDR(TBASE, 8)).write);

	/* Private, write: private anonymous copies. */
	EQS(dmm_get_user_pages(f->mm, PAGE_ADDR(TBASE, 8), 2, PIN | WR, wp), 2);
	CHECK_OK(f->sys);
	for (int i = 0; i < 2; i++) {
		NE(wp[i], pfns[i]);
		FLAGS(PAGE(f->sys, wp[i]).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE,
		      DMM_PAGE_PAGECACHE);
		EQ(PFN(f->mm, PAGE_ADDR(TBASE, 8 + i)), wp[i]);
		COUNTS(f->sys, wp[i], 1 + 1024, 1);
	}
	VERIFY(f->mm, PAGE_ADDR(TBASE, 8), 2 * PG, 0x100);

	dmm_put_user_pages(f->sys, pfns, 2);
	dmm_put_user_pages(f->sys, rp, 2);
	dmm_unpin_user_pages(f->sys, wp, 2);
	CHECK_OK(f->sys);
	for (int i = 0; i < 2; i++) {
		COUNTS(f->sys, pfns[i], 2, 1);
		COUNTS(f->sys, wp[i], 1, 1);
	}
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_gup_write_on_a_read_only_mapping_is_efault(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[2] = { 0 };

	MAP_FIXED(f->mm, TBASE, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, TBASE, 2, GET | WR, pfns));
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, TBASE, 1, PIN | WR, pfns));
	CHECK_OK(f->sys);
	PTE_NONE(f->mm, TBASE);
	EQ(dmm_system_nr_free(f->sys), f->free0);

	/* A shared read-only file mapping too. */
	OK(dmm_file_create(f->sys, 1, &f->file));
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 4), PG, DMM_PROT_READ, DMM_MAP_SHARED, f->file, 0);
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, PAGE_ADDR(TBASE, 4), 1, GET | WR, pfns));
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_gup_on_prot_none_or_unmapped_is_efault(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[2] = { 0 };

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_NONE));
	CHECK_OK(f->sys);
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, TBASE, 1, GET, pfns));
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, TBASE, 1, PIN, pfns));
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, PAGE_ADDR(TBASE, 4), 1, GET, pfns));
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, TBASE - PG, 2, PIN | WR, pfns));
	CHECK_OK(f->sys);
	COUNTS(f->sys, PFN(f->mm, PAGE_ADDR(TBASE, 1)), 1, 1);
}

/*
 *   TBASE
 *   | 0 | 1 | 2 |  hole  |        GUP of 5 pages from TBASE: 3 taken
 *   | 0 | 1 | R |                 GUP|WRITE into a read-only VMA: 2 taken
 */
static void test_gup_running_into_a_hole_returns_the_pages_taken(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[5] = { 0 };

	MAP_ANON(f->mm, TBASE, 3);
	FILL(f->mm, TBASE, 3 * PG, 1);
	CHECK_OK(f->sys);
	EQS(dmm_get_user_pages(f->mm, TBASE, 5, GET, pfns), 3);
	CHECK_OK(f->sys);
	for (int i = 0; i < 3; i++) {
		EQ(pfns[i], PFN(f->mm, PAGE_ADDR(TBASE, i)));
		COUNTS(f->sys, pfns[i], 2, 1);
	}
	dmm_put_user_pages(f->sys, pfns, 3);
	CHECK_OK(f->sys);

	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 2), PG, DMM_PROT_READ));
	EQS(dmm_get_user_pages(f->mm, TBASE, 3, PIN | WR, pfns), 2);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfns[0], 1 + 1024, 1);
	COUNTS(f->sys, pfns[1], 1 + 1024, 1);
	COUNTS(f->sys, PFN(f->mm, PAGE_ADDR(TBASE, 2)), 1, 1);
	dmm_unpin_user_pages(f->sys, pfns, 2);
	CHECK_OK(f->sys);
	for (int i = 0; i < 3; i++)
		COUNTS(f->sys, PFN(f->mm, PAGE_ADDR(TBASE, i)), 1, 1);
}

/* Beyond the end of a file is SIGBUS: GUP stops there. */
static void test_gup_stops_at_the_end_of_a_file(void **state)
{
	struct fx *f = *state;
	uint64_t pfns[3] = { 0 };

	OK(dmm_file_create(f->sys, 1, &f->file));
	MAP_FIXED(f->mm, TBASE, 3 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	EQS(dmm_get_user_pages(f->mm, TBASE, 3, GET, pfns), 1);
	CHECK_OK(f->sys);
	EXPECT_RC(-EFAULT, dmm_get_user_pages(f->mm, PAGE_ADDR(TBASE, 1), 2, GET, pfns + 1));
	CHECK_OK(f->sys);
	dmm_put_user_pages(f->sys, pfns, 1);
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/* FOLL_FORCE lets a debugger write into a private read-only mapping: the
 * page is copied (CoW) but the entry stays read-only for the CPU. */
static void test_force_write_on_private_read_only_mapping_breaks_cow(void **state)
{
	struct fx *f = *state;
	uint64_t pfn = 0;

	MAP_FIXED(f->mm, TBASE, PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EQS(dmm_get_user_pages(f->mm, TBASE, 1, GET | WR | DMM_FOLL_FORCE, &pfn), 1);
	CHECK_OK(f->sys);
	NE(pfn, DMM_ZERO_PFN);
	EQ(PFN(f->mm, TBASE), pfn);
	TRUE(!PTE(f->mm, TBASE).write);
	FLAGS(PAGE(f->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	COUNTS(f->sys, pfn, 2, 1);
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE, 1));
	VERIFY_ZERO(f->mm, TBASE, PG);
	CHECK_OK(f->sys);
	dmm_put_user_pages(f->sys, &pfn, 1);
	CHECK_OK(f->sys);
}

/*
 * After fork p0 is shared read-only by parent and child. A read-only pin
 * (FOLL_PIN without FOLL_WRITE) must not pin a shared anonymous page: the
 * parent unshares it first, getting its own exclusive, read-only copy.
 *
 *   before:  parent p0 --\
 *                         >-- page A (refcount 2, mapcount 2)
 *   child   p0 ---------/
 *   after:   parent p0 --> page B (copy, pinned, exclusive, read-only)
 *            child  p0 --> page A (refcount 1, mapcount 1)
 */
static void test_read_pin_of_a_page_shared_after_fork_unshares_it(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	struct dmm_page_info pi;
	uint64_t a, b = 0;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0x700);
	a = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	COUNTS(f->sys, a, 2, 2);

	EQS(dmm_get_user_pages(f->mm, TBASE, 1, PIN, &b), 1);
	CHECK_OK(f->sys);
	NE(b, a);
	EQ(PFN(f->mm, TBASE), b);
	TRUE(!PTE(f->mm, TBASE).write);
	pi = PAGE(f->sys, b);
	EQ(pi.refcount, 1 + 1024);
	EQS(pi.mapcount, 1);
	EQ(pi.pincount, 1);
	FLAGS(pi.flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	COUNTS(f->sys, a, 1, 1);
	EQ(PFN(child, TBASE), a);
	VERIFY(f->mm, TBASE, PG, 0x700);
	VERIFY(child, TBASE, PG, 0x700);

	/* The parent's page is exclusive: a write reuses it, pinned as it is. */
	OK(dmm_store32(f->mm, TBASE, 0x1));
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), b);
	EQ(LOAD(child, TBASE), 0x700);
	/* And the child is the only user of A: reused too. */
	OK(dmm_store32(child, TBASE, 0x2));
	CHECK_OK(f->sys);
	EQ(PFN(child, TBASE), a);
	EQ(LOAD(f->mm, TBASE), 0x1);

	dmm_unpin_user_pages(f->sys, &b, 1);
	CHECK_OK(f->sys);
	COUNTS(f->sys, b, 1, 1);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* FOLL_GET without WRITE returns the shared page as it is. */
static void test_read_get_of_a_page_shared_after_fork_does_not_unshare(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t a, b = 0;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0x800);
	a = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	EQS(dmm_get_user_pages(f->mm, TBASE, 1, GET, &b), 1);
	CHECK_OK(f->sys);
	EQ(b, a);
	COUNTS(f->sys, a, 3, 2);
	dmm_put_user_pages(f->sys, &b, 1);
	CHECK_OK(f->sys);
	COUNTS(f->sys, a, 2, 2);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* FOLL_WRITE on a page shared after fork breaks CoW in the caller. */
static void test_write_pin_of_a_page_shared_after_fork_copies_it(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t a, b = 0;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0x900);
	a = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	EQS(dmm_get_user_pages(child, TBASE, 1, PIN | WR, &b), 1);
	CHECK_OK(f->sys);
	NE(b, a);
	EQ(PFN(child, TBASE), b);
	TRUE(PTE(child, TBASE).write);
	COUNTS(f->sys, b, 1 + 1024, 1);
	COUNTS(f->sys, a, 1, 1);
	VERIFY(child, TBASE, PG, 0x900);
	dmm_unpin_user_pages(f->sys, &b, 1);
	CHECK_OK(f->sys);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* A pin keeps the frame after its mapping is gone; the unpin frees it. */
static void test_pinned_page_outlives_munmap_until_unpinned(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi;
	uint64_t pfn = 0, free_before;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0xa00);
	EQS(dmm_get_user_pages(f->mm, TBASE, 1, PIN | WR | DMM_FOLL_LONGTERM, &pfn), 1);
	CHECK_OK(f->sys);
	free_before = dmm_system_nr_free(f->sys);
	OK(dmm_munmap(f->mm, TBASE, PG));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), free_before);
	pi = PAGE(f->sys, pfn);
	EQ(pi.refcount, 1024);
	EQS(pi.mapcount, 0);
	EQ(pi.pincount, 1);
	FLAGS(pi.flags, 0, DMM_PAGE_FREE);
	dmm_unpin_user_pages(f->sys, &pfn, 1);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), free_before + 1);
	pi = PAGE(f->sys, pfn);
	EQ(pi.refcount, 0);
	FLAGS(pi.flags, DMM_PAGE_FREE, 0);
}

static void test_pinned_and_referenced_pages_outlive_exit(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys), s1;
	uint64_t pin = 0, ref = 0;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 1);
	EQS(dmm_get_user_pages(f->mm, TBASE, 1, PIN | WR, &pin), 1);
	EQS(dmm_get_user_pages(f->mm, PAGE_ADDR(TBASE, 1), 1, GET, &ref), 1);
	CHECK_OK(f->sys);
	dmm_mm_exit(f->mm);
	f->mm = NULL;
	CHECK_OK(f->sys);
	COUNTS(f->sys, pin, 1024, 0);
	COUNTS(f->sys, ref, 1, 0);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 2);
	dmm_unpin_user_pages(f->sys, &pin, 1);
	dmm_put_user_pages(f->sys, &ref, 1);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	s1 = STATS(f->sys);
	EQ(s1.pin_pages - s0.pin_pages, s1.unpin_pages - s0.unpin_pages);
	EQ(s1.frames_alloc - s0.frames_alloc, s1.frames_free - s0.frames_free);
}

static void test_pin_of_shmem_returns_the_shared_page(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	uint64_t pfn = 0;

	MAP_FIXED(f->mm, TBASE, PG, RW, ANON_SHARED, NULL, 0);
	OK(dmm_fork(f->mm, &child));
	EQS(dmm_get_user_pages(f->mm, TBASE, 1, PIN, &pfn), 1);
	CHECK_OK(f->sys);
	OK(dmm_store32(child, TBASE, 0x77));
	CHECK_OK(f->sys);
	EQ(PFN(child, TBASE), pfn);
	EQ(PFN(f->mm, TBASE), pfn);
	COUNTS(f->sys, pfn, 1 + 2 + 1024, 2);
	EQ(LOAD(f->mm, TBASE), 0x77);
	dmm_unpin_user_pages(f->sys, &pfn, 1);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 3, 2);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_get_takes_one_reference_per_page),
		T(test_pin_adds_the_bias_and_counts_each_pin),
		T(test_gup_rejects_bad_flags_and_arguments),
		T(test_gup_faults_in_unpopulated_pages),
		T(test_gup_of_file_pages_returns_the_page_cache_pages),
		T(test_gup_write_on_a_read_only_mapping_is_efault),
		T(test_gup_on_prot_none_or_unmapped_is_efault),
		T(test_gup_running_into_a_hole_returns_the_pages_taken),
		T(test_gup_stops_at_the_end_of_a_file),
		T(test_force_write_on_private_read_only_mapping_breaks_cow),
		T(test_read_pin_of_a_page_shared_after_fork_unshares_it),
		T(test_read_get_of_a_page_shared_after_fork_does_not_unshare),
		T(test_write_pin_of_a_page_shared_after_fork_copies_it),
		T(test_pinned_page_outlives_munmap_until_unpinned),
		T(test_pinned_and_referenced_pages_outlive_exit),
		T(test_pin_of_shmem_returns_the_shared_page),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
