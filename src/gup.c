/* SPDX-License-Identifier: MIT */
/*
 * get_user_pages / pin_user_pages (semantics.md §3.7): walk each page,
 * and where the entry does not satisfy the request, fault (a write fault
 * for FOLL_WRITE, an unshare fault for a read-only pin of a shared
 * anonymous page) and look again. FOLL_GET takes one reference; FOLL_PIN
 * takes GUP_PIN_COUNTING_BIAS references and one exact pin. The zero page
 * is returned without a reference: it is never counted.
 */
#include "internal.h"

#define FOLL_KNOWN (DMM_FOLL_WRITE | DMM_FOLL_GET | DMM_FOLL_FORCE | DMM_FOLL_LONGTERM | DMM_FOLL_PIN)

static int check_gup_flags(unsigned int f)
{
	if (f & ~FOLL_KNOWN)
		return -EINVAL;
	if (!!(f & DMM_FOLL_GET) == !!(f & DMM_FOLL_PIN))
		return -EINVAL;
	if ((f & DMM_FOLL_LONGTERM) && !(f & DMM_FOLL_PIN))
		return -EINVAL;
	return 0;
}

static int check_vma_flags(struct dmm_vma *vma, unsigned int f)
{
	if (vma->flags & (VM_IO | VM_PFNMAP))
		return -EFAULT;
	if (f & DMM_FOLL_WRITE) {
		if (!(vma->flags & VM_WRITE) && !((f & DMM_FOLL_FORCE) && is_cow_mapping(vma->flags)))
			return -EFAULT;
	} else if (!(vma->flags & VM_READ) && !(f & DMM_FOLL_FORCE)) {
		return -EFAULT;
	}
	return 0;
}

static void grab_page(struct dmm_system *sys, struct dmm_page *p, unsigned int f)
{
	if (f & DMM_FOLL_PIN) {
		page_ref_add(p, GUP_PIN_COUNTING_BIAS);
		atomic_fetch_add(&p->pincount, 1);
		dmm_stat_inc(sys, pin_pages);
	} else {
		get_page(p);
		dmm_stat_inc(sys, gup_pages);
	}
}

/* What the entry needs before it can be returned: 0 (nothing), or the
 * fault flags to resolve it. */
static unsigned int gup_needs(struct dmm_vma *vma, pte_t e, struct dmm_page *p, unsigned int f)
{
	if (!pte_present(e))
		return (f & DMM_FOLL_WRITE) ? FAULT_FLAG_WRITE : FAULT_FLAG_REMOTE;
	if ((f & DMM_FOLL_WRITE) && !pte_write(e)) {
		/* FOLL_FORCE on a private read-only mapping may write to a page
		 * that is already exclusively ours (can_follow_write_pte). */
		bool forced = (f & DMM_FOLL_FORCE) && !(vma->flags & VM_WRITE) && p &&
			      page_is_anon(p) && page_test(p, PG_anon_exclusive);
		return forced ? 0 : FAULT_FLAG_WRITE;
	}
	if ((f & DMM_FOLL_PIN) && p && page_is_anon(p) && !page_test(p, PG_anon_exclusive))
		return FAULT_FLAG_UNSHARE;
	return 0;
}

/* One page, mmap_lock held for read. Returns 0 and the pfn, or -errno. */
static int gup_one(struct dmm_mm *mm, uint64_t addr, unsigned int f, uint64_t *pfn)
{
	struct dmm_vma *vma = vma_lookup(mm, addr);
	int r;

	if (!vma)
		return -EFAULT;
	r = check_vma_flags(vma, f);
	if (r)
		return r;
	for (;;) {
		struct dmm_pte_table *t = pte_table_lookup(mm, addr, false);
		unsigned int need = FAULT_FLAG_REMOTE | ((f & DMM_FOLL_WRITE) ? FAULT_FLAG_WRITE : 0);
		vm_fault_t fr;

		if (t) {
			pte_t e;
			struct dmm_page *p = NULL;

			ptl_lock(t);
			e = pte_get(pte_slot(t, addr));
			if (pte_present(e) && !pte_special(e))
				p = pfn_to_page(mm->sys, pte_pfn(e));
			need = gup_needs(vma, e, p, f);
			if (!need) {
				if (p)
					grab_page(mm->sys, p, f);
				*pfn = pte_pfn(e);
				ptl_unlock(t);
				return 0;
			}
			ptl_unlock(t);
		}
		fr = handle_mm_fault(vma, addr, need | FAULT_FLAG_REMOTE);
		if (fr & VM_FAULT_ERROR)
			return vm_fault_to_errno(fr);
	}
}

long dmm_get_user_pages(struct dmm_mm *mm, uint64_t start, unsigned long nr,
			unsigned int gup_flags, uint64_t *pfns)
{
	unsigned long done = 0;
	int r = 0;

	if (!mm || !pfns || nr == 0 || check_gup_flags(gup_flags) || !PAGE_ALIGNED(start))
		return -EINVAL;
	if (nr > (DMM_TASK_SIZE >> PAGE_SHIFT) || !user_range_len(start, nr << PAGE_SHIFT))
		return -EINVAL;
	mmap_read_lock(mm);
	for (; done < nr; done++) {
		r = gup_one(mm, start + (done << PAGE_SHIFT), gup_flags, &pfns[done]);
		if (r)
			break;
	}
	mmap_read_unlock(mm);
	return done ? (long)done : r;
}

void dmm_put_user_pages(struct dmm_system *sys, const uint64_t *pfns, unsigned long nr)
{
	for (unsigned long i = 0; sys && pfns && i < nr; i++) {
		struct dmm_page *p = pfn_to_page(sys, pfns[i]);

		if (p && !page_is_zero(sys, p))
			put_page(sys, p);
	}
}

void dmm_unpin_user_pages(struct dmm_system *sys, const uint64_t *pfns, unsigned long nr)
{
	for (unsigned long i = 0; sys && pfns && i < nr; i++) {
		struct dmm_page *p = pfn_to_page(sys, pfns[i]);

		if (!p || page_is_zero(sys, p))
			continue;
		DMM_BUG_ON(atomic_fetch_sub(&p->pincount, 1) == 0);
		dmm_stat_inc(sys, unpin_pages);
		put_page_refs(sys, p, GUP_PIN_COUNTING_BIAS);
	}
}
