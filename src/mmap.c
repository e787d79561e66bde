/* SPDX-License-Identifier: MIT */
/*
 * mmap and munmap: creating mapping regions (anonymous private, anonymous
 * shared through a shmem object, files shared or private), placing them in
 * the address space, and unmapping ranges (semantics.md §3.4).
 */
#include "internal.h"

uint64_t user_range_len(uint64_t addr, uint64_t len)
{
	if (!PAGE_ALIGNED(addr) || len == 0 || len > DMM_TASK_SIZE)
		return 0;
	len = (len + PAGE_SIZE - 1) & PAGE_MASK;
	if (addr >= DMM_TASK_SIZE || len > DMM_TASK_SIZE - addr)
		return 0;
	return len;
}

static bool range_has_vma(struct dmm_mm *mm, uint64_t start, uint64_t end)
{
	struct dmm_vma *v = find_vma(mm, start);

	return v && v->start < end;
}

/* Bottom-up first fit at or above hint (or mmap_base). 0: no room. */
static uint64_t get_unmapped_area(struct dmm_mm *mm, uint64_t hint, uint64_t len)
{
	uint64_t addr = hint ? hint : mm->mmap_base;
	struct dmm_vma *v;

	if (addr < DMM_MMAP_MIN)
		addr = DMM_MMAP_MIN;
	addr = (addr + PAGE_SIZE - 1) & PAGE_MASK;
	v = find_vma(mm, addr);
	for (;;) {
		if (addr > DMM_TASK_SIZE || len > DMM_TASK_SIZE - addr)
			return hint ? get_unmapped_area(mm, 0, len) : 0;
		if (!v || addr + len <= v->start)
			return addr;
		if (v->end > addr)
			addr = v->end;
		v = vma_next(mm, v);
	}
}

int do_munmap(struct dmm_mm *mm, uint64_t start, uint64_t len)
{
	uint64_t end = start + len;
	struct dmm_vma *v, *next;

	mmap_assert_write_locked(mm);
	if (!range_has_vma(mm, start, end))
		return 0;
	struct dmm_mmu_notifier_range r;

	if (vma_split_range(mm, start, end))
		return -ENOMEM;
	mmu_notify(DMM_MMU_NOTIFY_UNMAP, mm, start, end, NULL, &r);
	for_each_vma_range(mm, v, start, end)
		zap_page_range(v, start, end);
	mmu_notifier_invalidate_range_end(&r);
	for (v = find_vma(mm, start); v && v->start < end; v = next) {
		next = vma_next(mm, v);
		vma_unlink_free(mm, v);
	}
	free_pgtables_hole(mm, start, end);
	return 0;
}

int dmm_munmap(struct dmm_mm *mm, uint64_t addr, uint64_t len)
{
	int r;

	if (!mm || !(len = user_range_len(addr, len)))
		return -EINVAL;
	mmap_write_lock(mm);
	r = do_munmap(mm, addr, len);
	mmap_write_unlock(mm);
	rcu_drain_if_due(); /* the page tables munmap freed */
	dmm_stat_inc(mm->sys, munmap);
	return r;
}

static unsigned long prot_to_vm(int prot)
{
	return ((prot & DMM_PROT_READ) ? VM_READ : 0) | ((prot & DMM_PROT_WRITE) ? VM_WRITE : 0);
}

#define MAP_KNOWN (DMM_MAP_SHARED | DMM_MAP_PRIVATE | DMM_MAP_FIXED | DMM_MAP_ANONYMOUS | \
		   DMM_MAP_FIXED_NOREPLACE)

static int mmap_check_args(uint64_t addr, uint64_t len, int prot, int flags,
			   struct dmm_file *file, uint64_t pgoff)
{
	int type = flags & (DMM_MAP_SHARED | DMM_MAP_PRIVATE);
	bool fixed = flags & (DMM_MAP_FIXED | DMM_MAP_FIXED_NOREPLACE);

	if (len == 0 || len > DMM_TASK_SIZE || (prot & ~(DMM_PROT_READ | DMM_PROT_WRITE)))
		return -EINVAL;
	if ((flags & ~MAP_KNOWN) || (type != DMM_MAP_SHARED && type != DMM_MAP_PRIVATE))
		return -EINVAL;
	if (!!(flags & DMM_MAP_ANONYMOUS) == !!file)
		return -EINVAL;
	if (fixed && (!PAGE_ALIGNED(addr) || addr < DMM_MMAP_MIN ||
		      addr >= DMM_TASK_SIZE || len > DMM_TASK_SIZE - addr))
		return -EINVAL;
	if (file && pgoff > DMM_MAX_FILE_PAGES)
		return -EINVAL;
	return 0;
}

/* Place and link the new VMA (mmap_lock held for write). */
static int mmap_region(struct dmm_mm *mm, uint64_t addr, uint64_t len, int flags,
		       struct dmm_vma *vma, uint64_t *start)
{
	mmap_assert_write_locked(mm);
	if (flags & DMM_MAP_FIXED_NOREPLACE) {
		if (range_has_vma(mm, addr, addr + len))
			return -EEXIST;
	} else if (flags & DMM_MAP_FIXED) {
		int r = do_munmap(mm, addr, len);

		if (r)
			return r;
	} else {
		addr = get_unmapped_area(mm, PAGE_ALIGNED(addr) ? addr : 0, len);
		if (!addr)
			return -ENOMEM;
	}
	vma->start = addr;
	vma->end = addr + len;
	if (vma_is_anonymous(vma))
		vma->pgoff = addr >> PAGE_SHIFT;
	if (vma_link(mm, vma))
		return -ENOMEM;
	*start = addr;
	vma_merge_range(mm, addr, addr + len); /* may free vma */
	return 0;
}

int dmm_mmap(struct dmm_mm *mm, uint64_t addr, uint64_t len, int prot, int flags,
	     struct dmm_file *file, uint64_t pgoff, uint64_t *out)
{
	unsigned long vm_flags = prot_to_vm(prot) | VM_MAYREAD | VM_MAYWRITE;
	struct dmm_file *obj = file;
	struct dmm_vma *vma;
	uint64_t start = 0;
	int r;

	if (!mm)
		return -EINVAL;
	r = mmap_check_args(addr, len, prot, flags, file, pgoff);
	if (r)
		return r;
	len = (len + PAGE_SIZE - 1) & PAGE_MASK;
	if (flags & DMM_MAP_SHARED)
		vm_flags |= VM_SHARED | VM_MAYSHARE;
	else if (prot & DMM_PROT_WRITE)
		vm_flags |= VM_ACCOUNT; /* a private writable mapping commits memory */
	if (!file && (flags & DMM_MAP_SHARED)) {
		obj = file_alloc(mm->sys, len >> PAGE_SHIFT, true);
		if (!obj)
			return -ENOMEM;
		pgoff = 0;
	}
	vma = vma_alloc(mm, 0, 0, vm_flags, obj, pgoff);
	if (!vma) {
		r = -ENOMEM;
		goto out;
	}
	mmap_write_lock(mm);
	r = mmap_region(mm, addr, len, flags, vma, &start);
	mmap_write_unlock(mm);
	rcu_drain_if_due(); /* MAP_FIXED may have unmapped */
	if (r)
		free(vma);
	else if (out)
		*out = start;
out:
	if (obj && obj != file)
		dmm_file_put(obj); /* the VMA holds its own reference */
	return r;
}
