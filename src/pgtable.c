/* SPDX-License-Identifier: MIT */
/*
 * The 4-level page table: directories of 512 pointers down to PTE tables
 * of 512 entries, each PTE table with its own lock (split PTLs).
 *
 * Tables are populated with a compare-and-swap, so walkers need no lock to
 * go down, and they are freed only when the address space is destroyed:
 * a lockless walker (GUP-fast, a CPU access) can never meet a freed table.
 * Empty tables left by munmap cost 4 KiB each until exit, which is the
 * trade devmm makes for never needing RCU.
 */
#include "internal.h"

static void *table_alloc(struct dmm_system *sys, int level)
{
	if (should_fail(sys, DMM_INJECT_PGTABLE))
		return NULL;
	if (level == 0) {
		struct dmm_pte_table *t = calloc(1, sizeof(*t));

		if (t)
			pthread_mutex_init(&t->ptl, NULL);
		return t;
	}
	return calloc(1, sizeof(struct dmm_pt_dir));
}

static void table_free(void *t, int level)
{
	if (level == 0)
		pthread_mutex_destroy(&((struct dmm_pte_table *)t)->ptl);
	free(t);
}

/* The next level below dir for addr; allocate it with CAS if asked. */
static void *next_level(struct dmm_system *sys, struct dmm_pt_dir *dir, uint64_t addr, int level,
			bool alloc)
{
	_Atomic(void *) *slot = &dir->ent[pt_index(addr, level)];
	void *next = atomic_load_explicit(slot, memory_order_acquire);
	void *expected = NULL;

	if (next || !alloc)
		return next;
	next = table_alloc(sys, level - 1);
	if (!next)
		return NULL;
	if (!atomic_compare_exchange_strong_explicit(slot, &expected, next, memory_order_acq_rel,
						     memory_order_acquire)) {
		table_free(next, level - 1);
		next = expected;
	}
	return next;
}

struct dmm_pte_table *pte_table_lookup(struct dmm_mm *mm, uint64_t addr, bool alloc)
{
	struct dmm_pt_dir *dir = mm->pgd;

	for (int level = PT_LEVELS - 1; level >= 1 && dir; level--)
		dir = next_level(mm->sys, dir, addr, level, alloc);
	return (struct dmm_pte_table *)dir;
}

/* Span of one entry at each directory level. */
static inline uint64_t level_span(int level)
{
	return PAGE_SIZE << (PT_BITS * level);
}

static int walk_level(struct dmm_mm *mm, struct dmm_pt_dir *dir, int level, uint64_t addr,
		      uint64_t end, pte_range_fn fn, void *arg)
{
	while (addr < end) {
		uint64_t span = level_span(level);
		uint64_t next = (addr & ~(span - 1)) + span;
		void *child = atomic_load_explicit(&dir->ent[pt_index(addr, level)], memory_order_acquire);
		int r;

		if (next > end || next == 0)
			next = end;
		if (child) {
			r = level == 1 ? fn(mm, child, addr, next, arg)
				       : walk_level(mm, child, level - 1, addr, next, fn, arg);
			if (r)
				return r;
		}
		addr = next;
	}
	return 0;
}

int walk_pte_tables(struct dmm_mm *mm, uint64_t start, uint64_t end, pte_range_fn fn, void *arg)
{
	if (start >= end)
		return 0;
	return walk_level(mm, mm->pgd, PT_LEVELS - 1, start, end, fn, arg);
}

static void free_level(void *t, int level)
{
	if (level > 0) {
		struct dmm_pt_dir *dir = t;

		for (unsigned int i = 0; i < PTRS_PER_TABLE; i++) {
			void *child = atomic_load_explicit(&dir->ent[i], memory_order_relaxed);

			if (child)
				free_level(child, level - 1);
		}
	}
	table_free(t, level);
}

void pgtable_free_all(struct dmm_mm *mm)
{
	if (mm->pgd)
		free_level(mm->pgd, PT_LEVELS - 1);
	mm->pgd = NULL;
}
