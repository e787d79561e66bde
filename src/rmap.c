/* SPDX-License-Identifier: MIT */
/*
 * Reverse-map accounting: the mapcount and identity (mapping, index,
 * anon-exclusive) of frames as entries come and go. Callers hold the PTL of
 * the entry they change. An anonymous page holds a reference on its
 * anon_vma, so the identity stays valid for as long as the page lives.
 */
#include "internal.h"

/*
 * The counters of large-folios.md §1.2, kept as the kernel's
 * __folio_add_rmap / __folio_remove_rmap keep them. An order-0 folio has
 * one counter, its mapcount (every entry). A large folio has, per page,
 * the PTEs mapping it (mapcount), and on its first tail large_mapcount
 * (every entry, a PMD counting 1), entire_mapcount (PMD entries) and
 * nr_pages_mapped (pages mapped by at least one PTE).
 */
static void folio_set_anon(struct dmm_page *folio, struct dmm_vma *vma, uint64_t addr)
{
	struct dmm_anon_vma *av = vma->anon_vma;

	DMM_BUG_ON(!av);
	anon_vma_get(av);
	folio->mapping = av;
	folio->index = linear_page_index(vma, addr);
	page_set(folio, PG_anon | PG_swapbacked | PG_uptodate | (page_is_zone_device(folio) ? 0 : PG_lru));
}

void folio_add_new_anon_rmap(struct dmm_page *folio, struct dmm_vma *vma, uint64_t addr, unsigned int flags)
{
	bool excl = flags & RMAP_EXCLUSIVE;

	folio_set_anon(folio, vma, addr);
	if (likely(!folio_test_large(folio))) {
		if (excl)
			page_set(folio, PG_anon_exclusive);
		atomic_store_explicit(&folio->mapcount, 1, memory_order_release);
	} else if (folio_order(folio) < FOLIO_MAX_ORDER) {
		/* Mapped by PTEs, one per page (mTHP). */
		uint64_t n = folio_nr_pages(folio);

		for (uint64_t i = 0; i < n; i++) {
			if (excl)
				page_set(&folio[i], PG_anon_exclusive);
			atomic_store_explicit(&folio[i].mapcount, 1, memory_order_relaxed);
		}
		atomic_store_explicit(&folio[1].nr_pages_mapped, (int32_t)n, memory_order_relaxed);
		atomic_store_explicit(&folio[1].large_mapcount, (int32_t)n, memory_order_release);
	} else {
		/* A PMD-mappable folio starts mapped by one PMD. */
		if (excl)
			page_set(folio, PG_anon_exclusive);
		atomic_store_explicit(&folio[1].entire_mapcount, 1, memory_order_relaxed);
		atomic_store_explicit(&folio[1].large_mapcount, 1, memory_order_release);
	}
}

/* PTEs to @nr pages from @page: the per-page counts and nr_pages_mapped. */
static void add_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr, bool excl)
{
	int32_t first = 0;

	if (likely(!folio_test_large(folio))) {
		atomic_fetch_add(&folio->mapcount, 1);
		if (excl)
			page_set(folio, PG_anon_exclusive);
		return;
	}
	for (unsigned int i = 0; i < nr; i++) {
		first += atomic_fetch_add(&page[i].mapcount, 1) == 0;
		if (excl)
			page_set(&page[i], PG_anon_exclusive);
	}
	atomic_fetch_add(&folio[1].nr_pages_mapped, first);
	atomic_fetch_add(&folio[1].large_mapcount, (int32_t)nr);
}

void folio_add_anon_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
			      struct dmm_vma *vma, uint64_t addr, unsigned int flags)
{
	(void)vma;
	(void)addr;
	add_ptes(folio, page, nr, flags & RMAP_EXCLUSIVE);
}

void folio_add_anon_rmap_pmd(struct dmm_page *folio, struct dmm_vma *vma, uint64_t addr, unsigned int flags)
{
	(void)vma;
	(void)addr;
	DMM_BUG_ON(folio_order(folio) != FOLIO_MAX_ORDER);
	atomic_fetch_add(&folio[1].entire_mapcount, 1);
	atomic_fetch_add(&folio[1].large_mapcount, 1);
	if (flags & RMAP_EXCLUSIVE)
		page_set(folio, PG_anon_exclusive); /* while PMD-mapped only the head's bit counts */
}

void folio_add_file_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
			      struct dmm_vma *vma)
{
	(void)vma;
	add_ptes(folio, page, nr, false);
}

int folio_try_dup_anon_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
				 struct dmm_vma *src_vma)
{
	bool device_private = page_is_device_private(folio);

	(void)src_vma;
	/* A pinned exclusive page cannot become shared: the caller copies it
	 * (device-private folios are never pinned). */
	for (unsigned int i = 0; i < nr && !device_private; i++)
		if (page_test(&page[i], PG_anon_exclusive) && page_maybe_dma_pinned(folio))
			return -EBUSY;
	add_ptes(folio, page, nr, false);
	for (unsigned int i = 0; i < nr; i++)
		page_clear(&page[i], PG_anon_exclusive);
	return 0;
}

int folio_try_dup_anon_rmap_pmd(struct dmm_page *folio, struct dmm_vma *src_vma)
{
	/* While PMD-mapped only the head's AnonExclusive counts. */
	if (!page_is_device_private(folio) && page_test(folio, PG_anon_exclusive) && page_maybe_dma_pinned(folio))
		return -EBUSY;
	folio_add_anon_rmap_pmd(folio, src_vma, 0, RMAP_NONE);
	page_clear(folio, PG_anon_exclusive);
	return 0;
}

void folio_dup_file_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr)
{
	add_ptes(folio, page, nr, false);
}

/* Deferred split (large-folios.md §1.4): queue @folio once, marking it
 * partially mapped on request. A leaf lock, taken under a PTL. */
void deferred_split_folio(struct dmm_system *sys, struct dmm_page *folio, bool partially_mapped)
{
	struct dmm_list *node = &folio[2].deferred_list;

	pthread_mutex_lock(&sys->deferred_split.lock);
	if (partially_mapped)
		page_set(folio, PG_partially_mapped);
	if (list_empty(node)) {
		list_add_tail(node, &sys->deferred_split.queue);
		sys->deferred_split.len++;
	}
	pthread_mutex_unlock(&sys->deferred_split.lock);
}

void folio_unqueue_deferred_split(struct dmm_system *sys, struct dmm_page *folio)
{
	struct dmm_list *node = &folio[2].deferred_list;

	pthread_mutex_lock(&sys->deferred_split.lock);
	if (!list_empty(node)) {
		list_del(node);
		sys->deferred_split.len--;
	}
	page_clear(folio, PG_partially_mapped);
	pthread_mutex_unlock(&sys->deferred_split.lock);
}

/* A large anon folio, not device-private, that some mapping just left
 * while others stay gets queued, marked partially mapped. */
static void maybe_queue_partial(struct dmm_vma *vma, struct dmm_page *folio)
{
	if (page_is_anon(folio) && !page_is_device_private(folio) && !page_test(folio, PG_partially_mapped))
		deferred_split_folio(vma->mm->sys, folio, true);
}

void folio_remove_rmap_ptes(struct dmm_page *folio, struct dmm_page *page, unsigned int nr,
			    struct dmm_vma *vma)
{
	int32_t last = 0, mapped;

	if (likely(!folio_test_large(folio))) {
		DMM_BUG_ON(atomic_fetch_sub(&folio->mapcount, 1) <= 0);
		return;
	}
	for (unsigned int i = 0; i < nr; i++) {
		int32_t old = atomic_fetch_sub(&page[i].mapcount, 1);

		DMM_BUG_ON(old <= 0);
		last += old == 1;
	}
	mapped = atomic_fetch_sub(&folio[1].nr_pages_mapped, last) - last;
	DMM_BUG_ON(atomic_fetch_sub(&folio[1].large_mapcount, (int32_t)nr) < (int32_t)nr);
	/* Pages left unmapped while others stay mapped, and no PMD keeps the
	 * whole folio mapped. */
	if (last && mapped > 0 && !folio_entire_mapcount(folio))
		maybe_queue_partial(vma, folio);
}

void folio_remove_rmap_pmd(struct dmm_page *folio, struct dmm_vma *vma)
{
	DMM_BUG_ON(atomic_fetch_sub(&folio[1].entire_mapcount, 1) <= 0);
	DMM_BUG_ON(atomic_fetch_sub(&folio[1].large_mapcount, 1) <= 0);
	/* The last PMD went while some pages stay PTE-mapped. */
	if (!folio_entire_mapcount(folio) && folio_nr_pages_mapped(folio) > 0)
		maybe_queue_partial(vma, folio);
}

enum dmm_rss_type mm_counter(struct dmm_vma *vma, struct dmm_page *p)
{
	if (page_is_anon(p))
		return DMM_MM_ANONPAGES;
	if (vma->file && vma->file->shmem)
		return DMM_MM_SHMEMPAGES;
	return DMM_MM_FILEPAGES;
}

/* ------------------------------------------------------------------------ */
/* Reverse-map walks (the page is locked by the caller).                     */

typedef void (*rmap_one_fn)(struct dmm_system *sys, struct dmm_vma *vma, uint64_t addr, void *arg);

/* Visit every VMA that may map the page, at the address it would have
 * there. Anon pages: the VMAs of their anon_vma; file pages: i_mmap. */
static void rmap_walk(struct dmm_system *sys, struct dmm_page *p, rmap_one_fn fn, void *arg)
{
	pthread_rwlock_t *lock;
	struct dmm_list *head, *pos;
	bool anon = page_is_anon(p);

	if (!page_mapping(p))
		return;
	if (anon) {
		struct dmm_anon_vma *av = page_mapping(p);

		lock = &av->lock;
		head = &av->vmas;
	} else {
		struct dmm_file *f = page_mapping(p);

		lock = &f->i_mmap_lock;
		head = &f->i_mmap;
	}
	pthread_rwlock_rdlock(lock);
	list_for_each(pos, head) {
		struct dmm_vma *v = anon ? container_of(pos, struct dmm_vma, anon_node)
					 : container_of(pos, struct dmm_vma, file_node);

		if (page_index(p) < v->pgoff || page_index(p) >= v->pgoff + vma_pages(v))
			continue;
		fn(sys, v, v->start + ((page_index(p) - v->pgoff) << PAGE_SHIFT), arg);
	}
	pthread_rwlock_unlock(lock);
}

static uint64_t present_to_leaf_bits(pte_t e)
{
	return (pte_young(e) ? _LEAF_YOUNG : 0) | (pte_dirty(e) ? _LEAF_DIRTY : 0) |
	       (pte_soft_dirty(e) ? _LEAF_SOFT_DIRTY : 0) | (pte_uffd_wp(e) ? _LEAF_UFFD_WP : 0);
}

static uint64_t leaf_to_present_bits(pte_t e)
{
	return (leaf_young(e) ? _PTE_YOUNG : 0) | (leaf_dirty(e) ? _PTE_DIRTY : 0) |
	       (leaf_soft_dirty(e) ? _PTE_SOFT_DIRTY : 0) | (leaf_uffd_wp(e) ? _PTE_UFFD_WP : 0);
}

pte_t make_migration_entry_from(struct dmm_page *p, pte_t e, bool anon_exclusive)
{
	bool writable = pte_present(e) ? pte_write(e)
				       : is_writable_device_private_entry(e) || is_device_exclusive_entry(e);
	enum leaf_type t = writable ? LEAF_MIGRATION_WRITE
			   : anon_exclusive ? LEAF_MIGRATION_READ_EXCLUSIVE : LEAF_MIGRATION_READ;
	uint64_t bits = pte_present(e) ? present_to_leaf_bits(e) : leaf_flag_bits(e);

	lockdep_assert_page_locked(p);
	(void)p;
	return make_migration_entry(t, entry_pfn(e), bits);
}

/*
 * The PTE table an rmap callback looks at for @addr in @vma, or NULL.
 * Unlike pte_lookup it never splits a PMD leaf: the page being migrated
 * or restored is an order-0 page or one of a large folio that no PMD maps
 * (collect splits PMDs before it migrates, split_folio refuses a folio
 * with a PMD mapping), so a leaf there is another folio of another member
 * of the fork family, which Linux's page_vma_mapped_walk leaves alone.
 */
static struct dmm_pte_table *rmap_pte_table(struct dmm_vma *vma, uint64_t addr)
{
	pte_t pmd;
	struct dmm_pte_table *t = pmd_lookup(vma->mm, addr, &pmd);

	return t && pmd_is_table(pmd) ? t : NULL;
}

/* One mapping of the page: replace it by a migration entry. */
static void try_to_migrate_one(struct dmm_system *sys, struct dmm_vma *vma, uint64_t addr, void *arg)
{
	struct dmm_page *p = arg;
	uint64_t pfn = page_to_pfn(sys, p);
	struct dmm_pte_table *t = rmap_pte_table(vma, addr);
	struct dmm_mmu_notifier_range r;
	_Atomic pte_t *slot;
	bool excl, put = false;
	pte_t e, ne;

	if (!t)
		return;
	slot = pte_slot(t, addr);
	/* Only VMAs that really map the page hear about it (the shared
	 * anon_vma of a fork family lists VMAs of other processes too). */
	e = pte_get(slot);
	if (!pte_maps_page(e) || entry_pfn(e) != pfn)
		return;
	mmu_notify(DMM_MMU_NOTIFY_CLEAR, vma->mm, addr, addr + PAGE_SIZE, NULL, &r);
	ptl_lock(t);
	e = pte_get(slot);
	if (!pte_maps_page(e) || entry_pfn(e) != pfn)
		goto out;
	excl = page_is_anon(p) && page_test(p, PG_anon_exclusive);
	if (excl && page_maybe_dma_pinned(p))
		goto out; /* a pinned exclusive page stays mapped */
	if (excl)
		page_clear(p, PG_anon_exclusive);
	if (pte_present(e) && pte_dirty(e))
		page_set(p, PG_dirty);
	/* A device-exclusive entry is writable only as far as the VMA is. */
	if (is_device_exclusive_entry(e) && !(vma_flags_read(vma) & VM_WRITE))
		ne = make_migration_entry(LEAF_MIGRATION_READ_EXCLUSIVE, pfn, leaf_flag_bits(e));
	else
		ne = make_migration_entry_from(p, e, excl);
	pte_set(slot, ne);
	folio_remove_rmap_pte(page_folio(p), p, vma);
	put = true;
out:
	ptl_unlock(t);
	mmu_notifier_invalidate_range_end(&r);
	if (put)
		put_page(sys, p); /* the mapping's reference; the migrator holds another */
}

void try_to_migrate(struct dmm_system *sys, struct dmm_page *p)
{
	lockdep_assert_page_locked(p);
	rmap_walk(sys, p, try_to_migrate_one, p);
}

struct remove_migration_args {
	struct dmm_page *src, *dst;
	unsigned int flags; /* RMP_* */
};

static bool page_is_zero_filled(struct dmm_system *sys, struct dmm_page *page)
{
	const uint64_t *w = page_address(sys, page);

	for (size_t i = 0; i < PAGE_SIZE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/*
 * The kernel's try_to_map_unused_to_zeropage: after a folio split (t's PTL
 * held, @page an order-0 piece, locked), a migration entry for a page
 * whose contents are all zero becomes a special PTE of the shared zero
 * page instead of a mapping of the page (rss -1; the piece loses the
 * mapping and is freed once its split reference goes). devmm has no mlock,
 * so the kernel's VM_LOCKED exception never applies; without contents
 * (contents=none) there is nothing to inspect and every page is remapped.
 */
static bool try_to_map_unused_to_zeropage(struct dmm_system *sys, struct dmm_vma *vma, struct dmm_pte_table *t,
					  uint64_t addr, struct dmm_page *page)
{
	_Atomic pte_t *slot = pte_slot(t, addr);
	pte_t e = pte_get(slot), ne;

	lockdep_assert_ptl_held(t);
	if (!sys->arena || !page_is_anon(page) || folio_test_large(page_folio(page)) || page_is_zone_device(page))
		return false;
	if (!is_migration_entry(e) || entry_pfn(e) != page_to_pfn(sys, page))
		return false;
	if (!page_is_zero_filled(sys, page))
		return false;
	ne = pfn_pte(DMM_ZERO_PFN, _PTE_SPECIAL | vma_prot_bits(vma) | (leaf_soft_dirty(e) ? _PTE_SOFT_DIRTY : 0) |
				      (leaf_uffd_wp(e) ? _PTE_UFFD_WP : 0));
	pte_set(slot, pte_wrprotect(ne));
	add_mm_counter(vma->mm, DMM_MM_ANONPAGES, -1);
	return true;
}

/* Replace a migration entry for src at addr, in vma, by a mapping of dst
 * (t's PTL held, src locked). false: the entry is not src's migration
 * entry. */
bool remove_migration_pte_locked(struct dmm_system *sys, struct dmm_vma *vma, struct dmm_pte_table *t,
				 uint64_t addr, struct dmm_page *src, struct dmm_page *dst)
{
	_Atomic pte_t *slot = pte_slot(t, addr);
	uint64_t dpfn = page_to_pfn(sys, dst);
	pte_t e = pte_get(slot), ne;
	bool w, excl;

	lockdep_assert_ptl_held(t);
	lockdep_assert_page_locked(src);
	if (!is_migration_entry(e) || entry_pfn(e) != page_to_pfn(sys, src))
		return false;
	w = is_writable_migration_entry(e);
	excl = w || is_readable_exclusive_migration_entry(e);
	if (page_is_device_private(dst))
		ne = make_device_private_entry(dpfn, w, leaf_flag_bits(e) & (_LEAF_SOFT_DIRTY | _LEAF_UFFD_WP));
	else
		ne = pfn_pte(dpfn, leaf_to_present_bits(e) | vma_prot_bits(vma) | (w ? _PTE_WRITE : 0));
	get_page(dst);
	if (page_is_anon(dst))
		folio_add_anon_rmap_pte(page_folio(dst), dst, vma, addr, excl ? RMAP_EXCLUSIVE : RMAP_NONE);
	else
		folio_add_file_rmap_pte(page_folio(dst), dst, vma);
	pte_set(slot, ne);
	return true;
}

static void remove_migration_pte(struct dmm_system *sys, struct dmm_vma *vma, uint64_t addr, void *arg)
{
	struct remove_migration_args *ra = arg;
	struct dmm_pte_table *t = rmap_pte_table(vma, addr);

	if (!t)
		return;
	ptl_lock(t);
	if (!(ra->flags & RMP_USE_SHARED_ZEROPAGE) || !try_to_map_unused_to_zeropage(sys, vma, t, addr, ra->dst))
		remove_migration_pte_locked(sys, vma, t, addr, ra->src, ra->dst);
	ptl_unlock(t);
}

void remove_migration_ptes_flags(struct dmm_system *sys, struct dmm_page *src, struct dmm_page *dst,
				 unsigned int flags)
{
	struct remove_migration_args ra = { .src = src, .dst = dst, .flags = flags };

	lockdep_assert_page_locked(src);
	DMM_BUG_ON((flags & RMP_USE_SHARED_ZEROPAGE) && src != dst);
	rmap_walk(sys, src, remove_migration_pte, &ra);
}

void remove_migration_ptes(struct dmm_system *sys, struct dmm_page *src, struct dmm_page *dst)
{
	remove_migration_ptes_flags(sys, src, dst, 0);
}
