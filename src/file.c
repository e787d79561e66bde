/* SPDX-License-Identifier: MIT */
/*
 * Files and shared memory: an in-library page cache. A file is a fixed
 * number of pages; its page cache is an index of frames, each holding one
 * reference for the cache. Pages appear on first use (a fault, a pwrite),
 * zero-filled. Anonymous shared memory is the same object, flagged shmem,
 * created by mmap and reachable only through its mappings.
 */
#include "internal.h"

struct dmm_file *file_alloc(struct dmm_system *sys, uint64_t npages, bool shmem)
{
	struct dmm_file *f = meta_calloc(sys, 1, sizeof(*f));

	if (!f)
		return NULL;
	f->pages = calloc(npages, sizeof(*f->pages));
	if (!f->pages) {
		free(f);
		return NULL;
	}
	f->sys = sys;
	f->npages = npages;
	f->shmem = shmem;
	atomic_store(&f->refcount, 1);
	pthread_mutex_init(&f->lock, NULL);
	pthread_rwlock_init(&f->i_mmap_lock, NULL);
	list_init(&f->i_mmap);
	pthread_mutex_lock(&sys->file_list_lock);
	list_add_tail(&f->node, &sys->files);
	pthread_mutex_unlock(&sys->file_list_lock);
	return f;
}

int dmm_file_create(struct dmm_system *sys, uint64_t npages, struct dmm_file **out)
{
	struct dmm_file *f;

	if (!sys || !out || npages == 0 || npages > DMM_MAX_FILE_PAGES)
		return -EINVAL;
	f = file_alloc(sys, npages, false);
	if (!f)
		return -ENOMEM;
	*out = f;
	return 0;
}

void file_get(struct dmm_file *f)
{
	atomic_fetch_add_explicit(&f->refcount, 1, memory_order_relaxed);
}

void filemap_release(struct dmm_file *f)
{
	for (uint64_t i = 0; i < f->npages; i++) {
		struct dmm_page *p = f->pages[i];

		if (!p)
			continue;
		f->pages[i] = NULL;
		page_clear(p, PG_pagecache);
		put_page(f->sys, p);
	}
}

void dmm_file_put(struct dmm_file *f)
{
	struct dmm_system *sys;

	if (!f || atomic_fetch_sub_explicit(&f->refcount, 1, memory_order_acq_rel) != 1)
		return;
	sys = f->sys;
	pthread_mutex_lock(&sys->file_list_lock);
	list_del(&f->node);
	pthread_mutex_unlock(&sys->file_list_lock);
	filemap_release(f);
	pthread_mutex_destroy(&f->lock);
	pthread_rwlock_destroy(&f->i_mmap_lock);
	free(f->pages);
	free(f);
}

uint64_t dmm_file_npages(const struct dmm_file *f)
{
	return f ? f->npages : 0;
}

/* Look the page up; create it when @create. Returns it with a ref, or NULL. */
static int filemap_find(struct dmm_file *f, uint64_t index, bool create, struct dmm_page **out)
{
	struct dmm_page *p, *np = NULL;

	if (index >= f->npages)
		return -EFAULT;
	pthread_mutex_lock(&f->lock);
	p = f->pages[index];
	if (p)
		get_page(p);
	pthread_mutex_unlock(&f->lock);
	if (p || !create) {
		*out = p;
		return 0;
	}
	np = frame_alloc(f->sys, GFP_ZERO);
	if (!np)
		return -ENOMEM;
	np->mapping = f;
	np->index = index;
	atomic_store(&np->flags, PG_pagecache | PG_uptodate | PG_lru | (f->shmem ? PG_swapbacked : 0));
	pthread_mutex_lock(&f->lock);
	p = f->pages[index];
	if (!p) {
		p = np;
		f->pages[index] = p; /* the cache keeps the allocation ref */
		np = NULL;
		dmm_stat_inc(f->sys, pagecache_alloc);
	}
	get_page(p);
	pthread_mutex_unlock(&f->lock);
	if (np) {
		atomic_store(&np->flags, 0);
		put_page(f->sys, np);
	}
	*out = p;
	return 0;
}

int filemap_get_page(struct dmm_file *f, uint64_t index, struct dmm_page **out)
{
	return filemap_find(f, index, true, out);
}

typedef void (*copy_fn)(void *page_mem, void *buf, size_t n);

static void copy_out(void *mem, void *buf, size_t n) { sim_memcpy(buf, mem, n); }
static void copy_in(void *mem, void *buf, size_t n) { sim_memcpy(mem, buf, n); }

static int file_rw(struct dmm_file *f, void *buf, size_t len, uint64_t off, bool write)
{
	uint8_t *b = buf;

	if (!f || (!buf && len))
		return -EINVAL;
	if (off > f->npages * PAGE_SIZE || len > f->npages * PAGE_SIZE - off)
		return -EINVAL;
	if (!f->sys->arena)
		return -EOPNOTSUPP; /* metadata only: no bytes to transfer */
	while (len) {
		uint64_t index = off >> PAGE_SHIFT, in = off & (PAGE_SIZE - 1);
		size_t n = DMM_MIN(len, PAGE_SIZE - in);
		struct dmm_page *p;
		int r = filemap_find(f, index, write, &p);

		if (r)
			return r;
		if (p) {
			(write ? copy_in : copy_out)((uint8_t *)page_address(f->sys, p) + in, b, n);
			if (write)
				page_set(p, PG_dirty);
			put_page(f->sys, p);
		} else {
			memset(b, 0, n); /* a hole in the page cache reads as zero */
		}
		b += n;
		off += n;
		len -= n;
	}
	return 0;
}

int dmm_file_pread(struct dmm_file *f, void *buf, size_t len, uint64_t off)
{
	return file_rw(f, buf, len, off, false);
}

int dmm_file_pwrite(struct dmm_file *f, const void *buf, size_t len, uint64_t off)
{
	return file_rw(f, (void *)buf, len, off, true);
}
