/* SPDX-License-Identifier: MIT */
/*
 * The system: creation and destruction, frame accounting, the shared zero
 * page, running out of frames, address-space ids, the query calls' argument
 * checks, and the statistics counters.
 */
#include "helpers.h"

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */

static void test_create_with_null_config_gives_one_gib(void **state)
{
	struct dmm_system *sys = NULL;

	(void)state;
	OK(dmm_system_create(NULL, &sys));
	TRUE(sys != NULL);
	EQ(dmm_system_nr_frames(sys), 262144);
	EQ(dmm_system_nr_free(sys), 262144);
	CHECK_OK(sys);
	dmm_system_destroy(sys);
}

static void test_create_with_zero_frames_gives_the_default(void **state)
{
	struct dmm_system_config cfg = { .nr_frames = 0, .flags = 0 };
	struct dmm_system *sys = NULL;

	(void)state;
	OK(dmm_system_create(&cfg, &sys));
	EQ(dmm_system_nr_frames(sys), 262144);
	CHECK_OK(sys);
	dmm_system_destroy(sys);
}

static void test_create_with_explicit_size_and_pretouch(void **state)
{
	struct dmm_system_config cfg = { .nr_frames = 100, .flags = DMM_SYS_PRETOUCH };
	struct dmm_system *sys = NULL;

	(void)state;
	OK(dmm_system_create(&cfg, &sys));
	EQ(dmm_system_nr_frames(sys), 100);
	EQ(dmm_system_nr_free(sys), 100);
	OK(dmm_system_prefault(sys, 50));
	EQ(dmm_system_nr_free(sys), 100); /* prefaulting touches memory, allocates nothing */
	CHECK_OK(sys);
	dmm_system_destroy(sys);
}

static void test_create_rejects_bad_config(void **state)
{
	struct dmm_system_config too_big = { .nr_frames = DMM_MAX_SYSTEM_FRAMES + 1, .flags = 0 };
	struct dmm_system_config bad_flags = { .nr_frames = 64, .flags = 0x4 };
	struct dmm_system_config high_flag = { .nr_frames = 64, .flags = 0x80000000u };
	struct dmm_system *sys = (struct dmm_system *)0x1;

	(void)state;
	EXPECT_RC(-EINVAL, dmm_system_create(&too_big, &sys));
	EXPECT_RC(-EINVAL, dmm_system_create(&bad_flags, &sys));
	EXPECT_RC(-EINVAL, dmm_system_create(&high_flag, &sys));
	EXPECT_RC(-EINVAL, dmm_system_create(NULL, NULL));
}

static void test_version_matches_the_header(void **state)
{
	(void)state;
	TRUE(dmm_version() != NULL);
	assert_string_equal(dmm_version(), DEVMM_VERSION);
}

static void test_mm_ids_start_at_one_and_are_unique(void **state)
{
	struct dmm_system *sys = sys_new(64);
	struct dmm_mm *a, *b, *c;

	(void)state;
	TRUE(sys != NULL);
	OK(dmm_mm_create(sys, &a));
	OK(dmm_mm_create(sys, &b));
	OK(dmm_fork(b, &c));
	EQ(dmm_mm_id(a), 1);
	NE(dmm_mm_id(b), dmm_mm_id(a));
	NE(dmm_mm_id(c), dmm_mm_id(a));
	NE(dmm_mm_id(c), dmm_mm_id(b));
	CHECK_OK(sys);
	dmm_mm_exit(b);
	CHECK_OK(sys);
	/* Destroy ends the remaining address spaces (a and c). */
	dmm_system_destroy(sys);
}

static void test_mm_create_rejects_null_arguments(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *mm;

	EXPECT_RC(-EINVAL, dmm_mm_create(NULL, &mm));
	EXPECT_RC(-EINVAL, dmm_mm_create(f->sys, NULL));
	CHECK_OK(f->sys);
}

static void test_destroy_ends_live_processes_and_files(void **state)
{
	struct dmm_system *sys = sys_new(256);
	struct dmm_mm *mm, *child;
	struct dmm_file *file;

	(void)state;
	TRUE(sys != NULL);
	OK(dmm_mm_create(sys, &mm));
	OK(dmm_file_create(sys, 4, &file));
	MAP_ANON(mm, TBASE, 8);
	FILL(mm, TBASE, 8 * PG, 1);
	MAP_FIXED(mm, TBASE + 16 * PG, 4 * PG, RW, DMM_MAP_SHARED, file, 0);
	FILL(mm, TBASE + 16 * PG, 4 * PG, 2);
	OK(dmm_fork(mm, &child));
	CHECK_OK(sys);
	/* Nothing is released by hand: destroy must cope (and ASan/valgrind
	 * would report the leaks). */
	dmm_system_destroy(sys);
}

/* ------------------------------------------------------------------------ */
/* Frame accounting                                                          */

/*
 * TBASE is 2 MiB aligned, so these 16 pages share one PTE table:
 *
 *   TBASE                                  TBASE + 16 pages
 *   | p0 | p1 | ...                  | p15 |
 *
 * Every write fault takes exactly one frame.
 */
static void test_writes_take_frames_and_munmap_returns_them(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys);

	EQ(f->free0, dmm_system_nr_frames(f->sys));
	MAP_ANON(f->mm, TBASE, 16);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0); /* mmap allocates nothing */

	for (int i = 0; i < 16; i++) {
		FILL(f->mm, PAGE_ADDR(TBASE, i), PG, 100u * (uint32_t)i);
		CHECK_OK(f->sys);
		EQ(dmm_system_nr_free(f->sys), f->free0 - 1 - (uint64_t)i);
	}
	EQ(STAT_DELTA(f->sys, s0, frames_alloc) - STAT_DELTA(f->sys, s0, frames_free), 16);

	/* Writing again to the same pages takes nothing. */
	FILL(f->mm, TBASE, 16 * PG, 7);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 16);

	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 4), 4 * PG));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 12);

	OK(dmm_munmap(f->mm, TBASE, 16 * PG));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	EQ(STAT_DELTA(f->sys, s0, frames_alloc), STAT_DELTA(f->sys, s0, frames_free));
}

static void test_exit_returns_every_frame(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *mm2;

	OK(dmm_mm_create(f->sys, &mm2));
	MAP_ANON(f->mm, TBASE, 32);
	MAP_ANON(mm2, TBASE, 32);
	FILL(f->mm, TBASE, 32 * PG, 1);
	FILL(mm2, TBASE, 20 * PG, 2);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 52);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 32);
	EQ(dmm_mm_rss(mm2, DMM_MM_ANONPAGES), 20);

	dmm_mm_exit(mm2);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 32);
	dmm_mm_exit(f->mm);
	f->mm = NULL;
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_freed_frame_reports_free_flag(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 9);
	pfn = PFN(f->mm, TBASE);
	NE(pfn, DMM_ZERO_PFN);
	TRUE(pfn <= dmm_system_nr_frames(f->sys));
	pi = PAGE(f->sys, pfn);
	FLAGS(pi.flags, DMM_PAGE_ANON, DMM_PAGE_FREE);
	EQ(pi.location, DMM_LOC_SYSTEM);

	OK(dmm_munmap(f->mm, TBASE, PG));
	CHECK_OK(f->sys);
	pi = PAGE(f->sys, pfn);
	EQ(pi.refcount, 0);
	EQS(pi.mapcount, 0);
	EQ(pi.pincount, 0);
	FLAGS(pi.flags, DMM_PAGE_FREE, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE | DMM_PAGE_PAGECACHE);
}

/* ------------------------------------------------------------------------ */
/* The zero page                                                             */

static void test_zero_page_reports_zero_counts(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi = PAGE(f->sys, DMM_ZERO_PFN);

	EQ(pi.refcount, 0);
	EQS(pi.mapcount, 0);
	EQ(pi.pincount, 0);
	EQ(pi.location, DMM_LOC_ZERO);
	FLAGS(pi.flags, DMM_PAGE_RESERVED, DMM_PAGE_FREE | DMM_PAGE_ANON);
}

static void test_read_of_anon_hole_maps_the_zero_page(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys);
	struct dmm_pte_info pte;
	uint64_t free_before;

	MAP_ANON(f->mm, TBASE, 4);
	/* Populate the PTE table with a write to p0, then read the hole p1. */
	FILL(f->mm, TBASE, PG, 5);
	free_before = dmm_system_nr_free(f->sys);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 1), PG);
	CHECK_OK(f->sys);

	pte = PTE(f->mm, PAGE_ADDR(TBASE, 1));
	EQ(pte.kind, DMM_PTE_PRESENT);
	EQ(pte.pfn, DMM_ZERO_PFN);
	TRUE(pte.special);
	TRUE(!pte.write);
	EQ(dmm_system_nr_free(f->sys), free_before); /* no frame taken */
	EQ(STAT_DELTA(f->sys, s0, fault_zero), 1);
	/* The zero page is not counted in rss, and its counts stay 0. */
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 1);
	COUNTS(f->sys, DMM_ZERO_PFN, 0, 0);
}

static void test_two_processes_both_map_the_zero_page(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *mm2;

	OK(dmm_mm_create(f->sys, &mm2));
	MAP_ANON(f->mm, TBASE, 2);
	MAP_ANON(mm2, TBASE + 64 * PG, 2);
	VERIFY_ZERO(f->mm, TBASE, 2 * PG);
	CHECK_OK(f->sys);
	VERIFY_ZERO(mm2, TBASE + 64 * PG, 2 * PG);
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), DMM_ZERO_PFN);
	EQ(PFN(f->mm, TBASE + PG), DMM_ZERO_PFN);
	EQ(PFN(mm2, TBASE + 64 * PG), DMM_ZERO_PFN);
	EQ(PFN(mm2, TBASE + 65 * PG), DMM_ZERO_PFN);
	COUNTS(f->sys, DMM_ZERO_PFN, 0, 0);
	EQ(dmm_system_nr_free(f->sys), f->free0);

	/* A write replaces the zero page by a private frame, in that process only. */
	OK(dmm_store32(mm2, TBASE + 64 * PG + 8, 0x1234));
	CHECK_OK(f->sys);
	NE(PFN(mm2, TBASE + 64 * PG), DMM_ZERO_PFN);
	EQ(PFN(f->mm, TBASE), DMM_ZERO_PFN);
	EQ(LOAD(mm2, TBASE + 64 * PG + 8), 0x1234);
	EQ(LOAD(mm2, TBASE + 64 * PG + 4), 0);
	EQ(LOAD(f->mm, TBASE + 8), 0);
	dmm_mm_exit(mm2);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

/* ------------------------------------------------------------------------ */
/* Running out of frames                                                     */

/*
 * A 64-frame machine and a 128-page mapping: write page after page until a
 * write fails with -ENOMEM.
 *
 *   TBASE
 *   | 0 | 1 | ... | n-1 | n (failed) | ... | 127 |
 *    \______ data _____/
 */
static int fill_until_enomem(struct fx *f, uint64_t base, int max_pages)
{
	int n;

	for (n = 0; n < max_pages; n++) {
		uint32_t buf[WORDS_PER_PAGE];
		int rc;

		for (size_t k = 0; k < WORDS_PER_PAGE; k++)
			buf[k] = 1000u * (uint32_t)n + (uint32_t)k;
		rc = dmm_write(f->mm, PAGE_ADDR(base, n), buf, PG);
		if (rc == -ENOMEM)
			break;
		OK(rc);
	}
	return n;
}

static void test_write_fails_with_enomem_when_frames_run_out(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys);
	int n;

	EQ(dmm_system_nr_frames(f->sys), 64);
	MAP_ANON(f->mm, TBASE, 128);
	n = fill_until_enomem(f, TBASE, 128);
	CHECK_OK(f->sys);
	EQS(n, 64); /* page tables are not taken from the frames */
	EQ(dmm_system_nr_free(f->sys), 0);
	/* The failing write stopped cleanly: nothing mapped there. */
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, n));
	TRUE(STAT_DELTA(f->sys, s0, frames_alloc_fail) >= 1);
	TRUE(STAT_DELTA(f->sys, s0, fault_oom) >= 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), (uint64_t)n);

	/* The store32/fetch_add paths fail the same way. */
	EXPECT_RC(-ENOMEM, dmm_store32(f->mm, PAGE_ADDR(TBASE, n), 1));
	CHECK_OK(f->sys);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, n));

	/* Every page written before is intact. */
	for (int i = 0; i < n; i++)
		VERIFY(f->mm, PAGE_ADDR(TBASE, i), PG, 1000u * (uint32_t)i);
	CHECK_OK(f->sys);
}

static void test_read_of_hole_still_works_without_free_frames(void **state)
{
	struct fx *f = *state;
	int n;

	MAP_ANON(f->mm, TBASE, 128);
	n = fill_until_enomem(f, TBASE, 128);
	CHECK_OK(f->sys);
	/* The zero page needs no frame. */
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, n + 1), PG);
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, PAGE_ADDR(TBASE, n + 1)), DMM_ZERO_PFN);
	/* But a write to it needs one. */
	EXPECT_RC(-ENOMEM, dmm_store32(f->mm, PAGE_ADDR(TBASE, n + 1), 5));
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, PAGE_ADDR(TBASE, n + 1)), DMM_ZERO_PFN);
}

static void test_partial_write_stops_at_the_first_page_without_a_frame(void **state)
{
	struct fx *f = *state;
	uint32_t buf[2 * WORDS_PER_PAGE];
	int n;

	MAP_ANON(f->mm, TBASE, 128);
	n = fill_until_enomem(f, TBASE, 63);
	EQS(n, 63); /* one frame left */
	CHECK_OK(f->sys);
	for (size_t k = 0; k < 2 * WORDS_PER_PAGE; k++)
		buf[k] = 0xabc00000u + (uint32_t)k;
	/* Two pages: the first gets the last frame, the second fails. */
	EXPECT_RC(-ENOMEM, dmm_write(f->mm, PAGE_ADDR(TBASE, 63), buf, sizeof(buf)));
	CHECK_OK(f->sys);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 63), PG, 0xabc00000u);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 64));
}

static void test_freeing_memory_makes_writes_work_again(void **state)
{
	struct fx *f = *state;
	int n;

	MAP_ANON(f->mm, TBASE, 128);
	n = fill_until_enomem(f, TBASE, 128);
	CHECK_OK(f->sys);

	OK(dmm_munmap(f->mm, TBASE, 4 * PG));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), 4);
	FILL(f->mm, PAGE_ADDR(TBASE, n), 4 * PG, 77);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), 0);
	VERIFY(f->mm, PAGE_ADDR(TBASE, n), 4 * PG, 77);

	/* MADV_DONTNEED frees too. */
	OK(dmm_madvise(f->mm, PAGE_ADDR(TBASE, 10), 2 * PG, DMM_MADV_DONTNEED));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), 2);
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, n + 4), 1));
	CHECK_OK(f->sys);

	dmm_mm_exit(f->mm);
	f->mm = NULL;
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), 64);
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                   */

static void test_page_query_rejects_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi;

	EXPECT_RC(-EINVAL, dmm_page_query(NULL, 1, &pi));
	EXPECT_RC(-EINVAL, dmm_page_query(f->sys, 1, NULL));
	EXPECT_RC(-ENXIO, dmm_page_query(f->sys, UINT64_MAX, &pi));
	EXPECT_RC(-ENXIO, dmm_page_query(f->sys, 1UL << 40, &pi));
	CHECK_OK(f->sys);
}

static void test_pte_query_reports_none_for_unmapped_and_rejects_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct dmm_pte_info pte;

	PTE_NONE(f->mm, TBASE);
	PTE_NONE(f->mm, DMM_TASK_SIZE - 1);
	MAP_ANON(f->mm, TBASE, 1);
	PTE_NONE(f->mm, TBASE + 123); /* mapped but never touched */
	EXPECT_RC(-EINVAL, dmm_pte_query(f->mm, DMM_TASK_SIZE, &pte));
	EXPECT_RC(-EINVAL, dmm_pte_query(f->mm, TBASE, NULL));
	EXPECT_RC(-EINVAL, dmm_pte_query(NULL, TBASE, &pte));
	assert_string_equal(dmm_pte_kind_name(DMM_PTE_NONE), "none");
	assert_string_equal(dmm_pte_kind_name(DMM_PTE_PRESENT), "present");
	CHECK_OK(f->sys);
}

static void test_vma_query_on_empty_mm_is_enoent(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;

	EXPECT_RC(-ENOENT, dmm_vma_query(f->mm, 0, &v));
	EXPECT_RC(-EINVAL, dmm_vma_query(f->mm, 0, NULL));
	EXPECT_RC(-EINVAL, dmm_vma_query(NULL, 0, &v));
	MAP_ANON(f->mm, TBASE, 2);
	OK(dmm_vma_query(f->mm, 0, &v)); /* the first VMA above */
	EQ(v.start, TBASE);
	EQ(v.end, TBASE + 2 * PG);
	EQ(v.type, DMM_VMA_ANON);
	TRUE(v.file == NULL);
	FLAGS(v.flags, DMM_VM_READ | DMM_VM_WRITE | DMM_VM_MAYREAD | DMM_VM_MAYWRITE,
	      DMM_VM_SHARED | DMM_VM_MAYSHARE | DMM_VM_DONTCOPY);
	OK(dmm_vma_query(f->mm, TBASE + PG + 5, &v)); /* the containing VMA */
	EQ(v.start, TBASE);
	EXPECT_RC(-ENOENT, dmm_vma_query(f->mm, TBASE + 2 * PG, &v));
	CHECK_OK(f->sys);
}

static void test_check_with_null_report_returns_zero_when_clean(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	FILL(f->mm, TBASE, 2 * PG, 3);
	EQS(dmm_check(f->sys, NULL, 0), 0);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */

static void test_frame_stats_balance_after_exit(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys), s1;
	struct dmm_mm *child;
	struct dmm_file *file;

	OK(dmm_file_create(f->sys, 8, &file));
	MAP_ANON(f->mm, TBASE, 16);
	MAP_FIXED(f->mm, TBASE + 32 * PG, 8 * PG, RW, DMM_MAP_PRIVATE, file, 0);
	MAP_FIXED(f->mm, TBASE + 64 * PG, 8 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, TBASE, 16 * PG, 1);
	FILE_FILL(file, 0, 8 * PG, 2);
	VERIFY(f->mm, TBASE + 32 * PG, 4 * PG, 2);
	FILL(f->mm, TBASE + 36 * PG, 4 * PG, 3);
	FILL(f->mm, TBASE + 64 * PG, 8 * PG, 4);
	CHECK_OK(f->sys);
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	FILL(child, TBASE, 8 * PG, 5);
	CHECK_OK(f->sys);

	s1 = STATS(f->sys);
	EQ(s1.frames_alloc - s0.frames_alloc - (s1.frames_free - s0.frames_free),
	   f->free0 - dmm_system_nr_free(f->sys));
	EQ(s1.fork - s0.fork, 1);
	EQ(s1.fork_failed - s0.fork_failed, 0);

	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	dmm_mm_exit(f->mm);
	f->mm = NULL;
	CHECK_OK(f->sys);
	dmm_file_put(file);
	CHECK_OK(f->sys);

	s1 = STATS(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
	EQ(s1.frames_alloc - s0.frames_alloc, s1.frames_free - s0.frames_free);
	TRUE(s1.frames_alloc - s0.frames_alloc >= 16 + 8 + 4 + 8 + 8);
	EQ(s1.frames_alloc_fail - s0.frames_alloc_fail, 0);
}

static void test_stats_count_syscalls(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys), s1;

	MAP_ANON(f->mm, TBASE, 4);
	FILL(f->mm, TBASE, 4 * PG, 1);
	OK(dmm_mprotect(f->mm, TBASE, PG, DMM_PROT_READ));
	OK(dmm_madvise(f->mm, TBASE + PG, PG, DMM_MADV_DONTNEED));
	OK(dmm_mremap(f->mm, TBASE + 2 * PG, PG, PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED,
		      TBASE + 64 * PG));
	OK(dmm_munmap(f->mm, TBASE, 4 * PG));
	CHECK_OK(f->sys);
	s1 = STATS(f->sys);
	EQ(s1.fault_anon - s0.fault_anon, 4);
	EQ(s1.mprotect - s0.mprotect, 1);
	EQ(s1.madvise - s0.madvise, 1);
	EQ(s1.mremap - s0.mremap, 1);
	EQ(s1.mremap_pte - s0.mremap_pte, 1);
	EQ(s1.munmap - s0.munmap, 1);
	/* p1 by madvise, p0 and p3 by munmap; p2 moved away before. */
	EQ(s1.zap_page - s0.zap_page, 3);
	EXPECT_RC(-EINVAL, dmm_stats_get(NULL, &s1));
	EXPECT_RC(-EINVAL, dmm_stats_get(f->sys, NULL));
}

static void test_stats_print_prints_every_counter(void **state)
{
	struct fx *f = *state;
	struct dmm_stats st;
	char *text = NULL;
	size_t size = 0;
	FILE *mf;
	int nlines = 0;

	MAP_ANON(f->mm, TBASE, 3);
	FILL(f->mm, TBASE, 3 * PG, 1);
	st = STATS(f->sys);
	mf = open_memstream(&text, &size);
	TRUE(mf != NULL);
	dmm_stats_print(&st, mf);
	fclose(mf);

	for (const char *p = text; *p; p++)
		nlines += *p == '\n';
	/* One line per counter, "name value  # description". */
#define COUNT_ONE(name, desc) +1
	EQS(nlines, 0 DMM_STAT_LIST(COUNT_ONE));
#undef COUNT_ONE
#define FIND_ONE(name, desc)                                                               \
	do {                                                                               \
		char want[160];                                                            \
		const char *line = text;                                                   \
		bool found = false;                                                        \
		snprintf(want, sizeof(want), "%s %" PRIu64, #name, st.name);               \
		while (line && *line) {                                                    \
			const char *nl = strchr(line, '\n');                               \
			char copy[512];                                                    \
			size_t len = nl ? (size_t)(nl - line) : strlen(line);              \
			if (len >= sizeof(copy))                                           \
				len = sizeof(copy) - 1;                                    \
			memcpy(copy, line, len);                                           \
			copy[len] = '\0';                                                  \
			/* Collapse runs of spaces so that alignment padding is fine. */   \
			char norm[512];                                                    \
			size_t o = 0;                                                      \
			for (size_t i = 0; copy[i]; i++)                                   \
				if (copy[i] != ' ' || (o > 0 && norm[o - 1] != ' '))       \
					norm[o++] = copy[i];                               \
			norm[o] = '\0';                                                    \
			if (strncmp(norm, want, strlen(want)) == 0 &&                      \
			    (norm[strlen(want)] == ' ' || norm[strlen(want)] == '\0')) {   \
				found = true;                                              \
				if (!strstr(copy, desc))                                   \
					h_fail(__FILE__, __LINE__,                         \
					       "line for %s lacks its description: %s",    \
					       #name, copy);                               \
				if (!strchr(copy, '#'))                                    \
					h_fail(__FILE__, __LINE__, "line for %s has no '#': %s", \
					       #name, copy);                               \
			}                                                                  \
			line = nl ? nl + 1 : NULL;                                         \
		}                                                                          \
		if (!found)                                                                \
			h_fail(__FILE__, __LINE__, "no line \"%s ...\" in:\n%s", want, text); \
	} while (0);
	DMM_STAT_LIST(FIND_ONE)
#undef FIND_ONE
	free(text);
	TRUE(st.fault_anon >= 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_with_null_config_gives_one_gib),
		cmocka_unit_test(test_create_with_zero_frames_gives_the_default),
		cmocka_unit_test(test_create_with_explicit_size_and_pretouch),
		cmocka_unit_test(test_create_rejects_bad_config),
		cmocka_unit_test(test_version_matches_the_header),
		cmocka_unit_test(test_mm_ids_start_at_one_and_are_unique),
		cmocka_unit_test_setup_teardown(test_mm_create_rejects_null_arguments, fx_setup, fx_teardown),
		cmocka_unit_test(test_destroy_ends_live_processes_and_files),
		cmocka_unit_test_setup_teardown(test_writes_take_frames_and_munmap_returns_them, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_exit_returns_every_frame, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_freed_frame_reports_free_flag, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_zero_page_reports_zero_counts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_read_of_anon_hole_maps_the_zero_page, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_two_processes_both_map_the_zero_page, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_fails_with_enomem_when_frames_run_out,
						fx_setup_64, fx_teardown),
		cmocka_unit_test_setup_teardown(test_read_of_hole_still_works_without_free_frames,
						fx_setup_64, fx_teardown),
		cmocka_unit_test_setup_teardown(test_partial_write_stops_at_the_first_page_without_a_frame,
						fx_setup_64, fx_teardown),
		cmocka_unit_test_setup_teardown(test_freeing_memory_makes_writes_work_again, fx_setup_64,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_page_query_rejects_bad_arguments, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_pte_query_reports_none_for_unmapped_and_rejects_bad_arguments, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_vma_query_on_empty_mm_is_enoent, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_check_with_null_report_returns_zero_when_clean,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_frame_stats_balance_after_exit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stats_count_syscalls, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stats_print_prints_every_counter, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
