/* SPDX-License-Identifier: MIT */
/*
 * The page walker: one descent of the page table for every walker, in the
 * shape of the kernel's walk_page_range and mm_walk_ops. The contract is
 * at struct mm_walk_ops (internal.h); docs/design.md §5 explains it.
 *
 * Each PMD slot is dispatched in one place, walk_pmd_slot: NONE (or no
 * table) is a hole; otherwise pmd_entry sees the slot word first and
 * chooses; a slot the walk goes down into must be a PTE table. A leaf
 * there is where a walker that only knows PTEs needs the PMD split
 * (walk_pmd_split).
 */
#include "internal.h"

/* The split point: the walk reached PTE level on a PMD leaf. A walker
 * that does not handle the leaf in its pmd_entry gets it split
 * (split_huge_pmd, large-folios.md §2.3) and goes on at PTE level: always
 * correct, if not the kernel's PMD-level operation. */
static void walk_pmd_split(struct dmm_pte_table *t, uint64_t addr, struct mm_walk *walk)
{
	split_huge_pmd(walk->mm, t, addr);
}

static int walk_pte_range(struct dmm_pte_table *t, uint64_t addr, uint64_t end, struct mm_walk *walk)
{
	int (*pte_entry)(_Atomic pte_t *, pte_t, uint64_t, struct mm_walk *) = walk->ops->pte_entry;
	bool lock = walk->ops->flags & MM_WALK_PTL;
	int r = 0;

	if (lock)
		ptl_lock(t);
	for (; addr < end; addr += PAGE_SIZE) {
		_Atomic pte_t *pte = pte_slot(t, addr);

		r = pte_entry(pte, pte_get(pte), addr, walk);
		if (r)
			break;
	}
	if (lock)
		ptl_unlock(t);
	return r;
}

/* One PMD slot of dir, [addr, next) within it. */
static int walk_pmd_slot(struct dmm_pt_dir *dir, uint64_t addr, uint64_t next, struct mm_walk *walk)
{
	const struct mm_walk_ops *ops = walk->ops;
	struct dmm_pte_table *t;
	pte_t pmd;
	int r;

again:
	t = atomic_load_explicit(&dir->ent[pt_index(addr, 1)], memory_order_acquire);
	pmd = t ? pmd_get(t) : PMD_NONE;
	if (pmd_none(pmd))
		return ops->pte_hole ? ops->pte_hole(addr, next, 1, walk) : 0;
	walk->action = ACTION_SUBTREE;
	if (ops->pmd_entry) {
		r = ops->pmd_entry(t, pmd, addr, next, walk);
		if (r)
			return r;
		if (walk->action == ACTION_AGAIN)
			goto again;
		if (walk->action == ACTION_CONTINUE)
			return 0;
	} else if (!ops->pte_entry) {
		return 0;
	}
	if (unlikely(pmd_is_leaf(pmd))) {
		walk_pmd_split(t, addr, walk);
		goto again;
	}
	return ops->pte_entry ? walk_pte_range(t, addr, next, walk) : 0;
}

static int walk_dir(struct dmm_pt_dir *dir, int level, uint64_t addr, uint64_t end, struct mm_walk *walk)
{
	do {
		uint64_t span = pt_level_span(level);
		uint64_t next = (addr & ~(span - 1)) + span;
		int r;

		if (next > end || next == 0)
			next = end;
		if (level == 1) {
			r = walk_pmd_slot(dir, addr, next, walk);
		} else {
			void *child = atomic_load_explicit(&dir->ent[pt_index(addr, level)], memory_order_acquire);

			if (child)
				r = walk_dir(child, level - 1, addr, next, walk);
			else
				r = walk->ops->pte_hole ? walk->ops->pte_hole(addr, next, level, walk) : 0;
		}
		if (r)
			return r;
		addr = next;
	} while (addr < end);
	return 0;
}

int walk_page_range(struct dmm_mm *mm, uint64_t start, uint64_t end, const struct mm_walk_ops *ops,
		    void *private)
{
	struct mm_walk walk = { .ops = ops, .mm = mm, .private = private };

	DMM_BUG_ON(end > PGTABLE_TOP);
	if (start >= end)
		return 0;
	return walk_dir(mm->pgd, PT_LEVELS - 1, start, end, &walk);
}
