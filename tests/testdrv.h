/* SPDX-License-Identifier: MIT */
/*
 * A minimal device driver for the tests, written against the public API
 * only: one pgmap of device-private or device-coherent memory, a free list,
 * migration to and from the device, eviction, migrate_to_ram and folio_free,
 * with counters and allocation-failure switches for the tests to use.
 */
#ifndef DEVMM_TESTDRV_H
#define DEVMM_TESTDRV_H

#include <pthread.h>
#include <stdatomic.h>

#include <devmm/devmm.h>

struct testdrv {
	struct dmm_system *sys;
	enum dmm_memory_type type;
	struct dmm_pgmap *pgmap;
	uint64_t npages;
	uint8_t *backing;	/* PRIVATE: the device's own storage, one page per pfn */
	pthread_mutex_t lock;	/* protects free_list, nfree */
	uint64_t *free_list;
	uint64_t nfree;
	_Atomic unsigned long folio_frees, faults;
	/* Of the faults: those whose migrate_to_ram moved the page to system
	 * memory, and those that found it already gone (someone else moved
	 * it, or it was not collected) and let the access retry. Forced
	 * results (fault_result) and allocation failures count in neither. */
	_Atomic unsigned long fault_migrations, fault_noops;
	/* > 0: the Nth device-page allocation from now fails (once). */
	_Atomic long fail_dev_alloc;
	/* > 0: the Nth system-page allocation of a migration back fails. */
	_Atomic long fail_sys_alloc;
	/* migrate_to_ram returns this instead of migrating when non-zero. */
	_Atomic unsigned int fault_result;
	/* > 0: migrate_to_ram sleeps this many microseconds with the device
	 * page locked, before collecting it (concurrent faults meet a locked
	 * device page) or after (they meet a migration entry). */
	_Atomic unsigned int fault_delay_us, fault_delay_collected_us;
	/* Held (testdrv_hold_free): folio_free waits, in whatever devmm
	 * operation dropped the last reference (a zap, say, inside its open
	 * invalidation), until testdrv_release_free. Under lock. */
	bool free_hold, free_waiting;
	pthread_cond_t free_cond; /* with lock: free_hold and free_waiting changed */
};

int testdrv_create(struct dmm_system *sys, enum dmm_memory_type type, uint64_t npages,
		   struct testdrv **out);
/* Evict every live page to system memory, unregister, free. A test that
 * unregistered the pgmap itself sets drv->pgmap = NULL first: then only
 * the driver's memory is freed. */
void testdrv_destroy(struct testdrv *drv);
/* Free the driver's memory only, after dmm_system_destroy (which frees
 * the pgmap and hands every live page back through folio_free). */
void testdrv_free(struct testdrv *drv);

/* A device page from the free list, as a migration destination is made:
 * locked, refcount 1 (dmm_zone_device_page_init). 0 when none is free or
 * fail_dev_alloc fired. Give it back with dmm_unlock_page + dmm_put_page. */
uint64_t testdrv_alloc_page(struct testdrv *drv);

/* Make the next folio_free calls wait until testdrv_release_free; wait
 * until one of them does. */
void testdrv_hold_free(struct testdrv *drv);
void testdrv_wait_free_held(struct testdrv *drv);
void testdrv_release_free(struct testdrv *drv);

/* Device pages in use (refcount > 0) according to the driver. */
uint64_t testdrv_used(struct testdrv *drv);
/* The data of a device page, as the device sees it. */
void *testdrv_page_data(struct testdrv *drv, uint64_t pfn);
/* Is pfn one of this device's pages? */
int testdrv_owns(struct testdrv *drv, uint64_t pfn);

/* System -> device over [start, start + n pages) of mm (takes the
 * mmap_lock itself). *moved = pages now on the device. 0 or -errno. */
int testdrv_migrate_to_dev(struct testdrv *drv, struct dmm_mm *mm, uint64_t start, unsigned long n,
			   unsigned long *moved);
/* Device -> system explicitly. -ENOMEM when a system page can't be had. */
int testdrv_migrate_to_sys(struct testdrv *drv, struct dmm_mm *mm, uint64_t start, unsigned long n,
			   unsigned long *moved);
/* Evict every live device page with dmm_migrate_device_range, looping
 * until the device is empty. Returns the number of rounds. */
int testdrv_evict_all(struct testdrv *drv);

#endif
