/* SPDX-License-Identifier: MIT */
/*
 * The mirror's device page table (see ptab.h). Virtual page numbers have 35
 * bits (47-bit addresses): 11 bits of top level, 12 of middle, 12 of leaf.
 * An entry is pfn << 2 | tag, 0 when empty. Nodes are allocated on first
 * use and kept until the table is destroyed.
 */
#include "ptab.h"

#include <errno.h>
#include <stdlib.h>

#define TOP_BITS 11
#define MID_BITS 12
#define LEAF_BITS 12
#define LEAF_SPAN (1ULL << LEAF_BITS)		   /* pages per leaf */
#define MID_SPAN (1ULL << (LEAF_BITS + MID_BITS)) /* pages per middle node */

struct mirror_ptab {
	uint64_t **top[1u << TOP_BITS];
};

static uint64_t vpn(uint64_t addr) { return addr >> DMM_PAGE_SHIFT; }

struct mirror_ptab *ptab_create(void)
{
	return calloc(1, sizeof(struct mirror_ptab));
}

void ptab_destroy(struct mirror_ptab *pt)
{
	if (!pt)
		return;
	for (unsigned int t = 0; t < (1u << TOP_BITS); t++) {
		if (!pt->top[t])
			continue;
		for (unsigned int m = 0; m < (1u << MID_BITS); m++)
			free(pt->top[t][m]);
		free(pt->top[t]);
	}
	free(pt);
}

static uint64_t *slot(struct mirror_ptab *pt, uint64_t addr, int alloc)
{
	uint64_t v = vpn(addr);
	unsigned int t = (unsigned int)(v >> (MID_BITS + LEAF_BITS)) & ((1u << TOP_BITS) - 1);
	unsigned int m = (unsigned int)(v >> LEAF_BITS) & ((1u << MID_BITS) - 1);

	if (!pt->top[t]) {
		if (!alloc || !(pt->top[t] = calloc(1u << MID_BITS, sizeof(uint64_t *))))
			return NULL;
	}
	if (!pt->top[t][m]) {
		if (!alloc || !(pt->top[t][m] = calloc(LEAF_SPAN, sizeof(uint64_t))))
			return NULL;
	}
	return &pt->top[t][m][v & (LEAF_SPAN - 1)];
}

int ptab_get(struct mirror_ptab *pt, uint64_t addr, uint64_t *pfn, enum mirror_tag *tag)
{
	uint64_t *s = slot(pt, addr, 0);

	if (!s || !*s)
		return 0;
	*pfn = *s >> 2;
	*tag = (enum mirror_tag)(*s & 3);
	return 1;
}

int ptab_set(struct mirror_ptab *pt, uint64_t addr, uint64_t pfn, enum mirror_tag tag)
{
	uint64_t *s = slot(pt, addr, 1);

	if (!s)
		return -ENOMEM;
	*s = (pfn << 2) | tag;
	return 0;
}

void ptab_clear(struct mirror_ptab *pt, uint64_t addr)
{
	uint64_t *s = slot(pt, addr, 0);

	if (s)
		*s = 0;
}

enum range_op { CLEAR_ALL, CLEAR_PFN, DOWNGRADE };

static void apply(uint64_t *s, enum range_op op, uint64_t pfn)
{
	if (!*s)
		return;
	if (op == CLEAR_ALL || (op == CLEAR_PFN && (*s >> 2) == pfn))
		*s = 0;
	else if (op == DOWNGRADE)
		*s = (*s & ~3ULL) | MIRROR_READ;
}

/* Visit populated leaves over [start, end) and apply op to the entries. */
static void range_apply(struct mirror_ptab *pt, uint64_t start, uint64_t end, uint64_t pfn, enum range_op op)
{
	uint64_t v = vpn(start), ve = vpn(end - 1) + 1;

	if (start >= end)
		return;
	if (ve > (1ULL << (TOP_BITS + MID_BITS + LEAF_BITS)))
		ve = 1ULL << (TOP_BITS + MID_BITS + LEAF_BITS);
	while (v < ve) {
		unsigned int t = (unsigned int)(v >> (MID_BITS + LEAF_BITS));
		unsigned int m = (unsigned int)(v >> LEAF_BITS) & ((1u << MID_BITS) - 1);
		uint64_t leaf_end;

		if (!pt->top[t]) {
			v = (v | (MID_SPAN - 1)) + 1;
			continue;
		}
		leaf_end = (v | (LEAF_SPAN - 1)) + 1;
		if (pt->top[t][m]) {
			for (uint64_t i = v; i < leaf_end && i < ve; i++) {
				apply(&pt->top[t][m][i & (LEAF_SPAN - 1)], op, pfn);
			}
		}
		v = leaf_end;
	}
}

void ptab_clear_range(struct mirror_ptab *pt, uint64_t start, uint64_t end)
{
	range_apply(pt, start, end, 0, CLEAR_ALL);
}

void ptab_clear_pfn(struct mirror_ptab *pt, uint64_t start, uint64_t end, uint64_t pfn)
{
	range_apply(pt, start, end, pfn, CLEAR_PFN);
}

void ptab_downgrade_range(struct mirror_ptab *pt, uint64_t start, uint64_t end)
{
	range_apply(pt, start, end, 0, DOWNGRADE);
}
