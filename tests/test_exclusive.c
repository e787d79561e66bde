/* SPDX-License-Identifier: MIT */
/*
 * dmm_make_device_exclusive (semantics.md §3.15) and the ways exclusivity
 * ends (§3.1 device-exclusive fault steps, §3.3 fork, §3.4 zap, §3.5
 * mprotect, §5.3 item 8 migration): the entry that replaces the present
 * one keeps rmap, refcount, mapcount and rss; which memory is refused;
 * what is faulted in first; and every revocation path.
 */
#include "helpers.h"
#include "testdrv.h"

#define DEV_PAGES 16

struct xfx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct testdrv *priv, *coh;
	struct dmm_file *file;
	uint64_t locked_pfn; /* a page a failing test left locked */
};

static int xfx_setup(void **state)
{
	struct xfx *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	x->sys = sys_new(4096);
	if (!x->sys || dmm_mm_create(x->sys, &x->mm) ||
	    testdrv_create(x->sys, DMM_MEMORY_DEVICE_PRIVATE, DEV_PAGES, &x->priv) ||
	    testdrv_create(x->sys, DMM_MEMORY_DEVICE_COHERENT, DEV_PAGES, &x->coh)) {
		if (x->sys)
			dmm_system_destroy(x->sys);
		free(x);
		return -1;
	}
	*state = x;
	return 0;
}

static int xfx_teardown(void **state)
{
	struct xfx *x = *state;

	if (x->locked_pfn) {
		dmm_unlock_page(x->sys, x->locked_pfn);
		dmm_put_page(x->sys, x->locked_pfn);
	}
	if (x->file)
		dmm_file_put(x->file);
	dmm_system_destroy(x->sys);
	testdrv_free(x->priv);
	testdrv_free(x->coh);
	free(x);
	return 0;
}

/* make_device_exclusive with the mmap_lock held for read; the page stays
 * locked and referenced (x->locked_pfn) until excl_done. */
static int excl_keep(struct xfx *x, struct dmm_mm *mm, uint64_t addr, void *owner, uint64_t *pfn)
{
	int r;

	*pfn = 0;
	dmm_mmap_read_lock(mm);
	r = dmm_make_device_exclusive(mm, addr, owner, pfn);
	dmm_mmap_read_unlock(mm);
	if (!r)
		x->locked_pfn = *pfn;
	return r;
}

static void excl_done(struct xfx *x, uint64_t pfn)
{
	dmm_unlock_page(x->sys, pfn);
	dmm_put_page(x->sys, pfn);
	x->locked_pfn = 0;
}

/* The whole sequence: returns the page that is now exclusive. */
static uint64_t excl_at(const char *file, int line, struct xfx *x, struct dmm_mm *mm, uint64_t addr)
{
	uint64_t pfn;
	int r = excl_keep(x, mm, addr, x, &pfn);

	if (r)
		h_fail(file, line, "dmm_make_device_exclusive(%#" PRIx64 ") = %d (%s)", addr, r, errname(r));
	excl_done(x, pfn);
	return pfn;
}
#define EXCL(x, mm, addr) excl_at(__FILE__, __LINE__, x, mm, addr)

static void exclusive_entry_at(const char *file, int line, struct dmm_mm *mm, uint64_t addr, uint64_t pfn)
{
	struct dmm_pte_info p = pte_at(file, line, mm, addr);

	if (p.kind != DMM_PTE_DEVICE_EXCLUSIVE || p.pfn != pfn)
		h_fail(file, line, "pte at %#" PRIx64 " is %s pfn %" PRIu64 ", expected dev-exclusive pfn %" PRIu64,
		       addr, dmm_pte_kind_name(p.kind), p.pfn, pfn);
}
#define EXCLUSIVE_ENTRY(mm, addr, pfn) exclusive_entry_at(__FILE__, __LINE__, mm, addr, pfn)

/* ------------------------------------------------------------------------ */

static void test_exclusive_entry_keeps_rmap_refcount_mapcount_and_rss(void **state)
{
	struct xfx *x = *state;
	struct dmm_page_info before, during, after;
	struct dmm_stats s0;
	uint64_t pfn, got;
	long rss;

	MAP_ANON(x->mm, TBASE, 2);
	FILL(x->mm, TBASE, 2 * PG, 1);
	pfn = PFN(x->mm, TBASE);
	before = PAGE(x->sys, pfn);
	rss = dmm_mm_rss(x->mm, DMM_MM_ANONPAGES);
	s0 = STATS(x->sys);
	OK(excl_keep(x, x->mm, TBASE, x, &got));
	EQ(got, pfn);
	/* Returned locked, with the GUP reference. */
	during = PAGE(x->sys, pfn);
	FLAGS(during.flags, DMM_PAGE_LOCKED | DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	EQ(during.refcount, before.refcount + 1);
	EQS(during.mapcount, before.mapcount);
	EXCLUSIVE_ENTRY(x->mm, TBASE, pfn);
	TRUE(PTE(x->mm, TBASE).write);
	excl_done(x, got);
	CHECK_OK(x->sys);
	after = PAGE(x->sys, pfn);
	EQ(after.refcount, before.refcount);
	EQS(after.mapcount, before.mapcount);
	EQ(after.refcount, 1);
	EQS(after.mapcount, 1);
	EQ(after.pincount, 0);
	/* The dirty PTE was propagated to the page. */
	FLAGS(after.flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE | DMM_PAGE_DIRTY, DMM_PAGE_LOCKED);
	EQ(after.location, DMM_LOC_SYSTEM);
	EQS(dmm_mm_rss(x->mm, DMM_MM_ANONPAGES), rss);
	EQ(STAT_DELTA(x->sys, s0, exclusive_made), 1);
	EQ(STAT_DELTA(x->sys, s0, exclusive_restored), 0);
	/* The neighbour is untouched. */
	EQ(PTE(x->mm, TBASE + PG).kind, DMM_PTE_PRESENT);
	EQ(PTE(x->mm, TBASE + PG).write, 1);
	/* Any address inside the page works. */
	EXCLUSIVE_ENTRY(x->mm, TBASE + 100, pfn);
	got = EXCL(x, x->mm, TBASE + PG + 12);
	EXCLUSIVE_ENTRY(x->mm, TBASE + PG, got);
	CHECK_OK(x->sys);
}

static void test_rejects_null_arguments(void **state)
{
	struct xfx *x = *state;
	uint64_t pfn;

	MAP_ANON(x->mm, TBASE, 1);
	EXPECT_RC(-EINVAL, dmm_make_device_exclusive(NULL, TBASE, x, &pfn));
	dmm_mmap_read_lock(x->mm);
	EXPECT_RC(-EINVAL, dmm_make_device_exclusive(x->mm, TBASE, x, NULL));
	dmm_mmap_read_unlock(x->mm);
	PTE_NONE(x->mm, TBASE);
	CHECK_OK(x->sys);
}

static void test_shmem_and_file_pages_are_eopnotsupp(void **state)
{
	struct xfx *x = *state;
	uint64_t sh = TBASE, fs = TBASE + 16 * PG, fp = TBASE + 32 * PG, pfn, spfn;
	struct dmm_stats s0 = STATS(x->sys);

	MAP_FIXED(x->mm, sh, PG, RW, ANON_SHARED, NULL, 0);
	FILL(x->mm, sh, PG, 1);
	spfn = PFN(x->mm, sh);
	COUNTS(x->sys, spfn, 2, 1); /* the shmem page cache + the mapping */
	EXPECT_RC(-EOPNOTSUPP, excl_keep(x, x->mm, sh, x, &pfn));
	COUNTS(x->sys, spfn, 2, 1);
	FLAGS(PAGE(x->sys, spfn).flags, 0, DMM_PAGE_LOCKED);
	EQ(PTE(x->mm, sh).kind, DMM_PTE_PRESENT);
	CHECK_OK(x->sys);

	OK(dmm_file_create(x->sys, 2, &x->file));
	FILE_FILL(x->file, 0, 2 * PG, 2);
	MAP_FIXED(x->mm, fs, 2 * PG, RW, DMM_MAP_SHARED, x->file, 0);
	EXPECT_RC(-EOPNOTSUPP, excl_keep(x, x->mm, fs, x, &pfn));
	spfn = PFN(x->mm, fs);
	COUNTS(x->sys, spfn, 2, 1);
	EQ(PTE(x->mm, fs).kind, DMM_PTE_PRESENT);
	CHECK_OK(x->sys);
	/* A read-only shared file mapping: not writable, -EFAULT first. */
	OK(dmm_mprotect(x->mm, fs + PG, PG, DMM_PROT_READ));
	EXPECT_RC(-EFAULT, excl_keep(x, x->mm, fs + PG, x, &pfn));
	EQ(STAT_DELTA(x->sys, s0, exclusive_made), 0);

	/* A private file mapping: the write fault copies the page into
	 * anonymous memory, which can be made exclusive. */
	MAP_FIXED(x->mm, fp, PG, RW, DMM_MAP_PRIVATE, x->file, 1);
	pfn = EXCL(x, x->mm, fp);
	EXCLUSIVE_ENTRY(x->mm, fp, pfn);
	FLAGS(PAGE(x->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_PAGECACHE);
	CHECK_OK(x->sys);
	VERIFY(x->mm, fp, PG, 2 + WORDS_PER_PAGE);
	EQ(PFN(x->mm, fp), pfn);
	FILE_VERIFY(x->file, 0, 2 * PG, 2);
	CHECK_OK(x->sys);
}

static void test_read_only_vma_and_no_vma_are_efault(void **state)
{
	struct xfx *x = *state;
	uint64_t pfn;

	MAP_FIXED(x->mm, TBASE, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	MAP_FIXED(x->mm, TBASE + 4 * PG, PG, DMM_PROT_NONE, ANON_PRIVATE, NULL, 0);
	EQ(LOAD(x->mm, TBASE + PG), 0);
	EXPECT_RC(-EFAULT, excl_keep(x, x->mm, TBASE, x, &pfn));
	EXPECT_RC(-EFAULT, excl_keep(x, x->mm, TBASE + PG, x, &pfn));
	EXPECT_RC(-EFAULT, excl_keep(x, x->mm, TBASE + 2 * PG, x, &pfn)); /* no VMA */
	EXPECT_RC(-EFAULT, excl_keep(x, x->mm, TBASE + 4 * PG, x, &pfn)); /* PROT_NONE */
	PTE_NONE(x->mm, TBASE);
	EQ(PTE(x->mm, TBASE + PG).pfn, DMM_ZERO_PFN);
	PTE_NONE(x->mm, TBASE + 4 * PG);
	CHECK_OK(x->sys);
}

static void test_a_hole_and_the_zero_page_are_faulted_in_writable_first(void **state)
{
	struct xfx *x = *state;
	uint64_t a, b;

	MAP_ANON(x->mm, TBASE, 2);
	EQ(LOAD(x->mm, TBASE + PG), 0);
	a = EXCL(x, x->mm, TBASE);
	b = EXCL(x, x->mm, TBASE + PG);
	NE(a, DMM_ZERO_PFN);
	NE(b, DMM_ZERO_PFN);
	EXCLUSIVE_ENTRY(x->mm, TBASE, a);
	EXCLUSIVE_ENTRY(x->mm, TBASE + PG, b);
	COUNTS(x->sys, a, 1, 1);
	COUNTS(x->sys, b, 1, 1);
	EQS(dmm_mm_rss(x->mm, DMM_MM_ANONPAGES), 2);
	CHECK_OK(x->sys);
	VERIFY_ZERO(x->mm, TBASE, 2 * PG);
	EQ(PFN(x->mm, TBASE), a);
	EQ(PFN(x->mm, TBASE + PG), b);
	CHECK_OK(x->sys);
}

static void test_a_read_only_page_after_fork_has_its_cow_broken_first(void **state)
{
	struct xfx *x = *state;
	struct dmm_mm *child;
	struct dmm_stats s0;
	uint64_t old, pfn;

	MAP_ANON(x->mm, TBASE, 1);
	FILL(x->mm, TBASE, PG, 3);
	old = PFN(x->mm, TBASE);
	OK(dmm_fork(x->mm, &child));
	COUNTS(x->sys, old, 2, 2);
	s0 = STATS(x->sys);
	pfn = EXCL(x, x->mm, TBASE);
	CHECK_OK(x->sys);
	NE(pfn, old);
	EQ(STAT_DELTA(x->sys, s0, cow_copy), 1);
	EXCLUSIVE_ENTRY(x->mm, TBASE, pfn);
	COUNTS(x->sys, pfn, 1, 1);
	COUNTS(x->sys, old, 1, 1);
	EQ(PFN(child, TBASE), old);
	VERIFY(child, TBASE, PG, 3);
	VERIFY(x->mm, TBASE, PG, 3);
	EQ(PFN(x->mm, TBASE), pfn);
	dmm_mm_exit(child);
	CHECK_OK(x->sys);
}

static void test_a_device_private_page_is_migrated_back_first(void **state)
{
	struct xfx *x = *state;
	unsigned long moved;
	uint64_t pfn;

	MAP_ANON(x->mm, TBASE, 1);
	FILL(x->mm, TBASE, PG, 4);
	OK(testdrv_migrate_to_dev(x->priv, x->mm, TBASE, 1, &moved));
	EQ(moved, 1);
	EQ(PTE(x->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	pfn = EXCL(x, x->mm, TBASE);
	CHECK_OK(x->sys);
	EQ(atomic_load(&x->priv->faults), 1);
	EQ(testdrv_used(x->priv), 0);
	EQ(PAGE(x->sys, pfn).location, DMM_LOC_SYSTEM);
	EXCLUSIVE_ENTRY(x->mm, TBASE, pfn);
	VERIFY(x->mm, TBASE, PG, 4);
	CHECK_OK(x->sys);
}

static void test_a_device_coherent_page_can_be_made_exclusive(void **state)
{
	struct xfx *x = *state;
	unsigned long moved;
	uint64_t c, pfn;

	MAP_ANON(x->mm, TBASE, 1);
	FILL(x->mm, TBASE, PG, 5);
	OK(testdrv_migrate_to_dev(x->coh, x->mm, TBASE, 1, &moved));
	EQ(moved, 1);
	c = PFN(x->mm, TBASE);
	EQ(PAGE(x->sys, c).location, DMM_LOC_DEVICE_COHERENT);
	pfn = EXCL(x, x->mm, TBASE);
	CHECK_OK(x->sys);
	EQ(pfn, c);
	EXCLUSIVE_ENTRY(x->mm, TBASE, c);
	COUNTS(x->sys, c, 1, 1);
	EQ(testdrv_used(x->coh), 1);
	/* The CPU gets the same coherent page back. */
	VERIFY(x->mm, TBASE, PG, 5);
	EQ(PFN(x->mm, TBASE), c);
	EQ(PTE(x->mm, TBASE).write, 1);
	CHECK_OK(x->sys);
}

static void test_cpu_read_and_write_restore_the_same_page(void **state)
{
	struct xfx *x = *state;
	struct dmm_stats s0;
	struct dmm_pte_info p;
	uint64_t a, b;

	MAP_ANON(x->mm, TBASE, 2);
	FILL(x->mm, TBASE, 2 * PG, 6);
	a = EXCL(x, x->mm, TBASE);
	b = EXCL(x, x->mm, TBASE + PG);
	s0 = STATS(x->sys);
	EQ(LOAD(x->mm, TBASE + 8), 6 + 2);
	CHECK_OK(x->sys);
	p = PTE(x->mm, TBASE);
	EQ(p.kind, DMM_PTE_PRESENT);
	EQ(p.pfn, a);
	EQ(p.write, 1); /* exclusive anon in a writable VMA */
	EQ(p.dirty, 1); /* the page is dirty */
	EQ(STAT_DELTA(x->sys, s0, exclusive_restored), 1);
	COUNTS(x->sys, a, 1, 1);
	OK(dmm_store32(x->mm, TBASE + PG, 0xfeed));
	CHECK_OK(x->sys);
	p = PTE(x->mm, TBASE + PG);
	EQ(p.kind, DMM_PTE_PRESENT);
	EQ(p.pfn, b);
	EQ(p.write, 1);
	EQ(STAT_DELTA(x->sys, s0, exclusive_restored), 2);
	EQ(STAT_DELTA(x->sys, s0, cow_copy), 0);
	EQ(LOAD(x->mm, TBASE + PG), 0xfeed);
	VERIFY(x->mm, TBASE, PG, 6);
	FLAGS(PAGE(x->sys, b).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	CHECK_OK(x->sys);
}

static void test_making_it_exclusive_again_restores_and_reinstalls(void **state)
{
	struct xfx *x = *state;
	struct dmm_stats s0;
	uint64_t a, b;

	MAP_ANON(x->mm, TBASE, 1);
	FILL(x->mm, TBASE, PG, 7);
	a = EXCL(x, x->mm, TBASE);
	s0 = STATS(x->sys);
	b = EXCL(x, x->mm, TBASE);
	EQ(b, a);
	EXCLUSIVE_ENTRY(x->mm, TBASE, a);
	EQ(STAT_DELTA(x->sys, s0, exclusive_restored), 1);
	EQ(STAT_DELTA(x->sys, s0, exclusive_made), 1);
	COUNTS(x->sys, a, 1, 1);
	CHECK_OK(x->sys);
}

static void test_gup_restores_it_old(void **state)
{
	struct xfx *x = *state;
	uint64_t a, got[2];

	MAP_ANON(x->mm, TBASE, 2);
	FILL(x->mm, TBASE, 2 * PG, 8);
	a = EXCL(x, x->mm, TBASE);
	EQS(dmm_get_user_pages(x->mm, TBASE, 1, DMM_FOLL_GET, got), 1);
	EQ(got[0], a);
	EQ(PTE(x->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(x->mm, TBASE).pfn, a);
	EQ(PTE(x->mm, TBASE).young, 0); /* restored old; GUP is no access */
	EQ(PTE(x->mm, TBASE).write, 1);
	COUNTS(x->sys, a, 2, 1);
	dmm_put_user_pages(x->sys, got, 1);
	CHECK_OK(x->sys);
	/* The fast variant falls back and restores too. */
	a = EXCL(x, x->mm, TBASE + PG);
	EQS(dmm_get_user_pages_fast(x->mm, TBASE + PG, 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, got), 1);
	EQ(got[0], a);
	EQ(PTE(x->mm, TBASE + PG).kind, DMM_PTE_PRESENT);
	COUNTS(x->sys, a, 1 + 1024, 1);
	dmm_unpin_user_pages(x->sys, got, 1);
	CHECK_OK(x->sys);
	VERIFY(x->mm, TBASE, 2 * PG, 8);
}

static void test_mprotect_leaves_it_and_the_later_restore_is_read_only(void **state)
{
	struct xfx *x = *state;
	uint64_t a;

	MAP_ANON(x->mm, TBASE, 2);
	FILL(x->mm, TBASE, 2 * PG, 9);
	a = EXCL(x, x->mm, TBASE);
	OK(dmm_mprotect(x->mm, TBASE, 2 * PG, DMM_PROT_READ));
	CHECK_OK(x->sys);
	EXCLUSIVE_ENTRY(x->mm, TBASE, a);
	EQ(PTE(x->mm, TBASE + PG).write, 0);
	EQ(LOAD(x->mm, TBASE), 9);
	EQ(PTE(x->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(x->mm, TBASE).pfn, a);
	EQ(PTE(x->mm, TBASE).write, 0);
	EXPECT_RC(-EFAULT, dmm_store32(x->mm, TBASE, 1));
	CHECK_OK(x->sys);
	/* Writable again: the same page, reused. */
	OK(dmm_mprotect(x->mm, TBASE, 2 * PG, RW));
	OK(dmm_store32(x->mm, TBASE, 1));
	EQ(PFN(x->mm, TBASE), a);
	EQ(LOAD(x->mm, TBASE), 1);
	CHECK_OK(x->sys);
}

static void test_munmap_and_dontneed_zap_it_cleanly(void **state)
{
	struct xfx *x = *state;
	uint64_t a, b, free0;

	MAP_ANON(x->mm, TBASE, 2);
	FILL(x->mm, TBASE, 2 * PG, 10);
	free0 = dmm_system_nr_free(x->sys);
	OK(excl_keep(x, x->mm, TBASE, x, &a));
	dmm_unlock_page(x->sys, a);
	/* Zapped while the driver still holds its reference. */
	OK(dmm_munmap(x->mm, TBASE, PG));
	COUNTS(x->sys, a, 1, 0);
	EQS(dmm_mm_rss(x->mm, DMM_MM_ANONPAGES), 1);
	dmm_put_page(x->sys, a);
	x->locked_pfn = 0;
	CHECK_OK(x->sys);
	FLAGS(PAGE(x->sys, a).flags, DMM_PAGE_FREE, DMM_PAGE_ANON);
	EQ(dmm_system_nr_free(x->sys), free0 + 1);

	b = EXCL(x, x->mm, TBASE + PG);
	OK(dmm_madvise(x->mm, TBASE + PG, PG, DMM_MADV_DONTNEED));
	CHECK_OK(x->sys);
	PTE_NONE(x->mm, TBASE + PG);
	FLAGS(PAGE(x->sys, b).flags, DMM_PAGE_FREE, 0);
	EQS(dmm_mm_rss(x->mm, DMM_MM_ANONPAGES), 0);
	EQ(dmm_system_nr_free(x->sys), free0 + 2);
	VERIFY_ZERO(x->mm, TBASE + PG, PG);
	CHECK_OK(x->sys);
}

static void test_fork_restores_it_and_both_share_it_read_only(void **state)
{
	struct xfx *x = *state;
	struct dmm_mm *child;
	struct dmm_stats s0;
	uint64_t a;

	MAP_ANON(x->mm, TBASE, 1);
	FILL(x->mm, TBASE, PG, 11);
	a = EXCL(x, x->mm, TBASE);
	s0 = STATS(x->sys);
	OK(dmm_fork(x->mm, &child));
	CHECK_OK(x->sys);
	EQ(STAT_DELTA(x->sys, s0, exclusive_restored), 1);
	EQ(STAT_DELTA(x->sys, s0, fork_page_copied), 0);
	EQ(PTE(x->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(x->mm, TBASE).pfn, a);
	EQ(PTE(x->mm, TBASE).write, 0);
	EQ(PTE(child, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(child, TBASE).pfn, a);
	EQ(PTE(child, TBASE).write, 0);
	COUNTS(x->sys, a, 2, 2);
	FLAGS(PAGE(x->sys, a).flags, DMM_PAGE_ANON, DMM_PAGE_ANON_EXCLUSIVE);
	VERIFY(x->mm, TBASE, PG, 11);
	VERIFY(child, TBASE, PG, 11);
	OK(dmm_store32(child, TBASE, 0));
	NE(PFN(child, TBASE), a);
	VERIFY(x->mm, TBASE, PG, 11);
	dmm_mm_exit(child);
	CHECK_OK(x->sys);
}

static void test_fork_fails_with_enomem_while_the_page_is_locked(void **state)
{
	struct xfx *x = *state;
	struct dmm_mm *child = NULL;
	struct dmm_stats s0;
	uint64_t a, other;

	MAP_ANON(x->mm, TBASE, 2);
	FILL(x->mm, TBASE, 2 * PG, 12);
	other = PFN(x->mm, TBASE + PG);
	s0 = STATS(x->sys);
	OK(excl_keep(x, x->mm, TBASE, x, &a)); /* the driver is still programming */
	EXPECT_RC(-ENOMEM, dmm_fork(x->mm, &child));
	EQ(child, 0);
	EQ(STAT_DELTA(x->sys, s0, fork_failed), 1);
	EQ(STAT_DELTA(x->sys, s0, fork), 0);
	EXCLUSIVE_ENTRY(x->mm, TBASE, a);
	excl_done(x, a);
	CHECK_OK(x->sys);
	/* The parent is unchanged and the page still exclusive. */
	EXCLUSIVE_ENTRY(x->mm, TBASE, a);
	COUNTS(x->sys, a, 1, 1);
	COUNTS(x->sys, other, 1, 1);
	VERIFY(x->mm, TBASE + PG, PG, 12 + WORDS_PER_PAGE);
	/* Unlocked, the fork goes through and restores it. */
	OK(dmm_fork(x->mm, &child));
	EQ(PTE(x->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PTE(x->mm, TBASE).pfn, a);
	VERIFY(child, TBASE, 2 * PG, 12);
	dmm_mm_exit(child);
	CHECK_OK(x->sys);
}

static void test_migrate_vma_skips_exclusive_entries(void **state)
{
	struct xfx *x = *state;
	unsigned long moved;
	uint64_t a;

	MAP_ANON(x->mm, TBASE, 3);
	FILL(x->mm, TBASE, 3 * PG, 13);
	a = EXCL(x, x->mm, TBASE + PG);
	OK(testdrv_migrate_to_dev(x->priv, x->mm, TBASE + PG, 1, &moved));
	EQ(moved, 0);
	CHECK_OK(x->sys);
	EXCLUSIVE_ENTRY(x->mm, TBASE + PG, a);
	EQ(testdrv_used(x->priv), 0);
	/* Its neighbours move; it stays. */
	OK(testdrv_migrate_to_dev(x->priv, x->mm, TBASE, 3, &moved));
	EQ(moved, 2);
	CHECK_OK(x->sys);
	EXCLUSIVE_ENTRY(x->mm, TBASE + PG, a);
	EQ(PTE(x->mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	EQ(PTE(x->mm, TBASE + 2 * PG).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	VERIFY(x->mm, TBASE, 3 * PG, 13);
	CHECK_OK(x->sys);
}

static void test_eviction_converts_an_exclusive_coherent_page(void **state)
{
	struct xfx *x = *state;
	unsigned long moved;
	uint64_t c, a;

	MAP_ANON(x->mm, TBASE, 1);
	FILL(x->mm, TBASE, PG, 14);
	OK(testdrv_migrate_to_dev(x->coh, x->mm, TBASE, 1, &moved));
	EQ(moved, 1);
	c = PFN(x->mm, TBASE);
	a = EXCL(x, x->mm, TBASE);
	EQ(a, c);
	/* migrate_vma selects no exclusive entry ... */
	OK(testdrv_migrate_to_sys(x->coh, x->mm, TBASE, 1, &moved));
	EQ(moved, 0);
	EXCLUSIVE_ENTRY(x->mm, TBASE, c);
	/* ... but the driver's eviction (try_to_migrate) converts it. */
	testdrv_evict_all(x->coh);
	CHECK_OK(x->sys);
	EQ(testdrv_used(x->coh), 0);
	EQ(PTE(x->mm, TBASE).kind, DMM_PTE_PRESENT);
	NE(PTE(x->mm, TBASE).pfn, c);
	EQ(PAGE(x->sys, PTE(x->mm, TBASE).pfn).location, DMM_LOC_SYSTEM);
	EQ(PTE(x->mm, TBASE).write, 1);
	COUNTS(x->sys, PTE(x->mm, TBASE).pfn, 1, 1);
	VERIFY(x->mm, TBASE, PG, 14);
	CHECK_OK(x->sys);
}

static void test_mremap_moves_the_exclusive_entry_verbatim(void **state)
{
	struct xfx *x = *state;
	uint64_t a, to = TBASE + 64 * PG;

	MAP_ANON(x->mm, TBASE, 1);
	FILL(x->mm, TBASE, PG, 15);
	a = EXCL(x, x->mm, TBASE);
	OK(dmm_mremap(x->mm, TBASE, PG, PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, to));
	CHECK_OK(x->sys);
	EXCLUSIVE_ENTRY(x->mm, to, a);
	COUNTS(x->sys, a, 1, 1);
	VERIFY(x->mm, to, PG, 15);
	EQ(PFN(x->mm, to), a);
	CHECK_OK(x->sys);
}

static void test_exit_releases_an_exclusive_page(void **state)
{
	struct xfx *x = *state;
	struct dmm_mm *mm2;
	uint64_t a, free0;

	OK(dmm_mm_create(x->sys, &mm2));
	MAP_ANON(mm2, TBASE, 1);
	free0 = dmm_system_nr_free(x->sys);
	a = EXCL(x, mm2, TBASE);
	EQ(dmm_system_nr_free(x->sys), free0 - 1);
	dmm_mm_exit(mm2);
	CHECK_OK(x->sys);
	FLAGS(PAGE(x->sys, a).flags, DMM_PAGE_FREE, 0);
	EQ(dmm_system_nr_free(x->sys), free0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, xfx_setup, xfx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_exclusive_entry_keeps_rmap_refcount_mapcount_and_rss),
		T(test_rejects_null_arguments),
		T(test_shmem_and_file_pages_are_eopnotsupp),
		T(test_read_only_vma_and_no_vma_are_efault),
		T(test_a_hole_and_the_zero_page_are_faulted_in_writable_first),
		T(test_a_read_only_page_after_fork_has_its_cow_broken_first),
		T(test_a_device_private_page_is_migrated_back_first),
		T(test_a_device_coherent_page_can_be_made_exclusive),
		T(test_cpu_read_and_write_restore_the_same_page),
		T(test_making_it_exclusive_again_restores_and_reinstalls),
		T(test_gup_restores_it_old),
		T(test_mprotect_leaves_it_and_the_later_restore_is_read_only),
		T(test_munmap_and_dontneed_zap_it_cleanly),
		T(test_fork_restores_it_and_both_share_it_read_only),
		T(test_fork_fails_with_enomem_while_the_page_is_locked),
		T(test_migrate_vma_skips_exclusive_entries),
		T(test_eviction_converts_an_exclusive_coherent_page),
		T(test_mremap_moves_the_exclusive_entry_verbatim),
		T(test_exit_releases_an_exclusive_page),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
