/* SPDX-License-Identifier: MIT */
/*
 * NVIDIA's tree ("density") prefetcher (shared/spec/managed-memory.md
 * section 1.3; uvm_perf_prefetch.c): within one block, the pages resident
 * on the destination plus the faulted pages, grown to whole 64 KiB big
 * pages, are the leaves of an implicit binary tree; from each faulted page
 * the largest ancestor whose set share exceeds the threshold is prefetched.
 * No allocation, no state besides the block's struct uvm_prefetch_info.
 */
#include <string.h>

#include "uvm.h"

static const struct pmask no_pages;

static const struct pmask *or_none(const struct pmask *m)
{
	return m ? m : &no_pages;
}

/* The end (exclusive) of the growth unit starting at block page i. */
static unsigned int unit_end(const struct uvm_prefetch_query *q, unsigned int i)
{
	unsigned int va = q->va_page + i;
	unsigned int end = i + (UVM_BIG_PAGE_PAGES - va % UVM_BIG_PAGE_PAGES);
	unsigned int region_end = q->first + q->npages;

	return end < region_end ? end : region_end;
}

/* Whether the region holds a whole aligned big page. */
static bool region_has_big_page(const struct uvm_prefetch_query *q)
{
	unsigned int va = q->va_page + q->first;
	unsigned int skip = (UVM_BIG_PAGE_PAGES - va % UVM_BIG_PAGE_PAGES) % UVM_BIG_PAGE_PAGES;

	return q->npages >= skip + UVM_BIG_PAGE_PAGES;
}

/* Fill the unit [a, b) when it holds a fault and no thrashing page. */
static void grow_unit(const struct uvm_prefetch_query *q, struct pmask *leaves, unsigned int a,
		      unsigned int b)
{
	if (pmask_count_range(q->faulted, a, b - a) && !pmask_count_range(or_none(q->thrashing), a, b - a))
		pmask_set_range(leaves, a, b - a);
}

void uvm_prefetch_leaves(const struct uvm_prefetch_query *q, struct pmask *leaves)
{
	unsigned int end = q->first + q->npages;

	pmask_or(leaves, q->dest_resident, q->faulted);
	pmask_clear_range(leaves, 0, q->first);
	pmask_clear_range(leaves, end, PMASK_PAGES - end);
	if (!region_has_big_page(q)) {
		grow_unit(q, leaves, q->first, end);
		return;
	}
	for (unsigned int i = q->first; i < end; i = unit_end(q, i))
		grow_unit(q, leaves, i, unit_end(q, i));
}

/* The tree over the region: leaf t is block page first + t - offset; the
 * offset lines big pages up with aligned runs of 16 leaves. */
struct tree {
	unsigned int first, offset, leaf_count, levels;
	unsigned int threshold;
	const struct pmask *leaves;
};

static void tree_init(struct tree *t, const struct uvm_prefetch_query *q, const struct pmask *leaves,
		      unsigned int threshold)
{
	unsigned int pow2 = 1, levels = 1;

	t->first = q->first;
	t->offset = (q->va_page + q->first) % UVM_BIG_PAGE_PAGES;
	t->leaf_count = q->npages + t->offset;
	while (pow2 < t->leaf_count) {
		pow2 <<= 1;
		levels++;
	}
	t->levels = levels;
	t->threshold = threshold;
	t->leaves = leaves;
}

/*
 * From the leaf of block page `page`, the block pages [*a, *b) of its
 * largest qualifying ancestor; false when none qualifies. A node covers
 * an aligned run of 2^h leaves clipped to the real leaves (the offset's
 * leaves are not pages and count neither way).
 */
static bool tree_walk(const struct tree *t, unsigned int page, unsigned int *a, unsigned int *b)
{
	unsigned int leaf = page - t->first + t->offset;
	bool found = false;

	for (unsigned int h = 0; h < t->levels; h++) {
		unsigned int lo = (leaf >> h) << h, hi = lo + (1u << h);

		if (lo < t->offset)
			lo = t->offset;
		if (hi > t->leaf_count)
			hi = t->leaf_count;
		unsigned int pa = t->first + lo - t->offset, n = hi - lo;
		unsigned int set = pmask_count_range(t->leaves, pa, n);

		if (set * 100u > n * t->threshold) {
			*a = pa;
			*b = pa + n;
			found = true;
		}
	}
	return found;
}

/* Step 4: the tree walk from every faulted, non-thrashing page. */
static void walk_faults(const struct uvm_prefetch_query *q, unsigned int threshold, struct pmask *mask)
{
	struct pmask leaves, from;
	struct tree t;
	unsigned int i, a, b;

	uvm_prefetch_leaves(q, &leaves);
	tree_init(&t, q, &leaves, threshold);
	pmask_andnot(&from, q->faulted, or_none(q->thrashing));
	pmask_clear_range(&from, 0, q->first);
	pmask_clear_range(&from, q->first + q->npages, PMASK_PAGES - q->first - q->npages);
	pmask_for_each(&from, i) {
		/* A page already covered has the same largest ancestor. */
		if (pmask_test(mask, i) || !tree_walk(&t, i, &a, &b))
			continue;
		pmask_set_range(mask, a, b - a);
		if (b == q->first + q->npages)
			break;
	}
}

bool uvm_prefetch_get_hint(const struct uvm_params *params, struct uvm_prefetch_info *pi,
			   const struct uvm_prefetch_query *q, struct uvm_prefetch_hint *out)
{
	struct pmask *mask = &out->pages;
	struct pmask faulted;

	memset(out, 0, sizeof(*out));
	out->residency = q->dest;
	if (!params->prefetch_enable || !q->npages || q->first + q->npages > PMASK_PAGES)
		return false;
	if (pi->last_dest != q->dest) {
		pi->last_dest = q->dest;
		pi->fault_count = 0;
	}
	if (q->block_empty && q->preferred != UVM_PROC_NONE && q->dest == q->preferred) {
		pmask_set_range(mask, q->first, q->npages);
		out->first_touch = true;
	} else if (q->preferred == UVM_PROC_NONE || q->dest == q->preferred) {
		walk_faults(q, params->prefetch_threshold, mask);
	}
	/* Step 5: the removals. */
	pmask_andnot(mask, mask, q->faulted);
	if (q->dest == UVM_PROC_CPU)
		pmask_andnot(mask, mask, or_none(q->cpu_readable));
	pmask_andnot(mask, mask, or_none(q->thrashing));
	/* Step 6: the counter. */
	pmask_zero(&faulted);
	pmask_set_range(&faulted, q->first, q->npages);
	pmask_and(&faulted, &faulted, q->faulted);
	pi->fault_count += pmask_count(&faulted);
	if (pi->fault_count < params->prefetch_min_faults || pmask_empty(mask)) {
		pmask_zero(mask);
		out->first_touch = false;
		return false;
	}
	return true;
}
