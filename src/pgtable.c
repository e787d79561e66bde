/* SPDX-License-Identifier: MIT */
/*
 * The 4-level page table: directories of 512 pointers down to PTE tables
 * of 512 entries, each PTE table with its own lock (split PTLs) and the
 * word of its PMD slot (types.h, pte.h): NONE, TABLE or a leaf.
 * pte_alloc makes a slot TABLE; PTE-level walkers skip NONE slots. A
 * single-address user that needs a PTE (pte_lookup, pte_alloc) and finds
 * a PMD leaf splits it (split_huge_pmd) and goes on at PTE level.
 *
 * Tables are populated with a compare-and-swap, so walkers need no lock to
 * go down. munmap frees the tables that lie wholly between the VMAs left
 * around the hole it made (free_pgtables, as the kernel's free_pgd_range
 * with its floor and ceiling): with the mmap_lock held for write no fault
 * or locked walker is in this mm, rmap walkers only look at addresses
 * inside VMAs still linked to their anon_vma or file (none of them under
 * such a table), and GUP-fast, the one walker left, runs in an RCU read
 * section: an unlinked table is freed after a grace period. The pgd lives
 * as long as the mm; so does everything at exit (mm_free).
 */
#include "internal.h"

static void *table_alloc(struct dmm_system *sys, int level, pte_t pmd)
{
	struct dmm_pt_dir *dir;

	if (should_fail(sys, DMM_INJECT_PGTABLE))
		return NULL;
	if (level == 0) {
		struct dmm_pte_table *t = calloc(1, sizeof(*t));

		if (t) {
			pthread_mutex_init(&t->ptl, NULL);
			atomic_init(&t->pmd, pmd);
		}
		return t;
	}
	dir = calloc(1, sizeof(*dir));
	if (dir)
		dir->level = level;
	return dir;
}

static void table_free(void *t, int level)
{
	if (level == 0)
		pthread_mutex_destroy(&((struct dmm_pte_table *)t)->ptl);
	free(t);
}

/* The next level below dir for addr; allocate it with CAS if asked (a new
 * PTE table starts with the slot word @pmd: nobody sees it before the CAS
 * publishes it). */
static inline __attribute__((always_inline)) void *next_level(struct dmm_mm *mm, struct dmm_pt_dir *dir,
							    uint64_t addr, int level, bool alloc, pte_t pmd)
{
	_Atomic(void *) *slot = &dir->ent[pt_index(addr, level)];
	void *next = atomic_load_explicit(slot, memory_order_acquire);
	void *expected = NULL;

	if (likely(next) || !alloc)
		return next;
	next = table_alloc(mm->sys, level - 1, pmd);
	if (!next)
		return NULL;
	if (!atomic_compare_exchange_strong_explicit(slot, &expected, next, memory_order_acq_rel,
						     memory_order_acquire)) {
		table_free(next, level - 1);
		return expected;
	}
	atomic_fetch_add_explicit(&mm->nr_pgtables, 1, memory_order_relaxed);
	dmm_stat_inc(mm->sys, pgtable_alloc);
	return next;
}

/* Inlined into each caller below: the lookups are on the fault and
 * access paths. */
static inline __attribute__((always_inline)) struct dmm_pte_table *pmd_slot_table(struct dmm_mm *mm, uint64_t addr,
										  bool alloc, pte_t pmd)
{
	struct dmm_pt_dir *dir = mm->pgd;

	for (int level = PT_LEVELS - 1; level >= 1 && dir; level--)
		dir = next_level(mm, dir, addr, level, alloc, pmd);
	return (struct dmm_pte_table *)dir;
}

struct dmm_pte_table *pmd_lookup(struct dmm_mm *mm, uint64_t addr, pte_t *pmd)
{
	struct dmm_pte_table *t = pmd_slot_table(mm, addr, false, PMD_NONE);

	*pmd = t ? pmd_get(t) : PMD_NONE;
	return t;
}

struct dmm_pte_table *pte_lookup(struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_pte_table *t = pmd_slot_table(mm, addr, false, PMD_NONE);
	pte_t pmd;

	if (unlikely(!t))
		return NULL;
	pmd = pmd_get(t);
	if (likely(pmd_is_table(pmd)))
		return t;
	if (unlikely(pmd_is_leaf(pmd))) {
		split_huge_pmd(mm, t, addr); /* a PTE-level user: see pte_lookup */
		return t;
	}
	return NULL;
}

struct dmm_pte_table *pmd_alloc(struct dmm_mm *mm, uint64_t addr)
{
	return pmd_slot_table(mm, addr, true, PMD_NONE);
}

struct dmm_pte_table *pte_alloc(struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_pte_table *t = pmd_slot_table(mm, addr, true, PMD_TABLE);
	pte_t pmd;

	if (!t)
		return NULL;
	pmd = pmd_get(t);
	if (likely(pmd_is_table(pmd)))
		return t;
	ptl_lock(t);
	pmd = pmd_get(t);
	if (pmd_none(pmd))
		pmd_set(t, PMD_TABLE);
	ptl_unlock(t);
	if (pmd_is_leaf(pmd))
		split_huge_pmd(mm, t, addr);
	return t;
}

/* Free a table and everything below it; the number of tables freed. */
static unsigned long free_level(void *t, int level)
{
	unsigned long n = 1;

	if (level > 0) {
		struct dmm_pt_dir *dir = t;

		for (unsigned int i = 0; i < PTRS_PER_TABLE; i++) {
			void *child = atomic_load_explicit(&dir->ent[i], memory_order_relaxed);

			if (child)
				n += free_level(child, level - 1);
		}
	}
	table_free(t, level);
	return n;
}

void pgtable_free_all(struct dmm_mm *mm)
{
	if (mm->pgd) {
		unsigned long n = free_level(mm->pgd, PT_LEVELS - 1) - 1; /* the pgd is not counted */

		dmm_stat_add(mm->sys, pgtable_free, n);
		atomic_fetch_sub_explicit(&mm->nr_pgtables, (long)n, memory_order_relaxed);
	}
	mm->pgd = NULL;
}

/* ------------------------------------------------------------------------ */
/* Freeing the tables of an unmapped range                                   */

static void pte_table_free_rcu(struct rcu_head *head)
{
	free_level(container_of(head, struct dmm_pte_table, rcu), 0);
}

static void pt_dir_free_rcu(struct rcu_head *head)
{
	struct dmm_pt_dir *dir = container_of(head, struct dmm_pt_dir, rcu);

	free_level(dir, dir->level);
}

/* The tables of an unlinked subtree, which must map nothing: every entry
 * under it was zapped and no VMA is left there to fault one in. */
static unsigned long count_empty_subtree(void *t, int level)
{
	unsigned long n = 1;

	if (level == 0)
		DMM_BUG_ON(pmd_is_leaf(pmd_get(t)));
	for (unsigned int i = 0; i < PTRS_PER_TABLE; i++) {
		if (level == 0) {
			DMM_BUG_ON(!pte_none(pte_get(&((struct dmm_pte_table *)t)->ent[i])));
			continue;
		}
		void *child = atomic_load_explicit(&((struct dmm_pt_dir *)t)->ent[i], memory_order_relaxed);

		if (child)
			n += count_empty_subtree(child, level - 1);
	}
	return n;
}

struct free_ctx {
	struct dmm_mm *mm;
	uint64_t floor, ceiling;
	unsigned long freed;
};

/* Unlink the table at *slot (of the given level) and everything below it,
 * and free them after a grace period. */
static void unlink_subtree(struct free_ctx *fc, _Atomic(void *) *slot, void *t, int level)
{
	atomic_store_explicit(slot, NULL, memory_order_release);
	fc->freed += count_empty_subtree(t, level);
	if (level == 0)
		call_rcu(&((struct dmm_pte_table *)t)->rcu, pte_table_free_rcu);
	else
		call_rcu(&((struct dmm_pt_dir *)t)->rcu, pt_dir_free_rcu);
}

static void free_pgd_level(struct free_ctx *fc, struct dmm_pt_dir *dir, int level, uint64_t addr,
			   uint64_t end)
{
	while (addr < end) {
		uint64_t span = pt_level_span(level);
		uint64_t base = addr & ~(span - 1), next = base + span;
		_Atomic(void *) *slot = &dir->ent[pt_index(addr, level)];
		void *child = atomic_load_explicit(slot, memory_order_relaxed);

		if (child) {
			if (base >= fc->floor && next <= fc->ceiling)
				unlink_subtree(fc, slot, child, level - 1);
			else if (level > 1)
				free_pgd_level(fc, child, level - 1, addr, DMM_MIN(next, end));
		}
		addr = next;
	}
}

void free_pgtables(struct dmm_mm *mm, uint64_t start, uint64_t end, uint64_t floor, uint64_t ceiling)
{
	struct free_ctx fc = { .mm = mm, .floor = floor, .ceiling = ceiling };

	mmap_assert_write_locked(mm);
	if (start >= end)
		return;
	free_pgd_level(&fc, mm->pgd, PT_LEVELS - 1, start, end);
	if (fc.freed) {
		atomic_fetch_sub_explicit(&mm->nr_pgtables, (long)fc.freed, memory_order_relaxed);
		dmm_stat_add(mm->sys, pgtable_free, fc.freed);
	}
}

static unsigned long walk_tables_level(struct dmm_pt_dir *dir, int level, uint64_t base,
				       pgtable_fn fn, void *arg)
{
	unsigned long n = 0;

	for (unsigned int i = 0; i < PTRS_PER_TABLE; i++) {
		void *child = atomic_load_explicit(&dir->ent[i], memory_order_acquire);
		uint64_t start = base + i * pt_level_span(level);

		if (!child)
			continue;
		n++;
		fn(arg, child, start, start + pt_level_span(level), level - 1);
		if (level > 1)
			n += walk_tables_level(child, level - 1, start, fn, arg);
	}
	return n;
}

unsigned long walk_pgtables(struct dmm_mm *mm, pgtable_fn fn, void *arg)
{
	return walk_tables_level(mm->pgd, PT_LEVELS - 1, 0, fn, arg);
}
