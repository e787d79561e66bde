/* SPDX-License-Identifier: MIT */
/*
 * Migration between system and device memory (semantics.md §2.2, §3.1-3.6,
 * §3.8-3.12, §4, §5.3): every PTE transition that involves device memory,
 * checked through the entry kinds (dmm_pte_query), the frames' counts and
 * locations (dmm_page_query), the data (through the CPU and as the device
 * sees it) and dmm_check after every step.
 *
 *   - to the device: holes (W iff the VMA is writable), the zero page,
 *     system pages (W carried from the PTE), restore of what was not moved;
 *   - back: dmm_migrate_vma_* explicitly, CPU read and write faults, GUP;
 *   - fork, mprotect, munmap/exit, mremap of device entries; coherent pages
 *     used in place by the CPU, CoW of a coherent page, short-term pins;
 *   - the driver-facing protocol: dmm_migrate_vma_setup's errors and
 *     selection rules, the migration entries it installs, the two pin checks
 *     (pitfall 2), best-effort collection (5), eviction loops (6), which
 *     pages are eligible (7);
 *   - allocation failure at every step, injected (frames, page tables,
 *     metadata) and from the driver (device pages, system pages, forced
 *     fault results): pages end migrated or untouched with their data,
 *     nothing leaks.
 *
 * Tests that apply to both memory types run once per variant (DT2).
 */
#include "device_helpers.h"

/* A second, far address for mremap targets and extra VMAs. */
#define TBASE2 (TBASE + 0x40000000UL)
#define SEL_SYS DMM_MIGRATE_VMA_SELECT_SYSTEM
#define MPFN_VM (DMM_MIGRATE_PFN_VALID | DMM_MIGRATE_PFN_MIGRATE)

/* ------------------------------------------------------------------------ */
/* Driving dmm_migrate_vma_* directly                                        */

#define WIN 16

struct mv {
	uint64_t src[WIN], dst[WIN];
	struct dmm_migrate_vma a;
};

static void mv_init(struct mv *m, struct dmm_mm *mm, uint64_t start, unsigned long n, void *owner,
		    unsigned long flags)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < WIN; i++)
		m->src[i] = m->dst[i] = 0xdeadbeefUL; /* setup must clear them */
	m->a.mm = mm;
	m->a.start = start;
	m->a.end = start + n * PG;
	m->a.src = m->src;
	m->a.dst = m->dst;
	m->a.pgmap_owner = owner;
	m->a.flags = flags;
}

/* The selection flag that picks the fixture's device pages. */
static unsigned long sel_dev(const struct dfx *d)
{
	return dfx_private(d) ? DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE : DMM_MIGRATE_VMA_SELECT_DEVICE_COHERENT;
}

/* For every MIGRATE entry: a device page, the data copied (zero for holes). */
static void mv_dst_dev(struct dfx *d, struct mv *m)
{
	for (unsigned long i = 0; i < m->a.npages; i++) {
		uint64_t pfn;

		if (!(m->src[i] & DMM_MIGRATE_PFN_MIGRATE))
			continue;
		pfn = testdrv_alloc_page(d->drv);
		TRUE(pfn != 0);
		if (m->src[i] & DMM_MIGRATE_PFN_VALID)
			memcpy(testdrv_page_data(d->drv, pfn),
			       dmm_page_address(d->sys, dmm_migrate_pfn_to_pfn(m->src[i])), PG);
		else
			memset(testdrv_page_data(d->drv, pfn), 0, PG);
		m->dst[i] = dmm_migrate_pfn(pfn) | (m->src[i] & DMM_MIGRATE_PFN_WRITE);
	}
}

/* For every VALID|MIGRATE device entry: a locked system page with the data. */
static void mv_dst_sys(struct dfx *d, struct mv *m)
{
	for (unsigned long i = 0; i < m->a.npages; i++) {
		uint64_t pfn;

		if ((m->src[i] & MPFN_VM) != MPFN_VM)
			continue;
		OK(dmm_alloc_page(d->sys, &pfn));
		OK(dmm_lock_page(d->sys, pfn));
		memcpy(dmm_page_address(d->sys, pfn),
		       testdrv_page_data(d->drv, dmm_migrate_pfn_to_pfn(m->src[i])), PG);
		m->dst[i] = dmm_migrate_pfn(pfn);
	}
}

static unsigned long nr_migrate(const struct mv *m)
{
	unsigned long n = 0;

	for (unsigned long i = 0; i < m->a.npages; i++)
		n += !!(m->src[i] & DMM_MIGRATE_PFN_MIGRATE);
	return n;
}

/* ------------------------------------------------------------------------ */
/* §2.2: NONE / zero page -> device (hole insertion)                         */

static void test_hole_in_writable_vma_becomes_a_writable_device_entry(void **state)
{
	struct dfx *d = *state;
	struct dmm_stats s0 = STATS(d->sys);
	uint64_t pfn;

	MAP_ANON(d->mm, TBASE, 4);
	TO_DEV(d, d->mm, TBASE, 4, 4);
	CHECK_OK(d->sys);
	EQ(STAT_DELTA(d->sys, s0, migrate_holes), 4);
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 4);
	EQ(testdrv_used(d->drv), 4);
	for (int i = 0; i < 4; i++) {
		pfn = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
		COUNTS(d->sys, pfn, 1, 1);
		FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED);
		DEV_VERIFY_ZERO(d->drv, pfn);
		if (!dfx_private(d))
			TRUE(PTE(d->mm, PAGE_ADDR(TBASE, i)).dirty); /* W+dirty iff VM_WRITE */
	}
	/* No system frame was used. */
	EQ(dmm_system_nr_free(d->sys), d->free0);
	VERIFY_ZERO(d->mm, TBASE, 4 * PG);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

static void test_hole_in_read_only_vma_becomes_a_read_only_device_entry(void **state)
{
	struct dfx *d = *state;
	uint64_t pfn;

	MAP_FIXED(d->mm, TBASE, 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	CHECK_OK(d->sys);
	for (int i = 0; i < 2; i++) {
		pfn = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), false);
		COUNTS(d->sys, pfn, 1, 1);
		DEV_VERIFY_ZERO(d->drv, pfn);
		if (!dfx_private(d))
			TRUE(!PTE(d->mm, PAGE_ADDR(TBASE, i)).dirty);
	}
	VERIFY_ZERO(d->mm, TBASE, 2 * PG);
	CHECK_OK(d->sys);
	/* Still no write access, wherever the page now is. */
	EXPECT_RC(-EFAULT, dmm_store32(d->mm, TBASE, 1));
	if (dfx_private(d))
		SYS_ENTRY(d->sys, d->mm, TBASE, false);
	else
		DEV_ENTRY(d, d->mm, TBASE, false);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

static void test_zero_page_is_replaced_like_a_hole(void **state)
{
	struct dfx *d = *state;
	struct dmm_pte_info p;
	uint64_t pfn;

	MAP_ANON(d->mm, TBASE, 2);
	MAP_FIXED(d->mm, TBASE2, PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	EQ(LOAD(d->mm, TBASE), 0);
	EQ(LOAD(d->mm, TBASE2), 0);
	p = PTE(d->mm, TBASE);
	EQ(p.kind, DMM_PTE_PRESENT);
	TRUE(p.special);
	EQ(p.pfn, DMM_ZERO_PFN);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	TO_DEV(d, d->mm, TBASE2, 1, 1);
	CHECK_OK(d->sys);
	pfn = DEV_ENTRY(d, d->mm, TBASE, true);
	COUNTS(d->sys, pfn, 1, 1);
	DEV_VERIFY_ZERO(d->drv, pfn);
	DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), true);
	pfn = DEV_ENTRY(d, d->mm, TBASE2, false);
	COUNTS(d->sys, pfn, 1, 1);
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 3);
	/* The zero page itself is untouched. */
	COUNTS(d->sys, DMM_ZERO_PFN, 0, 0);
	VERIFY_ZERO(d->mm, TBASE, 2 * PG);
	VERIFY_ZERO(d->mm, TBASE2, PG);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* §2.2: PRESENT(sys) -> device                                              */

static void test_system_page_moves_to_device_with_its_write_bit(void **state)
{
	struct dfx *d = *state;
	uint64_t old[4], pfn;
	uint64_t free_before;

	MAP_ANON(d->mm, TBASE, 4);
	FILL(d->mm, TBASE, 4 * PG, 0x1000);
	for (int i = 0; i < 4; i++)
		old[i] = SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true);
	free_before = dmm_system_nr_free(d->sys);
	TO_DEV(d, d->mm, TBASE, 4, 4);
	CHECK_OK(d->sys);
	/* The old frames are free again. */
	EQ(dmm_system_nr_free(d->sys), free_before + 4);
	for (int i = 0; i < 4; i++) {
		pfn = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
		COUNTS(d->sys, pfn, 1, 1);
		DEV_VERIFY(d->drv, pfn, PSEED_OF(0x1000, i));
		FLAGS(PAGE(d->sys, old[i]).flags, DMM_PAGE_FREE, 0);
	}
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 4);
	EQ(atomic_load(&d->drv->faults), 0);
	VERIFY(d->mm, TBASE, 4 * PG, 0x1000);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* A page read-only after fork is not anon-exclusive: it moves read-only,
 * and the other process follows it to the same device page. */
static void test_page_shared_after_fork_moves_read_only_in_both_processes(void **state)
{
	struct dfx *d = *state;
	struct dmm_mm *child = NULL;
	uint64_t spfn, pfn;

	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0x2000);
	OK(dmm_fork(d->mm, &child));
	spfn = SYS_ENTRY(d->sys, d->mm, TBASE, false);
	COUNTS(d->sys, spfn, 2, 2);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	CHECK_OK(d->sys);
	for (int i = 0; i < 2; i++) {
		pfn = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), false);
		EQ(DEV_ENTRY(d, child, PAGE_ADDR(TBASE, i), false), pfn);
		COUNTS(d->sys, pfn, 2, 2);
		FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ANON, DMM_PAGE_ANON_EXCLUSIVE);
		DEV_VERIFY(d->drv, pfn, PSEED_OF(0x2000, i));
	}
	FLAGS(PAGE(d->sys, spfn).flags, DMM_PAGE_FREE, 0);
	EQ(dmm_mm_rss(child, DMM_MM_ANONPAGES), 2);
	VERIFY(child, TBASE, 2 * PG, 0x2000);
	VERIFY(d->mm, TBASE, 2 * PG, 0x2000);
	CHECK_OK(d->sys);
	dmm_mm_exit(child);
	DFX_FINISH(d);
}

/* A read-only but exclusive page (mprotect) moves read-only too. */
static void test_read_only_exclusive_page_moves_read_only(void **state)
{
	struct dfx *d = *state;
	uint64_t pfn;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0x2100);
	OK(dmm_mprotect(d->mm, TBASE, PG, DMM_PROT_READ));
	SYS_ENTRY(d->sys, d->mm, TBASE, false);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	CHECK_OK(d->sys);
	pfn = DEV_ENTRY(d, d->mm, TBASE, false);
	COUNTS(d->sys, pfn, 1, 1);
	FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	DEV_VERIFY(d->drv, pfn, 0x2100);
	VERIFY(d->mm, TBASE, PG, 0x2100);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* §2.2: device -> PRESENT(sys)                                              */

static void test_migrate_to_sys_brings_pages_back_with_their_write_bit(void **state)
{
	struct dfx *d = *state;
	uint64_t dev[3], pfn;

	MAP_ANON(d->mm, TBASE, 3);
	FILL(d->mm, TBASE, 3 * PG, 0x3000);
	TO_DEV(d, d->mm, TBASE, 3, 3);
	for (int i = 0; i < 3; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	TO_SYS(d, d->mm, TBASE, 3, 3);
	CHECK_OK(d->sys);
	for (int i = 0; i < 3; i++) {
		pfn = SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true);
		COUNTS(d->sys, pfn, 1, 1);
		FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED);
		COUNTS(d->sys, dev[i], 0, 0);
	}
	EQ(atomic_load(&d->drv->folio_frees), 3);
	EQ(testdrv_used(d->drv), 0);
	EQ(atomic_load(&d->drv->faults), 0);
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 3);
	VERIFY(d->mm, TBASE, 3 * PG, 0x3000);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

static void test_migrate_to_sys_of_a_shared_device_page_maps_one_page_in_both(void **state)
{
	struct dfx *d = *state;
	struct dmm_mm *child = NULL;
	uint64_t pfn;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0x3100);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	OK(dmm_fork(d->mm, &child));
	CHECK_OK(d->sys);
	TO_SYS(d, child, TBASE, 1, 1);
	CHECK_OK(d->sys);
	pfn = SYS_ENTRY(d->sys, d->mm, TBASE, false);
	EQ(SYS_ENTRY(d->sys, child, TBASE, false), pfn);
	COUNTS(d->sys, pfn, 2, 2);
	FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ANON, DMM_PAGE_ANON_EXCLUSIVE);
	EQ(atomic_load(&d->drv->folio_frees), 1);
	VERIFY(child, TBASE, PG, 0x3100);
	VERIFY(d->mm, TBASE, PG, 0x3100);
	CHECK_OK(d->sys);
	dmm_mm_exit(child);
	DFX_FINISH(d);
}

static void test_cpu_read_fault_migrates_a_writable_device_page_back_writable(void **state)
{
	struct dfx *d = *state;
	struct dmm_stats s0;
	uint64_t dev, pfn;

	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0x4000);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	s0 = STATS(d->sys);
	EQ(LOAD(d->mm, TBASE + 8), 0x4000 + 2);
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->faults), 1);
	EQ(atomic_load(&d->drv->fault_migrations), 1);
	EQ(STAT_DELTA(d->sys, s0, fault_device_private), 1);
	pfn = SYS_ENTRY(d->sys, d->mm, TBASE, true);
	COUNTS(d->sys, pfn, 1, 1);
	FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED);
	COUNTS(d->sys, dev, 0, 0);
	EQ(atomic_load(&d->drv->folio_frees), 1);
	/* Only the faulting page moved. */
	DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), true);
	/* A write needs no further fault. */
	OK(dmm_store32(d->mm, TBASE, 7));
	EQ(SYS_ENTRY(d->sys, d->mm, TBASE, true), pfn);
	EQ(atomic_load(&d->drv->faults), 1);
	EQ(STAT_DELTA(d->sys, s0, cow_copy), 0);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

static void test_cpu_write_fault_migrates_a_device_page_back_and_writes(void **state)
{
	struct dfx *d = *state;
	uint64_t pfn;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0x4100);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	OK(dmm_store32(d->mm, TBASE + 4, 0xabcd));
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->faults), 1);
	EQ(atomic_load(&d->drv->fault_migrations), 1);
	pfn = SYS_ENTRY(d->sys, d->mm, TBASE, true);
	COUNTS(d->sys, pfn, 1, 1);
	EQ(LOAD(d->mm, TBASE + 4), 0xabcd);
	EQ(LOAD(d->mm, TBASE), 0x4100);
	EQ(LOAD(d->mm, TBASE + 8), 0x4102);
	EQ(testdrv_used(d->drv), 0);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* A read-only device-private entry of an exclusive page (mprotect dropped
 * its W) comes back read-only but exclusive: the next write reuses it. */
static void test_fault_back_of_a_read_only_exclusive_entry_is_read_only_then_reused(void **state)
{
	struct dfx *d = *state;
	struct dmm_stats s0;
	uint64_t pfn;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0x4200);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	OK(dmm_mprotect(d->mm, TBASE, PG, DMM_PROT_READ));
	OK(dmm_mprotect(d->mm, TBASE, PG, RW));
	DEV_ENTRY(d, d->mm, TBASE, false);
	s0 = STATS(d->sys);
	EQ(LOAD(d->mm, TBASE), 0x4200);
	CHECK_OK(d->sys);
	pfn = SYS_ENTRY(d->sys, d->mm, TBASE, false);
	FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE, 0);
	COUNTS(d->sys, pfn, 1, 1);
	OK(dmm_store32(d->mm, TBASE, 1));
	EQ(SYS_ENTRY(d->sys, d->mm, TBASE, true), pfn);
	EQ(STAT_DELTA(d->sys, s0, cow_copy), 0);
	EQ(atomic_load(&d->drv->faults), 1);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* In a VMA without write permission the page comes back read-only and a
 * write is refused. */
static void test_fault_back_in_a_read_only_vma_is_read_only(void **state)
{
	struct dfx *d = *state;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0x4300);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	OK(dmm_mprotect(d->mm, TBASE, PG, DMM_PROT_READ));
	DEV_ENTRY(d, d->mm, TBASE, false);
	/* Refused before any fault: the page stays on the device. */
	EXPECT_RC(-EFAULT, dmm_store32(d->mm, TBASE, 1));
	CHECK_OK(d->sys);
	DEV_ENTRY(d, d->mm, TBASE, false);
	EQ(atomic_load(&d->drv->faults), 0);
	VERIFY(d->mm, TBASE, PG, 0x4300);
	SYS_ENTRY(d->sys, d->mm, TBASE, false);
	EXPECT_RC(-EFAULT, dmm_store32(d->mm, TBASE, 1));
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* Restore of what was not migrated                                          */

static void restore_when_dev_alloc_fails(struct dfx *d, long nth)
{
	const int n = 8;
	uint64_t old[8], pfn;

	MAP_ANON(d->mm, TBASE, n);
	FILL(d->mm, TBASE, n * PG, 0x5000);
	for (int i = 0; i < n; i++)
		old[i] = SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true);
	atomic_store(&d->drv->fail_dev_alloc, nth);
	TO_DEV(d, d->mm, TBASE, n, n - 1);
	CHECK_OK(d->sys);
	for (int i = 0; i < n; i++) {
		if (i == nth - 1) {
			/* Untouched: same frame, same entry, unlocked. */
			EQ(SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true), old[i]);
			COUNTS(d->sys, old[i], 1, 1);
			FLAGS(PAGE(d->sys, old[i]).flags, DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED);
		} else {
			pfn = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
			COUNTS(d->sys, pfn, 1, 1);
			DEV_VERIFY(d->drv, pfn, PSEED_OF(0x5000, i));
		}
	}
	EQ(testdrv_used(d->drv), n - 1);
	VERIFY(d->mm, TBASE, n * PG, 0x5000);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

static void test_failed_device_allocation_restores_the_first_page(void **state)
{
	restore_when_dev_alloc_fails(*state, 1);
}

static void test_failed_device_allocation_restores_a_middle_page(void **state)
{
	restore_when_dev_alloc_fails(*state, 4);
}

static void test_failed_device_allocation_restores_the_last_page(void **state)
{
	restore_when_dev_alloc_fails(*state, 8);
}

/* Skipped destinations on the way back restore the device entries. */
static void test_skipped_destinations_leave_device_pages_in_place(void **state)
{
	struct dfx *d = *state;
	struct mv m;
	uint64_t dev[4];

	MAP_ANON(d->mm, TBASE, 4);
	FILL(d->mm, TBASE, 4 * PG, 0x5100);
	TO_DEV(d, d->mm, TBASE, 4, 4);
	for (int i = 0; i < 4; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	mv_init(&m, d->mm, TBASE, 4, d->drv, sel_dev(d));
	h_mmap_read_lock(d->mm);
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 4);
	mv_dst_sys(d, &m);
	/* Drop the destinations of pages 1 and 3. */
	for (int i = 1; i < 4; i += 2) {
		uint64_t p = dmm_migrate_pfn_to_pfn(m.dst[i]);

		dmm_unlock_page(d->sys, p);
		dmm_put_page(d->sys, p);
		m.dst[i] = 0;
	}
	dmm_migrate_vma_pages(&m.a);
	EQ(nr_migrate(&m), 2);
	TRUE(!(m.src[1] & DMM_MIGRATE_PFN_MIGRATE));
	TRUE(!(m.src[3] & DMM_MIGRATE_PFN_MIGRATE));
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	CHECK_OK(d->sys);
	SYS_ENTRY(d->sys, d->mm, TBASE, true);
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), true), dev[1]);
	SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 2), true);
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 3), true), dev[3]);
	COUNTS(d->sys, dev[1], 1, 1);
	FLAGS(PAGE(d->sys, dev[1]).flags, 0, DMM_PAGE_LOCKED);
	VERIFY(d->mm, TBASE, 4 * PG, 0x5100);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* fork                                                                      */

static void fork_shares_then_first_touch(struct dfx *d, bool touch_child, bool write)
{
	struct dmm_mm *child = NULL, *toucher, *other;
	uint64_t dev, pfn, npfn;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0x6000);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	OK(dmm_fork(d->mm, &child));
	CHECK_OK(d->sys);
	/* Both read-only on the same device page, never copied. */
	EQ(DEV_ENTRY(d, d->mm, TBASE, false), dev);
	EQ(DEV_ENTRY(d, child, TBASE, false), dev);
	COUNTS(d->sys, dev, 2, 2);
	FLAGS(PAGE(d->sys, dev).flags, DMM_PAGE_ANON, DMM_PAGE_ANON_EXCLUSIVE);
	EQ(testdrv_used(d->drv), 1);
	EQ(dmm_mm_rss(child, DMM_MM_ANONPAGES), 1);
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 1);

	toucher = touch_child ? child : d->mm;
	other = touch_child ? d->mm : child;
	if (!write) {
		EQ(LOAD(toucher, TBASE + 4), 0x6001);
		CHECK_OK(d->sys);
		EQ(atomic_load(&d->drv->fault_migrations), 1);
		/* One system page, read-only in both. */
		pfn = SYS_ENTRY(d->sys, toucher, TBASE, false);
		EQ(SYS_ENTRY(d->sys, other, TBASE, false), pfn);
		COUNTS(d->sys, pfn, 2, 2);
		EQ(atomic_load(&d->drv->folio_frees), 1);
		/* A later write copies. */
		OK(dmm_store32(toucher, TBASE, 0x77));
		CHECK_OK(d->sys);
		npfn = SYS_ENTRY(d->sys, toucher, TBASE, true);
		NE(npfn, pfn);
		EQ(SYS_ENTRY(d->sys, other, TBASE, false), pfn);
		COUNTS(d->sys, pfn, 1, 1);
		COUNTS(d->sys, npfn, 1, 1);
	} else {
		/* The write migrates back (shared, read-only) and then copies. */
		OK(dmm_store32(toucher, TBASE, 0x77));
		CHECK_OK(d->sys);
		EQ(atomic_load(&d->drv->fault_migrations), 1);
		npfn = SYS_ENTRY(d->sys, toucher, TBASE, true);
		pfn = SYS_ENTRY(d->sys, other, TBASE, false);
		NE(npfn, pfn);
		COUNTS(d->sys, pfn, 1, 1);
		COUNTS(d->sys, npfn, 1, 1);
	}
	EQ(atomic_load(&d->drv->faults), 1);
	EQ(LOAD(toucher, TBASE), 0x77);
	EQ(LOAD(other, TBASE), 0x6000);
	EQ(LOAD(toucher, TBASE + 8), 0x6002);
	VERIFY(other, TBASE, PG, 0x6000);
	EQ(atomic_load(&d->drv->faults), 1);
	CHECK_OK(d->sys);
	dmm_mm_exit(child);
	DFX_FINISH(d);
}

static void test_fork_shares_a_device_private_page_read_only_and_a_child_read_migrates_it_once(void **state)
{
	fork_shares_then_first_touch(*state, true, false);
}

static void test_fork_shares_a_device_private_page_read_only_and_a_parent_read_migrates_it_once(void **state)
{
	fork_shares_then_first_touch(*state, false, false);
}

static void test_fork_shared_device_private_page_written_by_the_child_migrates_then_copies(void **state)
{
	fork_shares_then_first_touch(*state, true, true);
}

static void test_fork_shared_device_private_page_written_by_the_parent_migrates_then_copies(void **state)
{
	fork_shares_then_first_touch(*state, false, true);
}

/* ------------------------------------------------------------------------ */
/* mprotect                                                                  */

static void test_mprotect_downgrades_writable_device_private_entries_and_never_upgrades(void **state)
{
	struct dfx *d = *state;
	uint64_t dev[3];

	MAP_ANON(d->mm, TBASE, 3);
	FILL(d->mm, TBASE, 3 * PG, 0x7000);
	TO_DEV(d, d->mm, TBASE, 3, 3);
	for (int i = 0; i < 3; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	/* No change of the VMA's flags: a no-op, the entries stay W. */
	OK(dmm_mprotect(d->mm, TBASE, 3 * PG, RW));
	for (int i = 0; i < 3; i++)
		DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	/* Page 0 to read-only and back. */
	OK(dmm_mprotect(d->mm, TBASE, PG, DMM_PROT_READ));
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, false), dev[0]);
	OK(dmm_mprotect(d->mm, TBASE, PG, RW));
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, false), dev[0]);
	/* Page 1 to PROT_NONE (no CPU access at all, and no fault) and back. */
	OK(dmm_mprotect(d->mm, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_NONE));
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), false), dev[1]);
	{
		uint32_t v;

		EXPECT_RC(-EFAULT, dmm_load32(d->mm, PAGE_ADDR(TBASE, 1), &v));
	}
	EQ(atomic_load(&d->drv->faults), 0);
	OK(dmm_mprotect(d->mm, PAGE_ADDR(TBASE, 1), PG, RW));
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), false), dev[1]);
	/* Page 2 untouched by all that. */
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 2), true), dev[2]);
	/* The whole range to more permission than some pages have: still R. */
	OK(dmm_mprotect(d->mm, TBASE, 3 * PG, DMM_PROT_READ));
	OK(dmm_mprotect(d->mm, TBASE, 3 * PG, RW));
	for (int i = 0; i < 3; i++) {
		EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), false), dev[i]);
		COUNTS(d->sys, dev[i], 1, 1);
		DEV_VERIFY(d->drv, dev[i], PSEED_OF(0x7000, i));
	}
	CHECK_OK(d->sys);
	/* Only migrating through RAM gives W back. */
	TO_SYS(d, d->mm, TBASE, 3, 3);
	for (int i = 0; i < 3; i++)
		SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), false);
	OK(dmm_store32(d->mm, TBASE, 1));
	TO_DEV(d, d->mm, TBASE, 1, 1);
	DEV_ENTRY(d, d->mm, TBASE, true);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* munmap, MADV_DONTNEED, exit                                               */

static void test_munmap_frees_device_pages_without_migrating_them_back(void **state)
{
	struct dfx *d = *state;
	struct dmm_stats s0;

	MAP_ANON(d->mm, TBASE, 4);
	FILL(d->mm, TBASE, 4 * PG, 0x8000);
	TO_DEV(d, d->mm, TBASE, 4, 4);
	s0 = STATS(d->sys);
	OK(dmm_munmap(d->mm, PAGE_ADDR(TBASE, 1), 2 * PG));
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->folio_frees), 2);
	EQ(testdrv_used(d->drv), 2);
	EQ(atomic_load(&d->drv->faults), 0);
	EQ(STAT_DELTA(d->sys, s0, migrate_moved), 0);
	EQ(STAT_DELTA(d->sys, s0, frames_alloc), 0);
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 2);
	OK(dmm_madvise(d->mm, TBASE, PG, DMM_MADV_DONTNEED));
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->folio_frees), 3);
	EQ(atomic_load(&d->drv->faults), 0);
	PTE_NONE(d->mm, TBASE);
	VERIFY_ZERO(d->mm, TBASE, PG);
	OK(dmm_munmap(d->mm, TBASE, 4 * PG));
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->folio_frees), 4);
	EQ(atomic_load(&d->drv->faults), 0);
	EQ(STAT_DELTA(d->sys, s0, migrate_moved), 0);
	DFX_FINISH(d);
}

static void test_exit_frees_device_pages_without_migrating_them_back(void **state)
{
	struct dfx *d = *state;
	struct dmm_mm *child = NULL;
	struct dmm_stats s0;
	uint64_t dev;

	MAP_ANON(d->mm, TBASE, 3);
	FILL(d->mm, TBASE, 3 * PG, 0x8100);
	TO_DEV(d, d->mm, TBASE, 3, 3);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	OK(dmm_fork(d->mm, &child));
	s0 = STATS(d->sys);
	dmm_mm_exit(child);
	CHECK_OK(d->sys);
	/* The parent still maps them: nothing freed. */
	EQ(atomic_load(&d->drv->folio_frees), 0);
	COUNTS(d->sys, dev, 1, 1);
	dmm_mm_exit(d->mm);
	d->mm = NULL;
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->folio_frees), 3);
	EQ(atomic_load(&d->drv->faults), 0);
	EQ(STAT_DELTA(d->sys, s0, migrate_moved), 0);
	EQ(STAT_DELTA(d->sys, s0, frames_alloc), 0);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* mremap                                                                    */

static void test_mremap_moves_device_entries_verbatim(void **state)
{
	struct dfx *d = *state;
	uint64_t dev[3];

	MAP_ANON(d->mm, TBASE, 3);
	FILL(d->mm, TBASE, 3 * PG, 0x9000);
	TO_DEV(d, d->mm, TBASE, 3, 3);
	OK(dmm_mprotect(d->mm, PAGE_ADDR(TBASE, 2), PG, DMM_PROT_READ));
	OK(dmm_mprotect(d->mm, PAGE_ADDR(TBASE, 2), PG, RW));
	/* page 2: DP_R (never upgraded); a coherent PTE of an exclusive page
	 * may be made writable again by mprotect. */
	bool w2 = PTE(d->mm, PAGE_ADDR(TBASE, 2)).write;
	if (dfx_private(d))
		TRUE(!w2);
	for (int i = 0; i < 3; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), i < 2 || w2);
	OK(dmm_mremap(d->mm, TBASE, 3 * PG, 3 * PG, DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED, TBASE2));
	CHECK_OK(d->sys);
	UNMAPPED(d->mm, TBASE);
	for (int i = 0; i < 3; i++) {
		EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE2, i), i < 2 || w2), dev[i]);
		COUNTS(d->sys, dev[i], 1, 1);
	}
	EQ(atomic_load(&d->drv->faults), 0);
	EQ(atomic_load(&d->drv->folio_frees), 0);
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 3);
	/* Data survives the CPU fault-back at the new address. */
	VERIFY(d->mm, TBASE2, 3 * PG, 0x9000);
	CHECK_OK(d->sys);
	if (dfx_private(d)) {
		SYS_ENTRY(d->sys, d->mm, TBASE2, true);
		SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE2, 2), w2);
	} else {
		EQ(DEV_ENTRY(d, d->mm, TBASE2, true), dev[0]);
	}
	DFX_FINISH(d);
}

static void test_mremap_dontunmap_moves_device_entries_and_leaves_the_old_range_empty(void **state)
{
	struct dfx *d = *state;
	uint64_t dev[2];

	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0x9100);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	for (int i = 0; i < 2; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	OK(dmm_mremap(d->mm, TBASE, 2 * PG, 2 * PG,
		      DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED | DMM_MREMAP_DONTUNMAP, TBASE2));
	CHECK_OK(d->sys);
	for (int i = 0; i < 2; i++) {
		PTE_NONE(d->mm, PAGE_ADDR(TBASE, i));
		EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE2, i), true), dev[i]);
		COUNTS(d->sys, dev[i], 1, 1);
	}
	VMA(d->mm, TBASE);
	/* Explicit migration back at the new address, then the old range
	 * reads as fresh zero memory. */
	TO_SYS(d, d->mm, TBASE2, 1, 1);
	VERIFY(d->mm, TBASE2, 2 * PG, 0x9100);
	VERIFY_ZERO(d->mm, TBASE, 2 * PG);
	EQ(atomic_load(&d->drv->faults), dfx_private(d) ? 1 : 0);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* Coherent memory                                                           */

static void test_cpu_reads_and_writes_coherent_pages_in_place(void **state)
{
	struct dfx *d = *state;
	struct dmm_stats s0;
	uint64_t dev;
	uint32_t *w;

	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0xa000);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	s0 = STATS(d->sys);
	VERIFY(d->mm, TBASE, 2 * PG, 0xa000);
	OK(dmm_store32(d->mm, TBASE + 12, 0x1234));
	FILL(d->mm, PAGE_ADDR(TBASE, 1), PG, 0xa800);
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev);
	EQS(PAGE(d->sys, dev).location, DMM_LOC_DEVICE_COHERENT);
	w = testdrv_page_data(d->drv, dev);
	EQ(w[3], 0x1234);
	EQ(w[4], 0xa004);
	DEV_VERIFY(d->drv, DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), true), 0xa800);
	/* And what the device writes, the CPU sees. */
	w[5] = 0x5555;
	EQ(LOAD(d->mm, TBASE + 20), 0x5555);
	EQ(STAT_DELTA(d->sys, s0, frames_alloc), 0);
	EQ(STAT_DELTA(d->sys, s0, migrate_moved), 0);
	EQ(atomic_load(&d->drv->faults), 0);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* Pitfall 18: a write after fork copies the coherent page into system
 * memory in the writer; the other process keeps the coherent page. */
static void coherent_fork_write(struct dfx *d, bool child_writes)
{
	struct dmm_mm *child = NULL, *writer, *other;
	uint64_t dev, pfn;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0xb000);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	OK(dmm_fork(d->mm, &child));
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, false), dev);
	EQ(DEV_ENTRY(d, child, TBASE, false), dev);
	COUNTS(d->sys, dev, 2, 2);
	writer = child_writes ? child : d->mm;
	other = child_writes ? d->mm : child;
	OK(dmm_store32(writer, TBASE, 0xfeed));
	CHECK_OK(d->sys);
	pfn = SYS_ENTRY(d->sys, writer, TBASE, true);
	COUNTS(d->sys, pfn, 1, 1);
	EQ(DEV_ENTRY(d, other, TBASE, false), dev);
	COUNTS(d->sys, dev, 1, 1);
	EQ(LOAD(writer, TBASE), 0xfeed);
	EQ(LOAD(writer, TBASE + 4), 0xb001);
	VERIFY(other, TBASE, PG, 0xb000);
	/* The other one's write reuses the coherent page in place. */
	OK(dmm_store32(other, TBASE, 0xbeef));
	EQ(DEV_ENTRY(d, other, TBASE, true), dev);
	EQ(LOAD(other, TBASE), 0xbeef);
	EQ(LOAD(writer, TBASE), 0xfeed);
	CHECK_OK(d->sys);
	dmm_mm_exit(child);
	CHECK_OK(d->sys);
	EQ(testdrv_used(d->drv), child_writes ? 1 : 0);
	DFX_FINISH(d);
}

static void test_coherent_page_written_by_the_child_after_fork_is_copied_to_system_memory(void **state)
{
	coherent_fork_write(*state, true);
}

static void test_coherent_page_written_by_the_parent_after_fork_is_copied_to_system_memory(void **state)
{
	coherent_fork_write(*state, false);
}

/* ------------------------------------------------------------------------ */
/* GUP                                                                       */

static void test_gup_on_a_device_private_page_migrates_it_back(void **state)
{
	struct dfx *d = *state;
	uint64_t dev, pfns[2], pfn;

	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0xc000);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	EQ(dmm_get_user_pages(d->mm, TBASE, 1, DMM_FOLL_GET, pfns), 1);
	CHECK_OK(d->sys);
	NE(pfns[0], dev);
	pfn = SYS_ENTRY(d->sys, d->mm, TBASE, true);
	EQ(pfns[0], pfn);
	COUNTS(d->sys, pfn, 2, 1);
	EQ(atomic_load(&d->drv->fault_migrations), 1);
	dmm_put_user_pages(d->sys, pfns, 1);
	/* A pin too. */
	EQ(dmm_get_user_pages_fast(d->mm, PAGE_ADDR(TBASE, 1), 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, pfns + 1), 1);
	CHECK_OK(d->sys);
	pfn = SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 1), true);
	EQ(pfns[1], pfn);
	COUNTS(d->sys, pfn, 1025, 1);
	EQ(atomic_load(&d->drv->fault_migrations), 2);
	dmm_unpin_user_pages(d->sys, pfns + 1, 1);
	EQ(testdrv_used(d->drv), 0);
	VERIFY(d->mm, TBASE, 2 * PG, 0xc000);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* Pitfall 18: a short-term pin on a coherent page blocks its migration. */
static void test_short_term_pin_of_a_coherent_page_blocks_migrate_to_sys(void **state)
{
	struct dfx *d = *state;
	uint64_t dev, pfn;

	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0xc100);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	EQ(dmm_get_user_pages(d->mm, TBASE, 1, DMM_FOLL_PIN, &pfn), 1);
	EQ(pfn, dev);
	COUNTS(d->sys, dev, 1025, 1);
	TO_SYS(d, d->mm, TBASE, 2, 1);
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev);
	COUNTS(d->sys, dev, 1025, 1);
	FLAGS(PAGE(d->sys, dev).flags, DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED);
	SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 1), true);
	VERIFY(d->mm, TBASE, 2 * PG, 0xc100);
	dmm_unpin_user_pages(d->sys, &pfn, 1);
	TO_SYS(d, d->mm, TBASE, 1, 1);
	SYS_ENTRY(d->sys, d->mm, TBASE, true);
	VERIFY(d->mm, TBASE, 2 * PG, 0xc100);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* The protocol: setup's errors, selection, migration entries                */

static void test_migrate_vma_setup_rejects_bad_arguments(void **state)
{
	struct dfx *d = *state;
	struct mv m;
	uint64_t sys_pfn, dev_pfn, fp;

	MAP_ANON(d->mm, TBASE, 4);
	MAP_FIXED(d->mm, PAGE_ADDR(TBASE, 4), 2 * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	FILL(d->mm, TBASE, 2 * PG, 0xd000);
	sys_pfn = SYS_ENTRY(d->sys, d->mm, TBASE, true);
	TO_DEV(d, d->mm, PAGE_ADDR(TBASE, 1), 1, 1);
	dev_pfn = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), true);
	CHECK_OK(d->sys);

	h_mmap_read_lock(d->mm);
	EXPECT_RC(-EINVAL, dmm_migrate_vma_setup(NULL));
#define BAD(how)                                                                           \
	do {                                                                               \
		mv_init(&m, d->mm, TBASE, 2, d->drv, SEL_SYS);                             \
		how;                                                                       \
		EXPECT_RC(-EINVAL, dmm_migrate_vma_setup(&m.a));                           \
	} while (0)
	BAD(m.a.mm = NULL);
	BAD(m.a.src = NULL);
	BAD(m.a.dst = NULL);
	BAD(m.a.end = m.a.start);                       /* no pages */
	BAD(m.a.end = m.a.start - PG);                  /* end before start */
	BAD(m.a.end = m.a.start + PG - 1);              /* less than a page */
	BAD(m.a.start += PG - 4; m.a.end = m.a.start + 8); /* counted before rounding */
	BAD(m.a.start = TBASE2; m.a.end = TBASE2 + PG); /* no VMA at start */
	BAD(m.a.start = TBASE - PG; m.a.end = TBASE + PG); /* start below the VMA */
	BAD(m.a.end = PAGE_ADDR(TBASE, 5));             /* beyond the VMA's end */
	BAD(m.a.start = PAGE_ADDR(TBASE, 3); m.a.end = PAGE_ADDR(TBASE, 7)); /* past the next VMA */
	/* fault_page: a system page, locked. */
	OK(dmm_lock_page(d->sys, sys_pfn));
	BAD(m.a.fault_page = sys_pfn; m.a.flags = DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE);
	dmm_unlock_page(d->sys, sys_pfn);
	/* fault_page: a device page that is not locked. */
	BAD(m.a.fault_page = dev_pfn; m.a.flags = sel_dev(d));
	if (!dfx_private(d)) {
		/* fault_page: a coherent page, even locked, is not device-private. */
		OK(dmm_lock_page(d->sys, dev_pfn));
		BAD(m.a.fault_page = dev_pfn; m.a.flags = sel_dev(d));
		dmm_unlock_page(d->sys, dev_pfn);
	}
	/* fault_page: a free device page. */
	fp = dmm_pgmap_pfn_first(d->drv->pgmap) + DEV_PAGES - 1;
	COUNTS(d->sys, fp, 0, 0);
	BAD(m.a.fault_page = fp; m.a.flags = sel_dev(d));
#undef BAD
	h_mmap_read_unlock(d->mm);
	CHECK_OK(d->sys);
	/* Nothing changed. */
	EQ(SYS_ENTRY(d->sys, d->mm, TBASE, true), sys_pfn);
	COUNTS(d->sys, sys_pfn, 1, 1);
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), true), dev_pfn);
	COUNTS(d->sys, dev_pfn, 1, 1);
	FLAGS(PAGE(d->sys, dev_pfn).flags, 0, DMM_PAGE_LOCKED);
	EQ(testdrv_used(d->drv), 1);

	/* Unaligned bounds are rounded down after counting: one page. */
	h_mmap_read_lock(d->mm);
	mv_init(&m, d->mm, TBASE + 100, 1, d->drv, SEL_SYS);
	m.a.end = TBASE + 100 + PG;
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.start, TBASE);
	EQ(m.a.end, TBASE + PG);
	EQ(m.a.npages, 1);
	EQ(m.a.cpages, 1);
	EQ(m.src[0], dmm_migrate_pfn(sys_pfn) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	EQ(m.dst[0], 0);
	dmm_migrate_vma_pages(&m.a);
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	EQ(SYS_ENTRY(d->sys, d->mm, TBASE, true), sys_pfn);
	VERIFY(d->mm, TBASE, 2 * PG, 0xd000);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* Which entries setup selects (§3.8's table), with a finalize without
 * destinations restoring every collected entry to its original kind. */
static void test_setup_selects_by_kind_flags_and_owner(void **state)
{
	struct dfx *d = *state;
	struct mv m;
	uint64_t sys_pfn, dev_pfn;
	int other_owner;

	/* page 0: device, 1: hole, 2: system, 3: zero page */
	MAP_ANON(d->mm, TBASE, 4);
	FILL(d->mm, TBASE, PG, 0xd100);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	dev_pfn = DEV_ENTRY(d, d->mm, TBASE, true);
	FILL(d->mm, PAGE_ADDR(TBASE, 2), PG, 0xd200);
	sys_pfn = SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 2), true);
	EQ(LOAD(d->mm, PAGE_ADDR(TBASE, 3)), 0);

	h_mmap_read_lock(d->mm);
	/* Device pages of this owner; holes always. */
	mv_init(&m, d->mm, TBASE, 4, d->drv, sel_dev(d));
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.npages, 4);
	EQ(m.a.cpages, 2);
	EQ(m.src[0], dmm_migrate_pfn(dev_pfn) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	EQ(m.src[1], DMM_MIGRATE_PFN_MIGRATE);
	EQ(m.src[2], 0);
	EQ(m.src[3], 0);
	for (int i = 0; i < 4; i++)
		EQ(m.dst[i], 0);
	EQ(KIND(d->mm, TBASE), DMM_PTE_MIGRATION_WRITE);
	COUNTS(d->sys, dev_pfn, 1, 0);
	FLAGS(PAGE(d->sys, dev_pfn).flags, DMM_PAGE_LOCKED, 0);
	EQ(SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 2), true), sys_pfn);
	dmm_migrate_vma_pages(&m.a);
	EQ(nr_migrate(&m), 0);
	dmm_migrate_vma_finalize(&m.a);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev_pfn);
	COUNTS(d->sys, dev_pfn, 1, 1);
	FLAGS(PAGE(d->sys, dev_pfn).flags, 0, DMM_PAGE_LOCKED);
	PTE_NONE(d->mm, PAGE_ADDR(TBASE, 1));

	/* Another owner's device pages are left alone. */
	mv_init(&m, d->mm, TBASE, 1, &other_owner, sel_dev(d));
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 0);
	EQ(m.src[0], 0);
	dmm_migrate_vma_pages(&m.a);
	dmm_migrate_vma_finalize(&m.a);

	/* SELECT_SYSTEM: system pages and the zero page (a hole), no device page. */
	mv_init(&m, d->mm, TBASE, 4, d->drv, SEL_SYS);
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 3);
	EQ(m.src[0], 0);
	EQ(m.src[1], DMM_MIGRATE_PFN_MIGRATE);
	EQ(m.src[2], dmm_migrate_pfn(sys_pfn) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	EQ(m.src[3], DMM_MIGRATE_PFN_MIGRATE);
	EQ(KIND(d->mm, PAGE_ADDR(TBASE, 2)), DMM_PTE_MIGRATION_WRITE);
	COUNTS(d->sys, sys_pfn, 1, 0);
	FLAGS(PAGE(d->sys, sys_pfn).flags, DMM_PAGE_LOCKED, 0);
	/* The zero page stays mapped until pages inserts a destination. */
	TRUE(PTE(d->mm, PAGE_ADDR(TBASE, 3)).special);
	dmm_migrate_vma_pages(&m.a);
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	CHECK_OK(d->sys);
	EQ(SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 2), true), sys_pfn);
	COUNTS(d->sys, sys_pfn, 1, 1);
	FLAGS(PAGE(d->sys, sys_pfn).flags, DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED);
	TRUE(PTE(d->mm, PAGE_ADDR(TBASE, 3)).special);
	EQ(atomic_load(&d->drv->folio_frees), 0);
	VERIFY(d->mm, TBASE, PG, 0xd100);
	VERIFY(d->mm, PAGE_ADDR(TBASE, 2), PG, 0xd200);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* Migration entries by writability and exclusivity (§2.2), and their
 * restore to the exact original entries. */
static void test_collect_installs_migration_entries_by_write_bit_and_exclusivity(void **state)
{
	struct dfx *d = *state;
	struct dmm_mm *child = NULL;
	struct mv m;
	uint64_t pfn[3];
	bool w1;

	/* page 0: W; 1: R exclusive (mprotect); 2: R shared with a child */
	MAP_ANON(d->mm, TBASE, 2);
	MAP_ANON(d->mm, TBASE2, 1);
	FILL(d->mm, TBASE, 2 * PG, 0xd300);
	FILL(d->mm, TBASE2, PG, 0xd400);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	TO_DEV(d, d->mm, TBASE2, 1, 1);
	OK(dmm_mprotect(d->mm, PAGE_ADDR(TBASE, 1), PG, DMM_PROT_READ));
	OK(dmm_mprotect(d->mm, PAGE_ADDR(TBASE, 1), PG, RW));
	OK(dmm_madvise(d->mm, TBASE, 2 * PG, DMM_MADV_DONTFORK));
	OK(dmm_fork(d->mm, &child));
	/* A private entry stays R after mprotect; a coherent PTE of an
	 * exclusive page may be made W again: then it is a W case too. */
	w1 = PTE(d->mm, PAGE_ADDR(TBASE, 1)).write;
	if (dfx_private(d))
		TRUE(!w1);
	pfn[0] = DEV_ENTRY(d, d->mm, TBASE, true);
	pfn[1] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), w1);
	pfn[2] = DEV_ENTRY(d, d->mm, TBASE2, false);
	EQ(DEV_ENTRY(d, child, TBASE2, false), pfn[2]);
	CHECK_OK(d->sys);

	h_mmap_read_lock(d->mm);
	mv_init(&m, d->mm, TBASE, 2, d->drv, sel_dev(d));
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 2);
	EQ(m.src[0], dmm_migrate_pfn(pfn[0]) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	EQ(m.src[1], dmm_migrate_pfn(pfn[1]) | DMM_MIGRATE_PFN_MIGRATE | (w1 ? DMM_MIGRATE_PFN_WRITE : 0));
	EQ(KIND(d->mm, TBASE), DMM_PTE_MIGRATION_WRITE);
	EQ(KIND(d->mm, PAGE_ADDR(TBASE, 1)), w1 ? DMM_PTE_MIGRATION_WRITE : DMM_PTE_MIGRATION_READ_EXCLUSIVE);
	EQ(PTE(d->mm, PAGE_ADDR(TBASE, 1)).pfn, pfn[1]);
	COUNTS(d->sys, pfn[0], 1, 0);
	COUNTS(d->sys, pfn[1], 1, 0);
	EQ(dmm_mm_rss(d->mm, DMM_MM_ANONPAGES), 3);
	dmm_migrate_vma_pages(&m.a); /* no destinations: restore */
	EQ(nr_migrate(&m), 0);
	dmm_migrate_vma_finalize(&m.a);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), pfn[0]);
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), w1), pfn[1]);
	FLAGS(PAGE(d->sys, pfn[1]).flags, DMM_PAGE_ANON_EXCLUSIVE, DMM_PAGE_LOCKED);

	mv_init(&m, d->mm, TBASE2, 1, d->drv, sel_dev(d));
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 1);
	EQ(m.src[0], dmm_migrate_pfn(pfn[2]) | DMM_MIGRATE_PFN_MIGRATE);
	/* Unmapped everywhere: the child's entry too. */
	EQ(KIND(d->mm, TBASE2), DMM_PTE_MIGRATION_READ);
	EQ(KIND(child, TBASE2), DMM_PTE_MIGRATION_READ);
	COUNTS(d->sys, pfn[2], 1, 0);
	dmm_migrate_vma_pages(&m.a);
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE2, false), pfn[2]);
	EQ(DEV_ENTRY(d, child, TBASE2, false), pfn[2]);
	COUNTS(d->sys, pfn[2], 2, 2);
	VERIFY(child, TBASE2, PG, 0xd400);
	VERIFY(d->mm, TBASE, 2 * PG, 0xd300);
	VERIFY(d->mm, TBASE2, PG, 0xd400);
	CHECK_OK(d->sys);
	dmm_mm_exit(child);
	DFX_FINISH(d);
}

/* Emulating a driver's migrate_to_ram: the fault page is locked and
 * referenced by the caller; setup accepts it, the exact check allows the
 * extra reference, and finalize leaves it locked. */
static void test_fault_page_is_migrated_and_left_locked_for_the_caller(void **state)
{
	struct dfx *d = *state;
	struct mv m;
	uint64_t dev;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0xd500);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	OK(dmm_get_page(d->sys, dev));
	OK(dmm_lock_page(d->sys, dev));
	h_mmap_read_lock(d->mm);
	mv_init(&m, d->mm, TBASE, 1, d->drv, sel_dev(d));
	m.a.fault_page = dev;
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 1);
	EQ(m.src[0], dmm_migrate_pfn(dev) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	COUNTS(d->sys, dev, 2, 0);
	mv_dst_sys(d, &m);
	dmm_migrate_vma_pages(&m.a);
	EQ(nr_migrate(&m), 1);
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	SYS_ENTRY(d->sys, d->mm, TBASE, true);
	/* Still ours: locked with our reference. */
	COUNTS(d->sys, dev, 1, 0);
	FLAGS(PAGE(d->sys, dev).flags, DMM_PAGE_LOCKED, 0);
	EQ(atomic_load(&d->drv->folio_frees), 0);
	dmm_unlock_page(d->sys, dev);
	dmm_put_page(d->sys, dev);
	EQ(atomic_load(&d->drv->folio_frees), 1);
	CHECK_OK(d->sys);
	VERIFY(d->mm, TBASE, PG, 0xd500);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* Pitfalls                                                                  */

/* Pitfall 2: one stray reference on a device page passes setup's loose
 * check but fails the exact check in pages; finalize restores it. Two
 * stray references fail setup already. */
static void test_device_page_with_a_stray_reference_is_refused_by_the_exact_check(void **state)
{
	struct dfx *d = *state;
	struct mv m;
	uint64_t dev, dst;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0xe000);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	OK(dmm_get_page(d->sys, dev));
	COUNTS(d->sys, dev, 2, 1);

	h_mmap_read_lock(d->mm);
	mv_init(&m, d->mm, TBASE, 1, d->drv, sel_dev(d));
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 1);
	EQ(m.src[0], dmm_migrate_pfn(dev) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	EQ(KIND(d->mm, TBASE), DMM_PTE_MIGRATION_WRITE);
	COUNTS(d->sys, dev, 2, 0);
	mv_dst_sys(d, &m);
	dst = dmm_migrate_pfn_to_pfn(m.dst[0]);
	dmm_migrate_vma_pages(&m.a);
	EQ(m.src[0], dmm_migrate_pfn(dev) | DMM_MIGRATE_PFN_WRITE); /* MIGRATE cleared */
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev);
	COUNTS(d->sys, dev, 2, 1);
	FLAGS(PAGE(d->sys, dev).flags, 0, DMM_PAGE_LOCKED);
	FLAGS(PAGE(d->sys, dst).flags, DMM_PAGE_FREE, DMM_PAGE_LOCKED);
	DEV_VERIFY(d->drv, dev, 0xe000);

	/* Two stray references: refused at setup. */
	OK(dmm_get_page(d->sys, dev));
	h_mmap_read_lock(d->mm);
	mv_init(&m, d->mm, TBASE, 1, d->drv, sel_dev(d));
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.cpages, 0);
	EQ(m.src[0], 0);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev);
	dmm_migrate_vma_pages(&m.a);
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	CHECK_OK(d->sys);
	COUNTS(d->sys, dev, 3, 1);
	dmm_put_page(d->sys, dev);
	dmm_put_page(d->sys, dev);
	/* Without them it moves. */
	TO_SYS(d, d->mm, TBASE, 1, 1);
	VERIFY(d->mm, TBASE, PG, 0xe000);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* Pitfall 5: locked, pinned and referenced system pages are left out
 * silently; setup returns 0 and cpages counts the rest. */
static void test_setup_silently_leaves_out_locked_pinned_and_referenced_pages(void **state)
{
	struct dfx *d = *state;
	struct mv m;
	uint64_t pfn[5], pin, ref;

	MAP_ANON(d->mm, TBASE, 5);
	FILL(d->mm, TBASE, 5 * PG, 0xe100);
	for (int i = 0; i < 5; i++)
		pfn[i] = SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true);
	OK(dmm_lock_page(d->sys, pfn[1]));
	EQ(dmm_get_user_pages(d->mm, PAGE_ADDR(TBASE, 2), 1, DMM_FOLL_PIN | DMM_FOLL_WRITE, &pin), 1);
	EQ(dmm_get_user_pages(d->mm, PAGE_ADDR(TBASE, 3), 1, DMM_FOLL_GET, &ref), 1);
	EQ(pin, pfn[2]);
	EQ(ref, pfn[3]);

	h_mmap_read_lock(d->mm);
	mv_init(&m, d->mm, TBASE, 5, d->drv, SEL_SYS);
	OK(dmm_migrate_vma_setup(&m.a));
	EQ(m.a.npages, 5);
	EQ(m.a.cpages, 2);
	EQ(m.src[0], dmm_migrate_pfn(pfn[0]) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	EQ(m.src[1], 0);
	EQ(m.src[2], 0);
	EQ(m.src[3], 0);
	EQ(m.src[4], dmm_migrate_pfn(pfn[4]) | DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_WRITE);
	for (int i = 1; i < 4; i++)
		EQ(SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true), pfn[i]);
	EQ(KIND(d->mm, TBASE), DMM_PTE_MIGRATION_WRITE);
	FLAGS(PAGE(d->sys, pfn[1]).flags, DMM_PAGE_LOCKED, 0); /* still ours */
	COUNTS(d->sys, pfn[2], 1025, 1);
	COUNTS(d->sys, pfn[3], 2, 1);
	mv_dst_dev(d, &m);
	dmm_migrate_vma_pages(&m.a);
	EQ(nr_migrate(&m), 2);
	dmm_migrate_vma_finalize(&m.a);
	h_mmap_read_unlock(d->mm);
	DEV_VERIFY(d->drv, DEV_ENTRY(d, d->mm, TBASE, true), 0xe100);
	DEV_VERIFY(d->drv, DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 4), true), PSEED_OF(0xe100, 4));
	FLAGS(PAGE(d->sys, pfn[1]).flags, DMM_PAGE_LOCKED, 0);
	dmm_unlock_page(d->sys, pfn[1]);
	dmm_unpin_user_pages(d->sys, &pin, 1);
	dmm_put_user_pages(d->sys, &ref, 1);
	CHECK_OK(d->sys);
	/* Now the rest moves too. */
	TO_DEV(d, d->mm, TBASE, 5, 3);
	VERIFY(d->mm, TBASE, 5 * PG, 0xe100);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

/* One round of eviction by hand; returns the pages moved. */
static unsigned long evict_round(struct dfx *d, uint64_t *src)
{
	uint64_t dst[DEV_PAGES] = { 0 };
	unsigned long moved = 0;

	OK(dmm_migrate_device_range(d->sys, src, dmm_pgmap_pfn_first(d->drv->pgmap), DEV_PAGES));
	for (int i = 0; i < DEV_PAGES; i++) {
		uint64_t pfn;

		if (!(src[i] & DMM_MIGRATE_PFN_MIGRATE))
			continue;
		OK(dmm_alloc_page(d->sys, &pfn));
		OK(dmm_lock_page(d->sys, pfn));
		memcpy(dmm_page_address(d->sys, pfn),
		       testdrv_page_data(d->drv, dmm_migrate_pfn_to_pfn(src[i])), PG);
		dst[i] = dmm_migrate_pfn(pfn);
	}
	dmm_migrate_device_pages(d->sys, src, dst, DEV_PAGES);
	for (int i = 0; i < DEV_PAGES; i++)
		moved += !!(src[i] & DMM_MIGRATE_PFN_MIGRATE);
	dmm_migrate_device_finalize(d->sys, src, dst, DEV_PAGES);
	return moved;
}

/* Pitfall 6: eviction skips a locked device page; the next round after
 * the unlock takes it; unregistering is busy until then. */
static void test_device_range_eviction_skips_a_locked_page_until_it_is_unlocked(void **state)
{
	struct dfx *d = *state;
	struct dmm_mm *child = NULL;
	uint64_t src[DEV_PAGES], dev[3], first = dmm_pgmap_pfn_first(d->drv->pgmap);

	MAP_ANON(d->mm, TBASE, 3);
	FILL(d->mm, TBASE, 3 * PG, 0xe200);
	TO_DEV(d, d->mm, TBASE, 3, 3);
	for (int i = 0; i < 3; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	OK(dmm_fork(d->mm, &child)); /* page entries in two processes */
	OK(dmm_lock_page(d->sys, dev[1]));
	EQ(evict_round(d, src), 2);
	/* (dmm_check counts a lock held by the test as a violation: it runs
	 * once the lock is dropped.) */
	for (int i = 0; i < DEV_PAGES; i++)
		if (first + i != dev[0] && first + i != dev[2])
			EQ(src[i], 0); /* free pages and the locked one */
	EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 1), false), dev[1]);
	EQ(DEV_ENTRY(d, child, PAGE_ADDR(TBASE, 1), false), dev[1]);
	COUNTS(d->sys, dev[1], 2, 2);
	SYS_ENTRY(d->sys, d->mm, TBASE, false);
	SYS_ENTRY(d->sys, child, PAGE_ADDR(TBASE, 2), false);
	EQ(testdrv_used(d->drv), 1);
	EXPECT_RC(-EBUSY, dmm_memunmap_pages_timeout(d->drv->pgmap, 10));
	dmm_unlock_page(d->sys, dev[1]);
	CHECK_OK(d->sys);
	EXPECT_RC(-EBUSY, dmm_memunmap_pages_timeout(d->drv->pgmap, 10));
	EQ(evict_round(d, src), 1);
	CHECK_OK(d->sys);
	EQ(testdrv_used(d->drv), 0);
	EQ(atomic_load(&d->drv->faults), 0);
	EQ(atomic_load(&d->drv->folio_frees), 3);
	EQ(SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 1), false),
	   SYS_ENTRY(d->sys, child, PAGE_ADDR(TBASE, 1), false));
	OK(dmm_memunmap_pages_timeout(d->drv->pgmap, 1000));
	d->drv->pgmap = NULL;
	VERIFY(d->mm, TBASE, 3 * PG, 0xe200);
	VERIFY(child, TBASE, 3 * PG, 0xe200);
	dmm_mm_exit(child);
	dmm_mm_exit(d->mm);
	d->mm = NULL;
	CHECK_OK(d->sys);
	EQ(dmm_system_nr_free(d->sys), d->free0);
}

/* Pitfall 7: shmem and shared file mappings: no hole insertion, and their
 * pages never move to device memory. */
static void test_shmem_and_file_pages_never_move_to_device_memory(void **state)
{
	struct dfx *d = *state;
	struct dmm_file *file = NULL;
	struct dmm_stats s0;
	uint64_t pfn[4];

	OK(dmm_file_create(d->sys, 4, &file));
	FILE_FILL(file, 0, 4 * PG, 0xe300);
	MAP_FIXED(d->mm, TBASE, 4 * PG, RW, ANON_SHARED, NULL, 0);
	MAP_FIXED(d->mm, TBASE2, 4 * PG, RW, DMM_MAP_SHARED, file, 0);
	MAP_FIXED(d->mm, TBASE2 + 16 * PG, 4 * PG, RW, DMM_MAP_PRIVATE, file, 0);
	/* Page 0, 1 touched, 2, 3 holes. */
	FILL(d->mm, TBASE, 2 * PG, 0xe400);
	FILL(d->mm, TBASE2, PG, 0xe500);
	EQ(LOAD(d->mm, TBASE2 + PG), 0xe300 + WORDS_PER_PAGE);
	EQ(LOAD(d->mm, TBASE2 + 16 * PG), 0xe500); /* file page, read-only */
	for (int i = 0; i < 2; i++)
		pfn[i] = PFN(d->mm, PAGE_ADDR(TBASE2, i));
	CHECK_OK(d->sys);
	s0 = STATS(d->sys);
	TO_DEV(d, d->mm, TBASE, 4, 0);
	TO_DEV(d, d->mm, TBASE2, 4, 0);
	TO_DEV(d, d->mm, TBASE2 + 16 * PG, 4, 0);
	CHECK_OK(d->sys);
	EQ(STAT_DELTA(d->sys, s0, migrate_holes), 0);
	/* Collected pages get destinations that pages refuses: all freed. */
	EQ(testdrv_used(d->drv), 0);
	EQ(STAT_DELTA(d->sys, s0, dev_page_alloc), STAT_DELTA(d->sys, s0, dev_page_free));
	EQ(STAT_DELTA(d->sys, s0, migrate_moved), 0);
	for (int i = 2; i < 4; i++) {
		PTE_NONE(d->mm, PAGE_ADDR(TBASE, i));
		PTE_NONE(d->mm, PAGE_ADDR(TBASE2, i));
		PTE_NONE(d->mm, TBASE2 + (16 + (uint64_t)i) * PG);
	}
	for (int i = 0; i < 2; i++) {
		EQ(PFN(d->mm, PAGE_ADDR(TBASE2, i)), pfn[i]);
		FLAGS(PAGE(d->sys, pfn[i]).flags, DMM_PAGE_PAGECACHE, DMM_PAGE_LOCKED);
		SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true);
	}
	SYS_ENTRY(d->sys, d->mm, TBASE2 + 16 * PG, false);
	VERIFY(d->mm, TBASE, 2 * PG, 0xe400);
	VERIFY_ZERO(d->mm, PAGE_ADDR(TBASE, 2), 2 * PG);
	VERIFY(d->mm, TBASE2, PG, 0xe500);
	VERIFY(d->mm, TBASE2 + 16 * PG, PG, 0xe500);
	VERIFY(d->mm, PAGE_ADDR(TBASE2, 1), 3 * PG, PSEED_OF(0xe300, 1));
	FILE_VERIFY(file, PG, 3 * PG, PSEED_OF(0xe300, 1));
	FILE_VERIFY(file, 0, PG, 0xe500);
	CHECK_OK(d->sys);
	OK(dmm_munmap(d->mm, TBASE, 4 * PG));
	OK(dmm_munmap(d->mm, TBASE2, 32 * PG));
	dmm_file_put(file);
	DFX_FINISH(d);
}

/* Pitfall 7: in a private file mapping the anonymous CoW pages migrate;
 * holes and unwritten file pages stay; zapping a device page works. */
static void test_private_file_mapping_migrates_only_its_anonymous_pages(void **state)
{
	struct dfx *d = *state;
	struct dmm_file *file = NULL;
	uint64_t fpfn, dev;
	unsigned long frees, faults;

	OK(dmm_file_create(d->sys, 8, &file));
	FILE_FILL(file, 0, 8 * PG, 0xe600);
	MAP_FIXED(d->mm, TBASE, 4 * PG, RW, DMM_MAP_PRIVATE, file, 0);
	/* page 0 hole, 1 read (file page), 2 and 3 written (anon CoW) */
	EQ(LOAD(d->mm, PAGE_ADDR(TBASE, 1)), PSEED_OF(0xe600, 1));
	fpfn = PFN(d->mm, PAGE_ADDR(TBASE, 1));
	FILL(d->mm, PAGE_ADDR(TBASE, 2), 2 * PG, 0xe700);
	TO_DEV(d, d->mm, TBASE, 4, 2);
	CHECK_OK(d->sys);
	PTE_NONE(d->mm, TBASE);
	EQ(SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, 1), false), fpfn);
	FLAGS(PAGE(d->sys, fpfn).flags, DMM_PAGE_PAGECACHE, 0);
	dev = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 2), true);
	DEV_VERIFY(d->drv, dev, 0xe700);
	DEV_VERIFY(d->drv, DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, 3), true), PSEED_OF(0xe700, 1));
	COUNTS(d->sys, dev, 1, 1);
	/* (The file page was collected, and its destination freed unused
	 * when pages refused it.) */
	EQ(testdrv_used(d->drv), 2);
	frees = atomic_load(&d->drv->folio_frees);
	/* Zap one device page: the file shows through again. */
	OK(dmm_madvise(d->mm, PAGE_ADDR(TBASE, 3), PG, DMM_MADV_DONTNEED));
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->folio_frees), frees + 1);
	EQ(testdrv_used(d->drv), 1);
	EQ(atomic_load(&d->drv->faults), 0);
	PTE_NONE(d->mm, PAGE_ADDR(TBASE, 3));
	VERIFY(d->mm, PAGE_ADDR(TBASE, 3), PG, PSEED_OF(0xe600, 3));
	VERIFY(d->mm, TBASE, 2 * PG, 0xe600);
	VERIFY(d->mm, PAGE_ADDR(TBASE, 2), PG, 0xe700);
	FILE_VERIFY(file, 0, 8 * PG, 0xe600);
	CHECK_OK(d->sys);

	faults = atomic_load(&d->drv->faults);
	/* All pages written: the whole mapping migrates. */
	MAP_FIXED(d->mm, TBASE2, 4 * PG, RW, DMM_MAP_PRIVATE, file, 4);
	FILL(d->mm, TBASE2, 4 * PG, 0xe800);
	TO_DEV(d, d->mm, TBASE2, 4, 4);
	for (int i = 0; i < 4; i++)
		DEV_VERIFY(d->drv, DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE2, i), true), PSEED_OF(0xe800, i));
	CHECK_OK(d->sys);
	/* Unmap without migrating back. */
	OK(dmm_munmap(d->mm, TBASE2, 4 * PG));
	CHECK_OK(d->sys);
	EQ(atomic_load(&d->drv->faults), faults);
	FILE_VERIFY(file, 0, 8 * PG, 0xe600);
	OK(dmm_munmap(d->mm, TBASE, 4 * PG));
	dmm_file_put(file);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* Allocation failures                                                       */

/*
 * The layout for the to-device runs: A = 8 pages straddling a page-table
 * boundary (0-1 written, 2 zero page, 3 hole, 4-7 holes in a PTE table
 * that does not exist yet) and B = a separate untouched VMA of 2 pages
 * (no anon_vma, no page table).
 */
#define A_BASE (TBASE + 0x200000UL - 4 * PG)
#define A_PAGES 8
#define B_BASE (TBASE + 0x10000000UL)
#define B_PAGES 2
#define A_SEED 0xf000

struct snap {
	struct dmm_pte_info p[A_PAGES + B_PAGES];
};

static uint64_t lay_addr(int i)
{
	return i < A_PAGES ? PAGE_ADDR(A_BASE, i) : PAGE_ADDR(B_BASE, i - A_PAGES);
}

static void layout_map(struct dfx *d, struct snap *s)
{
	MAP_ANON(d->mm, A_BASE, A_PAGES);
	MAP_FIXED(d->mm, B_BASE, B_PAGES * PG, DMM_PROT_READ, ANON_PRIVATE, NULL, 0);
	FILL(d->mm, A_BASE, 2 * PG, A_SEED);
	EQ(LOAD(d->mm, PAGE_ADDR(A_BASE, 2)), 0);
	for (int i = 0; i < A_PAGES + B_PAGES; i++)
		s->p[i] = PTE(d->mm, lay_addr(i));
}

/* Every page is where it was (same entry) or on the device with its data. */
static int layout_check_at(const char *file, int line, struct dfx *d, const struct snap *s)
{
	int on_dev = 0;

	check_ok_at(file, line, d->sys);
	for (int i = 0; i < A_PAGES + B_PAGES; i++) {
		struct dmm_pte_info p = pte_at(file, line, d->mm, lay_addr(i));
		bool writable = i < A_PAGES;

		if (p.kind != DMM_PTE_NONE && testdrv_owns(d->drv, p.pfn)) {
			uint64_t pfn = dev_entry_at(file, line, d, d->mm, lay_addr(i), writable);

			if (i < 2)
				dev_verify_at(file, line, d->drv, pfn, PSEED_OF(A_SEED, i), false);
			else
				dev_verify_at(file, line, d->drv, pfn, 0, true);
			on_dev++;
		} else if (p.kind != s->p[i].kind || p.pfn != s->p[i].pfn || p.write != s->p[i].write) {
			h_fail(file, line, "page %d at %#" PRIx64 ": %s pfn %" PRIu64 " w%d, expected %s pfn %"
			       PRIu64 " w%d or a device entry", i, lay_addr(i), dmm_pte_kind_name(p.kind),
			       p.pfn, p.write, dmm_pte_kind_name(s->p[i].kind), s->p[i].pfn, s->p[i].write);
		}
	}
	verify_at(file, line, d->mm, A_BASE, 2 * PG, A_SEED, false);
	verify_at(file, line, d->mm, PAGE_ADDR(A_BASE, 2), (A_PAGES - 2) * PG, 0, true);
	verify_at(file, line, d->mm, B_BASE, B_PAGES * PG, 0, true);
	check_ok_at(file, line, d->sys);
	return on_dev;
}
#define LAYOUT_CHECK(d, s) layout_check_at(__FILE__, __LINE__, d, s)

/* Everything unmapped: no device page in use, all handed out came back,
 * all frames free. */
static void balance_at(const char *file, int line, struct dfx *d)
{
	struct dmm_stats s = stats_at(file, line, d->sys);

	OK(dmm_munmap(d->mm, TBASE, 0x20000000UL));
	check_ok_at(file, line, d->sys);
	s = stats_at(file, line, d->sys);
	if (testdrv_used(d->drv) != 0 || dmm_pgmap_nr_allocated(d->drv->pgmap) != 0)
		h_fail(file, line, "%" PRIu64 " device pages still in use", testdrv_used(d->drv));
	if (s.dev_page_alloc != s.dev_page_free || atomic_load(&d->drv->folio_frees) != s.dev_page_free)
		h_fail(file, line, "device pages: %" PRIu64 " handed out, %" PRIu64
		       " given back, folio_free ran %lu times",
		       s.dev_page_alloc, s.dev_page_free, atomic_load(&d->drv->folio_frees));
	if (dmm_system_nr_free(d->sys) != d->free0)
		h_fail(file, line, "nr_free %" PRIu64 ", expected %" PRIu64, dmm_system_nr_free(d->sys),
		       d->free0);
	/* A fresh address space for the next round: page tables live until
	 * exit, and the next round must allocate them again. */
	dmm_mm_exit(d->mm);
	d->mm = NULL;
	if (dmm_mm_create(d->sys, &d->mm) != 0)
		h_fail(file, line, "dmm_mm_create failed");
	check_ok_at(file, line, d->sys);
}
#define BALANCE(d) balance_at(__FILE__, __LINE__, d)

static void arm(struct dfx *d, enum dmm_inject_site site, unsigned long n)
{
	struct dmm_inject_config c = { .countdown = n };

	OK(dmm_inject_set(d->sys, site, &c));
}

static void disarm(struct dfx *d, enum dmm_inject_site site)
{
	struct dmm_inject_config c = { 0 };

	OK(dmm_inject_set(d->sys, site, &c));
}

static const enum dmm_inject_site all_sites[] = { DMM_INJECT_FRAME, DMM_INJECT_PGTABLE, DMM_INJECT_META };

/* System -> device with the Nth allocation at each site failing. */
static void test_injected_failures_while_migrating_to_device_leave_pages_migrated_or_untouched(void **state)
{
	struct dfx *d = *state;
	struct snap s;

	for (size_t k = 0; k < sizeof(all_sites) / sizeof(all_sites[0]); k++) {
		enum dmm_inject_site site = all_sites[k];
		unsigned long n;

		for (n = 1; n < 200; n++) {
			uint64_t c0 = dmm_inject_count(d->sys, site);
			unsigned long moved = 0, moved2 = 0;
			int rc, rc2, on_dev;
			bool fired;

			layout_map(d, &s);
			arm(d, site, n);
			rc = testdrv_migrate_to_dev(d->drv, d->mm, A_BASE, A_PAGES, &moved);
			rc2 = testdrv_migrate_to_dev(d->drv, d->mm, B_BASE, B_PAGES, &moved2);
			disarm(d, site);
			fired = dmm_inject_count(d->sys, site) != c0;
			TRUE(rc == 0 || rc == -ENOMEM);
			TRUE(rc2 == 0 || rc2 == -ENOMEM);
			on_dev = LAYOUT_CHECK(d, &s);
			EQ(on_dev, moved + moved2);
			if (!fired) {
				OK(rc);
				OK(rc2);
				EQ(on_dev, A_PAGES + B_PAGES);
			}
			/* What is left moves once the failure has passed. */
			OK(testdrv_migrate_to_dev(d->drv, d->mm, A_BASE, A_PAGES, NULL));
			OK(testdrv_migrate_to_dev(d->drv, d->mm, B_BASE, B_PAGES, NULL));
			EQ(LAYOUT_CHECK(d, &s), A_PAGES + B_PAGES);
			BALANCE(d);
			if (!fired)
				break;
		}
		TRUE(n < 200);
		print_message("    to device, %s: %lu failure points\n",
			      site == DMM_INJECT_FRAME ? "frame" : site == DMM_INJECT_PGTABLE ? "pgtable" : "meta", n - 1);
	}
	DFX_FINISH(d);
}

/* Device -> system (explicit migration, then CPU faults) with the Nth
 * allocation at each site failing. */
static void test_injected_failures_while_migrating_back_leave_pages_migrated_or_untouched(void **state)
{
	struct dfx *d = *state;
	const int n_pages = 4;

	for (size_t k = 0; k < sizeof(all_sites) / sizeof(all_sites[0]); k++) {
		enum dmm_inject_site site = all_sites[k];
		unsigned long n;

		for (n = 1; n < 200; n++) {
			uint64_t c0 = dmm_inject_count(d->sys, site), dev[4];
			unsigned long moved = 0;
			int rc, back = 0;
			bool fired;

			MAP_ANON(d->mm, TBASE, n_pages);
			FILL(d->mm, TBASE, n_pages * PG, 0xf100);
			TO_DEV(d, d->mm, TBASE, n_pages, n_pages);
			for (int i = 0; i < n_pages; i++)
				dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
			arm(d, site, n);
			/* Pages 0-1 explicitly, 2-3 by CPU faults (the coherent
			 * variant has no faults: explicit for all). */
			rc = testdrv_migrate_to_sys(d->drv, d->mm, TBASE, dfx_private(d) ? 2 : 4, &moved);
			TRUE(rc == 0 || rc == -ENOMEM);
			if (dfx_private(d)) {
				for (int i = 2; i < 4; i++) {
					uint32_t v = 0;
					int r = dmm_load32(d->mm, PAGE_ADDR(TBASE, i), &v);

					TRUE(r == 0 || r == -ENOMEM);
					if (r == 0)
						EQ(v, PSEED_OF(0xf100, i));
				}
			}
			disarm(d, site);
			fired = dmm_inject_count(d->sys, site) != c0;
			CHECK_OK(d->sys);
			for (int i = 0; i < n_pages; i++) {
				struct dmm_pte_info p = PTE(d->mm, PAGE_ADDR(TBASE, i));

				if (p.kind == DMM_PTE_PRESENT && !testdrv_owns(d->drv, p.pfn)) {
					SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), true);
					back++;
				} else {
					EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true), dev[i]);
					COUNTS(d->sys, dev[i], 1, 1);
					FLAGS(PAGE(d->sys, dev[i]).flags, 0, DMM_PAGE_LOCKED);
					DEV_VERIFY(d->drv, dev[i], PSEED_OF(0xf100, i));
				}
			}
			if (!fired) {
				OK(rc);
				EQ(back, n_pages);
			}
			EQ(testdrv_used(d->drv), (uint64_t)(n_pages - back));
			VERIFY(d->mm, TBASE, n_pages * PG, 0xf100);
			CHECK_OK(d->sys);
			BALANCE(d);
			if (!fired)
				break;
		}
		TRUE(n < 200);
		print_message("    back, %s: %lu failure points\n",
			      site == DMM_INJECT_FRAME ? "frame" : site == DMM_INJECT_PGTABLE ? "pgtable" : "meta", n - 1);
	}
	DFX_FINISH(d);
}

/* testdrv's device-page allocation failing at the Nth page of a window. */
static void test_device_allocation_failure_at_each_page_restores_exactly_that_page(void **state)
{
	struct dfx *d = *state;
	struct snap s;

	for (long n = 1; n <= A_PAGES + B_PAGES + 1; n++) {
		unsigned long moved = 0, moved2 = 0;

		layout_map(d, &s);
		atomic_store(&d->drv->fail_dev_alloc, n);
		OK(testdrv_migrate_to_dev(d->drv, d->mm, A_BASE, A_PAGES, &moved));
		OK(testdrv_migrate_to_dev(d->drv, d->mm, B_BASE, B_PAGES, &moved2));
		atomic_store(&d->drv->fail_dev_alloc, 0);
		EQ(moved + moved2, n <= A_PAGES + B_PAGES ? A_PAGES + B_PAGES - 1 : A_PAGES + B_PAGES);
		if (n <= A_PAGES + B_PAGES) {
			struct dmm_pte_info p = PTE(d->mm, lay_addr((int)n - 1));

			EQ(p.kind, s.p[n - 1].kind);
			EQ(p.pfn, s.p[n - 1].pfn);
		}
		EQ(LAYOUT_CHECK(d, &s), moved + moved2);
		BALANCE(d);
	}
	DFX_FINISH(d);
}

/* testdrv's system-page allocation failing on the way back: the window
 * stays on the device; a fault that cannot allocate is -ENOMEM. */
static void test_system_allocation_failure_on_the_way_back_leaves_the_window_on_the_device(void **state)
{
	struct dfx *d = *state;
	uint64_t dev[4];
	unsigned long moved = 7;

	MAP_ANON(d->mm, TBASE, 4);
	FILL(d->mm, TBASE, 4 * PG, 0xf200);
	TO_DEV(d, d->mm, TBASE, 4, 4);
	for (int i = 0; i < 4; i++)
		dev[i] = DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true);
	for (long n = 1; n <= 4; n++) {
		atomic_store(&d->drv->fail_sys_alloc, n);
		EXPECT_RC(-ENOMEM, testdrv_migrate_to_sys(d->drv, d->mm, TBASE, 4, &moved));
		atomic_store(&d->drv->fail_sys_alloc, 0);
		EQ(moved, 0);
		CHECK_OK(d->sys);
		for (int i = 0; i < 4; i++) {
			EQ(DEV_ENTRY(d, d->mm, PAGE_ADDR(TBASE, i), true), dev[i]);
			COUNTS(d->sys, dev[i], 1, 1);
			FLAGS(PAGE(d->sys, dev[i]).flags, 0, DMM_PAGE_LOCKED);
			DEV_VERIFY(d->drv, dev[i], PSEED_OF(0xf200, i));
		}
		EQ(dmm_system_nr_free(d->sys), d->free0);
	}
	if (dfx_private(d)) {
		uint32_t v;
		uint64_t pfn;

		atomic_store(&d->drv->fail_sys_alloc, 1);
		EXPECT_RC(-ENOMEM, dmm_load32(d->mm, TBASE, &v));
		EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev[0]);
		atomic_store(&d->drv->fail_sys_alloc, 1);
		EXPECT_RC(-ENOMEM, dmm_get_user_pages(d->mm, TBASE, 1, DMM_FOLL_GET, &pfn));
		EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev[0]);
		atomic_store(&d->drv->fail_sys_alloc, 0);
		CHECK_OK(d->sys);
	}
	VERIFY(d->mm, TBASE, 4 * PG, 0xf200);
	CHECK_OK(d->sys);
	BALANCE(d);
	DFX_FINISH(d);
}

/* migrate_to_ram's result is the fault's: SIGBUS -> -EFAULT, OOM ->
 * -ENOMEM, for CPU accesses and GUP; the page stays on the device. */
static void test_forced_fault_results_reach_cpu_accesses_and_gup(void **state)
{
	struct dfx *d = *state;
	uint64_t dev, pfn;
	uint32_t v;

	MAP_ANON(d->mm, TBASE, 1);
	FILL(d->mm, TBASE, PG, 0xf300);
	TO_DEV(d, d->mm, TBASE, 1, 1);
	dev = DEV_ENTRY(d, d->mm, TBASE, true);
	atomic_store(&d->drv->fault_result, DMM_VM_FAULT_SIGBUS);
	EXPECT_RC(-EFAULT, dmm_load32(d->mm, TBASE, &v));
	EXPECT_RC(-EFAULT, dmm_store32(d->mm, TBASE, 1));
	EXPECT_RC(-EFAULT, dmm_get_user_pages(d->mm, TBASE, 1, DMM_FOLL_GET, &pfn));
	EXPECT_RC(-EFAULT, dmm_get_user_pages_fast(d->mm, TBASE, 1, DMM_FOLL_PIN, &pfn));
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev);
	COUNTS(d->sys, dev, 1, 1);
	FLAGS(PAGE(d->sys, dev).flags, 0, DMM_PAGE_LOCKED);
	atomic_store(&d->drv->fault_result, DMM_VM_FAULT_OOM);
	EXPECT_RC(-ENOMEM, dmm_load32(d->mm, TBASE, &v));
	EXPECT_RC(-ENOMEM, dmm_store32(d->mm, TBASE, 1));
	EXPECT_RC(-ENOMEM, dmm_get_user_pages(d->mm, TBASE, 1, DMM_FOLL_GET, &pfn));
	CHECK_OK(d->sys);
	EQ(DEV_ENTRY(d, d->mm, TBASE, true), dev);
	COUNTS(d->sys, dev, 1, 1);
	EQ(atomic_load(&d->drv->fault_migrations), 0);
	EQ(atomic_load(&d->drv->faults), 7);
	DEV_VERIFY(d->drv, dev, 0xf300);
	atomic_store(&d->drv->fault_result, 0);
	VERIFY(d->mm, TBASE, PG, 0xf300);
	EQ(atomic_load(&d->drv->fault_migrations), 1);
	CHECK_OK(d->sys);
	DFX_FINISH(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		DT2(test_hole_in_writable_vma_becomes_a_writable_device_entry),
		DT2(test_hole_in_read_only_vma_becomes_a_read_only_device_entry),
		DT2(test_zero_page_is_replaced_like_a_hole),
		DT2(test_system_page_moves_to_device_with_its_write_bit),
		DT2(test_page_shared_after_fork_moves_read_only_in_both_processes),
		DT2(test_read_only_exclusive_page_moves_read_only),
		DT2(test_migrate_to_sys_brings_pages_back_with_their_write_bit),
		DT2(test_migrate_to_sys_of_a_shared_device_page_maps_one_page_in_both),
		DTP(test_cpu_read_fault_migrates_a_writable_device_page_back_writable),
		DTP(test_cpu_write_fault_migrates_a_device_page_back_and_writes),
		DTP(test_fault_back_of_a_read_only_exclusive_entry_is_read_only_then_reused),
		DTP(test_fault_back_in_a_read_only_vma_is_read_only),
		DT2(test_failed_device_allocation_restores_the_first_page),
		DT2(test_failed_device_allocation_restores_a_middle_page),
		DT2(test_failed_device_allocation_restores_the_last_page),
		DT2(test_skipped_destinations_leave_device_pages_in_place),
		DTP(test_fork_shares_a_device_private_page_read_only_and_a_child_read_migrates_it_once),
		DTP(test_fork_shares_a_device_private_page_read_only_and_a_parent_read_migrates_it_once),
		DTP(test_fork_shared_device_private_page_written_by_the_child_migrates_then_copies),
		DTP(test_fork_shared_device_private_page_written_by_the_parent_migrates_then_copies),
		DTP(test_mprotect_downgrades_writable_device_private_entries_and_never_upgrades),
		DT2(test_munmap_frees_device_pages_without_migrating_them_back),
		DT2(test_exit_frees_device_pages_without_migrating_them_back),
		DT2(test_mremap_moves_device_entries_verbatim),
		DT2(test_mremap_dontunmap_moves_device_entries_and_leaves_the_old_range_empty),
		DTC(test_cpu_reads_and_writes_coherent_pages_in_place),
		DTC(test_coherent_page_written_by_the_child_after_fork_is_copied_to_system_memory),
		DTC(test_coherent_page_written_by_the_parent_after_fork_is_copied_to_system_memory),
		DTP(test_gup_on_a_device_private_page_migrates_it_back),
		DTC(test_short_term_pin_of_a_coherent_page_blocks_migrate_to_sys),
		DT2(test_migrate_vma_setup_rejects_bad_arguments),
		DT2(test_setup_selects_by_kind_flags_and_owner),
		DT2(test_collect_installs_migration_entries_by_write_bit_and_exclusivity),
		DTP(test_fault_page_is_migrated_and_left_locked_for_the_caller),
		DT2(test_device_page_with_a_stray_reference_is_refused_by_the_exact_check),
		DT2(test_setup_silently_leaves_out_locked_pinned_and_referenced_pages),
		DT2(test_device_range_eviction_skips_a_locked_page_until_it_is_unlocked),
		DT2(test_shmem_and_file_pages_never_move_to_device_memory),
		DT2(test_private_file_mapping_migrates_only_its_anonymous_pages),
		DT2(test_injected_failures_while_migrating_to_device_leave_pages_migrated_or_untouched),
		DT2(test_injected_failures_while_migrating_back_leave_pages_migrated_or_untouched),
		DT2(test_device_allocation_failure_at_each_page_restores_exactly_that_page),
		DT2(test_system_allocation_failure_on_the_way_back_leaves_the_window_on_the_device),
		DTP(test_forced_fault_results_reach_cpu_accesses_and_gup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
