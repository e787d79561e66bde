/* SPDX-License-Identifier: MIT */
/*
 * The VMA tree (see vma_tree.h): a B-tree of non-overlapping VMAs keyed by
 * start. Insertion splits full nodes on the way down and removal refills
 * minimal nodes on the way down, so neither walks back up and no node
 * needs a parent pointer. Lookups read start and end from the VMAs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"
#include "vma_tree.h"

void vma_tree_init(struct vma_tree *t)
{
	memset(t, 0, sizeof(*t));
}

static void free_subtree(struct vma_tree_node *x)
{
	if (!x)
		return;
	if (!x->leaf)
		for (unsigned int i = 0; i <= x->nr; i++)
			free_subtree(x->child[i]);
	free(x);
}

void vma_tree_destroy(struct vma_tree *t)
{
	free_subtree(t->root);
	while (t->spare) {
		struct vma_tree_node *n = t->spare;

		t->spare = n->child[0];
		free(n);
	}
	vma_tree_init(t);
}

/* A split of every node on the path, and a new root above them. */
unsigned int vma_tree_prealloc_needed(const struct vma_tree *t)
{
	unsigned int need = t->height + 1;

	return need > t->nr_spare ? need - t->nr_spare : 0;
}

int vma_tree_preallocate(struct vma_tree *t)
{
	for (unsigned int n = vma_tree_prealloc_needed(t); n; n--) {
		struct vma_tree_node *x = malloc(sizeof(*x));

		if (!x)
			return -ENOMEM;
		x->child[0] = t->spare;
		t->spare = x;
		t->nr_spare++;
	}
	return 0;
}

static struct vma_tree_node *node_take(struct vma_tree *t, bool leaf)
{
	struct vma_tree_node *x = t->spare;

	if (!x)
		abort(); /* vma_tree_preallocate() was not called */
	t->spare = x->child[0];
	t->nr_spare--;
	memset(x, 0, sizeof(*x));
	x->leaf = leaf;
	return x;
}

/* First index in x whose VMA starts at or above key. */
static unsigned int pos_start(const struct vma_tree_node *x, uint64_t key)
{
	unsigned int lo = 0, hi = x->nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (x->item[mid]->start < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First index in x whose VMA ends above addr. */
static unsigned int pos_end(const struct vma_tree_node *x, uint64_t addr)
{
	unsigned int lo = 0, hi = x->nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (x->item[mid]->end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Split x->child[i] (full) around its median, which moves up into x. */
static void split_child(struct vma_tree *t, struct vma_tree_node *x, unsigned int i)
{
	struct vma_tree_node *y = x->child[i];
	struct vma_tree_node *z = node_take(t, y->leaf);
	const unsigned int half = VMA_TREE_MAX / 2; /* items left in y, and moved to z */

	z->nr = half;
	memcpy(z->item, &y->item[half + 1], half * sizeof(z->item[0]));
	if (!y->leaf)
		memcpy(z->child, &y->child[half + 1], (half + 1) * sizeof(z->child[0]));
	y->nr = half;
	memmove(&x->child[i + 2], &x->child[i + 1], (x->nr - i) * sizeof(x->child[0]));
	x->child[i + 1] = z;
	memmove(&x->item[i + 1], &x->item[i], (x->nr - i) * sizeof(x->item[0]));
	x->item[i] = y->item[half];
	x->nr++;
}

void vma_tree_insert(struct vma_tree *t, struct dmm_vma *v)
{
	uint64_t key = v->start;
	struct vma_tree_node *x;

	if (!t->root) {
		t->root = node_take(t, true);
		t->height = 1;
	} else if (t->root->nr == VMA_TREE_MAX) {
		struct vma_tree_node *s = node_take(t, false);

		s->child[0] = t->root;
		t->root = s;
		t->height++;
		split_child(t, s, 0);
	}
	x = t->root;
	for (;;) {
		unsigned int i = pos_start(x, key);

		if (x->leaf) {
			memmove(&x->item[i + 1], &x->item[i], (x->nr - i) * sizeof(x->item[0]));
			x->item[i] = v;
			x->nr++;
			break;
		}
		if (x->child[i]->nr == VMA_TREE_MAX) {
			split_child(t, x, i);
			if (x->item[i]->start < key)
				i++;
		}
		x = x->child[i];
	}
	t->count++;
}

/* Append x->item[i] and x->child[i + 1] to x->child[i]; both children are minimal. */
static void merge_children(struct vma_tree_node *x, unsigned int i)
{
	struct vma_tree_node *y = x->child[i], *z = x->child[i + 1];

	y->item[y->nr] = x->item[i];
	memcpy(&y->item[y->nr + 1], z->item, z->nr * sizeof(z->item[0]));
	if (!y->leaf)
		memcpy(&y->child[y->nr + 1], z->child, (z->nr + 1) * sizeof(z->child[0]));
	y->nr += z->nr + 1;
	memmove(&x->item[i], &x->item[i + 1], (x->nr - i - 1) * sizeof(x->item[0]));
	memmove(&x->child[i + 1], &x->child[i + 2], (x->nr - i - 1) * sizeof(x->child[0]));
	x->nr--;
	free(z);
}

/* Make x->child[i] hold more than the minimum, borrowing from a sibling or
 * merging with one. Returns the index of the child that now covers it. */
static unsigned int fill_child(struct vma_tree_node *x, unsigned int i)
{
	struct vma_tree_node *c = x->child[i];

	if (i > 0 && x->child[i - 1]->nr > VMA_TREE_MIN) {
		struct vma_tree_node *l = x->child[i - 1];

		memmove(&c->item[1], c->item, c->nr * sizeof(c->item[0]));
		if (!c->leaf)
			memmove(&c->child[1], c->child, (c->nr + 1) * sizeof(c->child[0]));
		c->item[0] = x->item[i - 1];
		if (!c->leaf)
			c->child[0] = l->child[l->nr];
		x->item[i - 1] = l->item[l->nr - 1];
		l->nr--;
		c->nr++;
		return i;
	}
	if (i < x->nr && x->child[i + 1]->nr > VMA_TREE_MIN) {
		struct vma_tree_node *r = x->child[i + 1];

		c->item[c->nr] = x->item[i];
		if (!c->leaf)
			c->child[c->nr + 1] = r->child[0];
		c->nr++;
		x->item[i] = r->item[0];
		memmove(r->item, &r->item[1], (r->nr - 1) * sizeof(r->item[0]));
		if (!r->leaf)
			memmove(r->child, &r->child[1], r->nr * sizeof(r->child[0]));
		r->nr--;
		return i;
	}
	if (i < x->nr) {
		merge_children(x, i);
		return i;
	}
	merge_children(x, i - 1);
	return i - 1;
}

static struct dmm_vma *subtree_max(const struct vma_tree_node *x)
{
	while (!x->leaf)
		x = x->child[x->nr];
	return x->item[x->nr - 1];
}

static struct dmm_vma *subtree_min(const struct vma_tree_node *x)
{
	while (!x->leaf)
		x = x->child[0];
	return x->item[0];
}

/*
 * Remove the VMA keyed key (and, at the top level, identical to v) from
 * the subtree at x, which holds more than the minimum unless it is the
 * root. The refills on the way down keep the tree valid even when the key
 * turns out to be absent.
 */
static bool remove_key(struct vma_tree_node *x, uint64_t key, const struct dmm_vma *v)
{
	for (;;) {
		unsigned int i = pos_start(x, key);

		if (i < x->nr && x->item[i]->start == key) {
			struct vma_tree_node *y, *z;
			struct dmm_vma *r;

			if (v && x->item[i] != v)
				return false;
			if (x->leaf) {
				memmove(&x->item[i], &x->item[i + 1], (x->nr - i - 1) * sizeof(x->item[0]));
				x->nr--;
				return true;
			}
			y = x->child[i];
			z = x->child[i + 1];
			if (y->nr > VMA_TREE_MIN) {
				/* Replace by the predecessor, then remove that from y. */
				r = subtree_max(y);
				x->item[i] = r;
				x = y;
				key = r->start;
			} else if (z->nr > VMA_TREE_MIN) {
				r = subtree_min(z);
				x->item[i] = r;
				x = z;
				key = r->start;
			} else {
				merge_children(x, i);
				x = y;
			}
			v = NULL; /* the key is unique: identity checked */
			continue;
		}
		if (x->leaf)
			return false;
		if (x->child[i]->nr <= VMA_TREE_MIN)
			i = fill_child(x, i);
		x = x->child[i];
	}
}

bool vma_tree_remove(struct vma_tree *t, struct dmm_vma *v)
{
	struct vma_tree_node *root = t->root;
	bool found;

	if (!root)
		return false;
	found = remove_key(root, v->start, v);
	if (root->nr == 0) {
		t->root = root->leaf ? NULL : root->child[0];
		t->height--;
		free(root);
	}
	if (found)
		t->count--;
	return found;
}

struct dmm_vma *vma_tree_find(const struct vma_tree *t, uint64_t addr)
{
	struct dmm_vma *res = NULL;

	for (const struct vma_tree_node *x = t->root; x;) {
		unsigned int i = pos_end(x, addr);

		if (i < x->nr)
			res = x->item[i];
		if (x->leaf)
			break;
		x = x->child[i];
	}
	return res;
}

struct dmm_vma *vma_tree_find_prev(const struct vma_tree *t, uint64_t addr)
{
	struct dmm_vma *res = NULL;

	for (const struct vma_tree_node *x = t->root; x;) {
		unsigned int i = pos_start(x, addr);

		if (i > 0)
			res = x->item[i - 1];
		if (x->leaf)
			break;
		x = x->child[i];
	}
	return res;
}

struct dmm_vma *vma_tree_next(const struct vma_tree *t, const struct dmm_vma *v)
{
	struct dmm_vma *res = NULL;

	/* The first VMA starting above v->start. */
	for (const struct vma_tree_node *x = t->root; x;) {
		unsigned int i = pos_start(x, v->start);

		if (i < x->nr && x->item[i]->start == v->start)
			i++;
		if (i < x->nr)
			res = x->item[i];
		if (x->leaf)
			break;
		x = x->child[i];
	}
	return res;
}

struct dmm_vma *vma_tree_prev(const struct vma_tree *t, const struct dmm_vma *v)
{
	return vma_tree_find_prev(t, v->start);
}

struct dmm_vma *vma_tree_first(const struct vma_tree *t)
{
	return t->root ? subtree_min(t->root) : NULL;
}

struct dmm_vma *vma_tree_last(const struct vma_tree *t)
{
	return t->root ? subtree_max(t->root) : NULL;
}

struct validate {
	const struct dmm_vma *last; /* in-order predecessor */
	size_t count;
};

static int validate_node(const struct vma_tree_node *x, unsigned int depth, bool root,
			 struct validate *s)
{
	int r;

	if (x->nr > VMA_TREE_MAX || x->nr == 0 || (!root && x->nr < VMA_TREE_MIN))
		return -1; /* node fill */
	if (x->leaf != (depth == 1))
		return -2; /* leaves at different depths */
	for (unsigned int i = 0; i <= x->nr; i++) {
		if (!x->leaf && (r = validate_node(x->child[i], depth - 1, false, s)))
			return r;
		if (i == x->nr)
			break;
		if (s->last && s->last->start >= x->item[i]->start)
			return -3; /* order */
		s->last = x->item[i];
		s->count++;
	}
	return 0;
}

int vma_tree_validate(const struct vma_tree *t)
{
	struct validate s = { 0 };
	int r;

	if (!t->root)
		return t->count || t->height ? -4 : 0;
	r = validate_node(t->root, t->height, true, &s);
	if (r)
		return r;
	return s.count == t->count ? 0 : -4; /* count */
}
