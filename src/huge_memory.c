/* SPDX-License-Identifier: MIT */
/*
 * PMD-size transparent huge pages (large-folios.md §1.5, §2, §3): whether a
 * fault may map a PMD. Folio split (large-folios.md §2.4), the kernel's __folio_split for an
 * anonymous large folio mapped by PTEs, and the deferred-split queue's
 * scan (§1.4).
 *
 * split_folio_at: check -> racy reference check -> unmap every mapping of
 * every page to a migration entry (rmap walk over the anon_vma) -> freeze
 * the refcount at exactly the caller's reference (1 -> 0) -> rewrite the
 * metadata as 2^order order-0 folios -> restore the migration entries,
 * each to its own page (a zero-filled page to the shared zero page) ->
 * unlock and put every piece except the caller's.
 * Lock order: folio lock (the caller's) -> anon_vma (read) -> PTL.
 */
#include "internal.h"

/*
 * May a fault at @addr in @vma map a whole PMD (large-folios.md §1.5,
 * __thp_vma_allowable_orders + thp_vma_suitable_order)? The VMA is private
 * anonymous (MAP_SHARED|MAP_ANONYMOUS is shmem here as in Linux), the mode
 * allows it (always unless VM_NOHUGEPAGE; madvise only with VM_HUGEPAGE),
 * and the 2 MiB-aligned range around @addr lies inside the VMA. Whether the
 * PMD slot is still empty is the fault's to check, under the PTL. devmm has
 * no per-size PMD setting (it inherits the global one), no prctl, no exec
 * stack and no userfaultfd.
 */
bool thp_vma_allowable_pmd(const struct dmm_vma *vma, uint64_t addr)
{
	unsigned int mode = atomic_load_explicit(&vma->mm->sys->thp_mode, memory_order_relaxed);
	uint64_t start = addr & HPAGE_PMD_MASK;

	if (likely(mode == DMM_THP_NEVER))
		return false;
	if (!vma_is_anonymous(vma) || (vma->flags & (VM_SHARED | VM_NOHUGEPAGE)))
		return false;
	if (mode == DMM_THP_MADVISE && !(vma->flags & VM_HUGEPAGE))
		return false;
	return start >= vma->start && vma->end - start >= HPAGE_PMD_SIZE;
}

/* Every mapping of every page of @folio becomes a migration entry. PMD
 * mappings would be freeze-split here (split_huge_pmd with freeze):
 * split_folio_at refuses a folio that has any. */
static void unmap_folio(struct dmm_system *sys, struct dmm_page *folio)
{
	uint64_t n = folio_nr_pages(folio);

	DMM_BUG_ON(folio_entire_mapcount(folio) != 0);
	for (uint64_t i = 0; i < n; i++)
		if (atomic_load_explicit(&folio[i].mapcount, memory_order_acquire) > 0)
			try_to_migrate(sys, &folio[i]);
}

/* Restore the migration entries of pages [0, n) from @first (each page
 * its own folio after a split, or all of one folio if the freeze failed). */
static void remap_page(struct dmm_system *sys, struct dmm_page *first, uint64_t n, unsigned int flags)
{
	for (uint64_t i = 0; i < n; i++)
		remove_migration_ptes_flags(sys, &first[i], &first[i], flags);
}

/*
 * The frozen folio (refcount 0, unmapped, off the deferred-split queue)
 * becomes 2^order order-0 folios. Each piece takes the folio-wide flags
 * (lock included: every piece starts locked by this thread), its
 * identity (anon_vma, index + i, one anon_vma reference per piece) and
 * one reference, the one the caller's piece keeps and the others drop in
 * split_folio_at. AnonExclusive and the other per-page bits stay.
 */
static void split_unmapped_folio(struct dmm_page *folio)
{
	uint64_t n = folio_nr_pages(folio);
	uint32_t shared = page_flags(folio) & ~PG_PER_PAGE & ~PG_partially_mapped;
	struct dmm_anon_vma *av = folio->mapping;
	uint64_t index = folio->index;

	DMM_BUG_ON(folio_mapcount(folio) || folio_pincount(folio) || folio_nr_pages_mapped(folio));
	for (uint64_t i = 1; i < n; i++) {
		struct dmm_page *p = &folio[i];

		DMM_BUG_ON(atomic_load_explicit(&p->mapcount, memory_order_relaxed));
		anon_vma_get(av);
		p->mapping = av; /* overwrites the counters on the first tails */
		p->index = index + i;
		atomic_store_explicit(&p->pincount, 0, memory_order_relaxed);
		atomic_store_explicit(&p->flags, (page_flags(p) & PG_PER_PAGE) | shared, memory_order_relaxed);
		atomic_store_explicit(&p->refcount, 1, memory_order_relaxed);
		atomic_store_explicit(&p->compound_head, 0, memory_order_release);
	}
	page_clear(folio, PG_partially_mapped);
	atomic_store_explicit(&folio->compound_head, 0, memory_order_release);
	atomic_store_explicit(&folio->refcount, 1, memory_order_release);
}

int split_folio_at(struct dmm_system *sys, struct dmm_page *folio, struct dmm_page *lock_at)
{
	uint64_t n;
	uint32_t one = 1;

	DMM_BUG_ON(page_folio(folio) != folio);
	lockdep_assert_page_locked(folio);
	if (!folio_test_large(folio))
		return -EINVAL;
	n = folio_nr_pages(folio);
	DMM_BUG_ON(lock_at < folio || lock_at >= folio + n);
	/* Device large folios split through their own path (memremap.c). */
	if (page_is_zone_device(folio))
		return -EINVAL;
	if (!page_is_anon(folio) || !folio->mapping)
		return -EBUSY;
	/* **devmm:** a folio still mapped by a PMD somewhere (a fork child's
	 * after the parent split its own) is not split: Linux freeze-splits
	 * those PMDs in unmap_folio (TTU_SPLIT_HUGE_PMD), devmm refuses, and
	 * callers treat it as any failed split. With the folio locked no PMD
	 * mapping can appear (fork only copies existing ones). */
	if (folio_entire_mapcount(folio))
		return -EBUSY;
	/* The racy check: references beyond the caller's and the mappings'
	 * (GUP, a fault path, a driver) make the split fail now, untouched. */
	if (folio_ref_count(folio) - 1 != (uint32_t)folio_mapcount(folio))
		return -EAGAIN;
	unmap_folio(sys, folio);
	if (!atomic_compare_exchange_strong_explicit(&folio->refcount, &one, 0, memory_order_acq_rel,
						     memory_order_relaxed)) {
		remap_page(sys, folio, n, 0);
		return -EAGAIN;
	}
	folio_unqueue_deferred_split(sys, folio);
	split_unmapped_folio(folio);
	remap_page(sys, folio, n, RMP_USE_SHARED_ZEROPAGE);
	for (uint64_t i = 0; i < n; i++) {
		if (&folio[i] == lock_at)
			continue;
		unlock_page(sys, &folio[i]);
		put_page(sys, &folio[i]);
	}
	dmm_stat_inc(sys, thp_split);
	return 0;
}

/*
 * The deferred-split queue, run once (the kernel's deferred_split_scan).
 * Under the queue lock every queued folio that is not being freed gets a
 * reference and stays queued; then, without the lock, each is tried:
 * trylock, split_folio (which takes it off the queue), unlock. A folio
 * that is not partially mapped leaves the queue (the kernel's "underused"
 * check is inert at the default max_ptes_none = 511); a failure leaves it
 * queued. A folio whose last reference goes meanwhile takes itself off.
 */
long deferred_split_scan(struct dmm_system *sys)
{
	struct dmm_deferred_split *ds = &sys->deferred_split;
	struct dmm_page **batch;
	struct dmm_list *pos;
	long n = 0, split = 0, len;

	pthread_mutex_lock(&ds->lock);
	len = ds->len;
	batch = len ? malloc((size_t)len * sizeof(*batch)) : NULL;
	if (!batch) {
		pthread_mutex_unlock(&ds->lock);
		return len ? -ENOMEM : 0;
	}
	list_for_each(pos, &ds->queue) {
		struct dmm_page *f = container_of(pos, struct dmm_page, deferred_list) - 2;

		/* Queued, it stays a large folio until its free path takes
		 * it off under this lock: folio_ref_try_add is enough. */
		if (!folio_ref_try_add(f, 1))
			batch[n++] = f;
	}
	pthread_mutex_unlock(&ds->lock);
	for (long i = 0; i < n; i++) {
		struct dmm_page *f = batch[i];

		/* Split meanwhile by someone else (it left the queue then). */
		if (!folio_test_large(f)) {
			put_page(sys, f);
			continue;
		}
		if (!page_test(f, PG_partially_mapped)) {
			folio_unqueue_deferred_split(sys, f);
		} else if (trylock_page(f)) {
			if (folio_test_large(f) && !split_folio(sys, f))
				split++;
			unlock_page(sys, f);
		}
		put_page(sys, f);
	}
	free(batch);
	return split;
}

int dmm_deferred_split_scan(struct dmm_system *sys, unsigned long *nr_split)
{
	long r;

	if (!sys)
		return -EINVAL;
	r = deferred_split_scan(sys);
	if (r < 0)
		return (int)r;
	if (nr_split)
		*nr_split = (unsigned long)r;
	return 0;
}
bool is_huge_zero_pmd(struct dmm_system *sys, pte_t pmd)
{
	struct dmm_page *z = atomic_load_explicit(&sys->huge_zero, memory_order_acquire);

	return z && pmd_leaf_present(pmd) && pte_special(pmd) && pte_pfn(pmd) == page_to_pfn(sys, z);
}

/*
 * The huge zero folio (§1.3): one zeroed order-9 folio for the system,
 * made on first use and kept until the system goes (devmm has no memory
 * pressure, so no shrinker frees it). Its pages carry PG_reserved, so
 * page_is_zero counts them as the zero page is counted: not at all (no
 * references, no mapcount, no pins; stat reports 0). An mm that maps it
 * holds it (mm->huge_zero, MMF_HUGE_ZERO_FOLIO), counted in huge_zero_mms.
 * NULL when the allocation fails.
 */
struct dmm_page *mm_get_huge_zero_folio(struct dmm_mm *mm)
{
	struct dmm_system *sys = mm->sys;
	struct dmm_page *z = atomic_load_explicit(&sys->huge_zero, memory_order_acquire), *expected = NULL;

	if (!z) {
		z = folio_alloc(sys, HPAGE_PMD_ORDER, GFP_ZERO);
		if (!z)
			return NULL;
		page_set(z, PG_uptodate);
		for (unsigned int i = 0; i < HPAGE_PMD_NR; i++)
			page_set(&z[i], PG_reserved);
		if (!atomic_compare_exchange_strong_explicit(&sys->huge_zero, &expected, z, memory_order_acq_rel,
							     memory_order_acquire)) {
			for (unsigned int i = 0; i < HPAGE_PMD_NR; i++)
				page_clear(&z[i], PG_reserved);
			put_page(sys, z);
			z = expected;
		}
	}
	if (!atomic_load_explicit(&mm->huge_zero, memory_order_relaxed) && !atomic_exchange(&mm->huge_zero, true))
		atomic_fetch_add(&sys->huge_zero_mms, 1);
	return z;
}

void mm_put_huge_zero_folio(struct dmm_mm *mm)
{
	if (atomic_exchange(&mm->huge_zero, false))
		atomic_fetch_sub(&mm->sys->huge_zero_mms, 1);
}

vm_fault_t do_huge_pmd_anonymous_page(struct dmm_vma *vma, struct dmm_pte_table *t, uint64_t addr,
				      unsigned int flags)
{
	struct dmm_mm *mm = vma->mm;
	struct dmm_system *sys = mm->sys;
	uint64_t haddr = addr & HPAGE_PMD_MASK;
	struct dmm_page *f;

	/* As vmf_anon_prepare: before the huge zero branch too, so that fork
	 * copies a huge zero PMD (large-folios.md §3.3). */
	if (anon_vma_prepare(vma))
		return VM_FAULT_OOM;
	if (!(flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) &&
	    atomic_load_explicit(&sys->thp_huge_zero, memory_order_relaxed)) {
		f = mm_get_huge_zero_folio(mm);
		if (!f)
			return VM_FAULT_FALLBACK;
		ptl_lock(t);
		if (pmd_none(pmd_get(t)))
			pmd_set(t, pfn_pte(page_to_pfn(sys, f), _PTE_SPECIAL | _PTE_YOUNG | vma_prot_bits(vma)));
		ptl_unlock(t);
		dmm_stat_inc(sys, fault_huge_zero);
		return 0;
	}
	f = folio_alloc(sys, HPAGE_PMD_ORDER, GFP_ZERO);
	if (!f)
		return VM_FAULT_FALLBACK;
	ptl_lock(t);
	if (!pmd_none(pmd_get(t))) {
		ptl_unlock(t);
		put_page(sys, f);
		return 0; /* lost a race: retry the access */
	}
	folio_add_new_anon_rmap(f, vma, haddr, RMAP_EXCLUSIVE);
	add_mm_counter(mm, DMM_MM_ANONPAGES, HPAGE_PMD_NR);
	pmd_set(t, pfn_pte(page_to_pfn(sys, f), _PTE_DIRTY | _PTE_YOUNG |
				      ((vma->flags & VM_WRITE) ? _PTE_WRITE : 0) | vma_prot_bits(vma)));
	ptl_unlock(t);
	dmm_stat_inc(sys, fault_thp);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Write and unshare faults on a PMD leaf (§3.2)                             */

/* Map the new exclusive THP @f by the empty or huge zero slot of @t (PTL
 * held): dirty, young, writable iff VM_WRITE, rss +512. */
static void map_anon_folio_pmd(struct dmm_vma *vma, struct dmm_pte_table *t, struct dmm_page *f, uint64_t haddr)
{
	struct dmm_system *sys = vma->mm->sys;

	lockdep_assert_ptl_held(t);
	folio_add_new_anon_rmap(f, vma, haddr, RMAP_EXCLUSIVE);
	add_mm_counter(vma->mm, DMM_MM_ANONPAGES, HPAGE_PMD_NR);
	pmd_set(t, pfn_pte(page_to_pfn(sys, f), _PTE_DIRTY | _PTE_YOUNG |
					      ((vma->flags & VM_WRITE) ? _PTE_WRITE : 0) | vma_prot_bits(vma)));
}

/*
 * The huge zero PMD (do_huge_zero_wp_pmd, ≥6.13): a new zeroed THP replaces
 * it, NOTIFY(CLEAR, 2M) around the change. An unshare fault (a read-only
 * long-term pin) installs it the same way, writable if VM_WRITE
 * (map_anon_folio_pmd_pf), unlike the PTE-level unshare. When the THP
 * cannot be had the PMD is split: the retried access copies one small zero
 * page at PTE level.
 */
static vm_fault_t do_huge_zero_wp_pmd(struct dmm_vma *vma, struct dmm_pte_table *t, uint64_t addr, pte_t orig)
{
	struct dmm_mm *mm = vma->mm;
	struct dmm_system *sys = mm->sys;
	uint64_t haddr = addr & HPAGE_PMD_MASK;
	struct dmm_mmu_notifier_range r;
	struct dmm_page *f;

	if (anon_vma_prepare(vma))
		return VM_FAULT_OOM;
	f = folio_alloc(sys, HPAGE_PMD_ORDER, GFP_ZERO);
	if (!f) {
		split_huge_pmd(mm, t, addr);
		return 0;
	}
	mmu_notify(DMM_MMU_NOTIFY_CLEAR, mm, haddr, haddr + HPAGE_PMD_SIZE, NULL, &r);
	ptl_lock(t);
	if (pmd_get(t) != orig) {
		ptl_unlock(t);
		mmu_notifier_invalidate_range_end(&r);
		put_page(sys, f);
		return 0;
	}
	map_anon_folio_pmd(vma, t, f, haddr);
	ptl_unlock(t);
	mmu_notifier_invalidate_range_end(&r);
	dmm_stat_inc(sys, fault_thp);
	return 0;
}

/*
 * A read-only PMD_THP (do_huge_pmd_wp_page, the 5.8 semantics with the 5.19
 * rules): the head exclusive → reuse (1); else with the folio locked
 * (trylock, or sleep without the PTL and look again), exclusive now →
 * reuse (2); a reference beyond this PMD → fallback (3); else this PMD is
 * the folio's only user: the head becomes exclusive and the PMD is reused
 * (4). Reuse makes the PMD young, dirty and writable in place; an unshare
 * fault leaves it read-only. Fallback splits the PMD; the retried access
 * meets the one faulting PTE (do_wp_page).
 */
static vm_fault_t do_huge_pmd_wp_page(struct dmm_vma *vma, struct dmm_pte_table *t, uint64_t addr,
				      unsigned int flags, pte_t orig)
{
	struct dmm_system *sys = vma->mm->sys;
	struct dmm_page *folio = pfn_to_page(sys, pte_pfn(orig));
	bool locked = false;

	ptl_lock(t);
	if (pmd_get(t) != orig)
		goto unlock;
	if (page_test(folio, PG_anon_exclusive))
		goto reuse;
	if (!trylock_page(folio)) {
		get_page(folio);
		ptl_unlock(t);
		lock_page(sys, folio);
		ptl_lock(t);
		if (pmd_get(t) != orig) {
			ptl_unlock(t);
			unlock_page(sys, folio);
			put_page(sys, folio);
			return 0;
		}
		put_page(sys, folio); /* the PMD still holds its reference */
	}
	locked = true;
	if (page_test(folio, PG_anon_exclusive))
		goto reuse;
	if (folio_ref_count(folio) > 1) {
		ptl_unlock(t);
		unlock_page(sys, folio);
		split_huge_pmd(vma->mm, t, addr);
		return 0;
	}
	page_set(folio, PG_anon_exclusive);
reuse:
	if (!(flags & FAULT_FLAG_UNSHARE))
		pmd_set(t, pte_mkyoung(pte_mkdirty(orig | ((vma->flags & VM_WRITE) ? _PTE_WRITE : 0))));
	dmm_stat_inc(sys, cow_reuse);
unlock:
	ptl_unlock(t);
	if (locked)
		unlock_page(sys, folio);
	return 0;
}

/*
 * A fault on a PMD leaf. A present PMD that allows the access was resolved
 * by someone else. A write or unshare fault on the huge zero PMD or on a
 * read-only THP goes to the PMD-level handlers of §3.2 (wp_huge_pmd);
 * anything else is resolved at PTE level after a PMD split.
 */
vm_fault_t huge_pmd_fault(struct dmm_vma *vma, struct dmm_pte_table *t, uint64_t addr, unsigned int flags,
			  pte_t pmd)
{
	if (pmd_leaf_present(pmd) && (!(flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) || pte_write(pmd)))
		return 0;
	if (pmd_leaf_present(pmd)) {
		if (is_huge_zero_pmd(vma->mm->sys, pmd))
			return do_huge_zero_wp_pmd(vma, t, addr, pmd);
		return do_huge_pmd_wp_page(vma, t, addr, flags, pmd);
	}
	split_huge_pmd(vma->mm, t, addr);
	return 0;
}

/*
 * A PMD that maps a folio becomes 512 PTEs mapping its pages (§2.3): one
 * reference per PTE (+511), the PMD mapping (entire) becomes 512 PTE
 * mappings, and the head's AnonExclusive goes to every page. The folio
 * stays large.
 */
static void split_folio_pmd_rmap(struct dmm_page *f)
{
	bool excl = page_test(f, PG_anon_exclusive);
	int32_t first = 0;

	page_ref_add(f, HPAGE_PMD_NR - 1);
	for (unsigned int i = 0; i < HPAGE_PMD_NR; i++) {
		if (excl)
			page_set(&f[i], PG_anon_exclusive);
		/* nr_pages_mapped counts pages with a PTE: after fork the other
		 * side's split finds them mapped already. */
		first += atomic_fetch_add_explicit(&f[i].mapcount, 1, memory_order_relaxed) == 0;
	}
	atomic_fetch_add_explicit(&f[1].nr_pages_mapped, first, memory_order_relaxed);
	atomic_fetch_add_explicit(&f[1].large_mapcount, HPAGE_PMD_NR - 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&f[1].entire_mapcount, 1, memory_order_release);
}

void split_huge_pmd_locked(struct dmm_mm *mm, struct dmm_pte_table *t, uint64_t addr)
{
	struct dmm_system *sys = mm->sys;
	pte_t pmd = pmd_get(t);
	uint64_t pfn = entry_pfn(pmd);

	lockdep_assert_ptl_held(t);
	(void)addr;
	if (!pmd_is_leaf(pmd))
		return;
	if (is_huge_zero_pmd(sys, pmd)) {
		/* 512 small-zero-page PTEs, read-only (__split_huge_zero_page_pmd). */
		pte_t e = pfn_pte(DMM_ZERO_PFN, (pmd & (_PTE_YOUNG | _PTE_SOFT_DIRTY | _PTE_UFFD_WP | _PTE_PROT_BITS)) |
							 _PTE_SPECIAL);

		for (unsigned int i = 0; i < HPAGE_PMD_NR; i++)
			pte_set(&t->ent[i], e);
	} else if (pte_present(pmd)) {
		uint64_t bits = pmd & ((1ULL << _PTE_PFN_SHIFT) - 1) & ~_PTE_PRESENT;

		split_folio_pmd_rmap(pfn_to_page(sys, pfn));
		for (unsigned int i = 0; i < HPAGE_PMD_NR; i++)
			pte_set(&t->ent[i], pfn_pte(pfn + i, bits));
	} else {
		/* Device-private and migration PMDs: the same leaf per page. */
		enum leaf_type type = leaf_type(pmd);

		if (is_device_private_entry(pmd))
			split_folio_pmd_rmap(pfn_to_page(sys, pfn));
		for (unsigned int i = 0; i < HPAGE_PMD_NR; i++)
			pte_set(&t->ent[i], make_leaf(type, pfn + i, leaf_flag_bits(pmd)));
	}
	pmd_set(t, PMD_TABLE); /* release: the PTEs are there first */
	dmm_stat_inc(sys, thp_split_pmd);
}

void split_huge_pmd(struct dmm_mm *mm, struct dmm_pte_table *t, uint64_t addr)
{
	uint64_t haddr = addr & HPAGE_PMD_MASK;
	struct dmm_mmu_notifier_range r;

	mmu_notify(DMM_MMU_NOTIFY_CLEAR, mm, haddr, haddr + HPAGE_PMD_SIZE, NULL, &r);
	ptl_lock(t);
	split_huge_pmd_locked(mm, t, addr);
	ptl_unlock(t);
	mmu_notifier_invalidate_range_end(&r);
}
