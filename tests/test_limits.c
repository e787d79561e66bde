/* SPDX-License-Identifier: MIT */
/*
 * The declared maxima: a system of DMM_MAX_SYSTEM_FRAMES frames (1 TiB)
 * with a device of as much memory again above it, with and without
 * contents. Creation succeeds, a few pages are touched and migrated, and
 * what was declared but never touched costs (almost) nothing: the
 * resident size grows by a loose bound far below the metadata of the
 * whole declaration (12 GiB for the RAM alone). A sanity bound on memory,
 * not a timing.
 */
#include <unistd.h>

#include "helpers.h"
#include "mirror.h"

#define TIB_PAGES (1UL << 28)
/* Far above what a few touched pages and one 64 MiB device chunk cost,
 * far below any per-declared-page cost (8 bytes per declared page of RAM
 * and device memory alone would be 4 GiB). */
#define RSS_BOUND (256UL << 20)

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void declare_maxima(unsigned int flags, enum dmm_memory_type type)
{
	struct dmm_system_config cfg = { .nr_frames = DMM_MAX_SYSTEM_FRAMES, .flags = flags };
	struct mirror_device_config dc = { .type = type, .pages = TIB_PAGES,
					   .no_contents = (flags & DMM_SYS_NO_CONTENTS) != 0 };
	uint64_t before = rss_bytes(), pfn;
	struct mirror_device *dev;
	struct mirror_result res;
	struct dmm_system *sys;
	struct mirror *m;
	struct dmm_mm *mm;

	EQ(DMM_MAX_SYSTEM_FRAMES, TIB_PAGES);
	OK(dmm_system_create(&cfg, &sys));
	EQ(dmm_system_nr_frames(sys), TIB_PAGES);
	EQ(dmm_system_nr_free(sys), TIB_PAGES);
	OK(mirror_device_create(sys, "big", &dc, &dev));
	OK(dmm_mm_create(sys, &mm));
	OK(mirror_open(dev, mm, &m));
	/* Pages far apart: 16 pages in each of 4 places across 1 TiB. */
	for (uint64_t i = 0; i < 4; i++) {
		uint64_t at = TBASE + i * (TIB_PAGES / 4) * PG;

		MAP_ANON(mm, at, 16);
		OK(dmm_touch(mm, at, 16 * PG, true));
		OK(mirror_migrate_to_dev(m, at, 8, NULL, &res));
		EQ(res.cpages, 8);
		pfn = PTE(mm, at).pfn;
		TRUE(pfn > TIB_PAGES); /* device memory lies above the 1 TiB of RAM */
	}
	if (flags & DMM_SYS_NO_CONTENTS) {
		EXPECT_RC(-EOPNOTSUPP, dmm_store32(mm, TBASE + 8 * PG, 1));
	} else {
		OK(dmm_store32(mm, TBASE + 8 * PG, 7));
		EQ(LOAD(mm, TBASE + 8 * PG), 7);
	}
	EQ(dmm_system_nr_free(sys), TIB_PAGES - 32);
	if (rss_bytes() - before > RSS_BOUND)
		h_fail(__FILE__, __LINE__, "resident size grew by %" PRIu64 " MiB", (rss_bytes() - before) >> 20);
	OK(mirror_migrate_to_sys(m, TBASE, 8, &res));
	EQ(res.cpages, 8);
	mirror_device_destroy(dev);
	dmm_mm_exit(mm);
	dmm_system_destroy(sys);
}

static void test_max_private(void **state)
{
	(void)state;
	declare_maxima(0, DMM_MEMORY_DEVICE_PRIVATE);
}

static void test_max_coherent(void **state)
{
	(void)state;
	declare_maxima(0, DMM_MEMORY_DEVICE_COHERENT);
}

static void test_max_no_contents(void **state)
{
	(void)state;
	declare_maxima(DMM_SYS_NO_CONTENTS, DMM_MEMORY_DEVICE_PRIVATE);
	declare_maxima(DMM_SYS_NO_CONTENTS, DMM_MEMORY_DEVICE_COHERENT);
}

static void nop_free(struct dmm_pgmap *pgmap, uint64_t pfn)
{
	(void)pgmap;
	(void)pfn;
}

/* The pfn space ends at 4 TiB: a fixed range up to its end is placed, one
 * past it is refused (-ERANGE). */
static void test_pfn_space_end(void **state)
{
	static const struct dmm_pgmap_ops ops = { .folio_free = nop_free };
	struct dmm_system_config cfg = { .nr_frames = 16, .flags = DMM_SYS_NO_CONTENTS };
	struct dmm_pgmap_desc d = { .type = DMM_MEMORY_DEVICE_COHERENT, .nr_pages = 2 * DMM_PGMAP_ALIGN,
				    .ops = &ops, .owner = (void *)&cfg };
	struct dmm_system *sys;
	struct dmm_pgmap *pg;

	(void)state;
	OK(dmm_system_create(&cfg, &sys));
	d.pfn_start = (4 * TIB_PAGES) - DMM_PGMAP_ALIGN;
	EXPECT_RC(-ERANGE, dmm_memremap_pages(sys, &d, &pg));
	d.pfn_start = (4 * TIB_PAGES) - 2 * DMM_PGMAP_ALIGN;
	OK(dmm_memremap_pages(sys, &d, &pg));
	EQ(dmm_pgmap_pfn_first(pg), 4 * TIB_PAGES - 2 * DMM_PGMAP_ALIGN);
	dmm_memunmap_pages(pg);
	dmm_system_destroy(sys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_private),
		cmocka_unit_test(test_max_coherent),
		cmocka_unit_test(test_max_no_contents),
		cmocka_unit_test(test_pfn_space_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
