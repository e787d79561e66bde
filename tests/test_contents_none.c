/* SPDX-License-Identifier: MIT */
/*
 * Metadata-only systems (DMM_SYS_NO_CONTENTS, "contents=none"): the error
 * contract of every data operation (-EOPNOTSUPP before anything changes,
 * dmm_page_address NULL, the mirror's data commands), the fault-only
 * accesses (dmm_touch, MADV_POPULATE_READ/WRITE) and their errors, and
 * state equivalence: the same operations on a system with contents and on
 * one without leave the same entries (kind, pfn, write, dirty), the same
 * counters, rss and pools.
 */
#include "helpers.h"
#include "mirror.h"

#define NFRAMES 4096
#define NPAGES 64

static struct dmm_system *sys_none(uint64_t nr_frames)
{
	struct dmm_system_config cfg = { .nr_frames = nr_frames, .flags = DMM_SYS_NO_CONTENTS };
	struct dmm_system *sys = NULL;

	OK(dmm_system_create(&cfg, &sys));
	return sys;
}

static void test_create_flags(void **state)
{
	struct dmm_system_config bad = { .nr_frames = 16, .flags = 0x4 };
	struct dmm_system *sys = NULL, *with = sys_new(16);

	(void)state;
	EXPECT_RC(-EINVAL, dmm_system_create(&bad, &sys));
	sys = sys_none(16);
	TRUE(!dmm_system_has_contents(sys));
	TRUE(dmm_system_has_contents(with));
	TRUE(!dmm_system_has_contents(NULL));
	EQ(dmm_system_nr_free(sys), 16);
	/* Prefaulting a system without memory has nothing to do. */
	OK(dmm_system_prefault(sys, 16));
	dmm_system_destroy(sys);
	dmm_system_destroy(with);
}

/* Every CPU data access fails, before any fault: no entry, no counter. */
static void test_cpu_access_refused(void **state)
{
	struct dmm_system *sys = sys_none(NFRAMES);
	struct dmm_mm *mm;
	uint8_t buf[16] = { 0 };
	uint32_t v = 0;
	struct dmm_stats before;

	(void)state;
	OK(dmm_mm_create(sys, &mm));
	MAP_ANON(mm, TBASE, 4);
	before = STATS(sys);
	EXPECT_RC(-EOPNOTSUPP, dmm_write(mm, TBASE, buf, sizeof(buf)));
	EXPECT_RC(-EOPNOTSUPP, dmm_read(mm, TBASE, buf, sizeof(buf)));
	EXPECT_RC(-EOPNOTSUPP, dmm_store32(mm, TBASE, 1));
	EXPECT_RC(-EOPNOTSUPP, dmm_load32(mm, TBASE, &v));
	EXPECT_RC(-EOPNOTSUPP, dmm_cmpxchg32(mm, TBASE, 0, 1, &v));
	EXPECT_RC(-EOPNOTSUPP, dmm_fetch_add32(mm, TBASE, 1, &v));
	for (int i = 0; i < 4; i++)
		pte_none_at(__FILE__, __LINE__, mm, PAGE_ADDR(TBASE, i));
	EQ(STAT_DELTA(sys, before, fault_anon), 0);
	EQ(STAT_DELTA(sys, before, frames_alloc), 0);
	/* The argument checks come first, as with contents. */
	EXPECT_RC(-EINVAL, dmm_write(NULL, TBASE, buf, 1));
	EXPECT_RC(-EINVAL, dmm_load32(mm, TBASE + 1, &v));
	CHECK_OK(sys);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
}

static void test_file_and_page_address(void **state)
{
	struct dmm_system *sys = sys_none(NFRAMES);
	struct dmm_file *f;
	struct dmm_mm *mm;
	uint8_t buf[PG];
	uint64_t pfn;

	(void)state;
	OK(dmm_file_create(sys, 2, &f));
	EXPECT_RC(-EOPNOTSUPP, dmm_file_pwrite(f, buf, sizeof(buf), 0));
	EXPECT_RC(-EOPNOTSUPP, dmm_file_pread(f, buf, sizeof(buf), 0));
	EXPECT_RC(-EINVAL, dmm_file_pread(f, buf, sizeof(buf), 2 * PG));
	OK(dmm_alloc_page(sys, &pfn));
	TRUE(dmm_page_address(sys, pfn) == NULL);
	TRUE(dmm_page_address(sys, DMM_ZERO_PFN) == NULL);
	dmm_put_page(sys, pfn);
	/* A mapping of the file faults its page cache in without data. */
	OK(dmm_mm_create(sys, &mm));
	MAP_FIXED(mm, TBASE, 2 * PG, RW, DMM_MAP_SHARED, f, 0);
	OK(dmm_touch(mm, TBASE, 2 * PG, true));
	EQ(PTE(mm, TBASE).kind, DMM_PTE_PRESENT);
	TRUE(PTE(mm, PAGE_ADDR(TBASE, 1)).dirty);
	CHECK_OK(sys);
	dmm_mm_exit(mm);
	dmm_file_put(f);
	dmm_system_destroy(sys);
}

/* dmm_touch and MADV_POPULATE_*: the faults of an access, and its errors. */
static void test_populate(void **state)
{
	struct dmm_system *sys = sys_none(NFRAMES);
	struct dmm_mm *mm;

	(void)state;
	OK(dmm_mm_create(sys, &mm));
	MAP_ANON(mm, TBASE, 4);
	OK(dmm_madvise(mm, TBASE, 2 * PG, DMM_MADV_POPULATE_READ));
	TRUE(PTE(mm, TBASE).special); /* the zero page */
	pte_none_at(__FILE__, __LINE__, mm, PAGE_ADDR(TBASE, 2));
	OK(dmm_madvise(mm, TBASE, 4 * PG, DMM_MADV_POPULATE_WRITE));
	for (int i = 0; i < 4; i++) {
		struct dmm_pte_info pi = PTE(mm, PAGE_ADDR(TBASE, i));

		TRUE(!pi.special && pi.write && pi.dirty);
	}
	EQ(dmm_mm_rss(mm, DMM_MM_ANONPAGES), 4);
	/* A hole after the mapping: the mapped part is populated, then -ENOMEM. */
	EXPECT_RC(-ENOMEM, dmm_madvise(mm, TBASE, 5 * PG, DMM_MADV_POPULATE_WRITE));
	/* No permission: -EFAULT, as the access would get. */
	OK(dmm_mprotect(mm, TBASE, 4 * PG, DMM_PROT_READ));
	EXPECT_RC(-EFAULT, dmm_madvise(mm, TBASE, PG, DMM_MADV_POPULATE_WRITE));
	EXPECT_RC(-EFAULT, dmm_touch(mm, TBASE, 1, true));
	OK(dmm_touch(mm, TBASE, 1, false));
	EXPECT_RC(-EFAULT, dmm_touch(mm, PAGE_ADDR(TBASE, 4), 1, false));
	EXPECT_RC(-EINVAL, dmm_touch(NULL, TBASE, 1, false));
	CHECK_OK(sys);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
}

/* The mirror on a metadata-only system: data commands refused, the same
 * commands without data work; contents=none is refused beside contents. */
static void test_mirror_contract(void **state)
{
	struct dmm_system *sys = sys_none(NFRAMES), *with = sys_new(64);
	struct mirror_device_config cfg = { .type = DMM_MEMORY_DEVICE_PRIVATE, .pages = 16,
					    .no_contents = true };
	struct mirror_device *dev;
	struct mirror_result res;
	struct mirror *m;
	struct dmm_mm *mm;
	uint8_t buf[4 * PG];

	(void)state;
	EXPECT_RC(-EINVAL, mirror_device_create(with, "d", &cfg, &dev));
	OK(mirror_device_create(sys, "d", &cfg, &dev));
	OK(dmm_mm_create(sys, &mm));
	OK(mirror_open(dev, mm, &m));
	MAP_ANON(mm, TBASE, 4);
	OK(dmm_touch(mm, TBASE, 4 * PG, true));
	EXPECT_RC(-EOPNOTSUPP, mirror_read(m, TBASE, 4, buf, &res));
	EXPECT_RC(-EOPNOTSUPP, mirror_write(m, TBASE, 4, buf, &res));
	EXPECT_RC(-EOPNOTSUPP, mirror_exclusive(m, TBASE, 1, buf, &res));
	EXPECT_RC(-EOPNOTSUPP, mirror_atomic_add(m, TBASE, 1, 1, &res));
	EXPECT_RC(-EOPNOTSUPP, mirror_migrate_to_dev(m, TBASE, 4, buf, &res));
	EQ(PTE(mm, TBASE).kind, DMM_PTE_PRESENT); /* nothing moved */
	OK(mirror_read(m, TBASE, 4, NULL, &res));
	EQ(res.cpages, 4);
	OK(mirror_migrate_to_dev(m, TBASE, 4, NULL, &res));
	EQ(res.cpages, 4);
	EQ(PTE(mm, TBASE).kind, DMM_PTE_DEVICE_PRIVATE_WRITE);
	/* A CPU fault brings one page back (migrate_to_ram, no copy). */
	OK(dmm_touch(mm, TBASE, 1, false));
	EQ(PTE(mm, TBASE).kind, DMM_PTE_PRESENT);
	OK(mirror_migrate_to_sys(m, TBASE, 4, &res));
	EQ(res.cpages, 3);
	CHECK_OK(sys);
	mirror_device_destroy(dev);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
	dmm_system_destroy(with);
}

/*
 * The same script on both kinds of system: first touches (read and
 * write), fork, CoW breaks, MADV_DONTNEED, migration to each device type
 * and back, a pin, munmap. Everything observable but the bytes must match.
 */
struct world {
	struct dmm_system *sys;
	struct dmm_mm *mm, *child;
	struct mirror_device *priv, *coh;
};

static void world_run(struct world *w, bool contents)
{
	struct mirror_device_config pc = { .type = DMM_MEMORY_DEVICE_PRIVATE, .pages = 32 };
	struct mirror_device_config cc = { .type = DMM_MEMORY_DEVICE_COHERENT, .pages = 32 };
	struct mirror *mp, *mcoh;
	struct mirror_result res;
	uint64_t pfn;

	w->sys = contents ? sys_new(NFRAMES) : sys_none(NFRAMES);
	OK(mirror_device_create(w->sys, "p", &pc, &w->priv));
	OK(mirror_device_create(w->sys, "c", &cc, &w->coh));
	OK(dmm_mm_create(w->sys, &w->mm));
	MAP_ANON(w->mm, TBASE, NPAGES);
	OK(dmm_touch(w->mm, TBASE, NPAGES / 2 * PG, true));
	OK(dmm_madvise(w->mm, PAGE_ADDR(TBASE, NPAGES / 2), NPAGES / 4 * PG, DMM_MADV_POPULATE_READ));
	OK(dmm_fork(w->mm, &w->child));
	OK(dmm_touch(w->child, TBASE, 8 * PG, true));		     /* CoW breaks */
	OK(dmm_touch(w->mm, PAGE_ADDR(TBASE, 40), 4 * PG, true)); /* zero page -> frame */
	OK(dmm_madvise(w->mm, PAGE_ADDR(TBASE, 12), 2 * PG, DMM_MADV_DONTNEED));
	OK(mirror_open(w->priv, w->mm, &mp));
	OK(mirror_open(w->coh, w->child, &mcoh));
	OK(mirror_migrate_to_dev(mp, PAGE_ADDR(TBASE, 16), 8, NULL, &res));
	OK(mirror_migrate_to_dev(mcoh, TBASE, 8, NULL, &res)); /* the child's own copies */
	OK(dmm_touch(w->mm, PAGE_ADDR(TBASE, 17), 1, true));	/* back through migrate_to_ram */
	OK(mirror_migrate_to_sys(mp, PAGE_ADDR(TBASE, 18), 2, &res));
	OK(dmm_touch(w->child, PAGE_ADDR(TBASE, 1), 1, true));	/* a coherent page, in place */
	EQ(dmm_get_user_pages(w->mm, PAGE_ADDR(TBASE, 2), 1, DMM_FOLL_WRITE | DMM_FOLL_PIN, &pfn), 1);
	OK(dmm_munmap(w->mm, PAGE_ADDR(TBASE, 60), 4 * PG));
	dmm_unpin_user_pages(w->sys, &pfn, 1);
}

static void world_done(struct world *w)
{
	mirror_device_destroy(w->priv);
	mirror_device_destroy(w->coh);
	dmm_mm_exit(w->child);
	dmm_mm_exit(w->mm);
	dmm_system_destroy(w->sys);
}

static void same_entries(struct dmm_mm *a, struct dmm_mm *b)
{
	for (int i = 0; i < NPAGES; i++) {
		struct dmm_pte_info x = PTE(a, PAGE_ADDR(TBASE, i)), y = PTE(b, PAGE_ADDR(TBASE, i));

		EQ(y.kind, x.kind);
		EQ(y.write, x.write);
		EQ(y.dirty, x.dirty);
		EQ(y.special, x.special);
		if (x.kind != DMM_PTE_NONE)
			EQ(y.pfn, x.pfn);
	}
	for (int t = 0; t < DMM_NR_MM_COUNTERS; t++)
		EQ(dmm_mm_rss(b, (enum dmm_rss_type)t), dmm_mm_rss(a, (enum dmm_rss_type)t));
}

static void test_state_equivalence(void **state)
{
	struct world with, none;
	struct dmm_stats sa, sb;
	uint64_t ua, fa, ub, fb;

	(void)state;
	world_run(&with, true);
	world_run(&none, false);
	same_entries(with.mm, none.mm);
	same_entries(with.child, none.child);
	sa = STATS(with.sys);
	sb = STATS(none.sys);
#define SAME_STAT(name, desc) EQ(sb.name, sa.name);
	DMM_STAT_LIST(SAME_STAT)
#undef SAME_STAT
	EQ(dmm_system_nr_free(none.sys), dmm_system_nr_free(with.sys));
	mirror_pool(with.priv, &ua, &fa);
	mirror_pool(none.priv, &ub, &fb);
	EQ(ub, ua);
	mirror_pool(with.coh, &ua, &fa);
	mirror_pool(none.coh, &ub, &fb);
	EQ(ub, ua);
	CHECK_OK(with.sys);
	CHECK_OK(none.sys);
	world_done(&with);
	world_done(&none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_flags),
		cmocka_unit_test(test_cpu_access_refused),
		cmocka_unit_test(test_file_and_page_address),
		cmocka_unit_test(test_populate),
		cmocka_unit_test(test_mirror_contract),
		cmocka_unit_test(test_state_equivalence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
