/* SPDX-License-Identifier: MIT */
/*
 * Migration between system and device memory (semantics.md §3.8-3.12):
 * migrate_vma setup (collect + unmap), pages (metadata move), finalize
 * (install or restore), and the driver-side forms that start from device
 * pfns instead of a virtual range (eviction), plus the migration of a
 * device-coherent page for a long-term pin.
 *
 * Protocol state lives in the src[] words, which only ever lose MIGRATE:
 *   VALID|MIGRATE  page collected: locked, unmapped everywhere (migration
 *                  entries), one extra reference held for the migration;
 *   MIGRATE alone  a hole (or the zero page) that may be populated;
 *   0              left alone.
 * Lock order: mmap_lock (read, the caller's) -> folio locks (trylock only,
 * the fault page excepted) -> anon_vma / i_mmap -> PTL.
 */
#include "internal.h"

#define MPFN_VALID DMM_MIGRATE_PFN_VALID
#define MPFN_MIGRATE DMM_MIGRATE_PFN_MIGRATE
#define MPFN_WRITE DMM_MIGRATE_PFN_WRITE

static struct dmm_page *mpfn_page(struct dmm_system *sys, uint64_t m)
{
	return (m & MPFN_VALID) ? pfn_to_page(sys, dmm_migrate_pfn_to_pfn(m)) : NULL;
}

struct collect {
	struct dmm_migrate_vma *args;
	struct dmm_vma *vma;
	struct dmm_system *sys;
	struct dmm_page *fault_page;
};

/* Is the present or device-private entry's page selected by the flags? */
static struct dmm_page *collect_select(struct collect *c, pte_t e, bool *writable)
{
	unsigned long f = c->args->flags;
	struct dmm_page *p;

	if (pte_present(e)) {
		p = pfn_to_page(c->sys, pte_pfn(e));
		if (page_is_zone_device(p)) {
			if (!(f & DMM_MIGRATE_VMA_SELECT_DEVICE_COHERENT) || !page_is_device_coherent(p) ||
			    p->pgmap->owner != c->args->pgmap_owner)
				return NULL;
		} else if (!(f & DMM_MIGRATE_VMA_SELECT_SYSTEM)) {
			return NULL;
		}
		*writable = pte_write(e);
		return p;
	}
	if (!is_device_private_entry(e) || !(f & DMM_MIGRATE_VMA_SELECT_DEVICE_PRIVATE))
		return NULL;
	p = pfn_to_page(c->sys, entry_pfn(e));
	if (p->pgmap->owner != c->args->pgmap_owner)
		return NULL;
	*writable = is_writable_device_private_entry(e);
	return p;
}

/* One address (PTL held), its entry @e: the src word. */
static uint64_t collect_one(struct collect *c, _Atomic pte_t *slot, pte_t e)
{
	bool writable = false, excl;
	struct dmm_page *p;

	if (pte_none(e))
		return vma_is_anonymous(c->vma) ? MPFN_MIGRATE : 0;
	if (pte_present(e) && pte_special(e))
		return (c->args->flags & DMM_MIGRATE_VMA_SELECT_SYSTEM) ? MPFN_MIGRATE : 0;
	p = collect_select(c, e, &writable);
	if (!p || !page_mapping(p))
		return 0;
	DMM_BUG_ON(folio_test_large(page_folio(p))); /* collect_pmd split it */
	get_page(p);
	if (p != c->fault_page && !trylock_page(p)) {
		put_page(c->sys, p);
		return 0;
	}
	excl = page_is_anon(p) && page_test(p, PG_anon_exclusive);
	if (excl && page_maybe_dma_pinned(p)) {
		if (p != c->fault_page)
			unlock_page(c->sys, p);
		put_page(c->sys, p);
		return 0;
	}
	if (excl)
		page_clear(p, PG_anon_exclusive);
	if (pte_present(e) && pte_dirty(e))
		page_set(p, PG_dirty);
	pte_set(slot, make_migration_entry_from(p, e, excl));
	folio_remove_rmap_pte(page_folio(p), p, c->vma);
	/* Mapped nowhere else: the one migration entry is this one, and
	 * finalize can restore it in place (the page stays locked till then). */
	if (page_mapcount(p) == 0)
		page_set(p, PG_migrate_local);
	put_page(c->sys, p); /* the mapping's reference; the collect one remains */
	dmm_stat_inc(c->sys, migrate_collected);
	return dmm_migrate_pfn(page_to_pfn(c->sys, p)) | MPFN_MIGRATE | (writable ? MPFN_WRITE : 0);
}

static void collect_add(struct dmm_migrate_vma *a, uint64_t m)
{
	if (m & MPFN_MIGRATE)
		a->cpages++;
	a->src[a->npages++] = m;
}

/* The selected large folio an entry maps, with a reference, or NULL
 * (PTL held). */
static struct dmm_page *collect_large(struct collect *c, pte_t e)
{
	bool writable;
	struct dmm_page *p, *f;

	if (pte_none(e) || (pte_present(e) && pte_special(e)))
		return NULL;
	p = collect_select(c, e, &writable);
	if (!p || !page_mapping(p))
		return NULL;
	f = page_folio(p);
	if (likely(!folio_test_large(f)))
		return NULL;
	get_page(f); /* the entry's reference keeps it alive meanwhile */
	return f;
}

/*
 * The kernel's migrate_vma_split_folio: split a PTE-mapped large folio met
 * at collect, so that its pages migrate one by one (large-folios.md §3.11,
 * last row). Consumes the reference collect_large took; no PTL held. The
 * fault page's folio is locked by the fault path already, and its
 * reference makes the split fail (-EAGAIN); if it ever succeeds the
 * fault page's piece keeps that lock.
 */
static int migrate_vma_split_folio(struct collect *c, struct dmm_page *folio)
{
	struct dmm_page *fp = c->fault_page;
	bool fault_here = fp && page_folio(fp) == folio;
	int r = 0;

	if (!fault_here)
		lock_page(c->sys, folio);
	/* Split meanwhile by someone else: the entry is seen again. */
	if (folio_test_large(folio))
		r = split_folio_at(c->sys, folio, fault_here ? fp : folio);
	if (!fault_here)
		unlock_page(c->sys, folio);
	put_page(c->sys, (fault_here && !r) ? fp : folio);
	return r;
}

/* One PMD slot (pmd_entry): its entries under the PTL, as the kernel's
 * migrate_vma_collect_pmd. A PTE-mapped large folio is split first, then
 * its entries are looked at again; if it cannot be split, the rest of
 * the slot's range is left alone (src 0). */
static int collect_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end, struct mm_walk *walk)
{
	struct collect *c = walk->private;

	if (!pmd_is_table(pmd))
		return 0; /* a leaf: the walker's split point */
	ptl_lock(t);
	for (; addr < end; addr += PAGE_SIZE) {
		_Atomic pte_t *slot = pte_slot(t, addr);
		pte_t e = pte_get(slot);
		struct dmm_page *large = collect_large(c, e);

		if (unlikely(large)) {
			int r;

			ptl_unlock(t);
			r = migrate_vma_split_folio(c, large);
			ptl_lock(t);
			if (r) {
				for (; addr < end; addr += PAGE_SIZE)
					collect_add(c->args, 0);
				break;
			}
			addr -= PAGE_SIZE; /* again, now small pages */
			continue;
		}
		collect_add(c->args, collect_one(c, slot, e));
	}
	ptl_unlock(t);
	walk->action = ACTION_CONTINUE;
	return 0;
}

/* pte_hole: as none entries. */
static int collect_hole(uint64_t addr, uint64_t next, int level, struct mm_walk *walk)
{
	struct collect *c = walk->private;
	uint64_t m = vma_is_anonymous(c->vma) ? MPFN_MIGRATE : 0;

	(void)level;
	for (; addr < next; addr += PAGE_SIZE)
		collect_add(c->args, m);
	return 0;
}

static const struct mm_walk_ops collect_walk_ops = {
	.pmd_entry = collect_pmd,
	.pte_hole = collect_hole,
};

static void migrate_vma_collect(struct collect *c)
{
	struct dmm_migrate_vma *a = c->args;
	struct dmm_mmu_notifier_range r;

	mmap_assert_locked(a->mm);
	mmu_notify(DMM_MMU_NOTIFY_MIGRATE, a->mm, a->start, a->end, a->pgmap_owner, &r);
	walk_page_range(a->mm, a->start, a->end, &collect_walk_ops, c);
	mmu_notifier_invalidate_range_end(&r);
	a->end = a->start + (a->npages << PAGE_SHIFT);
}

/* The setup-time pin check, one looser than the exact one (pitfall 2). */
static bool migrate_check_page(struct dmm_page *p, struct dmm_page *fault_page)
{
	long extra = 1; /* the migrator's reference */

	if (p == fault_page)
		extra++;
	if (page_is_zone_device(p))
		extra++; /* a relic of the refcount-1 era */
	if (page_test(p, PG_pagecache))
		extra++;
	return (long)page_ref_count(p) - extra <= page_mapcount(p);
}

static void putback_page(struct dmm_page *p)
{
	if (!page_is_zone_device(p))
		page_set(p, PG_lru);
}

/*
 * Turn the migration entries of s into mappings of d (d == s: restore).
 * An entry marked local is replaced where it is, without an rmap walk; the
 * walk is the fallback (the entry may have been zapped meanwhile).
 */
static void restore_entries(struct dmm_system *sys, struct dmm_migrate_vma *a, unsigned long i,
			    struct dmm_page *s, struct dmm_page *d)
{
	bool local = page_test(s, PG_migrate_local);

	page_clear(s, PG_migrate_local);
	if (a && local) {
		uint64_t addr = a->start + (i << PAGE_SHIFT);
		struct dmm_pte_table *t = pte_lookup(a->mm, addr);
		struct dmm_vma *vma = vma_lookup(a->mm, addr); /* mmap_lock held since setup */
		bool done = false;

		if (t && vma) {
			ptl_lock(t);
			done = remove_migration_pte_locked(sys, vma, t, addr, s, d);
			ptl_unlock(t);
		}
		if (done)
			return;
	}
	remove_migration_ptes(sys, s, d);
}

/* Unmap every collected page from everywhere; restore those that can't
 * move. Returns the number of entries still MIGRATE. @a is the migrate_vma
 * (NULL for the device-range forms). */
static unsigned long migrate_device_unmap(struct dmm_system *sys, struct dmm_migrate_vma *a, uint64_t *src,
					  unsigned long n, struct dmm_page *fault_page)
{
	unsigned long cpages = 0, restore = 0;

	for (unsigned long i = 0; i < n; i++) {
		struct dmm_page *p = mpfn_page(sys, src[i]);

		if (!p || !(src[i] & MPFN_MIGRATE))
			continue;
		/* System pages are isolated from the LRU; device pages never are on it. */
		if (!page_is_zone_device(p) && !(atomic_fetch_and(&p->flags, ~PG_lru) & PG_lru)) {
			src[i] &= ~MPFN_MIGRATE;
			restore++;
			continue;
		}
		if (page_mapcount(p) > 0) {
			/* Mapped elsewhere (a page-cache page another process
			 * faulted in after the collect, say): its entries are not
			 * only the local one any more. */
			page_clear(p, PG_migrate_local);
			try_to_migrate(sys, p);
		}
		if (page_mapcount(p) > 0 || !migrate_check_page(p, fault_page)) {
			src[i] &= ~MPFN_MIGRATE;
			restore++;
		}
	}
	for (unsigned long i = 0; i < n; i++) {
		struct dmm_page *p = mpfn_page(sys, src[i]);

		if (src[i] & MPFN_MIGRATE) {
			cpages++;
			continue;
		}
		if (!p)
			continue;
		restore_entries(sys, a, i, p, p);
		putback_page(p);
		src[i] = 0;
		if (p != fault_page)
			unlock_page(sys, p);
		put_page(sys, p);
		dmm_stat_inc(sys, migrate_restored);
	}
	return cpages;
}

static int setup_check(struct dmm_migrate_vma *a, struct dmm_vma **vma, struct dmm_page **fault_page)
{
	struct dmm_system *sys;
	struct dmm_vma *v;
	uint64_t nr;

	if (!a || !a->mm || !a->src || !a->dst || a->end <= a->start)
		return -EINVAL;
	mmap_assert_locked(a->mm);
	nr = (a->end - a->start) >> PAGE_SHIFT; /* before rounding, as Linux */
	a->start &= PAGE_MASK;
	a->end &= PAGE_MASK;
	if (!nr)
		return -EINVAL;
	sys = a->mm->sys;
	v = vma_lookup(a->mm, a->start);
	if (!v || (v->flags & (VM_IO | VM_PFNMAP)) || a->end <= v->start || a->end > v->end)
		return -EINVAL;
	*fault_page = NULL;
	if (a->fault_page) {
		struct dmm_page *fp = pfn_to_page(sys, a->fault_page);

		if (!fp || !page_is_device_private(fp) || !page_locked(fp))
			return -EINVAL;
		*fault_page = fp;
	}
	*vma = v;
	return 0;
}

int dmm_migrate_vma_setup(struct dmm_migrate_vma *args)
{
	struct collect c = { .args = args };
	uint64_t nr;
	int r;

	r = setup_check(args, &c.vma, &c.fault_page);
	if (r)
		return r;
	c.sys = args->mm->sys;
	nr = (args->end - args->start) >> PAGE_SHIFT;
	memset(args->src, 0, nr * sizeof(*args->src));
	memset(args->dst, 0, nr * sizeof(*args->dst));
	args->npages = 0;
	args->cpages = 0;
	migrate_vma_collect(&c);
	if (args->cpages)
		args->cpages = migrate_device_unmap(c.sys, args, args->src, args->npages, c.fault_page);
	return 0;
}

/* Populate a hole with the destination page (mmap_lock held). */
static void migrate_vma_insert_page(struct dmm_migrate_vma *a, uint64_t addr, struct dmm_page *p,
				    uint64_t *src)
{
	struct dmm_system *sys = a->mm->sys;
	struct dmm_vma *vma = vma_lookup(a->mm, addr);
	struct dmm_pte_table *t;
	_Atomic pte_t *slot;
	pte_t e, ne;
	bool write;

	mmap_assert_locked(a->mm);
	*src &= ~MPFN_MIGRATE;
	if (!vma || !vma_is_anonymous(vma) || anon_vma_prepare(vma))
		return;
	t = pte_alloc(a->mm, addr);
	if (!t)
		return;
	write = vma->flags & VM_WRITE;
	if (page_is_device_private(p))
		ne = make_device_private_entry(page_to_pfn(sys, p), write, 0);
	else
		ne = pfn_pte(page_to_pfn(sys, p),
			     _PTE_YOUNG | vma_prot_bits(vma) | (write ? _PTE_WRITE | _PTE_DIRTY : 0));
	slot = pte_slot(t, addr);
	ptl_lock(t);
	e = pte_get(slot);
	if (!pte_none(e) && !(pte_present(e) && pte_special(e))) {
		ptl_unlock(t);
		return;
	}
	folio_add_new_anon_rmap(p, vma, addr, RMAP_EXCLUSIVE);
	get_page(p);
	add_mm_counter(a->mm, DMM_MM_ANONPAGES, 1);
	pte_set(slot, ne);
	ptl_unlock(t);
	*src = MPFN_MIGRATE;
	dmm_stat_inc(sys, migrate_holes);
}

/* Move the identity of src to dst (both locked). false: refused. */
static bool migrate_page_meta(struct dmm_page *s, struct dmm_page *d, struct dmm_page *fault_page)
{
	uint32_t expected = 1 + (s == fault_page);
	const uint32_t keep = PG_anon | PG_dirty | PG_uptodate | PG_swapbacked;

	lockdep_assert_page_locked(s);
	lockdep_assert_page_locked(d);
	/* Page-cache pages stay in system memory: devmm does not move them. */
	if (!page_is_anon(s))
		return false;
	/* The exact reference check (pitfall 2). */
	if (page_ref_count(s) != expected)
		return false;
	anon_vma_get(s->mapping);
	d->mapping = s->mapping;
	d->index = s->index;
	page_set(d, page_flags(s) & keep);
	return true;
}

static void migrate_pages_common(struct dmm_system *sys, struct dmm_migrate_vma *a, uint64_t *src,
				 uint64_t *dst, unsigned long n, struct dmm_page *fault_page)
{
	struct dmm_mmu_notifier_range r;
	bool notified = false;

	for (unsigned long i = 0; i < n; i++) {
		struct dmm_page *d = mpfn_page(sys, dst[i]), *s;

		if (!(src[i] & MPFN_MIGRATE))
			continue;
		if (!d) {
			src[i] &= ~MPFN_MIGRATE;
			continue;
		}
		s = mpfn_page(sys, src[i]);
		if (!s) {
			if (!a) {
				src[i] &= ~MPFN_MIGRATE;
				continue;
			}
			/* One MIGRATE invalidation from the first populated hole on. */
			if (!notified) {
				mmu_notify(DMM_MMU_NOTIFY_MIGRATE, a->mm, a->start + (i << PAGE_SHIFT), a->end,
					   a->pgmap_owner, &r);
				notified = true;
			}
			migrate_vma_insert_page(a, a->start + (i << PAGE_SHIFT), d, &src[i]);
			continue;
		}
		if (!migrate_page_meta(s, d, fault_page))
			src[i] &= ~MPFN_MIGRATE;
	}
	if (notified)
		mmu_notifier_invalidate_range_end(&r);
}

void dmm_migrate_vma_pages(struct dmm_migrate_vma *a)
{
	struct dmm_page *fp;

	if (!a || !a->mm)
		return;
	mmap_assert_locked(a->mm);
	fp = a->fault_page ? pfn_to_page(a->mm->sys, a->fault_page) : NULL;
	migrate_pages_common(a->mm->sys, a, a->src, a->dst, a->npages, fp);
}

static void migrate_finalize_common(struct dmm_system *sys, struct dmm_migrate_vma *a, uint64_t *src,
				    uint64_t *dst, unsigned long n, struct dmm_page *fault_page)
{
	for (unsigned long i = 0; i < n; i++) {
		struct dmm_page *d = mpfn_page(sys, dst[i]), *s = mpfn_page(sys, src[i]);

		if (!s) {
			if (d) {
				unlock_page(sys, d);
				put_page(sys, d);
			}
			continue;
		}
		/* A destination whose metadata was never moved (pages() not
		 * called) must not be installed: restore the source instead. */
		if (!(src[i] & MPFN_MIGRATE) || !d || d->mapping != s->mapping) {
			if (d) {
				unlock_page(sys, d);
				put_page(sys, d);
			}
			d = s;
		} else {
			dmm_stat_inc(sys, migrate_moved);
		}
		putback_page(d);
		restore_entries(sys, a, i, s, d);
		if (s != fault_page)
			unlock_page(sys, s);
		put_page(sys, s);
		if (d != s) {
			unlock_page(sys, d);
			put_page(sys, d);
		}
	}
}

void dmm_migrate_vma_finalize(struct dmm_migrate_vma *a)
{
	struct dmm_page *fp;

	if (!a || !a->mm)
		return;
	mmap_assert_locked(a->mm);
	fp = a->fault_page ? pfn_to_page(a->mm->sys, a->fault_page) : NULL;
	migrate_finalize_common(a->mm->sys, a, a->src, a->dst, a->npages, fp);
}

/* Collect one device pfn for eviction: src word or 0. */
static uint64_t collect_pfn(struct dmm_system *sys, uint64_t pfn)
{
	struct dmm_page *p = pfn_to_page(sys, pfn);

	if (!p || !page_is_zone_device(p) || !get_page_unless_zero(sys, p))
		return 0;
	if (!trylock_page(p)) {
		put_page(sys, p);
		return 0;
	}
	return dmm_migrate_pfn(pfn) | MPFN_MIGRATE;
}

int dmm_migrate_device_range(struct dmm_system *sys, uint64_t *src, uint64_t start_pfn, unsigned long n)
{
	if (!sys || !src)
		return -EINVAL;
	for (unsigned long i = 0; i < n; i++)
		src[i] = collect_pfn(sys, start_pfn + i);
	migrate_device_unmap(sys, NULL, src, n, NULL);
	return 0;
}

int dmm_migrate_device_pfns(struct dmm_system *sys, uint64_t *src, unsigned long n)
{
	if (!sys || !src)
		return -EINVAL;
	for (unsigned long i = 0; i < n; i++)
		src[i] = collect_pfn(sys, src[i]);
	migrate_device_unmap(sys, NULL, src, n, NULL);
	return 0;
}

void dmm_migrate_device_pages(struct dmm_system *sys, uint64_t *src, uint64_t *dst, unsigned long n)
{
	if (sys && src && dst)
		migrate_pages_common(sys, NULL, src, dst, n, NULL);
}

void dmm_migrate_device_finalize(struct dmm_system *sys, uint64_t *src, uint64_t *dst, unsigned long n)
{
	if (sys && src && dst)
		migrate_finalize_common(sys, NULL, src, dst, n, NULL);
}

int migrate_device_coherent_page(struct dmm_system *sys, struct dmm_page *p)
{
	uint64_t src, dst = 0;
	struct dmm_page *d;

	lock_page(sys, p);
	src = dmm_migrate_pfn(page_to_pfn(sys, p)) | MPFN_MIGRATE;
	if (!migrate_device_unmap(sys, NULL, &src, 1, NULL))
		return -EBUSY; /* restored: unlocked, the caller's reference dropped */
	d = frame_alloc(sys, 0);
	if (d) {
		lock_page(sys, d);
		dst = dmm_migrate_pfn(page_to_pfn(sys, d));
	}
	migrate_pages_common(sys, NULL, &src, &dst, 1, NULL);
	if (src & MPFN_MIGRATE)
		copy_page_contents(sys, d, p);
	migrate_finalize_common(sys, NULL, &src, &dst, 1, NULL);
	return (src & MPFN_MIGRATE) ? 0 : -EBUSY;
}
