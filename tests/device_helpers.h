/* SPDX-License-Identifier: MIT */
/*
 * Shared code for the device-memory tests (test_device, test_migrate,
 * test_stress_device): a fixture with a system, one address space and a
 * testdrv device of a chosen type, run as variants (the same test body
 * for DEVICE_PRIVATE and DEVICE_COHERENT, as the kernel's hmm selftests do
 * with FIXTURE_VARIANT), and assertions about where a page lives.
 *
 * Everything is static inline, as in helpers.h.
 */
#ifndef DEVMM_TESTS_DEVICE_HELPERS_H
#define DEVMM_TESTS_DEVICE_HELPERS_H

#include "helpers.h"
#include "testdrv.h"

/* Pages of device memory each fixture's driver registers. */
#define DEV_PAGES 64

/* The variants: pass &VARIANT_PRIVATE / &VARIANT_COHERENT as the prestate. */
struct dev_variant {
	enum dmm_memory_type type;
	const char *name;
};
static const struct dev_variant VARIANT_PRIVATE = { DMM_MEMORY_DEVICE_PRIVATE, "private" };
static const struct dev_variant VARIANT_COHERENT = { DMM_MEMORY_DEVICE_COHERENT, "coherent" };

struct dfx {
	struct dmm_system *sys;
	struct dmm_mm *mm;
	struct testdrv *drv;
	enum dmm_memory_type type;
	uint64_t free0; /* nr_free right after creation */
};

static inline bool dfx_private(const struct dfx *d)
{
	return d->type == DMM_MEMORY_DEVICE_PRIVATE;
}

static inline int dfx_setup_frames(void **state, uint64_t nr_frames, uint64_t dev_pages)
{
	const struct dev_variant *v = *state;
	struct dfx *d = calloc(1, sizeof(*d));

	if (!d || !v)
		return -1;
	d->type = v->type;
	d->sys = sys_new(nr_frames);
	if (!d->sys || dmm_mm_create(d->sys, &d->mm) != 0 ||
	    testdrv_create(d->sys, d->type, dev_pages, &d->drv) != 0) {
		if (d->sys)
			dmm_system_destroy(d->sys);
		free(d);
		return -1;
	}
	d->free0 = dmm_system_nr_free(d->sys);
	*state = d;
	return 0;
}

static inline int dfx_setup(void **state) { return dfx_setup_frames(state, 4096, DEV_PAGES); }

/*
 * Teardown that cannot hang when a test failed half-way (a page left
 * locked or referenced would make dmm_memunmap_pages wait forever): evict
 * what can be evicted, unregister with a timeout, and let
 * dmm_system_destroy free whatever is left, then the driver's memory.
 */
static inline int dfx_teardown(void **state)
{
	struct dfx *d = *state;

	if (!d || d == (void *)&VARIANT_PRIVATE || d == (void *)&VARIANT_COHERENT)
		return 0;
	if (d->drv && d->drv->pgmap) {
		testdrv_evict_all(d->drv);
		if (dmm_memunmap_pages_timeout(d->drv->pgmap, 100) == 0)
			d->drv->pgmap = NULL;
	}
	dmm_system_destroy(d->sys);
	testdrv_free(d->drv);
	free(d);
	*state = NULL;
	return 0;
}

/* One test with one variant; its name carries the variant. */
#define DT_NAMED(fn, variant, vname) \
	{ #fn "/" vname, fn, dfx_setup, dfx_teardown, (void *)&(variant) }
#define DTP(fn) DT_NAMED(fn, VARIANT_PRIVATE, "private")
#define DTC(fn) DT_NAMED(fn, VARIANT_COHERENT, "coherent")
/* Both variants of one test body. */
#define DT2(fn) DTP(fn), DTC(fn)

/* ------------------------------------------------------------------------ */
/* Where a page lives                                                        */

/*
 * The entry at addr maps a page of d's device: DEVICE_PRIVATE_{W,R} for
 * private memory, PRESENT (W or not) for coherent memory. The page is
 * allocated, in the right location. Returns the device pfn.
 */
static inline uint64_t dev_entry_at(const char *file, int line, struct dfx *d, struct dmm_mm *mm,
				    uint64_t addr, bool writable)
{
	struct dmm_pte_info p = pte_at(file, line, mm, addr);
	struct dmm_page_info pi;

	if (dfx_private(d)) {
		enum dmm_pte_kind want = writable ? DMM_PTE_DEVICE_PRIVATE_WRITE : DMM_PTE_DEVICE_PRIVATE_READ;

		if (p.kind != want)
			h_fail(file, line, "pte at %#" PRIx64 " is %s, expected %s", addr,
			       dmm_pte_kind_name(p.kind), dmm_pte_kind_name(want));
	} else {
		if (p.kind != DMM_PTE_PRESENT)
			h_fail(file, line, "pte at %#" PRIx64 " is %s, expected present (coherent)", addr,
			       dmm_pte_kind_name(p.kind));
		if (p.write != writable)
			h_fail(file, line, "pte at %#" PRIx64 " write = %d, expected %d", addr, p.write,
			       writable);
	}
	if (!testdrv_owns(d->drv, p.pfn))
		h_fail(file, line, "pte at %#" PRIx64 " maps pfn %" PRIu64 ", not a page of the device",
		       addr, p.pfn);
	pi = page_at(file, line, d->sys, p.pfn);
	if (pi.location != (dfx_private(d) ? DMM_LOC_DEVICE_PRIVATE : DMM_LOC_DEVICE_COHERENT))
		h_fail(file, line, "device pfn %" PRIu64 " reports location %d", p.pfn, (int)pi.location);
	if (!(pi.flags & DMM_PAGE_ZONE_DEVICE) || !(pi.flags & DMM_PAGE_ANON))
		h_fail(file, line, "device pfn %" PRIu64 " flags %#x lack ZONE_DEVICE|ANON", p.pfn,
		       pi.flags);
	return p.pfn;
}
#define DEV_ENTRY(d, mm, addr, writable) dev_entry_at(__FILE__, __LINE__, d, mm, addr, writable)

/* The entry at addr is PRESENT, maps a system frame, with this write bit. */
static inline uint64_t sys_entry_at(const char *file, int line, struct dmm_system *sys,
				    struct dmm_mm *mm, uint64_t addr, bool writable)
{
	struct dmm_pte_info p = pte_at(file, line, mm, addr);
	struct dmm_page_info pi;

	if (p.kind != DMM_PTE_PRESENT || p.special)
		h_fail(file, line, "pte at %#" PRIx64 " is %s%s, expected present (system)", addr,
		       dmm_pte_kind_name(p.kind), p.special ? " special" : "");
	if (p.write != writable)
		h_fail(file, line, "pte at %#" PRIx64 " write = %d, expected %d", addr, p.write, writable);
	pi = page_at(file, line, sys, p.pfn);
	if (pi.location != DMM_LOC_SYSTEM || (pi.flags & DMM_PAGE_ZONE_DEVICE))
		h_fail(file, line, "pte at %#" PRIx64 " maps pfn %" PRIu64 " in location %d, expected system",
		       addr, p.pfn, (int)pi.location);
	return p.pfn;
}
#define SYS_ENTRY(sys, mm, addr, writable) sys_entry_at(__FILE__, __LINE__, sys, mm, addr, writable)

/* The kind of the entry at addr. */
#define KIND(mm, addr) (PTE(mm, addr).kind)

/* A device page's data, as the device sees it, holds the pattern (or zero). */
static inline void dev_verify_at(const char *file, int line, struct testdrv *drv, uint64_t pfn,
				 uint32_t seed, bool zero)
{
	const uint32_t *w = testdrv_page_data(drv, pfn);

	if (!w)
		h_fail(file, line, "no data for device pfn %" PRIu64, pfn);
	for (size_t k = 0; k < WORDS_PER_PAGE; k++) {
		uint32_t want = zero ? 0 : seed + (uint32_t)k;

		if (w[k] != want)
			h_fail(file, line, "device pfn %" PRIu64 " word %zu = %#" PRIx32 ", expected %#" PRIx32,
			       pfn, k, w[k], want);
	}
}
#define DEV_VERIFY(drv, pfn, seed) dev_verify_at(__FILE__, __LINE__, drv, pfn, seed, false)
#define DEV_VERIFY_ZERO(drv, pfn) dev_verify_at(__FILE__, __LINE__, drv, pfn, 0, true)

/* Pattern seed of page i of a range filled with FILL(mm, base, n * PG, seed). */
#define PSEED_OF(seed, i) ((uint32_t)(seed) + (uint32_t)(i) * (uint32_t)WORDS_PER_PAGE)

/* testdrv_migrate_to_dev / _to_sys asserting the return code and the count. */
#define TO_DEV(d, mm, addr, n, expect_moved)                                               \
	do {                                                                               \
		unsigned long moved_ = 0;                                                  \
		OK(testdrv_migrate_to_dev((d)->drv, mm, addr, n, &moved_));                \
		EQ(moved_, expect_moved);                                                  \
	} while (0)
#define TO_SYS(d, mm, addr, n, expect_moved)                                               \
	do {                                                                               \
		unsigned long moved_ = 0;                                                  \
		OK(testdrv_migrate_to_sys((d)->drv, mm, addr, n, &moved_));                \
		EQ(moved_, expect_moved);                                                  \
	} while (0)

/*
 * The end of most tests: every address space exits, no device page is
 * left in use, every device page handed out came back through folio_free,
 * every system frame is free again, and the pgmap can be unregistered.
 */
static inline void dfx_finish_at(const char *file, int line, struct dfx *d)
{
	struct dmm_stats s = stats_at(file, line, d->sys);

	if (d->mm)
		dmm_mm_exit(d->mm);
	d->mm = NULL;
	check_ok_at(file, line, d->sys);
	if (testdrv_used(d->drv) != 0)
		h_fail(file, line, "%" PRIu64 " device pages still in use", testdrv_used(d->drv));
	if (dmm_pgmap_nr_allocated(d->drv->pgmap) != 0)
		h_fail(file, line, "pgmap reports %" PRIu64 " allocated pages",
		       dmm_pgmap_nr_allocated(d->drv->pgmap));
	s = stats_at(file, line, d->sys);
	if (s.dev_page_alloc != s.dev_page_free || atomic_load(&d->drv->folio_frees) != s.dev_page_free)
		h_fail(file, line, "device pages: %" PRIu64 " handed out, %" PRIu64 " given back, folio_free ran %lu times",
		       s.dev_page_alloc, s.dev_page_free, atomic_load(&d->drv->folio_frees));
	if (dmm_system_nr_free(d->sys) != d->free0)
		h_fail(file, line, "nr_free %" PRIu64 ", expected %" PRIu64, dmm_system_nr_free(d->sys),
		       d->free0);
	if (dmm_memunmap_pages_timeout(d->drv->pgmap, 1000) != 0)
		h_fail(file, line, "dmm_memunmap_pages_timeout failed with nothing in use");
	d->drv->pgmap = NULL;
}
#define DFX_FINISH(d) dfx_finish_at(__FILE__, __LINE__, d)

#endif /* DEVMM_TESTS_DEVICE_HELPERS_H */
