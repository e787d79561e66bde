/* SPDX-License-Identifier: MIT */
/*
 * The VMA tree (src/vma_tree.c) against a reference model: a sorted array
 * of the same VMAs. Random inserts, removes, splits and merges (bounds
 * that change in place, as split_vma and merge_pair do), with every lookup
 * and a full iteration both ways compared with the model, and the B-tree
 * invariants checked after each operation.
 *
 * The seed is printed; DEVMM_SEED repeats a run.
 */
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "types.h"
#include "vma_tree.h"

#define UNITS 8192 /* the address space, in units of one page */

struct model {
	struct vma_tree t;
	struct dmm_vma *ref[UNITS]; /* sorted by start */
	size_t n;
	struct dmm_vma *owner[UNITS]; /* the VMA covering each unit */
	uint64_t seed, rng;
};

static uint64_t seed_from_env(void)
{
	const char *s = getenv("DEVMM_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static uint64_t rnd(struct model *m)
{
	/* xorshift64* */
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return m->rng * 2685821657736338717ull;
}

static unsigned int below(struct model *m, unsigned int n)
{
	return (unsigned int)(rnd(m) % n);
}

static struct model *model_new(const char *what)
{
	struct model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	vma_tree_init(&m->t);
	m->seed = seed_from_env();
	m->rng = m->seed | 1;
	print_message("%s: seed %" PRIu64 " (DEVMM_SEED=%" PRIu64 " repeats it)\n", what, m->seed, m->seed);
	return m;
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->ref[i]);
	vma_tree_destroy(&m->t);
	free(m);
}

#define FAILM(m, ...)                                                                      \
	do {                                                                               \
		print_error("seed %" PRIu64 ": ", (m)->seed);                              \
		fail_msg(__VA_ARGS__);                                                     \
	} while (0)

/* Index of the first model VMA whose start is >= start. */
static size_t ref_pos(const struct model *m, uint64_t start)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->ref[mid]->start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void own(struct model *m, struct dmm_vma *v, struct dmm_vma *who)
{
	for (uint64_t u = v->start / PG; u < v->end / PG; u++)
		m->owner[u] = who;
}

static void tree_insert(struct model *m, struct dmm_vma *v)
{
	size_t i = ref_pos(m, v->start);

	assert_int_equal(vma_tree_preallocate(&m->t), 0);
	vma_tree_insert(&m->t, v);
	memmove(&m->ref[i + 1], &m->ref[i], (m->n - i) * sizeof(m->ref[0]));
	m->ref[i] = v;
	m->n++;
}

static void tree_remove(struct model *m, struct dmm_vma *v)
{
	size_t i = ref_pos(m, v->start);

	assert_ptr_equal(m->ref[i], v);
	if (!vma_tree_remove(&m->t, v))
		FAILM(m, "remove of [%#lx, %#lx) found nothing", (unsigned long)v->start,
		      (unsigned long)v->end);
	memmove(&m->ref[i], &m->ref[i + 1], (m->n - i - 1) * sizeof(m->ref[0]));
	m->n--;
}

static struct dmm_vma *new_vma(uint64_t start, uint64_t end)
{
	struct dmm_vma *v = calloc(1, sizeof(*v));

	assert_non_null(v);
	v->start = start;
	v->end = end;
	return v;
}

/* Map a free run of units at a random place (nothing when it is taken). */
static void op_insert(struct model *m)
{
	unsigned int u = below(m, UNITS), len = 1 + below(m, 8), k;
	struct dmm_vma *v;

	for (k = 0; k < len && u + k < UNITS && !m->owner[u + k]; k++)
		;
	if (!k)
		return;
	v = new_vma(u * PG, (u + k) * PG);
	tree_insert(m, v);
	own(m, v, v);
}

static struct dmm_vma *random_vma(struct model *m)
{
	return m->n ? m->ref[below(m, (unsigned int)m->n)] : NULL;
}

static void op_remove(struct model *m)
{
	struct dmm_vma *v = random_vma(m);

	if (!v)
		return;
	tree_remove(m, v);
	own(m, v, NULL);
	free(v);
}

/* As split_vma: shrink in place, then insert the upper part. */
static void op_split(struct model *m)
{
	struct dmm_vma *v = random_vma(m), *nv;
	uint64_t pages;

	if (!v || (pages = (v->end - v->start) / PG) < 2)
		return;
	nv = new_vma(v->start + (1 + below(m, (unsigned int)pages - 1)) * PG, v->end);
	v->end = nv->start;
	tree_insert(m, nv);
	own(m, nv, nv);
}

/* As merge_pair: the lower VMA grows over its upper neighbour, which is
 * emptied in place and then removed. */
static void op_merge(struct model *m)
{
	struct dmm_vma *v = random_vma(m), *n;
	size_t i;

	if (!v)
		return;
	i = ref_pos(m, v->start);
	if (i + 1 >= m->n || (n = m->ref[i + 1])->start != v->end)
		return;
	v->end = n->end;
	n->end = n->start;
	tree_remove(m, n);
	own(m, v, v);
	free(n);
}

/* Removing a VMA that is not in the tree (one with the start of a linked
 * VMA, or a free start) finds nothing and changes nothing. */
static void op_remove_absent(struct model *m)
{
	struct dmm_vma *v = random_vma(m);
	struct dmm_vma fake = { .start = v ? v->start : below(m, UNITS) * PG };

	fake.end = fake.start + PG;
	if (vma_tree_remove(&m->t, &fake))
		FAILM(m, "removed an absent VMA at %#lx", (unsigned long)fake.start);
}

static void check_lookups(struct model *m, uint64_t addr)
{
	size_t i;
	struct dmm_vma *want, *got;

	/* find: the first VMA ending above addr. */
	for (i = ref_pos(m, addr); i > 0 && m->ref[i - 1]->end > addr; i--)
		;
	want = i < m->n ? m->ref[i] : NULL;
	got = vma_tree_find(&m->t, addr);
	if (got != want)
		FAILM(m, "find(%#lx): %p, expected %p", (unsigned long)addr, (void *)got, (void *)want);
	/* find_prev: the last VMA starting below addr. */
	i = ref_pos(m, addr);
	want = i > 0 ? m->ref[i - 1] : NULL;
	got = vma_tree_find_prev(&m->t, addr);
	if (got != want)
		FAILM(m, "find_prev(%#lx): %p, expected %p", (unsigned long)addr, (void *)got, (void *)want);
	if (!m->n)
		return;
	/* next and prev of a VMA. */
	i = below(m, (unsigned int)m->n);
	got = vma_tree_next(&m->t, m->ref[i]);
	want = i + 1 < m->n ? m->ref[i + 1] : NULL;
	if (got != want)
		FAILM(m, "next of VMA %zu: %p, expected %p", i, (void *)got, (void *)want);
	got = vma_tree_prev(&m->t, m->ref[i]);
	want = i > 0 ? m->ref[i - 1] : NULL;
	if (got != want)
		FAILM(m, "prev of VMA %zu: %p, expected %p", i, (void *)got, (void *)want);
}

static void check_all(struct model *m)
{
	struct dmm_vma *v;
	size_t i = 0;
	int r = vma_tree_validate(&m->t);

	if (r)
		FAILM(m, "invariant %d broken with %zu VMAs", r, m->n);
	if (m->t.count != m->n)
		FAILM(m, "count %zu, expected %zu", m->t.count, m->n);
	for (v = vma_tree_first(&m->t); v; v = vma_tree_next(&m->t, v), i++)
		if (i >= m->n || v != m->ref[i])
			FAILM(m, "forward iteration differs at %zu", i);
	if (i != m->n)
		FAILM(m, "forward iteration saw %zu of %zu", i, m->n);
	for (v = vma_tree_last(&m->t); v; v = vma_tree_prev(&m->t, v))
		if (!i-- || v != m->ref[i])
			FAILM(m, "backward iteration differs at %zu", i);
	if (i != 0)
		FAILM(m, "backward iteration missed %zu", i);
}

/* Random operations, with the population drifting up and down. */
static void test_random_operations_match_a_sorted_array(void **state)
{
	struct model *m = model_new("random operations");

	(void)state;
	for (int step = 0; step < 40000; step++) {
		/* phases of growth and shrinkage: heights go up and down */
		bool grow = (step / 5000) % 2 == 0;
		unsigned int op = below(m, 10);

		if (op < (grow ? 5u : 2u))
			op_insert(m);
		else if (op < 6)
			op_remove(m);
		else if (op < 7)
			op_split(m);
		else if (op < 8)
			op_merge(m);
		else if (op < 9)
			op_remove_absent(m);
		check_lookups(m, below(m, UNITS + 2) * PG + below(m, 2) * (PG / 2));
		if (step % 16 == 0 || m->n < 64)
			check_all(m);
	}
	check_all(m);
	model_free(m);
}

/* Many VMAs (a tall tree), inserted in random order, then removed in
 * random order, checking all along. */
static void test_fill_and_drain_in_random_order(void **state)
{
	struct model *m = model_new("fill and drain");
	unsigned int order[UNITS / 2];

	(void)state;
	for (unsigned int i = 0; i < UNITS / 2; i++)
		order[i] = i;
	for (unsigned int i = UNITS / 2 - 1; i > 0; i--) {
		unsigned int j = below(m, i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned int i = 0; i < UNITS / 2; i++) {
		/* every other page, so nothing is adjacent */
		struct dmm_vma *v = new_vma(2 * order[i] * PG, (2 * order[i] + 1) * PG);

		tree_insert(m, v);
		own(m, v, v);
		check_lookups(m, below(m, UNITS) * PG);
		if (i % 256 == 0)
			check_all(m);
	}
	check_all(m);
	assert_true(m->t.height >= 3);
	while (m->n) {
		op_remove(m);
		check_lookups(m, below(m, UNITS) * PG);
		if (m->n % 256 == 0 || m->n < 64)
			check_all(m);
	}
	assert_null(m->t.root);
	assert_int_equal(m->t.height, 0);
	model_free(m);
}

/* Ascending and descending insertion (the common mmap pattern) and
 * removal from each end. */
static void test_sequential_inserts_and_removes(void **state)
{
	struct model *m = model_new("sequential");

	(void)state;
	for (int dir = 0; dir < 2; dir++) {
		for (unsigned int i = 0; i < 3000; i++) {
			unsigned int u = dir ? 2 * (2999 - i) : 2 * i;
			struct dmm_vma *v = new_vma(u * PG, (u + 1) * PG);

			tree_insert(m, v);
			own(m, v, v);
		}
		check_all(m);
		while (m->n) {
			struct dmm_vma *v = dir ? m->ref[0] : m->ref[m->n - 1];

			tree_remove(m, v);
			own(m, v, NULL);
			free(v);
			if (m->n % 100 == 0)
				check_all(m);
		}
	}
	model_free(m);
}

/* Preallocation reserves what one insertion needs, and no more after. */
static void test_preallocation_covers_one_insert(void **state)
{
	struct vma_tree t;
	struct dmm_vma *v[2000];

	(void)state;
	vma_tree_init(&t);
	for (unsigned int i = 0; i < 2000; i++) {
		v[i] = new_vma(2 * i * PG, (2 * i + 1) * PG);
		assert_int_equal(vma_tree_preallocate(&t), 0);
		assert_int_equal(vma_tree_prealloc_needed(&t), 0);
		vma_tree_insert(&t, v[i]);
	}
	assert_int_equal(vma_tree_validate(&t), 0);
	for (unsigned int i = 0; i < 2000; i++) {
		assert_true(vma_tree_remove(&t, v[i]));
		free(v[i]);
	}
	assert_int_equal(vma_tree_validate(&t), 0);
	vma_tree_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_operations_match_a_sorted_array),
		cmocka_unit_test(test_fill_and_drain_in_random_order),
		cmocka_unit_test(test_sequential_inserts_and_removes),
		cmocka_unit_test(test_preallocation_covers_one_insert),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
