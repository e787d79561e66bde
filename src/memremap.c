/* SPDX-License-Identifier: MIT */
/*
 * Device memory (ZONE_DEVICE, semantics.md §1.2-1.5): registering and
 * unregistering ranges of device-private and device-coherent memory, and
 * the life of a device page: free at refcount 0 and owned by the driver;
 * handed out by dmm_zone_device_page_init locked with one reference and a
 * pgmap reference; handed back through the driver's folio_free exactly
 * once per 1 -> 0 transition.
 *
 * A pgmap occupies whole sections of the pfn space above RAM, so that
 * pfn_to_page() stays one table lookup for every kind of frame.
 * sys->pgmap_lock protects the list of pgmaps and the section table's
 * device part; it is never held while calling a driver.
 *
 * Lockless walkers (GUP-fast, pfn queries) reach a device page's metadata
 * through the section table without holding any reference, inside an RCU
 * read section: unregistering unpublishes the sections and frees the
 * metadata only after a grace period (docs/design.md, "pgmaps and device
 * pages"; docs/locking.md, section 7).
 */
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#include "internal.h"

static uint64_t nr_sections(uint64_t nr_pages)
{
	return (nr_pages + PAGES_PER_SECTION - 1) >> SECTION_SHIFT;
}

static int validate_desc(const struct dmm_pgmap_desc *d)
{
	if (d->nr_pages == 0 || d->nr_pages > DMM_PGMAP_MAX_PAGES)
		return -EINVAL;
	if (d->type != DMM_MEMORY_DEVICE_PRIVATE && d->type != DMM_MEMORY_DEVICE_COHERENT)
		return -EINVAL;
	/* Linux dereferences ops without a check for COHERENT (pitfall 15):
	 * devmm refuses a NULL ops for both types. */
	if (!d->ops || !d->ops->folio_free || !d->owner)
		return -EINVAL;
	if (d->type == DMM_MEMORY_DEVICE_PRIVATE && (!d->ops->migrate_to_ram || d->ops->cow_alloc))
		return -EINVAL;
	if (d->pfn_start & (PAGES_PER_SECTION - 1))
		return -EINVAL;
	return 0;
}

static bool sections_free(struct dmm_system *sys, uint64_t first, uint64_t n)
{
	for (uint64_t s = first; s < first + n; s++)
		if (atomic_load(&sys->sections[s]))
			return false;
	return true;
}

/* Choose (or validate) the first section of a new pgmap; pgmap_lock held. */
static int place_pgmap(struct dmm_system *sys, const struct dmm_pgmap_desc *d, uint64_t *first)
{
	uint64_t n = nr_sections(d->nr_pages), base = sys->device_pfn_base >> SECTION_SHIFT;

	if (d->pfn_start) {
		uint64_t s = d->pfn_start >> SECTION_SHIFT;

		if (d->pfn_start < sys->device_pfn_base)
			return -ENXIO;
		if (s + n > NR_SECTIONS)
			return -ERANGE;
		if (!sections_free(sys, s, n))
			return -ENOMEM;
		*first = s;
		return 0;
	}
	for (uint64_t s = base; s + n <= NR_SECTIONS; s++) {
		if (sections_free(sys, s, n)) {
			*first = s;
			return 0;
		}
	}
	return -ERANGE;
}

static struct dmm_pgmap *pgmap_alloc(struct dmm_system *sys, const struct dmm_pgmap_desc *d)
{
	uint64_t n = nr_sections(d->nr_pages);
	struct dmm_pgmap *pg = meta_calloc(sys, 1, sizeof(*pg) + n * sizeof(struct dmm_section));

	if (!pg)
		return NULL;
	pg->pages = meta_calloc(sys, d->nr_pages, sizeof(struct dmm_page));
	/* A metadata-only system's device memory has no contents either. */
	if (pg->pages && d->type == DMM_MEMORY_DEVICE_COHERENT && sys->arena) {
		pg->mem_bytes = d->nr_pages * PAGE_SIZE;
		pg->mem = mmap(NULL, pg->mem_bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (pg->mem == MAP_FAILED)
			pg->mem = NULL;
	}
	if (!pg->pages || (d->type == DMM_MEMORY_DEVICE_COHERENT && sys->arena && !pg->mem)) {
		free(pg->pages);
		free(pg);
		return NULL;
	}
	pg->sys = sys;
	pg->type = d->type;
	pg->nr_pages = d->nr_pages;
	pg->ops = *d->ops;
	pg->owner = d->owner;
	pg->driver_data = d->driver_data;
	pthread_mutex_init(&pg->done_lock, NULL);
	pthread_cond_init(&pg->done_cond, NULL);
	for (uint64_t i = 0; i < d->nr_pages; i++) {
		pg->pages[i].pgmap = pg;
		atomic_store_explicit(&pg->pages[i].flags, PG_zone_device, memory_order_relaxed);
	}
	return pg;
}

static void pgmap_free(struct dmm_pgmap *pg)
{
	if (pg->mem)
		munmap(pg->mem, pg->mem_bytes);
	pthread_mutex_destroy(&pg->done_lock);
	pthread_cond_destroy(&pg->done_cond);
	free(pg->pages);
	free(pg);
}

/* Publish the pgmap's sections, or unpublish them: then only the table
 * changes, as lockless readers may still be reading the sections. */
static void publish_sections(struct dmm_system *sys, struct dmm_pgmap *pg, bool on)
{
	uint64_t first = pg->pfn_start >> SECTION_SHIFT;

	for (uint64_t i = 0; i < nr_sections(pg->nr_pages); i++) {
		struct dmm_section *sec = &pg->sections[i];

		if (on) {
			sec->pages = pg->pages + i * PAGES_PER_SECTION;
			sec->mem = pg->mem ? pg->mem + i * PAGES_PER_SECTION * PAGE_SIZE : NULL;
			sec->nr = DMM_MIN(PAGES_PER_SECTION, pg->nr_pages - i * PAGES_PER_SECTION);
		}
		atomic_store_explicit(&sys->sections[first + i], on ? sec : NULL, memory_order_release);
	}
}

int dmm_memremap_pages(struct dmm_system *sys, const struct dmm_pgmap_desc *desc, struct dmm_pgmap **out)
{
	struct dmm_pgmap *pg;
	uint64_t first;
	int r;

	if (!sys || !desc || !out)
		return -EINVAL;
	r = validate_desc(desc);
	if (r)
		return r;
	pg = pgmap_alloc(sys, desc);
	if (!pg)
		return -ENOMEM;
	pthread_mutex_lock(&sys->pgmap_lock);
	r = place_pgmap(sys, desc, &first);
	if (!r) {
		pg->pfn_start = first << SECTION_SHIFT;
		publish_sections(sys, pg, true);
		list_add_tail(&pg->node, &sys->pgmaps);
	}
	pthread_mutex_unlock(&sys->pgmap_lock);
	if (r) {
		pgmap_free(pg);
		return r;
	}
	*out = pg;
	return 0;
}

static void pgmap_get(struct dmm_pgmap *pg)
{
	atomic_fetch_add(&pg->ref, 1);
}

/* The last put wakes a memunmap that waits; the read section keeps the
 * pgmap allocated until the wake-up is done, since the waiter may see the
 * count at 0 and unregister before this thread takes done_lock. */
static void pgmap_put(struct dmm_pgmap *pg)
{
	rcu_read_lock();
	if (atomic_fetch_sub(&pg->ref, 1) == 1 && atomic_load(&pg->dying)) {
		pthread_mutex_lock(&pg->done_lock);
		pthread_cond_broadcast(&pg->done_cond);
		pthread_mutex_unlock(&pg->done_lock);
	}
	rcu_read_unlock();
}

/* Wait until every reference is gone; false on timeout (ms < 0: forever). */
static bool pgmap_wait_unused(struct dmm_pgmap *pg, long ms)
{
	struct timespec dl;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &dl);
	if (ms >= 0) {
		dl.tv_sec += ms / 1000;
		dl.tv_nsec += (ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&pg->done_lock);
	while (ok && atomic_load(&pg->ref) > 0) {
		if (ms < 0)
			pthread_cond_wait(&pg->done_cond, &pg->done_lock);
		else if (pthread_cond_timedwait(&pg->done_cond, &pg->done_lock, &dl))
			ok = atomic_load(&pg->ref) == 0;
	}
	pthread_mutex_unlock(&pg->done_lock);
	return ok;
}

static void pgmap_free_rcu(struct rcu_head *head)
{
	pgmap_free(container_of(head, struct dmm_pgmap, rcu));
}

static int memunmap(struct dmm_pgmap *pg, long ms)
{
	struct dmm_system *sys;

	if (!pg)
		return -EINVAL;
	sys = pg->sys;
	atomic_store(&pg->dying, true);
	if (!pgmap_wait_unused(pg, ms)) {
		atomic_store(&pg->dying, false);
		return -EBUSY;
	}
	pthread_mutex_lock(&sys->pgmap_lock);
	publish_sections(sys, pg, false);
	list_del(&pg->node);
	pthread_mutex_unlock(&sys->pgmap_lock);
	/* Every page is free, so no walker touches the contents: they go now.
	 * A walker may still hold a pointer into the metadata, read from the
	 * section table or from an entry just before the page was freed: the
	 * metadata goes after a grace period. */
	if (pg->mem)
		munmap(pg->mem, pg->mem_bytes);
	pg->mem = NULL;
	call_rcu(&pg->rcu, pgmap_free_rcu);
	rcu_drain_if_due();
	return 0;
}

void dmm_memunmap_pages(struct dmm_pgmap *pg)
{
	memunmap(pg, -1);
}

int dmm_memunmap_pages_timeout(struct dmm_pgmap *pg, unsigned int timeout_ms)
{
	return memunmap(pg, (long)timeout_ms);
}

/* At system destruction: every device page should be free by now, as the
 * caller ended every address space; pages a driver still holds are
 * reported, and the pgmap is freed all the same. */
void pgmaps_destroy(struct dmm_system *sys)
{
	while (!list_empty(&sys->pgmaps)) {
		struct dmm_pgmap *pg = container_of(sys->pgmaps.next, struct dmm_pgmap, node);
		uint64_t live = dmm_pgmap_nr_allocated(pg);

		if (live)
			fprintf(stderr, "devmm: pgmap at pfn %#lx destroyed with %lu pages still in use\n",
				(unsigned long)pg->pfn_start, (unsigned long)live);
		list_del(&pg->node);
		publish_sections(sys, pg, false);
		call_rcu(&pg->rcu, pgmap_free_rcu);
	}
}

struct dmm_system *dmm_pgmap_system(const struct dmm_pgmap *pg) { return pg ? pg->sys : NULL; }
uint64_t dmm_pgmap_pfn_first(const struct dmm_pgmap *pg) { return pg ? pg->pfn_start : 0; }
uint64_t dmm_pgmap_nr_pages(const struct dmm_pgmap *pg) { return pg ? pg->nr_pages : 0; }
enum dmm_memory_type dmm_pgmap_type(const struct dmm_pgmap *pg) { return pg ? pg->type : 0; }
void *dmm_pgmap_owner(const struct dmm_pgmap *pg) { return pg ? pg->owner : NULL; }
void *dmm_pgmap_driver_data(const struct dmm_pgmap *pg) { return pg ? pg->driver_data : NULL; }

uint64_t dmm_pgmap_nr_allocated(const struct dmm_pgmap *pg)
{
	if (!pg)
		return 0;
	return (uint64_t)(atomic_load(&((struct dmm_pgmap *)pg)->ref) -
			  atomic_load(&((struct dmm_pgmap *)pg)->transient));
}

static struct dmm_page *device_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = sys ? pfn_to_page(sys, pfn) : NULL;

	return p && page_is_zone_device(p) ? p : NULL;
}

/* Any pfn may be asked about, one whose pgmap goes away meanwhile too:
 * the lookup is a lockless reader. */
struct dmm_pgmap *dmm_page_pgmap(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_pgmap *pg = NULL;
	struct dmm_page *p;

	rcu_read_lock();
	p = device_page(sys, pfn);
	if (p)
		pg = p->pgmap;
	rcu_read_unlock();
	return pg;
}

struct dmm_pgmap *dmm_get_dev_pagemap(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_pgmap *pg = NULL;
	struct dmm_page *p;

	if (!sys)
		return NULL;
	pthread_mutex_lock(&sys->pgmap_lock);
	p = device_page(sys, pfn);
	if (p && !atomic_load(&p->pgmap->dying)) {
		pg = p->pgmap;
		pgmap_ref_get(pg);
	}
	pthread_mutex_unlock(&sys->pgmap_lock);
	return pg;
}

void dmm_put_dev_pagemap(struct dmm_pgmap *pg)
{
	if (pg)
		pgmap_ref_put(pg);
}

void pgmap_ref_get(struct dmm_pgmap *pg)
{
	atomic_fetch_add(&pg->transient, 1);
	pgmap_get(pg);
}

void pgmap_ref_put(struct dmm_pgmap *pg)
{
	atomic_fetch_sub(&pg->transient, 1);
	pgmap_put(pg);
}

int dmm_zone_device_page_init(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = device_page(sys, pfn);
	struct dmm_pgmap *pg;
	uint32_t zero = 0;

	if (!p)
		return -EINVAL;
	pg = p->pgmap;
	pgmap_get(pg);
	if (atomic_load(&pg->dying)) {
		pgmap_put(pg);
		return -ENODEV;
	}
	if (!atomic_compare_exchange_strong(&p->refcount, &zero, 1)) {
		pgmap_put(pg);
		return -EBUSY;
	}
	/* Fresh state: no stale identity, locked, one reference. */
	p->mapping = NULL;
	p->index = 0;
	atomic_store(&p->mapcount, 0);
	atomic_store(&p->pincount, 0);
	atomic_store(&p->flags, PG_zone_device | PG_locked | PG_uptodate | page_lock_owner_bits());
	dmm_stat_inc(sys, dev_page_alloc);
	return 0;
}

void free_zone_device_page(struct dmm_system *sys, struct dmm_page *p)
{
	struct dmm_pgmap *pg = p->pgmap;

	DMM_BUG_ON(page_locked(p) || atomic_load(&p->pincount));
	p->mapping = NULL;
	p->index = 0;
	atomic_store(&p->flags, PG_zone_device);
	dmm_stat_inc(sys, dev_page_free);
	pg->ops.folio_free(pg, page_to_pfn(sys, p));
	pgmap_put(pg);
}

int dmm_page_set_zone_device_data(struct dmm_system *sys, uint64_t pfn, void *data)
{
	struct dmm_page *p = device_page(sys, pfn);

	if (!p)
		return -EINVAL;
	p->zone_device_data = data;
	return 0;
}

void *dmm_page_zone_device_data(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = device_page(sys, pfn);

	return p ? p->zone_device_data : NULL;
}
