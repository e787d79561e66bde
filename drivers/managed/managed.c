/* SPDX-License-Identifier: MIT */
/*
 * The managed device (managed.h): device-private memory with backing
 * storage, a device page table (a hash of page -> device pfn), accesses
 * that hit the table or become fault records in the engine's fault
 * buffer, and the ops the engine calls back (allocate, copy, map, unmap,
 * replay, cancel). migrate_to_ram hands CPU faults to the engine.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "managed.h"

#define PAGE DMM_PAGE_SIZE
#define NBUCKETS (1u << 14)
#define NO_PROGRESS_ROUNDS 64

struct ptab_entry {
	uint64_t addr, pfn;
	bool write;
	struct ptab_entry *next;
};

struct cancelled {
	uint64_t addr;
	uint32_t stream;
	int error;
	struct cancelled *next;
};

struct managed_dev {
	struct dmm_system *sys;
	struct dmm_engine *eng;
	struct dmm_pgmap *pgmap;
	unsigned int proc;
	uint64_t first, npages;
	uint8_t *backing;
	pthread_mutex_t lock;
	/* dev->lock: */
	uint64_t *free_list;
	uint64_t nr_free;
	struct ptab_entry *buckets[NBUCKETS];
	struct cancelled *cancels;
	struct managed_stats st;
	void (*copy_hook)(void *arg, uint64_t dpfn); /* tests; set while the device is idle */
	void *copy_hook_arg;
};

static void *page_data(struct managed_dev *d, uint64_t pfn)
{
	return d->backing + (pfn - d->first) * PAGE;
}

static unsigned int bucket(uint64_t addr)
{
	return (unsigned int)(((addr / PAGE) * 0x9e3779b97f4a7c15ULL) >> 50) & (NBUCKETS - 1);
}

/* dev->lock held. */
static struct ptab_entry *ptab_find(struct managed_dev *d, uint64_t addr)
{
	struct ptab_entry *e;

	for (e = d->buckets[bucket(addr)]; e && e->addr != addr; e = e->next)
		;
	return e;
}

static void ptab_erase(struct managed_dev *d, uint64_t addr)
{
	struct ptab_entry **pp = &d->buckets[bucket(addr)], *e;

	while ((e = *pp) && e->addr != addr)
		pp = &e->next;
	if (e) {
		*pp = e->next;
		free(e);
		d->st.unmaps++;
	}
}

/* ------------------------------------------------------------------------ */
/* pgmap ops                                                                 */

static void managed_folio_free(struct dmm_pgmap *pgmap, uint64_t pfn)
{
	struct managed_dev *d = dmm_pgmap_driver_data(pgmap);

	pthread_mutex_lock(&d->lock);
	d->free_list[d->nr_free++] = pfn;
	d->st.frees++;
	pthread_mutex_unlock(&d->lock);
}

static unsigned int managed_migrate_to_ram(struct dmm_vm_fault *vmf)
{
	struct managed_dev *d = dmm_pgmap_driver_data(vmf->pgmap);

	return dmm_engine_migrate_to_ram(d->eng, vmf);
}

static const struct dmm_pgmap_ops pgmap_ops = {
	.folio_free = managed_folio_free,
	.migrate_to_ram = managed_migrate_to_ram,
};

/* ------------------------------------------------------------------------ */
/* What the engine calls                                                     */

static int op_alloc_page(void *drv, uint64_t *pfn)
{
	struct managed_dev *d = drv;
	uint64_t p = 0;

	pthread_mutex_lock(&d->lock);
	if (d->nr_free)
		p = d->free_list[--d->nr_free];
	pthread_mutex_unlock(&d->lock);
	if (!p)
		return -ENOMEM;
	if (dmm_zone_device_page_init(d->sys, p)) {
		pthread_mutex_lock(&d->lock);
		d->free_list[d->nr_free++] = p;
		pthread_mutex_unlock(&d->lock);
		return -ENOMEM;
	}
	dmm_page_set_zone_device_data(d->sys, p, page_data(d, p));
	pthread_mutex_lock(&d->lock);
	d->st.allocs++;
	pthread_mutex_unlock(&d->lock);
	*pfn = p;
	return 0;
}

static void op_copy_to_dev(void *drv, uint64_t dpfn, const void *src)
{
	struct managed_dev *d = drv;

	if (src)
		memcpy(page_data(d, dpfn), src, PAGE);
	else
		memset(page_data(d, dpfn), 0, PAGE);
}

static void op_copy_from_dev(void *drv, uint64_t dpfn, void *dst)
{
	struct managed_dev *d = drv;

	memcpy(dst, page_data(d, dpfn), PAGE);
	if (d->copy_hook)
		d->copy_hook(d->copy_hook_arg, dpfn);
}

void managed_dev_set_copy_hook(struct managed_dev *d, void (*fn)(void *arg, uint64_t dpfn), void *arg)
{
	d->copy_hook = fn;
	d->copy_hook_arg = arg;
}

static void op_map(void *drv, uint64_t addr, uint64_t pfn, bool writable)
{
	struct managed_dev *d = drv;
	struct ptab_entry *e;

	pthread_mutex_lock(&d->lock);
	e = ptab_find(d, addr);
	if (!e && (e = calloc(1, sizeof(*e)))) {
		e->addr = addr;
		e->next = d->buckets[bucket(addr)];
		d->buckets[bucket(addr)] = e;
	}
	if (e) { /* no memory for an entry: the device simply faults again */
		e->pfn = pfn;
		e->write = writable;
		d->st.maps++;
	}
	pthread_mutex_unlock(&d->lock);
}

static void op_unmap(void *drv, uint64_t start, uint64_t end)
{
	struct managed_dev *d = drv;

	pthread_mutex_lock(&d->lock);
	if ((end - start) / PAGE <= NBUCKETS) {
		for (uint64_t a = start; a < end; a += PAGE)
			ptab_erase(d, a);
	} else {
		for (unsigned int b = 0; b < NBUCKETS; b++) {
			struct ptab_entry **pp = &d->buckets[b], *e;

			while ((e = *pp)) {
				if (e->addr >= start && e->addr < end) {
					*pp = e->next;
					free(e);
					d->st.unmaps++;
				} else {
					pp = &e->next;
				}
			}
		}
	}
	pthread_mutex_unlock(&d->lock);
}

static void op_replay(void *drv, uint64_t t)
{
	struct managed_dev *d = drv;

	(void)t;
	pthread_mutex_lock(&d->lock);
	d->st.replays++;
	pthread_mutex_unlock(&d->lock);
}

static void op_cancel(void *drv, uint64_t addr, uint32_t stream, int error)
{
	struct managed_dev *d = drv;
	struct cancelled *c = calloc(1, sizeof(*c));

	pthread_mutex_lock(&d->lock);
	d->st.cancels++;
	if (c) { /* no memory: the access faults again and is cancelled again */
		c->addr = addr;
		c->stream = stream;
		c->error = error;
		c->next = d->cancels;
		d->cancels = c;
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct dmm_managed_dev_ops dev_ops = {
	.alloc_page = op_alloc_page,
	.copy_to_dev = op_copy_to_dev,
	.copy_from_dev = op_copy_from_dev,
	.map = op_map,
	.unmap = op_unmap,
	.replay = op_replay,
	.cancel = op_cancel,
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */

int managed_dev_create(struct dmm_system *sys, struct dmm_engine *eng, uint64_t pages,
		       unsigned int fault_buffer_entries, struct managed_dev **out)
{
	struct managed_dev *d;
	struct dmm_pgmap_desc desc = { .type = DMM_MEMORY_DEVICE_PRIVATE, .nr_pages = pages, .ops = &pgmap_ops };
	struct dmm_managed_dev_desc md = { .ops = &dev_ops, .fault_buffer_entries = fault_buffer_entries };
	int err;

	if (!sys || !eng || !out || !pages)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->backing = calloc(pages, PAGE);
	d->free_list = calloc(pages, sizeof(*d->free_list));
	if (!d->backing || !d->free_list) {
		err = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->sys = sys;
	d->eng = eng;
	desc.owner = d;
	desc.driver_data = d;
	err = dmm_memremap_pages(sys, &desc, &d->pgmap);
	if (err)
		goto fail;
	d->first = dmm_pgmap_pfn_first(d->pgmap);
	d->npages = pages;
	for (uint64_t i = 0; i < pages; i++)
		d->free_list[d->nr_free++] = d->first + pages - 1 - i;
	md.drv = d;
	md.pgmap_owner = d;
	err = dmm_engine_add_device(eng, &md, &d->proc);
	if (err) {
		dmm_memunmap_pages(d->pgmap);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	free(d->backing);
	free(d->free_list);
	free(d);
	return err;
}

void managed_dev_destroy(struct managed_dev *d)
{
	if (!d)
		return;
	dmm_memunmap_pages(d->pgmap);
	for (unsigned int b = 0; b < NBUCKETS; b++)
		while (d->buckets[b]) {
			struct ptab_entry *e = d->buckets[b];

			d->buckets[b] = e->next;
			free(e);
		}
	while (d->cancels) {
		struct cancelled *c = d->cancels;

		d->cancels = c->next;
		free(c);
	}
	pthread_mutex_destroy(&d->lock);
	free(d->backing);
	free(d->free_list);
	free(d);
}

unsigned int managed_dev_proc(const struct managed_dev *d)
{
	return d ? d->proc : DMM_PROC_NONE;
}

uint64_t managed_dev_used(struct managed_dev *d)
{
	return dmm_pgmap_nr_allocated(d->pgmap);
}

void managed_dev_stats(struct managed_dev *d, struct managed_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->st;
	pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------------ */
/* Accesses                                                                  */

/* A cancelled fault of @stream in [start, end): take it (dev->lock held). */
static int take_cancel(struct managed_dev *d, uint32_t stream, uint64_t start, uint64_t end)
{
	for (struct cancelled **pp = &d->cancels, *c; (c = *pp); pp = &c->next) {
		if (c->stream == stream && c->addr >= start && c->addr < end) {
			int err = c->error;

			*pp = c->next;
			free(c);
			return err;
		}
	}
	return 0;
}

/* Do the access on the backing pages (dev->lock held, every page mapped). */
static void perform(struct managed_dev *d, uint64_t addr, enum dmm_access op, uint8_t *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		uint64_t a = addr + done, off = a % PAGE;
		size_t n = PAGE - off < len - done ? PAGE - off : len - done;
		uint8_t *p = (uint8_t *)page_data(d, ptab_find(d, a - off)->pfn) + off;

		if (op == DMM_ACCESS_ATOMIC) {
			uint32_t old, add;

			memcpy(&old, p, 4);
			memcpy(&add, buf, 4);
			add += old;
			memcpy(p, &add, 4);
			memcpy(buf, &old, 4);
		} else if (op == DMM_ACCESS_WRITE) {
			memcpy(p, buf + done, n);
		} else if (op == DMM_ACCESS_READ) {
			memcpy(buf + done, p, n);
		}
		done += n;
	}
}

int managed_access(struct managed_dev *d, uint32_t stream, uint64_t addr, enum dmm_access op, void *buf,
		   size_t len)
{
	uint64_t first, last, nmiss = 0;
	int err;

	if (!d || !len || (op != DMM_ACCESS_PREFETCH && !buf) || (unsigned int)op > DMM_ACCESS_ATOMIC ||
	    addr + len < addr || (op == DMM_ACCESS_ATOMIC && (len != 4 || addr % 4)))
		return -EINVAL;
	first = addr & DMM_PAGE_MASK;
	last = (addr + len - 1) & DMM_PAGE_MASK;
	pthread_mutex_lock(&d->lock);
	d->st.accesses++;
	err = take_cancel(d, stream, first, last + PAGE);
	if (err) {
		pthread_mutex_unlock(&d->lock);
		return err;
	}
	for (uint64_t a = first; a <= last; a += PAGE) {
		struct ptab_entry *e = ptab_find(d, a);

		if (!e || (op >= DMM_ACCESS_WRITE && !e->write))
			nmiss++;
	}
	if (!nmiss) {
		d->st.hits++;
		perform(d, addr, op, buf, len);
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	pthread_mutex_unlock(&d->lock);
	/* Every missing page faults now, as a warp's accesses do together;
	 * the table is read again page by page (the engine may be mapping). */
	for (uint64_t a = first; a <= last; a += PAGE) {
		struct dmm_fault_entry fe = { .addr = a, .access = op, .stream = stream, .utlb = stream };
		struct ptab_entry *e;
		bool miss;

		pthread_mutex_lock(&d->lock);
		e = ptab_find(d, a);
		miss = !e || (op >= DMM_ACCESS_WRITE && !e->write);
		if (miss)
			d->st.faults++;
		pthread_mutex_unlock(&d->lock);
		if (miss && (err = dmm_engine_fault(d->eng, d->proc, &fe)))
			return err;
	}
	return -EAGAIN;
}

/* Something the engine did that can let an access go on. */
static uint64_t progress(struct dmm_engine *eng)
{
	struct dmm_engine_stats st;

	if (dmm_engine_stats(eng, &st))
		return 0;
	return st.htod_pages + st.dtoh_pages + st.dtod_pages + st.remaps + st.throttled + st.cancelled;
}

int managed_run(struct managed_dev *d, uint32_t stream, uint64_t addr, enum dmm_access op, void *buf,
		size_t len)
{
	uint64_t seen = d ? progress(d->eng) : 0;

	for (int idle = 0; idle < NO_PROGRESS_ROUNDS;) {
		int err = managed_access(d, stream, addr, op, buf, len);
		uint64_t now;

		if (err != -EAGAIN)
			return err;
		err = dmm_engine_service(d->eng, d->proc, NULL);
		if (err)
			return err;
		now = progress(d->eng);
		idle = now != seen ? 0 : idle + 1;
		seen = now;
	}
	return -EBUSY;
}
