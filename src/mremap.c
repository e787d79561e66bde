/* SPDX-License-Identifier: MIT */
/*
 * mremap to a fixed target (semantics.md §3.6), of one VMA or, for a pure
 * move, of every VMA piece of the range: every entry — present,
 * device-private, device-exclusive, migration — moves verbatim to the new
 * address. The new VMA keeps the old one's anon_vma and, if it has one,
 * its pgoff, so every page keeps its reverse-map index and needs no
 * update; a never-faulted anonymous VMA takes the pgoff of its new
 * address. With DONTUNMAP the old VMA stays, empty; if all of it moved,
 * it loses its anon_vma. A PMD leaf moves whole when both addresses are
 * 2 MiB aligned with 2 MiB to go and the destination slot is empty;
 * otherwise it is split first and its PTEs move (large-folios.md §3.6).
 */
#include "internal.h"

/* Allocate every destination PMD slot's table up front, so that the move
 * itself cannot fail half-way. The slots stay as they are (an empty one
 * may still receive a whole PMD); the PTE moves make them tables. */
static int prealloc_tables(struct dmm_mm *mm, uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a < start + len; a = pte_table_end(a, start + len))
		if (!pmd_alloc(mm, a))
			return -ENOMEM;
	return 0;
}

struct move_ctx {
	uint64_t old_start, new_start;
	uint64_t moved;
};

static uint64_t move_target(const struct move_ctx *mc, uint64_t addr)
{
	return mc->new_start + (addr - mc->old_start);
}

/* Does the PMD leaf over [addr, end) move whole (get_extent, move_huge_pmd)?
 * Both addresses 2 MiB aligned with 2 MiB to go, and the destination slot
 * empty. */
static bool pmd_moves_whole(struct dmm_mm *mm, const struct move_ctx *mc, uint64_t addr, uint64_t end)
{
	uint64_t to = move_target(mc, addr);
	pte_t dst;

	if ((addr & ~HPAGE_PMD_MASK) || (to & ~HPAGE_PMD_MASK) || end - addr != HPAGE_PMD_SIZE)
		return false;
	pmd_lookup(mm, to, &dst);
	return pmd_none(dst);
}

/* pmd_entry of the pass before the move: split every leaf that cannot move
 * whole (large-folios.md §3.6); its PTEs then move one by one. */
static int split_unmovable_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end,
			       struct mm_walk *walk)
{
	walk->action = ACTION_CONTINUE;
	if (pmd_is_leaf(pmd) && !pmd_moves_whole(walk->mm, walk->private, addr, end))
		split_huge_pmd(walk->mm, t, addr);
	return 0;
}

static const struct mm_walk_ops split_walk_ops = { .pmd_entry = split_unmovable_pmd };

/* A PMD leaf of any kind moving whole (move_huge_pmd): the entry, verbatim,
 * into the empty destination slot, whose table becomes its deposit; the
 * source slot becomes empty. */
static int move_huge_pmd(struct dmm_pte_table *t, uint64_t addr, struct mm_walk *walk)
{
	struct move_ctx *mc = walk->private;
	pte_t dpmd;
	struct dmm_pte_table *dt = pmd_lookup(walk->mm, move_target(mc, addr), &dpmd); /* preallocated */

	DMM_BUG_ON(!dt || dt == t);
	ptl_lock(t);
	ptl_lock(dt);
	DMM_BUG_ON(!pmd_none(pmd_get(dt)));
	pmd_set(dt, pmd_get(t));
	pmd_set(t, PMD_NONE);
	ptl_unlock(dt);
	ptl_unlock(t);
	mc->moved++;
	walk->action = ACTION_CONTINUE;
	return 0;
}

/* One PMD slot of the source (pmd_entry): move its entries under the PTLs. */
static int move_pte_range(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end,
			  struct mm_walk *walk)
{
	struct dmm_mm *mm = walk->mm;
	struct move_ctx *mc = walk->private;

	if (pmd_is_leaf(pmd))
		return move_huge_pmd(t, addr, walk); /* the pass before split the others */
	/* The destination slots become PTE tables (preallocated: no failure). */
	DMM_BUG_ON(!pte_alloc(mm, move_target(mc, addr)) || !pte_alloc(mm, move_target(mc, end - PAGE_SIZE)));
	ptl_lock(t);
	for (; addr < end; addr += PAGE_SIZE) {
		_Atomic pte_t *src = pte_slot(t, addr);
		pte_t e = pte_get(src);
		uint64_t to = move_target(mc, addr);
		struct dmm_pte_table *dt;

		if (pte_none(e))
			continue;
		dt = pte_lookup(mm, to); /* preallocated */
		if (dt != t)
			ptl_lock(dt);
		DMM_BUG_ON(!pte_none(pte_get(pte_slot(dt, to))));
		pte_set(pte_slot(dt, to), e);
		pte_set(src, 0);
		if (dt != t)
			ptl_unlock(dt);
		mc->moved++;
	}
	ptl_unlock(t);
	walk->action = ACTION_CONTINUE;
	return 0;
}

static const struct mm_walk_ops move_walk_ops = { .pmd_entry = move_pte_range };

static int check_args(uint64_t old, uint64_t *old_len, uint64_t *new_len, int flags, uint64_t new_addr)
{
	const int fixed = DMM_MREMAP_MAYMOVE | DMM_MREMAP_FIXED;

	if ((flags & ~(fixed | DMM_MREMAP_DONTUNMAP)) || (flags & fixed) != fixed)
		return -EINVAL;
	if (!(*old_len = user_range_len(old, *old_len)) || !(*new_len = user_range_len(new_addr, *new_len)))
		return -EINVAL;
	if ((flags & DMM_MREMAP_DONTUNMAP) && *old_len != *new_len)
		return -EINVAL;
	if (new_addr < DMM_MMAP_MIN)
		return -EINVAL;
	if (new_addr < old + *old_len && old < new_addr + *new_len)
		return -EINVAL; /* overlapping */
	return 0;
}

/* The move itself, mmap_lock held for write; old range validated. */
static int move_vma(struct dmm_mm *mm, uint64_t old, uint64_t len, uint64_t new_addr,
		    uint64_t new_len, bool dontunmap)
{
	struct dmm_vma *vma, *nv;
	struct move_ctx mc = { .old_start = old, .new_start = new_addr };
	bool whole;
	int r;

	mmap_assert_write_locked(mm);
	vma = vma_lookup(mm, old);
	whole = vma->start == old && vma->end == old + len;
	r = prealloc_tables(mm, new_addr, len);
	if (!r)
		r = vma_split_range(mm, old, old + len);
	if (r)
		goto undo_split;
	vma = vma_lookup(mm, old);
	/* copy_vma: an anonymous VMA never faulted (no anon_vma, so no page
	 * has an index in it) takes the pgoff of its new place, as if mapped
	 * there, and can merge with its new neighbours; one with anonymous
	 * pages keeps its pgoff, so that their indices stay valid. */
	nv = vma_alloc(mm, new_addr, new_addr + new_len, vma->flags, vma->file,
		       vma_is_anonymous(vma) && !vma->anon_vma ? new_addr >> PAGE_SHIFT : vma->pgoff);
	if (!nv) {
		r = -ENOMEM;
		goto undo_split;
	}
	nv->anon_vma = vma->anon_vma;
	if (vma_link(mm, nv)) {
		free(nv);
		r = -ENOMEM;
		goto undo_split;
	}
	{
		struct dmm_mmu_notifier_range r;

		/* The PMDs that cannot move whole split first, outside the
		 * rmap locks (a split notifies). */
		walk_page_range(mm, old, old + len, &split_walk_ops, &mc);
		mmu_notify(DMM_MMU_NOTIFY_UNMAP, mm, old, old + len, NULL, &r);
		/* Under the rmap locks: a walker must find every entry either at
		 * its old or at its new address (take_rmap_locks). */
		rmap_lock_vma(vma);
		walk_page_range(mm, old, old + len, &move_walk_ops, &mc);
		rmap_unlock_vma(vma);
		mmu_notifier_invalidate_range_end(&r);
	}
	dmm_stat_add(mm->sys, mremap_pte, mc.moved);
	if (!dontunmap) {
		vma_unlink_free(mm, vma);
		free_pgtables_hole(mm, old, old + len);
	} else if (whole) {
		/* dontunmap_complete: the old VMA, all of it moved, keeps no
		 * anon_vma link, so a later fork does not copy it and it
		 * merges like a fresh VMA. It keeps VM_ACCOUNT, as the live
		 * 6.18 kernel does. Like Linux, it is not merged now. */
		vma_drop_anon_vma(vma);
	}
	vma_merge_range(mm, new_addr, new_addr + new_len);
	if (!dontunmap || !whole)
		vma_merge_range(mm, old, old + len); /* glue a split back */
	return 0;
undo_split:
	/* A failure changes nothing: glue the pieces of a split back, and
	 * free the tables allocated for the target. */
	vma_merge_range(mm, old, old + len);
	free_pgtables_hole(mm, new_addr, new_addr + new_len);
	return r;
}

/*
 * A move of old_len == new_len to a fixed address may span several VMAs
 * and holes (Linux >= 6.17, "permit moves across multiple VMAs"): each VMA
 * piece moves on its own, as a one-VMA mremap would (its part of the target
 * unmapped first), to the same offset in the target range. Holes move
 * nothing and leave the target beneath them alone. An error stops the
 * walk; the pieces before it stay moved, as in Linux.
 */
static int move_pieces(struct dmm_mm *mm, uint64_t old, uint64_t len, uint64_t new_addr, bool dontunmap)
{
	uint64_t end = old + len, at = old;
	struct dmm_vma *v;
	int r = 0;

	while (!r && at < end && (v = find_vma(mm, at)) && v->start < end) {
		uint64_t s = DMM_MAX(at, v->start), e = DMM_MIN(end, v->end);
		uint64_t to = new_addr + (s - old);

		r = do_munmap(mm, to, e - s);
		if (!r)
			r = move_vma(mm, s, e - s, to, e - s, dontunmap);
		at = e;
	}
	return r;
}

int dmm_mremap(struct dmm_mm *mm, uint64_t old, uint64_t old_len, uint64_t new_len, int flags,
	       uint64_t new_addr)
{
	struct dmm_vma *vma;
	int r;

	if (!mm)
		return -EINVAL;
	r = check_args(old, &old_len, &new_len, flags, new_addr);
	if (r)
		return r;
	mmap_write_lock(mm);
	/* Only a range that starts in a hole fails at once. */
	vma = vma_lookup(mm, old);
	if (!vma) {
		r = -EFAULT;
		goto out;
	}
	if (old_len == new_len) {
		r = move_pieces(mm, old, old_len, new_addr, flags & DMM_MREMAP_DONTUNMAP);
		goto out;
	}
	/* Resizing needs one VMA: all of the old range when it grows, the
	 * part that stays when it shrinks. Checked before anything changes. */
	if (old + DMM_MIN(old_len, new_len) > vma->end) {
		r = -EFAULT;
		goto out;
	}
	r = do_munmap(mm, new_addr, new_len);
	if (!r && new_len < old_len) {
		r = do_munmap(mm, old + new_len, old_len - new_len);
		old_len = new_len;
	}
	if (!r)
		r = move_vma(mm, old, old_len, new_addr, new_len, false);
out:
	mmap_write_unlock(mm);
	rcu_drain_if_due();
	dmm_stat_inc(mm->sys, mremap);
	return r;
}
