/* SPDX-License-Identifier: MIT */
/*
 * Reverse-map accounting: the mapcount and identity (mapping, index,
 * anon-exclusive) of frames as entries come and go. Callers hold the PTL of
 * the entry they change. An anonymous page holds a reference on its
 * anon_vma, so the identity stays valid for as long as the page lives.
 */
#include "internal.h"

void page_add_new_anon_rmap(struct dmm_page *p, struct dmm_vma *vma, uint64_t addr)
{
	struct dmm_anon_vma *av = vma->anon_vma;

	DMM_BUG_ON(!av);
	anon_vma_get(av);
	p->mapping = av;
	p->index = linear_page_index(vma, addr);
	page_set(p, PG_anon | PG_anon_exclusive | PG_swapbacked | PG_uptodate | PG_lru);
	atomic_store_explicit(&p->mapcount, 1, memory_order_release);
}

void page_add_anon_rmap(struct dmm_page *p, bool exclusive)
{
	atomic_fetch_add(&p->mapcount, 1);
	if (exclusive)
		page_set(p, PG_anon_exclusive);
}

void page_add_file_rmap(struct dmm_page *p)
{
	atomic_fetch_add(&p->mapcount, 1);
}

void page_dup_rmap(struct dmm_page *p)
{
	atomic_fetch_add(&p->mapcount, 1);
}

void page_remove_rmap(struct dmm_page *p)
{
	int32_t old = atomic_fetch_sub(&p->mapcount, 1);

	DMM_BUG_ON(old <= 0);
}

enum dmm_rss_type mm_counter(struct dmm_vma *vma, struct dmm_page *p)
{
	if (page_is_anon(p))
		return DMM_MM_ANONPAGES;
	if (vma->file && vma->file->shmem)
		return DMM_MM_SHMEMPAGES;
	return DMM_MM_FILEPAGES;
}
