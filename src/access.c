/* SPDX-License-Identifier: MIT */
/*
 * CPU access: loads, stores and atomics performed as a CPU would, through
 * the page table. An access holds the PTL of its entry while it touches
 * the frame (the model's TLB: whoever changes the entry under the PTL knows
 * no access goes on through the old one). An entry that does not allow the
 * access is a fault, resolved by handle_mm_fault, and the access retries.
 */
#include "internal.h"

/* ACC_POPULATE_*: the fault alone, no data (MADV_POPULATE_READ/WRITE). */
enum access_op { ACC_READ, ACC_WRITE, ACC_CMPXCHG, ACC_ADD, ACC_POPULATE_READ, ACC_POPULATE_WRITE };

struct access {
	enum access_op op;
	uint8_t *buf;		/* READ / WRITE */
	uint32_t expected, val; /* CMPXCHG / ADD */
	uint32_t old;
};

static bool op_writes(enum access_op op) { return op != ACC_READ && op != ACC_POPULATE_READ; }

static bool op_has_data(enum access_op op) { return op != ACC_POPULATE_READ && op != ACC_POPULATE_WRITE; }

static void do_op(struct access *a, uint8_t *mem, size_t len)
{
	uint32_t *w = (uint32_t *)mem;

	switch (a->op) {
	case ACC_READ:
		sim_memcpy(a->buf, mem, len);
		break;
	case ACC_WRITE:
		sim_memcpy(mem, a->buf, len);
		break;
	case ACC_CMPXCHG:
		a->old = a->expected;
		__atomic_compare_exchange_n(w, &a->old, a->val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		break;
	case ACC_ADD:
		a->old = __atomic_fetch_add(w, a->val, __ATOMIC_SEQ_CST);
		break;
	case ACC_POPULATE_READ:
	case ACC_POPULATE_WRITE:
		break;
	}
}

/* Through a present PMD leaf (a THP or the huge zero folio). */
static bool access_pmd(struct dmm_mm *mm, struct dmm_pte_table *t, uint64_t addr, size_t len, struct access *a)
{
	bool write = op_writes(a->op), done = false;
	pte_t pmd;

	ptl_lock(t);
	pmd = pmd_get(t);
	if (pmd_leaf_present(pmd) && (!write || pte_write(pmd))) {
		struct dmm_page *p = pfn_to_page(mm->sys, pmd_pfn_at(pmd, addr));
		pte_t n = write ? pte_mkdirty(pte_mkyoung(pmd)) : pte_mkyoung(pmd);

		if (op_has_data(a->op))
			do_op(a, (uint8_t *)page_address(mm->sys, p) + (addr & ~PAGE_MASK), len);
		if (n != pmd)
			pmd_set(t, n);
		done = true;
	}
	ptl_unlock(t);
	return done;
}

/* Try the access through the current entry. true: done. */
static bool access_present(struct dmm_mm *mm, uint64_t addr, size_t len, struct access *a)
{
	bool write = op_writes(a->op), done = false;
	struct dmm_pte_table *t;
	_Atomic pte_t *slot;
	pte_t e;

	t = pmd_lookup(mm, addr, &e);
	if (!t || pmd_none(e))
		return false;
	if (unlikely(pmd_is_leaf(e)))
		return access_pmd(mm, t, addr, len, a);
	slot = pte_slot(t, addr);
	ptl_lock(t);
	e = pte_get(slot);
	if (pte_present(e) && (!write || pte_write(e))) {
		struct dmm_page *p = pfn_to_page(mm->sys, pte_pfn(e));
		pte_t ne = write ? pte_mkdirty(pte_mkyoung(e)) : pte_mkyoung(e);

		if (op_has_data(a->op))
			do_op(a, (uint8_t *)page_address(mm->sys, p) + (addr & ~PAGE_MASK), len);
		if (ne != e)
			pte_set(slot, ne);
		done = true;
	}
	ptl_unlock(t);
	return done;
}

/* One access within one page, mmap_lock held for read. */
static int access_one(struct dmm_mm *mm, uint64_t addr, size_t len, struct access *a)
{
	bool write = op_writes(a->op);

	mmap_assert_locked(mm);
	for (;;) {
		struct dmm_vma *vma = vma_lookup(mm, addr);
		vm_fault_t r;

		if (!vma || !(vma->flags & (write ? VM_WRITE : VM_READ))) {
			dmm_stat_inc(mm->sys, fault_segv);
			return -EFAULT;
		}
		if (access_present(mm, addr, len, a))
			return 0;
		r = handle_mm_fault(vma, addr, write ? FAULT_FLAG_WRITE : 0);
		if (r & VM_FAULT_ERROR) {
			if (r & VM_FAULT_OOM)
				dmm_stat_inc(mm->sys, fault_oom);
			else
				dmm_stat_inc(mm->sys, fault_segv);
			return vm_fault_to_errno(r);
		}
	}
}

/* Pages per mmap_lock hold, so that writers get a turn on long ranges. */
#define ACCESS_BATCH 64

static int access_range(struct dmm_mm *mm, uint64_t addr, void *buf, size_t len, enum access_op op)
{
	struct access a = { .op = op, .buf = buf };
	int r = 0;

	if (!mm || (!buf && len && op_has_data(op)))
		return -EINVAL;
	if (addr >= DMM_TASK_SIZE || len > DMM_TASK_SIZE - addr)
		return -EFAULT;
	/* Metadata only: refused before any fault, so nothing changes. */
	if (op_has_data(op) && !mm->sys->arena)
		return -EOPNOTSUPP;
	while (len && !r) {
		mmap_read_lock(mm);
		for (unsigned int n = 0; len && n < ACCESS_BATCH; n++) {
			size_t chunk = DMM_MIN(len, PAGE_SIZE - (addr & ~PAGE_MASK));

			r = access_one(mm, addr, chunk, &a);
			if (r)
				break;
			if (a.buf)
				a.buf += chunk;
			addr += chunk;
			len -= chunk;
		}
		mmap_read_unlock(mm);
	}
	return r;
}

int populate_locked(struct dmm_mm *mm, uint64_t start, uint64_t end, bool write)
{
	struct access a = { .op = write ? ACC_POPULATE_WRITE : ACC_POPULATE_READ };
	int r = 0;

	for (uint64_t addr = start; addr < end && !r; addr += PAGE_SIZE)
		r = access_one(mm, addr, PAGE_SIZE, &a);
	return r;
}

int dmm_touch(struct dmm_mm *mm, uint64_t addr, size_t len, bool write)
{
	return access_range(mm, addr, NULL, len, write ? ACC_POPULATE_WRITE : ACC_POPULATE_READ);
}

int dmm_read(struct dmm_mm *mm, uint64_t addr, void *buf, size_t len)
{
	return access_range(mm, addr, buf, len, ACC_READ);
}

int dmm_write(struct dmm_mm *mm, uint64_t addr, const void *buf, size_t len)
{
	return access_range(mm, addr, (void *)buf, len, ACC_WRITE);
}

static int access_word(struct dmm_mm *mm, uint64_t addr, struct access *a)
{
	int r;

	if (!mm || (addr & 3))
		return -EINVAL;
	if (addr >= DMM_TASK_SIZE)
		return -EFAULT;
	if (!mm->sys->arena)
		return -EOPNOTSUPP;
	mmap_read_lock(mm);
	r = access_one(mm, addr, 4, a);
	mmap_read_unlock(mm);
	return r;
}

int dmm_load32(struct dmm_mm *mm, uint64_t addr, uint32_t *val)
{
	uint32_t v;
	struct access a = { .op = ACC_READ, .buf = (uint8_t *)&v };
	int r;

	if (!val)
		return -EINVAL;
	r = access_word(mm, addr, &a);
	if (!r)
		*val = v;
	return r;
}

int dmm_store32(struct dmm_mm *mm, uint64_t addr, uint32_t val)
{
	struct access a = { .op = ACC_WRITE, .buf = (uint8_t *)&val };

	return access_word(mm, addr, &a);
}

int dmm_cmpxchg32(struct dmm_mm *mm, uint64_t addr, uint32_t expected, uint32_t desired,
		  uint32_t *old)
{
	struct access a = { .op = ACC_CMPXCHG, .expected = expected, .val = desired };
	int r = access_word(mm, addr, &a);

	if (!r && old)
		*old = a.old;
	return r;
}

int dmm_fetch_add32(struct dmm_mm *mm, uint64_t addr, uint32_t delta, uint32_t *old)
{
	struct access a = { .op = ACC_ADD, .val = delta };
	int r = access_word(mm, addr, &a);

	if (!r && old)
		*old = a.old;
	return r;
}
