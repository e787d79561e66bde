/* SPDX-License-Identifier: MIT */
/*
 * Page-table entries: an encoded sum type (semantics.md §2.1).
 *
 *   0                              NONE
 *   pfn<<12 | flags | PRESENT      PRESENT(pfn; W, dirty, young, soft-dirty,
 *                                  uffd-wp, special; PROT_NONE or no-read
 *                                  from the VMA's protection)
 *   pfn<<12 | bits | type<<1       a non-present "softleaf": device-private
 *                                  R/W, device-exclusive, migration R /
 *                                  R-exclusive / W; young, dirty, soft-dirty
 *                                  and uffd-wp carried in their own bits
 *
 * Everything that looks at an entry dispatches in the same order:
 * none, present, then the leaf types. make_* builds, is_* tests, *_to_*
 * converts.
 */
#ifndef DEVMM_PTE_H
#define DEVMM_PTE_H

#include <stdbool.h>
#include <stdint.h>

#include "types.h"

#define _PTE_PRESENT (1ULL << 0)
/* present entries */
#define _PTE_WRITE (1ULL << 1)
#define _PTE_DIRTY (1ULL << 2)
#define _PTE_YOUNG (1ULL << 3)
#define _PTE_SOFT_DIRTY (1ULL << 4)
#define _PTE_UFFD_WP (1ULL << 5)
#define _PTE_SPECIAL (1ULL << 6)
#define _PTE_PROTNONE (1ULL << 7) /* present but PROT_NONE: no access at all */
#define _PTE_NOREAD (1ULL << 8)	  /* present in a write-only VMA: not readable */
#define _PTE_PROT_BITS (_PTE_PROTNONE | _PTE_NOREAD) /* what the VMA's protection adds */
/* non-present entries: type in bits 1..5, flags in 6..9 */
#define _LEAF_TYPE_SHIFT 1
#define _LEAF_TYPE_MASK (0x1fULL << _LEAF_TYPE_SHIFT)
#define _LEAF_YOUNG (1ULL << 6)
#define _LEAF_DIRTY (1ULL << 7)
#define _LEAF_SOFT_DIRTY (1ULL << 8)
#define _LEAF_UFFD_WP (1ULL << 9)
#define _PTE_PFN_SHIFT 12

enum leaf_type {
	LEAF_NONE = 0,
	LEAF_DEVICE_PRIVATE_READ = 1,
	LEAF_DEVICE_PRIVATE_WRITE = 2,
	LEAF_DEVICE_EXCLUSIVE = 3,
	LEAF_MIGRATION_READ = 4,
	LEAF_MIGRATION_READ_EXCLUSIVE = 5,
	LEAF_MIGRATION_WRITE = 6,
};

static inline bool pte_none(pte_t e) { return e == 0; }
static inline bool pte_present(pte_t e) { return e & _PTE_PRESENT; }
static inline uint64_t pte_pfn(pte_t e) { return e >> _PTE_PFN_SHIFT; }

/* present entries */
static inline pte_t pfn_pte(uint64_t pfn, uint64_t bits) { return (pfn << _PTE_PFN_SHIFT) | bits | _PTE_PRESENT; }
static inline bool pte_write(pte_t e) { return e & _PTE_WRITE; }
static inline bool pte_dirty(pte_t e) { return e & _PTE_DIRTY; }
static inline bool pte_young(pte_t e) { return e & _PTE_YOUNG; }
static inline bool pte_special(pte_t e) { return e & _PTE_SPECIAL; }
static inline bool pte_soft_dirty(pte_t e) { return e & _PTE_SOFT_DIRTY; }
static inline bool pte_uffd_wp(pte_t e) { return e & _PTE_UFFD_WP; }
static inline bool pte_protnone(pte_t e) { return e & _PTE_PROTNONE; }
static inline bool pte_noread(pte_t e) { return e & _PTE_NOREAD; }
static inline pte_t pte_mkwrite(pte_t e) { return e | _PTE_WRITE; }
static inline pte_t pte_wrprotect(pte_t e) { return e & ~_PTE_WRITE; }
static inline pte_t pte_mkdirty(pte_t e) { return e | _PTE_DIRTY; }
static inline pte_t pte_mkclean(pte_t e) { return e & ~_PTE_DIRTY; }
static inline pte_t pte_mkyoung(pte_t e) { return e | _PTE_YOUNG; }
static inline pte_t pte_mkold(pte_t e) { return e & ~_PTE_YOUNG; }

/* non-present entries ("softleaf") */
static inline enum leaf_type leaf_type(pte_t e)
{
	if (pte_none(e) || pte_present(e))
		return LEAF_NONE;
	return (enum leaf_type)((e & _LEAF_TYPE_MASK) >> _LEAF_TYPE_SHIFT);
}
static inline pte_t make_leaf(enum leaf_type t, uint64_t pfn, uint64_t bits)
{
	return (pfn << _PTE_PFN_SHIFT) | ((uint64_t)t << _LEAF_TYPE_SHIFT) | bits;
}
static inline bool is_device_private_entry(pte_t e)
{
	enum leaf_type t = leaf_type(e);
	return t == LEAF_DEVICE_PRIVATE_READ || t == LEAF_DEVICE_PRIVATE_WRITE;
}
static inline bool is_writable_device_private_entry(pte_t e) { return leaf_type(e) == LEAF_DEVICE_PRIVATE_WRITE; }
static inline bool is_device_exclusive_entry(pte_t e) { return leaf_type(e) == LEAF_DEVICE_EXCLUSIVE; }
static inline bool is_migration_entry(pte_t e)
{
	enum leaf_type t = leaf_type(e);
	return t >= LEAF_MIGRATION_READ && t <= LEAF_MIGRATION_WRITE;
}
static inline bool is_writable_migration_entry(pte_t e) { return leaf_type(e) == LEAF_MIGRATION_WRITE; }
static inline bool is_readable_exclusive_migration_entry(pte_t e) { return leaf_type(e) == LEAF_MIGRATION_READ_EXCLUSIVE; }
static inline bool leaf_young(pte_t e) { return e & _LEAF_YOUNG; }
static inline bool leaf_dirty(pte_t e) { return e & _LEAF_DIRTY; }
static inline bool leaf_soft_dirty(pte_t e) { return e & _LEAF_SOFT_DIRTY; }
static inline bool leaf_uffd_wp(pte_t e) { return e & _LEAF_UFFD_WP; }
static inline uint64_t leaf_flag_bits(pte_t e) { return e & (_LEAF_YOUNG | _LEAF_DIRTY | _LEAF_SOFT_DIRTY | _LEAF_UFFD_WP); }

static inline pte_t make_device_private_entry(uint64_t pfn, bool write, uint64_t bits)
{
	return make_leaf(write ? LEAF_DEVICE_PRIVATE_WRITE : LEAF_DEVICE_PRIVATE_READ, pfn, bits);
}
static inline pte_t make_device_exclusive_entry(uint64_t pfn, uint64_t bits) { return make_leaf(LEAF_DEVICE_EXCLUSIVE, pfn, bits); }
static inline pte_t make_migration_entry(enum leaf_type t, uint64_t pfn, uint64_t bits) { return make_leaf(t, pfn, bits); }

/* Does the entry map a frame (count in mapcount and refcount)? */
static inline bool pte_maps_page(pte_t e)
{
	if (pte_present(e))
		return !pte_special(e);
	return is_device_private_entry(e) || is_device_exclusive_entry(e);
}

/* The pfn behind any non-none entry. */
static inline uint64_t entry_pfn(pte_t e) { return e >> _PTE_PFN_SHIFT; }

/* Public kind of an entry. */
static inline enum dmm_pte_kind pte_kind(pte_t e)
{
	if (pte_none(e))
		return DMM_PTE_NONE;
	if (pte_present(e))
		return DMM_PTE_PRESENT;
	switch (leaf_type(e)) {
	case LEAF_DEVICE_PRIVATE_READ: return DMM_PTE_DEVICE_PRIVATE_READ;
	case LEAF_DEVICE_PRIVATE_WRITE: return DMM_PTE_DEVICE_PRIVATE_WRITE;
	case LEAF_DEVICE_EXCLUSIVE: return DMM_PTE_DEVICE_EXCLUSIVE;
	case LEAF_MIGRATION_READ: return DMM_PTE_MIGRATION_READ;
	case LEAF_MIGRATION_READ_EXCLUSIVE: return DMM_PTE_MIGRATION_READ_EXCLUSIVE;
	case LEAF_MIGRATION_WRITE: return DMM_PTE_MIGRATION_WRITE;
	default: return DMM_PTE_NONE;
	}
}

/*
 * The PMD slot word (struct dmm_pte_table.pmd): the state of one PMD slot.
 *
 *   PMD_NONE (0)                   the slot maps nothing; ent[] all none
 *   PMD_TABLE (bit 63)             ent[] is a PTE table. No leaf has bit 63:
 *                                  the pfn field of a leaf stops below it
 *   anything else                  a PMD leaf, in the layout above (present:
 *                                  pfn|bits|PRESENT; non-present: softleaf
 *                                  type and bits); ent[] all none
 *
 * The word changes only under the table's PTL. Only PTE-level users turn
 * NONE into TABLE (pte_alloc); TABLE lasts as long as the table. A THP
 * fault turns NONE into a leaf (the huge zero folio's special read-only
 * PMD, or a THP's); split_huge_pmd turns a leaf into TABLE.
 */
#define PMD_NONE ((pte_t)0)
#define PMD_TABLE ((pte_t)1 << 63)

static inline bool pmd_none(pte_t pmd) { return pmd == PMD_NONE; }
static inline bool pmd_is_table(pte_t pmd) { return pmd == PMD_TABLE; }
static inline bool pmd_is_leaf(pte_t pmd) { return pmd != PMD_NONE && pmd != PMD_TABLE; }
static inline bool pmd_leaf_present(pte_t pmd) { return pmd_is_leaf(pmd) && pte_present(pmd); }

#endif /* DEVMM_PTE_H */
