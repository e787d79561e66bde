/* SPDX-License-Identifier: MIT */
/*
 * Device memory (ZONE_DEVICE, semantics.md §1.2-1.5, §3.16): registering
 * a pgmap (every validation error of dmm_memremap_pages, and that a
 * failure registers nothing), the life of a device page (free at refcount
 * 0, handed out locked with one reference, folio_free exactly once per
 * 1 -> 0 transition, the pgmap's allocation count), pgmap references, and
 * unregistering (busy while a page lives, fine after eviction, refusing
 * new pages while it is being torn down).
 *
 * Every test that applies to both memory types runs twice, once per
 * variant (DEVICE_PRIVATE, DEVICE_COHERENT). Each fixture has one testdrv
 * device of DEV_PAGES pages, registered first, so it sits at the lowest
 * device pfn.
 */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "device_helpers.h"

/* ------------------------------------------------------------------------ */
/* A bare driver for registration tests                                      */

static _Atomic unsigned long bare_frees;
static int bare_owner; /* its address is the owner */

static void bare_folio_free(struct dmm_pgmap *pgmap, uint64_t pfn)
{
	(void)pgmap;
	(void)pfn;
	atomic_fetch_add(&bare_frees, 1);
}

static unsigned int bare_migrate_to_ram(struct dmm_vm_fault *vmf)
{
	(void)vmf;
	return DMM_VM_FAULT_SIGBUS;
}

static const struct dmm_pgmap_ops bare_ops = {
	.folio_free = bare_folio_free,
	.migrate_to_ram = bare_migrate_to_ram,
};
static const struct dmm_pgmap_ops ops_without_folio_free = {
	.migrate_to_ram = bare_migrate_to_ram,
};
static const struct dmm_pgmap_ops ops_without_migrate_to_ram = {
	.folio_free = bare_folio_free,
};

static struct dmm_pgmap_desc good_desc(enum dmm_memory_type type)
{
	struct dmm_pgmap_desc desc = {
		.type = type,
		.nr_pages = 16,
		.pfn_start = 0,
		.ops = &bare_ops,
		.owner = &bare_owner,
		.driver_data = &bare_frees,
	};
	return desc;
}

/* The pfn the next automatically placed pgmap gets: the section after the
 * fixture's driver. */
static uint64_t next_auto_pfn(struct dfx *d)
{
	return dmm_pgmap_pfn_first(d->drv->pgmap) + DMM_PGMAP_ALIGN;
}

/*
 * Nothing was registered by a failed call: the fixed start (if any, and
 * unless it lies in RAM or in another pgmap) is no device pfn, and the
 * next automatic registration lands where it would have without the
 * failure.
 */
static void nothing_registered_at(const char *file, int line, struct dfx *d, uint64_t fixed_pfn)
{
	struct dmm_pgmap_desc desc = good_desc(d->type);
	struct dmm_pgmap *pg = NULL;
	struct dmm_page_info pi;
	int rc;

	if (fixed_pfn) {
		rc = dmm_page_query(d->sys, fixed_pfn, &pi);
		if (rc != -ENXIO)
			h_fail(file, line, "dmm_page_query(%#" PRIx64 ") = %d after a failed registration",
			       fixed_pfn, rc);
		if (dmm_page_pgmap(d->sys, fixed_pfn) != NULL)
			h_fail(file, line, "pfn %#" PRIx64 " has a pgmap after a failed registration",
			       fixed_pfn);
	}
	rc = dmm_memremap_pages(d->sys, &desc, &pg);
	if (rc != 0)
		h_fail(file, line, "a good registration after the failure = %d (%s)", rc, errname(rc));
	if (dmm_pgmap_pfn_first(pg) != next_auto_pfn(d))
		h_fail(file, line, "placed at %#" PRIx64 ", expected %#" PRIx64, dmm_pgmap_pfn_first(pg),
		       next_auto_pfn(d));
	rc = dmm_memunmap_pages_timeout(pg, 1000);
	if (rc != 0)
		h_fail(file, line, "unregistering an unused pgmap = %d (%s)", rc, errname(rc));
	check_ok_at(file, line, d->sys);
}
#define NOTHING_REGISTERED(d, fixed_pfn) nothing_registered_at(__FILE__, __LINE__, d, fixed_pfn)

/* dmm_memremap_pages(desc) fails with err, leaves *out alone, registers nothing. */
#define REJECTED(d, desc, err)                                                             \
	do {                                                                               \
		struct dmm_pgmap *out_ = (struct dmm_pgmap *)&bare_owner;                  \
		EXPECT_RC(err, dmm_memremap_pages((d)->sys, &(desc), &out_));              \
		TRUE(out_ == (struct dmm_pgmap *)&bare_owner);                             \
		NOTHING_REGISTERED(d, 0);                                                  \
	} while (0)

/* ------------------------------------------------------------------------ */
/* dmm_memremap_pages validation                                             */

static void test_memremap_rejects_null_arguments(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);
	struct dmm_pgmap *pg = NULL;

	EXPECT_RC(-EINVAL, dmm_memremap_pages(NULL, &desc, &pg));
	EXPECT_RC(-EINVAL, dmm_memremap_pages(d->sys, NULL, &pg));
	EXPECT_RC(-EINVAL, dmm_memremap_pages(d->sys, &desc, NULL));
	TRUE(pg == NULL);
	NOTHING_REGISTERED(d, 0);
}

static void test_memremap_rejects_zero_pages(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);

	desc.nr_pages = 0;
	REJECTED(d, desc, -EINVAL);
}

static void test_memremap_rejects_more_than_the_maximum_pages(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);

	desc.nr_pages = DMM_PGMAP_MAX_PAGES + 1;
	REJECTED(d, desc, -EINVAL);
	desc.nr_pages = UINT64_MAX;
	REJECTED(d, desc, -EINVAL);
}

static void test_memremap_rejects_unknown_types(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);

	desc.type = (enum dmm_memory_type)0; /* reserved: an uninitialised field */
	REJECTED(d, desc, -EINVAL);
	desc.type = (enum dmm_memory_type)3;
	REJECTED(d, desc, -EINVAL);
	desc.type = (enum dmm_memory_type)-1;
	REJECTED(d, desc, -EINVAL);
}

/* Pitfall 15: Linux dereferences a NULL ops for COHERENT; devmm refuses it
 * for both types. */
static void test_memremap_rejects_null_ops(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);

	desc.ops = NULL;
	REJECTED(d, desc, -EINVAL);
}

static void test_memremap_rejects_missing_folio_free(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);

	desc.ops = &ops_without_folio_free;
	REJECTED(d, desc, -EINVAL);
}

static void test_memremap_requires_migrate_to_ram_for_private_only(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);
	struct dmm_pgmap *pg = NULL;

	desc.ops = &ops_without_migrate_to_ram;
	if (dfx_private(d)) {
		REJECTED(d, desc, -EINVAL);
		return;
	}
	/* COHERENT pages never fault: no migrate_to_ram needed. */
	OK(dmm_memremap_pages(d->sys, &desc, &pg));
	EQ(dmm_pgmap_type(pg), DMM_MEMORY_DEVICE_COHERENT);
	EQ(dmm_pgmap_pfn_first(pg), next_auto_pfn(d));
	CHECK_OK(d->sys);
	OK(dmm_memunmap_pages_timeout(pg, 1000));
	CHECK_OK(d->sys);
}

static void test_memremap_rejects_null_owner(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);

	desc.owner = NULL;
	REJECTED(d, desc, -EINVAL);
}

static void test_memremap_rejects_unaligned_pfn_start(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);
	uint64_t free_pfn = next_auto_pfn(d);

	desc.pfn_start = free_pfn + 1;
	REJECTED(d, desc, -EINVAL);
	desc.pfn_start = free_pfn + DMM_PGMAP_ALIGN / 2;
	REJECTED(d, desc, -EINVAL);
	desc.pfn_start = free_pfn - 1;
	REJECTED(d, desc, -EINVAL);
	NOTHING_REGISTERED(d, free_pfn + 1);
}

/* A fixed range that intersects system RAM: -ENXIO. The system here has
 * 40000 frames, so RAM ends inside the second section. */
static void test_memremap_rejects_fixed_range_in_system_ram(void **state)
{
	struct dfx *d = *state;
	struct dmm_system *sys = sys_new(40000);
	struct dmm_pgmap_desc desc = good_desc(d->type);
	struct dmm_pgmap *pg = NULL;
	struct dmm_page_info pi;

	assert_non_null(sys);
	desc.pfn_start = DMM_PGMAP_ALIGN; /* pfns 32768.. are RAM up to 40000 */
	EXPECT_RC(-ENXIO, dmm_memremap_pages(sys, &desc, &pg));
	TRUE(pg == NULL);
	/* The frame is still plain RAM. */
	OK(dmm_page_query(sys, DMM_PGMAP_ALIGN, &pi));
	EQ(pi.location, DMM_LOC_SYSTEM);
	TRUE(!(pi.flags & DMM_PAGE_ZONE_DEVICE));
	TRUE(dmm_page_pgmap(sys, DMM_PGMAP_ALIGN) == NULL);
	/* A range that starts in RAM and runs beyond it is refused as well. */
	desc.nr_pages = 2 * DMM_PGMAP_ALIGN;
	EXPECT_RC(-ENXIO, dmm_memremap_pages(sys, &desc, &pg));
	TRUE(pg == NULL);
	OK(dmm_check(sys, NULL, 0));

	/* The first section above RAM is fine, and is where automatic
	 * placement would have put it. */
	desc.nr_pages = 16;
	desc.pfn_start = 2 * DMM_PGMAP_ALIGN;
	OK(dmm_memremap_pages(sys, &desc, &pg));
	EQ(dmm_pgmap_pfn_first(pg), 2 * DMM_PGMAP_ALIGN);
	OK(dmm_check(sys, NULL, 0));
	OK(dmm_memunmap_pages_timeout(pg, 1000));
	desc.pfn_start = 0;
	OK(dmm_memremap_pages(sys, &desc, &pg));
	EQ(dmm_pgmap_pfn_first(pg), 2 * DMM_PGMAP_ALIGN);
	OK(dmm_memunmap_pages_timeout(pg, 1000));
	OK(dmm_check(sys, NULL, 0));
	dmm_system_destroy(sys);
}

/* A fixed range that overlaps another pgmap: -ENOMEM ("conflicting
 * mapping"), whether the new range's start or its end hits it. */
static void test_memremap_rejects_fixed_range_overlapping_another_pgmap(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);
	struct dmm_pgmap *a = NULL, *b = NULL;
	uint64_t s1 = next_auto_pfn(d), s2 = s1 + DMM_PGMAP_ALIGN, s3 = s2 + DMM_PGMAP_ALIGN;
	struct dmm_page_info pi;

	/* A occupies the section at s2. */
	desc.pfn_start = s2;
	OK(dmm_memremap_pages(d->sys, &desc, &a));
	EQ(dmm_pgmap_pfn_first(a), s2);
	CHECK_OK(d->sys);

	/* Same start. */
	desc.pfn_start = s2;
	EXPECT_RC(-ENOMEM, dmm_memremap_pages(d->sys, &desc, &b));
	TRUE(b == NULL);
	/* Starts before A and ends inside it. */
	desc.pfn_start = s1;
	desc.nr_pages = DMM_PGMAP_ALIGN + 1;
	EXPECT_RC(-ENOMEM, dmm_memremap_pages(d->sys, &desc, &b));
	TRUE(b == NULL);
	/* Starts inside A's section (past its 16 pages) and runs beyond. */
	desc.pfn_start = s2;
	desc.nr_pages = 2 * DMM_PGMAP_ALIGN;
	EXPECT_RC(-ENOMEM, dmm_memremap_pages(d->sys, &desc, &b));
	TRUE(b == NULL);
	/* The driver's own range too. */
	desc.pfn_start = dmm_pgmap_pfn_first(d->drv->pgmap);
	desc.nr_pages = 1;
	EXPECT_RC(-ENOMEM, dmm_memremap_pages(d->sys, &desc, &b));
	TRUE(b == NULL);
	CHECK_OK(d->sys);

	/* Nothing of the failures stuck: s1 and s3 are free, A still is A. */
	EXPECT_RC(-ENXIO, dmm_page_query(d->sys, s1, &pi));
	EXPECT_RC(-ENXIO, dmm_page_query(d->sys, s3, &pi));
	TRUE(dmm_page_pgmap(d->sys, s2) == a);
	EQ(dmm_pgmap_nr_pages(a), 16);
	/* Adjacent ranges on either side are fine. */
	desc.pfn_start = s1;
	desc.nr_pages = DMM_PGMAP_ALIGN;
	OK(dmm_memremap_pages(d->sys, &desc, &b));
	EQ(dmm_pgmap_pfn_first(b), s1);
	OK(dmm_memunmap_pages_timeout(b, 1000));
	desc.pfn_start = s3;
	OK(dmm_memremap_pages(d->sys, &desc, &b));
	EQ(dmm_pgmap_pfn_first(b), s3);
	OK(dmm_memunmap_pages_timeout(b, 1000));
	OK(dmm_memunmap_pages_timeout(a, 1000));
	CHECK_OK(d->sys);
	NOTHING_REGISTERED(d, s2);
}

static void test_memremap_places_ranges_above_ram_on_aligned_starts(void **state)
{
	struct dfx *d = *state;
	struct dmm_pgmap_desc desc = good_desc(d->type);
	struct dmm_pgmap *a = NULL, *b = NULL;
	uint64_t first = dmm_pgmap_pfn_first(d->drv->pgmap);
	struct dmm_page_info pi;

	/* The fixture's driver: above RAM, aligned. */
	TRUE(first > dmm_system_nr_frames(d->sys));
	EQ(first % DMM_PGMAP_ALIGN, 0);
	EQ(dmm_pgmap_nr_pages(d->drv->pgmap), DEV_PAGES);
	EQ(dmm_pgmap_type(d->drv->pgmap), d->type);
	TRUE(dmm_pgmap_owner(d->drv->pgmap) == d->drv);
	TRUE(dmm_pgmap_driver_data(d->drv->pgmap) == d->drv);
	TRUE(dmm_pgmap_system(d->drv->pgmap) == d->sys);

	/* Two more: each on its own aligned start, disjoint. */
	desc.nr_pages = DMM_PGMAP_ALIGN + 5; /* two sections */
	OK(dmm_memremap_pages(d->sys, &desc, &a));
	desc.nr_pages = 3;
	OK(dmm_memremap_pages(d->sys, &desc, &b));
	EQ(dmm_pgmap_pfn_first(a), first + DMM_PGMAP_ALIGN);
	EQ(dmm_pgmap_pfn_first(b), first + 3 * DMM_PGMAP_ALIGN);
	EQ(dmm_pgmap_nr_pages(a), DMM_PGMAP_ALIGN + 5);
	TRUE(dmm_pgmap_owner(a) == &bare_owner);
	TRUE(dmm_pgmap_driver_data(a) == &bare_frees);
	/* Each pfn belongs to the right pgmap; one past the end to none. */
	TRUE(dmm_page_pgmap(d->sys, first + DMM_PGMAP_ALIGN + DMM_PGMAP_ALIGN + 4) == a);
	TRUE(dmm_page_pgmap(d->sys, first + 3 * DMM_PGMAP_ALIGN + 2) == b);
	EXPECT_RC(-ENXIO, dmm_page_query(d->sys, first + 3 * DMM_PGMAP_ALIGN + 3, &pi));
	EXPECT_RC(-ENXIO, dmm_page_query(d->sys, first + DEV_PAGES, &pi));
	TRUE(dmm_page_pgmap(d->sys, first + DEV_PAGES) == NULL);
	CHECK_OK(d->sys);

	/* A freed gap is reused by the next placement that fits. */
	OK(dmm_memunmap_pages_timeout(a, 1000));
	desc.nr_pages = 1;
	OK(dmm_memremap_pages(d->sys, &desc, &a));
	EQ(dmm_pgmap_pfn_first(a), first + DMM_PGMAP_ALIGN);
	OK(dmm_memunmap_pages_timeout(a, 1000));
	OK(dmm_memunmap_pages_timeout(b, 1000));
	CHECK_OK(d->sys);
}

/* ------------------------------------------------------------------------ */
/* The life of a device page                                                 */

static void test_free_device_pages_have_refcount_zero(void **state)
{
	struct dfx *d = *state;
	uint64_t first = dmm_pgmap_pfn_first(d->drv->pgmap);

	for (uint64_t i = 0; i < DEV_PAGES; i++) {
		struct dmm_page_info pi = PAGE(d->sys, first + i);

		EQ(pi.refcount, 0);
		EQS(pi.mapcount, 0);
		EQ(pi.pincount, 0);
		FLAGS(pi.flags, DMM_PAGE_ZONE_DEVICE,
		      DMM_PAGE_LOCKED | DMM_PAGE_ANON | DMM_PAGE_ANON_EXCLUSIVE | DMM_PAGE_FREE);
		EQ(pi.location, dfx_private(d) ? DMM_LOC_DEVICE_PRIVATE : DMM_LOC_DEVICE_COHERENT);
		TRUE(dmm_page_pgmap(d->sys, first + i) == d->drv->pgmap);
	}
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 0);
	EQ(testdrv_used(d->drv), 0);
	/* The CPU can address coherent memory, never private memory. */
	if (dfx_private(d))
		TRUE(dmm_page_address(d->sys, first) == NULL);
	else
		TRUE(dmm_page_address(d->sys, first) != NULL &&
		     dmm_page_address(d->sys, first + 1) != dmm_page_address(d->sys, first));
	CHECK_OK(d->sys);
}

static void test_zone_device_page_init_hands_out_a_locked_page_with_one_reference(void **state)
{
	struct dfx *d = *state;
	struct dmm_stats s0 = STATS(d->sys);
	uint64_t pfn = testdrv_alloc_page(d->drv);
	struct dmm_page_info pi;

	TRUE(testdrv_owns(d->drv, pfn));
	pi = PAGE(d->sys, pfn);
	EQ(pi.refcount, 1);
	EQS(pi.mapcount, 0);
	EQ(pi.pincount, 0);
	FLAGS(pi.flags, DMM_PAGE_ZONE_DEVICE | DMM_PAGE_LOCKED, DMM_PAGE_ANON | DMM_PAGE_FREE);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 1);
	EQ(testdrv_used(d->drv), 1);
	EQ(STAT_DELTA(d->sys, s0, dev_page_alloc), 1);
	/* The lock is really held. */
	EQ(dmm_trylock_page(d->sys, pfn), 0);

	dmm_unlock_page(d->sys, pfn);
	FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_ZONE_DEVICE, DMM_PAGE_LOCKED);
	CHECK_OK(d->sys);
	dmm_put_page(d->sys, pfn);
	EQ(atomic_load(&d->drv->folio_frees), 1);
	EQ(STAT_DELTA(d->sys, s0, dev_page_free), 1);
	DFX_FINISH(d);
}

static void test_zone_device_page_init_refuses_a_page_in_use(void **state)
{
	struct dfx *d = *state;
	struct dmm_stats s0 = STATS(d->sys);
	uint64_t pfn = testdrv_alloc_page(d->drv);

	/* Locked, refcount 1. */
	EXPECT_RC(-EBUSY, dmm_zone_device_page_init(d->sys, pfn));
	COUNTS(d->sys, pfn, 1, 0);
	FLAGS(PAGE(d->sys, pfn).flags, DMM_PAGE_LOCKED, 0);
	/* Unlocked, still referenced. */
	dmm_unlock_page(d->sys, pfn);
	EXPECT_RC(-EBUSY, dmm_zone_device_page_init(d->sys, pfn));
	COUNTS(d->sys, pfn, 1, 0);
	FLAGS(PAGE(d->sys, pfn).flags, 0, DMM_PAGE_LOCKED);
	/* Two references. */
	OK(dmm_get_page(d->sys, pfn));
	EXPECT_RC(-EBUSY, dmm_zone_device_page_init(d->sys, pfn));
	COUNTS(d->sys, pfn, 2, 0);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 1);
	EQ(STAT_DELTA(d->sys, s0, dev_page_alloc), 1);
	CHECK_OK(d->sys);
	dmm_put_page(d->sys, pfn);
	dmm_put_page(d->sys, pfn);
	EQ(atomic_load(&d->drv->folio_frees), 1);
	DFX_FINISH(d);
}

static void test_zone_device_page_init_rejects_pfns_outside_every_pgmap(void **state)
{
	struct dfx *d = *state;
	uint64_t sys_pfn, first = dmm_pgmap_pfn_first(d->drv->pgmap);
	struct dmm_stats s0 = STATS(d->sys);

	OK(dmm_alloc_page(d->sys, &sys_pfn));
	EXPECT_RC(-EINVAL, dmm_zone_device_page_init(d->sys, sys_pfn));
	COUNTS(d->sys, sys_pfn, 1, 0);
	dmm_put_page(d->sys, sys_pfn);
	EXPECT_RC(-EINVAL, dmm_zone_device_page_init(d->sys, DMM_ZERO_PFN));
	EXPECT_RC(-EINVAL, dmm_zone_device_page_init(d->sys, first + DEV_PAGES));
	EXPECT_RC(-EINVAL, dmm_zone_device_page_init(d->sys, first - 1));
	EXPECT_RC(-EINVAL, dmm_zone_device_page_init(NULL, first));
	EQ(STAT_DELTA(d->sys, s0, dev_page_alloc), 0);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 0);
	DFX_FINISH(d);
}

/* folio_free runs once per 1 -> 0 transition, and only then. */
static void test_folio_free_runs_exactly_once_per_last_reference(void **state)
{
	struct dfx *d = *state;
	uint64_t a = testdrv_alloc_page(d->drv), b = testdrv_alloc_page(d->drv);
	uint64_t c = testdrv_alloc_page(d->drv);

	TRUE(a && b && c && a != b && b != c && a != c);
	dmm_unlock_page(d->sys, a);
	dmm_unlock_page(d->sys, b);
	dmm_unlock_page(d->sys, c);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 3);

	/* a: three references, dropped one at a time. */
	OK(dmm_get_page(d->sys, a));
	OK(dmm_get_page(d->sys, a));
	COUNTS(d->sys, a, 3, 0);
	dmm_put_page(d->sys, a);
	dmm_put_page(d->sys, a);
	EQ(atomic_load(&d->drv->folio_frees), 0);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 3);
	dmm_put_page(d->sys, a);
	EQ(atomic_load(&d->drv->folio_frees), 1);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 2);
	COUNTS(d->sys, a, 0, 0);
	/* A free page cannot be referenced back to life. */
	EXPECT_RC(-EINVAL, dmm_get_page(d->sys, a));
	COUNTS(d->sys, a, 0, 0);
	CHECK_OK(d->sys);

	dmm_put_page(d->sys, c);
	EQ(atomic_load(&d->drv->folio_frees), 2);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 1);
	CHECK_OK(d->sys);

	/* a is handed out again (the free list is LIFO: c, then a) and freed
	 * again: a second transition, a second call. */
	EQ(testdrv_alloc_page(d->drv), c);
	EQ(testdrv_alloc_page(d->drv), a);
	COUNTS(d->sys, a, 1, 0);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 3);
	dmm_unlock_page(d->sys, a);
	dmm_unlock_page(d->sys, c);
	dmm_put_page(d->sys, a);
	dmm_put_page(d->sys, b);
	dmm_put_page(d->sys, c);
	EQ(atomic_load(&d->drv->folio_frees), 5);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 0);
	EQ(testdrv_used(d->drv), 0);
	DFX_FINISH(d);
}

static void test_pgmap_nr_allocated_counts_pages_in_use(void **state)
{
	struct dfx *d = *state;
	uint64_t pfns[DEV_PAGES];

	for (uint64_t i = 0; i < DEV_PAGES; i++) {
		pfns[i] = testdrv_alloc_page(d->drv);
		TRUE(pfns[i] != 0);
		dmm_unlock_page(d->sys, pfns[i]);
		EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), i + 1);
	}
	/* The device is full. */
	EQ(testdrv_alloc_page(d->drv), 0);
	EQ(testdrv_used(d->drv), DEV_PAGES);
	CHECK_OK(d->sys);
	for (uint64_t i = 0; i < DEV_PAGES; i++) {
		EXPECT_RC(-EBUSY, dmm_zone_device_page_init(d->sys, pfns[i]));
		dmm_put_page(d->sys, pfns[i]);
		EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), DEV_PAGES - i - 1);
		EQ(atomic_load(&d->drv->folio_frees), i + 1);
	}
	DFX_FINISH(d);
}

static void test_zone_device_data_and_page_pgmap(void **state)
{
	struct dfx *d = *state;
	uint64_t pfn = testdrv_alloc_page(d->drv), sys_pfn;
	int token;

	/* testdrv points each page at its backing storage. */
	TRUE(dmm_page_zone_device_data(d->sys, pfn) == testdrv_page_data(d->drv, pfn));
	OK(dmm_page_set_zone_device_data(d->sys, pfn, &token));
	TRUE(dmm_page_zone_device_data(d->sys, pfn) == &token);
	TRUE(dmm_page_pgmap(d->sys, pfn) == d->drv->pgmap);

	OK(dmm_alloc_page(d->sys, &sys_pfn));
	EXPECT_RC(-EINVAL, dmm_page_set_zone_device_data(d->sys, sys_pfn, &token));
	TRUE(dmm_page_zone_device_data(d->sys, sys_pfn) == NULL);
	TRUE(dmm_page_pgmap(d->sys, sys_pfn) == NULL);
	TRUE(dmm_page_pgmap(d->sys, DMM_ZERO_PFN) == NULL);
	dmm_put_page(d->sys, sys_pfn);

	dmm_unlock_page(d->sys, pfn);
	dmm_put_page(d->sys, pfn);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* pgmap references                                                          */

static void test_get_dev_pagemap_takes_a_reference_on_device_pfns_only(void **state)
{
	struct dfx *d = *state;
	uint64_t first = dmm_pgmap_pfn_first(d->drv->pgmap), sys_pfn;
	struct dmm_pgmap *pg, *pg2;

	/* Any pfn of the range, free or not. */
	pg = dmm_get_dev_pagemap(d->sys, first);
	TRUE(pg == d->drv->pgmap);
	pg2 = dmm_get_dev_pagemap(d->sys, first + DEV_PAGES - 1);
	TRUE(pg2 == d->drv->pgmap);
	/* A pgmap reference is not an allocated page. */
	EQ(dmm_pgmap_nr_allocated(pg), 0);
	CHECK_OK(d->sys);

	OK(dmm_alloc_page(d->sys, &sys_pfn));
	TRUE(dmm_get_dev_pagemap(d->sys, sys_pfn) == NULL);
	dmm_put_page(d->sys, sys_pfn);
	TRUE(dmm_get_dev_pagemap(d->sys, DMM_ZERO_PFN) == NULL);
	TRUE(dmm_get_dev_pagemap(d->sys, first + DEV_PAGES) == NULL);
	TRUE(dmm_get_dev_pagemap(NULL, first) == NULL);

	/* Held references keep the pgmap from going away. */
	EXPECT_RC(-EBUSY, dmm_memunmap_pages_timeout(d->drv->pgmap, 20));
	dmm_put_dev_pagemap(pg);
	EXPECT_RC(-EBUSY, dmm_memunmap_pages_timeout(d->drv->pgmap, 20));
	dmm_put_dev_pagemap(pg2);
	dmm_put_dev_pagemap(NULL); /* harmless */
	CHECK_OK(d->sys);
	/* Usable after the refusals. */
	pg = dmm_get_dev_pagemap(d->sys, first);
	TRUE(pg == d->drv->pgmap);
	dmm_put_dev_pagemap(pg);
	DFX_FINISH(d);
}

/* ------------------------------------------------------------------------ */
/* Unregistering                                                             */

static void test_memunmap_timeout_is_busy_while_a_page_lives_and_the_pgmap_stays_usable(void **state)
{
	struct dfx *d = *state;
	uint64_t pfn = testdrv_alloc_page(d->drv), pfn2;
	struct timespec t0, t1;
	long ms;

	dmm_unlock_page(d->sys, pfn);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_RC(-EBUSY, dmm_memunmap_pages_timeout(d->drv->pgmap, 50));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	TRUE(ms >= 40); /* it did wait */
	EXPECT_RC(-EBUSY, dmm_memunmap_pages_timeout(d->drv->pgmap, 0));
	CHECK_OK(d->sys);

	/* Still registered and working: references, new pages, migration. */
	COUNTS(d->sys, pfn, 1, 0);
	TRUE(dmm_page_pgmap(d->sys, pfn) == d->drv->pgmap);
	struct dmm_pgmap *pg = dmm_get_dev_pagemap(d->sys, pfn);
	TRUE(pg == d->drv->pgmap);
	dmm_put_dev_pagemap(pg);
	pfn2 = testdrv_alloc_page(d->drv);
	TRUE(pfn2 != 0);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 2);
	dmm_unlock_page(d->sys, pfn2);
	dmm_put_page(d->sys, pfn2);
	MAP_ANON(d->mm, TBASE, 2);
	FILL(d->mm, TBASE, 2 * PG, 0x1000);
	TO_DEV(d, d->mm, TBASE, 2, 2);
	DEV_VERIFY(d->drv, DEV_ENTRY(d, d->mm, TBASE, true), 0x1000);
	VERIFY(d->mm, TBASE, 2 * PG, 0x1000);
	CHECK_OK(d->sys);

	/* Once the last page is gone, it unregisters. */
	dmm_put_page(d->sys, pfn);
	OK(dmm_munmap(d->mm, TBASE, 2 * PG));
	DFX_FINISH(d);
}

/* Live pages mapped in two processes are evicted back to system memory
 * (both mappings follow), and then the pgmap unregisters. */
static void test_memunmap_succeeds_after_eviction(void **state)
{
	struct dfx *d = *state;
	struct dmm_mm *child = NULL;
	uint64_t first = dmm_pgmap_pfn_first(d->drv->pgmap), pfn;
	struct dmm_page_info pi;
	int rounds;

	MAP_ANON(d->mm, TBASE, 4);
	FILL(d->mm, TBASE, 4 * PG, 0x2000);
	TO_DEV(d, d->mm, TBASE, 4, 4);
	/* Page 3 shared with a child (read-only in both). */
	OK(dmm_fork(d->mm, &child));
	CHECK_OK(d->sys);
	EXPECT_RC(-EBUSY, dmm_memunmap_pages_timeout(d->drv->pgmap, 10));

	rounds = testdrv_evict_all(d->drv);
	EQ(rounds, 1);
	CHECK_OK(d->sys);
	EQ(testdrv_used(d->drv), 0);
	EQ(atomic_load(&d->drv->folio_frees), 4);
	EQ(atomic_load(&d->drv->faults), 0);
	for (int i = 0; i < 4; i++) {
		/* After fork, private entries are read-only in both processes
		 * and the page is shared: one system page, mapped twice. */
		pfn = SYS_ENTRY(d->sys, d->mm, PAGE_ADDR(TBASE, i), false);
		EQ(SYS_ENTRY(d->sys, child, PAGE_ADDR(TBASE, i), false), pfn);
		COUNTS(d->sys, pfn, 2, 2);
	}
	OK(dmm_memunmap_pages_timeout(d->drv->pgmap, 1000));
	d->drv->pgmap = NULL;
	CHECK_OK(d->sys);
	/* The range is gone. */
	EXPECT_RC(-ENXIO, dmm_page_query(d->sys, first, &pi));
	TRUE(dmm_get_dev_pagemap(d->sys, first) == NULL);
	TRUE(dmm_page_pgmap(d->sys, first) == NULL);
	VERIFY(d->mm, TBASE, 4 * PG, 0x2000);
	VERIFY(child, TBASE, 4 * PG, 0x2000);
	dmm_mm_exit(child);
	dmm_mm_exit(d->mm);
	d->mm = NULL;
	CHECK_OK(d->sys);
	EQ(dmm_system_nr_free(d->sys), d->free0);
}

struct unmapper {
	struct dmm_pgmap *pgmap;
	unsigned int timeout_ms; /* 0: dmm_memunmap_pages, no timeout */
	int rc;
};

static void *unmap_thread(void *arg)
{
	struct unmapper *u = arg;

	if (u->timeout_ms)
		u->rc = dmm_memunmap_pages_timeout(u->pgmap, u->timeout_ms);
	else
		dmm_memunmap_pages(u->pgmap);
	return NULL;
}

/*
 * While dmm_memunmap_pages waits for the last page, the pgmap is dying:
 * dmm_get_dev_pagemap returns NULL and dmm_zone_device_page_init refuses
 * with -ENODEV. Freeing the last page lets the unmap finish.
 */
static void test_dying_pgmap_refuses_new_pages_and_unmaps_when_the_last_page_goes(void **state)
{
	struct dfx *d = *state;
	uint64_t live = testdrv_alloc_page(d->drv), other = dmm_pgmap_pfn_first(d->drv->pgmap) + 7;
	struct unmapper u = { .pgmap = d->drv->pgmap, .timeout_ms = 20000 };
	struct dmm_stats s0;
	pthread_t th;
	bool dying = false;

	TRUE(live != other);
	dmm_unlock_page(d->sys, live);
	CHECK_OK(d->sys);
	s0 = STATS(d->sys);
	assert_int_equal(pthread_create(&th, NULL, unmap_thread, &u), 0);
	/* Wait (bounded) until the pgmap is seen dying. */
	for (int i = 0; i < 10000 && !dying; i++) {
		struct dmm_pgmap *pg = dmm_get_dev_pagemap(d->sys, other);

		if (pg)
			dmm_put_dev_pagemap(pg);
		else
			dying = true;
		if (!dying)
			usleep(1000);
	}
	TRUE(dying);
	EXPECT_RC(-ENODEV, dmm_zone_device_page_init(d->sys, other));
	COUNTS(d->sys, other, 0, 0);
	FLAGS(PAGE(d->sys, other).flags, 0, DMM_PAGE_LOCKED);
	EQ(STAT_DELTA(d->sys, s0, dev_page_alloc), 0);
	EQ(dmm_pgmap_nr_allocated(d->drv->pgmap), 1);

	/* The last page goes: the unmap completes. */
	dmm_put_page(d->sys, live);
	assert_int_equal(pthread_join(th, NULL), 0);
	EQ(u.rc, 0);
	d->drv->pgmap = NULL;
	EQ(atomic_load(&d->drv->folio_frees), 1);
	TRUE(dmm_page_pgmap(d->sys, other) == NULL);
	EXPECT_RC(-EINVAL, dmm_zone_device_page_init(d->sys, other));
	CHECK_OK(d->sys);
}

/* dmm_memunmap_pages (no timeout) blocks until another thread frees the
 * last page. */
static void test_memunmap_pages_waits_for_the_last_page(void **state)
{
	struct dfx *d = *state;
	uint64_t live = testdrv_alloc_page(d->drv);
	struct unmapper u = { .pgmap = d->drv->pgmap, .timeout_ms = 0, .rc = -1 };
	pthread_t th;

	dmm_unlock_page(d->sys, live);
	assert_int_equal(pthread_create(&th, NULL, unmap_thread, &u), 0);
	usleep(20000);
	/* Still waiting: the page is intact. */
	COUNTS(d->sys, live, 1, 0);
	EQ(atomic_load(&d->drv->folio_frees), 0);
	EQ(u.rc, -1);
	dmm_put_page(d->sys, live);
	assert_int_equal(pthread_join(th, NULL), 0);
	d->drv->pgmap = NULL;
	EQ(atomic_load(&d->drv->folio_frees), 1);
	TRUE(dmm_page_pgmap(d->sys, live) == NULL);
	CHECK_OK(d->sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		DT2(test_memremap_rejects_null_arguments),
		DT2(test_memremap_rejects_zero_pages),
		DT2(test_memremap_rejects_more_than_the_maximum_pages),
		DT2(test_memremap_rejects_unknown_types),
		DT2(test_memremap_rejects_null_ops),
		DT2(test_memremap_rejects_missing_folio_free),
		DT2(test_memremap_requires_migrate_to_ram_for_private_only),
		DT2(test_memremap_rejects_null_owner),
		DT2(test_memremap_rejects_unaligned_pfn_start),
		DT2(test_memremap_rejects_fixed_range_in_system_ram),
		DT2(test_memremap_rejects_fixed_range_overlapping_another_pgmap),
		DT2(test_memremap_places_ranges_above_ram_on_aligned_starts),
		DT2(test_free_device_pages_have_refcount_zero),
		DT2(test_zone_device_page_init_hands_out_a_locked_page_with_one_reference),
		DT2(test_zone_device_page_init_refuses_a_page_in_use),
		DT2(test_zone_device_page_init_rejects_pfns_outside_every_pgmap),
		DT2(test_folio_free_runs_exactly_once_per_last_reference),
		DT2(test_pgmap_nr_allocated_counts_pages_in_use),
		DT2(test_zone_device_data_and_page_pgmap),
		DT2(test_get_dev_pagemap_takes_a_reference_on_device_pfns_only),
		DT2(test_memunmap_timeout_is_busy_while_a_page_lives_and_the_pgmap_stays_usable),
		DT2(test_memunmap_succeeds_after_eviction),
		DT2(test_dying_pgmap_refuses_new_pages_and_unmaps_when_the_last_page_goes),
		DT2(test_memunmap_pages_waits_for_the_last_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
