/* SPDX-License-Identifier: MIT */
/*
 * The VMA tree: an ordered map of an address space's VMAs, keyed by start.
 *
 * A B-tree (every node holds up to VMA_TREE_MAX VMAs; every node but the
 * root at least VMA_TREE_MIN; all leaves at the same depth), so lookup,
 * insert, remove and stepping to the next or previous VMA are O(log n).
 * The VMAs must not overlap; their start is the key and is read from the
 * VMA itself, so a VMA's bounds may change in place as long as the order
 * of the VMAs does not (split, merge, mremap do that).
 *
 * Insertion never fails: vma_tree_preallocate() first reserves the nodes
 * the worst case needs (a split of every node on the path plus a new
 * root), so a caller can fail cleanly before it changes anything. Removal
 * frees nodes and never allocates.
 *
 * No locking of its own: the owner serialises (mm->mmap_lock: write to
 * change, read to look up).
 */
#ifndef DEVMM_VMA_TREE_H
#define DEVMM_VMA_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dmm_vma;

#define VMA_TREE_ORDER 16		    /* children of a full internal node */
#define VMA_TREE_MAX (VMA_TREE_ORDER - 1)   /* VMAs in a full node */
#define VMA_TREE_MIN (VMA_TREE_ORDER / 2 - 1) /* VMAs in a node other than the root */

struct vma_tree_node {
	unsigned int nr;		/* VMAs in item[] */
	bool leaf;
	struct dmm_vma *item[VMA_TREE_MAX]; /* sorted by start */
	/* internal nodes: child[i] holds the VMAs between item[i-1] and item[i] */
	struct vma_tree_node *child[VMA_TREE_ORDER];
};

struct vma_tree {
	struct vma_tree_node *root; /* NULL when empty */
	size_t count;		    /* VMAs in the tree */
	unsigned int height;	    /* levels; 0 when empty */
	struct vma_tree_node *spare; /* preallocated nodes, chained through child[0] */
	unsigned int nr_spare;
};

void vma_tree_init(struct vma_tree *t);
/* Free the nodes (not the VMAs). */
void vma_tree_destroy(struct vma_tree *t);
/* Reserve the nodes one insertion may need. 0 or -ENOMEM. */
int vma_tree_preallocate(struct vma_tree *t);
/* Nodes an insertion may need beyond the spares held now (0: none). */
unsigned int vma_tree_prealloc_needed(const struct vma_tree *t);
/* Insert v (its start must be free); needs vma_tree_preallocate() first. */
void vma_tree_insert(struct vma_tree *t, struct dmm_vma *v);
/* Remove v. false (and the set unchanged) when v is not in the tree. */
bool vma_tree_remove(struct vma_tree *t, struct dmm_vma *v);
/* The first VMA that ends above addr (the one containing addr, or the next). */
struct dmm_vma *vma_tree_find(const struct vma_tree *t, uint64_t addr);
/* The last VMA that starts below addr. */
struct dmm_vma *vma_tree_find_prev(const struct vma_tree *t, uint64_t addr);
/* The VMA after / before v in address order (v in the tree), or NULL. */
struct dmm_vma *vma_tree_next(const struct vma_tree *t, const struct dmm_vma *v);
struct dmm_vma *vma_tree_prev(const struct vma_tree *t, const struct dmm_vma *v);
/* First and last VMA, or NULL. */
struct dmm_vma *vma_tree_first(const struct vma_tree *t);
struct dmm_vma *vma_tree_last(const struct vma_tree *t);
/* Check the B-tree invariants and the order of starts. 0, or a negative
 * code naming the first broken invariant (for tests and dmm_check). */
int vma_tree_validate(const struct vma_tree *t);

#endif
