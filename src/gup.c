/* SPDX-License-Identifier: MIT */
/*
 * get_user_pages / pin_user_pages (semantics.md §3.7).
 *
 * The slow path walks each page under mmap_lock (read) and the PTL, and
 * where the entry does not satisfy the request it faults (a write fault for
 * FOLL_WRITE, an unshare fault for a read-only pin of a shared anonymous
 * page or a read-only long-term pin of a page-cache or zero page in a COW
 * mapping, a plain fault for non-present entries: device-private pages
 * migrate back, device-exclusive entries are restored, migration entries
 * are waited for) and looks again. FOLL_GET takes one reference; FOLL_PIN
 * takes GUP_PIN_COUNTING_BIAS references and one exact pin. The zero page
 * is returned without a reference: it is never counted.
 *
 * FOLL_LONGTERM then makes sure no device-coherent page stays pinned:
 * mainline migrates it to system memory and pins again; the v6 option
 * fails the pin instead.
 *
 * The fast path reads entries without any lock and takes references
 * speculatively, re-checking the entry afterwards; whatever it can't do,
 * and every page the slow path would refuse or treat specially, it leaves
 * to the slow path. Both take references through try_grab_page, which
 * refuses to overflow a page's count.
 */
#include "internal.h"

#define FOLL_KNOWN (DMM_FOLL_WRITE | DMM_FOLL_GET | DMM_FOLL_FORCE | DMM_FOLL_LONGTERM | DMM_FOLL_PIN)
#define LONGTERM_RETRIES 100

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
		/* A writable long-term pin would defeat the file's dirty tracking. */
		if ((f & DMM_FOLL_LONGTERM) && (vma->flags & VM_SHARED) && vma->file && !vma->file->shmem)
			return -EFAULT;
	} else if (!(vma->flags & VM_READ) && !(f & DMM_FOLL_FORCE)) {
		return -EFAULT;
	}
	return 0;
}

/* The references one grab of folio @f stands for: a GET 1; an order-0
 * pin the 1024 bias; a large folio's pin 1, plus one exact pincount
 * (large-folios.md §1.2). @f must be stable: the caller holds a
 * reference on it, so its order cannot change under the decision. */
static uint32_t grab_refs(const struct dmm_page *f, unsigned int fl)
{
	return (fl & DMM_FOLL_PIN) && likely(!folio_test_large(f)) ? GUP_PIN_COUNTING_BIAS : 1;
}

/*
 * Take a GET reference or a pin on @p's folio (try_grab_folio): 0 with
 * *@foliop the folio taken and *@refs the references added, -EAGAIN when
 * the frame is free (only the lockless path can see that), or -ENOMEM
 * when the count would overflow; nothing is taken on failure. Both paths
 * take their references here, and give them back through gup_put_folio
 * with the same folio and count.
 *
 * One reference comes first, through try_get_folio: from then on the
 * folio is stable, and only then does its order choose the rest.
 * Choosing before (on a folio that could still be freed and reused as one
 * of another order) could add the order-0 bias to a large folio.
 */
static int try_grab_page(struct dmm_system *sys, struct dmm_page *p, unsigned int f,
			 struct dmm_page **foliop, uint32_t *refs)
{
	struct dmm_page *folio;
	uint32_t n;
	int r = try_get_folio(sys, p, 1, &folio);

	if (r)
		return r;
	n = grab_refs(folio, f);
	if (n > 1) {
		r = folio_ref_try_add(folio, n - 1);
		if (r) {
			put_page(sys, folio);
			return r;
		}
	}
	if (f & DMM_FOLL_PIN) {
		atomic_fetch_add(&folio->pincount, 1);
		dmm_stat_inc(sys, pin_pages);
	} else {
		dmm_stat_inc(sys, gup_pages);
	}
	*foliop = folio;
	*refs = n;
	return 0;
}

/* Give back one grab: @refs references on @folio, and its pin for FOLL_PIN. */
static void gup_put_folio(struct dmm_system *sys, struct dmm_page *folio, uint32_t refs, unsigned int f)
{
	if (f & DMM_FOLL_PIN) {
		DMM_BUG_ON(atomic_fetch_sub(&folio->pincount, 1) == 0);
		dmm_stat_inc(sys, unpin_pages);
	}
	put_page_refs(sys, folio, refs);
}

/* Give back a grab the caller holds on page @p: its folio is stable while
 * the grab is held, so page_folio and grab_refs give what was taken. */
static void ungrab_page(struct dmm_system *sys, struct dmm_page *p, unsigned int f)
{
	struct dmm_page *folio = page_folio(p);

	gup_put_folio(sys, folio, grab_refs(folio, f), f);
}

/*
 * Must a read-only pin unshare the page first (gup_must_unshare)? So that
 * the pin and the process keep seeing the same memory:
 *  - an anonymous page that is not exclusive (shared after fork) is copied
 *    or reused exclusively before it is pinned;
 *  - a long-term pin of a page that is not anonymous (a page-cache page,
 *    or the zero page) in a COW mapping gets an exclusive anonymous copy
 *    mapped read-only, so a later write through the mapping reuses the
 *    pinned page instead of copying away from it (reliable R/O long-term
 *    pins, Linux 6.2). Short-term pins of such pages, and any pin in a
 *    shared mapping, take the page as it is.
 * @vma NULL (GUP-fast) can't tell a COW mapping: yes, let the slow path
 * decide. A FOLL_WRITE pin needs a writable entry, whose page is exclusive.
 */
static bool gup_must_unshare(struct dmm_vma *vma, unsigned int f, struct dmm_page *p)
{
	if ((f & (DMM_FOLL_WRITE | DMM_FOLL_PIN)) != DMM_FOLL_PIN)
		return false;
	if (!page_is_anon(p)) {
		if (!(f & DMM_FOLL_LONGTERM))
			return false;
		return !vma || is_cow_mapping(vma->flags);
	}
	return !page_test(p, PG_anon_exclusive);
}

/* What the entry needs before it can be returned: 0 (nothing), or the
 * fault flags to resolve it. @p: the page mapped (the zero page included),
 * or NULL. */
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
	return p && gup_must_unshare(vma, f, p) ? FAULT_FLAG_UNSHARE : 0;
}

/*
 * The page at @addr through the PTE @e (follow_page_pte), t's PTL held:
 * 0 with *pfn set and the reference taken, or -errno; *need is set instead
 * when the entry must be faulted first (nothing taken).
 */
static int follow_page_pte(struct dmm_vma *vma, pte_t e, unsigned int f, uint64_t *pfn, unsigned int *need)
{
	struct dmm_system *sys = vma->mm->sys;
	struct dmm_page *p = NULL, *folio;
	uint32_t refs;
	int r;

	if (pte_present(e) && (!pte_special(e) || pte_pfn(e) == DMM_ZERO_PFN))
		p = pfn_to_page(sys, pte_pfn(e));
	*need = gup_needs(vma, e, p, f);
	if (*need)
		return 0;
	/* The entry holds a reference: only overflow can fail. The zero
	 * page is never counted. */
	r = p && !page_is_zero(sys, p) ? try_grab_page(sys, p, f, &folio, &refs) : 0;
	if (!r)
		*pfn = pte_pfn(e);
	return r;
}

/*
 * The page at @addr through the PMD leaf @pmd (follow_huge_pmd,
 * large-folios.md §3.8), t's PTL held: a PMD_THP gives its page without a
 * split, with the reference or pin of that page (§1.2); the huge zero PMD
 * gives its page uncounted (devmm: GUP never counts the huge zero page).
 * Whether the PMD may be returned as it is is the head's question: while
 * PMD-mapped, only the head's AnonExclusive counts. FOLL_WRITE on a
 * read-only PMD is a write fault, FOLL_PIN of a THP that is not exclusive an
 * unshare fault (§3.2); a non-present leaf faults too (*need).
 */
static int follow_huge_pmd(struct dmm_vma *vma, pte_t pmd, uint64_t addr, unsigned int f, uint64_t *pfn,
			   unsigned int *need)
{
	struct dmm_system *sys = vma->mm->sys;
	struct dmm_page *head = pte_present(pmd) ? pfn_to_page(sys, pte_pfn(pmd)) : NULL;
	uint64_t at = pmd_pfn_at(pmd, addr);
	struct dmm_page *folio;
	uint32_t refs;
	int r;

	*need = gup_needs(vma, pmd, head, f);
	if (*need)
		return 0;
	r = page_is_zero(sys, head) ? 0 : try_grab_page(sys, pfn_to_page(sys, at), f, &folio, &refs);
	if (!r)
		*pfn = at;
	return r;
}

int gup_one(struct dmm_mm *mm, uint64_t addr, unsigned int f, uint64_t *pfn)
{
	struct dmm_vma *vma = vma_lookup(mm, addr);
	int r;

	mmap_assert_locked(mm);
	if (!vma)
		return -EFAULT;
	r = check_vma_flags(vma, f);
	if (r)
		return r;
	for (;;) {
		unsigned int need = (f & DMM_FOLL_WRITE) ? FAULT_FLAG_WRITE : 0;
		pte_t pmd;
		struct dmm_pte_table *t = pmd_lookup(mm, addr, &pmd);
		vm_fault_t fr;

		if (t && !pmd_none(pmd)) {
			ptl_lock(t);
			pmd = pmd_get(t);
			if (pmd_is_leaf(pmd) && (f & FOLL_SPLIT_PMD)) {
				/* The caller needs a PTE (make_device_exclusive):
				 * split, then look again. */
				ptl_unlock(t);
				split_huge_pmd(mm, t, addr);
				continue;
			}
			if (!pmd_none(pmd)) {
				r = pmd_is_leaf(pmd) ? follow_huge_pmd(vma, pmd, addr, f, pfn, &need)
						     : follow_page_pte(vma, pte_get(pte_slot(t, addr)), f, pfn, &need);
				if (!need) {
					ptl_unlock(t);
					return r;
				}
			}
			ptl_unlock(t);
		}
		fr = handle_mm_fault(vma, addr, need | FAULT_FLAG_REMOTE);
		if (fr & VM_FAULT_ERROR)
			return vm_fault_to_errno(fr);
	}
}

static long gup_range_locked(struct dmm_mm *mm, uint64_t start, unsigned long nr, unsigned int f,
			     uint64_t *pfns)
{
	unsigned long done = 0;
	int r = 0;

	mmap_assert_locked(mm);
	for (; done < nr; done++) {
		r = gup_one(mm, start + (done << PAGE_SHIFT), f, &pfns[done]);
		if (r)
			break;
	}
	return done ? (long)done : r;
}

static struct dmm_page *pinned_page(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = pfn_to_page(sys, pfn);

	return p && !page_is_zero(sys, p) ? p : NULL;
}

/*
 * FOLL_LONGTERM: if a pinned page is device-coherent, release every pin
 * and migrate the coherent ones (mmap_lock held). Returns 0 when nothing
 * needed doing, 1 to pin again, or -errno (all pins released).
 */
static int check_and_migrate_longterm(struct dmm_system *sys, uint64_t *pfns, long n)
{
	bool any = false;
	int r = 0;

	for (long i = 0; i < n && !any; i++) {
		struct dmm_page *p = pinned_page(sys, pfns[i]);

		any = p && page_is_device_coherent(p);
	}
	if (!any)
		return 0;
	if (atomic_load(&sys->longterm_coherent) == DMM_LONGTERM_COHERENT_FAIL) {
		dmm_unpin_user_pages(sys, pfns, (unsigned long)n);
		return -EFAULT;
	}
	for (long i = 0; i < n; i++) {
		struct dmm_page *p = pinned_page(sys, pfns[i]);

		if (!p || !page_is_device_coherent(p)) {
			dmm_unpin_user_pages(sys, &pfns[i], 1);
			continue;
		}
		/* Convert the pin to a plain reference, which the migration consumes. */
		get_page(p);
		ungrab_page(sys, p, DMM_FOLL_PIN);
		if (r) {
			put_page(sys, p);
			continue;
		}
		r = migrate_device_coherent_page(sys, p);
		if (!r)
			dmm_stat_inc(sys, longterm_migrated);
	}
	return r ? -EBUSY : 1;
}

long dmm_get_user_pages(struct dmm_mm *mm, uint64_t start, unsigned long nr,
			unsigned int gup_flags, uint64_t *pfns)
{
	long n;

	if (!mm || !pfns || nr == 0 || check_gup_flags(gup_flags) || !PAGE_ALIGNED(start))
		return -EINVAL;
	if (nr > (DMM_TASK_SIZE >> PAGE_SHIFT) || !user_range_len(start, nr << PAGE_SHIFT))
		return -EINVAL;
	for (int tries = 0;; tries++) {
		int r = 0;

		mmap_read_lock(mm);
		n = gup_range_locked(mm, start, nr, gup_flags, pfns);
		if (n > 0 && (gup_flags & DMM_FOLL_LONGTERM))
			r = check_and_migrate_longterm(mm->sys, pfns, n);
		mmap_read_unlock(mm);
		if (r < 0)
			return r;
		if (r == 0)
			return n;
		if (tries == LONGTERM_RETRIES)
			return -EBUSY;
	}
}

/* ------------------------------------------------------------------------ */
/* The lockless fast path                                                    */

_Atomic(gup_fast_hook_fn) gup_fast_hook;

/* Tests only: where a stalled reader holds a bare pointer to a frame. */
static inline void gup_fast_stall_point(struct dmm_page *p)
{
	gup_fast_hook_fn hook = atomic_load_explicit(&gup_fast_hook, memory_order_relaxed);

	if (unlikely(hook) && p)
		hook(p);
}

/* Can the fast path return this entry as it is? */
static bool fast_ok(pte_t e, unsigned int f)
{
	if (!pte_present(e) || pte_special(e) || pte_protnone(e))
		return false;
	return (f & DMM_FOLL_WRITE) ? pte_write(e) : !pte_noread(e);
}

/*
 * Would the slow path return the grabbed page as it is (GUP-fast never
 * succeeds where the slow path would fail or act differently)? GUP-fast
 * has no VMA, so it decides from the page and leaves every page the slow
 * path treats specially to it:
 *  - a FOLL_LONGTERM pin of a page that is not long-term pinnable;
 *  - a writable long-term pin of a page that may belong to a file needing
 *    dirty tracking (gup_fast_folio_allowed): only anonymous and shmem
 *    pages pass, as check_vma_flags refuses the others on shared mappings;
 *  - a pin that must unshare, or may have to: without a VMA, any
 *    read-only long-term pin of a page that is not anonymous.
 */
static bool fast_page_ok(struct dmm_page *p, unsigned int f)
{
	if ((f & DMM_FOLL_LONGTERM) && page_is_device_coherent(p))
		return false;
	if ((f & (DMM_FOLL_WRITE | DMM_FOLL_LONGTERM)) == (DMM_FOLL_WRITE | DMM_FOLL_LONGTERM) &&
	    !page_is_anon(p) && !page_test(p, PG_swapbacked))
		return false;
	return !gup_must_unshare(NULL, f, p);
}

struct gup_fast_walk {
	struct dmm_system *sys;
	unsigned int f;
	unsigned long n; /* pages taken so far */
	uint64_t *pfns;
};

/* pte_entry, lockless: take the page or stop (non-zero). */
static int gup_fast_pte(_Atomic pte_t *pte, pte_t e, uint64_t addr, struct mm_walk *walk)
{
	struct gup_fast_walk *g = walk->private;
	struct dmm_page *p, *folio;
	uint32_t refs;

	(void)addr;
	if (!fast_ok(e, g->f))
		return 1;
	p = pfn_to_page(g->sys, pte_pfn(e));
	gup_fast_stall_point(p);
	if (!p || try_grab_page(g->sys, p, g->f, &folio, &refs))
		return 1;
	/* Pairs with the fence in MADV_FREE's lazyfree_one and
	 * lazyfree_folio: they clear the entries, then check the refcount;
	 * this takes the reference, then re-reads the entry. One of the two
	 * sees the other. */
	smp_mb();
	if (pte_get(pte) != e || !fast_page_ok(p, g->f)) {
		gup_put_folio(g->sys, folio, refs, g->f);
		return 1;
	}
	g->pfns[g->n++] = pte_pfn(e);
	return 0;
}

/* Nothing mapped: the slow path faults it in. */
static int gup_fast_hole(uint64_t addr, uint64_t next, int level, struct mm_walk *walk)
{
	(void)addr;
	(void)next;
	(void)level;
	(void)walk;
	return 1;
}

/*
 * pmd_entry, lockless (gup_fast_pmd_leaf): the pages of a PMD_THP come from
 * the PMD, each with its own reference or pin, the PMD re-read after each;
 * whether the PMD may be returned is the head's question (its AnonExclusive
 * counts while PMD-mapped). Any other leaf (the huge zero PMD is special,
 * device-private and migration PMDs are not present) goes to the slow path.
 */
static int gup_fast_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t next, struct mm_walk *walk)
{
	struct gup_fast_walk *g = walk->private;
	struct dmm_page *head;

	if (!pmd_is_leaf(pmd))
		return 0; /* a table: its PTEs */
	if (!fast_ok(pmd, g->f))
		return 1;
	head = pfn_to_page(g->sys, pte_pfn(pmd));
	walk->action = ACTION_CONTINUE;
	for (; addr < next; addr += PAGE_SIZE) {
		uint64_t pfn = pmd_pfn_at(pmd, addr);
		struct dmm_page *p = pfn_to_page(g->sys, pfn), *folio;
		uint32_t refs;

		gup_fast_stall_point(p);
		if (!p || try_grab_page(g->sys, p, g->f, &folio, &refs))
			return 1;
		smp_mb(); /* as in gup_fast_pte */
		if (pmd_get(t) != pmd || !fast_page_ok(head, g->f)) {
			gup_put_folio(g->sys, folio, refs, g->f);
			return 1;
		}
		g->pfns[g->n++] = pfn;
	}
	return 0;
}

static const struct mm_walk_ops gup_fast_walk_ops = {
	.pmd_entry = gup_fast_pmd,
	.pte_entry = gup_fast_pte,
	.pte_hole = gup_fast_hole,
};

static unsigned long gup_fast(struct dmm_mm *mm, uint64_t start, unsigned long nr, unsigned int f,
			      uint64_t *pfns)
{
	struct dmm_system *sys = mm->sys;
	uint32_t seq = atomic_load(&mm->write_protect_seq);
	struct gup_fast_walk g = { .sys = sys, .f = f, .pfns = pfns };
	unsigned long n;

	if ((f & DMM_FOLL_PIN) && (seq & 1))
		return 0; /* a fork is write-protecting: pins go the slow way */
	walk_page_range(mm, start, start + (nr << PAGE_SHIFT), &gup_fast_walk_ops, &g);
	n = g.n;
	if ((f & DMM_FOLL_PIN) && n && atomic_load(&mm->write_protect_seq) != seq) {
		/* Each of these pages is held: its folio is the one grabbed. */
		for (unsigned long i = 0; i < n; i++)
			ungrab_page(sys, pfn_to_page(sys, pfns[i]), f);
		n = 0;
	}
	return n;
}

long dmm_get_user_pages_fast(struct dmm_mm *mm, uint64_t start, unsigned long nr,
			     unsigned int gup_flags, uint64_t *pfns)
{
	unsigned long n;
	long r;

	if (!mm || !pfns || nr == 0 || check_gup_flags(gup_flags) || !PAGE_ALIGNED(start))
		return -EINVAL;
	if (nr > (DMM_TASK_SIZE >> PAGE_SHIFT) || !user_range_len(start, nr << PAGE_SHIFT))
		return -EINVAL;
	/* Lockless: page-table pages and device page metadata it reaches stay
	 * allocated until the section ends (docs/locking.md). */
	rcu_read_lock();
	n = gup_fast(mm, start, nr, gup_flags, pfns);
	rcu_read_unlock();
	if (n == nr)
		return (long)n;
	dmm_stat_inc(mm->sys, gup_fast_fallback);
	r = dmm_get_user_pages(mm, start + (n << PAGE_SHIFT), nr - n, gup_flags, pfns + n);
	if (r < 0)
		return n ? (long)n : r;
	return (long)n + r;
}

void dmm_put_user_pages(struct dmm_system *sys, const uint64_t *pfns, unsigned long nr)
{
	for (unsigned long i = 0; sys && pfns && i < nr; i++) {
		struct dmm_page *p = pinned_page(sys, pfns[i]);

		if (p)
			put_page(sys, p);
	}
}

void dmm_unpin_user_pages(struct dmm_system *sys, const uint64_t *pfns, unsigned long nr)
{
	for (unsigned long i = 0; sys && pfns && i < nr; i++) {
		struct dmm_page *p = pinned_page(sys, pfns[i]);

		if (p)
			ungrab_page(sys, p, DMM_FOLL_PIN);
	}
}
