/* SPDX-License-Identifier: MIT */
/*
 * fork (semantics.md §3.3): every VMA not marked DONTCOPY is duplicated;
 * page tables are copied for VMAs that have anonymous pages (others
 * refault in the child). Private writable entries become read-only in both
 * processes; an exclusive anonymous page that may be pinned is copied for
 * the child at once, so the pin keeps pointing at the parent's page.
 * Device-private entries are shared read-only, writable migration entries
 * are downgraded to read. A PMD_THP is shared whole, read-only, and the huge
 * zero PMD copied as it is (large-folios.md §3.3); a pinned exclusive THP
 * is split in the parent and its 512 pages copied for the child.
 *
 * Lock order: parent mmap_lock (write), then the child's (write; nobody
 * can see the child yet, so nobody contends), then the parent PTL, then the
 * child's PTL.
 */
#include "internal.h"

struct fork_ctx {
	struct dmm_mm *child;
	struct dmm_vma *src_vma, *dst_vma;
	uint64_t shared, copied;
};

/* Copy an exclusive, maybe-pinned anonymous page for the child now. */
static int copy_present_page(struct fork_ctx *fc, _Atomic pte_t *dst, uint64_t addr,
			     struct dmm_page *src)
{
	struct dmm_system *sys = fc->child->sys;
	struct dmm_page *p = frame_alloc(sys, 0);
	uint64_t bits = _PTE_DIRTY | _PTE_YOUNG | vma_prot_bits(fc->dst_vma);

	if (!p)
		return -ENOMEM;
	copy_page_contents(sys, p, src);
	folio_add_new_anon_rmap(p, fc->dst_vma, addr, RMAP_EXCLUSIVE);
	if (fc->dst_vma->flags & VM_WRITE)
		bits |= _PTE_WRITE;
	pte_set(dst, pfn_pte(page_to_pfn(sys, p), bits));
	add_mm_counter(fc->child, DMM_MM_ANONPAGES, 1);
	fc->copied++;
	return 0;
}

static int copy_present_pte(struct fork_ctx *fc, _Atomic pte_t *src, _Atomic pte_t *dst,
			    uint64_t addr, pte_t e)
{
	struct dmm_system *sys = fc->child->sys;
	struct dmm_page *p;
	bool cow = is_cow_mapping(fc->src_vma->flags);

	if (pte_special(e)) {
		pte_set(dst, e);
		return 0;
	}
	p = pfn_to_page(sys, pte_pfn(e));
	if (!page_is_anon(p))
		folio_dup_file_rmap_pte(page_folio(p), p);
	else if (folio_try_dup_anon_rmap_pte(page_folio(p), p, fc->src_vma))
		return copy_present_page(fc, dst, addr, p);
	get_page(p);
	if (cow && pte_write(e)) {
		e = pte_wrprotect(e);
		pte_set(src, e);
	}
	if (fc->src_vma->flags & VM_SHARED)
		e = pte_mkclean(e);
	pte_set(dst, pte_mkold(e));
	add_mm_counter(fc->child, mm_counter(fc->dst_vma, p), 1);
	fc->shared++;
	return 0;
}

/*
 * A device-exclusive entry: fork restores it (trylock only: the driver may
 * hold the page while it programs the device) and copies the result as a
 * present entry. A busy page fails the whole fork with -ENOMEM, as Linux
 * does (pitfall 1).
 */
static int copy_exclusive_pte(struct fork_ctx *fc, struct dmm_pte_table *t, _Atomic pte_t *dst,
			      uint64_t addr, pte_t e)
{
	_Atomic pte_t *src = pte_slot(t, addr);
	struct dmm_system *sys = fc->child->sys;
	struct dmm_page *p = pfn_to_page(sys, entry_pfn(e));
	int r;

	DMM_BUG_ON(!is_cow_mapping(fc->src_vma->flags));
	if (!trylock_page(p))
		return -ENOMEM;
	restore_exclusive_pte(fc->src_vma, p, t, addr, e);
	r = copy_present_pte(fc, src, dst, addr, pte_get(src));
	unlock_page(sys, p);
	dmm_stat_inc(sys, exclusive_restored);
	return r;
}

/* Non-present entries: device-private and migration. */
static void copy_nonpresent_pte(struct fork_ctx *fc, _Atomic pte_t *src, _Atomic pte_t *dst, pte_t e)
{
	struct dmm_system *sys = fc->child->sys;
	struct dmm_page *p = pfn_to_page(sys, entry_pfn(e));
	bool cow = is_cow_mapping(fc->src_vma->flags);

	if (is_device_private_entry(e)) {
		get_page(p);
		DMM_BUG_ON(folio_try_dup_anon_rmap_pte(page_folio(p), p, fc->src_vma));
		if (cow && is_writable_device_private_entry(e)) {
			e = make_device_private_entry(entry_pfn(e), false,
						      leaf_flag_bits(e) & ~_LEAF_SOFT_DIRTY);
			pte_set(src, e);
		}
	} else if (is_migration_entry(e)) {
		if (cow && leaf_type(e) != LEAF_MIGRATION_READ) {
			e = make_migration_entry(LEAF_MIGRATION_READ, entry_pfn(e), leaf_flag_bits(e));
			pte_set(src, e);
		}
	} else {
		dmm_bug(__FILE__, __LINE__, "fork of an unknown entry kind");
	}
	pte_set(dst, e);
	add_mm_counter(fc->child, mm_counter(fc->dst_vma, p), 1);
	fc->shared++;
}

/*
 * A present PMD leaf of the parent (copy_huge_pmd, large-folios.md §3.3),
 * both PTLs held: the huge zero PMD is copied as it is (nothing counted);
 * a PMD_THP is write-protected in the parent and shared with the child,
 * old (+1 reference, +1 entire mapping, the head no longer exclusive, rss
 * +512). -EBUSY when the head is exclusive and the folio may be pinned:
 * nothing changed, the caller splits the parent's PMD and copies the pages.
 */
static int copy_huge_pmd(struct fork_ctx *fc, struct dmm_pte_table *t, struct dmm_pte_table *dt, pte_t pmd)
{
	struct dmm_system *sys = fc->child->sys;
	struct dmm_page *folio;

	if (is_huge_zero_pmd(sys, pmd)) {
		mm_get_huge_zero_folio(fc->child);
		pmd_set(dt, pmd);
		fc->shared++;
		return 0;
	}
	folio = pfn_to_page(sys, pte_pfn(pmd));
	if (folio_try_dup_anon_rmap_pmd(folio, fc->src_vma))
		return -EBUSY;
	get_page(folio);
	add_mm_counter(fc->child, DMM_MM_ANONPAGES, HPAGE_PMD_NR);
	pmd = pte_wrprotect(pmd);
	pmd_set(t, pmd);
	pmd_set(dt, pte_mkold(pmd));
	fc->shared++;
	return 0;
}

/*
 * A PMD leaf of the parent (pmd_entry): a present one over the whole PMD
 * range of an anonymous VMA is copied at PMD level. A pinned exclusive THP
 * splits the parent's PMD instead and the walk looks at the slot again: its
 * PTEs are then copied page by page (512 order-0 copies, copy_present_page,
 * the copy_pte_range retry of Linux). Anything else goes down to the
 * walker's split.
 */
static int copy_pmd_leaf(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end, struct mm_walk *walk)
{
	struct fork_ctx *fc = walk->private;
	struct dmm_pte_table *dt;
	int r;

	if (!pmd_leaf_present(pmd) || !vma_is_anonymous(fc->src_vma) || (addr & ~HPAGE_PMD_MASK) ||
	    end - addr != HPAGE_PMD_SIZE)
		return 0;
	dt = pmd_alloc(fc->child, addr);
	if (!dt)
		return -ENOMEM;
	ptl_lock(t);
	ptl_lock(dt);
	pmd = pmd_get(t);
	DMM_BUG_ON(!pmd_none(pmd_get(dt)));
	r = pmd_leaf_present(pmd) ? copy_huge_pmd(fc, t, dt, pmd) : 0;
	ptl_unlock(dt);
	ptl_unlock(t);
	if (r == -EBUSY)
		split_huge_pmd(fc->src_vma->mm, t, addr);
	/* Copied: on to the next slot; otherwise look at the slot again. */
	walk->action = r || !pmd_leaf_present(pmd) ? ACTION_AGAIN : ACTION_CONTINUE;
	return 0;
}

/* One PMD slot of the parent (pmd_entry): copy its PTEs under both PTLs. */
static int copy_pte_range(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end,
			  struct mm_walk *walk)
{
	struct fork_ctx *fc = walk->private;
	struct dmm_pte_table *dt;
	int r = 0;

	if (pmd_is_leaf(pmd))
		return copy_pmd_leaf(t, pmd, addr, end, walk);
	walk->action = ACTION_CONTINUE;
	dt = pte_alloc(fc->child, addr);
	if (!dt)
		return -ENOMEM;
	ptl_lock(t);
	ptl_lock(dt);
	for (; addr < end && !r; addr += PAGE_SIZE) {
		_Atomic pte_t *src = pte_slot(t, addr);
		pte_t e = pte_get(src);

		if (pte_none(e))
			continue;
		if (pte_present(e))
			r = copy_present_pte(fc, src, pte_slot(dt, addr), addr, e);
		else if (is_device_exclusive_entry(e))
			r = copy_exclusive_pte(fc, t, pte_slot(dt, addr), addr, e);
		else
			copy_nonpresent_pte(fc, src, pte_slot(dt, addr), e);
	}
	ptl_unlock(dt);
	ptl_unlock(t);
	return r;
}

static const struct mm_walk_ops copy_walk_ops = { .pmd_entry = copy_pte_range };

static int dup_vma(struct dmm_mm *parent, struct dmm_mm *child, struct dmm_vma *v)
{
	struct fork_ctx fc = { .child = child, .src_vma = v };
	struct dmm_vma *nv = vma_alloc(child, v->start, v->end, v->flags, v->file, v->pgoff);
	int r;

	if (!nv)
		return -ENOMEM;
	nv->anon_vma = v->anon_vma;
	if (vma_link(child, nv)) {
		free(nv);
		return -ENOMEM;
	}
	if (!v->anon_vma)
		return 0; /* nothing private: the child refaults from the object */
	fc.dst_vma = nv;
	if (is_cow_mapping(v->flags)) {
		struct dmm_mmu_notifier_range nr;

		mmu_notify(DMM_MMU_NOTIFY_PROTECTION_PAGE, parent, v->start, v->end, NULL, &nr);
		r = walk_page_range(parent, v->start, v->end, &copy_walk_ops, &fc);
		mmu_notifier_invalidate_range_end(&nr);
	} else {
		r = walk_page_range(parent, v->start, v->end, &copy_walk_ops, &fc);
	}
	dmm_stat_add(parent->sys, fork_pte_shared, fc.shared);
	dmm_stat_add(parent->sys, fork_page_copied, fc.copied);
	return r;
}

int dmm_fork(struct dmm_mm *parent, struct dmm_mm **out)
{
	struct dmm_mm *child;
	struct dmm_vma *v;
	int r = 0;

	if (!parent || !out)
		return -EINVAL;
	child = mm_alloc(parent->sys);
	if (!child)
		return -ENOMEM;
	mmap_write_lock(parent);
	mmap_write_lock(child); /* nobody else sees it yet; as dup_mmap, for the callees' contracts */
	child->mmap_base = parent->mmap_base;
	atomic_fetch_add(&parent->write_protect_seq, 1); /* odd: GUP-fast pins back off */
	for (v = vma_tree_first(&parent->vmas); v && !r; v = vma_next(parent, v))
		if (!(v->flags & VM_DONTCOPY))
			r = dup_vma(parent, child, v);
	atomic_fetch_add(&parent->write_protect_seq, 1);
	mmap_write_unlock(parent);
	if (r)
		exit_mmap(child);
	mmap_write_unlock(child);
	if (r) {
		mm_free(child);
		dmm_stat_inc(parent->sys, fork_failed);
		return r;
	}
	mm_register(child);
	dmm_stat_inc(parent->sys, fork);
	*out = child;
	return 0;
}
