/* SPDX-License-Identifier: MIT */
/*
 * The augmented interval tree (src/itree.c) against a reference model, a
 * plain array scanned in full: random inserts, removes and overlap queries
 * (with and without an early stop), the tree's structure validated after
 * every change. The seed is printed; set DEVMM_SEED to repeat a run.
 */
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "itree.h"

#define NNODES 600
#define NOPS 40000

struct ref {
	struct itree_node node;
	bool in;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t test_seed(void)
{
	const char *s = getenv("DEVMM_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

/* Random interval: mostly small ones in a small space (many overlaps and
 * equal starts), some long ones, some at the ends of the 64-bit range. */
static void random_interval(uint64_t *start, uint64_t *last)
{
	uint64_t r = rnd() % 16, s, len;

	if (r == 0) {
		s = UINT64_MAX - rnd() % 64;
		len = rnd() % (UINT64_MAX - s + 1);
	} else if (r == 1) {
		s = rnd() % 64;
		len = rnd() % 5000;
	} else {
		s = rnd() % 4096;
		len = r < 12 ? rnd() % 8 : rnd() % 300;
	}
	*start = s;
	*last = s + len;
}

struct visit {
	struct ref *refs;
	bool seen[NNODES];
	uint64_t prev_start;
	int count, stop_after;
	bool order_ok;
};

static int record(struct itree_node *n, void *arg)
{
	struct visit *v = arg;
	struct ref *r = (struct ref *)n;

	if (v->count && n->start < v->prev_start)
		v->order_ok = false;
	v->prev_start = n->start;
	v->seen[r - v->refs] = true;
	return ++v->count == v->stop_after;
}

static void check_query(struct itree *t, struct ref *refs, uint64_t start, uint64_t last,
			uint64_t seed)
{
	struct visit v = {.refs = refs, .order_ok = true, .stop_after = -1};
	int want = 0;
	bool any;

	assert_int_equal(itree_for_each(t, start, last, record, &v), 0);
	for (int i = 0; i < NNODES; i++) {
		bool hit = refs[i].in && refs[i].node.start <= last && start <= refs[i].node.last;

		if (hit != v.seen[i])
			fail_msg("seed %" PRIu64 ": query [%" PRIu64 ", %" PRIu64 "]: node %d [%" PRIu64
				 ", %" PRIu64 "] %s", seed, start, last, i, refs[i].node.start,
				 refs[i].node.last, hit ? "missed" : "reported but not overlapping");
		want += hit;
	}
	assert_int_equal(v.count, want);
	assert_true(v.order_ok);
	any = itree_overlaps(t, start, last);
	assert_int_equal(any, want > 0);

	/* An early stop after k visits returns fn's value and visits k. */
	if (want > 1) {
		struct visit w = {.refs = refs, .order_ok = true, .stop_after = 1 + (int)(rnd() % want)};

		assert_int_equal(itree_for_each(t, start, last, record, &w), 1);
		assert_int_equal(w.count, w.stop_after);
	}
}

static void test_random_against_list(void **state)
{
	static struct ref refs[NNODES];
	struct itree t;
	uint64_t seed = test_seed();
	long in = 0;

	(void)state;
	printf("test_interval_tree: seed %" PRIu64 " (set DEVMM_SEED=%" PRIu64 " to repeat)\n", seed,
	       seed);
	rng_state = seed | 1;
	memset(refs, 0, sizeof(refs));
	itree_init(&t);
	assert_true(itree_empty(&t));
	for (int op = 0; op < NOPS; op++) {
		struct ref *r = &refs[rnd() % NNODES];
		uint64_t r3 = rnd() % 3, start, last;

		if (r3 == 0 && !r->in) {
			random_interval(&r->node.start, &r->node.last);
			itree_insert(&t, &r->node);
			r->in = true;
			in++;
		} else if (r3 == 1 && r->in) {
			itree_remove(&t, &r->node);
			r->in = false;
			in--;
		} else {
			random_interval(&start, &last);
			check_query(&t, refs, start, last, seed);
			continue;
		}
		if (itree_validate(&t) != in)
			fail_msg("seed %" PRIu64 ": tree invalid after op %d", seed, op);
		assert_int_equal(itree_empty(&t), in == 0);
	}
	/* Whole-range queries, then empty the tree. */
	check_query(&t, refs, 0, UINT64_MAX, seed);
	for (int i = 0; i < NNODES; i++)
		if (refs[i].in) {
			itree_remove(&t, &refs[i].node);
			refs[i].in = false;
			assert_int_equal(itree_validate(&t), --in);
		}
	assert_true(itree_empty(&t));
	assert_false(itree_overlaps(&t, 0, UINT64_MAX));
}

/* Sorted inserts (the worst case for an unbalanced tree) stay logarithmic,
 * and a point query among 10 000 disjoint intervals finds exactly one. */
static void test_sorted_disjoint(void **state)
{
	enum { N = 10000 };
	static struct itree_node nodes[N];
	struct itree t;

	(void)state;
	itree_init(&t);
	for (int i = 0; i < N; i++) {
		nodes[i].start = (uint64_t)i * 16;
		nodes[i].last = (uint64_t)i * 16 + 7;
		itree_insert(&t, &nodes[i]);
	}
	assert_int_equal(itree_validate(&t), N);
	/* An AVL tree of 10 000 nodes is at most 1.44 log2(10 001) high. */
	assert_true(t.root->height <= 19);
	assert_true(itree_overlaps(&t, 5000 * 16 + 3, 5000 * 16 + 3));
	assert_false(itree_overlaps(&t, 5000 * 16 + 8, 5000 * 16 + 15));
	assert_false(itree_overlaps(&t, (uint64_t)N * 16, UINT64_MAX));
	for (int i = 0; i < N; i += 2)
		itree_remove(&t, &nodes[i]);
	assert_int_equal(itree_validate(&t), N / 2);
	assert_false(itree_overlaps(&t, 5000 * 16, 5000 * 16 + 7));
	assert_true(itree_overlaps(&t, 5001 * 16, 5001 * 16));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_list),
		cmocka_unit_test(test_sorted_disjoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
