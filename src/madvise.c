/* SPDX-License-Identifier: MIT */
/*
 * madvise: DONTNEED zaps and FREE frees lazily (under mmap_lock read, as in
 * the kernel); DONTFORK, DOFORK, HUGEPAGE and NOHUGEPAGE change VMA flags
 * (write).
 * As in Linux, advice applies to the mapped parts of the range and a hole
 * makes the call return -ENOMEM afterwards.
 */
#include "internal.h"

/* Apply fn to each VMA piece of [start, end), in address order. An error
 * from fn stops the walk and is returned (the pieces before it are
 * advised); otherwise a hole makes the result -ENOMEM. */
static int for_each_vma_piece(struct dmm_mm *mm, uint64_t start, uint64_t end,
			      int (*fn)(struct dmm_vma *, uint64_t, uint64_t, void *), void *arg)
{
	uint64_t at = start;
	bool hole = false;
	struct dmm_vma *v;

	for_each_vma_range(mm, v, start, end) {
		int r;

		if (v->start > at)
			hole = true;
		r = fn(v, DMM_MAX(start, v->start), DMM_MIN(end, v->end), arg);
		if (r)
			return r;
		at = v->end;
	}
	return hole || at < end ? -ENOMEM : 0;
}

static int dontneed_piece(struct dmm_vma *v, uint64_t s, uint64_t e, void *arg)
{
	struct dmm_mmu_notifier_range r;

	(void)arg;
	mmu_notify(DMM_MMU_NOTIFY_CLEAR, v->mm, s, e, NULL, &r);
	zap_page_range(v, s, e);
	mmu_notifier_invalidate_range_end(&r);
	return 0;
}

/* MADV_FREE: private anonymous memory only (a file or shared VMA fails
 * with -EINVAL, as madvise_free_single_vma does); not a zap, see
 * lazyfree_page_range. */
static int free_piece(struct dmm_vma *v, uint64_t s, uint64_t e, void *arg)
{
	struct dmm_mmu_notifier_range r;

	(void)arg;
	if (!vma_is_anonymous(v) || (v->flags & VM_SHARED))
		return -EINVAL;
	mmu_notify(DMM_MMU_NOTIFY_CLEAR, v->mm, s, e, NULL, &r);
	lazyfree_page_range(v, s, e);
	mmu_notifier_invalidate_range_end(&r);
	return 0;
}

/* MADV_POPULATE_READ / WRITE: fault the piece in as reads (the zero page
 * for untouched private anonymous memory) or writes (CoW broken), without
 * touching data, so that it also works on metadata-only memory. */
static int populate_piece(struct dmm_vma *v, uint64_t s, uint64_t e, void *arg)
{
	bool write = *(const bool *)arg;

	if (v->flags & (VM_IO | VM_PFNMAP))
		return -EINVAL;
	return populate_locked(v->mm, s, e, write);
}

static int set_flags_piece(struct dmm_vma *v, uint64_t s, uint64_t e, void *arg)
{
	const unsigned long *f = arg; /* f[0] set, f[1] clear */

	(void)s;
	(void)e;
	vma_flags_write(v, (v->flags & ~f[1]) | f[0]);
	return 0;
}

static int madvise_flags(struct dmm_mm *mm, uint64_t start, uint64_t end, unsigned long set,
			 unsigned long clear)
{
	unsigned long f[2] = { set, clear };
	int r;

	mmap_write_lock(mm);
	r = vma_split_range(mm, start, end);
	if (!r)
		r = for_each_vma_piece(mm, start, end, set_flags_piece, f);
	vma_merge_range(mm, start, end);
	mmap_write_unlock(mm);
	return r;
}

int dmm_madvise(struct dmm_mm *mm, uint64_t addr, uint64_t len, int advice)
{
	uint64_t end;
	int r;

	if (!mm || !(len = user_range_len(addr, len)))
		return -EINVAL;
	end = addr + len;
	dmm_stat_inc(mm->sys, madvise);
	switch (advice) {
	case DMM_MADV_DONTNEED:
	case DMM_MADV_FREE:
		mmap_read_lock(mm);
		r = for_each_vma_piece(mm, addr, end, advice == DMM_MADV_FREE ? free_piece : dontneed_piece,
				       NULL);
		mmap_read_unlock(mm);
		return r;
	case DMM_MADV_POPULATE_READ:
	case DMM_MADV_POPULATE_WRITE: {
		bool write = advice == DMM_MADV_POPULATE_WRITE;

		mmap_read_lock(mm);
		r = for_each_vma_piece(mm, addr, end, populate_piece, &write);
		mmap_read_unlock(mm);
		return r;
	}
	case DMM_MADV_DONTFORK:
		return madvise_flags(mm, addr, end, VM_DONTCOPY, 0);
	case DMM_MADV_DOFORK:
		return madvise_flags(mm, addr, end, 0, VM_DONTCOPY);
	case DMM_MADV_HUGEPAGE:
		return madvise_flags(mm, addr, end, VM_HUGEPAGE, VM_NOHUGEPAGE);
	case DMM_MADV_NOHUGEPAGE:
		return madvise_flags(mm, addr, end, VM_NOHUGEPAGE, VM_HUGEPAGE);
	default:
		return -EINVAL;
	}
}
