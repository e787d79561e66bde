/* SPDX-License-Identifier: MIT */
/*
 * hmm_range_fault (semantics.md §3.13): report, and fault where asked, the
 * CPU's view of a range for a device mirror. The caller holds mmap_lock for
 * read and the interval-notifier sequence from read_begin; a moved sequence
 * ends the call with -EBUSY so that the caller retries. After each fault
 * (or wait for a migration) the walk restarts at the faulting address:
 * outputs before it are final, words after it still hold their inputs.
 */
#include "internal.h"

#define HMM_BUSY 1	 /* internal: walk again from *addr */
#define HMM_NEED_FAULT 2 /* internal: the walk stopped at w->addr, which needs a fault */

struct hmm_walk {
	struct dmm_hmm_range *range;
	struct dmm_mm *mm;
	uint64_t addr; /* the next address to report */
};

static uint64_t *pfn_word(struct hmm_walk *w, uint64_t addr)
{
	return &w->range->hmm_pfns[(addr - w->range->start) >> PAGE_SHIFT];
}

static uint64_t requested(struct hmm_walk *w, uint64_t addr)
{
	struct dmm_hmm_range *r = w->range;

	return ((*pfn_word(w, addr) & r->pfn_flags_mask) | r->default_flags) &
	       (DMM_HMM_PFN_REQ_FAULT | DMM_HMM_PFN_REQ_WRITE);
}

static bool need_fault(uint64_t req, uint64_t cpu)
{
	if (!(req & DMM_HMM_PFN_REQ_FAULT))
		return false;
	return !(cpu & DMM_HMM_PFN_VALID) || ((req & DMM_HMM_PFN_REQ_WRITE) && !(cpu & DMM_HMM_PFN_WRITE));
}

static void set_word(struct hmm_walk *w, uint64_t addr, uint64_t out)
{
	uint64_t *word = pfn_word(w, addr);

	*word = (*word & DMM_HMM_PFN_INOUT_FLAGS) | out;
}

/* Pages with no usable VMA: ERROR, or -EFAULT if a fault is requested. */
static int hmm_error_range(struct hmm_walk *w, uint64_t end)
{
	for (uint64_t a = w->addr; a < end; a += PAGE_SIZE)
		if (requested(w, a) & DMM_HMM_PFN_REQ_FAULT)
			return -EFAULT;
	for (; w->addr < end; w->addr += PAGE_SIZE)
		set_word(w, w->addr, DMM_HMM_PFN_ERROR);
	return 0;
}

/* The CPU's state of one entry as hmm output (0 = not valid); *owned says
 * it is a device-private page of dev_private_owner. PTL held. */
static uint64_t cpu_state(struct hmm_walk *w, pte_t e, bool *owned)
{
	struct dmm_page *p;

	if (pte_present(e)) {
		if (pte_protnone(e))
			return 0;
		return pte_pfn(e) | DMM_HMM_PFN_VALID | (pte_write(e) ? DMM_HMM_PFN_WRITE : 0);
	}
	if (!is_device_private_entry(e))
		return 0; /* none, exclusive, migration: fault (or wait) if asked */
	p = pfn_to_page(w->mm->sys, entry_pfn(e));
	if (p->pgmap->owner != w->range->dev_private_owner)
		return 0;
	*owned = true;
	return entry_pfn(e) | DMM_HMM_PFN_VALID | (is_writable_device_private_entry(e) ? DMM_HMM_PFN_WRITE : 0);
}

static int hmm_do_fault(struct hmm_walk *w, struct dmm_vma *vma, uint64_t req)
{
	bool write = req & DMM_HMM_PFN_REQ_WRITE;
	vm_fault_t r;

	if (write && !(vma->flags & VM_WRITE))
		return -EPERM;
	r = handle_mm_fault(vma, w->addr, FAULT_FLAG_REMOTE | (write ? FAULT_FLAG_WRITE : 0));
	if (r & VM_FAULT_ERROR)
		return vm_fault_to_errno(r);
	dmm_stat_inc(w->mm->sys, hmm_faults);
	return HMM_BUSY;
}

/* One page whose CPU state is @cpu: report it, or stop for a fault. */
static int hmm_report(struct hmm_walk *w, uint64_t addr, uint64_t cpu, bool owned)
{
	/* An owned device-private page is reported, never faulted, even
	 * for a write to a read-only entry (the §5.3 gap Linux has). */
	if (!owned && need_fault(requested(w, addr), cpu))
		return HMM_NEED_FAULT;
	set_word(w, addr, cpu);
	w->addr = addr + PAGE_SIZE;
	return 0;
}

/* pte_entry, under the PTL. The walk goes in address order from w->addr,
 * so a stop leaves w->addr at the page that needs the fault. */
static int hmm_pte(_Atomic pte_t *pte, pte_t e, uint64_t addr, struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;
	bool owned = false;
	uint64_t cpu = cpu_state(w, e, &owned);

	(void)pte;
	return hmm_report(w, addr, cpu, owned);
}

static int hmm_hole(uint64_t addr, uint64_t next, int level, struct mm_walk *walk)
{
	int r = 0;

	(void)level;
	for (; addr < next && !r; addr += PAGE_SIZE)
		r = hmm_report(walk->private, addr, 0, false);
	return r;
}

/*
 * pmd_entry (hmm_vma_handle_pmd, large-folios.md §3.9): a present PMD leaf,
 * a PMD_THP or the huge zero PMD, is reported from the PMD without splitting
 * it: each page of [addr, next) gets its pfn, VALID, WRITE iff the PMD is
 * writable, and map order 9, even where [addr, next) covers only part of the
 * PMD. A page that needs a fault stops the walk there, and the fault goes to
 * the PMD-level handlers (a write on a read-only PMD: §3.2; after a split the
 * walk again reports order 0). A non-present leaf goes down to the walker's
 * split; a table to the PTEs.
 */
static int hmm_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t next, struct mm_walk *walk)
{
	struct hmm_walk *w = walk->private;
	uint64_t flags;
	int r = 0;

	if (!pmd_is_leaf(pmd))
		return 0;
	ptl_lock(t);
	pmd = pmd_get(t);
	if (!pmd_leaf_present(pmd)) {
		ptl_unlock(t);
		/* A non-present leaf: the split; anything else: look again. */
		walk->action = pmd_is_leaf(pmd) ? ACTION_SUBTREE : ACTION_AGAIN;
		return 0;
	}
	walk->action = ACTION_CONTINUE;
	flags = pte_protnone(pmd) ? 0 :
		DMM_HMM_PFN_VALID | (pte_write(pmd) ? DMM_HMM_PFN_WRITE : 0) |
		((uint64_t)HPAGE_PMD_ORDER << DMM_HMM_PFN_ORDER_SHIFT);
	for (; addr < next && !r; addr += PAGE_SIZE)
		r = hmm_report(w, addr, flags ? pmd_pfn_at(pmd, addr) | flags : 0, false);
	ptl_unlock(t);
	return r;
}

static const struct mm_walk_ops hmm_walk_ops = {
	.pmd_entry = hmm_pmd,
	.pte_entry = hmm_pte,
	.pte_hole = hmm_hole,
	.flags = MM_WALK_PTL,
};

/* Walk one VMA's part [w->addr, end). */
static int hmm_walk_vma(struct hmm_walk *w, struct dmm_vma *vma, uint64_t end)
{
	int r;

	if ((vma->flags & (VM_IO | VM_PFNMAP)) || !(vma->flags & VM_READ))
		return hmm_error_range(w, end);
	r = walk_page_range(w->mm, w->addr, end, &hmm_walk_ops, w);
	if (r == HMM_NEED_FAULT)
		return hmm_do_fault(w, vma, requested(w, w->addr));
	return r;
}

static int hmm_walk(struct hmm_walk *w)
{
	uint64_t end = w->range->end;

	while (w->addr < end) {
		struct dmm_vma *vma = find_vma(w->mm, w->addr);
		int r;

		if (!vma || vma->start > w->addr) {
			r = hmm_error_range(w, vma ? DMM_MIN(vma->start, end) : end);
			if (r)
				return r;
			continue;
		}
		r = hmm_walk_vma(w, vma, DMM_MIN(vma->end, end));
		if (r)
			return r;
	}
	return 0;
}

int dmm_hmm_range_fault(struct dmm_hmm_range *range)
{
	struct hmm_walk w;
	int r;

	if (!range || !range->notifier || !range->notifier->mm || !range->hmm_pfns ||
	    !PAGE_ALIGNED(range->start) || !PAGE_ALIGNED(range->end) || range->start >= range->end ||
	    range->end > DMM_TASK_SIZE)
		return -EINVAL;
	mmap_assert_locked(range->notifier->mm);
	w.range = range;
	w.mm = range->notifier->mm;
	w.addr = range->start;
	do {
		if (dmm_mmu_interval_check_retry(range->notifier, range->notifier_seq))
			return -EBUSY;
		r = hmm_walk(&w);
	} while (r == HMM_BUSY);
	return r;
}
