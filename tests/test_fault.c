/* SPDX-License-Identifier: MIT */
/*
 * CPU access and faults: anonymous read and write faults, the 32-bit
 * loads, stores and atomics, permission and alignment errors, partial
 * transfers, file mappings (shared, private, beyond the end of the file),
 * shmem, and the rss counters.
 */
#include "helpers.h"

/* ------------------------------------------------------------------------ */
/* Anonymous faults                                                          */

static void test_read_of_anon_hole_maps_the_zero_page_read_only(void **state)
{
	struct fx *f = *state;
	struct dmm_pte_info pte;
	uint32_t v = 1;

	MAP_ANON(f->mm, TBASE, 1);
	OK(dmm_load32(f->mm, TBASE + 12, &v));
	CHECK_OK(f->sys);
	EQ(v, 0);
	pte = PTE(f->mm, TBASE);
	EQ(pte.kind, DMM_PTE_PRESENT);
	EQ(pte.pfn, DMM_ZERO_PFN);
	TRUE(pte.special);
	TRUE(!pte.write);
	TRUE(!pte.dirty);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_write_to_anon_hole_allocates_an_exclusive_dirty_page(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys);
	struct dmm_pte_info pte;
	struct dmm_page_info pi;

	MAP_ANON(f->mm, TBASE, 1);
	OK(dmm_store32(f->mm, TBASE + 100 * 4, 0xcafe));
	CHECK_OK(f->sys);
	pte = PTE(f->mm, TBASE);
	EQ(pte.kind, DMM_PTE_PRESENT);
	NE(pte.pfn, DMM_ZERO_PFN);
	TRUE(pte.write);
	TRUE(pte.dirty);
	TRUE(!pte.special);
	pi = PAGE(f->sys, pte.pfn);
	EQ(pi.refcount, 1);
	EQS(pi.mapcount, 1);
	EQ(pi.pincount, 0);
	EQ(pi.location, DMM_LOC_SYSTEM);
	FLAGS(pi.flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE,
	      DMM_PAGE_PAGECACHE | DMM_PAGE_FREE | DMM_PAGE_RESERVED | DMM_PAGE_ZONE_DEVICE);
	EQ(STAT_DELTA(f->sys, s0, fault_anon), 1);
	EQ(STAT_DELTA(f->sys, s0, fault_zero), 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 1);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 1);
	/* The new page is zeroed apart from the word written. */
	EQ(LOAD(f->mm, TBASE + 100 * 4), 0xcafe);
	VERIFY_ZERO(f->mm, TBASE, 100 * 4);
	VERIFY_ZERO(f->mm, TBASE + 101 * 4, PG - 101 * 4);
	CHECK_OK(f->sys);
}

static void test_write_after_read_replaces_the_zero_page(void **state)
{
	struct fx *f = *state;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 2);
	VERIFY_ZERO(f->mm, TBASE, 2 * PG);
	CHECK_OK(f->sys);
	OK(dmm_store32(f->mm, TBASE + 8, 0x11));
	CHECK_OK(f->sys);
	pfn = PFN(f->mm, TBASE);
	NE(pfn, DMM_ZERO_PFN);
	TRUE(PTE(f->mm, TBASE).write);
	COUNTS(f->sys, pfn, 1, 1);
	FLAGS(PAGE(f->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	COUNTS(f->sys, DMM_ZERO_PFN, 0, 0);
	EQ(PFN(f->mm, PAGE_ADDR(TBASE, 1)), DMM_ZERO_PFN); /* the neighbour is untouched */
	EQ(LOAD(f->mm, TBASE + 8), 0x11);
	EQ(LOAD(f->mm, TBASE + 4), 0);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 1);
}

static void test_load32_and_store32_round_trip(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 2);
	for (uint32_t k = 0; k < 2 * WORDS_PER_PAGE; k += 97) {
		OK(dmm_store32(f->mm, TBASE + 4 * k, 0x10000000u + k));
		CHECK_OK(f->sys);
	}
	for (uint32_t k = 0; k < 2 * WORDS_PER_PAGE; k++)
		EQ(LOAD(f->mm, TBASE + 4 * k), k % 97 == 0 ? 0x10000000u + k : 0);
	/* Bytes are little-endian through dmm_read. */
	uint8_t b[4];
	OK(dmm_read(f->mm, TBASE + 4 * 97, b, 4));
	EQ(b[0], 0x61);
	EQ(b[3], 0x10);
	CHECK_OK(f->sys);
}

static void test_cmpxchg32_swaps_only_when_the_expected_value_matches(void **state)
{
	struct fx *f = *state;
	uint32_t old = 0;

	MAP_ANON(f->mm, TBASE, 1);
	OK(dmm_store32(f->mm, TBASE + 4, 5));
	CHECK_OK(f->sys);
	OK(dmm_cmpxchg32(f->mm, TBASE + 4, 5, 6, &old));
	CHECK_OK(f->sys);
	EQ(old, 5);
	EQ(LOAD(f->mm, TBASE + 4), 6);

	old = 0;
	OK(dmm_cmpxchg32(f->mm, TBASE + 4, 5, 7, &old)); /* mismatch: not an error */
	CHECK_OK(f->sys);
	EQ(old, 6);
	EQ(LOAD(f->mm, TBASE + 4), 6);
	EQ(LOAD(f->mm, TBASE), 0);
	EQ(LOAD(f->mm, TBASE + 8), 0);
}

/* The compare fails, yet the CPU takes a write fault (as on x86): the zero
 * page is replaced by a private page. */
static void test_failing_cmpxchg32_still_takes_a_write_fault(void **state)
{
	struct fx *f = *state;
	uint32_t old = 123;

	MAP_ANON(f->mm, TBASE, 1);
	EQ(LOAD(f->mm, TBASE), 0);
	EQ(PFN(f->mm, TBASE), DMM_ZERO_PFN);
	OK(dmm_cmpxchg32(f->mm, TBASE, 1, 2, &old));
	CHECK_OK(f->sys);
	EQ(old, 0);
	NE(PFN(f->mm, TBASE), DMM_ZERO_PFN);
	TRUE(PTE(f->mm, TBASE).write);
	EQ(LOAD(f->mm, TBASE), 0);

	/* On a read-only mapping even a failing compare is refused. */
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EXPECT_RC(-EFAULT, dmm_cmpxchg32(f->mm, PAGE_ADDR(TBASE, 1), 1, 2, &old));
	CHECK_OK(f->sys);
}

static void test_fetch_add32_returns_the_old_value_and_wraps(void **state)
{
	struct fx *f = *state;
	uint32_t old = 1;

	MAP_ANON(f->mm, TBASE, 1);
	OK(dmm_fetch_add32(f->mm, TBASE + 16, 10, &old));
	CHECK_OK(f->sys);
	EQ(old, 0);
	OK(dmm_fetch_add32(f->mm, TBASE + 16, 0xfffffffbu, &old));
	CHECK_OK(f->sys);
	EQ(old, 10);
	EQ(LOAD(f->mm, TBASE + 16), 5); /* 10 + (2^32 - 5) wraps to 5 */
	OK(dmm_fetch_add32(f->mm, TBASE + 16, 0, &old));
	EQ(old, 5);
	EQ(LOAD(f->mm, TBASE + 12), 0);
	EQ(LOAD(f->mm, TBASE + 20), 0);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

static void test_unaligned_32bit_access_is_einval(void **state)
{
	struct fx *f = *state;
	uint32_t v = 0;

	MAP_ANON(f->mm, TBASE, 1);
	for (uint64_t off = 1; off < 4; off++) {
		EXPECT_RC(-EINVAL, dmm_load32(f->mm, TBASE + off, &v));
		EXPECT_RC(-EINVAL, dmm_store32(f->mm, TBASE + off, 1));
		EXPECT_RC(-EINVAL, dmm_cmpxchg32(f->mm, TBASE + off, 0, 1, &v));
		EXPECT_RC(-EINVAL, dmm_fetch_add32(f->mm, TBASE + off, 1, &v));
	}
	/* Even in an unmapped area the alignment error comes first. */
	EXPECT_RC(-EINVAL, dmm_store32(f->mm, TBASE + 64 * PG + 2, 1));
	CHECK_OK(f->sys);
	/* Nothing was faulted in. */
	PTE_NONE(f->mm, TBASE);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_null_buffers_are_einval(void **state)
{
	struct fx *f = *state;

	MAP_ANON(f->mm, TBASE, 1);
	EXPECT_RC(-EINVAL, dmm_read(f->mm, TBASE, NULL, 4));
	EXPECT_RC(-EINVAL, dmm_write(f->mm, TBASE, NULL, 4));
	EXPECT_RC(-EINVAL, dmm_load32(f->mm, TBASE, NULL));
	CHECK_OK(f->sys);
	PTE_NONE(f->mm, TBASE);
}

static void test_access_to_unmapped_address_is_efault(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	uint32_t v = 0;
	char buf[8];

	MAP_ANON(f->mm, TBASE, 1);
	s0 = STATS(f->sys);
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, PAGE_ADDR(TBASE, 1), &v));
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, PAGE_ADDR(TBASE, 1), 1));
	EXPECT_RC(-EFAULT, dmm_cmpxchg32(f->mm, TBASE - 4, 0, 1, &v));
	EXPECT_RC(-EFAULT, dmm_fetch_add32(f->mm, TBASE - PG, 1, &v));
	EXPECT_RC(-EFAULT, dmm_read(f->mm, TBASE + 16 * PG, buf, sizeof(buf)));
	EXPECT_RC(-EFAULT, dmm_write(f->mm, TBASE + 16 * PG, buf, sizeof(buf)));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, fault_segv), 6);
	/* Outside user space is no mapping either. */
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, 0, &v));
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, DMM_TASK_SIZE, &v));
	EXPECT_RC(-EFAULT, dmm_write(f->mm, DMM_TASK_SIZE - 4, buf, sizeof(buf)));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

/*
 *   TBASE             TBASE+PG
 *   | mapped page     | hole
 *               [ 8 bytes ]   the first 4 move, then -EFAULT
 */
static void test_transfer_into_a_hole_stops_at_the_first_failing_byte(void **state)
{
	struct fx *f = *state;
	uint32_t in[2] = { 0x01020304, 0x05060708 };
	uint32_t out[2] = { 0xffffffff, 0xffffffff };

	MAP_ANON(f->mm, TBASE, 1);
	EXPECT_RC(-EFAULT, dmm_write(f->mm, TBASE + PG - 4, in, 8));
	CHECK_OK(f->sys);
	EQ(LOAD(f->mm, TBASE + PG - 4), 0x01020304);

	EXPECT_RC(-EFAULT, dmm_read(f->mm, TBASE + PG - 4, out, 8));
	CHECK_OK(f->sys);
	EQ(out[0], 0x01020304);
	EQ(out[1], 0xffffffff);
}

static void test_write_into_a_read_only_page_stops_at_its_first_byte(void **state)
{
	struct fx *f = *state;
	uint8_t in[6] = { 1, 2, 3, 4, 5, 6 };
	uint8_t out[6] = { 0 };

	MAP_ANON(f->mm, TBASE, 2);
	OK(dmm_mprotect(f->mm, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_READ));
	CHECK_OK(f->sys);
	EXPECT_RC(-EFAULT, dmm_write(f->mm, TBASE + PG - 3, in, 6));
	CHECK_OK(f->sys);
	OK(dmm_read(f->mm, TBASE + PG - 3, out, 6));
	EQ(out[0], 1);
	EQ(out[1], 2);
	EQ(out[2], 3);
	EQ(out[3], 0);
	EQ(out[5], 0);
}

static void test_write_to_read_only_mapping_is_efault(void **state)
{
	struct fx *f = *state;

	MAP_FIXED(f->mm, TBASE, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE, 1));
	EXPECT_RC(-EFAULT, dmm_write(f->mm, PAGE_ADDR(TBASE, 1), "ab", 2));
	CHECK_OK(f->sys);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 1));
	VERIFY_ZERO(f->mm, TBASE, 2 * PG);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_read_spanning_pages_and_vmas(void **state)
{
	struct fx *f = *state;

	/* Three VMAs back to back: RW anon, R anon, shmem. */
	MAP_ANON(f->mm, TBASE, 2);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 2), PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, TBASE, 2 * PG, 1);
	FILL(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, 1 + 3 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, 2 * PG, 1);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 2), PG);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 3), 2 * PG, 1 + 3 * WORDS_PER_PAGE);
	/* One unaligned read across all three. */
	uint8_t buf[3 * PG];
	OK(dmm_read(f->mm, PAGE_ADDR(TBASE, 1) + 2, buf, sizeof(buf)));
	CHECK_OK(f->sys);
	uint32_t w;
	memcpy(&w, buf + PG - 2, 4); /* the first word of the R page */
	EQ(w, 0);
	memcpy(&w, buf + 2 * PG - 2, 4); /* the first word of the shmem */
	EQ(w, 1 + 3 * WORDS_PER_PAGE);
	memcpy(&w, buf + 2, 4);
	EQ(w, 1 + WORDS_PER_PAGE + 1);
}

/* ------------------------------------------------------------------------ */
/* File mappings                                                             */

static void test_shared_file_write_is_visible_through_pread(void **state)
{
	struct fx *f = *state;
	struct dmm_page_info pi;
	uint64_t pfn;

	OK(dmm_file_create(f->sys, 4, &f->file));
	MAP_FIXED(f->mm, TBASE, 4 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	FILL(f->mm, PAGE_ADDR(TBASE, 1), 2 * PG, 0x3000);
	CHECK_OK(f->sys);
	FILE_VERIFY(f->file, PG, 2 * PG, 0x3000);
	FILE_VERIFY_ZERO(f->file, 0, PG);
	FILE_VERIFY_ZERO(f->file, 3 * PG, PG);

	pfn = PFN(f->mm, PAGE_ADDR(TBASE, 1));
	TRUE(PTE(f->mm, PAGE_ADDR(TBASE, 1)).write);
	TRUE(PTE(f->mm, PAGE_ADDR(TBASE, 1)).dirty);
	pi = PAGE(f->sys, pfn);
	FLAGS(pi.flags, DMM_PAGE_PAGECACHE, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE | DMM_PAGE_FREE);
	/* One reference for the page cache, one for the mapping. */
	EQ(pi.refcount, 2);
	EQS(pi.mapcount, 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 2);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_shared_file_write_is_visible_to_a_second_process(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *mm2;
	uint64_t pfn;

	OK(dmm_file_create(f->sys, 2, &f->file));
	OK(dmm_mm_create(f->sys, &mm2));
	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(mm2, TBASE + 0x100000, 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	FILL(f->mm, TBASE, 2 * PG, 0x4400);
	CHECK_OK(f->sys);
	VERIFY(mm2, TBASE + 0x100000, 2 * PG, 0x4400);
	CHECK_OK(f->sys);
	pfn = PFN(f->mm, TBASE);
	EQ(PFN(mm2, TBASE + 0x100000), pfn);
	COUNTS(f->sys, pfn, 3, 2);

	OK(dmm_store32(mm2, TBASE + 0x100000 + PG + 4, 0xdada));
	CHECK_OK(f->sys);
	EQ(LOAD(f->mm, TBASE + PG + 4), 0xdada);
	EQ(PFN(mm2, TBASE + 0x100000 + PG), PFN(f->mm, PAGE_ADDR(TBASE, 1)));

	dmm_mm_exit(mm2);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 2, 1);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, PG, 0x4400);
}

/* A shared mapping read first and written later keeps the same page. */
static void test_shared_mapping_read_then_write_keeps_the_page(void **state)
{
	struct fx *f = *state;
	uint64_t pfn_file, pfn_shmem;

	OK(dmm_file_create(f->sys, 1, &f->file));
	MAP_FIXED(f->mm, TBASE, PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 1), PG, RW, ANON_SHARED, NULL, 0);
	VERIFY_ZERO(f->mm, TBASE, 2 * PG);
	CHECK_OK(f->sys);
	pfn_file = PFN(f->mm, TBASE);
	pfn_shmem = PFN(f->mm, PAGE_ADDR(TBASE, 1));
	NE(pfn_file, DMM_ZERO_PFN);
	NE(pfn_shmem, DMM_ZERO_PFN);
	FILL(f->mm, TBASE, 2 * PG, 9);
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), pfn_file);
	EQ(PFN(f->mm, PAGE_ADDR(TBASE, 1)), pfn_shmem);
	TRUE(PTE(f->mm, TBASE).write);
	TRUE(PTE(f->mm, PAGE_ADDR(TBASE, 1)).write);
	FILE_VERIFY(f->file, 0, PG, 9);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 * A private file mapping, read then written:
 *
 *   read:   PTE -> page-cache page P (read-only)
 *   write:  PTE -> new anon page A (a copy of P, then the write)
 *           P unchanged, the file unchanged
 */
static void test_private_file_write_makes_a_private_copy(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	struct dmm_page_info pi;
	uint64_t cache_pfn, copy_pfn;

	OK(dmm_file_create(f->sys, 2, &f->file));
	FILE_FILL(f->file, 0, 2 * PG, 0x7000);
	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	VERIFY(f->mm, TBASE, 2 * PG, 0x7000);
	CHECK_OK(f->sys);
	cache_pfn = PFN(f->mm, TBASE);
	TRUE(!PTE(f->mm, TBASE).write);
	pi = PAGE(f->sys, cache_pfn);
	FLAGS(pi.flags, DMM_PAGE_PAGECACHE, DMM_PAGE_ANON);
	COUNTS(f->sys, cache_pfn, 2, 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 2);

	s0 = STATS(f->sys);
	OK(dmm_store32(f->mm, TBASE + 40, 0xeeee));
	CHECK_OK(f->sys);
	copy_pfn = PFN(f->mm, TBASE);
	NE(copy_pfn, cache_pfn);
	TRUE(PTE(f->mm, TBASE).write);
	pi = PAGE(f->sys, copy_pfn);
	FLAGS(pi.flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_PAGECACHE);
	COUNTS(f->sys, copy_pfn, 1, 1);
	COUNTS(f->sys, cache_pfn, 1, 0); /* only the page cache holds it now */
	EQ(STAT_DELTA(f->sys, s0, fault_file_cow) + STAT_DELTA(f->sys, s0, cow_copy), 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 1);

	/* The copy holds the file's data plus the write; the file is unchanged. */
	EQ(LOAD(f->mm, TBASE + 40), 0xeeee);
	VERIFY(f->mm, TBASE, 40, 0x7000);
	VERIFY(f->mm, TBASE + 44, PG - 44, 0x7000 + 11);
	FILE_VERIFY(f->file, 0, 2 * PG, 0x7000);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_private_file_first_write_copies_the_file_data(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;

	OK(dmm_file_create(f->sys, 1, &f->file));
	FILE_FILL(f->file, 0, PG, 0x7100);
	MAP_FIXED(f->mm, TBASE, PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	s0 = STATS(f->sys);
	OK(dmm_store32(f->mm, TBASE, 1));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, fault_file_cow), 1);
	FLAGS(PAGE(f->sys, PFN(f->mm, TBASE)).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE,
	      DMM_PAGE_PAGECACHE);
	EQ(LOAD(f->mm, TBASE), 1);
	VERIFY(f->mm, TBASE + 4, PG - 4, 0x7101);
	FILE_VERIFY(f->file, 0, PG, 0x7100);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 0);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 *   file:  | p0 | p1 |
 *   mm at TBASE     : shared  map of p0..p1
 *   mm at TBASE+64  : private map of p0..p1 (p0 read, p1 never touched)
 *
 *   pwrite to the file is seen by both; once the private side writes p0,
 *   later pwrites to p0 are no longer seen there.
 */
static void test_pwrite_is_visible_through_shared_and_unwritten_private_mappings(void **state)
{
	struct fx *f = *state;
	const uint64_t S = TBASE, P = TBASE + 64 * PG;

	OK(dmm_file_create(f->sys, 2, &f->file));
	MAP_FIXED(f->mm, S, 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, P, 2 * PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	VERIFY_ZERO(f->mm, S, PG);
	VERIFY_ZERO(f->mm, P, PG);
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, S), PFN(f->mm, P));

	FILE_FILL(f->file, 0, 2 * PG, 0x5000);
	CHECK_OK(f->sys);
	VERIFY(f->mm, S, 2 * PG, 0x5000);
	VERIFY(f->mm, P, 2 * PG, 0x5000);
	CHECK_OK(f->sys);

	OK(dmm_store32(f->mm, P, 0x1));
	CHECK_OK(f->sys);
	FILE_FILL(f->file, 0, 2 * PG, 0x6000);
	CHECK_OK(f->sys);
	VERIFY(f->mm, S, 2 * PG, 0x6000);
	EQ(LOAD(f->mm, P), 0x1);
	VERIFY(f->mm, P + 4, PG - 4, 0x5001);		   /* the private copy */
	VERIFY(f->mm, P + PG, PG, 0x6000 + WORDS_PER_PAGE); /* p1 never written */
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 *   file: | p0 | p1 |             (2 pages)
 *   map:  | p0 | p1 | -- | -- |   (4 pages): pages 2-3 are beyond the end
 */
static void test_access_beyond_the_end_of_a_file_is_efault(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0;
	uint32_t v;

	OK(dmm_file_create(f->sys, 2, &f->file));
	MAP_FIXED(f->mm, TBASE, 4 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, TBASE + 64 * PG, 4 * PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	/* A mapping that starts beyond the end. */
	MAP_FIXED(f->mm, TBASE + 128 * PG, PG, RW, DMM_MAP_SHARED, f->file, 5);
	CHECK_OK(f->sys);
	s0 = STATS(f->sys);
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, PAGE_ADDR(TBASE, 2), &v));
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, PAGE_ADDR(TBASE, 3), 1));
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, TBASE + 66 * PG, &v));
	EXPECT_RC(-EFAULT, dmm_store32(f->mm, TBASE + 67 * PG + 4, 1));
	EXPECT_RC(-EFAULT, dmm_load32(f->mm, TBASE + 128 * PG, &v));
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, fault_segv), 5);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 2));
	PTE_NONE(f->mm, TBASE + 67 * PG);
	/* A write running off the end moves the bytes before it. */
	EXPECT_RC(-EFAULT, dmm_write(f->mm, PAGE_ADDR(TBASE, 2) - 4, "abcdefgh", 8));
	CHECK_OK(f->sys);
	EQ(LOAD(f->mm, PAGE_ADDR(TBASE, 2) - 4), 0x64636261);
	/* Inside the file all is well. */
	FILL(f->mm, TBASE, 2 * PG - 4, 3);
	FILL(f->mm, TBASE + 64 * PG, 2 * PG, 4);
	CHECK_OK(f->sys);
	FILE_VERIFY(f->file, 0, 2 * PG - 4, 3);
	EQ(dmm_file_npages(f->file), 2);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/* ------------------------------------------------------------------------ */
/* shmem                                                                     */

static void test_shmem_is_shared_between_parent_and_child_after_fork(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child;
	struct dmm_vma_info pv, cv;
	uint64_t pfn;

	MAP_FIXED(f->mm, TBASE, 2 * PG, RW, ANON_SHARED, NULL, 0);
	FILL(f->mm, TBASE, 2 * PG, 0x8000);
	CHECK_OK(f->sys);
	pfn = PFN(f->mm, TBASE);
	FLAGS(PAGE(f->sys, pfn).flags, 0, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE);
	EQ(dmm_mm_rss(f->mm, DMM_MM_SHMEMPAGES), 2);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 0);

	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	pv = VMA(f->mm, TBASE);
	cv = VMA(child, TBASE);
	EQ(pv.type, DMM_VMA_SHMEM);
	EQ(cv.type, DMM_VMA_SHMEM);
	TRUE(pv.file != NULL);
	TRUE(cv.file == pv.file);
	FLAGS(cv.flags, DMM_VM_SHARED | DMM_VM_MAYSHARE, 0);
	/* The parent's shared entry stays writable across fork. */
	TRUE(PTE(f->mm, TBASE).write);

	VERIFY(child, TBASE, 2 * PG, 0x8000);
	CHECK_OK(f->sys);
	EQ(PFN(child, TBASE), pfn);
	OK(dmm_store32(child, TBASE + 4, 0x1111));
	CHECK_OK(f->sys);
	EQ(PFN(child, TBASE), pfn);
	EQ(LOAD(f->mm, TBASE + 4), 0x1111);
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, 1), 0x2222));
	CHECK_OK(f->sys);
	EQ(LOAD(child, PAGE_ADDR(TBASE, 1)), 0x2222);
	EQ(dmm_mm_rss(child, DMM_MM_SHMEMPAGES), 2);
	COUNTS(f->sys, pfn, 3, 2); /* the shmem object, two mappings */

	dmm_mm_exit(f->mm);
	f->mm = NULL;
	CHECK_OK(f->sys);
	/* The child keeps the object alive. */
	COUNTS(f->sys, pfn, 2, 1);
	EQ(LOAD(child, TBASE + 4), 0x1111);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

/* ------------------------------------------------------------------------ */
/* rss                                                                       */

/*
 *   TBASE       anon private  4 pages
 *   TBASE+16    shmem         3 pages
 *   TBASE+32    file shared   2 pages (of a 4-page file)
 *   TBASE+48    file private  2 pages (p0 read, p1 written)
 */
static void test_rss_counters_follow_anon_file_and_shmem_pages(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 4, &f->file));
	MAP_ANON(f->mm, TBASE, 4);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 16), 3 * PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 32), 2 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 48), 2 * PG, RW, DMM_MAP_PRIVATE, f->file, 2);
	CHECK_OK(f->sys);
	for (int t = 0; t < DMM_NR_MM_COUNTERS; t++)
		EQ(dmm_mm_rss(f->mm, (enum dmm_rss_type)t), 0);

	FILL(f->mm, TBASE, 3 * PG, 1);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 3), PG); /* zero page: not counted */
	FILL(f->mm, PAGE_ADDR(TBASE, 16), 3 * PG, 2);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 32), 2 * PG);
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 48), PG);
	FILL(f->mm, PAGE_ADDR(TBASE, 49), PG, 3);
	CHECK_OK(f->sys);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 3 + 1);
	EQ(dmm_mm_rss(f->mm, DMM_MM_SHMEMPAGES), 3);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 2 + 1);

	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 16), PG));
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 1), PG));
	OK(dmm_munmap(f->mm, PAGE_ADDR(TBASE, 32), PG));
	CHECK_OK(f->sys);
	EQ(dmm_mm_rss(f->mm, DMM_MM_ANONPAGES), 3);
	EQ(dmm_mm_rss(f->mm, DMM_MM_SHMEMPAGES), 2);
	EQ(dmm_mm_rss(f->mm, DMM_MM_FILEPAGES), 2);

	OK(dmm_munmap(f->mm, TBASE, 64 * PG));
	CHECK_OK(f->sys);
	for (int t = 0; t < DMM_NR_MM_COUNTERS; t++)
		EQ(dmm_mm_rss(f->mm, (enum dmm_rss_type)t), 0);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_read_of_anon_hole_maps_the_zero_page_read_only),
		T(test_write_to_anon_hole_allocates_an_exclusive_dirty_page),
		T(test_write_after_read_replaces_the_zero_page),
		T(test_load32_and_store32_round_trip),
		T(test_cmpxchg32_swaps_only_when_the_expected_value_matches),
		T(test_failing_cmpxchg32_still_takes_a_write_fault),
		T(test_fetch_add32_returns_the_old_value_and_wraps),
		T(test_unaligned_32bit_access_is_einval),
		T(test_null_buffers_are_einval),
		T(test_access_to_unmapped_address_is_efault),
		T(test_transfer_into_a_hole_stops_at_the_first_failing_byte),
		T(test_write_into_a_read_only_page_stops_at_its_first_byte),
		T(test_write_to_read_only_mapping_is_efault),
		T(test_read_spanning_pages_and_vmas),
		T(test_shared_file_write_is_visible_through_pread),
		T(test_shared_file_write_is_visible_to_a_second_process),
		T(test_shared_mapping_read_then_write_keeps_the_page),
		T(test_private_file_write_makes_a_private_copy),
		T(test_private_file_first_write_copies_the_file_data),
		T(test_pwrite_is_visible_through_shared_and_unwritten_private_mappings),
		T(test_access_beyond_the_end_of_a_file_is_efault),
		T(test_shmem_is_shared_between_parent_and_child_after_fork),
		T(test_rss_counters_follow_anon_file_and_shmem_pages),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
