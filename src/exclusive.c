/* SPDX-License-Identifier: MIT */
/*
 * Device-exclusive entries (semantics.md §3.15): a device takes a page of
 * anonymous memory for itself (atomics); the CPU PTE becomes a
 * DEVICE_EXCLUSIVE entry, so that any CPU access, GUP, hmm fault, fork or
 * migration revokes the device's access (fault.c, fork.c, rmap.c restore
 * or convert it) and fires an invalidation the device must honour.
 */
#include "internal.h"

/* Replace the writable present entry of p at addr by a device-exclusive
 * one. false: the entry changed under us (retry from the GUP). */
static bool install_exclusive(struct dmm_mm *mm, uint64_t addr, struct dmm_page *p)
{
	struct dmm_pte_table *t = pte_lookup(mm, addr);
	uint64_t pfn = page_to_pfn(mm->sys, p);
	_Atomic pte_t *slot;
	pte_t e;
	bool ok;

	lockdep_assert_page_locked(p);
	if (!t)
		return false;
	slot = pte_slot(t, addr);
	ptl_lock(t);
	e = pte_get(slot);
	ok = pte_present(e) && !pte_special(e) && pte_pfn(e) == pfn && pte_write(e);
	if (ok) {
		if (pte_dirty(e))
			page_set(p, PG_dirty);
		/* rmap, mapcount, the mapping's reference and rss are unchanged. */
		pte_set(slot, make_device_exclusive_entry(pfn, pte_soft_dirty(e) ? _LEAF_SOFT_DIRTY : 0));
	}
	ptl_unlock(t);
	return ok;
}

int dmm_make_device_exclusive(struct dmm_mm *mm, uint64_t addr, void *owner, uint64_t *pfn)
{
	if (!mm || !pfn)
		return -EINVAL;
	mmap_assert_locked(mm);
	addr &= PAGE_MASK;
	for (;;) {
		struct dmm_mmu_notifier_range r;
		struct dmm_page *p;
		uint64_t got;
		int err;

		/* A remote write fault: breaks CoW, migrates a device-private
		 * page back, restores an earlier exclusive entry; a PMD leaf is
		 * split first (large-folios.md §3.10). */
		err = gup_one(mm, addr, DMM_FOLL_GET | DMM_FOLL_WRITE | FOLL_SPLIT_PMD, &got);
		if (err)
			return err;
		p = pfn_to_page(mm->sys, got);
		if (!page_is_anon(p)) {
			put_page(mm->sys, p);
			return -EOPNOTSUPP;
		}
		lock_page(mm->sys, p);
		mmu_notify(DMM_MMU_NOTIFY_EXCLUSIVE, mm, addr, addr + PAGE_SIZE, owner, &r);
		if (install_exclusive(mm, addr, p)) {
			mmu_notifier_invalidate_range_end(&r);
			dmm_stat_inc(mm->sys, exclusive_made);
			*pfn = got;
			return 0; /* locked, with the GUP reference */
		}
		mmu_notifier_invalidate_range_end(&r);
		unlock_page(mm->sys, p);
		put_page(mm->sys, p);
	}
}
