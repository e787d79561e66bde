/* SPDX-License-Identifier: MIT */
/*
 * MADV_FREE is not a zap (semantics.md §3.4, madvise_free_pte_range): it
 * lazily frees exclusively mapped anonymous system pages (devmm at once,
 * as reclaim would) and leaves everything else alone: device-private,
 * device-exclusive and migration entries, device-coherent pages, the zero
 * page, pages another process still maps. So device-resident data
 * survives it. A file or shared mapping in the range fails with EINVAL.
 */
#include "device_helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "internal.h"

/* Device pages (private entries, or coherent pages) survive MADV_FREE. */
static void test_madvise_free_leaves_device_pages_alone(void **state)
{
	struct dfx *d = *state;
	uint64_t dev[3];

	MAP_ANON(d->mm, TBASE, 4);
	FILL(d->mm, TBASE, 4 * PG, 0x700);
	TO_DEV(d, d->mm, TBASE, 3, 3);
	for (int i = 0; i < 3; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	OK(dmm_madvise(d->mm, TBASE, 4 * PG, DMM_MADV_FREE));
	CHECK_OK(d->sys);
	for (int i = 0; i < 3; i++) {
		EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true), dev[i]);
		DEV_VERIFY(d->drv, dev[i], PSEED_OF(0x700, i));
	}
	/* The system page beside them was freed. */
	PTE_NONE(d->mm, PAGE_ADDR(TBASE, 3));
	VERIFY(d->mm, TBASE, 3 * PG, 0x700);
	VERIFY_ZERO(d->mm, PAGE_ADDR(TBASE, 3), PG);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* A device-exclusive entry survives MADV_FREE, and so does its page. */
static void test_madvise_free_leaves_device_exclusive_entries_alone(void **state)
{
	struct dfx *d = *state;
	uint64_t pfn = 0;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0x800);
	dmm_mmap_read_lock(d->mm);
	OK(dmm_make_device_exclusive(d->mm, TBASE, d, &pfn));
	dmm_mmap_read_unlock(d->mm);
	dmm_unlock_page(d->sys, pfn);
	dmm_put_page(d->sys, pfn);
	EQ(KIND(d->mm, TBASE), DMM_PTE_DEVICE_EXCLUSIVE);
	OK(dmm_madvise(d->mm, TBASE, PG, DMM_MADV_FREE));
	CHECK_OK(d->sys);
	EQ(KIND(d->mm, TBASE), DMM_PTE_DEVICE_EXCLUSIVE);
	EQ(PTE(d->mm, TBASE).pfn, pfn);
	VERIFY(d->mm, TBASE, PG, 0x800);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* Another thread of the process: MADV_FREE over the range while the
 * migration holds its mmap_lock, and the entry kinds it leaves. */
struct free_during_migration {
	struct dmm_mm *mm;
	int r;
	enum dmm_pte_kind kind[2];
};

static void *free_during_migration(void *arg)
{
	struct free_during_migration *t = arg;

	t->r = dmm_madvise(t->mm, TBASE, 2 * PG, DMM_MADV_FREE);
	for (int i = 0; i < 2; i++)
		t->kind[i] = PTE(t->mm, PAGE_ADDR(TBASE, i)).kind;
	return NULL;
}

/* A migration entry survives MADV_FREE: the migration then completes (or,
 * here, is given up) and the data is where it was. */
static void test_madvise_free_leaves_migration_entries_alone(void **state)
{
	struct dfx *d = *state;
	uint64_t src[2] = { 0 }, dst[2] = { 0 };
	struct dmm_migrate_vma m = {
		.mm = d->mm, .start = TBASE, .end = PAGE_ADDR(TBASE, 2), .src = src, .dst = dst,
		.pgmap_owner = d, .flags = DMM_MIGRATE_VMA_SELECT_SYSTEM,
	};
	struct free_during_migration t = { .mm = d->mm };
	pthread_t th;

	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0x900);
	dmm_mmap_read_lock(d->mm);
	OK(dmm_migrate_vma_setup(&m));
	EQ(m.cpages, 2);
	EQ(pthread_create(&th, NULL, free_during_migration, &t), 0);
	EQ(pthread_join(th, NULL), 0);
	OK(t.r);
	EQ(t.kind[0], DMM_PTE_MIGRATION_WRITE);
	EQ(t.kind[1], DMM_PTE_MIGRATION_WRITE);
	dmm_migrate_vma_pages(&m);
	dmm_migrate_vma_finalize(&m);
	dmm_mmap_read_unlock(d->mm);
	CHECK_OK(d->sys);
	EQ(KIND(d->mm, TBASE), DMM_PTE_PRESENT);
	VERIFY(d->mm, TBASE, 2 * PG, 0x900);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* A page another process still maps is not lazily freed (Linux skips a
 * folio mapped more than once); the zero page is left alone. */
static void test_madvise_free_keeps_pages_shared_with_a_child(void **state)
{
	struct fx *f = *state;
	struct dmm_mm *child = NULL;
	uint64_t pfn;

	MAP_ANON(f->mm, TBASE, 3);
	FILL(f->mm, TBASE, 2 * PG, 0xa00);
	(void)LOAD(f->mm, PAGE_ADDR(TBASE, 2));
	pfn = PFN(f->mm, TBASE);
	OK(dmm_fork(f->mm, &child));
	FILL(f->mm, PAGE_ADDR(TBASE, 1), PG, 0xb00); /* CoW: exclusive again */
	OK(dmm_madvise(f->mm, TBASE, 3 * PG, DMM_MADV_FREE));
	CHECK_OK(f->sys);
	EQ(PFN(f->mm, TBASE), pfn);
	VERIFY(f->mm, TBASE, PG, 0xa00);
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 1));
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 1), PG);
	EQ(PTE(f->mm, PAGE_ADDR(TBASE, 2)).kind, DMM_PTE_PRESENT);
	VERIFY(child, TBASE, 2 * PG, 0xa00);
	dmm_mm_exit(child);
	CHECK_OK(f->sys);
}

/* A file or shared mapping: EINVAL, and the VMAs before it are advised. */
static void test_madvise_free_of_a_file_or_shared_mapping_is_einval(void **state)
{
	struct fx *f = *state;

	OK(dmm_file_create(f->sys, 2, &f->file));
	MAP_FIXED(f->mm, TBASE, PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 8), PG, RW, DMM_MAP_PRIVATE, f->file, 0);
	MAP_FIXED(f->mm, PAGE_ADDR(TBASE, 16), PG, RW, DMM_MAP_SHARED, f->file, 1);
	MAP_ANON(f->mm, PAGE_ADDR(TBASE, 15), 1);
	FILL(f->mm, TBASE, PG, 0xc00);
	FILL(f->mm, PAGE_ADDR(TBASE, 8), PG, 0xd00);
	FILL(f->mm, PAGE_ADDR(TBASE, 15), 2 * PG, 0xe00);
	EXPECT_RC(-EINVAL, dmm_madvise(f->mm, TBASE, PG, DMM_MADV_FREE));
	EXPECT_RC(-EINVAL, dmm_madvise(f->mm, PAGE_ADDR(TBASE, 8), PG, DMM_MADV_FREE));
	EXPECT_RC(-EINVAL, dmm_madvise(f->mm, PAGE_ADDR(TBASE, 15), 2 * PG, DMM_MADV_FREE));
	CHECK_OK(f->sys);
	VERIFY(f->mm, TBASE, PG, 0xc00);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 8), PG, 0xd00);
	VERIFY(f->mm, PAGE_ADDR(TBASE, 16), PG, 0xe00 + WORDS_PER_PAGE);
	/* The anonymous page before the shared one was freed. */
	PTE_NONE(f->mm, PAGE_ADDR(TBASE, 15));
	VERIFY_ZERO(f->mm, PAGE_ADDR(TBASE, 15), PG);
	dmm_file_put(f->file);
	CHECK_OK(f->sys);
}

/*
 * GUP-fast pins the page between MADV_FREE's two steps (lazyfree_hook
 * runs there, PTL held). The pin must end up on the page mapped at the
 * address: either GUP-fast sees the entry gone and falls back to the slow
 * path (which waits for the PTL and faults a new page), or MADV_FREE sees
 * the pin and keeps the page. Never a pinned page that is no longer mapped.
 */
static struct {
	struct dmm_mm *mm;
	struct dmm_system *sys;
	uint64_t fallback0;
	atomic_int go, done;
	long n;
	uint64_t pfn;
} lf_race;

static void *lf_race_pin(void *arg)
{
	(void)arg;
	while (!atomic_load(&lf_race.go))
		sched_yield();
	lf_race.n = dmm_get_user_pages_fast(lf_race.mm, TBASE, 1, DMM_FOLL_PIN | DMM_FOLL_WRITE,
					    &lf_race.pfn);
	atomic_store(&lf_race.done, 1);
	return NULL;
}

/* Let the pinner run until it has pinned, or has left GUP-fast for the slow
 * path (which needs the PTL held here). */
static void lf_race_hook(void)
{
	struct dmm_stats s;

	if (atomic_exchange(&lf_race.go, 1))
		return;
	for (;;) {
		if (atomic_load(&lf_race.done))
			return;
		dmm_stats_get(lf_race.sys, &s);
		if (s.gup_fast_fallback != lf_race.fallback0)
			return;
		sched_yield();
	}
}

static void test_madvise_free_racing_gup_fast_pin(void **state)
{
	struct fx *f = *state;
	pthread_t t;
	struct dmm_page_info pi;

	MAP_ANON(f->mm, TBASE, 1);
	FILL(f->mm, TBASE, PG, 0xf00);
	lf_race.mm = f->mm;
	lf_race.sys = f->sys;
	lf_race.fallback0 = STATS(f->sys).gup_fast_fallback;
	atomic_store(&lf_race.go, 0);
	atomic_store(&lf_race.done, 0);
	assert_int_equal(pthread_create(&t, NULL, lf_race_pin, NULL), 0);
	atomic_store(&lazyfree_hook, lf_race_hook);
	OK(dmm_madvise(f->mm, TBASE, PG, DMM_MADV_FREE));
	atomic_store(&lazyfree_hook, NULL);
	EQ(atomic_load(&lf_race.go), 1); /* the hook ran */
	assert_int_equal(pthread_join(t, NULL), 0);
	EQ(lf_race.n, 1);
	EQ(PTE(f->mm, TBASE).kind, DMM_PTE_PRESENT);
	EQ(PFN(f->mm, TBASE), lf_race.pfn);
	pi = PAGE(f->sys, lf_race.pfn);
	EQ(pi.pincount, 1);
	EQ(pi.mapcount, 1);
	dmm_unpin_user_pages(f->sys, &lf_race.pfn, 1);
	CHECK_OK(f->sys);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		DT2(test_madvise_free_leaves_device_pages_alone),
		DTP(test_madvise_free_leaves_device_exclusive_entries_alone),
		DTP(test_madvise_free_leaves_migration_entries_alone),
		T(test_madvise_free_keeps_pages_shared_with_a_child),
		T(test_madvise_free_of_a_file_or_shared_mapping_is_einval),
		T(test_madvise_free_racing_gup_fast_pin),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
