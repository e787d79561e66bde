/* SPDX-License-Identifier: MIT */
/*
 * An augmented AVL tree of closed intervals [start, last]: nodes ordered
 * by start (ties by address, so every node has a unique place), each
 * carrying the largest last of its subtree. insert and remove are
 * O(log n); itree_for_each visits the k nodes overlapping a query in
 * O(log n + k) when the stored intervals do not overlap one another, and
 * O(log n + k log(n / k)) at worst. The tree has no lock of its own and
 * allocates nothing: the node is embedded in its owner (the notifier
 * subscriptions keep theirs in their opaque _link area).
 */
#ifndef DEVMM_ITREE_H
#define DEVMM_ITREE_H

#include <stdbool.h>
#include <stdint.h>

struct itree_node {
	struct itree_node *left, *right;
	uint64_t start, last;	/* the interval, inclusive */
	uint64_t subtree_last;	/* max last in this subtree */
	int height;		/* 1 for a leaf */
};

struct itree {
	struct itree_node *root;
	unsigned long count;
};

static inline void itree_init(struct itree *t)
{
	t->root = 0;
	t->count = 0;
}

static inline bool itree_empty(const struct itree *t) { return !t->root; }

/* Add @n, whose start and last the caller has set (start <= last). */
void itree_insert(struct itree *t, struct itree_node *n);
/* Take out @n, which must be in @t. */
void itree_remove(struct itree *t, struct itree_node *n);

/*
 * Call fn(node, arg) on every node overlapping [start, last], in order of
 * start; stop at the first nonzero return and return it (0 when fn always
 * returned 0). fn must not change the tree.
 */
typedef int (*itree_visit_fn)(struct itree_node *n, void *arg);
int itree_for_each(const struct itree *t, uint64_t start, uint64_t last, itree_visit_fn fn,
		   void *arg);
/* Whether some node overlaps [start, last]. */
bool itree_overlaps(const struct itree *t, uint64_t start, uint64_t last);

/* Check the ordering, balance, heights and subtree_last of every node;
 * return the number of nodes, or -1 if anything is wrong. O(n). */
long itree_validate(const struct itree *t);

#endif
