/* SPDX-License-Identifier: MIT */
/*
 * get_user_pages beyond the basics of test_gup.c (semantics.md §3.7, §5.2):
 * FOLL_LONGTERM and device-coherent pages (mainline migrates, the v6 rule
 * fails, a short-term pin makes the migration -EBUSY), FOLL_FORCE, the
 * long-term dirty-tracking rule for shared files, device-private and
 * device-exclusive entries, GUP-fast and its fallbacks, partial results,
 * pin balance, and how pins interact with migration and fork.
 */
#include "helpers.h"
#include "testdrv.h"

#define GET DMM_FOLL_GET
#define PIN DMM_FOLL_PIN
#define WR DMM_FOLL_WRITE
#define LT DMM_FOLL_LONGTERM
#define FORCE DMM_FOLL_FORCE
#define DEV_PAGES 16

struct gfx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct testdrv *priv, *coh;
	struct dmm_file *file;
};

static int gfx_setup(void **state)
{
	struct gfx *g = calloc(1, sizeof(*g));

	if (!g)
		return -1;
	g->sys = sys_new(4096);
	if (!g->sys || dmm_mm_create(g->sys, &g->mm) ||
	    testdrv_create(g->sys, DMM_MEMORY_DEVICE_PRIVATE, DEV_PAGES, &g->priv) ||
	    testdrv_create(g->sys, DMM_MEMORY_DEVICE_COHERENT, DEV_PAGES, &g->coh)) {
		if (g->sys)
			dmm_system_destroy(g->sys);
		free(g);
		return -1;
	}
	*state = g;
	return 0;
}

static int gfx_teardown(void **state)
{
	struct gfx *g = *state;

	if (g->file)
		dmm_file_put(g->file);
	dmm_system_destroy(g->sys);
	testdrv_free(g->priv);
	testdrv_free(g->coh);
	free(g);
	return 0;
}

/* n written pages at addr, moved to the coherent device; returns nothing,
 * asserts they all moved. */
static void to_coherent_at(const char *file, int line, struct gfx *g, uint64_t addr, unsigned long n,
			   uint32_t seed)
{
	unsigned long moved = 0;
	int r;

	fill_at(file, line, g->mm, addr, n * PG, seed);
	r = testdrv_migrate_to_dev(g->coh, g->mm, addr, n, &moved);
	if (r || moved != n)
		h_fail(file, line, "migrate_to_dev(coherent) = %d, moved %lu of %lu", r, moved, n);
}
#define TO_COHERENT(g, addr, n, seed) to_coherent_at(__FILE__, __LINE__, g, addr, n, seed)

static bool is_coherent(struct gfx *g, uint64_t pfn)
{
	return PAGE(g->sys, pfn).location == DMM_LOC_DEVICE_COHERENT;
}

/* The words of frame pfn hold the pattern of page i of a FILL(seed). */
static void frame_verify_at(const char *file, int line, struct dmm_system *sys, uint64_t pfn, uint32_t seed)
{
	const uint32_t *w = dmm_page_address(sys, pfn);

	if (!w)
		h_fail(file, line, "no address for pfn %" PRIu64, pfn);
	for (size_t k = 0; k < WORDS_PER_PAGE; k++)
		if (w[k] != seed + (uint32_t)k)
			h_fail(file, line, "pfn %" PRIu64 " word %zu = %#x, expected %#x", pfn, k, w[k],
			       seed + (uint32_t)k);
}
#define FRAME_VERIFY(sys, pfn, seed) frame_verify_at(__FILE__, __LINE__, sys, pfn, seed)

static void pins_balanced_at(const char *file, int line, struct dmm_system *sys)
{
	struct dmm_stats s = stats_at(file, line, sys);

	if (s.pin_pages != s.unpin_pages)
		h_fail(file, line, "%" PRIu64 " pins taken, %" PRIu64 " released", s.pin_pages, s.unpin_pages);
}
#define PINS_BALANCED(sys) pins_balanced_at(__FILE__, __LINE__, sys)

/* ------------------------------------------------------------------------ */
/* FOLL_LONGTERM and device-coherent memory                                  */

static void test_longterm_pin_migrates_a_coherent_page_to_system_memory(void **state)
{
	struct gfx *g = *state;
	struct dmm_stats s0;
	uint64_t c, pfn = 0;

	MAP_ANON(g->mm, TBASE, 1);
	TO_COHERENT(g, TBASE, 1, 100);
	c = PFN(g->mm, TBASE);
	TRUE(is_coherent(g, c));
	s0 = STATS(g->sys);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT | WR, &pfn), 1);
	CHECK_OK(g->sys);
	NE(pfn, c);
	EQ(PAGE(g->sys, pfn).location, DMM_LOC_SYSTEM);
	FRAME_VERIFY(g->sys, pfn, 100);
	/* The address now maps that system page, writable. */
	EQ(PTE(g->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(g->mm, TBASE).pfn, pfn);
	EQ(PTE(g->mm, TBASE).write, 1);
	COUNTS(g->sys, pfn, 1 + 1024, 1);
	EQ(PAGE(g->sys, pfn).pincount, 1);
	FLAGS(PAGE(g->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	EQ(STAT_DELTA(g->sys, s0, longterm_migrated), 1);
	/* The coherent page went back to its driver. */
	EQ(testdrv_used(g->coh), 0);
	EQ(PAGE(g->sys, c).refcount, 0);
	dmm_unpin_user_pages(g->sys, &pfn, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	VERIFY(g->mm, TBASE, PG, 100);
}

static void test_longterm_pin_of_a_mixed_range_ends_with_system_pages_only(void **state)
{
	struct gfx *g = *state;
	uint64_t pfns[4] = { 0 }, c1, c3;

	MAP_ANON(g->mm, TBASE, 4);
	FILL(g->mm, TBASE, 4 * PG, 200);
	OK(testdrv_migrate_to_dev(g->coh, g->mm, TBASE + PG, 1, NULL));
	OK(testdrv_migrate_to_dev(g->coh, g->mm, TBASE + 3 * PG, 1, NULL));
	c1 = PFN(g->mm, TBASE + PG);
	c3 = PFN(g->mm, TBASE + 3 * PG);
	TRUE(is_coherent(g, c1) && is_coherent(g, c3));
	EQS(dmm_get_user_pages(g->mm, TBASE, 4, PIN | LT, pfns), 4);
	CHECK_OK(g->sys);
	for (int i = 0; i < 4; i++) {
		EQ(PAGE(g->sys, pfns[i]).location, DMM_LOC_SYSTEM);
		EQ(pfns[i], PFN(g->mm, PAGE_ADDR(TBASE, i)));
		COUNTS(g->sys, pfns[i], 1 + 1024, 1);
		FRAME_VERIFY(g->sys, pfns[i], 200 + i * WORDS_PER_PAGE);
	}
	EQ(testdrv_used(g->coh), 0);
	dmm_unpin_user_pages(g->sys, pfns, 4);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

static void test_short_term_pins_and_gets_leave_coherent_pages_on_the_device(void **state)
{
	struct gfx *g = *state;
	uint64_t c, a = 0, b = 0, d = 0;

	MAP_ANON(g->mm, TBASE, 1);
	TO_COHERENT(g, TBASE, 1, 300);
	c = PFN(g->mm, TBASE);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | WR, &a), 1);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, GET, &b), 1);
	EQS(dmm_get_user_pages_fast(g->mm, TBASE, 1, PIN, &d), 1);
	EQ(a, c);
	EQ(b, c);
	EQ(d, c);
	EQ(PFN(g->mm, TBASE), c);
	COUNTS(g->sys, c, 1 + 1 + 2048, 1);
	EQ(PAGE(g->sys, c).pincount, 2);
	dmm_unpin_user_pages(g->sys, &a, 1);
	dmm_unpin_user_pages(g->sys, &d, 1);
	dmm_put_user_pages(g->sys, &b, 1);
	CHECK_OK(g->sys);
	COUNTS(g->sys, c, 1, 1);
	PINS_BALANCED(g->sys);
}

static void test_longterm_coherent_fail_mode_is_efault_and_pins_nothing(void **state)
{
	struct gfx *g = *state;
	uint64_t pfns[2] = { 0 }, c;

	EXPECT_RC(-EINVAL, dmm_system_set_longterm_coherent(NULL, DMM_LONGTERM_COHERENT_FAIL));
	EXPECT_RC(-EINVAL, dmm_system_set_longterm_coherent(g->sys, (enum dmm_longterm_coherent)7));
	OK(dmm_system_set_longterm_coherent(g->sys, DMM_LONGTERM_COHERENT_FAIL));
	MAP_ANON(g->mm, TBASE, 2);
	FILL(g->mm, TBASE, PG, 1);
	TO_COHERENT(g, TBASE + PG, 1, 400);
	c = PFN(g->mm, TBASE + PG);
	EXPECT_RC(-EFAULT, dmm_get_user_pages(g->mm, TBASE, 2, PIN | LT, pfns));
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	COUNTS(g->sys, c, 1, 1);
	EQ(PAGE(g->sys, c).pincount, 0);
	COUNTS(g->sys, PFN(g->mm, TBASE), 1, 1);
	EQ(PFN(g->mm, TBASE + PG), c);
	EXPECT_RC(-EFAULT, dmm_get_user_pages_fast(g->mm, TBASE + PG, 1, PIN | LT, pfns));
	PINS_BALANCED(g->sys);
	/* A system page alone pins fine; short-term pins are unaffected. */
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT, pfns), 1);
	EQS(dmm_get_user_pages(g->mm, TBASE + PG, 1, PIN, pfns + 1), 1);
	EQ(pfns[1], c);
	dmm_unpin_user_pages(g->sys, pfns, 2);
	/* Back to mainline: it migrates. */
	OK(dmm_system_set_longterm_coherent(g->sys, DMM_LONGTERM_COHERENT_MIGRATE));
	EQS(dmm_get_user_pages(g->mm, TBASE + PG, 1, PIN | LT, pfns), 1);
	NE(pfns[0], c);
	dmm_unpin_user_pages(g->sys, pfns, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	VERIFY(g->mm, TBASE + PG, PG, 400);
}

static void test_short_term_pin_on_a_coherent_page_makes_longterm_pin_ebusy(void **state)
{
	struct gfx *g = *state;
	uint64_t c, s = 0, l = 0;

	MAP_ANON(g->mm, TBASE, 1);
	TO_COHERENT(g, TBASE, 1, 500);
	c = PFN(g->mm, TBASE);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN, &s), 1);
	EQ(s, c);
	EXPECT_RC(-EBUSY, dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT, &l));
	CHECK_OK(g->sys);
	/* Only the short-term pin remains, on the page still mapped. */
	COUNTS(g->sys, c, 1 + 1024, 1);
	EQ(PAGE(g->sys, c).pincount, 1);
	EQ(PFN(g->mm, TBASE), c);
	dmm_unpin_user_pages(g->sys, &s, 1);
	PINS_BALANCED(g->sys);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT, &l), 1);
	NE(l, c);
	dmm_unpin_user_pages(g->sys, &l, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	VERIFY(g->mm, TBASE, PG, 500);
}

static void test_longterm_without_pin_is_einval(void **state)
{
	struct gfx *g = *state;
	uint64_t pfn = 0;

	MAP_ANON(g->mm, TBASE, 1);
	EXPECT_RC(-EINVAL, dmm_get_user_pages(g->mm, TBASE, 1, LT, &pfn));
	EXPECT_RC(-EINVAL, dmm_get_user_pages(g->mm, TBASE, 1, GET | LT, &pfn));
	EXPECT_RC(-EINVAL, dmm_get_user_pages_fast(g->mm, TBASE, 1, GET | LT | WR, &pfn));
	PTE_NONE(g->mm, TBASE);
	CHECK_OK(g->sys);
}

/* ------------------------------------------------------------------------ */
/* FOLL_FORCE and file mappings                                              */

static void test_force_write_to_a_private_read_only_file_mapping_goes_through_cow(void **state)
{
	struct gfx *g = *state;
	uint64_t pfn = 0, fpfn;
	uint32_t *w;

	OK(dmm_file_create(g->sys, 1, &g->file));
	FILE_FILL(g->file, 0, PG, 600);
	MAP_FIXED(g->mm, TBASE, PG, DMM_PROT_READ, DMM_MAP_PRIVATE, g->file, 0);
	EQ(LOAD(g->mm, TBASE), 600);
	fpfn = PFN(g->mm, TBASE);
	FLAGS(PAGE(g->sys, fpfn).flags, DMM_PAGE_PAGECACHE, 0);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, GET | WR | FORCE, &pfn), 1);
	CHECK_OK(g->sys);
	NE(pfn, fpfn);
	FLAGS(PAGE(g->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_PAGECACHE);
	EQ(PFN(g->mm, TBASE), pfn);
	EQ(PTE(g->mm, TBASE).write, 0);
	TRUE(!(VMA(g->mm, TBASE).flags & DMM_VM_WRITE));
	/* The debugger's write lands in the private copy, not the file. */
	w = dmm_page_address(g->sys, pfn);
	w[0] = 0xdeb9;
	EQ(LOAD(g->mm, TBASE), 0xdeb9);
	FILE_VERIFY(g->file, 0, PG, 600);
	EXPECT_RC(-EFAULT, dmm_store32(g->mm, TBASE, 1));
	dmm_put_user_pages(g->sys, &pfn, 1);
	/* A second forced write reuses the exclusive copy. */
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | WR | FORCE, &pfn), 1);
	EQ(pfn, PFN(g->mm, TBASE));
	dmm_unpin_user_pages(g->sys, &pfn, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

static void test_force_write_is_refused_on_a_shared_read_only_mapping(void **state)
{
	struct gfx *g = *state;
	uint64_t pfn = 0;

	OK(dmm_file_create(g->sys, 1, &g->file));
	MAP_FIXED(g->mm, TBASE, PG, DMM_PROT_READ, DMM_MAP_SHARED, g->file, 0);
	MAP_FIXED(g->mm, TBASE + PG, PG, DMM_PROT_READ, ANON_SHARED, NULL, 0);
	EXPECT_RC(-EFAULT, dmm_get_user_pages(g->mm, TBASE, 1, GET | WR | FORCE, &pfn));
	EXPECT_RC(-EFAULT, dmm_get_user_pages(g->mm, TBASE + PG, 1, PIN | WR | FORCE, &pfn));
	EXPECT_RC(-EFAULT, dmm_get_user_pages_fast(g->mm, TBASE, 1, GET | WR | FORCE, &pfn));
	PTE_NONE(g->mm, TBASE);
	PTE_NONE(g->mm, TBASE + PG);
	/* Reading is fine. */
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, GET, &pfn), 1);
	dmm_put_user_pages(g->sys, &pfn, 1);
	CHECK_OK(g->sys);
}

static void test_writable_longterm_pin_of_a_shared_file_is_efault_but_shmem_is_fine(void **state)
{
	struct gfx *g = *state;
	uint64_t pfn = 0;

	OK(dmm_file_create(g->sys, 2, &g->file));
	MAP_FIXED(g->mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, g->file, 0);
	MAP_FIXED(g->mm, TBASE + 4 * PG, PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(g->mm, TBASE + 8 * PG, PG, RW, DMM_MAP_PRIVATE, g->file, 1);
	EXPECT_RC(-EFAULT, dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT | WR, &pfn));
	EXPECT_RC(-EFAULT, dmm_get_user_pages_fast(g->mm, TBASE, 1, PIN | LT | WR, &pfn));
	PINS_BALANCED(g->sys);
	/* Read-only long-term, or short-term writable: fine. */
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT, &pfn), 1);
	dmm_unpin_user_pages(g->sys, &pfn, 1);
	EQS(dmm_get_user_pages(g->mm, TBASE + PG, 1, PIN | WR, &pfn), 1);
	dmm_unpin_user_pages(g->sys, &pfn, 1);
	/* shmem needs no dirty tracking. */
	EQS(dmm_get_user_pages(g->mm, TBASE + 4 * PG, 1, PIN | LT | WR, &pfn), 1);
	FLAGS(PAGE(g->sys, pfn).flags, DMM_PAGE_PAGECACHE, DMM_PAGE_ANON);
	dmm_unpin_user_pages(g->sys, &pfn, 1);
	/* A private file mapping gets an anonymous copy. */
	EQS(dmm_get_user_pages(g->mm, TBASE + 8 * PG, 1, PIN | LT | WR, &pfn), 1);
	FLAGS(PAGE(g->sys, pfn).flags, DMM_PAGE_ANON, DMM_PAGE_PAGECACHE);
	dmm_unpin_user_pages(g->sys, &pfn, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

/* ------------------------------------------------------------------------ */
/* Device-private and device-exclusive entries                               */

static void test_gup_of_a_device_private_page_migrates_it_back(void **state)
{
	struct gfx *g = *state;
	unsigned long moved;
	uint64_t pfns[2] = { 0 }, dev;

	MAP_ANON(g->mm, TBASE, 2);
	FILL(g->mm, TBASE, 2 * PG, 700);
	OK(testdrv_migrate_to_dev(g->priv, g->mm, TBASE, 2, &moved));
	EQ(moved, 2);
	dev = PTE(g->mm, TBASE).pfn;
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, GET, pfns), 1);
	CHECK_OK(g->sys);
	NE(pfns[0], dev);
	EQ(PAGE(g->sys, pfns[0]).location, DMM_LOC_SYSTEM);
	EQ(PTE(g->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(g->mm, TBASE).pfn, pfns[0]);
	EQ(atomic_load(&g->priv->faults), 1);
	FRAME_VERIFY(g->sys, pfns[0], 700);
	dmm_put_user_pages(g->sys, pfns, 1);
	/* The fast variant falls back and does the same. */
	EQS(dmm_get_user_pages_fast(g->mm, TBASE + PG, 1, PIN | WR, pfns + 1), 1);
	EQ(PAGE(g->sys, pfns[1]).location, DMM_LOC_SYSTEM);
	EQ(PTE(g->mm, TBASE + PG).pfn, pfns[1]);
	EQ(atomic_load(&g->priv->faults), 2);
	dmm_unpin_user_pages(g->sys, pfns + 1, 1);
	EQ(testdrv_used(g->priv), 0);
	CHECK_OK(g->sys);
	VERIFY(g->mm, TBASE, 2 * PG, 700);
}

static void test_gup_of_a_device_exclusive_entry_restores_it(void **state)
{
	struct gfx *g = *state;
	uint64_t pfn = 0, got = 0;
	int r;

	MAP_ANON(g->mm, TBASE, 1);
	FILL(g->mm, TBASE, PG, 800);
	dmm_mmap_read_lock(g->mm);
	r = dmm_make_device_exclusive(g->mm, TBASE, g, &pfn);
	dmm_mmap_read_unlock(g->mm);
	OK(r);
	dmm_unlock_page(g->sys, pfn);
	dmm_put_page(g->sys, pfn);
	EQ(PTE(g->mm, TBASE).kind, DMM_PTE_DEVICE_EXCLUSIVE);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | WR, &got), 1);
	EQ(got, pfn);
	EQ(PTE(g->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(g->mm, TBASE).pfn, pfn);
	dmm_unpin_user_pages(g->sys, &got, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

/* ------------------------------------------------------------------------ */
/* GUP-fast                                                                  */

static void test_gup_fast_matches_the_slow_path_for_present_pages(void **state)
{
	struct gfx *g = *state;
	uint64_t a[4] = { 0 }, b[4] = { 0 };
	struct dmm_stats s0;

	MAP_ANON(g->mm, TBASE, 4);
	FILL(g->mm, TBASE, 4 * PG, 1);
	s0 = STATS(g->sys);
	EQS(dmm_get_user_pages_fast(g->mm, TBASE, 4, GET | WR, a), 4);
	EQS(dmm_get_user_pages(g->mm, TBASE, 4, GET | WR, b), 4);
	EQ(STAT_DELTA(g->sys, s0, gup_fast_fallback), 0);
	for (int i = 0; i < 4; i++) {
		EQ(a[i], b[i]);
		EQ(a[i], PFN(g->mm, PAGE_ADDR(TBASE, i)));
		COUNTS(g->sys, a[i], 3, 1);
	}
	dmm_put_user_pages(g->sys, a, 4);
	dmm_put_user_pages(g->sys, b, 4);
	EQS(dmm_get_user_pages_fast(g->mm, TBASE, 4, PIN, a), 4);
	EQ(STAT_DELTA(g->sys, s0, gup_fast_fallback), 0);
	EQ(STAT_DELTA(g->sys, s0, pin_pages), 4);
	for (int i = 0; i < 4; i++) {
		EQ(a[i], b[i]);
		COUNTS(g->sys, a[i], 1 + 1024, 1);
	}
	dmm_unpin_user_pages(g->sys, a, 4);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	/* A coherent page is fine for short-term GUP-fast, too. */
	TO_COHERENT(g, TBASE, 1, 5);
	EQS(dmm_get_user_pages_fast(g->mm, TBASE, 1, PIN | WR, a), 1);
	TRUE(is_coherent(g, a[0]));
	EQ(STAT_DELTA(g->sys, s0, gup_fast_fallback), 0);
	dmm_unpin_user_pages(g->sys, a, 1);
	CHECK_OK(g->sys);
}

/* fast(flags) at addr: returns its result; asserts one fallback. */
static long fast_with_fallback_at(const char *file, int line, struct gfx *g, uint64_t addr, unsigned long n,
				  unsigned int flags, uint64_t *pfns)
{
	struct dmm_stats s0 = stats_at(file, line, g->sys);
	long r = dmm_get_user_pages_fast(g->mm, addr, n, flags, pfns);
	struct dmm_stats s1 = stats_at(file, line, g->sys);

	if (s1.gup_fast_fallback - s0.gup_fast_fallback != 1)
		h_fail(file, line, "gup_fast_fallback went up by %" PRIu64 ", expected 1",
		       s1.gup_fast_fallback - s0.gup_fast_fallback);
	return r;
}
#define FAST_FALLBACK(g, addr, n, flags, pfns) fast_with_fallback_at(__FILE__, __LINE__, g, addr, n, flags, pfns)

static void test_gup_fast_falls_back_where_linux_does(void **state)
{
	struct gfx *g = *state;
	struct dmm_mm *child;
	uint64_t p[4] = { 0 }, q[4] = { 0 }, old, c;
	unsigned long moved;

	MAP_ANON(g->mm, TBASE, 16);
	FILL(g->mm, TBASE, 2 * PG, 1); /* pages 0, 1 */

	/* A hole: the rest of the range goes the slow way. */
	EQS(FAST_FALLBACK(g, TBASE, 4, GET, p), 4);
	EQS(dmm_get_user_pages(g->mm, TBASE, 4, GET, q), 4);
	for (int i = 0; i < 4; i++)
		EQ(p[i], q[i]);
	EQ(p[2], DMM_ZERO_PFN);
	dmm_put_user_pages(g->sys, p, 4);
	dmm_put_user_pages(g->sys, q, 4);
	CHECK_OK(g->sys);

	/* The zero page (special) with a plain read. */
	EQS(FAST_FALLBACK(g, TBASE + 2 * PG, 1, GET, p), 1);
	EQ(p[0], DMM_ZERO_PFN);
	dmm_put_user_pages(g->sys, p, 1);

	/* A read-only entry with FOLL_WRITE (shared after fork). */
	old = PFN(g->mm, TBASE + PG);
	OK(dmm_fork(g->mm, &child));
	EQS(FAST_FALLBACK(g, TBASE + PG, 1, GET | WR, p), 1);
	NE(p[0], old);
	EQ(PFN(g->mm, TBASE + PG), p[0]);
	EQ(PFN(child, TBASE + PG), old);
	dmm_put_user_pages(g->sys, p, 1);
	/* A read-only pin of a shared anon page must be unshared. */
	EQS(FAST_FALLBACK(g, TBASE, 1, PIN, p), 1);
	NE(p[0], PFN(child, TBASE));
	dmm_unpin_user_pages(g->sys, p, 1);
	dmm_mm_exit(child);
	CHECK_OK(g->sys);

	/* A device-private entry. */
	FILL(g->mm, TBASE + 4 * PG, PG, 4);
	OK(testdrv_migrate_to_dev(g->priv, g->mm, TBASE + 4 * PG, 1, &moved));
	EQ(moved, 1);
	EQS(FAST_FALLBACK(g, TBASE + 4 * PG, 1, GET, p), 1);
	EQ(PAGE(g->sys, p[0]).location, DMM_LOC_SYSTEM);
	dmm_put_user_pages(g->sys, p, 1);

	/* PROT_NONE: the slow path refuses too. */
	FILL(g->mm, TBASE + 6 * PG, PG, 6);
	OK(dmm_mprotect(g->mm, TBASE + 6 * PG, PG, DMM_PROT_NONE));
	EXPECT_RC(-EFAULT, FAST_FALLBACK(g, TBASE + 6 * PG, 1, GET, p));
	EXPECT_RC(-EFAULT, dmm_get_user_pages(g->mm, TBASE + 6 * PG, 1, GET, p));

	/* FOLL_PIN|FOLL_LONGTERM of a coherent page. */
	TO_COHERENT(g, TBASE + 8 * PG, 1, 8);
	c = PFN(g->mm, TBASE + 8 * PG);
	EQS(FAST_FALLBACK(g, TBASE + 8 * PG, 1, PIN | LT, p), 1);
	NE(p[0], c);
	EQ(PAGE(g->sys, p[0]).location, DMM_LOC_SYSTEM);
	EQ(PFN(g->mm, TBASE + 8 * PG), p[0]);
	dmm_unpin_user_pages(g->sys, p, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

/* ------------------------------------------------------------------------ */
/* Reliable read-only long-term pins in COW mappings                         */

static uint32_t frame_word(struct gfx *g, uint64_t pfn, unsigned int k)
{
	const uint32_t *w = dmm_page_address(g->sys, pfn);

	assert_non_null(w);
	return w[k];
}

/* The pinned page is an exclusive anonymous page mapped read-only at addr. */
static void unshared_pin_at(const char *file, int line, struct gfx *g, uint64_t addr, uint64_t pfn,
			    uint64_t not_pfn)
{
	struct dmm_pte_info e = pte_at(file, line, g->mm, addr);
	struct dmm_page_info pi = page_at(file, line, g->sys, pfn);

	if (pfn == not_pfn || pfn == DMM_ZERO_PFN)
		h_fail(file, line, "pinned pfn %" PRIu64 " was not unshared", pfn);
	if (e.kind != DMM_PTE_PRESENT || e.pfn != pfn || e.write)
		h_fail(file, line, "entry: %s pfn %" PRIu64 " write %d, expected read-only pfn %" PRIu64,
		       dmm_pte_kind_name(e.kind), e.pfn, e.write, pfn);
	if ((pi.flags & (DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE | DMM_PAGE_PAGECACHE)) !=
	    (DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE))
		h_fail(file, line, "pinned page flags %#x: expected exclusive anonymous", pi.flags);
	if (pi.refcount != 1 + 1024 || pi.mapcount != 1 || pi.pincount != 1)
		h_fail(file, line, "pinned page refcount %" PRIu32 " mapcount %" PRId32 " pincount %" PRIu32,
		       pi.refcount, pi.mapcount, pi.pincount);
}
#define UNSHARED_PIN(g, addr, pfn, not_pfn) unshared_pin_at(__FILE__, __LINE__, g, addr, pfn, not_pfn)

/*
 * A read-only long-term pin of the zero page in a private mapping pins a
 * zero-filled exclusive copy, mapped read-only; a later CPU write reuses it
 * in place, so the pin sees the write. Slow path, and the fast path (which
 * falls back: the zero page's entry is special).
 */
static void test_ro_longterm_pin_of_the_zero_page_sees_later_writes(void **state)
{
	struct gfx *g = *state;
	uint64_t p[3] = { 0 };

	MAP_ANON(g->mm, TBASE, 3);
	EQ(LOAD(g->mm, TBASE), 0);
	EQ(LOAD(g->mm, TBASE + PG), 0);
	EQ(PFN(g->mm, TBASE), DMM_ZERO_PFN);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT, &p[0]), 1);
	EQS(FAST_FALLBACK(g, TBASE + PG, 1, PIN | LT, &p[1]), 1);
	/* No entry yet: fault in the zero page, then unshare it. */
	EQS(dmm_get_user_pages(g->mm, TBASE + 2 * PG, 1, PIN | LT, &p[2]), 1);
	CHECK_OK(g->sys);
	for (int i = 0; i < 3; i++) {
		UNSHARED_PIN(g, PAGE_ADDR(TBASE, i), p[i], DMM_ZERO_PFN);
		EQ(frame_word(g, p[i], 0), 0);
		OK(dmm_store32(g->mm, PAGE_ADDR(TBASE, i), 0x600 + (uint32_t)i));
		CHECK_OK(g->sys);
		EQ(PFN(g->mm, PAGE_ADDR(TBASE, i)), p[i]);
		TRUE(PTE(g->mm, PAGE_ADDR(TBASE, i)).write);
		EQ(frame_word(g, p[i], 0), 0x600 + (uint32_t)i);
	}
	dmm_unpin_user_pages(g->sys, p, 3);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	for (int i = 0; i < 3; i++)
		COUNTS(g->sys, p[i], 1, 1);
}

/*
 * The same for a page-cache page in a private file mapping: the pin gets an
 * exclusive anonymous copy (the file's page is no longer mapped here), and
 * the process's later writes land in it, not in the file.
 */
static void test_ro_longterm_pin_of_a_private_file_page_sees_later_writes(void **state)
{
	struct gfx *g = *state;
	uint64_t c[2], p[2] = { 0 };

	OK(dmm_file_create(g->sys, 2, &g->file));
	FILE_FILL(g->file, 0, 2 * PG, 0x5000);
	MAP_FIXED(g->mm, TBASE, 2 * PG, RW, DMM_MAP_PRIVATE, g->file, 0);
	VERIFY(g->mm, TBASE, 2 * PG, 0x5000);
	c[0] = PFN(g->mm, TBASE);
	c[1] = PFN(g->mm, TBASE + PG);
	FLAGS(PAGE(g->sys, c[0]).flags, DMM_PAGE_PAGECACHE, DMM_PAGE_ANON);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | LT, &p[0]), 1);
	EQS(FAST_FALLBACK(g, TBASE + PG, 1, PIN | LT, &p[1]), 1);
	CHECK_OK(g->sys);
	for (int i = 0; i < 2; i++) {
		UNSHARED_PIN(g, PAGE_ADDR(TBASE, i), p[i], c[i]);
		FRAME_VERIFY(g->sys, p[i], 0x5000 + (uint32_t)i * WORDS_PER_PAGE);
		COUNTS(g->sys, c[i], 1, 0); /* the page cache's reference only */
		OK(dmm_store32(g->mm, PAGE_ADDR(TBASE, i), 0x77));
		CHECK_OK(g->sys);
		EQ(PFN(g->mm, PAGE_ADDR(TBASE, i)), p[i]);
		EQ(frame_word(g, p[i], 0), 0x77);
	}
	FILE_VERIFY(g->file, 0, 2 * PG, 0x5000);
	dmm_unpin_user_pages(g->sys, p, 2);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

/* A private read-only mapping is a COW mapping too: after mprotect to
 * read-write, the write reuses the pinned copy. */
static void test_ro_longterm_pin_in_a_read_only_private_mapping_unshares_too(void **state)
{
	struct gfx *g = *state;
	uint64_t c, p = 0;

	OK(dmm_file_create(g->sys, 1, &g->file));
	FILE_FILL(g->file, 0, PG, 0x6000);
	MAP_FIXED(g->mm, TBASE, PG, DMM_PROT_READ, DMM_MAP_PRIVATE, g->file, 0);
	VERIFY(g->mm, TBASE, PG, 0x6000);
	c = PFN(g->mm, TBASE);
	EQS(FAST_FALLBACK(g, TBASE, 1, PIN | LT, &p), 1);
	CHECK_OK(g->sys);
	UNSHARED_PIN(g, TBASE, p, c);
	OK(dmm_mprotect(g->mm, TBASE, PG, RW));
	OK(dmm_store32(g->mm, TBASE + 8, 0x99));
	EQ(PFN(g->mm, TBASE), p);
	EQ(frame_word(g, p, 2), 0x99);
	dmm_unpin_user_pages(g->sys, &p, 1);
	CHECK_OK(g->sys);
	FILE_VERIFY(g->file, 0, PG, 0x6000);
}

/*
 * What does not unshare: short-term read-only pins and GET references of
 * page-cache pages and the zero page, and read-only long-term pins in
 * shared mappings (file and shmem), on both paths.
 */
static void test_short_term_ro_pins_and_shared_mappings_do_not_unshare(void **state)
{
	struct gfx *g = *state;
	uint64_t c, s, m, p = 0;
	long (*gup[2])(struct dmm_mm *, uint64_t, unsigned long, unsigned int, uint64_t *) = {
		dmm_get_user_pages, dmm_get_user_pages_fast,
	};

	OK(dmm_file_create(g->sys, 2, &g->file));
	FILE_FILL(g->file, 0, 2 * PG, 0x7000);
	MAP_FIXED(g->mm, TBASE, PG, RW, DMM_MAP_PRIVATE, g->file, 0);
	MAP_FIXED(g->mm, TBASE + PG, PG, RW, DMM_MAP_SHARED, g->file, 1);
	MAP_FIXED(g->mm, TBASE + 2 * PG, PG, RW, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(g->mm, TBASE + 3 * PG, PG, RW, ANON_SHARED, NULL, 0);
	EQ(LOAD(g->mm, TBASE), 0x7000);
	EQ(LOAD(g->mm, TBASE + PG), 0x7000 + WORDS_PER_PAGE);
	EQ(LOAD(g->mm, TBASE + 2 * PG), 0);
	OK(dmm_store32(g->mm, TBASE + 3 * PG, 0x33));
	c = PFN(g->mm, TBASE);
	s = PFN(g->mm, TBASE + PG);
	m = PFN(g->mm, TBASE + 3 * PG);
	for (int i = 0; i < 2; i++) {
		EQS(gup[i](g->mm, TBASE, 1, PIN, &p), 1);
		EQ(p, c);
		dmm_unpin_user_pages(g->sys, &p, 1);
		EQS(gup[i](g->mm, TBASE, 1, GET, &p), 1);
		EQ(p, c);
		dmm_put_user_pages(g->sys, &p, 1);
		EQS(gup[i](g->mm, TBASE + 2 * PG, 1, PIN, &p), 1);
		EQ(p, DMM_ZERO_PFN);
		EQS(gup[i](g->mm, TBASE + PG, 1, PIN | LT, &p), 1);
		EQ(p, s);
		dmm_unpin_user_pages(g->sys, &p, 1);
		EQS(gup[i](g->mm, TBASE + 3 * PG, 1, PIN | LT, &p), 1);
		EQ(p, m);
		dmm_unpin_user_pages(g->sys, &p, 1);
		CHECK_OK(g->sys);
		EQ(PFN(g->mm, TBASE), c);
		EQ(PFN(g->mm, TBASE + PG), s);
		EQ(PFN(g->mm, TBASE + 2 * PG), DMM_ZERO_PFN);
		EQ(PFN(g->mm, TBASE + 3 * PG), m);
	}
	/* A shared mapping's pin sees writes anyway: it is the mapped page. */
	EQS(dmm_get_user_pages(g->mm, TBASE + PG, 1, PIN | LT, &p), 1);
	OK(dmm_store32(g->mm, TBASE + PG, 0x44));
	EQ(PFN(g->mm, TBASE + PG), s);
	EQ(frame_word(g, p, 0), 0x44);
	dmm_unpin_user_pages(g->sys, &p, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

static void test_partial_results_return_the_count_taken(void **state)
{
	struct gfx *g = *state;
	uint64_t p[4] = { 0 };

	MAP_ANON(g->mm, TBASE, 4);
	FILL(g->mm, TBASE, 4 * PG, 1);
	OK(dmm_munmap(g->mm, TBASE + 2 * PG, PG));
	EQS(dmm_get_user_pages(g->mm, TBASE, 4, PIN, p), 2);
	dmm_unpin_user_pages(g->sys, p, 2);
	EQS(dmm_get_user_pages_fast(g->mm, TBASE, 4, PIN, p), 2);
	dmm_unpin_user_pages(g->sys, p, 2);
	EQS(dmm_get_user_pages_fast(g->mm, TBASE + PG, 3, GET | WR, p), 1);
	dmm_put_user_pages(g->sys, p, 1);
	/* Nothing taken: the error. */
	EXPECT_RC(-EFAULT, dmm_get_user_pages(g->mm, TBASE + 2 * PG, 2, PIN, p));
	EXPECT_RC(-EFAULT, dmm_get_user_pages_fast(g->mm, TBASE + 2 * PG, 2, PIN, p));
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	for (int i = 0; i < 4; i++)
		if (i != 2)
			COUNTS(g->sys, PFN(g->mm, PAGE_ADDR(TBASE, i)), 1, 1);
}

static void test_pins_taken_equal_pins_released(void **state)
{
	struct gfx *g = *state;
	uint64_t p[8] = { 0 };
	struct dmm_stats s0, s1;

	MAP_ANON(g->mm, TBASE, 8);
	FILL(g->mm, TBASE, 8 * PG, 1);
	s0 = STATS(g->sys);
	EQS(dmm_get_user_pages(g->mm, TBASE, 8, PIN, p), 8);
	EQS(dmm_get_user_pages_fast(g->mm, TBASE, 8, PIN | WR, p), 8);
	s1 = STATS(g->sys);
	EQ(s1.pin_pages - s0.pin_pages, 16);
	EQ(s1.unpin_pages - s0.unpin_pages, 0);
	dmm_unpin_user_pages(g->sys, p, 8);
	dmm_unpin_user_pages(g->sys, p, 8);
	s1 = STATS(g->sys);
	EQ(s1.unpin_pages - s0.unpin_pages, 16);
	PINS_BALANCED(g->sys);
	for (int i = 0; i < 8; i++) {
		COUNTS(g->sys, p[i], 1, 1);
		EQ(PAGE(g->sys, p[i]).pincount, 0);
	}
	CHECK_OK(g->sys);
	/* The zero page is never pinned: nothing counted, nothing to undo. */
	MAP_ANON(g->mm, TBASE + 16 * PG, 1);
	EQ(LOAD(g->mm, TBASE + 16 * PG), 0);
	EQS(dmm_get_user_pages(g->mm, TBASE + 16 * PG, 1, PIN, p), 1);
	EQ(p[0], DMM_ZERO_PFN);
	dmm_unpin_user_pages(g->sys, p, 1);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

/* ------------------------------------------------------------------------ */
/* Pins against migration and fork                                           */

static void test_pinned_and_referenced_pages_are_skipped_by_migration(void **state)
{
	struct gfx *g = *state;
	uint64_t p = 0, q = 0, a, b;
	unsigned long moved;
	struct dmm_stats s0;

	MAP_ANON(g->mm, TBASE, 2);
	FILL(g->mm, TBASE, 2 * PG, 900);
	a = PFN(g->mm, TBASE);
	b = PFN(g->mm, TBASE + PG);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | WR, &p), 1);
	EQS(dmm_get_user_pages(g->mm, TBASE + PG, 1, GET, &q), 1);
	s0 = STATS(g->sys);
	OK(testdrv_migrate_to_dev(g->priv, g->mm, TBASE, 2, &moved));
	EQ(moved, 0);
	CHECK_OK(g->sys);
	EQ(PFN(g->mm, TBASE), a);
	EQ(PFN(g->mm, TBASE + PG), b);
	EQ(PTE(g->mm, TBASE).write, 1);
	EQ(PTE(g->mm, TBASE + PG).write, 1);
	COUNTS(g->sys, a, 1 + 1024, 1);
	COUNTS(g->sys, b, 2, 1);
	EQ(testdrv_used(g->priv), 0);
	/* The referenced page was collected, then restored by the pin check. */
	EQ(STAT_DELTA(g->sys, s0, migrate_restored), 1);
	/* The pin still sees the process's writes. */
	OK(dmm_store32(g->mm, TBASE, 0x5a5a));
	EQ(((uint32_t *)dmm_page_address(g->sys, p))[0], 0x5a5a);
	dmm_unpin_user_pages(g->sys, &p, 1);
	dmm_put_user_pages(g->sys, &q, 1);
	OK(testdrv_migrate_to_dev(g->priv, g->mm, TBASE, 2, &moved));
	EQ(moved, 2);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
	EQ(LOAD(g->mm, TBASE), 0x5a5a);
	VERIFY(g->mm, TBASE + PG, PG, 900 + WORDS_PER_PAGE);
}

static void test_a_maybe_pinned_exclusive_page_is_copied_at_fork(void **state)
{
	struct gfx *g = *state;
	struct dmm_mm *child;
	struct dmm_stats s0;
	uint64_t p = 0, a;

	MAP_ANON(g->mm, TBASE, 1);
	FILL(g->mm, TBASE, PG, 1000);
	a = PFN(g->mm, TBASE);
	EQS(dmm_get_user_pages(g->mm, TBASE, 1, PIN | WR, &p), 1);
	s0 = STATS(g->sys);
	OK(dmm_fork(g->mm, &child));
	CHECK_OK(g->sys);
	EQ(STAT_DELTA(g->sys, s0, fork_page_copied), 1);
	/* The parent keeps its page writable; the child has a copy. */
	EQ(PFN(g->mm, TBASE), a);
	EQ(PTE(g->mm, TBASE).write, 1);
	NE(PFN(child, TBASE), a);
	EQ(PTE(child, TBASE).write, 1);
	COUNTS(g->sys, a, 1 + 1024, 1);
	FLAGS(PAGE(g->sys, a).flags, DMM_PAGE_ANON_EXCLUSIVE, 0);
	VERIFY(child, TBASE, PG, 1000);
	/* Writes after the fork: the pin and the parent stay coherent. */
	OK(dmm_store32(g->mm, TBASE, 1));
	OK(dmm_store32(child, TBASE, 2));
	EQ(((uint32_t *)dmm_page_address(g->sys, p))[0], 1);
	EQ(LOAD(child, TBASE), 2);
	dmm_unpin_user_pages(g->sys, &p, 1);
	dmm_mm_exit(child);
	CHECK_OK(g->sys);
	PINS_BALANCED(g->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, gfx_setup, gfx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_longterm_pin_migrates_a_coherent_page_to_system_memory),
		T(test_longterm_pin_of_a_mixed_range_ends_with_system_pages_only),
		T(test_short_term_pins_and_gets_leave_coherent_pages_on_the_device),
		T(test_longterm_coherent_fail_mode_is_efault_and_pins_nothing),
		T(test_short_term_pin_on_a_coherent_page_makes_longterm_pin_ebusy),
		T(test_longterm_without_pin_is_einval),
		T(test_force_write_to_a_private_read_only_file_mapping_goes_through_cow),
		T(test_force_write_is_refused_on_a_shared_read_only_mapping),
		T(test_writable_longterm_pin_of_a_shared_file_is_efault_but_shmem_is_fine),
		T(test_gup_of_a_device_private_page_migrates_it_back),
		T(test_gup_of_a_device_exclusive_entry_restores_it),
		T(test_gup_fast_matches_the_slow_path_for_present_pages),
		T(test_gup_fast_falls_back_where_linux_does),
		T(test_ro_longterm_pin_of_the_zero_page_sees_later_writes),
		T(test_ro_longterm_pin_of_a_private_file_page_sees_later_writes),
		T(test_ro_longterm_pin_in_a_read_only_private_mapping_unshares_too),
		T(test_short_term_ro_pins_and_shared_mappings_do_not_unshare),
		T(test_partial_results_return_the_count_taken),
		T(test_pins_taken_equal_pins_released),
		T(test_pinned_and_referenced_pages_are_skipped_by_migration),
		T(test_a_maybe_pinned_exclusive_page_is_copied_at_fork),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
