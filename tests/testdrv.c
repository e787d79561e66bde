/* SPDX-License-Identifier: MIT */
/* The tests' minimal device driver (see testdrv.h). Public API only. */
#include "testdrv.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool countdown_hit(_Atomic long *c)
{
	long v = atomic_load(c);

	while (v > 0)
		if (atomic_compare_exchange_weak(c, &v, v - 1))
			return v == 1;
	return false;
}

static void drv_folio_free(struct dmm_pgmap *pgmap, uint64_t pfn)
{
	struct testdrv *drv = dmm_pgmap_driver_data(pgmap);

	pthread_mutex_lock(&drv->lock);
	while (drv->free_hold) {
		drv->free_waiting = true;
		pthread_cond_broadcast(&drv->free_cond);
		pthread_cond_wait(&drv->free_cond, &drv->lock);
	}
	drv->free_list[drv->nfree++] = pfn;
	pthread_mutex_unlock(&drv->lock);
	atomic_fetch_add(&drv->folio_frees, 1);
}

void testdrv_hold_free(struct testdrv *drv)
{
	pthread_mutex_lock(&drv->lock);
	drv->free_hold = true;
	drv->free_waiting = false;
	pthread_mutex_unlock(&drv->lock);
}

void testdrv_wait_free_held(struct testdrv *drv)
{
	pthread_mutex_lock(&drv->lock);
	while (!drv->free_waiting)
		pthread_cond_wait(&drv->free_cond, &drv->lock);
	pthread_mutex_unlock(&drv->lock);
}

void testdrv_release_free(struct testdrv *drv)
{
	pthread_mutex_lock(&drv->lock);
	drv->free_hold = false;
	pthread_cond_broadcast(&drv->free_cond);
	pthread_mutex_unlock(&drv->lock);
}

void *testdrv_page_data(struct testdrv *drv, uint64_t pfn)
{
	uint64_t i = pfn - dmm_pgmap_pfn_first(drv->pgmap);

	if (drv->type == DMM_MEMORY_DEVICE_PRIVATE)
		return drv->backing + i * DMM_PAGE_SIZE;
	return dmm_page_address(drv->sys, pfn);
}

int testdrv_owns(struct testdrv *drv, uint64_t pfn)
{
	uint64_t first = dmm_pgmap_pfn_first(drv->pgmap);

	return pfn >= first && pfn < first + drv->npages;
}

/* A free device page, locked with one reference; 0 when none. */
static uint64_t drv_alloc(struct testdrv *drv)
{
	uint64_t pfn = 0;

	if (countdown_hit(&drv->fail_dev_alloc))
		return 0;
	pthread_mutex_lock(&drv->lock);
	if (drv->nfree)
		pfn = drv->free_list[--drv->nfree];
	pthread_mutex_unlock(&drv->lock);
	if (pfn && dmm_zone_device_page_init(drv->sys, pfn)) {
		pthread_mutex_lock(&drv->lock);
		drv->free_list[drv->nfree++] = pfn;
		pthread_mutex_unlock(&drv->lock);
		return 0;
	}
	if (pfn)
		dmm_page_set_zone_device_data(drv->sys, pfn, testdrv_page_data(drv, pfn));
	return pfn;
}

uint64_t testdrv_alloc_page(struct testdrv *drv)
{
	return drv_alloc(drv);
}

/* A locked system page with a reference; 0 when none. */
static uint64_t sys_alloc(struct testdrv *drv)
{
	uint64_t pfn;

	if (countdown_hit(&drv->fail_sys_alloc) || dmm_alloc_page(drv->sys, &pfn))
		return 0;
	dmm_lock_page(drv->sys, pfn);
	return pfn;
}

/* Copy device-ward or system-ward; src 0 means a hole (zero fill). */
static void copy_page(struct testdrv *drv, uint64_t dst_pfn, uint64_t src_pfn)
{
	void *d = dmm_page_pgmap(drv->sys, dst_pfn) == drv->pgmap ? testdrv_page_data(drv, dst_pfn)
								     : dmm_page_address(drv->sys, dst_pfn);
	void *s = NULL;

	if (src_pfn)
		s = dmm_page_pgmap(drv->sys, src_pfn) == drv->pgmap ? testdrv_page_data(drv, src_pfn)
								     : dmm_page_address(drv->sys, src_pfn);
	if (s)
		memcpy(d, s, DMM_PAGE_SIZE);
	else
		memset(d, 0, DMM_PAGE_SIZE);
}

static unsigned int drv_migrate_to_ram(struct dmm_vm_fault *vmf)
{
	/* The device comes from the page's pgmap, never from a process. */
	struct testdrv *drv = dmm_pgmap_driver_data(vmf->pgmap);
	uint64_t src = 0, dst = 0, dpfn;
	struct dmm_migrate_vma args = {
		.mm = vmf->mm,
		.start = vmf->address,
		.end = vmf->address + DMM_PAGE_SIZE,
		.src = &src,
		.dst = &dst,
		.pgmap_owner = drv,
		.flags = DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page = vmf->page,
	};
	unsigned int forced = atomic_load(&drv->fault_result);

	unsigned int delay = atomic_load(&drv->fault_delay_us);

	atomic_fetch_add(&drv->faults, 1);
	if (forced)
		return forced;
	if (delay)
		usleep(delay);
	if (dmm_migrate_vma_setup(&args))
		return DMM_VM_FAULT_SIGBUS;
	delay = atomic_load(&drv->fault_delay_collected_us);
	if (delay)
		usleep(delay);
	if (!(src & DMM_MIGRATE_PFN_MIGRATE)) {
		dmm_migrate_vma_finalize(&args);
		atomic_fetch_add(&drv->fault_noops, 1);
		return 0; /* someone else moved it: the access retries */
	}
	dpfn = sys_alloc(drv);
	if (!dpfn) {
		dmm_migrate_vma_finalize(&args);
		return DMM_VM_FAULT_OOM;
	}
	copy_page(drv, dpfn, dmm_migrate_pfn_to_pfn(src));
	dst = dmm_migrate_pfn(dpfn);
	dmm_migrate_vma_pages(&args);
	atomic_fetch_add(src & DMM_MIGRATE_PFN_MIGRATE ? &drv->fault_migrations : &drv->fault_noops, 1);
	dmm_migrate_vma_finalize(&args);
	return 0;
}

static const struct dmm_pgmap_ops drv_ops = {
	.folio_free = drv_folio_free,
	.migrate_to_ram = drv_migrate_to_ram,
};

int testdrv_create(struct dmm_system *sys, enum dmm_memory_type type, uint64_t npages,
		   struct testdrv **out)
{
	struct testdrv *drv = calloc(1, sizeof(*drv));
	struct dmm_pgmap_desc desc = {
		.type = type, .nr_pages = npages, .ops = &drv_ops, .owner = drv, .driver_data = drv,
	};
	int r;

	if (!drv)
		return -ENOMEM;
	drv->sys = sys;
	drv->type = type;
	drv->npages = npages;
	drv->free_list = calloc(npages, sizeof(*drv->free_list));
	if (type == DMM_MEMORY_DEVICE_PRIVATE)
		drv->backing = calloc(npages, DMM_PAGE_SIZE);
	pthread_mutex_init(&drv->lock, NULL);
	pthread_cond_init(&drv->free_cond, NULL);
	r = dmm_memremap_pages(sys, &desc, &drv->pgmap);
	if (r || !drv->free_list || (type == DMM_MEMORY_DEVICE_PRIVATE && !drv->backing)) {
		pthread_mutex_destroy(&drv->lock);
		pthread_cond_destroy(&drv->free_cond);
		free(drv->free_list);
		free(drv->backing);
		free(drv);
		return r ? r : -ENOMEM;
	}
	/* Lowest pfns are handed out first. */
	for (uint64_t i = 0; i < npages; i++)
		drv->free_list[i] = dmm_pgmap_pfn_first(drv->pgmap) + npages - 1 - i;
	drv->nfree = npages;
	*out = drv;
	return 0;
}

uint64_t testdrv_used(struct testdrv *drv)
{
	uint64_t n;

	pthread_mutex_lock(&drv->lock);
	n = drv->npages - drv->nfree;
	pthread_mutex_unlock(&drv->lock);
	return n;
}

#define WINDOW 64

int testdrv_migrate_to_dev(struct testdrv *drv, struct dmm_mm *mm, uint64_t start, unsigned long n,
			   unsigned long *moved)
{
	uint64_t src[WINDOW], dst[WINDOW];
	unsigned long done = 0;
	int r = 0;

	for (unsigned long off = 0; off < n && !r; off += WINDOW) {
		unsigned long w = n - off < WINDOW ? n - off : WINDOW;
		struct dmm_migrate_vma args = {
			.mm = mm, .start = start + off * DMM_PAGE_SIZE,
			.end = start + (off + w) * DMM_PAGE_SIZE, .src = src, .dst = dst,
			.pgmap_owner = drv, .flags = DMM_MIGRATE_VMA_SELECT_SYSTEM,
		};

		dmm_mmap_read_lock(mm);
		r = dmm_migrate_vma_setup(&args);
		if (!r) {
			for (unsigned long i = 0; i < args.npages; i++) {
				uint64_t dpfn;

				if (!(src[i] & DMM_MIGRATE_PFN_MIGRATE) || !(dpfn = drv_alloc(drv)))
					continue;
				copy_page(drv, dpfn, (src[i] & DMM_MIGRATE_PFN_VALID) ? dmm_migrate_pfn_to_pfn(src[i]) : 0);
				dst[i] = dmm_migrate_pfn(dpfn) | (src[i] & DMM_MIGRATE_PFN_WRITE);
			}
			dmm_migrate_vma_pages(&args);
			for (unsigned long i = 0; i < args.npages; i++)
				done += !!(src[i] & DMM_MIGRATE_PFN_MIGRATE);
			dmm_migrate_vma_finalize(&args);
		}
		dmm_mmap_read_unlock(mm);
	}
	if (moved)
		*moved = done;
	return r;
}

int testdrv_migrate_to_sys(struct testdrv *drv, struct dmm_mm *mm, uint64_t start, unsigned long n,
			   unsigned long *moved)
{
	uint64_t src[WINDOW], dst[WINDOW];
	unsigned long done = 0;
	int r = 0;

	for (unsigned long off = 0; off < n && !r; off += WINDOW) {
		unsigned long w = n - off < WINDOW ? n - off : WINDOW;
		struct dmm_migrate_vma args = {
			.mm = mm, .start = start + off * DMM_PAGE_SIZE,
			.end = start + (off + w) * DMM_PAGE_SIZE, .src = src, .dst = dst,
			.pgmap_owner = drv,
			.flags = drv->type == DMM_MEMORY_DEVICE_PRIVATE ? DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE
									: DMM_MIGRATE_VMA_SELECT_DEVICE_COHERENT,
		};

		dmm_mmap_read_lock(mm);
		r = dmm_migrate_vma_setup(&args);
		for (unsigned long i = 0; !r && i < args.npages; i++) {
			uint64_t dpfn;

			if (!(src[i] & DMM_MIGRATE_PFN_MIGRATE) || !(src[i] & DMM_MIGRATE_PFN_VALID))
				continue;
			dpfn = sys_alloc(drv);
			if (!dpfn) {
				r = -ENOMEM;
				break;
			}
			copy_page(drv, dpfn, dmm_migrate_pfn_to_pfn(src[i]));
			dst[i] = dmm_migrate_pfn(dpfn);
		}
		if (r == -ENOMEM) {
			/* Give back what was allocated: the window stays untouched. */
			for (unsigned long i = 0; i < args.npages; i++) {
				if (dst[i]) {
					dmm_unlock_page(drv->sys, dmm_migrate_pfn_to_pfn(dst[i]));
					dmm_put_page(drv->sys, dmm_migrate_pfn_to_pfn(dst[i]));
					dst[i] = 0;
				}
			}
			dmm_migrate_vma_finalize(&args);
		} else if (!r) {
			dmm_migrate_vma_pages(&args);
			for (unsigned long i = 0; i < args.npages; i++)
				done += !!(src[i] & DMM_MIGRATE_PFN_MIGRATE);
			dmm_migrate_vma_finalize(&args);
		}
		dmm_mmap_read_unlock(mm);
	}
	if (moved)
		*moved = done;
	return r;
}

int testdrv_evict_all(struct testdrv *drv)
{
	uint64_t first = dmm_pgmap_pfn_first(drv->pgmap);
	int rounds = 0;

	while (testdrv_used(drv)) {
		for (uint64_t off = 0; off < drv->npages; off += WINDOW) {
			uint64_t src[WINDOW], dst[WINDOW] = { 0 };
			unsigned long w = drv->npages - off < WINDOW ? drv->npages - off : WINDOW;

			dmm_migrate_device_range(drv->sys, src, first + off, w);
			for (unsigned long i = 0; i < w; i++) {
				uint64_t dpfn;

				if (!(src[i] & DMM_MIGRATE_PFN_MIGRATE) || dmm_alloc_page(drv->sys, &dpfn))
					continue;
				dmm_lock_page(drv->sys, dpfn);
				copy_page(drv, dpfn, dmm_migrate_pfn_to_pfn(src[i]));
				dst[i] = dmm_migrate_pfn(dpfn);
			}
			dmm_migrate_device_pages(drv->sys, src, dst, w);
			dmm_migrate_device_finalize(drv->sys, src, dst, w);
		}
		if (++rounds > 1000)
			break; /* a page someone keeps locked or referenced: give up */
		sched_yield();
	}
	return rounds;
}

void testdrv_destroy(struct testdrv *drv)
{
	if (!drv)
		return;
	if (drv->pgmap) {
		testdrv_evict_all(drv);
		dmm_memunmap_pages(drv->pgmap);
	}
	testdrv_free(drv);
}

void testdrv_free(struct testdrv *drv)
{
	if (!drv)
		return;
	pthread_mutex_destroy(&drv->lock);
	pthread_cond_destroy(&drv->free_cond);
	free(drv->free_list);
	free(drv->backing);
	free(drv);
}
