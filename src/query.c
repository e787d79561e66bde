/* SPDX-License-Identifier: MIT */
/*
 * Introspection for tools and tests: what an address maps, the state of a
 * frame, the VMAs of an address space. Read-only; each call takes the
 * locks it needs for a consistent answer about one object.
 */
#include "internal.h"

const char *dmm_pte_kind_name(enum dmm_pte_kind kind)
{
	static const char *const names[] = {
		[DMM_PTE_NONE] = "none",
		[DMM_PTE_PRESENT] = "present",
		[DMM_PTE_DEVICE_PRIVATE_READ] = "dev-private-r",
		[DMM_PTE_DEVICE_PRIVATE_WRITE] = "dev-private-w",
		[DMM_PTE_DEVICE_EXCLUSIVE] = "dev-exclusive",
		[DMM_PTE_MIGRATION_READ] = "migration-r",
		[DMM_PTE_MIGRATION_READ_EXCLUSIVE] = "migration-r-excl",
		[DMM_PTE_MIGRATION_WRITE] = "migration-w",
	};

	if ((unsigned int)kind >= ARRAY_SIZE(names))
		return "?";
	return names[kind];
}

/* The entry at addr, read under its PTL (the caller holds the mmap_lock):
 * the PTE, or the PMD leaf (*pmd set) with the pfn of addr's page. */
static pte_t pte_read_locked(struct dmm_mm *mm, uint64_t addr, bool *pmd)
{
	struct dmm_pte_table *t;
	pte_t e = 0, slot;

	*pmd = false;
	t = pmd_lookup(mm, addr, &slot);
	if (t && !pmd_none(slot)) {
		ptl_lock(t);
		slot = pmd_get(t);
		if (pmd_is_leaf(slot)) {
			*pmd = true;
			e = (slot & ((1ULL << _PTE_PFN_SHIFT) - 1)) | (pmd_pfn_at(slot, addr) << _PTE_PFN_SHIFT);
		} else if (pmd_is_table(slot)) {
			e = pte_get(pte_slot(t, addr));
		}
		ptl_unlock(t);
	}
	return e;
}

static void pte_info_fill(pte_t e, bool pmd, struct dmm_pte_info *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = pte_kind(e);
	if (pte_none(e))
		return;
	out->pmd = pmd;
	out->pfn = entry_pfn(e);
	if (pte_present(e)) {
		out->write = pte_write(e);
		out->dirty = pte_dirty(e);
		out->young = pte_young(e);
		out->special = pte_special(e);
	} else {
		out->write = is_writable_device_private_entry(e) || is_writable_migration_entry(e) ||
			     is_device_exclusive_entry(e);
		out->dirty = leaf_dirty(e);
		out->young = leaf_young(e);
	}
}

int dmm_pte_query(struct dmm_mm *mm, uint64_t addr, struct dmm_pte_info *out)
{
	bool pmd;
	pte_t e;

	if (!mm || !out || addr >= DMM_TASK_SIZE)
		return -EINVAL;
	mmap_read_lock(mm);
	e = pte_read_locked(mm, addr, &pmd);
	mmap_read_unlock(mm);
	pte_info_fill(e, pmd, out);
	return 0;
}

int dmm_pte_query_locked(struct dmm_mm *mm, uint64_t addr, struct dmm_pte_info *out)
{
	if (!mm || !out || addr >= DMM_TASK_SIZE)
		return -EINVAL;
	bool pmd;
	pte_t e;

	mmap_assert_locked(mm);
	e = pte_read_locked(mm, addr, &pmd);
	pte_info_fill(e, pmd, out);
	return 0;
}

static uint32_t public_page_flags(uint32_t f)
{
	static const struct { uint32_t pg, pub; } map[] = {
		{ PG_locked, DMM_PAGE_LOCKED },	  { PG_anon, DMM_PAGE_ANON },
		{ PG_anon_exclusive, DMM_PAGE_ANON_EXCLUSIVE }, { PG_dirty, DMM_PAGE_DIRTY },
		{ PG_uptodate, DMM_PAGE_UPTODATE }, { PG_reserved, DMM_PAGE_RESERVED },
		{ PG_pagecache, DMM_PAGE_PAGECACHE }, { PG_free, DMM_PAGE_FREE },
		{ PG_zone_device, DMM_PAGE_ZONE_DEVICE }, { PG_partially_mapped, DMM_PAGE_PARTIALLY_MAPPED },
	};
	uint32_t out = 0;

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (f & map[i].pg)
			out |= map[i].pub;
	return out;
}

int dmm_page_query(struct dmm_system *sys, uint64_t pfn, struct dmm_page_info *out)
{
	struct dmm_page *p, *f;

	if (!sys || !out)
		return -EINVAL;
	/* A lockless reader: the pfn's pgmap may be unregistered meanwhile. */
	rcu_read_lock();
	p = pfn_to_page(sys, pfn);
	if (!p || (pfn > sys->nr_frames && !page_is_zone_device(p))) {
		rcu_read_unlock();
		return -ENXIO;
	}
	memset(out, 0, sizeof(*out));
	f = page_folio(p);
	out->flags = public_page_flags((page_flags(p) & PG_PER_PAGE) | (page_flags(f) & ~PG_PER_PAGE));
	out->head_pfn = page_to_pfn(sys, f);
	if (page_is_zero(sys, p)) {
		/* devmm: the huge zero folio is reported as the zero page is:
		 * no counts (large-folios.md §1.3). */
		out->location = p == &sys->frames[0] ? DMM_LOC_ZERO : DMM_LOC_HUGE_ZERO;
		rcu_read_unlock();
		return 0;
	}
	out->refcount = folio_ref_count(f);
	out->mapcount = page_mapcount(p);
	out->pincount = folio_pincount(f);
	out->order = folio_order(f);
	out->folio_mapcount = folio_mapcount(f);
	out->entire_mapcount = folio_entire_mapcount(f);
	if (page_is_device_private(p))
		out->location = DMM_LOC_DEVICE_PRIVATE;
	else if (page_is_device_coherent(p))
		out->location = DMM_LOC_DEVICE_COHERENT;
	else
		out->location = DMM_LOC_SYSTEM;
	rcu_read_unlock();
	return 0;
}

int dmm_vma_query(struct dmm_mm *mm, uint64_t addr, struct dmm_vma_info *out)
{
	struct dmm_vma *v;
	int r = -ENOENT;

	if (!mm || !out)
		return -EINVAL;
	mmap_read_lock(mm);
	v = find_vma(mm, addr);
	if (v) {
		out->start = v->start;
		out->end = v->end;
		out->pgoff = v->pgoff;
		out->flags = v->flags;
		out->file = v->file;
		out->type = !v->file ? DMM_VMA_ANON : v->file->shmem ? DMM_VMA_SHMEM : DMM_VMA_FILE;
		r = 0;
	}
	mmap_read_unlock(mm);
	return r;
}
