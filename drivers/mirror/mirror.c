/* SPDX-License-Identifier: MIT */
/*
 * The mirror device: its memory, its per-process mirrors and the
 * interval-notifier callback that keeps each mirror's table honest.
 *
 * Device memory comes in chunks, each one pgmap registered with devmm on
 * demand (dmm_memremap_pages) up to the device's size. Free device pages
 * sit on the device's free list at refcount 0; device_alloc hands one out
 * through dmm_zone_device_page_init (locked, one reference); devmm calls
 * folio_free when the last reference goes and the page returns to the
 * list. A device-private page has backing storage that only this driver
 * touches; a device-coherent page is CPU-addressable memory of devmm's.
 *
 * Lock order: devmm's locks (mmap_lock, folio locks, rmap locks) are outside
 * dev->lock and m->lock: the driver takes its locks inside devmm's
 * callbacks and never calls a devmm operation that invalidates while
 * holding them.
 */
#include "internal.h"

#include <stdio.h>
#include <sys/mman.h>

static void mirror_folio_free(struct dmm_pgmap *pgmap, uint64_t pfn)
{
	struct mirror_chunk *c = dmm_pgmap_driver_data(pgmap);
	struct mirror_device *dev = c->dev;

	pthread_mutex_lock(&dev->lock);
	dev->used--;
	if (!c->released)
		dev->free_list[dev->nr_free++] = pfn;
	pthread_mutex_unlock(&dev->lock);
	atomic_fetch_add(&dev->frees, 1);
}

static const struct dmm_pgmap_ops private_ops = {
	.folio_free = mirror_folio_free,
	.migrate_to_ram = mirror_migrate_to_ram,
};

static const struct dmm_pgmap_ops coherent_ops = {
	.folio_free = mirror_folio_free,
};

/*
 * cow=device: copy-on-write of one of our pages places the copy in our own
 * memory while there is room; -ENOMEM lets devmm fall back to system
 * memory, which is what Linux always does.
 */
static int mirror_cow_alloc(struct dmm_pgmap *pgmap, uint64_t src_pfn, uint64_t *dst_pfn)
{
	struct mirror_chunk *c = dmm_pgmap_driver_data(pgmap);
	uint64_t pfn = device_alloc(c->dev);

	(void)src_pfn;
	if (!pfn)
		return -ENOMEM;
	*dst_pfn = pfn;
	return 0;
}

static const struct dmm_pgmap_ops coherent_cow_device_ops = {
	.folio_free = mirror_folio_free,
	.cow_alloc = mirror_cow_alloc,
};

static const struct dmm_pgmap_ops *device_ops(struct mirror_device *dev)
{
	if (dev->type == DMM_MEMORY_DEVICE_PRIVATE)
		return &private_ops;
	return dev->cow == MIRROR_COW_DEVICE ? &coherent_cow_device_ops : &coherent_ops;
}

int mirror_device_create(struct dmm_system *sys, const char *name, const struct mirror_device_config *cfg,
			 struct mirror_device **out)
{
	struct mirror_device *dev;

	if (!sys || !name || !cfg || !out || strlen(name) >= sizeof(dev->name))
		return -EINVAL;
	if (cfg->type != DMM_MEMORY_DEVICE_PRIVATE && cfg->type != DMM_MEMORY_DEVICE_COHERENT)
		return -EINVAL;
	if (cfg->cow == MIRROR_COW_DEVICE && cfg->type != DMM_MEMORY_DEVICE_COHERENT)
		return -EINVAL;
	/* Memory without contents beside memory with contents would lose
	 * data on every copy between them: all or nothing, system-wide. */
	if (cfg->no_contents && dmm_system_has_contents(sys))
		return -EINVAL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->sys = sys;
	strcpy(dev->name, name);
	dev->type = cfg->type;
	dev->size = cfg->pages ? cfg->pages : MIRROR_DEFAULT_PAGES;
	dev->chunk_pages = cfg->chunk_pages ? cfg->chunk_pages : MIRROR_DEFAULT_CHUNK;
	if (dev->chunk_pages > DMM_PGMAP_MAX_PAGES)
		dev->chunk_pages = DMM_PGMAP_MAX_PAGES;
	dev->cow = cfg->cow;
	dev->contents = dmm_system_has_contents(sys);
	/* A reservation, not malloc: untouched, it costs nothing until chunks
	 * are added (malloc and even calloc may write the whole block, e.g.
	 * with MALLOC_PERTURB_). */
	dev->free_list_bytes = dev->size * sizeof(*dev->free_list);
	dev->free_list = mmap(NULL, dev->free_list_bytes, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (dev->free_list == MAP_FAILED) {
		free(dev);
		return -ENOMEM;
	}
	pthread_mutex_init(&dev->lock, NULL);
	*out = dev;
	return 0;
}

/* Register one more chunk (dev->lock held). false: the device is full. */
static bool add_chunk(struct mirror_device *dev)
{
	uint64_t n = dev->size - dev->in_chunks;
	struct mirror_chunk *c, **nc;
	struct dmm_pgmap_desc desc = { 0 };

	if (n == 0)
		return false;
	if (n > dev->chunk_pages)
		n = dev->chunk_pages;
	if (dev->nr_chunks == dev->cap_chunks) {
		nc = realloc(dev->chunks, (dev->cap_chunks * 2 + 4) * sizeof(*nc));
		if (!nc)
			return false;
		dev->chunks = nc;
		dev->cap_chunks = dev->cap_chunks * 2 + 4;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return false;
	if (dev->type == DMM_MEMORY_DEVICE_PRIVATE && dev->contents && !(c->backing = calloc(n, PAGE))) {
		free(c);
		return false;
	}
	desc.type = dev->type;
	desc.nr_pages = n;
	desc.ops = device_ops(dev);
	desc.owner = dev;
	desc.driver_data = c;
	if (dmm_memremap_pages(dev->sys, &desc, &c->pgmap)) {
		free(c->backing);
		free(c);
		return false;
	}
	c->dev = dev;
	c->first = dmm_pgmap_pfn_first(c->pgmap);
	c->npages = n;
	dev->chunks[dev->nr_chunks++] = c;
	dev->in_chunks += n;
	/* Lowest pfns first, so that runs are predictable. */
	for (uint64_t i = 0; i < n; i++)
		dev->free_list[dev->nr_free++] = c->first + n - 1 - i;
	return true;
}

bool take_fail_next(struct mirror_device *dev)
{
	bool hit;

	pthread_mutex_lock(&dev->lock);
	hit = dev->fail_next;
	dev->fail_next = false;
	pthread_mutex_unlock(&dev->lock);
	return hit;
}

uint64_t device_alloc(struct mirror_device *dev)
{
	uint64_t pfn = 0;

	if (take_fail_next(dev))
		return 0;
	pthread_mutex_lock(&dev->lock);
	if (dev->nr_free || add_chunk(dev)) {
		pfn = dev->free_list[--dev->nr_free];
		dev->used++;
	}
	pthread_mutex_unlock(&dev->lock);
	if (pfn && dmm_zone_device_page_init(dev->sys, pfn)) {
		/* The chunk is being torn down (or the page was not free): give
		 * the pfn back rather than lose it. */
		pthread_mutex_lock(&dev->lock);
		dev->used--;
		dev->free_list[dev->nr_free++] = pfn;
		pthread_mutex_unlock(&dev->lock);
		return 0;
	}
	if (pfn && dev->type == DMM_MEMORY_DEVICE_PRIVATE && dev->contents)
		dmm_page_set_zone_device_data(dev->sys, pfn, device_page_data(dev, pfn));
	return pfn;
}

uint64_t system_alloc(struct mirror_device *dev)
{
	uint64_t pfn;

	if (take_fail_next(dev) || dmm_alloc_page(dev->sys, &pfn))
		return 0;
	dmm_lock_page(dev->sys, pfn);
	return pfn;
}

bool pfn_is_own(struct mirror_device *dev, uint64_t pfn)
{
	struct dmm_pgmap *pg = dmm_page_pgmap(dev->sys, pfn);

	return pg && dmm_pgmap_owner(pg) == dev;
}

void *device_page_data(struct mirror_device *dev, uint64_t pfn)
{
	struct dmm_pgmap *pg = dmm_page_pgmap(dev->sys, pfn);
	struct mirror_chunk *c = dmm_pgmap_driver_data(pg);

	if (dev->type == DMM_MEMORY_DEVICE_PRIVATE)
		return c->backing + (pfn - c->first) * PAGE;
	return dmm_page_address(dev->sys, pfn);
}

void *frame_data(struct mirror_device *dev, uint64_t pfn)
{
	if (pfn_is_own(dev, pfn))
		return device_page_data(dev, pfn);
	return dmm_page_address(dev->sys, pfn);
}

/* ------------------------------------------------------------------------ */
/* Mirrors                                                                   */

/*
 * The invalidate callback: MIGRATE events of this device are skipped (the
 * migration code updates the table itself); everything else erases the
 * range, under the mirror lock, after setting the sequence.
 */
static bool mirror_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			      unsigned long cur_seq)
{
	struct mirror *m = (struct mirror *)((char *)sub - offsetof(struct mirror, notifier));

	if (r->flags & DMM_MMU_NOTIFIER_RANGE_BLOCKABLE)
		pthread_mutex_lock(&m->lock);
	else if (pthread_mutex_trylock(&m->lock))
		return false;
	/* Always move the sequence, even for our own MIGRATE event, so that a
	 * fault pass that raced with the migration retries; but leave the
	 * entries to the migration code, which updates them itself. */
	dmm_mmu_interval_set_seq(sub, cur_seq);
	if (r->event == DMM_MMU_NOTIFY_MIGRATE && r->owner == m->dev) {
		pthread_mutex_unlock(&m->lock);
		return true;
	}
	/* A fork's write-protect keeps every page where it is, read-only: the
	 * fork-friendly policy keeps read access instead of dropping it. */
	if (r->event == DMM_MMU_NOTIFY_PROTECTION_PAGE && m->dev->cow == MIRROR_COW_DEVICE)
		ptab_downgrade_range(m->pt, r->start, r->end);
	else
		ptab_clear_range(m->pt, r->start, r->end);
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct dmm_mmu_interval_notifier_ops mirror_notifier_ops = {
	.invalidate = mirror_invalidate,
};

struct mirror *mirror_find(struct mirror_device *dev, struct dmm_mm *mm)
{
	struct mirror *m;

	pthread_mutex_lock(&dev->lock);
	for (m = dev->mirrors; m && m->mm != mm; m = m->next)
		;
	pthread_mutex_unlock(&dev->lock);
	return m;
}

int mirror_open(struct mirror_device *dev, struct dmm_mm *mm, struct mirror **out)
{
	struct mirror *m;
	int r;

	if (!dev || !mm || !out)
		return -EINVAL;
	m = mirror_find(dev, mm);
	if (m) {
		*out = m;
		return 0;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->pt = ptab_create())) {
		free(m);
		return -ENOMEM;
	}
	m->dev = dev;
	m->mm = mm;
	pthread_mutex_init(&m->lock, NULL);
	r = dmm_mmu_interval_notifier_insert(&m->notifier, mm, 0, DMM_TASK_SIZE, &mirror_notifier_ops);
	if (r) {
		ptab_destroy(m->pt);
		free(m);
		return r;
	}
	pthread_mutex_lock(&dev->lock);
	for (*out = dev->mirrors; *out && (*out)->mm != mm; *out = (*out)->next)
		;
	if (!*out) { /* no one opened it meanwhile */
		m->next = dev->mirrors;
		dev->mirrors = m;
		*out = m;
		m = NULL;
	}
	pthread_mutex_unlock(&dev->lock);
	if (m) {
		dmm_mmu_interval_notifier_remove(&m->notifier);
		ptab_destroy(m->pt);
		pthread_mutex_destroy(&m->lock);
		free(m);
	}
	return 0;
}

void mirror_close(struct mirror *m)
{
	struct mirror_device *dev;
	struct mirror **pp;

	if (!m)
		return;
	dev = m->dev;
	pthread_mutex_lock(&dev->lock);
	for (pp = &dev->mirrors; *pp && *pp != m; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = m->next;
	pthread_mutex_unlock(&dev->lock);
	dmm_mmu_interval_notifier_remove(&m->notifier);
	ptab_destroy(m->pt);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void mirror_fail_next_alloc(struct mirror_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->fail_next = true;
	pthread_mutex_unlock(&dev->lock);
}

void mirror_pool(struct mirror_device *dev, uint64_t *used, uint64_t *free_pages)
{
	pthread_mutex_lock(&dev->lock);
	*used = dev->used;
	*free_pages = dev->size - dev->used;
	pthread_mutex_unlock(&dev->lock);
}

void mirror_device_destroy(struct mirror_device *dev)
{
	if (!dev)
		return;
	mirror_release(dev);
	while (dev->mirrors)
		mirror_close(dev->mirrors);
	pthread_mutex_destroy(&dev->lock);
	free(dev->chunks);
	munmap(dev->free_list, dev->free_list_bytes);
	free(dev);
}
