/* SPDX-License-Identifier: MIT */
/*
 * Zapping entries (munmap, MADV_DONTNEED, exit: semantics.md §3.4), MADV_FREE's
 * lazy freeing, and the
 * life of an address space: creation, registration, exit.
 *
 * Zap clears each entry under its PTL and drops the references after the
 * PTL is released, in batches, as the kernel frees pages after the TLB
 * flush: a frame is never freed while an entry still points at it.
 */
#include "internal.h"

struct zap_batch {
	struct dmm_vma *vma;
	bool lazyfree;	/* MADV_FREE: see lazyfree_one() */
	unsigned int n;
	struct dmm_page *pages[PTRS_PER_TABLE];
};

/* Clear one entry (PTL held). A frame whose reference must be dropped is
 * added to the batch. */
static void zap_one(struct dmm_mm *mm, struct zap_batch *zb, _Atomic pte_t *slot, pte_t e)
{
	struct dmm_page *p;

	pte_set(slot, 0);
	if (pte_present(e) && pte_special(e))
		return;
	p = pfn_to_page(mm->sys, entry_pfn(e));
	add_mm_counter(mm, mm_counter(zb->vma, p), -1);
	dmm_stat_inc(mm->sys, zap_page);
	if (is_migration_entry(e))
		return; /* no mapcount, no ref: the migrator holds the page */
	if (pte_present(e) && pte_dirty(e) && !page_is_anon(p))
		page_set(p, PG_dirty);
	folio_remove_rmap_pte(page_folio(p), p, zb->vma);
	zb->pages[zb->n++] = p;
}

/*
 * MADV_FREE is not a zap (semantics.md §3.4, madvise_free_pte_range): it
 * marks exclusively mapped anonymous system pages lazily freeable, and
 * devmm frees them at once, as reclaim would the moment it ran (never a
 * page someone else still holds: mapped elsewhere, pinned or referenced,
 * or locked). The zero page, device-coherent pages, and device-private,
 * device-exclusive and migration entries are left alone, so device data
 * survives. PTL held.
 */
static bool lazyfree_candidate(struct dmm_system *sys, pte_t e)
{
	struct dmm_page *p;

	if (!pte_present(e) || pte_special(e))
		return false;
	p = pfn_to_page(sys, pte_pfn(e));
	return page_is_anon(p) && !page_is_zone_device(p) && !page_locked(p);
}

/* No reference but the mapping's, no pin (the entry already cleared).
 * Order 0: a large folio goes through lazyfree_folio. */
static bool lazyfree_unused(struct dmm_page *p)
{
	return page_ref_count(p) == 1 && page_mapcount(p) == 1 && !page_maybe_dma_pinned(p);
}

_Atomic(lazyfree_hook_fn) lazyfree_hook;

/*
 * Discard the candidate at @slot unless someone else holds it (PTL held).
 * GUP-fast takes its reference without the PTL, so a check before the
 * entry is cleared could miss one taken just after it. As the kernel's
 * lazyfree unmap does, clear first, then look for references, and put the
 * entry back if there is one: GUP-fast takes its reference, then re-reads
 * the entry, with a seq_cst fence between (gup_fast); with the fence here,
 * either its re-read sees the entry gone and it backs off, or this check
 * sees its reference.
 */
static void lazyfree_one(struct dmm_mm *mm, struct zap_batch *zb, _Atomic pte_t *slot)
{
	lazyfree_hook_fn hook;
	pte_t e = atomic_exchange_explicit(slot, 0, memory_order_seq_cst);

	smp_mb();
	hook = atomic_load_explicit(&lazyfree_hook, memory_order_relaxed);
	if (unlikely(hook))
		hook();
	if (lazyfree_unused(pfn_to_page(mm->sys, pte_pfn(e))))
		zap_one(mm, zb, slot, e);
	else
		pte_set(slot, e);
}

/*
 * A PTE-mapped large folio under MADV_FREE (large-folios.md §3.4): when the
 * range covers it end to end, the whole folio becomes lazy-free, which
 * devmm frees at once like an order-0 page. That needs its pages mapped in
 * order by the @nr entries from @addr (the first its head; all in this
 * table, under this PTL) and by nothing else (a mapcount of @nr, no PMD),
 * every page exclusive, no pin, and, once the entries are cleared, no
 * reference but theirs; the same clear-then-check protocol as
 * lazyfree_one keeps GUP-fast honest. A range that covers only part of the
 * folio splits it first (lazyfree_partial_run, lazyfree_split). PTL held.
 * Returns the entries consumed: nr when the folio was considered, else 1.
 */
static unsigned int lazyfree_folio(struct dmm_mm *mm, struct zap_batch *zb, struct dmm_pte_table *t,
				   uint64_t addr, uint64_t end, struct dmm_page *folio, pte_t e)
{
	struct dmm_system *sys = mm->sys;
	uint64_t head = page_to_pfn(sys, folio), nr = folio_nr_pages(folio);
	pte_t old[PTRS_PER_TABLE];
	lazyfree_hook_fn hook;

	if (pte_pfn(e) != head || nr > (end - addr) >> PAGE_SHIFT)
		return 1;
	if (folio_mapcount(folio) != (int32_t)nr || folio_entire_mapcount(folio) || folio_pincount(folio))
		return 1;
	for (uint64_t i = 0; i < nr; i++) {
		pte_t ei = pte_get(pte_slot(t, addr + (i << PAGE_SHIFT)));

		if (!pte_present(ei) || pte_special(ei) || pte_pfn(ei) != head + i ||
		    !page_test(&folio[i], PG_anon_exclusive))
			return 1;
	}
	for (uint64_t i = 0; i < nr; i++)
		old[i] = atomic_exchange_explicit(pte_slot(t, addr + (i << PAGE_SHIFT)), 0, memory_order_seq_cst);
	smp_mb();
	hook = atomic_load_explicit(&lazyfree_hook, memory_order_relaxed);
	if (unlikely(hook))
		hook();
	if (folio_ref_count(folio) != nr || folio_pincount(folio)) {
		for (uint64_t i = 0; i < nr; i++)
			pte_set(pte_slot(t, addr + (i << PAGE_SHIFT)), old[i]);
		return (unsigned int)nr;
	}
	add_mm_counter(mm, DMM_MM_ANONPAGES, -(long)nr);
	dmm_stat_add(sys, zap_page, nr);
	folio_remove_rmap_ptes(folio, folio, (unsigned int)nr, zb->vma);
	for (uint64_t i = 0; i < nr; i++)
		zb->pages[zb->n++] = &folio[i];
	return (unsigned int)nr;
}

/*
 * MADV_FREE over part of a large folio (large-folios.md §3.4): the PTEs
 * from @addr mapping consecutive pages of @f, up to @end. Returns that
 * count when it is not the whole folio mapped in place (the range starts
 * or ends inside it) and the folio is mapped by this process alone as far
 * as its counts tell (Linux's folio_maybe_mapped_shared), else 0. PTL
 * held.
 */
static unsigned int lazyfree_partial_run(struct dmm_system *sys, struct dmm_pte_table *t, uint64_t addr,
					 uint64_t end, struct dmm_page *f, struct dmm_page *p)
{
	uint64_t nr = folio_nr_pages(f), idx = folio_page_idx(f, p), pfn = page_to_pfn(sys, p);
	unsigned int run = 0;

	while (addr + (uint64_t)run * PAGE_SIZE < end && idx + run < nr) {
		pte_t e = pte_get(pte_slot(t, addr + (uint64_t)run * PAGE_SIZE));

		if (!pte_present(e) || pte_pfn(e) != pfn + run)
			break;
		run++;
	}
	if (idx == 0 && run == nr)
		return 0;
	for (uint64_t i = 0; i < nr; i++)
		if (atomic_load_explicit(&f[i].mapcount, memory_order_relaxed) > 1)
			return 0;
	return run;
}

/* Split @f for MADV_FREE, dropping t's PTL meanwhile: 0 or split_folio's
 * error (a folio locked elsewhere is -EAGAIN). PTL held on entry and exit. */
static int lazyfree_split(struct dmm_system *sys, struct dmm_pte_table *t, struct dmm_page *f)
{
	int r;

	if (!trylock_page(f))
		return -EAGAIN;
	get_page(f);
	ptl_unlock(t);
	r = split_folio(sys, f);
	unlock_page(sys, f);
	put_page(sys, f);
	ptl_lock(t);
	return r;
}

/*
 * A PMD leaf over the whole PMD range (large-folios.md §3.4,
 * zap_huge_pmd): the slot becomes NONE (its table, now all none, stays
 * as the slot's table). A THP or device-private PMD drops its entire
 * mapping, 512 rss and its reference (after the PTL, as zap_one's
 * batch); the huge zero PMD is just cleared; a migration PMD drops rss.
 * false: the slot is no leaf any more (walk it again).
 */
static bool zap_huge_pmd(struct dmm_mm *mm, struct zap_batch *zb, struct dmm_pte_table *t)
{
	struct dmm_page *f = NULL;
	pte_t pmd;

	ptl_lock(t);
	pmd = pmd_get(t);
	if (!pmd_is_leaf(pmd)) {
		ptl_unlock(t);
		return false;
	}
	pmd_set(t, PMD_NONE);
	if (!is_huge_zero_pmd(mm->sys, pmd)) {
		f = pfn_to_page(mm->sys, entry_pfn(pmd));
		add_mm_counter(mm, DMM_MM_ANONPAGES, -(long)HPAGE_PMD_NR);
		if (is_migration_entry(pmd))
			f = NULL; /* no mapcount, no ref: the migrator holds the folio */
		else
			folio_remove_rmap_pmd(f, zb->vma);
	}
	ptl_unlock(t);
	dmm_stat_inc(mm->sys, zap_pmd);
	if (f)
		put_page(mm->sys, f);
	return true;
}

/* One PMD slot (pmd_entry): the PTEs under the PTL, then the batch. A PMD
 * leaf zapped whole goes at once; a partial zap (or MADV_FREE) leaves it
 * to the walker, which splits it and comes back with the PTE table. */
static int zap_pmd_range(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end,
			 struct mm_walk *walk)
{
	struct dmm_mm *mm = walk->mm;
	struct zap_batch *zb = walk->private;

	if (unlikely(pmd_is_leaf(pmd))) {
		if (zb->lazyfree || (addr & ~HPAGE_PMD_MASK) || end - addr != HPAGE_PMD_SIZE)
			return 0; /* the walker's split point */
		walk->action = zap_huge_pmd(mm, zb, t) ? ACTION_CONTINUE : ACTION_AGAIN;
		return 0;
	}
	if (!pmd_is_table(pmd))
		return 0;
	zb->n = 0;
	ptl_lock(t);
	for (; addr < end; addr += PAGE_SIZE) {
		_Atomic pte_t *slot = pte_slot(t, addr);
		pte_t e = pte_get(slot);

		if (pte_none(e))
			continue;
		if (!zb->lazyfree) {
			zap_one(mm, zb, slot, e);
		} else if (lazyfree_candidate(mm->sys, e)) {
			struct dmm_page *p = pfn_to_page(mm->sys, pte_pfn(e)), *f = page_folio(p);
			unsigned int run;

			if (likely(!folio_test_large(f))) {
				lazyfree_one(mm, zb, slot);
			} else if ((run = lazyfree_partial_run(mm->sys, t, addr, end, f, p)) != 0) {
				/* Part of a large folio: split it first, then look
				 * at this entry again; a failure leaves its pages
				 * in the range alone. */
				if (lazyfree_split(mm->sys, t, f))
					addr += (uint64_t)(run - 1) * PAGE_SIZE;
				else
					addr -= PAGE_SIZE;
			} else {
				addr += (uint64_t)(lazyfree_folio(mm, zb, t, addr, end, f, e) - 1) << PAGE_SHIFT;
			}
		}
	}
	ptl_unlock(t);
	for (unsigned int i = 0; i < zb->n; i++)
		put_page(mm->sys, zb->pages[i]);
	walk->action = ACTION_CONTINUE;
	return 0;
}

static const struct mm_walk_ops zap_walk_ops = { .pmd_entry = zap_pmd_range };

void zap_page_range(struct dmm_vma *vma, uint64_t start, uint64_t end)
{
	struct zap_batch zb = { .vma = vma };

	mmap_assert_locked(vma->mm);
	start = DMM_MAX(start, vma->start);
	end = DMM_MIN(end, vma->end);
	walk_page_range(vma->mm, start, end, &zap_walk_ops, &zb);
}

void free_pgtables_hole(struct dmm_mm *mm, uint64_t start, uint64_t end)
{
	struct dmm_vma *next = find_vma(mm, start);
	struct dmm_vma *prev = next ? vma_prev(mm, next) : vma_tree_last(&mm->vmas);
	uint64_t floor = prev ? prev->end : 0;
	uint64_t ceiling = next ? next->start : PGTABLE_TOP;

	mmap_assert_write_locked(mm);
	DMM_BUG_ON(floor > start || ceiling < end);
	free_pgtables(mm, start, end, floor, ceiling);
}

void lazyfree_page_range(struct dmm_vma *vma, uint64_t start, uint64_t end)
{
	struct zap_batch zb = { .vma = vma, .lazyfree = true };

	mmap_assert_locked(vma->mm);
	start = DMM_MAX(start, vma->start);
	end = DMM_MIN(end, vma->end);
	walk_page_range(vma->mm, start, end, &zap_walk_ops, &zb);
}

struct dmm_mm *mm_alloc(struct dmm_system *sys)
{
	struct dmm_mm *mm = meta_calloc(sys, 1, sizeof(*mm));

	if (!mm)
		return NULL;
	mm->pgd = calloc(1, sizeof(*mm->pgd));
	if (!mm->pgd) {
		free(mm);
		return NULL;
	}
	mm->pgd->level = PT_LEVELS - 1;
	mm->sys = sys;
	atomic_store(&mm->mm_count, 1);
	notifier_state_init(&mm->notif);
	for (unsigned int i = 0; i < NR_SHARDS; i++)
		pthread_rwlock_init(&mm->mmap_lock[i].lock, NULL);
	pthread_mutex_init(&mm->anon_lock, NULL);
	list_init(&mm->node);
	mm->mmap_base = 0x10000000UL;
	return mm;
}

void mm_register(struct dmm_mm *mm)
{
	struct dmm_system *sys = mm->sys;

	pthread_mutex_lock(&sys->mm_list_lock);
	mm->id = sys->next_mm_id++;
	list_add_tail(&mm->node, &sys->mms);
	pthread_mutex_unlock(&sys->mm_list_lock);
}

void mmgrab(struct dmm_mm *mm)
{
	atomic_fetch_add(&mm->mm_count, 1);
}

void mmdrop(struct dmm_mm *mm)
{
	if (atomic_fetch_sub(&mm->mm_count, 1) == 1)
		mm_free(mm);
}

void mm_free(struct dmm_mm *mm)
{
	notifier_state_destroy(&mm->notif);
	pgtable_free_all(mm);
	for (unsigned int i = 0; i < NR_SHARDS; i++)
		pthread_rwlock_destroy(&mm->mmap_lock[i].lock);
	pthread_mutex_destroy(&mm->anon_lock);
	vma_tree_destroy(&mm->vmas);
	free(mm);
}

int dmm_mm_create(struct dmm_system *sys, struct dmm_mm **out)
{
	struct dmm_mm *mm;

	if (!sys || !out)
		return -EINVAL;
	mm = mm_alloc(sys);
	if (!mm)
		return -ENOMEM;
	mm_register(mm);
	*out = mm;
	return 0;
}

/* Zap and free every VMA (mmap_lock held for write, or mm private).
 * Subscribers see UNMAP per VMA (after the RELEASE of dmm_mm_exit:
 * repeated invalidations, as in Linux, pitfall 12). */
void exit_mmap(struct dmm_mm *mm)
{
	struct dmm_vma *v;

	mmap_assert_write_locked(mm);
	for_each_vma(mm, v) {
		struct dmm_mmu_notifier_range r;

		mmu_notify(DMM_MMU_NOTIFY_UNMAP, mm, v->start, v->end, NULL, &r);
		zap_page_range(v, v->start, v->end);
		mmu_notifier_invalidate_range_end(&r);
	}
	while ((v = vma_tree_last(&mm->vmas)))
		vma_unlink_free(mm, v);
	mm_put_huge_zero_folio(mm);
}

void dmm_mm_exit(struct dmm_mm *mm)
{
	struct dmm_system *sys;

	if (!mm)
		return;
	sys = mm->sys;
	pthread_mutex_lock(&sys->mm_list_lock);
	list_del(&mm->node);
	pthread_mutex_unlock(&sys->mm_list_lock);
	atomic_store(&mm->dead, true);
	mmu_notifier_release(mm);
	mmap_write_lock(mm);
	exit_mmap(mm);
	mmap_write_unlock(mm);
	mmdrop(mm);
}

struct dmm_system *dmm_mm_system(const struct dmm_mm *mm)
{
	return mm ? mm->sys : NULL;
}

unsigned int dmm_mm_id(const struct dmm_mm *mm)
{
	return mm ? mm->id : 0;
}

long mm_rss_sum(struct dmm_mm *mm, enum dmm_rss_type t)
{
	long n = 0;

	for (unsigned int i = 0; i < NR_SHARDS; i++)
		n += atomic_load_explicit(&mm->rss[i].v[t], memory_order_relaxed);
	return n;
}

long dmm_mm_rss(const struct dmm_mm *mm, enum dmm_rss_type type)
{
	if (!mm || (unsigned int)type >= DMM_NR_MM_COUNTERS)
		return 0;
	return mm_rss_sum((struct dmm_mm *)mm, type);
}

/*
 * The OOM reaper: zap private anonymous memory under non-blockable CLEAR
 * invalidations; a subscriber that would have to sleep refuses, and that
 * VMA is skipped.
 */
int dmm_oom_reap(struct dmm_mm *mm)
{
	struct dmm_vma *v;
	int r = 0;

	if (!mm)
		return -EINVAL;
	mmap_read_lock(mm);
	for_each_vma(mm, v) {
		struct dmm_mmu_notifier_range nr;

		if (!vma_is_anonymous(v) || (v->flags & VM_SHARED))
			continue;
		mmu_notifier_range_init(&nr, DMM_MMU_NOTIFY_CLEAR, mm, v->start, v->end, NULL);
		nr.flags = 0; /* not blockable */
		if (mmu_notifier_invalidate_range_start(&nr)) {
			r = -EBUSY;
			continue;
		}
		zap_page_range(v, v->start, v->end);
		mmu_notifier_invalidate_range_end(&nr);
	}
	mmap_read_unlock(mm);
	return r;
}

void dmm_mmap_read_lock(struct dmm_mm *mm)
{
	mmap_read_lock(mm);
}

void dmm_mmap_read_unlock(struct dmm_mm *mm)
{
	mmap_read_unlock(mm);
}
