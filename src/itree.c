/* SPDX-License-Identifier: MIT */
/*
 * The augmented interval tree (see itree.h): an AVL tree keyed by
 * (start, node address) whose nodes also keep the largest last of their
 * subtree, which is what lets a query skip every subtree that ends before
 * the queried range begins. Insert and remove are recursive (depth at most
 * 1.44 log2 n, so under 64 for any count that fits in memory) and rebalance
 * on the way back up, recomputing height and subtree_last of every node
 * they pass.
 */
#include "itree.h"

#include <stddef.h>

static int height(const struct itree_node *n) { return n ? n->height : 0; }

static void update(struct itree_node *n)
{
	int hl = height(n->left), hr = height(n->right);
	uint64_t m = n->last;

	n->height = (hl > hr ? hl : hr) + 1;
	if (n->left && n->left->subtree_last > m)
		m = n->left->subtree_last;
	if (n->right && n->right->subtree_last > m)
		m = n->right->subtree_last;
	n->subtree_last = m;
}

static struct itree_node *rotate_right(struct itree_node *n)
{
	struct itree_node *l = n->left;

	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct itree_node *rotate_left(struct itree_node *n)
{
	struct itree_node *r = n->right;

	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

/* Recompute @n and restore its balance; return the subtree's new root. */
static struct itree_node *rebalance(struct itree_node *n)
{
	int bal;

	update(n);
	bal = height(n->left) - height(n->right);
	if (bal > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bal < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

/* Order of a and b: by start, then by address. */
static bool before(const struct itree_node *a, const struct itree_node *b)
{
	if (a->start != b->start)
		return a->start < b->start;
	return (uintptr_t)a < (uintptr_t)b;
}

static struct itree_node *insert_node(struct itree_node *root, struct itree_node *n)
{
	if (!root)
		return n;
	if (before(n, root))
		root->left = insert_node(root->left, n);
	else
		root->right = insert_node(root->right, n);
	return rebalance(root);
}

void itree_insert(struct itree *t, struct itree_node *n)
{
	n->left = n->right = NULL;
	n->height = 1;
	n->subtree_last = n->last;
	t->root = insert_node(t->root, n);
	t->count++;
}

/* Unlink the smallest node of @root into *min; return the new root. */
static struct itree_node *remove_min(struct itree_node *root, struct itree_node **min)
{
	if (!root->left) {
		*min = root;
		return root->right;
	}
	root->left = remove_min(root->left, min);
	return rebalance(root);
}

static struct itree_node *remove_node(struct itree_node *root, struct itree_node *n)
{
	struct itree_node *succ;

	if (root == n) {
		if (!n->right)
			return n->left;
		n->right = remove_min(n->right, &succ);
		succ->left = n->left;
		succ->right = n->right;
		return rebalance(succ);
	}
	if (before(n, root))
		root->left = remove_node(root->left, n);
	else
		root->right = remove_node(root->right, n);
	return rebalance(root);
}

void itree_remove(struct itree *t, struct itree_node *n)
{
	t->root = remove_node(t->root, n);
	t->count--;
	n->left = n->right = NULL;
}

/*
 * In order, visiting a subtree only if its subtree_last reaches start and
 * the right side of a node only if that node starts at or before last
 * (everything to its right starts no earlier).
 */
static int for_each(const struct itree_node *n, uint64_t start, uint64_t last, itree_visit_fn fn,
		    void *arg)
{
	int ret;

	while (n && n->subtree_last >= start) {
		ret = for_each(n->left, start, last, fn, arg);
		if (ret)
			return ret;
		if (n->start > last)
			return 0;
		if (n->last >= start) {
			ret = fn((struct itree_node *)n, arg);
			if (ret)
				return ret;
		}
		n = n->right;
	}
	return 0;
}

int itree_for_each(const struct itree *t, uint64_t start, uint64_t last, itree_visit_fn fn,
		   void *arg)
{
	return for_each(t->root, start, last, fn, arg);
}

static int stop(struct itree_node *n, void *arg)
{
	(void)n;
	(void)arg;
	return 1;
}

bool itree_overlaps(const struct itree *t, uint64_t start, uint64_t last)
{
	return itree_for_each(t, start, last, stop, NULL) != 0;
}

/* Validate the subtree of @n, whose nodes must lie strictly between lo and
 * hi (NULL: unbounded); return its node count or -1. */
static long validate(const struct itree_node *n, const struct itree_node *lo,
		     const struct itree_node *hi)
{
	long l, r;
	int hl, hr;
	uint64_t m;

	if (!n)
		return 0;
	if (n->start > n->last || (lo && !before(lo, n)) || (hi && !before(n, hi)))
		return -1;
	l = validate(n->left, lo, n);
	r = validate(n->right, n, hi);
	if (l < 0 || r < 0)
		return -1;
	hl = height(n->left);
	hr = height(n->right);
	if (hl - hr > 1 || hr - hl > 1 || n->height != (hl > hr ? hl : hr) + 1)
		return -1;
	m = n->last;
	if (n->left && n->left->subtree_last > m)
		m = n->left->subtree_last;
	if (n->right && n->right->subtree_last > m)
		m = n->right->subtree_last;
	if (n->subtree_last != m)
		return -1;
	return l + r + 1;
}

long itree_validate(const struct itree *t)
{
	long n = validate(t->root, NULL, NULL);

	return n >= 0 && (unsigned long)n == t->count ? n : -1;
}
