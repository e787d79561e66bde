/* SPDX-License-Identifier: MIT */
/*
 * mprotect (semantics.md §3.5): new VMA protections and change_protection
 * over the entries: write permission removed from present entries,
 * writable device-private entries downgraded on any change, writable
 * migration entries downgraded, device-exclusive entries left alone. A
 * present PMD leaf over a whole PMD range changes in place
 * (large-folios.md §3.5); a partial range splits it first.
 */
#include "internal.h"

struct change_prot {
	struct dmm_vma *vma;
	unsigned long newflags;
	uint64_t changed;
};

/* May a present entry be made writable at mprotect time (rather than by a
 * later write fault)? Exclusive anonymous pages already dirty, and shared
 * pages where no dirty tracking is wanted or the entry is dirty. */
static bool can_change_pte_writable(struct dmm_system *sys, struct dmm_vma *vma, pte_t e)
{
	struct dmm_page *p;

	if (pte_special(e))
		return false;
	p = pfn_to_page(sys, pte_pfn(e));
	if (vma->flags & VM_SHARED)
		return pte_dirty(e) || (vma->file && vma->file->shmem);
	return page_is_anon(p) && page_test(p, PG_anon_exclusive) && pte_dirty(e);
}

static pte_t change_one(struct dmm_system *sys, struct change_prot *cp, pte_t e)
{
	if (pte_present(e)) {
		e = (e & ~_PTE_PROT_BITS) | vm_prot_bits(cp->newflags);
		if (!(cp->newflags & VM_WRITE))
			return pte_wrprotect(e);
		if (!pte_write(e) && can_change_pte_writable(sys, cp->vma, e))
			return pte_mkwrite(e);
		return e;
	}
	if (is_writable_device_private_entry(e))
		return make_device_private_entry(entry_pfn(e), false, leaf_flag_bits(e) & ~_LEAF_SOFT_DIRTY);
	if (is_writable_migration_entry(e)) {
		struct dmm_page *p = pfn_to_page(sys, entry_pfn(e));

		return make_migration_entry(page_is_anon(p) ? LEAF_MIGRATION_READ_EXCLUSIVE : LEAF_MIGRATION_READ,
					    entry_pfn(e), leaf_flag_bits(e));
	}
	return e; /* read-only device-private, device-exclusive, other migration */
}

/*
 * May a present PMD be made writable at mprotect time
 * (can_change_pmd_writable)? A PMD_THP whose head is exclusive: the huge
 * zero PMD never. devmm has no soft-dirty or uffd-wp tracking to wait for.
 */
static bool can_change_pmd_writable(struct dmm_system *sys, pte_t pmd)
{
	struct dmm_page *head;

	if (is_huge_zero_pmd(sys, pmd) || pte_protnone(pmd))
		return false;
	head = pfn_to_page(sys, pte_pfn(pmd));
	return page_is_anon(head) && page_test(head, PG_anon_exclusive);
}

/*
 * A present PMD leaf over the whole PMD range (change_huge_pmd,
 * large-folios.md §3.5): the new protection in place, under the PTL. A
 * partial range, or a leaf that is not present, goes down to the walker's
 * split and the PTE rules.
 */
static int change_huge_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end, struct mm_walk *walk)
{
	struct dmm_system *sys = walk->mm->sys;
	struct change_prot *cp = walk->private;
	pte_t e;

	if (!pmd_leaf_present(pmd) || (addr & ~HPAGE_PMD_MASK) || end - addr != HPAGE_PMD_SIZE)
		return 0;
	ptl_lock(t);
	pmd = pmd_get(t);
	if (!pmd_leaf_present(pmd)) {
		ptl_unlock(t);
		walk->action = ACTION_AGAIN;
		return 0;
	}
	e = (pmd & ~_PTE_PROT_BITS) | vm_prot_bits(cp->newflags);
	if (!(cp->newflags & VM_WRITE))
		e = pte_wrprotect(e);
	else if (!pte_write(e) && can_change_pmd_writable(sys, e))
		e = pte_mkwrite(e);
	if (e != pmd) {
		pmd_set(t, e);
		cp->changed++;
	}
	ptl_unlock(t);
	walk->action = ACTION_CONTINUE;
	return 0;
}

/* One PMD slot (pmd_entry): its PTEs under the PTL. */
static int change_pte_range(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end,
			    struct mm_walk *walk)
{
	struct dmm_system *sys = walk->mm->sys;
	struct change_prot *cp = walk->private;

	if (pmd_is_leaf(pmd))
		return change_huge_pmd(t, pmd, addr, end, walk);
	ptl_lock(t);
	for (; addr < end; addr += PAGE_SIZE) {
		_Atomic pte_t *slot = pte_slot(t, addr);
		pte_t e = pte_get(slot), ne;

		if (pte_none(e))
			continue;
		ne = change_one(sys, cp, e);
		if (ne != e) {
			pte_set(slot, ne);
			cp->changed++;
		}
	}
	ptl_unlock(t);
	walk->action = ACTION_CONTINUE;
	return 0;
}

static const struct mm_walk_ops change_walk_ops = { .pmd_entry = change_pte_range };

/*
 * The VMA's flags after the change (mprotect_fixup). Making a private
 * mapping writable charges it (VM_ACCOUNT) unless it already is; making it
 * read-only keeps the charge, since its anonymous pages may still need the
 * memory, except on an anonymous VMA that has none yet (no anon_vma). A
 * VMA whose protection does not change keeps its flags as they are.
 */
static unsigned long new_vm_flags(const struct dmm_vma *v, int prot)
{
	unsigned long f = v->flags & ~VM_ACCESS_FLAGS;

	if (prot & DMM_PROT_READ)
		f |= VM_READ;
	if (prot & DMM_PROT_WRITE) {
		f |= VM_WRITE;
		if (!(v->flags & (VM_ACCOUNT | VM_WRITE | VM_SHARED)))
			f |= VM_ACCOUNT;
	} else if ((v->flags & VM_ACCOUNT) && vma_is_anonymous(v) && !v->anon_vma && f != v->flags) {
		f &= ~VM_ACCOUNT;
	}
	return f;
}

/*
 * How far the change reaches, as Linux's VMA loop (do_mprotect_pkey) goes:
 * VMA after VMA from start, stopping at the first hole (-ENOMEM) or at the
 * first VMA that may not get the protection (-EACCES). *stop is where it
 * stopped (start: nothing is changed); *change tells whether some VMA
 * before it gets new flags.
 */
static int mprotect_reach(struct dmm_mm *mm, uint64_t start, uint64_t end, int prot, uint64_t *stop,
			  bool *change)
{
	struct dmm_vma *v = find_vma(mm, start);
	uint64_t at = start;
	int r = 0;

	*change = false;
	for (; at < end; v = vma_next(mm, v)) {
		if (!v || v->start > at) {
			r = -ENOMEM;
			break;
		}
		if ((prot & DMM_PROT_WRITE) && !(v->flags & VM_MAYWRITE)) {
			r = -EACCES;
			break;
		}
		if (new_vm_flags(v, prot) != v->flags)
			*change = true;
		at = v->end;
	}
	*stop = DMM_MIN(at, end);
	return r;
}

int dmm_mprotect(struct dmm_mm *mm, uint64_t addr, uint64_t len, int prot)
{
	struct dmm_vma *v;
	uint64_t end;
	bool change;
	int r, err;

	if (!mm || !(len = user_range_len(addr, len)) || (prot & ~(DMM_PROT_READ | DMM_PROT_WRITE)))
		return -EINVAL;
	mmap_write_lock(mm);
	/* The VMAs before a hole or a forbidden VMA are changed, then the
	 * error is returned, as in Linux. */
	err = mprotect_reach(mm, addr, addr + len, prot, &end, &change);
	if (!change) {
		r = err;
		goto out;
	}
	r = vma_split_range(mm, addr, end);
	if (r) {
		vma_merge_range(mm, addr, end);
		goto out;
	}
	for_each_vma_range(mm, v, addr, end) {
		struct change_prot cp = { .vma = v, .newflags = new_vm_flags(v, prot) };

		if (cp.newflags == v->flags)
			continue;
		struct dmm_mmu_notifier_range r;

		vma_flags_write(v, cp.newflags);
		mmu_notify(DMM_MMU_NOTIFY_PROTECTION_VMA, mm, v->start, v->end, NULL, &r);
		walk_page_range(mm, v->start, v->end, &change_walk_ops, &cp);
		mmu_notifier_invalidate_range_end(&r);
		dmm_stat_add(mm->sys, mprotect_pte, cp.changed);
	}
	vma_merge_range(mm, addr, end);
	r = err;
out:
	mmap_write_unlock(mm);
	dmm_stat_inc(mm->sys, mprotect);
	return r;
}
