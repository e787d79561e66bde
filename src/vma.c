/* SPDX-License-Identifier: MIT */
/*
 * VMAs: the tree (vma_tree.c) of an address space's mapping regions, their
 * split and merge, and their links to the reverse map (anon_vma) and to the
 * file they map. Everything here runs with mmap_lock held for write, except
 * lookups (read is enough) and anon_vma_prepare (read + mm->anon_lock).
 */
#include "internal.h"

struct dmm_vma *find_vma(struct dmm_mm *mm, uint64_t addr)
{
	mmap_assert_locked(mm);
	return vma_tree_find(&mm->vmas, addr);
}

struct dmm_vma *vma_next(struct dmm_mm *mm, const struct dmm_vma *vma)
{
	mmap_assert_locked(mm);
	return vma_tree_next(&mm->vmas, vma);
}

struct dmm_vma *vma_prev(struct dmm_mm *mm, const struct dmm_vma *vma)
{
	mmap_assert_locked(mm);
	return vma_tree_prev(&mm->vmas, vma);
}

struct dmm_vma *vma_lookup(struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_vma *v = find_vma(mm, addr);

	return v && v->start <= addr ? v : NULL;
}

struct dmm_vma *vma_alloc(struct dmm_mm *mm, uint64_t start, uint64_t end, unsigned long flags,
			  struct dmm_file *file, uint64_t pgoff)
{
	struct dmm_vma *v = meta_calloc(mm->sys, 1, sizeof(*v));

	if (!v)
		return NULL;
	v->mm = mm;
	v->start = start;
	v->end = end;
	v->flags = flags;
	v->file = file;
	v->pgoff = pgoff;
	list_init(&v->anon_node);
	list_init(&v->file_node);
	return v;
}

/* Reserve the tree nodes one insertion may need. */
static int vmas_reserve(struct dmm_mm *mm)
{
	if (!vma_tree_prealloc_needed(&mm->vmas))
		return 0;
	if (should_fail(mm->sys, DMM_INJECT_META))
		return -ENOMEM;
	return vma_tree_preallocate(&mm->vmas);
}

static void anon_vma_link(struct dmm_vma *v)
{
	struct dmm_anon_vma *av = v->anon_vma;

	if (!av)
		return;
	anon_vma_get(av);
	pthread_rwlock_wrlock(&av->lock);
	list_add_tail(&v->anon_node, &av->vmas);
	pthread_rwlock_unlock(&av->lock);
}

static void file_link(struct dmm_vma *v)
{
	struct dmm_file *f = v->file;

	if (!f)
		return;
	file_get(f);
	pthread_rwlock_wrlock(&f->i_mmap_lock);
	list_add_tail(&v->file_node, &f->i_mmap);
	pthread_rwlock_unlock(&f->i_mmap_lock);
}

int vma_link(struct dmm_mm *mm, struct dmm_vma *vma)
{
	mmap_assert_write_locked(mm);
	if (vmas_reserve(mm))
		return -ENOMEM;
	vma_tree_insert(&mm->vmas, vma);
	anon_vma_link(vma);
	file_link(vma);
	return 0;
}

void vma_unlink_free(struct dmm_mm *mm, struct dmm_vma *vma)
{
	mmap_assert_write_locked(mm);
	vma_tree_remove(&mm->vmas, vma); /* absent when its vma_link failed */
	if (vma->anon_vma) {
		pthread_rwlock_wrlock(&vma->anon_vma->lock);
		list_del(&vma->anon_node);
		pthread_rwlock_unlock(&vma->anon_vma->lock);
		anon_vma_put(vma->anon_vma);
	}
	if (vma->file) {
		struct dmm_file *f = vma->file;

		pthread_rwlock_wrlock(&f->i_mmap_lock);
		list_del(&vma->file_node);
		pthread_rwlock_unlock(&f->i_mmap_lock);
		dmm_file_put(f);
	}
	free(vma);
}

/*
 * Unlink vma from its anon_vma (unlink_anon_vmas), for a VMA that maps no
 * anonymous page any more: it is then as if never faulted. mmap_lock held
 * for write, so no anon_vma_prepare runs on it; rmap walkers find it on
 * the list or not at all.
 */
void vma_drop_anon_vma(struct dmm_vma *vma)
{
	struct dmm_anon_vma *av = vma->anon_vma;

	mmap_assert_write_locked(vma->mm);
	if (!av)
		return;
	pthread_rwlock_wrlock(&av->lock);
	list_del(&vma->anon_node);
	vma->anon_vma = NULL;
	pthread_rwlock_unlock(&av->lock);
	anon_vma_put(av);
}

/*
 * Split at addr. The new VMA shares the anon_vma and file; its pgoff moves
 * with the offset, so every page keeps a consistent linear index. The
 * bounds change under the anon_vma and i_mmap write locks, which rmap
 * walkers hold for read while they look at vma bounds.
 */
void rmap_lock_vma(struct dmm_vma *v)
{
	mmap_assert_write_locked(v->mm);
	if (v->anon_vma)
		pthread_rwlock_wrlock(&v->anon_vma->lock);
	if (v->file)
		pthread_rwlock_wrlock(&v->file->i_mmap_lock);
}

void rmap_unlock_vma(struct dmm_vma *v)
{
	if (v->file)
		pthread_rwlock_unlock(&v->file->i_mmap_lock);
	if (v->anon_vma)
		pthread_rwlock_unlock(&v->anon_vma->lock);
}

struct dmm_vma *split_vma(struct dmm_mm *mm, struct dmm_vma *vma, uint64_t addr)
{
	struct dmm_vma *nv;

	mmap_assert_write_locked(mm);
	DMM_BUG_ON(addr <= vma->start || addr >= vma->end || !PAGE_ALIGNED(addr));
	/* vma_adjust_trans_huge (large-folios.md §2.3): no VMA boundary may
	 * lie inside a PMD leaf, so a leaf across @addr is split first. */
	if (addr & ~HPAGE_PMD_MASK) {
		pte_t pmd;
		struct dmm_pte_table *t = pmd_lookup(mm, addr, &pmd);

		if (t && pmd_is_leaf(pmd))
			split_huge_pmd(mm, t, addr);
	}
	if (vmas_reserve(mm))
		return NULL;
	nv = vma_alloc(mm, addr, vma->end, vma->flags, vma->file, linear_page_index(vma, addr));
	if (!nv)
		return NULL;
	nv->anon_vma = vma->anon_vma;
	if (nv->anon_vma)
		anon_vma_get(nv->anon_vma);
	if (nv->file)
		file_get(nv->file);
	/* One critical section: an rmap walker sees the old bounds or the
	 * new pair, never a range that belongs to neither. */
	rmap_lock_vma(vma);
	vma->end = addr;
	if (nv->anon_vma)
		list_add_tail(&nv->anon_node, &nv->anon_vma->vmas);
	if (nv->file)
		list_add_tail(&nv->file_node, &nv->file->i_mmap);
	rmap_unlock_vma(vma);
	vma_tree_insert(&mm->vmas, nv); /* the rmap links are made above */
	dmm_stat_inc(mm->sys, vma_split);
	return nv;
}

int vma_split_range(struct dmm_mm *mm, uint64_t start, uint64_t end)
{
	struct dmm_vma *v = vma_lookup(mm, start);

	mmap_assert_write_locked(mm);
	if (v && v->start < start && !split_vma(mm, v, start))
		return -ENOMEM;
	v = end ? vma_lookup(mm, end - 1) : NULL;
	if (v && v->end > end && !split_vma(mm, v, end))
		return -ENOMEM;
	return 0;
}

/* Can b be appended to a (adjacent, same object, identical flags —
 * VM_ACCOUNT included —, pgoff contiguous, compatible anon_vmas)? */
static bool can_merge(const struct dmm_vma *a, const struct dmm_vma *b)
{
	if (a->end != b->start || a->flags != b->flags || a->file != b->file)
		return false;
	if (b->pgoff != a->pgoff + vma_pages(a))
		return false;
	return !a->anon_vma || !b->anon_vma || a->anon_vma == b->anon_vma;
}

static void merge_pair(struct dmm_mm *mm, struct dmm_vma *a, struct dmm_vma *b)
{
	struct dmm_anon_vma *av = a->anon_vma ? a->anon_vma : b->anon_vma;

	if (av && !a->anon_vma) {
		/* a adopts b's anon_vma: link a, keep b's link until b goes. */
		a->anon_vma = av;
		anon_vma_link(a);
	}
	rmap_lock_vma(a);
	a->end = b->end;
	b->end = b->start; /* b is now empty: rmap walkers skip it */
	rmap_unlock_vma(a);
	vma_unlink_free(mm, b);
	dmm_stat_inc(mm->sys, vma_merge);
}

void vma_merge_range(struct dmm_mm *mm, uint64_t start, uint64_t end)
{
	struct dmm_vma *v, *n;

	mmap_assert_write_locked(mm);
	v = find_vma(mm, start ? start - 1 : 0);
	while (v && v->start <= end && (n = vma_next(mm, v))) {
		if (can_merge(v, n))
			merge_pair(mm, v, n); /* frees n; v grows */
		else
			v = n;
	}
}

/*
 * May a and b (a just below b) share an anon_vma (anon_vma_compatible)?
 * Adjacent, same object, pgoffs contiguous, flags equal but for the
 * access bits: they could merge after an mprotect.
 */
static bool anon_vma_compatible(const struct dmm_vma *a, const struct dmm_vma *b)
{
	return a->end == b->start && a->file == b->file && !((a->flags ^ b->flags) & ~VM_ACCESS_FLAGS) &&
	       b->pgoff == a->pgoff + vma_pages(a);
}

/*
 * find_mergeable_anon_vma: the anon_vma of a compatible neighbour (the
 * next one first), so that the two can merge later. Linux reuses only a
 * neighbour linked to a single anon_vma, which a VMA copied by fork is not
 * (it has its own and its parent's); devmm's fork shares the parent's, so
 * it reuses only an anon_vma created in this address space. mmap_lock
 * held (read is enough: neighbours' anon_vmas are set under anon_lock,
 * which the caller holds).
 */
static struct dmm_anon_vma *find_mergeable_anon_vma(struct dmm_vma *vma)
{
	struct dmm_mm *mm = vma->mm;
	bool linked = vma_lookup(mm, vma->start) == vma; /* else it has no neighbours */
	const struct dmm_vma *n[2] = {
		linked ? vma_next(mm, vma) : NULL,
		linked ? vma_prev(mm, vma) : NULL,
	};

	if (n[0] && n[0]->anon_vma && n[0]->anon_vma->mm_id == mm->id && anon_vma_compatible(vma, n[0]))
		return n[0]->anon_vma;
	if (n[1] && n[1]->anon_vma && n[1]->anon_vma->mm_id == mm->id && anon_vma_compatible(n[1], vma))
		return n[1]->anon_vma;
	return NULL;
}

int anon_vma_prepare(struct dmm_vma *vma)
{
	struct dmm_anon_vma *av, *reuse;

	mmap_assert_locked(vma->mm);
	if (likely(atomic_load_explicit((_Atomic(struct dmm_anon_vma *) *)&vma->anon_vma,
					memory_order_acquire)))
		return 0;
	av = meta_calloc(vma->mm->sys, 1, sizeof(*av));
	if (!av)
		return -ENOMEM;
	pthread_rwlock_init(&av->lock, NULL);
	list_init(&av->vmas);
	atomic_store(&av->refcount, 0);
	av->mm_id = vma->mm->id;
	pthread_mutex_lock(&vma->mm->anon_lock);
	if (!vma->anon_vma && (reuse = find_mergeable_anon_vma(vma))) {
		atomic_store_explicit((_Atomic(struct dmm_anon_vma *) *)&vma->anon_vma, reuse,
				      memory_order_release);
		anon_vma_link(vma);
	} else if (!vma->anon_vma) {
		atomic_store_explicit((_Atomic(struct dmm_anon_vma *) *)&vma->anon_vma, av,
				      memory_order_release);
		anon_vma_link(vma);
		av = NULL;
	}
	pthread_mutex_unlock(&vma->mm->anon_lock);
	if (av) {
		pthread_rwlock_destroy(&av->lock);
		free(av);
	}
	return 0;
}

void anon_vma_get(struct dmm_anon_vma *av)
{
	atomic_fetch_add_explicit(&av->refcount, 1, memory_order_relaxed);
}

void anon_vma_put(struct dmm_anon_vma *av)
{
	if (atomic_fetch_sub_explicit(&av->refcount, 1, memory_order_acq_rel) == 1) {
		DMM_BUG_ON(!list_empty(&av->vmas));
		pthread_rwlock_destroy(&av->lock);
		free(av);
	}
}
