/* SPDX-License-Identifier: MIT */
/*
 * The mirror's migrations: migrate-to-dev and migrate-to-sys over a range,
 * the CPU fault handler (migrate_to_ram) and release (eviction of every
 * page of the device from every process). Each follows the migrate_vma
 * protocol: setup (with mmap_lock held for read), allocate and copy into
 * locked destinations, pages, update the device table, finalize.
 */
#include "internal.h"

#include <sched.h>

/* The VMA window at addr: [addr, *end) within one VMA, at most max pages.
 * -EINVAL when no readable VMA holds addr. */
static int vma_window(struct dmm_mm *mm, uint64_t addr, uint64_t limit, uint64_t max, uint64_t *end)
{
	struct dmm_vma_info v;

	if (dmm_vma_query(mm, addr, &v) || v.start > addr || !(v.flags & DMM_VM_READ))
		return -EINVAL;
	*end = v.end < limit ? v.end : limit;
	if (*end > addr + max * PAGE)
		*end = addr + max * PAGE;
	return 0;
}

static void copy_to_device(struct mirror_device *dev, uint64_t dpfn, uint64_t src)
{
	void *d;

	if (!dev->contents)
		return; /* metadata only: the migration is the state change */
	d = device_page_data(dev, dpfn);
	if (src & DMM_MIGRATE_PFN_VALID)
		memcpy(d, dmm_page_address(dev->sys, dmm_migrate_pfn_to_pfn(src)), PAGE);
	else
		memset(d, 0, PAGE);
}

/* One migrate-to-dev window (mmap_lock held). */
static int to_dev_window(struct mirror *m, uint64_t start, uint64_t end)
{
	struct mirror_device *dev = m->dev;
	uint64_t src[MIRROR_MIGRATE_WINDOW], dst[MIRROR_MIGRATE_WINDOW];
	struct dmm_migrate_vma args = {
		.mm = m->mm, .start = start, .end = end, .src = src, .dst = dst,
		.pgmap_owner = dev, .flags = DMM_MIGRATE_VMA_SELECT_SYSTEM,
	};
	int r = dmm_migrate_vma_setup(&args);

	if (r)
		return r;
	for (unsigned long i = 0; i < args.npages; i++) {
		uint64_t dpfn;

		if (!(src[i] & DMM_MIGRATE_PFN_MIGRATE) || !(dpfn = device_alloc(dev)))
			continue; /* not migratable, or no device memory: stays */
		copy_to_device(dev, dpfn, src[i]);
		dst[i] = dmm_migrate_pfn(dpfn) | (src[i] & DMM_MIGRATE_PFN_WRITE);
	}
	dmm_migrate_vma_pages(&args);
	/* Both pages are locked and mmap_lock is held: safe to map now. */
	pthread_mutex_lock(&m->lock);
	for (unsigned long i = 0; i < args.npages; i++)
		if ((src[i] & DMM_MIGRATE_PFN_MIGRATE) && dst[i])
			ptab_set(m->pt, start + i * PAGE, dmm_migrate_pfn_to_pfn(dst[i]),
				 (dst[i] & DMM_MIGRATE_PFN_WRITE) ? MIRROR_WRITE : MIRROR_READ);
	pthread_mutex_unlock(&m->lock);
	dmm_migrate_vma_finalize(&args);
	return 0;
}

/* Read the range back from the table, without faulting. */
static int read_back(struct mirror *m, uint64_t addr, uint64_t npages, uint8_t *buf, uint64_t *cpages)
{
	int r = 0;

	pthread_mutex_lock(&m->lock);
	for (uint64_t i = 0; i < npages; i++) {
		enum mirror_tag tag;
		uint64_t pfn;

		if (!ptab_get(m->pt, addr + i * PAGE, &pfn, &tag)) {
			r = -ENOENT;
			break;
		}
		if (buf)
			memcpy(buf + i * PAGE, frame_data(m->dev, pfn), PAGE);
		(*cpages)++;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mirror_migrate_to_dev(struct mirror *m, uint64_t addr, uint64_t npages, void *buf,
			  struct mirror_result *res)
{
	uint64_t end = addr + npages * PAGE, next, cpages = 0;
	uint8_t *bounce;
	int r = 0;

	res->cpages = res->faults = 0;
	if (!m || !range_ok(addr, npages))
		return -EINVAL;
	if (buf && !m->dev->contents)
		return -EOPNOTSUPP;
	for (uint64_t a = addr; a < end && !r; a = next) {
		r = vma_window(m->mm, a, end, MIRROR_MIGRATE_WINDOW, &next);
		if (r)
			break;
		dmm_mmap_read_lock(m->mm);
		r = to_dev_window(m, a, next);
		dmm_mmap_read_unlock(m->mm);
	}
	if (!r)
		r = mirror_map_own_range(m, addr, end);
	if (r)
		return r;
	if (!buf) {
		r = read_back(m, addr, npages, NULL, &cpages);
		res->cpages = cpages;
		return r;
	}
	bounce = malloc(npages * PAGE);
	if (!bounce)
		return -ENOMEM;
	r = read_back(m, addr, npages, bounce, &cpages);
	res->cpages = cpages;
	if (!r)
		memcpy(buf, bounce, npages * PAGE);
	free(bounce);
	return r;
}

/* Give back allocated destinations so that the window stays untouched. */
static void drop_dsts(struct mirror_device *dev, uint64_t *dst, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		if (!dst[i])
			continue;
		dmm_unlock_page(dev->sys, dmm_migrate_pfn_to_pfn(dst[i]));
		dmm_put_page(dev->sys, dmm_migrate_pfn_to_pfn(dst[i]));
		dst[i] = 0;
	}
}

/* One migrate-to-sys window (mmap_lock held). */
static int to_sys_window(struct mirror *m, uint64_t start, uint64_t end, uint64_t *moved)
{
	struct mirror_device *dev = m->dev;
	uint64_t src[MIRROR_MIGRATE_WINDOW], dst[MIRROR_MIGRATE_WINDOW];
	struct dmm_migrate_vma args = {
		.mm = m->mm, .start = start, .end = end, .src = src, .dst = dst, .pgmap_owner = dev,
		.flags = dev->type == DMM_MEMORY_DEVICE_PRIVATE ? DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE
								: DMM_MIGRATE_VMA_SELECT_DEVICE_COHERENT,
	};
	int r = dmm_migrate_vma_setup(&args);

	if (r)
		return r;
	for (unsigned long i = 0; i < args.npages; i++) {
		uint64_t spfn = dmm_migrate_pfn_to_pfn(src[i]), dpfn;

		if ((src[i] & (DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_VALID)) !=
		    (DMM_MIGRATE_PFN_MIGRATE | DMM_MIGRATE_PFN_VALID))
			continue;
		dpfn = system_alloc(dev);
		if (!dpfn) {
			drop_dsts(dev, dst, args.npages);
			dmm_migrate_vma_finalize(&args);
			return -ENOMEM;
		}
		if (dev->contents)
			memcpy(dmm_page_address(dev->sys, dpfn), device_page_data(dev, spfn), PAGE);
		dst[i] = dmm_migrate_pfn(dpfn);
	}
	dmm_migrate_vma_pages(&args);
	pthread_mutex_lock(&m->lock);
	for (unsigned long i = 0; i < args.npages; i++) {
		if (!(src[i] & DMM_MIGRATE_PFN_MIGRATE) || !dst[i])
			continue;
		ptab_clear(m->pt, start + i * PAGE); /* our own MIGRATE event was filtered */
		if (moved)
			(*moved)++;
	}
	pthread_mutex_unlock(&m->lock);
	dmm_migrate_vma_finalize(&args);
	return 0;
}

int migrate_range_to_sys(struct mirror *m, uint64_t start, uint64_t end, uint64_t *moved)
{
	uint64_t next;
	int r = 0;

	for (uint64_t a = start; a < end && !r; a = next) {
		r = vma_window(m->mm, a, end, MIRROR_MIGRATE_WINDOW, &next);
		if (r)
			break;
		dmm_mmap_read_lock(m->mm);
		r = to_sys_window(m, a, next, moved);
		dmm_mmap_read_unlock(m->mm);
	}
	return r;
}

int mirror_migrate_to_sys(struct mirror *m, uint64_t addr, uint64_t npages, struct mirror_result *res)
{
	uint64_t moved = 0;
	int r;

	res->cpages = res->faults = 0;
	if (!m || !range_ok(addr, npages))
		return -EINVAL;
	r = migrate_range_to_sys(m, addr, addr + npages * PAGE, &moved);
	res->cpages = moved;
	return r;
}

/* ------------------------------------------------------------------------ */
/* CPU faults                                                                */

/* Erase the faulting address from this device's mirror of the faulting
 * process (our own MIGRATE invalidation was filtered). Other processes'
 * mappings are converted by try_to_migrate, which notifies them. */
static void erase_own_mapping(struct mirror_device *dev, struct dmm_mm *mm, uint64_t addr, uint64_t pfn)
{
	struct mirror *m = mirror_find(dev, mm);

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	ptab_clear_pfn(m->pt, addr, addr + PAGE, pfn);
	pthread_mutex_unlock(&m->lock);
}

unsigned int mirror_migrate_to_ram(struct dmm_vm_fault *vmf)
{
	struct mirror_chunk *c = dmm_pgmap_driver_data(vmf->pgmap);
	struct mirror_device *dev = c->dev; /* through the pgmap, never a mirror */
	uint64_t src = 0, dst = 0, dpfn;
	struct dmm_migrate_vma args = {
		.mm = vmf->mm, .start = vmf->address, .end = vmf->address + PAGE, .src = &src, .dst = &dst,
		.pgmap_owner = dev, .flags = DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE, .fault_page = vmf->page,
	};

	if (dmm_migrate_vma_setup(&args))
		return DMM_VM_FAULT_SIGBUS;
	if (!(src & DMM_MIGRATE_PFN_MIGRATE)) {
		dmm_migrate_vma_finalize(&args);
		return 0; /* nothing to do: the access retries */
	}
	dpfn = system_alloc(dev);
	if (!dpfn) {
		dmm_migrate_vma_finalize(&args);
		return DMM_VM_FAULT_OOM;
	}
	erase_own_mapping(dev, vmf->mm, vmf->address, vmf->page);
	if (dev->contents)
		memcpy(dmm_page_address(dev->sys, dpfn), device_page_data(dev, vmf->page), PAGE);
	dst = dmm_migrate_pfn(dpfn);
	dmm_migrate_vma_pages(&args);
	if (src & DMM_MIGRATE_PFN_MIGRATE)
		atomic_fetch_add(&dev->migrations_to_ram, 1);
	dmm_migrate_vma_finalize(&args);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* release                                                                   */

#define EVICT_BATCH 64

/* Evict every live page of one chunk; loop until it is empty (pitfall 6). */
static void evict_chunk(struct mirror_device *dev, struct mirror_chunk *c)
{
	for (int round = 0; dmm_pgmap_nr_allocated(c->pgmap); round++) {
		for (uint64_t off = 0; off < c->npages; off += EVICT_BATCH) {
			uint64_t src[EVICT_BATCH], dst[EVICT_BATCH] = { 0 };
			unsigned long n = c->npages - off < EVICT_BATCH ? c->npages - off : EVICT_BATCH;

			dmm_migrate_device_range(dev->sys, src, c->first + off, n);
			for (unsigned long i = 0; i < n; i++) {
				uint64_t dpfn;

				if (!(src[i] & DMM_MIGRATE_PFN_MIGRATE) || dmm_alloc_page(dev->sys, &dpfn))
					continue;
				dmm_lock_page(dev->sys, dpfn);
				if (dev->contents)
					memcpy(dmm_page_address(dev->sys, dpfn),
					       device_page_data(dev, dmm_migrate_pfn_to_pfn(src[i])), PAGE);
				dst[i] = dmm_migrate_pfn(dpfn);
			}
			dmm_migrate_device_pages(dev->sys, src, dst, n);
			dmm_migrate_device_finalize(dev->sys, src, dst, n);
		}
		if (round > 0)
			sched_yield(); /* a page someone holds locked: let them finish */
	}
}

int mirror_release(struct mirror_device *dev)
{
	struct mirror_chunk **chunks;
	unsigned int n;

	if (!dev)
		return -EINVAL;
	/* Stop handing out pages: the free list forgets every chunk. */
	pthread_mutex_lock(&dev->lock);
	chunks = dev->chunks;
	n = dev->nr_chunks;
	for (unsigned int i = 0; i < n; i++)
		chunks[i]->released = true;
	dev->chunks = NULL;
	dev->nr_chunks = dev->cap_chunks = 0;
	dev->nr_free = 0;
	dev->in_chunks = 0;
	pthread_mutex_unlock(&dev->lock);
	for (unsigned int i = 0; i < n; i++) {
		evict_chunk(dev, chunks[i]);
		dmm_memunmap_pages(chunks[i]->pgmap);
		free(chunks[i]->backing);
		free(chunks[i]);
	}
	free(chunks);
	return 0;
}
