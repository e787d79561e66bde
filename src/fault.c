/* SPDX-License-Identifier: MIT */
/*
 * The fault handler (semantics.md §3.1, §3.2): anonymous faults (the zero
 * page on read, a new page on write), file and shmem page-cache faults,
 * write-protect faults (reuse of exclusive pages, copy-on-write, shared
 * mappings made writable), GUP's unshare faults (an exclusive read-only
 * copy) and the wait on migration entries.
 *
 * Called with mmap_lock held for read and no other lock. Every path
 * re-checks the entry under the PTL before changing it, so concurrent
 * faults on one address resolve once; a fault that lost a race returns 0
 * and the caller retries the access.
 */
#include "internal.h"

struct vm_fault {
	struct dmm_vma *vma;
	struct dmm_mm *mm;
	struct dmm_system *sys;
	uint64_t addr;
	unsigned int flags;
	struct dmm_pte_table *tbl;
	_Atomic pte_t *pte;
	pte_t orig;
};

int vm_fault_to_errno(vm_fault_t r)
{
	if (r & VM_FAULT_OOM)
		return -ENOMEM;
	if (r & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV))
		return -EFAULT;
	return 0;
}

static bool fault_write(const struct vm_fault *vmf) { return vmf->flags & FAULT_FLAG_WRITE; }
static bool fault_unshare(const struct vm_fault *vmf) { return vmf->flags & FAULT_FLAG_UNSHARE; }
static uint64_t vma_write_bit(const struct dmm_vma *vma) { return (vma->flags & VM_WRITE) ? _PTE_WRITE : 0; }

/* Install e at an entry that must still be none. false: lost a race. */
static bool set_pte_if_none(struct vm_fault *vmf, pte_t e)
{
	bool ok;

	ptl_lock(vmf->tbl);
	ok = pte_none(pte_get(vmf->pte));
	if (ok)
		pte_set(vmf->pte, e);
	ptl_unlock(vmf->tbl);
	return ok;
}

/* A fresh anonymous page mapped at vmf->addr, with contents from src (or zero). */
static vm_fault_t map_new_anon_page(struct vm_fault *vmf, struct dmm_page *src, uint64_t bits,
				    bool must_be_none)
{
	struct dmm_page *p;

	if (anon_vma_prepare(vmf->vma))
		return VM_FAULT_OOM;
	p = frame_alloc(vmf->sys, src ? 0 : GFP_ZERO);
	if (!p)
		return VM_FAULT_OOM;
	if (src)
		copy_page_contents(vmf->sys, p, src);
	ptl_lock(vmf->tbl);
	if (must_be_none ? !pte_none(pte_get(vmf->pte)) : pte_get(vmf->pte) != vmf->orig) {
		ptl_unlock(vmf->tbl);
		put_page(vmf->sys, p);
		return VM_FAULT_RETRY;
	}
	folio_add_new_anon_rmap(p, vmf->vma, vmf->addr, RMAP_EXCLUSIVE);
	add_mm_counter(vmf->mm, DMM_MM_ANONPAGES, 1);
	pte_set(vmf->pte, pfn_pte(page_to_pfn(vmf->sys, p), bits | _PTE_YOUNG | vma_prot_bits(vmf->vma)));
	ptl_unlock(vmf->tbl);
	return 0;
}


/* Are the @n PTEs from @slot all none? (PTL held, or a lockless first look.) */
static bool pte_range_none(_Atomic pte_t *slot, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (!pte_none(pte_get(&slot[i])))
			return false;
	return true;
}

/*
 * mTHP (large-folios.md §1.5, alloc_anon_folio): a write fault on a none
 * PTE maps a zeroed folio of the highest enabled order whose aligned range
 * is inside the VMA with all PTEs none, by PTEs: dirty, young, writable
 * iff VM_WRITE, every page exclusive, rss += 2^order. An order whose
 * allocation fails falls to the next; VM_FAULT_FALLBACK when none is left.
 */
static vm_fault_t do_anonymous_folio(struct vm_fault *vmf, unsigned int orders)
{
	struct dmm_vma *vma = vmf->vma;

	if (vma->flags & VM_NOHUGEPAGE)
		return VM_FAULT_FALLBACK;
	for (unsigned int order = FOLIO_MAX_ORDER - 1; order >= FOLIO_MIN_LARGE_ORDER; order--) {
		uint64_t n = 1ull << order, start = vmf->addr & ~((n << PAGE_SHIFT) - 1), pfn;
		_Atomic pte_t *first = pte_slot(vmf->tbl, start);
		struct dmm_page *f;

		if (!(orders & (1u << order)) || start < vma->start || start + (n << PAGE_SHIFT) > vma->end ||
		    !pte_range_none(first, n))
			continue;
		if (anon_vma_prepare(vma))
			return VM_FAULT_OOM;
		f = folio_alloc(vmf->sys, order, GFP_ZERO);
		if (!f)
			continue;
		pfn = page_to_pfn(vmf->sys, f);
		ptl_lock(vmf->tbl);
		if (!pte_range_none(first, n)) {
			ptl_unlock(vmf->tbl);
			put_page(vmf->sys, f);
			return 0; /* lost a race: retry the access */
		}
		folio_add_new_anon_rmap(f, vma, start, RMAP_EXCLUSIVE);
		page_ref_add(f, (uint32_t)n - 1); /* one reference per PTE */
		add_mm_counter(vmf->mm, DMM_MM_ANONPAGES, (long)n);
		for (uint64_t i = 0; i < n; i++)
			pte_set(&first[i], pfn_pte(pfn + i, _PTE_DIRTY | _PTE_YOUNG | vma_write_bit(vma) |
							   vma_prot_bits(vma)));
		ptl_unlock(vmf->tbl);
		dmm_stat_inc(vmf->sys, fault_mthp);
		return 0;
	}
	return VM_FAULT_FALLBACK;
}

static vm_fault_t do_anonymous_page(struct vm_fault *vmf)
{
	unsigned int orders;
	vm_fault_t r;

	if (!fault_write(vmf)) {
		if (set_pte_if_none(vmf, pfn_pte(DMM_ZERO_PFN, _PTE_SPECIAL | _PTE_YOUNG | vma_prot_bits(vmf->vma))))
			dmm_stat_inc(vmf->sys, fault_zero);
		return 0;
	}
	orders = atomic_load_explicit(&vmf->sys->mthp_orders, memory_order_relaxed);
	if (unlikely(orders)) {
		r = do_anonymous_folio(vmf, orders);
		if (r != VM_FAULT_FALLBACK)
			return r;
	}
	r = map_new_anon_page(vmf, NULL, _PTE_DIRTY | vma_write_bit(vmf->vma), true);
	if (!r)
		dmm_stat_inc(vmf->sys, fault_anon);
	return r & ~VM_FAULT_RETRY;
}

/* Does the file need write notification (dirty tracking)? Regular files
 * do, as a file system with writeback would; shmem does not. */
static bool vma_wants_writenotify(const struct dmm_vma *vma)
{
	return vma->file && !vma->file->shmem;
}

static vm_fault_t do_file_fault(struct vm_fault *vmf)
{
	struct dmm_vma *vma = vmf->vma;
	bool shared = vma->flags & VM_SHARED;
	struct dmm_page *p;
	uint64_t bits = _PTE_YOUNG | vma_prot_bits(vma);
	vm_fault_t r = 0;
	int err;

	err = filemap_get_page(vma->file, linear_page_index(vma, vmf->addr), &p);
	if (err)
		return err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	if (fault_write(vmf) && !shared) {
		/* do_cow_fault: a private copy of the file page. */
		r = map_new_anon_page(vmf, p, _PTE_DIRTY | vma_write_bit(vma), true);
		put_page(vmf->sys, p);
		if (!r)
			dmm_stat_inc(vmf->sys, fault_file_cow);
		return r & ~VM_FAULT_RETRY;
	}
	if (shared && fault_write(vmf))
		bits |= _PTE_WRITE | _PTE_DIRTY;
	else if (shared && (vma->flags & VM_WRITE) && !vma_wants_writenotify(vma))
		bits |= _PTE_WRITE;
	ptl_lock(vmf->tbl);
	if (!pte_none(pte_get(vmf->pte))) {
		ptl_unlock(vmf->tbl);
		put_page(vmf->sys, p);
		return 0;
	}
	folio_add_file_rmap_pte(page_folio(p), p, vmf->vma); /* the lookup's reference becomes the mapping's */
	if (bits & _PTE_DIRTY)
		page_set(p, PG_dirty);
	add_mm_counter(vmf->mm, mm_counter(vma, p), 1);
	pte_set(vmf->pte, pfn_pte(page_to_pfn(vmf->sys, p), bits));
	ptl_unlock(vmf->tbl);
	dmm_stat_inc(vmf->sys, fault_file);
	return 0;
}

/*
 * The page to receive a copy-on-write copy of @old: system memory, as in
 * Linux, unless @old is device-coherent memory whose driver places the copy
 * on the device (the cow_alloc extension). Device pages come back locked;
 * *locked says so.
 */
static struct dmm_page *cow_dest(struct dmm_system *sys, struct dmm_page *old, bool *locked)
{
	*locked = false;
	if (old && page_is_device_coherent(old) && old->pgmap->ops.cow_alloc &&
	    !should_fail(sys, DMM_INJECT_COW_ALLOC)) {
		uint64_t pfn;
		struct dmm_page *p;

		if (!old->pgmap->ops.cow_alloc(old->pgmap, page_to_pfn(sys, old), &pfn)) {
			p = pfn_to_page(sys, pfn);
			DMM_BUG_ON(!p || !page_is_device_coherent(p) || page_ref_count(p) != 1);
			*locked = true;
			dmm_stat_inc(sys, cow_device);
			return p;
		}
	}
	return frame_alloc(sys, old ? 0 : GFP_ZERO);
}

/*
 * Copy-on-write: replace the read-only entry by a new exclusive anonymous
 * page holding a copy of @old (NULL: the zero page). @old carries a
 * reference of ours.
 */
static vm_fault_t wp_page_copy(struct vm_fault *vmf, struct dmm_page *old)
{
	struct dmm_system *sys = vmf->sys;
	uint64_t bits = fault_unshare(vmf) ? 0 : _PTE_DIRTY | vma_write_bit(vmf->vma);
	struct dmm_mmu_notifier_range r;
	struct dmm_page *p;
	bool locked;

	if (anon_vma_prepare(vmf->vma))
		goto oom;
	p = cow_dest(sys, old, &locked);
	if (!p)
		goto oom;
	if (old)
		copy_page_contents(sys, p, old);
	if (locked)
		unlock_page(sys, p);
	mmu_notify(DMM_MMU_NOTIFY_CLEAR, vmf->mm, vmf->addr, vmf->addr + PAGE_SIZE, NULL, &r);
	ptl_lock(vmf->tbl);
	if (pte_get(vmf->pte) != vmf->orig) {
		ptl_unlock(vmf->tbl);
		mmu_notifier_invalidate_range_end(&r);
		put_page(sys, p);
		if (old)
			put_page(sys, old);
		return 0;
	}
	if (old) {
		folio_remove_rmap_pte(page_folio(old), old, vmf->vma);
		add_mm_counter(vmf->mm, mm_counter(vmf->vma, old), -1);
	}
	folio_add_new_anon_rmap(p, vmf->vma, vmf->addr, RMAP_EXCLUSIVE);
	add_mm_counter(vmf->mm, DMM_MM_ANONPAGES, 1);
	pte_set(vmf->pte, pfn_pte(page_to_pfn(sys, p), bits | _PTE_YOUNG | vma_prot_bits(vmf->vma)));
	ptl_unlock(vmf->tbl);
	mmu_notifier_invalidate_range_end(&r);
	if (old) {
		put_page(sys, old); /* the old mapping's reference */
		put_page(sys, old); /* ours */
	}
	dmm_stat_inc(sys, cow_copy);
	return 0;
oom:
	if (old)
		put_page(sys, old);
	return VM_FAULT_OOM;
}

/*
 * A page of a large anon folio that is not exclusive (≥6.15,
 * __wp_can_reuse_large_anon_folio, large-folios.md §3.2): reuse iff the
 * folio has more than one mapping, is not maybe mapped shared, and has no
 * reference beyond its mappings; then only this page becomes exclusive.
 * "Maybe mapped shared" is decided from the entries: every mapping of the
 * folio must be one of this table's PTEs (PTL held), else another process
 * (or another part of this one, conservatively) may map it. Linux tracks
 * two owner mm ids per folio for the same answer; the two agree whenever
 * one mm's PTEs of the folio sit in one table, and devmm says "shared"
 * where Linux might not otherwise (devmm: never reuses wrongly).
 */
static bool wp_can_reuse_large_anon_folio(struct vm_fault *vmf, struct dmm_page *f)
{
	int32_t mapcount = folio_mapcount(f), here = 0;
	uint64_t first = page_to_pfn(vmf->sys, f), n = folio_nr_pages(f);

	if (mapcount <= 1 || (uint32_t)mapcount != folio_ref_count(f))
		return false;
	for (unsigned int i = 0; i < PTRS_PER_TABLE; i++) {
		pte_t e = pte_get(&vmf->tbl->ent[i]);

		if ((pte_present(e) && !pte_special(e) && pte_pfn(e) - first < n) ||
		    (is_device_exclusive_entry(e) && entry_pfn(e) - first < n))
			here++;
	}
	return here == mapcount;
}

/*
 * May a shared-looking anonymous page be reused in place? An order-0 page
 * only when ours is the one reference left (no other mapping, no GUP
 * reference) and the page lock can be had (wp_can_reuse_anon_folio); a
 * page of a large folio by the rule above. PTL held.
 */
static bool can_reuse_anon_page(struct vm_fault *vmf, struct dmm_page *p)
{
	struct dmm_system *sys = vmf->sys;
	struct dmm_page *f = page_folio(p);
	bool ok;

	if (unlikely(folio_test_large(f))) {
		if (!wp_can_reuse_large_anon_folio(vmf, f))
			return false;
		page_set(p, PG_anon_exclusive);
		return true;
	}

	if (page_ref_count(p) != 1 || !trylock_page(p))
		return false;
	ok = page_ref_count(p) == 1 && page_mapcount(p) == 1;
	if (ok)
		page_set(p, PG_anon_exclusive);
	unlock_page(sys, p);
	return ok;
}

/*
 * A write (or unshare) fault on a present read-only entry. PTL held on
 * entry; dropped on return. An unshare fault (GUP's read-only pins: a
 * shared anon page, or for a long-term pin the zero page or a page-cache
 * page in a private mapping) leaves the entry read-only: it reuses an
 * exclusive-able anon page, or maps an exclusive anonymous copy (zeroed for
 * the zero page). A later write fault finds that page anon-exclusive and
 * makes the entry writable in place, pinned or not, so a pin taken after
 * the unshare sees the process's writes.
 */
static vm_fault_t do_wp_page(struct vm_fault *vmf)
{
	struct dmm_vma *vma = vmf->vma;
	pte_t e = vmf->orig;
	struct dmm_page *p;

	lockdep_assert_ptl_held(vmf->tbl);
	if (pte_special(e)) {
		ptl_unlock(vmf->tbl);
		return wp_page_copy(vmf, NULL);
	}
	p = pfn_to_page(vmf->sys, pte_pfn(e));
	if (vma->flags & VM_SHARED) {
		if (!fault_unshare(vmf)) {
			page_set(p, PG_dirty);
			pte_set(vmf->pte, pte_mkyoung(pte_mkdirty(pte_mkwrite(e))));
			dmm_stat_inc(vmf->sys, fault_wp_shared);
		}
		ptl_unlock(vmf->tbl);
		return 0;
	}
	if (page_is_anon(p) &&
	    (page_test(p, PG_anon_exclusive) || can_reuse_anon_page(vmf, p))) {
		if (!fault_unshare(vmf))
			pte_set(vmf->pte, pte_mkyoung(pte_mkdirty(e | vma_write_bit(vma))));
		ptl_unlock(vmf->tbl);
		dmm_stat_inc(vmf->sys, cow_reuse);
		return 0;
	}
	get_page(p);
	ptl_unlock(vmf->tbl);
	return wp_page_copy(vmf, p);
}

/* The entry is a migration entry: sleep until the migration ends. */
static vm_fault_t migration_entry_wait(struct vm_fault *vmf)
{
	struct dmm_page *p;

	ptl_lock(vmf->tbl);
	if (pte_get(vmf->pte) != vmf->orig) {
		ptl_unlock(vmf->tbl);
		return 0;
	}
	p = pfn_to_page(vmf->sys, entry_pfn(vmf->orig));
	/* Sleep without a page reference: one would fail the migrator's pin
	 * checks. The frame's metadata outlives the wait (system frames
	 * always; device frames through a pgmap reference). */
	if (page_is_zone_device(p))
		pgmap_ref_get(p->pgmap);
	ptl_unlock(vmf->tbl);
	wait_on_page_locked(vmf->sys, p);
	if (page_is_zone_device(p))
		pgmap_ref_put(p->pgmap);
	dmm_stat_inc(vmf->sys, fault_retry);
	return 0;
}

/*
 * A CPU access to a device-private page (semantics.md §3.1): trylock the
 * device page and call its owner's migrate_to_ram; if another thread holds
 * the lock (it is migrating the page), sleep until it is released and let
 * the access fault again. Never spin: that livelocked Linux until 2026.
 */
static vm_fault_t do_device_private_fault(struct vm_fault *vmf)
{
	struct dmm_page *p;
	struct dmm_pgmap *pg;
	unsigned int r;

	ptl_lock(vmf->tbl);
	if (pte_get(vmf->pte) != vmf->orig) {
		ptl_unlock(vmf->tbl);
		return 0;
	}
	p = pfn_to_page(vmf->sys, entry_pfn(vmf->orig));
	pg = p->pgmap;
	if (trylock_page(p)) {
		struct dmm_vm_fault f = {
			.mm = vmf->mm, .address = vmf->addr,
			.page = entry_pfn(vmf->orig), .pgmap = pg,
			.flags = fault_write(vmf) ? DMM_FAULT_FLAG_WRITE : 0,
		};

		get_page(p);
		ptl_unlock(vmf->tbl);
		if (should_fail(vmf->sys, DMM_INJECT_MIGRATE_TO_RAM))
			r = DMM_VM_FAULT_OOM;
		else
			r = pg->ops.migrate_to_ram(&f);
		unlock_page(vmf->sys, p);
		put_page(vmf->sys, p);
		dmm_stat_inc(vmf->sys, fault_device_private);
		if (r & DMM_VM_FAULT_OOM)
			return VM_FAULT_OOM;
		return (r & DMM_VM_FAULT_SIGBUS) ? VM_FAULT_SIGBUS : 0;
	}
	/* No page reference while waiting (it would fail the migrator's
	 * reference checks); a pgmap reference keeps the metadata alive. */
	pgmap_ref_get(pg);
	ptl_unlock(vmf->tbl);
	wait_on_page_locked(vmf->sys, p);
	pgmap_ref_put(pg);
	dmm_stat_inc(vmf->sys, fault_device_wait);
	return 0;
}

/*
 * Turn a device-exclusive entry back into a present one (t's PTL held, page
 * locked): same page, the VMA's protections, old, dirty only if the page
 * is, writable if the VMA allows (the page is exclusive anon).
 */
void restore_exclusive_pte(struct dmm_vma *vma, struct dmm_page *p, struct dmm_pte_table *t,
			   uint64_t addr, pte_t e)
{
	uint64_t bits = vma_prot_bits(vma);

	lockdep_assert_page_locked(p);
	lockdep_assert_ptl_held(t);
	if ((vma->flags & VM_WRITE) && page_test(p, PG_anon_exclusive))
		bits |= _PTE_WRITE;
	if (page_test(p, PG_dirty))
		bits |= _PTE_DIRTY;
	if (leaf_soft_dirty(e))
		bits |= _PTE_SOFT_DIRTY;
	if (leaf_uffd_wp(e))
		bits |= _PTE_UFFD_WP;
	pte_set(pte_slot(t, addr), pfn_pte(entry_pfn(e), bits));
}

/* A CPU access (or GUP, or an hmm fault) revokes device-exclusive access. */
static vm_fault_t do_device_exclusive_fault(struct vm_fault *vmf)
{
	struct dmm_page *p = pfn_to_page(vmf->sys, entry_pfn(vmf->orig));
	struct dmm_mmu_notifier_range r;

	if (!get_page_unless_zero(vmf->sys, p))
		return 0; /* already gone */
	lock_page(vmf->sys, p);
	mmu_notify(DMM_MMU_NOTIFY_CLEAR, vmf->mm, vmf->addr, vmf->addr + PAGE_SIZE, NULL, &r);
	ptl_lock(vmf->tbl);
	if (pte_get(vmf->pte) == vmf->orig)
		restore_exclusive_pte(vmf->vma, p, vmf->tbl, vmf->addr, vmf->orig);
	ptl_unlock(vmf->tbl);
	mmu_notifier_invalidate_range_end(&r);
	unlock_page(vmf->sys, p);
	put_page(vmf->sys, p);
	dmm_stat_inc(vmf->sys, exclusive_restored);
	return 0;
}

static vm_fault_t handle_nonpresent(struct vm_fault *vmf)
{
	if (is_migration_entry(vmf->orig))
		return migration_entry_wait(vmf);
	if (is_device_private_entry(vmf->orig))
		return do_device_private_fault(vmf);
	if (is_device_exclusive_entry(vmf->orig))
		return do_device_exclusive_fault(vmf);
	dmm_bug(__FILE__, __LINE__, "fault on an unknown entry kind");
}

vm_fault_t handle_mm_fault(struct dmm_vma *vma, uint64_t addr, unsigned int flags)
{
	struct vm_fault vmf = {
		.vma = vma, .mm = vma->mm, .sys = vma->mm->sys,
		.addr = addr & PAGE_MASK, .flags = flags,
	};

	vm_fault_t r;
	pte_t pmd;

	mmap_assert_locked(vma->mm);
	vmf.tbl = pmd_alloc(vmf.mm, vmf.addr);
	if (!vmf.tbl)
		return VM_FAULT_OOM;
	pmd = pmd_get(vmf.tbl);
	if (unlikely(!pmd_is_table(pmd))) {
		/* The PMD level (large-folios.md §3.1): an empty slot may get a
		 * THP or the huge zero PMD; a leaf is handled at its level. */
		if (pmd_is_leaf(pmd))
			return huge_pmd_fault(vma, vmf.tbl, vmf.addr, flags, pmd);
		if (thp_vma_allowable_pmd(vma, vmf.addr)) {
			r = do_huge_pmd_anonymous_page(vma, vmf.tbl, vmf.addr, flags);
			if (r != VM_FAULT_FALLBACK)
				return r;
		}
		vmf.tbl = pte_alloc(vmf.mm, vmf.addr);
		if (!vmf.tbl)
			return VM_FAULT_OOM;
	}
	vmf.pte = pte_slot(vmf.tbl, vmf.addr);
	vmf.orig = pte_get(vmf.pte);
	if (pte_none(vmf.orig))
		return vma_is_anonymous(vma) ? do_anonymous_page(&vmf) : do_file_fault(&vmf);
	if (!pte_present(vmf.orig))
		return handle_nonpresent(&vmf);
	if (!(flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) || pte_write(vmf.orig))
		return 0; /* spurious: someone resolved it already */
	ptl_lock(vmf.tbl);
	vmf.orig = pte_get(vmf.pte);
	if (!pte_present(vmf.orig) || pte_write(vmf.orig)) {
		ptl_unlock(vmf.tbl);
		return 0;
	}
	return do_wp_page(&vmf);
}
