/* SPDX-License-Identifier: MIT */
/* Shared between the mirror driver's files; not a public interface. */
#ifndef DEVMM_MIRROR_INTERNAL_H
#define DEVMM_MIRROR_INTERNAL_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mirror.h"
#include "ptab.h"

#define PAGE DMM_PAGE_SIZE

/* One registered range of device memory. */
struct mirror_chunk {
	struct mirror_device *dev;
	struct dmm_pgmap *pgmap;
	uint8_t *backing;	/* PRIVATE: the device's own storage */
	uint64_t first, npages;
	bool released;		/* no new allocations: being evicted */
};

/* mirror.c */
bool pfn_is_own(struct mirror_device *dev, uint64_t pfn);
/* Device memory of an own pfn as the device's copy engine sees it. */
void *device_page_data(struct mirror_device *dev, uint64_t pfn);
/* Memory the device reads or writes for a table entry's frame. */
void *frame_data(struct mirror_device *dev, uint64_t pfn);
/* A free device page, locked with one reference (0: none). */
uint64_t device_alloc(struct mirror_device *dev);
/* A locked system page with one reference (0: none). */
uint64_t system_alloc(struct mirror_device *dev);
/* Consume an armed fail-next-alloc: true if this allocation must fail. */
bool take_fail_next(struct mirror_device *dev);

/* commands.c */
/* One fault pass over [start, end): hmm_range_fault windows with the
 * collision-retry protocol, entering frames in the table. Returns 0,
 * -errno, or 1 when a write had to migrate one of our own read-only pages
 * first (the pass ends there: count it and fault again). */
int mirror_fault_range(struct mirror *m, uint64_t start, uint64_t end, bool write);
bool range_ok(uint64_t addr, uint64_t npages);
/* Enter the pages of [start, end) that are on this device now. */
int mirror_map_own_range(struct mirror *m, uint64_t start, uint64_t end);

/* migrate.c */
/* Migrate own device pages of [start, end) back to system memory. */
int migrate_range_to_sys(struct mirror *m, uint64_t start, uint64_t end, uint64_t *moved);
unsigned int mirror_migrate_to_ram(struct dmm_vm_fault *vmf);

#endif
