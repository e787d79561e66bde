/* SPDX-License-Identifier: MIT */
/*
 * Page-cache files: creation, pread/pwrite at odd offsets and lengths,
 * range errors, mapping at a page offset, the file's lifetime (mappings hold
 * references), the page cache shared by every mapping, and allocation
 * failure.
 */
#include "helpers.h"

static void test_file_create_rejects_bad_sizes(void **state)
{
	struct fx *f = *state;
	struct dmm_file *file = NULL;

	EXPECT_RC(-EINVAL, dmm_file_create(f->sys, 0, &file));
	EXPECT_RC(-EINVAL, dmm_file_create(f->sys, (1ULL << 32) + 1, &file));
	EXPECT_RC(-EINVAL, dmm_file_create(f->sys, UINT64_MAX, &file));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_new_file_reads_as_zero_and_reports_its_size(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 3, &f->file));
	CHECK_OK(f->sys);
	EQ(dmm_file_npages(f->file), 3);
	FILE_VERIFY_ZERO(f->file, 0, 3 * PG);
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

/* A large file costs only the pages that are used. */
static void test_large_file_is_populated_lazily(void **state)
{
	struct fx *f = *state;
	const uint64_t npages = 1ULL << 20; /* 4 GiB, on a 16 MiB machine */

	OK(dmm_file_create(f->sys, npages, &f->file));
	EQ(dmm_file_npages(f->file), npages);
	FILE_FILL(f->file, (npages - 1) * PG, PG, 0x1234);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 1);
	FILE_VERIFY(f->file, (npages - 1) * PG, PG, 0x1234);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Random pwrites and preads at byte granularity against a model buffer. */
static void test_pread_pwrite_round_trip_at_odd_offsets(void **state)
{
	struct fx *f = *state;
	const size_t size = 5 * PG;
	uint8_t *model = calloc(1, size), *buf = malloc(size), *got = malloc(size);
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	TRUE(model && buf && got);
	OK(dmm_file_create(f->sys, 5, &f->file));
	for (int it = 0; it < 300; it++) {
		size_t off = xorshift(&seed) % size;
		size_t len = xorshift(&seed) % (size - off + 1);

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)xorshift(&seed);
		OK(dmm_file_pwrite(f->file, buf, len, off));
		memcpy(model + off, buf, len);

		off = xorshift(&seed) % size;
		len = xorshift(&seed) % (size - off + 1);
		memset(got, 0xee, len);
		OK(dmm_file_pread(f->file, got, len, off));
		if (memcmp(got, model + off, len) != 0)
			fail_msg("iteration %d: pread(off %zu, len %zu) differs from the model", it, off,
				 len);
	}
	CHECK_OK(f->sys);

	/* Some fixed odd cases: across a page boundary, one byte, the last byte. */
	OK(dmm_file_pwrite(f->file, "hello", 5, PG - 2));
	OK(dmm_file_pwrite(f->file, "Z", 1, size - 1));
	OK(dmm_file_pwrite(f->file, "", 0, 17));
	memcpy(model + PG - 2, "hello", 5);
	model[size - 1] = 'Z';
	OK(dmm_file_pread(f->file, got, size, 0));
	TRUE(memcmp(got, model, size) == 0);
	CHECK_OK(f->sys);

	free(model);
	free(buf);
	free(got);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_access_past_the_end_is_einval_and_changes_nothing(void **state)
{
	struct fx *f = *state;
	static uint8_t buf[2 * DMM_PAGE_SIZE + 16]; /* big enough for every call below */
	const uint64_t size = 2 * PG;

	OK(dmm_file_create(f->sys, 2, &f->file));
	FILE_FILL(f->file, 0, size, 0x55);
	CHECK_OK(f->sys);
	memset(buf, 0xcc, sizeof(buf));

	/* Straddling the end: nothing of it is written. */
	EXPECT_RC(-EINVAL, dmm_file_pwrite(f->file, buf, 8, size - 4));
	EXPECT_RC(-EINVAL, dmm_file_pwrite(f->file, buf, 1, size));
	EXPECT_RC(-EINVAL, dmm_file_pwrite(f->file, buf, 4, 100 * PG));
	EXPECT_RC(-EINVAL, dmm_file_pwrite(f->file, buf, 8, UINT64_MAX - 3)); /* wraps */
	EXPECT_RC(-EINVAL, dmm_file_pread(f->file, buf, 8, size - 4));
	EXPECT_RC(-EINVAL, dmm_file_pread(f->file, buf, 1, size));
	EXPECT_RC(-EINVAL, dmm_file_pread(f->file, buf, 8, UINT64_MAX - 3));
	EXPECT_RC(-EINVAL, dmm_file_pread(f->file, buf, size + 1, 0));
	/* NULL buffers. */
	EXPECT_RC(-EINVAL, dmm_file_pread(f->file, NULL, 4, 0));
	EXPECT_RC(-EINVAL, dmm_file_pwrite(f->file, NULL, 4, 0));
	OK(dmm_file_pread(f->file, NULL, 0, 0));
	OK(dmm_file_pwrite(f->file, NULL, 0, 0));
	CHECK_OK(f->sys);
	FILE_VERIFY(f->file, 0, size, 0x55);
	/* Exactly up to the end is fine. */
	OK(dmm_file_pread(f->file, buf, 8, size - 8));
	OK(dmm_file_pwrite(f->file, buf, 8, size - 8));
	CHECK_OK(f->sys);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 *   file:  | p0 | p1 | p2 | p3 | p4 | p5 | p6 | p7 |
 *   map at TBASE, pgoff 3, 3 pages:   | p3 | p4 | p5 |
 */
static void test_mapping_at_a_page_offset_shows_those_pages(void **state)
{
	struct fx *f = *state;
	struct dmm_vma_info v;

	OK(dmm_file_create(f->sys, 8, &f->file));
	FILE_FILL(f->file, 0, 8 * PG, 0x2000);
	MAP_FIXED(f->mm, TBASE, 3 * PG, RW, DMM_MAP_SHARED, f->file, 3);
	CHECK_OK(f->sys);
	v = VMA(f->mm, TBASE);
	EQ(v.pgoff, 3);
	EQ(v.type, DMM_VMA_FILE);
	TRUE(v.file == f->file);
	VERIFY(f->mm, TBASE, 3 * PG, 0x2000 + 3 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, 1) + 8, 0xfeed));
	CHECK_OK(f->sys);
	uint32_t w = 0;
	OK(dmm_file_pread(f->file, &w, 4, 4 * PG + 8));
	EQ(w, 0xfeed);
	FILE_VERIFY(f->file, 0, 4 * PG, 0x2000);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/* All mappings of a file page, shared or (until written) private, and
 * pread, go through one page-cache page. */
static void test_page_cache_page_is_shared_by_every_mapping(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *mm2;
	uint64_t pfn;

	OK(dmm_file_create(f->sys, 1, &f->file));
	OK(dmm_mm_create(f->sys, &mm2));
	MAP_FIXED(f->mm, TBASE, PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 4), PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	MAP_FIXED(mm2, PAGE_ADDR(TBASE, 8), PG, DMM_PROT_READ, DMM_MAP_SHARED, f->file, 0);
	OK(dmm_store32(f->mm, TBASE, 0x99));
	CHECK_OK(f->sys);
	EQ(LOAD(f->mm, PAGE_ADDR(TBASE, 4)), 0x99);
	EQ(LOAD(mm2, PAGE_ADDR(TBASE, 8)), 0x99);
	CHECK_OK(f->sys);
	pfn = PFN(f->mm, TBASE);
	EQ(PFN(f->mm, PAGE_ADDR(TBASE, 4)), pfn);
	EQ(PFN(mm2, PAGE_ADDR(TBASE, 8)), pfn);
	COUNTS(f->sys, pfn, 4, 3);
	FLAGS(PAGE(f->sys, pfn).flags, DMM_PAGE_PAGECACHE | DMM_PAGE_UPTODATE, DMM_PAGE_ANON);
	EXPECT_RC(-EFAULT, dmm_store32(mm2, PAGE_ADDR(TBASE, 8), 1));
	dmm_mm_exit(mm2);
	CHECK_OK(f->sys);
	COUNTS(f->sys, pfn, 3, 2);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

static void test_file_put_while_mapped_keeps_the_file_alive(void **state)
{
	struct fx *f = *state;
	struct dmm_file *file;
	struct dmm_mm *child;

	OK(dmm_file_create(f->sys, 4, &file));
	FILE_FILL(file, 0, 4 * PG, 0x3000);
	MAP_FIXED(f->mm, TBASE, 4 * PG, RW, DMM_MAP_SHARED, file, 0);
	dmm_file_put(file); /* only the mapping holds it now */
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 4);
	VERIFY(f->mm, TBASE, 4 * PG, 0x3000);
	FILL(f->mm, PAGE_ADDR(TBASE, 2), PG, 0x4000);
	CHECK_OK(f->sys);
	TRUE(VMA(f->mm, TBASE).file == file);

	/* A child's mapping keeps it too, after the parent unmaps. */
	OK(dmm_fork(f->mm, &child));
	CHECK_OK(f->sys);
	OK(dmm_munmap(f->mm, TBASE, 4 * PG));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 4);
	VERIFY(child, PAGE_ADDR(TBASE, 2), PG, 0x4000);
	VERIFY(child, PAGE_ADDR(TBASE, 3), PG, 0x3000 + 3 * WORDS_PER_PAGE);
	CHECK_OK(f->sys);

	/* The last mapping goes: the file and its page cache are freed. */
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

static void test_file_put_frees_its_page_cache(void **state)
{
	struct fx *f = *state;
	struct dmm_stats s0 = STATS(f->sys);

	OK(dmm_file_create(f->sys, 8, &f->file));
	FILE_FILL(f->file, 2 * PG + 100, 2 * PG, 1); /* touches pages 2, 3 and 4 */
	CHECK_OK(f->sys);
	EQ(STAT_DELTA(f->sys, s0, pagecache_alloc), 3);
	EQ(dmm_system_nr_free(f->sys), f->free0 - 3);
	dmm_file_put(f->file);
	f->file = NULL;
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), f->free0);
}

/*
 * A 64-frame machine, filled with anonymous memory but for one frame.
 * A two-page pwrite gets the last frame for its first page and fails on the
 * second; nothing past the failing page is copied.
 */
static void test_pwrite_fails_with_enomem_when_frames_run_out(void **state)
{
	struct fx *f = *state;
	uint32_t buf[2 * WORDS_PER_PAGE];
	int n;

	OK(dmm_file_create(f->sys, 4, &f->file));
	MAP_ANON(f->mm, TBASE, 64);
	for (n = 0; n < 63; n++)
		OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, n), (uint32_t)n));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), 1);

	for (size_t k = 0; k < 2 * WORDS_PER_PAGE; k++)
		buf[k] = 0x600000u + (uint32_t)k;
	EXPECT_RC(-ENOMEM, dmm_file_pwrite(f->file, buf, sizeof(buf), 0));
	CHECK_OK(f->sys);
	EQ(dmm_system_nr_free(f->sys), 0);
	FILE_VERIFY(f->file, 0, PG, 0x600000u);

	/* Free some memory: the rest can be written and page 1 never got data. */
	OK(dmm_munmap(f->mm, TBASE, 8 * PG));
	CHECK_OK(f->sys);
	FILE_VERIFY_ZERO(f->file, PG, PG);
	OK(dmm_file_pwrite(f->file, buf, sizeof(buf), 2 * PG));
	CHECK_OK(f->sys);
	FILE_VERIFY(f->file, 2 * PG, 2 * PG, 0x600000u);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/* A mapping fault that needs a page-cache page fails cleanly without memory. */
static void test_file_fault_fails_with_enomem_when_frames_run_out(void **state)
{
	struct fx *f = *state;
	uint32_t v;

	OK(dmm_file_create(f->sys, 4, &f->file));
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 128), 4 * PG, RW, DMM_MAP_SHARED, f->file, 0);
	MAP_ANON(f->mm, TBASE, 64);
	for (int n = 0; n < 64; n++)
		OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, n), (uint32_t)n));
	EQ(dmm_system_nr_free(f->sys), 0);
	EXPECT_RC(-ENOMEM, dmm_load32(f->mm, PAGE_ADDR(TBASE, 128), &v));
	CHECK_OK(f->sys);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 128));
	OK(dmm_munmap(f->mm, TBASE, PG));
	CHECK_OK(f->sys);
	OK(dmm_store32(f->mm, PAGE_ADDR(TBASE, 128), 5));
	CHECK_OK(f->sys);
	uint32_t w = 0;
	OK(dmm_file_pread(f->file, &w, 4, 0));
	EQ(w, 5);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_file_create_rejects_bad_sizes),
		T(test_new_file_reads_as_zero_and_reports_its_size),
		T(test_large_file_is_populated_lazily),
		T(test_pread_pwrite_round_trip_at_odd_offsets),
		T(test_access_past_the_end_is_einval_and_changes_nothing),
		T(test_mapping_at_a_page_offset_shows_those_pages),
		T(test_page_cache_page_is_shared_by_every_mapping),
		T(test_file_put_while_mapped_keeps_the_file_alive),
		T(test_file_put_frees_its_page_cache),
		cmocka_unit_test_setup_teardown(test_pwrite_fails_with_enomem_when_frames_run_out,
						fx_setup_64, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_fault_fails_with_enomem_when_frames_run_out,
						fx_setup_64, fx_teardown),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
